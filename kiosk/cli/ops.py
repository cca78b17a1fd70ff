"""Commands for whoever installs and looks after the kiosk: `kiosk doctor`."""

from __future__ import annotations

import argparse

from .common import Commands


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import report, run_checks

    text, status = report(run_checks(args.config, args.state_dir, timeout_s=args.timeout))
    print(text)
    return status


def register(commands: Commands) -> None:
    p = commands.add("doctor", cmd_doctor, "check config, token, state dir, devices, upstream, clock, disk and display",
                     "One line per check with the fix; exit status 1 when something is wrong. "
                     "Run it as the kiosk user: sudo -u kiosk /opt/kiosk/venv/bin/kiosk doctor")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="upstream timeout (default 3)")
