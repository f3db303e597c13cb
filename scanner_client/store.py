"""The door's local store: what it knows of its event, and the journal of its own scans (SQLite).

Two halves, one file (`door.db`, WAL, mode 0600):

  hub state   the snapshot folded with the change log: event, keys, ticket types, lists,
              tickets, and the check-in presence of every ticket x list at every door, with the
              cursor (the last `seq` applied). A `changes` page is applied in one transaction
              together with its cursor, so a crash never leaves the cursor ahead of the data.
              This half mirrors the hub exactly (docs/protocol.md section 8): nothing of this
              door's own unconfirmed scans is written into it.
  journal     every scan this door made, appended (synchronous=FULL: committed to disk) BEFORE
              its verdict is shown, never deleted. Its upload state moves forward only:
                pending  sent online, no answer yet and no verdict of the door's own
                queued   the door decided (offline, or the hub did not answer in time)
                done     the hub's result is stored
              `effect` marks a scan that let the guest in (or out) as far as the door knows:
              the door's own admission, then the hub's verdict once it answers. `reflected`
              marks a scan whose effect the hub state already holds (its `scan.*` change item
              arrived, or a snapshot taken after its result). The door's view of a ticket on a
              list is the hub's presence with the effective, unreflected, not-undone journal
              scans folded on top (`overlay`), so offline verdicts count the door's own scans
              and a page of other doors' changes never erases them.

The store is synchronous on purpose: every call is a few indexed lookups or one small commit
(tens of microseconds), and the sync core that calls it must stay free of I/O scheduling.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.messages import Conflict, fits_in_utc
from protocol.rules import Direction
from protocol.sync import (
    EventEntry,
    ListEntry,
    PresenceEntry,
    ScanEntry,
    TicketEntry,
    TicketTypeEntry,
    is_empty,
)
from protocol.token import load_public_jwk

__all__ = [
    "JournalEntry",
    "LocalStore",
    "Snapshot",
    "Store",
    "StoreFacts",
    "SyncError",
    "decode_snapshot",
]

_SCHEMA_VERSION = "1"
_CHECKPOINT_BACKSTOP = 1000
_TOUCHED_MAX = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ticket_types (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, persons INTEGER NOT NULL,
    valid_from TEXT, valid_until TEXT);
CREATE TABLE IF NOT EXISTS lists (
    id TEXT PRIMARY KEY, position INTEGER NOT NULL, name TEXT NOT NULL, ticket_type_ids TEXT,
    max_entries INTEGER, allow_reentry INTEGER NOT NULL, valid_from TEXT, valid_until TEXT);
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY, code TEXT NOT NULL, ticket_type_id TEXT NOT NULL, holder_name TEXT,
    search_name TEXT NOT NULL, seat TEXT, version INTEGER NOT NULL, status TEXT NOT NULL,
    blocked INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkins (
    ticket_id TEXT NOT NULL, list_id TEXT NOT NULL, entries INTEGER NOT NULL,
    inside INTEGER NOT NULL, first_scan_id TEXT, first_at TEXT, first_gate TEXT,
    first_device TEXT, PRIMARY KEY (ticket_id, list_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    local_id INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_id TEXT NOT NULL UNIQUE, code TEXT NOT NULL, list_id TEXT NOT NULL,
    direction TEXT NOT NULL, scanned_at TEXT NOT NULL, ticket_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'done')),
    door_verdict TEXT, door_reason TEXT,
    hub_verdict TEXT, hub_reason TEXT, hub_forced INTEGER, hub_entries INTEGER,
    effect INTEGER NOT NULL DEFAULT 0, reflected INTEGER NOT NULL DEFAULT 0,
    annul TEXT CHECK (annul IN ('requested', 'done')), created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts (
    device TEXT NOT NULL, scan_id TEXT NOT NULL, PRIMARY KEY (device, scan_id)) WITHOUT ROWID;
"""

# Indexes are built after a snapshot's bulk insert (faster than maintaining them row by row).
_INDEXES = """
CREATE INDEX IF NOT EXISTS tickets_code ON tickets (code);
CREATE INDEX IF NOT EXISTS tickets_search ON tickets (search_name);
CREATE INDEX IF NOT EXISTS tickets_type ON tickets (ticket_type_id);
CREATE INDEX IF NOT EXISTS checkins_list ON checkins (list_id);
"""
_JOURNAL_INDEXES = """
CREATE INDEX IF NOT EXISTS journal_open ON journal (state) WHERE state != 'done';
CREATE INDEX IF NOT EXISTS journal_overlay ON journal (ticket_id, list_id)
    WHERE effect = 1 AND reflected = 0;
CREATE INDEX IF NOT EXISTS journal_annul ON journal (annul) WHERE annul = 'requested';
"""


