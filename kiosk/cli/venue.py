"""`kiosk fleet`: the gates of this venue, as the venue's broker knows them (docs/venue.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import ConfigError
from ..text import safe_text
from .common import Commands, load_config


def cmd_fleet(args: argparse.Namespace) -> int:
    from ..venue.fleet import collect, occupancy
    from ..venue.settings import VenueSettings

    config = load_config(args)
    settings = VenueSettings.from_config(config)
    if settings is None:
        raise ConfigError(config.source, "venue.broker",
                          'is empty; set it to the venue\'s broker, e.g. "mqtt://broker.lan"')
    gates = collect(settings, wait_s=args.wait)
    zones = occupancy(gates)
    if args.json:
        print(json.dumps({"venue": settings.venue, "gates": [gates[g] for g in sorted(gates)], "occupancy": zones},
                         indent=2, ensure_ascii=True))
        return 0
    if not gates:
        print(f"no gates of venue {safe_text(settings.venue, 64)} seen on {settings.url}")
        return 0
    print(f"{'gate':<16} {'state':<8} {'zone':<10} {'dir':<4} {'snapshot':>9} {'unrep.':>6}  {'last scan':<24} faults")
    for name in sorted(gates):
        print(_row(gates[name]))
    for zone, inside in zones.items():
        print(f"zone {safe_text(zone, 64)}: {inside} inside")
    return 0


def _row(g: dict[str, Any]) -> str:
    state = {True: "online", False: "offline", None: "unknown"}[g.get("online")]
    age = g.get("snapshot_age_s")
    age_text = "-" if age is None else f"{age // 60} min"
    faults = "; ".join(safe_text(t, 80) for t in (g.get("faults") or {}).values()) or "-"
    return (f"{safe_text(g['gate'], 16):<16} {state:<8} {safe_text(g.get('zone', '-'), 10):<10} "
            f"{g.get('dir', '-'):<4} {age_text:>9} {g.get('unreported', '-')!s:>6}  "
            f"{(g.get('last_scan_at') or '-'):<24} {faults}")


def register(commands: Commands) -> None:
    p = commands.add("fleet", cmd_fleet, "the venue's gates as its broker knows them: online, zone, backlog, faults",
                     "Reads the retained status and heartbeat of every gate of venue.id from "
                     "venue.broker. Exit status 1 when the broker cannot be reached.")
    p.add_argument("--json", action="store_true")
    p.add_argument("--wait", type=float, default=3.0, metavar="S", help="how long to wait for the broker (default 3)")
