"""Detection and speed of the camera's decoder against zxing-cpp's defaults and pyzbar.

Run through ./scripts/bench detection [--rounds 3] [--runs 100]. Part 1 counts, per category and
format, the photographed codes the camera path finds (kiosk.decoder.FrameDecoder(stream=True), two
frames so each polarity is read once) against zxing-cpp's `read_barcodes` with its default options
restricted to the kiosk's formats: zxing-cpp's real sample photos (tests/data/zxing-samples, each
at 0/90/180/270 degrees) and our SYNTHETIC photos (tests/data/photos.py). Part 2 times the camera
path and pyzbar side by side, interleaved, on bench_core's frames and on the photos, `--rounds`
times; it prints each ratio's min / median / max over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter, defaultdict
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "data"))

import zxingcpp  # noqa: E402

import photos  # noqa: E402
from bench_core import frames, machine, percentile, pyzbar_decoder, timed  # noqa: E402
from kiosk.decoder import DEFAULT_FORMATS, FrameDecoder  # noqa: E402

FORMATS = zxingcpp.barcode_formats_from_str(",".join(DEFAULT_FORMATS))


def camera_finds(image: np.ndarray, **options) -> set[str]:
    """What the camera loop reads from a code held still: two frames, one each polarity."""
    decoder = FrameDecoder(stream=True, **options)
    return {f.text for _ in range(2) for f in decoder.decode(image)}


def defaults_find(image: np.ndarray) -> set[str]:
    return {r.text for r in zxingcpp.read_barcodes(image, formats=FORMATS) if r.valid}


def detection(before: dict[str, object]) -> list[photos.Photo]:
    print("\n## Detection: photos found (of n), per category and format")
    print("defaults = zxingcpp.read_barcodes(image, formats=QRCode,MicroQRCode,Code128), every other option default;")
    print("camera = FrameDecoder(stream=True), two frames; 'before' = the same with", before)
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    lost: list[str] = []
    every = [*photos.zxing_samples(), *photos.synthetic_photos()]
    for photo in every:
        key = (photo.category, photo.format)
        d = photo.text in defaults_find(photo.image)
        c = photo.text in camera_finds(photo.image)
        counts[key].update(n=1, defaults=d, camera=c, before=photo.text in camera_finds(photo.image, **before))
        if d and not c:
            lost.append(f"{photo.category}/{photo.name}")
    print(f"{'category':<26} {'format':<12} {'n':>4} {'defaults':>8} {'camera':>7} {'before':>7}")
    totals: dict[str, Counter] = defaultdict(Counter)
    for (category, fmt), c in sorted(counts.items()):
        print(f"{category:<26} {fmt:<12} {c['n']:>4} {c['defaults']:>8} {c['camera']:>7} {c['before']:>7}")
        totals["synthetic" if category.startswith("synthetic") else "zxing-cpp samples"].update(c)
    for name, c in totals.items():
        print(f"{'all ' + name:<39} {c['n']:>4} {c['defaults']:>8} {c['camera']:>7} {c['before']:>7}")
    print("found by the defaults but not by the camera path:", lost or "none")
    return every


def speed(rounds: int, runs: int, every: list[photos.Photo]) -> None:
    zbar, zbar_name = pyzbar_decoder()
    if zbar is None:
        print(f"\nNOTE: {zbar_name}; speed part skipped")
        return
    print(f"\n## Speed: camera path vs {zbar_name}, ms per frame (median of {runs}; pyzbar {max(5, runs // 4)}), "
          f"{rounds} rounds interleaved")
    cases = {name: frame for name, (frame, _) in frames().items()}
    # one photo of each zxing-cpp category and synthetic kind, padded onto a 640x480 frame like a camera's
    firsts: dict[str, np.ndarray] = {}
    for photo in every:
        if photo.category not in firsts and photo.image.shape[0] <= 480 and photo.image.shape[1] <= 640:
            frame = np.full((480, 640), int(np.median(photo.image)), np.uint8)
            frame[:photo.image.shape[0], :photo.image.shape[1]] = photo.image
            firsts[photo.category] = frame
    cases.update({f"photo {category}": frame for category, frame in firsts.items()})
    ours: dict[str, list[float]] = defaultdict(list)
    theirs: dict[str, list[float]] = defaultdict(list)
    p99: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for name, frame in cases.items():
            camera = FrameDecoder(stream=True)
            t = timed(partial(camera.decode, frame), runs)
            z = timed(partial(zbar, frame), max(5, runs // 4))
            ours[name].append(statistics.median(t))
            p99[name].append(percentile(t, 99))
            theirs[name].append(statistics.median(z))
    print(f"{'frame':<34} {'camera med':>10} {'p99':>7} {'pyzbar med':>10} {'ratio min / median / max':>26}")
    worst = 0.0
    for name in cases:
        ratios = sorted(o / z for o, z in zip(ours[name], theirs[name], strict=True))
        worst = max(worst, ratios[len(ratios) // 2])
        print(f"{name:<34} {statistics.median(ours[name]):>10.3f} {statistics.median(p99[name]):>7.3f} "
              f"{statistics.median(theirs[name]):>10.2f} {ratios[0]:>8.3f} / {ratios[len(ratios) // 2]:.3f} / "
              f"{ratios[-1]:.3f}")
    blank = statistics.median(ours["640x480 blank"])
    print(f"\ngoal: camera median <= 1/5 of pyzbar's on every frame: worst median ratio {worst:.3f} -> "
          f"{'met' if worst <= 0.2 else 'MISSED'}")
    print(f"goal: blank 640x480 <= 0.5 ms: {blank:.3f} ms -> {'met' if blank <= 0.5 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds (ratios: min / median / max)")
    parser.add_argument("--runs", type=int, default=100, help="timed decodes per frame and round")
    parser.add_argument("--no-speed", action="store_true", help="count detections only")
    args = parser.parse_args()
    print(machine())
    # the settings before issue 15: linear codes only on every 8th line, min_contrast 40, no downscale
    every = detection({"min_contrast": 40, "try_downscale": False, "search_bars": False})
    if not args.no_speed:
        speed(args.rounds, args.runs, every)


if __name__ == "__main__":
    main()
