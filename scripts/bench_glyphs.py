"""Benchmark of names in other scripts on the result screen: render time for a CJK, an Arabic and a
Hebrew name against a Latin one (the reference), cold (the font chain's glyph checks and shaped
runs not yet cached: a member's first scan) and warm (the same result redrawn).

Run: ./scripts/bench glyphs [--rounds N]. SDL's dummy driver: CPU cost of drawing only.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pygame  # noqa: E402

from hardware import glyphs, screen_render  # noqa: E402
from kiosk.cli.screen import demo_decisions  # noqa: E402
from kiosk.display import Display  # noqa: E402
from kiosk.i18n import Messages  # noqa: E402
from kiosk.model import Verdict  # noqa: E402

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
NAMES = {"latin (reference)": "Pieter de Vries", "cjk": "山田 太郎", "arabic": "محمد الأحمد", "hebrew": "דוד לוי"}


def cold_caches() -> None:
    """Forget every glyph check, drawn run and font, as after a restart."""
    glyphs.has_glyph.cache_clear()
    glyphs.ChainFont._run_image.cache_clear()
    glyphs._pil_font.cache_clear()
    screen_render._fonts = None


def render_ms(name: str, size: tuple[int, int], admit) -> float:
    display = Display(result_s=3, long_press_s=2)
    display.show(replace(admit, name=name), 1000.0)
    scene = screen_render.Scene(display=display, msg=Messages("en"), gate_name="Lounge", now=1000.0, wall=NOW)
    start = time.perf_counter()
    screen_render.render(scene, size)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--size", default="800x480")
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.split("x"))
    pygame.font.init()
    admit = demo_decisions(NOW)[Verdict.ADMIT]
    render_ms("warm up", size, admit)
    print(f"{platform.machine()}  python {platform.python_version()} pygame {pygame.version.ver}  {args.size}, "
          f"median of {args.rounds} rounds, ms (ratio to the Latin name)")
    print(f"{'name':<20}{'cold':>16}{'warm':>16}")
    results = {}
    for label, name in NAMES.items():
        cold, warm = [], []
        for _ in range(args.rounds):
            cold_caches()
            cold.append(render_ms(name, size, admit))
            warm.append(render_ms(name, size, admit))
        results[label] = (statistics.median(cold), statistics.median(warm))
    ref_cold, ref_warm = results["latin (reference)"]
    for label, (cold, warm) in results.items():
        print(f"{label:<20}{cold:>8.1f} ({cold / ref_cold:4.1f}x){warm:>8.1f} ({warm / ref_warm:4.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
