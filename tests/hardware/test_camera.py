"""The camera adapter against a fake Picamera2 fed with real rendered codes, decoded by the real zxing-cpp."""

from __future__ import annotations

import importlib.util
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from hwutil import make_config

from hardware.camera import (REFRESH_S, STILL_DECODES, CameraSettings, CameraSource, ChangeDetector, Debouncer,
                             picamera2_class)
from hardware.camera_sim import AfModeEnum, SimulatedPicamera2, fitted_code, scene, yuv420
from kiosk.decoder import FrameDecoder
from kiosk.errors import CameraError
from kiosk.ports import Faults
from tests.kiosk.waits import wait_for

SIZE = (320, 240)


def frame_of(text: str | None, size=SIZE) -> np.ndarray:
    return yuv420(scene(fitted_code(text, size) if text else None, size))


class FakePicamera2:
    """Only the calls the adapter makes; `capture_array` serves queued frames, or raises what is queued."""

    def __init__(self, frames=(), *, autofocus: bool = True, fail_on_open: Exception | None = None):
        self.frames = list(frames)
        self.camera_controls = {"AfMode": (0, 2, 0)} if autofocus else {"ExposureTime": (1, 100000, 1000)}
        self.calls: list[tuple] = []
        self.controls: dict = {}
        self.fail_on_open = fail_on_open
        self.started = False
        self.closed = False
        self.served = threading.Event()

    def create_video_configuration(self, main=None, lores=None, controls=None):
        self.calls.append(("create_video_configuration", main, lores, controls))
        return {"main": main, "lores": lores, "controls": controls}

    def configure(self, config):
        if self.fail_on_open:
            raise self.fail_on_open
        self.calls.append(("configure", config))

    def start(self):
        self.started = True

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True

    def set_controls(self, controls):
        self.controls.update(controls)

    def capture_array(self, name="main"):
        assert self.started and name == "lores"
        if not self.frames:
            self.served.set()
            time.sleep(0.01)
            return frame_of(None)
        item = self.frames.pop(0)
        if isinstance(item, Exception):
            raise item
        time.sleep(0.005)
        return item


def camera_config(**camera):
    return make_config({"camera": {"lores_size": list(SIZE), "debounce_s": 0.05, **camera}})


def make_camera(config, fakes, faults=None, decoder=None):
    fakes = list(fakes)
    opened = []

    def open_camera():
        cam = fakes.pop(0) if len(fakes) > 1 else fakes[0]
        opened.append(cam)
        return cam

    settings = replace(CameraSettings.from_config(config), reconnect_min_s=0.01, reconnect_max_s=0.05)
    camera = CameraSource(settings, faults or Faults(), open_camera=open_camera, af_modes=lambda: AfModeEnum,
                          decoder=decoder)
    return camera, opened


def collect():
    scans = []
    return scans, scans.append


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here")
def test_missing_picamera2_says_how_to_install_it():
    with pytest.raises(CameraError) as err:
        picamera2_class()
    message = str(err.value)
    assert "sudo apt install python3-picamera2" in message
    assert "--system-site-packages" in message


def test_settings_are_read_and_converted_once():
    config = camera_config(main_size=[1280, 720], framerate=12, roi=[0, 0.25, 1, 0.5], formats=["QRCode"])
    settings = CameraSettings.from_config(config)
    assert settings == CameraSettings(
        backend="picamera2", main_size=(1280, 720), lores_size=SIZE, framerate=12.0, autofocus="continuous",
        formats=("QRCode",), roi=(0.0, 0.25, 1.0, 0.5), change_threshold=2.0, debounce_s=0.05, try_downscale=True,
        try_invert=True)


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here")
def test_a_picamera2_source_without_picamera2_fails_when_built_not_on_its_thread():
    with pytest.raises(CameraError, match="python3-picamera2"):
        CameraSource(CameraSettings.from_config(camera_config()), Faults())


def test_the_simulated_backend_films_the_demo_codes():
    settings = CameraSettings.from_config(camera_config(backend="simulated"))
    camera = CameraSource(settings, Faults(), demo_codes=["I-1001"])
    scans, submit = collect()
    camera.start(submit)
    try:
        wait_for(lambda: scans, "the demo code read off the simulated camera")
    finally:
        camera.stop()
    assert scans[0].raw == "I-1001" and scans[0].source == "camera"


