"""The door's journal under a Hypothesis state machine: scans, a flaky link, crashes, undo.

One door (a real `LocalStore` on disk and a `SyncCore`) talks to a small model of the hub written
from docs/protocol.md: it records each (device, scan_id) once (sections 3 and 7), decides with
`protocol.rules.decide` (online) or keeps the door's verdict (offline, forced when the rules
would refuse), answers `result` / `results` / `error` in order, keeps a gap-free change log and
streams it to a socket after `hello`, and annuls within 15 minutes, refolding the presence from
the scans that stand. Another door scans at the hub meanwhile.

Rules: scan a ticket (token, code or typed code; entry or exit; at either list; answered at once
or not) / another door scans / the organiser blocks or releases a ticket / the hub refuses the
next scans (rate_limited, internal) / a quiet spell of minutes / connect (with its handshake or
not) / disconnect / deliver or drop the next frame to the hub / deliver or drop the hub's next
frame / deliver everything in flight / tick past the next deadline / crash (close the store,
reopen it, new engine) / undo the last scan. A run starts offline or connected.

Invariants after every step:
  - the journal holds every scan id the door returned, exactly once, and nothing else;
  - a journal entry's state only moves forward (pending -> queued -> done), and its door and hub
    verdicts, once written, never change;
  - every verdict shown was committed to the journal before it was shown (checked at the moment
    the engine emits it, through a second connection) and says what the journal says;
  - the hub recorded each scan once, only scans the door journaled, with the door's verdict for
    the scans the door decided, and every answer the journal stored is the hub's.
At the end (reconnect, deliver everything, tick until quiet): the hub holds every journaled scan
exactly once, nothing is queued, and the door's presence of every ticket on every list (both the
mirror and its own view) equals the hub's.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import tempfile
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from protocol.ids import normalize_code
from protocol.messages import (
    Annul,
    Changes,
    Error,
    FirstScan,
    FrameError,
    Hello,
    Result,
    ResultItem,
    Results,
    Scan,
    ScanBatch,
    ScanItem,
    TicketInfo,
    Welcome,
    decode_client_frame,
    encode_frame,
)
from protocol.reasons import Reason
from protocol.rules import Direction, Presence, ScanFacts, Verdict, apply, decide
from protocol.sync import (
    ListEntry,
    PresenceEntry,
    ScanEntry,
    TicketEntry,
    list_rules,
    ticket_state,
    to_wire,
)
from protocol.token import verify_ticket_token
from scanner_client.core import SyncCore
from scanner_client.decide import presence_seen
from scanner_client.events import DoorEvent, VerdictShown
from scanner_client.store import LocalStore
from tests.scanner_client.helpers import DEVICE, EVENT, OTHER_DEVICE, T0, World, make_world

GATES = {DEVICE: "North", OTHER_DEVICE: "South"}
ANNUL_WINDOW = 15 * 60.0  # seconds after its receipt a device may annul its own scan
PAGE = 500  # items per `changes` frame
RANK = {"pending": 0, "queued": 1, "done": 2}
TICKETS = 4
BALCONY = "LS00000000000002"
# fsync is what a real door pays; tmpfs keeps 50 examples of 40 steps within seconds.
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None


def _world() -> World:
    """Four tickets, a main door that lets guests out and in twice, a single-entry balcony."""
    world = make_world(TICKETS, max_entries=2, allow_reentry=True)
    balcony = ListEntry(BALCONY, "Balcony", None, 1, False, None, None)
    snapshot = msgspec.structs.replace(world.snapshot, lists=[*world.snapshot.lists, balcony])
    world = World(world.key, world.kid, snapshot)
    world.tokens = {t.id: world.token(n) for n, t in enumerate(snapshot.tickets)}
    return world


WORLD = _world()
START = T0.timestamp() + 600


# --- the hub, as docs/protocol.md describes it ---------------------------------------------------


@dataclass
class HubScan:
    device: str
    item: ScanItem
    ticket_id: str | None
    result: ResultItem
    took_effect: bool
    received_at: float
    order: int
    batch: bool  # came in a scan_batch (an upload), not a scan frame
    annulled: bool = False


class Hub:
    """The hub's side of one event: its scans, presence, change log and one device socket."""

    def __init__(self, world: World) -> None:
        snapshot = world.snapshot
        self.keys = {world.kid: world.key.public_key()}
        self.tickets: dict[str, TicketEntry] = {t.id: t for t in snapshot.tickets}
        self.by_code = {t.code: t for t in snapshot.tickets}
        self.types = {t.id: t for t in snapshot.ticket_types}
        self.lists = {entry.id: entry for entry in snapshot.lists}
        self.presence: dict[tuple[str, str], tuple[Presence, str | None]] = {}
        self.scans: dict[tuple[str, str], HubScan] = {}
        self.recorded: Counter[tuple[str, str]] = Counter()
        self.base = snapshot.seq
        self.log: list[dict[str, Any]] = []
        self.to_door: deque[bytes] | None = None  # the door's socket, None when closed
        self.streaming = False
        self.refuse_next: str | None = None  # an error code for the next scan or scan_batch

    @property
    def head(self) -> int:
        return self.base + len(self.log)

    # the socket

    def open_socket(self) -> None:
        self.to_door, self.streaming = deque(), False

    def close_socket(self) -> None:
        self.to_door, self.streaming = None, False

    def _send(self, frame: Any) -> None:
        if self.to_door is not None:
            self.to_door.append(encode_frame(frame))

    def receive(self, data: bytes, now: float) -> None:
        """One frame from the door, answered in order; new changes are pushed after it."""
        frame = decode_client_frame(data)  # strict: the door must never send what the hub refuses
        head = self.head
        if isinstance(frame, Scan | ScanBatch) and self.refuse_next:
            # Over the scan budget, or the database away: nothing of it is recorded (section 5).
            self._send(Error(code=self.refuse_next, detail="try again later"))
            self.refuse_next = None
        elif isinstance(frame, Hello):
            self._hello(frame.cursor)
        elif isinstance(frame, Scan):
            fields = to_wire(frame)
            del fields["type"]
            item = msgspec.convert(fields, ScanItem)
            self._send(
                Result(**msgspec.structs.asdict(self.redeem(DEVICE, item, now, batch=False)))
            )
        elif isinstance(frame, ScanBatch):
            self._send(Results(items=[self.redeem(DEVICE, item, now) for item in frame.items]))
        elif isinstance(frame, Annul):
            self._send(self.annul(DEVICE, frame.scan_id, now))
        self.push(head)

    def _hello(self, cursor: int | None) -> None:
        if cursor is None or not self.base <= cursor <= self.head:
            self._send(
                Welcome(device_id=DEVICE, event_id=EVENT, head=self.head, snapshot_required=True)
            )
            self.streaming = False
            return
        self._send(
            Welcome(device_id=DEVICE, event_id=EVENT, head=self.head, snapshot_required=False)
        )
        items = self.log[cursor - self.base :]
        pages = [items[n : n + PAGE] for n in range(0, len(items), PAGE)] or [[]]
        for n, page in enumerate(pages):
            self._send(Changes(items=page, head=self.head, has_more=n < len(pages) - 1))
        self.streaming = True

    def set_blocked(self, ticket_id: str, blocked: bool) -> None:
        """The organiser puts a ticket on hold or releases it: a ticket.* change."""
        ticket = msgspec.structs.replace(self.tickets[ticket_id], blocked=blocked)
        self.tickets[ticket_id] = self.by_code[ticket.code] = ticket
        kind = "ticket.blocked" if blocked else "ticket.unblocked"
        self.log.append({"seq": self.head + 1, "kind": kind, "ticket": to_wire(ticket)})

    def push(self, since: int) -> None:
        """Stream the changes committed after `since` to a socket that said hello."""
        if self.streaming and self.head > since:
            self._send(Changes(items=self.log[since - self.base :], head=self.head, has_more=False))

    # scans (sections 3, 6, 7)

    def _ticket(self, code: str, at: datetime) -> tuple[TicketEntry | None, Reason | None]:
        if "." not in code:
            return self.by_code.get(normalize_code(code)), None
        claims = verify_ticket_token(code, self.keys, event_id=EVENT, now=at.timestamp())
        if isinstance(claims, Reason):
            return None, claims
        ticket = self.tickets.get(claims.jti)
        if ticket is not None and claims.ver < ticket.version:
            return ticket, Reason.REVOKED
        if ticket is not None and claims.ver > ticket.version:
            return None, Reason.INVALID
        return ticket, None

    def redeem(self, device: str, item: ScanItem, now: float, *, batch: bool = True) -> ResultItem:
        key = (device, item.scan_id)
        if key in self.scans:  # the same scan again: its stored result, nothing changes
            stored = self.scans[key]
            return msgspec.structs.replace(stored.result, annulled=stored.annulled)
        at = item.scanned_at or datetime.fromtimestamp(now, UTC)
        ticket, refusal = self._ticket(item.code, at)
        rules = list_rules(self.lists[item.list_id], EVENT)
        pair = (ticket.id, item.list_id) if ticket else None
        before, first_id = (
            self.presence.get(pair, (Presence(), None)) if pair else (Presence(), None)
        )
        facts = ScanFacts(direction=item.direction, scanned_at=at)
        if item.offline and item.verdict == "rejected":
            verdict, forced = Verdict(False, item.reason), False  # the guest was not let in
        else:
            state = (
                ticket_state(ticket, self.types[ticket.ticket_type_id], EVENT) if ticket else None
            )
            verdict = Verdict(False, refusal) if refusal else decide(facts, state, before, rules)
            forced = item.offline and item.verdict == "accepted" and not verdict.accepted
        took_effect = (verdict.accepted or forced) and pair is not None
        after = before
        if took_effect and pair is not None:
            after = apply(before, facts, rules, gate=GATES[device], device_id=device)
            first_id = first_id if before.first_entry else item.scan_id
            self.presence[pair] = (after, first_id)
        first = before.first_entry
        info = None
        if ticket is not None:
            persons = self.types[ticket.ticket_type_id].persons
            info = TicketInfo(
                ticket.id, ticket.code, ticket.holder_name, "Standard", ticket.seat, persons
            )
        result = ResultItem(
            scan_id=item.scan_id,
            verdict="accepted" if verdict.accepted or forced else "rejected",
            reason=verdict.reason,
            forced=forced,
            offline=item.offline,
            annulled=False,
            ticket=info,
            entries=after.entries,
            first_scan=FirstScan(first.at, first.gate, first.device_id)
            if first and verdict.reason == Reason.ALREADY_REDEEMED
            else None,
        )
        order = len(self.scans)
        self.scans[key] = HubScan(
            device, item, ticket.id if ticket else None, result, took_effect, now, order, batch
        )
        self.recorded[key] += 1
        if took_effect and pair is not None:
            self._log("scan.accepted", self.scans[key], pair)
        return result

    def annul(self, device: str, scan_id: str, now: float) -> Result | Error:
        scan = self.scans.get((device, scan_id))
        if scan is None:
            return Error(code="not_found", detail="no such scan of this device")
        if not scan.took_effect:
            return Error(code="invalid_state", detail="a rejected scan changed nothing")
        if now - scan.received_at > ANNUL_WINDOW:
            return Error(code="forbidden", detail="older than 15 minutes")
        assert scan.ticket_id is not None
        pair = (scan.ticket_id, scan.item.list_id)
        if not scan.annulled:
            scan.annulled = True
            self.presence[pair] = self._refold(pair)
            self._log("scan.annulled", scan, pair)
        answer = msgspec.structs.replace(
            scan.result, annulled=True, entries=self.presence[pair][0].entries
        )
        return Result(**msgspec.structs.asdict(answer))

    def _refold(self, pair: tuple[str, str]) -> tuple[Presence, str | None]:
        """The presence rebuilt from the scans that stand, in the order they were recorded."""
        rules = list_rules(self.lists[pair[1]], EVENT)
        presence, first_id = Presence(), None
        standing = [
            s
            for s in self.scans.values()
            if s.took_effect and not s.annulled and (s.ticket_id, s.item.list_id) == pair
        ]
        for s in sorted(standing, key=lambda s: s.order):
            facts = ScanFacts(direction=s.item.direction, scanned_at=s.item.scanned_at)
            had_first = presence.first_entry is not None
            presence = apply(presence, facts, rules, gate=GATES[s.device], device_id=s.device)
            if not had_first and presence.first_entry is not None:
                first_id = s.item.scan_id
        return presence, first_id

    def entry(self, pair: tuple[str, str]) -> PresenceEntry | None:
        """The presence entry of a ticket on a list, as the snapshot would hold it."""
        presence, first_id = self.presence.get(pair, (Presence(), None))
        first = presence.first_entry
        if presence.entries == 0 and not presence.inside and first is None:
            return None  # empty: the same as none
        return PresenceEntry(
            pair[0],
            pair[1],
            presence.entries,
            presence.inside,
            first_id if first else None,
            first.at if first else None,
            first.gate if first else None,
            first.device_id if first else None,
        )

    def _log(self, kind: str, scan: HubScan, pair: tuple[str, str]) -> None:
        assert scan.ticket_id is not None and scan.item.scanned_at is not None
        entry = ScanEntry(
            scan.item.scan_id,
            scan.device,
            scan.ticket_id,
            scan.item.list_id,
            scan.item.direction,
            scan.item.scanned_at,
            GATES[scan.device],
            scan.item.offline,
            scan.result.forced,
        )
        presence = self.entry(pair) or PresenceEntry(
            pair[0], pair[1], 0, False, None, None, None, None
        )
        item = {
            "seq": self.head + 1,
            "kind": kind,
            "scan": to_wire(entry),
            "presence": to_wire(presence),
        }
        if kind == "scan.annulled":
            item["annulled_by"] = scan.device
        self.log.append(item)


