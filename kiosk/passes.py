"""Signed member passes: the text a phone shows as a QR code, and how a gate checks it.

A pass is `KP1` (static) or `KR1` (rotating) followed by base45 (RFC 9285) of a compact
binary body and its Ed25519 signature; a rotating pass ends with an 8-digit TOTP code
(RFC 6238, HMAC-SHA256, 30 s) from a per-pass key derived with HKDF from the venue's
rotation secret. docs/passes.md specifies the format byte by byte.

Crypto comes from `cryptography` (pyca): Ed25519, HKDF and HOTP are all in it (PyNaCl has
no HKDF or HOTP), it is maintained by the Python Cryptographic Authority on OpenSSL, and
Raspberry Pi OS also packages it (python3-cryptography). Nothing here is hand-written but the
two text codecs (base45 and the 40-symbol packing), which are not cryptography.
"""

from __future__ import annotations

import functools
import os
import re
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.twofactor.hotp import HOTP

from .model import Credential, CredentialKind

STATIC, ROTATING = "KP1", "KR1"
PREFIXES = (STATIC, ROTATING)
DOMAIN = b"gate-kiosk pass v1\x00"
ROTATION_INFO = b"gate-kiosk rotation v1\x00"
STEP_S = 30
CODE_DIGITS = 8
SIG_LEN = 64
EPOCH = date(1970, 1, 1)
_HEAD = struct.Struct(">BHHI")  # key id, not-before day, not-after day, serial
MAX_TEXT = 127  # the text field's length lives in 7 bits

# -- base45 (RFC 9285) ----------------------------------------------------------------------

B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUE = {c: i for i, c in enumerate(B45)}


class PassError(ValueError):
    """The text is not a well-formed pass; the message says what is wrong in plain words."""


