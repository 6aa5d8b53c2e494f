"""sqlft: fine-tune small open language models to turn questions into SQL.

The heavy parts (torch, transformers) are imported only when used, so `sqlft eval` and the
data tools start fast.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it; resolved on first access
_LAZY = {
    "Example": "sqlft.data.records",
    "LoadReport": "sqlft.data.records",
    "DataError": "sqlft.data.records",
    "load_examples": "sqlft.data",
    "Schema": "sqlft.schema",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sqlft' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
