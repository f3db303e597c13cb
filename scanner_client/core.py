"""The door's sync engine, sans I/O: frames, scans and `now` go in; frames, events, a deadline out.

No socket, clock, randomness or scheduling in here (STYLE §3): the shell (`scanner_client.door`)
feeds `connected`, `receive_frame`, `disconnected`, `scan` and `tick` with the wall-clock time in
seconds, sends `frames_to_send()`, shows `events`, and wakes the core at `next_deadline()`. Scan
ids come from the injected `new_scan_id`; the store (`scanner_client.store.Store`) is the only
state that survives a restart.

Rules and invariants:
  - A scan is journaled (committed) before its verdict is shown, and keeps its `scan_id` for
    ever: every retry, upload or re-upload of it uses that id, so the hub records it once.
  - Online (a socket is up), the hub decides: the scan is sent at once and its `result` shown.
    If no result comes within `answer_timeout`, or the socket drops first, the door decides
    itself (`scanner_client.decide`) and the scan joins the upload queue with its verdict. A
    late result is stored and shown only if the hub decided otherwise.
  - Offline, the door decides at once, from the hub state it holds and its own unconfirmed
    scans (`store.overlay`).
  - The upload queue is the journal's open scans. It goes up one `scan_batch` of at most 500 at a
    time, after `welcome`, oldest first, door-decided scans as `offline: true` with the door's
    verdict (and reason when it refused); a scan sent online whose answer never came (the client
    stopped) goes up as an online scan, for the hub to decide. A batch not answered within
    `UPLOAD_TIMEOUT`, refused with `rate_limited` / `internal` / `database_unavailable`, or cut
    by a disconnect (a close 1013 included: the hub's database is away) is sent
    again later, as is: the hub answers repeats with the stored results.
  - The same code read again within `debounce` seconds counts once: the earlier verdict is shown
    again (`repeat`), nothing is journaled or sent.
  - The cursor moves only with the hub state it describes (store.apply_changes is atomic); a gap
    restarts the stream from the cursor with `hello`, a bad item or `snapshot_required` asks the
    shell for a snapshot (`wants_snapshot`). Scans keep working meanwhile. The hub answers each
    `hello` with a `welcome`, in order: a `snapshot_required` answering an earlier `hello` than the
    last one sent is stale (a snapshot was loaded in between) and asks for nothing.
  - A conflict (a forced offline scan, any door's) is shown once, whether it comes as a live
    `conflict` frame or as a `scan.conflict` change: the store notes each one it has shown.
  - Undo (`undo_last`) annuls this door's latest scan that took effect: at once when the hub
    already holds it, else once it is uploaded; the scan leaves the door's own view at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import msgspec

from protocol.messages import (
    MAX_BATCH_ITEMS,
    MAX_FRAME_BYTES,
    Annul,
    Changes,
    ClientFrame,
    Conflict,
    Counters,
    Error,
    FrameError,
    Hello,
    Result,
    ResultItem,
    Results,
    Scan,
    ScanBatch,
    ScanItem,
    Welcome,
    decode_hub_frame,
    encode_frame,
)
from protocol.reasons import Reason
from protocol.rules import Direction, ListRules
from protocol.sync import ListEntry
from scanner_client.counters import local_counters
from scanner_client.decide import LocalDecision, decide_locally
from scanner_client.events import (
    ConflictNotice,
    Connection,
    CountersChanged,
    DoorEvent,
    Notice,
    StatusChanged,
    TicketView,
    Undone,
    VerdictShown,
)
from scanner_client.store import JournalEntry, Snapshot, Store, SyncError

__all__ = ["ANSWER_TIMEOUT", "DEBOUNCE", "UPLOAD_TIMEOUT", "SyncCore"]

ANSWER_TIMEOUT = 1.5  # seconds the door waits for the hub's verdict before deciding itself
DEBOUNCE = 1.5  # the same code read again within this many seconds counts once
UPLOAD_TIMEOUT = 15.0  # a batch unanswered this long is sent again
UPLOAD_PAUSE = 2.0  # after the hub refused a batch for now (rate_limited, internal)
DEGRADED_FOR = 30.0  # how long a missed answer keeps the door "degraded"
COUNTERS_EVERY = 2.0  # local counters are recomputed at most this often
_MAX_CODE = 1024  # what the wire accepts (protocol.messages.Code)
_ANNUL_ERRORS = frozenset({"not_found", "forbidden", "invalid_state"})
# Refusals "for now": the batch goes again after UPLOAD_PAUSE (database_unavailable comes with a
# close 1013, and the next socket uploads it anyway).
_TRY_LATER = frozenset({"rate_limited", "internal", "database_unavailable"})


class SyncCore:
    """One paired device's sync engine (see the module comment for its rules)."""

    def __init__(
        self,
        store: Store,
        *,
        device_id: str,
        event_id: str,
        new_scan_id: Callable[[], str],
        list_id: str | None = None,
        direction: Direction = Direction.ENTRY,
        debounce: float = DEBOUNCE,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self.store = store
        self.device_id = device_id
        self.event_id = event_id
        self.events: list[DoorEvent] = []
        self.direction = direction
        self.debounce = debounce
        self.answer_timeout = answer_timeout
        self.unpaired = False
        self._new_scan_id = new_scan_id
        self._outbox: list[bytes] = []
        self._socket = False
        self._welcomed = False
        self._catching_up = False
        self._hellos_unanswered = 0  # on this socket; the hub answers each in order
        self._pending: dict[str, float] = {}  # online scans awaiting the hub: scan_id -> deadline
        self._uploading: set[str] = set()
        self._upload_deadline: float | None = None
        self._upload_pause_until = 0.0
        self._annuls: deque[str] = deque()  # annul frames sent, in order (errors carry no id)
        self._recent: dict[str, tuple[float, str]] = {}  # debounce: code -> (read at, scan_id)
        self._shown: dict[str, VerdictShown] = {}  # the verdict shown for each recent scan_id
        self._degraded_until = 0.0
        self._counters_due: float | None = None
        self._last_status: StatusChanged | None = None
        event = store.event()
        self.wants_snapshot = store.cursor() is None or event is None or event.id != event_id
        self.list_id = list_id or store.chosen_list() or self._first_list()

    @property
    def is_welcomed(self) -> bool:
        """The current socket got its `welcome`: the hub knows this device."""
        return self._welcomed

    @property
    def is_caught_up(self) -> bool:
        """Welcomed, holding a snapshot, and the change log read up to the hub's head."""
        return self._welcomed and not self._catching_up and not self.wants_snapshot

    @property
    def awaiting_answers(self) -> int:
        """Online scans whose verdict is not shown yet."""
        return len(self._pending)

    # --- what goes out --------------------------------------------------------------------------

    def frames_to_send(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    def take_events(self) -> list[DoorEvent]:
        out, self.events = self.events, []
        return out

    def next_deadline(self) -> float | None:
        times = list(self._pending.values())
        if self._upload_deadline is not None:
            times.append(self._upload_deadline)
        waiting = self._socket and self._welcomed and not self._uploading
        if waiting and self._upload_pause_until and self.store.queued_count() > len(self._pending):
            times.append(self._upload_pause_until)
        if self._counters_due is not None:
            times.append(self._counters_due)
        if self._degraded_until:
            times.append(self._degraded_until)
        return min(times) if times else None

    # --- connection -----------------------------------------------------------------------------

    def connected(self, now: float) -> None:
        """A socket is open and authenticated (or will be: the hub reads frames in order)."""
        self._socket = True
        self._welcomed = False
        self._hellos_unanswered = 0
        self._hello(None if self.wants_snapshot else self.store.cursor())
        self._status(now)

    def disconnected(self, now: float, close_code: int | None = None) -> None:
        """The socket is gone: every scan waiting for the hub is decided by the door now."""
        self._socket = self._welcomed = self._catching_up = False
        self._outbox.clear()
        self._uploading.clear()
        self._upload_deadline = None
        self._annuls.clear()
        for scan_id in list(self._pending):
            self._decide_pending(scan_id, now)
        if close_code in (4401, 4403):
            self._unpair("revoked" if close_code == 4403 else "unpaired", now)
        self._status(now)

    def snapshot_loaded(self, snapshot: Snapshot, now: float) -> None:
        """The shell downloaded a snapshot: replace the hub state, then follow from its seq."""
        if snapshot.event.id != self.event_id:
            self._notice("hub_error", f"snapshot of event {snapshot.event.id}, not ours")
            return
        self.store.replace_snapshot(snapshot, now=now)
        for conflict in self.store.take_conflicts():
            self._show_conflict(conflict)
        self.wants_snapshot = False
        if self.list_id is None or self.store.checkin_list(self.list_id) is None:
            self.list_id = self.list_id if self.list_id else self._first_list()
        self._notice("snapshot_loaded", f"{len(snapshot.tickets)} tickets, seq {snapshot.seq}")
        if self._socket:
            self._hello(snapshot.seq)
        self._counters_soon(now)
        self._status(now)

    # --- frames from the hub --------------------------------------------------------------------

    def receive_frame(self, data: bytes | str, now: float) -> None:
        try:
            frame = decode_hub_frame(data)
        except FrameError as exc:
            self._notice("hub_error", f"unreadable frame from the hub: {exc}")
            return
        if isinstance(frame, Result):
            self._on_result(frame, now)
        elif isinstance(frame, Results):
            for item in frame.items:
                self._on_result(item, now)
                self._uploading.discard(item.scan_id)
            if not self._uploading:
                self._upload_deadline = None
        elif isinstance(frame, Changes):
            self._on_changes(frame, now)
        elif isinstance(frame, Welcome):
            self._on_welcome(frame, now)
        elif isinstance(frame, Conflict):
            if self.store.note_conflict(frame):  # shown once, whichever way it comes
                self._show_conflict(frame)
        elif isinstance(frame, Counters):
            self.events.append(CountersChanged(frame, "hub"))
        elif isinstance(frame, Error):
            self._on_error(frame, now)
        self._pump(now)
        self._status(now)

    def _on_welcome(self, frame: Welcome, now: float) -> None:
        self._welcomed = True
        if frame.device_id != self.device_id or frame.event_id != self.event_id:
            self._notice("hub_error", "the hub names another device or event: re-pair")
            self._unpair("unpaired", now)
            return
        self._hellos_unanswered = max(0, self._hellos_unanswered - 1)
        if frame.snapshot_required and self._hellos_unanswered:
            # Stale: it answers a hello sent before a snapshot was loaded (and a hello with that
            # snapshot's seq followed). The next welcome decides; no second download.
            self._catching_up = True
        elif frame.snapshot_required:
            self.wants_snapshot = True
            self._catching_up = False
        else:
            self._catching_up = True

    def _show_conflict(self, conflict: Conflict) -> None:
        self.events.append(ConflictNotice(conflict, own=conflict.device == self.device_id))

    def _hello(self, cursor: int | None) -> None:
        self._hellos_unanswered += 1
        self._send(Hello(cursor=cursor))

    def _on_changes(self, frame: Changes, now: float) -> None:
        if self.wants_snapshot:
            return
        try:
            revoked = self.store.apply_changes(frame.items, own_device=self.device_id, now=now)
        except SyncError as exc:
            if exc.gap:
                self._hello(self.store.cursor())
            else:
                self._notice("resync", str(exc))
                self.wants_snapshot = True
            return
        for conflict in self.store.take_conflicts():
            self._show_conflict(conflict)
        if revoked:
            self._unpair("revoked", now)
        if not frame.has_more:
            self._catching_up = False
        if frame.items:
            self._counters_soon(now)

    def _on_result(self, item: Result | ResultItem, now: float) -> None:
        entry = self.store.journal_entry(item.scan_id)
        if entry is None:
            return  # not a scan of this door's journal (a forgotten store): nothing to keep
        if item.annulled and item.scan_id in self._annuls:
            self._annuls.remove(item.scan_id)
            self.store.set_annul(item.scan_id, "done")
            self.events.append(Undone(scan_id=item.scan_id, ok=True, entries=item.entries))
            return
        if entry.state == "done":
            return  # an answer to a repeat
        ticket_id = item.ticket.id if item.ticket else None
        reason = str(item.reason) if item.reason else None
        self.store.record_hub_result(
            item.scan_id,
            item.verdict,
            reason,
            forced=item.forced,
            entries=item.entries,
            ticket_id=ticket_id,
        )
        if self._pending.pop(item.scan_id, None) is not None:
            self._show(self._hub_verdict(entry, item))
        elif entry.door_verdict not in (None, item.verdict) and item.scan_id in self._shown:
            # The door decided it in this session and the hub differs: show the hub's word.
            self._show(msgspec.structs.replace(self._hub_verdict(entry, item), late=True))
        if entry.annul == "requested" and item.verdict != "accepted":
            self.store.set_annul(item.scan_id, None)  # it changed nothing: nothing to undo
        if item.verdict == "accepted":
            self._counters_soon(now)

    def _on_error(self, frame: Error, now: float) -> None:
        if frame.code in _ANNUL_ERRORS and self._annuls:
            scan_id = self._annuls.popleft()
            self.store.set_annul(scan_id, None)
            self.events.append(Undone(scan_id=scan_id, ok=False, error=frame.code))
            return
        if frame.code in _TRY_LATER and self._uploading:
            self._uploading.clear()
            self._upload_deadline = None
            self._upload_pause_until = now + UPLOAD_PAUSE
        if frame.code == "unauthenticated":
            self._unpair("unpaired", now)
        self._notice("hub_error", f"{frame.code}: {frame.detail}")

    # --- scans ----------------------------------------------------------------------------------

    def scan(self, code: str, now: float) -> str | None:
        """A code read at the door; its verdict comes as a VerdictShown event (at once when the
        door decides). Returns the scan id, or None when nothing was recorded."""
        code = code.strip()
        if not code:
            return None
        if self.unpaired:
            self._notice("unpaired", "this device is not paired any more: re-pair it")
            return None
        if self.store.cursor() is None or self.list_id is None:
            self._notice("no_data", "no tickets on this device yet: waiting for the first sync")
            return None
        if len(code) > _MAX_CODE or "\x00" in code or not _is_utf8(code):
            self._show_unrecorded(code, now)  # nothing the hub could record: show, keep nothing
            return None
        if self._repeat(code, now):
            return None
        scan_id = self._new_scan_id()
        scanned_at = datetime.fromtimestamp(now, UTC)
        self._recent[_debounce_key(code)] = (now, scan_id)
        if self._socket:
            entry = JournalEntry(
                scan_id=scan_id,
                code=code,
                list_id=self.list_id,
                direction=self.direction,
                scanned_at=scanned_at,
                ticket_id=None,
                state="pending",
            )
            self.store.journal(entry, now=now)
            self._send(
                Scan(
                    scan_id=scan_id,
                    code=code,
                    list_id=self.list_id,
                    direction=self.direction,
                    scanned_at=scanned_at,
                )
            )
            self._pending[scan_id] = now + self.answer_timeout
        else:
            decision = self._decide(code, scanned_at, self.list_id, self.direction)
            entry = JournalEntry(
                scan_id=scan_id,
                code=code,
                list_id=self.list_id,
                direction=self.direction,
                scanned_at=scanned_at,
                ticket_id=decision.ticket.id if decision.ticket else None,
                state="queued",
                door_verdict="accepted" if decision.verdict.accepted else "rejected",
                door_reason=_reason_text(decision),
                effect=decision.verdict.accepted,
            )
            self.store.journal(entry, now=now)
            self._show(self._door_verdict(entry, decision))
            self._counters_soon(now)
        self._status(now)
        return scan_id

    def check_in(self, ticket_id: str, now: float) -> str | None:
        """A manual check-in of a ticket found by search: a scan of its readable code."""
        ticket = self.store.ticket(ticket_id)
        return None if ticket is None else self.scan(ticket.code, now)

    def undo_last(self, now: float) -> None:
        """Annul this door's latest scan that took effect (see the module comment)."""
        entry = self.store.last_effective_scan()
        if entry is None:
            self.events.append(Undone(scan_id="", ok=False, error="nothing_to_undo"))
            return
        self.store.set_annul(entry.scan_id, "requested")
        if not (entry.state == "done" and self._welcomed):
            self.events.append(Undone(scan_id=entry.scan_id, ok=True, pending=True))
        self._counters_soon(now)
        self._pump(now)
        self._status(now)

    def set_direction(self, direction: Direction, now: float) -> None:
        self.direction = direction
        self._status(now)

    def set_list(self, list_id: str, now: float) -> None:
        if self.store.checkin_list(list_id) is None:
            self._notice("unknown_list", f"no check-in list {list_id} on this device")
            return
        self.list_id = list_id
        self.store.choose_list(list_id)
        self._counters_soon(now)
        self._status(now)

    # --- time -----------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Whatever is due at `now`: scans the hub did not answer, uploads, counters, status."""
        for scan_id, deadline in list(self._pending.items()):
            if deadline <= now:
                self._degraded_until = now + DEGRADED_FOR
                self._decide_pending(scan_id, now)
        if self._upload_deadline is not None and self._upload_deadline <= now:
            self._uploading.clear()
            self._upload_deadline = None
        if self._degraded_until and self._degraded_until <= now:
            self._degraded_until = 0.0
        if self._counters_due is not None and self._counters_due <= now:
            self._counters_due = None
            if not self._socket and self.list_id is not None:
                counters = local_counters(self.store, self.device_id)
                self.events.append(CountersChanged(counters, "door"))
        self._pump(now)
        self._status(now)

    # --- inside ---------------------------------------------------------------------------------

    def _send(self, frame: ClientFrame) -> None:
        if self._socket:
            self._outbox.append(encode_frame(frame))

    def _pump(self, now: float) -> None:
        """Send the next upload batch and the annulments that can go."""
        if not (self._socket and self._welcomed) or self.unpaired:
            return
        if not self._uploading and now >= self._upload_pause_until:
            self._upload_pause_until = 0.0
            batch = [
                _scan_item(entry)
                for entry in self.store.open_scans(MAX_BATCH_ITEMS + len(self._pending))
                if entry.scan_id not in self._pending
            ][:MAX_BATCH_ITEMS]
            batch = _within_frame(batch)
            if batch:
                self._outbox.append(encode_frame(ScanBatch(items=batch)))
                self._uploading = {item.scan_id for item in batch}
                self._upload_deadline = now + UPLOAD_TIMEOUT
        for entry in self.store.annul_requests():
            if entry.state != "done" or entry.scan_id in self._annuls:
                continue
            if entry.hub_verdict != "accepted":
                self.store.set_annul(entry.scan_id, None)
                continue
            self._send(Annul(scan_id=entry.scan_id))
            self._annuls.append(entry.scan_id)

    def _decide_pending(self, scan_id: str, now: float) -> None:
        """The hub did not answer in time (or the socket dropped): the door decides."""
        del self._pending[scan_id]
        entry = self.store.journal_entry(scan_id)
        if entry is None or entry.state != "pending":
            return
        decision = self._decide(entry.code, entry.scanned_at, entry.list_id, entry.direction)
        verdict: Literal["accepted", "rejected"] = (
            "accepted" if decision.verdict.accepted else "rejected"
        )
        self.store.record_door_verdict(
            scan_id,
            verdict,
            _reason_text(decision),
            effect=decision.verdict.accepted,
            ticket_id=decision.ticket.id if decision.ticket else None,
        )
        decided = msgspec.structs.replace(
            entry, state="queued", door_verdict=verdict, effect=decision.verdict.accepted
        )
        self._show(self._door_verdict(decided, decision))
        self._counters_soon(now)

    def _decide(
        self, code: str, scanned_at: datetime, list_id: str, direction: Direction
    ) -> LocalDecision:
        return decide_locally(
            self.store,
            code,
            list_id=list_id,
            direction=direction,
            scanned_at=scanned_at,
            event_id=self.event_id,
            own_device=self.device_id,
        )

    def _repeat(self, code: str, now: float) -> bool:
        """Whether `code` was read within the debounce window; shows the earlier verdict again."""
        if self.debounce <= 0:
            return False
        key = _debounce_key(code)
        seen = self._recent.get(key)
        if seen is None or now - seen[0] >= self.debounce:
            return False
        self._recent[key] = (now, seen[1])  # a code held in front of the reader stays one scan
        shown = self._shown.get(seen[1])
        if shown is not None:
            self.events.append(msgspec.structs.replace(shown, repeat=True, late=False))
        return True

    def _show(self, verdict: VerdictShown) -> None:
        self.events.append(verdict)
        self._shown[verdict.scan_id] = verdict
        if len(self._shown) > 256:  # only recent verdicts can be repeated or corrected
            for scan_id in list(self._shown)[:128]:
                del self._shown[scan_id]
            horizon = max(t for t, _ in self._recent.values()) - max(self.debounce, 60.0)
            self._recent = {k: v for k, v in self._recent.items() if v[0] >= horizon}

    def _show_unrecorded(self, code: str, now: float) -> None:
        self.events.append(
            VerdictShown(
                scan_id="",
                code=code[:64].encode("utf-8", "replace").decode(),
                list_id=self.list_id or "",
                direction=self.direction,
                scanned_at=datetime.fromtimestamp(now, UTC),
                accepted=False,
                reason=Reason.INVALID,
                source="door",
            )
        )

    def _door_verdict(self, entry: JournalEntry, decision: LocalDecision) -> VerdictShown:
        ticket = decision.ticket
        ticket_type = decision.ticket_type
        view = None
        if ticket is not None and ticket_type is not None:
            view = TicketView(
                ticket.id, ticket.code, ticket.holder_name, ticket_type.name, ticket.seat,
                ticket_type.persons,
            )  # fmt: skip
        first = (
            decision.before.first_entry
            if decision.verdict.reason == Reason.ALREADY_REDEEMED
            else None
        )
        return VerdictShown(
            scan_id=entry.scan_id,
            code=entry.code,
            list_id=entry.list_id,
            direction=entry.direction,
            scanned_at=entry.scanned_at,
            accepted=decision.verdict.accepted,
            reason=decision.verdict.reason,
            source="door",
            ticket=view,
            entries=decision.after.entries,
            max_entries=_max_entries(decision),
            first_at=first.at if first else None,
            first_gate=first.gate if first else None,
            first_here=first is not None and first.device_id == self.device_id,
        )

    def _hub_verdict(self, entry: JournalEntry, item: Result | ResultItem) -> VerdictShown:
        info = item.ticket
        view = None
        if info is not None:
            view = TicketView(
                info.id, info.code, info.holder_name, info.ticket_type, info.seat, info.persons
            )
        checkin_list = self.store.checkin_list(entry.list_id)
        first = item.first_scan
        return VerdictShown(
            scan_id=entry.scan_id,
            code=entry.code,
            list_id=entry.list_id,
            direction=entry.direction,
            scanned_at=entry.scanned_at,
            accepted=item.verdict == "accepted",
            reason=item.reason,
            source="hub",
            ticket=view,
            entries=item.entries,
            max_entries=checkin_list.max_entries if checkin_list and view else None,
            first_at=first.at if first else None,
            first_gate=first.gate if first else None,
            first_here=first is not None and first.device == self.device_id,
            forced=item.forced,
        )

    def _counters_soon(self, now: float) -> None:
        if self._counters_due is None:
            # Offline the door computes them itself: at most once a second, not once a scan.
            self._counters_due = now + (1.0 if not self._socket else COUNTERS_EVERY)

    def _unpair(self, code: str, now: float) -> None:
        if not self.unpaired:
            self.unpaired = True
            self._notice(code, "the hub refused this device: pair it again")

    def _notice(self, code: str, detail: str) -> None:
        self.events.append(Notice(code, detail))

    def _first_list(self) -> str | None:
        lists: list[ListEntry] = self.store.lists()
        return lists[0].id if lists else None

    def connection(self, now: float) -> Connection:
        if self.unpaired:
            return Connection.UNPAIRED
        if not self._socket:
            return Connection.OFFLINE
        if self.wants_snapshot:
            return Connection.SYNCING
        if not self._welcomed or self._catching_up or now < self._degraded_until:
            return Connection.DEGRADED
        return Connection.LIVE

    def status(self, now: float) -> StatusChanged:
        checkin_list = self.store.checkin_list(self.list_id) if self.list_id else None
        return StatusChanged(
            connection=self.connection(now),
            synced_at=self.store.synced_at(),
            queued=self.store.queued_count(),
            tickets=self.store.ticket_count(),
            cursor=self.store.cursor(),
            list_id=self.list_id,
            list_name=checkin_list.name if checkin_list else None,
            direction=self.direction,
        )

    def _status(self, now: float) -> None:
        status = self.status(now)
        if status != self._last_status:
            self._last_status = status
            self.events.append(status)


def _debounce_key(code: str) -> str:
    return code if "." in code else code.upper().replace("-", "").replace(" ", "")


def _is_utf8(code: str) -> bool:
    """Whether `code` has a UTF-8 form: a lone surrogate (bytes a reader decoded with
    surrogateescape) has none, so neither SQLite nor a JSON frame can carry it."""
    try:
        code.encode()
    except UnicodeEncodeError:
        return False
    return True


def _max_entries(decision: LocalDecision) -> int | None:
    """The list's entry limit, to show beside the ticket (an unknown list has none)."""
    rules = decision.rules
    return rules.max_entries if decision.ticket and isinstance(rules, ListRules) else None


def _reason_text(decision: LocalDecision) -> str | None:
    reason = decision.verdict.reason
    return None if decision.verdict.accepted or reason is None else str(reason)


def _within_frame(items: list[ScanItem]) -> list[ScanItem]:
    """The longest head of `items` whose `scan_batch` fits in MAX_FRAME_BYTES (never empty when
    `items` is not: one item of the longest code is a few KB). The hub closes a socket that
    sends a bigger frame (1009), and the same batch would go again after every reconnect."""
    size = len(encode_frame(ScanBatch(items=[])))
    for n, item in enumerate(items):
        size += len(msgspec.json.encode(item)) + 1  # and its comma
        if size > MAX_FRAME_BYTES:
            return items[: max(n, 1)]
    return items


def _scan_item(entry: JournalEntry) -> ScanItem:
    """The upload item of a journaled scan: with the door's verdict when the door decided."""
    verdict = entry.door_verdict
    reason = None
    if verdict == "rejected":
        reason = Reason(entry.door_reason or Reason.INVALID)
    return ScanItem(
        scan_id=entry.scan_id,
        code=entry.code,
        list_id=entry.list_id,
        direction=entry.direction,
        scanned_at=entry.scanned_at,
        offline=verdict is not None,
        verdict=verdict,
        reason=reason,
    )
