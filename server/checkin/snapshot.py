"""The scanner snapshot: everything a door needs to decide offline, as of one change-log `seq`.

Read in ONE transaction whose reads all see the same state (`snapshot_session`: REPEATABLE READ
on PostgreSQL; on SQLite a read transaction in WAL mode is a snapshot), with the event's head read
inside it, so the snapshot is exactly the state after change `seq` and the device follows the
change log from there without gap or overlap.

Format: a msgpack map `{event, seq, keys, ticket_types, lists, tickets, revoked, blocked,
checkins}`, each entity in its `protocol.sync` shape (the shape the change log carries it in);
times are RFC 3339 UTC strings; compressed with zstd or gzip (`Content-Encoding`). Asked with
`conflicts=True` (a door that shows them: `?conflicts=true`), it also holds `conflicts`, the
`conflict` of every `scan.conflict` change up to `seq` (decision 0012); without, the map is
exactly the one older doors decode strictly.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import zstandard
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.sync import PresenceEntry, TicketEntry, is_empty
from protocol.token import public_jwk
from server.changes.models import Change
from server.changes.service import ChangeKind, head
from server.checkin.models import CheckinList, PresenceRow
from server.checkin.redeem import presence_entry
from server.checkin.service import list_entry
from server.checkin.store import presence_row, public_keys
from server.db import Database
from server.events.models import Event, TicketType
from server.events.service import event_entry, ticket_type_entry
from server.tickets.models import Ticket, TicketStatus

__all__ = ["SnapshotBuilds", "build_snapshot", "compress", "snapshot_session"]

_encoder = msgspec.msgpack.Encoder()


@asynccontextmanager
async def snapshot_session(database: Database) -> AsyncIterator[AsyncSession]:
    """A read-only transaction in which every read sees one consistent state."""
    if database.is_sqlite:
        async with database.transaction(read_only=True) as session:
            yield session
        return
    engine = database.engine.execution_options(isolation_level="REPEATABLE READ")
    async with database.sessions(bind=engine) as session, session.begin():
        yield session


async def build_snapshot(
    session: AsyncSession, event_id: str, *, conflicts: bool = False
) -> dict[str, Any]:
    """The snapshot of `event_id` as a plain map (see the module docstring)."""
    seq = await head(session, event_id)
    event = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
    keys = await public_keys(session)
    types = await session.scalars(
        select(TicketType).where(TicketType.event_id == event_id).order_by(TicketType.id)
    )
    lists = await session.scalars(
        select(CheckinList)
        .where(CheckinList.event_id == event_id)
        .order_by(CheckinList.created_at, CheckinList.id)
    )
    tickets = await _tickets(session, event_id)
    snapshot = {
        "event": event_entry(event),
        "seq": seq,
        "keys": [public_jwk(kid, key) for kid, key in keys.items()],
        "ticket_types": [ticket_type_entry(row) for row in types],
        "lists": [list_entry(row) for row in lists],
        "tickets": tickets,
        "revoked": [t.id for t in tickets if t.status != TicketStatus.VALID],
        "blocked": [t.id for t in tickets if t.blocked],
        "checkins": await _checkins(session, event_id),
    }
    if conflicts:
        snapshot["conflicts"] = await _conflicts(session, event_id)
    return snapshot


async def _conflicts(session: AsyncSession, event_id: str) -> list[dict[str, Any]]:
    """Every conflict of the event, in `seq` order, as its `scan.conflict` change holds it."""
    payloads = await session.scalars(
        select(Change.payload)
        .where(Change.event_id == event_id, Change.kind == ChangeKind.SCAN_CONFLICT)
        .order_by(Change.seq)
    )
    return [payload["conflict"] for payload in payloads]


async def _tickets(session: AsyncSession, event_id: str) -> list[TicketEntry]:
    # Core rows, not ORM objects: 100,000 tickets load in a fraction of the time.
    columns = [Ticket.__table__.c[name] for name in TicketEntry.__struct_fields__]
    rows = await session.execute(
        select(*columns).where(Ticket.event_id == event_id).order_by(Ticket.id)
    )
    return [TicketEntry(*row) for row in rows]


async def _checkins(session: AsyncSession, event_id: str) -> list[PresenceEntry]:
    """The folded presence of every ticket x list that has one."""
    rows = await session.execute(
        select(PresenceRow)
        .join(CheckinList, CheckinList.id == PresenceRow.list_id)
        .where(CheckinList.event_id == event_id)
        .order_by(PresenceRow.ticket_id, PresenceRow.list_id)
    )
    # An empty row (PostgreSQL creates the row it locks, even for a scan that was refused; an
    # annulment can empty one) is the same as none, and left out (protocol.sync).
    entries = (presence_entry(p.ticket_id, p.list_id, presence_row(p)) for p in rows.scalars())
    return [entry for entry in entries if not is_empty(entry)]


class SnapshotBuilds:
    """Compressed snapshots built one at a time per process, the last one of each (event,
    conflicts, encoding) given again while the event's head is unchanged, for `ttl` seconds.

    Why: a snapshot of 100,000 tickets holds ~70 MB while it is built and encoded; four doors
    asking at once took the server from 180 to 430 MB (bench/memory.py). One build at a time
    bounds that to one; doors asking together for an unchanged event share it. `ttl` bounds how
    long a key rotation (not in the event's change log) could go unseen, as the store's key
    cache does.
    """

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self.built = 0  # snapshots built (tests read it)
        self._lock: asyncio.Lock | None = None
        self._last: dict[tuple[str, bool, str], tuple[float, int, bytes]] = {}

    async def get(
        self, database: Database, event_id: str, *, conflicts: bool, accept_encoding: str
    ) -> tuple[bytes, str, int]:
        """(body, content encoding, seq) of `event_id`'s snapshot."""
        encoding = _encoding(accept_encoding)
        key = (event_id, conflicts, encoding)
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            last = self._last.get(key)
            if last is not None and time.monotonic() - last[0] <= self.ttl:
                async with database.transaction(read_only=True) as session:
                    if await head(session, event_id) == last[1]:
                        return last[2], encoding, last[1]
            async with snapshot_session(database) as session:
                snapshot = await build_snapshot(session, event_id, conflicts=conflicts)
            seq = snapshot["seq"]
            # Off the event loop: compressing 100,000 tickets takes ~0.5 s, during which every
            # door's scans would wait (zlib and zstd release the GIL).
            body, _ = await asyncio.to_thread(compress, snapshot, encoding)
            del snapshot
            self.built += 1
            now = time.monotonic()
            self._last = {k: v for k, v in self._last.items() if now - v[0] <= self.ttl}
            self._last[key] = (now, seq, body)
            return body, encoding, seq


def _encoding(accept_encoding: str) -> str:
    accepted = {part.split(";")[0].strip().lower() for part in accept_encoding.split(",")}
    return "zstd" if "zstd" in accepted else "gzip"


def compress(snapshot: dict[str, Any], accept_encoding: str) -> tuple[bytes, str]:
    """The msgpack bytes compressed with zstd when the client accepts it, else gzip."""
    # Structs and times to plain maps and RFC 3339 strings first: msgpack's own timestamp
    # extension is not read by every msgpack library a third-party door may use. The tickets
    # hold no time, so they are encoded as structs, the same bytes: a plain map per ticket
    # first cost ~60 MB for 100,000 tickets, per snapshot being sent (bench/memory.py).
    plain = {k: v if k == "tickets" else msgspec.to_builtins(v) for k, v in snapshot.items()}
    raw = _encoder.encode(plain)
    del plain
    if _encoding(accept_encoding) == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(raw), "zstd"
    return gzip.compress(raw, compresslevel=5), "gzip"
