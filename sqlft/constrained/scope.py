"""The query's scope as a schema-constrained answer is written: SQLite's keywords and functions, a
schema's names, and per query level the tables of its FROM, its aliases and what the next word is."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from sqlft.schema import Schema

ANY = "*"  # a table whose columns are not known (a subquery, a CTE): any column of the schema
DERIVED = "\x01"  # starts a FROM subquery's stand-in table: its output columns, joined by NUL
# a select-list item SQLite names: `expr AS name` or `expr name`, a column or `T.column`, `*` or `T.*`
_ITEM_ALIAS = re.compile(r"(?s).*(?:\bas\s+|[\w$)\]\"'`]\s+|\)\s*)([a-z_$][\w$]*)")
_ITEM_COLUMN = re.compile(r"(?:(?:distinct|all)\s+)?(?:([\w$]+)\s*\.\s*)?([a-z_$][\w$]*|\*)")
CLAUSE_ENDS = ("where", "group", "order", "having", "limit", "union", "intersect", "except")
AFTER_TABLE_WORDS = (*CLAUSE_ENDS, *"join inner left right cross natural full outer using window".split())
# the keywords that may follow a table in a FROM (`FROM t OR` is no SQL: the model meant ORDER)
AFTER_TABLE_KEYWORDS = frozenset((*AFTER_TABLE_WORDS, "as", "on", "not", "indexed"))
# keywords that end a value: after them, as after a column or a literal, no name or literal follows
OPERAND_KEYWORDS = frozenset(
    "null true false current_date current_time current_timestamp end asc desc".split()
)


# SQLite's keywords (https://sqlite.org/lang_keywords.html) that a query may hold outside a name
# position, and TRUE/FALSE. Any other word standing bare in an expression is a column to SQLite,
# even one another dialect reserves (`date`, `number`, `text`, `key`): "no such column" if none is.
QUERY_KEYWORDS = frozenset(
    """all and as asc between by case cast collate cross current current_date current_time
    current_timestamp desc distinct else end escape except exclude exists false filter first
    following from full glob group groups having in indexed inner intersect is isnull join last
    left like limit match materialized natural no not notnull null nulls offset on or order others
    outer over partition preceding range recursive regexp right row rows select then ties true
    unbounded union using values when where window with""".split()
)


# a window's frame keywords (`OVER (PARTITION BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)`)
# stand only inside a parenthesis: elsewhere `GROUPS BY` is GROUP misspelt, half of the syntax
# errors of bench_peers' constrained answers on held-out databases
WINDOW_KEYWORDS = frozenset(
    "current exclude following groups no others partition preceding range row rows ties unbounded".split()
)
# keywords that begin a value or a query: never straight after a value (`FROM t GROIN SELECT`)
VALUE_STARTS = frozenset(
    """all case cast current_date current_time current_timestamp distinct exists false null
    recursive select true values with""".split()
)


def sql_keywords() -> frozenset[str]:
    """The keywords a query may write where a name could stand (lower case)."""
    return QUERY_KEYWORDS


@lru_cache(maxsize=16)
def keywords_where(
    in_query: bool, after_value: bool, in_call: bool, after_alias: bool = False
) -> frozenset[str]:
    """The keywords that may stand at a query's own level or in a parenthesis (`in_query`), after a
    value or not, in a function's arguments or not (see WINDOW_KEYWORDS and VALUE_STARTS), and
    after a table's alias in a FROM, only what may follow a table there (`FROM t ORT FROM` is no SQL)."""
    if after_alias:
        return AFTER_TABLE_KEYWORDS - {"as"}
    words = QUERY_KEYWORDS - WINDOW_KEYWORDS if in_query else QUERY_KEYWORDS
    words = words - VALUE_STARTS if after_value else words
    return words - {"select", "with"} if in_call else words  # `time(SELECT ...)` is no SQL


@lru_cache(maxsize=1)
def sql_functions() -> frozenset[str]:
    """The functions the SQLite that runs the queries knows."""
    with sqlite3.connect(":memory:") as conn:
        return frozenset(row[0].lower() for row in conn.execute("PRAGMA function_list"))


@lru_cache(maxsize=1)
def free_words() -> frozenset[str]:
    """Words allowed in any expression position: keywords and functions."""
    return sql_keywords() | sql_functions()


class SchemaNames:
    """A schema's names in lower case: tables and their columns."""

    def __init__(self, schema: Schema):
        self.columns = {t.name.lower(): frozenset(c.name.lower() for c in t.columns) for t in schema.tables}
        self.tables = frozenset(self.columns)
        self.all_columns = frozenset().union(*self.columns.values())

    def columns_of(self, table: str) -> frozenset[str]:
        if table.startswith(DERIVED):  # a subquery that outputs no nameable column has none
            return frozenset(table[1:].split("\0")) if table != DERIVED else frozenset()
        return self.columns.get(table, self.all_columns)


