"""Schema-faithful decoding: the model may only name tables and columns the prompt's schema defines.

A `SqlState` reads the generated text one character at a time, as a SQL lexer would (SQLite's
own keywords, `QUERY_KEYWORDS`, are the only reserved words), and keeps the query's scope: the
tables of each FROM, each query's aliases (seen by the queries nested in it, not by others), CTE
names and select-list aliases. A word the model writes must fit its position: after FROM/JOIN a
table (or CTE), in a column position a column of the tables in scope (`T1.name` resolved through
the alias; an aliased table's own name is hidden), a keyword, a SQLite function followed by its
`(`, or an alias; aliases (up to 48 characters) and literals are free. Names written before the
FROM are checked when the FROM is complete, and a query that wrote any may not end without one; a
select list may not repeat an item (how a small model's list loops until it is cut off). After a
value (a column, a literal, `)`, NULL, DESC) only an operator, a keyword, `,` or `)` may follow, and
a table's alias is a word or a few letters and digits, not run into a keyword (`T1JOIN`) nor a
keyword misspelt (`ORDERING BY`): the fine-tuned model's answers looped through such holes. A name may
only be started if some name allowed there completes it, so no state is a dead end. Before the
statement starts (prose, a code fence) and after it ends (`;`, closing fence) nothing is checked.
Everything is compared case-insensitively, as SQLite does.

Each step, a row's state checks the model's best-ranked tokens in order (as PICARD does): the
first one accepted is the constrained argmax, so greedy decoding needs no vocabulary mask.
Only when none of them is accepted is the whole vocabulary walked: `VocabTrie` holds it as a
character trie, and the walk follows only the branches the state accepts (masks are cached per
state; rows of one schema reach the same states). `Constraint` keeps one state per decoding row
and is what `sqlft.generate` calls.
"""

from __future__ import annotations

import re
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlft.schema import Schema

ANY = "*"  # a table whose columns are not known (a subquery, a CTE): any column of the schema
# not string_end nor block_end: the next character may close the literal or comment, and SQL follows
FREE_MODES = ("pre", "string", "line_comment", "block_comment", "done")
STARTS = ("select", "with")
CLAUSE_ENDS = ("where", "group", "order", "having", "limit", "union", "intersect", "except")
_ALIAS_SHAPE = re.compile(r"[a-z]{1,3}[0-9]{0,2}")  # one name, not a query: T1, s, sc2, T10
# a table's alias in a FROM: a word, or a few letters and digits (`T1`), not one run into a keyword
# (`T1JOIN`, `T2ONTR`) nor a keyword misspelt (`ORDERING`, `WHEREMake`, `GROUPING`)
_TABLE_ALIAS_SHAPE = re.compile(r"[a-z_]{1,12}|[a-z]{1,3}[0-9]{1,2}")
_AFTER_TABLE_WORDS = (*CLAUSE_ENDS, *"join inner left right cross natural full outer using window".split())
# keywords that end a value: after them, as after a column or a literal, no name or literal follows
OPERAND_KEYWORDS = frozenset(
    "null true false current_date current_time current_timestamp end asc desc".split()
)
FREE_NAME_LENGTH = 48  # the longest alias or CTE name: a run-on `Total_Song_Song_...` stops here
CANDIDATES = 48  # the model's best tokens checked one by one before the whole vocabulary is walked


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


def sql_keywords() -> frozenset[str]:
    """The keywords a query may write where a name could stand (lower case)."""
    return QUERY_KEYWORDS


@lru_cache(maxsize=1)
def sql_functions() -> frozenset[str]:
    """The functions the SQLite that runs the queries knows."""
    with sqlite3.connect(":memory:") as conn:
        return frozenset(row[0].lower() for row in conn.execute("PRAGMA function_list"))


@lru_cache(maxsize=1)
def free_words() -> frozenset[str]:
    """Words allowed in any expression position: keywords and functions."""
    return sql_keywords() | sql_functions()


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


@lru_cache(maxsize=256)
def _prefixes(words: frozenset[str]) -> frozenset[str]:
    return frozenset(w[:i] for w in words for i in range(1, len(w) + 1))


