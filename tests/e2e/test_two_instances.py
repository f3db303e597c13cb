"""Two `tessera serve` processes on one PostgreSQL database and one Redis: the scaled deployment.

The same single-entry ticket fired at both instances at once is accepted exactly once, and a
device connected to one instance sees what was accepted on the other (Redis pub/sub fan-out).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from server.config import Settings
from tests.conftest import _create_token, _empty_pg_database, _pg_url
from tests.factories import create_booking, create_event, create_ticket_type
from tests.live import live_server

REDIS_URL = os.environ.get("TESSERA_TEST_REDIS", "redis://127.0.0.1:6379/0")
TICKETS = 20
SCANS_PER_TICKET = 50
DEVICES_PER_INSTANCE = 5
SOCKETS_PER_DEVICE = 5  # 2 x 5 x 5 = 50 sockets: one scan each per ticket, all at once
WAIT = 15.0


@pytest.fixture
def pg_settings(pg_database: str, tmp_path: Path) -> Settings:
    asyncio.run(_empty_pg_database(pg_database))
    return Settings(
        database_url=_pg_url(pg_database),
        keys_dir=str(tmp_path / "keys"),
        redis_url=f"{REDIS_URL}?prefix=tessera-e2e-{secrets.token_hex(6)}:",
        access_log=False,
    )


@pytest.fixture
def instances(pg_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Instance A then B (started one after the other: A creates the signing key)."""
    with (
        live_server(pg_settings, tmp_path / "a.log") as a,
        live_server(pg_settings, tmp_path / "b.log") as b,
    ):
        yield a, b


async def _setup(bases: tuple[str, str], token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=bases[0], headers=headers, timeout=WAIT) as api:
        event = await create_event(api)
        ticket_type = await create_ticket_type(api, event["id"])
        booking = await create_booking(api, event["id"], ticket_type["id"], TICKETS, confirm=True)
        response = await api.post(
            f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Main door"}
        )
        assert response.status_code == 201, response.text
        list_id = response.json()["id"]
        tokens = []
        for n in range(2 * DEVICES_PER_INSTANCE + 1):
            created = await api.post(
                f"/api/v1/events/{event['id']}/devices", json={"name": f"Door {n}", "gate": "G"}
            )
            assert created.status_code == 201, created.text
            # Pairing is rate limited per address and instance: spread it over both.
            paired = await api.post(
                f"{bases[n % 2]}/api/v1/devices/pair",
                json={"pairing_code": created.json()["pairing_code"]},
            )
            assert paired.status_code == 200, paired.text
            tokens.append(paired.json()["token"])
    return {"list_id": list_id, "tickets": booking["tickets"], "tokens": tokens}


def _ws_url(base: str) -> str:
    return "ws" + base.removeprefix("http") + "/ws/scanner"


async def _open(base: str, token: str) -> ClientConnection:
    return await connect(
        _ws_url(base),
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        open_timeout=WAIT,
    )


async def _scan(ws: ClientConnection, code: str, list_id: str) -> dict[str, Any]:
    frame = {"type": "scan", "scan_id": str(uuid.uuid4()), "code": code, "list_id": list_id}
    await ws.send(json.dumps(frame))
    while True:
        answer = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if answer["type"] == "result":
            assert answer["scan_id"] == frame["scan_id"]
            return dict(answer)
        assert answer["type"] in ("changes", "counters"), answer


async def _race(a: str, b: str, organiser: str) -> None:
    door = await _setup((a, b), organiser)
    sockets, on_b = [], []
    for index, token in enumerate(door["tokens"][: 2 * DEVICES_PER_INSTANCE]):
        base = a if index % 2 == 0 else b
        sockets += [await _open(base, token) for _ in range(SOCKETS_PER_DEVICE)]
        on_b += [base == b] * SOCKETS_PER_DEVICE
    watcher = await _open(a, door["tokens"][-1])
    try:
        await watcher.send(json.dumps({"type": "hello", "cursor": 0}))
        assert json.loads(await watcher.recv())["type"] == "welcome"
        accepted_ids: set[str] = set()
        accepted_on_b: set[str] = set()
        for ticket in door["tickets"]:
            results = await asyncio.gather(
                *(_scan(ws, ticket["token"], door["list_id"]) for ws in sockets)
            )
            assert len(results) == SCANS_PER_TICKET
            verdicts = [r["verdict"] for r in results]
            assert verdicts.count("accepted") == 1, f"ticket {ticket['code']}: {verdicts}"
            assert {r["reason"] for r in results if r["verdict"] == "rejected"} == {
                "already_redeemed"
            }
            accepted_ids |= {r["scan_id"] for r in results if r["verdict"] == "accepted"}
            accepted_on_b |= {
                r["scan_id"] for r, b_side in zip(results, on_b, strict=True) if b_side
            } & accepted_ids
        seen = await _accepted_seen_by(watcher, len(accepted_ids))
        assert seen == accepted_ids
        assert accepted_on_b, "some tickets were won on instance B, which A's watcher saw"
    finally:
        for ws in [*sockets, watcher]:
            await ws.close()


async def _accepted_seen_by(watcher: ClientConnection, count: int) -> set[str]:
    """The accepted scan ids in the watcher's `changes` (from its hello at cursor 0)."""
    seen: set[str] = set()
    seq = 0
    while len(seen) < count:
        frame = json.loads(await asyncio.wait_for(watcher.recv(), WAIT))
        if frame["type"] != "changes":
            continue
        for item in frame["items"]:
            assert item["seq"] == seq + 1, "changes arrive gap-free and in order"
            seq = item["seq"]
            if item["kind"] == "scan.accepted":
                seen.add(item["scan_id"])
    return seen


def test_a_single_entry_ticket_raced_on_two_instances_is_accepted_exactly_once(
    instances, pg_settings
):
    a, b = instances
    organiser = asyncio.run(_create_token(pg_settings))
    asyncio.run(_race(a, b, organiser))
