"""Fan-out: in-process queues and Redis pub/sub between instances (real Redis, own key prefix).

A lost notice is harmless by design: notices only say "look at the change log", which the hub
re-reads on the next notice, on a `resync` after Redis comes back, and on its periodic heal.
The tests here pin the delivery side of that promise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis import asyncio as aioredis

from server.checkin.fanout import MemoryFanout
from server.checkin.redis_fanout import RESYNC, RedisFanout, split_prefix

REDIS_URL = os.environ.get("TESSERA_TEST_REDIS", "redis://127.0.0.1:6379/0")
WAIT = 2.0


@pytest.fixture
def prefix() -> str:
    return f"tessera-test-{secrets.token_hex(6)}:"


@pytest.fixture
async def redis_pair(prefix: str) -> AsyncIterator[tuple[RedisFanout, RedisFanout]]:
    """Two instances ("two servers") sharing one Redis and key prefix."""
    first, second = RedisFanout(REDIS_URL, prefix), RedisFanout(REDIS_URL, prefix)
    await first.start()
    await second.start()
    yield first, second
    await first.stop()
    await second.stop()


@pytest.fixture(params=["memory", "redis"])
async def fanout(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Any]:
    instance: Any = MemoryFanout() if request.param == "memory" else RedisFanout(REDIS_URL, prefix)
    await instance.start()
    yield instance
    await instance.stop()


async def _next(queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(queue.get(), WAIT)


async def test_subscriber_receives_the_notices_of_its_event_only(fanout):
    async with fanout.subscribe("EVT_A") as queue_a, fanout.subscribe("EVT_B") as queue_b:
        await fanout.publish("EVT_A", {"kind": "head", "head": 1})
        await fanout.publish("EVT_A", {"kind": "head", "head": 2})
        assert await _next(queue_a) == {"kind": "head", "head": 1}
        assert await _next(queue_a) == {"kind": "head", "head": 2}
        await asyncio.sleep(0.05)
        assert queue_b.empty()


async def test_every_subscriber_of_an_event_receives_each_notice(fanout):
    async with fanout.subscribe("EVT") as one, fanout.subscribe("EVT") as two:
        await fanout.publish("EVT", {"kind": "device_revoked", "device_id": "D1"})
        assert await _next(one) == {"kind": "device_revoked", "device_id": "D1"}
        assert await _next(two) == {"kind": "device_revoked", "device_id": "D1"}


async def test_a_left_subscriber_gets_nothing_and_publishing_to_nobody_is_fine(fanout):
    async with fanout.subscribe("EVT") as queue:
        pass
    await fanout.publish("EVT", {"kind": "head", "head": 3})
    await asyncio.sleep(0.05)
    assert queue.empty()


async def test_memory_fanout_drops_notices_for_a_full_queue_without_blocking():
    fanout = MemoryFanout(queue_size=2)
    async with fanout.subscribe("EVT") as slow, fanout.subscribe("EVT") as fast:
        for head in range(1, 6):
            await asyncio.wait_for(fanout.publish("EVT", {"kind": "head", "head": head}), 0.1)
            if head <= 2:
                assert (await fast.get())["head"] == head
        assert slow.qsize() == 2
        assert [slow.get_nowait()["head"] for _ in range(2)] == [1, 2]


async def test_publish_on_one_instance_reaches_subscribers_of_the_other(redis_pair):
    first, second = redis_pair
    async with second.subscribe("EVT") as remote, first.subscribe("EVT") as local:
        await first.publish("EVT", {"kind": "head", "head": 7})
        assert await _next(remote) == {"kind": "head", "head": 7}
        assert await _next(local) == {"kind": "head", "head": 7}
        await asyncio.sleep(0.1)
        assert local.empty(), "the publisher's own subscribers must not get Redis's echo"


async def test_instances_do_not_hear_events_of_another_key_prefix(redis_pair):
    first, _ = redis_pair
    stranger = RedisFanout(REDIS_URL, f"tessera-test-{secrets.token_hex(6)}:")
    await stranger.start()
    try:
        async with stranger.subscribe("EVT") as queue:
            await first.publish("EVT", {"kind": "head", "head": 1})
            await asyncio.sleep(0.1)
            assert queue.empty()
    finally:
        await stranger.stop()


async def test_publish_with_redis_unreachable_is_logged_and_still_delivered_locally(caplog):
    fanout = RedisFanout("redis://127.0.0.1:1/0", "tessera-test-down:")
    await fanout.start()
    try:
        async with fanout.subscribe("EVT") as queue:
            with caplog.at_level(logging.WARNING, logger="tessera.fanout"):
                await fanout.publish("EVT", {"kind": "head", "head": 1})
            assert queue.get_nowait() == {"kind": "head", "head": 1}
        assert any("publish to Redis failed" in r.getMessage() for r in caplog.records)
    finally:
        await fanout.stop()


async def test_a_dropped_subscriber_connection_reconnects_and_tells_subscribers_to_resync(
    redis_pair,
):
    first, second = redis_pair
    async with second.subscribe("EVT") as queue:
        admin = aioredis.Redis.from_url(REDIS_URL)
        try:
            killed = await _kill_client(admin, second.client_name)
        finally:
            await admin.aclose()
        assert killed == 1
        assert await _next(queue) == RESYNC
        await first.publish("EVT", {"kind": "head", "head": 9})
        assert await _next(queue) == {"kind": "head", "head": 9}


async def _kill_client(admin: aioredis.Redis, name: str) -> int:
    """Close the one Redis connection named `name` (never any other test's)."""
    clients = await admin.client_list()
    ids = [c["id"] for c in clients if c.get("name") == name]
    for client_id in ids:
        await admin.client_kill_filter(_id=client_id)
    return len(ids)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", ("redis://127.0.0.1:6379/0", None)),
        ("redis://127.0.0.1:6379/0?prefix=t1:", ("redis://127.0.0.1:6379/0", "t1:")),
        (
            "redis://h:1/2?socket_timeout=3&prefix=a:b:",
            ("redis://h:1/2?socket_timeout=3", "a:b:"),
        ),
    ],
)
def test_the_key_prefix_may_ride_on_the_redis_url(url, expected):
    assert split_prefix(url) == expected