class SyncError(Exception):
    """The hub sent something the store cannot apply: a gap in `seq` or an item of a bad shape.

    `gap` is True for a gap (ask for the changes again from the cursor); otherwise the door's
    copy can no longer be trusted to equal the hub's and needs a new snapshot.
    """

    def __init__(self, detail: str, *, gap: bool = False) -> None:
        super().__init__(detail)
        self.gap = gap


class Snapshot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The hub's snapshot, as decoded from its msgpack (docs/protocol.md section 8).

    Strict like the entities it holds: a key this door does not know is a shape it cannot
    promise to fold as the hub means it.
    """

    event: EventEntry
    seq: int
    keys: list[dict[str, Any]]
    ticket_types: list[TicketTypeEntry]
    lists: list[ListEntry]
    tickets: list[TicketEntry]
    revoked: list[str]
    blocked: list[str]
    checkins: list[PresenceEntry]
    # Only when asked for (`?conflicts=true`): the `conflict` of every `scan.conflict` change.
    conflicts: list[dict[str, Any]] = []


JournalState = Literal["pending", "queued", "done"]
Verdict = Literal["accepted", "rejected"]


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One scan of this door, as journaled."""

    scan_id: str
    code: str
    list_id: str
    direction: Direction
    scanned_at: datetime
    ticket_id: str | None
    state: JournalState
    door_verdict: Verdict | None = None  # what the door decided itself (None: the hub decided)
    door_reason: str | None = None
    hub_verdict: Verdict | None = None
    hub_reason: str | None = None
    hub_forced: bool = False
    hub_entries: int | None = None
    effect: bool = False
    reflected: bool = False
    annul: Literal["requested", "done"] | None = None
    local_id: int = 0


class StoreFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What `tessera-scan status` shows."""

    event_id: str | None
    event_name: str | None
    cursor: int | None
    synced_at: float | None  # wall-clock seconds of the last word from the hub's log
    tickets: int
    lists: list[tuple[str, str]]  # (id, name), in the hub's order
    list_id: str | None  # the list last chosen at this door
    queued: int  # own scans the hub has not confirmed yet
    journal: int  # own scans in all


class Store(Protocol):
    """What the sync engine needs of a store: the hub state, the journal, a few facts.

    `LocalStore` is the implementation; the engine and the door's verdicts see only this.
    """

    hub_version: int  # bumped whenever the hub state changes

    # hub state
    def cursor(self) -> int | None: ...
    def synced_at(self) -> float | None: ...
    def event(self) -> EventEntry | None: ...
    def keys(self) -> Mapping[str, Ed25519PublicKey]: ...
    def ticket(self, ticket_id: str) -> TicketEntry | None: ...
    def ticket_by_code(self, code: str) -> TicketEntry | None: ...
    def ticket_type(self, type_id: str) -> TicketTypeEntry | None: ...
    def checkin_list(self, list_id: str) -> ListEntry | None: ...
    def lists(self) -> list[ListEntry]: ...
    def presence(self, ticket_id: str, list_id: str) -> PresenceEntry | None: ...
    def presence_rows(self) -> Iterator[tuple[str, str, int, bool, str | None]]: ...
    def ticket_persons(self) -> dict[str, tuple[int, bool, str]]: ...
    def ticket_count(self) -> int: ...
    def replace_snapshot(self, snapshot: Snapshot, *, now: float) -> None: ...
    def apply_changes(
        self, items: Sequence[Mapping[str, Any]], *, own_device: str, now: float
    ) -> bool: ...

    # the door's own choices
    def chosen_list(self) -> str | None: ...
    def note_conflict(self, conflict: Conflict) -> bool: ...
    def take_conflicts(self) -> list[Conflict]: ...
    def choose_list(self, list_id: str) -> None: ...

    # journal
    def journal(self, entry: JournalEntry, *, now: float) -> None: ...
    def record_door_verdict(
        self,
        scan_id: str,
        verdict: Verdict,
        reason: str | None,
        *,
        effect: bool,
        ticket_id: str | None,
    ) -> None: ...
    def record_hub_result(
        self,
        scan_id: str,
        verdict: Verdict,
        reason: str | None,
        *,
        forced: bool,
        entries: int,
        ticket_id: str | None,
    ) -> None: ...
    def journal_entry(self, scan_id: str) -> JournalEntry | None: ...
    def overlay(self, ticket_id: str, list_id: str) -> list[JournalEntry]: ...
    def overlay_pairs(self) -> list[tuple[str, str]]: ...
    def overlay_lists(self, ticket_id: str) -> list[str]: ...
    def take_touched(self) -> set[str]: ...
    def touch(self, ticket_ids: set[str]) -> None: ...
    def open_scans(self, limit: int) -> list[JournalEntry]: ...
    def annul_requests(self) -> list[JournalEntry]: ...
    def set_annul(self, scan_id: str, state: Literal["requested", "done"] | None) -> None: ...
    def last_effective_scan(self) -> JournalEntry | None: ...
    def queued_count(self) -> int: ...


class LocalStore:
    """The SQLite store of one paired device (see the module comment for what it holds)."""

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self._db = connection
        self.path = path
        self._keys: dict[str, Ed25519PublicKey] | None = None
        self._lists: dict[str, ListEntry] | None = None
        self._types: dict[str, TicketTypeEntry] | None = None
        self._event: EventEntry | None = None
        self._event_loaded = False
        self._ticket_count: int | None = None
        self._weights: dict[str, tuple[int, bool, str]] | None = None
        # Bumped whenever the hub state changes: what is computed from it (the counters' base)
        # is kept until then.
        self.hub_version = 0
        self._writes = 0  # journal writes since the last WAL checkpoint
        self._touched: set[str] = set()  # see take_touched()
        self._conflicts: list[Conflict] = []  # see take_conflicts()

    @classmethod
    def open(cls, path: Path | str) -> LocalStore:
        """Open (creating it 0600 if new) the store at `path`, in WAL mode."""
        path = Path(path)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        store = cls(connection, path)
        store._setup()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{path}{suffix}", 0o600)
        return store

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.checkpoint()
        self._db.close()

    @property
    def writes_since_checkpoint(self) -> int:
        return self._writes

    def checkpoint(self) -> None:
        """Copy the WAL into the database file. SQLite would do it inside some commit (one scan
        in ~200 would pay a second fsync); the shell calls this when the door is idle instead."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.OperationalError:  # busy or locked: it is only an optimisation, retried
            return
        self._writes = 0

    def _wrote(self, ticket_id: str | None) -> None:
        self._writes += 1
        if self._writes >= _CHECKPOINT_BACKSTOP:  # a door never idle still keeps its WAL small
            self.checkpoint()
        if ticket_id is not None:
            self._touched.add(ticket_id)
            if len(self._touched) > _TOUCHED_MAX:  # nobody reads them (online): start afresh
                self._touched.clear()
                self.hub_version += 1

    def _ticket_of(self, scan_id: str) -> str | None:
        row = self._db.execute("SELECT ticket_id FROM journal WHERE scan_id = ?", (scan_id,))
        found = row.fetchone()
        return None if found is None else found[0]

    def touch(self, ticket_ids: set[str]) -> None:
        """Mark tickets as touched (see take_touched)."""
        self._touched |= ticket_ids

    def take_touched(self) -> set[str]:
        """The tickets whose journal scans changed since the last call (their effect, their
        verdict, an undo): what derived figures such as the counters must look at again."""
        touched, self._touched = self._touched, set()
        return touched

    def _setup(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a journaled scan is on disk before its verdict is shown, even on power loss.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=OFF")
        db.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint()
        db.executescript(_SCHEMA + _INDEXES + _JOURNAL_INDEXES)
        version = self._meta("schema")
        if version is None:
            self._set_meta("schema", _SCHEMA_VERSION)
        elif version != _SCHEMA_VERSION:
            raise RuntimeError(f"door store schema {version} is not {_SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            self._forget_caches()
            raise
        self._db.execute("COMMIT")

    def _forget_caches(self) -> None:
        self._keys = self._lists = self._types = None
        self._event_loaded = False
        self._ticket_count = None
        self._weights = None
        self.hub_version += 1

    # --- meta ---------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def cursor(self) -> int | None:
        value = self._meta("cursor")
        return None if value is None else int(value)

    def synced_at(self) -> float | None:
        value = self._meta("synced_at")
        return None if value is None else float(value)

    def mark_synced(self, now: float) -> None:
        """The hub's change log was read up to its head at `now` (the data's age counts from it)."""
        self._set_meta("synced_at", repr(now))

    def chosen_list(self) -> str | None:
        return self._meta("list_id")

    def choose_list(self, list_id: str) -> None:
        self._set_meta("list_id", list_id)

    def event(self) -> EventEntry | None:
        if not self._event_loaded:
            raw = self._meta("event")
            self._event = None if raw is None else msgspec.json.decode(raw, type=EventEntry)
            self._event_loaded = True
        return self._event

    def keys(self) -> Mapping[str, Ed25519PublicKey]:
        """The public keys that verify tickets (unusable JWKs are skipped, as the hub retires
        them)."""
        if self._keys is None:
            keys: dict[str, Ed25519PublicKey] = {}
            for jwk in msgspec.json.decode(self._meta("keys") or "[]"):
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    kid, key = load_public_jwk(jwk)
                    keys[kid] = key
            self._keys = keys
        return self._keys

    # --- hub state: reads ---------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> TicketEntry | None:
        row = self._db.execute(_TICKET_SELECT + " WHERE id = ?", (ticket_id,)).fetchone()
        return None if row is None else _ticket(row)

    def ticket_by_code(self, code: str) -> TicketEntry | None:
        row = self._db.execute(_TICKET_SELECT + " WHERE code = ? LIMIT 1", (code,)).fetchone()
        return None if row is None else _ticket(row)

    def ticket_type(self, type_id: str) -> TicketTypeEntry | None:
        if self._types is None:
            rows = self._db.execute(
                "SELECT id, name, persons, valid_from, valid_until FROM ticket_types"
            )
            self._types = {
                row[0]: TicketTypeEntry(row[0], row[1], row[2], _time(row[3]), _time(row[4]))
                for row in rows
            }
        return self._types.get(type_id)

    def checkin_list(self, list_id: str) -> ListEntry | None:
        return self._lists_by_id().get(list_id)

    def lists(self) -> list[ListEntry]:
        return list(self._lists_by_id().values())

    def _lists_by_id(self) -> dict[str, ListEntry]:
        if self._lists is None:
            rows = self._db.execute(
                "SELECT id, name, ticket_type_ids, max_entries, allow_reentry, valid_from, "
                "valid_until FROM lists ORDER BY position"
            )
            self._lists = {
                row[0]: ListEntry(
                    row[0],
                    row[1],
                    None if row[2] is None else msgspec.json.decode(row[2]),
                    row[3],
                    bool(row[4]),
                    _time(row[5]),
                    _time(row[6]),
                )
                for row in rows
            }
        return self._lists

    def presence(self, ticket_id: str, list_id: str) -> PresenceEntry | None:
        row = self._db.execute(
            "SELECT ticket_id, list_id, entries, inside, first_scan_id, first_at, first_gate, "
            "first_device FROM checkins WHERE ticket_id = ? AND list_id = ?",
            (ticket_id, list_id),
        ).fetchone()
        if row is None:
            return None
        return PresenceEntry(
            row[0], row[1], row[2], bool(row[3]), row[4], _time(row[5]), row[6], row[7]
        )

    def ticket_count(self) -> int:
        if self._ticket_count is None:  # read on every status line: counted once per change
            self._ticket_count = int(self._db.execute("SELECT count(*) FROM tickets").fetchone()[0])
        return self._ticket_count

    def search(self, text: str, limit: int = 20) -> list[TicketEntry]:
        """Tickets whose holder name contains `text` (case and accents ignored), or whose code
        starts with it; at most `limit`, by name."""
        needle = _searchable(text)
        if len(needle) < 3 or "\x00" in text:  # SQLite ends a LIKE pattern at NUL: it matches all
            return []
        rows = self._db.execute(
            _TICKET_SELECT + " WHERE search_name LIKE ? ESCAPE '\\' OR code LIKE ? ESCAPE '\\' "
            "ORDER BY search_name, code LIMIT ?",
            (f"%{_like_literal(needle)}%", f"{_like_literal(text.strip().upper())}%", limit),
        )
        return [_ticket(row) for row in rows]

    def presence_rows(self) -> Iterator[tuple[str, str, int, bool, str | None]]:
        """(ticket_id, list_id, entries, inside, first_gate) of every presence the hub holds."""
        rows = self._db.execute(
            "SELECT ticket_id, list_id, entries, inside, first_gate FROM checkins"
        )
        for row in rows:
            yield row[0], row[1], row[2], bool(row[3]), row[4]

    def overlay_lists(self, ticket_id: str) -> list[str]:
        """The lists on which this door's unconfirmed scans change a ticket's presence."""
        rows = self._db.execute(
            "SELECT DISTINCT list_id FROM journal WHERE ticket_id = ? AND effect = 1 "
            "AND reflected = 0 AND annul IS NULL",
            (ticket_id,),
        )
        return [row[0] for row in rows]

    def overlay_pairs(self) -> list[tuple[str, str]]:
        """The (ticket_id, list_id) pairs that this door's unconfirmed scans change."""
        rows = self._db.execute(
            "SELECT DISTINCT ticket_id, list_id FROM journal WHERE effect = 1 AND reflected = 0 "
            "AND annul IS NULL AND ticket_id IS NOT NULL"
        )
        return [(row[0], row[1]) for row in rows]

    def ticket_persons(self) -> dict[str, tuple[int, bool, str]]:
        """Each ticket's (persons, valid, ticket_type_id): what the counters weigh (cached
        until the hub state changes; do not modify it)."""
        if self._weights is None:
            rows = self._db.execute(
                "SELECT t.id, tt.persons, t.status, t.ticket_type_id "
                "FROM tickets t JOIN ticket_types tt ON tt.id = t.ticket_type_id"
            )
            self._weights = {row[0]: (row[1], row[2] == "valid", row[3]) for row in rows}
        return self._weights

    # --- hub state: writes --------------------------------------------------------------------

    def replace_snapshot(self, snapshot: Snapshot, *, now: float) -> None:
        """Replace the hub state by `snapshot`, in one transaction. Journal scans the hub had
        answered before are reflected in it."""
        with self._transaction() as db:
            for table in ("ticket_types", "lists", "tickets", "checkins"):
                db.execute(f"DELETE FROM {table}")
            # executescript would commit: statements one by one keep the one transaction.
            for name in ("tickets_code", "tickets_search", "tickets_type", "checkins_list"):
                db.execute(f"DROP INDEX IF EXISTS {name}")
            db.executemany(_TYPE_UPSERT, [_type_row(t) for t in snapshot.ticket_types])
            db.executemany(
                _LIST_UPSERT, [_list_row(entry, n) for n, entry in enumerate(snapshot.lists)]
            )
            db.executemany(_TICKET_UPSERT, [_ticket_row(t) for t in snapshot.tickets])
            db.executemany(
                _PRESENCE_UPSERT, [_presence_row(p) for p in snapshot.checkins if not is_empty(p)]
            )
            for statement in _INDEXES.split(";"):
                if statement.strip():
                    db.execute(statement)
            self._set_meta("event", msgspec.json.encode(snapshot.event).decode())
            self._set_meta("keys", msgspec.json.encode(snapshot.keys).decode())
            self._set_meta("cursor", str(snapshot.seq))
            self._set_meta("synced_at", repr(now))
            db.execute("UPDATE journal SET reflected = 1 WHERE state = 'done' AND reflected = 0")
            fresh = [c for c in map(_conflict, snapshot.conflicts) if _note_conflict(db, c)]
            self._forget_caches()
        self._conflicts.extend(fresh)
        self._db.execute("ANALYZE")

    def apply_changes(
        self, items: Sequence[Mapping[str, Any]], *, own_device: str, now: float
    ) -> bool:
        """Fold a page of change items (in `seq` order) and move the cursor, in one transaction.

        Items at or below the cursor are skipped (a reconnect may replay them). Returns whether
        an item revoked this device. Raises SyncError for a gap or a bad item; then nothing of
        the page is applied.
        """
        revoked = applied = False
        fresh: list[Conflict] = []
        cursor = self.cursor()
        if cursor is None:
            raise SyncError("changes before any snapshot")
        with self._transaction() as db:
            for item in items:
                seq = item.get("seq")
                if not isinstance(seq, int) or isinstance(seq, bool):
                    raise SyncError(f"change item without an integer seq: {item!r:.200}")
                if seq <= cursor:
                    continue
                if seq != cursor + 1:
                    raise SyncError(f"gap in the change log: {seq} after {cursor}", gap=True)
                try:
                    revoked |= self._apply(db, item, own_device, fresh)
                except (ValueError, TypeError, KeyError) as exc:  # ValidationError is a ValueError
                    raise SyncError(f"bad change item {seq}: {exc}") from None
                cursor = seq
                applied = True
            self._set_meta("cursor", str(cursor))
            self._set_meta("synced_at", repr(now))
        self._conflicts.extend(fresh)  # committed: they are noted as seen
        if applied:
            self._ticket_count = self._weights = None
            self.hub_version += 1
        return revoked

    def note_conflict(self, conflict: Conflict) -> bool:
        """Note a conflict as seen (live frame); whether it is new, i.e. to be shown now."""
        with self._transaction() as db:
            return _note_conflict(db, conflict)

    def take_conflicts(self) -> list[Conflict]:
        """The conflicts `apply_changes` met for the first time, each once (then shown)."""
        out, self._conflicts = self._conflicts, []
        return out

    def _apply(
        self,
        db: sqlite3.Connection,
        item: Mapping[str, Any],
        own_device: str,
        fresh: list[Conflict],
    ) -> bool:
        kind = item.get("kind")
        if kind == "event.updated":
            event = _checked(msgspec.convert(item["event"], EventEntry))
            self._set_meta("event", msgspec.json.encode(event).decode())
            self._event_loaded = False
        elif kind in ("ticket_type.created", "ticket_type.updated"):
            ticket_type = _checked(msgspec.convert(item["ticket_type"], TicketTypeEntry))
            db.execute(_TYPE_UPSERT, _type_row(ticket_type))
            self._types = None
        elif kind in ("list.created", "list.updated"):
            entry = _checked(msgspec.convert(item["list"], ListEntry))
            position = db.execute(
                "SELECT coalesce((SELECT position FROM lists WHERE id = ?), "
                "(SELECT coalesce(max(position), -1) + 1 FROM lists))",
                (entry.id,),
            ).fetchone()[0]
            db.execute(_LIST_UPSERT, _list_row(entry, position))
            self._lists = None
        elif isinstance(kind, str) and kind.startswith("ticket."):
            ticket = _checked(msgspec.convert(item["ticket"], TicketEntry))
            db.execute(_TICKET_UPSERT, _ticket_row(ticket))
        elif kind in ("scan.accepted", "scan.annulled"):
            scan = _checked(msgspec.convert(item["scan"], ScanEntry))
            presence = _checked(msgspec.convert(item["presence"], PresenceEntry))
            if is_empty(presence):
                db.execute(
                    "DELETE FROM checkins WHERE ticket_id = ? AND list_id = ?",
                    (presence.ticket_id, presence.list_id),
                )
            else:
                db.execute(_PRESENCE_UPSERT, _presence_row(presence))
            if scan.device_id == own_device:
                db.execute("UPDATE journal SET reflected = 1 WHERE scan_id = ?", (scan.scan_id,))
        elif kind == "scan.conflict":
            conflict = _conflict(item["conflict"])
            if _note_conflict(db, conflict):
                fresh.append(conflict)
        elif kind == "keys.changed":
            keys = msgspec.convert(item["keys"], list[dict[str, Any]])
            self._set_meta("keys", msgspec.json.encode(keys).decode())
            self._keys = None
        elif kind == "device.revoked":
            return bool(item["device"]["id"] == own_device)
        # Unknown kinds are skipped: newer hubs add them (docs/protocol.md section 4).
        return False

    # --- journal ------------------------------------------------------------------------------

    def journal(self, entry: JournalEntry, *, now: float) -> None:
        """Append a scan of this door, durably (committed before this returns)."""
        self._db.execute(
            "INSERT INTO journal (scan_id, code, list_id, direction, scanned_at, ticket_id, "
            "state, door_verdict, door_reason, effect, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.scan_id,
                entry.code,
                entry.list_id,
                str(entry.direction),
                _text(entry.scanned_at),
                entry.ticket_id,
                entry.state,
                entry.door_verdict,
                entry.door_reason,
                int(entry.effect),
                now,
            ),
        )
        self._wrote(entry.ticket_id)

    def record_door_verdict(
        self,
        scan_id: str,
        verdict: Verdict,
        reason: str | None,
        *,
        effect: bool,
        ticket_id: str | None,
    ) -> None:
        """The door decided a pending scan itself (the hub did not answer in time)."""
        self._db.execute(
            "UPDATE journal SET state = 'queued', door_verdict = ?, door_reason = ?, effect = ?, "
            "ticket_id = coalesce(ticket_id, ?) WHERE scan_id = ? AND state = 'pending'",
            (verdict, reason, int(effect), ticket_id, scan_id),
        )
        self._wrote(ticket_id or self._ticket_of(scan_id))

    def record_hub_result(
        self,
        scan_id: str,
        verdict: Verdict,
        reason: str | None,
        *,
        forced: bool,
        entries: int,
        ticket_id: str | None,
    ) -> None:
        """The hub's result for a scan: stored once; from then on the hub's verdict is the
        scan's effect (a scan the hub refused takes no effect, whatever the door did)."""
        self._db.execute(
            "UPDATE journal SET state = 'done', hub_verdict = ?, hub_reason = ?, hub_forced = ?, "
            "hub_entries = ?, effect = ?, ticket_id = coalesce(?, ticket_id) "
            "WHERE scan_id = ? AND state != 'done'",
            (verdict, reason, int(forced), entries, int(verdict == "accepted"), ticket_id, scan_id),
        )
        self._wrote(ticket_id or self._ticket_of(scan_id))

    def journal_entry(self, scan_id: str) -> JournalEntry | None:
        row = self._db.execute(_JOURNAL_SELECT + " WHERE scan_id = ?", (scan_id,)).fetchone()
        return None if row is None else _journal(row)

    def overlay(self, ticket_id: str, list_id: str) -> list[JournalEntry]:
        """This door's scans of a ticket on a list that took effect and the hub state does not
        hold yet, oldest first (undone ones left out)."""
        rows = self._db.execute(
            _JOURNAL_SELECT + " WHERE ticket_id = ? AND list_id = ? AND effect = 1 "
            "AND reflected = 0 AND annul IS NULL ORDER BY local_id",
            (ticket_id, list_id),
        )
        return [_journal(row) for row in rows]

    def open_scans(self, limit: int) -> list[JournalEntry]:
        """Scans the hub has not answered yet, oldest first: what an upload sends."""
        # Named: before the first ANALYZE the planner walks the whole journal in local_id order
        # instead of the few open rows, and it asks this after every answer from the hub.
        rows = self._db.execute(
            _JOURNAL_SELECT + " INDEXED BY journal_open WHERE state != 'done' "
            "ORDER BY local_id LIMIT ?",
            (limit,),
        )
        return [_journal(row) for row in rows]

    def annul_requests(self) -> list[JournalEntry]:
        rows = self._db.execute(
            _JOURNAL_SELECT + " WHERE annul = 'requested' ORDER BY local_id LIMIT 100"
        )
        return [_journal(row) for row in rows]

    def set_annul(self, scan_id: str, state: Literal["requested", "done"] | None) -> None:
        self._db.execute("UPDATE journal SET annul = ? WHERE scan_id = ?", (state, scan_id))
        self._wrote(self._ticket_of(scan_id))

    def last_effective_scan(self) -> JournalEntry | None:
        """This door's latest scan that let someone in or out and is not undone."""
        row = self._db.execute(
            _JOURNAL_SELECT + " WHERE effect = 1 AND annul IS NULL ORDER BY local_id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else _journal(row)

    def queued_count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM journal WHERE state != 'done'").fetchone()
        return int(row[0])

    def journal_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM journal").fetchone()[0])

    def journal_entries(self) -> list[JournalEntry]:
        """The whole journal, oldest first (for audits and tests)."""
        return [_journal(row) for row in self._db.execute(_JOURNAL_SELECT + " ORDER BY local_id")]

    def facts(self) -> StoreFacts:
        event = self.event()
        return StoreFacts(
            event_id=event.id if event else None,
            event_name=event.name if event else None,
            cursor=self.cursor(),
            synced_at=self.synced_at(),
            tickets=self.ticket_count(),
            lists=[(entry.id, entry.name) for entry in self.lists()],
            list_id=self.chosen_list(),
            queued=self.queued_count(),
            journal=self.journal_count(),
        )


# --- rows <-> entities ------------------------------------------------------------------------

_TICKET_SELECT = (
    "SELECT id, code, ticket_type_id, holder_name, seat, version, status, blocked FROM tickets"
)
_TICKET_UPSERT = (
    "INSERT OR REPLACE INTO tickets (id, code, ticket_type_id, holder_name, search_name, seat, "
    "version, status, blocked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TYPE_UPSERT = (
    "INSERT OR REPLACE INTO ticket_types (id, name, persons, valid_from, valid_until) "
    "VALUES (?, ?, ?, ?, ?)"
)
_LIST_UPSERT = (
    "INSERT OR REPLACE INTO lists (id, position, name, ticket_type_ids, max_entries, "
    "allow_reentry, valid_from, valid_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_PRESENCE_UPSERT = (
    "INSERT OR REPLACE INTO checkins (ticket_id, list_id, entries, inside, first_scan_id, "
    "first_at, first_gate, first_device) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_JOURNAL_SELECT = (
    "SELECT scan_id, code, list_id, direction, scanned_at, ticket_id, state, door_verdict, "
    "door_reason, hub_verdict, hub_reason, hub_forced, hub_entries, effect, reflected, annul, "
    "local_id FROM journal"
)


def _text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _like_literal(text: str) -> str:
    """`text` as a LIKE pattern (with ESCAPE '\\') that matches exactly `text`."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _searchable(text: str) -> str:
    """Lower case without accents or extra blanks: `Élodie  Müller` finds `elodie muller`."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _ticket(row: Sequence[Any]) -> TicketEntry:
    return TicketEntry(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]))


