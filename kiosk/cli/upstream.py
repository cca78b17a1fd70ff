"""`kiosk sync` (one sync and one upload round, in the foreground) and `kiosk upstream` (the reference upstream)."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import sys
import threading
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError, KioskError
from .common import Commands, make_app

log = logging.getLogger(__name__)


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn at most 10 times a second."""

    def __init__(self, out: TextIO, width: int = 30):
        self.out = out
        self.width = width
        self._drawn = 0.0
        self.shown = False

    def __call__(self, done: int, expected: int | None) -> None:
        now = time.monotonic()
        if now - self._drawn < 0.1 and (expected is None or done < expected):
            return
        self._drawn = now
        if expected:
            frac = min(1.0, done / expected)
            bar = "#" * int(frac * self.width)
            text = f"\rsnapshot [{bar:<{self.width}}] {done:,}/{expected:,} records {frac:4.0%}"
        else:
            text = f"\rsnapshot {done:,} records"
        self.out.write(text)
        self.out.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self.out.write("\n")
            self.out.flush()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()  # the next line starts on its own, also after a failed sync


def cmd_sync(args: argparse.Namespace) -> int:
    from .. import compose
    from ..upstream.sync import accept_pending

    report: dict[str, Any] = {}
    with make_app(args) as app, ExitStack() as running:
        upstream = compose.upstream(app)
        running.callback(upstream.stop)  # its threads end before the App closes the files they use
        if args.accept_shrink:
            accepted = accept_pending(app.snapshot_path)
            report["accepted_pending"] = accepted
            if accepted:
                app.snapshot.reload()
            if not args.json:
                print("applied the held-back snapshot" if accepted else "no held-back snapshot to apply")
        bar = ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.json else None
        with bar or nullcontext():
            try:
                result = upstream.sync_once(bar, accept_shrink=args.accept_shrink)
                report["sync"] = {"ok": True, "kind": result.kind, "cursor": result.cursor,
                                  "changed": result.changed(), "seconds": round(result.seconds, 2)}
                text = f"sync: {result.summary()}"
            except KioskError as exc:
                report["sync"] = {"ok": False, "error": str(exc)}
                text = f"sync failed: {exc}; keeping the snapshot held (cursor {app.snapshot.cursor or '-'})"
        if not args.json:
            print(text)
        try:
            sent = upstream.upload_once()
            pending = app.journal.counts()["pending"]
            report["upload"] = {"ok": True, "accepted": sent.accepted, "isolated": sent.isolated,
                                "pending": pending}
            text = f"upload: {sent.summary()}; {pending} still to report"
        except KioskError as exc:
            report["upload"] = {"ok": False, "error": str(exc), "pending": app.journal.counts()["pending"]}
            text = f"upload failed: {exc}; {report['upload']['pending']} scans kept to report later"
        if not args.json:
            print(text)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0 if report["sync"]["ok"] and report["upload"]["ok"] else 1


def _fault(text: str) -> tuple[str, str, int]:
    from ..upstream.reference import FAULTS

    kind, _, rest = text.partition(":")
    endpoint, _, times = rest.partition(":")
    if kind not in FAULTS:
        raise argparse.ArgumentTypeError(f"{kind!r} is not a fault; known: {', '.join(FAULTS)}")
    if endpoint not in ("", "*", "snapshot", "scans", "heartbeat"):
        raise argparse.ArgumentTypeError(f"{endpoint!r}: the endpoint is snapshot, scans, heartbeat or *")
    try:
        return kind, endpoint or "*", int(times) if times else -1
    except ValueError:
        raise argparse.ArgumentTypeError(f"{times!r}: TIMES must be a whole number") from None


