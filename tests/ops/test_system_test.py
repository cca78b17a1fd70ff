"""scripts/system-test's own edges; the test itself runs from .ci/run (root, minutes), not here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_TEST = REPO / "scripts" / "system-test"


def test_bad_options_are_refused_with_exit_2():
    result = subprocess.run(["bash", str(SYSTEM_TEST), "--arch", "sparc"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--arch takes amd64, arm64 or all" in result.stderr
    result = subprocess.run(["bash", str(SYSTEM_TEST), "--fast"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unknown option --fast" in result.stderr


def test_without_root_it_skips_and_says_why():
    command = ["bash", str(SYSTEM_TEST), "--arch", "amd64"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and no setpriv to drop it")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("system-test: skipped: needs root (debootstrap, systemd-nspawn, nsenter); "
                                     "run: sudo scripts/system-test")
