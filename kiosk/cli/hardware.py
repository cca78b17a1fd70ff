"""Commands for technicians at the cabinet: `kiosk selftest` and `kiosk relay-off`.

Like `kiosk.app`, this imports `hardware/` only inside the commands.
"""

from __future__ import annotations

import argparse

from .common import Commands, load_config


def cmd_selftest(args: argparse.Namespace) -> int:
    from hardware import selftest

    from .. import demo

    config = load_config(args)
    print(f"self-test of gate {config.gate.id}{' (simulated devices)' if args.simulate else ''}, "
          f"config from {config.source}")
    checks = selftest.run(config, simulate=args.simulate, timeout_s=args.timeout, demo_scans=demo.SCANS,
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
    from hardware import gpio


    config = load_config(args)
    pin = config.get("gpio.relay.pin")
    if pin == "":
        print("no relay configured (gpio.relay.pin is empty); nothing to switch off")
        return 0
    from gpiozero import DigitalOutputDevice

    factory = gpio.pin_factory(config.gpio.pin_factory)
    try:
        relay = gpio.make_device(config, "relay", lambda: DigitalOutputDevice(
            pin, active_high=config.get("gpio.relay.active_high"), initial_value=False, pin_factory=factory))
        relay.off()
        relay.close()
    finally:
        factory.close()
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
