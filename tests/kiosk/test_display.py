import itertools
import re
from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from kiosk.cli.screen import demo_decisions
from kiosk.display import (BANG, CLOCK, CROSS, DISABLED, EXIT, EXIT_BUTTON, GO, HOURGLASS, IDLE, LATER, LEAVE, LOOKS,
                           PIN, REASONS, RECENT, REFRESH, RESULT, RETRY, SCAN, STAFF, STAFF_ADMIT, STOP, TICK, WARN,
                           Command, Display, Status, describe, fault_text, hash_pin, look_of,
                           pin_hash_problem, verify_pin)
from kiosk.i18n import LOCALES, Messages
from kiosk.model import Decision, Verdict
from kiosk.state import SyncOutcome
from kiosk.status import JournalStatus, KioskStatus, SnapshotStatus

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
FAST_HASH = hash_pin("2468", iterations=1000)


@pytest.fixture(scope="module")
def decisions():
    return demo_decisions(NOW)


# -- PIN ---------------------------------------------------------------------------------

def test_a_pin_hash_verifies_its_pin_only():
    stored = hash_pin("2468", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert verify_pin("2468", stored)
    assert not verify_pin("2469", stored)
    assert not verify_pin("2468", stored.replace("$1000$", "$1001$"))
    assert hash_pin("2468", iterations=1000) != stored  # salted


def test_bad_pins_and_bad_hashes_are_refused():
    for pin in ("123", "12a4", "123456789"):
        with pytest.raises(ValueError):
            hash_pin(pin)
    assert pin_hash_problem("1234") == "is not a PIN hash; make one with `kiosk hash-pin`"
    assert pin_hash_problem("pbkdf2_sha256$x$AA==$AA==")
    assert pin_hash_problem(FAST_HASH) is None
    assert not verify_pin("1234", "1234")


# -- words -------------------------------------------------------------------------------

EXPECTED_EN = {  # tone, shape, the member's instruction, then for staff: title and reason
    Verdict.ADMIT: (GO, TICK, "Go in", "Welcome", "Member of Members"),
    Verdict.NOT_IN_GROUP: (STOP, CROSS, "See staff", "Wrong group", "Member of: none; this gate: Members"),
    Verdict.CARD_REVOKED: (STOP, CROSS, "See staff", "Card blocked", "Revoked in the member records"),
    Verdict.INACTIVE: (STOP, CROSS, "See staff", "Account inactive", "Switched off in the member records"),
    Verdict.NOT_RECOGNISED: (RETRY, SCAN, "Try again", "Not recognised", "Not a card or pass of this venue"),
    Verdict.REPEAT: (GO, TICK, "Go ahead", "Already admitted", "3 s ago"),
    Verdict.EXPIRED: (STOP, CROSS, "See staff", "Membership expired", "Last valid day 13 Oct"),
    Verdict.CARD_UNASSIGNED: (STOP, CROSS, "See staff", "Unknown card", "Not linked to a member"),
    Verdict.SNAPSHOT_STALE: (STOP, BANG, "See staff", "Member list too old", "Scans refused until the next sync"),
    Verdict.CODE_EXPIRED: (RETRY, REFRESH, "Refresh", "Code expired", "Refresh the pass on your phone"),
    # access rules (tests/kiosk/test_access.py has the rest); a punch card used up has no time to come back at
    Verdict.OUTSIDE_HOURS: (LATER, CLOCK, "At 12:00", "Closed now", "Alumni: from 12:00"),
    Verdict.LIMIT_REACHED: (STOP, CROSS, "See staff", "Limit reached", "Punch card used up"),
    Verdict.FULL: (WARN, HOURGLASS, "Wait", "Full", "2 people inside: please wait"),
    Verdict.ALREADY_INSIDE: (LEAVE, EXIT, "Exit first", "Already inside", "Please leave through the exit first"),
}


@pytest.mark.parametrize("verdict", list(Verdict))
def test_each_verdict_reads_in_plain_words(decisions, verdict):
    text = describe(decisions[verdict], Messages("en"), selected_groups=("Members",), tz=timezone.utc)
    assert (text.tone, text.shape, text.instruction, text.title, text.reason) == EXPECTED_EN[verdict]
    dutch = describe(decisions[verdict], Messages("nl"), selected_groups=("Members",), tz=timezone.utc)
    assert (dutch.tone, dutch.shape, dutch.name) == (text.tone, text.shape, text.name)
    assert dutch.title not in ("", text.title) and dutch.reason not in ("", text.reason)
    assert dutch.instruction not in ("", text.instruction)


def test_verdicts_that_ask_different_things_never_look_alike():
    """The picture (colour and shape) says what to do; the words say it too. Two looks that ask
    different things differ in colour or shape, and in words, in every language."""
    looks = {**LOOKS, "(staff admit)": STAFF_ADMIT, "(exit button)": EXIT_BUTTON}
    assert {v.value for v in Verdict} <= set(LOOKS)
    for locale in LOCALES:
        msg = Messages(locale)
        for (a, look_a), (b, look_b) in itertools.combinations(looks.items(), 2):
            words_a, words_b = msg(look_a.instruction, when="07:00"), msg(look_b.instruction, when="07:00")
            if look_a.ask == look_b.ask:
                assert look_a.tone == look_b.tone, f"{a} and {b} ask the same: same colour"
                continue
            assert (look_a.tone, look_a.shape) != (look_b.tone, look_b.shape), f"{a} and {b} look alike"
            assert words_a != words_b, f"{a} and {b} ask different things in the same words ({locale})"
    # the case: "already in, go ahead" and "ask staff" were both amber with "!"
    repeat, stale = LOOKS["repeat"], LOOKS["snapshot_stale"]
    assert (repeat.tone, repeat.shape) != (stale.tone, stale.shape)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_member_line_is_short_and_plain_and_titles_do_not_repeat_the_reason(decisions, locale):
    msg = Messages(locale)
    for verdict, decision in decisions.items():
        text = describe(decision, msg, selected_groups=("Members",), tz=timezone.utc)
        assert len(text.instruction.split()) <= 2, text.instruction
        assert "Members" not in text.instruction and "group" not in text.instruction.lower()
        title_words = {w.lower() for w in re.findall(r"\w{4,}", text.title)}
        reason_words = {w.lower() for w in re.findall(r"\w{4,}", text.reason)}
        assert not title_words & reason_words, f"{verdict.value}: {text.title!r} repeats in {text.reason!r}"


def test_come_back_gives_the_time_and_without_one_says_see_staff(decisions):
    closed = decisions[Verdict.OUTSIDE_HOURS]
    en, nl = Messages("en"), Messages("nl")
    monday = replace(closed, next_at=datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc))  # NOW is a Sunday
    assert describe(monday, en, tz=timezone.utc).instruction == "At Mon 07:00"
    assert describe(monday, nl, tz=timezone.utc).instruction == "Om ma 07:00"
    christmas = replace(closed, next_at=datetime(2026, 12, 25, 7, 0, tzinfo=timezone.utc))
    assert describe(christmas, en, tz=timezone.utc).instruction == "At 25 Dec 07:00"
    never = describe(replace(closed, next_at=None), en, tz=timezone.utc)
    assert (never.tone, never.shape, never.instruction) == (STOP, CROSS, "See staff")
    assert look_of(replace(closed, next_at=None)) is LOOKS["not_in_group"]


