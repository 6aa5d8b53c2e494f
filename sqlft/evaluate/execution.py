"""Execution match with the semantics of test-suite-sql-eval's `exec_eval.py` (default flags).

Both queries get the official clean-up (`> =` -> `>=`, DISTINCT tokens dropped from sqlparse's
first statement, `YEAR(CURDATE())` -> 2020), run on every `*.sqlite*` file of the database
folder, and their results compare as the official `result_eq` does: empty equals empty, rows are
bags (lists when the cleaned gold contains the text `order by`), columns may be permuted, values
compare with Python's `==` (1 == 1.0, 1 != '1'). Deliberate differences, all on the safe side:
queries run read-only with a time limit (the official opens the file read-write and never
times out), a failing gold is an error for its record (the official stops with an assertion),
and a folder without a database file is an "unknown db" error (the official scores it a match).
`Executor(semantics="bird")` scores with BIRD's semantics instead (sqlft.evaluate.bird).
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlft.sqlexec import QueryError, connect_memory, connect_readonly, run_query

# error kind -> the words a reader sees in front of the detail
ERROR_LABELS = {
    "syntax": "syntax error",
    "schema": "unknown table/column",
    "timeout": "timeout",
    "limit": "limit",
    "too_long": "too long",
    "denied": "denied",
    "runtime": "runtime error",
    "gold": "gold error",
    "unknown_db": "unknown db",
    "context": "context error",
}
SEMANTICS = ("spider", "bird")  # what an execution match means: this module's, or sqlft.evaluate.bird's
MAX_GOLD_ROWS = 1_000_000
_GOLD_CACHE = 4096  # gold results kept for reuse (candidates of one question share a gold)
_FAST_CHARS, _FAST_PARENS = 2000, 20  # sqlparse first refuses nesting at ~45
# Text that sqlparse's lexer splits into plain words, numbers, operators, whitespace and quoted
# strings (no backslash, comment, placeholder, bracket or non-ASCII letter outside a string), as one
# statement: a `;` only at the end, followed by spaces at most (sqlparse starts another statement
# at a newline). Strings are atomic, as in the lexer, so no text makes the match backtrack much.
_STRING = r"""(?>'(?:''|[^'\\])*')|(?>"(?:""|[^"\\])*")"""
_PLAIN_TEXT = re.compile(rf"(?:[A-Za-z0-9_ \t\n\r,.()*=<>!+]|-(?!-)|/(?!\*)|{_STRING}|;(?=[ \t]*\Z))*+")
# `1e5distinct` is two tokens and `AT TIME ZONE '...'` one: sqlparse decides those
_NOT_PLAIN = re.compile(r"\ddistinct|zone", flags=re.IGNORECASE)
_DISTINCT_WORD = re.compile(rf"({_STRING})|(?<![\w$#@])distinct(?![\w$#@])", flags=re.IGNORECASE)
_CUR_YEAR = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", flags=re.IGNORECASE)
# Words of SQLite functions whose result can change between two runs of the same text (random,
# the clock, counters of changes); a query holding one is always executed again.
_VOLATILE = re.compile(r"random|changes|last_insert|now|current|date|time|julianday", flags=re.IGNORECASE)


def postprocess(query: str) -> str:
    """The official fix-up of comparison operators split by a tokenizer."""
    return query.replace("> =", ">=").replace("< =", "<=").replace("! =", "!=")


@lru_cache(maxsize=16384)
def remove_distinct(query: str) -> str:
    """Drop every DISTINCT token; only sqlparse's first statement survives, as in the official.

    Grouping never changes sqlparse's leaf tokens, so short queries skip it (it is most of
    sqlparse's time); a short query without `;` or `distinct` comes back unchanged, and one of
    plain words, operators and strings loses its `distinct` words by a regular expression (checked
    against sqlparse on generated text in the tests); long or deeply nested ones take the full
    `sqlparse.parse`, whose grouping limits raise just as they do for the official.
    """
    short = len(query) <= _FAST_CHARS and query.count("(") <= _FAST_PARENS
    if short and ";" not in query and "distinct" not in query.lower():
        if not query.strip():  # sqlparse finds no statement in blank text
            raise ValueError("empty query")
        return query  # one statement and nothing to drop: sqlparse would give it back as is
    if short and query.strip() and _PLAIN_TEXT.fullmatch(query) and not _NOT_PLAIN.search(query):
        # one statement whose `distinct` words outside strings are tokens of their own, and
        # sqlparse's tokens joined give back the text
        return _DISTINCT_WORD.sub(lambda m: m.group(1) or "", query)
    import sqlparse
    from sqlparse.engine import FilterStack

    if not short:
        statements = sqlparse.parse(query)
        first = statements[0] if statements else None
    else:
        first = next(iter(FilterStack().run(query)), None)
    if first is None:
        raise ValueError("empty query")
    return "".join(t.value for t in first.flatten() if t.value.lower() != "distinct")


