"""Commands for technicians at the cabinet: `kiosk selftest` and `kiosk relay-off`.

Both ask the composition root (`kiosk.compose`) for their devices, built as `kiosk run` builds them.
"""

from __future__ import annotations

import argparse

from .common import Commands, load_config


def cmd_selftest(args: argparse.Namespace) -> int:
    from .. import compose

    config = load_config(args)
    print(f"self-test of gate {config.gate.id}{' (simulated devices)' if args.simulate else ''}, "
          f"config from {config.source}")
    checks = compose.selftest(config, simulate=args.simulate, timeout_s=args.timeout,
                              progress=lambda text: print(f"  ... {text}", flush=True))
    if not checks:
        print("nothing to test: no GPIO pins and no scan sources are configured")
        return 0
    width = max(len(c.device) for c in checks)
    print(f"{'device':<{width}}  result  detail")
    for c in checks:
        print(f"{c.device:<{width}}  {'pass' if c.ok else 'FAIL':<6}  {c.detail}")
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_relay_off(args: argparse.Namespace) -> int:
    from .. import compose

    pin = compose.relay_off(load_config(args))
    if pin is None:
        print("no relay configured (gpio.relay.pin is empty); nothing to switch off")
        return 0
    print(f"relay on pin {pin} is off")
    return 0


def register(commands: Commands) -> None:
    p = commands.add("selftest", cmd_selftest, "exercise every configured device and print pass/fail",
                     "Cycle the lights, beep, pulse the relay, read the inputs, take camera frames and "
                     "read the scanners; exit status 1 when any check fails.")
    p.add_argument("--simulate", action="store_true", help="the simulated camera, MockFactory GPIO and loop:// serial")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="how long to wait for a camera frame or a scanned code (default 5)")

    p = commands.add("relay-off", cmd_relay_off, "force the door relay off (systemd ExecStopPost)",
                     "Drive the relay pin to its off level and release it. Exit 0 also when no relay "
                     "is configured.")
