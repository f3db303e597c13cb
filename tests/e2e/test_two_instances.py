"""Two instances on one PostgreSQL database and one Redis: the scaled deployment.

The same single-entry ticket fired at two `tessera serve` processes at once is accepted exactly
once, and every accepted scan reaches a watcher's change stream gap-free.

A scan accepted on one instance reaches a device on the other through Redis pub/sub, well within
the hubs' periodic heal (a room re-reads the change log after `heal_interval` of silence, which
alone would deliver it too, only late). Those tests run both instances in this process, as uvicorn
servers in threads with their own event loop, database engine and Redis connections, because the
heal interval is a `HubConfig` (`app.state.hub.configure`), not a setting. Giving the two instances
different Redis key prefixes cuts the fan-out between them and nothing else: then the scan arrives
only with the heal, which shows that the fast delivery is Redis's doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect

from server.app import create_app
from server.checkin.hub import HubConfig
from server.config import Settings
from tests.conftest import _create_token, _empty_pg_database, _pg_url
from tests.factories import create_booking, create_event, create_ticket_type
from tests.live import live_server, serve_in_thread

REDIS_URL = os.environ.get("TESSERA_TEST_REDIS", "redis://127.0.0.1:6379/0")
TICKETS = 20
SCANS_PER_TICKET = 50
DEVICES_PER_INSTANCE = 5
SOCKETS_PER_DEVICE = 5  # 2 x 5 x 5 = 50 sockets: one scan each per ticket, all at once
WAIT = 15.0
# Redis delivers across instances in milliseconds (the target is 100 ms); a second leaves room for
# a loaded machine and stays far below any heal interval used here.
FAST = 1.0
NO_HEAL = 30.0  # longer than the test: only a notice can make a room read the log
HEAL = 3.0  # with the fan-out cut: the heal alone delivers, after up to this long


def _prefixed(prefix: str) -> str:
    """The test Redis URL with a key prefix of its own (channels are named after it)."""
    return f"{REDIS_URL}?prefix=tessera-e2e-{prefix}:"


@pytest.fixture
def pg_settings(pg_database: str, tmp_path: Path) -> Settings:
    asyncio.run(_empty_pg_database(pg_database))
    return Settings(
        database_url=_pg_url(pg_database),
        keys_dir=str(tmp_path / "keys"),
        redis_url=_prefixed(secrets.token_hex(6)),
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


@contextlib.contextmanager
def _in_process(settings: Settings, hub: HubConfig) -> Iterator[str]:
    """An instance served by uvicorn in a thread of this process, its hub configured by `hub`."""
    app = create_app(settings)
    app.state.hub.configure(hub)  # before any socket: a room reads its config when it opens
    with serve_in_thread(app) as (port, _):
        yield f"http://127.0.0.1:{port}"


async def _setup(
    bases: tuple[str, str],
    token: str,
    tickets: int = TICKETS,
    devices: int = 2 * DEVICES_PER_INSTANCE + 1,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=bases[0], headers=headers, timeout=WAIT) as api:
        event = await create_event(api)
        ticket_type = await create_ticket_type(api, event["id"])
        booking = await create_booking(api, event["id"], ticket_type["id"], tickets, confirm=True)
        response = await api.post(
            f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Main door"}
        )
        assert response.status_code == 201, response.text
        list_id = response.json()["id"]
        tokens = []
        for n in range(devices):
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
    return {
        "event_id": event["id"],
        "list_id": list_id,
        "tickets": booking["tickets"],
        "tokens": tokens,
    }


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
        # A's own scans make its room read the log, which holds B's too: this says nothing of
        # the Redis fan-out (the tests below do), only that B's wins are in A's stream.
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
                seen.add(item["scan"]["scan_id"])
    return seen


def test_a_single_entry_ticket_raced_on_two_instances_is_accepted_exactly_once(
    instances, pg_settings
):
    a, b = instances
    organiser = asyncio.run(_create_token(pg_settings))
    asyncio.run(_race(a, b, organiser))


@contextlib.asynccontextmanager
async def _a_door_on_each(
    a: str, b: str, organiser: str
) -> AsyncIterator[tuple[dict[str, Any], ClientConnection, ClientConnection, int]]:
    """Two tickets, a device on A and one on B, both following the log; and the log's head."""
    door = await _setup((a, b), organiser, tickets=2, devices=2)
    async with (
        await _open(a, door["tokens"][0]) as on_a,
        await _open(b, door["tokens"][1]) as on_b,
    ):
        head = await _hello(on_a)
        assert await _hello(on_b) == head
        yield door, on_a, on_b, head


async def _hello(ws: ClientConnection) -> int:
    """Follow the change log from the start; returns its head once the catch-up is read."""
    await ws.send(json.dumps({"type": "hello", "cursor": 0}))
    welcome = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert welcome["type"] == "welcome", welcome
    while json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] != "counters":
        pass
    return int(welcome["head"])


