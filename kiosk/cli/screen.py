"""`kiosk screenshot` (a screen rendered with demo data, to a PNG) and `kiosk hash-pin` (for staff.pin_hash)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from .. import demo
from ..credential import parse
from ..display import PIN, Display, Status, hash_pin
from ..errors import ConfigError
from ..i18n import LOCALES, Messages
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


def demo_display(screen: str, now: datetime, *, result_s: float = 3, t: float = 1000.0) -> Display:
    """A Display in the state `screen` names (a verdict or one of SCREENS) at monotonic time `t`,
    driven there through its own API as a user would."""
    display = Display(result_s=result_s, long_press_s=2, pin_hash=hash_pin(DEMO_PIN, iterations=1000)
                      if screen != "disabled" else "")
    display.set_status(Status(online=True, has_snapshot=True, snapshot_age_s=240, cursor="2026-11-22T09:58:04Z#1842",
                              unreported=0, last_sync=SyncOutcome(at=(now - timedelta(minutes=4)).isoformat(), ok=True)))
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
                                  unreported=17, last_sync=SyncOutcome(at=(now - timedelta(hours=2)).isoformat(), ok=False,
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

    cfg = load_config(args)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    from hardware import screen_render

    now = datetime.now().astimezone()
    photos = tempfile.TemporaryDirectory(prefix="kiosk-photos-")

    def shot(screen: str, locale: str) -> pygame.Surface:
        display = demo_display(screen, now, result_s=float(cfg.screen.result_s))
        photo = None
        if args.photo and display.result is not None and display.result.customer_id:
            photo = Path(photos.name) / f"{display.result.customer_id}.png"
            photo.write_bytes(thumbnail(demo_photo(display.result.customer_id)))
        scene = screen_render.Scene(display=display, msg=Messages(locale), gate_name=cfg.gate.name, now=1000.0,
                                    wall=now, selected_groups=("Members",), can_sync=True,
                                    diagonal_in=float(cfg.screen.diagonal_in), photo=str(photo) if photo else None)
        return screen_render.render(scene, args.size).surface

    if args.verdict == SHEET:
        image, what = contact_sheet(shot, args.size), f"{len(Verdict)} verdicts x {len(LOCALES)} languages"
    else:
        image, what = shot(args.verdict, args.locale or cfg.screen.locale), \
            f"{args.verdict}, {args.locale or cfg.screen.locale}"
    photos.cleanup()
    out = Path(args.out)
    try:
        pygame.image.save(image, str(out))
    except (pygame.error, OSError) as exc:
        raise ConfigError("--out", "out", f"cannot write {out} ({exc})") from None
    print(f"wrote {out} ({image.get_width()}x{image.get_height()}, {what})")
    return 0


def contact_sheet(shot: Callable, size: tuple[int, int], per_row: int = 2):
    """Every verdict in every language, half size, labelled: two verdicts (EN, NL each) a row."""
    import pygame

    from hardware.screen_render import fonts

    tile = (size[0] // 2, size[1] // 2)
    label_h, gap = max(18, tile[1] // 10), 6
    verdicts = [v.value for v in Verdict]
    columns = per_row * len(LOCALES)
    rows = (len(verdicts) + per_row - 1) // per_row
    sheet = pygame.Surface((columns * (tile[0] + gap) + gap, rows * (tile[1] + label_h + gap) + gap))
    sheet.fill((40, 40, 40))
    font = fonts().get(int(label_h * 0.7), True)
    for i, verdict in enumerate(verdicts):
        for j, locale in enumerate(LOCALES):
            column = (i % per_row) * len(LOCALES) + j
            x, y = gap + column * (tile[0] + gap), gap + (i // per_row) * (tile[1] + label_h + gap)
            sheet.blit(font.render(f"{verdict} · {locale}", True, (235, 235, 235)), (x, y))
            sheet.blit(pygame.transform.smoothscale(shot(verdict, locale), tile), (x, y + label_h))
    return sheet


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
