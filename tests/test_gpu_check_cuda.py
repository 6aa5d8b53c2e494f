"""benchmarks/gpu_check.py --cuda: its orchestration, budget and self-containment, proven on the CPU."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the check imports its siblings, as when run as a script

import gpu_check_cuda  # noqa: E402
import gpu_check_env  # noqa: E402
from gpu_check_steps import Gpu, _verdict  # noqa: E402

NAMES = [name for name, _ in gpu_check_cuda.SHARES]


def repository_copy(dest: Path) -> Path:
    """The files git would carry (tracked and new, not ignored), copied to `dest`: no ../shared beside it."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def readme_command() -> str:
    """The one command line README's GPU section gives for the GPU machine."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"one line runs it.*?```\n(.*?)```", text, re.S)
    assert block, "README: no command block after 'one line runs it'"
    lines = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 1 and len(lines[0]) < 2000 and "--cuda" in lines[0] and '"$OUT"' in lines[0]
    return lines[0]


def test_readmes_command_dry_runs_from_a_bare_copy_every_check_in_order_within_budget(tmp_path):
    copy = repository_copy(tmp_path / "clone" / "sqlft")
    assert not (copy.parent / "shared").exists()
    # as on the GPU machine: sqlft not installed, only the image's packages and the wheels importable
    command = (
        readme_command().replace("--cuda", "--cuda --dry-run").replace("python3 ", f"{sys.executable} -S ")
    )
    site = str(gpu_check_env.image_site(tmp_path / "image_site"))
    env = {**os.environ, "PYTHONPATH": site, "OMP_NUM_THREADS": "1", "OUT": str(tmp_path / "out")}
    (tmp_path / "out").mkdir()
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", command], cwd=copy, env=env, capture_output=True, text=True, timeout=300
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "out" / "gpu_check_cuda.json").read_text())
    checks = result["checks"]
    assert [c["name"] for c in checks] == NAMES
    assert all(set(c) >= {"name", "budget_s", "seconds", "verdict", "detail"} for c in checks)
    assert result["budget_s"] == 360 and result["seconds"] <= 360
    shares = dict(gpu_check_cuda.SHARES)  # each gets at least its share when those before end early
    assert all(shares[c["name"]] * 360 <= c["budget_s"] + 0.1 for c in checks)
    assert all(c["seconds"] <= c["budget_s"] + 1 for c in checks)
    assert all(c["verdict"] in ("pass", "dry-run", "skipped") for c in checks), checks
    assert all("read_outside_repository" not in c["detail"] for c in checks)
    imports = checks[0]["detail"]["imports"]["distributions"]
    assert {"torch", "transformers", "peft"} <= set(imports["image"])
    assert {"bitsandbytes", "trl", "datasets", "sqlglot"} <= set(imports["wheel"])
    assert not imports["not in the image's list or the wheels"]
    smoke = checks[NAMES.index("smoke_run")]["detail"]
    assert "no papermill" in smoke["how"]  # the image has no papermill, and neither does the dry run
    assert checks[NAMES.index("nf4_load")]["detail"]["would_run"]  # CUDA calls recorded, not made
    assert elapsed < 90  # the issue asks under a minute; loosely, on a shared 2-core machine


def test_json_is_rewritten_after_each_check(tmp_path, monkeypatch):
    snapshots = []
    write = gpu_check_cuda.write_json

    def spy(path, result):
        write(path, result)
        snapshots.append([c["name"] for c in json.loads(path.read_text())["checks"]])

    monkeypatch.setattr(gpu_check_cuda, "write_json", spy)
    only = {"generation_speed", "data_parallel"}
    gpu_check_cuda.run_all(tmp_path / "out.json", 60, dry_run=True, only=only)
    assert snapshots[:2] == [["generation_speed"], ["generation_speed", "data_parallel"]]


def test_a_check_over_its_share_is_stopped_and_the_run_goes_on(tmp_path):
    only = {"generation_speed", "data_parallel"}
    result = gpu_check_cuda.run_all(
        tmp_path / "out.json", 20, dry_run=True, stall="generation_speed", only=only
    )
    stalled, after = result["checks"]
    later = 20 * dict(gpu_check_cuda.SHARES)["data_parallel"]  # kept for the check after it
    assert stalled["verdict"] == "timeout" and stalled["budget_s"] == pytest.approx(20 - later, abs=0.2)
    assert stalled["seconds"] < stalled["budget_s"] + 5  # killed at its limit, not after the hour it sleeps
    assert after["verdict"] == "dry-run" and after["budget_s"] <= later and not result["ok"]


def test_wheels_script_fetches_exactly_the_wheels_the_check_installs():
    script = (BENCHMARKS / "gpu_wheels.sh").read_text()
    pinned = dict(re.findall(r'"([A-Za-z0-9_.-]+)==([0-9][^"]*)"', script))
    assert pinned == gpu_check_env.WHEELS | gpu_check_env.FALLBACKS
    image = gpu_check_env.requirement_closure(gpu_check_env.IMAGE)
    assert not set(map(gpu_check_env.canonical, gpu_check_env.WHEELS)) & image  # nothing the image has
    assert set(gpu_check_env.FALLBACKS) <= image  # newer copies of image packages, used only if needed
    wheels = set(map(gpu_check_env.canonical, gpu_check_env.WHEELS))
    assert gpu_check_env.requirement_closure(wheels) <= image | wheels  # what a wheel needs comes too


def test_image_site_holds_only_the_image_and_the_wheels(tmp_path):
    site = gpu_check_env.image_site(tmp_path / "site")
    assert (site / "torch").exists() and (site / "trl").exists() and (site / "bitsandbytes").exists()
    assert not (site / "papermill").exists() and not (site / "wandb").exists()
    env = {**os.environ, "PYTHONPATH": str(site)}
    hidden = subprocess.run([sys.executable, "-S", "-c", "import papermill"], env=env, capture_output=True)
    assert hidden.returncode != 0  # installed here, yet not importable in the image's stand-in


def test_missing_wheel_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check_env, "WHEELS", {"no-such-package-sqlft": "1.0"})
    monkeypatch.setattr(gpu_check_env, "WHEELS_DIR", tmp_path)
    result = gpu_check_env.install_wheels(dry_run=True)
    assert result["lacking"] == ["no-such-package-sqlft"]
    assert "gpu_wheels.sh" in result["problems"][0]
    monkeypatch.setattr(gpu_check_env, "WHEELS", {"torch": "2"})
    assert gpu_check_env.install_wheels(dry_run=True)["problems"] == []


def test_reads_outside_the_repository_are_recorded(tmp_path):
    outside = tmp_path / "shared.txt"
    outside.write_text("x")
    code = (
        "import sys; from pathlib import Path; from gpu_check_env import guard_reads, REPO\n"
        f"seen = guard_reads(Path({str(tmp_path / 'work')!r}))\n"
        f"open(REPO / 'README.md').close(); open({str(outside)!r}).close(); print(seen)"
    )
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == repr([str(outside)])


def test_dry_run_records_cuda_calls_and_a_problem_fails_a_check():
    gpu = Gpu(dry_run=True)
    assert gpu("load on cuda:0", pytest.fail, "must not run") is None
    assert _verdict(gpu, {"a": None}) == ("dry-run", {"a": None, "would_run": ["load on cuda:0"]})
    real = Gpu(dry_run=False)
    assert real("add", lambda a, b: a + b, 1, 2) == 3
    assert _verdict(real, {"x": {"problems": []}})[0] == "pass"
    assert _verdict(real, {"x": {"problems": ["lora_B did not move"]}})[0] == "fail"


def test_carried_wheels_are_unpacked_offline_into_the_site_folder(tmp_path, monkeypatch):
    import zipfile

    wheels, site = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "no_such_package_sqlft-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("no_such_package_sqlft/__init__.py", "VALUE = 42\n")
    monkeypatch.setattr(gpu_check_env, "WHEELS", {"no-such-package-sqlft": "1.0"})
    monkeypatch.setattr(gpu_check_env, "WHEELS_DIR", wheels)
    monkeypatch.setattr(gpu_check_env, "SITE", site)
    monkeypatch.setattr(gpu_check_env, "REPO", tmp_path)
    result = gpu_check_env.install_wheels(dry_run=False)
    assert not result["problems"] and result["unpacked"] == [
        "no_such_package_sqlft-1.0-py3-none-any.whl -> site"
    ]
    assert (site / "no_such_package_sqlft" / "__init__.py").read_text() == "VALUE = 42\n"


def test_a_carried_wheel_is_unpacked_only_where_the_image_is_too_old_for_another(tmp_path, monkeypatch):
    import zipfile
    from importlib.metadata import version

    def wheel(name: str, requires: str = "") -> None:
        with zipfile.ZipFile(tmp_path / f"{name}-1.0-py3-none-any.whl", "w") as archive:
            archive.writestr(f"{name}/__init__.py", "")
            meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{requires}"
            archive.writestr(f"{name}-1.0.dist-info/METADATA", meta)

    needs = ("pytest>=999", "numpy>=1", "packaging>=999")
    wheel("no_such_package_sqlft", "".join(f"Requires-Dist: {r}\n" for r in needs))
    wheel("pytest")
    wheel("numpy")
    monkeypatch.setattr(gpu_check_env, "WHEELS", {"no-such-package-sqlft": "1.0"})
    monkeypatch.setattr(gpu_check_env, "WHEELS_DIR", tmp_path)
    result = gpu_check_env.install_wheels(dry_run=True)
    assert [w.split()[0] for w in result["would_unpack"]] == [
        "no_such_package_sqlft-1.0-py3-none-any.whl",
        "pytest-1.0-py3-none-any.whl",  # numpy's stays packed: the installed numpy is new enough
    ]
    # packaging is not carried: the gap is recorded in the JSON and the run goes on
    gap = f"needs packaging>=999, the image has {version('packaging')}"
    assert result["unmet_requirements"] == [f"no_such_package_sqlft-1.0-py3-none-any.whl {gap}"]


@pytest.mark.slow  # trains the smoke preset's three phases (about 40 s)
def test_smoke_steps_run_on_the_cpu_with_only_the_images_packages_and_the_wheels(tmp_path):
    """What smoke_run calls on the GPU, run on the CPU under the image's stand-in (`python -S`): a module
    the image lacks on a path the dry run only records fails here (ROUGE's rouge_score did)."""
    env = {**gpu_check_env.child_env(tmp_path, dry_run=True), "OMP_NUM_THREADS": "1"}
    code = (
        "import json, sys; from pathlib import Path; from gpu_check_steps import _recipe_run\n"
        "overrides = {'model.placement': 'cpu', 'eval.schema_constrained': True}\n"
        "print(json.dumps(_recipe_run(overrides, Path(sys.argv[1]))))"
    )
    command = [*gpu_check_env.python(dry_run=True), "-c", code, str(tmp_path / "smoke")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["problems"] == ["the model sat on ['cpu'], not cuda:0"]  # the one thing a CPU cannot pass
    assert [result["steps"][phase]["steps"] for phase in ("phase1", "phase2", "phase3")] == [4, 4, 2]


def test_summarize_renders_each_checks_verdict_and_time_on_the_recorded_device():
    import summarize

    result = {
        "date": "2026-12-05T18:00:00+00:00", "command": "python3 benchmarks/gpu_check.py --cuda",
        "budget_s": 360, "t4_emulation": gpu_check_env.T4,
        "device": {"device": "NVIDIA H100 80GB HBM3", "gpus": 1},
        "checks": [
            {"name": "nf4_load", "budget_s": 43.2, "seconds": 12.3, "verdict": "pass", "detail": {}},
            {"name": "data_parallel", "budget_s": 40, "seconds": 3, "verdict": "skipped",
             "detail": {"reason": "1 GPU here"}},
        ],
    }  # fmt: skip
    lines = summarize.gpu_check_cuda_section(result)
    assert "NVIDIA H100 80GB HBM3 (1 GPU(s))" in lines[0] and "14.5 GiB" in lines[0]  # a T4, usable
    assert "| nf4_load | pass | 12 / 43 |  |" in lines
    assert "| data_parallel | skipped | 3 / 40 | 1 GPU here |" in lines


def test_triton_probe_says_when_trl_falls_back_to_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # importing it now raises ImportError
    assert gpu_check_env.probe_triton().startswith("absent")


def test_a_missing_optional_input_skips_its_check_with_the_reason(tmp_path, monkeypatch):
    import gpu_check_steps

    monkeypatch.setattr(gpu_check_steps, "SPIDER_SUBSET", tmp_path / "absent")
    verdict, detail = gpu_check_steps.check_generation_speed(Gpu(dry_run=False), tmp_path)
    assert verdict == "skipped" and "absent is missing" in detail["reason"]


def test_carried_wheels_are_the_locked_versions_the_suite_passed_with():
    canonical = gpu_check_env.canonical
    lines = (REPO / "constraints.txt").read_text().splitlines()
    locked = dict(
        re.match(r"([^=\s#]+)==(\S+)", line).groups() for line in lines if re.match(r"[^=\s#]+==", line)
    )
    locked = {canonical(name): version for name, version in locked.items()}
    assert {canonical(n): v for n, v in gpu_check_env.WHEELS.items()} == {
        canonical(n): locked[canonical(n)] for n in gpu_check_env.WHEELS
    }
