"""The SQL lexer of schema-faithful decoding: `SqlState` reads an answer one character at a time and
rejects the first character that names something the schema lacks or starts a name nothing completes."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import lru_cache

from sqlft.constrained.scope import (
    AFTER_TABLE_KEYWORDS,
    AFTER_TABLE_WORDS,
    ANY,
    CLAUSE_ENDS,
    SchemaNames,
    Scope,
    sql_functions,
)
from sqlft.schema import Schema

# not string_end nor block_end: the next character may close the literal or comment, and SQL follows
FREE_MODES = ("pre", "string", "line_comment", "block_comment", "done")
STARTS = ("select", "with")
_ALIAS_SHAPE = re.compile(r"[a-z]{1,3}[0-9]{0,2}")  # one name, not a query: T1, s, sc2, T10
# a table's alias in a FROM: a word, or a few letters and digits (`T1`), not one run into a keyword
# (`T1JOIN`, `T2ONTR`) nor a keyword misspelt (`ORDERING`, `WHEREMake`, `GROUPING`); without AS, only
# `_ALIAS_SHAPE` (`FROM continents GROIN SELECT`, `FROM Students ORTHOLES AS T1` were misspelt keywords)
_TABLE_ALIAS_SHAPE = re.compile(r"[a-z_]{1,12}|[a-z]{1,3}[0-9]{1,2}")
OPERATORS = "+%<>=!|&~"  # the operator characters besides `-`, `/`, `*` and `.`, read apart
_LAST_WORD = re.compile(r"[\w$]+$")  # the keyword that ended a select list, read into its last item
FREE_NAME_LENGTH = 48  # the longest alias or CTE name: a run-on `Total_Song_Song_...` stops here


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


@lru_cache(maxsize=256)
def _prefixes(words: frozenset[str]) -> frozenset[str]:
    return frozenset(w[:i] for w in words for i in range(1, len(w) + 1))


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
            if not after.item:
                return after
            if self.scope.frames[self.scope._query()].clause == "select":  # FROM, WHERE, ... ended it
                scope = scope.output(_LAST_WORD.sub("", after.item))
            return replace(after, scope=scope, item="")
        if ch == "," and after.mode == "sql" and scope.top.query:  # the comma ended an item
            scope = scope.select_item("".join(after.item.split()))
            return None if scope is None else replace(after, scope=scope.output(after.item), item="")
        return replace(after, item=after.item + ch.lower())

    def _read(self, ch: str) -> SqlState | None:
        mode = self.mode
        if mode == "done":  # read on as a new answer: prose is free, and a second query is checked too
            return SqlState(self.names)._pre(ch)
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
                return replace(self, mode="done") if self.scope.from_complete(self.names) else None
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
        """A character outside any name, literal or comment. A blank line ends the query for the
        extractor (`sqlft.extract`), so it may only stand where the query may end."""
        if self.mode == "sql" and self.buf == "\n":
            if ch == "\n":
                return self if self.scope.from_complete(self.names) else None
            return self if ch.isspace() else replace(self, buf="")._sql_char(ch)
        if self.mode == "sql" and ch == "\n":
            return replace(self, buf="\n")
        return self._sql_char(ch)

    def _sql_char(self, ch: str) -> SqlState | None:
        top = self.scope.top
        if top.expect == "call" and ch != "(" and not ch.isspace():
            return None  # a function's name stands alone: SQLite reads it as a column
        if top.operand and top.expect == "column" and (ch.isdigit() or ch in "'\"`[("):
            return None  # a literal, a quoted name or a parenthesis straight after a value
        if not top.operand and top.expect == "column" and (ch in "&%!" or ch == ")" and top.query):
            return None  # an operator that needs a value before it, a query ending on one (`= )`)
        if self.scope.after_alias() and ch in f"{OPERATORS}*-/":  # `(` and `.` as after any value
            return None  # `FROM continents GRO%`: a table's alias is no value
        if _is_word_char(ch):
            return replace(self, mode="number") if ch.isdigit() else self._name(ch.lower())
        if ch.isspace():
            return self
        if ch == '"' and self.scope.top.expect in ("table", "qualified"):  # FROM "order", T1."group"
            return replace(self, mode="qident", quote=ch)
        if ch == "'" and self.scope.top.expect in ("table", "qualified"):
            return None  # SQLite would read `FROM 'Eli'` as a table named Eli
        if ch in "'\"":  # SQLite reads "x" as a string when no column is called x: Spider does that
            return replace(self, mode="string", quote=ch)
        if ch in "`[":
            return replace(self, mode="qident", quote="]" if ch == "[" else "`")
        if ch == ";":
            return replace(self, mode="done") if self.scope.from_complete(self.names) else None
        if ch == ":":  # not SQL here (`Result: 1` after a query is prose the extractor drops)
            return None
        if ch in "-/":
            return replace(self, mode="dash" if ch == "-" else "slash")
        scope = self.scope
        if ch == "(":
            scope = scope.open()
        elif ch == ")":
            if scope.top.query and not scope.from_complete(self.names):
                return None
            scope = scope.close(self.names)
        elif ch == ",":
            scope = scope.comma()
        elif ch == "." and (scope.top.expect in ("after_table", "qualified") or scope.top.operand):
            return None  # `FROM db.table` (SQLite has one database), `AS T1.`, `T1..`: no dot here
        elif ch == "*":  # where a value may stand, a star (`count(*)`, `SELECT *`); after one, times
            scope = scope.value(not scope.top.operand)
        elif ch in OPERATORS:
            scope = scope.value(False)  # an operator: a value follows
        elif ch != ".":
            return None  # no SQL (`#`, `?`, a broken character `\ufffd` that SQLite reads as a name)
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
        keyword = not quoted and word in scope.keywords()
        if expect == "table":
            return scope.table(word) if word in names.tables or word in scope.ctes else None
        if expect == "qualified":
            return scope.read(word) if word in scope.qualified_columns(names) else None
        if keyword and word in CLAUSE_ENDS and not scope.from_complete(names):
            return None
        if expect == "after_table" and keyword:  # `FROM t WHERE`, `FROM t AS x`, `FROM t JOIN`
            return scope.keyword(word) if word in AFTER_TABLE_KEYWORDS else None
        if expect in ("alias", "after_table", "cte"):
            return scope.define(word, names)
        if qualifier:  # before the FROM: the FROM must then define or name it (`from_complete`)
            if self._forward_alias(word):  # T1 may be an alias still to come, shadowing anything
                return scope.qualify(ANY, forward=word)
            table = scope.resolve(word, names)
            return (
                None
                if table is None or not names.columns_of(table)  # a subquery naming none: no way on
                else scope.qualify(table, forward=word if scope.before_from() else "")
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
    if top.expect == "after_table" and not (  # an alias without AS is short: T1, s (GROIN is no alias)
        _ALIAS_SHAPE.fullmatch(buf) or buf in _prefixes(AFTER_TABLE_KEYWORDS)
    ):
        return False
    if any(buf.startswith(word) and buf != word for word in AFTER_TABLE_WORDS):
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
    if scope.top.derived and not scope.top.query and not scope.top.operand:
        words = frozenset(STARTS)  # `FROM (` opens a subquery: `FROM (typeof(1))` is no table
    elif expect == "table":
        words = names.tables | scope.ctes
    elif expect == "qualified":
        words = scope.qualified_columns(names)
    else:  # only words that may stand complete here: a prefix no name completes is a dead end
        keywords = frozenset() if quoted else scope.keywords()
        if not scope.top.operand:  # after a value: a keyword (AND, FROM, AS, DESC, ...), not a name
            keywords = keywords | (frozenset() if quoted else sql_functions())
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
