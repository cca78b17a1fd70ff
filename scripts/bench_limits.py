#!/usr/bin/env python3
"""Memory of a sync against a gzip bomb (issue 9), side by side with httpx's own gzip decoder.

A local server on 127.0.0.1 sends a small gzip answer that inflates to --mb MB of valid NDJSON.
Each measurement is a fresh child process that reports its peak RSS (ru_maxrss):

- kiosk:     `Upstream.sync_once()` with upstream.max_snapshot_mb = --cap (inflates 64 KiB at a
             time and stops at the cap: "too large");
- reference: the same answer read whole through httpx's `iter_bytes()`, the decoder the sync
             used before (it had no cap; httpx inflates each network read at once);
- baseline:  the child's imports only.

    ./scripts/bench limits [--mb 300] [--cap 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LINE = json.dumps({"type": "customer", "id": "I-7777", "first_name": "Bomb", "last_name": "Line",
                   "groups": ["members"]}).encode() + b"\n"
HEADER = json.dumps({"type": "header", "version": 1, "cursor": "bomb-1", "full": True}).encode() + b"\n"

CHILD = r"""
import json, resource, sys
mode, url, token_file, state, cap_mb = sys.argv[1:6]
cap = float(cap_mb)
import httpx
from kiosk.app import App
from kiosk.config import Config, validate
from kiosk import compose
outcome = ""
if mode == "kiosk":
    config = Config(validate({"state_dir": state, "upstream": {"url": url, "token_file": token_file,
                              "max_snapshot_mb": cap}}, "bench"), "bench")
    app = App(config)
    up = compose.upstream(app)
    try:
        up.sync_once()
    except Exception as exc:
        outcome = str(exc)
    up.stop()
    app.close()
elif mode == "reference":
    seen = biggest = 0
    with httpx.stream("GET", url + "/snapshot", headers={"Accept-Encoding": "gzip"}) as response:
        for chunk in response.iter_bytes():
            seen += len(chunk)
            biggest = max(biggest, len(chunk))
    outcome = f"read {seen:,} decoded bytes, at most {biggest:,} at once"
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "outcome": outcome}))
"""


def bomb(mb: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = LINE * (1024 * 1024 // len(LINE))
    return packer.compress(HEADER) + b"".join(packer.compress(block) for _ in range(mb)) + packer.flush()


def serve(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            for k, v in (("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip"),
                         ("Content-Length", str(len(body))), ("Connection", "close")):
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass  # the client stopped reading: that is the point

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=300, help="MB the answer inflates to")
    parser.add_argument("--cap", type=float, default=2, help="upstream.max_snapshot_mb for the kiosk")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    body = bomb(args.mb)
    httpd = serve(body)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/kiosk/v1"
    print(f"gzip bomb: {len(body):,} bytes on the wire, {args.mb} MB inflated; kiosk cap {args.cap:g} MB")
    with tempfile.TemporaryDirectory() as tmp:
        token = Path(tmp) / "token"
        token.write_text("bench-token\n")
        token.chmod(0o600)
        for run in range(1, args.runs + 1):
            peaks = {}
            for mode in ("baseline", "kiosk", "reference"):
                done = subprocess.run([sys.executable, "-c", CHILD, mode, url, str(token), f"{tmp}/state-{run}",
                                       str(args.cap)], capture_output=True, text=True, cwd=ROOT, check=True)
                peaks[mode] = json.loads(done.stdout.splitlines()[-1])
            base = peaks["baseline"]["peak_mb"]
            kiosk, ref = peaks["kiosk"]["peak_mb"], peaks["reference"]["peak_mb"]
            print(f"run {run}: peak RSS kiosk {kiosk:.0f} MB (+{kiosk - base:.0f} over imports), httpx decoder "
                  f"{ref:.0f} MB (+{ref - base:.0f}), baseline {base:.0f} MB; ratio of the increments "
                  f"{(kiosk - base) / max(ref - base, 0.1):.2f}")
        print(f"kiosk: {peaks['kiosk']['outcome'][:70]}...; httpx: {peaks['reference']['outcome']}")
    httpd.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
