"""A real reference upstream on 127.0.0.1 and kiosks (App) pointed at it."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Callable

import pytest

from kiosk import demo
from kiosk.app import App
from kiosk.config import Config, validate
from kiosk.ports import Scan
from kiosk.upstream.reference import RefStore, RefUpstream

TOKEN = "t0ken-for-tests"


def write_token(path: Path, token: str = TOKEN, mode: int = 0o600) -> Path:
    path.write_text(token + "\n")
    os.chmod(path, mode)
    return path


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return write_token(tmp_path / "token")


@pytest.fixture
def ref(tmp_path: Path):
    store = RefStore(tmp_path / "upstream.sqlite")
    store.replace(demo.records(date.today()))
    server = RefUpstream(store, TOKEN, slow_s=1.5).start()
    yield server
    server.stop()


def kiosk_config(state_dir: Path, url: str, token_file: Path, **upstream: Any) -> Config:
    values = {"url": url, "token_file": str(token_file), "timeout_s": 0.5, "sync_interval_s": 0.2,
              "heartbeat_s": 0.3, "retry_max_s": 0.4, **upstream}
    return Config(validate({"state_dir": str(state_dir), "device_id": "test-kiosk", "upstream": values},
                           "test.toml"), "test.toml")


@pytest.fixture
def make_app(tmp_path: Path, ref: RefUpstream, token_file: Path):
    apps: list[App] = []

    def make(name: str = "kiosk", url: str | None = None, **upstream: Any) -> App:
        config = kiosk_config(tmp_path / name, url or ref.url, token_file, **upstream)
        app = App(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return make_app()


def verdict(app: App, text: str) -> str:
    """Decide (and journal) one scan the way the gate does."""
    return app.gate.handle(Scan(text, "stdin")).verdict.value
