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
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Callable, Protocol

from kiosk.access import GUEST_SOURCE
from kiosk.display import STAFF, Command, Display, RecentScan, Shot, Status
from kiosk.errors import OutputError
from kiosk.gate import OCCUPANCY_SOURCE
from kiosk.i18n import Messages
from kiosk.model import Customer, Decision, Group
from kiosk.ports import Clock, Faults, Scan, StatusReader, Submit, SyncTrigger
from kiosk.rules import Policy

if TYPE_CHECKING:
    from kiosk.photos import PhotoCache

log = logging.getLogger(__name__)

REFERENCE_SIZE = (800, 480)
# SDL drivers that draw into memory only: SDL falls back to "offscreen" when it finds no display,
# and "dummy" is what tests ask for. For screen.enabled = "auto" they mean: there is no screen.
NO_DISPLAY_DRIVERS = ("offscreen", "dummy")
STATUS_EVERY_S = 10.0


@dataclass(frozen=True)
class ScreenSettings:
    """What the screen needs of the config ([screen], [staff], the gate's name, groups and time zone), read once."""

    enabled: str = "auto"  # "auto", "on" (a missing display is an error) or "off"
    locale: str = "en"
    result_s: float = 3.0
    fullscreen: bool = True
    size: tuple[int, int] | None = None  # None: the display's own size (fullscreen) or REFERENCE_SIZE
    fps: int = 30
    diagonal_in: float = 7.0
    show_photo: bool = False
    gate_name: str = ""
    long_press_s: float = 2.0
    pin_hash: str = ""
    groups: str | tuple[str, ...] = "all"  # the groups this gate lets in ("all": every scannable group)
    tz: tzinfo | None = None  # the gate's time zone for the clock on screen (None: the system's)
    upstream: bool = False  # an upstream is configured: the staff panel shows online or offline

    @classmethod
    def from_config(cls, config: Any) -> "ScreenSettings":
        s, gate = config.screen, Policy.from_config(config.gate)
        return cls(enabled=s.enabled, locale=s.locale, result_s=float(s.result_s), fullscreen=bool(s.fullscreen),
                   size=(int(s.size[0]), int(s.size[1])) if s.size else None, fps=int(s.fps),
                   diagonal_in=float(s.diagonal_in), show_photo=bool(s.show_photo), gate_name=config.gate.name,
                   long_press_s=float(config.staff.long_press_s), pin_hash=config.staff.pin_hash, groups=gate.groups,
                   tz=gate.tz, upstream=bool(config.upstream.url))


class Members(Protocol):
    """The snapshot as the screen reads it: a member's name and photo, the groups' names."""

    def customer(self, customer_id: str) -> Customer | None: ...

    def groups(self) -> dict[str, Group]: ...


@dataclass(frozen=True)
class ScreenPorts:
    """What the screen may touch of the running kiosk: no decision is made here, every tap is submitted."""

    submit: Submit  # staff admit, +1 guest, occupancy corrections: queued like every scan
    faults: Faults
    status: StatusReader
    sync: SyncTrigger
    clock: Clock
    members: Members
    occupancy: Callable[[], int]  # the zone's count now (read between decisions, on the gate's loop)
    recent: Callable[[int], list[dict[str, Any]]]  # the journal's newest events, to seed the recent list
    photos: "PhotoCache | None" = None  # member photos, when screen.show_photo and an upstream are configured


