"""The pinned versions: constraints.txt (what the suite runs with, what a Pi installs) and constraints-oldest.txt
(the floors of pyproject.toml, `./scripts/test --oldest`) stay in step with pyproject.toml and the venv."""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# what scripts/test installs (.[dev]); the pi extra is apt's on a Pi, bench is for scripts/bench only
WANTED = [Requirement(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]]


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not NAME==VERSION"
            assert normal(name) not in found, f"{path.name}: {name} pinned twice"
            found[normal(name)] = Version(version)
    return found


def test_every_dependency_has_a_pin_within_its_range():
    pinned = pins(REPO / "constraints.txt")
    for requirement in WANTED:
        name = normal(requirement.name)
        assert name in pinned, f"constraints.txt has no pin for {requirement}: run scripts/pin"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject.toml's {requirement}"


def test_the_oldest_constraints_pin_every_dependency_at_its_floor():
    floors = {}
    for requirement in WANTED:
        lowest = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert len(lowest) == 1, f"pyproject.toml: {requirement} needs one floor (NAME>=VERSION) to test"
        floors[normal(requirement.name)] = Version(lowest[0])
    assert pins(REPO / "constraints-oldest.txt") == floors, "constraints-oldest.txt is behind: run scripts/pin"


def test_the_suite_runs_with_the_versions_its_constraints_file_pins():
    """scripts/test installs with constraints.txt (--oldest: constraints-oldest.txt) and says which."""
    path = Path(os.environ.get("KIOSK_CONSTRAINTS", REPO / "constraints.txt"))
    wrong = {}
    for name, version in pins(path).items():
        try:
            installed = Version(md.version(name))
        except md.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = f"{installed} installed, {version} pinned"
    assert wrong == {}, f"the venv is not what {path.name} pins (./scripts/test installs it): {wrong}"


def dry_run(*args: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_") and k != "PYTHON"}
    out = subprocess.run([str(REPO / "scripts" / "test"), *args], capture_output=True, text=True, env=env,
                         timeout=30, check=True).stdout
    return dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in out.splitlines())


def test_scripts_test_uses_the_suites_pins_and_passes_pytests_arguments_on():
    said = dry_run("--dry-run", "-q", "tests/kiosk")
    assert said == {"python": "python3", "venv": f"{REPO}/.venv", "constraints": f"{REPO}/constraints.txt",
                    "pytest": "-q tests/kiosk"}


def test_scripts_test_oldest_uses_the_floors_in_a_venv_of_its_own_beside_apts_pygame():
    said = dry_run("--oldest", "--dry-run", "-k", "journal")
    assert said == {"python": "/usr/bin/python3", "venv": f"{REPO}/.venv-oldest (--system-site-packages)",
                    "constraints": f"{REPO}/constraints-oldest.txt",
                    "pytest": "--deselect tests/test_lint.py::test_mypy_finds_nothing_in_kiosk_and_hardware -k journal"}


def test_scripts_test_oldest_without_debians_pygame_says_what_to_install(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_") and k != "PYTHON"}
    env["KIOSK_OLDEST_PYTHON"] = str(tmp_path / "no-python")
    done = subprocess.run([str(REPO / "scripts" / "test"), "--oldest", "-q"], capture_output=True, text=True,
                          env=env, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert "needs pygame 2.1.2" in done.stderr and "found none" in done.stderr
    assert "apt-get install python3-pygame" in done.stderr