class SchemaNames:
    """A schema's names in lower case: tables and their columns."""

    def __init__(self, schema: Schema):
        self.columns = {t.name.lower(): frozenset(c.name.lower() for c in t.columns) for t in schema.tables}
        self.tables = frozenset(self.columns)
        self.all_columns = frozenset().union(*self.columns.values())

    def columns_of(self, table: str) -> frozenset[str]:
        return self.columns.get(table, self.all_columns)


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

    def _lookup(self, name: str, upto: int | None = None) -> str | None:
        """The table `name` qualifies in the FROMs of the query `upto` (default: the innermost
        frame) and the queries around it, innermost first; a CTE's is ANY; None if none."""
        frames = self.frames if upto is None else self.frames[: upto + 1]
        for frame in reversed(frames):
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
        tables = [t for frame in self.frames[: i + 1] for t in frame.tables]
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
        tables = [t for frame in self.frames for t in frame.tables]
        if ANY in tables:
            return names.all_columns | self.select_aliases
        return frozenset().union(*(names.columns_of(t) for t in tables)) | self.select_aliases

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

    def qualifiers(self) -> frozenset[str]:
        return frozenset(a for frame in self.frames for a, _ in frame.aliases) | self.ctes

    # ---------------------------------------------------------------- events

    def keyword(self, word: str) -> Scope:
        top = self.top
        if word in ("select", "union", "intersect", "except"):  # a new query at this level
            return self._set(
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
        aliases = top.aliases if name == ANY else (*top.aliases, (name, table))
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
        if top.last != ANY and aliases and aliases[-1] == (top.last, table):  # its own name is hidden
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
        frame = Frame(clause=top.clause, query=False, derived=top.expect == "table")
        return replace(self, frames=(*self.frames, frame))

    def close(self) -> Scope:
        if len(self.frames) == 1:
            return self.value(False)
        inner, scope = self.top, replace(self, frames=self.frames[:-1])
        return scope.table(ANY) if inner.derived else scope.value()


@dataclass(frozen=True, eq=False)
class SqlState:
    """Where the generated text stands: lexer mode, the name being written, and the scope.

    `step(ch)` is the state after one more character, or None if that character makes the text
    name something the schema does not have (or start a name that no allowed name starts with).
    """

    names: SchemaNames
    mode: str = "pre"  # pre sql word number qident qident_end string string_end dash slash comments done
    buf: str = ""  # pre: the current line; word, qident: the name so far
    quote: str = ""  # what closes the string or quoted name
    scope: Scope = Scope()
    item: str = ""  # the select-list item being written (lower case), see `Scope.select_item`

    def _key(self) -> tuple:
        return (id(self.names), self.mode, self.buf, self.quote, self.scope, self.item)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SqlState) and self._key() == other._key()

    @property
    def free(self) -> bool:
        """Whether every continuation is allowed (prose before the query, a literal, a comment, the end)."""
        return self.mode in FREE_MODES

    def feed(self, text: str) -> SqlState | None:
        state: SqlState | None = self
        for ch in text:
            state = state.step(ch)
            if state is None:
                return None
        return state

    def can_end(self) -> bool:
        """Whether the answer may stop here: no name left half written, and the FROM provides
        the names the select list used."""
        after = self.step("\n")
        if after is None or after.free:
            return after is not None
        return after.scope.top.expect != "call" and after.scope.from_complete(self.names)

    def step(self, ch: str) -> SqlState | None:
        after = self._read(ch)
        if after is None or after.mode in ("pre", "done"):
            return after
        scope = after.scope
        if scope.frames[scope._query()].clause != "select":  # not in a select list
            return replace(after, item="") if after.item else after
        if ch == "," and after.mode == "sql" and scope.top.query:  # the comma ended an item
            scope = scope.select_item("".join(after.item.split()))
            return None if scope is None else replace(after, scope=scope, item="")
        return replace(after, item=after.item + ch.lower())

    def _read(self, ch: str) -> SqlState | None:
        mode = self.mode
        if mode == "done":
            return self
        if mode == "pre":
            return self._pre(ch)
        if mode == "word":
            if _is_word_char(ch):
                return self._name(self.buf + ch.lower())
            return self._after_name(ch)
        if mode == "qident":
            if ch != self.quote:
                return self._name(self.buf + ch.lower(), quoted=True)
            if not self.buf and ch == "`":  # a closing code fence, not an empty quoted name
                return replace(self, mode="done")
            if all(self._complete(self.buf, dot, True) is None for dot in (False, True)):
                return None  # closing a name that nothing allows here would leave no way on
            return replace(self, mode="qident_end")
        if mode == "qident_end":
            if ch == self.quote and ch != "]":  # a doubled quote inside the name
                return self._name(self.buf + ch, quoted=True)
            return self._after_name(ch, quoted=True)
        if mode == "number":
            return self if _is_word_char(ch) or ch == "." else self._outside(ch)
        if mode == "string":
            return replace(self, mode="string_end") if ch == self.quote else self
        if mode == "string_end":
            return replace(self, mode="string") if ch == self.quote else self._outside(ch)
        if mode == "line_comment":
            return replace(self, mode="sql") if ch == "\n" else self
        if mode == "block_comment":
            return replace(self, mode="block_end") if ch == "*" else self
        if mode == "block_end":
            return replace(self, mode="sql" if ch == "/" else "block_comment")
        if (mode, ch) in (("dash", "-"), ("slash", "*")):
            return replace(self, mode="line_comment" if ch == "-" else "block_comment")
        if mode in ("dash", "slash"):
            return self._outside(ch, operand=False)
        return self._sql(ch)

    def _outside(self, ch: str, operand: bool = True) -> SqlState | None:
        """A literal (`operand`) or an operator (`-`, `/`) ended; `ch` is read as plain SQL."""
        return replace(self, mode="sql", quote="", scope=self.scope.value(operand))._sql(ch)

    def _pre(self, ch: str) -> SqlState | None:
        """Before the query, which starts with SELECT or WITH opening the text, a line or code (a
        backtick), or after a colon."""
        if _is_word_char(ch):
            return replace(self, buf=self.buf + ch.lower())
        if (word := self.buf.lstrip()) in STARTS:
            return replace(self, mode="sql", buf="", scope=self.scope.keyword(word))._sql(ch)
        return replace(self, buf="" if ch in "\n:`" else self.buf + ch)

    def _sql(self, ch: str) -> SqlState | None:
        """A character outside any name, literal or comment."""
        top = self.scope.top
        if top.expect == "call" and ch != "(" and not ch.isspace():
            return None  # a function's name stands alone: SQLite reads it as a column
        if top.operand and top.expect == "column" and (ch.isdigit() or ch in "'\"`[("):
            return None  # a literal, a quoted name or a parenthesis straight after a value
        if _is_word_char(ch):
            return replace(self, mode="number") if ch.isdigit() else self._name(ch.lower())
        if ch.isspace():
            return self
        if ch == '"' and self.scope.top.expect in ("table", "qualified"):  # FROM "order", T1."group"
            return replace(self, mode="qident", quote=ch)
        if ch in "'\"":  # SQLite reads "x" as a string when no column is called x: Spider does that
            return replace(self, mode="string", quote=ch)
        if ch in "`[":
            return replace(self, mode="qident", quote="]" if ch == "[" else "`")
        if ch == ";":
            return replace(self, mode="done") if self.scope.from_complete(self.names) else None
        if ch in "-/":
            return replace(self, mode="dash" if ch == "-" else "slash")
        scope = self.scope
        if ch == "(":
            scope = scope.open()
        elif ch == ")":
            if scope.top.query and not scope.from_complete(self.names):
                return None
            scope = scope.close()
        elif ch == ",":
            scope = scope.comma()
        elif ch == "." and scope.top.expect == "after_table":  # `FROM db.table`: SQLite has one database
            return None
        elif ch != ".":
            scope = scope.value(False)  # an operator: a value follows
        return replace(self, scope=scope)

    def _forward_alias(self, word: str) -> bool:
        """Whether `word` may be an alias used before the FROM that defines it (`SELECT T1.name FROM
        singer AS T1`): aliases are short, a few letters and digits."""
        return (
            self.scope.before_from()
            and self.scope.top.expect == "column"
            and not self.scope.top.operand
            and _ALIAS_SHAPE.fullmatch(word) is not None
        )

    def _name(self, buf: str, quoted: bool = False) -> SqlState | None:
        allowed = _allowed_prefixes(self.names, self.scope, quoted)
        if allowed is None and (len(buf) > FREE_NAME_LENGTH or not quoted and not self._alias_prefix(buf)):
            return None
        if allowed is not None and buf not in allowed and not self._forward_alias(buf):
            return None
        return replace(self, mode="qident" if quoted else "word", buf=buf)

    def _alias_prefix(self, buf: str) -> bool:
        """Whether a free name may begin with `buf`: a table's alias must have its shape
        (`_table_alias_prefix`), and one no character may extend (`T22`) must stand complete
        here, or it is a dead end."""
        names, scope = self.names, self.scope
        if not _table_alias_prefix(names, scope, buf):
            return False
        if scope.top.clause != "from" or any(_table_alias_prefix(names, scope, buf + c) for c in "a0_"):
            return True
        return any(self._complete(buf, dot, False) is not None for dot in (False, True))

    def _after_name(self, ch: str, quoted: bool = False) -> SqlState | None:
        """The name is complete and `ch` follows it: check it, then read `ch`."""
        scope = self._complete(self.buf, ch == ".", quoted)
        if scope is None:
            return None
        item = "" if not quoted and self.buf in ("select", "distinct", "all") else self.item  # a list starts
        state = replace(self, mode="sql", buf="", quote="", scope=scope, item=item)
        return state if ch == "." and scope.top.expect == "qualified" else state._sql(ch)

    def _complete(self, word: str, qualifier: bool, quoted: bool) -> Scope | None:
        """The scope once `word` stands complete here; None if it cannot."""
        scope, names, expect = self.scope, self.names, self.scope.top.expect
        keyword = not quoted and word in sql_keywords()
        if expect == "table":
            return scope.table(word) if word in names.tables or word in scope.ctes else None
        if expect == "qualified":
            table = scope.top.qualified
            known = scope.columns(names) | names.all_columns if table == ANY else names.columns_of(table)
            return scope.read(word) if word in known else None
        if keyword and word in CLAUSE_ENDS and not scope.from_complete(names):
            return None
        if expect == "after_table" and keyword:  # `FROM t WHERE`, `FROM t AS x`, `FROM t JOIN`
            return scope.keyword(word)
        if expect in ("alias", "after_table", "cte"):
            return scope.define(word, names)
        if qualifier:  # before the FROM: the FROM must then define or name it (`from_complete`)
            if self._forward_alias(word):  # T1 may be an alias still to come, shadowing anything
                return scope.qualify(ANY, forward=word)
            table = scope.resolve(word, names)
            return (
                None if table is None else scope.qualify(table, forward=word if scope.before_from() else "")
            )
        if keyword:
            return scope.keyword(word)
        if word in scope.select_aliases:
            return scope.value()
        if word in sql_functions():  # a call, unless a column in scope has that name (`date`)
            # a column in scope of that name may be followed by an operator, the call by its `(`
            return scope.value(False) if word in scope.columns(names) else scope._set(expect="call")
        if word in scope.columns(names):  # before the FROM: checked once the FROM is complete
            if scope.before_from() and scope.repeats(word):
                return None
            return (scope._note(bare=(word,)) if scope.before_from() else scope).value()
        return None


