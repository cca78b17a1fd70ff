"""`kiosk selftest` and `kiosk relay-off` through the real CLI."""

from __future__ import annotations

from hwutil import make_config

from kiosk import compose
from kiosk.cli import main


def write_config(tmp_path, text: str) -> str:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_selftest_simulate_passes(tmp_path, capsys):
    assert main(["selftest", "--simulate", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for device in ("green light", "red light", "amber light", "buzzer", "relay", "exit button", "door", "camera"):
        assert any(line.startswith(device) and "  pass  " in line for line in out.splitlines()), device
    assert "decoded 'I-1001'" in out
    assert "0 failed" in out


def test_selftest_reports_a_missing_scanner_and_exits_non_zero(tmp_path, capsys):
    config = write_config(tmp_path, f'[gate]\nsources = ["serial"]\n[serial]\nurl = "{tmp_path}/no-such-port"\n'
                                    '[gpio]\npin_factory = "mock"\n[gpio.relay]\npin = 24\n[relay]\npulse_ms = 50\n')
    assert main(["selftest", "--config", config, "--timeout", "0.3"]) == 1
    out = capsys.readouterr().out
    assert "relay" in out and "serial scanner  FAIL" in out
    assert "not connected" in out
    assert "1 passed, 1 failed" in out


def test_selftest_echoes_a_code_through_loop_serial():
    config = make_config({"gate": {"sources": ["serial"]}, "serial": {"url": "loop://"}})
    (check,) = compose.selftest(config, simulate=False, timeout_s=2)
    assert check.ok and "read 'SELFTEST'" in check.detail


def test_selftest_fails_a_relay_pin_that_cannot_be_used():
    config = make_config({"gate": {"sources": []}, "gpio": {"pin_factory": "mock", "relay": {"pin": 99}}})
    (check,) = compose.selftest(config, simulate=False, timeout_s=1)
    assert check.device == "relay" and not check.ok and "gpio.relay.pin" in check.detail


def test_relay_off_without_a_relay(tmp_path, capsys):
    assert main(["relay-off", "--config", write_config(tmp_path, "")]) == 0
    assert "no relay configured" in capsys.readouterr().out


def test_relay_off_drives_the_pin_off(tmp_path, capsys):
    config = write_config(tmp_path, '[gpio]\npin_factory = "mock"\n[gpio.relay]\npin = "GPIO24"\nactive_high = false\n')
    assert main(["relay-off", "--config", config]) == 0
    assert "relay on pin GPIO24 is off" in capsys.readouterr().out


def test_relay_off_with_an_unusable_pin_factory_fails(tmp_path, capsys):
    config = write_config(tmp_path, '[gpio]\npin_factory = "pigpio"\n[gpio.relay]\npin = 24\n')
    assert main(["relay-off", "--config", config]) == 1
    assert "pigpio" in capsys.readouterr().err
