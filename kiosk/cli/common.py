"""What every command module shares: the one way to declare a command, global options, config and App."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any, Callable

from .. import config as configuration

if TYPE_CHECKING:
    from ..app import App

Handler = Callable[[argparse.Namespace], int]


def global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """--config, --state-dir and -v, accepted before the command and after it.

    After the command (on each subparser) their default is SUPPRESS: a subparser that was not given
    one leaves alone what was given before the command, instead of resetting it to the default.
    """
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if after_command else value

    parser.add_argument("--config", metavar="FILE", default=default(None),
                        help="config file (default: $KIOSK_CONFIG, /etc/kiosk/kiosk.toml, else built-in defaults)")
    parser.add_argument("--state-dir", metavar="DIR", default=default(None),
                        help="override state_dir (snapshot, journal, state)")
    parser.add_argument("-v", "--verbose", action="store_true", default=default(False), help="debug logging")


class Commands:
    """The one way a module of this package declares its commands.

    Each module has `register(commands: Commands)`; `add` makes a command whose handler is `func` and
    which takes the global options after its name; `group` makes a command with verbs (`kiosk pass issue`).
    """

    def __init__(self, sub: Any) -> None:  # argparse's _SubParsersAction, private in typeshed's eyes
        self._sub = sub

    def add(self, name: str, func: Handler | None, help: str, description: str | None = None, *,
            options: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._sub.add_parser(name, help=help, description=description or help)
        if options:
            global_options(parser, after_command=True)
        if func is not None:
            parser.set_defaults(func=func)
        return parser

    def group(self, name: str, help: str, description: str | None = None, *, dest: str) -> Commands:
        parser = self.add(name, None, help, description)
        return Commands(parser.add_subparsers(dest=dest, required=True, metavar="VERB"))


def load_config(args: argparse.Namespace) -> configuration.Config:
    cfg = configuration.load(getattr(args, "config", None))
    if getattr(args, "state_dir", None):
        cfg = cfg.with_overrides(state_dir=args.state_dir)
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(cfg.log_level.upper())
    return cfg


def make_app(args: argparse.Namespace, *, simulate: bool = False) -> App:
    from ..app import App

    return App(load_config(args), simulate=simulate)
