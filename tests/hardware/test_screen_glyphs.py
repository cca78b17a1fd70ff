"""Names in every script draw as glyphs, never as notdef boxes; right-to-left names read right to left."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import logging  # noqa: E402
import math  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402

from hardware import glyphs  # noqa: E402
from hardware.screen_render import TONES, Scene, fonts, render  # noqa: E402
from kiosk.cli.screen import demo_decisions  # noqa: E402
from kiosk.display import GO, Display  # noqa: E402
from kiosk.i18n import LOCALES, Messages  # noqa: E402
from kiosk.model import Verdict  # noqa: E402

NOW = datetime(2026, 11, 22, 10, 24, tzinfo=timezone.utc)
NAMES = {"latin": "Zoë Ørsted-Łukasiewicz", "greek": "Νίκος Παπαδόπουλος", "cyrillic": "Анна Иванова",
         "cjk": "山田 太郎 李小龍 김민준", "arabic": "محمد الأحمد", "hebrew": "דוד לוי"}
NEEDED = ("NotoSans-Bold.ttf", "NotoSansArabic-Bold.ttf", "NotoSansHebrew-Bold.ttf", "NotoSansCJK-Bold.ttc")


@pytest.fixture(scope="module", autouse=True)
def noto():
    pygame.font.init()
    missing = [name for name in NEEDED if not glyphs.find_font(name)]
    if missing:
        reason = (f"Noto fonts not installed ({', '.join(missing)}): apt-get install fonts-noto-core "
                  "fonts-noto-cjk (.ci/run does)")
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)


def bitmap(surface: pygame.Surface) -> tuple:
    """The ink of a rendering, whatever its colour and alpha: size and which pixels are drawn."""
    mask = pygame.mask.from_surface(surface, 100) if surface.get_flags() & pygame.SRCALPHA else \
        pygame.mask.from_threshold(surface, (0, 0, 0), (100, 100, 100, 255))
    rect = mask.get_bounding_rects()
    return (surface.get_size(), tuple(map(tuple, rect)), mask.count())


def notdefs(size: int, bold: bool) -> set[tuple]:
    """How every font of the chain draws a character it lacks (its notdef glyph), at `size`."""
    return {bitmap(pygame.font.Font(path, size).render(glyphs.NOT_A_CHARACTER, True, (255, 255, 255)))
            for path in glyphs.chain_paths(bold, narrow=True)}


@pytest.mark.parametrize("script", NAMES)
@pytest.mark.parametrize("bold", [True, False])
def test_names_in_every_script_draw_glyphs_not_boxes(script, bold, caplog):
    caplog.set_level(logging.WARNING)
    font = fonts().get(48, bold, narrow=True)
    boxes = notdefs(48, bold)
    name = NAMES[script]
    for ch in dict.fromkeys(name.replace(" ", "")):
        drawn = bitmap(font.render(ch, True, (255, 255, 255)))
        assert drawn[2] > 0, f"{ch!r} drew nothing"
        assert drawn not in boxes, f"{ch!r} (U+{ord(ch):04X}) of the {script} name is a notdef box"
    assert font.render(name, True, (255, 255, 255)).get_width() > 0
    assert not [r for r in caplog.records if "no installed font" in r.getMessage()]


def test_the_first_font_alone_draws_boxes_for_cjk_which_is_what_the_chain_prevents():
    """The comparison can fail: Liberation/DejaVu alone draw CJK as notdef."""
    first = pygame.font.Font(glyphs.chain_paths(True, narrow=True)[0], 48)
    assert bitmap(first.render("山", True, (255, 255, 255))) in notdefs(48, True)


def halves_match(whole: pygame.Surface, left: pygame.Surface, right: pygame.Surface) -> bool:
    """`whole` shows `left` then `right`, side by side (masks overlap almost entirely)."""
    a, b = pygame.mask.from_surface(left, 100), pygame.mask.from_surface(right, 100)
    m = pygame.mask.from_surface(whole, 100)
    overlap = m.overlap_area(a, (0, 0)) + m.overlap_area(b, (whole.get_width() - right.get_width(), 0))
    return overlap >= 0.9 * (a.count() + b.count())


def test_hebrew_reads_right_to_left():
    """"של" (shin, lamed): the first letter in memory is the rightmost on screen."""
    font = fonts().get(60, True, narrow=True)
    shin, lamed = (font.render(ch, True, (255, 255, 255)) for ch in "של")
    whole = font.render("של", True, (255, 255, 255))
    assert halves_match(whole, lamed, shin)
    assert not halves_match(whole, shin, lamed)


def test_arabic_letters_join():
    """"محمد" shaped joins its letters: fewer pieces of ink than the four letters drawn one by one."""
    font = fonts().get(60, True, narrow=True)
    pieces = len(pygame.mask.from_surface(font.render("محمد", True, (255, 255, 255)), 100).connected_components(20))
    apart = sum(len(pygame.mask.from_surface(font.render(ch, True, (255, 255, 255)), 100).connected_components(20))
                for ch in "محمد")
    assert apart == 4 and pieces < apart


def test_a_character_no_font_has_is_logged_once_and_left_out(caplog):
    caplog.set_level(logging.WARNING)
    font = fonts().get(40, True, narrow=True)
    odd = "Ann \U000f0001Lee"  # a private-use character: no font draws it
    for _ in range(3):
        image = font.render(odd, True, (255, 255, 255))
    warnings = [r for r in caplog.records if "no installed font" in r.getMessage()]
    assert len(warnings) == 1 and "U+F0001" in warnings[0].getMessage()
    assert image.get_width() == font.render("Ann Lee", True, (255, 255, 255)).get_width()


@pytest.mark.parametrize("size", [(480, 320), (800, 480), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("script", ["cjk", "arabic", "hebrew"])
def test_the_result_screen_shows_the_name_in_its_script_at_full_size(script, locale, size, caplog):
    caplog.set_level(logging.WARNING)
    decision = replace(demo_decisions(NOW)[Verdict.ADMIT], name=NAMES[script])
    display = Display(result_s=3, long_press_s=2)
    display.show(decision, 1000.0)
    frame = render(Scene(display=display, msg=Messages(locale), gate_name="Lounge", now=1000.0, wall=NOW,
                         tz=timezone.utc), size)
    box = frame.boxes["name"]
    green = TONES[GO][0]
    inked = [y for y in range(box.top, box.bottom)
             if any(frame.surface.get_at((x, y))[:3] != green for x in range(box.left, box.right, 2))]
    assert inked and (inked[-1] - inked[0] + 1) / (math.hypot(*size) / (7 * 25.4)) >= 12
    assert not [r for r in caplog.records if "no installed font" in r.getMessage()]


@pytest.mark.parametrize("text", ["\U000e01f0", "\u0301", "Ann \U000e01f0\u0301Lee"])
def test_unassigned_and_zero_width_characters_draw_without_raising(text):
    """SDL_ttf refuses text of zero width ("Text has zero width"): such names still draw."""
    font = fonts().get(40, True, narrow=True)
    image = font.render(text, True, (255, 255, 255))
    assert image.get_height() > 0 and font.size(text)[0] == image.get_width()