async def test_instances_configured_by_url_prefix_hear_each_other(prefix):
    first = RedisFanout(f"{REDIS_URL}?prefix={prefix}")
    second = RedisFanout(f"{REDIS_URL}?prefix={prefix}")
    assert first.prefix == prefix
    await first.start()
    await second.start()
    try:
        async with second.subscribe("EVT") as queue:
            await first.publish("EVT", {"kind": "head", "head": 1})
            assert await _next(queue) == {"kind": "head", "head": 1}
    finally:
        await first.stop()
        await second.stop()


async def test_doors_online_on_one_instance_are_seen_from_the_other(redis_pair):
    """The console's "Connected": a door's socket on either instance, until it closes or its
    mark expires (an instance killed without closing its sockets)."""
    first, second = redis_pair
    assert await second.online("EVT", set()) == set()
    await first.mark_online("EVT", {"D1", "D2"}, ttl=30)
    await second.mark_online("EVT", {"D3"}, ttl=30)
    assert await second.online("EVT", {"D9"}) == {"D1", "D2", "D3", "D9"}
    assert await first.online("OTHER", set()) == set()
    await first.drop_online("EVT", "D1")
    assert await second.online("EVT", set()) == {"D2", "D3"}
    await second.drop_online("EVT", "D2")  # the other instance's socket of D2 is not its own
    assert await first.online("EVT", set()) == {"D2", "D3"}
    await first.mark_online("EVT", {"D2"}, ttl=-1)  # a mark that has run out
    assert await second.online("EVT", set()) == {"D3"}


async def test_memory_fanout_knows_only_its_own_doors():
    fanout = MemoryFanout()
    await fanout.mark_online("EVT", {"D1"}, ttl=30)
    assert await fanout.online("EVT", {"D2"}) == {"D2"}


async def test_online_doors_with_redis_unreachable_are_this_instances_own(caplog):
    fanout = RedisFanout("redis://127.0.0.1:1/0", "tessera-test-down:")
    await fanout.start()
    try:
        await fanout.mark_online("EVT", {"D1"}, ttl=30)
        await fanout.drop_online("EVT", "D1")
        assert await fanout.online("EVT", {"D2"}) == {"D2"}
    finally:
        await fanout.stop()


async def test_items_reach_this_instances_rooms_only_and_are_never_taken_from_redis(
    redis_pair, prefix
):
    first, second = redis_pair
    items = [{"seq": 7, "kind": "scan.accepted", "scan": {}, "presence": {}}]
    async with second.subscribe("EVT") as remote, first.subscribe("EVT") as local:
        await first.publish("EVT", {"kind": "head", "head": 7, "items": items})
        assert await _next(local) == {"kind": "head", "head": 7, "items": items}
        assert await _next(remote) == {"kind": "head", "head": 7}  # stripped before Redis
        # A message forged on Redis with items: the room hears "look", never the items.
        forged = {"from": "elsewhere", "notice": {"kind": "head", "head": 8, "items": items}}
        client = aioredis.from_url(REDIS_URL)
        try:
            await client.publish(f"{prefix}event:EVT", json.dumps(forged))
        finally:
            await client.aclose()
        assert await _next(remote) == {"kind": "head", "head": 8}
        assert await _next(local) == {"kind": "head", "head": 8}
