"""Value retrieval: the database values a question mentions, to show beside their columns.

A model that never saw a database cannot guess that its countries are spelled 'United States' and
not 'USA'; the values the question names, found in the database, tell it (CodeS and OmniSQL use
BM25, CHESS MinHash-LSH). Each database's distinct text values go once into an SQLite FTS5 index
(SQLite's own full-text engine, on every machine, ranked with its `bm25()`), cached under
`<cache>/values/` by the database file's content hash; the source is opened read-only.

A question is matched in two steps: FTS5 finds the values that share a word with it (porter
stemming, case and accents folded), then each is scored by how much of the value the question
spells out, whole phrases first (`score`), and the best `k` are kept.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sqlite3
import tempfile
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlft.data.records import DataError, Example

FORMAT = 1
MAX_VALUE_CHARS = 100  # longer text (descriptions, documents) is no value a WHERE clause spells out
CANDIDATES = 200  # FTS5 matches re-scored per question
MIN_SCORE = 0.51  # more than half of a value's words must be in the question
TOKENIZER = "porter unicode61 remove_diacritics 2"
STOPWORDS = frozenset(
    """a about all also an and any are as at be been by can did do does each find for from give had
    has have how i in into is it its list me more most much my name names no not of on or other
    show than that the their them there these they this those to was were what when where which
    who whom whose why will with would you your""".split()
)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Match:
    """A database value the question mentions, where it is, and how well it matched."""

    table: str
    column: str
    value: str
    score: float

    def to_dict(self) -> dict[str, str]:
        return {"table": self.table, "column": self.column, "value": self.value}


def _version() -> str:
    """Format number plus a hash of this module: an index never outlives a change to how it is built."""
    return f"{FORMAT}-{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]}"


VERSION = _version()


def words(text: str) -> list[str]:
    """Lower-cased words with accents removed, as FTS5's unicode61 tokenizer folds them."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return _WORD.findall("".join(ch for ch in folded if not unicodedata.combining(ch)))


def _stem(word: str) -> str:
    """A light plural fold for scoring ('countries' finds 'country'); FTS5's porter stemmer did the search."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _same(value_word: str, asked: str) -> bool:
    """Equal after the plural fold, or one a long prefix of the other ('Asia' and 'Asian',
    'engineer' and 'engineering'): the shorter has 4 letters or more and 70% of the longer.
    Numbers match only whole: 2000 is no prefix of 20001."""
    a, b = _stem(value_word), _stem(asked)
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return short.isalpha() and len(short) >= 4 and long_.startswith(short) and len(short) >= 0.7 * len(long_)


def question_terms(question_words: list[str]) -> list[str]:
    """The question's words as heard by the index: content words, each pair run together
    ('North Carolina' finds 'NorthCarolina')."""
    content = [w for w in question_words if w not in STOPWORDS]
    pairs = zip(question_words, question_words[1:], strict=False)
    return content + [a + b for a, b in pairs if a not in STOPWORDS and b not in STOPWORDS]


def score(value: str, question_words: list[str]) -> float:
    """How much of `value` the question spells out: the share of its words found in the question,
    plus 1 when they appear there as one phrase in order; 0 for a value with no words."""
    value_words = words(value)
    if not value_words:
        return 0.0
    asked = question_terms(question_words) + question_words
    coverage = sum(any(_same(w, q) for q in asked) for w in value_words) / len(value_words)
    n = len(value_words)
    phrase = any(
        all(_same(v, q) for v, q in zip(value_words, question_words[i : i + n], strict=True))
        for i in range(len(question_words) - n + 1)
    )
    return coverage + phrase


# --------------------------------------------------------------------- the index


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def index_path(db_path: str | Path) -> Path:
    """Where the index of a database file lives: `<cache>/values/<version>/<content hash>.sqlite`."""
    from sqlft.data.demo import cache_root

    return cache_root() / "values" / VERSION / f"{content_hash(Path(db_path))}.sqlite"


def text_values(source: sqlite3.Connection) -> Iterator[tuple[str, str, str]]:
    """(table, column, value) for every distinct text value of at most MAX_VALUE_CHARS characters,
    one column at a time (a large database is never held in memory at once)."""
    from sqlft.schema import Schema, quote

    for table in Schema.from_sqlite(source).tables:
        for column in table.columns:
            col = quote(column.name)
            query = (
                f"SELECT DISTINCT {col} FROM {quote(table.name)} "
                f"WHERE typeof({col}) = 'text' AND length({col}) <= {MAX_VALUE_CHARS}"
            )
            try:
                found = source.execute(query).fetchall()
            except sqlite3.Error as error:
                raise DataError(
                    f"cannot read values of {table.name}.{column.name}: {error}. "
                    "Fix: check that the database opens with the sqlite3 command-line tool"
                ) from error
            yield from ((table.name, column.name, v) for (v,) in found if words(v))


def write_index(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    """Fill `target` with an FTS5 table of the source's text values."""
    target.execute(
        "CREATE VIRTUAL TABLE value_index USING "
        f"fts5(value, tab UNINDEXED, col UNINDEXED, tokenize='{TOKENIZER}')"
    )
    target.executemany("INSERT INTO value_index (tab, col, value) VALUES (?, ?, ?)", text_values(source))
    target.commit()