def derived(columns: frozenset[str]) -> str:
    """The stand-in table of a FROM subquery whose output columns are `columns`."""
    return DERIVED + "\0".join(sorted(columns))


def item_output(item: str) -> str | None:
    """What a select-list item (lower case) makes its query output: a column name, `*` or `t.*`
    (resolved once the FROM is known); None for an expression SQLite names by its text."""
    item = item.strip()
    if match := _ITEM_COLUMN.fullmatch(item):
        qualifier, name = match.groups()
        if name == "*":
            return f"{qualifier}.*" if qualifier else "*"
        return None if name in sql_keywords() and not qualifier else name
    match = _ITEM_ALIAS.fullmatch(item)
    return match.group(1) if match and match.group(1) not in sql_keywords() else None


@dataclass(frozen=True)
class Frame:
    """One query level, or a parenthesis inside one: the tables in scope and what the next word is."""

    tables: tuple[str, ...] = ()  # tables in scope (ANY for subqueries and CTEs)
    has_from: bool = False
    clause: str = "select"  # select | from | other | with
    expect: str = "column"  # column | table | after_table | alias | cte | qualified | call
    qualified: str = ""  # the table whose column follows `X.`
    forward: str = ""  # the qualifier of `X.` when used before the FROM that must define or name it
    query: bool = True  # False: a parenthesis inside an expression (function arguments, IN lists)
    derived: bool = False  # opened right after FROM/JOIN: a subquery used as a table
    bare: tuple[str, ...] = ()  # columns named without a qualifier before this query's FROM
    forward_aliases: tuple[str, ...] = ()  # qualifiers used before this query's FROM defines them
    # what this query's FROM lets a qualifier name: (alias, table), a table not aliased under its
    # own name (SQLite hides a table's name once it has an alias); seen by nested queries only
    aliases: tuple[tuple[str, str], ...] = ()
    last: str = ""  # the name the last table of the FROM was written as (its alias may follow)
    pending: tuple[tuple[str, str], ...] = ()  # (qualifier, column) read before this query's FROM
    items: tuple[str, ...] = ()  # this query's select-list items so far, lower case without spaces
    operand: bool = False  # a value was just written: an operator, a keyword, `,` or `)` comes next
    outputs: tuple[str | None, ...] = ()  # per select-list item ended: `item_output`
    compound: bool = False  # UNION, INTERSECT or EXCEPT followed: its outputs are the first SELECT's
    call: bool = False  # a function's parenthesis: its arguments


