"""How a constrained answer ends as a whole query: whether the text so far is one already
(`complete`), and the shortest texts that make it one (`closings`): close a literal, a comment or
a parenthesis, finish a half-written name, give an operator or a trailing keyword its operand
(`WHERE` -> `WHERE 1`), and add the FROM the select list needs, with real tables that hold its
columns. `sqlft.constrained.Constraint` spends an answer's last tokens on them, so an answer cut
off by `max_new_tokens` still runs.
"""

from __future__ import annotations

from functools import lru_cache

from sqlft.constrained.lexer import SqlState
from sqlft.constrained.scope import ANY, SchemaNames, Scope

WIDTH = 12  # partial closings kept per search step
MAX_MOVES = 8  # moves a closing may take: a subquery's FROM and its ")" and the outer FROM fit
VALUE = " 1"  # the operand a trailing operator or keyword gets: valid after =, AND, WHERE, LIMIT, ORDER BY
# the keywords a half-written word may be completed into: each takes a table or an operand next
CLOSING_KEYWORDS = frozenset("from where and not by limit having on as join is null group order in".split())
# keywords that another word must follow before an operand may
FOLLOWERS = {
    "group": " BY",
    "order": " BY",
    "partition": " BY",
    "nulls": " LAST",
    "in": " (1)",
}


def complete(state: SqlState) -> bool:
    """Whether the text so far holds a whole query: a statement that ended, or one that may end here
    with nothing open (no literal, comment, parenthesis or name half written, no operator or keyword
    waiting for its operand) and a FROM that provides what its select list named."""
    if state.mode == "done":
        return True
    if state.mode == "pre":
        return False
    after = state.step(" ")
    if after is None or after.mode != "sql":
        return False
    scope, top = after.scope, after.scope.top
    return (
        len(scope.frames) == 1
        and (top.operand or top.expect == "after_table")
        and scope.from_complete(state.names)
    )


@lru_cache(maxsize=8192)
def closings(state: SqlState) -> tuple[str, ...]:
    """The texts of fewest moves after which `state` is `complete`, and those of one move more (one
    move may be long: `AS T` + ` JOIN t AS T1 ...` against `AS T` + `1` + ` JOIN ...`, so the caller
    weighs them in tokens), each checked character by character by the state itself; () when the
    answer has not started a query or none is found."""
    if state.mode == "pre":
        return ()
    frontier: list[tuple[str, SqlState]] = [("", state)]
    done: list[str] = []
    for depth in range(MAX_MOVES + 2):
        found = [text for text, here in frontier if complete(here)]
        if done or (found and found == [""]):  # one move past the first found, or nothing to close
            return tuple(done + found)
        done = found
        following = []
        for text, here in frontier:
            if depth < MAX_MOVES and not complete(here):
                following += [(text + move, after) for move in _moves(here) if (after := here.feed(move))]
        frontier = following[:WIDTH]
        if not frontier:
            break
    return tuple(done)


def _moves(state: SqlState) -> list[str]:
    """The next pieces a closing may take from `state` (alternatives where there is a real choice)."""
    mode = state.mode
    if mode in ("string", "qident"):
        return [state.quote]
    if mode == "line_comment":
        return ["\n"]
    if mode in ("block_comment", "block_end"):
        return ["*/" if mode == "block_comment" else "/"]
    if mode in ("dash", "slash"):
        return [VALUE]
    if mode == "word" and state.buf in FOLLOWERS:
        return [FOLLOWERS[state.buf]]
    longer = _finish_name(state) if mode == "word" else []  # `T` may be `T1` begun
    settled = state.step(" ")
    return longer if settled is None else longer + _sql_moves(settled.scope, state.names)


def _finish_name(state: SqlState) -> list[str]:
    """Completions of the name being written into one that may stand here, shortest first: the
    schema's tables and columns, the aliases the query used before defining them, a qualifier and
    its dot, and the keywords after which a closing goes on (`c` -> `country`, not `cos`; `GRO` ->
    `GROUP`, not `GROUPS`; `AS T` -> `AS T1`)."""
    names, buf, scope = state.names, state.buf, state.scope
    qualifiers = scope.qualifiers() if scope.top.expect == "column" else frozenset()  # not at `AS T1`
    words = sorted(names.tables | names.all_columns | set(_undefined_aliases(scope)) | qualifiers, key=len)
    ends = []
    for word in [*words, *sorted(CLOSING_KEYWORDS, key=len)]:
        dot = word in qualifiers or (word in _undefined_aliases(scope) and scope.top.expect == "column")
        if word.startswith(buf) and (word != buf or dot):
            rest = word[len(buf) :] + ("." if dot else "")  # `T` -> `T1.`, a column next
            after = state.feed(rest)
            if after is not None and (dot or after.step(" ") is not None):
                ends.append(rest)
                if len(ends) == WIDTH:
                    break
    return ends


