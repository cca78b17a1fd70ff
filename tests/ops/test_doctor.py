"""kiosk doctor: each check against temporary paths, a real local upstream, and the command end to end."""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kiosk import config as configuration
from kiosk import doctor
from kiosk.cli import main
from kiosk.doctor import FAIL, OK, SKIP, WARN


def make_config(data: dict[str, Any] | None = None) -> configuration.Config:
    return configuration.Config(configuration.validate(data or {}, "test.toml"), "test.toml")


# -- token ---------------------------------------------------------------------------------

def test_token_not_needed_without_upstream():
    assert doctor.check_token("", "").status == SKIP


def test_token_missing_while_upstream_is_set():
    check = doctor.check_token("", "https://hub.example.org/kiosk/v1")
    assert check.status == FAIL and "token_file" in check.message


def test_token_file_open_to_others_fails_with_chmod(tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("abc\n")
    token.chmod(0o644)
    check = doctor.check_token(str(token), "https://x")
    assert check.status == FAIL and check.fix == f"sudo chmod 600 {token}"
    token.chmod(0o600)
    assert doctor.check_token(str(token), "https://x").status == OK


@pytest.mark.parametrize("content", ["", "two words\n", "a\nb\n"])
def test_token_must_be_one_line(tmp_path: Path, content: str):
    token = tmp_path / "token"
    token.write_text(content)
    token.chmod(0o600)
    assert doctor.check_token(str(token), "https://x").status == FAIL


def test_token_file_absent(tmp_path: Path):
    check = doctor.check_token(str(tmp_path / "nope"), "https://x")
    assert check.status == FAIL and "does not exist" in check.message


# -- state dir and disk ---------------------------------------------------------------------

def _mountinfo(tmp_path: Path, *mounts: tuple[str, str]) -> str:
    path = tmp_path.parent / f"mountinfo-{tmp_path.name}"
    path.write_text("".join(f"{20 + n} 1 8:{n} / {point.replace(' ', chr(92) + '040')} rw,relatime shared:1 - {fs} "
                            f"/dev/x rw\n" for n, (point, fs) in enumerate(mounts)))
    return str(path)


def test_filesystem_of_takes_the_longest_mount_point(tmp_path: Path):
    info = _mountinfo(tmp_path, ("/", "overlay"), ("/var/lib/kiosk", "ext4"), ("/var/lib/kiosk two", "vfat"))
    assert doctor.filesystem_of(Path("/var/lib/kiosk/journal.sqlite"), info) == "ext4"
    assert doctor.filesystem_of(Path("/var/lib/kiosk two"), info) == "vfat"
    assert doctor.filesystem_of(Path("/var/lib/kiosk-old"), info) == "overlay"
    assert doctor.filesystem_of(Path("/x"), str(tmp_path / "missing")) is None


def test_state_dir_writable(tmp_path: Path):
    check = doctor.check_state_dir(tmp_path, _mountinfo(tmp_path, ("/", "ext4")))
    assert check.status == OK and "ext4" in check.message
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_state_dir_in_ram_is_a_warning(tmp_path: Path):
    check = doctor.check_state_dir(tmp_path, _mountinfo(tmp_path, ("/", "ext4"), (str(tmp_path), "overlay")))
    assert check.status == WARN and "lost at power-off" in check.message


def test_state_dir_missing_but_creatable(tmp_path: Path):
    check = doctor.check_state_dir(tmp_path / "a" / "b")
    assert check.status == OK and "will create" in check.message


def test_state_dir_that_is_a_file_or_under_a_file(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert doctor.check_state_dir(blocker).status == FAIL
    assert doctor.check_state_dir(blocker / "state").status == FAIL


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_state_dir_not_writable(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    check = doctor.check_state_dir(locked)
    assert check.status == FAIL and "chown" in check.fix


def test_disk_thresholds(tmp_path: Path):
    assert doctor.check_disk(tmp_path, fail_mb=0, warn_mb=0).status == OK
    assert doctor.check_disk(tmp_path, fail_mb=0, warn_mb=2**40).status == WARN
    check = doctor.check_disk(tmp_path / "not" / "yet", fail_mb=2**40, warn_mb=2**40)
    assert check.status == FAIL and str(tmp_path) in check.message


# -- devices ---------------------------------------------------------------------------------

def test_camera(tmp_path: Path):
    camera = make_config({"gate": {"sources": ["camera"]}})
    found, missing = (lambda name: object()), (lambda name: None)
    assert doctor.check_camera(camera, tmp_path, found).status == FAIL  # no device
    (tmp_path / "video0").touch()
    (tmp_path / "media0").touch()
    check = doctor.check_camera(camera, tmp_path, found)
    assert check.status == OK and "video0" in check.message
    check = doctor.check_camera(camera, tmp_path, missing)
    assert check.status == FAIL and "python3-picamera2" in check.fix and "archive.raspberrypi.com" in check.fix
    assert doctor.check_camera(make_config({"gate": {"sources": ["serial"]}}), tmp_path, found).status == SKIP
    simulated = make_config({"camera": {"backend": "simulated"}})
    assert doctor.check_camera(simulated, tmp_path, missing).status == OK


def test_serial_scanner_on_a_real_pty():
    leader, follower = os.openpty()
    try:
        config = make_config({"gate": {"sources": ["serial"]}, "serial": {"url": os.ttyname(follower)}})
        [check] = doctor.check_scanner(config)
        assert check.status == OK and os.ttyname(follower) in check.message
    finally:
        os.close(leader)
        os.close(follower)


def test_serial_scanner_absent_and_urls(tmp_path: Path):
    [check] = doctor.check_scanner(make_config({"gate": {"sources": ["serial"]},
                                                "serial": {"url": str(tmp_path / "kiosk-scanner")}}))
    assert check.status == FAIL and "/dev/kiosk-scanner" in check.fix
    [check] = doctor.check_scanner(make_config({"gate": {"sources": ["serial"]}, "serial": {"url": "loop://"}}))
    assert check.status == OK
    assert [c.status for c in doctor.check_scanner(make_config({"gate": {"sources": ["camera"]}}))] == [SKIP]


def test_hid_scanner(tmp_path: Path):
    device = tmp_path / "event3"
    config = make_config({"gate": {"sources": ["hid", "serial"]}, "hid": {"device": str(device)},
                          "serial": {"url": "loop://"}})
    assert [c.status for c in doctor.check_scanner(config)] == [OK, FAIL]
    device.touch()
    assert [c.status for c in doctor.check_scanner(config)] == [OK, OK]


def test_gpio(tmp_path: Path):
    relay = {"gpio": {"pin_factory": "lgpio", "relay": {"pin": 17}}}
    check = doctor.check_gpio(make_config(relay), tmp_path)
    assert check.status == FAIL and "relay" in check.message
    (tmp_path / "gpiochip0").touch()
    check = doctor.check_gpio(make_config(relay), tmp_path)
    assert check.status == OK and "gpiochip0" in check.message
    mock_pins = make_config({"gpio": {"pin_factory": "mock", "relay": {"pin": 17}}})
    assert doctor.check_gpio(mock_pins, tmp_path).status == SKIP
    assert doctor.check_gpio(make_config(), tmp_path).status == SKIP  # no pins


def test_display(tmp_path: Path):
    auto, on, off = (make_config({"screen": {"enabled": mode}}) for mode in ("auto", "on", "off"))
    assert doctor.check_display(auto, {}, tmp_path).status == WARN
    assert doctor.check_display(on, {}, tmp_path).status == FAIL
    assert doctor.check_display(off, {}, tmp_path).status == SKIP
    assert doctor.check_display(on, {"WAYLAND_DISPLAY": "wayland-1"}, tmp_path).status == OK
    (tmp_path / "dri").mkdir()
    (tmp_path / "dri" / "card1").touch()
    check = doctor.check_display(on, {"SDL_VIDEODRIVER": "kmsdrm"}, tmp_path)
    assert check.status == OK and check.message == "KMS/DRM card1"


# -- clock -----------------------------------------------------------------------------------

def test_clock_states():
    assert doctor.check_clock(lambda: True, lambda: False).status == OK
    check = doctor.check_clock(lambda: None, lambda: False)
    assert check.status == FAIL and "adjtimex" in check.message
    check = doctor.check_clock(lambda: None, lambda: None)
    assert check.status == WARN and "unknown" in check.message


def test_adjtimex_answers_on_linux():
    assert isinstance(doctor.adjtimex_synchronised(), bool)


def test_timedatectl_parsing():
    class Done:
        def __init__(self, out: str, rc: int = 0):
            self.stdout, self.returncode = out, rc

    assert doctor.timedatectl_synchronised(lambda *a, **k: Done("yes\n")) is True
    assert doctor.timedatectl_synchronised(lambda *a, **k: Done("no\n")) is False
    assert doctor.timedatectl_synchronised(lambda *a, **k: Done("", 1)) is None

    def missing(*a, **k):
        raise FileNotFoundError("timedatectl")

    assert doctor.timedatectl_synchronised(missing) is None


# -- upstream (a real HTTP server on 127.0.0.1) ----------------------------------------------

class Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        good = self.headers.get("Authorization") == "Bearer good-token"
        if self.path.startswith("/kiosk/v1/snapshot") and good:
            body = b'{"type":"header","version":1,"cursor":"c-1","full":true}\n{"type":"end","records":0}\n'
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
        else:
            body = b'{"error":"bad token"}'
            self.send_response(401 if not good else 404)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstream_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/kiosk/v1"
    server.shutdown()
    server.server_close()


def _token(tmp_path: Path, value: str) -> str:
    path = tmp_path / "token"
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


def test_upstream_reachable_and_token_accepted(upstream_url: str, tmp_path: Path):
    config = make_config({"upstream": {"url": upstream_url, "token_file": _token(tmp_path, "good-token")}})
    check = doctor.check_upstream(config)
    assert check.status == OK and "token accepted (HTTP 200" in check.message


def test_upstream_refuses_the_token(upstream_url: str, tmp_path: Path):
    config = make_config({"upstream": {"url": upstream_url, "token_file": _token(tmp_path, "old-token")}})
    check = doctor.check_upstream(config)
    assert check.status == FAIL and "401" in check.message and "renew" in check.fix


def test_upstream_unreachable(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    config = make_config({"upstream": {"url": f"http://127.0.0.1:{port}/v1", "token_file": _token(tmp_path, "t")}})
    check = doctor.check_upstream(config, timeout_s=1)
    assert check.status == FAIL and "cannot reach" in check.message


def test_no_upstream_is_skipped_clearly():
    check = doctor.check_upstream(make_config())
    assert check.status == SKIP and "offline" in check.message


# -- everything --------------------------------------------------------------------------------

def _healthy_config(tmp_path: Path, upstream_url: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[gate]\nsources = ["serial"]\n[serial]\nurl = "loop://"\n'
                    f'[gpio]\npin_factory = "mock"\n[screen]\nenabled = "off"\n'
                    f'[upstream]\nurl = "{upstream_url}"\ntoken_file = "{_token(tmp_path, "good-token")}"\n')
    return path


def test_run_checks_all_good_means_exit_0(tmp_path: Path, upstream_url: str, monkeypatch):
    monkeypatch.setattr(doctor, "check_clock", lambda: doctor.Check("clock", OK, "synchronised (test)"))
    monkeypatch.setattr(doctor, "filesystem_of", lambda path, mountinfo: "ext4")  # CI's /tmp may be tmpfs
    checks = doctor.run_checks(str(_healthy_config(tmp_path, upstream_url)), env={})
    names = [c.name for c in checks]
    assert names == ["config", "token", "state dir", "snapshot", "journal", "disk", "camera", "scanner", "gpio",
                     "display", "clock", "upstream", "passes"]
    assert [c.status for c in checks if c.status not in (OK, SKIP)] == []
    text, status = doctor.report(checks)
    assert status == 0 and text.endswith("all good")


def test_kiosk_doctor_command_reports_a_bad_config_and_exits_1(tmp_path: Path, capsys):
    bad = tmp_path / "kiosk.toml"
    bad.write_text('[gate]\nmode = "sometimes"\n')
    assert main(["doctor", "--config", str(bad), "--state-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL  config") and "gate.mode" in out[0] and "-- fix: edit" in out[0]
    assert any(line.startswith(("ok    state dir", "FAIL  state dir")) for line in out)
    assert "problem(s)" in out[-1]


def test_state_files_are_checked_for_damage_read_only(tmp_path: Path, clock):
    from kiosk import demo
    from kiosk.journal import Journal

    state = tmp_path / "state"
    state.mkdir()
    assert [c.status for c in doctor.check_state_files(state)] == [SKIP, SKIP]
    assert list(state.iterdir()) == []  # looking created nothing
    demo.seed(state / "snapshot.sqlite", clock())
    journal = Journal(state / "journal.sqlite")
    journal.append(at=clock(), gate="g", source="stdin", raw="I-1", credential="I-1", verdict="admit",
                   customer_id="I-1", groups=[], cursor="c")
    journal.close()
    assert [c.status for c in doctor.check_state_files(state)] == [OK, OK]

    # damage a page in the middle of each file, past the header, as a bad SD card would
    for name in ("snapshot.sqlite", "journal.sqlite"):
        data = bytearray((state / name).read_bytes())
        page = 4096 if name == "snapshot.sqlite" else 1024
        data[2 * page:4 * page] = b"\xa5" * (2 * page)
        (state / name).write_bytes(bytes(data))
    snapshot, journal_check = doctor.check_state_files(state)
    assert snapshot.status == FAIL and "snapshot.sqlite is damaged" in snapshot.message
    assert "kiosk sync" in snapshot.fix and "import --replace" in snapshot.fix
    assert journal_check.status == FAIL and "journal.sqlite is damaged" in journal_check.message
    assert "moves the damaged journal aside" in journal_check.fix
