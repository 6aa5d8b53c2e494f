import pytest

from sqlft.data.records import DataError, Example, LoadReport
from sqlft.prompts import (
    LengthGuard,
    build_records,
    completion_text,
    length_stats,
    load_template,
    render_prompt,
    shipped_templates,
)


class WordTokenizer:
    """A stand-in tokenizer: one token per whitespace-separated word, with an EOS text."""

    eos_token = "</s>"
    chat_template = None

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(range(len(text.split())))}


class FakeSchema:
    def __init__(self, text):
        self.text = text

    def render(self, style, values=None):
        return f"[{style}] {self.text}"


def test_shipped_templates_have_both_fields():
    assert {"default", "plain"} <= set(shipped_templates())
    for name in shipped_templates():
        filled = load_template(name).fill("CREATE TABLE t(a)", "How many?")
        assert "CREATE TABLE t(a)" in filled and "How many?" in filled


def test_user_template_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text('Q: {question}\nS: {schema}\nA JSON literal {{"k": 1}}\n')
    template = load_template(path)
    assert template.fill("S1", "Q1") == 'Q: Q1\nS: S1\nA JSON literal {"k": 1}'


@pytest.mark.parametrize(
    "text, message",
    [
        ("Only {question}", "expected exactly"),
        ("{schema} {question} {extra}", "extra"),
        ("{schema {question}", ""),
    ],
)
def test_bad_template_names_the_file_and_fix(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"bad\.txt.*{message}.*Fix|bad\.txt.*Fix"):
        load_template(path)


def test_unknown_template_name_lists_the_shipped_ones(tmp_path):
    with pytest.raises(DataError, match="default"):
        load_template("nonexistent")
    with pytest.raises(DataError, match="not found"):
        load_template(tmp_path / "missing.txt")


def test_completion_is_the_sql_alone_then_eos():
    assert completion_text("  SELECT 1 ", WordTokenizer()) == "SELECT 1</s>"
    assert completion_text("SELECT 1") == "SELECT 1"


def test_prompt_without_chat_template_is_the_filled_template():
    prompt = render_prompt(load_template("plain"), "t(a)", "How many?", WordTokenizer())
    assert prompt.endswith("-- SQLite query:\n") and "t(a)" in prompt


def test_length_guard_drops_and_counts_never_truncates():
    examples = [
        Example("short question", "SELECT 1", "test", db_id="a"),
        Example("a much longer question " * 20, "SELECT 2", "test", db_id="a"),
        Example("short again", "SELECT 3", "test", db_id="a"),
    ]
    report = LoadReport("test", "mem")
    records = build_records(
        examples,
        lambda e: FakeSchema("t(a)"),
        report,
        tokenizer=WordTokenizer(),
        max_length=40,
        style="compact",
    )
    assert [r["sql"] for r in records] == ["SELECT 1", "SELECT 3"]
    assert all(r["completion"].endswith("</s>") and "[compact] t(a)" in r["prompt"] for r in records)
    assert report.kept == 2 and sum(report.dropped.values()) == 1
    assert "max_length=40" in next(iter(report.dropped))


def test_a_max_length_that_no_record_fits_stops_with_the_length_needed():
    examples = [Example("which one " * 20, "SELECT 1", "test", db_id="a")] * 2
    with pytest.raises(
        DataError, match=r"mem: no record fits max_length=10 tokens \(the shortest needs \d+\)"
    ):
        build_records(
            examples,
            lambda e: FakeSchema("t(a)"),
            LoadReport("test", "mem"),
            tokenizer=WordTokenizer(),
            max_length=10,
        )


def test_missing_schema_is_a_counted_skip_and_strict_raises():
    def schema_for(example):
        if example.db_id == "missing":
            raise DataError(f"unknown db_id {example.db_id!r}")
        return FakeSchema("t(a)")

    examples = [
        Example("q1", "SELECT 1", "t", db_id="ok"),
        Example("q2", "SELECT 2", "t", db_id="missing"),
        Example("q3", "SELECT 3", "t", db_id="ok"),
    ]
    report = LoadReport("t", "f.json")
    assert [r["question"] for r in build_records(examples, schema_for, report)] == ["q1", "q3"]
    assert report.dropped == {"schema not found": 1}
    with pytest.raises(DataError, match=r"f\.json: record 1 \(db_id=missing\)"):
        build_records(examples, schema_for, LoadReport("t", "f.json", strict=True))


def test_length_guard_needs_a_tokenizer():
    with pytest.raises(DataError, match="--tokenizer"):
        build_records([], None, LoadReport("t", "x"), max_length=10)


def test_length_stats_nearest_rank():
    stats = length_stats(list(range(1, 101)))
    assert stats == {"count": 100, "p50": 50, "p95": 95, "max": 100}
    assert length_stats([]) == {}
    guard = LengthGuard(WordTokenizer(), 3)
    assert guard.fits("a b", "c") == (True, 3) and guard.fits("a b c", "d") == (False, 4)


def test_max_length_guards_training_data_and_every_eval_question_is_asked(tmp_path):
    """A dropped long-schema dev question leaves an easier set to score: the eval section is asked
    whole, whatever prompt.max_length says; training records over it are dropped and counted."""
    from sqlft import recipe

    config, _ = recipe.setup("smoke", {"prompt": {"max_length": 200}}, str(tmp_path / "run"))
    tokenizer = recipe.load_tokenizer(config)
    dev = recipe.prepare(config, config.eval.data, tokenizer)
    assert len(dev.records) == config.eval.data.limit
    assert dev.prompt_tokens["max"] > 200  # longer than max_length, asked all the same
    phase1 = recipe.prepare(config, config.phase1.data, tokenizer)
    assert len(phase1.records) < config.phase1.data.limit
