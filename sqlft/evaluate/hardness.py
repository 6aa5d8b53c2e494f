"""Spider hardness (easy/medium/hard/extra) by the component counts of Spider's `evaluation.py`.

`hardness_from_sql` applies the rules to Spider's parsed `sql` dict (exact, quirks included:
NOT conditions in WHERE and the AND/OR words in HAVING count as aggregations there).
`hardness_from_text` rebuilds the same counts from the SQL text with sqlglot, for records
without that dict; it agrees with the exact one on most but not all Spider dev golds (see
benchmarks/results/bench_eval.json).
"""

from __future__ import annotations

from typing import Any

LEVELS = ("easy", "medium", "hard", "extra")
_LIKE, _NONE = 9, 0  # WHERE_OPS.index("like"), AGG_OPS.index("none") in Spider's process_sql


def classify(comp1: int, comp2: int, others: int) -> str:
    """Spider's thresholds on (component1, component2, others)."""
    if comp1 <= 1 and others == 0 and comp2 == 0:
        return "easy"
    if (others <= 2 and comp1 <= 1 and comp2 == 0) or (comp1 <= 2 and others < 2 and comp2 == 0):
        return "medium"
    if (
        (others > 2 and comp1 <= 2 and comp2 == 0)
        or (2 < comp1 <= 3 and others <= 2 and comp2 == 0)
        or (comp1 <= 1 and others == 0 and comp2 <= 1)
    ):
        return "hard"
    return "extra"


def _count_agg(units: list) -> int:
    return sum(1 for unit in units if unit[0] != _NONE)


def hardness_from_sql(sql: dict[str, Any]) -> str:
    """Hardness of a Spider `sql` dict, as Spider's Evaluator.eval_hardness computes it."""
    conds = sql["from"]["conds"][::2] + sql["where"][::2] + sql["having"][::2]
    connectors = sql["from"]["conds"][1::2] + sql["where"][1::2] + sql["having"][1::2]
    comp1 = sum(bool(sql[k]) for k in ("where", "groupBy", "orderBy")) + (sql["limit"] is not None)
    comp1 += max(len(sql["from"]["table_units"]) - 1, 0)
    comp1 += connectors.count("or") + sum(1 for c in conds if c[1] == _LIKE)
    comp2 = sum(1 for c in conds for v in (c[3], c[4]) if isinstance(v, dict))
    comp2 += sum(sql[k] is not None for k in ("intersect", "except", "union"))
    aggs = _count_agg(sql["select"][1]) + _count_agg(sql["where"][::2]) + _count_agg(sql["groupBy"])
    if sql["orderBy"]:
        units = sql["orderBy"][1]
        aggs += _count_agg([u[1] for u in units if u[1]] + [u[2] for u in units if u[2]])
    aggs += _count_agg(sql["having"])
    others = (aggs > 1) + (len(sql["select"][1]) > 1) + (len(sql["where"]) > 1) + (len(sql["groupBy"]) > 1)
    return classify(comp1, comp2, others)


def _leaves(condition) -> tuple[list, list[str]]:
    """Flatten an AND/OR tree (through parentheses) into condition units and connectors."""
    from sqlglot import exp

    node = condition.this if isinstance(condition, exp.Paren) else condition
    if isinstance(node, exp.And | exp.Or):
        left, left_ops = _leaves(node.this)
        right, right_ops = _leaves(node.expression)
        return left + right, left_ops + ["and" if isinstance(node, exp.And) else "or"] + right_ops
    return [condition], []


def _subqueries(node) -> int:
    """Queries directly inside a condition unit (not inside another query)."""
    from sqlglot import exp

    if isinstance(node, exp.Query):
        return 1
    return sum(_subqueries(child) for child in node.iter_expressions())


def _leftmost_is_agg(node) -> bool:
    from sqlglot import exp

    while isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Alias | exp.Paren):
        node = node.this
    return isinstance(node, exp.AggFunc)


def _arith_aggs(node) -> int:
    from sqlglot import exp

    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div):
        return _leftmost_is_agg(node.this) + _leftmost_is_agg(node.expression)
    return int(_leftmost_is_agg(node))


def hardness_from_text(sql: str) -> str:
    """Approximate Spider hardness of SQL text (sqlglot, SQLite dialect); raises ValueError."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (sqlglot.errors.SqlglotError, RecursionError) as error:
        raise ValueError(f"cannot parse: {error}") from error
    comp2 = 0
    while isinstance(tree, exp.SetOperation):
        comp2 = 1  # only the first set operation sits at the top of Spider's dict
        tree = tree.this
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    if not isinstance(tree, exp.Select):
        raise ValueError("not a SELECT query")
    joins = tree.args.get("joins") or []
    on_units, on_ops = [], []
    for join in joins:
        if join.args.get("on") is not None:
            units, ops = _leaves(join.args["on"])
            on_units, on_ops = on_units + units, on_ops + (["and"] if on_units else []) + ops
    where = tree.args.get("where")
    having = tree.args.get("having")
    where_units, where_ops = _leaves(where.this) if where else ([], [])
    having_units, having_ops = _leaves(having.this) if having else ([], [])
    units = on_units + where_units + having_units

    def negated(unit) -> bool:
        return isinstance(unit, exp.Not)

    def core(unit):
        return unit.this if isinstance(unit, exp.Not) else unit

    group = tree.args.get("group")
    group_items = group.expressions if group else []
    order = tree.args.get("order")
    comp1 = bool(where) + bool(group_items) + bool(order) + (tree.args.get("limit") is not None)
    comp1 += len(joins) if tree.args.get("from_") is not None else 0
    comp1 += (on_ops + where_ops + having_ops).count("or")
    comp1 += sum(1 for u in units if isinstance(core(u), exp.Like))
    comp2 += sum(_subqueries(core(u)) for u in units)
    aggs = sum(_leftmost_is_agg(e) for e in tree.expressions)
    aggs += sum(negated(u) for u in where_units)
    aggs += sum(_arith_aggs(o.this) for o in (order.expressions if order else []))
    aggs += sum(negated(u) for u in having_units) + len(having_ops)
    others = (aggs > 1) + (len(tree.expressions) > 1) + (len(where_units) > 1) + (len(group_items) > 1)
    return classify(comp1, comp2, others)


def hardness(record: dict[str, Any]) -> str | None:
    """A record's hardness: its own `hardness` field, else from its `sql` dict, else from gold text."""
    if record.get("hardness") in LEVELS:
        return record["hardness"]
    if isinstance(record.get("sql"), dict):
        try:
            return hardness_from_sql(record["sql"])
        except (KeyError, IndexError, TypeError):
            pass
    try:
        return hardness_from_text(record.get("gold") or "")
    except ValueError:
        return None
