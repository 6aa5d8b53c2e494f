"""Prompt tokens per Spider dev example for each schema serialisation, with SmolLM2's tokenizer.

For ddl, compact and mschema (M-Schema) schemas, without and with 3 sample values per column, and
with up to 5 retrieved values per question (sqlft.values): p50, p95 and max prompt tokens over all
1,034 dev questions (chat template and the demo's system prompt included), and how many whole
examples (prompt + SQL + end of sequence) fit in 512 and 1024 tokens.

    python benchmarks/bench_prompts.py

Writes benchmarks/results/bench_prompts.json.
"""

from __future__ import annotations

from common import write_result
from spider_split import SPIDER

from sqlft.model import load_tokenizer
from sqlft.prompts import length_stats

SERIALISATIONS = [  # schema, sample values per column, retrieved values per question
    ("ddl", 0, 0),
    ("ddl", 3, 0),
    ("compact", 0, 0),
    ("compact", 3, 0),
    ("mschema", 0, 0),
    ("mschema", 3, 0),
    ("ddl", 0, 5),
    ("compact", 0, 5),
    ("mschema", 0, 5),
]
WINDOWS = (512, 1024)


def measure(tokenizer, schema: str, sample_values: int, value_retrieval: int) -> dict:
    from sqlft.data.prepare import prepare_records

    prepared = prepare_records(
        "spider",
        SPIDER,
        "dev",
        schema_style=schema,
        sample_values=sample_values,
        value_retrieval=value_retrieval,
        tokenizer=tokenizer,
    )

    def tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    prompts = [tokens(r["prompt"]) for r in prepared.records]
    whole = [p + tokens(r["completion"]) for p, r in zip(prompts, prepared.records, strict=True)]
    return {
        "schema": schema,
        "sample_values": sample_values,
        "value_retrieval": value_retrieval,
        "prompt_tokens": length_stats(prompts),
        "example_tokens": length_stats(whole),
        "examples_fitting": {str(w): sum(n <= w for n in whole) for w in WINDOWS},
        "examples": len(whole),
    }


def main() -> None:
    tokenizer = load_tokenizer("smollm2-135m")
    rows = [measure(tokenizer, *serialisation) for serialisation in SERIALISATIONS]
    for row in rows:
        print(row)
    path = write_result("bench_prompts", {"tokenizer": "SmolLM2-135M-Instruct", "serialisations": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
