"""The serial scanner: framing, loop:// through a real Gate, and a pty pair unplugged and plugged back in."""

from __future__ import annotations

import os
import re
from dataclasses import replace

import pytest
from hwutil import drain, make_config
from hypothesis import given
from hypothesis import strategies as st

from hardware.serial_scanner import MAX_CODE, LineFramer, SerialScanner, SerialSettings, terminator_bytes
from kiosk.errors import ConfigError
from kiosk.model import Verdict
from kiosk.ports import Faults
from tests.kiosk.waits import wait_for


@pytest.mark.parametrize("name, raw", [("CR", b"\r"), ("LF", b"\n"), ("CRLF", b"\r\n"), ("0x03", b"\x03")])
def test_terminators(name, raw):
    assert terminator_bytes(name) == raw


def test_framer_joins_chunks_and_splits_codes():
    framer = LineFramer(b"\r\n")
    assert framer.feed(b"I-10") == []
    assert framer.feed(b"01\r") == []
    assert framer.feed(b"\nO-2001\r\nI-") == [b"I-1001", b"O-2001"]
    assert framer.feed(b"1002\r\n") == [b"I-1002"]


def test_over_long_line_comes_out_once_and_cut_then_framing_recovers():
    framer = LineFramer(b"\r")
    out = framer.feed(b"A" * 300)
    assert out == [b"A" * (MAX_CODE + 1)]
    assert framer.feed(b"B" * 5000) == []  # the rest of the same run is dropped...
    assert len(framer._buffer) <= MAX_CODE  # ...not buffered
    assert framer.feed(b"C\rI-1001\r") == [b"I-1001"]


def test_over_long_line_within_one_chunk_is_cut():
    assert LineFramer(b"\n").feed(b"x" * 400 + b"\nok\n") == [b"x" * (MAX_CODE + 1), b"ok"]


@given(codes=st.lists(st.binary(min_size=1, max_size=MAX_CODE).filter(lambda b: b"\r" not in b), max_size=8),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10))
def test_framer_recovers_codes_however_the_bytes_are_chunked(codes, cuts):
    stream = b"".join(c + b"\r" for c in codes)
    framer = LineFramer(b"\r")
    out = []
    start = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        out += framer.feed(stream[start:cut])
        start = max(start, cut)
    assert out == codes


def scanner_for(url: str, faults: Faults, **serial) -> SerialScanner:
    settings = SerialSettings.from_config(make_config({"serial": {"url": url, **serial}}))
    return SerialScanner(replace(settings, reconnect_min_s=0.02, reconnect_max_s=0.1), faults)


def test_settings_are_read_and_converted_once():
    config = make_config({"serial": {"url": "/dev/serial/by-id/usb-scanner", "baudrate": 115200, "terminator": "0x03",
                                     "prefix": "]Q1", "suffix": "#", "reconnect_max_s": 7}})
    assert SerialSettings.from_config(config) == SerialSettings(
        url="/dev/serial/by-id/usb-scanner", baudrate=115200, terminator=b"\x03", prefix=b"]Q1", suffix=b"#",
        reconnect_max_s=7.0)
    assert SerialSettings.from_config(config, url="loop://").url == "loop://"  # --simulate


def test_loop_url_through_the_gate(gate, faults):
    scanner = scanner_for("loop://", faults, terminator="CR", prefix="]Q1", suffix="#")
    scanner.start(gate.submit)
    try:
        wait_for(scanner.connected.is_set, "the loop:// port opened")
        scanner.port.write(b"]Q1I-1001#\r" + b"Z" * 300 + b"\r\n]Q1O-2001#\r")
        first, overlong, last = drain(gate, 3)
    finally:
        scanner.stop()
    assert first.verdict is Verdict.ADMIT and first.customer_id == "I-1001" and first.source == "serial"
    assert overlong.verdict is Verdict.NOT_RECOGNISED and "longer than 256" in overlong.reason
    assert last.verdict is Verdict.ADMIT and last.customer_id == "O-2001"
    assert gate.scans.empty()


