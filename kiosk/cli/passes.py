"""`kiosk pass keygen | issue | show`: make signing keys, issue signed passes, read one back.

The private key never needs to be on a gate: gates hold public keys only ([passes] keys or
pass_key records in the snapshot). These commands run wherever passes are issued.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from .. import pass_keys, passes
from ..errors import ConfigError, KioskError
from .common import Commands, load_config


def cmd_keygen(args: argparse.Namespace) -> int:
    key = passes.new_private_key()
    seed = key.private_bytes_raw()
    public = pass_keys.encode_key(passes.public_bytes(key))
    body = json.dumps({"format": pass_keys.KEY_FORMAT, "key_id": args.key_id,
                       "private_key": base64.b64encode(seed).decode(), "public_key": public}, indent=1) + "\n"
    _create(args.file, body.encode("utf-8"), "FILE")
    if args.rotation_secret:
        _create(args.rotation_secret, base64.b64encode(secrets.token_bytes(32)) + b"\n", "--rotation-secret")
    print(f"wrote the private key to {args.file} (mode 0600); keep it off the gates")
    if args.rotation_secret:
        print(f"wrote a rotation secret to {args.rotation_secret} (mode 0600); copy it to gates and issuers")
    print("gate config, [passes]:")
    print(f'keys = ["{args.key_id}:{public}"]')
    print("or as a snapshot record:")
    print(json.dumps({"type": "pass_key", "key_id": args.key_id, "public_key": public, "active": True}))
    return 0


def _create(path: Path, data: bytes, option: str) -> None:
    try:
        passes.write_private(path, data)
    except FileExistsError:
        raise ConfigError(str(path), option,
                          "already exists; keygen never overwrites a key, choose another name") from None
    except OSError as exc:
        raise ConfigError(str(path), option, f"cannot write it ({exc.strerror})") from None


# -- issue ------------------------------------------------------------------------------------

def cmd_issue(args: argparse.Namespace) -> int:
    key_id, key = pass_keys.read_private_key(args.key)
    groups = tuple(dict.fromkeys(g.strip() for g in ",".join(args.groups).split(",") if g.strip()))
    start = args.start or date.today()
    serial = args.serial if args.serial is not None else secrets.randbits(32)
    secret = None
    if args.rotating and args.rotation_secret:
        try:
            secret = pass_keys.read_secret(args.rotation_secret)
        except ValueError as exc:
            raise ConfigError(str(args.rotation_secret), "--rotation-secret", str(exc)) from None
    try:
        text = passes.issue(key, key_id, args.customer_id, groups, start, start + timedelta(days=args.days - 1),
                            serial, rotating=args.rotating)
    except passes.PassError as exc:
        raise ConfigError("kiosk pass issue", "arguments", str(exc)) from None
    p = passes.parse(text, with_code=False)
    if args.rotating and secret is None and (args.png or args.svg):
        raise ConfigError("kiosk pass issue", "--rotation-secret", "a rotating pass's QR code shows its current "
                          "code: give --rotation-secret FILE (or leave out --png/--svg)")
    shown = text if secret is None else text + passes.code_for(secret, p.customer_id, p.serial,
                                                               passes.step_of(datetime.now(timezone.utc)))
    if args.json:
        print(json.dumps({"text": text, "current": shown, **_fields(p)}, ensure_ascii=False))
    else:
        print(text)
        if args.rotating:
            print(f"# current code: {shown}" if secret is not None else
                  "# rotating: the phone appends the 8-digit code every 30 s")
    if args.png or args.svg:
        write_qr(shown, png=args.png, svg=args.svg)
    return 0


def write_qr(text: str, *, png: Path | None = None, svg: Path | None = None, scale: int = 8) -> None:
    """The pass as a QR code (EC level M): PNG and/or SVG, each written whole or not at all."""
    if png is not None:
        from PIL import Image

        image = Image.fromarray(passes.qr_modules(passes.qr_symbol(text), scale))
        _atomic(png, lambda fh: image.save(fh, format="PNG"))
    if svg is not None:
        _atomic(svg, lambda fh: fh.write(passes.qr_svg(text, scale).encode("utf-8")))


def _atomic(path: Path, write: Callable[[Any], Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KioskError(f"{path}: cannot write the QR code ({exc.strerror or exc})") from None


# -- show -------------------------------------------------------------------------------------

def _fields(p: passes.Pass) -> dict[str, Any]:
    return {"kind": "rotating" if p.rotating else "static", "key_id": p.key_id, "customer_id": p.customer_id,
            "groups": list(p.groups), "not_before": p.not_before.isoformat(), "not_after": p.not_after.isoformat(),
            "serial": p.serial, "code": p.code}


def cmd_show(args: argparse.Namespace) -> int:
    from ..app import App
    from ..credential import parse
    from ..rules import decide

    text = args.text.strip()
    try:
        p = passes.parse(text)
    except passes.PassError as exc:
        print(f"not a valid pass: {exc}", file=sys.stderr)
        return 2
    # a look, like `kiosk check`: opens read-only, creates nothing
    with App(load_config(args), readonly=True) as app:
        key = {**app.snapshot.pass_keys(), **app.policy.passes.keys}.get(p.key_id)
        decision = decide(parse(text, app.policy.id_patterns), app.snapshot, app.policy, app.clock())
        rotation = app.policy.passes.describe().split("; ")[-1]
    signature = "unknown key" if key is None else ("valid" if passes.verify(p, key) else "BAD")
    if args.json:
        print(json.dumps({**_fields(p), "signature": signature, "verdict": decision.verdict.value,
                          "reason": decision.reason}, ensure_ascii=False))
    else:
        for name, value in _fields(p).items():
            if value is not None:
                print(f"{name:<11} {', '.join(value) if isinstance(value, list) else value}")
        print(f"{'signature':<11} {signature} (key id {p.key_id})")
        if p.rotating:
            print(f"{'rotation':<11} {rotation}")
        print(f"{decision.verdict.value}: {decision.reason}")
    return 0 if decision.admitted else 1


# -- parser -----------------------------------------------------------------------------------

def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2026-12-01") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return int(text)


def _key_id(text: str) -> int:
    if not text.isdigit() or int(text) > 255:
        raise argparse.ArgumentTypeError(f"{text!r}: a key id is a whole number 0-255")
    return int(text)


def register(commands: Commands) -> None:
    verbs = commands.group("pass", "signed member passes: keygen, issue, show",
                           "Make a signing key, issue a signed pass (text and QR code), or decode and "
                           "check one. docs/passes.md describes the format.", dest="pass_command")

    k = verbs.add("keygen", cmd_keygen, "make an Ed25519 signing key (file mode 0600) and print its public key")
    k.add_argument("file", type=Path, metavar="FILE", help="where to write the private key (never overwritten)")
    k.add_argument("--key-id", type=_key_id, default=1, help="the id passes name this key by (0-255, default 1)")
    k.add_argument("--rotation-secret", type=Path, metavar="FILE", help="also make a venue rotation secret here")

    i = verbs.add("issue", cmd_issue, "issue a pass: print its text, optionally write its QR code")
    i.add_argument("customer_id")
    i.add_argument("--key", type=Path, required=True, metavar="FILE", help="the private key from `kiosk pass keygen`")
    i.add_argument("--groups", nargs="+", default=[], metavar="GROUP", help="group ids the pass grants")
    i.add_argument("--days", type=_positive, default=30, help="days of validity, from --from (default 30)")
    i.add_argument("--from", dest="start", type=_day, metavar="DATE", help="first valid day (default today)")
    i.add_argument("--serial", type=int, help="the pass's serial (default random; revocations name it)")
    i.add_argument("--rotating", action="store_true", help="a rotating pass: the phone adds a code every 30 s")
    i.add_argument("--rotation-secret", type=Path, metavar="FILE", help="to print and draw the current code")
    i.add_argument("--png", type=Path, metavar="FILE", help="write the QR code as PNG")
    i.add_argument("--svg", type=Path, metavar="FILE", help="write the QR code as SVG")
    i.add_argument("--json", action="store_true")

    s = verbs.add("show", cmd_show, "decode a pass and check it against this gate's keys and snapshot")
    s.add_argument("text")
    s.add_argument("--json", action="store_true")
