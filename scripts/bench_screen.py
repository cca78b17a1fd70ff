"""Benchmark of the touchscreen: render time per screen and size, act() and an idle tick().

Run through ./scripts/bench screen [--repeat N]. SDL's dummy driver: the figures are the CPU cost
of drawing (what a Pi pays before the flip), not the display's. BENCHMARKS.md records them.
Goals: act() well under 1 ms (the gate loop must never wait on the screen); a frame at 800x480
under 1/30 s, so a new verdict is on screen within one frame at the fps cap.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pygame  # noqa: E402

from kiosk import compose  # noqa: E402
from hardware.screen_render import Scene, render  # noqa: E402
from kiosk.app import App  # noqa: E402
from kiosk.cli.screen import demo_display  # noqa: E402
from kiosk.config import Config, validate  # noqa: E402
from kiosk.i18n import Messages  # noqa: E402
from kiosk.ports import Scan  # noqa: E402

SIZES = [(480, 320), (800, 480), (1920, 1080)]
SCREENS = ["idle", "admit", "not_in_group", "fault", "staff", "recent"]


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_render(repeat: int) -> float:
    pygame.font.init()
    now = datetime.now(timezone.utc)
    print(f"render (median of {repeat}, ms)")
    print("screen         " + "".join(f"{w}x{h:<10}" for w, h in SIZES))
    worst_ref = 0.0
    for screen in SCREENS:
        display = demo_display(screen, now, t=1000.0)
        scene = Scene(display=display, msg=Messages("en"), gate_name="Members' Lounge", now=1000.0, wall=now,
                      selected_groups=("Members",), can_sync=True)
        row = []
        for size in SIZES:
            render(scene, size)  # warm the font and icon caches, as the running kiosk has them
            ms = median_ms(partial(render, scene, size), repeat)
            row.append(ms)
            if size == (800, 480):
                worst_ref = max(worst_ref, ms)
        print(f"{screen:<15}" + "".join(f"{ms:<14.1f}" for ms in row))
    return worst_ref


def bench_adapter(repeat: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        values = {"state_dir": tmp, "screen": {"size": [800, 480], "fullscreen": False}}
        app = App(Config(validate(values, "bench"), "bench"), simulate=True)
        screen = compose.open_screen(app, required=True)
        try:
            decision = app.gate.handle(Scan("I-1001", "bench"))
            act_us = median_ms(lambda: screen.act(decision), repeat * 10) * 1000
            screen.tick()
            screen._status_at = float("inf")  # measure the tick itself, not the 10-second status read
            idle_us = median_ms(screen.tick, repeat * 10) * 1000
        finally:
            screen.close()
            app.close()
    print(f"\nScreen.act(): {act_us:.1f} µs median; tick() with nothing to redraw: {idle_us:.1f} µs median")
    return act_us, idle_us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()} "
          f"pygame {pygame.version.ver} SDL {'.'.join(map(str, pygame.get_sdl_version()))}\n")
    worst = bench_render(args.repeat)
    act_us, _ = bench_adapter(args.repeat)
    ok_frame, ok_act = worst < 1000 / 30, act_us < 1000
    print(f"\ngoal: slowest 800x480 frame {worst:.1f} ms < 33.3 ms: {'met' if ok_frame else 'NOT met'}")
    print(f"goal: act() {act_us:.1f} µs < 1 ms: {'met' if ok_act else 'NOT met'}")
    return 0 if ok_frame and ok_act else 1


if __name__ == "__main__":
    sys.exit(main())