def _ticket_row(ticket: TicketEntry) -> tuple[Any, ...]:
    return (
        ticket.id,
        ticket.code,
        ticket.ticket_type_id,
        ticket.holder_name,
        _searchable(ticket.holder_name or ""),
        ticket.seat,
        ticket.version,
        ticket.status,
        int(ticket.blocked),
    )


def _type_row(entry: TicketTypeEntry) -> tuple[Any, ...]:
    return (entry.id, entry.name, entry.persons, _text(entry.valid_from), _text(entry.valid_until))


def _list_row(entry: ListEntry, position: int) -> tuple[Any, ...]:
    types = None if entry.ticket_type_ids is None else msgspec.json.encode(entry.ticket_type_ids)
    return (
        entry.id,
        position,
        entry.name,
        None if types is None else types.decode(),
        entry.max_entries,
        int(entry.allow_reentry),
        _text(entry.valid_from),
        _text(entry.valid_until),
    )


def _presence_row(entry: PresenceEntry) -> tuple[Any, ...]:
    return (
        entry.ticket_id,
        entry.list_id,
        entry.entries,
        int(entry.inside),
        entry.first_scan_id,
        _text(entry.first_at),
        entry.first_gate,
        entry.first_device,
    )


def _journal(row: Sequence[Any]) -> JournalEntry:
    return JournalEntry(
        scan_id=row[0],
        code=row[1],
        list_id=row[2],
        direction=Direction(row[3]),
        scanned_at=datetime.fromisoformat(row[4]),
        ticket_id=row[5],
        state=row[6],
        door_verdict=row[7],
        door_reason=row[8],
        hub_verdict=row[9],
        hub_reason=row[10],
        hub_forced=bool(row[11]),
        hub_entries=row[12],
        effect=bool(row[13]),
        reflected=bool(row[14]),
        annul=row[15],
        local_id=row[16],
    )