def build_index(db_path: str | Path) -> Path:
    """The cached index of a database file, built (into a temporary file, renamed into place) if absent."""
    from sqlft.schema import _open_readonly

    db_path = Path(db_path)
    if not db_path.is_file():
        raise DataError(f"{db_path}: no such SQLite file to index. Fix: check the path or the db_id")
    dest = index_path(db_path)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{dest.stem}-", suffix=".sqlite", dir=dest.parent)
    os.close(handle)
    source = _open_readonly(db_path)
    try:
        target = sqlite3.connect(tmp)
        try:
            write_index(source, target)
        finally:
            target.close()
        os.replace(tmp, dest)  # two processes building at once both end with a complete index
    finally:
        source.close()
        Path(tmp).unlink(missing_ok=True)
    return dest


class ValueIndex:
    """Search one database's values; `open` a cached file index, or `in_memory` for inline contexts."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    @classmethod
    def open(cls, db_path: str | Path) -> ValueIndex:
        path = build_index(db_path)
        return cls(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False))

    @classmethod
    def in_memory(cls, source: sqlite3.Connection) -> ValueIndex:
        target = sqlite3.connect(":memory:", check_same_thread=False)
        write_index(source, target)
        return cls(target)

    def search(self, question: str, k: int) -> list[Match]:
        """The `k` values that the question spells out best (score at least MIN_SCORE), best first."""
        asked = words(question)
        terms = sorted(set(question_terms(asked)))
        if not terms or k <= 0:
            return []
        # each term, and a prefix of each long one: 'asian' finds 'Asia', 'european' 'Europe'
        prefixes = {t[: max(4, math.ceil(0.7 * len(t)))] for t in terms if len(t) >= 5 and t.isalpha()}
        query = " OR ".join([f'"{t}"' for t in terms] + [f'"{p}"*' for p in sorted(prefixes)])
        rows = self.connection.execute(
            "SELECT tab, col, value, bm25(value_index) FROM value_index WHERE value_index MATCH ? "
            "ORDER BY bm25(value_index) LIMIT ?",
            (query, CANDIDATES),
        ).fetchall()
        scored = [(score(value, asked), -rank, Match(tab, col, value, 0.0)) for tab, col, value, rank in rows]
        best = sorted((s for s in scored if s[0] >= MIN_SCORE), key=lambda s: (-s[0], -s[1]))[:k]
        return [Match(m.table, m.column, m.value, round(s, 3)) for s, _, m in best]

    def close(self) -> None:
        self.connection.close()


class ValueRetriever:
    """Values for each example: indexes of database files (by db_id under `db_dir`) and of inline
    contexts, opened once each and kept."""

    def __init__(self, k: int, db_dir: str | Path | None = None, context_cache: int = 256):
        self.k = k
        self.db_dir = Path(db_dir) if db_dir is not None else None
        self._by_db: dict[str, ValueIndex] = {}
        self._by_context: OrderedDict[str, ValueIndex] = OrderedDict()
        self._context_cache = context_cache

    def for_example(self, example: Example) -> list[dict[str, str]]:
        """`{"table", "column", "value"}` of the best matches for the example's question."""
        return [m.to_dict() for m in self.index_for(example).search(example.question, self.k)]

    def index_for(self, example: Example) -> ValueIndex:
        if example.context:
            return self._for_context(example.context)
        if not example.db_id or self.db_dir is None:
            raise DataError(
                f"{example.source} example {example.question[:60]!r}: no database to retrieve values "
                "from. Fix: pass db_dir (holding <db_id>/<db_id>.sqlite) or turn value retrieval off"
            )
        if example.db_id not in self._by_db:
            path = self.db_dir / example.db_id / f"{example.db_id}.sqlite"
            self._by_db[example.db_id] = ValueIndex.open(path)
        return self._by_db[example.db_id]

    def _for_context(self, context: str) -> ValueIndex:
        from sqlft.sqlexec import connect_memory

        if context not in self._by_context:
            source = connect_memory(context)
            try:
                self._by_context[context] = ValueIndex.in_memory(source)
            finally:
                source.close()
            if len(self._by_context) > self._context_cache:
                self._by_context.popitem(last=False)[1].close()
        self._by_context.move_to_end(context)
        return self._by_context[context]

    def close(self) -> None:
        for index in [*self._by_db.values(), *self._by_context.values()]:
            index.close()
        self._by_db.clear()
        self._by_context.clear()


def grouped(retrieved: list[dict[str, Any]]) -> dict[tuple[str, str], list[Any]]:
    """Retrieved values by (table, column), lower-cased, as `Schema.render(values=...)` takes them."""
    out: dict[tuple[str, str], list[Any]] = {}
    for item in retrieved:
        out.setdefault((item["table"].lower(), item["column"].lower()), []).append(item["value"])
    return out
