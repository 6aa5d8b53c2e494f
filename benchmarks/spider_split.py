"""The fixed split of Spider dev by database that the learning benchmarks share.

Databases were dealt largest first, alternately, so each side holds about half the questions and
a mix of sizes. `wta_1` ships without a .sqlite file and is left out. The held-out side has no
flight_2, whose many empty-result golds let wrong queries "match" (DESIGN.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPIDER = Path(__file__).resolve().parents[2] / "shared" / "spider"
SYSTEM = "Answer with one SQLite query."  # the demo preset's short system prompt
TRAIN_DBS = (  # 495 questions
    "world_1",
    "dog_kennels",
    "flight_2",
    "network_1",
    "concert_singer",
    "orchestra",
    "employee_hire_evaluation",
    "museum_visit",
    "battle_death",
)
HELDOUT_DBS = (  # 477 questions
    "car_1",
    "cre_Doc_Template_Mgt",
    "student_transcripts_tracking",
    "tvshow",
    "pets_1",
    "poker_player",
    "course_teach",
    "singer",
    "voter_1",
    "real_estate_properties",
)
EXCLUDED = ("wta_1",)
HELDOUT_QUESTIONS = 477  # every arm is scored on all of them (or on the same every-n-th)


def split_records(
    tokenizer: Any,
    schema: str,
    sample_values: int,
    spider: Path = SPIDER,
    value_retrieval: int = 0,
) -> tuple[list[dict], list[dict], Any]:
    """Spider dev as prompt/completion records: (train side, held-out side, the Prepared of all).

    No length guard: every held-out question is scored whatever its prompt's length (a guard made a
    longer schema format drop 12 long-schema questions, so its arm was scored on other, easier
    questions), and training drops its over-long records itself (sqlft.train, counted)."""
    from sqlft.data.prepare import prepare_records

    prepared = prepare_records(
        "spider",
        spider,
        "dev",
        schema_style=schema,
        sample_values=sample_values,
        value_retrieval=value_retrieval,
        tokenizer=tokenizer,
        system=SYSTEM,
    )
    unknown = {r["db_id"] for r in prepared.records} - set(TRAIN_DBS + HELDOUT_DBS + EXCLUDED)
    if unknown:
        raise ValueError(f"{spider}: databases {sorted(unknown)} are in no side of the split. Fix: add them")
    train = [r for r in prepared.records if r["db_id"] in TRAIN_DBS]
    heldout = [r for r in prepared.records if r["db_id"] in HELDOUT_DBS]
    if spider == SPIDER and len(heldout) != HELDOUT_QUESTIONS:
        raise ValueError(
            f"{spider}: {len(heldout)} held-out questions, not {HELDOUT_QUESTIONS}: arms would differ"
        )
    return train, heldout, prepared