# --- the door -----------------------------------------------------------------------------------


class ShownAfterJournal(list[DoorEvent]):
    """The engine's event list: each verdict is checked against the journal on disk as it is
    emitted, through a connection of its own (it sees only what was committed)."""

    def __init__(self, reader: sqlite3.Connection, shown: list[VerdictShown]) -> None:
        super().__init__()
        self.reader, self.shown = reader, shown

    def append(self, event: DoorEvent) -> None:
        if isinstance(event, VerdictShown):
            row = self.reader.execute(
                "SELECT state, door_verdict, hub_verdict FROM journal WHERE scan_id = ?",
                (event.scan_id,),
            ).fetchone()
            assert row is not None, f"verdict of {event.scan_id} shown before it was journaled"
            state, door_verdict, hub_verdict = row
            said = "accepted" if event.accepted else "rejected"
            if event.source == "hub" and not event.repeat:
                assert (state, hub_verdict) == ("done", said), (event, row)
            elif not event.repeat:
                assert door_verdict == said, (event, row)
            self.shown.append(event)
        super().append(event)


class DoorAndHub(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="door-journal-", dir=SCRATCH))
        self.path = self.dir / "door.db"
        store = LocalStore.open(self.path)
        store.replace_snapshot(WORLD.snapshot, now=START - 60)
        self.reader = sqlite3.connect(self.path)
        self.hub = Hub(WORLD)
        self.now = START
        self.online = False
        self.to_hub: deque[bytes] = deque()
        self.ids = (f"scan-{n:06d}" for n in itertools.count(1))  # survives crashes, as UUIDs do
        self.others = itertools.count(1)
        self.returned: list[str] = []
        self.shown: list[VerdictShown] = []
        self.ranks: dict[str, int] = {}
        self.verdicts: dict[tuple[str, str], str] = {}
        self._start(store)

    def _start(self, store: LocalStore) -> None:
        self.store = store
        # core_for's engine, but with scan ids that stay unique across restarts of the process.
        self.core = SyncCore(
            store, device_id=DEVICE, event_id=EVENT, new_scan_id=lambda: next(self.ids)
        )
        self.core.events = ShownAfterJournal(self.reader, self.shown)

    def _flush(self) -> None:
        frames = self.core.frames_to_send()
        if self.online:
            self.to_hub.extend(frames)
        else:
            assert frames == [], "a frame to send without a socket"
        self.core.events.clear()

    # --- rules --------------------------------------------------------------------------------

    @rule(
        n=st.integers(0, TICKETS - 1),
        form=st.sampled_from(["token", "code", "typed"]),
        direction=st.sampled_from(Direction),
        balcony=st.booleans(),
        wait=st.floats(0, 3),
        answered=st.booleans(),
    )
    def scan(
        self, n: int, form: str, direction: Direction, balcony: bool, wait: float, answered: bool
    ) -> None:
        """A guest at the door (in or out, at the main door or the balcony); with `answered`, the
        link delivers at once whatever the scan sets moving."""
        self.now += wait
        self.core.set_direction(direction, self.now)
        self.core.set_list(BALCONY if balcony else WORLD.list_id, self.now)
        ticket = WORLD.snapshot.tickets[n]
        code = {
            "token": WORLD.tokens[ticket.id],
            "code": ticket.code,
            "typed": ticket.code.lower().replace("-", " "),
        }[form]
        scan_id = self.core.scan(code, self.now)
        if scan_id is not None:
            assert scan_id not in self.returned
            self.returned.append(scan_id)
        self._flush()
        if answered:
            self.exchange()

    @rule(n=st.integers(0, TICKETS - 1), direction=st.sampled_from(Direction), wait=st.floats(0, 3))
    def another_door_scans(self, n: int, direction: Direction, wait: float) -> None:
        self.now += wait
        ticket = WORLD.snapshot.tickets[n]
        item = ScanItem(
            scan_id=f"scan-{next(self.others):06d}",  # the same ids as ours: scoped per device
            code=WORLD.tokens[ticket.id],
            list_id=WORLD.list_id,
            direction=direction,
            scanned_at=datetime.fromtimestamp(self.now, UTC),
        )
        head = self.hub.head
        self.hub.redeem(OTHER_DEVICE, item, self.now)
        self.hub.push(head)

    @rule(n=st.integers(0, TICKETS - 1), blocked=st.booleans())
    def organiser_holds_a_ticket(self, n: int, blocked: bool) -> None:
        head = self.hub.head
        self.hub.set_blocked(WORLD.snapshot.tickets[n].id, blocked)
        self.hub.push(head)

    @rule(code=st.sampled_from(["rate_limited", "internal"]))
    def the_hub_refuses_the_next_scans(self, code: str) -> None:
        self.hub.refuse_next = code

    @rule(minutes=st.floats(5, 20))
    def a_quiet_spell(self, minutes: float) -> None:
        """Nobody at the door for a while: undo windows close, timers expire."""
        self.now += minutes * 60
        self.core.tick(self.now)
        self._flush()

    @initialize(online=st.booleans())
    def start(self, online: bool) -> None:
        if online:
            self.connect(handshake=True)

    @precondition(lambda self: not self.online)
    @rule(handshake=st.booleans())
    def connect(self, handshake: bool = False) -> None:
        self.online = True
        self.hub.open_socket()
        self.core.connected(self.now)
        self._flush()
        if handshake:
            self.exchange()

    @precondition(lambda self: self.online)
    @rule()
    def disconnect(self) -> None:
        self.online = False
        self.to_hub.clear()
        self.hub.close_socket()
        self.core.disconnected(self.now)
        self._flush()

    @precondition(lambda self: bool(self.to_hub))
    @rule(drop=st.booleans())
    def to_the_hub(self, drop: bool) -> None:
        frame = self.to_hub.popleft()
        if not drop:
            self.hub.receive(frame, self.now)

    @precondition(lambda self: bool(self.hub.to_door))
    @rule(drop=st.booleans())
    def to_the_door(self, drop: bool) -> None:
        assert self.hub.to_door is not None
        frame = self.hub.to_door.popleft()
        if not drop:
            self.core.receive_frame(frame, self.now)
            self._flush()

    @rule()
    def exchange(self) -> None:
        """A good moment on the link: every frame in flight arrives, and every answer to it."""
        while self.to_hub or self.hub.to_door:
            if self.to_hub:
                self.to_the_hub(drop=False)
            else:
                self.to_the_door(drop=False)

    @rule(extra=st.floats(0, 1))
    def tick(self, extra: float) -> None:
        deadline = self.core.next_deadline()
        self.now = max(self.now, deadline or self.now) + extra
        self.core.tick(self.now)
        self._flush()

    @rule()
    def crash(self) -> None:
        """The process dies: the socket with it; the journal stays on disk."""
        if self.online:
            self.online = False
            self.to_hub.clear()
            self.hub.close_socket()
        self.store.close()
        self._start(LocalStore.open(self.path))

    @precondition(lambda self: bool(self.returned))
    @rule(wait=st.floats(0, 2))
    def undo(self, wait: float) -> None:
        self.now += wait
        self.core.undo_last(self.now)
        self._flush()

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def the_journal_holds_every_returned_scan_once(self) -> None:
        assert [e.scan_id for e in self.store.journal_entries()] == self.returned

    @invariant()
    def journal_entries_only_move_forward(self) -> None:
        for entry in self.store.journal_entries():
            rank = RANK[entry.state]
            assert rank >= self.ranks.get(entry.scan_id, 0), entry
            self.ranks[entry.scan_id] = rank
            for name in ("door_verdict", "hub_verdict"):
                value = getattr(entry, name)
                if value is not None:
                    assert self.verdicts.setdefault((entry.scan_id, name), value) == value, entry
                else:
                    assert (entry.scan_id, name) not in self.verdicts, entry

    @invariant()
    def the_hub_recorded_each_scan_once_as_the_journal_says(self) -> None:
        assert set(self.hub.recorded.values()) <= {1}
        journal = {e.scan_id: e for e in self.store.journal_entries()}
        for (device, scan_id), scan in self.hub.scans.items():
            if device != DEVICE:
                continue
            entry = journal[scan_id]  # the hub holds no scan the door did not journal
            if scan.item.offline:  # the door decided: the hub keeps its verdict
                assert entry.door_verdict == scan.result.verdict
            elif scan.batch:  # uploaded for the hub to decide: only a scan nobody saw decided
                assert entry.door_verdict is None, entry
            if entry.state == "done":
                assert entry.hub_verdict == scan.result.verdict
                assert entry.effect == (scan.result.verdict == "accepted")
        for entry in journal.values():
            if entry.state == "done":
                assert (DEVICE, entry.scan_id) in self.hub.scans

    # --- the end ------------------------------------------------------------------------------

    def settle(self) -> None:
        """Reconnect, deliver everything, tick until nothing moves."""
        if self.online:
            self.disconnect()
        self.connect()
        for _ in range(500):
            if self.to_hub:
                self.to_the_hub(drop=False)
            elif self.hub.to_door:
                self.to_the_door(drop=False)
            elif self.core.next_deadline() is not None:
                self.tick(0.001)
            else:
                break
            if self._quiet():
                break
        assert self._quiet(), "the door never settled"

    def _quiet(self) -> bool:
        return (
            not self.to_hub
            and not self.hub.to_door
            and self.core.is_caught_up
            and self.core.awaiting_answers == 0
            and self.store.queued_count() == 0
            and not self.store.annul_requests()
        )

    def teardown(self) -> None:
        try:
            self.settle()
            self.the_journal_holds_every_returned_scan_once()
            self.journal_entries_only_move_forward()
            self.the_hub_recorded_each_scan_once_as_the_journal_says()
            journaled = {e.scan_id for e in self.store.journal_entries()}
            held = {scan_id for device, scan_id in self.hub.scans if device == DEVICE}
            assert held == journaled
            assert self.store.queued_count() == 0
            assert self.store.cursor() == self.hub.head
            assert self.store.overlay_pairs() == []
            for ticket_id, ticket in self.hub.tickets.items():
                assert self.store.ticket(ticket_id) == ticket
            for ticket in WORLD.snapshot.tickets:
                for entry in WORLD.snapshot.lists:
                    pair = (ticket.id, entry.id)
                    hub = self.hub.entry(pair)
                    assert self.store.presence(*pair) == hub, pair
                    seen = presence_seen(self.store, ticket.id, list_rules(entry, EVENT), DEVICE)
                    assert seen == self.hub.presence.get(pair, (Presence(), None))[0], pair
        finally:
            self.store.close()
            self.reader.close()
            shutil.rmtree(self.dir, ignore_errors=True)


