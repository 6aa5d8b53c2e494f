import importlib
import pkgutil
import subprocess
import sys
from types import ModuleType

import sqlft


def test_every_public_name_resolves_to_what_it_names_even_after_all_submodules_load() -> None:
    for info in pkgutil.walk_packages(sqlft.__path__, "sqlft."):
        if not info.name.startswith("sqlft.metrics"):
            importlib.import_module(info.name)
    for name in sqlft._LAZY:
        value = getattr(sqlft, name)
        assert not isinstance(value, ModuleType), f"sqlft.{name} is a module, not the public {name}"
        assert getattr(value, "__name__", name) in (name, sqlft._LAZY[name].partition(":")[2])
    assert set(sqlft._LAZY) <= set(dir(sqlft))


def test_import_stays_light() -> None:
    code = "import sys, sqlft; sqlft.ask; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
