"""The composition root: builds every adapter from typed settings and wires it to the core through narrow ports.

This is the one module of `kiosk/` that imports `hardware/` (lazily, inside functions, so commands that
need no device never load gpiozero, pyserial or pygame). `kiosk run`, `kiosk selftest`, `kiosk relay-off`
and `kiosk screenshot` ask it for their devices; the adapters it builds receive settings and ports
(submit a scan, record an alarm, read status, trigger a sync), never the App.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from . import demo
from .app import App
from .config import Config
from .display import Shot
from .errors import ConfigError, KioskError
from .gate import Gate
from .journal import JournalKeeper
from .ports import Faults, Output, ScanSource
from .status import PUBLISH_S, STATUS_FILE

if TYPE_CHECKING:
    from hardware.screen import Screen, ScreenPorts, ScreenSettings
    from hardware.selftest import Check

    from .upstream import Upstream
    from .venue.link import VenueLink

log = logging.getLogger(__name__)

SIMULATED_SERIAL_URL = "loop://"
Reader = Callable[[Faults], ScanSource]  # builds one scan source on the Faults it reports to


# -- scan sources ------------------------------------------------------------------------

def readers(config: Config, names: list[str], *, simulate: bool, demo_scans: list[str]) -> dict[str, Reader | None]:
    """A builder per configured source name (each once, in order); None for a source `--simulate` cannot stand
    in for (a keyboard scanner without hid.device). `kiosk run` and `kiosk selftest` both use these."""
    made: dict[str, Reader | None] = {}
    for name in dict.fromkeys(names):
        if name == "camera":
            made[name] = _camera_reader(config, simulate=simulate, demo_scans=demo_scans)
        elif name == "serial":
            url = None
            if simulate and not config.serial.url.startswith("loop://"):
                log.warning("--simulate: the serial scanner is %s, not %s", SIMULATED_SERIAL_URL, config.serial.url)
                url = SIMULATED_SERIAL_URL
            made[name] = _serial_reader(config, url)
        elif name == "hid":
            if simulate and not config.hid.device:
                log.warning("--simulate: no keyboard scanner is configured (hid.device); reading none")
                made[name] = None
            else:
                made[name] = _hid_reader(config)
        else:
            raise ValueError(f"unknown scan source {name!r}")
    return made


# The readers (hardware/serial_scanner.py, hid_scanner.py, camera.py): `X(XSettings.from_config(config), faults)`.
# The settings are read as each source is built, so a bad one (an empty serial.url or hid.device) fails
# `kiosk selftest`'s check of that source and `kiosk run` before any device moves.

def _serial_reader(config: Config, url: str | None) -> Reader:
    from hardware.serial_scanner import SerialScanner, SerialSettings

    return lambda faults: SerialScanner(SerialSettings.from_config(config, url=url), faults)


def _hid_reader(config: Config) -> Reader:
    from hardware.hid_scanner import HidScanner, HidSettings

    return lambda faults: HidScanner(HidSettings.from_config(config), faults)


def _camera_reader(config: Config, *, simulate: bool, demo_scans: list[str]) -> Reader:
    from hardware.camera import CameraSettings, CameraSource

    simulated = simulate and config.camera.backend != "simulated"
    if simulated:
        log.warning("--simulate: the camera is simulated (demo codes), not picamera2")

    def build(faults: Faults) -> ScanSource:
        settings = CameraSettings.from_config(config)
        # picamera2 is looked up here: a missing one is a CameraError with the install hint now, not on a thread
        return CameraSource(dataclasses.replace(settings, backend="simulated") if simulated else settings, faults,
                            demo_codes=demo_scans)

    return build


def build_sources(app: App, source: str | None) -> list[ScanSource]:
    """`--source` when given, else the config's `gate.sources` through the hardware adapters."""
    from .decoder import FrameDecoder
    from .sources import ImageFolderSource, StdinSource

    if source == "stdin":
        return [StdinSource()]
    if source and source.startswith("images:"):
        folder = source.split(":", 1)[1]
        try:
            images = ImageFolderSource(folder, FrameDecoder.from_config(app.config.camera))
        except OSError as exc:
            raise ConfigError("--source", "images", f"cannot read the folder {folder!r} ({exc.strerror}); "
                              "give a folder of images: --source images:DIR") from None
        return [images]
    names = [source] if source else list(app.config.gate.sources)
    scans = demo.SCANS + (demo.RULE_SCANS if app.policy.access.active else [])
    made = readers(app.config, names, simulate=app.simulate, demo_scans=scans)
    return [make(app.faults) for make in made.values() if make is not None]


# -- GPIO --------------------------------------------------------------------------------

