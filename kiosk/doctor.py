"""`kiosk doctor`: is this kiosk able to work? One line per check, with the fix.

Each check is a small function of the config and a few paths, so tests run them
against temporary folders. None imports hardware libraries: a camera is "present"
when picamera2 can be found and a video device exists, not when it streams
(`kiosk selftest` does that).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import importlib.util
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, WARN, FAIL or SKIP
    message: str
    fix: str = ""

    def line(self, width: int = 9) -> str:
        return f"{self.status:<4}  {self.name:<{width}} {self.message}" + (f" -- fix: {self.fix}" if self.fix else "")


def _who() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


# -- files ---------------------------------------------------------------------------------

def check_token(token_file: str, upstream_url: str) -> Check:
    """The bearer token: present, one line, readable by us and by nobody else but the owner."""
    if not token_file:
        if upstream_url:
            return Check("token", FAIL, "upstream.url is set but upstream.token_file is empty",
                         'put the token in /etc/kiosk/token (mode 0600, owner kiosk) and set token_file = '
                         '"/etc/kiosk/token"')
        return Check("token", SKIP, "no upstream configured, no token needed")
    path = Path(token_file)
    try:
        st = path.stat()
    except FileNotFoundError:
        return Check("token", FAIL, f"{path} does not exist", f"sudo scripts/provision --token FILE, or create {path} "
                     "with the token on one line")
    except PermissionError:
        return Check("token", FAIL, f"{path}: cannot even look at it as {_who()}",
                     f"make its folder reachable: sudo chmod o+x {path.parent}")
    if st.st_mode & 0o077:
        return Check("token", FAIL, f"{path} is open to group or others (mode {stat.filemode(st.st_mode)})",
                     f"sudo chmod 600 {path}")
    if not os.access(path, os.R_OK):
        return Check("token", FAIL, f"{path} is not readable by {_who()}", f"sudo chown kiosk: {path}")
    try:
        token = path.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return Check("token", FAIL, f"{path} cannot be read ({exc})", f"write the token on one line into {path}")
    from .upstream.client import token_problem

    if problem := token_problem(token):
        return Check("token", FAIL, f"{path} {problem}", f"write the token alone into {path}")
    return Check("token", OK, f"{path} mode {stat.filemode(st.st_mode)}, owner uid {st.st_uid}")


def filesystem_of(path: Path, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The type of the file system holding `path` (the longest mount point above it)."""
    target = os.path.realpath(path)
    best, fstype = "", None
    try:
        with open(mountinfo, encoding="utf-8") as fh:
            for line in fh:
                fields, _, rest = line.partition(" - ")
                mount_point = fields.split()[4].replace("\\040", " ")
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, fstype = mount_point, rest.split()[0]
    except (OSError, IndexError):
        return None
    return fstype


def check_state_dir(path: Path, mountinfo: str = "/proc/self/mountinfo") -> Check:
    """Snapshot, journal and state live here; it must exist, take a new file, and keep it over a reboot."""
    fix_missing = f"sudo install -d -o kiosk -g kiosk -m 750 {path} (systemd's StateDirectory= makes it too)"
    if not path.is_dir():
        if path.exists():
            return Check("state dir", FAIL, f"{path} is not a folder", f"move it away; {fix_missing}")
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK):
            return Check("state dir", OK, f"{path} does not exist yet; the kiosk will create it under {ancestor}")
        return Check("state dir", FAIL, f"{path} does not exist and {ancestor} is not writable by {_who()}",
                     fix_missing)
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        why = "read-only file system" if exc.errno == 30 else (exc.strerror or str(exc))
        return Check("state dir", FAIL, f"{path} is not writable by {_who()} ({why})",
                     f"sudo chown -R kiosk:kiosk {path}; on a read-only root keep {path} on a writable mount "
                     "(docs/operations.md)")
    fstype = filesystem_of(path, mountinfo)
    if fstype in ("overlay", "tmpfs", "ramfs"):
        return Check("state dir", WARN, f"{path} is writable but on {fstype}: the scan journal is lost at power-off",
                     f"on a read-only root mount a persistent partition at {path} (docs/operations.md)")
    return Check("state dir", OK, f"{path} is writable ({fstype or 'file system unknown'})")


