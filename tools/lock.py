"""The tested set of packages: constraints.txt, and the one way to move it.

    python tools/lock.py update   # new venv, newest versions the ranges allow, the test suite; the lock
                                  # is rewritten only when the tests pass, else: what moved, what broke
    python tools/lock.py check    # this environment against the lock (what .ci/run checks after install)
    python tools/lock.py readme   # README's requirements lines, from the lock

The lock is every package `bash install.sh --dev` brings into a new venv, transitive ones included, at
exact versions, except torch (a preinstalled build, Kaggle's CUDA one, is never replaced) and sqlft itself.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
README = ROOT / "README.md"
UNLOCKED = {"torch", "sqlft"}  # torch: never replace a preinstalled build; sqlft: the project itself
README_START, README_END = "<!-- lock:start -->", "<!-- lock:end -->"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def normalise(name: str) -> str:
    """PEP 503 name, so that `PyYAML`, `pyyaml` and `py_yaml` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(text: str, source: str) -> dict[str, tuple[str, str]]:
    """`name==version` lines (comments and blanks skipped) -> {normalised name: (name, version)}."""
    pins = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if not match:
            raise SystemExit(
                f"{source}:{number}: '{line}' is not 'name==version'; rewrite it with "
                "`python tools/lock.py update`"
            )
        pins[normalise(match[1])] = (match[1], match[2])
    return pins


def read_lock(path: Path = LOCK) -> tuple[dict[str, tuple[str, str]], str]:
    """The pins and the date the lock was written (from its header)."""
    text = path.read_text()
    date = re.search(r"on (\d{4}-\d{2}-\d{2})", text)
    return parse_pins(text, path.name), (date[1] if date else "an unknown date")


