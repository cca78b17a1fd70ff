"""A stand-in for Picamera2 that films demo codes, for `--simulate` and the camera's tests.

It implements only the calls `hardware.camera.CameraSource` makes, and renders real QR codes into
YUV420 frames, so the real zxing-cpp decoder reads them: each code is held up for `show_s`,
then the scene is empty for `blank_s`, cycling through the codes.
"""

from __future__ import annotations

import enum
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from kiosk.decoder import render_code

BACKGROUND = 170  # a grey wall, so a code's white quiet zone stands out like paper does


class AfModeEnum(enum.IntEnum):
    """libcamera's AfModeEnum values, which the simulated camera accepts in place of libcamera's."""

    Manual = 0
    Auto = 1
    Continuous = 2


def fitted_code(text: str, size: tuple[int, int], largest_scale: int = 4) -> np.ndarray:
    """`text` as a QR code at the largest whole-pixel scale (up to `largest_scale`) that fills < 90 % of the frame."""
    modules = render_code(text, "QRCode", scale=1).shape[0]
    scale = max(1, min(largest_scale, int(min(size) * 0.9) // modules))
    code: np.ndarray = render_code(text, "QRCode", scale=scale)
    return code


def scene(code: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """A width x height grey frame with a grayscale `code` image centred in it."""
    w, h = size
    frame = np.full((h, w), BACKGROUND, dtype=np.uint8)
    if code is None:
        return frame
    code = code[:h, :w]
    ch, cw = code.shape
    top, left = (h - ch) // 2, (w - cw) // 2
    frame[top:top + ch, left:left + cw] = code
    return frame


def yuv420(gray: np.ndarray) -> np.ndarray:
    """A grayscale image as picamera2 returns a YUV420 lores buffer: Y rows, then neutral U and V."""
    h, w = gray.shape
    buffer = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
    buffer[:h] = gray
    return buffer


class SimulatedPicamera2:
    """Picamera2's capture calls over a cycle of rendered codes, paced at the configured frame rate."""

    def __init__(self, codes: Sequence[str], *, show_s: float = 1.5, blank_s: float = 1.5,
                 clock: Callable[[], float] = time.monotonic, paced: bool = True):
        self.codes = list(codes)
        self.show_s = show_s
        self.blank_s = blank_s
        self.clock = clock
        self.paced = paced
        self.camera_controls: dict[str, Any] = {"AfMode": (0, 2, 0), "FrameRate": (1.0, 120.0, 30.0)}
        self.controls: dict[str, Any] = {}
        self.config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self._frames: list[np.ndarray] = []
        self._blank: np.ndarray | None = None
        self._t0 = 0.0
        self._next_frame = 0.0
        self._stopped = threading.Event()

    def create_video_configuration(self, main: dict[str, Any] | None = None, lores: dict[str, Any] | None = None,
                                   controls: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        return {"main": dict(main or {}), "lores": dict(lores or {}), "controls": dict(controls or {})}

    def configure(self, config: dict[str, Any]) -> None:
        lores = config["lores"]
        if lores.get("format") != "YUV420":
            raise RuntimeError("lores stream must be YUV")
        self.config = config
        size = tuple(lores["size"])
        self._blank = yuv420(scene(None, size))
        self._frames = [yuv420(scene(fitted_code(text, size), size)) for text in self.codes]

    def start(self) -> None:
        if self.config is None:
            raise RuntimeError("camera not configured")
        self.started = True
        self._stopped.clear()
        self._t0 = self._next_frame = self.clock()

    def stop(self) -> None:
        self.started = False
        self._stopped.set()

    def close(self) -> None:
        self.stop()
        self.closed = True

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.controls.update(controls)

    @property
    def frame_interval(self) -> float:
        rate = (self.config or {}).get("controls", {}).get("FrameRate") or 30.0
        return 1.0 / float(rate)

    def frame_at(self, t: float) -> np.ndarray:
        """What the camera sees `t` seconds after start."""
        period = self.show_s + self.blank_s
        cycle, phase = divmod(t, period)
        if self._blank is None:
            raise RuntimeError("camera not configured")
        if not self._frames or phase >= self.show_s:
            return self._blank
        return self._frames[int(cycle) % len(self._frames)]

    def capture_array(self, name: str = "main") -> np.ndarray:
        if not self.started:
            raise RuntimeError("camera not started")
        if name != "lores":
            raise ValueError(f"the simulated camera only films the lores stream, not {name!r}")
        if self.paced:
            wait = self._next_frame - self.clock()
            if wait > 0:
                self._stopped.wait(wait)
            self._next_frame = max(self._next_frame + self.frame_interval, self.clock())
        return self.frame_at(self.clock() - self._t0)
