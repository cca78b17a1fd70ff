"""[venue] settings, checked once: the broker's URL, credentials, and this gate's place in the venue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..urls import url_problem

if TYPE_CHECKING:  # kiosk.config imports this module's checks
    from ..config import Config

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


def mqtt_url_problem(url: str) -> str | None:
    if not url:
        return None
    problem, parts = url_problem(url, DEFAULT_PORTS,
                                 'must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], e.g. "mqtts://broker.lan:8883"')
    if problem is not None or parts is None:
        return problem
    if parts.username or parts.password:
        return "must not hold a user or password: use venue.username and venue.password_file"
    if parts.path not in ("", "/") or parts.query:
        return "must be just the scheme, host and port, e.g. \"mqtt://broker.lan:1883\""
    return None


def topic_level_problem(value: str) -> str | None:
    """Ids become MQTT topic levels: no wildcards, separators or control characters."""
    if not value or not value.strip():
        return "must not be empty"
    if any(c in "+#/" or not c.isprintable() for c in value) or len(value.encode()) > 64:
        return "must be at most 64 bytes of printable text without '/', '+' or '#'"
    return None


@dataclass(frozen=True)
class VenueSettings:
    host: str
    port: int
    tls: bool
    ca_file: str
    username: str
    password: str
    venue: str
    gate: str
    zone: str
    direction: str
    heartbeat_s: float
    home_assistant: bool
    remote_open: bool
    config_file: str = "<config>"
    passage_wait_s: float = 60.0  # how long after an admit its passage may still be journalled (passage.timeout_s)

    @classmethod
    def from_config(cls, config: "Config") -> "VenueSettings | None":
        """None when no broker is configured (the kiosk works alone, as it always did)."""
        v = config.venue
        if not v.broker:
            return None
        if problem := topic_level_problem(config.gate.id):
            raise ConfigError(config.source, "gate.id", f"{problem} (it names this gate on the venue's broker)")
        parts = urlsplit(v.broker)
        password = ""
        if v.password_file:
            from ..upstream.client import read_token

            password = read_token(v.password_file, config.source, key="venue.password_file")
        elif v.username:
            raise ConfigError(config.source, "venue.password_file",
                              "is empty while venue.username is set; name the file holding the broker password")
        if v.ca_file and parts.scheme != "mqtts":
            raise ConfigError(config.source, "venue.ca_file", "is set but venue.broker is not mqtts://; use mqtts://")
        # one place says where a gate stands: the access rules' zone and direction, which its counts use too
        zone, direction = config.rules.zone, config.rules.direction
        if problem := topic_level_problem(zone):
            raise ConfigError(config.source, "rules.zone", f"{problem} (it names the zone on the venue's broker)")
        return cls(host=parts.hostname or "", port=parts.port or DEFAULT_PORTS[parts.scheme],
                   tls=parts.scheme == "mqtts", ca_file=v.ca_file, username=v.username, password=password,
                   venue=v.id, gate=config.gate.id, zone=zone, direction=direction, heartbeat_s=float(v.heartbeat_s),
                   home_assistant=v.home_assistant, remote_open=v.remote_open, config_file=config.source,
                   passage_wait_s=float(config.passage.timeout_s) + 5)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"
