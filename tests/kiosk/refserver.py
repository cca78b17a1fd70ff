"""The reference upstream on 127.0.0.1 with the demo data, for the kiosk tests that sync and upload."""

from __future__ import annotations

from datetime import date

import pytest

from kiosk import demo
from kiosk.upstream.reference import RefStore, RefUpstream

TOKEN = "t0ken-for-tests"


@pytest.fixture
def ref(tmp_path):
    store = RefStore(tmp_path / "upstream.sqlite")
    store.replace(demo.records(date.today()))
    server = RefUpstream(store, TOKEN).start()
    yield server
    server.stop()
