"""`Constraint`: one SQL state per decoding row, restricting each step's logits (what
`sqlft.generate` calls), and the schemas behind prompt records.

Besides the names, it decides where an answer ends. Constrained answers ran 1.8x as long as plain
ones, and most of the extra tokens were a model lost after its first choice was refused (a select
list naming `age` then `FROM Pets`, which has none: it may not stop there, and wrote `GROTRY {
TYPEOf (` until the budget ended). So: a whole query whose model's first choice leaves SQL
(`singer` + `s`, prose after it) ends there; a query the model wants to stop before it is whole,
or whose model's first choice was refused FIGHT_LIMIT times, is closed with the shortest closing
(`closing.closings`: the FROM it lacks, a parenthesis, ...); and once the `max_new_tokens` left are
only enough to close the query, only tokens that start a closing are allowed: an answer cut off
by the budget still runs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlft.constrained.closing import closings, complete
from sqlft.constrained.lexer import SqlState, start_state
from sqlft.constrained.vocab import vocab_trie
from sqlft.schema import Schema

CANDIDATES = 48  # the model's best tokens checked one by one before the whole vocabulary is walked
CAP_WINDOW = 40  # tokens before the budget's end from which closings are looked for
CAP_MARGIN = 2  # tokens kept spare beyond a closing's own: a model may write it in smaller pieces
FIGHT_LIMIT = 4  # a row whose first choice was rejected this often is lost: its query is closed


class Constraint:
    """Per decoding row, the SQL state of its answer so far; restricts each step's logits.

    `rows[i]` is the Schema of decoding row i (None: that row is not constrained). A row whose
    state accepts no token at all is released: it decodes unconstrained from then on, and
    `released` counts it. States are built to have a way on (a table's prefix where no
    qualifier can stand made the benchmark's `Continents.ContId` answers), so this is a guard.
    With `max_new_tokens` (the decoding's budget per row) the last tokens close the query.
    """

    def __init__(
        self,
        tokenizer: Any,
        rows: Sequence[Schema | None],
        greedy: bool = True,
        cache_size: int = 4096,
        *,
        max_new_tokens: int | None = None,
    ):
        self.greedy = greedy
        self.tokenizer = tokenizer
        self.trie = vocab_trie(tokenizer)
        self.states: list[SqlState | None] = [None if s is None else start_state(s) for s in rows]
        self.steps = [0] * len(rows)
        self.max_new_tokens = max_new_tokens
        self.stop_id = tokenizer.eos_token_id
        self.masks: OrderedDict[SqlState, Any] = OrderedDict()
        self.closing_cost: dict[str, int] = {}
        self.cache_size = cache_size
        self.released = 0
        self.rejected = [0] * len(rows)  # how often each row's first choice was rejected
        self.closing: set[int] = set()  # rows closing their query: lost, or wanting to stop too early

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

    def _cost(self, text: str) -> int:
        if text not in self.closing_cost:
            self.closing_cost[text] = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self.closing_cost[text]

    def capped_tokens(self, state: SqlState, left: int) -> list[int] | None:
        """With `left` tokens of the budget left, the only tokens allowed: a stop once the query is
        whole, else the first tokens of its closings once `left` is no more than they take (plus
        CAP_MARGIN); None while the budget leaves the model free (or no closing is known)."""
        if left > CAP_WINDOW:
            return None
        if complete(state):
            return self.closing_tokens(state) if left <= CAP_MARGIN else None
        plans = closings(state)
        if not plans or left > min(self._cost(p) for p in plans) + CAP_MARGIN:
            return None
        return self.closing_tokens(state)

    def closing_tokens(self, state: SqlState) -> list[int] | None:
        """The tokens that write the start of a closing (`closing.closings`), or a stop once the query
        is whole; None when no closing is known."""
        if complete(state):
            return None if self.stop_id is None else [self.stop_id]
        plans = closings(state)
        cheapest = min(self._cost(plan) for plan in plans) if plans else 0
        tokens: set[int] = set()
        for plan in (p for p in plans if self._cost(p) == cheapest):  # the longest token that writes
            # some of it (outside a word, also without its leading space)
            texts = {plan, plan.lstrip()} if state.mode == "sql" else {plan}
            options = [self.trie.prefix_tokens(text) for text in texts if text]
            tokens.update(max(options, key=self._written))
        return sorted(t for t in tokens if self.accepts(state, t)) or None

    def _written(self, tokens: list[int]) -> int:
        """How much of a closing a token writes: its characters other than spaces."""
        return len(self.trie.pieces[tokens[0]].strip()) if tokens else -1

    def _only(self, logits: Any, j: int, keep: list[int]) -> None:
        kept = logits[j, keep]
        logits[j] = float("-inf")
        logits[j, keep] = kept

    def _forced(self, row: int, state: SqlState, top: int) -> list[int] | None:
        """The only tokens row `row` may take now, or None: the budget's end closes the query; a whole
        query whose model's first choice `top` is rejected stops (it meant to leave SQL); and a row
        whose model wants to stop before its query is whole, or whose first choice was rejected
        FIGHT_LIMIT times (it is lost, and would write until the budget ends), is closed."""
        if self.max_new_tokens is not None:
            forced = self.capped_tokens(state, self.max_new_tokens - self.steps[row])
            if forced is not None:
                return forced
        if row in self.closing:
            return self.closing_tokens(state)
        if state.mode == "pre" or self.accepts(state, top):
            return None
        if complete(state) and self.stop_id is not None:
            return [self.stop_id]
        self.rejected[row] += 1
        if top in self.trie.special_ids or self.rejected[row] >= FIGHT_LIMIT:
            forced = self.closing_tokens(state)
            if forced is not None:
                self.closing.add(row)
            return forced
        return None

    def restrict(self, rows: Sequence[int], logits: Any) -> Any:
        """`logits` (one row per entry of `rows`) with the tokens each row's state rejects at -inf.

        The model's CANDIDATES best tokens are checked in rank order (as PICARD does). Greedy: the
        tokens ranked above the first accepted one are masked, so the argmax is the constrained
        argmax. Sampling: only the accepted candidates stay. The whole vocabulary is walked (trie
        mask) only when no candidate is accepted. A whole query whose best token is rejected stops
        (the model meant to leave SQL), and the budget's last tokens close the query (`capped_tokens`).
        """
        import torch

        logits = logits.clone()
        ranked = logits.topk(min(CANDIDATES, logits.shape[-1]), dim=-1).indices.tolist()
        for j, row in enumerate(rows):
            state = self.states[row]
            if state is None:
                continue
            forced = self._forced(row, state, ranked[j][0])
            if forced is not None:
                self._only(logits, j, forced)
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
                self._only(logits, j, [ranked[j][k] for k in accepted])
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
            self.steps[row] += 1
            state = self.states[row]
            if state is not None:  # after a statement ends too: a later query is checked
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
