"""Batched generation of SQL answers with a decoding loop that drops finished rows.

HF `generate` keeps a finished sequence in its batch slot until the longest one ends, so a
batch runs at the pace of its slowest row. This loop prefills a left-padded batch, then decodes
one token per step and removes rows that hit a stop token from the batch and from the KV cache,
so later steps only compute rows still writing. Prompts are sorted by length into batches (less
padding) and the results come back in input order. Works for any causal LM from transformers,
a PeftModel (merge it first with `merge_adapter` where possible: an unmerged LoRA halves speed),
and quantised models.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlft.extract import extract_sql

# Turn-end tokens of common chat templates; generation stops at any of those in the vocabulary.
CHAT_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


@dataclass
class Candidate:
    """One sampled answer: raw text, extracted SQL, new tokens and mean log-prob per token."""

    raw: str
    sql: str
    num_tokens: int
    score: float


@dataclass
class Generation:
    """The answer to one prompt. With several samples it is the best-scored candidate and
    `candidates` holds them all in sampling order; with one, `candidates` is empty."""

    raw: str
    sql: str
    num_tokens: int
    score: float
    candidates: list[Candidate] = field(default_factory=list)


def stop_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """EOS ids of the model and tokenizer plus the chat template's turn-end tokens."""
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), tokenizer):
        eos = getattr(source, "eos_token_id", None)
        ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in CHAT_END_TOKENS if token in vocab)
    ids.discard(None)
    return ids


def merge_adapter(model: Any) -> Any:
    """Fold a LoRA adapter into the base weights for faster inference; quantised bases stay as is."""
    from peft import PeftModel

    if isinstance(model, PeftModel) and not getattr(model.base_model.model, "is_quantized", False):
        model = model.merge_and_unload()
    return model.eval()


def _input_device(model: Any):
    return model.get_input_embeddings().weight.device


def _pick(logits, do_sample: bool, temperature: float, top_p: float, generator):
    """Next tokens and their log-probs under the model (before temperature and top-p)."""
    import torch

    logprobs = torch.log_softmax(logits.float(), dim=-1)
    if not do_sample:
        tokens = logprobs.argmax(dim=-1)
    else:
        scaled = logits.float() / max(temperature, 1e-5)
        if top_p < 1.0:
            sorted_logits, order = scaled.sort(dim=-1, descending=True)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # keeps at least the top token
            scaled = scaled.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
        tokens = torch.multinomial(scaled.softmax(dim=-1), 1, generator=generator).squeeze(-1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)


def shared_prefix_len(rows: Sequence[Sequence[int]]) -> int:
    """Tokens all rows start with, leaving each row at least one token of its own (0 for one row)."""
    if len(rows) < 2:
        return 0
    first, n = rows[0], min(len(r) for r in rows) - 1
    for row in rows[1:]:
        k = 0
        while k < n and row[k] == first[k]:
            k += 1
        n = k
    return n


def _prefill_cost(encoded: list[list[int]], order: list[int], per_batch: int) -> int:
    """Prompt tokens the model computes when batching `order` (shared prefix once, padding included)."""
    cost = 0
    for start in range(0, len(order), per_batch):
        rows = [encoded[i] for i in order[start : start + per_batch]]
        shared = shared_prefix_len(rows)
        cost += shared + len(rows) * (max(len(r) for r in rows) - shared)
    return cost


def batch_order(encoded: list[list[int]], per_batch: int) -> list[int]:
    """Longest-first order (least padding) or token order (prompts sharing a schema side by side),
    whichever leaves the model fewer prompt tokens to compute."""
    by_length = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    by_tokens = sorted(range(len(encoded)), key=lambda i: encoded[i])
    return min(by_length, by_tokens, key=lambda order: _prefill_cost(encoded, order, per_batch))