def test_configures_lores_yuv420_framerate_and_continuous_autofocus():
    config = camera_config(main_size=[1280, 720], framerate=12)
    fake = FakePicamera2()
    camera, _ = make_camera(config, [fake])
    scans, submit = collect()
    camera.start(submit)
    try:
        wait_for(fake.served.is_set, "every queued frame served")
    finally:
        camera.stop()
    _, main, lores, controls = fake.calls[0]
    assert main == {"size": (1280, 720)}
    assert lores == {"size": SIZE, "format": "YUV420"}
    assert controls == {"FrameRate": 12.0}
    assert fake.controls == {"AfMode": AfModeEnum.Continuous}
    assert fake.closed


@pytest.mark.parametrize("autofocus, has_af", [("off", True), ("continuous", False)])
def test_no_autofocus_control_when_off_or_fixed_focus(autofocus, has_af):
    fake = FakePicamera2(autofocus=has_af)
    camera, _ = make_camera(camera_config(autofocus=autofocus), [fake])
    camera.start(lambda scan: None)
    try:
        wait_for(fake.served.is_set, "every queued frame served")
    finally:
        camera.stop()
    assert "AfMode" not in fake.controls


def test_a_code_in_view_is_submitted_once_and_again_after_it_left():
    frames = [frame_of("I-1001")] * 15 + [frame_of(None)] * 20 + [frame_of("I-1001")] * 5
    fake = FakePicamera2(frames)
    camera, _ = make_camera(camera_config(), [fake])
    scans, submit = collect()
    camera.start(submit)
    try:
        wait_for(fake.served.is_set, "every queued frame served")
    finally:
        camera.stop()
    assert [s.raw for s in scans] == ["I-1001", "I-1001"]
    assert all(s.source == "camera" for s in scans)


