"""The fleet view: every gate of the venue as the broker's retained status and heartbeat messages tell it."""

from __future__ import annotations

import os
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from ..errors import KioskError
from . import messages
from .settings import VenueSettings, topic_level_problem


def collect(settings: VenueSettings, *, wait_s: float = 3.0, quiet_s: float = 0.3) -> dict[str, dict[str, Any]]:
    """Connect with a throw-away session, take the retained messages, disconnect. Gate -> what we know."""
    gates: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    subscribed = threading.Event()
    last = [time.monotonic()]
    failure: list[str] = []

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            failure.append(str(reason))
            subscribed.set()
            return
        base = messages.root(settings.venue)
        client.subscribe([(f"{base}/+/status", 1), (f"{base}/+/heartbeat", 1)])

    def on_subscribe(*_args: Any) -> None:
        last[0] = time.monotonic()
        subscribed.set()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        where = messages.split_topic(settings.venue, message.topic)
        if where is None or topic_level_problem(where[0]) or not message.payload:
            return
        gate, kind = where
        try:
            with lock:
                entry = gates.setdefault(gate, {"gate": gate, "online": None})
                if kind == "status":
                    entry["online"] = messages.parse_status(message.payload)
                elif kind == "heartbeat":
                    entry.update(messages.parse_heartbeat(message.payload, gate), online=entry["online"])
        except messages.BadMessage:
            return  # the fleet view shows what it can read; the kiosks log bad messages
        last[0] = time.monotonic()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"kiosk-fleet-{os.getpid()}", clean_session=True)
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect(settings.host, settings.port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        raise KioskError(f"cannot reach the venue broker {settings.url} ({exc})") from None
    client.loop_start()
    try:
        if not subscribed.wait(wait_s) or failure:
            raise KioskError(f"the venue broker {settings.url} did not let us in "
                             f"({failure[0] if failure else 'no answer'}); check venue.username and password_file")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and time.monotonic() - last[0] < quiet_s:
            time.sleep(0.05)  # retained messages come right after the subscription; stop once they stop
    finally:
        messages.disconnect(client)
    return gates


def occupancy(gates: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Per zone, the figure from the freshest heartbeat that reports it (converged gates agree)."""
    best: dict[str, tuple[str, int]] = {}
    for entry in gates.values():
        for zone, inside in (entry.get("occupancy") or {}).items():
            if zone not in best or entry.get("at", "") > best[zone][0]:
                best[zone] = (entry.get("at", ""), inside)
    return {zone: inside for zone, (_at, inside) in sorted(best.items())}
