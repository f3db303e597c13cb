"""`tessera_fanout_delay_seconds`: from a scan's commit to each room pushing it to its sockets,
measured on both instances of a pair sharing the database and Redis (real servers)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from contextlib import ExitStack

import httpx
import pytest

from server.app import create_app
from server.metrics.fanout import FanoutDelays, commit_time
from tests.live import serve_in_thread
from tests.server.checkin.conftest import hello, recv, send
from tests.server.checkin.helpers import venue
from tests.server.test_metrics import samples, value

REDIS_URL = os.environ.get("TESSERA_TEST_REDIS", "redis://127.0.0.1:6379/0")
WAIT = 5.0


async def _scrape(base: str, token: str) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=WAIT) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return samples(response.text)


async def _changes_seq(ws) -> int:
    """The seq of the next pushed change, skipping counters and results."""
    while True:
        frame = await recv(ws)
        if frame["type"] == "changes" and frame["items"]:
            return int(frame["items"][-1]["seq"])


async def test_a_scan_records_its_fanout_delay_on_each_instances_room(settings, organiser_token):
    from websockets.asyncio.client import connect

    prefix = f"tessera-test-{secrets.token_hex(6)}:"
    redis = settings.replace(redis_url=f"{REDIS_URL}?prefix={prefix}")
    with ExitStack() as stack:
        ports = [stack.enter_context(serve_in_thread(create_app(redis)))[0] for _ in range(2)]
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        headers = {"Authorization": f"Bearer {organiser_token}"}
        async with httpx.AsyncClient(base_url=bases[0], headers=headers, timeout=WAIT) as http:
            v = await venue(http, 2)
        door = {"Authorization": f"Bearer {v.door.token}"}
        before = [await _scrape(base, organiser_token) for base in bases]
        for found in before:
            assert value(found, "tessera_fanout_delay_seconds_count") == 0
        urls = [f"ws://127.0.0.1:{port}/ws/scanner" for port in ports]
        async with (
            connect(urls[0], additional_headers=door, open_timeout=WAIT) as first,
            connect(urls[1], additional_headers=door, open_timeout=WAIT) as second,
        ):
            head = (await hello(first, 0))["head"]
            await hello(second, head)
            started = time.time()
            scan = {"type": "scan", "scan_id": "delay-1", "code": v.tickets[0]["code"]}
            await send(first, scan | {"list_id": v.list_id})
            seqs = await asyncio.gather(_changes_seq(first), _changes_seq(second))
            elapsed = time.time() - started
            assert seqs == [head + 1, head + 1]
            after = [await _scrape(base, organiser_token) for base in bases]
    for found in after:  # one room per instance, one notice: one delay each
        assert value(found, "tessera_fanout_delay_seconds_count") == 1
        assert 0 <= value(found, "tessera_fanout_delay_seconds_sum") <= elapsed
        assert value(found, "tessera_fanout_delay_seconds_bucket", le="+Inf") == 1
        assert value(found, "tessera_fanout_delay_seconds_bucket", le="10.0") == 1


@pytest.mark.parametrize(
    "garbage",
    [None, "1", True, float("nan"), float("inf"), -1e308, 10**400, 0, "tomorrow", "an hour ago"],
    ids=["none", "str", "bool", "nan", "inf", "-huge", "10**400", "zero", "tomorrow", "old"],
)
def test_a_notice_with_a_garbage_commit_time_is_not_recorded(garbage):
    moment = {"tomorrow": time.time() + 86400, "an hour ago": time.time() - 3601}.get(
        garbage if isinstance(garbage, str) else "", garbage
    )
    assert commit_time(moment) is None
    assert commit_time(time.time()) is not None


def test_delays_fall_in_their_buckets_and_a_clock_behind_counts_zero():
    delays = FanoutDelays()
    delays.observe([100.0, 99.95, 100.5], now=100.0)  # 0, 50 ms, -0.5 s (a clock behind)
    assert delays.count == 3 and delays.total == pytest.approx(0.05)
    family = next(delays.collect())
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.001"] == 2 and buckets["0.05"] == 3 and buckets["+Inf"] == 3
