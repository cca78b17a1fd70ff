"""The kiosk's small persistent state (last sync result, staff settings, counters).

sqlitedict, always with JSON encoding: a pickled file that someone can write is code that
someone can run.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlitedict import SqliteDict


def open_state(path: str | Path, *, readonly: bool = False) -> SqliteDict:
    return SqliteDict(str(path), tablename="state", autocommit=True, encode=json.dumps, decode=json.loads,
                      flag="r" if readonly else "c")
