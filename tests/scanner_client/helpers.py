"""A door's world without a hub: a signed event snapshot, a store loaded with it, a paired home.

Plain functions with overrides (STYLE §8). Everything is real: Ed25519 keys and signed tokens,
the SQLite store in a temporary directory, the engine with a counter for scan ids.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.ids import new_id, ticket_code
from protocol.rules import Direction
from protocol.sync import EventEntry, ListEntry, PresenceEntry, TicketEntry, TicketTypeEntry
from protocol.token import TicketClaims, public_jwk, sign_ticket_token
from scanner_client.core import SyncCore
from scanner_client.home import Credentials, ensure_home, save_credentials
from scanner_client.store import LocalStore, Snapshot

__all__ = [
    "DEVICE",
    "EVENT",
    "World",
    "core_for",
    "make_world",
    "paired_home",
]

EVENT = "EVT0000001"
DEVICE = "DEV0000000000001"
OTHER_DEVICE = "DEV0000000000002"
T0 = datetime(2031, 6, 14, 18, 0, tzinfo=UTC)


@dataclass
class World:
    """An event as the hub would describe it, with the keys that sign its tickets."""

    key: Ed25519PrivateKey
    kid: str
    snapshot: Snapshot
    tokens: dict[str, str] = field(default_factory=dict)  # ticket id -> signed token

    @property
    def list_id(self) -> str:
        return self.snapshot.lists[0].id

    def ticket(self, n: int) -> TicketEntry:
        return self.snapshot.tickets[n]

    def token(self, n: int, *, ver: int | None = None, event: str = EVENT) -> str:
        ticket = self.snapshot.tickets[n]
        claims = TicketClaims(jti=ticket.id, evt=event, ver=ver or ticket.version)
        return sign_ticket_token(claims, self.key, self.kid)


def make_world(
    tickets: int = 10,
    *,
    max_entries: int | None = 1,
    allow_reentry: bool = False,
    persons: int = 1,
    seq: int = 100,
    checkins: list[PresenceEntry] | None = None,
    **ticket_overrides: Any,
) -> World:
    key = Ed25519PrivateKey.generate()
    kid = new_id(8)
    ticket_type = TicketTypeEntry("TT00000000000001", "Standard", persons, None, None)
    checkin_list = ListEntry(
        "LS00000000000001", "Main door", None, max_entries, allow_reentry, None, None
    )
    entries = [
        TicketEntry(
            id=new_id(16),
            code=ticket_code(),
            ticket_type_id=ticket_type.id,
            holder_name=ticket_overrides.get("holder_name", f"Guest {n}"),
            seat=f"A{n + 1}",
            version=1,
            status="valid",
            blocked=False,
        )
        for n in range(tickets)
    ]
    event = EventEntry(EVENT, "Jazz night", T0, T0 + timedelta(hours=5), "Europe/Paris", "Hall")
    snapshot = Snapshot(
        event=event,
        seq=seq,
        keys=[public_jwk(kid, key.public_key())],
        ticket_types=[ticket_type],
        lists=[checkin_list],
        tickets=entries,
        revoked=[],
        blocked=[],
        checkins=checkins or [],
    )
    return World(key, kid, snapshot)


def paired_home(
    tmp_path: Path, world: World | None = None, *, server: str = "http://127.0.0.1:9"
) -> Path:
    """A home paired to DEVICE of EVENT (at a server nobody listens on), its store loaded with
    `world`'s snapshot when given."""
    home = ensure_home(tmp_path / "scan-home")
    save_credentials(
        home,
        Credentials(
            server=server,
            ws_url=server.replace("http", "ws", 1) + "/ws/scanner",
            device_id=DEVICE,
            event_id=EVENT,
            token="tsd_" + "x" * 43,
            paired_at=T0,
        ),
    )
    if world is not None:
        store = LocalStore.open(home / "door.db")
        store.replace_snapshot(world.snapshot, now=T0.timestamp())
        store.close()
    return home


def core_for(
    store: LocalStore,
    *,
    debounce: float = 1.5,
    answer_timeout: float = 1.5,
    direction: Direction = Direction.ENTRY,
    device_id: str = DEVICE,
) -> SyncCore:
    counter = itertools.count(1)
    return SyncCore(
        store,
        device_id=device_id,
        event_id=EVENT,
        new_scan_id=lambda: f"scan-{next(counter):06d}",
        debounce=debounce,
        answer_timeout=answer_timeout,
        direction=direction,
    )
