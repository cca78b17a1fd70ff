"""Members' photos for staff: fetched in the background into a bounded cache, checked before use.

A photo reference is the customer's `photo` field: a URL whose fragment names the SHA-256 of the
file, `photos/I-1001.png#sha256=<64 hex>` (relative to upstream.url, or absolute). The fragment
never reaches the server; pip's package links carry their hashes the same way. A reference
without a hash is not fetched: nothing unchecked reaches the screen.

Every fetched file passes, in order: a byte cap while downloading, the hash, Pillow reading only
the header (format PNG/JPEG/WebP, width x height capped, so a small file that unpacks to a huge
image is refused before it is decoded), then the decode. What is kept is our own small PNG
thumbnail, named by the hash; the cache is capped in bytes and drops the oldest files first. A
bad photo is logged once and remembered, so it is not fetched again and again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import queue
import re
import ssl
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 2_000_000
MAX_PIXELS = 4096 * 4096
THUMB_PX = 360  # the longer side of what is kept: enough for a photo beside the name
MAX_CACHE_BYTES = 50_000_000
FORMATS = ("PNG", "JPEG", "WEBP")
_HASH = re.compile(r"(?:^|&)sha256=([0-9a-fA-F]{64})(?:&|$)")


class PhotoError(Exception):
    """Why a photo was refused."""


@dataclass(frozen=True)
class PhotoRef:
    url: str  # absolute, without the fragment
    sha256: str


def parse_ref(photo: str, base_url: str) -> PhotoRef | None:
    """The reference in a customer's `photo` field, or None when it has no usable URL and hash."""
    if not photo or len(photo) > 2000:
        return None
    url, _, fragment = photo.partition("#")
    match = _HASH.search(fragment)
    absolute = urljoin(base_url.rstrip("/") + "/", url)
    if not match or urlsplit(absolute).scheme not in ("http", "https"):
        return None
    return PhotoRef(absolute, match.group(1).lower())


