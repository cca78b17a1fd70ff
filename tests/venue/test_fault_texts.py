"""The venue link's faults reach the screen in its language (kiosk.i18n), like every other fault."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kiosk.display import fault_text
from kiosk.i18n import CATALOGUE, Messages
from kiosk.journal import Journal
from kiosk.ports import Faults
from kiosk.venue.link import AUTH_FAULT, DOWN_FAULT, VenueLink
from kiosk.venue.settings import VenueSettings
from kiosk.venue.store import PeerStore

from .conftest import MOSQUITTO, Broker, wait_for


def link_to(port: int, folder: Path, faults: Faults, *, username: str = "", password: str = "") -> VenueLink:
    settings = VenueSettings(host="127.0.0.1", port=port, tls=False, ca_file="", username=username,
                             password=password, venue="venue", gate="front", zone="main", direction="in",
                             heartbeat_s=1, home_assistant=False, remote_open=False)
    Journal(folder / "journal.sqlite").close()
    link = VenueLink(settings, journal_path=folder / "journal.sqlite", store=PeerStore(folder / "venue.sqlite"),
                     state={}, status=lambda: {"unreported": 0, "faults": {}, "occupancy": {}},
                     clock=lambda: datetime.now(timezone.utc), faults=faults)
    link.start()
    return link


def shown(faults: Faults, locale: str) -> list[str]:
    return [fault_text(name, message, Messages(locale)) for name, message in sorted(faults.active().items())]


def test_a_link_that_stays_down_shows_its_fault_in_english_and_dutch(broker, tmp_path: Path):
    broker.kill()  # the gate starts while its broker is away
    faults = Faults()
    link = link_to(broker.port, tmp_path, faults)
    try:
        wait_for(lambda: DOWN_FAULT in faults.active(), "the venue fault")
        assert shown(faults, "nl") == [CATALOGUE["nl"]["fault.venue_down"]]
        assert shown(faults, "en") == [CATALOGUE["en"]["fault.venue_down"]]
        assert "Venue link to" in faults.active()[DOWN_FAULT]  # status and the fleet keep the details
        broker.start()
        wait_for(lambda: not faults.active(), "the fault to clear once the broker is back")
    finally:
        link.stop()


def test_a_broker_that_refuses_the_gate_shows_its_own_fault_in_english_and_dutch(tmp_path: Path):
    if MOSQUITTO is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does it)")
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "front", "right"], check=True)
    broker = Broker(tmp_path / "broker")
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
                           + f"password_file {passwd}\n")
    broker.start()
    faults = Faults()
    link = link_to(broker.port, tmp_path, faults, username="front", password="wrong")
    try:
        wait_for(lambda: AUTH_FAULT in faults.active(), "the refused fault")
        assert DOWN_FAULT not in faults.active()  # one fault, the one that says what to fix
        assert shown(faults, "nl") == [CATALOGUE["nl"]["fault.venue_refused"]]
        assert shown(faults, "en") == [CATALOGUE["en"]["fault.venue_refused"]]
    finally:
        link.stop()
        broker.kill()
