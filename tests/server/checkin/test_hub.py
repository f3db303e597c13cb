"""The websocket hub over real sockets: a uvicorn server in a thread, `websockets` clients.

Each test runs on SQLite and PostgreSQL (the `backend` fixture behind `settings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from websockets.exceptions import ConnectionClosed

from protocol.messages import MAX_FRAME_BYTES, decode_hub_frame
from server.checkin.hub import HubConfig
from tests.server.checkin.conftest import (
    WAIT,
    hello,
    make_door,
    recv,
    recv_type,
    send,
    socket,
)


def scan_frame(door, ticket: int = 0, **overrides):
    frame = {
        "type": "scan",
        "scan_id": str(uuid.uuid4()),
        "code": door.tickets[ticket]["token"],
        "list_id": door.list_id,
    }
    return frame | overrides


async def closed_with(ws) -> int:
    """The close code the hub sent, once the socket closed (reading whatever came before)."""
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert ws.close_code is not None
    return ws.close_code


# --- sync: hello, welcome, changes --------------------------------------------------------


async def test_hello_with_a_cursor_gets_welcome_then_every_change_after_it_in_order(live, door):
    async with socket(live, door.token()) as ws:
        await send(ws, {"type": "hello", "cursor": 0})
        welcome = await recv(ws)
        assert welcome == {
            "type": "welcome",
            "device_id": door.device_id(),
            "event_id": door.event_id,
            "head": welcome["head"],
            "snapshot_required": False,
        }
        changes = await recv(ws)
        assert changes["type"] == "changes"
        assert [c["seq"] for c in changes["items"]] == list(range(1, welcome["head"] + 1))
        assert changes["has_more"] is False
        assert {"list.created", "ticket.issued"} <= {c["kind"] for c in changes["items"]}
        counters = await recv(ws)
        assert counters["type"] == "counters"
        assert counters["total"] == 3 and counters["checked_in"] == 0


async def test_changes_after_a_cursor_come_in_pages_with_has_more(live, door):
    live.app.state.hub.configure(HubConfig(page_size=2))
    async with socket(live, door.token()) as ws:
        await send(ws, {"type": "hello", "cursor": 1})
        head = (await recv(ws))["head"]
        seqs, more = [], True
        while more:
            page = await recv(ws)
            assert page["type"] == "changes" and len(page["items"]) <= 2
            seqs += [c["seq"] for c in page["items"]]
            more = page["has_more"]
        assert seqs == list(range(2, head + 1))


@pytest.mark.parametrize("cursor", [None, 10_000])
async def test_a_missing_or_impossible_cursor_is_told_to_take_a_snapshot(live, door, cursor):
    async with socket(live, door.token()) as ws:
        welcome = await hello(ws, cursor)
        assert welcome["snapshot_required"] is True
        await send(ws, scan_frame(door))  # the socket still serves scans
        assert (await recv_type(ws, "result"))["verdict"] == "accepted"


async def test_a_cursor_at_the_head_gets_an_empty_changes_frame(live, door):
    async with socket(live, door.token()) as ws:
        head = (await hello(ws, 0))["head"]
        await send(ws, {"type": "hello", "cursor": head})
        assert (await recv(ws))["type"] == "welcome"
        assert await recv(ws) == {"type": "changes", "items": [], "head": head, "has_more": False}


# --- scans ----------------------------------------------------------------------------------


async def test_a_scan_is_accepted_and_a_second_one_is_already_redeemed_with_first_time_and_gate(
    live, door
):
    async with socket(live, door.token("A")) as ws:
        first = scan_frame(door)
        await send(ws, first)
        accepted = await recv_type(ws, "result")
        assert decode_hub_frame(json_bytes(accepted))  # a well-formed hub frame
        assert accepted["verdict"] == "accepted" and accepted["reason"] is None
        assert accepted["scan_id"] == first["scan_id"]
        assert accepted["ticket"]["id"] == door.tickets[0]["id"]
        assert accepted["entries"] == 1
        await send(ws, scan_frame(door))
        again = await recv_type(ws, "result")
        assert again["verdict"] == "rejected" and again["reason"] == "already_redeemed"
        assert again["first_scan"]["gate"] == "North"
        assert again["first_scan"]["device"] == door.device_id("A")
        first_at = datetime.fromisoformat(again["first_scan"]["at"])
        assert abs(first_at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_a_repeated_scan_id_returns_the_stored_result_and_changes_nothing(live, door):
    async with socket(live, door.token()) as ws:
        head = (await hello(ws, 0))["head"]
        frame = scan_frame(door)
        await send(ws, frame)
        first = await recv_type(ws, "result")
        await send(ws, frame)
        second = await recv_type(ws, "result")
        assert second == first
        await send(ws, {"type": "hello", "cursor": head})
        welcome = await recv_type(ws, "welcome")
        assert welcome["head"] == head + 1  # one scan.accepted, not two


async def test_a_rejected_scan_of_an_unknown_code_is_invalid(live, door):
    async with socket(live, door.token()) as ws:
        await send(ws, scan_frame(door, code="NOT-A-TICKET"))
        result = await recv_type(ws, "result")
        assert (result["verdict"], result["reason"], result["ticket"]) == (
            "rejected",
            "invalid",
            None,
        )


async def test_a_scan_batch_answers_one_result_per_item_in_order(live, door):
    async with socket(live, door.token()) as ws:
        items = [{k: v for k, v in scan_frame(door, i).items() if k != "type"} for i in range(3)]
        items.append(dict(items[0], scan_id=str(uuid.uuid4())))
        await send(ws, {"type": "scan_batch", "items": items})
        results = (await recv_type(ws, "results"))["items"]
        assert [r["scan_id"] for r in results] == [i["scan_id"] for i in items]
        assert [r["verdict"] for r in results] == ["accepted"] * 3 + ["rejected"]


async def test_an_empty_scan_batch_gets_empty_results(live, door):
    async with socket(live, door.token()) as ws:
        await send(ws, {"type": "scan_batch", "items": []})
        assert await recv_type(ws, "results") == {"type": "results", "items": []}


async def test_a_scan_batch_over_500_items_is_invalid_and_records_nothing(live, door):
    async with socket(live, door.token()) as ws:
        head = (await hello(ws, 0))["head"]
        item = {k: v for k, v in scan_frame(door).items() if k != "type"}
        items = [dict(item, scan_id=str(uuid.uuid4())) for _ in range(501)]
        await send(ws, {"type": "scan_batch", "items": items})
        assert (await recv_type(ws, "error"))["code"] == "invalid"
        await send(ws, {"type": "hello", "cursor": head})
        assert (await recv_type(ws, "welcome"))["head"] == head


async def test_annul_undoes_a_scan_so_the_ticket_is_admitted_again(live, door):
    async with socket(live, door.token()) as ws:
        first = scan_frame(door)
        await send(ws, first)
        await recv_type(ws, "result")
        await send(ws, {"type": "annul", "scan_id": first["scan_id"]})
        annulled = await recv_type(ws, "result")
        assert annulled["scan_id"] == first["scan_id"] and annulled["annulled"] is True
        await send(ws, scan_frame(door))
        assert (await recv_type(ws, "result"))["verdict"] == "accepted"


async def test_annul_of_an_unknown_scan_is_an_error_frame_and_the_socket_stays(live, door):
    async with socket(live, door.token()) as ws:
        await send(ws, {"type": "annul", "scan_id": "no-such-scan"})
        assert (await recv_type(ws, "error"))["code"] == "not_found"
        await send(ws, scan_frame(door))
        assert (await recv_type(ws, "result"))["verdict"] == "accepted"


async def test_a_device_cannot_annul_another_devices_scan_it_is_not_found(live, door):
    """A scan_id names a scan only together with its device: another device's is no scan here."""
    async with socket(live, door.token("A")) as a, socket(live, door.token("B")) as b:
        first = scan_frame(door)
        await send(a, first)
        await recv_type(a, "result")
        await send(b, {"type": "annul", "scan_id": first["scan_id"]})
        assert (await recv_type(b, "error"))["code"] == "not_found"


