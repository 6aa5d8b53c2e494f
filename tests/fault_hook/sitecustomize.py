"""Test-only: tests/test_faults.py puts this folder on PYTHONPATH to pause a process inside a save,
so that the test can SIGKILL it exactly there. Inert unless SQLFT_PAUSE is set.

SQLFT_PAUSE="module:Qualified.name:N" pauses the N-th call of that function, before it runs: the
process writes its pid to SQLFT_PAUSE_FILE and sleeps until it is killed.
"""

import importlib.abc
import importlib.util
import os
import sys
import time


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, module: str, qualname: str, nth: int):
        self.module, self.qualname, self.nth = module, qualname, nth

    def find_spec(self, name, path, target=None):
        if name != self.module:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            self._wrap(module)

        spec.loader.exec_module = exec_module
        return spec

    def _wrap(self, module) -> None:
        *owners, name = self.qualname.split(".")
        owner = module
        for part in owners:
            owner = getattr(owner, part)
        original, calls = getattr(owner, name), [0]

        def paused(*args, **kwargs):
            calls[0] += 1
            if calls[0] == self.nth:
                with open(os.environ["SQLFT_PAUSE_FILE"], "w") as handle:
                    handle.write(str(os.getpid()))
                time.sleep(600)
            return original(*args, **kwargs)

        setattr(owner, name, paused)


if os.environ.get("SQLFT_PAUSE"):
    _module, _qualname, _nth = os.environ["SQLFT_PAUSE"].split(":")
    sys.meta_path.insert(0, _PatchOnImport(_module, _qualname, int(_nth)))
