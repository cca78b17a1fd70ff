"""The pygame touchscreen: an Output that shows each decision, plus the idle, fault and staff screens.

Runs on the main thread: `act()` only updates state (the gate loop must not wait on drawing),
`tick()` pumps events and redraws when the picture changed, at most `screen.fps` times a second.
Drawing itself is `hardware.screen_render.render`, a pure function of the state.
On Raspberry Pi OS Lite SDL draws through KMS/DRM without a desktop (see README, "Display").
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from typing import Any, Callable

from kiosk.access import GUEST_SOURCE
from kiosk.display import STAFF, Command, Display, RecentScan, Status
from kiosk.errors import KioskError, OutputError
from kiosk.gate import OCCUPANCY_SOURCE
from kiosk.i18n import Messages
from kiosk.model import Decision
from kiosk.ports import Scan

log = logging.getLogger(__name__)

REFERENCE_SIZE = (800, 480)
# SDL drivers that draw into memory only: SDL falls back to "offscreen" when it finds no display,
# and "dummy" is what tests ask for. For screen.enabled = "auto" they mean: there is no screen.
NO_DISPLAY_DRIVERS = ("offscreen", "dummy")
STATUS_EVERY_S = 10.0


def open_screen(app: Any, required: bool) -> "Screen | None":
    """A full-screen window on the local display, or None (logged) when there is none.

    With `required` (screen.enabled = "on") a missing display is an OutputError instead.
    """
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as exc:
        return _unavailable(f"pygame is not installed ({exc})", required)
    cfg = app.config.screen
    try:
        pygame.display.init()
        driver = pygame.display.get_driver()
        if not required and is_no_display(driver):
            pygame.display.quit()
            return _unavailable(f"no display (SDL chose its {driver!r} driver, which draws nowhere); set "
                                'screen.enabled = "on" to draw anyway', required)
        pygame.font.init()
        size = tuple(cfg.size) if cfg.size else _desktop_size(pygame) if cfg.fullscreen else REFERENCE_SIZE
        flags = pygame.FULLSCREEN if cfg.fullscreen else 0
        window = pygame.display.set_mode(size, flags)
        pygame.display.set_caption(f"kiosk: {app.config.gate.name}")
    except pygame.error as exc:
        pygame.display.quit()
        hint = ("no display: on Raspberry Pi OS Lite set SDL_VIDEODRIVER=kmsdrm and add the kiosk user to the "
                "video and render groups" if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
                else "the display refused the window")
        return _unavailable(f"{hint} ({exc}; SDL video driver {os.environ.get('SDL_VIDEODRIVER') or 'auto'})",
                            required)
    if cfg.fullscreen:
        pygame.mouse.set_visible(False)  # a touch kiosk; a pointer would sit in the middle of the screen
    log.info("screen %dx%d via SDL %s driver", *window.get_size(), pygame.display.get_driver())
    return Screen(app, window)


def is_no_display(driver: str) -> bool:
    """True for an SDL video driver that shows nothing to anyone."""
    return driver.lower() in NO_DISPLAY_DRIVERS


def _unavailable(why: str, required: bool) -> None:
    if required:
        raise OutputError(f"screen.enabled = \"on\" but the screen cannot open: {why}")
    log.warning("running without the screen: %s", why)
    return None


def _desktop_size(pygame: Any) -> tuple[int, int]:
    sizes = pygame.display.get_desktop_sizes()
    return tuple(sizes[0]) if sizes and sizes[0][0] > 0 else REFERENCE_SIZE


class Screen:
    """The screen as an Output. `monotonic` is injectable so tests can hold a finger down for 2 s at once."""

    def __init__(self, app: Any, window: Any, *, monotonic: Callable[[], float] = time.monotonic):
        import pygame

        from . import screen_render

        self._pygame = pygame
        self._render = screen_render
        self.app = app
        self.window = window
        self.monotonic = monotonic
        cfg = app.config.screen
        self.msg = Messages(cfg.locale)
        self.min_frame_s = 1.0 / cfg.fps
        self.display = Display(result_s=float(cfg.result_s), long_press_s=float(app.config.staff.long_press_s),
                               pin_hash=app.config.staff.pin_hash)
        self.frame: Any = None
        self.frames = 0  # drawn frames, for tests and the benchmark
        self._drawn_key: tuple | None = None
        self._drawn_at = float("-inf")
        self._status_at = float("-inf")
        self._last_view = ""
        self.photos = self._photo_cache() if cfg.show_photo else None
        self._photo_of: tuple[Decision | None, str] = (None, "")
        self._seed_recent()

    # -- Output ------------------------------------------------------------------------
    def act(self, decision: Decision) -> None:
        self.display.show(decision, self.monotonic())

    def close(self) -> None:
        if self.photos is not None:
            self.photos.close()
        self._pygame.display.quit()

    # -- main loop ---------------------------------------------------------------------
    def tick(self) -> bool:
        """Handle input and redraw if needed; False once the window was closed."""
        pg = self._pygame
        now = self.monotonic()
        for event in pg.event.get():
            if event.type in (pg.QUIT, pg.WINDOWCLOSE):
                return False
            if event.type == pg.FINGERDOWN:
                w, h = self.window.get_size()
                self._down((int(event.x * w), int(event.y * h)), now)
            elif event.type == pg.MOUSEBUTTONDOWN and event.button == 1 and not getattr(event, "touch", False):
                self._down(event.pos, now)
            elif event.type in (pg.FINGERUP, pg.MOUSEBUTTONUP):
                self.display.release(now)
            elif event.type in (pg.VIDEORESIZE, pg.WINDOWSIZECHANGED, pg.VIDEOEXPOSE, pg.WINDOWEXPOSED):
                self.window = pg.display.get_surface()
                self._drawn_key = None
        self.display.set_faults(self.app.faults.active())
        view = self.display.view(now)
        if now - self._status_at >= STATUS_EVERY_S or (view == STAFF and self._last_view != STAFF):
            self._refresh_status(now)
        self._last_view = view
        if view == STAFF:  # read between decisions: tick runs on the gate's loop
            self.display.set_inside(self._inside())
        self.display.update(now)
        scene = self._scene(now)
        key = self.display.frame_key(now) + (scene.wall.strftime("%H:%M"), self.window.get_size(), scene.photo)
        if key != self._drawn_key and now - self._drawn_at >= self.min_frame_s:
            self._drawn_key, self._drawn_at = key, now
            try:
                self.frame = self._render.render(scene, self.window.get_size())
                self.window.blit(self.frame.surface, (0, 0))
                pg.display.flip()
            except Exception as exc:  # a frame that cannot be drawn must not stop the gate: log once, show a fault
                if "screen" not in self.app.faults.active():
                    log.exception("drawing the screen failed; the gate keeps deciding")
                self.app.faults.set("screen", f"Screen cannot draw: {type(exc).__name__}")
                return True
            self.frames += 1
            self.app.faults.clear("screen")
        return True

    # -- internals ---------------------------------------------------------------------
    def _scene(self, now: float) -> Any:
        return self._render.Scene(display=self.display, msg=self.msg, gate_name=self.app.config.gate.name, now=now,
                                  wall=self.app.clock(), tz=self.app.policy.tz, selected_groups=self._selected_groups(),
                                  can_sync=self.app.sync_now is not None,
                                  diagonal_in=float(self.app.config.screen.diagonal_in), photo=self._photo(now))

    def _photo(self, now: float) -> str | None:
        """The result's member photo once the cache has it (asked for on the first frame of the result)."""
        result = self.display.result
        if self.photos is None or result is None or not result.customer_id or self.display.view(now) != "result":
            return None
        if self._photo_of[0] is not result:
            try:
                customer = self.app.snapshot.customer(result.customer_id)
            except Exception:
                log.exception("reading the member's photo reference failed")
                customer = None
            self._photo_of = (result, customer.photo if customer else "")
            self.photos.want(self._photo_of[1])
        path = self.photos.path(self._photo_of[1])
        return str(path) if path else None

    def _photo_cache(self) -> Any:
        """The photo cache (kiosk/photos.py), or None (logged) when there is no upstream to fetch from."""
        from kiosk.photos import PhotoCache
        from kiosk.upstream.client import read_token

        up = self.app.config.upstream
        if not up.url:
            log.warning("screen.show_photo is on but upstream.url is empty: no member photos")
            return None
        try:
            token = read_token(up.token_file, self.app.config.source) if up.token_file else ""
            return PhotoCache(self.app.state_dir / "photos", up.url, token=token, verify=up.ca_file or True,
                              timeout_s=float(up.timeout_s))
        except (KioskError, OSError) as exc:
            log.warning("no member photos: %s", exc)
            return None

    def _selected_groups(self) -> tuple[str, ...]:
        """The names of the groups this gate lets in, for "Not in the selected group: ..."."""
        wanted = self.app.policy.groups
        known = self.app.snapshot.groups()
        if wanted == "all":
            return tuple(g.name for g in known.values() if g.scannable)
        return tuple(known[g].name if g in known else g for g in wanted)

    def _down(self, pos: tuple[int, int], now: float) -> None:
        action = self.frame.hit(pos) if self.frame is not None else None
        if action is None:
            self.display.press(now)
            return
        self._run(self.display.tap(action, now), now)

    def _run(self, command: Command | None, now: float) -> None:
        if command is None:
            return
        if command.kind == "sync":
            if self.app.sync_now is None:
                self.display.note("staff.sync_unavailable", now)
                return
            self.app.sync_now()
            self.display.note("staff.sync_requested", now)
            self._status_at = float("-inf")
        elif command.kind == "guest":
            # queued like the exit button's press: the gate decides it between scans, and its decision shows next
            self.app.gate.submit(Scan(raw="", source=GUEST_SOURCE))
        elif command.kind == "occupancy":
            self.app.gate.submit(Scan(raw=command.reason, source=OCCUPANCY_SOURCE))
        elif command.kind == "admit":
            # journalled in English like every other reason; the screen shows it translated
            # queued like every other scan: decisions stay on the gate loop, one at a time, never re-entrant
            note = Messages("en")(f"admit_reason.{command.reason}")
            self.app.gate.submit(Scan(raw="", source="staff", note=note))
            self._status_at = float("-inf")

    def _inside(self) -> int | None:
        try:
            return self.app.gate.counts.occupancy(self.app.clock())
        except Exception:
            log.exception("reading the zone's count for the staff panel failed")
            return None

    def _refresh_status(self, now: float) -> None:
        self._status_at = now
        try:
            status = self.app.status()
        except Exception:
            log.exception("reading the kiosk's status for the screen failed")
            return
        self.display.set_status(Status.from_app_status(status, upstream=bool(self.app.config.upstream.url)))

    def _seed_recent(self) -> None:
        try:
            events = self.app.journal.recent(self.display.recent.maxlen)
        except Exception:
            log.exception("reading recent scans from the journal failed")
            return
        scans = []
        for e in events:
            customer = self.app.snapshot.customer(e["customer_id"]) if e.get("customer_id") else None
            scans.append(RecentScan(at=datetime.fromisoformat(e["at"].replace("Z", "+00:00")), name=customer.display_name if customer else "",
                                    verdict=e["verdict"], source=e["source"]))
        self.display.remember(scans)
