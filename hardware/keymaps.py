"""Keyboard layouts for keyboard-wedge scanners: evdev key name -> characters typed.

Each entry is (plain, shift) or (plain, shift, altgr). A scanner types in the layout the host
is set to expect, so `hid.layout` must match the scanner's keyboard-country setting.
A layout file (TOML, `KEY_Z = ["y", "Y"]`) adds to or overrides the US table.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from kiosk.errors import ConfigError

_US_ROWS = {
    "KEY_GRAVE": ("`", "~"), "KEY_1": ("1", "!"), "KEY_2": ("2", "@"), "KEY_3": ("3", "#"), "KEY_4": ("4", "$"),
    "KEY_5": ("5", "%"), "KEY_6": ("6", "^"), "KEY_7": ("7", "&"), "KEY_8": ("8", "*"), "KEY_9": ("9", "("),
    "KEY_0": ("0", ")"), "KEY_MINUS": ("-", "_"), "KEY_EQUAL": ("=", "+"), "KEY_LEFTBRACE": ("[", "{"),
    "KEY_RIGHTBRACE": ("]", "}"), "KEY_BACKSLASH": ("\\", "|"), "KEY_SEMICOLON": (";", ":"),
    "KEY_APOSTROPHE": ("'", '"'), "KEY_COMMA": (",", "<"), "KEY_DOT": (".", ">"), "KEY_SLASH": ("/", "?"),
    "KEY_SPACE": (" ", " "), "KEY_102ND": ("\\", "|"),
    "KEY_KP0": ("0", "0"), "KEY_KP1": ("1", "1"), "KEY_KP2": ("2", "2"), "KEY_KP3": ("3", "3"),
    "KEY_KP4": ("4", "4"), "KEY_KP5": ("5", "5"), "KEY_KP6": ("6", "6"), "KEY_KP7": ("7", "7"),
    "KEY_KP8": ("8", "8"), "KEY_KP9": ("9", "9"), "KEY_KPDOT": (".", "."), "KEY_KPMINUS": ("-", "-"),
    "KEY_KPPLUS": ("+", "+"), "KEY_KPASTERISK": ("*", "*"), "KEY_KPSLASH": ("/", "/"),
}

US: dict[str, tuple[str, ...]] = {**{f"KEY_{c}": (c.lower(), c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}, **_US_ROWS}

# German QWERTZ: Y and Z swapped, symbols moved; AltGr for @ { } [ ] \ | ~.
DE: dict[str, tuple[str, ...]] = {
    **US,
    "KEY_Y": ("z", "Z"), "KEY_Z": ("y", "Y"), "KEY_Q": ("q", "Q", "@"),
    "KEY_GRAVE": ("^", "°"), "KEY_1": ("1", "!"), "KEY_2": ("2", '"', "²"), "KEY_3": ("3", "§", "³"),
    "KEY_4": ("4", "$"), "KEY_5": ("5", "%"), "KEY_6": ("6", "&"), "KEY_7": ("7", "/", "{"), "KEY_8": ("8", "(", "["),
    "KEY_9": ("9", ")", "]"), "KEY_0": ("0", "=", "}"), "KEY_MINUS": ("ß", "?", "\\"), "KEY_EQUAL": ("´", "`"),
    "KEY_LEFTBRACE": ("ü", "Ü"), "KEY_RIGHTBRACE": ("+", "*", "~"), "KEY_BACKSLASH": ("#", "'"),
    "KEY_SEMICOLON": ("ö", "Ö"), "KEY_APOSTROPHE": ("ä", "Ä"), "KEY_COMMA": (",", ";"), "KEY_DOT": (".", ":"),
    "KEY_SLASH": ("-", "_"), "KEY_102ND": ("<", ">", "|"),
}

# French AZERTY: digits need shift; A/Q and Z/W swapped, M on the semicolon key.
FR: dict[str, tuple[str, ...]] = {
    **US,
    "KEY_Q": ("a", "A"), "KEY_A": ("q", "Q"), "KEY_W": ("z", "Z"), "KEY_Z": ("w", "W"), "KEY_SEMICOLON": ("m", "M"),
    "KEY_M": (",", "?"), "KEY_1": ("&", "1"), "KEY_2": ("é", "2", "~"), "KEY_3": ('"', "3", "#"),
    "KEY_4": ("'", "4", "{"), "KEY_5": ("(", "5", "["), "KEY_6": ("-", "6", "|"), "KEY_7": ("è", "7", "`"),
    "KEY_8": ("_", "8", "\\"), "KEY_9": ("ç", "9", "^"), "KEY_0": ("à", "0", "@"), "KEY_MINUS": (")", "°", "]"),
    "KEY_EQUAL": ("=", "+", "}"), "KEY_COMMA": (";", "."), "KEY_DOT": (":", "/"), "KEY_SLASH": ("!", "§"),
    "KEY_APOSTROPHE": ("ù", "%"), "KEY_BACKSLASH": ("*", "µ"), "KEY_LEFTBRACE": ("^", "¨"),
    "KEY_RIGHTBRACE": ("$", "£"), "KEY_GRAVE": ("²", "²"), "KEY_102ND": ("<", ">"),
}

LAYOUTS = {"us": US, "de": DE, "fr": FR}


def load_layout(name: str, *, source: str = "") -> dict[str, tuple[str, ...]]:
    """A shipped layout by name, or a TOML layout file whose entries add to / override the US table."""
    if name in LAYOUTS:
        return LAYOUTS[name]
    path = Path(name)
    if not path.suffix == ".toml":
        raise ConfigError(source, "hid.layout", f"{name!r} is not a shipped layout ({', '.join(LAYOUTS)}) "
                          "nor a .toml layout file")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(source, "hid.layout", f"cannot read layout file {name}: {exc}") from None
    layout = dict(US)
    for key, chars in table.items():
        if (not key.startswith("KEY_") or not isinstance(chars, list) or not 1 <= len(chars) <= 3
                or not all(isinstance(c, str) and len(c) <= 1 for c in chars)):
            raise ConfigError(source, "hid.layout", f"{name}: {key} must be KEY_NAME = [plain, shift] or "
                              "[plain, shift, altgr], each one character")
        layout[key] = tuple(chars) if len(chars) > 1 else (chars[0], chars[0])
    return layout