@lru_cache(maxsize=4096)
def _volatile(query: str) -> bool:
    return _VOLATILE.search(query) is not None


def replace_cur_year(query: str) -> str:
    return _CUR_YEAR.sub("2020", query)


def _types(rows: list[tuple]) -> list[tuple]:
    """Value types row by row: equal rows of equal types pass every check of the official."""
    return [tuple(map(type, row)) for row in rows]


def _unorder_row(row: tuple) -> tuple:
    return tuple(sorted(row, key=lambda x: str(x) + str(type(x))))


def _permutations(allowed: list[set[int]], kind: list[int]) -> Iterator[tuple[int, ...]]:
    """Column permutations where gold column i may come from any pred column in allowed[i].

    Pred columns with the same `kind` hold equal values row by row, so swapping them changes
    nothing: only one of each such arrangement is produced (ten all-NULL columns give one
    permutation, not 10!).
    """
    chosen: list[int] = []

    def walk(i: int) -> Iterator[tuple[int, ...]]:
        if i == len(allowed):
            yield tuple(chosen)
            return
        tried: set[int] = set()
        for j in sorted(allowed[i]):
            if j not in chosen and kind[j] not in tried:
                tried.add(kind[j])
                chosen.append(j)
                yield from walk(i + 1)
                chosen.pop()

    return walk(0)


def result_eq(gold: list[tuple], pred: list[tuple], order_matters: bool) -> bool:
    """The official denotation equality, gold first (its quirks included, e.g. the row-sort
    key str(x) + str(type(x)) in the quick rejection)."""
    if not gold and not pred:
        return True
    if len(gold) != len(pred):
        return False
    if gold == pred and _types(gold) == _types(pred):  # the same rows, value types included
        return True
    n_cols = len(gold[0])
    if len(pred[0]) != n_cols:
        return False
    unordered_gold = [_unorder_row(r) for r in gold]
    unordered_pred = [_unorder_row(r) for r in pred]
    if order_matters and unordered_gold != unordered_pred:
        return False
    if not order_matters and set(unordered_gold) != set(unordered_pred):
        return False
    # A pred column can stand for a gold column only if all its values occur there; the
    # official samples 20 rows for this pruning, checking every row prunes the same way, only
    # more, and never removes a permutation that could match.
    gold_columns = [{row[i] for row in gold} for i in range(n_cols)]
    allowed = [set(range(n_cols)) for _ in range(n_cols)]
    if n_cols > 3:
        for row in pred:
            for i in range(n_cols):
                allowed[i] = {j for j in allowed[i] if row[j] in gold_columns[i]}
    columns = [tuple(row[j] for row in pred) for j in range(n_cols)]
    kind = [columns.index(column) for column in columns]
    gold_set, gold_bag = set(gold), None
    for perm in _permutations(allowed, kind):
        permuted = pred if n_cols == 1 else [tuple(row[j] for j in perm) for row in pred]
        if order_matters:
            if gold == permuted:
                return True
        elif gold_set == set(permuted):
            gold_bag = gold_bag or Counter(gold)
            if gold_bag == Counter(permuted):
                return True
    return False


@dataclass
class ExecOutcome:
    """One record's verdict; `error_kind` is a key of ERROR_LABELS or None."""

    match: bool
    valid: bool | None = None
    gold_empty: bool | None = None
    error_kind: str | None = None
    error: str | None = None


def _failed(kind: str, detail: str, **fields) -> ExecOutcome:
    return ExecOutcome(match=False, error_kind=kind, error=f"{ERROR_LABELS[kind]}: {detail}", **fields)


def database_files(db_dir: str | Path, db_id: str) -> list[Path]:
    """The official's databases for `db_id`: files in db_dir/db_id whose name contains
    `.sqlite`. `db_id` must name a folder directly under db_dir (no paths)."""
    if not isinstance(db_id, str) or db_id in {"", ".", ".."} or "/" in db_id or "\\" in db_id:
        raise LookupError(f"{db_id!r} is not a database name under {db_dir}")
    folder = Path(db_dir) / db_id
    if not folder.is_dir():
        raise LookupError(f"no folder {db_id!r} in {db_dir}")
    files = sorted(p for p in folder.iterdir() if ".sqlite" in p.name and p.is_file())
    if not files:
        raise LookupError(f"no .sqlite file in {folder}")
    return files