def _sql_moves(scope: Scope, names: SchemaNames) -> list[str]:
    """Moves from plain SQL: a table where one is expected, an operand after an operator, the FROM a
    select list needs, or the `)` that closes a parenthesis or subquery."""
    top = scope.top
    if top.expect == "call":
        return ["(1)"]  # not (*): only count takes it
    if top.expect == "table":
        return [f" {table}" for table in sorted(names.tables)]
    if top.expect == "qualified":
        table = top.qualified
        return sorted(names.all_columns if table == ANY else names.columns_of(table))
    if top.expect == "alias":
        return [f" {alias}" for alias in _undefined_aliases(scope)] or [" t"]
    if top.expect == "cte":
        return []
    if top.derived and not top.query and not top.operand:  # `FROM (`: a subquery of a table
        return [f" SELECT * FROM {table}" for table in _tables_for_aliases(scope, names)]
    if top.query and top.derived and not top.has_from and not top.operand and not top.bare:
        return [f" * FROM {table}" for table in _tables_for_aliases(scope, names)]  # `FROM (SELECT`
    if top.expect == "column" and not top.operand:
        return [VALUE]
    if not top.query:  # a parenthesis in an expression (arguments, an IN list) closes first
        return [")"]
    if not scope.from_complete(names):
        return _from_clauses(scope, names)
    return [")"] if len(scope.frames) > 1 else []


def _undefined_aliases(scope: Scope) -> list[str]:
    """Qualifiers the innermost query used before its FROM that no FROM defines yet."""
    query = scope.frames[scope._query()]
    return [a for a in dict.fromkeys(query.forward_aliases) if scope._lookup(a) is None]


def _tables_for_aliases(scope: Scope, names: SchemaNames) -> list[str]:
    """The schema's tables, those holding the most columns read through undefined aliases first."""
    read = {
        column
        for frame in scope.frames
        for alias, column in frame.pending
        if scope._lookup(alias) is None  # not defined by any FROM yet
    }
    return sorted(sorted(names.tables), key=lambda t: -len(read & names.columns_of(t)))[:3]


def _from_clauses(scope: Scope, names: SchemaNames) -> list[str]:
    """The ` FROM ...` (or, after a FROM, ` JOIN ...`) that gives the innermost query what its select
    list named: a table for each qualifier used and not yet defined (`T1.name` -> `singer AS T1`),
    joined to tables holding its bare columns. With no qualifier and no FROM yet, every single
    table that holds them all is an alternative, for the model to choose."""
    i = scope._query()
    query = scope.frames[i]
    bare = set(query.bare)
    parts: list[str] = []
    chosen = [t for frame in scope.frames[: i + 1] for t in frame.tables if t != ANY]
    undefined = _undefined_aliases(scope)
    alias_last = ""  # the FROM's last table, not aliased yet, may take the first alias it fits
    last = scope.top.last if scope.top.expect == "after_table" else ""
    if last and last != ANY and undefined:
        read = {column for qualifier, column in query.pending if qualifier == undefined[0]}
        if read <= names.columns_of(scope.top.tables[-1]):
            alias_last, undefined = f" AS {undefined[0]}", undefined[1:]
    for alias in undefined:
        read = {column for qualifier, column in query.pending if qualifier == alias}
        if alias in names.tables and read <= names.columns_of(alias):
            parts.append(alias)
            chosen.append(alias)
            continue
        fits = [t for t in sorted(names.tables) if read <= names.columns_of(t)]
        if not fits:
            return []
        table = max(fits, key=lambda t: len(bare & names.columns_of(t)))
        parts.append(f"{table} AS {alias}")
        chosen.append(table)
    missing = bare - set().union(*(names.columns_of(t) for t in chosen)) - scope.select_aliases
    keyword = " JOIN " if query.has_from else " FROM "
    if not parts and not query.has_from:  # a table of its own holding them, before one around it
        own = bare - scope.select_aliases
        single = [t for t in sorted(names.tables) if own <= names.columns_of(t)]
        single = single or [t for t in sorted(names.tables) if missing <= names.columns_of(t)]
        if single:
            return [f" FROM {table}" for table in single]
    while missing:
        table = max(sorted(names.tables), key=lambda t: len(missing & names.columns_of(t)))
        if not missing & names.columns_of(table):
            return []
        parts.append(table)
        missing -= names.columns_of(table)
    joined = keyword + " JOIN ".join(parts) if parts else ""
    return [alias_last + joined] if alias_last or joined else []