# --- fan-out ---------------------------------------------------------------------------------


async def test_another_device_receives_the_accepted_scan_as_changes_then_counters(live, door):
    async with socket(live, door.token("A")) as a, socket(live, door.token("B")) as b:
        head = (await hello(b, 0))["head"]
        frame = scan_frame(door)
        started = time.perf_counter()
        await send(a, frame)
        changes = await recv_type(b, "changes")
        latency_ms = (time.perf_counter() - started) * 1000
        assert [(c["seq"], c["kind"]) for c in changes["items"]] == [(head + 1, "scan.accepted")]
        scan, presence = changes["items"][0]["scan"], changes["items"][0]["presence"]
        assert (scan["scan_id"], scan["ticket_id"]) == (frame["scan_id"], door.tickets[0]["id"])
        assert scan["device_id"] == door.device_id("A") and scan["gate"] == "North"
        assert (presence["entries"], presence["inside"]) == (1, True)
        counters = await recv_type(b, "counters")
        assert (counters["checked_in"], counters["inside"]) == (1, 1)
        print(f"fan-out of one accepted scan to a second device: {latency_ms:.1f} ms")


async def test_a_device_holding_two_sockets_gets_the_changes_on_both(live, door):
    async with (
        socket(live, door.token("B")) as b1,
        socket(live, door.token("B")) as b2,
        socket(live, door.token("A")) as a,
    ):
        head = (await hello(b1, 0))["head"]
        await hello(b2, head)
        await send(a, scan_frame(door))
        for ws in (b1, b2):
            changes = await recv_type(ws, "changes")
            assert changes["items"][0]["seq"] == head + 1