DoorAndHub.TestCase.settings = hypothesis_settings(
    max_examples=50, stateful_step_count=40, deadline=None
)
TestDoorAndHub = DoorAndHub.TestCase


def test_the_hub_model_refuses_what_the_door_must_never_send() -> None:
    """The model is as strict as the hub: a frame it cannot decode fails the machine."""
    hub = Hub(WORLD)
    hub.open_socket()
    with pytest.raises(FrameError):
        hub.receive(b'{"type": "scan_batch", "items": [{"scan_id": ""}]}', START)


def test_the_hub_model_records_a_repeat_once_and_refolds_an_annulment() -> None:
    hub = Hub(WORLD)
    hub.open_socket()
    ticket = WORLD.snapshot.tickets[0]
    at = T0 + timedelta(minutes=1)
    scan = ScanItem(scan_id="a-1", code=ticket.code, list_id=BALCONY, scanned_at=at)
    first = hub.redeem(DEVICE, scan, START)
    again = hub.redeem(DEVICE, scan, START + 1)
    other = hub.redeem(OTHER_DEVICE, scan, START + 2)  # the same id from another device
    assert (first.verdict, again.verdict, other.verdict) == ("accepted", "accepted", "rejected")
    assert other.reason == Reason.ALREADY_REDEEMED
    assert hub.recorded == Counter({(DEVICE, "a-1"): 1, (OTHER_DEVICE, "a-1"): 1})
    undone = hub.annul(DEVICE, "a-1", START + 3)
    assert isinstance(undone, Result) and undone.annulled and undone.entries == 0
    assert hub.entry((ticket.id, BALCONY)) is None
    assert [i["kind"] for i in hub.log] == ["scan.accepted", "scan.annulled"]
    assert isinstance(hub.annul(DEVICE, "a-1", START + ANNUL_WINDOW + 10), Error)