def test_words_come_from_the_fields_not_the_english_reason(decisions):
    d = replace(decisions[Verdict.ADMIT], reason="something else", matched_groups=("Members", "Patrons"))
    assert describe(d, Messages("nl")).reason == "Lid van Members en Patrons"
    assert describe(replace(d, stale=True), Messages("en")).reason == "Member list out of date: please tell staff"
    assert describe(replace(d, stale=True), Messages("en")).instruction == "Go in"
    old = replace(decisions[Verdict.EXPIRED], valid_until=date(2025, 1, 31))
    assert describe(old, Messages("en"), tz=timezone.utc).reason == "Last valid day 31 Jan 2025"
    assert describe(old, Messages("nl"), tz=timezone.utc).reason == "Laatste geldige dag 31 jan 2025"
    future = replace(decisions[Verdict.EXPIRED], valid_until=None)
    assert describe(future, Messages("en")).title == "Not yet valid"
    repeat = replace(decisions[Verdict.REPEAT], repeat_of_s=12.4)
    assert describe(repeat, Messages("nl")).reason == "12 s geleden"
    patron = replace(decisions[Verdict.NOT_IN_GROUP], groups=("Patrons", "Alumni"))
    assert describe(patron, Messages("en"), selected_groups=("Members",)).reason == \
        "Member of: Patrons and Alumni; this gate: Members"


def test_staff_admits_and_exit_presses_say_what_they_are():
    staff = Decision(Verdict.ADMIT, at=NOW, source="staff", reason="Guest of a member")
    assert describe(staff, Messages("nl")).title == "Toegelaten door medewerker"
    assert describe(staff, Messages("nl")).reason == "Gast van een lid"
    assert describe(replace(staff, reason="typed by hand"), Messages("nl")).reason == "typed by hand"
    assert describe(staff, Messages("nl")).instruction == "Ga door"
    exit_press = Decision(Verdict.ADMIT, at=NOW, source="exit_button", reason="Manual admit")
    assert describe(exit_press, Messages("en")).title == "Door open"
    assert (describe(exit_press, Messages("en")).instruction, describe(exit_press, Messages("en")).shape) == \
        ("Goodbye", EXIT)


