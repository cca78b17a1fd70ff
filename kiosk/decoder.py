"""Barcode decoding with zxing-cpp: the one place that knows its settings.

The camera path and `kiosk decode` both use `FrameDecoder`, so a code that decodes from a
file decodes the same way from the camera.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np
import zxingcpp

log = logging.getLogger(__name__)

DEFAULT_FORMATS = ("QRCode", "MicroQRCode", "Code128")
# A frame whose subsampled grey levels span less than this holds no code (a code is dark on light).
# 20, not 40: a dim, even scene with a faint code spans 20 to 40 levels (measured on our synthetic
# low-contrast photos), and a frame this flat still costs nothing to skip.
MIN_CONTRAST = 20
# Linear codes are read on every LINEAR_STEP-th row and column first (see FrameDecoder._read): a sharp
# bar code at least 2 * LINEAR_STEP pixels tall (or wide, when vertical) is read on two lines or more.
LINEAR_STEP = 8
# Where that cheap pass finds nothing, rows (and columns) BAR_STEP pixels apart are checked for bars:
# windows of BAR_WINDOW pixels whose edges the next row repeats. A blurred, short or skewed label
# that the sampled lines missed is then read at full resolution in the box around those windows.
BAR_STEP = 16
BAR_WINDOW = 32
BAR_EDGE = 6  # mean grey-level step between neighbouring pixels in a window of bars (noise alone: ~1x the
# step between rows, so the second test, edges >= 3x the row-to-row change, rejects it)
BAR_STEPS = 6  # steps of at least BAR_STEP_MIN grey levels in a window: bars, not one edge (a door frame)
BAR_STEP_MIN = 4


class DecoderSettings(Protocol):
    """What `FrameDecoder.from_config` reads: the config's [camera] section or typed camera settings."""

    @property
    def formats(self) -> Sequence[str]: ...
    @property
    def roi(self) -> Sequence[float]: ...
    @property
    def try_downscale(self) -> bool: ...
    @property
    def try_invert(self) -> bool: ...


def _flat(image: Any, min_contrast: int) -> bool:
    sample = image[::8, ::8]
    return int(sample.max()) - int(sample.min()) < min_contrast


def _bar_windows(lines: Any, next_lines: Any) -> Any:
    """(line, window) flags: many grey-level steps along the line that the neighbouring line repeats."""
    steps = np.abs(np.diff(lines, axis=1))
    n, width = len(lines), steps.shape[1] // BAR_WINDOW * BAR_WINDOW
    steps = steps[:, :width].reshape(n, -1, BAR_WINDOW)
    edges = steps.sum(axis=2)
    many = (steps >= BAR_STEP_MIN).sum(axis=2) >= BAR_STEPS
    change = np.abs(lines - next_lines)[:, :width].reshape(n, -1, BAR_WINDOW).sum(axis=2)
    return many & (edges >= BAR_EDGE * BAR_WINDOW) & (edges >= 3 * change)


def _bar_box(image: Any) -> tuple[slice, slice] | None:
    """The band of rows (or columns) around every place that looks like bars, or None.

    A band spans the whole width (or height): a window of a code's wide bars or its quiet zone may fail
    the test, and a code cut short does not read.
    """
    h, w = image.shape
    rows = image[0:h - 1:BAR_STEP].astype(np.int16)
    across = np.nonzero(_bar_windows(rows, image[1::BAR_STEP][:len(rows)].astype(np.int16)).any(axis=1))[0]
    cols = image[:, 0:w - 1:BAR_STEP].T.astype(np.int16)
    down = np.nonzero(_bar_windows(cols, image[:, 1::BAR_STEP].T[:len(cols)].astype(np.int16)).any(axis=1))[0]
    if not across.size and not down.size:
        return None
    top, bottom, left, right = 0, h, 0, w
    if not down.size:  # horizontal bars only: the rows around them
        top, bottom = max(0, (across.min() - 1) * BAR_STEP), min(h, (across.max() + 2) * BAR_STEP)
    elif not across.size:  # vertical bars only: the columns around them
        left, right = max(0, (down.min() - 1) * BAR_STEP), min(w, (down.max() + 2) * BAR_STEP)
    return slice(top, bottom), slice(left, right)


@dataclass(frozen=True)
class Found:
    text: str
    format: str
    valid: bool = True


