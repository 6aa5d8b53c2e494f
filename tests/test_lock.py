"""constraints.txt is the tested set: well formed, within the ranges, installed by install.sh, in README."""

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lock", ROOT / "tools" / "lock.py")
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)


def test_lock_pins_every_dependency_within_its_range_and_leaves_torch_out():
    pins, date = lock.read_lock()
    assert date[:2] == "20", "the lock's header names the day it was written"
    assert "torch" not in pins and "sqlft" not in pins
    project = lock.tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec_text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(spec_text)
        key = lock.normalise(requirement.name)
        if key == "torch":
            continue
        assert key in pins, f"{requirement.name} is in pyproject.toml but not in constraints.txt"
        assert requirement.specifier.contains(pins[key][1], prereleases=True), (
            f"constraints.txt pins {requirement.name} {pins[key][1]}, "
            f"outside pyproject's {requirement.specifier}"
        )
    assert len(pins) > 50, "transitive packages are locked too"


def test_readme_gives_the_lock_date_and_versions():
    pins, date = lock.read_lock()
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(lock.README_START) + len(lock.README_START) : readme.index(lock.README_END)]
    assert block.strip() == lock.readme_lines(pins, date), "run `python tools/lock.py readme`"
    assert f"transformers {pins['transformers'][1]}" in block and date in block


@pytest.mark.skipif(
    not os.environ.get("SQLFT_EXPECT_LOCK"),
    reason="only where install.sh installed a new venv through the lock (.ci/run sets SQLFT_EXPECT_LOCK=1)",
)
def test_this_environment_is_the_lock():
    import sys

    problems = lock.differences(lock.read_lock()[0], lock.freeze(sys.executable))
    assert problems == [], "\n".join(problems)


def test_differences_and_moves_name_each_package():
    old = lock.parse_pins("a==1.0\nb==2.0\nc==3.0\n", "old")
    new = lock.parse_pins("A==1.0\nb==2.1\nd==4.0\n", "new")
    assert lock.differences(old, new) == ["b: locked 2.0, installed 2.1", "c: locked 3.0, not installed"]
    assert lock.moved(old, new) == ["b 2.0 -> 2.1", "d 4.0 (new)", "c 3.0 (gone)"]


def test_a_hand_edited_lock_line_is_refused_with_the_fix():
    with pytest.raises(SystemExit, match=r"constraints.txt:2: 'b>=2' is not 'name==version'.*lock.py update"):
        lock.parse_pins("a==1\nb>=2\n", "constraints.txt")


def test_failed_tests_come_from_pytests_summary():
    output = "....F\nFAILED tests/test_x.py::test_y - AssertionError\nERROR tests/test_z.py - boom\n1 failed"
    assert lock.failed_tests(output) == [
        "FAILED tests/test_x.py::test_y - AssertionError",
        "ERROR tests/test_z.py - boom",
    ]


def run_install(tmp_path, *args):
    """install.sh with a stand-in interpreter that records each pip call instead of installing."""
    tmp_path.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\n[ "$1" = "-c" ] && exit 0\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    result = subprocess.run(
        ["bash", str(ROOT / "install.sh"), *args],
        env={**os.environ, "PYTHON": str(fake)},
        capture_output=True,
        text=True,
    )
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_install_goes_through_the_lock_unless_asked_for_the_latest(tmp_path):
    result, calls = run_install(tmp_path / "locked", "--dev")
    assert result.returncode == 0, result.stderr
    # the stand-in "has" torch, which is never reinstalled: the embedded model's package, then sqlft
    assert len(calls) == 2 and all("-c constraints.txt" in call for call in calls)
    assert calls[-1].endswith("-e .[dev]")
    result, calls = run_install(tmp_path / "latest", "--latest")
    assert result.returncode == 0 and calls[-1].endswith("-e .")
    assert not any("constraints.txt" in call for call in calls)


def test_install_refuses_an_unknown_option(tmp_path):
    result, calls = run_install(tmp_path, "--lates")
    assert result.returncode == 2 and "--lates" in result.stderr and calls == []
