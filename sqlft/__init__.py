"""sqlft: fine-tune small open language models to turn questions into SQL.

The heavy parts (torch, transformers) are imported only when used, so `sqlft eval` and the
data tools start fast.
"""

from importlib import import_module

from sqlft.noise import silence_known_noise

__version__ = "0.1.0"
silence_known_noise()

# public name -> module that defines it ("module:name" where the name differs); resolved on first
# access. In the order of a run: data, model, LoRA, training, generation, scoring, using the result.
# No public name is also a submodule's name: importing `sqlft.train` would replace a function
# `sqlft.train` with the module, so training is `train_lora` and scoring `evaluate_predictions`.
_LAZY = {
    "Example": "sqlft.data.records",
    "LoadReport": "sqlft.data.records",
    "DataError": "sqlft.data.records",
    "load_examples": "sqlft.data",
    "prepare_records": "sqlft.data.prepare",
    "Schema": "sqlft.schema",
    "load_preset": "sqlft.config",
    "load_model_and_tokenizer": "sqlft.model",
    "add_lora": "sqlft.lora",
    "train_lora": "sqlft.train:train",
    "generate_sql": "sqlft.generate",
    "predict_records": "sqlft.generate",
    "evaluate_predictions": "sqlft.evaluate",
    "load_for_inference": "sqlft.inference",
    "ask": "sqlft.answer",
    "load_for_ask": "sqlft.answer",
    "merge_adapter": "sqlft.merge",
    "export_gguf": "sqlft.export",
    "write_model_card": "sqlft.modelcard",
}


def __getattr__(name: str):
    if name in _LAZY:
        module, _, attribute = _LAZY[name].partition(":")
        return getattr(import_module(module), attribute or name)
    raise AttributeError(f"module 'sqlft' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
