"""Two `tessera-scan` doors against a real server, one of them behind a link the test cuts.

Real uvicorn server (SQLite and PostgreSQL), real websockets, real pairing, each door's real
store in its own home; the only thing in between is a TCP proxy (the venue's Wi-Fi) that the
test cuts and restores. Issue 13, item 8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from protocol.reasons import Reason
from scanner_client.door import Door, DoorOptions, wait_for_state
from scanner_client.events import ConflictNotice, Connection, DoorEvent, VerdictShown
from scanner_client.home import save_credentials
from scanner_client.pairing import pair, parse_pairing_input
from tests.e2e.conftest import Live
from tests.scanner_client.tcp_proxy import TcpProxy

WAIT = 10.0


@dataclass
class Venue:
    event_id: str
    list_id: str
    tickets: list[dict[str, Any]]


async def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def make_venue(organiser: httpx.AsyncClient, tickets: int) -> Venue:
    event = await ok(
        await organiser.post(
            "/api/v1/events",
            json={
                "name": "Jazz",
                "starts_at": "2031-06-14T20:00:00+02:00",
                "timezone": "Europe/Paris",
            },
        )
    )
    ticket_type = await ok(
        await organiser.post(
            f"/api/v1/events/{event['id']}/ticket-types",
            json={"name": "Standard", "capacity": 5000},
        )
    )
    checkin_list = await ok(
        await organiser.post(f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Main"})
    )
    issued: list[dict[str, Any]] = []
    while len(issued) < tickets:  # bookings hold at most 500 tickets
        quantity = min(250, tickets - len(issued))
        booking = await ok(
            await organiser.post(
                f"/api/v1/events/{event['id']}/bookings",
                json={
                    "buyer": {"name": "Camille Martin", "email": "camille@example.org"},
                    "items": [{"ticket_type_id": ticket_type["id"], "quantity": quantity}],
                    "confirm": True,
                },
            )
        )
        issued += booking["tickets"]
    return Venue(event["id"], checkin_list["id"], issued)


@dataclass
class Staffed:
    """A running door and everything it showed."""

    door: Door
    events: list[DoorEvent] = field(default_factory=list)

    def verdicts(self) -> list[VerdictShown]:
        return [e for e in self.events if isinstance(e, VerdictShown)]

    def conflicts(self) -> list[ConflictNotice]:
        return [e for e in self.events if isinstance(e, ConflictNotice)]

    async def scan(self, code: str) -> VerdictShown:
        before = len(self.verdicts())
        self.door.scan(code)
        assert await wait_for_state(lambda: len(self.verdicts()) > before, WAIT)
        return self.verdicts()[-1]

    async def until(self, predicate: Callable[[], bool]) -> None:
        assert await wait_for_state(predicate, WAIT), self.door.status

    async def live(self) -> None:
        await self.until(
            lambda: self.door.core.is_caught_up and self.door.status.connection == Connection.LIVE
        )


async def paired_door(
    tmp_path: Path,
    organiser: httpx.AsyncClient,
    venue: Venue,
    name: str,
    *,
    via: TcpProxy | None = None,
) -> Staffed:
    device = await ok(
        await organiser.post(
            f"/api/v1/events/{venue.event_id}/devices", json={"name": name, "gate": name}
        )
    )
    credentials = await pair(parse_pairing_input(device["pairing_uri"], None))
    if via is not None:  # this door reaches the hub through the proxy
        server = f"http://127.0.0.1:{via.port}"
        credentials = msgspec.structs.replace(
            credentials, server=server, ws_url=f"ws://127.0.0.1:{via.port}/ws/scanner"
        )
    home = tmp_path / name
    save_credentials(home, credentials)
    staffed = Staffed(None)  # type: ignore[arg-type]
    staffed.door = Door(home, DoorOptions(list_id=None), on_event=staffed.events.append)
    await staffed.door.start()
    return staffed


def counted(door: Staffed) -> dict[str, Any]:
    """The door's own counters in the shape of the hub's stats answer."""
    return {"type": "counters", **msgspec.to_builtins(door.door.counters())}


async def test_two_doors_one_offline_scan_the_same_ticket_and_both_see_the_conflict(
    tmp_path: Path, live: Live, organiser: httpx.AsyncClient
) -> None:
    venue = await make_venue(organiser, 3)
    proxy = await TcpProxy(live.port).start()
    north = await paired_door(tmp_path, organiser, venue, "North")
    south = await paired_door(tmp_path, organiser, venue, "South", via=proxy)
    try:
        await north.live()
        await south.live()
        ticket = venue.tickets[0]

        proxy.cut()  # the South door loses the hub
        await south.until(lambda: south.door.status.connection == Connection.OFFLINE)

        at_north = await north.scan(ticket["token"])
        assert (at_north.accepted, at_north.source) == (True, "hub")
        at_south = await south.scan(ticket["code"])
        assert (at_south.accepted, at_south.source) == (True, "door")  # it could not know
        assert south.door.store.queued_count() == 1

        proxy.restore()
        await south.until(lambda: south.door.store.queued_count() == 0)
        for door in (north, south):
            await door.until(lambda door=door: len(door.conflicts()) == 1)
            [notice] = door.conflicts()
            assert notice.conflict.scan_id == at_south.scan_id
            assert notice.conflict.reason == Reason.ALREADY_REDEEMED
            assert notice.conflict.earlier is not None
            assert notice.conflict.earlier.scan_id == at_north.scan_id
            assert notice.own is (door is south)
        stored = south.door.store.journal_entry(at_south.scan_id)
        assert (stored.hub_verdict, stored.hub_forced) == ("accepted", True)

        stats = await ok(await organiser.get(f"/api/v1/events/{venue.event_id}/checkin/stats"))
        assert stats["checked_in"] == 1  # a forced second entry counts once
        for door in (north, south):  # the doors count as the hub does, from what they hold
            await door.until(lambda door=door: door.door.store.queued_count() == 0)
            await wait_for_state(lambda door=door: counted(door) == stats, WAIT)
            assert counted(door) == stats
        # Both doors now hold the same presence: one entry counted, and a third scan is refused.
        await north.until(
            lambda: north.door.store.presence(ticket["id"], venue.list_id).entries >= 1
        )
        again = await north.scan(ticket["code"])
        assert again.reason == Reason.ALREADY_REDEEMED
    finally:
        await north.door.stop()
        await south.door.stop()
        await proxy.stop()


async def test_a_thousand_offline_scans_upload_once_and_a_refusal_uploads_as_a_refusal(
    tmp_path: Path, live: Live, organiser: httpx.AsyncClient
) -> None:
    venue = await make_venue(organiser, 1000)
    proxy = await TcpProxy(live.port).start()
    door = await paired_door(tmp_path, organiser, venue, "West", via=proxy)
    try:
        await door.live()
        proxy.cut()
        await door.until(lambda: door.door.status.connection == Connection.OFFLINE)
        for ticket in venue.tickets:
            door.door.scan(ticket["token"])
        refused = await door.scan(venue.tickets[0]["code"])  # the same guest again: refused
        assert refused.reason == Reason.ALREADY_REDEEMED
        shown = door.verdicts()
        assert len(shown) == 1001
        assert all(v.accepted and v.source == "door" for v in shown[:1000])
        assert door.door.store.queued_count() == 1001

        proxy.restore()
        await door.until(lambda: door.door.store.queued_count() == 0)
        stats = await ok(await organiser.get(f"/api/v1/events/{venue.event_id}/checkin/stats"))
        assert stats["checked_in"] == 1000
        entry = door.door.store.journal_entry(refused.scan_id)
        assert (entry.hub_verdict, entry.hub_reason) == ("rejected", "already_redeemed")
        assert not door.conflicts()  # a door that refused raises no conflict

        # A restart with the same journal uploads nothing again.
        await door.door.stop()
        home = door.door.store.path.parent
        again = Staffed(None)  # type: ignore[arg-type]
        again.door = Door(home, DoorOptions(), on_event=again.events.append)
        await again.door.start()
        door = again
        await door.live()
        assert door.door.store.queued_count() == 0
        stats = await ok(await organiser.get(f"/api/v1/events/{venue.event_id}/checkin/stats"))
        assert stats["checked_in"] == 1000
    finally:
        await door.door.stop()
        await proxy.stop()