_Entity = TypeVar("_Entity", bound=msgspec.Struct)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_TEXT = 1024


def _conflict(fields: Any) -> Conflict:
    """The conflict in a `scan.conflict` change or a snapshot: the `conflict` frame's fields
    without `type`. ValueError (msgspec's ValidationError is one) for anything else."""
    if not isinstance(fields, dict) or "type" in fields:
        raise ValueError("conflict: not a map of the conflict frame's fields")
    return _checked(msgspec.convert({**fields, "type": "conflict"}, Conflict))


def _note_conflict(db: sqlite3.Connection, conflict: Conflict) -> bool:
    """Record `conflict` as seen by this door; whether it was not seen before."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO conflicts (device, scan_id) VALUES (?, ?)",
        (conflict.device or "", conflict.scan_id),
    )
    return cursor.rowcount == 1


def _checked(entity: _Entity) -> _Entity:
    """`entity` if the store can hold it as the hub meant it; ValueError otherwise.

    Times must carry an offset and lie inside the wire's calendar (protocol.messages.EARLIEST ..
    LATEST once in UTC): a naive time would be read in this machine's zone and compared with
    aware ones, and a time at the calendar's edge overflows when converted to UTC or a venue's
    zone. Integers must fit SQLite's 64 bits (the hub's own columns are no wider). Strings hold
    at most 1,024 characters, the longest the protocol carries (a code, docs/protocol.md section
    2): anything longer is garbage, and a megabyte of holder name would stall every screen and
    search that shows it.
    """
    for name in entity.__struct_fields__:
        value = getattr(entity, name)
        if isinstance(value, datetime):
            if value.tzinfo is None or not fits_in_utc(value):
                raise ValueError(f"{name}: not a time with an offset in 0001-01-02..9999-12-30")
        elif isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{name}: {value} does not fit in 64 bits")
        elif isinstance(value, str) and len(value) > _MAX_TEXT:
            raise ValueError(f"{name}: {len(value)} characters, over {_MAX_TEXT}")
        elif isinstance(value, list) and any(len(text) > _MAX_TEXT for text in value):
            raise ValueError(f"{name}: an item of over {_MAX_TEXT} characters")
    return entity


def decode_snapshot(raw: bytes) -> Snapshot:
    """The snapshot in decompressed msgpack bytes; raises SyncError for anything else.

    Every entity is checked here (`_checked`), off the event loop (the door decodes in a thread),
    so that `replace_snapshot` can store whatever this returns.
    """
    try:
        snapshot = msgspec.msgpack.decode(raw, type=Snapshot)
        msgspec.json.encode(snapshot.keys)  # the store keeps them as JSON: no msgpack extensions
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, TypeError) as exc:
        raise SyncError(f"not a snapshot: {exc}") from None
    if not 0 <= snapshot.seq <= _INT64_MAX:
        raise SyncError(f"not a snapshot: seq {snapshot.seq} out of range")
    entities: list[msgspec.Struct] = [snapshot.event]
    for part in (snapshot.ticket_types, snapshot.lists, snapshot.tickets, snapshot.checkins):
        entities.extend(part)
    try:
        for entity in entities:
            _checked(entity)
        for fields in snapshot.conflicts:
            _conflict(fields)
    except ValueError as exc:
        raise SyncError(f"not a snapshot: {exc}") from None
    return snapshot
