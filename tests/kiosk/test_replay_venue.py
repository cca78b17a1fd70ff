"""`kiosk replay` and `kiosk check --at` at a gate of a venue count the other gates' events too (the union of
this gate's journal and the venue's store, state_dir/venue.sqlite), as the running gate does.

Real files: a snapshot, a journal written by a live Gate, and a peers' store holding events taken in through
the same checks as the link's (messages.parse_event, PeerStore.add). No broker: neither command connects.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from kiosk.cli import main
from kiosk.journal import iso
from kiosk.venue import messages
from kiosk.venue.store import PeerStore

from test_replay import at, events_of, state  # noqa: F401  (state: the snapshot fixture)

RULES = 'zone = "lounge"\ndirection = "in"\ncapacity = 2\npassback = true\nlimits = ["members: 2/day"]\n'


def venue_config(tmp_path: Path) -> str:
    path = tmp_path / "venue.toml"
    path.write_text('[gate]\nid = "lounge-1"\ntimezone = "Europe/Amsterdam"\nmax_snapshot_age_h = 100000\n'
                    f'[rules]\n{RULES}[venue]\nbroker = "mqtt://127.0.0.1:1"\nid = "club"\n')
    return str(path)


def peer_event(seq: int, moment: datetime, customer: str, *, gate: str = "front", zone: str = "lounge",
               direction: str = "in") -> dict:
    body = {"v": 1, "id": f"{gate}-{seq}", "seq": seq, "prev": seq - 1, "gate": gate, "zone": zone,
            "dir": direction, "at": iso(moment), "verdict": "admit", "source": "camera", "customer": customer,
            "card": customer, "passed": True}
    return messages.parse_event(json.dumps(body).encode(), gate)


def peers(state_dir: Path, events: list[dict]) -> None:
    store = PeerStore(state_dir / "venue.sqlite")
    assert len(store.add(events, at(23))) == len(events)
    store.close()


def test_replay_counts_the_other_gates_admits_among_the_scans(state, tmp_path, capsys):  # noqa: F811 (the fixture)
    peers(state, [
        peer_event(1, at(9, 30), "I-1002"),  # the front door let Pieter into the lounge before our first scan
        peer_event(2, at(10, 3), "O-2001", gate="bar", zone="bar"),  # another zone: an entry, not inside here
        peer_event(3, at(10, 8), "I-1001", gate="exit", direction="out"),  # Jan left through the exit
        peer_event(1, at(10, 20), "O-2001", gate="bar2", zone="bar"),  # Acme's third entry today
        peer_event(4, at(10, 25), "O-2001", gate="exit", direction="out"),  # and out of the lounge again
        peer_event(5, at(12), "O-2001"),  # after the last scan: never counted
    ])
    day = tmp_path / "day.tsv"
    day.write_text("".join(f"{t.isoformat()}\t{text}\n" for t, text in (
        (at(10), "I-1001"),  # admit: Jan and Pieter inside (2 of 2)
        (at(10, 5), "O-2001"),  # full: Pieter counts, though he came in at another gate
        (at(10, 6), "I-1002"),  # already inside (the front door's admit)
        (at(10, 10), "O-2001"),  # admit: Jan went out at the exit gate
        (at(10, 30), "O-2001"),  # limit reached: 2 a day, and the bar's gates admitted Acme twice as well
    )))
    assert main(["replay", str(day), "--config", venue_config(tmp_path), "--state-dir", str(state)]) == 0
    verdicts = [e["verdict"] for e in events_of(capsys.readouterr().out)]
    assert verdicts == ["admit", "full", "already_inside", "admit", "limit_reached"]


def test_replay_without_a_venue_store_decides_from_this_gate_alone(state, tmp_path, capsys):  # noqa: F811 (the fixture)
    day = tmp_path / "day.tsv"
    day.write_text(f"{at(10).isoformat()}\tI-1001\n{at(10, 5).isoformat()}\tO-2001\n{at(10, 6).isoformat()}\tI-1002\n")
    assert main(["replay", str(day), "--config", venue_config(tmp_path), "--state-dir", str(state)]) == 0
    assert [e["verdict"] for e in events_of(capsys.readouterr().out)] == ["admit", "admit", "full"]
    assert not (state / "venue.sqlite").exists()  # a replay creates nothing


def test_check_at_a_time_counts_the_peers_events_up_to_then(state, tmp_path, capsys):  # noqa: F811 (the fixture)
    peers(state, [peer_event(1, at(9, 30), "I-1002"), peer_event(2, at(9, 40), "O-2001"),
                  peer_event(3, at(11), "O-2001", gate="exit", direction="out")])
    cfg = venue_config(tmp_path)
    for moment in (at(9), at(10), at(12)):
        assert main(["check", "I-1001", "--at", moment.isoformat(), "--json", "--config", cfg,
                     "--state-dir", str(state)]) in (0, 1)
    assert main(["check", "I-1002", "--at", at(10).isoformat(), "--json", "--config", cfg,
                 "--state-dir", str(state)]) == 1
    early, full, later, inside = events_of(capsys.readouterr().out)
    assert early["verdict"] == "admit"  # at 09:00 no peer had admitted anyone yet
    assert (full["verdict"], full["reason"]) == ("full", "Full: 2 of 2 inside; please wait")
    assert later["verdict"] == "admit"  # Acme left through the exit gate at 11:00
    assert inside["verdict"] == "already_inside"
    assert PeerStore(state / "venue.sqlite", readonly=True).count() == 3  # check changed nothing
