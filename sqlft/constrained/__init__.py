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
value (a column, a literal, `)`, NULL, DESC) only an operator, a keyword that does not begin a value or
a query (no `SELECT`), `,` or `)` may follow, and a table's alias is a word or a few letters and
digits (without AS only the latter), not run into a keyword (`T1JOIN`) nor a keyword misspelt
(`ORDERING BY`, `GROIN SELECT`); a window's keywords (`GROUPS`, `ROWS`) stand only in parentheses, and
`&`, `%`, `!` and a query's `)` only after a value: the fine-tuned model's answers went through such
holes, and SQLite failed on them with a syntax error. A name may
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

from sqlft.constrained.constraint import CANDIDATES, Constraint, record_schemas
from sqlft.constrained.lexer import SqlState, start_state
from sqlft.constrained.scope import (
    ANY,
    CLAUSE_ENDS,
    QUERY_KEYWORDS,
    Frame,
    SchemaNames,
    Scope,
    free_words,
    sql_functions,
    sql_keywords,
)
from sqlft.constrained.vocab import VocabTrie, token_pieces, vocab_trie

__all__ = [
    "ANY",
    "CANDIDATES",
    "CLAUSE_ENDS",
    "QUERY_KEYWORDS",
    "Constraint",
    "Frame",
    "Scope",
    "SchemaNames",
    "SqlState",
    "VocabTrie",
    "free_words",
    "record_schemas",
    "sql_functions",
    "sql_keywords",
    "start_state",
    "token_pieces",
    "vocab_trie",
]
