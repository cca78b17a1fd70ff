"""CSV import: kinds from headers, venue export formats, all-or-nothing, and a kill -9 mid-import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kiosk.errors import ImportRejected
from kiosk.importer import detect_kind, import_files, records_from_files
from kiosk.snapshot import SnapshotStore

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
UUID = "0b6f3f0e-6a4e-4c59-9d8e-3f6b1f2d9a10"


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    return tmp_path / "state" / "snapshot.sqlite"


def test_native_files_import_together_and_create_missing_groups(tmp_path, snap):
    customers = write(tmp_path, "c.csv",
                      "id,kind,first_name,last_name,name,active,groups,valid_from,valid_until,email,postcode\n"
                      "I-1001,individual,Jane,Smith,,true,members;vip,,2027-01-31,jane@example.org,1012 AB\n"
                      "O-2001,organisation,,,Acme Ltd,yes,members,,,office@acme.example,\n"
                      "I-1002,,Bob,Jones,,false,,2026-01-01,,,\n")
    groups = write(tmp_path, "g.csv", "id,name,scannable\nmembers,Members,true\nnews,Newsletter,false\n")
    cards = write(tmp_path, "k.csv", f"code,customer_id,card_type,revoked,batch\n{UUID.upper()},i-1001,VIP,false,2026\n"
                                     "GIFT-7,,GIFT,false,gifts\nOLD-1,I-1001,ID,true,2025\n")
    summary = import_files(snap, [customers, groups, cards], replace=True, now=NOW)
    assert summary.groups_created == ["vip"]
    assert summary.totals == {"customers": 3, "groups": 3, "cards": 3}
    store = SnapshotStore(snap)
    jane = store.customer("i-1001")
    assert (jane.first_name, jane.last_name, jane.groups, str(jane.valid_until)) == \
        ("Jane", "Smith", ("members", "vip"), "2027-01-31")
    assert store.customer("O-2001").display_name == "Acme Ltd"
    assert store.customer("I-1002").active is False
    assert store.groups()["news"].scannable is False and store.groups()["vip"].scannable is True
    card = store.card(UUID)
    assert (card.customer_id, card.card_type, card.revoked) == ("I-1001", "VIP", False)
    assert store.card("GIFT-7").customer_id is None
    assert store.card("OLD-1").revoked is True
    assert store.meta()["source"] == "import"


def test_crm_export_with_semicolons_and_bom(tmp_path, snap):
    crm = write(tmp_path, "crm.csv", "\ufeffCustomer Id;First Name;Last Name;Email;Zip Code\n"
                                     "I-3001;Kees;Jansen;kees@example.nl;3511 LN\n")
    import_files(snap, [crm], replace=True, now=NOW)
    store = SnapshotStore(snap)
    assert store.customer("I-3001").email == "kees@example.nl"
    assert [c.id for c in store.find("3511ln")] == ["I-3001"]
    assert [c.id for c in store.find("Jansen, K")] == ["I-3001"]


def test_pos_export_gets_stable_ids_so_reimport_updates(tmp_path, snap):
    pos = write(tmp_path, "pos.csv", "Name,Email,Phone Number,Address\nMaria Garcia,maria@example.es,+34 600,Calle 1\n")
    import_files(snap, [pos], replace=False, now=NOW)
    import_files(snap, [pos], replace=False, now=NOW)
    store = SnapshotStore(snap)
    (maria,) = store.find("maria@example.es")
    assert maria.id.startswith("I-") and (maria.first_name, maria.last_name) == ("Maria", "Garcia")
    assert store.counts()["customers"] == 1


def test_id_card_batch_export_takes_uuid_from_url(tmp_path, snap):
    batch = write(tmp_path, "batch.csv", f"UUID,URL,Batch,Type\n,https://members.example.org/card/{UUID},2026,ID\n")
    assert detect_kind(["UUID", "URL", "Batch"]) == "cards"
    import_files(snap, [batch], replace=True, now=NOW)
    card = SnapshotStore(snap).card(UUID)
    assert card is not None and card.customer_id is None and card.batch == "2026"


def test_bad_row_names_file_and_line_and_imports_nothing(tmp_path, snap):
    good = write(tmp_path, "good.csv", "id,first_name,last_name\nI-1,Ann,Lee\n")
    import_files(snap, [good], replace=True, now=NOW)
    before = snap.read_bytes()
    more = write(tmp_path, "more.csv", "id,first_name,last_name\nI-2,Bo,Ek\n")
    bad = write(tmp_path, "bad.csv", "id,first_name,last_name,valid_until\nI-3,C,D,2027-01-01\nI-4,E,F,someday\n")
    with pytest.raises(ImportRejected) as err:
        import_files(snap, [more, bad], replace=False, now=NOW)
    assert "bad.csv:3" in str(err.value) and "valid_until" in str(err.value)
    assert snap.read_bytes() == before
    assert SnapshotStore(snap).customer("I-2") is None
    assert not list(snap.parent.glob("*.new-*"))


@pytest.mark.parametrize("text, fragment", [
    ("foo,bar\n1,2\n", "cannot tell what this file holds"),
    ("id,first_name\nX-1,Ann\n", "must start with I"),
    ("code,customer_id,card_type\nA,I-1,PLATINUM\n", "card_type"),
    ("id,first_name\nI-1,Ann,extra\n", "fields but the header"),
    ("", "empty"),
])
def test_rejections_say_why(tmp_path, snap, text, fragment):
    with pytest.raises(ImportRejected) as err:
        import_files(snap, [write(tmp_path, "x.csv", text)], replace=True, now=NOW)
    assert fragment in str(err.value)


def test_not_utf8_is_a_clear_rejection(tmp_path, snap):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,first_name\nI-1,J\xf6rg\n".encode("latin-1"))
    with pytest.raises(ImportRejected) as err:
        import_files(snap, [path], replace=True, now=NOW)
    assert "UTF-8" in str(err.value)


def test_records_from_files_serves_groups_first_and_creates_named_groups(tmp_path):
    customers = write(tmp_path, "c.csv", "id,first_name,last_name,groups\nI-1,Ann,Lee,members\n")
    records = list(records_from_files([customers]))
    assert [r["type"] for r in records] == ["customer", "group"]
    assert records[1] == {"type": "group", "id": "members", "name": "Members", "scannable": True}


def kiosk(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, **kw)


def test_cli_import_and_find(tmp_path):
    state = tmp_path / "st"
    customers = write(tmp_path, "c.csv", "id,first_name,last_name,email,postcode,groups\n"
                                         "I-1001,Jane,Smith,Jane@Example.org,1012 AB,members\n"
                                         "I-1002,John,Smith,john@example.org,,members\n")
    done = kiosk("import", "--state-dir", str(state), str(customers))
    assert done.returncode == 0, done.stderr
    assert "2 customers" in done.stdout
    found = kiosk("find", "--state-dir", str(state), "Smith, Ja")
    assert found.returncode == 0 and "I-1001" in found.stdout and "I-1002" not in found.stdout
    assert "I-1001" in kiosk("find", "--state-dir", str(state), "jane@example.org").stdout
    assert "I-1001" in kiosk("find", "--state-dir", str(state), "1012ab").stdout
    assert kiosk("find", "--state-dir", str(state), "Nobody, N").returncode == 1
    bad = kiosk("import", "--state-dir", str(state), str(write(tmp_path, "b.csv", "id,first_name\nZ9,x\n")))
    assert bad.returncode == 2 and "b.csv:2" in bad.stderr and "Traceback" not in bad.stderr


def test_kill_9_during_a_large_import_leaves_the_old_snapshot(tmp_path):
    state = tmp_path / "st"
    small = write(tmp_path, "small.csv", "id,first_name,last_name\nI-1,Ann,Lee\n")
    assert kiosk("import", "--state-dir", str(state), str(small)).returncode == 0
    big = tmp_path / "big.csv"
    with open(big, "w") as fh:
        fh.write("id,first_name,last_name,email\n")
        for i in range(400_000):
            fh.write(f"I-{i + 10},First{i},Last{i},p{i}@example.org\n")
    snap = state / "snapshot.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "import", "--replace", "--state-dir", str(state),
                             str(big)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not list(state.glob("snapshot.sqlite.new-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # well into the load
    assert proc.poll() is None, "the import finished before it could be killed; make the file bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = SnapshotStore(snap)
    assert store.counts()["customers"] == 1 and store.customer("I-1").first_name == "Ann"
    # and the next import still works, cleaning up after the dead one
    assert kiosk("import", "--state-dir", str(state), str(small)).returncode == 0
    assert not list(state.glob("snapshot.sqlite.new-*"))


# -- strict reading (issue 9) --------------------------------------------------------------

@pytest.mark.parametrize("text, where, fragment", [
    ('id,first_name,last_name\nI-1,Ann,Lee\nI-2,"Bob,Jones\nI-3,C,D\n', ":3:", "never closed"),
    ('id,first_name,last_name\nI-1,"Ann"x,Lee\n', ":2:", "expected after"),
    ("id,first_name,last_name\nI-1,Ann,Lee\nI-2,Bob\n", ":3:", "2 fields but the header has 3"),
    ("id,first_name,last_name\nI-1,Ann,Lee,x\n", ":2:", "4 fields but the header has 3"),
    ("id,first_name\nI-1,A\x00nn\n", ":2:", "U+0000"),
    ("id,first_name\nI-1,\x1b]0;owned\x07Ann\n", ":2:", "U+001B"),
    ("id,last_name\nI-1,Lee\u202egnp.exe\n", ":2:", "U+202E"),
    ("id,name,scannable\nmembers,Mem\x1bbers,true\n", ":2:", "U+001B"),
    ("code,customer_id,batch\nA-1,I-1,\x07b\n", ":2:", "U+0007"),
    ("id,first_name\nI-1," + "x" * 60_000 + "\n", ":2:", "60,000 characters"),
])
def test_malformed_or_hostile_rows_are_refused_with_their_line(tmp_path, snap, text, where, fragment):
    with pytest.raises(ImportRejected) as err:
        import_files(snap, [write(tmp_path, "x.csv", text)], replace=True, now=NOW)
    message = str(err.value)
    assert f"x.csv{where}" in message and fragment in message and message.isprintable()
    assert not snap.exists()


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "merge"])
def test_duplicate_ids_in_one_call_name_both_lines_whatever_their_case(tmp_path, snap, replace):
    if not replace:  # a merge may update what the snapshot holds, but not take one id twice from its files
        import_files(snap, [write(tmp_path, "held.csv", "id,first_name\nI-8701,Held\n")], replace=True, now=NOW)
    before = snap.read_bytes() if snap.exists() else None
    one = write(tmp_path, "one.csv", "id,first_name\nI-1,A\nI-8701,Ann\n")
    two = write(tmp_path, "two.csv", "id,first_name\nI-2,B\ni-8701,Bob\n")
    with pytest.raises(ImportRejected) as err:
        import_files(snap, [one, two], replace=replace, now=NOW)
    assert "two.csv:3" in str(err.value) and "one.csv:3" in str(err.value) and "I-8701" in str(err.value)
    cards = write(tmp_path, "k.csv", f"code,customer_id\n{UUID},I-1\nX,\nhttps://v.example/card/{UUID.upper()},I-2\n")
    with pytest.raises(ImportRejected) as err:
        import_files(snap, [cards], replace=replace, now=NOW)
    assert "k.csv:4" in str(err.value) and "k.csv:2" in str(err.value)
    with pytest.raises(ImportRejected, match="g.csv:3.*g.csv:2"):
        import_files(snap, [write(tmp_path, "g.csv", "id,name,scannable\nm,M,true\nm,N,false\n")], replace=replace,
                     now=NOW)
    assert (snap.read_bytes() if snap.exists() else None) == before


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "merge"])
def test_the_same_file_twice_is_a_duplicate_too(tmp_path, snap, replace):
    one = write(tmp_path, "one.csv", "id,first_name\nI-1,A\n")
    with pytest.raises(ImportRejected, match="already on"):
        import_files(snap, [one, one], replace=replace, now=NOW)


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "merge"])
def test_duplicates_beyond_one_batch_are_found(tmp_path, snap, replace):
    rows = "".join(f"I-{i},N{i}\n" for i in range(12_000)) + "i-7,Again\n"
    with pytest.raises(ImportRejected) as err:
        import_files(snap, [write(tmp_path, "big.csv", "id,first_name\n" + rows)], replace=replace, now=NOW)
    assert "big.csv:12002" in str(err.value) and "big.csv:9" in str(err.value)


def test_a_merge_may_update_ids_the_snapshot_already_holds(tmp_path, snap):
    import_files(snap, [write(tmp_path, "a.csv", "id,first_name\nI-1,Ann\n")], replace=True, now=NOW)
    import_files(snap, [write(tmp_path, "b.csv", "id,first_name\ni-1,Anne\n")], replace=False, now=NOW)
    assert SnapshotStore(snap).customer("I-1").first_name == "Anne"


@pytest.mark.parametrize("header, kind", [
    ("id,name", "customers"), ("Customer Id,Name", "customers"), ("id,name,scannable", "groups"),
    ("Group Id,Group Name", "groups"), ("id,name,visible", "groups"), ("code,customer_id", "cards"),
    ("UUID,URL,Batch", "cards"), ("email", "customers"), ("id,first_name,card_number", "customers"),
])
def test_kinds_are_told_by_their_required_columns(header, kind):
    assert detect_kind(header.split(",")) == kind


def test_an_id_name_file_is_customers_not_groups(tmp_path, snap):
    import_files(snap, [write(tmp_path, "x.csv", "id,name\nI-1,Jane Smith\nO-2,Acme Ltd\n")], replace=True, now=NOW)
    store = SnapshotStore(snap)
    assert store.customer("I-1").last_name == "Smith" and store.customer("O-2").display_name == "Acme Ltd"
    assert store.groups() == {}


@pytest.mark.parametrize("header, fragments", [
    ("foo,bar", ["customers need", "groups need", "cards need"]),
    ("code,id,scannable", ["fits both cards and groups"]),
    ("name,scannable", ["groups file needs an id"]),
])
def test_a_header_that_fits_no_kind_or_two_is_refused_with_the_rules(tmp_path, snap, header, fragments):
    with pytest.raises(ImportRejected) as err:
        import_files(snap, [write(tmp_path, "x.csv", header + "\n1,2,3\n")], replace=True, now=NOW)
    assert "x.csv:1" in str(err.value) and all(f in str(err.value) for f in fragments)


def test_merge_into_a_corrupt_snapshot_is_one_clear_line(tmp_path, snap):
    snap.parent.mkdir(parents=True)
    snap.write_bytes(b"this is not a database" * 100)
    done = kiosk("import", "--state-dir", str(snap.parent), str(write(tmp_path, "c.csv", "id,first_name\nI-1,A\n")))
    assert "Traceback" not in done.stderr
    # the state-file healing may move a corrupt snapshot aside first; otherwise the merge refuses in one line
    if done.returncode != 0:
        assert done.returncode == 2 and "cannot merge into the snapshot" in done.stderr and "--replace" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_merge_that_fails_for_another_reason_than_damage_does_not_advise_replace(tmp_path, snap):
    snap.mkdir(parents=True)  # a snapshot path that cannot be opened (like a full disk): --replace would not help
    done = kiosk("import", "--state-dir", str(snap.parent), str(write(tmp_path, "c.csv", "id,first_name\nI-1,A\n")))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "cannot merge into the snapshot held" in line and "--replace" not in line
