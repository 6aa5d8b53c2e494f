"""Database schemas from SQLite files, Spider's tables.json or DDL text, rendered for prompts.

A `Schema` keeps tables in database order, each with its columns (original spelling, declared
type, optional sample values), primary key and foreign keys. `render()` writes it as CREATE
TABLE statements, one compact line per table, or M-Schema blocks; the output is deterministic.
Values retrieved for a question (`sqlft.values`) are shown beside their columns in every style.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from sqlft.data.records import DataError, Example

SAMPLE_CHARS = 30  # longer sample strings are cut to this many characters
RETRIEVED_CHARS = 100  # a retrieved value is what the SQL must spell: cut only very long ones
STYLES = ("ddl", "compact", "mschema")
SAMPLE_TIMEOUT_S = 2.0  # per column; a column whose query runs longer gets no samples
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ONE_LINE = str.maketrans("\n\r\t", "   ")
Values = dict[tuple[str, str], list[Any]]  # (table, column) lower-cased -> values shown first


@dataclass
class Column:
    name: str
    type: str = ""
    samples: list[Any] = field(default_factory=list)


@dataclass
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        """The column called `name`, compared case-insensitively as SQLite does."""
        return next((c for c in self.columns if c.name.lower() == name.lower()), None)


@dataclass
class Schema:
    tables: list[Table] = field(default_factory=list)
    db_id: str | None = None

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name.lower() == name.lower()), None)

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]

    # ----------------------------------------------------------------- constructors

    @classmethod
    def from_sqlite(
        cls, path_or_connection: str | Path | sqlite3.Connection, sample_values: int = 0
    ) -> Schema:
        """Read tables, columns, keys (PRAGMA) from a database file, opened read-only, or a connection."""
        if isinstance(path_or_connection, sqlite3.Connection):
            return _from_connection(path_or_connection, None, sample_values)
        path = Path(path_or_connection)
        if not path.is_file():
            raise DataError(f"{path}: no such SQLite file. Fix: check the path or the db_id")
        conn = _open_readonly(path)
        try:
            return _from_connection(conn, path.stem, sample_values)
        finally:
            conn.close()

    @classmethod
    def from_spider(
        cls, entry: dict[str, Any], db_path: str | Path | None = None, sample_values: int = 0
    ) -> Schema:
        """Build from one tables.json entry (original names); samples come from `db_path` if given."""
        tables = [Table(name) for name in entry["table_names_original"]]
        columns: list[tuple[Table, Column] | None] = []
        for (table_index, name), type_ in zip(
            entry["column_names_original"], entry["column_types"], strict=True
        ):
            if table_index < 0:  # the "*" pseudo-column
                columns.append(None)
                continue
            column = Column(name, type_)
            tables[table_index].columns.append(column)
            columns.append((tables[table_index], column))
        for key in entry.get("primary_keys", []):
            for index in key if isinstance(key, list) else [key]:
                table, column = columns[index]
                table.primary_key.append(column.name)
        for source, target in entry.get("foreign_keys", []):
            (table, column), (ref_table, ref_column) = columns[source], columns[target]
            table.foreign_keys.append(ForeignKey((column.name,), ref_table.name, (ref_column.name,)))
        schema = cls(tables, entry.get("db_id"))
        if sample_values and db_path is not None and Path(db_path).is_file():
            conn = _open_readonly(Path(db_path))
            try:
                schema.add_samples(conn, sample_values)
            finally:
                conn.close()
        return schema

    @classmethod
    def from_ddl(
        cls,
        text: str,
        dialect: str | None = None,
        connection: sqlite3.Connection | None = None,
        sample_values: int = 0,
    ) -> Schema:
        """Parse the CREATE TABLE statements of `text` (other statements are ignored) with sqlglot.

        `connection`, a database built from the same text, supplies the sample values.
        """
        try:
            statements = sqlglot.parse(text, read=dialect)
        except sqlglot.errors.SqlglotError as error:
            raise DataError(
                f"schema DDL does not parse as {dialect or 'generic'} SQL: {error}. "
                "Fix: pass the right dialect= or correct the CREATE TABLE text"
            ) from error
        schema = cls([_table_from_create(s, dialect) for s in statements if _is_create_table(s)])
        if sample_values and connection is not None:
            schema.add_samples(connection, sample_values)
        return schema

    def add_samples(self, conn: sqlite3.Connection, k: int) -> None:
        """Fill each column's samples with its `k` most frequent distinct non-null values."""
        for table in self.tables:
            for column in table.columns:
                column.samples = _sample_values(conn, table.name, column.name, k)

    # ----------------------------------------------------------------- rendering

    def render(self, style: str = "ddl", values: Values | None = None) -> str:
        """Render for a prompt.

        `ddl`: one CREATE TABLE per table, columns with types, then PRIMARY KEY and FOREIGN KEY
        clauses; sample values follow a column as a comment (`Name text, -- e.g. 'France', 'USA'`).

        `compact`: one line per table, `table(col type, ...)`; a primary-key column is marked
        with `*` after its name, a foreign key with `-> other_table.column` after its type, and
        sample values with `[e.g. 'France', 'USA']`, as in
        `singer(Singer_ID* int, Name text [e.g. 'Joe'], Stadium_ID int -> stadium.Stadium_ID)`.

        `mschema`: XiYan-SQL's M-Schema (Gao et al. 2024, arXiv:2411.08599; the format of
        github.com/XGenerationLab/M-Schema) with ASCII brackets: a `[DB_ID]` line, a
        `# Table: name` block per table holding one `(column:TYPE, Primary Key, Examples: [...])`
        line per column, then `[Foreign keys]` as `table.column=other.column` lines.

        `values` maps (table, column), lower-cased, to values retrieved for the question: they come
        first among the column's examples in every style. Names that are not plain identifiers or
        are SQL keywords are double-quoted in all styles.
        """
        values = values or {}
        if style == "ddl":
            return "\n\n".join(_render_ddl(t, values) for t in self.tables)
        if style == "compact":
            return "\n".join(_render_compact(t, values) for t in self.tables)
        if style == "mschema":
            return _render_mschema(self, values)
        raise ValueError(f"unknown schema style {style!r}: use one of {', '.join(STYLES)}")