def open_screen(settings: ScreenSettings, ports: ScreenPorts, *, required: bool) -> "Screen | None":
    """A full-screen window on the local display, or None (logged) when there is none.

    With `required` (screen.enabled = "on") a missing display is an OutputError instead.
    """
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as exc:
        return _unavailable(f"pygame is not installed ({exc})", required)
    try:
        pygame.display.init()
        driver = pygame.display.get_driver()
        if not required and is_no_display(driver):
            pygame.display.quit()
            return _unavailable(f"no display (SDL chose its {driver!r} driver, which draws nowhere); set "
                                'screen.enabled = "on" to draw anyway', required)
        pygame.font.init()
        size = settings.size or (_desktop_size(pygame) if settings.fullscreen else REFERENCE_SIZE)
        flags = pygame.FULLSCREEN if settings.fullscreen else 0
        window = pygame.display.set_mode(size, flags)
        pygame.display.set_caption(f"kiosk: {settings.gate_name}")
    except pygame.error as exc:
        pygame.display.quit()
        hint = ("no display: on Raspberry Pi OS Lite set SDL_VIDEODRIVER=kmsdrm and add the kiosk user to the "
                "video and render groups" if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
                else "the display refused the window")
        return _unavailable(f"{hint} ({exc}; SDL video driver {os.environ.get('SDL_VIDEODRIVER') or 'auto'})",
                            required)
    if settings.fullscreen:
        pygame.mouse.set_visible(False)  # a touch kiosk; a pointer would sit in the middle of the screen
    log.info("screen %dx%d via SDL %s driver", *window.get_size(), pygame.display.get_driver())
    return Screen(settings, ports, window)


def is_no_display(driver: str) -> bool:
    """True for an SDL video driver that shows nothing to anyone."""
    return driver.lower() in NO_DISPLAY_DRIVERS


def _unavailable(why: str, required: bool) -> "Screen | None":
    """No screen: an OutputError when one is required, else None (logged)."""
    if required:
        raise OutputError(f"screen.enabled = \"on\" but the screen cannot open: {why}")
    log.warning("running without the screen: %s", why)
    return None


def _desktop_size(pygame: Any) -> tuple[int, int]:
    sizes = pygame.display.get_desktop_sizes()
    return tuple(sizes[0]) if sizes and sizes[0][0] > 0 else REFERENCE_SIZE


class Screen:
    """The screen as an Output. `monotonic` is injectable so tests can hold a finger down for 2 s at once."""

    def __init__(self, settings: ScreenSettings, ports: ScreenPorts, window: Any, *,
                 monotonic: Callable[[], float] = time.monotonic):
        import pygame

        from . import screen_render

        self._pygame = pygame
        self._render = screen_render
        self.settings = settings
        self.ports = ports
        self.window = window
        self.monotonic = monotonic
        self.msg = Messages(settings.locale)
        self.min_frame_s = 1.0 / settings.fps
        self.display = Display(result_s=settings.result_s, long_press_s=settings.long_press_s,
                               pin_hash=settings.pin_hash)
        self.frame: Any = None
        self.frames = 0  # drawn frames, for tests and the benchmark
        self._drawn_key: tuple | None = None
        self._drawn_at = float("-inf")
        self._status_at = float("-inf")
        self._last_view = ""
        self.photos = ports.photos
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
        self.display.set_faults(self.ports.faults.active())
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
                if "screen" not in self.ports.faults.active():
                    log.exception("drawing the screen failed; the gate keeps deciding")
                self.ports.faults.set("screen", f"Screen cannot draw: {type(exc).__name__}")
                return True
            self.frames += 1
            self.ports.faults.clear("screen")
        return True

    # -- internals ---------------------------------------------------------------------
    def _scene(self, now: float) -> Any:
        return self._render.Scene(display=self.display, msg=self.msg, gate_name=self.settings.gate_name, now=now,
                                  wall=self.ports.clock(), tz=self.settings.tz, selected_groups=self._selected_groups(),
                                  can_sync=self.ports.sync.available, diagonal_in=self.settings.diagonal_in,
                                  photo=self._photo(now))

    def _photo(self, now: float) -> str | None:
        """The result's member photo once the cache has it (asked for on the first frame of the result)."""
        result = self.display.result
        if self.photos is None or result is None or not result.customer_id or self.display.view(now) != "result":
            return None
        if self._photo_of[0] is not result:
            try:
                customer = self.ports.members.customer(result.customer_id)
            except Exception:
                log.exception("reading the member's photo reference failed")
                customer = None
            self._photo_of = (result, customer.photo if customer else "")
            self.photos.want(self._photo_of[1])
        path = self.photos.path(self._photo_of[1])
        return str(path) if path else None

    def _selected_groups(self) -> tuple[str, ...]:
        """The names of the groups this gate lets in, for "Not in the selected group: ..."."""
        wanted = self.settings.groups
        known = self.ports.members.groups()
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
            if not self.ports.sync.available:
                self.display.note("staff.sync_unavailable", now)
                return
            self.ports.sync.request()
            self.display.note("staff.sync_requested", now)
            self._status_at = float("-inf")
        elif command.kind == "guest":
            # queued like the exit button's press: the gate decides it between scans, and its decision shows next
            self.ports.submit(Scan(raw="", source=GUEST_SOURCE))
        elif command.kind == "occupancy":
            self.ports.submit(Scan(raw=command.reason, source=OCCUPANCY_SOURCE))
        elif command.kind == "admit":
            # journalled in English like every other reason; the screen shows it translated
            # queued like every other scan: decisions stay on the gate loop, one at a time, never re-entrant
            note = Messages("en")(f"admit_reason.{command.reason}")
            self.ports.submit(Scan(raw="", source="staff", note=note))
            self._status_at = float("-inf")

    def _inside(self) -> int | None:
        try:
            return self.ports.occupancy()
        except Exception:
            log.exception("reading the zone's count for the staff panel failed")
            return None

    def _refresh_status(self, now: float) -> None:
        self._status_at = now
        try:
            status = self.ports.status.live_status()
        except Exception:
            log.exception("reading the kiosk's status for the screen failed")
            return
        self.display.set_status(Status.from_status(status, upstream=self.settings.upstream))

    def _seed_recent(self) -> None:
        try:
            events = self.ports.recent(self.display.recent.maxlen or 0)
        except Exception:
            log.exception("reading recent scans from the journal failed")
            return
        scans = []
        for e in events:
            customer = self.ports.members.customer(e["customer_id"]) if e.get("customer_id") else None
            scans.append(RecentScan(at=datetime.fromisoformat(e["at"].replace("Z", "+00:00")),
                                    name=customer.display_name if customer else "",
                                    verdict=e["verdict"], source=e["source"]))
        self.display.remember(scans)


