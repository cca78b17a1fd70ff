"""Scan sources that need no hardware: standard input and a folder of images."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import BinaryIO

from .decoder import FrameDecoder, load_gray
from .ports import Scan, Submit

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
MAX_LINE = 4096  # longer lines are cut here and then rejected by the credential parser


class StdinSource:
    """One scan per line (bytes, so invalid UTF-8 becomes a verdict, not a crash). Sets `done` at end of input."""

    name = "stdin"
    live = False  # a file or pipe can wait: it is given the gate's back-pressure, never dropped

    def __init__(self, stream: BinaryIO | None = None):
        self.stream = stream if stream is not None else sys.stdin.buffer
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, submit: Submit) -> None:
        def read() -> None:
            try:
                while True:
                    line = self.stream.readline(MAX_LINE)
                    if not line:
                        break
                    if not line.endswith(b"\n"):
                        # an over-long line: drop the rest of it so it cannot become further scans
                        rest = line
                        while rest and not rest.endswith(b"\n"):
                            rest = self.stream.readline(MAX_LINE)
                    if line.strip(b"\r\n") or line == b"\n":
                        submit(Scan(raw=line.rstrip(b"\r\n"), source=self.name))
            except (OSError, ValueError) as exc:
                log.warning("standard input closed: %s", exc)
            finally:
                self.done.set()

        self._thread = threading.Thread(target=read, name="stdin-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.done.set()


class ImageFolderSource:
    """Every image in a folder, in name order, decoded like camera frames; sets `done` after the last."""

    name = "images"
    live = False

    def __init__(self, folder: str | Path, decoder: FrameDecoder):
        """Raises OSError when the folder cannot be listed (missing, not a folder, no permission)."""
        self.folder = Path(folder)
        self.decoder = decoder
        self.done = threading.Event()
        self._files = self.files()

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def start(self, submit: Submit) -> None:
        def read() -> None:
            try:
                for path in self._files:
                    try:
                        found = self.decoder.decode(load_gray(str(path)))
                    except (OSError, ValueError) as exc:
                        log.warning("%s: cannot read the image: %s", path, exc)
                        continue
                    if not found:
                        log.info("%s: no code found", path)
                    for item in found:
                        submit(Scan(raw=item.text, source="camera"))
            finally:
                self.done.set()

        threading.Thread(target=read, name="image-source", daemon=True).start()

    def stop(self) -> None:
        self.done.set()