class FrameDecoder:
    """Decode grayscale frames (2-D uint8 arrays, e.g. a camera's Y plane) into texts."""

    def __init__(self, formats: Sequence[str] = DEFAULT_FORMATS, *, roi: Sequence[float] = (),
                 try_downscale: bool = True, try_invert: bool = True, min_contrast: int = MIN_CONTRAST,
                 linear_step: int = LINEAR_STEP, search_bars: bool = True, stream: bool = False):
        self.formats = zxingcpp.barcode_formats_from_str(",".join(formats))
        linear = {f.name for f in zxingcpp.barcode_formats_list(zxingcpp.BarcodeFormats(zxingcpp.AllLinear))}
        matrix_names = [f for f in formats if f not in linear]
        linear_names = [f for f in formats if f in linear]
        self.matrix = zxingcpp.barcode_formats_from_str(",".join(matrix_names)) if matrix_names else None
        self.linear = zxingcpp.barcode_formats_from_str(",".join(linear_names)) if linear_names else None
        self.roi = tuple(roi)
        self.try_downscale = try_downscale
        self.try_invert = try_invert
        self.min_contrast = min_contrast
        self.linear_step = linear_step
        self.search_bars = search_bars  # False: sampled lines only, as before issue 15 (for the bench's comparison)
        # On a camera stream, light-on-dark codes are looked for on every other frame instead of on every
        # frame: half the cost per frame, and at 15 fps an inverted code is still found within 0.13 s.
        self.stream = stream
        self._frames = 0
        self._found_last = False  # the previous stream frame (the other polarity) held a code

    def crop(self, frame: Any) -> Any:
        if not self.roi:
            return frame
        h, w = frame.shape[:2]
        x, y, rw, rh = self.roi
        return frame[int(y * h):int((y + rh) * h), int(x * w):int((x + rw) * w)]

    def decode(self, frame: Any) -> list[Found]:
        """The valid codes in one frame. Never raises for a bad frame: it logs and finds nothing."""
        try:
            image = self.crop(frame)
            if image.ndim == 2 and self.min_contrast and _flat(image, self.min_contrast):
                return []  # no dark modules on a light ground anywhere: no code can be here
            invert = search_invert = self.try_invert
            search = True
            if self.stream and invert:
                self._frames += 1
                invert = False
                if self._frames % 2:
                    image = np.invert(image)
                # The search for missed labels runs on the upright frames only, reading its band both ways
                # (half its cost per frame; a label is found within two frames), and not after a frame that
                # held a code (read the other way, it is still in view: the search would find nothing).
                search = not self._frames % 2 and not self._found_last
            results = self._read(image, invert, search=search, search_invert=search_invert)
            self._found_last = any(r.valid for r in results)
        except (ValueError, TypeError, RuntimeError, AttributeError) as exc:
            log.warning("decoder rejected a frame: %s", exc)
            return []
        found: dict[str, Found] = {}
        for r in results:
            if r.valid:
                # .name is the config's spelling ("QRCode") in zxing-cpp 2 and 3; str() is "QR Code" since 3
                found.setdefault(r.text, Found(r.text, r.format.name, r.valid))
        return list(found.values())

    def _read(self, image: Any, invert: bool, search: bool = True, search_invert: bool = False) -> list[Any]:
        if image.ndim != 2 or self.linear_step <= 1 or self.linear is None:
            return list(zxingcpp.read_barcodes(image, formats=self.formats, try_rotate=True,
                                               try_downscale=self.try_downscale, try_invert=invert))
        results: list[Any] = []
        if self.matrix is not None:
            results += zxingcpp.read_barcodes(image, formats=self.matrix, try_rotate=True,
                                              try_downscale=self.try_downscale, try_invert=invert)
        # Linear codes are read along scan lines: every line of a bar code holds the whole code, so reading
        # every `linear_step`-th row (horizontal codes) and column (vertical codes) at full resolution along
        # the line finds the same codes for a fraction of the cost of reading every row and column.
        step = self.linear_step
        rows = np.ascontiguousarray(image[::step, :])
        cols = np.ascontiguousarray(image[:, ::step].T)
        for view in (rows, cols):
            results += zxingcpp.read_barcodes(view, formats=self.linear, try_rotate=False, try_downscale=False,
                                              try_invert=invert)
        if search and self.search_bars and not any(r.valid for r in results):
            results += self._search_bars(image, self.linear, search_invert)
        return results

    def _search_bars(self, image: Any, linear: zxingcpp.BarcodeFormats, invert: bool) -> list[Any]:
        """Read a label the sampled lines missed (blurred, under 2 * step tall, skewed) in full where the
        frame shows bars. Only frames with bars and no code pay for this (zxing-cpp's photos: code128-2
        lost 20 of 56 readings to the sampled lines alone)."""
        box = _bar_box(image)
        if box is None:
            return []
        band = image[box]
        rotate = band.shape == image.shape  # bars both ways: every direction; else along the band only
        if box[0] == slice(0, image.shape[0]) and not rotate:
            band = band.T  # a band of columns: its bars run across the transposed rows
        return list(zxingcpp.read_barcodes(np.ascontiguousarray(band), formats=linear, try_rotate=rotate,
                                           try_downscale=self.try_downscale, try_invert=invert))

    @classmethod
    def from_config(cls, camera: DecoderSettings, *, stream: bool = False) -> "FrameDecoder":
        """The camera's settings; `stream=True` for the camera loop, False for single images (`kiosk decode`)."""
        return cls(camera.formats, roi=camera.roi, try_downscale=camera.try_downscale, try_invert=camera.try_invert,
                   stream=stream)


def load_gray(path: str) -> Any:
    """An image file (PNG, JPEG, ... anything Pillow reads) as a grayscale array."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("L"))


def render_code(text: str, fmt: str = "QRCode", scale: int = 6) -> Any:
    """A code as a grayscale array with its quiet zone (for the simulated camera, tests and benches)."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.barcode_format_from_str(fmt))
    return np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=scale))
