"""What the touchscreen shows, as pure state: idle, a result, the fault banner, recent scans, staff panel.

No pygame here. Times are monotonic seconds passed in by the caller, so every transition is
testable without sleeping. The renderer (hardware/screen_render.py) draws a `Display`; the
screen adapter feeds it decisions, faults, status and touches, and carries out the
`Command`s that taps return.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Mapping

from .access import GUEST_SOURCE
from .i18n import ADMIT_REASONS, Messages
from .model import Decision, Verdict
from .state import SyncOutcome
from .status import KioskStatus
from .text import safe_text

PIN_SCHEME = "pbkdf2_sha256"
PIN_ITERATIONS = 200_000
PIN_MAX_DIGITS = 8


# -- staff PIN ---------------------------------------------------------------------------

def hash_pin(pin: str, *, iterations: int = PIN_ITERATIONS, salt: bytes | None = None) -> str:
    """The value for `staff.pin_hash`: "pbkdf2_sha256$ITERATIONS$SALT$HASH" (base64)."""
    if not pin.isdigit() or not 4 <= len(pin) <= PIN_MAX_DIGITS:
        raise ValueError(f"a PIN is 4 to {PIN_MAX_DIGITS} digits")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"{PIN_SCHEME}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def pin_hash_problem(stored: str) -> str | None:
    """Why `stored` is not a usable `staff.pin_hash`, or None."""
    parts = stored.split("$")
    try:
        ok = (len(parts) == 4 and parts[0] == PIN_SCHEME and int(parts[1]) > 0
              and base64.b64decode(parts[2], validate=True) and base64.b64decode(parts[3], validate=True))
    except ValueError:
        ok = False
    return None if ok else "is not a PIN hash; make one with `kiosk hash-pin`"


def verify_pin(pin: str, stored: str) -> bool:
    if pin_hash_problem(stored):
        return False
    _, iterations, salt, digest = stored.split("$")
    candidate = hashlib.pbkdf2_hmac("sha256", pin.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


# -- what a result says ------------------------------------------------------------------

# What the member is asked to do decides the colour (tone) and the shape; the instruction says it
# in a few words large enough to read at three metres. Verdicts that ask different things never
# share a colour and shape (tests/kiosk/test_display.py checks every pair).
GO, STOP, WARN, RETRY, LATER, LEAVE = "go", "stop", "warn", "retry", "later", "leave"  # tones
TICK, CROSS, BANG, SCAN, REFRESH, CLOCK, HOURGLASS, EXIT = (
    "tick", "cross", "bang", "scan", "refresh", "clock", "hourglass", "exit")  # shapes


@dataclass(frozen=True)
class Look:
    ask: str  # what the member should do; same ask, same tone
    tone: str
    shape: str
    instruction: str  # message key


SEE_STAFF = Look("see_staff", STOP, CROSS, "do.see_staff")
COME_BACK = Look("come_back", LATER, CLOCK, "do.back_at")
# Keyed by the verdict's code, so verdicts added elsewhere get their look as soon as they exist.
LOOKS: dict[str, Look] = {
    "admit": Look("go_in", GO, TICK, "do.go_in"),
    "repeat": Look("go_in", GO, TICK, "do.go_ahead"),  # admitted a moment ago: the door is theirs
    "not_in_group": SEE_STAFF,
    "inactive": SEE_STAFF,
    "expired": SEE_STAFF,
    "card_revoked": SEE_STAFF,
    "card_unassigned": SEE_STAFF,
    "snapshot_stale": Look("see_staff", STOP, BANG, "do.see_staff"),  # the kiosk's fault, not theirs
    "not_recognised": Look("scan_again", RETRY, SCAN, "do.try_again"),
    "code_expired": Look("refresh_pass", RETRY, REFRESH, "do.refresh"),
    "outside_hours": COME_BACK,
    "limit_reached": COME_BACK,
    "full": Look("wait", WARN, HOURGLASS, "do.wait"),
    "already_inside": Look("exit_first", LEAVE, EXIT, "do.exit_first"),
}
STAFF_ADMIT = Look("go_in", GO, TICK, "do.go_in")
EXIT_BUTTON = Look("go_out", GO, EXIT, "do.goodbye")


@dataclass(frozen=True)
class ResultText:
    tone: str
    shape: str
    instruction: str  # for the member, large
    title: str  # for staff: what happened, then `reason` the detail
    name: str
    reason: str


def look_of(decision: Decision) -> Look:
    """The look for a decision: its verdict's, or "see staff" where there is no time to come back at."""
    look = LOOKS.get(decision.verdict.value, SEE_STAFF)
    if look is COME_BACK and decision.next_at is None:  # no hours ahead, punch card used up
        return SEE_STAFF
    return look