def _table_alias_prefix(names: SchemaNames, scope: Scope, buf: str) -> bool:
    """Whether `buf` may begin a table's alias where one may stand (after a table of a FROM, or its
    AS): see `_TABLE_ALIAS_SHAPE`. Elsewhere any free name may. Right after a table, a word that
    only a keyword completes (`where`: no alias starts with it) must be a keyword that may stand
    here, or it would be a dead end (WHERE while the FROM lacks a table the select list needs)."""
    top = scope.top
    if top.clause != "from" or top.expect not in ("after_table", "alias"):
        return True
    if _TABLE_ALIAS_SHAPE.fullmatch(buf) is None:
        return False
    if any(buf.startswith(word) and buf != word for word in _AFTER_TABLE_WORDS):
        return False
    ends_from = top.expect == "after_table" and buf in CLAUSE_ENDS
    return not (ends_from and not scope.from_complete(names))


@lru_cache(maxsize=4096)
def _allowed_prefixes(names: SchemaNames, scope: Scope, quoted: bool) -> frozenset[str] | None:
    """Prefixes of the names that may stand next in `scope` (None: any name)."""
    expect = scope.top.expect
    if expect in ("alias", "cte", "after_table"):
        return None
    if expect == "call":
        return frozenset()
    if expect == "table":
        words = names.tables | scope.ctes
    elif expect == "qualified":
        table = scope.top.qualified
        words = scope.columns(names) | names.all_columns if table == ANY else names.columns_of(table)
    else:  # only words that may stand complete here: a prefix no name completes is a dead end
        keywords = frozenset() if quoted else free_words()
        if scope.top.operand:  # after a value: a keyword (AND, FROM, AS, DESC, ...), not a name
            keywords = frozenset() if quoted else sql_keywords()
        if not scope.from_complete(names):  # the FROM cannot end yet: no WHERE, ORDER BY, ...
            keywords = keywords - frozenset(CLAUSE_ENDS)
        if scope.top.operand:
            return _prefixes(keywords)
        columns = scope.columns(names)
        if scope.before_from() and scope.top.query and scope.top.clause == "select":
            columns = columns - frozenset(scope.top.bare)
        words = (
            columns
            | scope.qualifiers()
            | (names.tables if scope.before_from() else frozenset())  # its FROM must name it
            | keywords
        )
    return _prefixes(words)