def b45encode(data: bytes) -> str:
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (B45[c], B45[d], B45[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (B45[c], B45[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    try:
        values = [_B45_VALUE[ch] for ch in text]
    except KeyError as exc:
        raise PassError(f"character {exc.args[0]!r} is not base45") from None
    if len(values) % 3 == 1:
        raise PassError("base45 text has a dangling character")
    out = bytearray()
    for i in range(0, len(values), 3):
        chunk = values[i:i + 3]
        if len(chunk) == 3:
            n = chunk[0] + chunk[1] * 45 + chunk[2] * 2025
            if n > 0xFFFF:
                raise PassError("base45 triple out of range")
            out += n.to_bytes(2, "big")
        else:
            n = chunk[0] + chunk[1] * 45
            if n > 0xFF:
                raise PassError("base45 pair out of range")
            out.append(n)
    return bytes(out)


# -- the text field: customer id and group ids, packed 3 symbols in 2 bytes when they allow --

PACK = "0123456789abcdefghijklmnopqrstuvwxyz-._,"
_PACK_VALUE = {c: i for i, c in enumerate(PACK)}


def _pack(text: str) -> bytes:
    v = [_PACK_VALUE[c] for c in text]
    out = bytearray()
    for i in range(0, len(v) - 2, 3):
        out += (v[i] * 1600 + v[i + 1] * 40 + v[i + 2]).to_bytes(2, "big")
    rest = v[len(v) - len(v) % 3:]
    if len(rest) == 2:
        out += (rest[0] * 40 + rest[1]).to_bytes(2, "big")
    elif rest:
        out.append(rest[0])
    return bytes(out)


def _packed_len(chars: int) -> int:
    return chars // 3 * 2 + chars % 3


def _unpack(data: bytes, chars: int) -> str:
    out: list[str] = []
    for i in range(0, chars // 3 * 2, 2):
        n = int.from_bytes(data[i:i + 2], "big")
        if n >= 64000:
            raise PassError("packed text out of range")
        out += (PACK[n // 1600], PACK[n // 40 % 40], PACK[n % 40])
    rest = data[chars // 3 * 2:]
    n = int.from_bytes(rest, "big") if rest else 0
    if chars % 3 == 2:
        if n >= 1600:
            raise PassError("packed text out of range")
        out += (PACK[n // 40], PACK[n % 40])
    elif chars % 3 == 1:
        if n >= 40:
            raise PassError("packed text out of range")
        out.append(PACK[n])
    return "".join(out)


def _text_field(customer_id: str, groups: tuple[str, ...]) -> bytes:
    lowered = ",".join((customer_id.lower(),) + groups)
    if all(c in _PACK_VALUE for c in lowered):
        if len(lowered) > MAX_TEXT:
            raise PassError(f"customer id and groups are {len(lowered)} characters; at most {MAX_TEXT} fit")
        return bytes([0x80 | len(lowered)]) + _pack(lowered)
    raw = ",".join((customer_id,) + groups).encode("utf-8")
    if len(raw) > MAX_TEXT:
        raise PassError(f"customer id and groups are {len(raw)} bytes; at most {MAX_TEXT} fit")
    return bytes([len(raw)]) + raw


def _read_text_field(data: bytes) -> tuple[str, tuple[str, ...], int]:
    """(customer id, groups, bytes used) from the start of `data`."""
    if not data:
        raise PassError("the pass ends before its customer id")
    head, length = data[0], data[0] & 0x7F
    if head & 0x80:
        used = 1 + _packed_len(length)
        if len(data) < used:
            raise PassError("the pass ends inside its customer id and groups")
        text = _unpack(data[1:used], length)
    else:
        used = 1 + length
        if len(data) < used:
            raise PassError("the pass ends inside its customer id and groups")
        try:
            text = data[1:used].decode("utf-8")
        except UnicodeDecodeError:
            raise PassError("the customer id or a group is not UTF-8") from None
    customer_id, *groups = text.split(",")
    _check_names(customer_id, tuple(groups))
    return customer_id.upper() if head & 0x80 else customer_id, tuple(groups), used


_PRINTABLE_ASCII = re.compile(r"[!-~]{1,64}")


def _check_names(customer_id: str, groups: tuple[str, ...]) -> None:
    if not _PRINTABLE_ASCII.fullmatch(customer_id) or "," in customer_id:
        raise PassError("the customer id must be 1-64 printable ASCII characters without spaces or commas")
    for g in groups:
        if not g or "," in g or not g.isprintable() or g != g.strip():
            raise PassError(f"group id {g!r} must be non-empty printable text without commas or edge spaces")
    if len(set(groups)) != len(groups):
        raise PassError("a group id appears twice")


# -- the pass ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pass:
    """A decoded pass. `signed` is the exact message the signature covers."""

    prefix: str
    key_id: int
    customer_id: str
    groups: tuple[str, ...]
    not_before: date
    not_after: date
    serial: int
    signature: bytes = field(repr=False)
    signed: bytes = field(repr=False)
    code: str | None = None  # the rotating code shown with it, None for a static pass

    @property
    def rotating(self) -> bool:
        return self.prefix == ROTATING

    @property
    def base_text(self) -> str:
        """The pass without its rotating code: what the issuer hands out and the phone keeps."""
        return self.prefix + b45encode(self.signed[len(DOMAIN) + len(self.prefix):] + self.signature)


def _day(d: date) -> int:
    n = (d - EPOCH).days
    if not 0 <= n <= 0xFFFF:
        raise PassError(f"date {d} is outside 1970-01-01 .. 2149-06-06")
    return n


def body(key_id: int, customer_id: str, groups: tuple[str, ...] | list[str], not_before: date, not_after: date,
         serial: int) -> bytes:
    """The signed body (docs/passes.md, "Body")."""
    groups = tuple(groups)
    _check_names(customer_id, groups)
    if not 0 <= key_id <= 0xFF:
        raise PassError("key id must be 0-255")
    if not 0 <= serial <= 0xFFFFFFFF:
        raise PassError("serial must be 0-4294967295")
    if not_after < not_before:
        raise PassError("not-after is before not-before")
    return _HEAD.pack(key_id, _day(not_before), _day(not_after), serial) + _text_field(customer_id, groups)


def message(prefix: str, body_bytes: bytes) -> bytes:
    """What is signed: the domain, the prefix (so a rotating pass cannot pass as static), the body."""
    return DOMAIN + prefix.encode("ascii") + body_bytes


def issue(private_key: Ed25519PrivateKey, key_id: int, customer_id: str, groups: tuple[str, ...] | list[str],
          not_before: date, not_after: date, serial: int, rotating: bool = False) -> str:
    """The pass text (for a rotating pass, without its code)."""
    prefix = ROTATING if rotating else STATIC
    b = body(key_id, customer_id, groups, not_before, not_after, serial)
    return prefix + b45encode(b + private_key.sign(message(prefix, b)))


def credential(text: str) -> Credential:
    """The credential layer's view of a pass text: SIGNED_PASS, or INVALID saying what is damaged."""
    try:
        p = parse(text)
    except PassError as exc:
        return Credential(raw=text, kind=CredentialKind.INVALID, value="", problem=f"the pass is damaged ({exc})")
    return Credential(raw=text, kind=CredentialKind.SIGNED_PASS, value=_ascii_upper(p.customer_id), signed_pass=p)


def looks_like_pass(text: str) -> bool:
    """Worth parsing as a pass: a pass prefix and at least a signature's worth of base45."""
    return text.startswith(PREFIXES) and len(text) >= 3 + 96


def parse(text: str, with_code: bool = True) -> Pass:
    """Decode a pass text. Checks its shape, not its signature (see `verify`). Raises PassError.

    `with_code=False` reads a rotating pass as issued, without the code a phone appends.
    """
    prefix = text[:3]
    if prefix not in PREFIXES:
        raise PassError("not a pass (no KP1 or KR1 prefix)")
    encoded, code = text[3:], None
    if prefix == ROTATING and with_code:
        encoded, code = text[3:-CODE_DIGITS], text[-CODE_DIGITS:]
        if not (code.isascii() and code.isdigit()):
            raise PassError("the rotating pass does not end in its 8-digit code")
    data = b45decode(encoded)
    if len(data) < _HEAD.size + 1 + SIG_LEN:
        raise PassError("the pass is too short")
    b, signature = data[:-SIG_LEN], data[-SIG_LEN:]
    key_id, nb, na, serial = _HEAD.unpack_from(b)
    customer_id, groups, used = _read_text_field(b[_HEAD.size:])
    if _HEAD.size + used != len(b):
        raise PassError("the pass has bytes after its groups")
    not_before, not_after = EPOCH + timedelta(days=nb), EPOCH + timedelta(days=na)
    if not_after < not_before:
        raise PassError("the pass's not-after is before its not-before")
    return Pass(prefix, key_id, customer_id, groups, not_before, not_after, serial, signature, message(prefix, b), code)


@functools.lru_cache(maxsize=64)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(p: Pass, public_key: bytes) -> bool:
    """True when `p` was signed by the private half of `public_key` (32 raw bytes)."""
    try:
        _public_key(public_key).verify(p.signature, p.signed)
    except (InvalidSignature, ValueError):
        return False
    return True


# -- rotation -----------------------------------------------------------------------------------

def rotation_key(secret: bytes, customer_id: str, serial: int) -> bytes:
    """The pass's own TOTP key: HKDF-SHA256 of the venue secret, bound to customer id and serial."""
    info = ROTATION_INFO + _ascii_upper(customer_id).encode("utf-8") + b"\x00" + serial.to_bytes(4, "big")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _ascii_upper(text: str) -> str:
    return text.translate(_UPPER)


_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def step_of(now: datetime) -> int:
    return int(now.timestamp()) // STEP_S


def code_for(secret: bytes, customer_id: str, serial: int, step: int) -> str:
    hotp = HOTP(rotation_key(secret, customer_id, serial), CODE_DIGITS, hashes.SHA256(), enforce_key_length=True)
    return hotp.generate(step).decode("ascii")


def matching_step(p: Pass, secret: bytes, now: datetime, accept_steps: int) -> int | None:
    """The time step whose code the pass shows, within ±accept_steps of now; None when stale or wrong."""
    if p.code is None:
        return None
    key = rotation_key(secret, p.customer_id, p.serial)
    hotp = HOTP(key, CODE_DIGITS, hashes.SHA256(), enforce_key_length=True)
    current = step_of(now)
    for step in sorted(range(current - accept_steps, current + accept_steps + 1), key=lambda s: abs(s - current)):
        if hotp.generate(step).decode("ascii") == p.code:
            return step
    return None


# -- QR code --------------------------------------------------------------------------------------

def qr_symbol(text: str) -> Any:
    """The pass as a zxing-cpp QR symbol at error correction M (all base45, so alphanumeric mode)."""
    import zxingcpp

    return zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")


def qr_modules(symbol: Any, scale: int = 1, quiet_zone: bool = True) -> Any:
    """The symbol as a greyscale numpy image, `scale` pixels per module."""
    import numpy as np
    import zxingcpp

    return np.array(zxingcpp.write_barcode_to_image(symbol, scale=scale, add_quiet_zones=quiet_zone))


def qr_svg(text: str, module_px: int = 8) -> str:
    """The pass's QR code as a scalable SVG (viewBox in modules, quiet zone included)."""
    import numpy as np

    modules = qr_modules(qr_symbol(text))
    h, w = modules.shape
    dark = "".join(f"M{x} {y}h1v1h-1z" for y, x in zip(*np.nonzero(modules < 128), strict=True))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w * module_px}" '
            f'height="{h * module_px}" shape-rendering="crispEdges"><rect width="{w}" height="{h}" fill="#fff"/>'
            f'<path d="{dark}" fill="#000"/></svg>')


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_bytes(private_key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def private_from_seed(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 (never widened by the umask), refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