@dataclass(frozen=True)
class Scope:
    """The query's names so far: frames (innermost last; each query's aliases and the columns it
    read through them before its FROM, checked when the FROM is complete), CTEs and select-list
    aliases."""

    frames: tuple[Frame, ...] = (Frame(),)
    ctes: frozenset[str] = frozenset()
    select_aliases: frozenset[str] = frozenset()

    @property
    def top(self) -> Frame:
        return self.frames[-1]

    def after_alias(self) -> bool:
        """Whether a table's alias in a FROM was just written: a keyword, `,` or `)` follows."""
        top = self.top
        return top.clause == "from" and top.operand and top.expect == "column"

    def keywords(self) -> frozenset[str]:
        """The keywords that may stand next (`keywords_where`); a CTE's `)` is followed by its query."""
        top = self.top
        after_value = top.operand and top.clause != "with"
        return keywords_where(top.query, after_value, top.call, self.after_alias())

    def _set(self, **changes: Any) -> Scope:
        return replace(self, frames=(*self.frames[:-1], replace(self.top, **changes)))

    def _query(self) -> int:
        """Index of the innermost query frame."""
        return next((i for i in range(len(self.frames) - 1, -1, -1) if self.frames[i].query), 0)

    def _note(self, **extra: tuple) -> Scope:
        """Add to the innermost query frame's `bare`, `forward_aliases` or `pending`."""
        i = self._query()
        frame = self.frames[i]
        frame = replace(frame, **{key: (*getattr(frame, key), *value) for key, value in extra.items()})
        return replace(self, frames=(*self.frames[:i], frame, *self.frames[i + 1 :]))

    def _visible(self, upto: int | None = None) -> tuple[Frame, ...]:
        """The frames whose FROMs the frame `upto` (default: the innermost) sees: up to the nearest
        subquery that stands as a table in a FROM, which cannot see the query around it."""
        frames = self.frames if upto is None else self.frames[: upto + 1]
        start = next((i for i in range(len(frames) - 1, -1, -1) if frames[i].derived and frames[i].query), 0)
        return frames[start:]

    def _lookup(self, name: str, upto: int | None = None) -> str | None:
        """The table `name` qualifies in the FROMs of the query `upto` (default: the innermost
        frame) and the queries around it, innermost first; a CTE's is ANY; None if none."""
        for frame in reversed(self._visible(upto)):
            for alias, table in reversed(frame.aliases):
                if alias == name:
                    return table
        return ANY if name in self.ctes else None

    def before_from(self) -> bool:
        """Whether the innermost query has no FROM yet: its select list may use aliases defined later."""
        return not self.frames[self._query()].has_from

    def from_complete(self, names: SchemaNames) -> bool:
        """Whether the innermost query's FROM, if it is complete here, provides what the select
        list read before it: every qualifier it used (an alias or a table not aliased, of this
        query or one around it) with the columns read through it, and a table in scope holding
        each column it named bare. A query that named anything must have a FROM to end (a select
        list cut off before any FROM fails on its first name). Asked at WHERE, GROUP BY, ...,
        UNION, `)`, `;` and the end of the answer: the conditions of ON clauses are inside the FROM,
        more JOINs may follow them."""
        i = self._query()
        query = self.frames[i]
        if not query.has_from:
            return not (query.bare or query.forward_aliases)
        if any(self._lookup(alias, i) is None for alias in query.forward_aliases):
            return False
        for alias, column in query.pending:
            table = self._lookup(alias, i)
            if table is None or (table != ANY and column not in names.columns_of(table)):
                return False
        tables = [t for frame in self._visible(i) for t in frame.tables]
        if ANY in tables:
            return True
        columns = frozenset().union(*(names.columns_of(t) for t in tables)) | self.select_aliases
        return all(column in columns for column in query.bare)

    def resolve(self, name: str, names: SchemaNames) -> str | None:
        """The table behind a qualifier: an alias or a table not aliased of the FROMs in scope, a
        CTE (ANY), or while the innermost query has no FROM yet any table of the schema (which
        its FROM must then name); None if there is none."""
        table = self._lookup(name)
        if table is None and self.before_from() and name in names.tables:
            return name
        return table

    def columns(self, names: SchemaNames) -> frozenset[str]:
        """Columns a bare name may take: those of the tables of this and enclosing queries (the
        whole schema's before the FROM is written), and select-list aliases."""
        if self.before_from():
            return names.all_columns | self.select_aliases
        tables = [t for frame in self._visible() for t in frame.tables]
        if ANY in tables:
            return names.all_columns | self.select_aliases
        return frozenset().union(*(names.columns_of(t) for t in tables)) | self.select_aliases

    def qualified_columns(self, names: SchemaNames) -> frozenset[str]:
        """The columns that may follow `X.`: its table's; for a subquery or CTE any; for an alias not
        defined yet (`T1.` before the FROM), those of a table holding every column read through it
        so far (`MEN1.Make, MEN1.Cylinders` would need a table that no schema has)."""
        table = self.top.qualified
        if table != ANY:
            return names.columns_of(table)
        anything = self.columns(names) | names.all_columns
        forward = self.top.forward
        read = {column for alias, column in self.frames[self._query()].pending if alias == forward}
        if not forward or not read or self.ctes:
            return anything
        fits = [names.columns_of(t) for t in names.tables if read <= names.columns_of(t)]
        return frozenset().union(*fits) if fits else anything

    def repeats(self, column: str) -> bool:
        """Whether `column` would stand again, bare, in the select list before the FROM (not in a
        function's arguments): a select list repeating itself until the answer is cut off, with
        no FROM, is how a small model fails on every name it wrote."""
        top = self.top
        return top.query and top.clause == "select" and column in top.bare

    def select_item(self, item: str) -> Scope | None:
        """A select-list item of the innermost query ended at a comma; None if the list has it
        already (`T1.id, T1.id, ...`, `max(x) AS a, max(x) AS a, ...`, `a, b, a`): a list
        repeating itself runs until the answer is cut off, before any FROM. The caller (`SqlState.step`)
        knows the comma stands in the select list."""
        top = self.top
        return None if item in top.items else self._set(items=(*top.items, item))

    def output(self, item: str) -> Scope:
        """A select-list item of the innermost query ended (at a comma or the clause after it)."""
        i = self._query()
        frame = self.frames[i]
        frame = replace(frame, outputs=(*frame.outputs, item_output(item)))
        return replace(self, frames=(*self.frames[:i], frame, *self.frames[i + 1 :]))

    def _derived(self, inner: Frame, names: SchemaNames) -> str:
        """The stand-in table of the FROM subquery `inner`: the columns its select list outputs;
        ANY where they are not known (a compound query, no FROM, a star over a subquery or CTE)."""
        if inner.compound or not inner.has_from:
            return ANY
        columns: set[str] = set()
        for output in inner.outputs:
            if output == "*":
                tables = list(inner.tables)
            elif output is not None and output.endswith(".*"):
                alias = output[:-2]
                tables = [next((t for a, t in reversed(inner.aliases) if a == alias), ANY)]
            else:
                columns |= {output} if output else set()
                continue
            if ANY in tables:
                return ANY
            columns |= set().union(*(names.columns_of(t) for t in tables))
        return derived(frozenset(columns))

    def qualifiers(self) -> frozenset[str]:
        """Qualifiers in scope, but not a subquery's that outputs no nameable column: `T.` is a dead end."""
        visible = self._visible()
        return frozenset(a for frame in visible for a, t in frame.aliases if t != DERIVED) | self.ctes

    # ---------------------------------------------------------------- events

    def keyword(self, word: str) -> Scope:
        top = self.top
        if word in ("select", "union", "intersect", "except"):  # a new query at this level
            return self._set(
                compound=top.compound or word != "select",
                outputs=(),
                query=True,
                tables=(),
                has_from=False,
                clause="select",
                expect="column",
                bare=(),
                forward_aliases=(),
                aliases=(),
                last="",
                pending=(),
                items=(),
                operand=False,
            )
        if word == "from":
            return self._set(has_from=True, clause="from", expect="table", operand=False)
        if word == "join":
            return self._set(clause="from", expect="table", operand=False)
        if word == "with":
            return self._set(clause="with", expect="cte", operand=False)
        if word == "as":
            return self._set(expect="column" if top.clause == "with" else "alias", operand=False)
        if word in ("where", "on", "using", "group", "order", "having", "limit"):
            return self._set(clause="other", expect="column", operand=False)
        return self.value(word in OPERAND_KEYWORDS)

    def table(self, name: str) -> Scope:
        """`name` (a table, a CTE, or ANY for a subquery) joins the FROM; it may be aliased next."""
        top, table = self.top, ANY if name in self.ctes else name
        aliases = top.aliases if name == ANY or name.startswith(DERIVED) else (*top.aliases, (name, table))
        return self._set(tables=(*top.tables, table), aliases=aliases, last=name, expect="after_table")

    def define(self, name: str, names: SchemaNames) -> Scope | None:
        """`name` defined as an alias (of the last table, of a select-list value) or a CTE; None when
        columns were read through it before that its table does not have."""
        top = self.top
        if top.clause == "with":
            return replace(self, ctes=self.ctes | {name})._set(expect="column", operand=True)
        if top.clause != "from" or not top.tables:
            return replace(self, select_aliases=self.select_aliases | {name})._set(
                expect="column", operand=True
            )
        table = top.tables[-1]
        read = [column for alias, column in top.pending if alias == name]
        if table != ANY and any(column not in names.columns_of(table) for column in read):
            return None
        aliases = top.aliases
        own = top.last != ANY and not top.last.startswith(DERIVED)  # a table's, not a subquery's
        if own and aliases and aliases[-1] == (top.last, table):  # its own name is hidden
            aliases = aliases[:-1]
        return self._set(aliases=(*aliases, (name, table)), last="", expect="column", operand=True)

    def qualify(self, table: str, forward: str = "") -> Scope:
        scope = self._note(forward_aliases=(forward,)) if forward else self
        return scope._set(expect="qualified", qualified=table, forward=forward)

    def read(self, column: str) -> Scope:
        """A qualified column was written; remember it if its alias is still to be defined."""
        forward = self.top.forward
        scope = self._note(pending=((forward, column),)) if forward else self
        return scope._set(expect="column", qualified="", forward="", operand=True)

    def value(self, operand: bool = True) -> Scope:
        """A value (`operand`: a column, a literal, a closed parenthesis) or an operator was written."""
        top = self.top
        if top.expect == "column" and top.operand == operand:
            return self
        return self._set(expect="column", qualified="", forward="", operand=operand)

    def comma(self) -> Scope:
        clause = self.top.clause
        return (
            self._set(expect={"from": "table", "with": "cte"}[clause])
            if clause in ("from", "with")
            else self.value(False)
        )

    def open(self) -> Scope:
        top = self.top
        frame = Frame(
            clause=top.clause, query=False, derived=top.expect == "table", call=top.expect == "call"
        )
        return replace(self, frames=(*self.frames, frame))

    def close(self, names: SchemaNames) -> Scope:
        if len(self.frames) == 1:
            return self.value(False)
        inner, scope = self.top, replace(self, frames=self.frames[:-1])
        return scope.table(self._derived(inner, names)) if inner.derived else scope.value()
