"""Take the SQL answer out of raw model output.

Small models wrap their answer in markdown fences, lead with prose ("Here is the query:"),
explain it afterwards, leak chat-template tokens and sometimes go on to a second statement or
a new question. `extract_sql` keeps the first statement only, with whitespace collapsed outside
quoted text (string literals and quoted identifiers are kept byte for byte) and no trailing
semicolon, so that a correct answer in any of these wrappings scores as the bare query would.
"""

from __future__ import annotations

import re

# Tokens that end an assistant turn (or start the next one): text after them is not the answer.
END_MARKERS = (
    "<|im_end|>",
    "<|im_start|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|end|>",
    "<|user|>",
    "<|system|>",
    "<end_of_turn>",
    "<start_of_turn>",
    "</s>",
    "[INST]",
)
# Markers that open the assistant's answer.
START_MARKERS = (
    "[/INST]",
    "<|im_start|>assistant",
    "<|assistant|>",
    "<start_of_turn>model",
    "<|start_header_id|>assistant<|end_header_id|>",
)
_BOS = r"\s*(?:<s>|<\|begin_of_text\|>)?\s*"
# Text that starts like this is a whole conversation (prompt included), not just the answer.
_CONVERSATION = re.compile(
    _BOS + r"(?:<\|im_start\|>|\[INST\]|<\|user\|>|<\|system\|>|<start_of_turn>|<\|start_header_id\|>)"
)
_LEADING_MARKER = re.compile(_BOS + "(?:" + "|".join(map(re.escape, START_MARKERS)) + r")?\s*")

# A statement's first keyword, all upper or all lower case: "Select the names ..." is prose.
# WITH must open a CTE ("with the schema ..." is prose too).
_KEYWORDS = ("select", "insert", "update", "delete", "create", "drop", "alter", "replace", "pragma", "values")
_CTE = r"(?:WITH|with)\s+(?:RECURSIVE\s+|recursive\s+)?[\w\"`\[\]]+\s*(?:\([^()]*\)\s*)?(?:AS|as)\s*\("
_SQL_START = "(?:" + "|".join(k for w in _KEYWORDS for k in (w, w.upper())) + r")\b|" + _CTE
_FENCE = re.compile(r"```[ \t]*(?:sql|sqlite|postgresql|mysql)?[ \t]*\n?(.*?)(?:```|\Z)", re.S | re.I)
_INLINE_CODE = re.compile(r"`\s*(\(*\s*(?:" + _SQL_START + r")[^`]*)`")
_LABEL = re.compile(
    r"^\s*(?:[#*]+\s*)?(?:sql(?: query)?|sqlite|query|answer|output|response|assistant)\s*:\s*", re.I
)
_STARTS_SQL = re.compile(r"\s*\(*\s*(?:" + _SQL_START + ")")
_LINE_START_SQL = re.compile(r"(?:^|\n|:)[ \t]*(?=\(*\s*(?:" + _SQL_START + "))")
_UPPER_SELECT = re.compile(r"\bSELECT\b")
_ANY_SELECT = re.compile(r"\bselect\b", re.I)
# A line starting like this (outside quotes) is prose or a new prompt, not more SQL.
_PROSE_LINE = re.compile(
    r"[ \t]*(?:(?:This|The|Note|Explanation|Here|In this|It|That|These|Those|Let|Output|Results?|Hope|Please"
    r"|We|You|Assuming|Alternatively|Also|Step|First|Finally|To|Schema|Context)\b"
    r"|(?:Question|Q|A|Answer|Input|Table|Tables)\s*:|#{2,}|\*\*|```)"
)
# A sentence that follows the query on the same line.
_PROSE_INLINE = re.compile(
    r"\s+(?:This|The above|The query|The SQL|The result)\s+"
    r"(?:query|SQL|statement|will|would|returns?|selects?|gives?|finds?|counts?|retrieves?|lists?|joins?|filters?|first|uses?)\b"
    r"|\s+(?:Explanation|Note)\s*:"
)
_QUOTES = {"'": "'", '"': '"', "`": "`", "[": "]"}


