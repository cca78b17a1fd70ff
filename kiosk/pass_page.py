"""The member's pass page the reference upstream serves at `/pass/<token>`: the QR of the pass's
current text, reloaded at each 30 s step for a rotating pass.

The upstream is the issuer here, so it holds the signing key and the rotation secret; gates never
do. A token is a random 128-bit name for one issued pass, handed to the member as a link.
"""

from __future__ import annotations

import html
import secrets
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from . import pass_keys, passes


@dataclass(frozen=True)
class Issuer:
    key_id: int
    private_key: Any  # Ed25519PrivateKey
    rotation_secret: bytes | None = None


def pass_pages(key_file: Path | None, secret_file: Path | None) -> "PassPages | None":
    """`kiosk upstream --pass-key FILE [--rotation-secret FILE]`: the pages, or None without a key."""
    from .errors import ConfigError

    if key_file is None:
        return None
    key_id, key = pass_keys.read_private_key(key_file, "--pass-key")
    secret = None
    if secret_file is not None:
        try:
            secret = pass_keys.read_secret(secret_file)
        except ValueError as exc:
            raise ConfigError(str(secret_file), "--rotation-secret", str(exc)) from None
    return PassPages(Issuer(key_id, key, secret))


class PassPages:
    """Passes issued by the reference upstream, by page token (kept in memory: a demo issuer)."""

    def __init__(self, issuer: Issuer):
        self.issuer = issuer
        self._texts: dict[str, str] = {}
        self._lock = threading.Lock()

    def issue(self, customer_id: str, groups: list[str], days: int, rotating: bool, today: date,
              serial: int | None = None) -> tuple[str, str]:
        """(token, pass text). Raises PassError for what a pass cannot hold."""
        if rotating and self.issuer.rotation_secret is None:
            raise passes.PassError("a rotating pass needs the issuer's rotation secret")
        text = passes.issue(self.issuer.private_key, self.issuer.key_id, customer_id, tuple(groups), today,
                            today + timedelta(days=days - 1), secrets.randbits(32) if serial is None else serial,
                            rotating)
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._texts[token] = text
        return token, text

    def current(self, token: str, now: datetime) -> str | None:
        """What the phone shows now: the pass, with the current code when it rotates."""
        with self._lock:
            text = self._texts.get(token)
        if text is None or not text.startswith(passes.ROTATING):
            return text
        p = passes.parse(text, with_code=False)
        assert self.issuer.rotation_secret is not None
        return text + passes.code_for(self.issuer.rotation_secret, p.customer_id, p.serial, passes.step_of(now))

    def page(self, token: str, now: datetime) -> str | None:
        text = self.current(token, now)
        if text is None:
            return None
        p = passes.parse(text)
        refresh = ""
        if p.rotating:
            # reload just after the next step starts, so the code on screen is never a step behind
            next_step = (passes.step_of(now) + 1) * passes.STEP_S
            refresh = f'<meta http-equiv="refresh" content="{max(1, int(next_step - now.timestamp()) + 1)}">'
        note = "The code changes every 30 seconds." if p.rotating else ""
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
<title>Member pass</title>
<style>
html, body {{ margin: 0; background: #fff; color: #000; font: 18px/1.4 system-ui, sans-serif; }}
main {{ display: flex; flex-direction: column; align-items: center; padding: 4vmin; }}
svg {{ width: min(92vw, 70vh); height: auto; }}
p {{ margin: 0.3em 0; text-align: center; }}
</style></head>
<body><main>
{passes.qr_svg(text)}
<p><strong>{html.escape(p.customer_id)}</strong></p>
<p>Valid {p.not_before:%-d %b %Y} to {p.not_after:%-d %b %Y}</p>
<p>Turn the screen brightness up and hold the code in front of the camera. {note}</p>
</main></body></html>
"""