def test_decodes_only_the_y_plane_even_with_a_padded_stride():
    config = camera_config()
    camera, _ = make_camera(config, [FakePicamera2()], decoder=FrameDecoder.from_config(config.camera))
    scans, submit = collect()
    camera._submit = submit
    padded = np.full((SIZE[1] * 3 // 2, SIZE[0] + 64), 255, dtype=np.uint8)
    padded[:SIZE[1], :SIZE[0]] = scene(fitted_code("O-2001", SIZE), SIZE)
    assert camera.luma(padded).shape == (SIZE[1], SIZE[0])
    assert camera.process(padded, time.monotonic()) == ["O-2001"]


def test_unchanged_frames_are_not_decoded_again():
    camera, _ = make_camera(camera_config(change_threshold=2.0), [FakePicamera2()])
    scans, submit = collect()
    camera._submit = submit
    base = frame_of("I-1001")
    rng = np.random.default_rng(1)
    for _ in range(10):  # sensor noise of +-1 level is not a change
        noisy = np.clip(base.astype(np.int16) + rng.integers(-1, 2, base.shape), 0, 255).astype(np.uint8)
        camera.process(noisy, time.monotonic())
    assert camera.stats.decoded == STILL_DECODES  # once per polarity of the stream decoder
    assert camera.stats.unchanged == 10 - STILL_DECODES
    camera.process(frame_of(None), time.monotonic())  # the card is taken away: a real change
    assert camera.stats.decoded == STILL_DECODES + 1
    assert [s.raw for s in scans] == ["I-1001"]


class FlakyDecoder(FrameDecoder):
    """Finds nothing in its first `misses` frames, like a camera whose first frames of a card are blurred."""

    def __init__(self, *args, misses: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.misses = misses

    def decode(self, frame):
        if self.misses:
            self.misses -= 1
            return []
        return super().decode(frame)


def test_a_still_code_missed_at_first_is_read_on_the_refresh():
    config = camera_config()
    flaky = FlakyDecoder(config.camera.formats, misses=STILL_DECODES + 1)
    camera, _ = make_camera(config, [FakePicamera2()], decoder=flaky)
    scans, submit = collect()
    camera._submit = submit
    frame = frame_of("I-1001")
    started = time.monotonic()
    while not scans and time.monotonic() - started < 3 * REFRESH_S:
        camera.process(frame, time.monotonic())
        time.sleep(1 / 30)
    assert [s.raw for s in scans] == ["I-1001"]
    assert camera.stats.unchanged > 0  # still frames in between were skipped, not all decoded


def test_change_detector_threshold():
    detector = ChangeDetector(5.0)
    gray = np.zeros((80, 80), dtype=np.uint8)
    assert detector.changed(gray)
    assert not detector.changed(gray + 4)
    assert detector.changed(gray + 6)


def test_debouncer_forgets_a_code_only_after_it_was_gone_long_enough():
    d = Debouncer(1.0)
    assert d.fresh(["A"], 0.0) == ["A"]
    assert d.fresh(["A"], 0.5) == []
    assert d.fresh([], 1.0) == []
    assert d.fresh(["A", "B"], 1.4) == ["B"]  # A was last seen at 0.5: gone 0.9 s only
    assert d.fresh([], 3.0) == []
    assert d.fresh(["A", "A"], 3.1) == ["A"]


class SlowDecoder(FrameDecoder):
    def decode(self, frame):
        time.sleep(0.05)
        return super().decode(frame)


def test_newest_frame_wins_when_decoding_is_slow():
    config = camera_config()
    camera, _ = make_camera(config, [FakePicamera2()], decoder=SlowDecoder(config.camera.formats))
    scans, submit = collect()
    camera._submit = submit
    thread = threading.Thread(target=camera._decode_loop, daemon=True)
    thread.start()
    try:
        codes = [f"I-{1000 + i}" for i in range(8)]
        frames = [frame_of(code) for code in codes]
        for frame in frames:
            camera.offer(frame, time.monotonic())
            time.sleep(0.005)
        wait_for(lambda: scans and scans[-1].raw == codes[-1], "the newest frame decoded")
    finally:
        camera._stop.set()
        thread.join(2)
    assert camera.stats.dropped >= 4
    assert len(scans) < len(codes)  # frames were dropped, not queued
    assert camera.stats.captured == len(codes)


def test_roi_crops_before_decoding():
    w, h = SIZE
    gray = np.full((h, w), 170, dtype=np.uint8)
    code = fitted_code("I-1001", (w // 2, h))  # placed in the right half of the frame
    ch, cw = code.shape
    top, left = (h - ch) // 2, w // 2 + (w // 2 - cw) // 2
    gray[top:top + ch, left:left + cw] = code
    frame = yuv420(gray)
    for roi, expected in (([0.0, 0.0, 0.5, 1.0], []), ([0.5, 0.0, 0.5, 1.0], ["I-1001"])):
        config = camera_config(roi=roi)
        camera, _ = make_camera(config, [FakePicamera2()], decoder=FrameDecoder.from_config(config.camera))
        camera._submit = lambda scan: None
        assert camera.process(frame, time.monotonic()) == expected


def test_a_failing_camera_is_a_fault_until_it_comes_back(caplog):
    faults = Faults()
    broken = FakePicamera2([frame_of(None), RuntimeError("Camera frontend has timed out!")])
    unplugged = FakePicamera2(fail_on_open=RuntimeError("Failed to acquire camera"))
    # 20 frames (0.1 s) in view, not 3: the decoder drops frames it has no time for, and a stream decoder
    # reads a dark-on-light code on every other frame, so a loaded machine could decode none of 3 upright
    good = FakePicamera2([frame_of("I-1002")] * 20)
    camera, opened = make_camera(camera_config(), [broken, unplugged, unplugged, good], faults=faults)
    seen_faults = []
    faults.subscribe(lambda name, message: seen_faults.append((name, message)))
    scans, submit = collect()
    camera.start(submit)
    try:
        wait_for(good.served.is_set, "the good camera's frames served")
    finally:
        camera.stop()
    assert seen_faults[0][0] == "camera" and "timed out" in seen_faults[0][1]
    assert "camera" not in faults.active()
    assert [s.raw for s in scans] == ["I-1002"]
    assert broken.closed and unplugged.closed
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "hardware.camera"]
    assert len(errors) == 1  # logged once, not on every retry


def test_simulated_camera_cycles_codes_and_blank_scene():
    fake_now = [0.0]
    cam = SimulatedPicamera2(["I-1001", "O-2001"], show_s=1.5, blank_s=1.5, clock=lambda: fake_now[0], paced=False)
    cam.configure(cam.create_video_configuration(lores={"size": SIZE, "format": "YUV420"}))
    cam.start()
    decoder = FrameDecoder()
    seen = []
    for t in (0.1, 1.6, 3.1, 4.6, 6.1):
        fake_now[0] = t
        frame = cam.capture_array("lores")
        assert frame.shape == (SIZE[1] * 3 // 2, SIZE[0])
        seen.append([f.text for f in decoder.decode(frame[:SIZE[1]])])
    assert seen == [["I-1001"], [], ["O-2001"], [], ["I-1001"]]


def test_simulated_camera_refuses_a_non_yuv_lores_stream():
    cam = SimulatedPicamera2(["I-1001"])
    with pytest.raises(RuntimeError, match="YUV"):
        cam.configure(cam.create_video_configuration(lores={"size": SIZE, "format": "RGB888"}))
