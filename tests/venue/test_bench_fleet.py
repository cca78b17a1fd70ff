"""scripts/bench_venue.py --gates: the fleet benchmark runs end to end on a small fleet and prints its table.

No timing is asserted (speed goes to BENCHMARKS.md): only that every gate scanned, decided every scan as an
admit, and heard every other gate's events through the real broker.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import MOSQUITTO, ROOT


def test_two_gates_and_the_single_gate_print_one_row_each():
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does it)")
    done = subprocess.run([sys.executable, "scripts/bench_venue.py", "--gates", "2", "--seconds", "2", "--rate", "5",
                           "--runs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    number = r"\s+[-+]?\d+\.\d\d"
    rows = {m[1]: m for m in re.finditer(rf"^(g01|g02|alone)\s+(\d+)(?:{number}){{7}}\s+(\d+)\s+(\d+)\s+(.*)$",
                                         done.stdout, re.M)}
    assert sorted(rows) == ["alone", "g01", "g02"], done.stdout
    for name, row in rows.items():
        assert row[2] == "10", row[0]  # 2 s at 5 scans/s
        assert row[5] == "{'admit': 10}", row[0]
        assert row[3] == ("0" if name == "alone" else "10"), row[0]  # the other venue gate's 10 events
        if name == "alone":
            assert row[4] == "0", row[0]  # no link, no link CPU
    assert "worst gate p99 - single-gate p99" in done.stdout
