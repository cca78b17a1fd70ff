"""The `kiosk` command. `run` is the composition root's entry; the rest are tools for staff and technicians.

Exit status: 0 ok; 1 the answer is "no" (a denied `check`, a failed sync...); 2 usage or config error.
Each module of this package declares a group of commands through `common.Commands`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from .. import __version__
from ..errors import ConfigError, KioskError
from . import access, core, hardware, ops, passes, screen, upstream, venue
from .common import Commands, global_options

# In the order `kiosk --help` lists them.
MODULES = (core, screen, upstream, hardware, ops, passes, access, venue)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Membership gate kiosk.")
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    global_options(parser, after_command=False)
    commands = Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for module in MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"kiosk: config error: {exc}", file=sys.stderr)
        return 2
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2 if args.command in ("import",) else 1
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file or folder named on the command line that cannot be used: one line, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kiosk: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

