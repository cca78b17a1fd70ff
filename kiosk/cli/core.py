"""The gate's own commands: run, check, decode, import, find, status, journal, config."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from .. import config as configuration
from ..errors import ConfigError
from .common import Commands, load_config, make_app


def cmd_run(args: argparse.Namespace) -> int:
    from ..compose import run

    folder = (args.source or "").removeprefix("images:")
    if args.source and args.source.startswith("images:") and not os.path.isdir(folder):
        raise ConfigError("--source", "images:DIR", f"{folder} is not a folder of images")
    with make_app(args, simulate=args.simulate) as app:
        return run(app, source=args.source, headless=args.headless, events=args.events, limit=args.limit)


def cmd_check(args: argparse.Namespace) -> int:
    from ..app import App
    from ..credential import parse
    from ..rules import decide
    from ..text import has_unsafe, safe_text

    with App(load_config(args), readonly=True) as app:  # opens the snapshot read-only, creates nothing
        at = _parse_since(args.at, "--at") if args.at else app.clock()
        counts = app.counts  # with a broker this also opens the peers' store, read-only (app.venue_store)
        if args.at:  # as if at that time: the journal's counts up to then
            from ..counts import Counts, punch_cards

            punch = punch_cards(app.snapshot_path)
            if app.config.venue.broker:  # a gate of a venue: with the other gates' events up to then, as it ran
                from ..venue.union import VenueCounts

                counts = VenueCounts.rebuild(app.journal_path, app.venue_store, app.policy.access, app.policy.tz,
                                             punch, until=at)
            else:
                counts = Counts.rebuild(app.journal_path, app.policy.access, app.policy.tz, punch, until=at)
        recent = counts.recent_admits(at - timedelta(seconds=app.policy.repeat_window_s))
        decision = decide(parse(args.text, app.policy.id_patterns), app.snapshot, app.policy, at, recent, counts)
    if args.json:
        from ..outputs import event_of

        event = event_of(decision, app.config.gate.id)
        event.pop("id")
        event.update(source="check", latency_ms=None)
        line = json.dumps(event, ensure_ascii=False)
        # JSON escapes C0 controls only: a bidi override or C1 control in a name goes out as \u escapes
        print(json.dumps(event) if has_unsafe(line) else line)
    else:
        # a snapshot written before the record checks (or by hand) may hold any text: print none of it raw
        who = f"{safe_text(decision.name)} ({safe_text(decision.customer_id)})" if decision.customer_id else ""
        print(f"{decision.verdict.value}: {safe_text(decision.reason, 400)}" + (f" — {who}" if who else ""))
        if decision.groups:
            print("groups: " + ", ".join(safe_text(g) for g in decision.groups))
    return 0 if decision.admitted else 1


def cmd_decode(args: argparse.Namespace) -> int:
    from ..decoder import FrameDecoder, load_gray

    cfg = load_config(args)
    decoder = FrameDecoder.from_config(cfg.camera)
    results: list[dict[str, Any]] = []
    failed = False
    for path in args.images:
        try:
            found = decoder.decode(load_gray(path))
            results.append({"file": path, "codes": [{"text": f.text, "format": f.format} for f in found]})
        except (OSError, ValueError) as exc:
            failed = True
            results.append({"file": path, "error": str(exc), "codes": []})
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for r in results:
            if "error" in r:
                print(f"{r['file']}: error: {r['error']}")
            elif not r["codes"]:
                print(f"{r['file']}: no code found")
            for code in r["codes"]:
                print(f"{r['file']}: {code['format']}: {code['text']}")
    return 2 if failed else (0 if any(r["codes"] for r in results) else 1)


def cmd_import(args: argparse.Namespace) -> int:
    from ..importer import import_files

    with make_app(args) as app:
        summary = import_files(app.snapshot_path, args.files, replace=args.replace, now=app.clock())
    print(summary)
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    from ..app import App
    from ..text import safe_text

    with App(load_config(args), readonly=True) as app:  # a search creates nothing and moves nothing aside
        found = app.snapshot.find(args.query, limit=args.limit)
        groups = app.snapshot.groups()
        rows: list[dict[str, Any]] = []
        for c in found:
            cards = app.snapshot.cards_of(c.id)
            # a snapshot written before the record checks (or by hand) may hold any text: print none of it raw
            rows.append({"id": safe_text(c.id), "name": safe_text(c.display_name), "active": c.active,
                         "email": safe_text(c.email), "postcode": safe_text(c.postcode),
                         "groups": [safe_text(groups[g].name if g in groups else g) for g in c.groups],
                         "valid_until": c.valid_until.isoformat() if c.valid_until else None,
                         "cards": [{"code": safe_text(k.code, 256), "type": safe_text(k.card_type),
                                    "revoked": k.revoked} for k in cards]})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif not rows:
        print(f"no customer matches {safe_text(args.query)!r}")
    for r in rows if not args.json else ():
        flags = "" if r["active"] else " [inactive]"
        until = f" until {r['valid_until']}" if r["valid_until"] else ""
        print(f"{r['id']:<10} {r['name']}{flags}  {', '.join(r['groups']) or '-'}{until}  {r['email']} {r['postcode']}")
        for k in r["cards"]:
            print(f"{'':<10}   card {k['type']} {k['code']}{' (revoked)' if k['revoked'] else ''}")
    return 0 if rows else 1


def cmd_status(args: argparse.Namespace) -> int:
    """Read-only: the files as they are, and the running kiosk's own status.json when it is fresh."""
    import dataclasses

    from ..app import App
    from ..status import STALE_S, read_published
    from ..text import safe_text

    with App(load_config(args), readonly=True) as app:
        app.snapshot.report = True  # a damaged snapshot is a fault to show, with everything else status knows
        app.watch_staleness()
        status = app.live_status()
        isolated = app.journal.isolated()[:20] if app.journal_path.exists() and "journal" not in status.faults else []
        published = read_published(app.state_dir, app.clock())
    if published is not None and published.fresh:
        live = published.status
        # Faults, the held queue and the last outcomes are the running kiosk's; counts come from the files.
        status = dataclasses.replace(status, faults=live.faults, last_sync=live.last_sync or status.last_sync,
                                     last_upload=live.last_upload or status.last_upload, uptime_s=live.uptime_s,
                                     scans_queued=live.scans_queued, scans_dropped=live.scans_dropped,
                                     journal=dataclasses.replace(status.journal, held=live.journal.held,
                                                                 lost=live.journal.lost))
        running = f"running (pid {published.pid}, up {live.uptime_s} s, status {published.age_s:.0f} s old)"
    elif published is not None:
        running = (f"NOT RUNNING or hung: its live status is {published.age_s / 60:.0f} min old "
                   f"(written every few seconds; stale after {STALE_S:.0f} s)")
    else:
        running = "not running (no live status in the state dir); faults below are from the files only"
    if args.json:
        print(json.dumps({**status.to_json(), "running": bool(published and published.fresh),
                          "isolated_events": isolated}, ensure_ascii=False, default=str))
        return 0
    s, j = status.snapshot, status.journal
    age = "never synced" if s.age_s is None else f"{s.age_s // 3600} h {s.age_s % 3600 // 60} min old"
    print(f"gate      {safe_text(status.gate)} on {safe_text(status.device)}")
    print(f"kiosk     {running}")
    print(f"snapshot  cursor {safe_text(s.cursor) or '-'}, {age}{' (STALE)' if s.stale else ''}, "
          f"source {safe_text(s.source or '-')}")
    print(f"          {s.customers} customers, {s.groups} groups, {s.cards} cards")
    print(f"journal   {j.total} events, {j.unreported} unreported, {j.isolated} set aside, "
          f"last scan {j.last_scan_at or '-'}")
    if j.held or j.lost:
        print(f"          {j.held} decisions held in memory (journal not writable), {j.lost} lost")
    if status.scans_dropped:
        print(f"scans     {status.scans_dropped} dropped (queue full), {status.scans_queued} queued")
    for label, outcome in (("last sync", status.last_sync), ("last upload", status.last_upload)):
        if outcome is not None:
            print(f"{label:<9} {safe_text(outcome.line(), 400)}")
    for name, message in status.faults.items():
        print(f"fault     {safe_text(name, 40)}: {safe_text(message, 400)}")
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    from ..journal import Journal, write_csv
    from ..text import safe_text

    cfg = load_config(args)
    path = cfg.state_path / "journal.sqlite"
    if not path.exists():
        print(f"no journal at {path} yet", file=sys.stderr)
        return 1
    with Journal(path, readonly=True) as journal:
        since = _parse_since(args.since) if args.since else None
        events = journal.events(since=since)
        if args.csv:
            try:
                sink: AbstractContextManager[IO[str]] = (
                    nullcontext(sys.stdout) if args.csv == "-" else open(args.csv, "w", newline="", encoding="utf-8"))
                with sink as out:  # closing a file flushes it: a full disk fails there, still inside this try
                    n = write_csv(events, out)
            except OSError as exc:  # no such directory, no permission, disk full: say so, never "wrote"
                print(f"kiosk: cannot write {args.csv}: {exc.strerror or exc}", file=sys.stderr)
                return 2
            if args.csv != "-":
                print(f"wrote {n} events to {args.csv}")
            return 0
        for e in events:
            # the journal holds what scanners sent and what the snapshot said: print it only made printable
            who, raw = safe_text(e["customer_id"] or "-"), safe_text(e["raw"], 256)
            print(f"{e['at']}  {safe_text(e['source']):<8} {safe_text(e['verdict']):<16} {who:<10} "
                  f"{safe_text(e['state']):<8} {raw}")
    return 0


