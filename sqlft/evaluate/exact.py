"""Exact match after normalisation with sqlglot: case, whitespace, quoting and safe aliases.

Two queries match when their canonical forms are equal. The canonical form lowercases
keywords and unquoted identifiers, drops quotes where a name does not need them, replaces a
table alias by its table name when that table occurs once in its SELECT, and drops column
aliases that nothing refers to. String literals keep their case. This is stricter than
execution match and looser than string equality; it is not Spider's component-set "exact set
match".
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _unalias_tables(select) -> None:
    from sqlglot import exp

    tables = [t for t in select.find_all(exp.Table) if t.parent_select is select]
    names = [t.name.lower() for t in tables]
    renames = {}
    for table in tables:
        alias = table.alias
        if alias and names.count(table.name.lower()) == 1:
            renames[alias.lower()] = table.name.lower()
            table.set("alias", None)
    if not renames:
        return
    for column in select.find_all(exp.Column):
        if column.table and column.table.lower() in renames and column.parent_select is select:
            column.set("table", exp.to_identifier(renames[column.table.lower()]))


def _unalias_columns(select) -> None:
    from sqlglot import exp

    used = {c.name.lower() for c in select.find_all(exp.Column) if not c.table}
    for item in list(select.expressions):
        if isinstance(item, exp.Alias) and item.alias.lower() not in used:
            item.replace(item.this)


def _statement(sql: str):
    """sqlglot's tree of the one statement in `sql`, or None (no parse, or not one statement)."""
    import sqlglot

    if logging.getLogger("sqlglot").level == logging.NOTSET:  # model output is often not SQL:
        logging.getLogger("sqlglot").setLevel(logging.ERROR)  # no warning per such query
    try:
        statements = [s for s in sqlglot.parse(sql, read="sqlite") if s is not None]
    except (sqlglot.errors.SqlglotError, RecursionError):
        return None
    return statements[0] if len(statements) == 1 else None


@lru_cache(maxsize=4096)
def parses(sql: str) -> bool:
    """True when sqlglot parses `sql` as one statement (all that exact match asks of equal texts)."""
    return _statement(sql) is not None


@lru_cache(maxsize=4096)
def normalize_sql(sql: str) -> str | None:
    """Canonical text of a query, or None when sqlglot cannot parse it as one statement."""
    from sqlglot import exp

    tree = _statement(sql)
    if tree is None:
        return None
    for identifier in tree.find_all(exp.Identifier):
        # a double-quoted name keeps its case: SQLite reads "AHD" as a string when no column has
        # that name, and Spider's golds quote values that way
        name = identifier.name if identifier.quoted else identifier.name.lower()
        identifier.set("this", name)
        identifier.set("quoted", not _PLAIN_NAME.fullmatch(name.lower()))
    for select in list(tree.find_all(exp.Select)):
        _unalias_tables(select)
        _unalias_columns(select)
    return tree.sql(dialect="sqlite", normalize_functions="lower", copy=False)  # the tree is ours


def exact_match(pred: str, gold: str) -> bool:
    """True when both queries parse and normalise to the same text."""
    if pred == gold:  # same text, same canonical form: only whether it parses is open
        return parses(gold)
    pred_norm = normalize_sql(pred)
    return pred_norm is not None and pred_norm == normalize_sql(gold)
