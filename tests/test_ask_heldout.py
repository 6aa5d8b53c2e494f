"""Issue 27's "done when": asked the Spider dev questions of databases no training saw, `sqlft ask`
never fails on an unknown table or column, with a base model or an adapter. Here the smoke
preset's tiny model, which writes long and wild SQL (the strictest test of the constraint), and a
LoRA adapter on it; SmolLM2 and a trained adapter: benchmarks/ask_heldout.py."""

import json
from pathlib import Path

import pytest

from sqlft.answer import ask, load_for_ask

SPIDER = Path(__file__).resolve().parents[2] / "shared" / "spider"
HELDOUT = ("singer", "voter_1", "poker_player", "course_teach", "pets_1")  # benchmarks/spider_split.py


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sqlft.model import resolve_source

    adapter = tmp_path_factory.mktemp("run") / "phase2" / "adapter"
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_source("tiny-llama-warm")[0])
    lora = LoraConfig(r=4, lora_alpha=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(adapter)  # random B: the adapter changes the answers
    return adapter


@pytest.mark.skipif(not (SPIDER / "dev.json").is_file(), reason="needs ../shared/spider")
@pytest.mark.parametrize("with_adapter", [False, True])
def test_no_answer_on_a_heldout_database_names_what_it_lacks(tiny_adapter, with_adapter) -> None:
    model, tokenizer, prompt = load_for_ask(
        "tiny-llama-warm", tiny_adapter if with_adapter else None, "smoke"
    )
    questions = [q for q in json.loads((SPIDER / "dev.json").read_text()) if q["db_id"] in HELDOUT]
    outcomes, unknown = set(), []
    for q in questions:
        db = SPIDER / "database" / q["db_id"] / f"{q['db_id']}.sqlite"
        answer = ask(q["question"], db, model, tokenizer, prompt=prompt, max_new_tokens=64)
        outcomes.add(answer.outcome)
        if "no such table" in (answer.error or "") or "no such column" in (answer.error or ""):
            unknown.append((answer.sql, answer.error))
    assert len(questions) == 157 and unknown == []
    assert "rows" in outcomes  # the test is not passing on answers that never ran
