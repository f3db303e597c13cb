"""A real uvicorn server in a background thread, real websocket clients, and paired door devices."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar import Litestar
from websockets.asyncio.client import ClientConnection, connect

from server.checkin import service
from server.checkin.schemas import CheckinListCreate, DeviceCreate
from server.config import Settings
from server.db import Database, utcnow
from tests.factories import create_booking, create_event, create_ticket_type
from tests.live import serve_in_thread

WAIT = 5.0


@dataclass
class LiveServer:
    base_url: str
    ws_url: str
    app: Litestar
    loop: asyncio.AbstractEventLoop

    def call(self, coroutine: Any) -> Any:
        """Run `coroutine` on the server's event loop (e.g. to publish a notice) and wait."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(WAIT)


@pytest.fixture
def live(app: Litestar) -> Iterator[LiveServer]:
    with serve_in_thread(app) as (port, loop):
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws/scanner", app, loop)


@pytest.fixture
async def http(live: LiveServer, organiser_token: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {organiser_token}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers, timeout=WAIT) as client:
        yield client


@dataclass
class Door:
    """An event with a ticket type, tickets, a single-entry list and paired devices."""

    event_id: str
    ticket_type_id: str
    list_id: str
    tickets: list[dict[str, Any]]
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (id, token)

    def token(self, name: str = "A") -> str:
        return self.devices[name][1]

    def device_id(self, name: str = "A") -> str:
        return self.devices[name][0]


async def make_door(
    http: httpx.AsyncClient, settings: Settings, tickets: int = 3, **list_options: Any
) -> Door:
    event = await create_event(http)
    ticket_type = await create_ticket_type(http, event["id"])
    booking = await create_booking(http, event["id"], ticket_type["id"], tickets, confirm=True)
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            checkin_list = await service.create_list(
                session, event["id"], CheckinListCreate(name="Main door", **list_options)
            )
        door = Door(event["id"], ticket_type["id"], checkin_list.id, booking["tickets"])
        for name, gate in (("A", "North"), ("B", "South")):
            door.devices[name] = await pair(database, event["id"], name, gate)
    finally:
        await database.dispose()
    return door


async def pair(database: Database, event_id: str, name: str, gate: str | None) -> tuple[str, str]:
    async with database.transaction() as session:
        new = await service.create_device(
            session, event_id, DeviceCreate(name=name, gate=gate), now=utcnow()
        )
    async with database.transaction() as session:
        device, token = await service.pair_device(session, new.pairing_code, now=utcnow())
    return device.id, token


@pytest.fixture
async def door(http: httpx.AsyncClient, settings: Settings) -> Door:
    return await make_door(http, settings)


def socket(live: LiveServer, token: str | None) -> Any:
    """A websocket client to the hub, authenticated by header when `token` is given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(
        live.ws_url, additional_headers=headers, compression=None, max_size=None, open_timeout=WAIT
    )


async def recv(ws: ClientConnection, within: float = WAIT) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), within)))


async def recv_type(ws: ClientConnection, kind: str, within: float = WAIT) -> dict[str, Any]:
    """The next frame of type `kind`, skipping `changes` and `counters` pushed meanwhile."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        frame = await recv(ws, max(0.01, deadline - asyncio.get_running_loop().time()))
        if frame["type"] == kind:
            return frame
        if frame["type"] not in ("changes", "counters"):
            raise AssertionError(f"expected {kind}, got {frame}")


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def hello(ws: ClientConnection, cursor: int | None) -> dict[str, Any]:
    """Send hello; returns the welcome and drains the catch-up `changes` and `counters`."""
    await send(ws, {"type": "hello", "cursor": cursor})
    welcome = await recv(ws)
    assert welcome["type"] == "welcome", welcome
    if not welcome["snapshot_required"]:
        while (frame := await recv(ws))["type"] != "counters":
            assert frame["type"] == "changes", frame
    return welcome