def test_invalid_utf8_is_a_verdict_not_a_crash(gate, faults):
    scanner = scanner_for("loop://", faults, terminator="LF")
    scanner.start(gate.submit)
    try:
        wait_for(scanner.connected.is_set, "the loop:// port opened")
        scanner.port.write(b"\xff\xfe\n")
        (decision,) = drain(gate, 1)
    finally:
        scanner.stop()
    assert decision.verdict is Verdict.NOT_RECOGNISED
    assert "UTF-8" in decision.reason


def test_empty_url_is_a_config_error(faults):
    config = make_config({"serial": {"url": ""}})
    with pytest.raises(ConfigError, match=r"^test\.toml: serial\.url: is empty; name the scanner's port"):
        SerialSettings.from_config(config)


class Pty:
    """A pty pair whose slave is reached through a symlink, like /dev/serial/by-id/...; `unplug`/`plug`."""

    def __init__(self, link):
        self.link = link
        self.master = -1
        self.plug()

    def plug(self):
        self.master, slave = os.openpty()
        target = os.ttyname(slave)
        os.close(slave)
        tmp = f"{self.link}.new"
        os.symlink(target, tmp)
        os.replace(tmp, self.link)

    def unplug(self):
        os.close(self.master)
        self.master = -1

    def send(self, data: bytes):
        os.write(self.master, data)


def test_unplugged_scanner_is_a_fault_then_reconnects(tmp_path, caplog):
    faults = Faults()
    pty = Pty(str(tmp_path / "scanner"))
    received = []
    scanner = scanner_for(str(tmp_path / "scanner"), faults)
    scanner.start(received.append)
    try:
        wait_for(scanner.connected.is_set, "the pty opened")
        pty.send(b"I-1001\r")
        wait_for(lambda: received, "the first code")
        pty.unplug()
        wait_for(lambda: "serial" in faults.active(), "the unplugging seen as a fault")
        wait_for(lambda: "not connected" in faults.active().get("serial", ""), "the vanished port retried")
        pty.plug()
        wait_for(lambda: "serial" not in faults.active(), "the fault cleared once plugged back in")
        wait_for(scanner.connected.is_set, "the pty reopened")
        pty.send(b"O-2001\r")
        wait_for(lambda: len(received) == 2, "the code after reconnecting")
    finally:
        scanner.stop()
        if pty.master >= 0:
            pty.unplug()
    assert [s.raw for s in received] == [b"I-1001", b"O-2001"]
    errors = [r.getMessage() for r in caplog.records if r.name == "hardware.serial_scanner" and r.levelname == "ERROR"]
    assert len(errors) == 1 and "went away" in errors[0]  # once per outage, not once per retry


def test_scanner_absent_at_start_does_not_stop_anything(tmp_path, faults):
    scanner = scanner_for(str(tmp_path / "nothing-here"), faults)
    scanner.start(lambda scan: None)
    try:
        wait_for(lambda: "serial" in faults.active(), "the absent port seen as a fault")
    finally:
        scanner.stop()
    assert not scanner.connected.is_set()


def test_spy_url_logs_the_traffic_of_a_real_port(tmp_path, faults):
    pty = Pty(str(tmp_path / "scanner"))
    log_file = tmp_path / "spy.txt"
    received = []
    scanner = scanner_for(f"spy://{tmp_path / 'scanner'}?file={log_file}", faults)
    scanner.start(received.append)
    try:
        wait_for(scanner.connected.is_set, "the spied pty opened")
        pty.send(b"I-1001\r")
        wait_for(lambda: received, "the code read through spy://")
    finally:
        scanner.stop()
        pty.unplug()
    assert received[0].raw == b"I-1001"
    dumped = re.findall(r" RX +[0-9A-F]{4}  ((?:[0-9A-F]{2} )+)", log_file.read_text())  # spy's hex dump
    assert bytes.fromhex("".join(dumped)) == b"I-1001\r"
