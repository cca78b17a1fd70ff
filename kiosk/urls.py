"""Checking a URL from the config: one parse for every kind the kiosk takes (upstream http(s), broker mqtt(s))."""

from __future__ import annotations

from collections.abc import Container
from urllib.parse import SplitResult, urlsplit


def url_problem(value: str, schemes: Container[str], rule: str) -> tuple[str | None, SplitResult | None]:
    """(what is wrong with `value`, or None; its parts when it parsed). `rule` says what a right one looks like."""
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # .port raises ValueError when it is not a number
    except ValueError as exc:
        return f"is not a URL ({exc})", None
    if parts.scheme not in schemes or not host:
        return rule, parts
    return None, parts
