"""scripts/provision under a temporary root: dry run, real run, second run, config kept, uninstall."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import need

REPO = Path(__file__).resolve().parents[2]
PROVISION = REPO / "scripts" / "provision"


def provision(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", str(PROVISION), *map(str, args)], capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def changes(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("+ ")]


def tree(root: Path) -> dict[str, tuple[int, float, bytes | str]]:
    """Every path under root with its mode, mtime and content (or link target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        content = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else b""
        found[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, content)
    return found


@pytest.fixture
def root(tmp_path: Path) -> Path:
    need("systemctl")  # `systemctl --root` enables the unit offline
    path = tmp_path / "root"
    path.mkdir()
    return path


def test_dry_run_on_a_clean_root_prints_every_action_and_changes_nothing(root: Path):
    out = provision("--root", root, "--dry-run").stdout
    assert list(root.iterdir()) == []
    actions = "\n".join(changes(out))
    assert f"-m venv --system-site-packages {root}/opt/kiosk/venv" in actions
    assert f"{root}/opt/kiosk/venv/bin/python -m pip install" in actions
    assert f"--constraint {root}/opt/kiosk/constraints.txt {REPO}" in actions  # apt's numpy/pygame/gpiozero kept
    assert f"{REPO}/config/kiosk.toml {root}/etc/kiosk/kiosk.toml" in actions
    assert f"{root}/etc/udev/rules.d/70-kiosk-scanner.rules" in actions
    assert f"{root}/etc/systemd/system/kiosk.service" in actions
    assert f"systemctl --root={root} --quiet enable kiosk.service" in actions
    assert "~ skipped under --root: apt-get install" in out and "useradd" in out
    assert "would be made" in out.splitlines()[-1]


def test_real_run_installs_and_a_second_run_changes_nothing(root: Path):
    first = provision("--root", root, "--skip-venv")
    assert changes(first.stdout)
    etc = root / "etc" / "kiosk"
    assert (etc / "kiosk.toml").read_bytes() == (REPO / "config" / "kiosk.toml").read_bytes()
    assert stat.S_IMODE((etc / "kiosk.toml").stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "var" / "lib" / "kiosk").stat().st_mode) == 0o750
    unit = root / "etc" / "systemd" / "system" / "kiosk.service"
    assert unit.read_bytes() == (REPO / "systemd" / "kiosk.service").read_bytes()
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants" / "kiosk.service"
    assert os.readlink(wants) == "/etc/systemd/system/kiosk.service"
    rule = root / "etc" / "udev" / "rules.d" / "70-kiosk-scanner.rules"
    assert rule.read_bytes() == (REPO / "config" / "udev" / "70-kiosk-scanner.rules").read_bytes()

    before = tree(root)
    second = provision("--root", root, "--skip-venv")
    assert changes(second.stdout) == [], second.stdout
    assert second.stdout.splitlines()[-1] == "# nothing to change"
    assert tree(root) == before


def test_an_existing_config_is_never_overwritten(root: Path, tmp_path: Path):
    mine = root / "etc" / "kiosk" / "kiosk.toml"
    mine.parent.mkdir(parents=True)
    mine.write_text('[gate]\nid = "front-door"\n')
    offered = tmp_path / "other.toml"
    offered.write_text('[gate]\nid = "somewhere-else"\n')
    out = provision("--root", root, "--skip-venv", "--config", offered).stdout
    assert mine.read_text() == '[gate]\nid = "front-door"\n'
    assert "kept (never overwritten)" in out
    assert f"differs from {offered}" in out
    provision("--root", root, "--skip-venv", "--upgrade")
    assert mine.read_text() == '[gate]\nid = "front-door"\n'


def test_token_file_is_installed_0600_and_a_loose_one_is_tightened(root: Path, tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o644)
    provision("--root", root, "--skip-venv", "--token", token)
    installed = root / "etc" / "kiosk" / "token"
    assert installed.read_text() == "s3cret\n"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    installed.chmod(0o644)
    out = provision("--root", root, "--skip-venv").stdout
    assert f"+ chmod 0600 {installed}" in out
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600


