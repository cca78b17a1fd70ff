"""Every screen at the smallest, the reference and the largest size, in both languages."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from dataclasses import replace  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402

from hardware.screen_render import AMBER, BG_BOTTOM, BG_TOP, TONES, Scene, render  # noqa: E402
from kiosk.cli_screen import demo_decisions, demo_display  # noqa: E402
from kiosk.display import STOP, WARN, Display, describe  # noqa: E402
from kiosk.i18n import LOCALES, Messages  # noqa: E402
from kiosk.model import Verdict  # noqa: E402

NOW = datetime(2026, 11, 22, 10, 24, tzinfo=timezone.utc)
SIZES = [(480, 320), (800, 480), (1920, 1080)]
PANELS = ["idle", "fault", "staff", "pin", "recent", "reasons", "disabled"]
T = 1000.0


@pytest.fixture(scope="module", autouse=True)
def fonts():
    pygame.font.init()
    yield


def scene(display: Display, locale: str = "en", gate: str = "Members' Lounge") -> Scene:
    return Scene(display=display, msg=Messages(locale), gate_name=gate, now=T, wall=NOW, tz=timezone.utc,
                 selected_groups=("Members",), can_sync=True)


def color_at(surface: pygame.Surface, x: int, y: int) -> tuple[int, int, int]:
    return tuple(surface.get_at((x, y)))[:3]


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 16) -> bool:
    """Colours match allowing for the smoothing at the shapes' edges."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def inside(rect: pygame.Rect, size: tuple[int, int]) -> bool:
    return pygame.Rect((0, 0), size).contains(rect) and rect.width > 0 and rect.height > 0


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("verdict", list(Verdict), ids=lambda v: v.value)
def test_each_verdict_fills_the_screen_with_its_colour_and_shape(verdict, locale, size):
    display = demo_display(verdict.value, NOW, t=T)
    frame = render(scene(display, locale), size)
    w, h = size
    assert frame.surface.get_size() == size
    tone = describe(display.result, Messages(locale), selected_groups=("Members",)).tone
    colour = TONES[tone]
    for x, y in ((2, 2), (w - 3, 2), (w - 3, h // 2), (w // 2, int(h * 0.1)), (w // 2, int(h * 0.85))):
        assert color_at(frame.surface, x, y) == colour, (x, y)
    assert set(frame.boxes) >= {"title", "reason", "icon"}
    for name, box in frame.boxes.items():
        assert inside(box, size), f"{name} {box} is off the {size} screen"
    if display.result.name:
        assert inside(frame.boxes["name"], size)
        assert frame.boxes["name"].height >= h * 0.08  # large type
    # the shape, for colour-blind staff: the cross and the "!" go through the centre, the tick does not;
    # low in the middle only the "!" has its dot
    icon = frame.boxes["icon"]
    centre = color_at(frame.surface, *icon.center)
    low = color_at(frame.surface, icon.centerx, icon.y + int(icon.height * 0.75))
    assert near(centre, colour) == (tone in (STOP, WARN))
    assert near(low, colour) == (tone == WARN)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("screen", PANELS)
def test_idle_fault_and_staff_screens_fit(screen, locale, size):
    display = demo_display(screen, NOW, t=T)
    frame = render(scene(display, locale), size)
    w, h = size
    for name, box in frame.boxes.items():
        assert inside(box, size), f"{name} {box} is off the {size} screen"
    for rect, action in frame.hits:
        assert inside(rect, size), f"button {action} {rect} is off the {size} screen"
        assert rect.height >= 40 * min(w / 800, h / 480) and rect.width >= 40, f"{action} is too small to touch"
    if screen in ("idle", "fault"):
        assert {"prompt", "clock", "gate", "status"} <= set(frame.boxes)
        assert frame.boxes["prompt"].height >= h * 0.1
        banner = color_at(frame.surface, w - 3, 3)
        assert (banner == AMBER) == (screen == "fault")
        assert not frame.hits  # nothing to tap by mistake; a long press opens the PIN pad
    if screen == "pin":
        assert sorted(a for _, a in frame.hits) == sorted([f"digit:{n}" for n in range(10)] + ["clear", "ok", "close"])
    if screen == "staff":
        assert {a for _, a in frame.hits} == {"sync", "goto:reasons", "goto:recent", "close"}
        assert all(f"row{i}" in frame.boxes for i in range(5))
    if screen == "recent":
        # one demo scan per verdict, as many as the list holds
        assert len([k for k in frame.boxes if k.startswith("recent")]) == min(len(Verdict), display.recent.maxlen)
    if screen == "reasons":
        assert len([a for _, a in frame.hits if a.startswith("admit:")]) == 6


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_idle_background_is_the_dark_gradient(size):
    frame = render(scene(demo_display("idle", NOW, t=T)), size)
    top, middle = color_at(frame.surface, 2, 2), color_at(frame.surface, 2, size[1] // 2)
    assert all(abs(a - b) <= 3 for a, b in zip(top, BG_TOP))
    assert all(lo <= c <= hi for c, lo, hi in zip(middle, BG_BOTTOM, BG_TOP)) and middle != top


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_long_names_and_many_groups_stay_on_screen(size):
    decision = replace(demo_decisions(NOW)[Verdict.ADMIT],
                       name="Maximiliana Wilhelmina Alexandra van Oranje-Nassau tot Amsberg-Lippe-Biesterfeld",
                       groups=tuple(f"Very long group name number {i}" for i in range(14)))
    display = Display(result_s=3, long_press_s=2)
    display.show(decision, T)
    gate = "The Grand Members' Lounge of the Royal Society of Very Long Names, East Wing, Second Floor"
    frame = render(scene(display, "nl", gate), size)
    for name in ("name", "groups", "title", "reason"):
        assert inside(frame.boxes[name], size), name
    assert frame.boxes["groups"].bottom < frame.boxes["reason"].top <= frame.boxes["reason"].bottom < size[1]
    assert frame.boxes["name"].right <= size[0] - 10
