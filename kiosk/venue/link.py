"""The MQTT link to the venue's broker (paho-mqtt 2.x): publish what we journalled, take in what peers did.

Outbox: the journal itself. A watermark in state (`venue_published_seq`) says up to which journal
row the broker has acknowledged (QoS 1); after a restart or an outage the link publishes from
there, so a kiosk that was away publishes what it journalled meanwhile. A peer that missed some of
our events asks for them by our journal's row number (`want`), and we ask the peers the same from
our per-peer cursors (kiosk.venue.store): both ways catch up, and duplicates are no-ops (event id).

Threads: paho's network loop only queues what arrives and what was acknowledged; one pump thread
reads the journal, writes the store and publishes, so no SQLite work runs in paho's callbacks.
The gate's thread only sets an event (`wake`). Everything else the link does competes with the
gate's decisions for the GIL and the CPU, so the pump takes peers' messages in batches (every
_TAKE_IN_EVERY_S, one store transaction each), reads the journal's newest row only when the gate
journalled something (or every _POLL_S, for what other paths journal), and looks at the peers'
cursors at most every _ASK_EVERY_S: with 10 gates scanning, a gate takes in ~200 peer messages a
second, and a step per message cost more than the messages themselves.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import sqlite3
import ssl
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt

from ..journal import iso
from ..ports import Faults, KeyValues
from ..text import safe_text
from . import messages
from .settings import VenueSettings, topic_level_problem
from .store import PeerStore

log = logging.getLogger(__name__)

WATERMARK = "venue_published_seq"
# the faults' names: the screen shows them in its language (kiosk.display.fault_text, kiosk.i18n fault.venue_*)
DOWN_FAULT = "venue"
AUTH_FAULT = "venue_auth"
_BATCH = 200  # journal rows read per outbox step; also the most publishes awaiting an acknowledgement
_REPLAY = 1000  # rows sent per `want`; the asker asks again while it is still behind
_ASK_AGAIN_S = 3.0  # a want that brought nothing is asked again after this long
_BATCH_QUIET_S = 0.2  # a want's answer has ended when nothing came from that peer for this long
_ANSWER_EVERY_S = 0.1  # wants are answered one at a time this far apart: no peer can make us flood the broker
MAX_GATES = 256  # gates of one venue this kiosk keeps track of; names past it are hostile or a mistake
_DOWN_FAULT_BEATS = 2  # the link counts as down (a fault) after this many heartbeats without a connection
_PASSAGE_LOOK_S = 0.5  # how often the journal is asked for passages of published admits
_BEAT_SOON_S = 1.0  # after a decision, the fleet's view follows within a second, but not once per scan
_TAKE_IN_EVERY_S = 0.02  # peers' messages are taken in at most this often: one batch, one transaction
_TAKE_IN_NOW = 500  # ... or at once when this many are waiting (a catch-up)
_POLL_S = 0.25  # the journal's newest row is read this often without a wake (alarms, `kiosk occupancy set`)
_ASK_EVERY_S = 0.1  # the peers' cursors are compared with their heartbeats at most this often
# The watermark is written to the state file at most this often (and at stop): each write is a synced commit,
# which with one per acknowledged batch (10 a second at a busy gate) stalled the gate's own journal writes
# behind the disk. After a crash the events of those seconds are published again; peers drop them by id.
_SAVE_WATERMARK_S = 5.0


class VenueLink:
    def __init__(self, settings: VenueSettings, *, journal_path: str | Path, store: PeerStore,
                 state: KeyValues, status: Callable[[], dict[str, Any]], clock: Callable[[], datetime],
                 on_peer_events: Callable[[list[dict[str, Any]]], None] | None = None,
                 on_remote_open: Callable[[str], None] | None = None, faults: Faults | None = None):
        self.settings = settings
        self.journal_path = Path(journal_path)
        self.store = store
        self.state = state
        self.status = status
        self.clock = clock
        self.on_peer_events = on_peer_events
        self.on_remote_open = on_remote_open if settings.remote_open else None
        self.faults = faults
        self._down_since = time.monotonic()  # not connected since; a fault after _DOWN_FAULT_S
        self._refused = ""  # the broker's last refusal, logged once until it changes
        self.connected = threading.Event()
        self.rejected: collections.Counter[str] = collections.Counter()
        self._logged: set[tuple[str, str]] = set()
        self._inbox: "queue.SimpleQueue[tuple[str, messages.Payload]]" = queue.SimpleQueue()
        self._acks: "queue.SimpleQueue[int]" = queue.SimpleQueue()
        self._wake = threading.Event()
        self._journalled = True  # the gate journalled since the pump last read the journal's newest row
        self._next_poll = self._next_take_in = self._next_ask = self._next_save = 0.0
        self._stop = threading.Event()
        self._session = 0  # bumped by every (re)connect and disconnect: the pump restarts its outbox from the watermark
        self._pump_session = -1
        self._order: collections.deque[tuple[int, int]] = collections.deque()  # (mid, seq) awaiting PUBACK
        self._acked: set[int] = set()
        self.watermark = self._saved = int(state.get(WATERMARK, 0))
        self._sent = self.watermark
        self._journal_top = 0  # the journal's newest row as the pump last read it
        self._peer_last: dict[str, int] = {}  # peer gate -> last_seq its heartbeat announced
        self._asked: dict[str, tuple[float, int]] = {}  # peer -> (when we last asked, our cursor then)
        self._heard: dict[str, float] = {}  # peer -> when its last event arrived
        self._wants: dict[str, int] = {}  # peer -> the cursor it asked from, waiting for its turn (the latest wins)
        self._next_answer = 0.0
        self._next_beat = self._last_beat = 0.0
        self._beat_soon = False  # a decision changed what the heartbeat says: send it within _BEAT_SOON_S
        self._next_purge = 0.0
        self._awaiting_passage: dict[int, float] = {}  # seq of a published admit -> when, until its passage is known
        self._next_passage_look = 0.0
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        s = settings
        # a persistent session: the broker queues for us while we are away
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"kiosk-{s.venue}-{s.gate}",
                                  clean_session=False)
        if s.username:
            self.client.username_pw_set(s.username, s.password)
        if s.tls:
            self.client.tls_set(ca_certs=s.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        self.client.will_set(self._topic(s.gate, "status"), messages.status_payload(False, iso(clock())), qos=1,
                             retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.max_inflight_messages_set(_BATCH)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _topic(self, gate: str, kind: str) -> str:
        return messages.topic(self.settings.venue, gate, kind)

    # -- life ------------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        self.client.connect_async(s.host, s.port, keepalive=max(5, int(s.heartbeat_s)))
        self.client.loop_start()
        self._thread = threading.Thread(target=self._pump, name="venue-link", daemon=True)
        self._thread.start()
        log.info("venue link to %s as gate %s of venue %s (zone %s, direction %s)", self.settings.url,
                 self.settings.gate, self.settings.venue, self.settings.zone, self.settings.direction)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish what is journalled and not yet published (while the broker answers), say offline, disconnect."""
        deadline = time.monotonic() + timeout_s
        self._journalled = True  # read the journal's newest row once more, whatever journalled it
        while self.connected.is_set() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)  # a pump step reads the journal's newest row
            if self._journal_top <= self.watermark:
                break
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        if self.connected.is_set():
            info = self.client.publish(self._topic(self.settings.gate, "status"),
                                       messages.status_payload(False, iso(self.clock())), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # the connection went meanwhile: the broker sends our last will instead
        messages.disconnect(self.client)
        self._save_watermark()
        if self._db is not None:
            self._db.close()

    def wake(self) -> None:
        """Something was journalled: publish it now rather than at the next poll, and the heartbeat soon."""
        self._beat_soon = True
        self._journalled = True
        self._wake.set()

    # -- paho's thread: only queue ----------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            if str(reason) != self._refused:  # paho retries every few seconds: say it once
                self._refused = str(reason)
                log.warning("venue broker %s refused the connection: %s", self.settings.url, reason)
            if self.faults is not None:
                self.faults.set(AUTH_FAULT, f"Venue broker refused this gate ({reason}): check venue.username and "
                                         "venue.password_file")
            return
        self._refused = ""
        venue, me = self.settings.venue, self.settings.gate
        client.publish(self._topic(me, "status"), messages.status_payload(True, iso(self.clock())), qos=1, retain=True)
        base = messages.root(venue)
        topics = [(f"{base}/+/event", 1), (f"{base}/+/status", 1), (f"{base}/+/heartbeat", 1),
                  (self._topic(me, "want"), 1)]
        if self.on_remote_open is not None:  # only then: the broker's ACL lets only the operator write it
            topics.append((self._topic(me, "open"), 1))
        client.subscribe(topics)
        if self.settings.home_assistant:
            from .home_assistant import discovery

            for name, payload in discovery(self.settings):
                client.publish(name, payload, qos=1, retain=True)
        self._session += 1
        self._asked.clear()  # ask every peer that is ahead of us again
        self._next_beat = 0.0
        self.connected.set()
        if self.faults is not None:
            self.faults.clear(DOWN_FAULT)
            self.faults.clear(AUTH_FAULT)
        log.info("venue link connected to %s", self.settings.url)
        self._wake.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self.connected.is_set():
            self._down_since = time.monotonic()
        if self.connected.is_set() and not self._stop.is_set():
            log.warning("venue link to %s lost (%s); reconnecting", self.settings.url, reason)
        self.connected.clear()
        self._session += 1
        self._wake.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        first = self._inbox.empty()
        self._inbox.put((message.topic, message.payload))
        # before the batch is due the pump is already waiting for that moment (_pump_wait_s): no wake-up per message
        if (first and time.monotonic() >= self._next_take_in) or self._inbox.qsize() >= _TAKE_IN_NOW:
            self._wake.set()

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        self._acks.put(mid)
        self._wake.set()

    # -- the pump thread ---------------------------------------------------------------------------
    def _pump(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(self._pump_wait_s())
            self._wake.clear()
            if not woken and self._inbox.empty() and time.monotonic() < self._next_poll:
                continue  # the batch that might have gathered did not: nothing to do yet
            try:
                self._step()
            except Exception:  # the link must outlive one bad step; the next poll tries again
                log.exception("venue link step failed")
                time.sleep(1)

    def _pump_wait_s(self) -> float:
        """Until the next batch of peers' messages is due (messages arriving before then do not wake the pump),
        at once when one is waiting, else the poll interval; a wake (a decision, an acknowledgement) ends it."""
        now = time.monotonic()
        if now < self._next_take_in:
            return self._next_take_in - now
        return 0.0 if not self._inbox.empty() else _POLL_S

    def _step(self) -> None:
        now = time.monotonic()
        if now >= self._next_take_in or self._inbox.qsize() >= _TAKE_IN_NOW:
            self._next_take_in = now + _TAKE_IN_EVERY_S
            self._take_in()
        self._take_acks()
        if self.watermark != self._saved and now >= self._next_save:  # acknowledged while the last save was recent
            self._save_watermark()
        if now >= self._next_purge:
            self._next_purge = now + 3600
            self.store.purge(self.clock())
        if not self.connected.is_set():
            if self.faults is not None and now - self._down_since >= _DOWN_FAULT_BEATS * self.settings.heartbeat_s \
                    and not self._refused:
                self.faults.set(DOWN_FAULT, f"Venue link to {self.settings.url} down: this gate counts only what it "
                                         "saw itself until it is back")
            return
        if self._pump_session != self._session:  # a new connection: what was in flight may be lost
            self._pump_session = self._session
            self._order.clear()
            self._acked.clear()
            self._sent = self.watermark
        if self._journalled or now >= self._next_poll or self._journal_top > self._sent:  # the last read left some
            self._journalled = False
            self._next_poll = now + _POLL_S
            self._publish_outbox()
        self._publish_passages(now)
        if now >= self._next_beat or (self._beat_soon and now >= self._last_beat + _BEAT_SOON_S):
            self._beat_soon = False
            self._last_beat = now
            self._next_beat = now + self.settings.heartbeat_s
            self.publish_heartbeat()
        if now >= self._next_ask:
            self._next_ask = now + _ASK_EVERY_S
            self._ask_peers(now)
        self._answer_want(now)

    # outbox
    def _journal(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True, check_same_thread=False)
        return self._db

    def _journal_max(self) -> int:
        try:
            return self._journal().execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        except sqlite3.Error:
            return 0

    def _rows(self, after: int, limit: int) -> list[dict[str, Any]]:
        cur = self._journal().execute(
            "SELECT seq, id, at, source, verdict, customer_id, credential, passed, raw FROM events WHERE seq > ?"
            " ORDER BY seq LIMIT ?", (after, limit))
        rows = []
        for seq, eid, at, source, verdict, customer, credential, passed, raw in cur:
            rows.append({"seq": seq, "id": eid, "at": at, "gate": self.settings.gate, "source": source,
                         "verdict": verdict, "customer_id": customer, "credential": credential,
                         "passed": None if passed is None else bool(passed),
                         "value": raw if verdict == "occupancy_set" else None})
        return rows

    def _publish_rows(self, rows: list[dict[str, Any]], prev: int, *, track: bool) -> int:
        """Publish journal rows in order, each naming the row before it; returns the last seq published."""
        s = self.settings
        for row in rows:
            payload = messages.event_payload(row, prev=prev, zone=s.zone, direction=s.direction)
            info = self.client.publish(self._topic(s.gate, "event"), payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break  # not connected any more: the next connection starts again from the watermark
            if track:
                self._order.append((info.mid, row["seq"]))
                if row["passed"] is None and row["verdict"] == "admit":
                    self._awaiting_passage[row["seq"]] = time.monotonic()
            prev = row["seq"]
        return prev

    def _publish_passages(self, now: float) -> None:
        """An admit's passage (did they walk through?) is journalled seconds after the admit was published:
        publish the event again with it. Receivers fill in `passed` on the event they hold."""
        if not self._awaiting_passage or now < self._next_passage_look:
            return
        self._next_passage_look = now + _PASSAGE_LOOK_S
        for seq in [q for q, t in self._awaiting_passage.items() if now - t > self.settings.passage_wait_s]:
            del self._awaiting_passage[seq]  # past passage.timeout_s: the sensor has said all it will
        seqs = sorted(self._awaiting_passage)
        if not seqs:
            return
        cur = self._journal().execute(
            f"SELECT seq FROM events WHERE seq IN ({','.join('?' * len(seqs))}) AND passed IS NOT NULL", seqs)
        for (seq,) in cur.fetchall():
            del self._awaiting_passage[seq]
            # prev = seq - 1 claims no gap before it: a receiver that missed the original is not moved past anything
            self._publish_rows(self._rows(seq - 1, 1), seq - 1, track=False)

    def _publish_outbox(self) -> None:
        room = _BATCH - len(self._order)
        if room <= 0:
            return
        top = self._journal_top = self._journal_max()
        if top < self.watermark:  # a new journal (the old one was deleted): start it from its first row
            log.warning("the journal restarted below the published watermark (%d < %d); publishing it from row 1",
                        top, self.watermark)
            self.watermark = self._sent = 0
            self._save_watermark()
        if top > self._sent:
            self._sent = self._publish_rows(self._rows(self._sent, room), self._sent, track=True)

    def _take_acks(self) -> None:
        """Move the watermark over the rows the broker acknowledged in order (the step saves it now and then)."""
        while True:
            try:
                self._acked.add(self._acks.get_nowait())
            except queue.Empty:
                break
        while self._order and self._order[0][0] in self._acked:
            mid, seq = self._order.popleft()
            self._acked.discard(mid)
            self.watermark = seq

    def _save_watermark(self) -> None:
        self._next_save = time.monotonic() + _SAVE_WATERMARK_S
        if int(self.state.get(WATERMARK, 0)) != self.watermark:
            self.state[WATERMARK] = self.watermark
        self._saved = self.watermark

    # heartbeat
    def publish_heartbeat(self) -> None:
        s = self.settings
        status = self.status()
        beat = {"v": messages.VERSION, "online": True, "at": iso(self.clock()), "zone": s.zone, "dir": s.direction,
                "last_seq": self.watermark, **status}
        self.client.publish(self._topic(s.gate, "heartbeat"),
                            json.dumps(beat, separators=(",", ":"), ensure_ascii=False).encode(), qos=1, retain=True)

    # peers
    def _ask_peers(self, now: float) -> None:
        """Ask each peer that is ahead of our cursor: again as soon as its last answer has ended and moved us on
        (a catch-up runs batch after batch), or after _ASK_AGAIN_S when it brought nothing."""
        cursors = self.store.cursors()
        for peer, last in self._peer_last.items():
            cursor = cursors.get(peer, 0)
            if last <= cursor:
                continue
            asked_at, asked_cursor = self._asked.get(peer, (-1e9, -1))
            answered = cursor > asked_cursor and now - self._heard.get(peer, -1e9) >= _BATCH_QUIET_S
            if answered or now - asked_at >= _ASK_AGAIN_S:
                self._asked[peer] = (now, cursor)
                self.client.publish(self._topic(peer, "want"), messages.want_payload(self.settings.gate, cursor), qos=1)

    def _take_in(self) -> None:
        events: list[dict[str, Any]] = []
        now = self.clock()
        while True:
            try:
                name, payload = self._inbox.get_nowait()
            except queue.Empty:
                break
            where = messages.split_topic(self.settings.venue, name)
            if where is None:
                continue
            gate, kind = where
            try:
                if topic_level_problem(gate):
                    raise messages.BadMessage("malformed", "a gate id that cannot be a topic level")
                if gate not in self._peer_last and gate != self.settings.gate:
                    if len(self._peer_last) >= MAX_GATES:
                        raise messages.BadMessage("too_many_gates", f"more than {MAX_GATES} gates in the venue")
                    self._peer_last[gate] = 0
                if kind == "want":
                    self._queue_want(*messages.parse_want(payload))
                elif kind == "open":
                    self._remote_open(gate, payload)
                elif gate == self.settings.gate:
                    continue  # our own event, status and heartbeat coming back
                elif kind == "event":
                    events.append(messages.parse_event(payload, gate))
                    self._heard[gate] = time.monotonic()
                    if len(events) >= 500:
                        self._store(events, now)
                        events = []
                elif kind == "heartbeat":
                    if not payload:
                        continue  # a retained heartbeat being cleared
                    beat = messages.parse_heartbeat(payload, gate)
                    self._peer_last[gate] = beat["last_seq"]
                    self.store.see_gate(gate, now, heartbeat=beat)
                elif kind == "status":
                    if payload:
                        self.store.see_gate(gate, now, online=messages.parse_status(payload))
            except messages.BadMessage as exc:
                self._reject(gate, kind, exc)
        if events:
            self._store(events, now)

    def _store(self, events: list[dict[str, Any]], now: datetime) -> None:
        new = self.store.add(events, now)
        if new and self.on_peer_events is not None:
            self.on_peer_events(new)

    def _remote_open(self, gate: str, payload: messages.Payload) -> None:
        if gate != self.settings.gate or self.on_remote_open is None:
            return  # not ours, or not allowed here: venue.remote_open = false
        by = messages.parse_open(payload)
        log.warning("remote open once, asked by %s", safe_text(by, 64))
        self.on_remote_open(by)

    def _queue_want(self, peer: str, after: int) -> None:
        if topic_level_problem(peer):
            raise messages.BadMessage("malformed", "a want from a gate id that cannot be a topic level")
        if peer not in self._wants and len(self._wants) >= MAX_GATES:
            raise messages.BadMessage("too_many_gates", f"wants from more than {MAX_GATES} gates")
        self._wants[peer] = after

    def _answer_want(self, now: float) -> None:
        if not self._wants or now < self._next_answer:
            return
        self._next_answer = now + _ANSWER_EVERY_S
        peer = next(iter(self._wants))
        after = self._wants.pop(peer)
        rows = self._rows(after, _REPLAY)
        if rows:
            log.debug("gate %s asked for our events after row %d: sending %d", safe_text(peer, 64), after, len(rows))
            self._publish_rows(rows, after, track=False)

    def _reject(self, gate: str, kind: str, exc: messages.BadMessage) -> None:
        """A bad peer message is dropped; logged once per peer and kind of fault, counted always."""
        self.rejected[exc.kind] += 1
        key = ("*" if exc.kind == "too_many_gates" else gate, exc.kind)  # one line for a flood of names
        if key in self._logged:
            log.debug("ignored another %s message from gate %s", exc.kind, safe_text(gate, 64))
            return
        if len(self._logged) < 1000:
            self._logged.add(key)
        log.warning("ignored a bad %s message from gate %s: %s (further ones like it are only counted)",
                    kind if kind in ("event", "heartbeat", "status", "want", "open") else "peer", safe_text(gate, 64),
                    safe_text(str(exc), 200))