def freeze(python: str) -> dict[str, tuple[str, str]]:
    """What `pip freeze` reports for that interpreter, less the unlocked packages."""
    out = subprocess.run(
        [python, "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = parse_pins("\n".join(line for line in out.splitlines() if "==" in line), f"{python} -m pip freeze")
    return {key: pin for key, pin in pins.items() if key not in UNLOCKED}


def differences(lock: dict, installed: dict) -> list[str]:
    """One line per locked package that is missing or at another version."""
    lines = []
    for key, (name, version) in sorted(lock.items()):
        if key not in installed:
            lines.append(f"{name}: locked {version}, not installed")
        elif installed[key][1] != version:
            lines.append(f"{name}: locked {version}, installed {installed[key][1]}")
    return lines


def moved(old: dict, new: dict) -> list[str]:
    """What changed between two sets: upgrades, downgrades, new and dropped packages."""
    lines = [
        f"{new[k][0]} {old[k][1]} -> {new[k][1]}"
        for k in sorted(old.keys() & new.keys())
        if old[k][1] != new[k][1]
    ]
    lines += [f"{new[k][0]} {new[k][1]} (new)" for k in sorted(new.keys() - old.keys())]
    lines += [f"{old[k][0]} {old[k][1]} (gone)" for k in sorted(old.keys() - new.keys())]
    return lines


def failed_tests(pytest_output: str) -> list[str]:
    """pytest's FAILED/ERROR summary lines (`-ra` prints them)."""
    return [line for line in pytest_output.splitlines() if line.startswith(("FAILED ", "ERROR "))]


def render_lock(pins: dict, date: str, torch_version: str) -> str:
    header = (
        "# The packages `bash install.sh --dev` installs, at the versions the test suite passed with.\n"
        f"# Written by `python tools/lock.py update` on {date} (Python {platform.python_version()}, "
        f"{sys.platform} {platform.machine()}, tested with torch {torch_version}); do not edit by hand.\n"
        "# torch is not pinned: install.sh never replaces a preinstalled build (Kaggle's CUDA torch).\n"
    )
    return header + "".join(
        f"{name}=={version}\n" for name, version in sorted(pins.values(), key=lambda p: normalise(p[0]))
    )


def direct_dependencies() -> list[str]:
    """The packages pyproject.toml names (dependencies and the dev extra), in its order."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [normalise(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0]) for spec in specs]


def readme_lines(pins: dict, date: str) -> str:
    """README's requirements paragraph: the lock's date and the versions of what sqlft asks for."""
    named = [f"{pins[key][0]} {pins[key][1]}" for key in direct_dependencies() if key in pins]
    return (
        f"Tested set (`constraints.txt`, locked on {date}; `bash install.sh` installs exactly this): "
        + ", ".join(named)
        + f", and {len(pins) - len(named)} packages they bring in. torch is not locked (see above)."
    )


def write_readme(pins: dict, date: str) -> None:
    text = README.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    README.write_text(text[:start] + "\n" + readme_lines(pins, date) + "\n" + text[end:])


def run_streaming(command: list[str], env: dict) -> tuple[int, str]:
    """Runs a command in the repository, echoing its output as it comes and keeping it."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    kept = []
    for line in process.stdout:
        sys.stdout.write(line)
        kept.append(line)
    return process.wait(), "".join(kept)


def update(venv: Path) -> int:
    """New venv, newest allowed versions, the whole test suite; a new lock only if it passes."""
    print(f"lock: new venv in {venv}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(venv),
        "PYTHON": python,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("PYTHONPATH", None)
    subprocess.run(["bash", "install.sh", "--dev", "--latest"], cwd=ROOT, env=env, check=True)
    new = freeze(python)
    torch_version = subprocess.run(
        [python, "-c", "import torch; print(torch.__version__)"], check=True, capture_output=True, text=True
    ).stdout.strip()
    old_lock = LOCK.read_text() if LOCK.exists() else None
    old_readme = README.read_text()
    changes = moved(parse_pins(old_lock, LOCK.name) if old_lock else {}, new)
    print("lock: moved since the current lock:\n  " + ("\n  ".join(changes) or "nothing"), flush=True)
    # The suite checks the lock itself (well formed, in README), so it runs against the candidate.
    date = datetime.date.today().isoformat()
    LOCK.write_text(render_lock(new, date, torch_version))
    write_readme(new, date)
    rc, output = 1, ""
    try:
        rc, output = run_streaming([python, "-m", "pytest", "-q"], env)
    finally:
        if rc != 0:  # failed or interrupted: the tested lock stays
            README.write_text(old_readme)
            LOCK.write_text(old_lock) if old_lock is not None else LOCK.unlink()
    if rc != 0:
        print(f"\nlock: the test suite failed (exit {rc}); constraints.txt is unchanged.")
        print("lock: packages that moved:\n  " + ("\n  ".join(changes) or "none: the failure is not theirs"))
        print("lock: tests that broke:\n  " + ("\n  ".join(failed_tests(output)) or "(see the output above)"))
        return 1
    print(f"lock: tests passed; wrote {LOCK.name} ({len(new)} packages) and README's requirements lines.")
    return 0


def check() -> int:
    """This interpreter's packages against the lock."""
    pins, date = read_lock()
    problems = differences(pins, freeze(sys.executable))
    if problems:
        print(
            f"lock: this environment differs from constraints.txt (locked on {date}):\n  "
            + "\n  ".join(problems)
            + "\nFix: bash install.sh --dev (installs through the lock), or move the lock with "
            "`python tools/lock.py update`."
        )
        return 1
    print(f"lock: all {len(pins)} locked packages are installed at their locked versions ({date}).")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["update", "check", "readme"])
    parser.add_argument("--venv", type=Path, help="where `update` builds its venv (default: a temporary one)")
    args = parser.parse_args()
    if args.command == "check":
        return check()
    if args.command == "readme":
        write_readme(*read_lock())
        return 0
    if args.venv:
        return update(args.venv)
    with tempfile.TemporaryDirectory(prefix="sqlft-lock-") as folder:
        return update(Path(folder) / "venv")


if __name__ == "__main__":
    sys.exit(main())
