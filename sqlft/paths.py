"""Paths as a reader should see them in notebooks and messages: no machine-specific prefixes."""

from __future__ import annotations

from pathlib import Path


def display_path(path: str | Path) -> str:
    """Relative to the working folder when inside it, else with `~` for the home folder."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        try:
            rest = path.relative_to(base)
        except ValueError:
            continue
        return prefix + str(rest) if str(rest) != "." else prefix.rstrip("/") or "."
    return str(path)


def shorten_paths(text: str) -> str:
    """`display_path` applied inside a message: the working folder's prefix dropped, home as `~`."""
    cwd, home = str(Path.cwd()), str(Path.home())
    if cwd != "/":
        text = text.replace(cwd + "/", "")
    return text.replace(home + "/", "~/") if home != "/" else text
