"""The benchmark helpers that README's numbers come from: the Spider split and the summary."""

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import spider_split  # noqa: E402
import summarize  # noqa: E402


def test_split_puts_every_spider_dev_database_on_exactly_one_side(spider_dir):
    counts = Counter(r["db_id"] for r in json.loads((spider_dir / "dev.json").read_text()))
    train, heldout = set(spider_split.TRAIN_DBS), set(spider_split.HELDOUT_DBS)
    assert not train & heldout and not (train | heldout) & set(spider_split.EXCLUDED)
    assert train | heldout | set(spider_split.EXCLUDED) == set(counts)
    train_n, heldout_n = sum(counts[d] for d in train), sum(counts[d] for d in heldout)
    assert (train_n, heldout_n) == (495, 477)  # the counts the docstrings and README state
    assert "flight_2" in train  # its empty-result golds stay out of the held-out score


def test_readme_results_are_what_summarize_renders_from_the_result_files():
    readme = (BENCHMARKS.parent / "README.md").read_text()
    section = readme.split(summarize.START, 1)[1].split(summarize.END, 1)[0]
    assert section.strip() == summarize.render().strip()


def test_every_arm_is_scored_on_the_same_heldout_questions_whatever_its_schema_format(spider_dir):
    """A length guard once made the M-Schema arm drop 12 long-schema questions, so it was scored on
    other (easier) questions than the compact arm."""
    from spider_split import HELDOUT_QUESTIONS, split_records

    from sqlft.model import embedded_model_path, load_tokenizer

    tokenizer = load_tokenizer(str(embedded_model_path()))
    _, compact, _ = split_records(tokenizer, "compact", 0)
    _, longest, _ = split_records(tokenizer, "mschema", 3, value_retrieval=5)
    assert len(compact) == len(longest) == HELDOUT_QUESTIONS
    assert [r["question"] for r in compact] == [r["question"] for r in longest]
    assert max(len(tokenizer(r["prompt"]).input_ids) for r in longest) > 1024  # kept, not dropped


def test_peer_prompts_are_the_peers_own_formats(spider_dir):
    import bench_peers

    record = {
        "question": "How many singers?",
        "sql": "SELECT count(*) FROM singer ",
        "db_id": "concert_singer",
    }
    seed = bench_peers.peer_records([record], bench_peers.SEED_PROMPT)[0]
    assert seed["prompt"] == "Question: How many singers?\nSQL: "
    assert seed["text"] == seed["prompt"] + "SELECT count(*) FROM singer"  # TRL appends EOS itself
    kaggle = bench_peers.peer_records([record], bench_peers.KAGGLE_PROMPT)[0]
    assert kaggle["prompt"].startswith("### Schema:\nCREATE TABLE stadium (")
    assert kaggle["prompt"].endswith("### Question:\nHow many singers?\n\n### SQL:\n")


@pytest.mark.slow
def test_peer_comparison_runs_end_to_end_on_the_smoke_model(spider_dir, tmp_path, monkeypatch):
    import bench_peers

    monkeypatch.setenv("SQLFT_CACHE", str(tmp_path / "cache"))
    result = bench_peers.compare(0.02, every=1, limit=2, model_name="tiny-llama-warm", runs=tmp_path / "runs")
    assert list(result["arms"]) == ["peers-seed", "peers-kaggle", "peers-sqlft-default", "peers-sqlft-best"]
    for name, row in result["arms"].items():
        assert row["heldout_questions"] == 2 and row["training"]["steps"] >= 1, name
        assert 0.0 <= row["exec_accuracy"] <= 1.0
        assert (tmp_path / "runs" / name / "trained" / "report.json").is_file()
    assert result["arms"]["peers-sqlft-best"]["trained"]["best_of"]["samples"] == 4
    assert result["best_peer"] in ("peers-seed", "peers-kaggle")
    assert "ratio_constrained_to_best_peer" not in result

    # (c) and (d) decoded again under the schema constraint, best of 4, by another process: their rows
    # join the comparison, and the best sqlft row is the pick
    constrained = [
        name + bench_peers.CONSTRAINED for name in (bench_peers.DEFAULT.name, bench_peers.BEST.name)
    ]
    again = bench_peers.compare(
        0.02, every=1, limit=2, model_name="tiny-llama-warm", runs=tmp_path / "runs", arms=constrained
    )
    for name in constrained:
        row = again["arms"][name]
        trained = result["arms"][name.removesuffix(bench_peers.CONSTRAINED)]
        assert row["arm"]["schema_constrained"] and row["training"] == trained["training"]
        assert row["trained"]["best_of"]["samples"] == 4
    assert "ratio_constrained_to_best_peer" in again
    ours = {name: row for name, row in again["arms"].items() if name not in bench_peers.PEERS}
    assert again["arms"][again["best_sqlft"]]["exec_accuracy"] == max(
        r["exec_accuracy"] for r in ours.values()
    )
    assert again["heldout_goal_met"] == (again["arms"][again["best_sqlft"]]["exec_accuracy"] >= 0.2)

    # --rescore scores the best-of rows' saved answers again: under an unchanged rule, the same numbers
    rescored = bench_peers.rescore_rows(0.02, 1, 2, "tiny-llama-warm", tmp_path / "runs")
    assert sorted(rescored) == sorted([bench_peers.BEST.name, *constrained])
    for name in rescored:
        row = json.loads((tmp_path / "runs" / name / "row.json").read_text())
        assert row["trained"] == again["arms"][name]["trained"] and "rescored" in row
    import common

    lines = summarize.peers_section({**common.environment(), **again})
    assert any("with schema-constrained decoding: " in line for line in lines)  # both ratios in one line
    assert "sqlft's best arm here" in lines[-2]


def test_each_vote_rule_is_scored_on_the_same_saved_answers(spider_dir, tmp_path):
    import bench_consistency

    from sqlft.jsonl import write_jsonl

    gold = "SELECT count(*) FROM singer"  # 6 singers
    cross = "SELECT count(*) FROM singer JOIN concert"  # 36: what the closing's cross product gives
    empty = "SELECT count(*) FROM singer WHERE Age > 999 GROUP BY Age"  # no rows
    record = {"db_id": "concert_singer", "gold": gold, "pred": gold, "question": "How many singers?"}
    samples = [empty, empty, empty, cross, cross, gold]
    write_jsonl(
        [{**record, "candidates": [{"sql": s, "score": -0.1} for s in samples]}],
        tmp_path / "predictions.jsonl",
    )
    rules = list(bench_consistency.rule_accuracy(tmp_path).values())
    # majority: empty; a value first: the cross product; joins with a condition first: gold; greedy too: gold
    assert rules == [0.0, 0.0, 1.0, 1.0]
