"""A model card (README.md with Hub metadata) for an adapter or an export folder: base model, data,
preset, the run's metrics, license and how to load it. Written at the end of each phase and by
`sqlft export`, so a folder pushed to the Hub explains itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlft.config import Preset, load_preset

# Licenses of the bases the shipped presets use; any other base: its own license applies.
KNOWN_LICENSES = {
    "smollm2": "apache-2.0",
    "qwen2.5": "apache-2.0",
    "mistral-nemo": "apache-2.0",
    "phi-2": "mit",
    "tiny-": "apache-2.0",  # sqlft.testing's random test models
}
# sqlft's own names for bases -> their Hub ids, which is what a card and its loading code need
HUB_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
STEPS = ("baseline", "phase1", "phase2", "phase3")
LIBRARY = {"adapter": "peft", "merged": "transformers", "gguf": "gguf"}
FORMATS = {"adapter": "LoRA adapter (PEFT)", "merged": "merged weights", "gguf": "GGUF"}


def license_of(base_model: str) -> str:
    name = base_model.lower()
    return next((lic for key, lic in KNOWN_LICENSES.items() if key in name), "other")


def run_metrics(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Summaries by step: the evaluation's metrics.json, else each finished step's report.json."""
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        return {step: metrics[step] for step in STEPS if isinstance(metrics.get(step), dict)}
    found = {}
    for step in STEPS:
        report = run_dir / step / "report.json"
        if report.is_file():
            found[step] = json.loads(report.read_text(encoding="utf-8"))["summary"]
    return found


def _percent(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "–"


def _metrics_table(metrics: dict[str, dict[str, Any]]) -> list[str]:
    if not metrics:
        return ["No evaluation has run yet for this model."]
    lines = [
        "| step | scored | execution accuracy | exact match | valid SQL |",
        "|---|---:|---:|---:|---:|",
    ]
    for step, s in metrics.items():
        scored = f"{s.get('scored', '–')} of {s.get('n', '–')}"
        lines.append(
            f"| {step} | {scored} | {_percent(s.get('exec_accuracy'))} | "
            f"{_percent(s.get('exact_accuracy'))} | {_percent(s.get('valid_rate'))} |"
        )
    return lines


def _data_lines(preset: Preset | None) -> list[str]:
    if preset is None:
        return ["Not recorded (no run folder or preset was given)."]
    lines = []
    phase3 = [("phase 3 (GRPO, execution reward)", preset.phase3.data)] if preset.phase3.enabled else []
    for label, data in (
        ("phase 1", preset.phase1.data),
        ("phase 2", preset.phase2.data),
        *phase3,
        ("evaluation", preset.eval.data),
    ):
        limit = f", first {data.limit} records" if data.limit else ""
        lines.append(f"- {label}: `{data.source}`{f' split `{data.split}`' if data.split else ''}{limit}")
    p = preset.prompt
    lines.append(
        f"- prompts: template `{p.template}`, schema `{p.schema}`, {p.sample_values} sample values per "
        f"column, {p.value_retrieval} retrieved values per question, system line {p.system!r}"
    )
    return lines


def _how_to_load(kind: str, base_model: str, gguf_file: str | None) -> list[str]:
    if kind == "adapter":
        code = [
            "from peft import PeftModel",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'base = AutoModelForCausalLM.from_pretrained("{base_model}")',
            'model = PeftModel.from_pretrained(base, "THIS_FOLDER_OR_REPO")',
            'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER_OR_REPO")',
        ]
        shell = f'sqlft ask --model {base_model} --adapter THIS_FOLDER --db my.sqlite "How many ...?"'
    elif kind == "gguf":
        code = [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER_OR_REPO", gguf_file="{gguf_file}")',
            f'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER_OR_REPO", gguf_file="{gguf_file}")',
        ]
        shell = f"llama-cli -m {gguf_file} -cnv   # llama.cpp; Ollama: FROM ./{gguf_file} in a Modelfile"
    else:
        code = [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            'model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER_OR_REPO")',
            'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER_OR_REPO")',
        ]
        shell = 'sqlft ask --model THIS_FOLDER --db my.sqlite "How many ...?"'
    return ["```python", *code, "```", "", "```bash", shell, "```"]


def write_model_card(
    folder: str | Path,
    *,
    base_model: str,
    kind: str = "adapter",
    run_dir: str | Path | None = None,
    preset: Preset | None = None,
    gguf_file: str | None = None,
) -> Path:
    """Write `folder/README.md` for an `adapter`, a `merged` model or a `gguf` export."""
    if kind not in LIBRARY:
        raise ValueError(f"model card kind {kind!r}: choose one of {', '.join(LIBRARY)}")
    folder = Path(folder)
    base_model = HUB_IDS.get(base_model, base_model)
    run_dir = Path(run_dir) if run_dir is not None else None
    if preset is None and run_dir is not None and (run_dir / "preset.yaml").is_file():
        preset = load_preset(run_dir / "preset.yaml")
    license_id = license_of(base_model)
    front = [
        "---",
        f"base_model: {base_model}",
        f"library_name: {LIBRARY[kind]}",
        f"license: {license_id}",
        "pipeline_tag: text-generation",
        "tags: [text-to-sql, sql, sqlft, lora]",
        "---",
    ]
    body = [
        f"# Text-to-SQL {'LoRA adapter' if kind == 'adapter' else 'model'} for {base_model}",
        "",
        "Fine-tuned with sqlft in "
        + (
            "three phases (SQL syntax, schema-aware Spider-style prompts, then GRPO with an execution reward)"
            if preset and preset.phase3.enabled
            else "two phases (SQL syntax, then schema-aware Spider-style prompts)"
        )
        + f"{f', preset `{preset.name}`' if preset else ''}. Format: {FORMATS[kind]}"
        f"{f' `{gguf_file}`' if gguf_file else ''}.",
        "",
        "## Base model",
        "",
        f"`{base_model}`" + (f" ({preset.model.quantization} during training)" if preset else ""),
        "",
        "## Data",
        "",
        *_data_lines(preset),
        "",
        "## Metrics",
        "",
        *_metrics_table(run_metrics(run_dir) if run_dir else {}),
        "",
        "## License",
        "",
        f"`{license_id}`: the base model's license."
        if license_id != "other"
        else "The base model's license.",
        "",
        "## How to load",
        "",
        *_how_to_load(kind, base_model, gguf_file),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    card = folder / "README.md"
    card.write_text("\n".join(front + body) + "\n", encoding="utf-8")
    return card
