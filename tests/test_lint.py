"""The linter and the type checker are part of the suite: `./scripts/test` (and so CI) fails on any finding.

`scripts/lint` runs the same two commands on their own. The rules are in pyproject.toml ([tool.ruff],
[tool.mypy]); both tools come with the `dev` extra, pinned in constraints.txt.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing() -> None:
    done = run("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing_in_kiosk_and_hardware() -> None:
    done = run("mypy")  # files and strictness from [tool.mypy]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues found" in done.stdout


def test_the_checks_can_fail(tmp_path: Path) -> None:
    # the same configuration finds a typed-interface breach and an unused import in a file that has them
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef untyped(x):\n    return x + 1\n")
    ruff = run("ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad))
    assert ruff.returncode == 1 and "F401" in ruff.stdout
    mypy = run("mypy", "--config-file", str(ROOT / "pyproject.toml"), "--disallow-untyped-defs", str(bad))
    assert mypy.returncode == 1 and "no-untyped-def" in mypy.stdout
