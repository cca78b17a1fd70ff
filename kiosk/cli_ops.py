"""Commands for whoever installs and looks after the kiosk: `kiosk doctor`."""

from __future__ import annotations

import argparse
from typing import Any, Callable


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report, run_checks

    text, status = report(run_checks(args.config, args.state_dir, timeout_s=args.timeout))
    print(text)
    return status


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("doctor", help="check config, token, state dir, devices, upstream, clock, disk and display",
                       description="One line per check with the fix; exit status 1 when something is wrong. "
                                   "Run it as the kiosk user: sudo -u kiosk /opt/kiosk/venv/bin/kiosk doctor")
    common(p)
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="upstream timeout (default 3)")
    p.set_defaults(func=cmd_doctor)