async def test_an_offline_upload_against_the_rules_is_forced_and_others_get_a_conflict(live, door):
    async with socket(live, door.token("A")) as a, socket(live, door.token("B")) as b:
        await hello(b, 0)
        await send(a, scan_frame(door))
        await recv_type(a, "result")
        late = datetime.now(UTC) - timedelta(minutes=2)
        item = {
            "scan_id": str(uuid.uuid4()),
            "code": door.tickets[0]["token"],
            "list_id": door.list_id,
            "scanned_at": late.isoformat(),
            "offline": True,
            "verdict": "accepted",
        }
        await send(b, {"type": "scan_batch", "items": [item]})
        (result,) = (await recv_type(b, "results"))["items"]
        assert result["forced"] is True and result["offline"] is True
        assert result["reason"] == "already_redeemed"
        conflict = await recv_type(a, "conflict")
        assert conflict["scan_id"] == item["scan_id"]
        assert conflict["reason"] == "already_redeemed"
        assert conflict["device"] == door.device_id("B") and conflict["gate"] == "South"


async def test_a_lost_notice_is_healed_from_the_change_log_on_the_next_one(live, door):
    hub = live.app.state.hub
    async with socket(live, door.token("A")) as a, socket(live, door.token("B")) as b:
        head = (await hello(b, 0))["head"]
        original_publish = hub.fanout.publish

        async def lose(event_id, notice):  # this notice never reaches anyone
            return None

        hub.fanout.publish = lose
        try:
            await send(a, scan_frame(door, 0))
            await recv_type(a, "result")
        finally:
            hub.fanout.publish = original_publish
        await send(a, scan_frame(door, 1))
        await recv_type(a, "result")
        seqs = []
        while len(seqs) < 2:
            seqs += [c["seq"] for c in (await recv_type(b, "changes"))["items"]]
        assert seqs == [head + 1, head + 2]


# --- bad input -------------------------------------------------------------------------------