def check_disk(path: Path, *, fail_mb: int = 100, warn_mb: int = 500) -> Check:
    """Free space where the journal grows."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free_mb = usage.free // 2**20
    text = f"{free_mb} MB free of {usage.total // 2**20} MB at {probe}"
    if free_mb < fail_mb:
        return Check("disk", FAIL, text, "free space: sudo journalctl --vacuum-size=50M; sudo apt-get clean; "
                     "lower journal.keep_days")
    if free_mb < warn_mb:
        return Check("disk", WARN, text, "free some space before the journal fills it (sudo apt-get clean)")
    return Check("disk", OK, text)


def _quick_check(path: Path) -> list[str]:
    """SQLite's quick_check of a file, read-only: [] when it is sound, else what is wrong."""
    from .sqlfiles import connect_readonly

    try:
        db = connect_readonly(path)
        try:
            rows = db.execute("PRAGMA quick_check").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return [str(exc)]
    return [] if rows == [("ok",)] else [str(r[0]) for r in rows[:3]]


def check_state_files(path: Path) -> list[Check]:
    """The snapshot and the journal are whole SQLite files (quick_check; read-only, changes nothing)."""
    fixes = {
        "snapshot": "restart the kiosk (sudo systemctl restart kiosk): it moves the damaged file aside and runs on "
                    "its stale policy; then `kiosk sync`, or `kiosk import --replace FILES` without an upstream",
        "journal": "restart the kiosk (sudo systemctl restart kiosk): it moves the damaged journal aside whole "
                   "(journal.sqlite.corrupt-*, keep it: its unreported scans are in it) and starts a new one",
    }
    checks = []
    for name, fix in fixes.items():
        file = path / f"{name}.sqlite"
        if not file.exists():
            checks.append(Check(name, SKIP, f"{file} does not exist yet"))
            continue
        problems = _quick_check(file)
        if problems:
            checks.append(Check(name, FAIL, f"{file} is damaged: {'; '.join(problems)}", fix))
        else:
            checks.append(Check(name, OK, f"{file} passes SQLite's quick_check"))
    return checks


# -- devices ---------------------------------------------------------------------------------

def check_camera(config: Any, dev: Path = Path("/dev"),
                 find_module: Callable[[str], object] = importlib.util.find_spec) -> Check:
    if "camera" not in config.gate.sources:
        return Check("camera", SKIP, "not used (gate.sources has no camera)")
    if config.camera.backend == "simulated":
        return Check("camera", OK, "simulated camera (camera.backend)")
    if find_module("picamera2") is None:
        return Check("camera", FAIL, "picamera2 cannot be imported: the camera is unavailable",
                     "python3-picamera2 comes only from the Raspberry Pi OS archive (archive.raspberrypi.com): "
                     "on Raspberry Pi OS run sudo scripts/provision (apt package + --system-site-packages venv); "
                     'elsewhere use a serial or HID scanner, or camera.backend = "simulated"')
    devices = sorted(p.name for p in dev.glob("video*")) + sorted(p.name for p in dev.glob("media*"))
    if not devices:
        return Check("camera", FAIL, f"no libcamera device ({dev}/video*, {dev}/media*)",
                     "check the ribbon cable and `rpicam-hello --list-cameras`")
    return Check("camera", OK, f"picamera2 found, devices {', '.join(devices[:4])}")


def check_scanner(config: Any) -> list[Check]:
    checks = []
    sources = config.gate.sources
    if "serial" in sources:
        url = config.serial.url
        if "://" in url:
            checks.append(Check("scanner", OK, f"serial.url {url} is a pyserial URL, not a device"))
        elif not os.path.exists(url):
            checks.append(Check("scanner", FAIL, f"serial scanner {url} is not there",
                                "plug the scanner in (USB serial/CDC mode); see `ls -l /dev/serial/by-id/`; with "
                                'the udev rule set serial.url = "/dev/kiosk-scanner"'))
        elif not os.access(url, os.R_OK | os.W_OK):
            checks.append(Check("scanner", FAIL, f"{url} is not readable and writable by {_who()}",
                                "sudo usermod -aG dialout kiosk"))
        else:
            checks.append(Check("scanner", OK, f"serial scanner at {url}"
                                + (f" -> {os.path.realpath(url)}" if os.path.islink(url) else "")))
    if "hid" in sources:
        device = config.hid.device
        if not device:
            checks.append(Check("scanner", WARN, "hid.device is empty: the keyboard scanner is found by name",
                                'set hid.device = "/dev/input/kiosk-scanner" (udev rule) for a stable name'))
        elif not os.path.exists(device):
            checks.append(Check("scanner", FAIL, f"keyboard scanner {device} is not there",
                                "plug it in; see `ls -l /dev/input/by-id/`"))
        elif not os.access(device, os.R_OK):
            checks.append(Check("scanner", FAIL, f"{device} is not readable by {_who()}",
                                "sudo usermod -aG input kiosk"))
        else:
            checks.append(Check("scanner", OK, f"keyboard scanner at {device}"))
    return checks or [Check("scanner", SKIP, "not used (gate.sources has no serial or hid)")]