# -- kiosk screenshot ----------------------------------------------------------------------

def screenshot(settings: ScreenSettings, shots: list[Shot], size: tuple[int, int], out: str, *, wall: datetime,
               now: float, groups: tuple[str, ...], columns: int = 1) -> tuple[int, int]:
    """Draw one shot at `size`, or several at half size, labelled, `columns` a row (a contact sheet), to a PNG.
    Returns the image's size; OutputError when the file cannot be written."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    from . import screen_render

    def draw(shot: Shot) -> Any:
        scene = screen_render.Scene(display=shot.display, msg=Messages(shot.locale), gate_name=settings.gate_name,
                                    now=now, wall=wall, selected_groups=groups, can_sync=True,
                                    diagonal_in=settings.diagonal_in, photo=shot.photo)
        return screen_render.render(scene, size).surface

    if len(shots) == 1:
        image = draw(shots[0])
    else:
        tile = (size[0] // 2, size[1] // 2)
        label_h, gap = max(18, tile[1] // 10), 6
        rows = (len(shots) + columns - 1) // columns
        image = pygame.Surface((columns * (tile[0] + gap) + gap, rows * (tile[1] + label_h + gap) + gap))
        image.fill((40, 40, 40))
        font = screen_render.fonts().get(int(label_h * 0.7), True)
        for k, shot in enumerate(shots):
            x, y = gap + (k % columns) * (tile[0] + gap), gap + (k // columns) * (tile[1] + label_h + gap)
            image.blit(font.render(shot.label, True, (235, 235, 235)), (x, y))
            image.blit(pygame.transform.smoothscale(draw(shot), tile), (x, y + label_h))
    try:
        pygame.image.save(image, out)
    except (pygame.error, OSError) as exc:
        raise OutputError(f"cannot write {out} ({exc})") from None
    return image.get_width(), image.get_height()
