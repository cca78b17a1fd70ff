"""Barcode decoding with zxing-cpp: the one place that knows its settings.

The camera path and `kiosk decode` both use `FrameDecoder`, so a code that decodes from a
file decodes the same way from the camera.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import zxingcpp

log = logging.getLogger(__name__)

DEFAULT_FORMATS = ("QRCode", "MicroQRCode", "Code128")


@dataclass(frozen=True)
class Found:
    text: str
    format: str
    valid: bool = True


class FrameDecoder:
    """Decode grayscale frames (2-D uint8 arrays, e.g. a camera's Y plane) into texts."""

    def __init__(self, formats: Sequence[str] = DEFAULT_FORMATS, *, roi: Sequence[float] = (),
                 try_downscale: bool = True, try_invert: bool = True):
        self.format_names = tuple(formats)
        self.formats = zxingcpp.barcode_formats_from_str(",".join(formats))
        self.roi = tuple(roi)
        self.try_downscale = try_downscale
        self.try_invert = try_invert

    def crop(self, frame: Any) -> Any:
        if not self.roi:
            return frame
        h, w = frame.shape[:2]
        x, y, rw, rh = self.roi
        return frame[int(y * h):int((y + rh) * h), int(x * w):int((x + rw) * w)]

    def decode(self, frame: Any) -> list[Found]:
        try:
            results = zxingcpp.read_barcodes(self.crop(frame), formats=self.formats, try_rotate=True,
                                             try_downscale=self.try_downscale, try_invert=self.try_invert)
        except (ValueError, TypeError, RuntimeError) as exc:
            log.warning("decoder rejected a frame: %s", exc)
            return []
        # .name is the config's spelling ("QRCode") in zxing-cpp 2 and 3; str() is "QR Code" since 3
        return [Found(r.text, r.format.name, r.valid) for r in results if r.valid]

    @classmethod
    def from_config(cls, camera) -> "FrameDecoder":
        return cls(camera.formats, roi=camera.roi, try_downscale=camera.try_downscale, try_invert=camera.try_invert)


def load_gray(path: str) -> Any:
    """An image file as a grayscale array (PNG, JPEG, ... via pygame-free Pillow if present, else zxing's own)."""
    import numpy as np

    try:
        from PIL import Image
    except ImportError as exc:  # Pillow is a core dependency; this is for a broken install
        raise RuntimeError("Pillow is needed to read image files") from exc
    with Image.open(path) as img:
        return np.asarray(img.convert("L"))


def render_code(text: str, fmt: str = "QRCode", scale: int = 6) -> Any:
    """A code as a grayscale array with its quiet zone (for the simulated camera, tests and benches)."""
    import numpy as np

    barcode = zxingcpp.create_barcode(text, zxingcpp.barcode_format_from_str(fmt))
    return np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=scale))