def start_state(schema: Schema) -> SqlState:
    """The state before the model writes anything, for the schema that built the prompt."""
    return SqlState(_schema_names(schema))


_NAMES: OrderedDict[int, tuple[Schema, SchemaNames]] = OrderedDict()


def _schema_names(schema: Schema) -> SchemaNames:
    """A schema's names, built once per Schema object (rows of one database share it and its masks)."""
    key = id(schema)
    if key not in _NAMES or _NAMES[key][0] is not schema:
        _NAMES[key] = (schema, SchemaNames(schema))
        if len(_NAMES) > 256:
            _NAMES.popitem(last=False)
    return _NAMES[key][1]


class _Node:
    __slots__ = ("children", "ids", "lo", "hi")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ids: list[int] = []
        self.lo = self.hi = 0


class VocabTrie:
    """The tokenizer's vocabulary as a character trie of the (lower-cased) text each token adds.

    Special tokens (end of turn, chat markers) are not in the trie: they end the answer, which
    `SqlState.can_end` decides. `order[node.lo:node.hi]` are the tokens below a node.
    """

    def __init__(self, tokenizer: Any):
        import numpy as np

        self.size = len(tokenizer)
        self.pieces = token_pieces(tokenizer)
        special = set(tokenizer.all_special_ids) | {
            i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if t.special
        }
        self.special_ids = {i for i in special if i < self.size}
        self.special = np.array(sorted(self.special_ids), dtype=np.int64)
        self.root = _Node()
        for token, piece in enumerate(self.pieces):
            if token in special or not piece:
                continue
            node = self.root
            for ch in piece.lower():
                node = node.children.setdefault(ch, _Node())
            node.ids.append(token)
        order: list[int] = []
        stack: list[tuple[_Node, bool]] = [(self.root, False)]
        while stack:  # number tokens in depth-first order, so a node's tokens are one slice
            node, done = stack.pop()
            if done:
                node.hi = len(order)
                continue
            node.lo = len(order)
            order.extend(node.ids)
            stack.append((node, True))
            stack.extend((child, False) for child in node.children.values())
        self.order = np.array(order, dtype=np.int64)

    def allowed(self, state: SqlState):
        """Boolean mask over the vocabulary: the tokens `state` accepts."""
        import numpy as np

        mask = np.zeros(self.size, dtype=bool)
        if state.can_end():
            mask[self.special] = True
        stack = [(self.root, state)]
        while stack:
            node, here = stack.pop()
            for ch, child in node.children.items():
                after = here.step(ch)
                if after is None:
                    continue
                if after.mode == "done":  # the statement ended: nothing below is checked
                    mask[self.order[child.lo : child.hi]] = True
                    continue
                mask[child.ids] = True
                stack.append((child, after))
        return mask


def token_pieces(tokenizer: Any) -> list[str]:
    """The text each token adds after others (a leading space kept, as decoding a sequence shows)."""
    anchor = tokenizer.convert_tokens_to_ids("a")
    if anchor is None or anchor == tokenizer.unk_token_id:
        anchor = tokenizer("a", add_special_tokens=False)["input_ids"][-1]
    base = tokenizer.decode([anchor])
    return [tokenizer.decode([anchor, i])[len(base) :] for i in range(len(tokenizer))]


_TRIES: dict[tuple[str, int], VocabTrie] = {}


def vocab_trie(tokenizer: Any) -> VocabTrie:
    """One trie per tokenizer (about a second to build for a 50k vocabulary)."""
    key = (getattr(tokenizer, "name_or_path", ""), len(tokenizer))
    if key not in _TRIES:
        _TRIES[key] = VocabTrie(tokenizer)
    return _TRIES[key]


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
