"""Adapters chosen by config: no silent fallback to a fake, a requested one is logged as a warning."""

from __future__ import annotations

import importlib.util

import pytest
from hwutil import drain, make_config, wait_for

from hardware.camera import CameraSource
from hardware.serial_scanner import SerialScanner
from kiosk import compose, demo
from kiosk.errors import CameraError, ConfigError
from kiosk.model import Verdict


def make_sources(config, faults, *, names, simulate, demo_scans):
    """The sources `kiosk run` builds for `names`, from the composition root's readers."""
    made = compose.readers(config, names, simulate=simulate, demo_scans=demo_scans)
    return [make(faults) for make in made.values() if make is not None]


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here")
def test_picamera2_backend_never_falls_back_to_the_simulation(faults):
    with pytest.raises(CameraError, match="python3-picamera2"):
        make_sources(make_config(), faults, names=["camera"], simulate=False, demo_scans=demo.SCANS)


def test_simulate_is_a_logged_fallback_and_the_demo_stream_reaches_the_gate(faults, gate, caplog):
    (camera,) = make_sources(make_config(), faults, names=["camera"], simulate=True, demo_scans=demo.SCANS)
    assert isinstance(camera, CameraSource)
    assert any(r.levelname == "WARNING" and "simulated" in r.getMessage() for r in caplog.records)
    camera.start(gate.submit)
    try:
        (first,) = drain(gate, 1)
        wait_for(lambda: camera.stats.captured >= 10)
    finally:
        camera.stop()
    assert first.raw == demo.SCANS[0] and first.verdict is Verdict.ADMIT and first.source == "camera"
    assert gate.scans.empty()  # the code stayed in view for many frames but was submitted once
    assert camera.stats.unchanged > 0


def test_simulated_backend_chosen_by_config_needs_no_flag(faults, caplog):
    config = make_config({"camera": {"backend": "simulated"}})
    (camera,) = make_sources(config, faults, names=["camera"], simulate=False, demo_scans=demo.SCANS)
    assert isinstance(camera, CameraSource)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_serial_under_simulate_reads_loop_url(faults, caplog):
    config = make_config({"serial": {"url": "/dev/ttyACM0"}})
    (scanner,) = make_sources(config, faults, names=["serial"], simulate=True, demo_scans=[])
    assert isinstance(scanner, SerialScanner) and scanner.url == "loop://"
    assert any("loop://" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    (real,) = make_sources(config, faults, names=["serial"], simulate=False, demo_scans=[])
    assert real.url == "/dev/ttyACM0"


def test_hid_needs_a_device_unless_simulating(faults, caplog):
    with pytest.raises(ConfigError, match="hid.device"):
        make_sources(make_config(), faults, names=["hid"], simulate=False, demo_scans=[])
    assert make_sources(make_config(), faults, names=["hid"], simulate=True, demo_scans=[]) == []
    assert any("hid.device" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_each_source_once_in_order(faults):
    config = make_config({"camera": {"backend": "simulated"}, "serial": {"url": "loop://"}})
    sources = make_sources(config, faults, names=["serial", "camera", "serial"], simulate=False, demo_scans=[])
    assert [s.name for s in sources] == ["serial", "camera"]
