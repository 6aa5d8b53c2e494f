"""Value retrieval on Spider dev: time to index every database, time per question, and value recall.

Value recall: of the gold SQL's string literals ('...' or "...") that exist in the question's
database as a text value (compared as SQLite's `=` does), the share that appear in the prompt that
`sqlft data --value-retrieval K` writes (compact schema), the question's own text not counted;
with 3 sample values per column instead, and with both, for comparison. Goal: at least 80% with
K = 5. Indexes are built into a fresh cache folder: the indexing time is a cold build. Times are
the best of --repeat rounds (on a shared machine the others are the neighbours' noise).

    python benchmarks/bench_values.py [--k 5] [--repeat 3]

Writes benchmarks/results/bench_values.json.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from common import write_result
from spider_split import SPIDER

LITERAL = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"")


def literals(sql: str) -> list[str]:
    """String literals of a query, quotes undone; Spider writes them in single or double quotes."""
    out = []
    for match in LITERAL.finditer(sql):
        single, double = match.groups()
        out.append(single.replace("''", "'") if single is not None else double.replace('""', '"'))
    return out


def in_database(conn: sqlite3.Connection, schema, value: str) -> bool:
    """True when some text column of the database holds exactly `value`."""
    from sqlft.schema import quote

    for table in schema.tables:
        for column in table.columns:
            col = quote(column.name)
            query = f"SELECT 1 FROM {quote(table.name)} WHERE typeof({col}) = 'text' AND {col} = ? LIMIT 1"
            if conn.execute(query, (value,)).fetchone():
                return True
    return False


def recall(records: list[dict], prompts: list[str]) -> tuple[int, int, list[dict]]:
    """(literals in the database, those in the prompt, the missed ones) over Spider dev records."""
    from sqlft.schema import RETRIEVED_CHARS, Schema, _open_readonly, format_sample

    found, total, missed, per_db = 0, 0, [], {}
    for record, prompt in zip(records, prompts, strict=True):
        db = SPIDER / "database" / record["db_id"] / f"{record['db_id']}.sqlite"
        if not db.is_file():
            continue
        if record["db_id"] not in per_db:
            per_db[record["db_id"]] = (_open_readonly(db), Schema.from_sqlite(db))
        conn, schema = per_db[record["db_id"]]
        prompt = prompt.replace(record["question"], "")  # a value quoted in the question is not found
        for value in dict.fromkeys(literals(record["sql"])):
            if not in_database(conn, schema, value):
                continue
            total += 1
            if format_sample(value, RETRIEVED_CHARS) in prompt or format_sample(value) in prompt:
                found += 1
            else:
                missed.append({"db_id": record["db_id"], "question": record["question"], "literal": value})
    for conn, _ in per_db.values():
        conn.close()
    return total, found, missed


def used_by_gold(records: list[dict]) -> float:
    """Of the values retrieved, the share that the gold SQL spells as a literal (how few are noise)."""
    pairs = [(v["value"], r["sql"]) for r in records for v in r["extra"]["retrieved_values"]]
    return round(sum(value in literals(sql) for value, sql in pairs) / len(pairs), 4)


def main() -> None:
    from sqlft.data.prepare import prepare_records
    from sqlft.data.records import Example
    from sqlft.values import ValueRetriever, build_index

    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=5, help="values per question at most")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the best counts")
    args = parser.parse_args()
    databases = sorted(p for p in (SPIDER / "database").glob("*/*.sqlite"))
    records = prepare_records("spider", SPIDER, "dev", schema_style="compact").records
    examples = [
        Example.from_dict(r)
        for r in records
        if (SPIDER / "database" / r["db_id"] / f"{r['db_id']}.sqlite").is_file()  # wta_1 has none
    ]
    index_seconds, lookups = float("inf"), []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["SQLFT_CACHE"] = cache
            start = time.perf_counter()
            for path in databases:
                build_index(path)
            index_seconds = min(index_seconds, time.perf_counter() - start)
            size = sum(p.stat().st_size for p in Path(cache).rglob("*.sqlite"))
            retriever = ValueRetriever(args.k, SPIDER / "database")
            times, counts = [], []
            for example in examples:
                retriever.index_for(example)  # opened once per database, outside the timing
                start = time.perf_counter()
                counts.append(len(retriever.for_example(example)))
                times.append(time.perf_counter() - start)
            retriever.close()
            if not lookups or sum(times) < sum(lookups):
                lookups = times
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SQLFT_CACHE"] = cache
        arms = {}
        for name, k, samples in (
            ("3 sample values per column, no retrieval", 0, 3),
            (f"value retrieval k={args.k}, no sample values", args.k, 0),
            (f"value retrieval k={args.k} and 3 sample values", args.k, 3),
        ):
            prepared = prepare_records(
                "spider", SPIDER, "dev", schema_style="compact", value_retrieval=k, sample_values=samples
            ).records
            total, found, missed = recall(records, [r["prompt"] for r in prepared])
            arms[name] = {
                "value_retrieval": k,
                "sample_values": samples,
                "literals_in_database": total,
                "literals_in_prompt": found,
                "value_recall": round(found / total, 4),
                "missed": missed[:20],
            }
            if k:
                arms[name]["retrieved_used_by_gold"] = used_by_gold(prepared)
            print(name, {key: v for key, v in arms[name].items() if key != "missed"})
    result = {
        "k": args.k,
        "databases": len(databases),
        "index_seconds": round(index_seconds, 3),
        "index_bytes": size,
        "questions": len(lookups),
        "lookup_ms": {
            "mean": round(1000 * statistics.mean(lookups), 3),
            "p95": round(1000 * sorted(lookups)[int(0.95 * (len(lookups) - 1))], 3),
        },
        "values_per_question": round(statistics.mean(counts), 2),
        "goal": {"value_recall": 0.8, "k": 5},
        "arms": arms,
    }
    print({k: v for k, v in result.items() if k != "arms"})
    write_result("bench_values", result)


if __name__ == "__main__":
    main()