def test_faults_are_translated_when_known():
    nl = Messages("nl")
    assert fault_text("camera", "camera not responding", nl) == "Camera werkt niet"
    assert fault_text("upstream_auth", "401", nl) == "Server weigert de sleutel van deze kiosk"
    assert fault_text("printer_jam", "Printer jammed", nl) == "Printer jammed"


def test_status_is_read_from_the_kiosks_typed_status():
    status = KioskStatus(gate="g", device="d", snapshot=SnapshotStatus(cursor="c-9", age_s=120, customers=6),
                         journal=JournalStatus(pending=3, held=1),
                         last_sync=SyncOutcome(at="2026-11-22T09:58:00Z", ok=True))
    s = Status.from_status(status, upstream=True)
    assert (s.online, s.has_snapshot, s.snapshot_age_s, s.cursor, s.unreported) == (True, True, 120, "c-9", 4)
    assert Status.from_status(replace(status, faults={"upstream": "down"}), upstream=True).online is False
    assert Status.from_status(status, upstream=False).online is None
    empty = KioskStatus(gate="g", device="d", snapshot=SnapshotStatus(), journal=JournalStatus())
    nothing = Status.from_status(empty, upstream=True)
    assert nothing.online is False and not nothing.has_snapshot


# -- the state machine -------------------------------------------------------------------

def make(pin_hash: str = FAST_HASH) -> Display:
    return Display(result_s=3, long_press_s=2, pin_hash=pin_hash, panel_idle_s=60)


def test_a_result_shows_for_result_s_and_a_new_scan_replaces_it(decisions):
    d = make()
    assert d.view(0) == IDLE
    d.show(decisions[Verdict.ADMIT], 10)
    assert d.view(12.9) == RESULT
    d.show(decisions[Verdict.CARD_REVOKED], 12.9)
    assert d.result.verdict is Verdict.CARD_REVOKED and d.view(15.8) == RESULT
    d.update(15.95)
    assert d.view(15.95) == IDLE and d.result is None
    assert [r.verdict for r in d.recent] == ["card_revoked", "admit"]


def test_recent_keeps_the_last_ten_newest_first(decisions):
    d = make()
    for i in range(12):
        d.show(replace(decisions[Verdict.ADMIT], name=f"n{i}"), i)
    assert [r.name for r in d.recent] == [f"n{i}" for i in range(11, 1, -1)]


def test_a_long_press_opens_the_pin_pad_a_short_one_does_not():
    d = make()
    d.press(0)
    d.update(1.9)
    d.release(1.9)
    d.update(5)
    assert d.view(5) == IDLE
    d.press(10)
    d.update(12)
    assert d.view(12) == PIN


def test_the_right_pin_opens_the_staff_panel_and_wrong_ones_lock_it():
    d = make()
    d.press(0)
    d.update(2)
    for _ in range(5):
        for digit in "1111":
            d.tap(f"digit:{digit}", 3)
        d.tap("ok", 3)
        assert d.view(3) == PIN and d.pin_error == "wrong" and d.pin_entry == ""
    assert d.locked_for(3) == 60
    for digit in "2468":
        d.tap(f"digit:{digit}", 4)
    d.tap("ok", 4)
    assert d.view(4) == PIN and d.pin_entry == ""  # locked: digits ignored
    for digit in "2468":
        d.tap(f"digit:{digit}", 64)
    d.tap("ok", 64)
    assert d.view(64) == STAFF


def staff_display() -> Display:
    d = make()
    d.press(0)
    d.update(2)
    for digit in "2468":
        d.tap(f"digit:{digit}", 2)
    d.tap("ok", 2)
    assert d.view(2) == STAFF
    return d


def test_staff_panel_commands(decisions):
    d = staff_display()
    assert d.tap("sync", 3) == Command("sync")
    assert d.tap("goto:recent", 3) is None and d.view(3) == RECENT
    d.tap("goto:staff", 3)
    d.tap("goto:reasons", 3)
    assert d.view(3) == REASONS
    assert d.tap("admit:no_such_reason", 3) is None
    assert d.tap("admit:guest", 3) == Command("admit", "guest")
    assert d.view(3) == STAFF
    d.show(decisions[Verdict.ADMIT], 4)  # the staff admit's own result covers the panel, then it returns
    assert d.view(5) == RESULT
    d.update(7.1)
    assert d.view(7.1) == STAFF
    d.tap("close", 8)
    assert d.view(8) == IDLE


