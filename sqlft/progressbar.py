"""A progress bar that suits where it runs, so a notebook saves one line instead of a wall.

On a terminal it is tqdm. In a notebook kernel (Jupyter, papermill, a Kaggle commit) it is one
text output updated in place through a display id: a live line while it runs, one line in the
saved notebook. Anywhere else (a log file, CI) it prints a single summary line when it closes.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def in_notebook() -> bool:
    """True inside an IPython kernel (a notebook), False in a terminal IPython or plain Python."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ipython = shell.get_ipython()
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


class ProgressBar:
    """`update(n, **postfix)` then `close()`; `enabled=False` shows nothing at all."""

    def __init__(self, total: int, desc: str, unit: str, enabled: bool = True, every: float = 1.0):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.done, self.postfix = 0, {}
        self.started = time.perf_counter()
        self._shown = 0.0
        self._tqdm = self._handle = None
        self.mode = "off" if not enabled else "notebook" if in_notebook() else "terminal"
        if self.mode == "terminal" and sys.stderr.isatty():
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, desc=desc, unit=unit)
        elif self.mode == "terminal":
            self.mode = "log"

    def update(self, n: int, **postfix: Any) -> None:
        self.done += n
        self.postfix.update(postfix)
        if self._tqdm is not None:
            self._tqdm.set_postfix(postfix, refresh=False)  # one redraw per update, not two
            self._tqdm.update(n)
        elif self.mode == "notebook" and time.perf_counter() - self._shown >= self.every:
            self._show(self.line())

    def line(self) -> str:
        """`desc: done/total unit in S s, key value, ...`"""
        seconds = time.perf_counter() - self.started
        extra = "".join(f", {value} {key}" for key, value in self.postfix.items())
        return f"{self.desc}: {self.done}/{self.total} {self.unit} in {seconds:.0f} s{extra}"

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self.mode == "notebook":
            self._show(self.line())
        elif self.mode == "log":
            print(self.line(), file=sys.stderr, flush=True)

    def _show(self, text: str) -> None:
        from IPython.display import display

        self._shown = time.perf_counter()
        if self._handle is None:
            self._handle = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self._handle.update({"text/plain": text}, raw=True)
