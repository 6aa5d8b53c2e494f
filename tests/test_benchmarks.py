"""The benchmark helpers that README's numbers come from: the Spider split and the summary."""

import json
import sys
from collections import Counter
from pathlib import Path

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
