"""A generated event for one run, made through the organiser API, and the organiser's actions.

The event is built the way an organiser builds one: the real app (in process, through Litestar's
ASGI test client: no socket) creates the event, ticket types, check-in lists and confirmed
bookings on the run's own SQLite file; devices are created and paired by the check-in service.
During the run the organiser blocks, releases, reissues, revokes (cancels a booking) and annuls
through the same API. That app is a second instance sharing the database: its changes reach the
simulated hub only through the notices the simulator sends for it (and may lose).
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.app import build_state, create_app
from server.auth.service import create_token
from server.checkin import service
from server.checkin.schemas import DeviceCreate
from server.config import Settings
from server.db import Database, utcnow
from server.db import models as _models  # noqa: F401 (every table in Base.metadata)
from server.db.migrate import migrate

__all__ = ["Device", "Venue", "build_venue", "close_venue", "organiser"]

_TEMPLATE: Path | None = None
_APP: Litestar | None = None


@dataclass
class Device:
    device_id: str
    token: str
    gate: str


@dataclass
class Venue:
    """The run's event as the simulator knows it (what a guest carries, what a door is)."""

    event_id: str
    database_url: str
    lists: list[dict[str, Any]]
    types: list[dict[str, Any]]
    tickets: list[dict[str, Any]]  # id, code, token, booking_id, ticket_type_id
    devices: list[Device]
    client: AsyncTestClient[Litestar]
    bookings: list[str] = field(default_factory=list)


def _template(workdir: Path, run: Any) -> Path:
    """A migrated empty database, built once per process and copied for every run."""
    global _TEMPLATE
    if _TEMPLATE is None or not _TEMPLATE.exists():
        folder = Path(tempfile.mkdtemp(prefix="tessera-sim-template-", dir=workdir.parent))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "t.db"
        database = Database(f"sqlite:///{path}")
        run(migrate(database))
        run(database.dispose())
        _TEMPLATE = path
    target = workdir / "hub.db"
    shutil.copyfile(_TEMPLATE, target)
    return target


def _settings(workdir: Path, url: str) -> Settings:
    return Settings(
        database_url=url,
        keys_dir=str(workdir / "keys"),
        base_url="https://tickets.test",
        access_log=False,
        mail_dir=str(workdir / "mail"),
        worker="external",
    )


def build_venue(workdir: Path, rng: random.Random, *, tickets: int, doors: int, run: Any) -> Venue:
    """Make the run's event and pair `doors` devices; the app stays open for the organiser."""
    global _APP
    url = f"sqlite:///{_template(workdir, run)}"
    settings = _settings(workdir, url)
    if _APP is None:
        _APP = create_app(settings)
    else:
        _APP.state = build_state(settings)
    client = AsyncTestClient(_APP, base_url="https://tickets.test")
    run(client.__aenter__())
    database = Database(url)
    try:
        return run(_populate(client, database, url, rng, tickets, doors))
    finally:
        run(database.dispose())


async def _populate(
    client: AsyncTestClient[Litestar],
    database: Database,
    url: str,
    rng: random.Random,
    tickets: int,
    doors: int,
) -> Venue:
    async with database.transaction() as session:
        _, secret = await create_token(session, "simulation")
    client.headers["Authorization"] = f"Bearer {secret}"
    event = await _post(client, "/api/v1/events", _event_body())
    types = [
        await _post(client, f"/api/v1/events/{event['id']}/ticket-types", body)
        for body in _type_bodies(rng)
    ]
    lists = [
        await _post(client, f"/api/v1/events/{event['id']}/checkin-lists", body)
        for body in _list_bodies(rng, [t["id"] for t in types])
    ]
    venue = Venue(event["id"], url, lists, types, [], [], client)
    left = tickets
    while left > 0:
        size = min(50, left)
        chosen = rng.choice(types)
        body = {
            "buyer": {"name": f"Guest {left}", "email": f"g{left}@example.org", "language": "en"},
            "items": [{"ticket_type_id": chosen["id"], "quantity": size}],
            "confirm": True,
        }
        booking = await _post(client, f"/api/v1/events/{event['id']}/bookings", body)
        venue.bookings.append(booking["id"])
        for t in booking["tickets"]:
            venue.tickets.append({**_ticket_of(t), "booking_id": booking["id"]})
        left -= size
    for n in range(doors):
        venue.devices.append(await _pair(database, event["id"], f"Door {n}", f"G{n % 4}"))
    return venue


def _ticket_of(t: dict[str, Any]) -> dict[str, Any]:
    return {"id": t["id"], "code": t["code"], "token": t["token"], "type": t["ticket_type_id"]}


def _event_body() -> dict[str, Any]:
    return {
        "name": "Simulated night",
        "starts_at": "2027-03-14T20:00:00+01:00",
        "ends_at": "2027-03-14T23:30:00+01:00",
        "timezone": "Europe/Paris",
        "venue": "Le Quai, Nantes",
        "languages": ["en"],
    }


def _type_bodies(rng: random.Random) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [{"name": "Standard"}]
    if rng.random() < 0.7:
        bodies.append({"name": "Duo", "persons": 2})
    if rng.random() < 0.5:
        bodies.append({"name": "Early", "valid_until": "2027-03-14T18:40:00+00:00"})
    return bodies


def _list_bodies(rng: random.Random, type_ids: list[str]) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [{"name": "Main door", "max_entries": 1}]
    if rng.random() < 0.8:
        bodies.append({"name": "Hall", "allow_reentry": True, "max_entries": 1})
    if rng.random() < 0.5:
        bodies.append({"name": "Bar", "max_entries": rng.choice([2, 3, None])})
    if rng.random() < 0.4:
        bodies.append({"name": "Lounge", "ticket_type_ids": [type_ids[0]], "max_entries": 1})
    return bodies


async def _post(client: AsyncTestClient[Litestar], path: str, body: Any) -> dict[str, Any]:
    response = await client.post(path, json=body)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
    return dict(response.json())


async def _pair(database: Database, event_id: str, name: str, gate: str) -> Device:
    async with database.transaction() as session:
        new = await service.create_device(
            session, event_id, DeviceCreate(name=name, gate=gate), now=utcnow()
        )
    async with database.transaction() as session:
        device, token = await service.pair_device(session, new.pairing_code, now=utcnow())
    return Device(device.id, token, gate)


# --- the organiser during the run ---------------------------------------------------------------


async def organiser(client: AsyncTestClient[Litestar], action: str, target: str) -> int:
    """One organiser action through the API; returns the HTTP status (a refusal is a 4xx)."""
    paths = {
        "block": f"/api/v1/tickets/{target}/block",
        "unblock": f"/api/v1/tickets/{target}/unblock",
        "reissue": f"/api/v1/tickets/{target}/reissue",
        "revoke": f"/api/v1/bookings/{target}/cancel",
    }
    if action == "annul":
        scan_id, _, device_id = target.partition("@")
        path = f"/api/v1/scans/{scan_id}/annul?device_id={device_id}"
    else:
        path = paths[action]
    response = await client.post(path)
    return response.status_code


def close_venue(venue: Venue, run: Any) -> None:
    run(venue.client.__aexit__(None, None, None))
