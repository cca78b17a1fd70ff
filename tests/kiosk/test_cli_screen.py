import io
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402
import pytest  # noqa: E402

from kiosk.cli import main  # noqa: E402
from kiosk.config import Config, validate  # noqa: E402
from kiosk.display import verify_pin  # noqa: E402
from kiosk.errors import ConfigError  # noqa: E402


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch, tmp_path):
    monkeypatch.setenv("KIOSK_CONFIG", str(tmp_path / "kiosk.toml"))
    (tmp_path / "kiosk.toml").write_text('[gate]\nname = "Front Door"\n')


@pytest.mark.parametrize("verdict,size,colour", [("admit", "480x320", (27, 133, 60)),
                                                 ("card_revoked", "1920x1080", (198, 40, 40)),
                                                 ("staff", "800x480", None)])
def test_screenshot_writes_the_screen_as_a_png(tmp_path, capsys, verdict, size, colour):
    out = tmp_path / f"{verdict}.png"
    assert main(["screenshot", "--verdict", verdict, "--locale", "nl", "--size", size, "--out", str(out)]) == 0
    image = pygame.image.load(str(out))
    assert f"{image.get_width()}x{image.get_height()}" == size
    if colour:
        assert tuple(image.get_at((3, 3)))[:3] == colour
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--size", "320x200"], ["--size", "big"], ["--verdict", "nope"]])
def test_screenshot_refuses_bad_arguments(tmp_path, capsys, args):
    base = {"--verdict": "admit", "--size": "800x480"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    with pytest.raises(SystemExit) as exc:
        main(["screenshot", *[x for kv in base.items() for x in kv], "--out", str(tmp_path / "x.png")])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_screenshot_to_an_unwritable_place_is_a_one_line_error(tmp_path, capsys):
    assert main(["screenshot", "--verdict", "idle", "--out", str(tmp_path / "missing" / "x.png")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_hash_pin_prints_a_hash_that_verifies(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("135790\n"))
    assert main(["hash-pin"]) == 0
    value = capsys.readouterr().out.strip()
    assert verify_pin("135790", value) and not verify_pin("135791", value)
    # and the config accepts it, while rejecting anything else
    Config(validate({"staff": {"pin_hash": value}}, "k.toml"), "k.toml")
    with pytest.raises(ConfigError, match="staff.pin_hash: is not a PIN hash; make one with `kiosk hash-pin`"):
        validate({"staff": {"pin_hash": "135790"}}, "k.toml")


def test_hash_pin_refuses_a_pin_that_is_not_4_to_8_digits(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("12ab\n"))
    assert main(["hash-pin"]) == 2
    assert "4 to 8 digits" in capsys.readouterr().err


def test_screenshot_sizes_text_for_the_configured_panel_diagonal(tmp_path, monkeypatch):
    """screen.diagonal_in: the same 800x480 on a 10" panel needs fewer pixels for 25 mm than on a 7" one."""
    heights = {}
    for diagonal in (7, 10):
        config = tmp_path / f"k{diagonal}.toml"
        config.write_text(f'[gate]\nname = "Front Door"\n[screen]\ndiagonal_in = {diagonal}\n')
        monkeypatch.setenv("KIOSK_CONFIG", str(config))
        out = tmp_path / f"{diagonal}.png"
        assert main(["screenshot", "--verdict", "card_revoked", "--out", str(out)]) == 0
        image = pygame.image.load(str(out))
        red = image.get_at((3, 3))
        rows = [y for y in range(image.get_height() // 2) if any(image.get_at((x, y)) != red for x in range(0, 800, 2))]
        heights[diagonal] = len(rows)
    assert heights[7] > heights[10] > 0


def test_a_bad_diagonal_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="screen.diagonal_in"):
        validate({"screen": {"diagonal_in": 0}}, "k.toml")


def test_the_contact_sheet_holds_every_verdict_in_every_language(tmp_path, capsys):
    from kiosk.cli.screen import demo_decisions
    from kiosk.display import describe
    from kiosk.i18n import LOCALES, Messages
    from kiosk.model import Verdict
    from hardware.screen_render import TONES
    from datetime import datetime

    out = tmp_path / "all.png"
    assert main(["screenshot", "--verdict", "all", "--size", "480x320", "--out", str(out)]) == 0
    assert f"{len(Verdict)} verdicts x {len(LOCALES)} languages" in capsys.readouterr().out
    sheet = pygame.image.load(str(out))
    tile, label, gap = (240, 160), 18, 6
    decisions = demo_decisions(datetime.now().astimezone())
    for i, verdict in enumerate(Verdict):
        tone = describe(decisions[verdict], Messages("en")).tone
        for j in range(len(LOCALES)):
            x = gap + ((i % 2) * len(LOCALES) + j) * (tile[0] + gap)
            y = gap + (i // 2) * (tile[1] + label + gap) + label
            assert tuple(sheet.get_at((x + 2, y + 2)))[:3] == TONES[tone][0], (verdict, j)


def test_screenshot_with_a_stand_in_photo_draws_it_beside_the_name(tmp_path):
    plain, photo = tmp_path / "plain.png", tmp_path / "photo.png"
    assert main(["screenshot", "--verdict", "admit", "--out", str(plain)]) == 0
    assert main(["screenshot", "--verdict", "admit", "--photo", "--out", str(photo)]) == 0
    a, b = pygame.image.load(str(plain)), pygame.image.load(str(photo))
    right = [(x, y) for x in range(700, 790, 5) for y in range(250, 400, 5)]  # where the photo stands
    assert sum(a.get_at(p) != b.get_at(p) for p in right) > len(right) * 0.8


@pytest.mark.parametrize("hour, minute", [(0, 0), (0, 3), (0, 13), (23, 59)])
def test_the_demo_yields_every_verdict_also_just_after_midnight(hour, minute):
    # the zone's count starts again at midnight: the demo's "inside" and "full" events must be of today then too
    from datetime import datetime, timezone

    from kiosk.cli.screen import demo_decisions
    from kiosk.model import Verdict

    decisions = demo_decisions(datetime(2026, 11, 29, hour, minute, tzinfo=timezone.utc))
    assert {d.verdict for d in decisions.values()} == set(Verdict)
