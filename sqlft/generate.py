"""Batched generation of SQL answers with a decoding loop built for throughput.

HF `generate` keeps a finished sequence in its batch slot until the longest one ends, and
computes every prompt in full. Here prompts are grouped by shared prefix (system prompt and
schema: one Spider database) and each group computes that prefix once. Up to `batch_size`
sequences decode together; a sequence that stops leaves the batch and the KV cache, and waiting
prompts (of the same group or the next) join the running batch once a quarter of its slots are
free. The KV cache writes into spare room instead of copying itself every step. Results come
back in input order, and greedy output equals one-prompt-at-a-time output. Works for any causal
LM from transformers, a PeftModel (merge it with `merge_adapter` where possible: an unmerged
LoRA halves speed) and quantised models; models with sliding-window layers decode in plain
batches.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlft.extract import answer_complete, extract_sql

if TYPE_CHECKING:
    from sqlft.schema import Schema

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

    if isinstance(model, PeftModel):
        base = model.get_base_model()
        if not (getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False)):
            model = model.merge_and_unload()
    return model.eval()


def _input_device(model: Any):
    return model.get_input_embeddings().weight.device


def _output_device(model: Any):
    """Where logits come out: the last device when a model is split across GPUs."""
    head = model.get_output_embeddings()
    return head.weight.device if head is not None else _input_device(model)


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


def plan_groups(encoded: list[list[int]]) -> list[list[int]]:
    """Prompt indices in decoding groups, each longest first (least padding).

    In token order, a prompt joins its neighbour's group when they share at least half of the
    shorter one (Spider: one database's schema), so a group computes that prefix once. Prompts
    alone in their group are decoded together as one last group.
    """
    by_tokens = sorted(range(len(encoded)), key=lambda i: encoded[i])
    groups: list[list[int]] = []
    for i in by_tokens:
        if groups:
            last = encoded[groups[-1][-1]]
            if shared_prefix_len([last, encoded[i]]) >= min(len(last), len(encoded[i])) // 2:
                groups[-1].append(i)
                continue
        groups.append([i])
    singles = [g[0] for g in groups if len(g) == 1]
    groups = [g for g in groups if len(g) > 1] + ([singles] if singles else [])
    return [sorted(g, key=lambda i: -len(encoded[i])) for g in groups]


def _roomy_layer_class():
    """A DynamicLayer that writes new tokens into spare room instead of concatenating.

    DynamicLayer copies its whole cache on every decoding step (torch.cat): 40% of a batch-16
    step of SmolLM2 on CPU. This one keeps buffers with ROOM free slots and exposes the filled
    part as views, copying only when the room runs out or the rows change.
    """
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        ROOM = 64

        def _hold(self, keys, values, length: int) -> None:
            self._room_k, self._room_v = keys, values
            self.keys, self.values = keys[..., :length, :], values[..., :length, :]

        def set_states(self, keys, values, room: int | None = None) -> None:
            """Replace the cached states (copied into fresh buffers with room to grow)."""
            if not self.is_initialized:
                self.lazy_initialization(keys, values)
            length, room = keys.shape[-2], room or self.ROOM
            room_k = keys.new_empty((*keys.shape[:2], length + room, keys.shape[-1]))
            room_v = values.new_empty((*values.shape[:2], length + room, values.shape[-1]))
            room_k[..., :length, :], room_v[..., :length, :] = keys, values
            self._hold(room_k, room_v, length)

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized or self.get_seq_length() == 0:
                self.set_states(key_states, value_states)
                return self.keys, self.values
            old = self.get_seq_length()
            new = old + key_states.shape[-2]
            if new > self._room_k.shape[-2]:
                self.set_states(self.keys, self.values, room=new - old + self.ROOM)
            self._room_k[..., old:new, :] = key_states
            self._room_v[..., old:new, :] = value_states
            self._hold(self._room_k, self._room_v, new)
            return self.keys, self.values

        def batch_repeat_interleave(self, repeats: int) -> None:
            if (length := self.get_seq_length()) > 0:
                keys, values = self._room_k, self._room_v
                self._hold(keys.repeat_interleave(repeats, 0), values.repeat_interleave(repeats, 0), length)

        def batch_select_indices(self, indices) -> None:
            if (length := self.get_seq_length()) > 0:
                self._hold(self._room_k[indices], self._room_v[indices], length)

    return DynamicLayer, RoomyLayer


def _new_cache(model: Any):
    """A DynamicCache whose full-attention layers are roomy (sliding-window layers stay as they are)."""
    from transformers import DynamicCache

    plain, roomy = _roomy_layer_class()
    cache = DynamicCache(config=model.config)
    cache.layers = [roomy() if type(layer) is plain else layer for layer in cache.layers]
    return cache


def _is_roomy(cache: Any) -> bool:
    return bool(cache.layers) and all(hasattr(layer, "set_states") for layer in cache.layers)


def _prefill(model: Any, rows: list[list[int]], pad_id: int, shared: int, prefix: Any):
    """Run prompts through the model: (KV cache, last logits, attention mask, next positions).

    The first `shared` tokens of every row are already in `prefix` (a one-row cache), copied per
    row; the rest is left-padded, so padding sits between the shared prefix and a row's own tokens.
    """
    import torch

    device = _input_device(model)
    cache = _new_cache(model)
    if shared:
        for layer, (keys, values) in zip(cache.layers, _states(prefix), strict=True):
            layer.set_states(keys.expand(len(rows), -1, -1, -1), values.expand(len(rows), -1, -1, -1))
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
    logits = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        **{_cache_name(model): cache},
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]
    return cache, logits, mask, positions[:, -1] + 1


def _cache_name(model: Any) -> str:
    """`cache` where the model's forward takes it (transformers 5.24 renamed `past_key_values`, which
    older 5.x releases still need); asked of the model under any PEFT wrapper, once per model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    name = getattr(base, "_sqlft_cache_name", None)
    if name is None:
        name = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        base._sqlft_cache_name = name
    return name


