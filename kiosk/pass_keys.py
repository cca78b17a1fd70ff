"""The gate's side of signed passes: its keys and rotation secret (config `[passes]`), the
pass_key and pass_revocation records that bring keys and revocations with the snapshot, and
what `kiosk doctor` says about them. The pass format itself is in kiosk/passes.py.
"""

from __future__ import annotations

import base64
import binascii
import json
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .passes import STEP_S, code_for, issue, private_from_seed, public_bytes, step_of


# -- keys and settings ----------------------------------------------------------------------------

def encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode_key(text: str) -> bytes:
    """A public key as written in config and records: standard base64 of the 32 raw bytes."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"is {len(raw)} bytes, an Ed25519 public key is 32")
    return raw


def key_entry(entry: str) -> tuple[int, bytes]:
    """`"<key id>:<base64 public key>"` from config `passes.keys`. Raises ValueError."""
    ident, sep, key = entry.partition(":")
    if not sep or not ident.strip().isdigit() or not 0 <= int(ident) <= 255:
        raise ValueError(f"{entry[:60]!r} must be \"<key id 0-255>:<base64 public key>\", "
                         "as `kiosk pass keygen` prints")
    try:
        return int(ident), decode_key(key)
    except ValueError as exc:
        raise ValueError(f"key {ident.strip()}: the public key {exc}") from None


def keys_problem(entries: list[str]) -> str | None:
    """For the config schema: None when every `passes.keys` entry is well-formed."""
    seen: set[int] = set()
    for entry in entries:
        try:
            ident, _ = key_entry(entry)
        except ValueError as exc:
            return str(exc)
        if ident in seen:
            return f"key id {ident} is listed twice"
        seen.add(ident)
    return None


MIN_SECRET = 16


def read_secret(path: Path) -> bytes:
    """The venue rotation secret: the file's content without surrounding whitespace. Raises ValueError."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist; make one with `kiosk pass keygen --rotation-secret {path}`") from None
    except PermissionError:
        raise ValueError(f"{path} cannot be reached by this user") from None
    if st.st_mode & 0o077:
        raise ValueError(f"{path} is open to group or others (mode {stat.filemode(st.st_mode)}); chmod 600 {path}")
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror})") from None
    if len(secret) < MIN_SECRET:
        raise ValueError(f"{path} holds {len(secret)} bytes; a rotation secret needs at least {MIN_SECRET}")
    return secret


@dataclass(frozen=True)
class PassSettings:
    """What a gate needs to check passes: public keys by id, the rotation secret, the window."""

    keys: Mapping[int, bytes] = field(default_factory=dict)
    rotation_secret: bytes | None = field(default=None, repr=False)
    accept_steps: int = 1

    @property
    def code_lifetime_s(self) -> float:
        """How long a code may come back: its step plus the accepted steps either side."""
        return (2 * self.accept_steps + 1) * STEP_S

    @classmethod
    def from_config(cls, section: Any, source: str) -> "PassSettings":

        keys = dict(key_entry(e) for e in section.keys)  # the schema checked them
        secret = None
        if section.rotation_secret_file:
            try:
                secret = read_secret(Path(section.rotation_secret_file).expanduser())
            except ValueError as exc:
                raise ConfigError(source, "passes.rotation_secret_file", str(exc)) from None
        return cls(keys=keys, rotation_secret=secret, accept_steps=int(section.accept_steps))

    def describe(self) -> str:
        """One line for `kiosk config` and `kiosk doctor`."""
        keys = ", ".join(str(k) for k in sorted(self.keys)) or "none in the config (keys may come with the snapshot)"
        rotation = (f"rotating codes checked within ±{self.accept_steps} step(s) of {STEP_S} s"
                    if self.rotation_secret else
                    "no rotation secret: rotating passes are checked by signature only")
        return f"pass keys: {keys}; {rotation}"


# -- records in the snapshot protocol (docs/protocol.md, "Signed passes") -----------------------

PASS_RECORDS = ("pass_key", "pass_revocation")


