"""The kiosk's one config file: schema, defaults, loading and validation.

Only the CLI (`kiosk/cli/common.py`) and `kiosk doctor` call `load`; everything else is
handed the sections it needs. Every key is documented in `config/kiosk.toml`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError
from .urls import url_problem

SYSTEM_CONFIG = "/etc/kiosk/kiosk.toml"
BUILTIN = "<built-in defaults>"
SECRET_KEYS = {"staff.pin_hash"}


@dataclass(frozen=True)
class Key:
    default: Any
    types: tuple[type, ...]
    check: Callable[[Any], str | None] | None = None  # returns a problem, or None when fine
    item: type | None = None  # for lists: the type of each element


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(repr(c) for c in choices)}"


def _at_least(low: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"must be at least {low}"


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _size(v: Any) -> str | None:
    if len(v) != 2 or any(not isinstance(n, int) or n <= 0 for n in v):
        return "must be [width, height] in pixels, e.g. [640, 480]"
    return None


def _roi(v: Any) -> str | None:
    if not v:
        return None
    if len(v) != 4 or any(not isinstance(n, (int, float)) or not 0 <= n <= 1 for n in v):
        return "must be [] or [x, y, width, height] as fractions of the frame between 0 and 1"
    if v[0] + v[2] > 1 or v[1] + v[3] > 1 or v[2] <= 0 or v[3] <= 0:
        return "must lie inside the frame (x + width <= 1, y + height <= 1)"
    return None


def _patterns(v: Any) -> str | None:
    for pattern in v:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            return f"{pattern!r} is not a valid regular expression ({exc})"
        if compiled.groups != 1:
            return f"{pattern!r} must have exactly one capturing group, the id to extract"
    return None


def _groups(v: Any) -> str | None:
    if isinstance(v, str):
        return None if v == "all" else 'must be "all" or a list of group ids, e.g. ["members"]'
    if not all(isinstance(g, str) and g.strip() for g in v):
        return "must be a list of non-empty group ids"
    return None


def _formats(v: Any) -> str | None:
    import zxingcpp

    for name in v:
        try:
            zxingcpp.barcode_format_from_str(name)
        except Exception:
            return f"{name!r} is not a zxing-cpp format name (e.g. QRCode, MicroQRCode, Code128, DataMatrix, EAN13)"
    return None if v else "must name at least one format"


def _sources(v: Any) -> str | None:
    for s in v:
        if s not in ("camera", "serial", "hid"):
            return f"{s!r} is not a source; use any of 'camera', 'serial', 'hid'"
    return None


def _http_url(v: str) -> str | None:
    if not v:
        return None
    return url_problem(v, ("http", "https"), 'must be an http(s) URL with a host, e.g. "https://hub.example.org/kiosk/v1"')[0]


def _pin(v: Any) -> str | None:
    if isinstance(v, bool):
        return "must be a GPIO pin such as 17 or \"GPIO17\", or \"\" when not fitted"
    return None


def _pin_hash(v: str) -> str | None:
    from .display import pin_hash_problem

    return pin_hash_problem(v)


def _pass_keys(v: list[str]) -> str | None:
    from .pass_keys import keys_problem

    return keys_problem(v)


def _venue_section() -> dict[str, Key]:
    """[venue]: the MQTT link between the gates of one venue (kiosk/venue, docs/venue.md)."""
    from .venue.settings import mqtt_url_problem, topic_level_problem

    return {
        "broker": Key("", STR, mqtt_url_problem),
        "ca_file": Key("", STR),
        "username": Key("", STR),
        "password_file": Key("", STR),
        "id": Key("venue", STR, topic_level_problem),  # this gate's zone and direction: [rules] zone, direction
        "heartbeat_s": Key(30, NUM, _positive),
        "home_assistant": Key(False, BOOL),
        "remote_open": Key(False, BOOL),
    }


STR, INT, NUM, BOOL, LIST = (str,), (int,), (int, float), (bool,), (list,)


def _rule(parse: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    """A [rules] key's check: kiosk.access's own parser, its message as the problem."""
    def check(value: Any) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None
    return check


def _rules_section() -> dict[str, Key]:
    from . import access

    return {
        "hours": Key([], LIST, _rule(access.parse_hours), item=str),
        "closed": Key([], LIST, _rule(access.parse_dates), item=str),
        "limits": Key([], LIST, _rule(access.parse_limits), item=str),
        "min_interval_min": Key(0, NUM, _at_least(0)),
        "day_starts": Key("00:00", STR, _rule(access.parse_clock)),
        "zone": Key("main", STR, lambda v: None if v.strip() else "must not be empty"),
        "capacity": Key(0, INT, _at_least(0)),
        "occupancy_reset": Key("", STR, lambda v: _rule(access.parse_clock)(v) if v else None),
        "direction": Key("in", STR, _one_of(*access.DIRECTIONS)),
        "passback": Key(False, BOOL),
        "passback_min": Key(0, NUM, _at_least(0)),
        "guests": Key([], LIST, _rule(access.parse_guests), item=str),
        "guest_key": Key("", STR),
    }


def _pin_section(doc_default: str = "") -> dict[str, Key]:
    return {"pin": Key(doc_default, (str, int), _pin), "active_high": Key(True, BOOL)}


SCHEMA: dict[str, dict[str, Key]] = {
    "": {
        "state_dir": Key("", STR),
        "device_id": Key("", STR),
        "log_level": Key("info", STR, _one_of("debug", "info", "warning", "error")),
    },
    "gate": {
        "id": Key("lounge-1", STR, lambda v: None if v.strip() else "must not be empty"),
        "name": Key("Members' Lounge", STR),
        "mode": Key("verify_groups", STR, _one_of("verify_groups", "any_customer")),
        "groups": Key(["members"], (list, str), _groups),
        "repeat_window_s": Key(5, NUM, _at_least(0)),
        "max_snapshot_age_h": Key(72, NUM, _positive),
        "stale_policy": Key("warn", STR, _one_of("warn", "deny")),
        "id_patterns": Key([], LIST, _patterns, item=str),
        "sources": Key(["camera"], LIST, _sources, item=str),
        "timezone": Key("", STR),
    },
    "camera": {
        "backend": Key("picamera2", STR, _one_of("picamera2", "simulated")),
        "main_size": Key([1280, 720], LIST, _size),
        "lores_size": Key([640, 480], LIST, _size),
        "framerate": Key(15, NUM, _positive),
        "autofocus": Key("continuous", STR, _one_of("continuous", "auto", "manual", "off")),
        "formats": Key(["QRCode", "MicroQRCode", "Code128"], LIST, _formats, item=str),
        "roi": Key([], LIST, _roi),
        "change_threshold": Key(2.0, NUM, _at_least(0)),
        "debounce_s": Key(1.0, NUM, _positive),
        "try_downscale": Key(True, BOOL),
        "try_invert": Key(True, BOOL),
    },
    "serial": {
        "url": Key("/dev/ttyACM0", STR),
        "baudrate": Key(9600, INT, _positive),
        "terminator": Key("CR", STR, lambda v: None if v in ("CR", "LF", "CRLF") or re.fullmatch(r"0x[0-9a-fA-F]{2}", v)
                          else 'must be "CR", "LF", "CRLF" or one byte as "0x03"'),
        "prefix": Key("", STR),
        "suffix": Key("", STR),
        "reconnect_max_s": Key(30, NUM, _positive),
    },
    "hid": {
        "device": Key("", STR),
        "layout": Key("us", STR),
        "grab": Key(True, BOOL),
        "reconnect_max_s": Key(30, NUM, _positive),
    },
    "gpio": {
        "pin_factory": Key("lgpio", STR, _one_of("lgpio", "rpigpio", "pigpio", "native", "mock")),
        "lights": Key("separate", STR, _one_of("separate", "rgb")),
    },
    "gpio.green": _pin_section(),
    "gpio.red": _pin_section(),
    "gpio.amber": _pin_section(),
    "gpio.buzzer": _pin_section(),
    "gpio.relay": _pin_section(),
    "gpio.exit_button": {"pin": Key("", (str, int), _pin), "pull_up": Key(True, BOOL)},
    "gpio.door": {"pin": Key("", (str, int), _pin), "pull_up": Key(True, BOOL)},
    "gpio.passage": {"pin": Key("", (str, int), _pin), "pull_up": Key(True, BOOL)},
    "relay": {"pulse_ms": Key(1000, INT, _between(10, 30000))},
    "door": {"held_open_s": Key(30, NUM, _positive), "grace_s": Key(3, NUM, _at_least(0))},
    "passage": {"timeout_s": Key(10, NUM, _positive)},
    "signals": {
        "admit_light_s": Key(2, NUM, _positive),
        "deny_light_s": Key(3, NUM, _positive),
        "admit_beeps": Key(1, INT, _between(0, 10)),
        "deny_beeps": Key(2, INT, _between(0, 10)),
        "beep_s": Key(0.1, NUM, _positive),
        "fault_blink_s": Key(0.5, NUM, _positive),
    },
    "screen": {
        "enabled": Key("auto", STR, _one_of("auto", "on", "off")),
        "locale": Key("en", STR, _one_of("en", "nl")),
        "result_s": Key(3, NUM, _positive),
        "fullscreen": Key(True, BOOL),
        "size": Key([], LIST, lambda v: None if not v else _size(v)),
        "fps": Key(30, INT, _between(1, 120)),
        "diagonal_in": Key(7, NUM, _between(2, 100)),
        "show_photo": Key(False, BOOL),
    },
    "staff": {
        "pin_hash": Key("", STR, lambda v: _pin_hash(v) if v else None),
        "long_press_s": Key(2, NUM, _positive),
    },
    "upstream": {
        "url": Key("", STR, _http_url),
        "token_file": Key("", STR),
        "ca_file": Key("", STR),
        "sync_interval_s": Key(60, NUM, _positive),
        "timeout_s": Key(5, NUM, _positive),
        "heartbeat_s": Key(60, NUM, _positive),
        "retry_max_s": Key(300, NUM, _positive),
        "sync_deadline_s": Key(600, NUM, _positive),
        "max_snapshot_mb": Key(1024, NUM, _positive),
        "max_records": Key(5_000_000, INT, _positive),
        "max_shrink": Key(0.5, NUM, _between(0, 1)),
        # "process": scans are reported by a child process of `kiosk run` (kiosk/upstream/reporter.py), free of
        # the scans' interpreter lock; "thread": by a thread of `kiosk run` itself (one process less).
        "reporter": Key("process", STR, _one_of("process", "thread")),
    },
    "passes": {  # signed member passes (kiosk/passes.py, docs/passes.md)
        "keys": Key([], LIST, _pass_keys, item=str),
        "rotation_secret_file": Key("", STR),
        "accept_steps": Key(1, INT, _between(0, 10)),
    },
    "rules": _rules_section(),  # access rules, kiosk/access.py
    "journal": {
        "keep_days": Key(90, INT, _positive),
        "max_events": Key(1_000_000, INT, _at_least(1000)),
        "sync": Key("normal", STR, _one_of("normal", "full")),
    },
    "venue": _venue_section(),
}


class Section:
    """Read-only attribute access to one section's values."""

    def __init__(self, name: str, values: dict[str, Any]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"config section [{self._name}] has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("config is read-only")

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


class Config:
    """The effective config: every section of SCHEMA with defaults filled in."""

    def __init__(self, values: dict[str, dict[str, Any]], source: str):
        self.source = source
        self._values = values

    def section(self, name: str) -> Section:
        return Section(name, self._values[name])

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is None:
            raise AttributeError(name)
        if name in values[""]:
            return values[""][name]
        if name in values:
            return Section(name, values[name])
        raise AttributeError(f"config has no section or key {name!r}")

    def get(self, dotted: str) -> Any:
        section, _, key = dotted.rpartition(".")
        return self._values[section][key]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {s: dict(v) for s, v in self._values.items()}

    def as_data(self) -> dict[str, Any]:
        """The effective values as `validate` takes them (nested tables): to hand to a child process."""
        data: dict[str, Any] = dict(self._values[""])
        for section, keys in self._values.items():
            if section:
                table = data
                for part in section.split("."):
                    table = table.setdefault(part, {})
                table.update(keys)
        return data

    def with_overrides(self, **top: Any) -> "Config":
        values = self.as_dict()
        values[""].update(top)
        return Config(values, self.source)

    @property
    def state_path(self) -> Path:
        return resolve_state_dir(self._values[""]["state_dir"])

    @property
    def device(self) -> str:
        import socket

        return self._values[""]["device_id"] or socket.gethostname()


def defaults() -> dict[str, dict[str, Any]]:
    return {s: {k: _copy(key.default) for k, key in keys.items()} for s, keys in SCHEMA.items()}


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, list) else v


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _flatten(data: dict[str, Any], prefix: str, file: str, out: dict[str, dict[str, Any]]) -> None:
    """Walk TOML tables into (section, key) pairs, rejecting anything the schema doesn't know."""
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            if dotted not in SCHEMA:
                raise ConfigError(file, dotted, f"unknown section [{dotted}]; known sections: "
                                  + ", ".join(s for s in SCHEMA if s))
            _flatten(value, dotted, file, out)
            continue
        section = prefix
        if section not in SCHEMA or key not in SCHEMA[section]:
            known = ", ".join(SCHEMA.get(section, {})) or "none"
            raise ConfigError(file, dotted, f"unknown key; keys allowed here: {known}")
        out.setdefault(section, {})[key] = value


