"""Drawing the touchscreen: a pure function from a `Scene` (display state + clock) to a pygame Surface.

No display, no events: `render(scene, (w, h))` works on an off-screen surface, which is what the
tests and `kiosk screenshot` use. Sizes scale from the 800x480 reference panel; every text is
fitted (shrunk, wrapped, then cut with an ellipsis) into its box so nothing is drawn off screen.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import pygame

from kiosk.display import (BANG, CLOCK, CROSS, DISABLED, EXIT, GO, HOURGLASS, LATER, LEAVE, LOOKS, PIN, REASONS,
                           RECENT, REFRESH, RESULT, RETRY, SCAN, SEE_STAFF, STAFF, STOP, TICK, WARN, Display,
                           describe, fault_text, last_sync_text, verdict_label)
from kiosk.i18n import ADMIT_REASONS, Messages
from kiosk.model import Decision
from kiosk.text import safe_text

from .glyphs import ChainFont, chain_paths

log = logging.getLogger(__name__)

Color = tuple[int, int, int]
WHITE = (255, 255, 255)
INK = (24, 24, 24)
BG_TOP, BG_BOTTOM = (22, 34, 46), (10, 16, 22)
MUTED = (160, 176, 192)
CARD = (28, 40, 53)
BUTTON = (45, 60, 76)
BLUE = (41, 110, 220)
AMBER = (255, 179, 0)
# A result's field and its text colour, by tone (what the member is asked to do); each pair is
# at least WCAG AA 4.5:1 (tests/hardware/test_screen_render.py measures the rendered pixels).
TONES = {GO: ((27, 133, 60), WHITE), STOP: ((198, 40, 40), WHITE), WARN: ((245, 166, 0), INK),
         RETRY: ((25, 90, 190), WHITE), LATER: ((110, 50, 160), WHITE), LEAVE: ((0, 110, 120), WHITE)}
DOT = {True: (76, 200, 110), False: (235, 80, 70), None: (150, 160, 170)}

# Smallest letters (capital height) on the result screen, in millimetres on the panel: the
# instruction reads at three metres, the name at arm's length, the detail for staff beside it.
MIN_MM = {"instruction": 25.0, "name": 12.0, "detail": 6.0}


@dataclass
class Scene:
    """Everything a frame depends on."""

    display: Display
    msg: Messages
    gate_name: str
    now: float  # monotonic seconds, the display's clock
    wall: datetime  # the wall clock for the corner and the recent list
    tz: tzinfo | None = None
    selected_groups: tuple[str, ...] = ()
    can_sync: bool = False
    diagonal_in: float = 7.0  # the panel's visible diagonal (screen.diagonal_in): sizes in millimetres
    photo: str | None = None  # the result's member photo (a checked thumbnail from kiosk/photos.py)


@dataclass
class Frame:
    surface: pygame.Surface
    hits: list[tuple[pygame.Rect, str]] = field(default_factory=list)  # touch targets, topmost last
    boxes: dict[str, pygame.Rect] = field(default_factory=dict)  # where the main texts went (for tests)

    def hit(self, pos: tuple[int, int]) -> str | None:
        for rect, action in reversed(self.hits):
            if rect.collidepoint(pos):
                return action
        return None


class Fonts:
    """Fonts by pixel size, through the fallback chain (hardware/glyphs.py); cached."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, bool, bool], ChainFont] = {}
        self._caps: dict[tuple[bool, bool], float] = {}

    def get(self, size: int, bold: bool = False, narrow: bool = False) -> ChainFont:
        size = max(8, int(size))
        key = (size, bold, narrow)
        font = self._cache.get(key)
        if font is None:
            paths = chain_paths(bold, narrow)
            # pygame's default font draws smaller than DejaVu at the same size
            font = ChainFont(paths, size, None if paths else pygame.font.Font(None, int(size * 1.3)))
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = font
        return font

    def cap_ratio(self, bold: bool = False, narrow: bool = False) -> float:
        """Capital height / font size of the chain's first font."""
        key = (bold, narrow)
        if key not in self._caps:
            probe = self.get(200, bold, narrow).render("H", True, WHITE)
            self._caps[key] = max(1, probe.get_bounding_rect().height) / 200
        return self._caps[key]

    def size_for_cap(self, cap_px: float, bold: bool = False, narrow: bool = False) -> int:
        """The smallest font size whose capital letters are at least `cap_px` tall."""
        return math.ceil(cap_px / self.cap_ratio(bold, narrow))


_fonts: Fonts | None = None


def fonts() -> Fonts:
    global _fonts
    if not pygame.font.get_init():
        pygame.font.init()
        _fonts = None
    if _fonts is None:
        _fonts = Fonts()
    return _fonts


# -- text --------------------------------------------------------------------------------