GARBAGE = [
    pytest.param("{not json", "malformed", id="malformed-json"),
    pytest.param("[1, 2]", "malformed", id="not-an-object"),
    pytest.param('{"type": "launch_missiles"}', "unknown_type", id="unknown-type"),
    pytest.param('{"cursor": 0}', "unknown_type", id="no-type"),
    pytest.param('{"type": "scan", "scan_id": "x"}', "invalid", id="missing-fields"),
    pytest.param('{"type": "hello", "cursor": "0"}', "invalid", id="string-for-int"),
    pytest.param('{"type": "hello", "cursor": -1}', "invalid", id="negative-cursor"),
    pytest.param('{"type": "hello", "cursor": 0, "extra": 1}', "invalid", id="unknown-field"),
    pytest.param('{"type": "annul"}', "invalid", id="annul-without-scan-id"),
    pytest.param('{"type": "scan_batch", "items": [{}]}', "invalid", id="empty-batch-item"),
    pytest.param('{"type": "auth", "token": "t"}', "invalid", id="auth-twice"),
    pytest.param('{"type": "hello", "cursor": 0}  trailing', "malformed", id="trailing-bytes"),
    pytest.param(
        '{"type": "scan", "scan_id": "x", "code": "c", "list_id": "L",'
        ' "scanned_at": "9999-12-31T23:59:59-14:00"}',
        "invalid",
        id="scanned-at-past-year-9999-in-utc",
    ),
    pytest.param(
        '{"type": "scan_batch", "items": [{"scan_id": "x", "code": "c", "list_id": "L",'
        ' "scanned_at": "0001-01-01T00:00:00+14:00"}]}',
        "invalid",
        id="batch-scanned-at-before-year-1-in-utc",
    ),
    pytest.param(
        '{"type": "scan", "scan_id": "x", "code": "c", "list_id": "L", "offline": true}',
        "invalid",
        id="offline-without-the-doors-verdict",
    ),
]


@pytest.mark.parametrize(("garbage", "code"), GARBAGE)
async def test_a_bad_frame_gets_an_error_frame_and_the_socket_and_its_neighbour_keep_working(
    live, door, garbage, code
):
    async with socket(live, door.token("A")) as bad, socket(live, door.token("B")) as good:
        await send(good, {"type": "hello", "cursor": None})
        await recv_type(good, "welcome")
        await bad.send(garbage)
        error = await recv(bad)
        assert error["type"] == "error" and error["code"] == code, error
        assert error["detail"]
        await send(bad, scan_frame(door, 0))
        assert (await recv_type(bad, "result"))["verdict"] == "accepted"
        await send(good, scan_frame(door, 1))
        assert (await recv_type(good, "result"))["verdict"] == "accepted"


async def test_a_scan_of_an_unknown_list_is_rejected_not_on_list_stored_but_never_folded_or_logged(
    live, door, settings
):
    frame = scan_frame(door, list_id="NOSUCHLIST")
    async with socket(live, door.token()) as ws:
        head = (await hello(ws, 0))["head"]
        await send(ws, frame)
        answer = await recv(ws)
        assert answer["type"] == "result", answer
        assert (answer["scan_id"], answer["verdict"], answer["reason"]) == (
            frame["scan_id"],
            "rejected",
            "not_on_list",
        )
        assert (answer["forced"], answer["entries"]) == (False, 0)
        await send(ws, {"type": "hello", "cursor": head})
        assert (await recv_type(ws, "welcome"))["head"] == head
    scans, presence, changes = await _rows_of(settings, door.event_id, after=head)
    assert [
        (s.scan_id, s.device_id, s.list_id, s.ticket_id, s.accepted, s.reason, s.seq) for s in scans
    ] == [
        (
            frame["scan_id"],
            door.device_id(),
            "NOSUCHLIST",
            door.tickets[0]["id"],
            False,
            "not_on_list",
            None,
        )
    ]
    assert presence == [], "a rejected scan is never folded into presence"
    assert changes == [], "a rejected scan is never appended to the change log"