class Executor:
    """Runs gold/pred pairs, keeping connections and gold results for reuse within a process."""

    def __init__(
        self,
        db_dir: str | Path | None,
        timeout_s: float = 30.0,
        keep_distinct: bool = False,
        semantics: str = "spider",
    ):
        self.db_dir = Path(db_dir) if db_dir is not None else None
        self.timeout_s = timeout_s
        self.keep_distinct = keep_distinct
        if semantics not in SEMANTICS:
            raise ValueError(f"unknown semantics {semantics!r}: choose {' or '.join(SEMANTICS)}")
        self.semantics = semantics
        self._connections: dict[str, sqlite3.Connection] = {}
        self._files: dict[str, list[Path]] = {}
        self._gold: dict[tuple[str, str], list[tuple] | QueryError] = {}
        self._gold_seconds: dict[tuple[str, str], float] = {}  # BIRD's pair budget: gold time counts

    def connections(
        self, db_id: str | None, context: str | list[str] | None
    ) -> list[tuple[str, sqlite3.Connection]]:
        """(key, connection) for each database the record runs on; raises LookupError or
        sqlite3.Error (a context that does not build)."""
        if not db_id and context:
            key = "context:" + (context if isinstance(context, str) else "\n".join(context))
            if key not in self._connections:
                if len(self._connections) > 256:
                    self.close()
                self._connections[key] = self._decoding(connect_memory(context, timeout_s=self.timeout_s))
            return [(key, self._connections[key])]
        if self.db_dir is None:
            raise LookupError("no --db-dir given for a record with a db_id")
        if db_id not in self._files:
            files = database_files(self.db_dir, db_id)
            if self.semantics == "bird":  # BIRD runs on <db>/<db>.sqlite only
                files = [p for p in files if p.name == f"{db_id}.sqlite"]
                if not files:
                    raise LookupError(f"no {db_id}.sqlite in {self.db_dir / db_id}")
            self._files[db_id] = files
        out = []
        for path in self._files[db_id]:
            key = str(path)
            if key not in self._connections:
                self._connections[key] = self._decoding(connect_readonly(path))
            out.append((key, self._connections[key]))
        return out

    def _decoding(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """BIRD's evaluator decodes text as strict UTF-8 (a bad byte is an error, scored 0);
        Spider's drops bad bytes."""
        if self.semantics == "bird":
            conn.text_factory = str
        return conn

    def _clean(self, query: str) -> str:
        if self.semantics == "bird":  # BIRD runs both queries as written
            return query
        query = postprocess(query)
        return query if self.keep_distinct else remove_distinct(query)

    def _gold_rows(self, key: str, conn: sqlite3.Connection, gold: str) -> list[tuple] | QueryError:
        if (key, gold) not in self._gold:
            if len(self._gold) >= _GOLD_CACHE:
                self._gold.clear()
            try:
                self._gold[(key, gold)] = run_query(conn, gold, self.timeout_s, MAX_GOLD_ROWS)
            except QueryError as error:
                self._gold[(key, gold)] = error
        return self._gold[(key, gold)]

    def rows(self, pred: str, db_id: str | None = None, context=None, max_rows: int = 100_000) -> list[tuple]:
        """Rows of one cleaned-up query on the record's first database (for voting); raises
        QueryError, LookupError."""
        try:
            pred = replace_cur_year(self._clean(pred))
        except Exception as error:
            raise QueryError("syntax", f"cannot tokenise: {error}") from error
        _, conn = self.connections(db_id, context)[0]
        return run_query(conn, pred, self.timeout_s, max_rows, truncate=True)

    def exec_match(self, pred: str, gold: str, db_id: str | None = None, context=None) -> ExecOutcome:
        if self.semantics == "bird":
            from sqlft.evaluate.bird import bird_match

            return bird_match(self, pred, gold, db_id, context)
        try:
            conns = self.connections(db_id, context)
        except LookupError as error:
            return _failed("unknown_db", str(error))
        except (sqlite3.Error, ValueError) as error:
            return _failed("context", str(error))
        try:
            gold_clean = self._clean(gold)
        except Exception as error:  # sqlparse found no statement or refused the query
            return _failed("gold", f"cannot tokenise: {error}")
        try:
            pred_clean = self._clean(pred)
        except Exception as error:
            return _failed("syntax", f"cannot tokenise the prediction: {error}", valid=False)
        order_matters = "order by" in gold_clean.lower()
        gold_sql, pred_sql = replace_cur_year(gold_clean), replace_cur_year(pred_clean)
        same_query = pred_sql == gold_sql and not _volatile(gold_sql)
        outcome = ExecOutcome(match=True, valid=True)
        for key, conn in conns:
            gold_rows = self._gold_rows(key, conn, gold_sql)
            if isinstance(gold_rows, QueryError):
                return _failed("gold", f"{ERROR_LABELS[gold_rows.kind]}: {gold_rows} ({Path(key).name})")
            if outcome.gold_empty is None:
                outcome.gold_empty = not gold_rows
            if same_query:  # the same text on the same read-only database returns the same rows
                continue
            try:
                pred_rows = run_query(conn, pred_sql, self.timeout_s, len(gold_rows) + 1, truncate=True)
            except QueryError as error:
                return _failed(error.kind, str(error), valid=False, gold_empty=outcome.gold_empty)
            if not result_eq(gold_rows, pred_rows, order_matters):
                outcome.match = False
                break
        return outcome

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