async def _scan_at(ws: ClientConnection, door: dict[str, Any], ticket: int) -> float:
    """Scan a ticket on `ws` (it is accepted); returns when the scan was sent."""
    sent = asyncio.get_running_loop().time()
    result = await _scan(ws, door["tickets"][ticket]["token"], door["list_id"])
    assert result["verdict"] == "accepted", result
    return sent


async def _arrival(ws: ClientConnection, seq: int, sent: float, within: float) -> float | None:
    """Seconds from `sent` until change `seq` is in a `changes` frame on `ws`, or None if it is
    not there within `within` seconds of `sent`."""
    loop = asyncio.get_running_loop()
    while (left := sent + within - loop.time()) > 0:
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return None
        if frame["type"] != "changes":
            continue
        for item in frame["items"]:
            if item["seq"] == seq:
                assert item["kind"] == "scan.accepted", item
                return loop.time() - sent
    return None


@contextlib.contextmanager
def _two_in_process(
    settings_a: Settings, settings_b: Settings, heal: float
) -> Iterator[tuple[str, str]]:
    """Instances A then B (A creates the signing key), both healing every `heal` seconds."""
    config = HubConfig(heal_interval=heal)
    with _in_process(settings_a, config) as a, _in_process(settings_b, config) as b:
        yield a, b


def test_a_scan_accepted_on_one_instance_reaches_a_device_on_the_other_within_a_second(
    pg_settings,
):
    """Both ways over Redis; no heal runs during the test, so only the fan-out can deliver."""

    async def run(a: str, b: str, organiser: str) -> None:
        async with _a_door_on_each(a, b, organiser) as (door, on_a, on_b, head):
            sent = await _scan_at(on_b, door, 0)
            delay = await _arrival(on_a, head + 1, sent, FAST)
            assert delay is not None, f"B's scan did not reach A within {FAST} s"
            sent = await _scan_at(on_a, door, 1)
            delay = await _arrival(on_b, head + 2, sent, FAST)
            assert delay is not None, f"A's scan did not reach B within {FAST} s"

    organiser = asyncio.run(_create_token(pg_settings))
    with _two_in_process(pg_settings, pg_settings, NO_HEAL) as (a, b):
        asyncio.run(run(a, b, organiser))


def test_with_the_redis_fan_out_cut_a_scan_reaches_the_other_instance_only_by_the_heal(
    pg_settings,
):
    """B on another key prefix of the same Redis: its notices go to channels A never hears."""
    cut = msgspec.structs.replace(pg_settings, redis_url=_prefixed(secrets.token_hex(6)))

    async def run(a: str, b: str, organiser: str) -> None:
        async with _a_door_on_each(a, b, organiser) as (door, on_a, on_b, head):
            sent = await _scan_at(on_b, door, 0)
            assert await _arrival(on_b, head + 1, sent, FAST) is not None, "B hears its own"
            delay = await _arrival(on_a, head + 1, sent, HEAL + FAST)
            assert delay is not None, f"the heal did not bring B's scan to A within {HEAL} s"
            assert delay > FAST, f"B's scan reached A in {delay:.3f} s with the fan-out cut"

    organiser = asyncio.run(_create_token(pg_settings))
    with _two_in_process(pg_settings, cut, HEAL) as (a, b):
        asyncio.run(run(a, b, organiser))


def test_each_instance_marks_its_doors_online_for_the_console_of_the_other(instances, pg_settings):
    """A door's socket is marked online in Redis by the instance that holds it (what the console
    of either instance shows as "Connected"), and unmarked when the socket closes."""
    from redis import asyncio as aioredis

    from server.checkin.redis_fanout import split_prefix

    a, b = instances
    url, prefix = split_prefix(pg_settings.redis_url or "")
    organiser = asyncio.run(_create_token(pg_settings))

    async def members(redis: Any, key: str) -> set[str]:
        return {m.decode() for m in await redis.zrangebyscore(key, "-inf", "+inf")}

    async def run() -> None:
        redis = aioredis.Redis.from_url(url)
        try:
            async with _a_door_on_each(a, b, organiser) as (door, _, _, _):
                event_id = door["event_id"]
                key = f"{prefix}online:{event_id}"
                online = await members(redis, key)
                assert len(online) == 2, online
                assert len({m.partition("|")[2] for m in online}) == 2  # one per instance
            for _ in range(int(WAIT / 0.05)):  # the servers see the close, then unmark
                if not await members(redis, key):
                    break
                await asyncio.sleep(0.05)  # another process unmarks it
            assert await members(redis, key) == set()
        finally:
            await redis.aclose()

    asyncio.run(run())