def _states(cache: Any) -> list[tuple[Any, Any]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _widen(states: list, mask: Any, extra: int) -> tuple[list, Any]:
    """Left-pad cached states and mask with `extra` masked-out columns."""
    import torch

    def pad(t):
        return torch.cat([t.new_zeros((*t.shape[:-2], extra, t.shape[-1])), t], dim=-2)

    return [(pad(k), pad(v)) for k, v in states], torch.cat(
        [mask.new_zeros((mask.shape[0], extra)), mask], -1
    )


def _join(cache: Any, mask: Any, other: Any, other_mask: Any) -> Any:
    """Append the rows of `other` to `cache`, left-padding the shorter one (a row only attends to
    the columns its mask marks, and positions are per row); returns the joined attention mask."""
    import torch

    mine, theirs = _states(cache), _states(other)
    if mask.shape[1] < other_mask.shape[1]:
        mine, mask = _widen(mine, mask, other_mask.shape[1] - mask.shape[1])
    elif other_mask.shape[1] < mask.shape[1]:
        theirs, other_mask = _widen(theirs, other_mask, mask.shape[1] - other_mask.shape[1])
    for layer, (k, v), (k2, v2) in zip(cache.layers, mine, theirs, strict=True):
        layer.set_states(torch.cat([k, k2]), torch.cat([v, v2]))
    return torch.cat([mask, other_mask])


def _compact(cache: Any, mask: Any, slack: int = 32) -> Any:
    """Drop cache columns no live row attends to (tokens of rows that left) once `slack` pile up."""
    used = mask.bool().any(dim=0)
    if int((~used).sum()) < slack:
        return mask
    columns = used.nonzero().squeeze(-1)
    for layer, (k, v) in zip(cache.layers, _states(cache), strict=True):
        layer.set_states(k[..., columns, :], v[..., columns, :])
    return mask[:, columns]


class _Prefiller:
    """Starts rows: each group's shared prefix is computed once (kept while rows of the group
    wait), the rest of each row on top of it."""

    def __init__(self, model: Any, rows: list[list[int]], group_of: list[int], pad_id: int, share: bool):
        self.model, self.rows, self.group_of, self.pad_id = model, rows, group_of, pad_id
        members: dict[int, list[int]] = {}
        for row, group in enumerate(group_of):
            members.setdefault(group, []).append(row)
        self.shared = {g: shared_prefix_len([rows[r] for r in m]) if share else 0 for g, m in members.items()}
        self.waiting = {g: len(m) for g, m in members.items()}
        self.prefixes: dict[int, Any] = {}

    def start(self, take: list[int]):
        """(KV cache, logits, attention mask, next positions) for rows `take`, in that order."""
        import torch

        parts = []
        for group, part in itertools.groupby(take, key=self.group_of.__getitem__):
            part = list(part)
            shared = self.shared[group]
            if shared and group not in self.prefixes:
                prefix = self.prefixes[group] = _new_cache(self.model)
                ids = torch.tensor([self.rows[part[0]][:shared]], device=_input_device(self.model))
                cache_arg = {_cache_name(self.model): prefix}
                self.model(input_ids=ids, **cache_arg, use_cache=True, logits_to_keep=1)
            rows = [self.rows[r] for r in part]
            parts.append(_prefill(self.model, rows, self.pad_id, shared, self.prefixes.get(group)))
            self.waiting[group] -= len(part)
            if not self.waiting[group]:
                self.prefixes.pop(group, None)
        cache, logits, mask, positions = parts[0]
        for other, other_logits, other_mask, other_positions in parts[1:]:
            mask = _join(cache, mask, other, other_mask)
            logits, positions = torch.cat([logits, other_logits]), torch.cat([positions, other_positions])
        return cache, logits, mask, positions


def _decode(
    model: Any,
    rows: list[list[int]],
    group_of: list[int],
    *,
    slots: int,
    pad_id: int,
    stop_ids: set[int],
    max_new_tokens: int,
    pick: Any,
    on_step: Any,
    answer_ended: Any = None,
    constraint: Any = None,
) -> list[tuple[list[int], float]]:
    """Continue each row: (new tokens without the stop token, mean log-prob over its steps).

    Rows start in order, at most `slots` decode together. A row that stops leaves the batch and
    the KV cache; once a quarter of the slots are free, waiting rows join the running batch, so
    slots do not idle while the slowest row finishes. (Models with sliding-window cache layers,
    which cannot be joined, decode one group's batch at a time.) A `constraint`
    (`sqlft.constrained.Constraint`) restricts each row's next token to what its schema allows.
    """
    import torch

    roomy = _is_roomy(_new_cache(model))
    prefiller = _Prefiller(model, rows, group_of, pad_id, share=roomy)
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=_output_device(model))
    out_tokens: list[list[int]] = [[] for _ in rows]
    totals = [0.0] * len(rows)
    steps = [0] * len(rows)
    pending = list(range(len(rows)))
    active = torch.zeros(0, dtype=torch.long)  # row numbers; indices stay on CPU, which indexes any device
    cache = logits = mask = next_pos = None
    while pending or active.numel():
        free = slots - active.numel()
        if pending and (not active.numel() or (roomy and free >= max(1, slots // 4))):
            take = pending[:free]
            if not roomy:  # a batch of one group only
                take = [r for r in take if group_of[r] == group_of[take[0]]]
            pending = pending[len(take) :]
            started = prefiller.start(take)
            if active.numel():
                mask = _join(cache, mask, started[0], started[2])
                logits, next_pos = torch.cat([logits, started[1]]), torch.cat([next_pos, started[3]])
            else:
                cache, logits, mask, next_pos = started
            active = torch.cat([active, torch.tensor(take, dtype=torch.long)])
        if constraint is not None:
            logits = constraint.restrict(active.tolist(), logits)
        tokens, logps = pick(logits)
        if constraint is not None:
            constraint.advance(active.tolist(), tokens.tolist())
        stopped = torch.isin(tokens, stops).tolist()
        live = []
        for j, (row, tok, logp) in enumerate(
            zip(active.tolist(), tokens.tolist(), logps.tolist(), strict=True)
        ):
            totals[row] += logp
            steps[row] += 1
            if not stopped[j]:
                out_tokens[row].append(tok)
            ended = answer_ended is not None and not stopped[j] and answer_ended(out_tokens[row], tok)
            if not stopped[j] and steps[row] < max_new_tokens and not ended:
                live.append(j)
        on_step(active.numel() - len(live), active.numel() - sum(stopped))
        if not live:
            active = active[:0]
            continue
        if len(live) < active.numel():
            keep = torch.tensor(live, dtype=torch.long)
            cache.batch_select_indices(keep)
            active, tokens, mask, next_pos = active[keep], tokens[keep], mask[keep], next_pos[keep]
            if roomy:
                mask = _compact(cache, mask)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        logits = model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            **{_cache_name(model): cache},
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
    stop_after_answer: bool = True,
    schemas: Sequence[Schema | None] | None = None,
) -> list[Generation]:
    """Answer each prompt (already chat-templated text) with SQL; output order = input order.

    `batch_size` bounds the sequences decoded together (n samples of a prompt are n sequences).
    Prompts are tokenized without special tokens by default, since the chat template already
    wrote them (the same convention as `sqlft.prompts`). With `stop_after_answer` a sequence also
    stops once its text holds a whole first statement (`extract.answer_complete`): zero-shot
    models explain their query at length, and only the query is kept. `schemas` (one per
    prompt, the Schema that wrote it; None leaves that prompt free) turns on schema-constrained
    decoding: every table and column the model names exists (`sqlft.constrained`).
    """
    import torch

    from sqlft.progressbar import ProgressBar

    n = num_return_sequences
    if n < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError("batch_size, max_new_tokens and num_return_sequences must be at least 1")
    if n > 1 and not do_sample:
        raise ValueError(
            f"num_return_sequences={n} with greedy decoding repeats one answer; set do_sample=True"
        )
    if not prompts:
        return []
    if schemas is not None and len(schemas) != len(prompts):
        raise ValueError(
            f"schemas has {len(schemas)} entries for {len(prompts)} prompts; give one per prompt"
        )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    generator = None
    if seed is not None:
        generator = torch.Generator(device=_output_device(model)).manual_seed(seed)
    encoded = tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]
    for i, ids in enumerate(encoded):
        if not ids:
            raise ValueError(f"prompt {i} is empty after tokenization; give every record a prompt")
    order = [(g, i) for g, group in enumerate(plan_groups(encoded)) for i in group for _ in range(n)]
    constraint = None
    if schemas is not None:
        from sqlft.constrained import Constraint

        rows = [schemas[i] for _, i in order]
        constraint = Constraint(tokenizer, rows, greedy=not do_sample, max_new_tokens=max_new_tokens)
    was_training = model.training
    model.eval()
    bar = ProgressBar(len(order), "generate", "sequences", enabled=progress)
    counted = {"tokens": 0, "start": time.perf_counter()}

    def on_step(finished: int, new_tokens: int) -> None:
        counted["tokens"] += new_tokens
        if finished:
            rate = counted["tokens"] / (time.perf_counter() - counted["start"])
            bar.update(finished, **{"new tokens/s": f"{rate:.1f}"})

    def answer_ended(tokens: list[int], token: int) -> bool:
        piece = tokenizer.decode([token])
        return (";" in piece or "`" in piece) and answer_complete(tokenizer.decode(tokens))

    try:
        with torch.inference_mode():
            decoded = _decode(
                model,
                [encoded[i] for _, i in order],
                [g for g, _ in order],
                slots=batch_size,
                pad_id=pad_id,
                stop_ids=stop_token_ids(model, tokenizer),
                max_new_tokens=max_new_tokens,
                pick=lambda logits: _pick(logits, do_sample, temperature, top_p, generator),
                on_step=on_step,
                answer_ended=answer_ended if stop_after_answer else None,
                constraint=constraint,
            )
    finally:
        bar.close()
        model.train(was_training)
    samples: dict[int, list[Candidate]] = {}
    for (_, index), result in zip(order, decoded, strict=True):
        samples.setdefault(index, []).append(_candidate(tokenizer, *result))
    return [_generation(samples[i]) for i in range(len(encoded))]


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


def add_sampled_candidates(
    model: Any, tokenizer: Any, predictions: list[dict[str, Any]], num_samples: int, **generate_kwargs: Any
) -> None:
    """Give each prediction record `num_samples` sampled `candidates` for the self-consistency rows,
    beside its greedy `pred`, which stays as it is (the two are never mixed)."""
    sampled = generate_sql(
        model,
        tokenizer,
        [r["prompt"] for r in predictions],
        do_sample=True,
        num_return_sequences=num_samples,
        **generate_kwargs,
    )
    for record, generation in zip(predictions, sampled, strict=True):
        record["candidates"] = [asdict(c) for c in generation.candidates]