def test_prefix_moves_the_unit_commands(root: Path):
    provision("--root", root, "--skip-venv", "--prefix", "/srv/gate")
    unit = (root / "etc" / "systemd" / "system" / "kiosk.service").read_text()
    assert "ExecStart=/srv/gate/venv/bin/kiosk run" in unit
    assert "ExecStopPost=/srv/gate/venv/bin/kiosk relay-off" in unit
    assert "/opt/kiosk/" not in unit


def test_uninstall_keeps_config_and_journal_unless_purged(root: Path):
    provision("--root", root, "--skip-venv")
    journal = root / "var" / "lib" / "kiosk" / "journal.sqlite"
    journal.write_bytes(b"scans")
    out = provision("--root", root, "--uninstall").stdout
    assert not (root / "etc" / "systemd" / "system" / "kiosk.service").exists()
    assert not (root / "etc" / "systemd" / "system" / "multi-user.target.wants" / "kiosk.service").is_symlink()
    assert not (root / "etc" / "udev" / "rules.d" / "70-kiosk-scanner.rules").exists()
    assert journal.read_bytes() == b"scans" and (root / "etc" / "kiosk" / "kiosk.toml").exists()
    assert "--purge removes it" in out
    assert changes(provision("--root", root, "--uninstall").stdout) == []
    provision("--root", root, "--uninstall", "--purge")
    assert not journal.exists() and not (root / "etc" / "kiosk").exists()


def test_raspberry_pi_packages_only_with_the_raspberry_pi_archive(root: Path):
    out = provision("--root", root, "--skip-venv", "--dry-run").stdout
    assert "~ no Raspberry Pi archive in apt's sources: skipped python3-picamera2 python3-lgpio python3-gpiozero" in out
    assert ("apt-get install python3-venv python3-numpy python3-pygame fonts-dejavu-core fonts-liberation "
            "fonts-noto-core fonts-noto-cjk libfribidi0\n") in out
    sources = root / "etc" / "apt" / "sources.list.d"
    sources.mkdir(parents=True)
    (sources / "raspi.list").write_text("# deb http://archive.raspberrypi.com/debian/ bookworm main\n")
    assert "no Raspberry Pi archive" in provision("--root", root, "--skip-venv", "--dry-run").stdout  # commented out
    (sources / "raspi.sources").write_text("Types: deb\nURIs: http://archive.raspberrypi.com/debian/\n"
                                           "Suites: bookworm\nComponents: main\n")
    out = provision("--root", root, "--skip-venv", "--dry-run").stdout
    assert "no Raspberry Pi archive" not in out
    assert "libfribidi0 python3-picamera2 python3-lgpio python3-gpiozero" in out


def pins(lines: str) -> dict[str, str]:
    """NAME==VERSION lines as {normalised name: version}."""
    found = {}
    for line in lines.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            found[re.sub(r"[-_.]+", "-", name.lower())] = version
    return found


APT_VERSIONS = """
import importlib.metadata as md
for name in ("numpy", "pygame", "gpiozero"):
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    if str(dist.locate_file("")).startswith("/usr/lib/python3/"):
        print(f"{name}=={dist.version}")
"""


@pytest.mark.parametrize("python", [sys.executable, "/usr/bin/python3"])
def test_the_venv_gets_the_checkouts_pins_and_apts_numpy_pygame_gpiozero_where_apt_has_them(root: Path, python):
    if not Path(python).exists():
        pytest.skip(f"no {python}")
    out = provision("--root", root, "--dry-run", "--python", python).stdout
    listed = pins("\n".join(line for line in out.splitlines() if line.startswith("    ")))
    repo = pins((REPO / "constraints.txt").read_text())
    floors = pins((REPO / "constraints-oldest.txt").read_text())
    apt = pins(subprocess.run([python, "-c", APT_VERSIONS], capture_output=True, text=True, check=True).stdout)
    kept = {name: version for name, version in apt.items()
            if tuple(map(int, re.findall(r"\d+", version)[:3])) >= tuple(map(int, re.findall(r"\d+", floors[name])))}
    assert listed == {**repo, **kept}


def test_bad_options_are_refused_with_a_clear_line(root: Path):
    result = provision("--root", root, "--frobnicate", check=False)
    assert result.returncode == 2 and "unknown option --frobnicate" in result.stderr
    result = provision("--root", root, "--purge", check=False)
    assert result.returncode == 1 and "--purge only goes with --uninstall" in result.stderr
    assert list(root.iterdir()) == []
