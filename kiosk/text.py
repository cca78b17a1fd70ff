"""Text that leaves the kiosk: what a log line, a terminal, the screen or a spreadsheet may see.

`safe_text` makes any string printable and bounded (control, bidi-override and surrogate code
points become U+FFFD, the length is capped), so a hostile name cannot rewrite a terminal, reorder
a log line or stall a renderer. `csv_cell` neutralises spreadsheet formulas the way OWASP's CSV
injection advice says: a cell that starts with = + - @ TAB or CR gets a leading apostrophe.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, the bidi embeddings, overrides and isolates, and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ELLIPSIS = "\u2026"


def has_unsafe(text: str) -> bool:
    """True when `text` holds a character that `safe_text` would replace."""
    return _UNSAFE.search(text) is not None


def safe_text(text: object, limit: int = 200) -> str:
    """`text` as one printable line of at most `limit` characters (cut with an ellipsis)."""
    value = text if isinstance(text, str) else str(text)
    if len(value) > limit:
        value = value[: max(limit - 1, 0)] + ELLIPSIS
    return _UNSAFE.sub("\ufffd", value)


def csv_cell(value: object) -> str:
    """One CSV cell that a spreadsheet shows as text, never evaluates."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text