def describe(decision: Decision, msg: Messages, *, selected_groups: tuple[str, ...] = (),
             tz: tzinfo | None = None) -> ResultText:
    """The words for a decision, from its verdict and fields (never from `decision.reason`, which is English)."""
    v = decision.verdict
    if decision.source == "staff":
        return ResultText(GO, TICK, msg(STAFF_ADMIT.instruction), msg("title.staff_admit"), decision.name,
                          staff_reason_text(decision.reason, msg))
    if decision.source == "exit_button":
        return ResultText(GO, EXIT, msg(EXIT_BUTTON.instruction), msg("title.exit"), "", msg("reason.exit"))
    look = look_of(decision)
    title_key = f"title.{v.value}"
    if v is Verdict.ADMIT:
        matched = decision.matched_groups
        reason = msg("reason.admit_stale") if decision.stale else (
            msg("reason.admit", groups=msg.names(matched)) if matched else msg("reason.admit_plain"))
        if decision.card_type == "PUNCH" and decision.count is not None and not decision.stale:
            reason = msg("reason.admit_punch", count=decision.count)
    elif v is Verdict.NOT_IN_GROUP:
        reason = msg("reason.not_in_group", groups=msg.names(decision.groups) or msg("reason.no_groups"),
                     gate=msg.names(selected_groups) or "-")
    elif v is Verdict.EXPIRED:
        today = decision.at.astimezone(tz).date()
        if decision.valid_until is not None and today > decision.valid_until:
            reason = msg("reason.expired", date=msg.day(decision.valid_until, today))
        else:
            title_key, reason = "title.not_yet_valid", msg("reason.not_yet_valid")
    elif v is Verdict.REPEAT:
        reason = msg("reason.repeat", seconds=round(decision.repeat_of_s or 0))
    elif v in _RULE_VERDICTS:
        reason = _rule_reason(decision, msg, tz)
    elif f"reason.{v.value}" in msg:
        reason = msg(f"reason.{v.value}")
    else:  # a verdict newer than this catalogue: say the safe thing
        title_key, reason = "title.unknown", msg("reason.unknown")
    return ResultText(look.tone, look.shape, instruction(look, decision, msg, tz), msg(title_key), decision.name,
                      reason)


def instruction(look: Look, decision: Decision, msg: Messages, tz: tzinfo | None = None) -> str:
    """The member's words: "Go in", "See staff", or for "come back" the time: "At 07:00", "At Mon 07:00"."""
    if look is not COME_BACK:
        return msg(look.instruction)
    assert decision.next_at is not None  # look_of gives COME_BACK only with a time to come back at
    return msg(look.instruction, when=_when(decision.next_at, decision.at, msg, tz))


_RULE_VERDICTS = (Verdict.OUTSIDE_HOURS, Verdict.LIMIT_REACHED, Verdict.FULL, Verdict.ALREADY_INSIDE)


