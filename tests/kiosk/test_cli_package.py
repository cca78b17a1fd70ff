"""The `kiosk` command is a package: every command module is registered, and none is named in a string."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import kiosk.cli
from kiosk.cli import MODULES, build_parser

CLI = Path(kiosk.cli.__file__).parent


def test_every_module_with_commands_is_registered() -> None:
    with_register = {info.name for info in pkgutil.iter_modules([str(CLI)])
                     if "def register(" in (CLI / f"{info.name}.py").read_text(encoding="utf-8")}
    assert with_register == {module.__name__.rsplit(".", 1)[1] for module in MODULES}


def test_no_module_is_loaded_by_name() -> None:
    for path in CLI.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
                {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not names & {"importlib", "import_module", "__import__"}, path.name


def test_every_command_takes_the_global_options_after_its_name() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        options = {o for a in command._actions for o in a.option_strings}
        assert {"--config", "--state-dir", "-v"} <= options, name


def test_pass_verbs_are_a_group() -> None:
    args = build_parser().parse_args(["pass", "show", "PASS1.x", "--state-dir", "/nonexistent"])
    assert args.pass_command == "show" and args.state_dir == "/nonexistent" and callable(args.func)
