"""The layering of docs/architecture.md, read from the source: one composition root imports the devices, and no
adapter is handed the whole App."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVICE_LIBRARIES = {"hardware", "pygame", "gpiozero", "serial", "picamera2"}
# The composition root, and nothing else of kiosk/, may import a device library (docs/architecture.md).
COMPOSITION_ROOT = {"kiosk/compose.py"}
ADAPTER_PACKAGES = ("hardware", "kiosk/upstream", "kiosk/venue")


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every module `path` imports, at the top or inside a function, also through importlib with a literal name."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the module's package
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_imported_modules_sees_lazy_relative_and_importlib_imports(tmp_path):
    """The walker itself: a test that finds nothing must be because there is nothing."""
    probe = tmp_path / "kiosk" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("def f():\n    import gpiozero\n    from hardware import gpio\n    from .upstream import sync\n"
                     "    importlib.import_module('pygame')\n", encoding="utf-8")
    names = {name for _, name in imported_modules(probe, tmp_path)}
    assert {"gpiozero", "hardware", "hardware.gpio", "kiosk.upstream", "kiosk.upstream.sync", "pygame"} <= names


def test_only_the_composition_root_imports_hardware_or_device_libraries():
    offenders = []
    for path in python_files("kiosk"):
        relative = path.relative_to(ROOT).as_posix()
        if relative in COMPOSITION_ROOT:
            continue
        for line, name in imported_modules(path):
            if name.split(".")[0] in DEVICE_LIBRARIES:
                offenders.append(f"{relative}:{line} imports {name}")
    assert not offenders, "only kiosk/compose.py may import devices:\n" + "\n".join(offenders)


def test_the_composition_root_is_where_the_devices_are_built():
    names = {name.split(".")[0] for _, name in imported_modules(ROOT / "kiosk" / "compose.py")}
    assert "hardware" in names


def test_no_adapter_imports_the_app_or_the_composition_root():
    offenders = []
    for folder in ADAPTER_PACKAGES:
        for path in python_files(folder):
            for line, name in imported_modules(path):
                if name in ("kiosk.app", "kiosk.compose") or name.startswith(("kiosk.app.", "kiosk.compose.")):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not offenders, "\n".join(offenders)


def adapter_modules() -> list[str]:
    """Their dotted names; a package's __init__.py by the package's own name (not imported a second time)."""
    return [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for folder in ADAPTER_PACKAGES
            for p in python_files(folder)]


def constructors(module) -> list[tuple[str, object]]:
    """Every class's __init__ and alternative constructors (classmethods, staticmethods) and every function."""
    found = []
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr == "__init__" or isinstance(value, (classmethod, staticmethod)):
                    found.append((f"{name}.{attr}", getattr(obj, attr)))
        elif inspect.isfunction(obj):
            found.append((name, obj))
    return found


@pytest.mark.parametrize("module_name", adapter_modules())
def test_adapters_take_settings_and_ports_never_the_app_or_the_gate(module_name):
    """No parameter named `app`, none typed App or Gate, and `gate` only as a gate's id (str): an adapter sees
    the narrow ports of kiosk/ports.py (submit a scan, record an alarm, read status, trigger a sync)."""
    module = importlib.import_module(module_name)
    offenders = []
    for label, function in constructors(module):
        for parameter in inspect.signature(function).parameters.values():
            annotation = str(parameter.annotation)
            if parameter.name == "app" or re.search(r"\b(App|Gate)\b", annotation) \
                    or (parameter.name == "gate" and annotation != "str"):
                offenders.append(f"{module_name}.{label}({parameter.name}: {annotation})")
    assert not offenders, "\n".join(offenders)