def gpio_outputs(config: Config, faults: Faults, gate: Gate, *, simulate: bool) -> list[Output]:
    """The GPIO board as the gate's output, or nothing when no pin is fitted. The inputs get the gate's ports
    only: `submit` (exit button), `record_alarm` / `record_passage` (door, passage sensor)."""
    from hardware import gpio
    from hardware.factory import GpioBuilder

    settings = gpio.GpioSettings.from_config(config, simulate=simulate)
    if not settings.pins:
        log.info("no GPIO devices configured")
        return []
    factory = gpio.pin_factory(settings.pin_factory)
    try:
        board = GpioBuilder(settings, factory).board(submit=gate.submit, alarms=gate, faults=faults)
    except BaseException:
        factory.close()
        raise
    return [board]


def relay_off(config: Config) -> str | int | None:
    """`kiosk relay-off`: the relay built as `kiosk run` builds it, switched off and released. Returns its pin,
    or None when no relay is fitted."""
    from hardware import gpio
    from hardware.factory import GpioBuilder

    settings = gpio.GpioSettings.from_config(config)
    if "relay" not in settings.pins:
        return None
    factory = gpio.pin_factory(settings.pin_factory)
    try:
        relay = GpioBuilder(settings, factory).relay()
        assert relay is not None  # fitted: checked above
        relay.close()  # off first, then released
    finally:
        factory.close()
    return settings.pins["relay"].pin


def selftest(config: Config, *, simulate: bool, timeout_s: float,
             progress: Callable[[str], None] = lambda _: None) -> list["Check"]:
    """`kiosk selftest`: every configured device, built here as for `kiosk run`."""
    from hardware import gpio, selftest as checks

    made = readers(config, list(config.gate.sources), simulate=simulate, demo_scans=demo.SCANS)
    return checks.run(gpio.GpioSettings.from_config(config, simulate=simulate), made, timeout_s=timeout_s,
                      progress=progress)


# -- screen ------------------------------------------------------------------------------

def open_screen(app: App, *, headless: bool = False, required: bool | None = None) -> "Screen | None":
    """The pygame screen, or None when headless, disabled or there is no display. `required`: a missing display
    is an error (default: when screen.enabled = "on")."""
    from hardware.screen import ScreenSettings, open_screen as open_window

    settings = ScreenSettings.from_config(app.config)
    if headless or settings.enabled == "off":
        return None
    return open_window(settings, screen_ports(app, settings), required=settings.enabled == "on" if required is None
                       else required)


def screen_ports(app: App, settings: "ScreenSettings") -> "ScreenPorts":
    from hardware.screen import ScreenPorts

    gate = app.gate
    return ScreenPorts(submit=gate.submit, faults=app.faults, status=app, sync=app.sync, clock=app.clock,
                       members=app.snapshot, occupancy=lambda: gate.counts.occupancy(app.clock()),
                       recent=lambda n: app.journal.recent(n),
                       photos=_photo_cache(app) if settings.show_photo else None)


def _photo_cache(app: App) -> Any:
    """The photo cache (kiosk/photos.py), or None (logged) when there is no upstream to fetch from."""
    from .photos import PhotoCache
    from .upstream.client import read_token

    up = app.config.upstream
    if not up.url:
        log.warning("screen.show_photo is on but upstream.url is empty: no member photos")
        return None
    try:
        token = read_token(up.token_file, app.config.source) if up.token_file else ""
        return PhotoCache(app.state_dir / "photos", up.url, token=token, verify=up.ca_file or True,
                          timeout_s=float(up.timeout_s))
    except (KioskError, OSError) as exc:
        log.warning("no member photos: %s", exc)
        return None


# -- upstream and venue ------------------------------------------------------------------

def upstream(app: App) -> "Upstream":
    """The upstream link from [upstream], connected to the app's "sync now". Raises ConfigError on a missing or
    unsafe token file or a bad CA file. Not started: `kiosk sync` runs one round, `kiosk run` starts it."""
    from .journal import Journal
    from .upstream import Upstream, UpstreamPorts, UpstreamSettings

    settings = UpstreamSettings.from_config(app.config)
    j = app.config.journal
    journal = app.journal  # the gate's, opened first: a damaged file is moved aside before the reporter opens it
    report = Journal(journal.path, keep_days=j.keep_days, max_events=j.max_events, sync=j.sync)
    try:
        link = Upstream(settings, UpstreamPorts(
            snapshot=app.snapshot, journal=report, state=app.state, faults=app.faults, clock=app.clock,
            held=lambda: journal.held, synced=app.watch_staleness,
            watch_decisions=lambda output: app.gate.add_output(output), started=app.started))
    except BaseException:
        report.close()
        raise
    app.sync.connect(link.request_sync)
    return link