def _pins(config: Any) -> list[str]:
    names = ("green", "red", "amber", "buzzer", "relay", "exit_button", "door", "passage")
    return [n for n in names if config.get(f"gpio.{n}.pin") != ""]


def check_gpio(config: Any, dev: Path = Path("/dev")) -> Check:
    pins = _pins(config)
    if config.gpio.pin_factory == "mock":
        return Check("gpio", SKIP, "gpio.pin_factory is mock (simulated)")
    if not pins:
        return Check("gpio", SKIP, "no GPIO pins configured")
    chips = sorted(dev.glob("gpiochip*"))
    if not chips:
        return Check("gpio", FAIL, f"no GPIO chip ({dev}/gpiochip*) for {', '.join(pins)}",
                     'not a Raspberry Pi? set gpio.pin_factory = "mock", or clear the gpio.*.pin keys')
    denied = [c.name for c in chips if not os.access(c, os.R_OK | os.W_OK)]
    if len(denied) == len(chips):
        return Check("gpio", FAIL, f"{', '.join(denied)} not accessible by {_who()}",
                     "sudo usermod -aG gpio kiosk (and the udev rule gives gpiochip* to group gpio)")
    return Check("gpio", OK, f"{', '.join(c.name for c in chips if c.name not in denied)} for {', '.join(pins)}")


def check_display(config: Any, env: Mapping[str, str] = os.environ, dev: Path = Path("/dev")) -> Check:
    mode = config.screen.enabled
    if mode == "off":
        return Check("display", SKIP, "screen.enabled is off (headless)")
    for var in ("WAYLAND_DISPLAY", "DISPLAY"):
        if env.get(var):
            return Check("display", OK, f"desktop session ${var}={env[var]}")
    cards = sorted((dev / "dri").glob("card*"))
    usable = [c for c in cards if os.access(c, os.R_OK | os.W_OK)]
    status = FAIL if mode == "on" else WARN
    if not cards:
        return Check("display", status, f"no KMS/DRM device ({dev}/dri/card*) and no $DISPLAY/$WAYLAND_DISPLAY"
                     + ("" if mode == "on" else "; the kiosk runs without a screen"),
                     "connect the screen, check dtoverlay=vc4-kms-v3d in /boot/firmware/config.txt")
    if not usable:
        return Check("display", status, f"{', '.join(c.name for c in cards)} not accessible by {_who()}",
                     "sudo usermod -aG video,render kiosk")
    driver = env.get("SDL_VIDEODRIVER", "")
    hint = "" if driver == "kmsdrm" else " (set SDL_VIDEODRIVER=kmsdrm outside the service)"
    return Check("display", OK, f"KMS/DRM {', '.join(c.name for c in usable)}{hint}")


# -- clock ---------------------------------------------------------------------------------

class _Timex(ctypes.Structure):
    # struct timex up to `status`, then room for the rest (its size differs between ABIs).
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("_rest", ctypes.c_byte * 256)]


TIME_ERROR, STA_UNSYNC = 5, 0x0040


