"""Commands for the access rules: `kiosk replay` (try rules on a day of scans) and `kiosk occupancy`."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack

from .common import Commands, load_config, make_app

MAX_REPLAY_BYTES = 256 * 2**20  # characters, read at most: a million scans a day fit several times over


def cmd_replay(args: argparse.Namespace) -> int:
    from ..access import policy_of
    from ..errors import ConfigError
    from ..replay import read_scans, replay, summary_table
    from ..snapshot import SnapshotStore

    cfg = load_config(args)
    try:
        with open(args.file, encoding="utf-8", errors="replace") as fh:
            text = fh.read(MAX_REPLAY_BYTES + 1)  # a day's scans are a few MB; a bigger file is not one
    except OSError as exc:
        raise ConfigError(args.file, "FILE", f"cannot read it ({exc.strerror})") from None
    if len(text) > MAX_REPLAY_BYTES:
        raise ConfigError(args.file, "FILE", f"over {MAX_REPLAY_BYTES // 2**20} MB; replay a day's scans at a time "
                          "(kiosk journal --since DAY --csv FILE)")
    scans = read_scans(text, args.file)
    for problem in scans.problems:
        print(f"kiosk replay: skipped {problem}", file=sys.stderr)
    path = cfg.state_path / "snapshot.sqlite"
    if not path.exists():
        raise ConfigError(cfg.source, "state_dir", f"no snapshot at {path}: replay decides against the member "
                          "list; sync or import one, or pass --state-dir")
    from ..counts import punch_cards
    from ..venue.wiring import read_only_store

    with ExitStack() as stack:
        snapshot = stack.enter_context(SnapshotStore(path))
        peers = read_only_store(cfg)  # a gate of a venue: the other gates' events count as they did when it ran
        if peers is not None:
            stack.callback(peers.close)
        verdicts = replay(scans.scans, snapshot=snapshot, policy=policy_of(cfg), gate_id=cfg.gate.id, out=sys.stdout,
                          peers=peers, punch=punch_cards(path) if peers is not None else frozenset())
    # the table goes to stderr so that stdout stays one JSON event per line, like `kiosk run --events`
    print(summary_table(verdicts), file=sys.stderr)
    if scans.problems:
        print(f"kiosk replay: {len(scans.problems)} line(s) skipped", file=sys.stderr)
    return 1 if scans.problems else 0


def cmd_occupancy(args: argparse.Namespace) -> int:
    from ..counts import CLI_SOURCE

    if args.action == "set" and args.count is None:
        print("kiosk occupancy: usage: kiosk occupancy set N (the number of people inside)", file=sys.stderr)
        return 2
    with make_app(args) as app:
        now = app.clock()
        if args.action == "set":
            event_id = app.gate.set_occupancy(args.count, source=CLI_SOURCE)
            print(f"zone {app.policy.access.zone}: occupancy set to {args.count} (journalled as {event_id}; "
                  "a running kiosk picks it up within 10 s)")
            return 0
        inside = app.counts.inside(now)
        if args.json:
            print(json.dumps({"zone": app.policy.access.zone, "occupancy": app.counts.occupancy(now),
                              "capacity": app.policy.access.capacity, "inside": inside}))
        else:
            cap = app.policy.access.capacity
            print(f"zone {app.policy.access.zone}: {app.counts.occupancy(now)} inside"
                  + (f" of {cap}" if cap else "") + (f" ({', '.join(inside)})" if inside else ""))
    return 0


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: the number of people inside, a whole number of 0 or more")
    return int(text)


def register(commands: Commands) -> None:
    p = commands.add("replay", cmd_replay, "run a day of scans through the rules (journals nothing, moves nothing)",
                     "Decide the scans in FILE in time order from empty counts, as this config's "
                     "gate would, and print one JSON event per line (like `kiosk run --events`) and "
                     "a table of verdicts on stderr. FILE is a `kiosk journal --csv` export or lines "
                     "of ISO-TIME<TAB>scanned text. Try new rules with --config NEW.")
    p.add_argument("file", metavar="FILE")

    p = commands.add("occupancy", cmd_occupancy, "how many are inside the zone; `set N` corrects it (journalled)")
    p.add_argument("action", nargs="?", choices=("show", "set"), default="show")
    p.add_argument("count", nargs="?", type=_count, default=None)
    p.add_argument("--json", action="store_true")
