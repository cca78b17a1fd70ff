"""`kiosk doctor`'s broker check: can this gate log in to the venue's broker with its own credentials?"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, KioskError


def doctor_check(config: Any, timeout_s: float) -> tuple[str, str, str]:
    """(status, message, fix) when venue.broker is set: connect as the gate does, read the retained gates."""
    from .settings import VenueSettings

    try:
        settings = VenueSettings.from_config(config)
    except ConfigError as exc:
        return "FAIL", exc.problem, f"fix {exc.key} in {exc.file}"
    if settings is None:
        return "ok", "no venue broker configured: this gate counts alone", ""
    from .fleet import collect

    try:
        gates = collect(settings, wait_s=timeout_s)
    except KioskError as exc:
        return "FAIL", str(exc), ("is Mosquitto running there (systemctl status mosquitto)? "
                                  "scripts/provision --broker sets it up; user and password: venue.username, "
                                  "venue.password_file")
    online = sorted(g for g, e in gates.items() if e.get("online"))
    return "ok", (f"{settings.url} as {settings.username or 'anonymous'}: {len(gates)} gate(s) of venue "
                  f"{settings.venue} seen, online: {', '.join(online) or 'none'}"), ""