def adjtimex_synchronised() -> bool | None:
    """The kernel's view (read-only adjtimex): None when it cannot be asked."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR and not tx.status & STA_UNSYNC


def timedatectl_synchronised(run: Callable[..., Any] = subprocess.run) -> bool | None:
    try:
        out = run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True,
                  timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return {"yes": True, "no": False}.get(value) if out.returncode == 0 else None


def check_clock(timedatectl: Callable[[], bool | None] = timedatectl_synchronised,
                adjtimex: Callable[[], bool | None] = adjtimex_synchronised) -> Check:
    """A wrong clock breaks validity dates and TLS."""
    now = time.strftime("%Y-%m-%d %H:%M %Z")
    fix = "connect the network and run: sudo timedatectl set-ntp true (a Pi has no clock battery unless fitted)"
    synced, how = timedatectl(), "timedatectl"
    if synced is None:
        synced, how = adjtimex(), "adjtimex"
    if synced is None:
        return Check("clock", WARN, f"synchronisation unknown (neither timedatectl nor adjtimex answered); "
                     f"clock says {now}", "check the time by hand: date")
    if not synced:
        return Check("clock", FAIL, f"not synchronised ({how}); clock says {now}", fix)
    return Check("clock", OK, f"synchronised ({how}), {now}")


# -- upstream ------------------------------------------------------------------------------

def check_upstream(config: Any, timeout_s: float = 3.0) -> Check:
    """GET /snapshot with the token, headers only: reachable, and is the token accepted?"""
    if not config.upstream.url:
        return Check("upstream", SKIP, "no upstream.url: the kiosk works offline from its snapshot")
    from .config import redact_url
    from .errors import ConfigError, SyncError
    from .upstream.client import ClientSettings, UpstreamClient, UpstreamError

    url = redact_url(config.upstream.url)
    started = time.monotonic()
    try:
        settings = ClientSettings.from_config(config)
        settings = dataclasses.replace(settings, timeout_s=min(settings.timeout_s, timeout_s))
        client = UpstreamClient(settings)
    except ConfigError as exc:
        return Check("upstream", FAIL, f"not tried: {exc.key}: {exc.problem}", f"fix {exc.key} in {exc.file}")
    try:
        with client.snapshot() as response:
            status = response.status_code
    except UpstreamError as exc:
        fix = "renew the token in upstream.token_file" if exc.status in (401, 403) else "ask the upstream's operator"
        return Check("upstream", FAIL, f"{url}: {exc}", fix)
    except SyncError as exc:
        return Check("upstream", FAIL, f"{url}: {exc}",
                     "check the network, upstream.url, upstream.ca_file and the clock")
    finally:
        client.close()
    ms = (time.monotonic() - started) * 1000
    return Check("upstream", OK, f"{url} reachable, token accepted (HTTP {status}, {ms:.0f} ms)")


def check_upstream_url(config: Any) -> Check | None:
    """What is risky in an upstream.url that works (plain http:// off this machine, a password in it).

    None if nothing."""
    from .upstream.client import url_warnings

    warnings = url_warnings(config.upstream.url) if config.upstream.url else []
    return Check("url", WARN, "; ".join(warnings), "change upstream.url in the config") if warnings else None


# -- all -------------------------------------------------------------------------------------

def run_checks(config_path: str | None, state_dir: str | None = None, *, env: Mapping[str, str] = os.environ,
               dev: Path = Path("/dev"), timeout_s: float = 3.0) -> list[Check]:
    """Every check, in the order a technician fixes things."""
    from . import config as configuration
    from .errors import ConfigError
    from .pass_keys import doctor_check as pass_check

    try:
        config = configuration.load(config_path, env=dict(env))
        first = Check("config", OK, f"{config.source} is valid")
    except ConfigError as exc:
        config = configuration.Config(configuration.defaults(), configuration.BUILTIN)
        first = Check("config", FAIL, f"{exc} (the checks below use the built-in defaults)",
                      f"edit {exc.file}, key {exc.key}; config/kiosk.toml documents every key")
    if state_dir:
        config = config.with_overrides(state_dir=state_dir)
    state = config.state_path
    checks = [first, check_token(config.upstream.token_file, config.upstream.url), check_state_dir(state),
              *check_state_files(state), check_disk(state), check_camera(config, dev), *check_scanner(config),
              check_gpio(config, dev), check_display(config, env, dev), check_clock()]
    upstream_ok = checks[1].status != FAIL
    checks.append(check_upstream(config, timeout_s) if upstream_ok or not config.upstream.url
                  else Check("upstream", FAIL, "not tried: the token is not usable", "fix the token check above"))
    checks.append(Check("passes", *pass_check(config)))
    if config.venue.broker:  # the venue's MQTT broker (docs/venue.md); without one, doctor is as it was
        from .venue.doctor import doctor_check as broker_check

        checks.append(Check("broker", *broker_check(config, timeout_s)))
    checks.extend(filter(None, [check_upstream_url(config)]))
    return checks


def report(checks: list[Check]) -> tuple[str, int]:
    """The printed report and the exit status (1 when any check failed)."""
    width = max(len(c.name) for c in checks)
    failed = [c for c in checks if c.status == FAIL]
    warned = [c for c in checks if c.status == WARN]
    lines = [c.line(width) for c in checks]
    lines.append(f"{len(failed)} problem(s), {len(warned)} warning(s)" if failed or warned else "all good")
    return "\n".join(lines), 1 if failed else 0
