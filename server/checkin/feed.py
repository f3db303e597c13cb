"""The hub's one window on the database: the change feed of an event (head, pages, counters).

The rooms and sockets read only through a `ChangeFeed`, so the hub's shell can be driven over
any store that keeps its promises (the door simulation drives it over the real database or a
fake): `pages` are gap-free and in seq order up to a head (server.changes.feed), `position`
reads the head and whether a cursor can be followed in one transaction, and `counters` are the
event's live counters. `DatabaseFeed` keeps them over `Database`, its counters folded from the
change log since the last call (`counters.CounterTally`: the same numbers as `event_counters`
without reading the whole event at every push).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Protocol

from protocol.messages import Changes, Counters
from server.changes.feed import needs_snapshot, read_pages
from server.changes.service import head
from server.checkin import counters, service
from server.db import Database

__all__ = ["ChangeFeed", "DatabaseFeed"]

_TALLIES = 64  # events whose counter tally an instance keeps


class ChangeFeed(Protocol):
    async def head(self, event_id: str) -> int:
        """The event's last committed seq."""

    async def position(self, event_id: str, cursor: int | None) -> tuple[int, bool]:
        """The head, and whether a device at `cursor` must load a snapshot instead."""

    def pages(self, event_id: str, after: int, limit: int) -> AsyncIterator[Changes]:
        """Every page of changes after `after` up to the head (the first even when empty)."""

    async def counters(self, event_id: str) -> Counters:
        """The event's live counters."""

    async def active_devices(self, device_ids: Collection[str]) -> set[str]:
        """Those of `device_ids` still paired and not revoked."""


class DatabaseFeed:
    """The change feed over the database, each call in its own read-only transaction."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._tallies: dict[str, counters.CounterTally] = {}

    async def head(self, event_id: str) -> int:
        async with self.database.transaction(read_only=True) as session:
            return await head(session, event_id)

    async def position(self, event_id: str, cursor: int | None) -> tuple[int, bool]:
        async with self.database.transaction(read_only=True) as session:
            snapshot = await needs_snapshot(session, event_id, cursor)
            return await head(session, event_id), snapshot

    def pages(self, event_id: str, after: int, limit: int) -> AsyncIterator[Changes]:
        return read_pages(self.database, event_id, after, limit)

    async def counters(self, event_id: str) -> Counters:
        async with self.database.transaction(read_only=True) as session:
            tally = self._tallies.pop(event_id, None)  # dropped if this read fails
            tally = await counters.tally_counters(session, tally, event_id)
        if len(self._tallies) >= _TALLIES:  # events gone quiet here: the oldest goes
            del self._tallies[next(iter(self._tallies))]
        self._tallies[event_id] = tally  # the newest last
        return tally.counters()

    async def active_devices(self, device_ids: Collection[str]) -> set[str]:
        async with self.database.transaction(read_only=True) as session:
            return await service.active_devices(session, device_ids)
