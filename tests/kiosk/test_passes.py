"""Signed member passes: the format, the rules (snapshot beats pass), rotation, keys, the CLI and the QR code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import pass_keys, passes
from kiosk.credential import parse
from kiosk.gate import Gate
from kiosk.model import CredentialKind, Verdict
from kiosk.ports import Scan
from kiosk.rules import Policy, decide
from kiosk.snapshot import SnapshotStore, load_records

UTC = timezone.utc
NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
TODAY = NOW.date()
OLD = passes.private_from_seed(bytes(range(32)))
NEW = passes.private_from_seed(bytes(range(32, 64)))
OLD_PUB, NEW_PUB = passes.public_bytes(OLD), passes.public_bytes(NEW)
SECRET = b"venue rotation secret, 32 bytes!"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "passes.md"


def settings_with(keys=None, secret=SECRET, accept_steps=1) -> pass_keys.PassSettings:
    return pass_keys.PassSettings(keys={1: OLD_PUB} if keys is None else keys, rotation_secret=secret,
                               accept_steps=accept_steps)


def policy(**kw) -> Policy:
    extra = {k: kw.pop(k) for k in ("mode", "groups", "repeat_window_s", "stale_policy") if k in kw}
    return Policy(groups=extra.pop("groups", ("members",)), tz=UTC, passes=settings_with(**kw), **extra)


def issue(customer="I-KS22-363P", groups=("members", "patrons"), start=TODAY - timedelta(days=1), days=30,
          serial=4242, key=OLD, key_id=1, rotating=False) -> str:
    return passes.issue(key, key_id, customer, groups, start, start + timedelta(days=days - 1), serial, rotating)


def with_code(text: str, at: datetime, secret: bytes = SECRET) -> str:
    p = passes.parse(text, with_code=False)
    return text + passes.code_for(secret, p.customer_id, p.serial, passes.step_of(at))


def snap(tmp_path: Path, records=(), name="snapshot.sqlite", synced=NOW) -> SnapshotStore:
    groups = [{"type": "group", "id": "members", "name": "Members"},
              {"type": "group", "id": "patrons", "name": "Patrons"}]
    load_records(tmp_path / name, [*groups, *records], {"cursor": "c-1", "synced_at": synced.isoformat()})
    return SnapshotStore(tmp_path / name)


def check(text, store, pol=None, now=NOW, recent=None):
    pol = pol or policy()
    return decide(parse(text, pol.id_patterns), store, pol, now, recent)


@pytest.fixture
def store(tmp_path):
    s = snap(tmp_path)
    yield s
    s.close()


# -- the format -------------------------------------------------------------------------------------

def test_base45_matches_rfc_9285_examples():
    for raw, text in ((b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"), (b"ietf!", "QED8WEX0")):
        assert passes.b45encode(raw) == text
        assert passes.b45decode(text) == raw
    for bad in ("GGW", "ZZ", "A", "ab", "BB8~"):  # 65536, 2024 > 255, dangling, not in the alphabet
        with pytest.raises(passes.PassError):
            passes.b45decode(bad)


@given(st.binary(max_size=200))
def test_base45_round_trips_and_never_ends_in_a_space(data):
    text = passes.b45encode(data)
    assert passes.b45decode(text) == data
    assert not text.endswith(" ")  # so trimming a scanned line can never cut a pass


_ids = st.from_regex(r"[IO]-?[0-9A-Za-z_.-]{1,20}", fullmatch=True)
_groups = st.lists(st.from_regex(r"([a-zA-Z0-9_.-][a-zA-Z0-9_ .-]{0,8})?[a-zA-Z0-9]", fullmatch=True), max_size=4,
                   unique=True)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(key_id=st.integers(0, 255), customer=_ids, groups=_groups, start=st.dates(date(1970, 1, 1), date(2140, 1, 1)),
       days=st.integers(1, 3000), serial=st.integers(0, 2**32 - 1), rotating=st.booleans())
def test_round_trip_keeps_every_field(key_id, customer, groups, start, days, serial, rotating):
    end = start + timedelta(days=days - 1)
    text = passes.issue(OLD, key_id, customer, groups, start, end, serial, rotating)
    assert text.startswith("KR1" if rotating else "KP1")
    p = passes.parse(text + ("12345678" if rotating else ""))
    # packed (all lower-case-able) ids come back upper-cased: customer ids are case-insensitive
    expected_id = customer.upper() if all(c in passes.PACK for c in ",".join((customer.lower(), *groups))) else customer
    assert (p.key_id, p.customer_id, p.groups, p.not_before, p.not_after, p.serial, p.rotating) == \
        (key_id, expected_id, tuple(groups), start, end, serial, rotating)
    assert p.code == ("12345678" if rotating else None)
    assert passes.verify(p, OLD_PUB) and not passes.verify(p, NEW_PUB)
    assert p.base_text == text


def test_typical_pass_fits_qr_version_6_at_ec_m_and_reads_back(tmp_path):
    rotating = with_code(issue(rotating=True), NOW)
    static = issue()
    assert len(static) == 141 and len(rotating) == 149  # docs/passes.md and BENCHMARKS.md quote these
    for text in (static, rotating):
        symbol = passes.qr_symbol(text)
        modules = passes.qr_modules(symbol, scale=1, quiet_zone=False)
        assert modules.shape[0] <= 41 and modules.shape[1] <= 41  # version 6 = 41 x 41 modules
        found = zxingcpp.read_barcode(passes.qr_modules(symbol, scale=4))
        assert found.text == text
        assert int(found.extra["Version"]) <= 6 and found.ec_level == "M"


def test_every_single_flipped_bit_is_refused(store):
    text = issue(serial=7)
    data = passes.b45decode(text[3:])
    assert check(text, store).verdict is Verdict.ADMIT
    outcomes = set()
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        d = check("KP1" + passes.b45encode(bytes(flipped)), store)
        assert d.verdict is Verdict.NOT_RECOGNISED, (bit, d.reason)
        outcomes.add(d.reason.split(" (")[0].split(":")[0])
    # every kind of refusal happens somewhere: a damaged layout, an unknown key id, a bad signature
    assert outcomes == {"Barcode not recognised", "Signed pass from an unknown key", "Signed pass with a bad signature"}


def test_a_static_pass_cannot_be_shown_as_rotating_or_the_other_way(store):
    static, rotating = issue(), issue(rotating=True)
    assert check("KR1" + static[3:] + "12345678", store).verdict is Verdict.NOT_RECOGNISED
    assert check("KP1" + rotating[3:], store).reason == "Signed pass with a bad signature"


def test_damaged_and_lookalike_texts(store):
    d = check(issue(rotating=True) + "1234567X", store)
    assert d.verdict is Verdict.NOT_RECOGNISED and "8-digit code" in d.reason
    assert parse("KP1000").kind is CredentialKind.CARD_CODE  # a short card code that happens to start alike
    d = check("KP1" + "A" * 120, store)
    assert d.verdict is Verdict.NOT_RECOGNISED and "the pass is damaged" in d.reason


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(["KP1", "KR1"]), body=st.text(alphabet=passes.B45, min_size=96, max_size=250))
def test_any_text_with_a_pass_prefix_is_a_verdict_never_an_error(store, prefix, body):
    d = check(prefix + body, store)
    assert d.verdict is Verdict.NOT_RECOGNISED  # random bytes never carry a valid signature
    assert d.reason


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 140), junk=st.text(min_size=1, max_size=3))
def test_a_pass_with_characters_changed_anywhere_is_refused(store, position, junk):
    text = issue()
    changed = text[:position] + junk + text[position + len(junk):]
    if changed.strip() != text:  # a scanner's trailing whitespace is trimmed, as for every code
        assert check(changed, store).verdict is Verdict.NOT_RECOGNISED


def test_issue_refuses_what_the_format_cannot_hold():
    for bad in (dict(customer="I-1,2"), dict(customer="I 1"), dict(groups=("a,b",)), dict(groups=("x", "x")),
                dict(groups=("g" * 130,)), dict(serial=2**32), dict(days=0), dict(key_id=256)):
        with pytest.raises(passes.PassError):
            issue(**bad)


# -- the rules -------------------------------------------------------------------------------------

def test_new_member_unknown_to_the_snapshot_is_admitted_on_the_pass_groups(store):
    d = check(issue(), store)
    assert d.verdict is Verdict.ADMIT
    assert d.customer_id == d.name == "I-KS22-363P"
    assert "signed pass" in d.reason
    assert d.matched_groups == ("Members",)
    assert d.groups == ("Members", "Patrons")
    assert d.valid_until == TODAY + timedelta(days=28)


def test_only_verified_groups_count_for_a_pass(store):
    assert check(issue(groups=("patrons",)), store).verdict is Verdict.NOT_IN_GROUP
    # "all" means the snapshot's scannable groups: a group id only the pass knows does not count
    d = check(issue(groups=("secret-club",)), store, policy(groups="all"))
    assert d.verdict is Verdict.NOT_IN_GROUP
    assert check(issue(groups=("patrons",)), store, policy(groups="all")).verdict is Verdict.ADMIT
    assert check(issue(groups=()), store, policy(mode="any_customer")).verdict is Verdict.ADMIT


def test_snapshot_beats_the_pass_where_both_know_the_customer(tmp_path):
    people = [
        {"type": "customer", "id": "I-INACTIVE1", "first_name": "In", "last_name": "Active", "active": False,
         "groups": ["members"]},
        {"type": "customer", "id": "I-MOVED1", "first_name": "Moved", "last_name": "On", "groups": ["patrons"]},
        {"type": "customer", "id": "I-LAPSED1", "first_name": "Lap", "last_name": "Sed", "groups": ["members"],
         "valid_until": (TODAY - timedelta(days=2)).isoformat()},
        {"type": "customer", "id": "I-KNOWN1", "first_name": "Jo", "last_name": "Known", "groups": ["members"]},
        {"type": "pass_revocation", "customer_id": "I-KNOWN1", "serial": 666},
    ]
    store = snap(tmp_path, people)
    assert check(issue("I-INACTIVE1"), store).verdict is Verdict.INACTIVE
    assert check(issue("I-MOVED1"), store).verdict is Verdict.NOT_IN_GROUP  # the pass still says members
    assert check(issue("I-LAPSED1"), store).verdict is Verdict.EXPIRED
    revoked = check(issue("I-KNOWN1", serial=666), store)
    assert revoked.verdict is Verdict.CARD_REVOKED and "Pass revoked" in revoked.reason
    known = check(issue("i-known1", groups=("patrons",)), store)  # the snapshot's groups, its name
    assert known.verdict is Verdict.ADMIT
    assert (known.name, known.customer_id, known.reason) == ("Jo Known", "I-KNOWN1", "Welcome")


def test_unknown_key_and_key_rotation(tmp_path):
    old, new = issue(serial=1), issue(serial=2, key=NEW, key_id=2)
    store = snap(tmp_path)
    d = check(new, store)
    assert d.verdict is Verdict.NOT_RECOGNISED and d.reason == "Signed pass from an unknown key (key id 2)"
    # the new key arrives with the snapshot: both keys admit
    key = {"type": "pass_key", "key_id": 2, "public_key": pass_keys.encode_key(NEW_PUB)}
    load_records(tmp_path / "snapshot.sqlite", [key], {"cursor": "c-2"}, mode="delta")
    store.reload()
    only_snapshot = policy(keys={})
    assert check(new, store, only_snapshot).verdict is Verdict.ADMIT
    assert check(old, store).verdict is Verdict.ADMIT and check(new, store).verdict is Verdict.ADMIT
    # then the old key is taken out of the config and the new one is the only key
    assert check(old, store, policy(keys={2: NEW_PUB})).verdict is Verdict.NOT_RECOGNISED
    # and a key retired through the snapshot is gone too
    load_records(tmp_path / "snapshot.sqlite", [{**key, "active": False}], {"cursor": "c-3"}, mode="delta")
    store.reload()
    assert check(new, store, only_snapshot).reason == "Signed pass from an unknown key (key id 2)"


def test_the_config_key_wins_over_a_snapshot_key_with_the_same_id(tmp_path):
    store = snap(tmp_path, [{"type": "pass_key", "key_id": 1, "public_key": pass_keys.encode_key(NEW_PUB)}])
    assert check(issue(key=NEW), store).reason == "Signed pass with a bad signature"
    assert check(issue(key=NEW), store, policy(keys={})).verdict is Verdict.ADMIT


def test_revocation_list_synced_with_the_snapshot(tmp_path):
    store = snap(tmp_path, [{"type": "pass_revocation", "customer_id": "i-ks22-363p", "serial": 10}])
    assert check(issue(serial=10), store).verdict is Verdict.CARD_REVOKED
    assert check(issue(serial=11), store).verdict is Verdict.ADMIT
    assert check(issue("I-OTHER1", serial=10), store).verdict is Verdict.ADMIT  # serials are per customer
    lift = {"type": "pass_revocation", "customer_id": "I-KS22-363P", "serial": 10, "revoked": False}
    load_records(tmp_path / "snapshot.sqlite", [lift], {"cursor": "c-2"}, mode="delta")
    store.reload()
    assert check(issue(serial=10), store).verdict is Verdict.ADMIT


@pytest.mark.parametrize("record, problem", [
    ({"type": "pass_key", "key_id": 300, "public_key": pass_keys.encode_key(OLD_PUB)}, "key_id"),
    ({"type": "pass_key", "key_id": 1, "public_key": "c2hvcnQ="}, "public_key"),
    ({"type": "pass_key", "key_id": 1, "public_key": pass_keys.encode_key(OLD_PUB), "active": "no"}, "active"),
    ({"type": "pass_revocation", "customer_id": "I-1", "serial": -1}, "serial"),
    ({"type": "pass_revocation", "customer_id": "", "serial": 1}, "customer_id"),
])
def test_bad_pass_records_are_rejected_and_nothing_is_applied(tmp_path, record, problem):
    from kiosk.records import RecordError

    store = snap(tmp_path, [{"type": "pass_key", "key_id": 9, "public_key": pass_keys.encode_key(NEW_PUB)}])
    with pytest.raises(RecordError, match=problem):
        load_records(tmp_path / "snapshot.sqlite", [{"type": "pass_key", "key_id": 8, "public_key":
                     pass_keys.encode_key(OLD_PUB)}, record], {"cursor": "c-2"}, mode="delta")
    store.reload()
    assert store.pass_keys() == {9: NEW_PUB}


def test_dates_are_read_in_the_gate_time_zone(store):
    from zoneinfo import ZoneInfo

    text = issue(start=TODAY, days=1)
    assert check(text, store).verdict is Verdict.ADMIT
    before = check(text, store, now=NOW - timedelta(days=1))
    assert before.verdict is Verdict.EXPIRED and "Pass valid from" in before.reason
    after = check(text, store, now=NOW + timedelta(days=1))
    assert after.verdict is Verdict.EXPIRED and "Pass expired on" in after.reason
    # 23:30 UTC on the last day is already the next day in Amsterdam
    late = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=23, minutes=30)
    assert check(text, store, now=late).verdict is Verdict.ADMIT
    amsterdam = Policy(groups=("members",), tz=ZoneInfo("Europe/Amsterdam"), passes=settings_with())
    assert check(text, store, amsterdam, now=late).verdict is Verdict.EXPIRED


# -- rotation ------------------------------------------------------------------------------------------

def test_rotation_window_edges(store):
    step_start = datetime.fromtimestamp(passes.step_of(NOW) * 30, UTC)
    shown = with_code(issue(rotating=True), step_start)  # the code of the step starting at step_start
    for offset_s, verdict in ((-30, Verdict.ADMIT), (-30.001, Verdict.CODE_EXPIRED), (0, Verdict.ADMIT),
                              (59.999, Verdict.ADMIT), (60, Verdict.CODE_EXPIRED)):
        d = check(shown, store, now=step_start + timedelta(seconds=offset_s))
        assert d.verdict is verdict, offset_s
    stale = check(shown, store, now=step_start + timedelta(seconds=120))
    assert stale.reason == "Refresh the pass on your phone"
    strict = policy(accept_steps=0)
    assert check(shown, store, strict, now=step_start + timedelta(seconds=29.9)).verdict is Verdict.ADMIT
    assert check(shown, store, strict, now=step_start + timedelta(seconds=30)).verdict is Verdict.CODE_EXPIRED
    wide = policy(accept_steps=3)
    assert check(shown, store, wide, now=step_start + timedelta(seconds=119)).verdict is Verdict.ADMIT


def test_a_code_from_another_secret_or_pass_is_refused(store):
    text = issue(rotating=True, serial=1)
    assert check(with_code(text, NOW, secret=b"another venue's secret!!"), store).verdict is Verdict.CODE_EXPIRED
    other = with_code(issue(rotating=True, serial=2), NOW)
    assert check(text + other[-8:], store).verdict is Verdict.CODE_EXPIRED


def test_without_the_rotation_secret_rotating_passes_are_checked_by_signature_only(store):
    stale = with_code(issue(rotating=True), NOW - timedelta(hours=3))
    assert check(stale, store).verdict is Verdict.CODE_EXPIRED
    assert check(stale, store, policy(secret=None)).verdict is Verdict.ADMIT
    assert "signature only" in pass_keys.PassSettings().describe()


def test_a_code_admits_once_per_gate_even_after_the_repeat_window(store, journal, clock):
    clock.now = datetime.fromtimestamp(passes.step_of(NOW) * 30, UTC)
    gate = Gate(gate_id="g", snapshot=store, journal=journal, policy=policy(repeat_window_s=5), clock=clock)
    text = issue(rotating=True)
    shown = with_code(text, clock())
    assert gate.handle(Scan(raw=shown, source="camera")).verdict is Verdict.ADMIT
    clock.advance(20)  # past the 5 s repeat window, the same code (a screenshot) is still a repeat
    second = gate.handle(Scan(raw=shown, source="camera"))
    assert second.verdict is Verdict.REPEAT and second.repeat_of_s == 20
    clock.advance(20)  # the next step's code admits
    assert gate.handle(Scan(raw=with_code(text, clock()), source="camera")).verdict is Verdict.ADMIT
    assert [e["verdict"] for e in journal.events()] == ["admit", "repeat", "admit"]



def test_a_code_admitted_before_a_restart_does_not_admit_again_after_it(store, journal, clock):
    clock.now = datetime.fromtimestamp(passes.step_of(NOW) * 30, UTC)
    text = issue(rotating=True)
    shown = with_code(text, clock())
    before = Gate(gate_id="g", snapshot=store, journal=journal, policy=policy(repeat_window_s=5), clock=clock)
    assert before.handle(Scan(raw=shown, source="camera")).verdict is Verdict.ADMIT
    clock.advance(10)  # the kiosk restarts (a new Gate on the same journal), past the repeat window
    after = Gate(gate_id="g", snapshot=store, journal=journal, policy=policy(repeat_window_s=5), clock=clock)
    again = after.handle(Scan(raw=shown, source="camera"))
    assert again.verdict is Verdict.REPEAT and again.repeat_of_s == 10
    clock.advance(30)  # the next step's code admits
    assert after.handle(Scan(raw=with_code(text, clock()), source="camera")).verdict is Verdict.ADMIT

# -- config, CLI, QR image ----------------------------------------------------------------------------

def kiosk(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def write_config(tmp_path: Path, **passes_section) -> Path:
    lines = [f'state_dir = "{tmp_path / "state"}"', "[passes]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in passes_section.items()]
    path = tmp_path / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_config_errors_name_file_key_and_fix(tmp_path):
    cfg = write_config(tmp_path, keys=["1:not-base64!"])
    bad = kiosk("check", "I-1", "--config", str(cfg))
    assert bad.returncode == 2 and "passes.keys" in bad.stderr and "base64" in bad.stderr
    secret = tmp_path / "rot.secret"
    secret.write_bytes(SECRET)
    secret.chmod(0o644)
    cfg = write_config(tmp_path, keys=[f"1:{pass_keys.encode_key(OLD_PUB)}"], rotation_secret_file=str(secret))
    loose = kiosk("check", "I-1", "--config", str(cfg))
    assert loose.returncode == 2
    assert "passes.rotation_secret_file" in loose.stderr and f"chmod 600 {secret}" in loose.stderr
    assert len(loose.stderr.strip().splitlines()) == 1
    secret.chmod(0o600)
    shown = kiosk("config", "--config", str(cfg))
    assert shown.returncode == 0 and "rotating codes checked within ±1 step" in shown.stdout
    cfg = write_config(tmp_path, keys=[f"1:{pass_keys.encode_key(OLD_PUB)}"])
    assert "checked by signature only" in kiosk("config", "--config", str(cfg)).stdout


def test_cli_keygen_issue_decode_and_show(tmp_path):
    key = tmp_path / "signing.key"
    made = kiosk("pass", "keygen", str(key), "--key-id", "7", "--rotation-secret", str(tmp_path / "rot.secret"))
    assert made.returncode == 0, made.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "rot.secret").stat().st_mode & 0o777) == "0o600"
    public = re.search(r'keys = \["(7:[^"]+)"\]', made.stdout).group(1)
    again = kiosk("pass", "keygen", str(key))
    assert again.returncode == 2 and "already exists" in again.stderr

    png = tmp_path / "pass.png"
    issued = kiosk("pass", "issue", "I-KS22-363P", "--key", str(key), "--groups", "members", "patrons", "--days", "30",
                   "--png", str(png), "--svg", str(tmp_path / "pass.svg"), "--json")
    assert issued.returncode == 0, issued.stderr
    text = json.loads(issued.stdout)["text"]
    svg = (tmp_path / "pass.svg").read_text()
    assert svg.startswith("<svg") and 'viewBox="0 0 49 49"' in svg  # 41 modules and a 4-module quiet zone
    decoded = kiosk("decode", str(png), "--json")
    assert json.loads(decoded.stdout)[0]["codes"] == [{"text": text, "format": "QRCode"}]

    cfg = write_config(tmp_path, keys=[public])
    shown = kiosk("pass", "show", text, "--config", str(cfg))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "signature   valid (key id 7)" in shown.stdout and "admit: Welcome (signed pass" in shown.stdout
    checked = kiosk("check", text, "--config", str(cfg), "--json")
    assert json.loads(checked.stdout)["verdict"] == "admit"
    unknown = kiosk("pass", "show", text, "--config", str(write_config(tmp_path)), "--json")
    assert unknown.returncode == 1 and json.loads(unknown.stdout)["signature"] == "unknown key"
    assert not (tmp_path / "state").exists()  # show and check are looks: they create no state dir
    assert kiosk("pass", "show", "KP1" + "0" * 120).returncode == 2

    key.chmod(0o640)
    refused = kiosk("pass", "issue", "I-1", "--key", str(key))
    assert refused.returncode == 2 and "open to group or others" in refused.stderr and "chmod 600" in refused.stderr


def test_cli_rotating_pass_qr_carries_the_current_code(tmp_path):
    key, secret = tmp_path / "k", tmp_path / "s"
    assert kiosk("pass", "keygen", str(key), "--rotation-secret", str(secret)).returncode == 0
    png = tmp_path / "r.png"
    no_secret = kiosk("pass", "issue", "I-1001", "--key", str(key), "--rotating", "--png", str(png))
    assert no_secret.returncode == 2 and "--rotation-secret" in no_secret.stderr and not png.exists()
    issued = kiosk("pass", "issue", "I-1001", "--key", str(key), "--groups", "members", "--rotating",
                   "--rotation-secret", str(secret), "--png", str(png), "--json")
    assert issued.returncode == 0, issued.stderr
    out = json.loads(issued.stdout)
    found = zxingcpp.read_barcode(np.array(__import__("PIL.Image").Image.open(png).convert("L")))
    assert found.text == out["current"] and out["current"].startswith(out["text"]) and len(out["current"]) == \
        len(out["text"]) + 8
    p = passes.parse(out["current"])
    now = datetime.now(UTC)
    assert passes.matching_step(p, secret.read_bytes().strip(), now, 1) is not None


def test_doctor_reports_how_passes_are_checked(tmp_path):
    from kiosk.doctor import run_checks

    cfg = write_config(tmp_path, keys=[f"1:{pass_keys.encode_key(OLD_PUB)}"])
    check_ = next(c for c in run_checks(str(cfg), env={}) if c.name == "passes")
    assert check_.status == "warn" and "signature only" in check_.message and "rotation_secret_file" in check_.fix
    missing = write_config(tmp_path, rotation_secret_file=str(tmp_path / "nope"))
    check_ = next(c for c in run_checks(str(missing), env={}) if c.name == "passes")
    assert check_.status == "FAIL" and "does not exist" in check_.message


# -- the spec's test vectors ----------------------------------------------------------------------------

def test_docs_test_vectors_are_what_the_code_makes():
    doc = DOCS.read_text(encoding="utf-8")
    vectors = re.findall(r"```json vector\n(.*?)\n```", doc, re.S)
    assert len(vectors) >= 3
    for raw in vectors:
        v = json.loads(raw)
        key = passes.private_from_seed(bytes.fromhex(v["seed"]))
        assert pass_keys.encode_key(passes.public_bytes(key)) == v["public_key"]
        b = passes.body(v["key_id"], v["customer_id"], v["groups"], date.fromisoformat(v["not_before"]),
                        date.fromisoformat(v["not_after"]), v["serial"])
        assert b.hex() == v["body_hex"]
        text = passes.issue(key, v["key_id"], v["customer_id"], v["groups"], date.fromisoformat(v["not_before"]),
                            date.fromisoformat(v["not_after"]), v["serial"], v["rotating"])
        assert text == v["text"]
        if v["rotating"]:
            secret = v["rotation_secret"].encode()
            assert passes.rotation_key(secret, v["customer_id"], v["serial"]).hex() == v["rotation_key_hex"]
            at = datetime.fromisoformat(v["at"])
            assert passes.code_for(secret, v["customer_id"], v["serial"], passes.step_of(at)) == v["code"]


# -- the reference upstream: keys and revocations in the snapshot, the member's pass page ----------------

def upstream_app(tmp_path: Path, server):
    from kiosk.app import App
    from kiosk.config import Config, validate

    token = tmp_path / "token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    values = {"state_dir": str(tmp_path / "state"), "upstream": {"url": server.url, "token_file": str(token)},
              "gate": {"groups": ["members"]}}
    return App(Config(validate(values, "test.toml"), "test.toml"))


def test_keys_and_revocations_sync_from_the_reference_upstream_and_are_retracted_in_a_delta(tmp_path):
    from kiosk import compose
    from kiosk.upstream.reference import RefStore, RefUpstream

    groups = [{"type": "group", "id": "members", "name": "Members"}]
    store = RefStore(tmp_path / "upstream.sqlite")
    store.replace([*groups, {"type": "pass_key", "key_id": 2, "public_key": pass_keys.encode_key(NEW_PUB)},
                   {"type": "pass_revocation", "customer_id": "I-KS22-363P", "serial": 9}])
    server = RefUpstream(store, "t0ken").start()
    app = upstream_app(tmp_path, server)
    upstream = compose.upstream(app)
    try:
        assert upstream.sync_once().kind == "full"
        good, revoked = issue(serial=1, key=NEW, key_id=2), issue(serial=9, key=NEW, key_id=2)
        assert app.gate.handle(Scan(raw=good, source="stdin")).verdict is Verdict.ADMIT
        assert app.gate.handle(Scan(raw=revoked, source="stdin")).verdict is Verdict.CARD_REVOKED
        store.replace(groups)  # key and revocation withdrawn: the kiosk gets them retracted as a delta
        assert upstream.sync_once().kind == "delta"
        assert app.snapshot.pass_keys() == {}
        d = app.gate.handle(Scan(raw=revoked, source="stdin"))
        assert d.verdict is Verdict.NOT_RECOGNISED and "unknown key" in d.reason
    finally:
        upstream.stop()
        app.close()
        server.stop()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium (.ci/run installs it)")
def test_pass_page_screenshot_in_a_real_browser_is_admitted_and_refused_two_minutes_later(tmp_path):
    import httpx

    from kiosk.decoder import FrameDecoder, load_gray
    from kiosk.pass_page import Issuer, PassPages
    from kiosk.upstream.reference import RefStore, RefUpstream

    server = RefUpstream(RefStore(tmp_path / "upstream.sqlite"), "t0ken",
                         pass_pages=PassPages(Issuer(1, OLD, SECRET))).start()
    try:
        made = httpx.post(server.url + "/admin/pass", headers={"Authorization": "Bearer t0ken"}, timeout=10,
                          json={"customer_id": "I-KS22-363P", "groups": ["members", "patrons"], "days": 30,
                                "rotating": True})
        assert made.status_code == 200, made.text
        url = f"http://127.0.0.1:{server.port}{made.json()['path']}"
        assert httpx.get(url + "x", timeout=10).status_code == 404
        shot = tmp_path / "phone.png"
        browser = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                  f"--user-data-dir={tmp_path / 'profile'}", "--window-size=412,915",
                                  f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
        taken = datetime.now(UTC)
        assert shot.exists(), browser.stderr[-2000:]
    finally:
        server.stop()
    found = FrameDecoder().decode(load_gray(shot))
    assert [f.format for f in found] == ["QRCode"]
    text = found[0].text
    assert text.startswith(made.json()["text"]) and len(text) == len(made.json()["text"]) + 8
    store = snap(tmp_path)
    admitted = check(text, store, now=taken)
    assert admitted.verdict is Verdict.ADMIT and "signed pass" in admitted.reason
    kept = check(text, store, now=taken + timedelta(minutes=2))
    assert kept.verdict is Verdict.CODE_EXPIRED and kept.reason == "Refresh the pass on your phone"