def venue_link(app: App) -> "VenueLink | None":
    """The running venue link, or None when no broker is configured. Raises ConfigError on bad [venue] settings."""
    if not app.config.venue.broker:
        return None  # the kiosk works alone: paho is not even imported
    from .venue.settings import VenueSettings
    from .venue.wiring import VenuePorts, start_link

    settings = VenueSettings.from_config(app.config)
    assert settings is not None  # a broker is configured
    from .venue.union import VenueCounts

    counts = app.counts  # opens the peers' store (app.venue_store) with the counts over it
    assert isinstance(counts, VenueCounts) and app.venue_store is not None  # a broker: the peers' counts and store
    gate = app.gate
    zone = app.policy.access.zone
    return start_link(settings, VenuePorts(
        journal_path=app.journal.path, store=app.venue_store, state=app.state, status=app,
        occupancy=lambda: {zone: counts.occupancy(app.clock())}, clock=app.clock,
        on_peer_events=counts.add_peer_events, submit=gate.submit, faults=app.faults,
        watch_decisions=gate.add_output))


# -- kiosk run ---------------------------------------------------------------------------

SWITCH_INTERVAL_S = 0.0005


def quick_thread_switches() -> None:
    """The GIL handed between threads every 0.5 ms, not Python's 5 ms.

    Every thread of `kiosk run` is pure Python at times (sync, heartbeat, venue link, camera loop, GPIO
    timers and blinkers, screen); with 5 ms, a scan's thread back from SQLite or zxing-cpp (both let the
    GIL go) could wait that long to get it back."""
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))


def run(app: App, *, source: str | None = None, headless: bool = False, events: bool = False,
        limit: int | None = None) -> int:
    """`kiosk run`: until SIGINT/SIGTERM, end of input (stdin/images) or `limit` decisions."""
    from .notify import TEST_ONLY_STOP_WATCHDOG, Notifier
    from .outputs import DecisionLog, EventPrinter

    notifier = Notifier(stop_file=app.state_dir / TEST_ONLY_STOP_WATCHDOG)
    quick_thread_switches()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    sources: list[ScanSource] = []
    devices: list[Output] = []
    keeper = None
    screen = None
    link = None
    venue = None
    try:
        wanted = build_sources(app, source)  # first: a bad --source is refused before any device moves
        keeper = JournalKeeper(app.journal, purge=app.purge_journal)  # checkpoints and purges off the scan path
        keeper.start()
        devices = gpio_outputs(app.config, app.faults, app.gate, simulate=app.simulate)
        for device in devices:
            app.gate.add_output(device)
        if events:
            app.gate.add_output(EventPrinter(app.config.gate.id))
        app.gate.add_output(DecisionLog())  # before the screen: the log line comes even if drawing fails
        screen = open_screen(app, headless=headless)
        if screen is not None:
            app.gate.add_output(screen)
        if app.config.upstream.url:
            link = upstream(app)
            link.start()
        venue = venue_link(app)
        sources = wanted
        finite = [s.done for s in sources if hasattr(s, "done")]
        ended = threading.Event()
        for s in sources:
            # A file on stdin or a folder can wait for the gate (nothing dropped); a camera or scanner cannot.
            s.start(app.gate.submit if getattr(s, "live", True) else app.gate.submit_waiting)
        app.watch_staleness()
        app.publish_status()
        ready = app.status_line()
        notifier.ready(ready)
        log.info("gate %s ready: %s", app.config.gate.id, ready)
        last_status = last_publish = time.monotonic()

        def tick() -> None:
            nonlocal last_status, last_publish
            notifier.watchdog()
            if finite and all(d.is_set() for d in finite):
                ended.set()
            if limit is not None and app.gate.decided >= limit:
                stop.set()
            now = time.monotonic()
            if now - last_status >= 10:
                last_status = now
                app.counts.follow(app.journal.path)  # `kiosk occupancy set N` from a shell, meanwhile
                app.watch_staleness()
                notifier.status(app.status_line())
            if app.status_changed.is_set() or now - last_publish >= PUBLISH_S:
                last_publish = now
                app.publish_status()
            if screen is not None and not screen.tick():
                stop.set()

        app.gate.run_loop(stop, tick=tick, tick_s=1 / 30, until_idle=ended if finite else None)
        return 0
    finally:
        notifier.stopping()
        for s in sources:
            s.stop()
        if link is not None:
            link.stop()
        if venue is not None:
            venue.stop()
        if keeper is not None:
            keeper.stop()
        for output in devices + ([screen] if screen is not None else []):
            try:
                output.close()
            except Exception:
                log.exception("closing %s failed", type(output).__name__)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        notifier.close()
        # No live status once stopped: `kiosk status` then says the kiosk is not running.
        with contextlib.suppress(OSError):
            (app.state_dir / STATUS_FILE).unlink()


# -- kiosk screenshot ----------------------------------------------------------------------

def screenshot(config: Config, shots: list[Shot], size: tuple[int, int], out: str, *, wall: datetime, now: float,
               groups: tuple[str, ...], columns: int = 1) -> tuple[int, int]:
    """`kiosk screenshot`: the shots drawn by the screen adapter with the config's screen settings, to a PNG."""
    from hardware.screen import ScreenSettings, screenshot as draw

    return draw(ScreenSettings.from_config(config), shots, size, out, wall=wall, now=now, groups=groups,
                columns=columns)