def _rule_reason(decision: Decision, msg: Messages, tz: tzinfo | None) -> str:
    """The words for an access rule's verdict (kiosk/access.py), from the decision's count, limit and next_at."""
    v, when = decision.verdict, (_when(decision.next_at, decision.at, msg, tz) if decision.next_at else "")
    if v is Verdict.OUTSIDE_HOURS:
        groups = msg.names(decision.matched_groups)
        return msg("reason.outside_hours", groups=groups, when=when) if when else msg(
            "reason.outside_hours_never", groups=groups)
    if v is Verdict.FULL:
        return msg("reason.full", count=decision.count or 0)
    if v is Verdict.ALREADY_INSIDE:
        return msg("reason.already_inside")
    if decision.source == "guest":
        return msg("reason.guests_used", limit=decision.limit)
    if decision.limit is None:  # a punch card used up, or the minimum time between entries
        return msg("reason.limit_next", when=when) if when else msg("reason.punch_used_up")
    if when:
        return msg("reason.limit_reached", count=decision.count, limit=decision.limit, when=when)
    return msg("reason.limit_reached_total", limit=decision.limit)


def _when(moment: datetime, now: datetime, msg: Messages, tz: tzinfo | None) -> str:
    """"07:00" today, "Mon 07:00" this week, else "25 Dec 07:00", in the gate's time zone."""
    moment, now = moment.astimezone(tz), now.astimezone(tz)
    clock = f"{moment:%H:%M}"
    days = (moment.date() - now.date()).days
    if days == 0:
        return clock
    if 0 < days < 7:
        return msg("when.weekday", day=msg("weekdays").split()[moment.weekday()], time=clock)
    return msg("when.date", date=msg.day(moment.date(), now.date()), time=clock)


def staff_reason_text(note: str, msg: Messages) -> str:
    """A manual admit's journalled reason (English preset text) in the screen's language."""
    english = Messages("en")
    for key in ADMIT_REASONS:
        if note == english(f"admit_reason.{key}"):
            return msg(f"admit_reason.{key}")
    return note


def verdict_label(verdict: str, msg: Messages) -> str:
    key = f"verdict.{verdict}"
    return msg(key) if key in msg else msg("verdict.other")


_FAULT_KEYS = (("upstream_auth", "fault.upstream_auth"), ("token", "fault.upstream_auth"),
               ("upstream", "fault.upstream"), ("camera", "fault.camera"), ("serial", "fault.scanner"),
               ("hid", "fault.scanner"), ("scanner", "fault.scanner"), ("snapshot_stale", "fault.snapshot_stale"),
               ("snapshot_pending", "fault.snapshot_pending"), ("snapshot", "fault.snapshot_damaged"),
               ("journal", "fault.journal"), ("door", "fault.door_held"), ("venue_auth", "fault.venue_refused"),
               ("venue", "fault.venue_down"))


def fault_text(name: str, message: str, msg: Messages) -> str:
    """A fault in the screen's language when we know its kind; else the adapter's own message."""
    for prefix, key in _FAULT_KEYS:
        if name.startswith(prefix):
            return msg(key)
    return message or msg("fault.other")


# -- status and recent scans -------------------------------------------------------------

@dataclass(frozen=True)
class Status:
    """The few status figures the screen shows, read from the kiosk's typed status."""

    online: bool | None  # None: no upstream configured
    has_snapshot: bool
    snapshot_age_s: int | None
    cursor: str
    unreported: int
    last_sync: SyncOutcome | None

    @classmethod
    def from_status(cls, status: KioskStatus, *, upstream: bool) -> "Status":
        last = status.last_sync
        faulty = any(name.startswith("upstream") for name in status.faults)
        online = None if not upstream else bool(last and last.ok and not faulty)
        snap = status.snapshot
        return cls(online=online, has_snapshot=bool(snap.customers or snap.cursor), snapshot_age_s=snap.age_s,
                   cursor=snap.cursor, unreported=status.journal.unreported, last_sync=last)


def last_sync_text(last: SyncOutcome | None, msg: Messages, wall: datetime) -> str:
    """The staff panel's "last sync" line: when, and on failure why."""
    if last is None:
        return msg("staff.never")
    age = "?"
    try:
        moment = datetime.fromisoformat(last.at.replace("Z", "+00:00"))
        age = msg.age((wall - moment).total_seconds())
    except (TypeError, ValueError):
        pass
    if last.ok:
        return msg("staff.sync_ok", age=age)
    return msg("staff.sync_failed", age=age, message=safe_text(last.error, 120) or "?")


