"""The decoder the camera and `kiosk decode` share: real zxing-cpp on rendered frames."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.decoder import DEFAULT_FORMATS, LINEAR_STEP, FrameDecoder, render_code


def scene(code: np.ndarray | None = None, *, size=(480, 640), ground=200, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = (np.full(size, ground, float) + rng.normal(0, 5, size)).clip(0, 255).astype(np.uint8)
    if code is not None:
        y, x = (size[0] - code.shape[0]) // 2, (size[1] - code.shape[1]) // 3
        frame[y:y + code.shape[0], x:x + code.shape[1]] = code
    return frame


@pytest.mark.parametrize("fmt, text, scale",
                         [("QRCode", "I-1001", 4), ("MicroQRCode", "I-1", 5), ("Code128", "O-2001", 3)])
def test_default_formats_are_found(fmt, text, scale):
    found = FrameDecoder().decode(scene(render_code(text, fmt, scale)))
    assert [(f.text, f.format) for f in found] == [(text, fmt)]


def test_vertical_linear_code_is_found_on_the_column_pass():
    code = np.ascontiguousarray(render_code("I-2002", "Code128", 3).T)
    assert [f.text for f in FrameDecoder().decode(scene(code))] == ["I-2002"]


def test_short_linear_code_between_sampled_rows_is_still_found():
    code = render_code("I-3003", "Code128", 3)[40:40 + 2 * LINEAR_STEP]  # a strip of bars two scan lines tall
    assert [f.text for f in FrameDecoder().decode(scene(code))] == ["I-3003"]


def test_flat_frame_is_skipped_but_a_low_contrast_code_is_not():
    decoder = FrameDecoder()
    assert decoder.decode(np.full((480, 640), 128, np.uint8)) == []
    faint = (render_code("I-1001", "QRCode", 4).astype(int) * 60 // 255 + 100).astype(np.uint8)  # grey 100..160
    assert [f.text for f in decoder.decode(scene(faint, ground=160))] == ["I-1001"]


def test_light_on_dark_code_single_image_and_on_alternate_stream_frames():
    inverted = scene(255 - render_code("I-1001", "QRCode", 4), ground=40)
    assert [f.text for f in FrameDecoder().decode(inverted)] == ["I-1001"]
    stream = FrameDecoder(stream=True)
    seen = [[f.text for f in stream.decode(inverted)] for _ in range(4)]
    assert seen.count(["I-1001"]) == 2 and seen.count([]) == 2
    assert [f.text for f in FrameDecoder(try_invert=False).decode(inverted)] == []


def test_roi_crops_before_decoding():
    frame = scene(render_code("I-1001", "QRCode", 4))
    assert FrameDecoder(roi=(0.0, 0.0, 0.2, 0.2)).decode(frame) == []
    assert [f.text for f in FrameDecoder(roi=(0.1, 0.1, 0.8, 0.8)).decode(frame)] == ["I-1001"]


@pytest.mark.parametrize("bad", [np.zeros((0, 0), np.uint8), np.zeros((4,), np.uint8), "not a frame"])
def test_a_bad_frame_finds_nothing_and_does_not_raise(bad):
    assert FrameDecoder().decode(bad) == []


# -- photographed codes ------------------------------------------------------------------------------

def _photos_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "photos.py"
    spec = importlib.util.spec_from_file_location("kiosk_test_photos", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_camera_path_finds_at_least_what_zxing_defaults_find_on_photos():
    """zxing-cpp's real photos (each at 4 rotations) and our synthetic ones: per category and format,
    the camera decoder (two frames, one each polarity) finds every code zxing-cpp's defaults find."""
    import zxingcpp

    photos = _photos_module()
    formats = zxingcpp.barcode_formats_from_str(",".join(DEFAULT_FORMATS))
    lost = []
    counted = 0
    for photo in [*photos.zxing_samples(), *photos.synthetic_photos()]:
        defaults = {r.text for r in zxingcpp.read_barcodes(photo.image, formats=formats) if r.valid}
        camera = FrameDecoder(stream=True)
        ours = {f.text for _ in range(2) for f in camera.decode(photo.image)}
        counted += photo.text in defaults
        if photo.text in defaults and photo.text not in ours:
            lost.append(f"{photo.category}/{photo.name}")
    assert counted > 400  # the samples are there and the defaults read most of them
    assert lost == []


def test_a_faint_code_in_a_dim_even_frame_is_read():
    ground = np.full((480, 640), 108, np.uint8)
    faint = (render_code("I-1001", "QRCode", 5).astype(int) * 25 // 255 + 100).astype(np.uint8)  # grey 100..125
    frame = scene(faint, ground=108)
    frame[:] = np.where(frame == 0, ground, frame)
    assert [f.text for f in FrameDecoder().decode(frame)] == ["I-1001"]


def test_a_blurred_label_the_sampled_lines_miss_is_read_where_the_frame_shows_bars():
    from PIL import Image, ImageFilter

    code = Image.fromarray(np.where(render_code("GIFT-2026-0042", "Code128", 2) > 127, 220, 30).astype(np.uint8))
    label = np.asarray(code.crop((0, 20, code.size[0], 34)).filter(ImageFilter.GaussianBlur(1.1)))  # 14 px tall
    frame = scene(label, ground=150)
    assert [f.text for f in FrameDecoder(linear_step=LINEAR_STEP).decode(frame)] == ["GIFT-2026-0042"]


def test_edges_of_a_room_are_not_bars_but_a_label_is():
    """The full-resolution search runs only where the frame shows bars: a wall with a door frame and a
    poster (single strong edges) shows none; a blurred label does."""
    from PIL import Image, ImageFilter

    from kiosk.decoder import _bar_box

    room = np.tile(np.linspace(90, 200, 640, dtype=np.float32), (480, 1))
    room[40:440, 80:260], room[60:420, 100:240] = 60, 140
    room[100:220, 380:560], room[120:200, 400:540] = 230, 30
    room = room.astype(np.uint8)
    assert _bar_box(room) is None
    code = Image.fromarray(np.where(render_code("GIFT-2026-0042", "Code128", 2) > 127, 220, 30).astype(np.uint8))
    label = np.asarray(code.crop((0, 20, code.size[0], 34)).filter(ImageFilter.GaussianBlur(1.1)))
    with_label = room.copy()
    with_label[300:300 + label.shape[0], 300:300 + min(label.shape[1], 340)] = label[:, :340]
    box = _bar_box(with_label)
    assert box is not None and box[0].start <= 300 < 300 + label.shape[0] <= box[0].stop