class SchemaStore:
    """Finds the schema of an example: inline context, else Spider tables.json, else the SQLite file.

    Schemas of databases are cached per db_id, those of inline contexts per context text.
    """

    def __init__(
        self,
        db_dir: str | Path | None = None,
        tables_json: str | Path | None = None,
        sample_values: int = 0,
        context_cache: int = 1024,
    ):
        self.db_dir = Path(db_dir) if db_dir is not None else None
        self.tables_json = Path(tables_json) if tables_json is not None else None
        self.sample_values = sample_values
        self._entries: dict[str, dict] | None = None
        self._by_db: dict[str, Schema] = {}
        self._by_context: OrderedDict[str, Schema] = OrderedDict()
        self._context_cache = context_cache

    def for_example(self, example: Example) -> Schema:
        if example.context:
            return self._for_context(example.context, example.db_id)
        if not example.db_id:
            raise DataError(
                f"{example.source} example {example.question[:60]!r} has neither db_id nor context. "
                "Fix: load it with a loader that sets one of them"
            )
        return self.for_db(example.db_id)

    def for_db(self, db_id: str) -> Schema:
        if db_id not in self._by_db:
            self._by_db[db_id] = self._load_db(db_id)
        return self._by_db[db_id]

    def db_path(self, db_id: str) -> Path | None:
        return self.db_dir / db_id / f"{db_id}.sqlite" if self.db_dir is not None else None

    def _load_db(self, db_id: str) -> Schema:
        entry = self._spider_entries().get(db_id)
        db_path = self.db_path(db_id)
        if entry is not None:
            return Schema.from_spider(entry, db_path, self.sample_values)
        if db_path is not None and db_path.is_file():
            return Schema.from_sqlite(db_path, self.sample_values)
        looked = [str(p) for p in (self.tables_json, db_path) if p is not None] or ["nowhere"]
        raise DataError(
            f"no schema for db_id {db_id!r}: looked in {' and '.join(looked)}. "
            "Fix: pass tables_json= and/or db_dir= (holding <db_id>/<db_id>.sqlite) that cover it"
        )

    def _spider_entries(self) -> dict[str, dict]:
        if self._entries is None:
            self._entries = load_tables_json(self.tables_json) if self.tables_json is not None else {}
        return self._entries

    def _for_context(self, context: str, db_id: str | None) -> Schema:
        if context in self._by_context:
            self._by_context.move_to_end(context)
            return self._by_context[context]
        connection = None
        if self.sample_values:
            from sqlft.sqlexec import connect_memory

            connection = connect_memory(context)
        try:
            schema = Schema.from_ddl(context, "sqlite", connection, self.sample_values)
        finally:
            if connection is not None:
                connection.close()
        schema.db_id = db_id
        self._by_context[context] = schema
        if len(self._by_context) > self._context_cache:
            self._by_context.popitem(last=False)
        return schema


