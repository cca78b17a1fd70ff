"""The Pi camera through picamera2: the lores YUV420 stream's Y plane goes straight into zxing-cpp.

Capture and decoding run on two threads joined by a one-frame slot: the newest frame wins
and older ones are dropped, so a slow decode never builds a backlog. The capture thread is the
shared reconnecting `hardware.reader.ReaderLoop`: a camera that fails is a fault until it is back. Frames that barely
differ from the last decoded one are not decoded again, and a code that stays in view is
submitted once (the Gate's repeat rule deals with people who really scan twice).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from kiosk.config import Config
from kiosk.decoder import FrameDecoder
from kiosk.errors import CameraError
from kiosk.ports import Faults, Scan, Submit

from .reader import ReaderLoop

log = logging.getLogger(__name__)

INSTALL_HINT = ("picamera2 is not installed. On Raspberry Pi OS run `sudo apt install python3-picamera2` and make "
                "the kiosk's venv with `python3 -m venv --system-site-packages` so it can see it; "
                "or set camera.backend = \"simulated\" / run with --simulate to use the demo camera")
SUBSAMPLE = 8  # every 8th pixel each way: 80x60 samples of a 640x480 frame, enough to see a card move
# A still scene is still decoded twice (a stream decoder looks for light-on-dark codes on every other
# frame) and then every REFRESH_S, so a code held still after a blurred first frame is still read.
STILL_DECODES = 2
REFRESH_S = 0.5


def picamera2_class() -> Any:
    """The Picamera2 class, imported only when a real camera is wanted."""
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise CameraError(INSTALL_HINT) from exc
    return Picamera2


def libcamera_af_modes() -> Any:
    from libcamera import controls

    return controls.AfModeEnum


class Debouncer:
    """Which decoded texts are new: a text is new again only after it was out of view for `gone_s`."""

    def __init__(self, gone_s: float):
        self.gone_s = gone_s
        self._last_seen: dict[str, float] = {}

    def fresh(self, texts: list[str], now: float) -> list[str]:
        new = [t for t in dict.fromkeys(texts) if now - self._last_seen.get(t, -1e18) > self.gone_s]
        for t in texts:
            self._last_seen[t] = now
        self._last_seen = {t: seen for t, seen in self._last_seen.items() if now - seen <= self.gone_s}
        return new


class ChangeDetector:
    """Mean absolute difference of a subsampled frame against the last decoded one (0-255 scale)."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self._reference: np.ndarray | None = None

    def changed(self, gray: np.ndarray) -> bool:
        small = gray[::SUBSAMPLE, ::SUBSAMPLE].astype(np.int16)
        if self._reference is not None and self._reference.shape == small.shape:
            if float(np.abs(small - self._reference).mean()) < self.threshold:
                return False
        self._reference = small
        return True


@dataclass
class CameraStats:
    captured: int = 0
    dropped: int = 0  # captured but replaced by a newer frame before the decoder got to it
    unchanged: int = 0  # skipped by the change detector
    decoded: int = 0  # handed to zxing-cpp
    decode_s: float = 0.0


@dataclass(frozen=True)
class CameraSettings:
    """The [camera] section, read once (the schema in kiosk.config has checked every value)."""

    backend: str  # "picamera2" or "simulated"
    main_size: tuple[int, int]
    lores_size: tuple[int, int]
    framerate: float
    autofocus: str  # "continuous", "auto", "manual" or "off"
    formats: tuple[str, ...]
    roi: tuple[float, ...]
    change_threshold: float
    debounce_s: float
    try_downscale: bool
    try_invert: bool
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0

    @classmethod
    def from_config(cls, config: Config) -> "CameraSettings":
        c = config.camera
        main_w, main_h = c.main_size
        lores_w, lores_h = c.lores_size
        return cls(backend=c.backend, main_size=(int(main_w), int(main_h)), lores_size=(int(lores_w), int(lores_h)),
                   framerate=float(c.framerate), autofocus=c.autofocus, formats=tuple(c.formats),
                   roi=tuple(float(v) for v in c.roi), change_threshold=float(c.change_threshold),
                   debounce_s=float(c.debounce_s), try_downscale=bool(c.try_downscale),
                   try_invert=bool(c.try_invert))


