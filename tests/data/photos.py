"""Photographed codes for the detection test and bench: zxing-cpp's real samples and our synthetic ones.

`zxing_samples()` reads the real photos committed under tests/data/zxing-samples (see its NOTICE).
`synthetic_photos()` renders SYNTHETIC camera-like photos of the kiosk's own codes with Pillow and
numpy (perspective, blur, glare, low contrast, dark mode, phone-screen moire, short or skewed labels,
codes held close). They are not photographs: they model what a camera sees, from a fixed seed, so
every run renders the same images.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from kiosk.decoder import render_code

SAMPLES = Path(__file__).resolve().parent / "zxing-samples"
IMAGE_SUFFIXES = (".png", ".jpg", ".webp")


class Photo(NamedTuple):
    category: str  # zxing-cpp's sample folder (e.g. "code128-2") or "synthetic/<kind>"
    name: str
    format: str  # the kiosk's spelling: QRCode, MicroQRCode, Code128
    text: str  # what the code holds
    image: np.ndarray  # grayscale, uint8


FOLDER_FORMATS = {"qrcode": "QRCode", "microqrcode": "MicroQRCode", "code128": "Code128"}


def zxing_samples(rotations: tuple[int, ...] = (0, 90, 180, 270)) -> Iterator[Photo]:
    """Each committed zxing-cpp sample at each rotation, as zxing-cpp's own blackbox tests read them."""
    for folder in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        fmt = FOLDER_FORMATS[folder.name.rsplit("-", 1)[0]]
        for path in sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES):
            # bytes, then decoded: the expected texts hold CR LF pairs that universal newlines would fold
            text = path.with_suffix(".txt").read_bytes().decode("utf-8")
            with Image.open(path) as img:
                gray = np.asarray(img.convert("L"))
            for degrees in rotations:
                yield Photo(folder.name, f"{path.name}@{degrees}", fmt,
                            text, np.ascontiguousarray(np.rot90(gray, degrees // 90)))


# -- synthetic photos --------------------------------------------------------------------------------

CARD = "0b6f3f0e-6a4e-4c59-9d8e-3f6b1f2d9a10"
TEXTS = {
    "QRCode": [f"https://members.example.org/card/{CARD}", CARD, "I-1001", "KIOSK-PASS:I-KS22-363P:members"],
    "MicroQRCode": ["I-1001", "O-2001", "I-77", "G-4242"],
    "Code128": ["I-1001", "GIFT-2026-0042", "O-2001", "CARD-000123456"],
}
SIZE = (640, 480)


def _room(rng: np.random.Generator, dark: bool = False) -> Image.Image:
    """A camera frame of a room: a soft gradient with a shadow edge."""
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    base = (30 if dark else 110) + 50 * (xx / w) + 25 * np.sin(yy / h * rng.uniform(2, 4))
    base = np.where(xx > rng.uniform(0.6, 0.9) * w, base * 0.8, base)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def _code(fmt: str, text: str, scale: int, dark: int = 25, light: int = 225) -> Image.Image:
    code = render_code(text, fmt, scale)
    return Image.fromarray(np.where(code > 127, light, dark).astype(np.uint8))


def _place(room: Image.Image, code: Image.Image, rng: np.random.Generator, *, angle: float = 0.0,
           tilt: float = 0.0) -> Image.Image:
    """Paste `code` turned by `angle` degrees, with a perspective `tilt` (0: flat to the lens, 0.3: strong)."""
    w, h = code.size
    # perspective: one edge of the code further from the lens than the other
    squeeze = tilt * h / 2
    coeffs = _perspective_coeffs([(0, squeeze), (w, 0), (w, h), (0, h - squeeze)], [(0, 0), (w, 0), (w, h), (0, h)])
    code = code.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=255)
    mask = Image.new("L", (w, h), 255).transform((w, h), Image.Transform.PERSPECTIVE, coeffs,
                                                  Image.Resampling.BICUBIC, fillcolor=0)
    code = code.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    mask = mask.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    out = room.copy()
    x = int(rng.uniform(0.1, 0.9) * max(1, SIZE[0] - code.size[0]))
    y = int(rng.uniform(0.1, 0.9) * max(1, SIZE[1] - code.size[1]))
    out.paste(code, (x, y), mask)
    return out


def _perspective_coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    """PIL's 8 perspective coefficients mapping output points `dst` to input points `src`."""
    rows = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return list(np.linalg.solve(np.array(rows, float), np.array([c for p in src for c in p], float)))


def _sensor(img: Image.Image, rng: np.random.Generator, *, blur: float = 0.6, noise: float = 4.0,
            quality: int = 80) -> np.ndarray:
    """Lens blur, sensor noise and JPEG compression, as a phone or a Pi camera delivers a frame."""
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(blur)), float)
    arr = np.clip(arr + rng.normal(0, noise, arr.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as jpeg:
        return np.asarray(jpeg.convert("L"))


def _glare(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A bright reflection (a ceiling lamp on a glossy card or screen) over part of the frame."""
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    r = rng.uniform(40, 90)
    spot = np.exp(-(((xx - cx) / r) ** 2 + ((yy - cy) / (r * 0.6)) ** 2)) * rng.uniform(90, 140)
    return Image.fromarray(np.clip(np.asarray(img, float) + spot, 0, 255).astype(np.uint8))


def _moire(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A phone screen filmed: the pixel grid beats with the sensor's into fringes."""
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    f, a = rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6)
    fringes = 1 + 0.12 * np.sin(f * (xx * np.cos(a) + yy * np.sin(a))) + 0.06 * np.sin(2.9 * xx) * np.sin(2.9 * yy)
    return Image.fromarray(np.clip(np.asarray(img, float) * fringes, 0, 255).astype(np.uint8))


def _phone(code: Image.Image, dark_mode: bool) -> Image.Image:
    """The code on a phone screen: a bezel around a light (or, in dark mode, dark) screen."""
    margin = 24
    ground = 30 if dark_mode else 235
    screen = Image.new("L", (code.size[0] + 2 * margin, code.size[1] + 4 * margin), ground)
    screen.paste(code, (margin, 2 * margin))
    phone = Image.new("L", (screen.size[0] + 16, screen.size[1] + 16), 10)
    phone.paste(screen, (8, 8))
    ImageDraw.Draw(phone).rectangle((margin, 12, screen.size[0] - margin, 20), fill=ground + (40 if dark_mode else -40))
    return phone


def _one(kind: str, i: int) -> Photo:
    rng = np.random.default_rng(1000 * hash_kind(kind) + i)
    formats = KIND_FORMATS.get(kind, ("QRCode", "Code128", "MicroQRCode"))
    fmt = formats[i % len(formats)]
    text = TEXTS[fmt][i % len(TEXTS[fmt])]
    scale = {"QRCode": 4, "MicroQRCode": 6, "Code128": 2}[fmt]
    room = _room(rng, dark=kind == "dark-mode")
    blur, noise = 0.6, 4.0
    if kind == "perspective":
        img = _place(room, _code(fmt, text, scale + 1), rng, angle=rng.uniform(-35, 35), tilt=rng.uniform(0.15, 0.35))
    elif kind == "blur":
        img = _place(room, _code(fmt, text, scale + 1), rng, angle=rng.uniform(-10, 10))
        blur = rng.uniform(1.2, 1.8)
    elif kind == "glare":
        img = _glare(_place(room, _code(fmt, text, scale + 1), rng, angle=rng.uniform(-15, 15)), rng)
    elif kind == "low-contrast":
        lo = int(rng.uniform(95, 115))
        if i % 2:  # a dim, even scene: the whole frame spans few grey levels
            room = Image.new("L", SIZE, lo + 8)
        img = _place(room, _code(fmt, text, scale + 1, dark=lo, light=lo + int(rng.uniform(18, 30))), rng,
                     angle=rng.uniform(-10, 10))
        noise = 2.0
    elif kind == "dark-mode":
        img = _place(room, _phone(_code(fmt, text, scale, dark=235, light=30), True), rng, angle=rng.uniform(-20, 20),
                     tilt=rng.uniform(0, 0.2))
    elif kind == "moire":
        img = _moire(_place(room, _phone(_code(fmt, text, scale), False), rng, angle=rng.uniform(-20, 20)), rng)
    elif kind == "short-skewed":
        code = _code(fmt, text, 2)
        strip = code.crop((0, code.size[1] // 2 - 10, code.size[0], code.size[1] // 2 + 10))  # a label 20 px tall
        img = _place(room, strip, rng, angle=rng.uniform(-15, 15), tilt=rng.uniform(0, 0.1))
    else:  # "close-up": held close to the lens, large modules and out of focus
        big = {"QRCode": 10, "MicroQRCode": 20, "Code128": 5}[fmt]
        img = _place(room, _code(fmt, text, big), rng, angle=rng.uniform(-8, 8))
        blur = rng.uniform(1.8, 2.8) if fmt == "Code128" else rng.uniform(4.0, 7.0)
    return Photo(f"synthetic/{kind}", f"{kind}-{i:02d}", fmt, text, _sensor(img, rng, blur=blur, noise=noise))


# phone screens show matrix codes; a short label is a bar code
KIND_FORMATS = {"dark-mode": ("QRCode", "MicroQRCode"), "moire": ("QRCode", "MicroQRCode"),
                "short-skewed": ("Code128",)}
KINDS = ("perspective", "blur", "glare", "low-contrast", "dark-mode", "moire", "short-skewed", "close-up")


def hash_kind(kind: str) -> int:
    return KINDS.index(kind) + 1  # str hashes change per process; the seed must not


def synthetic_photos(per_kind: int = 8) -> Iterator[Photo]:
    """per_kind SYNTHETIC photos of each kind in KINDS (64 by default), the same on every run."""
    for kind in KINDS:
        for i in range(per_kind):
            yield _one(kind, i)