def cmd_upstream(args: argparse.Namespace) -> int:
    import ssl

    from ..pass_page import pass_pages
    from ..upstream.client import read_token
    from ..upstream.reference import (
        DataError,
        RefStore,
        RefUpstream,
        read_records,
    )

    token = read_token(args.token_file, "--token-file")
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.cert, args.key or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("--cert", "cert", f"cannot load {args.cert} ({exc})") from None
    store = RefStore(args.db)

    def load() -> None:
        if args.data:
            try:
                cursor = store.replace(read_records(args.data))
            except (OSError, ValueError, DataError) as exc:
                raise KioskError(f"cannot load {', '.join(args.data)}: {exc}") from None
            log.info("serving %s at cursor %s", ", ".join(args.data), cursor)

    load()
    try:
        server = RefUpstream(store, token, args.host, args.port, ssl_context=context, slow_s=args.slow_s,
                             gzip_level=args.gzip_level,
                             pass_pages=pass_pages(args.pass_key, args.rotation_secret),
                             demo_photos=args.demo_photos, snapshot_files=None if args.no_snapshot_files else (
                                 args.snapshot_files or args.db.with_name(args.db.name + ".files")))
    except OSError as exc:
        reason = "another program uses it" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise KioskError(f"cannot listen on {args.host}:{args.port} ({reason}); choose another with --port") from None
    for kind, endpoint, times in args.fault or ():
        server.inject(kind, endpoint, times)
    server.snapshot_file(wait=False)  # built in the background; kiosks get NDJSON until it is ready

    def reload(*_: Any) -> None:
        try:
            load()
        except KioskError as exc:
            log.error("%s; still serving the data held", exc)

    def terminate(*_: Any) -> None:
        # shutdown() waits for serve_forever(), which runs on this very thread: ask from another.
        threading.Thread(target=server.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGTERM, terminate)
    print(f"reference upstream on {server.url} (data in {args.db}, cursor {store.cursor()}); "
          f"SIGHUP reloads {'the data files' if args.data else 'nothing'}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


def register(commands: Commands) -> None:
    p = commands.add("sync", cmd_sync, "sync the snapshot and report scans once, now",
                     "One snapshot sync and one upload round against upstream.url, in the foreground. "
                     "Exit status 1 if either failed.")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    p.add_argument("--accept-shrink", action="store_true",
                   help="apply a held-back snapshot, and let this sync drop more customers than upstream.max_shrink")

    p = commands.add("upstream", cmd_upstream, "run the reference upstream server",
                     "A small upstream speaking the kiosk protocol: serves the records in --data "
                     "(CSV files as `kiosk import` reads them, a JSON list or NDJSON), stores reported "
                     "scans in --db. SIGHUP reloads --data; changes become deltas.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--token-file", required=True, help="the bearer token kiosks must send (chmod 600)")
    p.add_argument("--db", default="refupstream.sqlite", type=Path, help="the server's SQLite file")
    p.add_argument("--data", nargs="*", metavar="FILE", help="records to serve (replaces what --db holds)")
    p.add_argument("--cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--key", help="the certificate's private key (PEM), if not in --cert")
    p.add_argument("--fault", action="append", type=_fault, metavar="KIND[:ENDPOINT[:TIMES]]",
                   help="misbehave on purpose (repeatable), e.g. 503:snapshot:3 or bad_json")
    p.add_argument("--slow-s", type=float, default=2.0, help="delay of the slow and stall faults")
    p.add_argument("--gzip-level", type=int, default=1, choices=range(0, 10), metavar="0-9",
                   help="gzip level for clients that accept it; 0 = never compress")
    p.add_argument("--pass-key", type=Path, metavar="FILE", help="issue member passes (POST admin/pass, pages at "
                   "/pass/<token>) with this `kiosk pass keygen` key")
    p.add_argument("--rotation-secret", type=Path, metavar="FILE",
                   help="the venue rotation secret, for rotating passes")
    p.add_argument("--snapshot-files", type=Path, metavar="DIR",
                   help="where full snapshots are built as files for kiosks that take them (default: next to --db)")
    p.add_argument("--no-snapshot-files", action="store_true", help="serve full snapshots as NDJSON only")
    p.add_argument("--demo-photos", action="store_true",
                   help="serve a generated stand-in photo at photos/<customer id>.png (kiosk.photos.demo_photo)")
