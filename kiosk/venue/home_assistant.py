"""Home Assistant MQTT discovery (opt-in, venue.home_assistant): each gate a device with sensors.

Retained config messages under homeassistant/; the sensors read the gate's own retained status and
heartbeat and its event topic, so Home Assistant needs nothing else from the kiosk.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from ..counts import OCCUPANCY_SET
from ..model import Verdict
from . import messages
from .settings import VenueSettings

PREFIX = "homeassistant"
# What the event topic carries: every verdict, staff corrections of the count, and the door alarms
# (hardware/gpio_inputs.py journals them). Home Assistant drops an event whose type is not listed.
EVENT_TYPES = [v.value for v in Verdict] + [OCCUPANCY_SET, "door_forced", "door_held_open"]


def _node(settings: VenueSettings) -> str:
    """Home Assistant's node and object ids allow [a-zA-Z0-9_-] only."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", f"kiosk_{settings.venue}_{settings.gate}")


def discovery(settings: VenueSettings) -> Iterator[tuple[str, bytes]]:
    """(topic, payload) of every discovery config for this gate."""
    node = _node(settings)
    status = messages.topic(settings.venue, settings.gate, "status")
    beat = messages.topic(settings.venue, settings.gate, "heartbeat")
    event = messages.topic(settings.venue, settings.gate, "event")
    device = {"identifiers": [node], "name": f"Gate {settings.gate}", "manufacturer": "gate-kiosk",
              "model": f"{settings.venue} / {settings.zone} / {settings.direction}"}
    available = {"availability_topic": status, "availability_template": "{{ value_json.state }}",
                 "payload_available": "online", "payload_not_available": "offline"}
    zone = json.dumps(settings.zone)
    parts: dict[tuple[str, str], dict[str, Any]] = {
        ("sensor", "last_verdict"): {"name": "Last verdict", "state_topic": event,
                                     "value_template": "{{ value_json.verdict }}", "icon": "mdi:badge-account"},
        ("sensor", "occupancy"): {"name": "Occupancy", "state_topic": beat, "state_class": "measurement",
                                  "value_template": f"{{{{ value_json.occupancy[{zone}] }}}}",
                                  "icon": "mdi:account-group"},
        ("sensor", "snapshot_age"): {"name": "Member list age", "state_topic": beat, "device_class": "duration",
                                     "unit_of_measurement": "s", "value_template": "{{ value_json.snapshot_age_s }}"},
        ("sensor", "unreported"): {"name": "Unreported scans", "state_topic": beat,
                                   "value_template": "{{ value_json.unreported }}"},
        ("binary_sensor", "online"): {"name": "Online", "state_topic": status, "device_class": "connectivity",
                                      "value_template": "{{ value_json.state }}", "payload_on": "online",
                                      "payload_off": "offline"},
        ("event", "scan"): {"name": "Scan", "state_topic": event,
                            "event_types": EVENT_TYPES,
                            "value_template": "{{ {'event_type': value_json.verdict} | to_json }}"},
    }
    if settings.remote_open:
        parts[("button", "open_once")] = {"name": "Open once", "command_topic": messages.topic(
            settings.venue, settings.gate, "open"), "payload_press": '{"v":1,"by":"home-assistant"}',
            "icon": "mdi:door-open"}
    for (component, key), config in parts.items():
        body = {**config, "unique_id": f"{node}_{key}", "object_id": f"{node}_{key}", "device": device}
        if key != "online":
            body.update(available)
        yield f"{PREFIX}/{component}/{node}/{key}/config", json.dumps(body, separators=(",", ":")).encode()