async def _rows_of(settings, event_id: str, *, after: int):
    """The event's scan rows, its tickets' presence rows and its change-log entries past `after`."""
    from sqlalchemy import select

    from server.changes.models import Change
    from server.checkin.models import PresenceRow, ScanRow
    from server.db import Database
    from server.tickets.models import Ticket

    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            scans = (
                await session.scalars(select(ScanRow).where(ScanRow.event_id == event_id))
            ).all()
            of_event = select(Ticket.id).where(Ticket.event_id == event_id)
            presence = await session.scalars(
                select(PresenceRow).where(PresenceRow.ticket_id.in_(of_event))
            )
            changes = await session.scalars(
                select(Change).where(Change.event_id == event_id, Change.seq > after)
            )
            return list(scans), list(presence.all()), list(changes.all())
    finally:
        await database.dispose()


async def test_an_oversize_frame_gets_an_error_and_close_1009_while_others_carry_on(live, door):
    async with socket(live, door.token("A")) as big, socket(live, door.token("B")) as good:
        await big.send('{"type":"hello","cursor":0,"pad":"' + "x" * MAX_FRAME_BYTES + '"}')
        error = await recv(big)
        assert (error["type"], error["code"]) == ("error", "too_large")
        assert await closed_with(big) == 1009
        await send(good, scan_frame(door))
        assert (await recv_type(good, "result"))["verdict"] == "accepted"


async def test_a_flood_over_the_default_burst_is_dropped_with_rate_limited(live, door):
    async with socket(live, door.token("A")) as ws:
        for _ in range(1100):
            await ws.send("x")
        codes = set()
        while "rate_limited" not in codes:
            codes.add((await recv_type(ws, "error"))["code"])
        assert codes <= {"malformed", "rate_limited"}


async def test_a_flood_that_persists_is_closed_with_1008_and_a_neighbour_keeps_working(live, door):
    live.app.state.hub.configure(HubConfig(rate=50, burst=50, close_after=0.5))
    async with socket(live, door.token("A")) as flood, socket(live, door.token("B")) as good:

        async def pour():
            try:
                while True:
                    await flood.send("x")
                    await asyncio.sleep(0.001)
            except ConnectionClosed:
                return

        pouring = asyncio.create_task(pour())
        assert await closed_with(flood) == 1008
        await pouring
        await send(good, scan_frame(door))
        assert (await recv_type(good, "result"))["verdict"] == "accepted"


# --- authentication and revocation ---------------------------------------------------------


@pytest.mark.parametrize("token", ["tsd_unknown", "garbage token", "x" * 600])
async def test_a_bad_header_token_gets_an_error_frame_and_close_4401(live, door, token):
    async with socket(live, token) as ws:
        error = await recv(ws)
        assert (error["type"], error["code"]) == ("error", "unauthenticated")
        assert await closed_with(ws) == 4401


async def test_the_token_may_come_as_the_first_auth_frame(live, door):
    async with socket(live, None) as ws:
        await send(ws, {"type": "auth", "token": door.token()})
        welcome = await hello(ws, None)
        assert welcome["device_id"] == door.device_id()


@pytest.mark.parametrize(
    "first",
    [
        '{"type": "hello", "cursor": 0}',
        '{"type": "auth", "token": "tsd_wrong"}',
        "{oops",
        '{"type": "auth"}',
    ],
    ids=["hello-first", "wrong-token", "malformed", "auth-without-token"],
)
async def test_a_first_frame_that_does_not_authenticate_is_closed_4401(live, door, first):
    async with socket(live, None) as ws:
        await ws.send(first)
        assert (await recv(ws))["type"] == "error"
        assert await closed_with(ws) == 4401


async def test_no_auth_frame_within_the_timeout_closes_4401(live, door):
    live.app.state.hub.configure(HubConfig(auth_timeout=0.2))
    async with socket(live, None) as ws:
        assert (await recv(ws))["code"] == "unauthenticated"
        assert await closed_with(ws) == 4401


async def test_revoking_a_connected_device_closes_its_sockets_4403_and_refuses_it_after(
    live, door, http
):
    async with socket(live, door.token("A")) as a, socket(live, door.token("B")) as b:
        await hello(a, None)
        await hello(b, None)
        response = await http.delete(f"/api/v1/devices/{door.device_id('A')}")
        assert response.status_code in (200, 204), response.text
        assert await closed_with(a) == 4403
        await send(b, scan_frame(door))
        assert (await recv_type(b, "result"))["verdict"] == "accepted"
    async with socket(live, door.token("A")) as again:
        assert (await recv(again))["code"] == "unauthenticated"
        assert await closed_with(again) == 4401