def validate(data: dict[str, Any], file: str) -> dict[str, dict[str, Any]]:
    given: dict[str, dict[str, Any]] = {}
    _flatten(data, "", file, given)
    values = defaults()
    for section, keys in given.items():
        for key, value in keys.items():
            spec = SCHEMA[section][key]
            dotted = f"{section}.{key}" if section else key
            ok_type = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
            if not ok_type:
                raise ConfigError(file, dotted, f"must be {_type_name(spec.types)}, got {value!r}")
            if spec.item is not None and isinstance(value, list):
                bad = next((v for v in value if not isinstance(v, spec.item)), None)
                if bad is not None:
                    raise ConfigError(file, dotted, f"every item must be {_type_name((spec.item,))}, got {bad!r}")
            if spec.check is not None:
                problem = spec.check(value)
                if problem:
                    raise ConfigError(file, dotted, problem)
            values[section][key] = value
    return values


def load_file(path: str | os.PathLike[str]) -> Config:
    file = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(file, "-", "file not found; pass an existing file with --config or $KIOSK_CONFIG") from None
    except PermissionError:
        raise ConfigError(file, "-", "permission denied; make it readable by the kiosk user") from None
    except IsADirectoryError:
        raise ConfigError(file, "-",
                          "is a directory; pass the config file itself, e.g. /etc/kiosk/kiosk.toml") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "-", f"not UTF-8 text (byte {exc.start + 1} is 0x{exc.object[exc.start]:02x}); "
                          "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(file, "-", f"cannot be read ({exc.strerror or exc})") from None
    return Config(validate(data, file), file)