# No box shows more than this many characters (two lines of a name at the smallest size). Every text
# is cut to it and made printable before it is measured, so fitting costs the same for a 20- and a
# 20,000-character name, and a NUL (which pygame refuses) or an escape never reaches the font.
TEXT_LIMIT = 200


def _wrap(font: ChainFont, text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if font.size(trial)[0] <= width:
            line = trial
            continue
        if line:
            lines.append(line)
        line = word
    if line or not lines:
        lines.append(line)
    return lines


def _ellipsize(font: ChainFont, text: str, width: int) -> str:
    text = safe_text(text, TEXT_LIMIT)
    if font.size(text)[0] <= width:
        return text
    # the longest prefix that fits with the ellipsis, found in log2(len) measurements
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.size(text[:middle].rstrip() + "…")[0] <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"


def fit(text: str, width: int, size: int, *, bold: bool = False, min_size: int | None = None,
        max_lines: int = 1, one_line_to: float = 1.0, narrow: bool = False) -> tuple[ChainFont, list[str]]:
    """The largest font from `size` down to `min_size` at which `text` fits in `max_lines` of `width`;
    at the smallest, extra lines are dropped and the last one is cut with an ellipsis.

    `one_line_to` < 1: first try a single line down to that fraction of `size` (a name reads
    better a little smaller on one line than wrapped)."""
    text = safe_text(text, TEXT_LIMIT)
    min_size = min_size or size
    current = size
    while max_lines > 1 and current >= max(min_size, size * one_line_to):
        font = fonts().get(current, bold, narrow)
        if font.size(text)[0] <= width:
            return font, [text]
        current = int(current * 0.92)
    current = size
    while True:
        font = fonts().get(current, bold, narrow)
        lines = _wrap(font, text, width)
        if len(lines) <= max_lines and all(font.size(line)[0] <= width for line in lines):
            return font, lines
        if current <= min_size:
            cut = lines[:max_lines]
            if len(lines) > max_lines:
                cut[-1] = cut[-1] + " " + " ".join(lines[max_lines:])
            return font, [_ellipsize(font, line, width) for line in cut]
        current = max(min_size, int(current * 0.9))


def draw_text(surface: pygame.Surface, font: ChainFont, lines: list[str], color: Color, x: int, y: int, *,
              align: str = "left", width: int = 0, spacing: float = 1.05) -> pygame.Rect:
    """Draw lines from (x, y) (left, centred in `width`, or right-aligned at x + width); returns their box."""
    box = pygame.Rect(x, y, 0, 0)
    step = int(font.get_linesize() * spacing)
    for i, line in enumerate(lines):
        image = font.render(safe_text(line, TEXT_LIMIT), True, color)
        left = x if align == "left" else x + (width - image.get_width()) // 2 if align == "center" else \
            x + width - image.get_width()
        rect = surface.blit(image, (left, y + i * step))
        box = rect if i == 0 else box.union(rect)
    return box


def text_height(font: ChainFont, lines: list[str], spacing: float = 1.05) -> int:
    return int(font.get_linesize() * spacing) * (len(lines) - 1) + font.get_height()


# -- shapes ------------------------------------------------------------------------------

_icon_cache: dict[tuple, pygame.Surface] = {}


def icon(shape: str, diameter: int, disc: Color, mark: Color) -> pygame.Surface:
    """A disc with a mark: tick, cross, "!", a code to scan, a refresh arrow, a clock, an hourglass or
    an arrow out of a door; drawn 3x and smoothed down."""
    key = (shape, diameter, tuple(disc), tuple(mark))
    if key in _icon_cache:
        return _icon_cache[key]
    big = diameter * 3
    s = pygame.Surface((big, big), pygame.SRCALPHA)
    pygame.draw.circle(s, disc, (big // 2, big // 2), big // 2)
    w = max(3, int(big * 0.11))

    def at(px: float, py: float) -> tuple[int, int]:
        return int(px * big), int(py * big)

    def stroke(points: list[tuple[float, float]], width: int = w) -> None:
        pts = [at(px, py) for px, py in points]
        for a, b in itertools.pairwise(pts):
            _thick_line(s, mark, a, b, width)
        for p in pts:
            pygame.draw.circle(s, mark, p, width // 2)

    if shape == TICK:
        stroke([(0.27, 0.53), (0.43, 0.69), (0.74, 0.36)])
    elif shape == CROSS:
        stroke([(0.33, 0.33), (0.67, 0.67)])
        stroke([(0.67, 0.33), (0.33, 0.67)])
    elif shape == SCAN:
        _scan_glyph(s, (big // 2, big // 2), int(big * 0.5), mark)
    elif shape == REFRESH:  # a phone with a ring chasing its own arrow head: "refresh the pass on your phone"
        phone = pygame.Rect(at(0.33, 0.19), (int(big * 0.34), int(big * 0.62)))
        pygame.draw.rect(s, mark, phone, int(w * 0.6), border_radius=int(big * 0.06))
        r, end = 0.1, math.radians(35)
        stroke([(0.5 + r * math.cos(t), 0.5 - r * math.sin(t))
                for t in (math.radians(d) for d in range(95, 396, 20))], int(w * 0.4))
        ex, ey = 0.5 + r * math.cos(end), 0.5 - r * math.sin(end)
        tx, ty = -math.sin(end), -math.cos(end)  # the way the ring runs at its end, on screen
        nx, ny = math.cos(end), -math.sin(end)
        pygame.draw.polygon(s, mark, [at(ex + tx * 0.08, ey + ty * 0.08), at(ex + nx * 0.07, ey + ny * 0.07),
                                      at(ex - nx * 0.07, ey - ny * 0.07)])
    elif shape == CLOCK:
        pygame.draw.circle(s, mark, (big // 2, big // 2), int(big * 0.3), int(w * 0.7))
        stroke([(0.5, 0.31), (0.5, 0.5), (0.64, 0.58)], int(w * 0.7))
    elif shape == HOURGLASS:
        pygame.draw.polygon(s, mark, [at(0.31, 0.24), at(0.69, 0.24), at(0.5, 0.5)])
        pygame.draw.polygon(s, mark, [at(0.5, 0.5), at(0.31, 0.76), at(0.69, 0.76)])
        stroke([(0.28, 0.24), (0.72, 0.24)], int(w * 0.6))
        stroke([(0.28, 0.76), (0.72, 0.76)], int(w * 0.6))
    elif shape == EXIT:  # a door frame and an arrow leaving it
        stroke([(0.46, 0.3), (0.28, 0.3), (0.28, 0.7), (0.46, 0.7)], int(w * 0.7))
        stroke([(0.42, 0.5), (0.76, 0.5)], int(w * 0.8))
        stroke([(0.63, 0.37), (0.76, 0.5), (0.63, 0.63)], int(w * 0.8))
    else:  # BANG
        stroke([(0.5, 0.24), (0.5, 0.58)])
        pygame.draw.circle(s, mark, (big // 2, int(big * 0.75)), int(w * 0.65))
    out = pygame.transform.smoothscale(s, (diameter, diameter))
    if len(_icon_cache) > 64:
        _icon_cache.clear()
    _icon_cache[key] = out
    return out


def _thick_line(surface: pygame.Surface, color: Color, a: tuple[int, int], b: tuple[int, int], width: int) -> None:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = max(1.0, (dx * dx + dy * dy) ** 0.5)
    nx, ny = -dy / length * width / 2, dx / length * width / 2
    pygame.draw.polygon(surface, color, [(a[0] + nx, a[1] + ny), (b[0] + nx, b[1] + ny),
                                         (b[0] - nx, b[1] - ny), (a[0] - nx, a[1] - ny)])


def _scan_glyph(surface: pygame.Surface, center: tuple[int, int], size: int, color: Color) -> pygame.Rect:
    """A stylised QR code: three finder squares and a few modules, so the prompt reads at a glance."""
    box = pygame.Rect(0, 0, size, size)
    box.center = center
    m = size / 7
    line = max(2, int(m * 0.45))
    for fx, fy in ((0, 0), (4, 0), (0, 4)):
        outer = pygame.Rect(box.x + fx * m, box.y + fy * m, 3 * m, 3 * m)
        pygame.draw.rect(surface, color, outer, line, border_radius=int(m * 0.4))
        pygame.draw.rect(surface, color, outer.inflate(-2 * m, -2 * m), border_radius=int(m * 0.2))
    for mx, my in ((4, 4), (5.5, 4), (4, 5.5), (5.5, 5.5), (4.75, 4.75)):
        pygame.draw.rect(surface, color, (box.x + mx * m, box.y + my * m, m * 0.9, m * 0.9),
                         border_radius=int(m * 0.2))
    return box


# -- screens -----------------------------------------------------------------------------

_bg_cache: dict[tuple[int, int], pygame.Surface] = {}


def _background(size: tuple[int, int]) -> pygame.Surface:
    bg = _bg_cache.get(size)
    if bg is None:
        bg = pygame.Surface(size)
        h = size[1]
        for y in range(h):
            t = y / max(1, h - 1)
            color = [int(a + (b - a) * t) for a, b in zip(BG_TOP, BG_BOTTOM, strict=True)]
            pygame.draw.line(bg, color, (0, y), (size[0], y))
        _bg_cache.clear()
        _bg_cache[size] = bg
    return bg


class _Painter:
    """One frame being drawn; `u` is one pixel of the 800x480 reference."""

    def __init__(self, scene: Scene, size: tuple[int, int]):
        self.scene = scene
        self.msg = scene.msg
        self.w, self.h = size
        self.u = min(self.w / 800, self.h / 480)
        self.surface = pygame.Surface(size)
        self.frame = Frame(self.surface)
        self.margin = int(24 * self.u)
        self.ppmm = math.hypot(self.w, self.h) / (scene.diagonal_in * 25.4)  # pixels per millimetre

    def mm_px(self, what: str) -> float:
        """The least capital height for `what` (MIN_MM) in pixels on this panel."""
        return MIN_MM[what] * self.ppmm

    def px(self, v: float) -> int:
        return max(1, int(v * self.u))

    def clock_text(self, seconds: bool = False) -> str:
        local = self.scene.wall.astimezone(self.scene.tz) if self.scene.wall.tzinfo else self.scene.wall
        return local.strftime("%H:%M:%S" if seconds else "%H:%M")

    def button(self, rect: pygame.Rect, label: str, action: str, *, color: Color = BUTTON, text: Color = WHITE,
               size: float = 26, bold: bool = True) -> None:
        pygame.draw.rect(self.surface, color, rect, border_radius=self.px(14))
        font, lines = fit(label, rect.width - self.px(20), self.px(size), bold=bold, min_size=self.px(13),
                          max_lines=2)
        height = text_height(font, lines)
        draw_text(self.surface, font, lines, text, rect.x, rect.centery - height // 2, align="center",
                  width=rect.width)
        self.frame.hits.append((rect, action))

    def fault_banner(self, top: int) -> int:
        """The amber banner while faults are active; returns its height (0 when none)."""
        faults = self.scene.display.faults
        if not faults:
            return 0
        height = self.px(46)
        rect = pygame.Rect(0, top, self.w, height)
        pygame.draw.rect(self.surface, AMBER, rect)
        d = self.px(30)
        self.surface.blit(icon(BANG, d, INK, AMBER), (self.margin, rect.centery - d // 2))
        texts = list(dict.fromkeys(fault_text(n, m, self.msg) for n, m in sorted(faults.items())))
        x = self.margin + d + self.px(12)
        width = self.w - x - self.margin
        font, lines = fit(self.msg("fault.banner", message=" · ".join(texts)), width, self.px(24), bold=True,
                          min_size=self.px(17))
        if len(texts) > 1 and lines[0].endswith("…"):
            message = self.msg("fault.banner", message=texts[0]) + "  " + self.msg("fault.more", count=len(texts) - 1)
            font, lines = fit(message, width, self.px(24), bold=True, min_size=self.px(15))
        self.frame.boxes["fault"] = draw_text(self.surface, font, lines, INK, x,
                                              rect.centery - font.get_height() // 2)
        return height

    def header(self, title: str, close_action: str = "close", close_label: str | None = None) -> int:
        height = self.px(64)
        pygame.draw.rect(self.surface, CARD, (0, 0, self.w, height))
        bw = self.px(150)
        button = pygame.Rect(self.w - self.margin // 2 - bw, self.px(10), bw, height - self.px(20))
        font, lines = fit(title, button.x - 2 * self.margin, self.px(30), bold=True, min_size=self.px(16))
        self.frame.boxes["title"] = draw_text(self.surface, font, lines, WHITE, self.margin,
                                              (height - font.get_height()) // 2)
        self.button(button, close_label or self.msg("staff.close"), close_action, size=22)
        return height


def render(scene: Scene, size: tuple[int, int]) -> Frame:
    """Draw the scene at `size`; the frame's `hits` map touch positions to actions."""
    p = _Painter(scene, size)
    view = scene.display.view(scene.now)
    if view == RESULT and scene.display.result is not None:
        _result(p, scene.display.result)
    elif view == PIN:
        _pin(p)
    elif view == DISABLED:
        _disabled(p)
    elif view == STAFF:
        _staff(p)
    elif view == RECENT:
        _recent(p)
    elif view == REASONS:
        _reasons(p)
    else:
        _idle(p)
    return p.frame


def _idle(p: _Painter) -> None:
    s, msg = p.surface, p.msg
    s.blit(_background((p.w, p.h)), (0, 0))
    top = p.fault_banner(0)
    bar = p.px(64)
    clock_font = fonts().get(p.px(40), True)
    clock = p.clock_text()
    clock_w = clock_font.size(clock)[0]
    p.frame.boxes["clock"] = draw_text(s, clock_font, [clock], WHITE, p.w - p.margin - clock_w,
                                       top + (bar - clock_font.get_height()) // 2)
    font, lines = fit(p.scene.gate_name, p.w - 3 * p.margin - clock_w, p.px(30), bold=True, min_size=p.px(16))
    p.frame.boxes["gate"] = draw_text(s, font, lines, MUTED, p.margin, top + (bar - font.get_height()) // 2)

    status_h = p.px(48)
    area = pygame.Rect(0, top + bar, p.w, p.h - top - bar - status_h)
    glyph = min(int(area.height * 0.34), p.px(130))
    prompt_font, prompt = fit(msg("idle.prompt"), p.w - 2 * p.margin, p.px(50), bold=True, min_size=p.px(24),
                              max_lines=2)
    hint_font, hint = fit(msg("idle.hint"), p.w - 2 * p.margin, p.px(24), min_size=p.px(14))
    gap = p.px(26)
    block = glyph + gap + text_height(prompt_font, prompt) + p.px(12) + text_height(hint_font, hint)
    y = area.y + max(0, (area.height - block) // 2)
    _scan_glyph(s, (p.w // 2, y + glyph // 2), glyph, WHITE)
    y += glyph + gap
    p.frame.boxes["prompt"] = draw_text(s, prompt_font, prompt, WHITE, p.margin, y, align="center",
                                        width=p.w - 2 * p.margin)
    y += text_height(prompt_font, prompt) + p.px(12)
    p.frame.boxes["hint"] = draw_text(s, hint_font, hint, MUTED, p.margin, y, align="center",
                                      width=p.w - 2 * p.margin)
    _status_line(p, pygame.Rect(0, p.h - status_h, p.w, status_h))


def _status_line(p: _Painter, rect: pygame.Rect) -> None:
    msg, status = p.msg, p.scene.display.status
    pygame.draw.rect(p.surface, CARD, rect)
    if status is None:
        return
    online = {True: msg("status.online"), False: msg("status.offline"), None: msg("status.standalone")}[status.online]
    if not status.has_snapshot:
        age = msg("status.no_snapshot")
    elif status.snapshot_age_s is None:
        age = msg("status.snapshot_age", age="?")
    else:
        age = msg("status.snapshot_age", age=msg.age(status.snapshot_age_s))
    backlog = msg("status.unreported", count=status.unreported) if status.unreported else msg("status.all_reported")
    r = p.px(7)
    x = p.margin
    pygame.draw.circle(p.surface, DOT[status.online], (x + r, rect.centery), r)
    x += 2 * r + p.px(10)
    font, lines = fit("   ·   ".join((online, age, backlog)), p.w - x - p.margin, p.px(20), min_size=p.px(12))
    p.frame.boxes["status"] = draw_text(p.surface, font, lines, MUTED, x, rect.centery - font.get_height() // 2)


def _result(p: _Painter, decision: Decision) -> None:
    """The colour field; the member's instruction across the top, as large as the panel allows and never
    under 25 mm; below it the shape, the name (12 mm) and the staff detail (6 mm)."""
    scene, s = p.scene, p.surface
    text = describe(decision, p.msg, selected_groups=scene.selected_groups, tz=scene.tz)
    color, fg = TONES[text.tone]
    s.fill(color)
    top = p.fault_banner(0)
    footer = p.px(40)
    shade = [int(c * 0.82) for c in color]
    pygame.draw.rect(s, shade, (0, p.h - footer, p.w, footer))
    small = fonts().get(p.px(20), True)
    clock = p.clock_text()
    p.frame.boxes["clock"] = draw_text(s, small, [clock], fg, p.w - p.margin - small.size(clock)[0],
                                       p.h - footer + (footer - small.get_height()) // 2)
    gate_font, gate = fit(scene.gate_name, p.w - 3 * p.margin - small.size(clock)[0], p.px(20), bold=True,
                          min_size=p.px(12))
    p.frame.boxes["gate"] = draw_text(s, gate_font, gate, fg, p.margin,
                                      p.h - footer + (footer - gate_font.get_height()) // 2)

    pad = max(p.px(8), int(p.ppmm * 2))
    area = pygame.Rect(pad, top + int(pad * 1.5), p.w - 2 * pad, p.h - top - footer - int(pad * 2.5))
    y = _instruction(p, text.instruction, area, fg)

    row = pygame.Rect(area.x, y, area.width, area.bottom - y)
    if scene.display.offers_guest(scene.now):
        # large enough for a thumb at arm's length: a third of the width, the row's height (at least 15 mm)
        bw = int(area.width * 0.3)
        bh = min(row.height, max(int(p.ppmm * 15), int(row.height * 0.8)))
        guest = pygame.Rect(row.right - bw, row.y + (row.height - bh) // 2, bw, bh)
        p.button(guest, p.msg("guest.add"), "guest", color=INK, size=40)
        p.frame.boxes["guest"] = guest
        row.width -= bw + int(p.ppmm * 3)
    picture = _photo_image(scene.photo, row.height, int(p.w * 0.13)) if scene.photo and text.name else None
    diameter = max(p.px(40), min(row.height, int(p.w * (0.12 if picture is not None else 0.22))))
    p.frame.boxes["icon"] = pygame.Rect(row.x, row.y + (row.height - diameter) // 2, diameter, diameter)
    s.blit(icon(text.shape, diameter, fg, color), p.frame.boxes["icon"])
    x = row.x + diameter + int(p.ppmm * 4)
    width = row.right - x
    if picture is not None:
        p.frame.boxes["photo"] = s.blit(picture, (row.right - picture.get_width(),
                                                  row.y + (row.height - picture.get_height()) // 2))
        width -= picture.get_width() + int(p.ppmm * 3)
    detail = f"{text.title} · {text.reason}"
    guests = scene.display.guests(scene.now)
    if guests is not None:  # first, so a long reason cannot cut it off
        detail = p.msg("guest.used", used=guests[0], allowed=guests[1]) + " · " + detail
    name_cap, detail_cap = p.mm_px("name"), p.mm_px("detail")
    name_size = fonts().size_for_cap(max(name_cap, p.h * 0.11), True, True)
    detail_size = fonts().size_for_cap(max(detail_cap, p.h * 0.05), False, True)
    gap = int(p.ppmm * 2)
    fitting = []
    for name_lines, detail_lines in ((2, 2), (2, 1), (1, 2), (1, 1)):  # the whole name first
        parts = []
        if text.name:
            parts.append(("name", *fit(text.name, width, name_size, bold=True, narrow=True, max_lines=name_lines,
                                       min_size=fonts().size_for_cap(name_cap, True, True), one_line_to=0.8)))
        parts.append(("reason", *fit(detail, width, detail_size, narrow=True, max_lines=detail_lines,
                                     min_size=fonts().size_for_cap(detail_cap, False, True))))
        height = sum(text_height(f, ls) for _, f, ls in parts) + gap * (len(parts) - 1)
        if height <= row.height:
            fitting.append((height, parts))
    # the first layout that fits and cuts nothing, else the first that fits, else the smallest
    whole = [c for c in fitting if not any(line.endswith("…") for _, _, lines in c[1] for line in lines)]
    height, parts = (whole or fitting or [(height, parts)])[0]
    y = row.y + max(0, (row.height - height) // 2)
    for key, font, lines in parts:
        p.frame.boxes[key] = draw_text(s, font, lines, fg, x, y)
        y += text_height(font, lines) + gap


_photo_cache: dict[tuple[str, int, int], pygame.Surface | None] = {}


def _photo_image(path: str, height: int, max_width: int) -> pygame.Surface | None:
    """The photo scaled into height x max_width; None (logged) if the file will not load."""
    key = (path, height, max_width)
    if key not in _photo_cache:
        picture = None
        try:
            image = pygame.image.load(path)
            scale = min(height / image.get_height(), max_width / image.get_width())
            picture = pygame.transform.smoothscale(
                image, (max(1, int(image.get_width() * scale)), max(1, int(image.get_height() * scale))))
        except (pygame.error, OSError, ZeroDivisionError) as exc:
            log.warning("member photo %s not shown: %s", path, exc)
        if len(_photo_cache) >= 16:
            _photo_cache.pop(next(iter(_photo_cache)))
        _photo_cache[key] = picture
    return _photo_cache[key]


_small_panels: set[tuple[int, int, float]] = set()


def _instruction(p: _Painter, words: str, area: pygame.Rect, fg: Color) -> int:
    """Draw the instruction with its capitals' top at `area.y`; returns the y below it."""
    least = p.mm_px("instruction")
    size = fonts().size_for_cap(max(least, p.h * 0.26), True, True)
    font, lines = fit(words, area.width, size, bold=True, narrow=True, min_size=fonts().size_for_cap(least, True, True))
    if lines[0].endswith("…") and not words.endswith("…"):  # too narrow a panel: smaller beats cut off
        key = (p.w, p.h, p.scene.diagonal_in)
        if key not in _small_panels:
            _small_panels.add(key)
            log.warning("a %dx%d panel of %s\" is too small for %.0f mm instructions: drawn smaller",
                        p.w, p.h, p.scene.diagonal_in, MIN_MM["instruction"])
        font, lines = fit(words, area.width, size, bold=True, narrow=True, min_size=p.px(24), max_lines=2)
    cap = font.size_px * fonts().cap_ratio(True, True)
    y = area.y - int(font.get_ascent() - cap)  # the space above the capitals is for accents: none in these words
    p.frame.boxes["instruction"] = draw_text(p.surface, font, lines, fg, area.x, y, align="center", width=area.width)
    return y + text_height(font, lines) + int(p.ppmm * 2)


def _pin(p: _Painter) -> None:
    d, msg, s = p.scene.display, p.msg, p.surface
    s.blit(_background((p.w, p.h)), (0, 0))
    top = p.header(msg("pin.title"))
    left = pygame.Rect(p.margin, top + p.margin, p.w // 2 - 2 * p.margin, p.h - top - 2 * p.margin)
    locked = d.locked_for(p.scene.now)
    if locked:
        line, color = msg("pin.locked", seconds=locked), AMBER
    elif d.pin_error:
        line, color = msg("pin.wrong"), (255, 120, 110)
    else:
        line, color = msg("pin.prompt"), WHITE
    font, lines = fit(line, left.width, p.px(30), bold=True, min_size=p.px(16), max_lines=3)
    y = left.y + p.px(20)
    p.frame.boxes["prompt"] = draw_text(s, font, lines, color, left.x, y)
    y = p.frame.boxes["prompt"].bottom + p.px(36)
    r = p.px(13)
    for i in range(max(4, len(d.pin_entry))):
        center = (left.x + r + i * (3 * r), y + r)
        if i < len(d.pin_entry):
            pygame.draw.circle(s, WHITE, center, r)
        else:
            pygame.draw.circle(s, MUTED, center, r, max(2, p.px(3)))
    pad = pygame.Rect(p.w // 2, top + p.margin // 2, p.w // 2 - p.margin, p.h - top - p.margin)
    gap = p.px(10)
    kw, kh = (pad.width - 2 * gap) // 3, (pad.height - 3 * gap) // 4
    keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "ok"]
    for i, key in enumerate(keys):
        rect = pygame.Rect(pad.x + (i % 3) * (kw + gap), pad.y + (i // 3) * (kh + gap), kw, kh)
        if key == "clear":
            p.button(rect, msg("pin.clear"), "clear", size=22)
        elif key == "ok":
            p.button(rect, msg("pin.ok"), "ok", color=BLUE, size=28)
        else:
            p.button(rect, key, f"digit:{key}", size=34)


def _disabled(p: _Painter) -> None:
    s = p.surface
    s.blit(_background((p.w, p.h)), (0, 0))
    top = p.header(p.msg("pin.title"))
    font, lines = fit(p.msg("pin.disabled"), p.w - 4 * p.margin, p.px(30), bold=True, min_size=p.px(16),
                      max_lines=3)
    y = top + (p.h - top - text_height(font, lines)) // 2
    p.frame.boxes["message"] = draw_text(s, font, lines, WHITE, 2 * p.margin, y, align="center",
                                         width=p.w - 4 * p.margin)


def _staff(p: _Painter) -> None:
    d, msg, s = p.scene.display, p.msg, p.surface
    s.blit(_background((p.w, p.h)), (0, 0))
    top = p.header(msg("staff.title"))
    status = d.status
    rows: list[tuple[str, str]] = []
    if status is not None:
        rows.append((msg("staff.cursor"), status.cursor or "-"))
        rows.append((msg("staff.age"), msg("staff.never") if status.snapshot_age_s is None
                     else msg("staff.ago", age=msg.age(status.snapshot_age_s))))
        rows.append((msg("staff.backlog"), str(status.unreported)))
        rows.append((msg("staff.last_sync"), last_sync_text(status.last_sync, msg, p.scene.wall)))
    faults = [fault_text(n, m, msg) for n, m in sorted(d.faults.items())]
    rows.append((msg("staff.faults"), ", ".join(dict.fromkeys(faults)) or msg("staff.none")))

    bottom = p.h - p.margin
    if d.inside is not None:
        bottom = _occupancy(p, pygame.Rect(p.margin, p.h - p.margin - p.px(72), p.w - 2 * p.margin, p.px(72)), d.inside)
    info = pygame.Rect(p.margin, top + p.margin, int(p.w * 0.58) - p.margin, bottom - top - p.margin)
    pygame.draw.rect(s, CARD, info, border_radius=p.px(14))
    inner = info.inflate(-2 * p.px(18), -2 * p.px(14))
    row_h = inner.height // len(rows)
    label_font = fonts().get(min(p.px(17), int(row_h * 0.36)))
    for i, (label, value) in enumerate(rows):
        y = inner.y + i * row_h
        draw_text(s, label_font, [_ellipsize(label_font, label, inner.width)], MUTED, inner.x, y)
        value_font, lines = fit(value, inner.width, min(p.px(24), int(row_h * 0.5)), bold=True,
                                min_size=min(p.px(13), int(row_h * 0.4)))
        box = draw_text(s, value_font, lines, WHITE, inner.x, y + label_font.get_linesize())
        p.frame.boxes[f"row{i}"] = box

    col = pygame.Rect(info.right + p.margin, info.y, p.w - info.right - 2 * p.margin, info.height)
    gap = p.px(14)
    bh = (col.height - 2 * gap) // 3
    sync_label = msg(d.notice) if d.notice else msg("staff.sync_now") if p.scene.can_sync else \
        msg("staff.sync_unavailable")
    p.button(pygame.Rect(col.x, col.y, col.width, bh), sync_label, "sync", color=BLUE if p.scene.can_sync else BUTTON)
    p.button(pygame.Rect(col.x, col.y + bh + gap, col.width, bh), msg("staff.admit"), "goto:reasons",
             color=TONES[GO][0])
    p.button(pygame.Rect(col.x, col.y + 2 * (bh + gap), col.width, bh), msg("staff.recent"), "goto:recent")


def _occupancy(p: _Painter, strip: pygame.Rect, inside: int) -> int:
    """ "Inside: N" and the buttons that correct it (−1, +1, reset to 0); returns the strip's top, less a gap."""
    pygame.draw.rect(p.surface, CARD, strip, border_radius=p.px(14))
    gap = p.px(10)
    widths = (p.px(110), p.px(110), p.px(190))
    x = strip.right - gap - sum(widths) - gap * (len(widths) - 1)
    font, lines = fit(p.msg("staff.inside", count=inside), x - strip.x - 2 * gap, p.px(30), bold=True,
                      min_size=p.px(16))
    p.frame.boxes["inside"] = draw_text(p.surface, font, lines, WHITE, strip.x + p.px(18),
                                        strip.centery - text_height(font, lines) // 2)
    changes = (("−1", "-1"), ("+1", "+1"), (p.msg("staff.inside_reset"), "0"))
    for (label, change), width in zip(changes, widths, strict=True):
        p.button(pygame.Rect(x, strip.y + gap, width, strip.height - 2 * gap), label, f"occupancy:{change}",
                 size=28 if change != "0" else 22)
        x += width + gap
    return strip.y - p.px(14)


def _recent(p: _Painter) -> None:
    d, msg, s = p.scene.display, p.msg, p.surface
    s.blit(_background((p.w, p.h)), (0, 0))
    top = p.header(msg("staff.recent"), "goto:staff", msg("staff.back"))
    area = pygame.Rect(p.margin, top + p.px(10), p.w - 2 * p.margin, p.h - top - p.px(20))
    if not d.recent:
        font = fonts().get(p.px(26), True)
        draw_text(s, font, [msg("staff.no_scans")], MUTED, area.x, area.centery, align="center", width=area.width)
        return
    row_h = area.height // (d.recent.maxlen or len(d.recent))  # the deque is made with a maxlen
    size = min(p.px(22), int(row_h * 0.55))
    font, bold = fonts().get(size), fonts().get(size, True)
    time_w = font.size("00:00:00")[0]
    verdict_w = int(area.width * 0.3)
    for i, scan in enumerate(d.recent):
        y = area.y + i * row_h
        if i % 2 == 0:
            pygame.draw.rect(s, CARD, (area.x, y, area.width, row_h), border_radius=p.px(6))
        cy = y + row_h // 2
        local = scan.at.astimezone(p.scene.tz) if scan.at.tzinfo else scan.at
        draw_text(s, font, [local.strftime("%H:%M:%S")], MUTED, area.x + p.px(10), cy - font.get_height() // 2)
        look = LOOKS.get(scan.verdict, SEE_STAFF)
        dot = min(row_h - p.px(6), p.px(22))
        x = area.x + p.px(22) + time_w
        s.blit(icon(look.shape, dot, *TONES[look.tone]), (x, cy - dot // 2))
        x += dot + p.px(12)
        label = msg("staff.staff_admit") if scan.source == "staff" else verdict_label(scan.verdict, msg)
        name_w = area.right - x - verdict_w - p.px(10)
        draw_text(s, bold, [_ellipsize(bold, scan.name or "—", name_w)], WHITE, x, cy - bold.get_height() // 2)
        draw_text(s, font, [_ellipsize(font, label, verdict_w - p.px(10))], WHITE, area.right - verdict_w,
                  cy - font.get_height() // 2)
        p.frame.boxes[f"recent{i}"] = pygame.Rect(area.x, y, area.width, row_h)


def _reasons(p: _Painter) -> None:
    msg, s = p.msg, p.surface
    s.blit(_background((p.w, p.h)), (0, 0))
    top = p.header(msg("staff.choose_reason"), "goto:staff", msg("staff.back"))
    area = pygame.Rect(p.margin, top + p.margin, p.w - 2 * p.margin, p.h - top - 2 * p.margin)
    gap = p.px(14)
    cols, rows = 2, (len(ADMIT_REASONS) + 1) // 2
    bw, bh = (area.width - gap) // cols, (area.height - (rows - 1) * gap) // rows
    for i, key in enumerate(ADMIT_REASONS):
        rect = pygame.Rect(area.x + (i % cols) * (bw + gap), area.y + (i // cols) * (bh + gap), bw, bh)
        p.button(rect, msg(f"admit_reason.{key}"), f"admit:{key}", size=26)