def _strip_chat_markers(text: str) -> str:
    """The assistant's turn only: after the prompt when the text holds a whole conversation, up to
    the first token that ends the turn (a model that starts a second turn keeps its first answer)."""
    if _CONVERSATION.match(text):
        starts = [(i, m) for m in START_MARKERS if (i := text.find(m)) >= 0]
        if starts:
            i, marker = min(starts)
            text = text[i + len(marker) :]
    text = text[_LEADING_MARKER.match(text).end() :]
    cut = min((i for i in (text.find(m) for m in END_MARKERS) if i >= 0), default=len(text))
    return text[:cut]


def _unfence(text: str) -> str:
    """The first fenced block (an unclosed fence runs to the end), else inline code holding SQL."""
    match = _FENCE.search(text) or _INLINE_CODE.search(text)
    return match.group(1) if match else text


def _strip_lead(text: str) -> str:
    """Drop labels and prose before the statement: the answer starts at the first SQL keyword
    (none at all: empty)."""
    while (label := _LABEL.match(text)) is not None:
        text = text[label.end() :]
    if _STARTS_SQL.match(text):
        return text
    for pattern in (_LINE_START_SQL, _UPPER_SELECT, _ANY_SELECT):
        if (match := pattern.search(text)) is not None:
            return text[match.end() if pattern is _LINE_START_SQL else match.start() :]
    return ""  # prose only ("We have 12 singers."): no SQL to score


def _quote_end(text: str, i: int) -> int:
    """Index of the quote that closes the one opened at `i` (len(text) when it never closes)."""
    close, j, n = _QUOTES[text[i]], i + 1, len(text)
    while j < n:
        if text[j] == close:
            if close != "]" and j + 1 < n and text[j + 1] == close:  # doubled quote = escape
                j += 2
                continue
            break
        j += 1
    return j


def answer_complete(text: str) -> bool:
    """Whether decoding can stop: `text` holds a closed code fence, or a `;` outside quotes once a
    query has begun. `extract_sql` keeps only the first statement, so what a model writes after
    that (zero-shot models explain at length) costs tokens and changes nothing."""
    if text.count("```") >= 2:
        return True
    start = _LINE_START_SQL.search(text)  # a query opens the text, a line, or follows a colon
    if start is None:
        return False
    i, n = start.end(), len(text)
    while i < n:
        if text[i] in _QUOTES:
            i = _quote_end(text, i)
        elif text[i] == ";":
            return True
        i += 1
    return False


def _first_statement(text: str) -> str:
    """Scan to the first `;` outside quotes and comments, collapsing whitespace outside quotes."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _QUOTES:
            j = _quote_end(text, i)
            out.append(text[i : j + 1])
            i = j + 1
        elif ch == ";":
            break
        elif text.startswith("--", i) or text.startswith("/*", i):
            end = text.find("\n", i) if ch == "-" else text.find("*/", i + 2)
            i = n if end < 0 else end + (1 if ch == "-" else 2)
            if out and out[-1] != " ":
                out.append(" ")
        elif ch.isspace():
            j = i
            while j < n and text[j].isspace():
                j += 1
            newline = "\n" in text[i:j]
            if (newline and _PROSE_LINE.match(text, j)) or _PROSE_INLINE.match(text, i):
                break
            if out and out[-1] != " ":
                out.append(" ")
            i = j
        else:
            out.append(ch)
            i += 1
    sql = "".join(out).strip()
    if sql.endswith(".") and not sql[-2:-1].isdigit():
        sql = sql[:-1].rstrip()
    return sql


def extract_sql(raw: str) -> str:
    """The first SQL statement in raw model output, whitespace collapsed, without `;`; "" when the
    output holds no SQL."""
    text = _strip_chat_markers(raw)
    text = _unfence(text)
    text = _strip_lead(text)
    return _first_statement(text)
