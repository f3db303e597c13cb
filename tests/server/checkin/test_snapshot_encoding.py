"""The snapshot's bytes: tickets encoded as structs are the bytes of the plain-map encoding."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime

import msgspec
import zstandard

from protocol.sync import PresenceEntry, TicketEntry
from server.checkin.snapshot import compress
from tests.server.checkin.helpers import redeem, venue


def _snapshot() -> dict[str, object]:
    tickets = [
        TicketEntry(f"t{n}", f"CODE-{n}", "tt", None if n % 2 else "Ada", None, 1, "valid", n == 3)
        for n in range(5)
    ]
    at = datetime(2031, 6, 14, 18, 0, 1, 123000, tzinfo=UTC)
    checkins = [PresenceEntry("t1", "l", 1, True, "s1", at, "North", "d1")]
    return {
        "event": {"id": "e", "starts_at": at},
        "seq": 7,
        "keys": [],
        "ticket_types": [],
        "lists": [],
        "tickets": tickets,
        "revoked": [],
        "blocked": ["t3"],
        "checkins": checkins,
    }


def test_compressed_snapshot_is_the_msgpack_of_its_plain_map():
    snapshot = _snapshot()
    expected = msgspec.msgpack.encode(msgspec.to_builtins(snapshot))
    body, encoding = compress(snapshot, "gzip")
    assert encoding == "gzip"
    assert gzip.decompress(body) == expected
    body, encoding = compress(snapshot, "br, zstd;q=1")
    assert encoding == "zstd"
    assert zstandard.ZstdDecompressor().decompress(body) == expected
    # times are RFC 3339 strings, never msgpack's timestamp extension
    decoded = msgspec.msgpack.decode(expected)
    assert decoded["checkins"][0]["first_at"] == "2031-06-14T18:00:01.123000Z"
    assert decoded["tickets"][3]["blocked"] is True


async def test_doors_asking_together_share_one_build_until_the_event_changes(api, app):
    v = await venue(api, 3)
    builds = app.state.snapshot_builds
    headers = {**v.door.headers, "Accept-Encoding": "gzip"}
    before = builds.built
    answers = await asyncio.gather(
        *(api.get("/api/v1/checkin/snapshot", headers=headers) for _ in range(4))
    )
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1
    assert builds.built == before + 1
    seq = int(answers[0].headers["x-tessera-seq"])
    scanned = await redeem(api, v.door, v.tickets[0]["code"], v.list_id)
    assert scanned.json()["verdict"] == "accepted"
    after = await api.get("/api/v1/checkin/snapshot", headers=headers)
    assert int(after.headers["x-tessera-seq"]) > seq
    assert builds.built == before + 2
    decoded = msgspec.msgpack.decode(after.content)  # httpx took the gzip off
    assert len(decoded["checkins"]) == 1


async def test_a_snapshot_older_than_its_ttl_is_built_again(api, app):
    v = await venue(api)
    builds = app.state.snapshot_builds
    builds.ttl = 0.0
    before = builds.built
    for _ in range(2):
        response = await api.get("/api/v1/checkin/snapshot", headers=v.door.headers)
        assert response.status_code == 200
    assert builds.built == before + 2


async def test_an_unknown_device_gets_no_snapshot(api):
    response = await api.get(
        "/api/v1/checkin/snapshot", headers={"Authorization": "Bearer tsd_nobody"}
    )
    assert response.status_code == 401