def _decode_batch(
    model: Any,
    rows: list[list[int]],
    *,
    pad_id: int,
    stop_ids: set[int],
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_p: float,
    generator: Any,
) -> list[tuple[list[int], float]]:
    """Continue each row: (new tokens without the stop token, mean log-prob over all decoded steps)."""
    import torch
    from transformers import DynamicCache

    device = _input_device(model)
    cache = DynamicCache(config=model.config)
    shared = shared_prefix_len(rows)
    if shared:  # the common prefix (system prompt, schema) is computed once, then copied per row
        prefix = torch.tensor([rows[0][:shared]], device=device)
        model(input_ids=prefix, past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(len(rows))
    # suffixes are left-padded, so padding sits between the prefix and each row's own tokens
    width = max(len(r) for r in rows) - shared
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), shared + width), dtype=torch.long)
    positions = torch.full((len(rows), width), shared, dtype=torch.long)
    mask[:, :shared] = 1
    for i, r in enumerate(rows):
        n = len(r) - shared
        input_ids[i, width - n :] = torch.tensor(r[shared:])
        mask[i, shared + width - n :] = 1
        positions[i, width - n :] = torch.arange(shared, len(r))
    input_ids, mask, positions = input_ids.to(device), mask.to(device), positions.to(device)
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    out_tokens: list[list[int]] = [[] for _ in rows]
    totals = [0.0] * len(rows)
    steps = [0] * len(rows)
    active = torch.arange(len(rows), device=device)
    next_pos = positions[:, -1] + 1
    logits = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]
    for step in range(max_new_tokens):
        tokens, logps = _pick(logits, do_sample, temperature, top_p, generator)
        stopped = torch.isin(tokens, stops)
        for row, tok, logp, stop in zip(
            active.tolist(), tokens.tolist(), logps.tolist(), stopped.tolist(), strict=True
        ):
            totals[row] += logp
            steps[row] += 1
            if not stop:
                out_tokens[row].append(tok)
        keep = (~stopped).nonzero().squeeze(-1)
        if keep.numel() == 0 or step == max_new_tokens - 1:
            break
        if keep.numel() < active.numel():
            cache.batch_select_indices(keep)
            active, tokens, mask, next_pos = active[keep], tokens[keep], mask[keep], next_pos[keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        logits = model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
        next_pos = next_pos + 1
    return [(toks, total / count) for toks, total, count in zip(out_tokens, totals, steps, strict=True)]


def generate_sql(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    do_sample: bool = False,
    num_return_sequences: int = 1,
    temperature: float = 0.7,
    top_p: float = 0.95,
    seed: int | None = None,
    add_special_tokens: bool = False,
    progress: bool = True,
) -> list[Generation]:
    """Answer each prompt (already chat-templated text) with SQL; output order = input order.

    `batch_size` bounds the rows decoded together, so with n samples per prompt a batch holds
    batch_size // n prompts. Prompts are tokenized without special tokens by default, since the
    chat template already wrote them (the same convention as `sqlft.prompts`).
    """
    import torch
    from tqdm.auto import tqdm

    n = num_return_sequences
    if n < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError("batch_size, max_new_tokens and num_return_sequences must be at least 1")
    if n > 1 and not do_sample:
        raise ValueError(
            f"num_return_sequences={n} with greedy decoding repeats one answer; set do_sample=True"
        )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop_ids = stop_token_ids(model, tokenizer)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=_input_device(model)).manual_seed(seed)
    encoded = tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]
    for i, ids in enumerate(encoded):
        if not ids:
            raise ValueError(f"prompt {i} is empty after tokenization; give every record a prompt")
    per_batch = max(1, batch_size // n)
    order = batch_order(encoded, per_batch)
    results: list[Generation | None] = [None] * len(encoded)
    new_tokens, started = 0, time.perf_counter()
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(encoded), unit="prompt", desc="generate", disable=not progress)
    try:
        with torch.inference_mode():
            for start in range(0, len(order), per_batch):
                chunk = order[start : start + per_batch]
                rows = [encoded[i] for i in chunk for _ in range(n)]
                decoded = _decode_batch(
                    model,
                    rows,
                    pad_id=pad_id,
                    stop_ids=stop_ids,
                    max_new_tokens=max_new_tokens,
                    do_sample=do_sample,
                    temperature=temperature,
                    top_p=top_p,
                    generator=generator,
                )
                for k, index in enumerate(chunk):
                    candidates = [_candidate(tokenizer, *d) for d in decoded[k * n : (k + 1) * n]]
                    results[index] = _generation(candidates)
                    new_tokens += sum(c.num_tokens for c in candidates)
                bar.update(len(chunk))
                bar.set_postfix(tok_s=f"{new_tokens / (time.perf_counter() - started):.1f}")
    finally:
        bar.close()
        model.train(was_training)
    return results  # type: ignore[return-value]


def _candidate(tokenizer: Any, tokens: list[int], score: float) -> Candidate:
    raw = tokenizer.decode(tokens, skip_special_tokens=False)
    return Candidate(raw, extract_sql(raw), len(tokens), score)


def _generation(candidates: list[Candidate]) -> Generation:
    best = max(candidates, key=lambda c: c.score)
    return Generation(
        best.raw, best.sql, best.num_tokens, best.score, candidates if len(candidates) > 1 else []
    )


def predict_records(
    model: Any, tokenizer: Any, records: Sequence[dict[str, Any]], **generate_kwargs: Any
) -> list[dict[str, Any]]:
    """Prediction records for `sqlft eval`: each input record (with `prompt` and gold `sql`) plus
    `gold`, `pred` (extracted SQL), `raw` (model output), and `candidates` when sampling n > 1."""
    generations = generate_sql(model, tokenizer, [r["prompt"] for r in records], **generate_kwargs)
    out = []
    for record, gen in zip(records, generations, strict=True):
        pred = {**record, "gold": record["sql"], "pred": gen.sql, "raw": gen.raw}
        if gen.candidates:
            pred["candidates"] = [asdict(c) for c in gen.candidates]
        out.append(pred)
    return out
