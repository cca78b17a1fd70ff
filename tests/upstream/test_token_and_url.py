"""The token file as editors write it, tokens that cannot be sent, and upstream URLs that leak or travel in clear."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import doctor
from kiosk.app import App
from kiosk.config import redact_url
from kiosk.errors import ConfigError
from kiosk import compose

from .conftest import TOKEN, kiosk_config, verdict, write_token

@pytest.fixture
def app_with(tmp_path):
    """A kiosk with its own token file (the `make_app` fixture shares one)."""
    apps = []

    def make(url: str, token_file: Path) -> App:
        apps.append(App(kiosk_config(tmp_path / f"state{len(apps)}", url, token_file)))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


KIOSK = [sys.executable, "-c", "import sys; from kiosk.cli import main; sys.exit(main())"]


@pytest.mark.parametrize("text", ["\ufeff" + TOKEN + "\n", TOKEN + "  \t\r\n", "\ufeff" + TOKEN + " \r\n\r\n"])
def test_a_token_file_with_a_bom_or_trailing_whitespace_is_read_as_the_token(app_with, ref, tmp_path, text):
    token_file = tmp_path / "token-as-edited"
    token_file.write_bytes(text.encode("utf-8"))
    token_file.chmod(0o600)
    app = app_with(ref.url, token_file)
    up = compose.upstream(app)
    try:
        assert up.sync_once().kind == "full"  # the reference upstream compares the token exactly
        assert ref.last_headers["snapshot"]["Authorization"] == f"Bearer {TOKEN}"
        assert verdict(app, "I-1001") == "admit"
    finally:
        up.stop()


@pytest.mark.parametrize("token, where",
                         [("t\u00f6ken", "U+00F6 at position 2"), ("tok\x07en", "U+0007 at position 4")])
def test_a_token_that_cannot_travel_in_a_header_is_a_config_error(app_with, ref, tmp_path, token, where):
    token_file = write_token(tmp_path / "token-bad", token)
    app = app_with(ref.url, token_file)
    with pytest.raises(ConfigError, match=f"upstream.token_file: .*token-bad holds a character .*{re.escape(where)}"):
        compose.upstream(app)
    assert doctor.check_token(str(token_file), "https://hub.example.org").status == doctor.FAIL


def test_kiosk_sync_with_a_non_ascii_token_says_so_in_one_line(tmp_path, ref):
    token_file = write_token(tmp_path / "token", "t\u00f6ken")
    config = tmp_path / "kiosk.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n'
                      f'[upstream]\nurl = "{ref.url}"\ntoken_file = "{token_file}"\n')
    done = subprocess.run([*KIOSK, "sync", "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("kiosk: config error:") and "U+00F6" in line


@pytest.mark.parametrize("url, masked", [
    ("https://user:pa55@hub.example.org/kiosk/v1", "https://********@hub.example.org/kiosk/v1"),
    ("https://only-a-token@hub.example.org", "https://********@hub.example.org"),
    ("http://hub.example.org/a@b", "http://hub.example.org/a@b"),  # an @ in the path is no credential
    ("rfc2217://u:p@10.0.0.5:2217", "rfc2217://********@10.0.0.5:2217"),
    ("https://kiosk:p@ss@w0rd@hub.example.org/v1", "https://********@hub.example.org/v1"),  # @ in the password
    ("https://u:p@ss@hub.example.org/a@b?x=@", "https://********@hub.example.org/a@b?x=@"),
    ("/dev/ttyACM0", "/dev/ttyACM0"),
    ("https://hub.example.org/v1?token=s3cr3t", "https://hub.example.org/v1?token=********"),
    ("https://hub.example.org/v1?venue=7&API_KEY=abc&x=1#t", "https://hub.example.org/v1?venue=7&API_KEY=********&x=1#t"),
    ("https://hub.example.org/v1?access_token=a;sig=b", "https://hub.example.org/v1?access_token=********;sig=********"),
    ("https://hub.example.org/v1?monkey=1&tokens=", "https://hub.example.org/v1?monkey=********&tokens=********"),
    ("https://hub.example.org/v1?venue=keyworth", "https://hub.example.org/v1?venue=keyworth"),
])
def test_redact_url(url, masked):
    assert redact_url(url) == masked


def test_credentials_in_the_url_never_replace_the_bearer_token(make_app, ref):
    app = make_app(url=ref.url.replace("http://", "http://someone:secret@"))
    up = compose.upstream(app)
    try:
        up.sync_once()
    finally:
        up.stop()
    assert ref.last_headers["snapshot"]["Authorization"] == f"Bearer {TOKEN}"
    assert "secret" not in app.snapshot.meta()["upstream"]


@pytest.mark.parametrize("url, warned", [
    ("http://192.0.2.10/kiosk/v1", "plain http:// to 192.0.2.10"),
    ("http://hub.example.org/kiosk/v1", "plain http:// to hub.example.org"),
    ("http://u:p@hub.example.org/kiosk/v1", "holds a user name or password"),
    ("http://127.0.0.1:8765/kiosk/v1", None), ("http://localhost:8765/kiosk/v1", None),
    ("http://[::1]:8765/kiosk/v1", None), ("https://hub.example.org/kiosk/v1", None),
])
def test_risky_upstream_urls_are_warned_about_at_start_and_by_doctor(tmp_path, token_file, caplog, url, warned):
    config = kiosk_config(tmp_path / "state", url, token_file)
    app = App(config)
    try:
        with caplog.at_level(logging.WARNING, logger="kiosk.upstream"):
            compose.upstream(app).stop()  # builds the clients, connects to nothing
    finally:
        app.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    check = doctor.check_upstream_url(config)
    if warned is None:
        assert warnings == [] and check is None
    else:
        assert any(warned in w for w in warnings)
        assert check.status == doctor.WARN and warned in check.message
        assert "p@" not in check.message