class CameraSource:
    """A ScanSource over a Picamera2-like object: picamera2 itself, the simulated camera when
    `settings.backend` is "simulated" (filming `demo_codes`), or whatever `open_camera` makes (tests).
    It is also the `Device` its ReaderLoop reads: open/read/close run on the capture thread only."""

    name = "camera"

    def __init__(self, settings: CameraSettings, faults: Faults, *, open_camera: Callable[[], Any] | None = None,
                 af_modes: Callable[[], Any] | None = None, decoder: FrameDecoder | None = None,
                 demo_codes: Sequence[str] = ()):
        if open_camera is None and settings.backend == "simulated":
            from .camera_sim import AfModeEnum, SimulatedPicamera2

            codes = list(demo_codes)
            open_camera, af_modes = (lambda: SimulatedPicamera2(codes)), (af_modes or (lambda: AfModeEnum))
        elif open_camera is None:
            open_camera = picamera2_class()  # raises CameraError with the install hint now, not on a thread later
        self.settings = settings
        self.decoder = decoder if decoder is not None else FrameDecoder.from_config(settings, stream=True)
        self.open_camera = open_camera
        self.af_modes = af_modes or libcamera_af_modes
        self.lores_w, self.lores_h = settings.lores_size
        self.debouncer = Debouncer(settings.debounce_s)
        self.changes = ChangeDetector(settings.change_threshold)
        self.stats = CameraStats()
        self._last_texts: list[str] = []
        self._still_decodes = 0
        self._last_decode = float("-inf")
        self._slot: tuple[np.ndarray, float] | None = None
        self._slot_ready = threading.Condition()
        self._stop = threading.Event()  # ends the decode thread; the capture thread is the loop's
        self._decode_thread: threading.Thread | None = None
        self._submit: Submit | None = None
        self._camera: Any = None
        self._loop = ReaderLoop(self, faults, fault="camera", what="camera", thread_name="camera-capture",
                                logger=log, reconnect_min_s=settings.reconnect_min_s,
                                reconnect_max_s=settings.reconnect_max_s)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, submit: Submit) -> None:
        self._submit = submit
        self._stop.clear()
        self._decode_thread = threading.Thread(target=self._decode_loop, name="camera-decode", daemon=True)
        self._decode_thread.start()
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        self._stop.set()
        with self._slot_ready:
            self._slot_ready.notify_all()
        if self._decode_thread is not None:
            self._decode_thread.join(timeout=2)
            self._decode_thread = None

    # -- the Device the loop reads -------------------------------------------------------------
    def open(self) -> None:
        s = self.settings
        with _camera_errors():
            cam = self.open_camera()
            try:
                config = cam.create_video_configuration(
                    main={"size": s.main_size},
                    lores={"size": (self.lores_w, self.lores_h), "format": "YUV420"},
                    controls={"FrameRate": s.framerate})
                cam.configure(config)
                cam.start()
                self._set_focus(cam)
            except BaseException:
                _stop_and_close(cam)
                raise
        self._camera = cam

    def read(self) -> None:
        with _camera_errors():
            frame = self._camera.capture_array("lores")
        self.offer(frame, time.monotonic())

    def close(self) -> None:
        cam, self._camera = self._camera, None
        if cam is not None:
            _stop_and_close(cam)

    def _set_focus(self, cam: Any) -> None:
        """Continuous autofocus on cameras that have it (Camera Module 3); fixed-focus ones have no AfMode."""
        mode = self.settings.autofocus
        if mode == "off" or "AfMode" not in getattr(cam, "camera_controls", {}):
            return
        modes = self.af_modes()
        value = {"continuous": modes.Continuous, "auto": modes.Auto, "manual": modes.Manual}[mode]
        cam.set_controls({"AfMode": value})

    # -- frames ----------------------------------------------------------------------------
    def offer(self, frame: np.ndarray, captured_at: float) -> None:
        """Put a frame in the slot, replacing one the decoder has not taken yet."""
        with self._slot_ready:
            if self._slot is not None:
                self.stats.dropped += 1
            self._slot = (frame, captured_at)
            self.stats.captured += 1
            self._slot_ready.notify()

    def _decode_loop(self) -> None:
        while not self._stop.is_set():
            with self._slot_ready:
                while self._slot is None and not self._stop.is_set():
                    self._slot_ready.wait(0.5)
                slot, self._slot = self._slot, None
            if slot is not None and not self._stop.is_set():
                self.process(*slot)

    def luma(self, frame: np.ndarray) -> np.ndarray:
        """The Y plane of a YUV420 lores buffer: its first `height` rows (rows may be padded to a stride)."""
        return frame[:self.lores_h, :self.lores_w]

    def process(self, frame: np.ndarray, captured_at: float) -> list[str]:
        """Decode one frame (unless unchanged) and submit codes new to the view. Returns the texts submitted."""
        gray = self.luma(frame)
        now = time.monotonic()
        if self.changes.changed(gray):
            self._still_decodes = 0
        if self._still_decodes < STILL_DECODES or now - self._last_decode >= REFRESH_S:
            started = time.perf_counter()
            self._last_texts = [found.text for found in self.decoder.decode(gray)]
            self.stats.decode_s += time.perf_counter() - started
            self.stats.decoded += 1
            self._still_decodes += 1
            self._last_decode = now
        else:
            self.stats.unchanged += 1
        fresh = self.debouncer.fresh(self._last_texts, now)
        for text in fresh:
            if self._submit is not None:
                self._submit(Scan(raw=text, source=self.name, received=captured_at))
        return fresh


@contextmanager
def _camera_errors() -> Iterator[None]:
    """libcamera reports trouble as RuntimeError, OSError, IndexError...: all become a CameraError, whose
    text is the fault staff see (a CameraError raised inside keeps its own text: it says what to do)."""
    try:
        yield
    except CameraError:
        raise
    except Exception as exc:
        raise CameraError(f"Camera not working: {exc}") from exc


def _stop_and_close(cam: Any) -> None:
    for call in (cam.stop, cam.close):
        try:
            call()
        except Exception as exc:  # a camera that went away may fail to stop; it is closed either way
            log.debug("camera %s failed: %s", call.__name__, exc)

