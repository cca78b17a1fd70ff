"""screen.enabled = "auto" on a machine without a display: SDL's offscreen and dummy drivers are no screen."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hwutil import make_config

from hardware.screen import is_no_display
from kiosk import compose
from kiosk.app import App

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("driver, none", [("offscreen", True), ("dummy", True), ("OFFSCREEN", True),
                                          ("kmsdrm", False), ("x11", False), ("wayland", False)])
def test_drivers_that_draw_nowhere_are_no_display(driver, none):
    assert is_no_display(driver) is none


def test_auto_with_the_dummy_driver_runs_without_the_screen_and_on_still_draws(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    app = App(make_config({"state_dir": str(tmp_path / "state"), "screen": {"size": [320, 240]}}))
    try:
        with caplog.at_level(logging.WARNING, logger="hardware.screen"):
            assert compose.open_screen(app, required=False) is None
        assert "no display (SDL chose its 'dummy' driver" in caplog.text
        screen = compose.open_screen(app, required=True)  # "on": draw anyway (screenshots, tests)
        assert screen is not None
        screen.close()
    finally:
        app.close()


def test_a_kiosk_on_a_machine_without_a_display_says_so_and_logs_each_decision(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')  # screen.enabled = "auto", the default
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "run", "--source", "stdin", "--config", str(config)],
                          input="I-1001\nHELLO\n", capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "running without the screen: no display" in done.stderr
    decided = [line for line in done.stderr.splitlines() if " INFO kiosk.outputs: NOT_RECOGNISED" in line]
    assert len(decided) == 2
