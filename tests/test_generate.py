import pytest
import torch

from sqlft import testing
from sqlft.generate import (
    Generation,
    add_sampled_candidates,
    generate_sql,
    merge_adapter,
    plan_groups,
    predict_records,
    shared_prefix_len,
    stop_token_ids,
)

N_PROMPTS = 12


def _load(arch: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = testing.tiny_model_path(arch, warm_up=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def llama():
    return _load("llama")


@pytest.fixture(scope="module")
def prompts(llama) -> list[str]:
    _, tokenizer = llama
    return [testing.chat_prompt(tokenizer, q) for q, _ in testing.CORPUS[:N_PROMPTS]]


@pytest.fixture(scope="module")
def one_at_a_time(llama, prompts) -> list[Generation]:
    model, tokenizer = llama
    return generate_sql(model, tokenizer, prompts, batch_size=1, max_new_tokens=48, progress=False)


def _hf_greedy(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Reference: transformers' own generate, one prompt at a time, cut at the first eos."""
    texts = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)[0, ids.shape[1] :].tolist()
        if tokenizer.eos_token_id in out:
            out = out[: out.index(tokenizer.eos_token_id)]
        texts.append(tokenizer.decode(out, skip_special_tokens=False))
    return texts


def test_one_at_a_time_matches_transformers_generate(llama, prompts, one_at_a_time) -> None:
    model, tokenizer = llama
    assert [g.raw for g in one_at_a_time] == _hf_greedy(model, tokenizer, prompts, 48)


@pytest.mark.parametrize("batch_size", [3, 5, 16])
def test_batched_greedy_equals_one_at_a_time(llama, prompts, one_at_a_time, batch_size: int) -> None:
    model, tokenizer = llama
    batched = generate_sql(
        model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=48, progress=False
    )
    assert [g.raw for g in batched] == [g.raw for g in one_at_a_time]
    assert [g.num_tokens for g in batched] == [g.num_tokens for g in one_at_a_time]
    for a, b in zip(batched, one_at_a_time, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_refill_and_compaction_keep_greedy_output(llama, prompts, one_at_a_time, monkeypatch) -> None:
    import sqlft.generate as gen

    calls = {"join": 0, "compact": 0}
    join, compact = gen._join, gen._compact

    def counting_join(*args):
        calls["join"] += 1
        return join(*args)

    def counting_compact(cache, mask):
        out = compact(cache, mask, slack=8)
        calls["compact"] += out.shape[1] < mask.shape[1]
        return out

    monkeypatch.setattr(gen, "_join", counting_join)
    monkeypatch.setattr(gen, "_compact", counting_compact)
    model, tokenizer = llama
    out = generate_sql(model, tokenizer, prompts, batch_size=3, max_new_tokens=48, progress=False)
    assert calls["join"] > 0 and calls["compact"] > 0  # rows joined a running batch; dead columns dropped
    assert [g.raw for g in out] == [g.raw for g in one_at_a_time]


def test_warm_model_answers_in_sql_and_stops(one_at_a_time) -> None:
    assert all(g.sql.startswith("SELECT ") and " FROM " in g.sql for g in one_at_a_time)
    assert all(g.num_tokens < 48 for g in one_at_a_time)  # every answer ended at eos, not the cap
    assert all("<|im_end|>" not in g.raw and g.score < 0 for g in one_at_a_time)


def test_order_kept_when_lengths_differ(llama, prompts, one_at_a_time) -> None:
    model, tokenizer = llama
    reordered = prompts[::-1]
    out = generate_sql(model, tokenizer, reordered, batch_size=4, max_new_tokens=48, progress=False)
    assert [g.raw for g in out] == [g.raw for g in one_at_a_time][::-1]


def test_max_new_tokens_caps_output(llama, prompts) -> None:
    model, tokenizer = llama
    out = generate_sql(model, tokenizer, prompts[:4], batch_size=4, max_new_tokens=3, progress=False)
    assert [g.num_tokens for g in out] == [3, 3, 3, 3]


def test_sampling_returns_scored_candidates(llama, prompts) -> None:
    model, tokenizer = llama
    kwargs = dict(batch_size=8, max_new_tokens=48, do_sample=True, num_return_sequences=4, progress=False)
    first = generate_sql(model, tokenizer, prompts[:3], temperature=1.5, seed=7, **kwargs)
    again = generate_sql(model, tokenizer, prompts[:3], temperature=1.5, seed=7, **kwargs)
    assert [[c.raw for c in g.candidates] for g in first] == [[c.raw for c in g.candidates] for g in again]
    for gen in first:
        assert len(gen.candidates) == 4
        assert gen.score == max(c.score for c in gen.candidates)
        assert gen.raw == max(gen.candidates, key=lambda c: c.score).raw
    assert len({c.raw for g in first for c in g.candidates}) > 3  # temperature 1.5 varies the answers


def test_sampled_candidates_sit_beside_the_greedy_prediction(llama, prompts) -> None:
    model, tokenizer = llama
    records = [{"prompt": p, "pred": "greedy", "raw": "greedy"} for p in prompts[:3]]
    add_sampled_candidates(
        model, tokenizer, records, 3, batch_size=8, max_new_tokens=48, temperature=1.5, seed=7, progress=False
    )
    assert all(r["pred"] == r["raw"] == "greedy" for r in records)  # greedy untouched, never mixed
    assert [len(r["candidates"]) for r in records] == [3, 3, 3]
    assert all({"raw", "sql", "num_tokens", "score"} <= set(c) for r in records for c in r["candidates"])


def test_no_prompts_no_generations(llama) -> None:
    assert generate_sql(*llama, [], progress=False) == []


def test_greedy_with_several_samples_is_refused(llama, prompts) -> None:
    model, tokenizer = llama
    with pytest.raises(ValueError, match="do_sample=True"):
        generate_sql(model, tokenizer, prompts[:1], num_return_sequences=2, progress=False)


@pytest.mark.parametrize("arch", ["mistral", "qwen2", "phi"])
def test_other_architectures_batch_like_one_at_a_time(arch: str) -> None:
    model, tokenizer = _load(arch)
    prompts = [testing.chat_prompt(tokenizer, q) for q, _ in testing.CORPUS[:6]]
    single = generate_sql(model, tokenizer, prompts, batch_size=1, max_new_tokens=40, progress=False)
    batched = generate_sql(model, tokenizer, prompts, batch_size=6, max_new_tokens=40, progress=False)
    assert [g.raw for g in batched] == [g.raw for g in single]
    assert [g.raw for g in single] == _hf_greedy(model, tokenizer, prompts, 40)


def test_sliding_window_model_decodes_in_plain_batches() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sqlft.generate import _is_roomy, _new_cache

    path = testing.tiny_model_path("mistral", warm_up=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, sliding_window=4096).eval()
    assert not _is_roomy(_new_cache(model))  # sliding layers: no prefix sharing, no joining
    prompts = [testing.chat_prompt(tokenizer, q) for q, _ in testing.CORPUS[:6]]
    single = generate_sql(model, tokenizer, prompts, batch_size=1, max_new_tokens=30, progress=False)
    batched = generate_sql(model, tokenizer, prompts, batch_size=4, max_new_tokens=30, progress=False)
    assert [g.raw for g in batched] == [g.raw for g in single]


def test_adapter_unmerged_and_merged_agree(llama, prompts) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    model, tokenizer = _load("llama")
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, config).eval()
    base = generate_sql(llama[0], tokenizer, prompts[:6], max_new_tokens=40, progress=False)
    unmerged = generate_sql(peft_model, tokenizer, prompts[:6], max_new_tokens=40, progress=False)
    merged_model = merge_adapter(peft_model)
    assert not isinstance(merged_model, PeftModel)
    merged = generate_sql(merged_model, tokenizer, prompts[:6], max_new_tokens=40, progress=False)
    assert [g.raw for g in merged] == [g.raw for g in unmerged]
    assert [g.raw for g in unmerged] != [g.raw for g in base]  # the random adapter changes answers


def test_predict_records_keep_fields_and_order(llama, one_at_a_time, prompts) -> None:
    model, tokenizer = llama
    records = [
        {"prompt": p, "sql": s, "db_id": "concerts", "id": i}
        for i, (p, (_, s)) in enumerate(zip(prompts[:5], testing.CORPUS, strict=False))
    ]
    out = predict_records(model, tokenizer, records, batch_size=2, max_new_tokens=48, progress=False)
    assert [r["id"] for r in out] == list(range(5))
    for record, pred, gen in zip(records, out, one_at_a_time, strict=False):
        assert (
            pred["gold"] == record["sql"]
            and pred["db_id"] == "concerts"
            and pred["prompt"] == record["prompt"]
        )
        assert (pred["pred"], pred["raw"]) == (gen.sql, gen.raw)
        assert "candidates" not in pred


def test_stop_tokens_include_chat_end(llama) -> None:
    model, tokenizer = llama
    vocab = tokenizer.get_vocab()
    assert {vocab["<|im_end|>"], vocab["<|endoftext|>"]} <= stop_token_ids(model, tokenizer)
    assert tokenizer.pad_token_id not in stop_token_ids(model, tokenizer)


def test_shared_prefix_len() -> None:
    assert shared_prefix_len([[1, 2, 3]]) == 0
    assert shared_prefix_len([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2  # each row keeps one token of its own
    assert shared_prefix_len([[7, 1], [8, 1]]) == 0


def test_plan_groups_by_shared_prefix() -> None:
    schema_a, schema_b = [1] * 50, [2] * 50
    encoded = [
        schema_a + [5],
        schema_b + [6, 6],
        schema_a + [7, 7, 7],
        schema_b + [8],
        schema_a + [9],
        [3, 4],
    ]
    assert plan_groups(encoded) == [[2, 0, 4], [1, 3], [5]]  # longest first inside a group


def test_plan_groups_without_shared_prefixes_is_one_group_by_length() -> None:
    unrelated = [[i] * n for i, n in enumerate([3, 9, 5, 7, 4])]
    assert plan_groups(unrelated) == [[1, 3, 2, 4, 0]]


def test_nf4_model_with_adapter_stays_unmerged_and_batches_like_single() -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    from sqlft.model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(testing.tiny_model_path("llama", warm_up=True)), "nf4")
    prompts = [testing.chat_prompt(tokenizer, q) for q, _ in testing.CORPUS[:6]]
    single = generate_sql(model, tokenizer, prompts, batch_size=1, max_new_tokens=40, progress=False)
    peft_model = merge_adapter(get_peft_model(model, LoraConfig(r=4, target_modules="all-linear")))
    assert isinstance(peft_model, PeftModel)  # merging into 4-bit weights would be lossy
    batched = generate_sql(peft_model, tokenizer, prompts, batch_size=6, max_new_tokens=40, progress=False)
    assert [g.raw for g in batched] == [g.raw for g in single]  # a fresh LoRA (B = 0) changes nothing
    assert all(g.sql.startswith("SELECT") for g in single)
