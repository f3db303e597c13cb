"""Snapshot and change log: consistent with its seq, gap-free, never skipping a change."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import msgspec
import pytest
import zstandard
from sqlalchemy import text

from server.changes.feed import changes_after, needs_snapshot
from server.changes.service import append_changes
from server.config import Settings
from server.db import Database
from tests.conftest import _empty_pg_database, _pg_url
from tests.factories import create_event
from tests.server.checkin.helpers import create_list, redeem, venue


async def _raw(api: Any, path: str, headers: dict[str, str]) -> tuple[bytes, Any]:
    async with api.stream("GET", path, headers=headers) as response:
        return b"".join([chunk async for chunk in response.aiter_raw()]), response


@pytest.mark.parametrize(
    ("accept", "encoding", "decompress"),
    [
        pytest.param("zstd, gzip", "zstd", zstandard.ZstdDecompressor().decompress, id="zstd"),
        pytest.param("gzip", "gzip", gzip.decompress, id="gzip"),
        pytest.param("identity", "gzip", gzip.decompress, id="gzip-by-default"),
    ],
)
async def test_the_snapshot_is_compressed_msgpack_consistent_with_its_seq(
    api, accept, encoding, decompress
):
    v = await venue(api, 2, persons=2)
    await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="in-1")
    headers = v.door.headers | {"Accept-Encoding": accept}
    raw, response = await _raw(api, "/api/v1/checkin/snapshot", headers)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == encoding
    snapshot = msgspec.msgpack.decode(decompress(raw))
    assert set(snapshot) == {
        "event",
        "seq",
        "keys",
        "ticket_types",
        "lists",
        "tickets",
        "revoked",
        "blocked",
        "checkins",
    }
    changes = await api.get("/api/v1/checkin/changes?since=0", headers=v.door.headers)
    assert snapshot["seq"] == changes.json()["head"] == int(response.headers["x-tessera-seq"])
    assert {t["code"] for t in snapshot["tickets"]} == {t["code"] for t in v.tickets}
    assert [(t["id"], t["persons"]) for t in snapshot["ticket_types"]] == [(v.type_id, 2)]
    assert {t["ticket_type_id"] for t in snapshot["tickets"]} == {v.type_id}
    assert [key["kty"] for key in snapshot["keys"]] == ["OKP"]
    assert [row["id"] for row in snapshot["lists"]] == [v.list_id]
    assert [(c["list_id"], c["entries"], c["inside"]) for c in snapshot["checkins"]] == [
        (v.list_id, 1, True)
    ]
    assert snapshot["checkins"][0]["first_scan_id"] == "in-1"


async def test_the_snapshot_lists_the_check_in_lists_in_the_order_they_were_created(api):
    """As the change log brings later ones (appended) and the counters show them."""
    v = await venue(api, 1)
    names = ["Zebra gate", "Alpha gate", "Main hall", "Back door", "VIP"]
    created = [v.list_id] + [
        (await create_list(api, v.event_id, name=name))["id"] for name in names
    ]
    snapshot = await api.get("/api/v1/checkin/snapshot", headers=v.door.headers)
    lists = msgspec.msgpack.decode(snapshot.content)
    assert [row["id"] for row in lists["lists"]] == created


async def test_the_changes_after_the_snapshot_are_exactly_what_happened_since(api):
    v = await venue(api, 2)
    snapshot = await api.get("/api/v1/checkin/snapshot", headers=v.door.headers)
    seq = msgspec.msgpack.decode(snapshot.content)["seq"]
    await redeem(api, v.door, v.tickets[1]["code"], v.list_id, scan_id="after")
    await redeem(api, v.door, v.tickets[1]["code"], v.list_id, scan_id="refused")
    changes = (await api.get(f"/api/v1/checkin/changes?since={seq}", headers=v.door.headers)).json()
    assert [(c["seq"], c["kind"], c["scan"]["scan_id"]) for c in changes["items"]] == [
        (seq + 1, "scan.accepted", "after")
    ]
    item = changes["items"][0]
    assert (item["scan"]["ticket_id"], item["scan"]["gate"]) == (v.tickets[1]["id"], "A")
    presence = item["presence"]
    assert (presence["ticket_id"], presence["entries"], presence["inside"]) == (
        v.tickets[1]["id"],
        1,
        True,
    )
    assert presence["first_scan_id"] == "after"
    assert (changes["head"], changes["has_more"]) == (seq + 1, False)


async def test_changes_come_in_gap_free_pages(api):
    v = await venue(api, 5)
    seen: list[int] = []
    cursor, has_more = 0, True
    while has_more:
        path = f"/api/v1/checkin/changes?since={cursor}&limit=2"
        page = (await api.get(path, headers=v.door.headers)).json()
        assert len(page["items"]) <= 2
        seen += [item["seq"] for item in page["items"]]
        cursor, has_more = (seen[-1] if seen else cursor), page["has_more"]
    assert seen == list(range(1, page["head"] + 1))


async def test_a_cursor_that_is_missing_or_ahead_of_the_log_needs_a_snapshot(api, settings):
    event = await create_event(api)
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            await append_changes(session, event["id"], [("list.created", {"n": 1})] * 3)
            assert await needs_snapshot(session, event["id"], None)
            assert await needs_snapshot(session, event["id"], 4)
            assert not await needs_snapshot(session, event["id"], 0)
            assert not await needs_snapshot(session, event["id"], 3)
    finally:
        await database.dispose()


@pytest.fixture
def pg_settings(pg_database: str, tmp_path: Any) -> Settings:
    """Settings on the session's PostgreSQL database, emptied (this test is about row locks)."""
    asyncio.run(_empty_pg_database(pg_database))
    return Settings(database_url=_pg_url(pg_database), keys_dir=str(tmp_path / "keys"))


async def test_a_reader_never_sees_a_later_change_before_an_earlier_uncommitted_one(pg_settings):
    """Transaction A appends seq n and stays open; B appends meanwhile. B must wait for A, and a
    reader polling the log sees nothing past n-1 until A commits, then n and n+1 together."""
    database = Database(pg_settings.database_url)
    event_id = "EVTLOCK001"
    try:
        async with database.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO event (id, slug, name, starts_at, timezone, languages, branding,"
                    " change_seq, created_at, updated_at) VALUES (:id, :id, 'Lock', now(), 'UTC',"
                    " '[]', '{}', 0, now(), now())"
                ),
                {"id": event_id},
            )
        holder = database.sessions()
        await holder.begin()
        n = await append_changes(holder, event_id, [("ticket.issued", {"who": "A"})])

        async def append_b() -> int:
            async with database.transaction() as session:
                return await append_changes(session, event_id, [("ticket.issued", {"who": "B"})])

        b = asyncio.create_task(append_b())
        seen: list[list[int]] = []
        for _ in range(20):
            async with database.transaction(read_only=True) as session:
                page = await changes_after(session, event_id, 0)
            seen.append([item["seq"] for item in page.items])
            await asyncio.sleep(0.01)
        assert not b.done()  # B waits on A's row lock: it cannot commit seq n+1 first
        await holder.commit()
        await holder.close()
        assert await b == n + 1
        async with database.transaction(read_only=True) as session:
            final = await changes_after(session, event_id, 0)
    finally:
        await database.dispose()
    assert all(s == [] for s in seen)
    assert [(i["seq"], i["who"]) for i in final.items] == [(n, "A"), (n + 1, "B")]