def thumbnail(data: bytes, *, max_pixels: int = MAX_PIXELS, size: int = THUMB_PX) -> bytes:
    """A PNG of at most `size` px a side from an untrusted image file, or PhotoError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as source:  # reads the header only
                width, height = source.size
                if width * height > max_pixels:
                    raise PhotoError(f"{width}x{height} pixels is over the {max_pixels} pixel cap")
                source.draft("RGB", (size, size))  # JPEG: decode at a fraction of the size
                image = source.convert("RGB")
                image.thumbnail((size, size))
                out = io.BytesIO()
                image.save(out, "PNG")
                return out.getvalue()
    except UnidentifiedImageError:
        raise PhotoError("not a PNG, JPEG or WebP image") from None
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(f"cannot decode the image ({exc})") from None


class PhotoCache:
    """`want(photo)` asks for a photo (never blocks); `path(photo)` is its thumbnail once fetched."""

    def __init__(self, folder: Path, base_url: str, *, token: str = "", verify: ssl.SSLContext | str | bool = True,
                 timeout_s: float = 5,
                 max_file_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS,
                 max_cache_bytes: int = MAX_CACHE_BYTES) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url.rstrip("/")
        self.max_file_bytes = max_file_bytes
        self.max_pixels = max_pixels
        self.max_cache_bytes = max_cache_bytes
        self.refused: dict[str, str] = {}  # hash -> why, so a bad photo is tried once
        origin = urlsplit(self.base_url)
        self._token_for = (origin.scheme, origin.netloc)  # the bearer token goes to the upstream only
        self._token = token
        self._http = httpx.Client(timeout=timeout_s, verify=verify, follow_redirects=False)
        self._queue: queue.Queue[PhotoRef | None] = queue.Queue(maxsize=64)
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._work, name="photos", daemon=True)
        self._thread.start()

    def path(self, photo: str) -> Path | None:
        ref = parse_ref(photo, self.base_url)
        if ref is None:
            return None
        file = self._file(ref)
        return file if file.exists() else None

    def want(self, photo: str) -> None:
        ref = parse_ref(photo, self.base_url)
        if ref is None or ref.sha256 in self.refused or self._file(ref).exists():
            return
        with self._lock:
            if ref.sha256 in self._pending:
                return
            self._pending.add(ref.sha256)
        try:
            self._queue.put_nowait(ref)
        except queue.Full:  # a burst of scans: this one is asked again on its next scan
            with self._lock:
                self._pending.discard(ref.sha256)

    def fetch(self, ref: PhotoRef) -> Path:
        """Fetch, check and keep one photo now (the background thread's work); PhotoError says why not."""
        data = self._download(ref.url)
        digest = hashlib.sha256(data).hexdigest()
        if digest != ref.sha256:
            raise PhotoError(f"content hash {digest[:12]}… is not the reference's {ref.sha256[:12]}…")
        png = thumbnail(data, max_pixels=self.max_pixels)
        file = self._file(ref)
        tmp = file.with_suffix(".tmp")
        tmp.write_bytes(png)
        os.replace(tmp, file)
        self._trim()
        return file

    def close(self) -> None:
        """Stop after the fetch under way (queued ones are dropped: they are asked again next scan)."""
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=5)
        self._http.close()

    # -- internals -----------------------------------------------------------------------
    def _file(self, ref: PhotoRef) -> Path:
        return self.folder / f"{ref.sha256}.png"

    def _download(self, url: str) -> bytes:
        parts = urlsplit(url)
        headers = {"Authorization": f"Bearer {self._token}"} if self._token and \
            (parts.scheme, parts.netloc) == self._token_for else {}
        try:
            with self._http.stream("GET", url, headers=headers) as answer:
                if answer.status_code != 200:
                    raise PhotoError(f"HTTP {answer.status_code}")
                declared = answer.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.max_file_bytes:
                    raise PhotoError(f"{declared} bytes is over the {self.max_file_bytes} byte cap")
                data = bytearray()
                for chunk in answer.iter_bytes():
                    data += chunk
                    if len(data) > self.max_file_bytes:
                        raise PhotoError(f"over the {self.max_file_bytes} byte cap")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise PhotoError(f"cannot fetch ({type(exc).__name__}: {exc})") from None

    def _trim(self) -> None:
        files = sorted(self.folder.glob("*.png"), key=lambda f: f.stat().st_mtime)
        total = sum(f.stat().st_size for f in files)
        while files and total > self.max_cache_bytes:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)

    def _work(self) -> None:
        while True:
            ref = self._queue.get()
            if ref is None or self._closing.is_set():
                return
            try:
                self.fetch(ref)
            except PhotoError as exc:
                if len(self.refused) > 10_000:
                    self.refused.clear()
                self.refused[ref.sha256] = str(exc)
                log.warning("member photo %s refused: %s", ref.url, exc)
            except OSError as exc:  # the cache folder: full disk, permissions
                log.warning("member photo %s not kept: %s", ref.url, exc)
            finally:
                with self._lock:
                    self._pending.discard(ref.sha256)


def demo_photo(seed: str, size: int = 240) -> bytes:
    """A generated stand-in for a member's photo (a silhouette on a colour from `seed`): no real person."""
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(seed.encode()).digest()
    image = Image.new("RGB", (size, int(size * 1.25)), tuple(60 + b % 140 for b in digest[:3]))
    draw = ImageDraw.Draw(image)
    skin = tuple(150 + b % 90 for b in digest[3:6])
    w, h = image.size
    draw.ellipse((w * 0.3, h * 0.18, w * 0.7, h * 0.55), fill=skin)
    draw.ellipse((w * 0.12, h * 0.6, w * 0.88, h * 1.3), fill=tuple(30 + b % 120 for b in digest[6:9]))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def photo_field(path: str, data: bytes) -> str:
    """The `photo` value that names `data` at `path` (relative to upstream.url)."""
    return f"{path}#sha256={hashlib.sha256(data).hexdigest()}"
