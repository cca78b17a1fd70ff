"""For scripts/system-test: the niceness and PID of kiosk.service's reporter process (a child of PID argv[1]).

Prints "nice N pid P" for each child of that PID running kiosk.upstream.reporter; nothing if there is none.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    parent = sys.argv[1]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                args = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # fields[1] is the parent PID, fields[16] the nice value (proc(5): fields 4 and 19)
        if fields[1] == parent and "kiosk.upstream.reporter" in args:
            print("nice", fields[16], "pid", pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
