"""shellcheck on every shell script in scripts/ and on .ci/run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import need

REPO = Path(__file__).resolve().parents[2]


def _is_shell(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        first = fh.readline()
    return first.startswith(b"#!") and first.rstrip().split(b"/")[-1].split()[-1] in (b"bash", b"sh") \
        or first.startswith(b"# shellcheck shell=")


SCRIPTS = sorted(p for p in [*(REPO / "scripts").iterdir(), REPO / ".ci" / "run"] if _is_shell(p))


def test_the_scripts_are_found():
    names = {p.name for p in SCRIPTS}
    assert {"provision", "run", "_venv.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck(script: Path):
    tool = need("shellcheck")
    # -x follows `source` lines; paths in `# shellcheck source=` are relative to the repo root.
    result = subprocess.run([tool, "-x", str(script.relative_to(REPO))], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