def test_an_idle_panel_closes_by_itself():
    d = staff_display()
    d.tap("goto:recent", 10)
    d.update(69)
    assert d.view(69) == RECENT
    d.update(70.1)
    assert d.view(70.1) == IDLE


def test_without_a_pin_hash_the_staff_panel_is_disabled():
    d = make(pin_hash="")
    d.press(0)
    d.update(2)
    assert d.view(2) == DISABLED
    assert d.tap("digit:1", 2) is None and d.tap("sync", 2) is None
    d.tap("close", 3)
    assert d.view(3) == IDLE


def test_taps_do_nothing_outside_panels_and_changes_bump_the_version(decisions):
    d = make()
    v = d.version
    assert d.tap("sync", 0) is None and d.version == v
    d.set_faults({"camera": "down"})
    assert d.version == v + 1
    d.set_faults({"camera": "down"})
    assert d.version == v + 1
    key = d.frame_key(0)
    d.show(decisions[Verdict.ADMIT], 0)
    assert d.frame_key(0) != key


def test_the_lockout_countdown_changes_the_frame_key():
    d = make()
    d.press(0)
    d.update(2)
    for _ in range(5):
        d.tap("ok", 2)
    assert d.frame_key(2) != d.frame_key(3) and d.locked_for(61.5) == 1


def test_the_expiry_date_is_read_in_the_gates_zone():
    late = datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc)  # already 1 Feb in Amsterdam
    d = Decision(Verdict.EXPIRED, at=late, name="X", valid_until=date(2026, 1, 31))
    from zoneinfo import ZoneInfo

    assert describe(d, Messages("en"), tz=ZoneInfo("Europe/Amsterdam")).reason == "Last valid day 31 Jan"


# -- "+1 guest" and the occupancy correction (issue 11) ------------------------------------

def test_a_member_with_guests_offers_plus_one_guest_until_the_allowance_is_used():
    d = make()
    member = Decision(Verdict.ADMIT, at=NOW, name="Mia", customer_id="I-1", guests=2, source="camera")
    d.show(member, 0)
    assert d.guests(0) == (0, 2) and d.offers_guest(0)
    assert d.tap("guest", 0.5) == Command("guest")
    assert d.view(0.5) == RESULT  # the button asks the gate; the screen waits for its decision
    guest = Decision(Verdict.ADMIT, at=NOW, name="Guest of Mia", raw="guest:I-1", count=1, limit=2, source="guest")
    d.show(guest, 1)
    assert d.guests(1) == (1, 2) and d.tap("guest", 1) == Command("guest")
    d.show(replace(guest, count=2), 2)
    assert d.guests(2) == (2, 2) and not d.offers_guest(2) and d.tap("guest", 2) is None
    refused = Decision(Verdict.LIMIT_REACHED, at=NOW, raw="guest:I-1", count=2, limit=2, source="guest")
    d.show(refused, 3)
    assert d.guests(3) == (2, 2)  # a refused guest uses nothing
    d.update(6.1)
    assert d.guests(6.1) is None and d.tap("guest", 6.1) is None  # the result is gone, and so is the button


def test_no_guest_button_without_guests_or_after_someone_elses_scan():
    d = make()
    d.show(Decision(Verdict.ADMIT, at=NOW, name="Jane", customer_id="I-2", source="camera"), 0)
    assert d.guests(0) is None and d.tap("guest", 0) is None
    d.show(Decision(Verdict.ADMIT, at=NOW, name="Mia", customer_id="I-1", guests=1, source="camera"), 1)
    assert d.offers_guest(1)
    d.show(Decision(Verdict.NOT_IN_GROUP, at=NOW, name="Bob", customer_id="I-3", source="camera"), 2)
    assert d.guests(2) is None and d.tap("guest", 2) is None


def test_the_staff_panel_corrects_the_occupancy():
    d = make()
    assert d.tap("occupancy:+1", 0) is None  # no panel open: nothing
    d = staff_display()
    assert [d.tap(f"occupancy:{c}", 3) for c in ("+1", "-1", "0")] == [
        Command("occupancy", "+1"), Command("occupancy", "-1"), Command("occupancy", "0")]
    assert d.tap("occupancy:+5", 3) is None and d.tap("occupancy:", 3) is None
    version = d.version
    d.set_inside(4)
    d.set_inside(4)
    assert d.inside == 4 and d.version == version + 1  # a new count redraws, the same one does not
    d.tap("goto:reasons", 3)
    assert d.tap("occupancy:+1", 3) is None  # only on the staff panel itself