def check_pass_record(record: dict) -> tuple[str, tuple, bool]:
    """(table, key columns, present?) of a pass_key or pass_revocation record. Raises RecordError."""
    from .credential import customer_key
    from .records import RecordError

    flag = "active" if record["type"] == "pass_key" else "revoked"
    present = record.get(flag, True)
    if not isinstance(present, bool):
        raise RecordError(f"{flag!r} must be true or false, got {present!r}")
    if record["type"] == "pass_key":
        ident = record.get("key_id")
        if not isinstance(ident, int) or isinstance(ident, bool) or not 0 <= ident <= 255:
            raise RecordError(f"'key_id' must be a whole number 0-255, got {ident!r}")
        if not present:
            return "pass_keys", (ident,), False
        public = record.get("public_key")
        try:
            raw = decode_key(public if isinstance(public, str) else "")
        except ValueError as exc:
            raise RecordError(f"'public_key' {exc}") from None
        return "pass_keys", (ident, raw), True
    customer_id, serial = record.get("customer_id"), record.get("serial")
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise RecordError("'customer_id' must be a non-empty string")
    if not isinstance(serial, int) or isinstance(serial, bool) or not 0 <= serial <= 0xFFFFFFFF:
        raise RecordError(f"'serial' must be a whole number 0-4294967295, got {serial!r}")
    return "pass_revocations", (customer_key(customer_id), serial), present


def apply_pass_record(db: Any, record: dict) -> None:
    """Store one pass_key or pass_revocation record in a snapshot being built. Raises RecordError."""
    table, row, present = check_pass_record(record)
    if present:
        db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", row)
    elif table == "pass_keys":
        db.execute("DELETE FROM pass_keys WHERE key_id = ?", row[:1])
    else:
        db.execute("DELETE FROM pass_revocations WHERE customer_key = ? AND serial = ?", row)


def demo_stale_code(now: datetime) -> tuple[str, PassSettings]:
    """A rotating pass showing a code from 10 minutes ago, and settings that know its key (screen demos)."""
    key = private_from_seed(b"gate-kiosk demo pass key, no use".ljust(32, b"."))
    secret = b"gate-kiosk demo rotation secret"
    today = now.date()
    text = issue(key, 1, "I-1001", ("members",), today, today + timedelta(days=29), 1, rotating=True)
    code = code_for(secret, "I-1001", 1, step_of(now - timedelta(minutes=10)))
    return text + code, PassSettings(keys={1: public_bytes(key)}, rotation_secret=secret)


def doctor_check(config: Any) -> tuple[str, str, str]:
    """(status, message, fix) for `kiosk doctor`: are passes checkable, and how strictly?"""
    from .errors import ConfigError

    try:
        settings = PassSettings.from_config(config.passes, config.source)
    except ConfigError as exc:
        return "FAIL", exc.problem, f"fix passes.rotation_secret_file in {exc.file}"
    if not settings.keys and not settings.rotation_secret:
        return "skip", "no pass keys in the config (pass_key records in the snapshot still count)", ""
    if settings.rotation_secret is None:
        return "warn", settings.describe(), "set passes.rotation_secret_file to refuse screenshots of rotating passes"
    return "ok", settings.describe(), ""


# -- key files (`kiosk pass keygen` writes them; `kiosk pass issue` and the reference upstream read them) --

KEY_FORMAT = "gate-kiosk pass signing key v1"


def read_private_key(path: Path, option: str = "--key") -> tuple[int, Any]:
    """(key id, Ed25519 private key) from a `kiosk pass keygen` file, refusing one open to others."""
    where = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(where, option, "file not found; make one with `kiosk pass keygen FILE`") from None
    if st.st_mode & 0o077:
        raise ConfigError(where, option, f"the private key is open to group or others (mode "
                          f"{stat.filemode(st.st_mode)}); chmod 600 {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != KEY_FORMAT:
            raise ValueError("not a pass signing key")
        key_id = data["key_id"]
        if not isinstance(key_id, int) or isinstance(key_id, bool) or not 0 <= key_id <= 255:
            raise ValueError("key_id must be 0-255")
        seed = base64.b64decode(data["private_key"], validate=True)
        return key_id, private_from_seed(seed)
    except PermissionError:
        raise ConfigError(where, option, "permission denied; run as the key's owner") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ConfigError(where, option, f"not a `kiosk pass keygen` key file ({exc})") from None
