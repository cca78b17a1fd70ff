"""State files heal: a damaged snapshot is moved aside and re-synced or re-imported, new files are
readable by the service whatever the umask, and a full disk keeps the gate deciding."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from datetime import date
from pathlib import Path

import pytest

from kiosk import compose, demo
from kiosk.app import App
from kiosk.cli import main
from kiosk.config import Config, validate
from kiosk.model import Decision
from kiosk.ports import Scan
from kiosk.upstream.reference import RefStore, RefUpstream
from waits import wait_for

TOKEN = "t0ken-for-tests"
GARBAGE = b"\x00\xffnot a snapshot, a bad SD card sector\n" * 300



def make_config(state: Path, **upstream) -> Config:
    values = {"state_dir": str(state), "device_id": "test-kiosk"}
    if upstream:
        values["upstream"] = upstream
    return Config(validate(values, "test.toml"), "test.toml")


class Outputs:
    """What the relay and the screen were given."""

    def __init__(self) -> None:
        self.decisions: list[Decision] = []

    def act(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def close(self) -> None:
        pass


def asides(state: Path, name: str) -> list[Path]:
    return sorted(state.glob(f"{name}.corrupt-*"))


def test_a_damaged_snapshot_is_moved_aside_the_gate_keeps_deciding_and_a_sync_brings_a_new_one(tmp_path, caplog):
    store = RefStore(tmp_path / "upstream.sqlite")
    store.replace(demo.records(date.today()))
    ref = RefUpstream(store, TOKEN).start()
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    state = tmp_path / "state"
    state.mkdir()
    (state / "snapshot.sqlite").write_bytes(GARBAGE)
    app = App(make_config(state, url=ref.url, token_file=str(token), sync_interval_s=3600, retry_max_s=1))
    raised: list[str] = []
    app.faults.subscribe(lambda name, message: raised.append(name) if message else None)
    upstream = compose.upstream(app)  # connects the app's "sync now", as `kiosk run` does
    try:
        decision = app.gate.handle(Scan("I-1001", "stdin"))  # decided, not a crash
        assert decision.verdict.value == "not_recognised"
        assert "snapshot" in raised and "moved aside" in app.faults.active()["snapshot"]
        [aside] = asides(state, "snapshot.sqlite")
        assert aside.read_bytes() == GARBAGE  # kept whole
        assert str(aside) in caplog.text
        upstream.start()
        wait_for(lambda: app.snapshot.counts()["customers"] > 0, "a sync replacing the damaged snapshot")
        assert "snapshot" not in app.faults.active()
        assert app.gate.handle(Scan("I-1002", "stdin")).verdict.value == "admit"
    finally:
        upstream.stop()
        app.close()
        ref.stop()


def test_a_snapshot_damaged_past_its_header_is_found_on_a_lookup(state_dir, clock):
    path = state_dir / "snapshot.sqlite"
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xa5" * (len(data) - 4096)  # the header page is fine: it opens, lookups fail
    path.write_bytes(bytes(data))
    app = App(make_config(state_dir), clock=clock)
    try:
        assert app.gate.handle(Scan("I-1001", "stdin")).verdict.value == "not_recognised"
        assert "snapshot" in app.faults.active()
        assert [p.read_bytes() for p in asides(state_dir, "snapshot.sqlite")] == [bytes(data)]
    finally:
        app.close()


def _damage_name_index(path: Path) -> bytes:
    """Overwrite the page of the customers' name index only: the file opens and its groups and meta read,
    a lookup by id works, and a search by name meets the damage."""
    db = sqlite3.connect(path)
    try:
        [root] = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'customers_by_name'").fetchone()
        [page_size] = db.execute("PRAGMA page_size").fetchone()
    finally:
        db.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page_size:root * page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_search_meeting_a_damaged_index_heals_like_any_other_read(state_dir, clock):
    damaged = _damage_name_index(state_dir / "snapshot.sqlite")
    app = App(make_config(state_dir), clock=clock)
    try:
        assert app.snapshot.find("Smith") == []  # not a DatabaseError out of the store
        assert "moved aside" in app.faults.active()["snapshot"]
        assert [p.read_bytes() for p in asides(state_dir, "snapshot.sqlite")] == [damaged]
    finally:
        app.close()


def test_kiosk_find_on_a_damaged_index_is_one_line_not_a_traceback(state_dir, capsys):
    path = state_dir / "snapshot.sqlite"
    damaged = _damage_name_index(path)
    assert main(["find", "Smith", "--state-dir", str(state_dir)]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert str(path) in line and "malformed" in line
    assert path.read_bytes() == damaged and not asides(state_dir, "snapshot.sqlite")  # a search moves nothing


def test_kiosk_find_creates_nothing(tmp_path, capsys):
    state = tmp_path / "state"
    assert main(["find", "Smith", "--state-dir", str(state)]) == 1
    assert "no customer matches" in capsys.readouterr().out
    assert not state.exists()


def test_without_an_upstream_kiosk_import_replace_brings_the_snapshot_back(state_dir, tmp_path, clock, capsys):
    (state_dir / "snapshot.sqlite").write_bytes(GARBAGE)
    csv = tmp_path / "customers.csv"
    csv.write_text("id,first_name,last_name,groups\nI-1,Ann,Bee,members\n")
    assert main(["import", str(csv), "--state-dir", str(state_dir)]) == 2  # a merge into a damaged file
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a database" in err and "--replace" in err
    assert main(["import", "--replace", str(csv), "--state-dir", str(state_dir)]) == 0
    app = App(make_config(state_dir), clock=clock)
    try:
        assert app.snapshot.customer("I-1") is not None and "snapshot" not in app.faults.active()
    finally:
        app.close()


def test_a_damaged_journal_at_start_is_moved_aside_with_a_fault_and_a_log_line(state_dir, clock, caplog):
    (state_dir / "journal.sqlite").write_bytes(GARBAGE)
    app = App(make_config(state_dir), clock=clock)
    try:
        decision = app.gate.handle(Scan("I-1001", "stdin"))
        [aside] = asides(state_dir, "journal.sqlite")
        assert aside.read_bytes() == GARBAGE
        assert aside.name in app.faults.active()["journal"]
        assert str(state_dir / "journal.sqlite") in caplog.text and str(aside) in caplog.text
        assert [e["id"] for e in app.journal.events()] == [decision.event_id]
    finally:
        app.close()


def test_a_full_disk_keeps_the_gate_deciding_and_journalling_resumes_when_space_returns(state_dir, clock):
    app = App(make_config(state_dir), clock=clock)
    outputs = Outputs()
    app.gate.add_output(outputs)
    stop = threading.Event()
    loop = threading.Thread(target=app.gate.run_loop, args=(stop,), kwargs={"tick_s": 0.01})
    try:
        journal = app.journal
        app.gate.handle(Scan("I-1001", "stdin"))
        pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
        journal.db.execute(f"PRAGMA max_page_count={pages}")  # SQLITE_FULL from here: the disk is full
        loop.start()
        codes = ["I-1003", "I-1002", "HELLO", "O-2001"] * 25
        for code in codes:
            app.gate.submit(Scan(code, "stdin"))
        wait_for(lambda: app.gate.decided == 1 + len(codes), "every scan decided while the disk is full")
        assert [d.raw for d in outputs.decisions] == ["I-1001", *codes]  # relay and screen were told each time
        assert journal.held > 0 and "full" in app.faults.active()["journal"]
        journal.db.execute("PRAGMA max_page_count=1073741823")  # space returns
        wait_for(lambda: journal.held == 0, "held decisions written")
        wait_for(lambda: "journal" not in app.faults.active(), "the fault cleared")
        assert [e["id"] for e in journal.events()] == [d.event_id for d in outputs.decisions]
        assert journal.lost == 0
    finally:
        stop.set()
        if loop.is_alive():
            loop.join()
        app.close()


_READ_AS = """
import os, sqlite3, sys
path, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.setgid(gid)
os.setuid(uid)
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
print(db.execute("SELECT count(*) FROM customers").fetchone()[0])
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the case is a root `kiosk import` for a service user")
def test_a_root_import_under_umask_077_leaves_files_the_service_user_can_read(tmp_path):
    service_uid = service_gid = 4242
    # the service's state dir (systemd StateDirectory=), somewhere the service user can reach
    state = Path(tempfile.mkdtemp(prefix="kiosk-state-"))
    os.chown(state, service_uid, service_gid)
    try:
        _import_as_root_and_read_as_the_service(tmp_path, state, service_uid, service_gid)
    finally:
        shutil.rmtree(state)


def _import_as_root_and_read_as_the_service(tmp_path: Path, state: Path, service_uid: int, service_gid: int) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text("id,first_name,last_name,groups\nI-1,Ann,Bee,members\nI-2,Cy,Dee,members\n")
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "import", str(csv), "--state-dir", str(state)],
                          capture_output=True, text=True, preexec_fn=lambda: os.umask(0o077))
    assert done.returncode == 0, done.stderr
    snapshot = state / "snapshot.sqlite"
    for path in (snapshot, Path(str(snapshot) + ".lock")):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (service_uid, service_gid)
        assert st.st_mode & 0o777 == 0o640
    assert not (state / "journal.sqlite").exists() and not (state / "state.sqlite").exists()
    # the kiosk, running as the service user, reads it
    read = subprocess.run([sys.executable, "-c", _READ_AS, str(snapshot), str(service_uid), str(service_gid)],
                          capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "2"
