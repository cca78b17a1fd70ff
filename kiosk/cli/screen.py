"""`kiosk screenshot` (a screen rendered with demo data, to a PNG) and `kiosk hash-pin` (for staff.pin_hash)."""

from __future__ import annotations

import argparse
import getpass
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .. import demo
from ..credential import parse
from ..display import PIN, Display, Shot, Status, hash_pin
from ..errors import ConfigError, OutputError
from ..i18n import LOCALES
from ..model import Decision, Verdict
from ..pass_keys import demo_stale_code
from ..photos import demo_photo, thumbnail
from ..rules import Policy, decide
from ..snapshot import SnapshotStore, load_records
from ..state import SyncOutcome
from .common import Commands, load_config

SCREENS = ("idle", "fault", "staff", "pin", "recent", "reasons", "disabled")
SHEET = "all"  # every verdict in every language on one contact sheet
SIZE_RANGE = ((480, 320), (1920, 1080))
DEMO_PIN = "2468"
DEMO_T = 1000.0  # the monotonic time the demo screens are shown at

# The demo scan that leads to each verdict (repeat and snapshot_stale need a little more, below).
_DEMO_SCANS = {Verdict.ADMIT: "I-1002", Verdict.NOT_IN_GROUP: "I-1003", Verdict.INACTIVE: "I-1004",
               Verdict.EXPIRED: "I-1005", Verdict.CARD_REVOKED: demo.REVOKED_CARD,
               Verdict.CARD_UNASSIGNED: demo.UNASSIGNED_CARD, Verdict.NOT_RECOGNISED: "HELLO-WORLD",
               Verdict.REPEAT: "I-1001", Verdict.SNAPSHOT_STALE: "O-2001"}


def demo_decisions(now: datetime) -> dict[Verdict, Decision]:
    """One real decision per verdict: the demo snapshot through the real rules."""
    with tempfile.TemporaryDirectory(prefix="kiosk-screenshot-") as tmp:
        path = Path(tmp) / "snapshot.sqlite"
        demo.seed(path, now, rules=True)
        fresh = SnapshotStore(path)
        stale_path = Path(tmp) / "stale.sqlite"
        load_records(stale_path, demo.records(now.date()), {"cursor": "demo-0", "source": "demo",
                          "synced_at": (now - timedelta(days=5)).isoformat()}, mode="full")
        stale = SnapshotStore(stale_path)
        try:
            policy = Policy()
            out: dict[Verdict, Decision] = {}
            for verdict, text in _DEMO_SCANS.items():
                snapshot, rules = (stale, Policy(stale_policy="deny")) if verdict is Verdict.SNAPSHOT_STALE \
                    else (fresh, policy)
                recent = {"I-1001": now - timedelta(seconds=3)} if verdict is Verdict.REPEAT else None
                out[verdict] = decide(parse(text), snapshot, rules, now, recent)
            text, settings = demo_stale_code(now)  # a screenshot of a rotating pass, 10 minutes old
            out[Verdict.CODE_EXPIRED] = decide(parse(text), fresh, Policy(passes=settings), now)
            for verdict, (text, access_rules, counts) in demo.rule_cases(now).items():
                rules = Policy(groups=("members", "alumni"), access=access_rules, tz=timezone.utc)
                out[verdict] = decide(parse(text), fresh, rules, now, None, counts)
        finally:
            fresh.close()
            stale.close()
    missing = [v.value for v in Verdict if out.get(v) is None or out[v].verdict is not v]
    if missing:
        raise RuntimeError(f"the demo data no longer yields these verdicts: {', '.join(missing)}")
    return out


def demo_display(screen: str, now: datetime, *, result_s: float = 3, t: float = DEMO_T) -> Display:
    """A Display in the state `screen` names (a verdict or one of SCREENS) at monotonic time `t`,
    driven there through its own API as a user would."""
    display = Display(result_s=result_s, long_press_s=2, pin_hash=hash_pin(DEMO_PIN, iterations=1000)
                      if screen != "disabled" else "")
    display.set_status(Status(online=True, has_snapshot=True, snapshot_age_s=240, cursor="2026-11-22T09:58:04Z#1842",
                              unreported=0,
                              last_sync=SyncOutcome(at=(now - timedelta(minutes=4)).isoformat(), ok=True)))
    decisions = demo_decisions(now)
    for i, verdict in enumerate(reversed(list(decisions))):
        display.show(_replace_at(decisions[verdict], now - timedelta(seconds=40 * (len(decisions) - i))), t - 10)
    display.update(t)
    if screen in {v.value for v in Verdict}:
        display.show(decisions[Verdict(screen)], t)
        return display
    if screen == "fault":
        display.set_faults({"camera": "camera not responding", "snapshot_stale": "Member list out of date (96 h old)"})
        display.set_status(Status(online=False, has_snapshot=True, snapshot_age_s=96 * 3600, cursor="demo-0",
                                  unreported=17,
                                  last_sync=SyncOutcome(at=(now - timedelta(hours=2)).isoformat(), ok=False,
                                                        error="connection refused")))
    if screen in ("staff", "pin", "recent", "reasons", "disabled"):
        display.press(t)
        display.update(t + display.long_press_s)
        if screen == "pin":
            for digit in DEMO_PIN[:3]:
                display.tap(f"digit:{digit}", t)
        elif display.view(t) == PIN:
            for digit in DEMO_PIN:
                display.tap(f"digit:{digit}", t)
            display.tap("ok", t)
            if screen in ("recent", "reasons"):
                display.tap(f"goto:{screen}", t)
        if display.view(t) != screen:
            raise RuntimeError(f"the demo could not reach the {screen} screen (at {display.view(t)})")
    return display