async def test_a_revoked_device_missed_by_the_fan_out_is_closed_by_the_periodic_check(
    live, door, settings
):
    live.app.state.hub.configure(HubConfig(heal_interval=0.1, revocation_check_interval=0.2))
    from server.checkin import service
    from server.db import Database, utcnow

    async with socket(live, door.token("A")) as a:
        await hello(a, None)
        database = Database(settings.database_url)
        try:
            async with database.transaction() as session:
                await service.revoke_device(session, door.device_id("A"), now=utcnow())
        finally:
            await database.dispose()
        assert await closed_with(a) == 4403


async def test_the_periodic_device_check_runs_in_a_busy_room_too(live, http, settings):
    """A room whose notices never fall silent (a rush: no heal) still checks its devices: a
    revocation Redis lost closes the socket, and the doors' online marks are refreshed."""
    live.app.state.hub.configure(HubConfig(heal_interval=3600.0, revocation_check_interval=0.2))
    from server.checkin import service
    from server.db import Database, utcnow

    door = await make_door(http, settings, tickets=1, allow_reentry=True, max_entries=None)
    async with socket(live, door.token("A")) as a, socket(live, door.token("B")) as b:
        await hello(a, None)
        await hello(b, None)
        database = Database(settings.database_url)
        try:
            async with database.transaction() as session:  # no notice: as if Redis lost it
                await service.revoke_device(session, door.device_id("A"), now=utcnow())
        finally:
            await database.dispose()

        async def keep_busy() -> None:
            for n in range(400):  # in, out, in...: each commits a change, the room hears it
                direction = "entry" if n % 2 == 0 else "exit"
                await send(b, scan_frame(door, direction=direction))
                assert (await recv_type(b, "result"))["verdict"] == "accepted"
                await asyncio.sleep(0.02)  # a notice every ~20 ms: never silent for 3600 s

        busy = asyncio.create_task(keep_busy())
        try:
            assert await closed_with(a) == 4403
        finally:
            busy.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await busy


def json_bytes(frame: dict) -> bytes:
    import json

    return json.dumps(frame).encode()


async def test_every_device_of_another_event_hears_nothing(live, http, settings, door):
    other = await make_door(http, settings, tickets=1)
    async with socket(live, other.token()) as stranger, socket(live, door.token()) as a:
        await hello(stranger, 0)
        await send(a, scan_frame(door))
        await recv_type(a, "result")
        with pytest.raises(TimeoutError):
            await recv_type(stranger, "changes", within=0.5)


async def test_a_batch_over_the_devices_scan_item_budget_is_refused_whole_and_recorded_never(
    live, door
):
    """Frames are few, items many: 3 batches of 400 codes from one device is what guessing looks
    like. The third is refused with `rate_limited`, nothing of it is recorded, the socket stays."""
    from server.ratelimit import TokenBuckets

    live.app.state.redeem_writer.items = TokenBuckets(rate=0.001, burst=1000)
    async with socket(live, door.token("A")) as a:

        def batch() -> dict:
            items = [
                {"scan_id": str(uuid.uuid4()), "code": f"ZZZZ-{i:04d}", "list_id": door.list_id}
                for i in range(400)
            ]
            return {"type": "scan_batch", "items": items}

        for _ in range(2):
            await send(a, batch())
            assert len((await recv_type(a, "results"))["items"]) == 400
        over = batch()
        over["items"][0]["code"] = door.tickets[0]["token"]
        await send(a, over)
        error = await recv_type(a, "error")
        assert error["code"] == "rate_limited"
    # Nothing of the refused batch was recorded: the ticket in it still admits its guest.
    async with socket(live, door.token("B")) as b:
        await send(b, scan_frame(door, 0))
        assert (await recv_type(b, "result"))["verdict"] == "accepted"
