"""The one config file: schema, defaults, errors naming file and key, and the documented config/kiosk.toml."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk import config as configuration
from kiosk.config import SCHEMA, ConfigError, defaults, load, load_file, masked, to_toml, validate
from kiosk.rules import Policy

DOCUMENTED = Path(__file__).resolve().parents[2] / "config" / "kiosk.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert info.value.file == str(path)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize("text,key", [
    ("colour = 1", "colour"),
    ("[gate]\ncolour = 'red'", "gate.colour"),
    ("[gate]\nrepeat_window = 5", "gate.repeat_window"),
    ("[gates]\nid = 'x'", "gates"),
    ("[gpio.purple]\npin = 4", "gpio.purple"),
])
def test_unknown_key_or_section(tmp_path, text, key):
    err = error_for(tmp_path, text)
    assert err.key == key
    assert "unknown" in err.problem


def test_unknown_key_lists_the_known_ones(tmp_path):
    assert "repeat_window_s" in error_for(tmp_path, "[gate]\nrepeat_window = 5").problem


@pytest.mark.parametrize("text,key,words", [
    ("[gate]\nrepeat_window_s = '5'", "gate.repeat_window_s", "number"),
    ("[gate]\nid = 7", "gate.id", "string"),
    ("[relay]\npulse_ms = true", "relay.pulse_ms", "whole number"),
    ("[relay]\npulse_ms = 1.5", "relay.pulse_ms", "whole number"),
    ("[camera]\ntry_invert = 'yes'", "camera.try_invert", "true or false"),
    ("[gate]\nsources = 'camera'", "gate.sources", "list"),
    ("[gate]\nid_patterns = [1]", "gate.id_patterns", "every item"),
    ("[gate]\ngroups = 3", "gate.groups", "a list or a string"),
    ("state_dir = []", "state_dir", "string"),
    ("[gpio.relay]\npin = true", "gpio.relay.pin", "whole number"),
])
def test_wrong_type(tmp_path, text, key, words):
    err = error_for(tmp_path, text)
    assert err.key == key
    assert words in err.problem


@pytest.mark.parametrize("text,key,words", [
    ("[gate]\nrepeat_window_s = -1", "gate.repeat_window_s", "at least 0"),
    ("[gate]\nmax_snapshot_age_h = 0", "gate.max_snapshot_age_h", "greater than 0"),
    ("[gate]\nstale_policy = 'maybe'", "gate.stale_policy", "'warn', 'deny'"),
    ("[gate]\nmode = 'everyone'", "gate.mode", "any_customer"),
    ("[gate]\nid = '  '", "gate.id", "empty"),
    ("[gate]\ngroups = 'some'", "gate.groups", '"all"'),
    ("[gate]\ngroups = ['members', '']", "gate.groups", "non-empty"),
    ("[gate]\nid_patterns = ['(a)(b)']", "gate.id_patterns", "exactly one capturing group"),
    ("[gate]\nid_patterns = ['(unclosed']", "gate.id_patterns", "not a valid regular expression"),
    ("[gate]\nsources = ['camera', 'telepathy']", "gate.sources", "telepathy"),
    ("[camera]\nformats = ['QRCode', 'NoSuchCode']", "camera.formats", "NoSuchCode"),
    ("[camera]\nformats = []", "camera.formats", "at least one"),
    ("[camera]\nlores_size = [640]", "camera.lores_size", "[width, height]"),
    ("[camera]\nroi = [0.5, 0.5, 0.6, 0.2]", "camera.roi", "inside the frame"),
    ("[relay]\npulse_ms = 5", "relay.pulse_ms", "between 10 and 30000"),
    ("[journal]\nmax_events = 10", "journal.max_events", "at least 1000"),
    ("[upstream]\nurl = 'ftp://x'", "upstream.url", "http"),
    ("[upstream]\nurl = 'https://'", "upstream.url", "with a host"),
    ("[upstream]\nurl = 'https://hub:port/x'", "upstream.url", "not a URL"),
    ("[upstream]\nmax_shrink = 1.5", "upstream.max_shrink", "between 0 and 1"),
    ("[upstream]\nsync_deadline_s = 0", "upstream.sync_deadline_s", "greater than 0"),
    ("[serial]\nterminator = 'EOT'", "serial.terminator", "0x03"),
])
def test_impossible_value(tmp_path, text, key, words):
    err = error_for(tmp_path, text)
    assert err.key == key
    assert words in err.problem


def test_not_toml_and_missing_file(tmp_path):
    assert "not valid TOML" in error_for(tmp_path, "[gate\nid = ").problem
    with pytest.raises(ConfigError) as info:
        load_file(tmp_path / "missing.toml")
    assert "not found" in info.value.problem


def test_valid_file_overrides_defaults_and_keeps_the_rest(tmp_path):
    cfg = load_file(write(tmp_path, "[gate]\nid = 'door-2'\ngroups = 'all'\nrepeat_window_s = 2.5\n"
                                    "[gpio.relay]\npin = 17\n"))
    assert cfg.gate.id == "door-2"
    assert cfg.gate.groups == "all"
    assert cfg.gate.repeat_window_s == 2.5
    assert cfg.get("gpio.relay.pin") == 17
    assert cfg.gate.stale_policy == "warn"
    assert cfg.relay.pulse_ms == 1000
    with pytest.raises(AttributeError):
        _ = cfg.gate.colour
    with pytest.raises(AttributeError):
        cfg.gate.id = "x"


def test_where_the_config_comes_from(tmp_path):
    explicit = write(tmp_path, "[gate]\nid = 'explicit'")
    env_file = tmp_path / "env.toml"
    env_file.write_text("[gate]\nid = 'env'")
    assert load(str(explicit), env={"KIOSK_CONFIG": str(env_file)}).gate.id == "explicit"
    assert load(None, env={"KIOSK_CONFIG": str(env_file)}).gate.id == "env"
    if not Path(configuration.SYSTEM_CONFIG).exists():
        builtin = load(None, env={})
        assert builtin.source == configuration.BUILTIN
        assert builtin.as_dict() == defaults()


def test_state_dir_override_and_resolution(tmp_path):
    cfg = load(None, env={}).with_overrides(state_dir=str(tmp_path / "s"))
    assert cfg.state_path == tmp_path / "s"
    assert configuration.resolve_state_dir("~/k") == Path.home() / "k"


def test_secrets_are_masked():
    values = defaults()
    values["staff"]["pin_hash"] = "scrypt$abc$def"
    out = masked(configuration.Config(values, "x"))
    assert out["staff"]["pin_hash"] == "********"
    assert "scrypt" not in to_toml(out)
    assert masked(configuration.Config(defaults(), "x"))["staff"]["pin_hash"] == ""


def test_printed_config_reads_back_as_the_same_config():
    values = defaults()
    values["gate"]["name"] = 'The "Quote" Bar \\ Lounge'
    values["gate"]["id_patterns"] = [r"^M:(\d+)$"]
    assert validate(tomllib.loads(to_toml(values)), "printed") == values


def test_policy_from_config(tmp_path):
    cfg = load_file(write(tmp_path, "[gate]\nmode = 'any_customer'\ngroups = ['a', 'b']\nid_patterns = ['^X(.+)$']\n"
                                    "timezone = 'Europe/Amsterdam'\nstale_policy = 'deny'"))
    policy = Policy.from_config(cfg.gate)
    assert policy.mode == "any_customer"
    assert policy.groups == ("a", "b")
    assert policy.stale_policy == "deny"
    assert policy.id_patterns[0].pattern == "^X(.+)$"
    assert str(policy.tz) == "Europe/Amsterdam"


# -- the documented config file ----------------------------------------------------------------------

def _documented() -> dict:
    with open(DOCUMENTED, "rb") as fh:
        return tomllib.load(fh)


def test_documented_config_parses_and_equals_the_builtin_defaults():
    assert load_file(DOCUMENTED).as_dict() == defaults()


def test_documented_config_names_every_key():
    data = _documented()
    missing = []
    for section, keys in SCHEMA.items():
        table = data
        for part in filter(None, section.split(".")):
            table = table.get(part, {})
        missing += [f"{section}.{k}".lstrip(".") for k in keys if k not in table]
    assert missing == []


# -- through the command line --------------------------------------------------------------------------

def kiosk(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, timeout=60, **kw)


@pytest.mark.parametrize("text,key", [("[gate]\ncolour = 1", "gate.colour"),
                                      ("[gate]\nrepeat_window_s = 'x'", "gate.repeat_window_s"),
                                      ("[gate]\nstale_policy = 'maybe'", "gate.stale_policy"),
                                      ("[gate", "-")])
def test_bad_config_exits_2_with_one_line(tmp_path, text, key):
    bad = write(tmp_path, text)
    result = kiosk("run", "--config", str(bad), "--state-dir", str(tmp_path / "s"), "--headless", "--source", "stdin",
                   input="I-1001\n")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(bad) in lines[0] and key in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_config_from_the_environment_too(tmp_path):
    import os

    bad = write(tmp_path, "[relay]\npulse_ms = 0")
    result = kiosk("check", "I-1001", "--state-dir", str(tmp_path / "s"), env={**os.environ, "KIOSK_CONFIG": str(bad)})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "relay.pulse_ms" in result.stderr


@pytest.mark.parametrize("make, words", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b'[gate]\nname = "Caf\xe9"\n'), "not UTF-8 text (byte 19 is 0xe9)"),
])
def test_a_config_that_is_a_directory_or_not_utf8_exits_2_with_one_line_naming_it(tmp_path, make, words):
    bad = tmp_path / "kiosk.toml"
    make(bad)
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_file(bad)
    for args in (["status", "--config", str(bad)], ["--config", str(bad), "check", "I-1001"]):
        result = kiosk(*args, "--state-dir", str(tmp_path / "s"))
        assert result.returncode == 2
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"kiosk: config error: {bad}: ") and words in line


@pytest.mark.parametrize("argv", [
    ["--config", "{f}", "status"], ["status", "--config", "{f}"], ["-v", "status", "--config", "{f}"],
    ["--config", "{f}", "status", "-v"], ["--state-dir", "{s}", "--config", "{f}", "status", "--json"],
])
def test_global_options_work_before_and_after_the_command(tmp_path, argv):
    config = write(tmp_path, f'state_dir = "{tmp_path / "s"}"\n[gate]\nid = "door-42"\n')
    result = kiosk(*[a.format(f=config, s=tmp_path / "s") for a in argv])
    assert result.returncode == 0, result.stderr
    assert "door-42" in result.stdout
    assert ("DEBUG" in result.stderr) == ("-v" in argv)


def test_an_option_after_the_command_wins_over_one_before_it(tmp_path):
    before = write(tmp_path, '[gate]\nid = "before"\n')
    after = tmp_path / "after.toml"
    after.write_text('[gate]\nid = "after"\n')
    result = kiosk("--config", str(before), "status", "--config", str(after), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 0, result.stderr
    assert "after" in result.stdout and "before" not in result.stdout