def load(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """`--config FILE`, else `$KIOSK_CONFIG`, else /etc/kiosk/kiosk.toml, else built-in defaults."""
    env = os.environ if env is None else env
    if explicit:
        return load_file(explicit)
    if env.get("KIOSK_CONFIG"):
        return load_file(env["KIOSK_CONFIG"])
    if os.path.exists(SYSTEM_CONFIG):
        return load_file(SYSTEM_CONFIG)
    return Config(defaults(), BUILTIN)


def resolve_state_dir(configured: str) -> Path:
    """The configured dir; else systemd's $STATE_DIRECTORY; else /var/lib/kiosk if writable; else the user's."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    system = Path("/var/lib/kiosk")
    if system.is_dir() and os.access(system, os.W_OK):
        return system
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "kiosk"


# up to the last @ before the path, as URL parsers read it: a password may hold an unescaped @
_URL_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@")


# query parameters that carry a credential by their name (`?token=`, `&api_key=`, `access_token`, `sig`...)
_URL_QUERY_SECRET = re.compile(r"([?&;](?:[\w.-]*(?:token|key|secret|passw(?:or)?d|pwd|auth|sig|signature|"
                               r"credential)[\w.-]*)=)[^&;#]*", re.IGNORECASE)


def redact_url(text: str) -> str:
    """`text` with the credentials of a URL replaced by ********: the user name and password
    (scheme://user:pass@host) and query parameters named like a secret (`?token=...`)."""
    text = _URL_USERINFO.sub(lambda m: m.group(1) + "********@", text, count=1)
    if "://" in text and "?" in text:
        text = _URL_QUERY_SECRET.sub(lambda m: m.group(1) + "********", text)
    return text


def masked(config: Config) -> dict[str, dict[str, Any]]:
    """The effective config for printing: secrets, and credentials inside any URL, masked."""
    out = config.as_dict()
    for keys in out.values():
        for key, value in keys.items():
            if isinstance(value, str):
                keys[key] = redact_url(value)
            elif isinstance(value, list):
                keys[key] = [redact_url(v) if isinstance(v, str) else v for v in value]
    for dotted in SECRET_KEYS:
        section, _, key = dotted.rpartition(".")
        if out[section].get(key):
            out[section][key] = "********"
    return out


def to_toml(values: dict[str, dict[str, Any]]) -> str:
    """Render the effective config as TOML (for `kiosk config`)."""
    lines: list[str] = []
    for section, keys in values.items():
        if section:
            lines.append(f"\n[{section}]")
        for key, value in keys.items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
