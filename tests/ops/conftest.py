"""Helpers for the operations tests: external tools that CI installs (.ci/run) but a laptop may lack."""

from __future__ import annotations

import os
import shutil

import pytest


def need(tool: str) -> str:
    """The tool's path. Missing: a failure on CI (it must be installed there), a skip elsewhere."""
    path = shutil.which(tool)
    if path:
        return path
    message = f"{tool} is not installed (apt-get install -y {'systemd' if tool.startswith('system') else tool})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; .ci/run should have installed it")
    pytest.skip(message)