def load_tables_json(path: str | Path) -> dict[str, dict]:
    """Spider's tables.json as {db_id: entry}."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such tables.json. Fix: point tables_json= at the Spider release's file")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error}). Fix: use Spider's tables.json") from error
    return {entry["db_id"]: entry for entry in entries}


# --------------------------------------------------------------------- readers


def _open_readonly(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    conn.text_factory = lambda raw: raw.decode(errors="ignore")
    return conn


def _from_connection(conn: sqlite3.Connection, db_id: str | None, sample_values: int) -> Schema:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
    ).fetchall()
    try:
        tables = [_table_from_pragma(conn, name) for name, _ in rows]
    except sqlite3.DatabaseError as error:
        if "not authorized" not in str(error):
            raise
        # A locked-down connection (sqlft.sqlexec) refuses PRAGMA: read the stored DDL instead.
        tables = Schema.from_ddl(";\n".join(sql for _, sql in rows if sql), "sqlite").tables
    schema = Schema(tables, db_id)
    if sample_values:
        schema.add_samples(conn, sample_values)
    return schema


def _table_from_pragma(conn: sqlite3.Connection, name: str) -> Table:
    info = conn.execute(f"PRAGMA table_info({quote(name)})").fetchall()
    table = Table(name, [Column(row[1], row[2] or "") for row in info])
    table.primary_key = [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    groups: dict[int, list[tuple]] = {}
    for row in conn.execute(f"PRAGMA foreign_key_list({quote(name)})").fetchall():
        groups.setdefault(row[0], []).append(row)
    for fk_id in sorted(groups, reverse=True):  # SQLite lists foreign keys last-declared first
        rows = sorted(groups[fk_id], key=lambda r: r[1])
        ref_table = rows[0][2]
        ref_columns = [r[4] for r in rows]
        if any(c is None for c in ref_columns):  # REFERENCES t without columns: t's primary key
            ref_columns = _primary_key(conn, ref_table) or ref_columns
        table.foreign_keys.append(
            ForeignKey(tuple(r[3] for r in rows), ref_table, tuple(str(c) for c in ref_columns))
        )
    return table


def _primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    info = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    return [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]


def _is_create_table(statement: exp.Expression | None) -> bool:
    return (
        isinstance(statement, exp.Create)
        and str(statement.args.get("kind", "")).upper() == "TABLE"
        and isinstance(statement.this, exp.Schema)
    )


def _names(expressions: list[exp.Expression]) -> tuple[str, ...]:
    return tuple(
        e.name if isinstance(e, exp.Identifier) else e.find(exp.Identifier).name for e in expressions
    )


def _table_from_create(create: exp.Create, dialect: str | None) -> Table:
    table = Table(create.this.this.name)
    for item in create.this.expressions:
        if isinstance(item, exp.ColumnDef):
            kind = item.args.get("kind")
            table.columns.append(Column(item.name, kind.sql(dialect) if kind is not None else ""))
            for constraint in item.args.get("constraints") or []:
                if isinstance(constraint.kind, exp.PrimaryKeyColumnConstraint):
                    table.primary_key.append(item.name)
                elif isinstance(constraint.kind, exp.Reference):
                    ref = constraint.kind.this
                    table.foreign_keys.append(ForeignKey((item.name,), *_reference(ref)))
        elif isinstance(item, exp.PrimaryKey):
            table.primary_key.extend(_names(item.expressions))
        elif isinstance(item, exp.ForeignKey):
            ref = item.args["reference"].this
            table.foreign_keys.append(ForeignKey(_names(item.expressions), *_reference(ref)))
        elif isinstance(item, exp.Constraint):  # CONSTRAINT name PRIMARY KEY/FOREIGN KEY (...)
            for inner in item.expressions:
                if isinstance(inner, exp.PrimaryKey):
                    table.primary_key.extend(_names(inner.expressions))
                elif isinstance(inner, exp.ForeignKey):
                    ref = inner.args["reference"].this
                    table.foreign_keys.append(ForeignKey(_names(inner.expressions), *_reference(ref)))
    return table


def _reference(ref: exp.Expression) -> tuple[str, tuple[str, ...]]:
    if isinstance(ref, exp.Schema):
        return ref.this.name, _names(ref.expressions)
    return ref.name, ()


def _sample_values(conn: sqlite3.Connection, table: str, column: str, k: int) -> list[Any]:
    col, tab = quote(column), quote(table)
    query = (
        f"SELECT {col} FROM {tab} WHERE {col} IS NOT NULL GROUP BY {col} "
        f"ORDER BY COUNT(*) DESC, {col} LIMIT {int(k)}"
    )
    deadline = time.monotonic() + SAMPLE_TIMEOUT_S
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        return [row[0] for row in conn.execute(query).fetchall()]
    except sqlite3.Error:  # a timeout, a missing column: the schema is still usable without samples
        return []
    finally:
        conn.set_progress_handler(None, 0)


# --------------------------------------------------------------------- writers


@lru_cache(maxsize=4096)
def quote(name: str) -> str:
    """`name` as an identifier that SQLite and sqlglot read back unchanged: double-quoted if it must be."""
    if _PLAIN_NAME.fullmatch(name) and _reads_back(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _reads_back(name: str) -> bool:
    try:
        sqlite3.connect(":memory:").execute(f"CREATE TABLE {name} ({name} int)")
        parsed = sqlglot.parse_one(f"SELECT {name} FROM {name}", read="sqlite")
    except (sqlite3.Error, sqlglot.errors.SqlglotError):
        return False
    column, table = parsed.find(exp.Column), parsed.find(exp.Table)
    return column is not None and table is not None and column.name == name and table.name == name


def format_sample(value: Any, limit: int = SAMPLE_CHARS) -> str:
    if isinstance(value, bytes):
        value = value.decode(errors="ignore")
    if isinstance(value, str):
        text = value.translate(_ONE_LINE)  # keeps leading/trailing spaces: 'US' and 'US ' differ
        if len(text) > limit:
            text = text[:limit] + "..."
        return "'" + text.replace("'", "''") + "'"
    return repr(value)


def _examples(table: Table, column: Column, values: Values) -> str:
    """Retrieved values (cut at RETRIEVED_CHARS) then sample values, each shown once."""
    retrieved = values.get((table.name.lower(), column.name.lower()), [])
    shown = [format_sample(v, RETRIEVED_CHARS) for v in retrieved]
    shown += [format_sample(v) for v in column.samples]
    return ", ".join(dict.fromkeys(shown))


def _render_ddl(table: Table, values: Values) -> str:
    lines = [f"{quote(c.name)} {c.type}".rstrip() for c in table.columns]
    if table.primary_key:
        lines.append(f"PRIMARY KEY ({', '.join(quote(c) for c in table.primary_key)})")
    for fk in table.foreign_keys:
        ref = f" ({', '.join(quote(c) for c in fk.ref_columns)})" if fk.ref_columns else ""
        lines.append(
            f"FOREIGN KEY ({', '.join(quote(c) for c in fk.columns)}) REFERENCES {quote(fk.ref_table)}{ref}"
        )
    examples = [_examples(table, c, values) for c in table.columns]
    comments = [f" -- e.g. {e}" if e else "" for e in examples]
    comments += [""] * (len(lines) - len(comments))
    body = [
        f"  {line}{',' if i < len(lines) - 1 else ''}{comment}"
        for i, (line, comment) in enumerate(zip(lines, comments, strict=True))
    ]
    return f"CREATE TABLE {quote(table.name)} (\n" + "\n".join(body) + "\n);"


def _render_compact(table: Table, values: Values) -> str:
    keys = {c.lower() for c in table.primary_key}
    refs: dict[str, str] = {}
    for fk in table.foreign_keys:
        for i, column in enumerate(fk.columns):
            target = fk.ref_columns[i] if i < len(fk.ref_columns) else ""
            refs.setdefault(
                column.lower(), f"{quote(fk.ref_table)}.{quote(target)}" if target else quote(fk.ref_table)
            )
    parts = []
    for c in table.columns:
        part = quote(c.name) + ("*" if c.name.lower() in keys else "") + (f" {c.type}" if c.type else "")
        if c.name.lower() in refs:
            part += f" -> {refs[c.name.lower()]}"
        examples = _examples(table, c, values)
        if examples:
            part += f" [e.g. {examples}]"
        parts.append(part)
    return f"{quote(table.name)}({', '.join(parts)})"


def _render_mschema(schema: Schema, values: Values) -> str:
    lines = [f"[DB_ID] {schema.db_id}"] if schema.db_id else []
    lines.append("[Schema]")
    for table in schema.tables:
        keys = {c.lower() for c in table.primary_key}
        lines += [f"# Table: {quote(table.name)}", "["]
        for c in table.columns:
            fields = [f"{quote(c.name)}:{c.type.upper() or 'ANY'}"]
            if c.name.lower() in keys:
                fields.append("Primary Key")
            examples = _examples(table, c, values)
            if examples:
                fields.append(f"Examples: [{examples}]")
            lines.append(f"({', '.join(fields)}),")
        lines.append("]")
    links = []
    for t in schema.tables:
        for fk in t.foreign_keys:
            for i, column in enumerate(fk.columns):  # REFERENCES t without columns: t's key, unnamed
                target = f".{quote(fk.ref_columns[i])}" if i < len(fk.ref_columns) else ""
                links.append(f"{quote(t.name)}.{quote(column)}={quote(fk.ref_table)}{target}")
    if links:
        lines += ["[Foreign keys]", *links]
    return "\n".join(lines)