@dataclass(frozen=True)
class Shot:
    """One screen for `kiosk screenshot`: a Display driven into the wanted state, its language and photo file."""

    label: str  # under the tile on a contact sheet
    locale: str
    display: "Display"
    photo: str | None = None


@dataclass(frozen=True)
class RecentScan:
    at: datetime
    name: str
    verdict: str
    source: str


# -- the state machine -------------------------------------------------------------------

IDLE, RESULT = "idle", "result"
OCCUPANCY_CHANGES = ("-1", "+1", "0")  # the staff panel's buttons; kiosk/gate.py applies them in order
PIN, DISABLED, STAFF, RECENT, REASONS = "pin", "disabled", "staff", "recent", "reasons"


@dataclass(frozen=True)
class Command:
    """Something a tap asks the adapter to do: "sync", "admit" with a preset reason key, "guest" (+1 guest
    for the member on screen) or "occupancy" with "+1", "-1" or "0"."""

    kind: str
    reason: str = ""


class Display:
    """The screen's state. Every change bumps `version`, so the adapter redraws only when needed."""

    def __init__(self, *, result_s: float, long_press_s: float, pin_hash: str = "", panel_idle_s: float = 60,
                 max_recent: int = 10, pin_attempts: int = 5, lockout_s: float = 60, notice_s: float = 4):
        self.result_s = result_s
        self.long_press_s = long_press_s
        self.pin_hash = pin_hash
        self.panel_idle_s = panel_idle_s
        self.pin_attempts = pin_attempts
        self.lockout_s = lockout_s
        self.notice_s = notice_s
        self.version = 0
        self.result: Decision | None = None
        self.result_until = 0.0
        self.panel: str | None = None
        self.panel_until = 0.0
        self.pin_entry = ""
        self.pin_error = ""  # "" | "wrong"
        self.failed_pins = 0
        self.locked_until = 0.0
        self.notice = ""  # a message key shown on the staff panel for a moment
        self.notice_until = 0.0
        self.faults: dict[str, str] = {}
        self.status: Status | None = None
        self.recent: deque[RecentScan] = deque(maxlen=max_recent)
        self._pressed_at: float | None = None
        self.guest_host: Decision | None = None  # the member on screen who may bring guests
        self.guests_used = 0
        self.inside: int | None = None  # the zone's count for the staff panel, set by the adapter

    def _changed(self) -> None:
        self.version += 1

    # -- what is on screen ---------------------------------------------------------------
    def view(self, now: float) -> str:
        if self.result is not None and now < self.result_until:
            return RESULT
        return self.panel or IDLE

    def locked_for(self, now: float) -> int:
        """Whole seconds the PIN keypad stays locked after too many wrong PINs."""
        return max(0, int(self.locked_until - now + 0.999))

    def frame_key(self, now: float) -> tuple:
        """Changes exactly when the picture would (the clock is the renderer's, added by the adapter)."""
        view = self.view(now)
        return self.version, view, self.locked_for(now) if view == PIN else 0

    # -- feeding it ----------------------------------------------------------------------
    def show(self, decision: Decision, now: float) -> None:
        """A new decision replaces whatever result is on screen at once."""
        self.result = decision
        self.result_until = now + self.result_s
        if decision.source == GUEST_SOURCE:
            if decision.verdict is Verdict.ADMIT and decision.count is not None:
                self.guests_used = decision.count
        elif decision.verdict is Verdict.ADMIT and decision.guests > 0:
            self.guest_host, self.guests_used = decision, 0
        else:  # someone else's scan: the gate's guests now belong to nobody on screen
            self.guest_host = None
        self.recent.appendleft(RecentScan(decision.at, decision.name, decision.verdict.value, decision.source))
        self._changed()

    def remember(self, scans: list[RecentScan]) -> None:
        """Seed the recent list (newest first), e.g. from the journal at start."""
        self.recent.extend(scans[: self.recent.maxlen])
        self._changed()

    def set_faults(self, faults: Mapping[str, str]) -> None:
        if dict(faults) != self.faults:
            self.faults = dict(faults)
            self._changed()

    def guests(self, now: float) -> tuple[int, int] | None:
        """(used, allowed) while the result on screen is a member with guests or one of their guests."""
        if self.guest_host is None or self.view(now) != RESULT:
            return None
        return self.guests_used, self.guest_host.guests

    def offers_guest(self, now: float) -> bool:
        """The "+1 guest" button: a member with guests on screen who has some left."""
        guests = self.guests(now)
        return guests is not None and guests[0] < guests[1]

    def set_inside(self, count: int | None) -> None:
        if count != self.inside:
            self.inside = count
            self._changed()

    def set_status(self, status: Status) -> None:
        if status != self.status:
            self.status = status
            self._changed()

    def update(self, now: float) -> None:
        """Time passing: results expire, idle panels close, a held press opens the PIN keypad."""
        if self.result is not None and now >= self.result_until:
            self.result = None
            self._changed()
        if self.panel is not None and now >= self.panel_until and self.view(now) != RESULT:
            self._close_panel()
        if self.notice and now >= self.notice_until:
            self.notice = ""
            self._changed()
        if self._pressed_at is not None and now - self._pressed_at >= self.long_press_s:
            self._pressed_at = None
            self.result = None
            self._open(DISABLED if not self.pin_hash else PIN, now)

    # -- touches -------------------------------------------------------------------------
    def press(self, now: float) -> None:
        """A finger went down outside any button; held long enough on idle or a result, it opens staff access."""
        if self.view(now) in (IDLE, RESULT):
            self._pressed_at = now

    def release(self, now: float) -> None:
        self._pressed_at = None

    def tap(self, action: str, now: float) -> Command | None:
        """A button was touched. Returns what the adapter must do, if anything."""
        if action == "guest":
            # the button asks; the gate decides (it knows the allowance and capacity), and its decision shows next
            return Command("guest") if self.offers_guest(now) else None
        if self.view(now) == RESULT or self.panel is None:
            return None
        self.panel_until = now + self.panel_idle_s
        kind, _, arg = action.partition(":")
        command = None
        if kind == "close":
            self._close_panel()
        elif kind == "digit" and self.panel == PIN and not self.locked_for(now):
            if len(self.pin_entry) < PIN_MAX_DIGITS:
                self.pin_entry += arg
            self.pin_error = ""
        elif kind == "clear" and self.panel == PIN:
            self.pin_entry, self.pin_error = "", ""
        elif kind == "ok" and self.panel == PIN and not self.locked_for(now):
            self._check_pin(now)
        elif kind == "goto" and self.panel in (STAFF, RECENT, REASONS) and arg in (STAFF, RECENT, REASONS):
            self.panel = arg
        elif kind == "sync" and self.panel == STAFF:
            command = Command("sync")
        elif kind == "occupancy" and self.panel == STAFF and arg in OCCUPANCY_CHANGES:
            command = Command("occupancy", arg)
        elif kind == "admit" and self.panel == REASONS and arg in ADMIT_REASONS:
            self.panel = STAFF
            command = Command("admit", arg)
        else:
            return None
        self._changed()
        return command

    def note(self, key: str, now: float) -> None:
        """Show a short message on the staff panel ("sync requested", "no server configured")."""
        self.notice, self.notice_until = key, now + self.notice_s
        self._changed()

    # -- internals -----------------------------------------------------------------------
    def _check_pin(self, now: float) -> None:
        if verify_pin(self.pin_entry, self.pin_hash):
            self.failed_pins = 0
            self.pin_entry, self.pin_error = "", ""
            self.panel = STAFF
            return
        self.failed_pins += 1
        self.pin_entry, self.pin_error = "", "wrong"
        if self.failed_pins >= self.pin_attempts:
            self.failed_pins = 0
            self.locked_until = now + self.lockout_s

    def _open(self, panel: str, now: float) -> None:
        self.panel = panel
        self.panel_until = now + self.panel_idle_s
        self.pin_entry, self.pin_error = "", ""
        self._changed()

    def _close_panel(self) -> None:
        self.panel = None
        self.pin_entry, self.pin_error, self.notice = "", "", ""
        self._changed()
