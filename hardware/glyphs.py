"""Text in any script for the screen: a chain of fonts tried in order, right-to-left runs shaped.

SDL_ttf draws one font at a time and pygame lays every run out left to right: pygame 2.6 has
`Font.set_script` (HarfBuzz joins Arabic letters) but no `set_direction`, so Arabic and Hebrew
come out mirrored; Debian Bookworm's python3-pygame 2.1.2 has neither (`set_script` is new in
2.2.0), though its SDL_ttf 2.20 is built with HarfBuzz.
`ChainFont` splits a text into runs by the first font of the chain that has their glyphs, draws
left-to-right runs with pygame and right-to-left runs with Pillow's raqm layout (FriBiDi +
HarfBuzz: joined letters in reading order), and joins them on one baseline. A character no font
has is left out and logged once per text: never drawn as a box.

A font "has" a character when its rendering differs from the font's notdef glyph (pygame has no
cmap query; SDL_ttf draws notdef for a missing glyph).
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

import pygame

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

log = logging.getLogger(__name__)

FONT_DIRS = ("/usr/share/fonts/truetype/liberation", "/usr/share/fonts/truetype/dejavu",
             "/usr/share/fonts/truetype/noto", "/usr/share/fonts/opentype/noto", "/usr/share/fonts/TTF",
             "/usr/share/fonts/dejavu", "/usr/share/fonts/noto", "/usr/share/fonts/noto-cjk",
             "/usr/local/share/fonts", "/Library/Fonts")

# The scripts a name may be in (Debian: fonts-dejavu-core, fonts-noto-core, fonts-noto-cjk).
# Each entry: (regular, bold).
CHAIN = (("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
         ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
         ("NotoSansArabic-Regular.ttf", "NotoSansArabic-Bold.ttf"),
         ("NotoSansHebrew-Regular.ttf", "NotoSansHebrew-Bold.ttf"),
         ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"))

NOT_A_CHARACTER = "\U0010ffff"  # never in a font: renders as the notdef glyph
# Bookworm's pygame 2.1.2 has only the older names (tobytes/frombytes are new in 2.1.3).
_to_bytes = getattr(pygame.image, "tobytes", None) or pygame.image.tostring
_from_bytes = getattr(pygame.image, "frombytes", None) or pygame.image.fromstring
_RTL = ("R", "AL")
_logged: set[str] = set()
_LOGGED_MAX = 1000


def find_font(name: str) -> str | None:
    for folder in FONT_DIRS:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    return None


# The result screen's narrow face (fonts-liberation): the member's instruction must reach 25 mm
# letters on a 154 mm wide panel.
NARROW = ("LiberationSansNarrow-Regular.ttf", "LiberationSansNarrow-Bold.ttf")


@lru_cache(maxsize=4)
def chain_paths(bold: bool, narrow: bool = False) -> tuple[str, ...]:
    """The installed fonts of the chain, in order."""
    names = ((NARROW,) if narrow else ()) + CHAIN
    return tuple(p for p in (find_font(pair[bold]) for pair in names) if p)


@lru_cache(maxsize=64)
def _probe(path: str) -> pygame.font.Font:
    return pygame.font.Font(path, 24)


@lru_cache(maxsize=64)
def notdef(path: str) -> bytes:
    return _bitmap(_probe(path), NOT_A_CHARACTER)


def _bitmap(font: pygame.font.Font, text: str) -> bytes:
    image = font.render(text, False, (255, 255, 255), (0, 0, 0))
    return str(image.get_size()).encode() + _to_bytes(image, "RGB")


@lru_cache(maxsize=20000)
def has_glyph(path: str, ch: str) -> bool:
    if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Mn"):
        return True  # blank or joining marks: no picture to compare, the run's font shapes them
    try:
        return _bitmap(_probe(path), ch) != notdef(path)
    except pygame.error:  # "Text has zero width": an unassigned or invisible code point
        return False


def is_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in _RTL for ch in text)


def _log_missing(text: str, missing: str) -> None:
    if text in _logged:
        return
    if len(_logged) >= _LOGGED_MAX:
        _logged.clear()
    _logged.add(text)
    log.warning("no installed font has %s in %r: left out (install fonts-noto-core and fonts-noto-cjk)",
                " ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(missing)), text)


class ChainFont:
    """Quacks like `pygame.font.Font` for what the renderer uses: size, render, heights."""

    def __init__(self, paths: tuple[str, ...], size: int, fallback: pygame.font.Font | None = None):
        self.paths = paths
        self.size_px = size
        self.first = pygame.font.Font(paths[0], size) if paths else fallback or pygame.font.Font(None, size)
        self._fonts: dict[int, pygame.font.Font] = {0: self.first}  # the others opened when a name needs them
        self._runs: dict[str, list[tuple[int, str]]] = {}

    def font(self, index: int) -> pygame.font.Font:
        if index not in self._fonts:
            self._fonts[index] = pygame.font.Font(self.paths[index], self.size_px)
        return self._fonts[index]

    # -- metrics of the first font: lines keep one pitch whatever the script ----------------
    def get_height(self) -> int:
        return self.first.get_height()

    def get_linesize(self) -> int:
        return self.first.get_linesize()

    def get_ascent(self) -> int:
        return self.first.get_ascent()

    def runs(self, text: str) -> list[tuple[int, str]]:
        """(font index, text) pieces in reading order of the line; characters no font has dropped."""
        cached = self._runs.get(text)
        if cached is not None:
            return cached
        runs: list[tuple[int, str]] = []
        missing = ""
        for ch in text:
            index = next((i for i, p in enumerate(self.paths) if has_glyph(p, ch)), None) if self.paths else 0
            if index is None:
                missing += ch
                continue
            if runs and (runs[-1][0] == index or ch.isspace() or unicodedata.category(ch) == "Mn"):
                runs[-1] = (runs[-1][0], runs[-1][1] + ch)
            else:
                runs.append((index, ch))
        if missing:
            _log_missing(text, missing)
        first_strong = next((unicodedata.bidirectional(c) for c in text if unicodedata.bidirectional(c) in
                             ("L", "R", "AL")), "L")
        if first_strong in _RTL:  # a right-to-left line: its runs read from the right
            runs.reverse()
        if len(self._runs) > 256:
            self._runs.clear()
        self._runs[text] = runs
        return runs

    def size(self, text: str) -> tuple[int, int]:
        runs = self.runs(text)
        if len(runs) == 1 and runs[0][0] == 0 and not is_rtl(text):
            return self.first.size(runs[0][1])
        return sum(self._run_image(i, t, (0, 0, 0)).get_width() for i, t in runs), self.get_height()

    def render(self, text: str, antialias: bool, color: Iterable[int]) -> pygame.Surface:
        rgb = tuple(color)
        runs = self.runs(text)
        if len(runs) <= 1 and (not runs or runs[0][0] == 0) and not is_rtl(text):
            return _render(self.first, runs[0][1] if runs else "", rgb)
        images = [(self._run_image(i, t, rgb), self.font(i).get_ascent()) for i, t in runs]
        ascent = max([a for _, a in images] + [self.get_ascent()])
        height = max([ascent - a + img.get_height() for img, a in images] + [self.get_height()])
        out = pygame.Surface((max(1, sum(img.get_width() for img, _ in images)), height), pygame.SRCALPHA)
        x = 0
        for image, a in images:
            out.blit(image, (x, ascent - a))
            x += image.get_width()
        # Fallback fonts have taller ascents (Noto CJK: 1.16 em): drop the empty rows above the ink so
        # the baseline sits where the first font's would, and the line below keeps its distance.
        crop = min(ascent - self.get_ascent(), out.get_bounding_rect().top)
        return out.subsurface((0, crop, out.get_width(), height - crop)).copy() if crop > 0 else out

    # Names in other scripts only; a run at 1920x1080 can be a megabyte. One cache for every ChainFont
    # (it holds them alive, B019) keeps that to 32 runs in all, where one per font would not.
    @lru_cache(maxsize=32)  # noqa: B019
    def _run_image(self, index: int, text: str, color: tuple[int, ...]) -> pygame.Surface:
        if not is_rtl(text) or not _raqm():
            return _render(self.font(index), text, color)
        try:
            return _shaped(self.paths[index], self.size_px, text, color, self.font(index).get_ascent(),
                           self.font(index).get_height())
        except (OSError, ValueError) as exc:  # Pillow could not lay it out: unshaped beats nothing
            log.warning("right-to-left text %r drawn unshaped: %s", text, exc)
            return _render(self.font(index), text, color)


def _render(font: pygame.font.Font, text: str, color: tuple[int, ...]) -> pygame.Surface:
    try:
        return font.render(text, True, color)
    except pygame.error:  # only zero-width characters (marks with nothing to sit on): nothing to draw
        return pygame.Surface((0, font.get_height()), pygame.SRCALPHA)


@lru_cache(maxsize=1)
def _raqm() -> bool:
    from PIL import features

    ok = bool(features.check("raqm"))
    if not ok:
        log.warning("Pillow has no raqm layout: right-to-left names are drawn unshaped (install libraqm0)")
    return ok


@lru_cache(maxsize=16)
def _pil_font(path: str, size: int) -> FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


def _shaped(path: str, size: int, text: str, color: tuple[int, ...], ascent: int, height: int) -> pygame.Surface:
    """A right-to-left run laid out by raqm, as a pygame surface with alpha, baseline at `ascent`."""
    from PIL import Image, ImageDraw

    font = _pil_font(path, size)
    width = max(1, int(font.getlength(text, direction="rtl")) + 2)
    image = Image.new("RGBA", (width, height), (*color[:3], 0))
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).text((0, ascent), text, font=font, fill=255, anchor="ls", direction="rtl")
    image.putalpha(mask)
    return _from_bytes(image.tobytes(), image.size, "RGBA")