def _replace_at(decision: Decision, at: datetime) -> Decision:
    from dataclasses import replace

    return replace(decision, at=at)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(n) for n in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use WIDTHxHEIGHT, e.g. 800x480") from None
    (lw, lh), (hw, hh) = SIZE_RANGE
    if not (lw <= w <= hw and lh <= h <= hh):
        raise argparse.ArgumentTypeError(f"{text!r}: the screen supports {lw}x{lh} up to {hw}x{hh}")
    return w, h


def cmd_screenshot(args: argparse.Namespace) -> int:
    """Drawn by the screen adapter, asked through the composition root (`kiosk.compose.screenshot`)."""
    from .. import compose

    cfg = load_config(args)
    now = datetime.now().astimezone()
    with tempfile.TemporaryDirectory(prefix="kiosk-photos-") as photos:

        def shot(screen: str, locale: str) -> Shot:
            display = demo_display(screen, now, result_s=float(cfg.screen.result_s))
            photo = None
            if args.photo and display.result is not None and display.result.customer_id:
                photo = Path(photos) / f"{display.result.customer_id}.png"
                photo.write_bytes(thumbnail(demo_photo(display.result.customer_id)))
            return Shot(f"{screen} · {locale}", locale, display, str(photo) if photo else None)

        if args.verdict == SHEET:  # two verdicts a row, each in every language
            shots, columns = [shot(v.value, locale) for v in Verdict for locale in LOCALES], 2 * len(LOCALES)
            what = f"{len(Verdict)} verdicts x {len(LOCALES)} languages"
        else:
            locale = args.locale or cfg.screen.locale
            shots, columns, what = [shot(args.verdict, locale)], 1, f"{args.verdict}, {locale}"
        try:
            width, height = compose.screenshot(cfg, shots, args.size, args.out, wall=now, now=DEMO_T,
                                               groups=("Members",), columns=columns)
        except OutputError as exc:
            raise ConfigError("--out", "out", str(exc)) from None
    print(f"wrote {args.out} ({width}x{height}, {what})")
    return 0


def cmd_hash_pin(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        pin = getpass.getpass("Staff PIN (4-8 digits): ")
        if getpass.getpass("Again: ") != pin:
            print("kiosk: the two PINs differ; nothing written", file=sys.stderr)
            return 2
    else:
        pin = sys.stdin.readline().strip()
    try:
        value = hash_pin(pin)
    except ValueError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    print(value)
    if sys.stdout.isatty():
        print(f'# put it in kiosk.toml:\n# [staff]\n# pin_hash = "{value}"', file=sys.stderr)
    return 0


def register(commands: Commands) -> None:
    verdicts = [v.value for v in Verdict]
    p = commands.add("screenshot", cmd_screenshot, "render a screen with demo data to a PNG",
                     "Render one screen with the demo data to a PNG (no display needed).")
    p.add_argument("--verdict", required=True, choices=verdicts + list(SCREENS) + [SHEET], metavar="SCREEN",
                   help="a verdict (" + ", ".join(verdicts) + ") or " + ", ".join(SCREENS) +
                   f", or {SHEET}: a contact sheet of every verdict in every language")
    p.add_argument("--locale", choices=LOCALES, help="default: the config's screen.locale")
    p.add_argument("--size", type=parse_size, default=(800, 480), metavar="WxH", help="default 800x480")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--photo", action="store_true",
                   help="a generated stand-in photo beside the member's name, as with screen.show_photo")

    p = commands.add("hash-pin", cmd_hash_pin, "read a staff PIN, print the value for staff.pin_hash",
                     "Read a staff PIN (4-8 digits) from the terminal or stdin and print the "
                     "salted PBKDF2 hash to put in staff.pin_hash.")