def _parse_since(text: str, option: str = "--since") -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(option, option.lstrip("-"), f"{text!r} is not an ISO date or time, e.g. 2026-11-22 or "
                          "2026-11-22T10:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_config(args: argparse.Namespace) -> int:
    from ..pass_keys import PassSettings

    cfg = load_config(args)
    print(f"# effective config, from {cfg.source}; state_dir resolves to {cfg.state_path}")
    print(f"# {PassSettings.from_config(cfg.passes, cfg.source).describe()}")
    print(configuration.to_toml(configuration.masked(cfg)), end="")
    return 0



# -- parser ------------------------------------------------------------------------------

def register(commands: Commands) -> None:
    p = commands.add("run", cmd_run, "run the gate: scan, decide, act, record")
    p.add_argument("--simulate", action="store_true", help="simulated camera and GPIO, demo data if none is held")
    p.add_argument("--headless", action="store_true", help="no screen; decisions go to the log")
    p.add_argument("--source", metavar="SRC", type=_source,
                   help="stdin, serial, hid, camera or images:DIR (default: the config's gate.sources)")
    p.add_argument("--events", action="store_true", help="print one JSON object per decision on stdout")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N decisions")

    p = commands.add("check", cmd_check, "the decision for one scanned text, without journalling or acting")
    p.add_argument("text")
    p.add_argument("--json", action="store_true")
    p.add_argument("--at", metavar="ISO", help="decide as if at this time, with the journal's counts up to then")

    p = commands.add("decode", cmd_decode, "the codes the camera's decoder finds in image files")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true")

    p = commands.add("import", cmd_import, "import customers, groups and cards from CSV files (all or nothing)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--replace", action="store_true", help="replace the snapshot instead of merging into it")

    p = commands.add("find", cmd_find, "search the snapshot: an id, a card code, an email, a postcode, "
            '"Surname, First", "First Surname", or a surname or organisation name (three or more letters find '
            "names starting so)")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")

    p = commands.add("status", cmd_status, "snapshot, journal and faults")
    p.add_argument("--json", action="store_true")

    p = commands.add("journal", cmd_journal, "list or export the scan journal")
    p.add_argument("--since", metavar="ISO")
    p.add_argument("--csv", metavar="FILE", help="write CSV to FILE (- for stdout)")

    commands.add("config", cmd_config, "print the effective config, secrets masked")


def _source(text: str) -> str:
    if text in ("stdin", "serial", "hid", "camera") or (text.startswith("images:") and len(text) > 7):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: use stdin, serial, hid, camera or images:DIR")
