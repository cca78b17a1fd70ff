"""The `kiosk` command end to end, as a subprocess: run, check, decode, status, journal, config."""

from __future__ import annotations

import csv
import io
import os
import json
import socket
import subprocess
import sys
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk import demo

# check has no memory of earlier scans, so the card URL right after Jane's id is an admit here
CHECK_VERDICTS = ["admit", "admit", "not_in_group", "inactive", "expired", "admit", "card_revoked", "card_unassigned",
                  "admit", "not_recognised"]
# `run` remembers: the same card URL straight after Jane's id is a repeat
RUN_VERDICTS = ["admit", "repeat"] + CHECK_VERDICTS[2:]


def kiosk(*args: str, input: str | bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], input=input, capture_output=True,
                          timeout=timeout, text=not isinstance(input, bytes))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state dir with the demo snapshot synced just now (the CLI reads the real clock)."""
    path = tmp_path / "state"
    demo.seed(path / "snapshot.sqlite", datetime.now(timezone.utc))
    return path


def test_check_every_verdict_as_json(state):
    # all at once: each is its own process, reading the same snapshot
    command = [sys.executable, "-m", "kiosk.cli", "check", "--json", "--state-dir", str(state)]
    children = [subprocess.Popen([*command, text], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for text in demo.SCANS]
    for child, text, verdict in zip(children, demo.SCANS, CHECK_VERDICTS, strict=True):
        out, err = child.communicate(timeout=60)
        assert child.returncode == (0 if verdict == "admit" else 1), (text, err)
        event = json.loads(out)
        assert event["verdict"] == verdict, text
        assert event["source"] == "check"
        assert event["gate"] == "lounge-1"
        assert event["reason"]
        assert "id" not in event  # nothing was journalled
    assert not (state / "journal.sqlite").exists() or _journal_total(state) == 0


def test_check_shows_who_and_groups(state):
    result = kiosk("check", "i-1001", "--json", "--state-dir", str(state))
    event = json.loads(result.stdout)
    assert (event["customer_id"], event["name"], event["credential"]) == ("I-1001", "Jane Smith", "I-1001")
    assert event["groups"] == ["Members"]
    assert event["matched_groups"] == ["Members"]
    org = json.loads(kiosk("check", "O-2001", "--json", "--state-dir", str(state)).stdout)
    assert org["name"] == "Acme Ltd"
    text = kiosk("check", "I-1002", "--state-dir", str(state))
    assert text.returncode == 0
    assert text.stdout.startswith("admit: Welcome")
    assert "Pieter de Vries (I-1002)" in text.stdout
    assert "groups: Members, Patrons" in text.stdout


def test_check_snapshot_stale_with_deny_policy(tmp_path):
    state = tmp_path / "state"
    demo.seed(state / "snapshot.sqlite", datetime.now(timezone.utc) - timedelta(hours=100))
    config = tmp_path / "kiosk.toml"
    config.write_text('[gate]\nstale_policy = "deny"\nmax_snapshot_age_h = 72\n')
    result = kiosk("check", "I-1001", "--json", "--config", str(config), "--state-dir", str(state))
    assert result.returncode == 1
    assert json.loads(result.stdout)["verdict"] == "snapshot_stale"
    warn = kiosk("check", "I-1001", "--json", "--state-dir", str(state))
    assert warn.returncode == 0
    assert "out of date" in json.loads(warn.stdout)["reason"]


def test_check_config_modes(tmp_path, state):
    config = tmp_path / "any.toml"
    config.write_text('[gate]\nmode = "any_customer"\n')
    result = kiosk("check", "I-1003", "--json", "--config", str(config), "--state-dir", str(state))
    assert result.returncode == 0
    assert json.loads(result.stdout)["verdict"] == "admit"


def test_check_without_a_snapshot_is_not_recognised(tmp_path):
    result = kiosk("check", "I-1001", "--json", "--state-dir", str(tmp_path / "empty"))
    assert result.returncode == 1
    assert json.loads(result.stdout)["verdict"] == "not_recognised"


def test_usage_errors_exit_2(state):
    assert kiosk("check", "--state-dir", str(state)).returncode == 2
    assert kiosk("no-such-command").returncode == 2
    assert kiosk("run", "--source", "carrier-pigeon", "--state-dir", str(state)).returncode == 2


def _events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def _journal_total(state: Path) -> int:
    import sqlite3

    db = sqlite3.connect(state / "journal.sqlite")
    try:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        db.close()


def _run(state: Path, lines: bytes) -> subprocess.CompletedProcess:
    return kiosk("run", "--source", "stdin", "--events", "--headless", "--state-dir", str(state), input=lines)


def test_run_from_stdin_prints_one_event_per_scan_and_journals_them(state, tmp_path):
    lines = b"".join(s.encode() + b"\n" for s in demo.SCANS) + b"I-10\xff01\n" + b"X" * 5000 + b"\n" + b"i-1002\r\n"
    result = _run(state, lines)
    assert result.returncode == 0, result.stderr.decode()
    events = _events(result.stdout.decode())
    # the last line is Pieter's id straight after his VIP card: a repeat
    assert [e["verdict"] for e in events] == RUN_VERDICTS + ["not_recognised", "not_recognised", "repeat"]
    for e in events:
        assert set(e) >= {"at", "gate", "source", "raw", "credential", "verdict", "customer_id", "name", "groups",
                          "matched_groups", "reason", "latency_ms"}
        assert e["source"] == "stdin"
        assert e["latency_ms"] >= 0
    assert events[0]["name"] == "Jane Smith"
    assert "UTF-8" in events[10]["reason"]
    assert "256" in events[11]["reason"]
    assert events[12]["raw"] == "i-1002"
    assert _journal_total(state) == len(events)

    # status, then the journal as a listing and as CSV
    status = json.loads(kiosk("status", "--json", "--state-dir", str(state)).stdout)
    assert status["journal"]["total"] == len(events)
    assert status["journal"]["unreported"] == len(events)
    assert status["snapshot"]["cursor"] == "demo-1"
    assert (status["snapshot"]["customers"], status["snapshot"]["groups"], status["snapshot"]["cards"]) == (6, 3, 4)
    assert status["snapshot"]["stale"] is False

    listing = kiosk("journal", "--state-dir", str(state))
    assert listing.returncode == 0
    assert len(listing.stdout.splitlines()) == len(events)
    assert "card_revoked" in listing.stdout

    out = tmp_path / "journal.csv"
    exported = kiosk("journal", "--csv", str(out), "--state-dir", str(state))
    assert exported.returncode == 0
    assert f"wrote {len(events)} events" in exported.stdout
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["verdict"] for r in rows] == [e["verdict"] for e in events]
    assert [r["id"] for r in rows if r["id"]] and len({r["id"] for r in rows}) == len(rows)
    assert rows[0]["groups"] == "Members"

    later = datetime.now(timezone.utc) + timedelta(hours=1)
    none = kiosk("journal", "--since", later.isoformat(), "--csv", "-", "--state-dir", str(state))
    assert none.returncode == 0
    assert len(none.stdout.splitlines()) == 1  # the header only


def test_run_repeat_and_empty_input(state):
    result = _run(state, b"I-1001\nI-1001\n")
    assert [e["verdict"] for e in _events(result.stdout.decode())] == ["admit", "repeat"]
    empty = _run(state, b"")
    assert empty.returncode == 0
    assert empty.stdout == b""


def test_journal_and_status_before_any_scan(tmp_path, state):
    assert kiosk("journal", "--state-dir", str(tmp_path / "none")).returncode == 1
    status = kiosk("status", "--state-dir", str(state))
    assert status.returncode == 0
    assert "6 customers, 3 groups, 4 cards" in status.stdout
    assert "0 events, 0 unreported" in status.stdout


def test_journal_since_rejects_a_bad_date(state):
    _run(state, b"I-1001\n")
    result = kiosk("journal", "--since", "yesterday", "--state-dir", str(state))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "yesterday" in result.stderr


def test_decode_images(tmp_path):
    from PIL import Image

    from kiosk.decoder import render_code

    codes = {"qr.png": ("I-1001", "QRCode"), "micro.png": ("I-1002", "MicroQRCode"), "bar.png": ("GIFT-42", "Code128")}
    for name, (text, fmt) in codes.items():
        Image.fromarray(render_code(text, fmt, scale=4)).save(tmp_path / name)
    Image.new("L", (64, 64), 255).save(tmp_path / "blank.png")
    result = kiosk("decode", *(str(tmp_path / n) for n in [*codes, "blank.png"]), "--json")
    assert result.returncode == 0, result.stderr
    found = {Path(r["file"]).name: r["codes"] for r in json.loads(result.stdout)}
    for name, (text, fmt) in codes.items():
        assert found[name] == [{"text": text, "format": fmt}]
    assert found["blank.png"] == []

    nothing = kiosk("decode", str(tmp_path / "blank.png"))
    assert nothing.returncode == 1
    assert "no code found" in nothing.stdout
    (tmp_path / "broken.png").write_bytes(b"not an image")
    broken = kiosk("decode", str(tmp_path / "broken.png"), str(tmp_path / "missing.png"))
    assert broken.returncode == 2
    assert broken.stdout.count("error") == 2


def test_config_prints_the_effective_config(tmp_path):
    config = tmp_path / "kiosk.toml"
    from kiosk.display import hash_pin

    secret = hash_pin("1234", iterations=1000)
    config.write_text(f'[gate]\nid = "door-9"\n[staff]\npin_hash = "{secret}"\n')
    result = kiosk("config", "--config", str(config), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 0
    assert result.stdout.startswith(f"# effective config, from {config}")
    printed = tomllib.loads(result.stdout)
    assert printed["gate"]["id"] == "door-9"
    assert printed["state_dir"] == str(tmp_path / "s")
    assert printed["staff"]["pin_hash"] == "********"
    assert secret.split("$")[-1] not in result.stdout
    assert printed["relay"]["pulse_ms"] == 1000


def test_config_masks_credentials_inside_urls(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[upstream]\nurl = "https://gate:s3cret-pw@hub.example.org/kiosk/v1"\n'
                      '[serial]\nurl = "rfc2217://op:hunter2@10.0.0.5:2217"\n')
    result = kiosk("config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    printed = tomllib.loads(result.stdout)
    assert printed["upstream"]["url"] == "https://********@hub.example.org/kiosk/v1"
    assert printed["serial"]["url"] == "rfc2217://********@10.0.0.5:2217"
    assert "s3cret-pw" not in result.stdout and "hunter2" not in result.stdout


# -- the first five minutes -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port():
    """A port something else listens on (and answers nothing)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_upstream_on_a_taken_port_says_so_in_one_line(tmp_path, taken_port):
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    done = kiosk("upstream", "--port", str(taken_port), "--token-file", str(token), "--db", str(tmp_path / "up.sqlite"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"kiosk: cannot listen on 127.0.0.1:{taken_port} (another program uses it); "
                                        "choose another with --port"]


def test_demo_with_its_upstream_port_taken_stops_and_says_so(tmp_path, taken_port):
    env = {**os.environ, "KIOSK_UPSTREAM_PORT": str(taken_port), "KIOSK_DEMO_STATE": str(tmp_path / "demo")}
    done = subprocess.run([str(ROOT / "scripts" / "demo"), "--upstream", "--headless", "--limit", "1"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    (line,) = done.stderr.splitlines()
    assert line.startswith("demo: the reference upstream did not start") and f"127.0.0.1:{taken_port}" in line
    assert "another program uses it" in line and "KIOSK_UPSTREAM_PORT" in line


def test_a_path_that_cannot_be_used_is_one_line_not_a_traceback(state, tmp_path):
    assert kiosk("run", "--source", "stdin", "--headless", "--state-dir", str(state), input="I-1001\n").returncode == 0
    done = kiosk("journal", "--csv", "/nonexistent/x.csv", "--state-dir", str(state))
    assert (done.returncode, done.stderr) == (2, "kiosk: cannot write /nonexistent/x.csv: No such file or directory\n")
    done = kiosk("journal", "--csv", "/dev/full", "--state-dir", str(state))  # the write fails when it is flushed
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "kiosk: cannot write /dev/full: No space left on device\n"
    done = kiosk("run", "--source", f"images:{tmp_path / 'nowhere'}", "--headless", "--state-dir", str(state))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"kiosk: config error: --source: images:DIR: {tmp_path / 'nowhere'} "
                                        "is not a folder of images"]


def test_the_sync_progress_line_is_ended_also_when_the_sync_fails():
    from kiosk.cli.upstream import ProgressBar
    from kiosk.errors import KioskError

    out = io.StringIO()
    with pytest.raises(KioskError):
        with ProgressBar(out) as progress:
            progress(5, 10)
            raise KioskError("the upstream refused")
    assert out.getvalue().startswith("\rsnapshot [") and "5/10 records" in out.getvalue()
    assert out.getvalue().endswith("\n")  # what is printed next starts on a line of its own
