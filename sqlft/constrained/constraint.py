"""`Constraint`: one SQL state per decoding row, restricting each step's logits (what
`sqlft.generate` calls), and the schemas behind prompt records."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlft.constrained.lexer import SqlState, start_state
from sqlft.constrained.vocab import vocab_trie
from sqlft.schema import Schema

CANDIDATES = 48  # the model's best tokens checked one by one before the whole vocabulary is walked


class Constraint:
    """Per decoding row, the SQL state of its answer so far; restricts each step's logits.

    `rows[i]` is the Schema of decoding row i (None: that row is not constrained). A row whose
    state accepts no token at all is released: it decodes unconstrained from then on, and
    `released` counts it. States are built to have a way on (a table's prefix where no
    qualifier can stand made the benchmark's `Continents.ContId` answers), so this is a guard.
    """

    def __init__(
        self, tokenizer: Any, rows: Sequence[Schema | None], greedy: bool = True, cache_size: int = 4096
    ):
        self.greedy = greedy
        self.trie = vocab_trie(tokenizer)
        self.states: list[SqlState | None] = [None if s is None else start_state(s) for s in rows]
        self.masks: OrderedDict[SqlState, Any] = OrderedDict()
        self.cache_size = cache_size
        self.released = 0

    def mask(self, state: SqlState):
        if state in self.masks:
            self.masks.move_to_end(state)
            return self.masks[state]
        mask = self.masks[state] = self.trie.allowed(state)
        if len(self.masks) > self.cache_size:
            self.masks.popitem(last=False)
        return mask

    def accepts(self, state: SqlState, token: int) -> bool:
        if token in self.trie.special_ids:
            return state.can_end()
        return state.feed(self.trie.pieces[token]) is not None

    def restrict(self, rows: Sequence[int], logits: Any) -> Any:
        """`logits` (one row per entry of `rows`) with the tokens each row's state rejects at -inf.

        The model's CANDIDATES best tokens are checked in rank order (as PICARD does). Greedy: the
        tokens ranked above the first accepted one are masked, so the argmax is the constrained
        argmax. Sampling: only the accepted candidates stay. The whole vocabulary is walked (trie
        mask) only when no candidate is accepted.
        """
        import torch

        logits = logits.clone()
        ranked = logits.topk(min(CANDIDATES, logits.shape[-1]), dim=-1).indices.tolist()
        for j, row in enumerate(rows):
            state = self.states[row]
            if state is None or state.mode == "done":  # inside a literal a token may close it and go on
                continue
            accepted = []
            for k, token in enumerate(ranked[j]):
                if self.accepts(state, token):
                    accepted.append(k)
                    if self.greedy:
                        break
            if accepted and self.greedy:  # the tokens ranked above the first accepted one are rejected
                logits[j, ranked[j][: accepted[0]]] = float("-inf")
                continue
            if accepted:
                keep = [ranked[j][k] for k in accepted]
                kept = logits[j, keep]
                logits[j] = float("-inf")
                logits[j, keep] = kept
                continue
            mask = self.mask(state) if state.mode != "pre" else None
            if mask is None or not mask.any():
                self.states[row], self.released = None, self.released + 1
                continue
            logits[j, torch.from_numpy(~mask).to(logits.device)] = float("-inf")
        return logits

    def advance(self, rows: Sequence[int], tokens: Sequence[int]) -> None:
        """Move each row's state past the token it took."""
        for row, token in zip(rows, tokens, strict=True):
            state = self.states[row]
            if state is not None and state.mode != "done":
                self.states[row] = (
                    state.feed(self.trie.pieces[token]) if token not in self.trie.special_ids else state
                )


def record_schemas(
    records: Sequence[dict[str, Any]], db_dir: str | Path | None = None, tables_json: str | Path | None = None
) -> list[Schema]:
    """The Schema behind each prompt record, as `sqlft data` built it: the record's inline DDL
    `context`, else its `db_id` in Spider's tables.json (`tables_json`, by default the one in
    `db_dir`'s parent when it exists) or `<db_dir>/<db_id>/<db_id>.sqlite`."""
    from sqlft.data.records import DataError, Example
    from sqlft.schema import SchemaStore

    if tables_json is None and db_dir is not None and (Path(db_dir).parent / "tables.json").is_file():
        tables_json = Path(db_dir).parent / "tables.json"
    store = SchemaStore(db_dir, tables_json)
    schemas = []
    for index, record in enumerate(records):
        try:
            schemas.append(
                store.for_example(Example.from_dict({"source": "record", "question": "", **record}))
            )
        except DataError as error:
            raise DataError(
                f"record {index}: {error}. Schema-constrained decoding needs every schema"
            ) from error
    return schemas
