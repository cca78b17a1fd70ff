#!/usr/bin/env python3
"""How many bytes does one scan write to the SD card? (the journal's write cost)

Appends N scans through kiosk.journal.Journal (SQLite, WAL) exactly as the gate does, one
committed transaction per scan, then acknowledges them in batches the way the uploader
does, and reports what the process handed to write()/pwrite() (/proc/self/io wchar) and
how many fsync()s it made (counted with strace when available, else left out).

    .venv/bin/python scripts/bench_journal_writes.py [--scans 10000] [--sync normal|full] [--variants]

--variants also measures the journal's schema without AUTOINCREMENT and with 1 KiB pages
(plain sqlite3 inserts, for comparison; the Journal class is not changed by this).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk import journal as journal_module  # noqa: E402
from kiosk.journal import Journal  # noqa: E402


def written() -> int:
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("wchar:"))


def measure(scans: int, sync: str, batch_ack: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="journal-bench-"))
    try:
        journal = Journal(folder / "journal.sqlite", sync=sync)
        start = datetime(2026, 11, 22, 10, tzinfo=timezone.utc)
        ids = []
        before = written()
        for n in range(scans):
            ids.append(journal.append(
                at=start + timedelta(seconds=3 * n), gate="lounge-1", source="camera", raw=str(uuid.uuid4()),
                credential=f"I-{1000 + n % 5000}", verdict="admit", customer_id=f"I-{1000 + n % 5000}",
                groups=["members"], cursor="c-000123", reason="Member"))
        appended = written()
        for i in range(0, len(ids), batch_ack):
            journal.mark_sent(ids[i:i + batch_ack], start)
        acked = written()
        journal.close()
        size = sum(p.stat().st_size for p in folder.iterdir())
        return {"scans": scans, "sync": sync, "append_bytes_per_scan": round((appended - before) / scans),
                "ack_bytes_per_scan": round((acked - appended) / scans),
                "total_bytes_per_scan": round((acked - before) / scans), "files_bytes": size}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure_schema(scans: int, schema: str, page_size: int) -> int:
    """Bytes per scan for one insert per transaction into `schema`, WAL, synchronous=NORMAL."""
    folder = Path(tempfile.mkdtemp(prefix="journal-variant-"))
    try:
        db = sqlite3.connect(folder / "journal.sqlite", isolation_level=None)
        db.execute(f"PRAGMA page_size={page_size}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        before = written()
        for n in range(scans):
            db.execute("INSERT INTO events (id, at, gate, source, raw, credential, verdict, customer_id, groups,"
                       " cursor, passed, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       (str(uuid.uuid4()), f"2026-11-22T10:00:{n:06d}Z", "lounge-1", "camera", str(uuid.uuid4()),
                        "I-1001", "admit", "I-1001", '["members"]', "c-000123", None, "Member"))
        per_scan = round((written() - before) / scans)
        db.close()
        return per_scan
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def variants(scans: int) -> dict[str, int]:
    schema = journal_module._SCHEMA
    plain = schema.replace(" AUTOINCREMENT", "")
    return {"as_is": measure_schema(scans, schema, 4096), "no_autoincrement": measure_schema(scans, plain, 4096),
            "page_1024": measure_schema(scans, schema, 1024),
            "no_autoincrement_page_1024": measure_schema(scans, plain, 1024)}


def count_fsyncs(argv: list[str]) -> dict[str, int] | None:
    """Run this script again under strace -c and return the fsync/fdatasync call counts."""
    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(["strace", "-f", "-c", "-o", out.name, "-e", "trace=fsync,fdatasync", sys.executable,
                        __file__, *argv, "--no-strace"], check=True, stdout=subprocess.DEVNULL)
        counts = {}
        for line in out.read().splitlines():
            parts = line.split()
            if parts and parts[-1] in ("fsync", "fdatasync"):
                counts[parts[-1]] = int(parts[3])
        return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=10_000)
    parser.add_argument("--sync", choices=("normal", "full"), default="normal")
    parser.add_argument("--ack-batch", type=int, default=500, help="events acknowledged per upload (protocol max 500)")
    parser.add_argument("--variants", action="store_true", help="also bytes/scan for cheaper schema variants")
    parser.add_argument("--no-strace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    result = measure(args.scans, args.sync, args.ack_batch)
    if not args.no_strace:
        fsyncs = count_fsyncs(["--scans", str(args.scans), "--sync", args.sync, "--ack-batch", str(args.ack_batch)])
        if fsyncs is not None:
            result["fsyncs"] = sum(fsyncs.values())
            result["fsyncs_per_scan"] = round(result["fsyncs"] / args.scans, 2)
    if args.variants:
        result["variants_bytes_per_scan"] = variants(min(args.scans, 3000))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
