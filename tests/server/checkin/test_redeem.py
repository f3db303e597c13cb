"""Redeem and annul over REST: exactly once, QR tokens, offline uploads, undo, counters."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from protocol.messages import ScanItem
from protocol.rules import Direction, Presence, RecordedScan, fold_all
from server.changes.service import head
from server.checkin import service
from server.checkin.models import ScanRow
from server.checkin.store import DeviceContext, list_rules
from server.db import Database, utcnow
from server.errors import Forbidden
from tests.conftest import problem_of
from tests.server.checkin.helpers import Venue, paired_door, redeem, venue


async def _scan_rows(settings: Any, scan_id: str | None = None) -> int:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            query = select(func.count()).select_from(ScanRow)
            if scan_id is not None:
                query = query.where(ScanRow.scan_id == scan_id)
            return int(await session.scalar(query) or 0)
    finally:
        await database.dispose()


async def _stats(api: Any, event_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/events/{event_id}/checkin/stats")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_repeated_scan_id_returns_the_stored_result_and_changes_nothing(api, settings):
    v = await venue(api)
    code = v.tickets[0]["code"]
    first = await redeem(api, v.door, code, v.list_id, scan_id="retry-1")
    again = await redeem(api, v.door, code, v.list_id, scan_id="retry-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["verdict"] == "accepted"
    assert await _scan_rows(settings, "retry-1") == 1
    stats = await _stats(api, v.event_id)
    assert (stats["checked_in"], stats["inside"], stats["remaining"]) == (1, 1, 0)


async def test_a_retry_of_a_rejected_scan_stays_rejected_with_its_first_scan(api):
    v = await venue(api)
    code = v.tickets[0]["code"]
    await redeem(api, v.door, code, v.list_id)
    refused = await redeem(api, v.door, code, v.list_id, scan_id="second")
    retried = await redeem(api, v.door, code, v.list_id, scan_id="second")
    assert refused.json()["reason"] == "already_redeemed"
    assert retried.json() == refused.json()
    assert retried.json()["first_scan"]["gate"] == "A"


async def test_the_qr_token_and_the_typed_code_redeem_the_same_ticket(api):
    v = await venue(api)
    ticket = v.tickets[0]
    by_token = await redeem(api, v.door, ticket["token"], v.list_id)
    typed = ticket["code"].lower().replace("-", " ")
    by_code = await redeem(api, v.door, typed, v.list_id)
    assert by_token.json()["verdict"] == "accepted"
    assert by_token.json()["ticket"]["id"] == ticket["id"]
    assert by_code.json()["reason"] == "already_redeemed"


async def test_a_tampered_token_is_invalid_and_names_no_ticket(api):
    v = await venue(api)
    header, payload, signature = v.tickets[0]["token"].split(".")
    # Change the signature's first character for sure (a fixed suffix could equal the real one).
    first = "B" if signature[0] == "A" else "A"
    forged = f"{header}.{payload}.{first}{signature[1:]}"
    response = await redeem(api, v.door, forged, v.list_id)
    assert response.status_code == 200
    assert response.json()["reason"] == "invalid"
    assert response.json()["ticket"] is None


async def test_the_stored_token_of_a_retired_key_is_invalid(api, settings):
    """The hub skips the signature of a token identical to its ticket's stored one, never the
    kid: a key taken out of service refuses its tickets even though the hub issued them."""
    from server.checkin.redeem import decide_and_record

    v = await venue(api)
    device = DeviceContext(v.door.device_id, v.event_id, "Door 1", "A")
    item = ScanItem(scan_id="retired-1", code=v.tickets[0]["token"], list_id=v.list_id)
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            results, _, _ = await decide_and_record(
                session, [(device, item)], now=utcnow(), keys={}
            )
    finally:
        await database.dispose()
    assert (results[0].verdict, results[0].reason, results[0].ticket) == (
        "rejected",
        "invalid",
        None,
    )
    assert (await _stats(api, v.event_id))["checked_in"] == 0


async def test_a_token_of_a_superseded_version_is_revoked(api):
    v = await venue(api)
    ticket = v.tickets[0]
    reissued = await api.post(f"/api/v1/tickets/{ticket['id']}/reissue")
    assert reissued.status_code == 200, reissued.text
    old = await redeem(api, v.door, ticket["token"], v.list_id)
    new = await redeem(api, v.door, reissued.json()["token"], v.list_id)
    assert old.json()["reason"] == "revoked"
    assert new.json()["verdict"] == "accepted"


async def test_a_ticket_of_another_event_is_wrong_event_and_shows_nothing_of_it(api):
    v = await venue(api)
    other = await venue(api)
    response = await redeem(api, v.door, other.tickets[0]["token"], v.list_id)
    assert response.json()["reason"] == "wrong_event"
    assert response.json()["ticket"] is None


async def test_an_unknown_list_or_another_events_list_admits_nothing(api):
    v = await venue(api)
    other = await venue(api)
    code = v.tickets[0]["code"]
    unknown = await redeem(api, v.door, code, "NOSUCHLIST")
    foreign = await redeem(api, v.door, code, other.list_id)
    assert unknown.json()["reason"] == foreign.json()["reason"] == "not_on_list"
    assert (await _stats(api, other.event_id))["checked_in"] == 0


async def test_an_offline_scan_is_never_refused_but_forced_with_a_conflict(api, app):
    v = await venue(api)
    code = v.tickets[0]["code"]
    first = await redeem(api, v.door, code, v.list_id, scan_id="online-1")
    late = (utcnow() - timedelta(minutes=5)).isoformat()
    async with app.state.fanout.subscribe(v.event_id) as notices:
        upload = await redeem(
            api,
            v.door,
            code,
            v.list_id,
            scan_id="offline-1",
            offline=True,
            verdict="accepted",
            scanned_at=late,
        )
        received = [notices.get_nowait() for _ in range(notices.qsize())]
    body = upload.json()
    assert upload.status_code == 200
    assert (body["verdict"], body["reason"], body["forced"], body["offline"]) == (
        "accepted",
        "already_redeemed",
        True,
        True,
    )
    assert body["entries"] == 2  # the door let the guest in: the fold counts it
    conflicts = [n["frame"] for n in received if n["kind"] == "conflict"]
    assert len(conflicts) == 1
    assert conflicts[0]["scan_id"] == "offline-1"
    assert conflicts[0]["earlier"]["scan_id"] == first.json()["scan_id"]
    assert any(n["kind"] == "head" for n in received)


async def test_an_offline_scan_the_rules_accept_is_not_forced(api, app):
    v = await venue(api)
    code = v.tickets[0]["code"]
    response = await redeem(api, v.door, code, v.list_id, offline=True, verdict="accepted")
    assert response.json()["verdict"] == "accepted"
    assert response.json()["forced"] is False


async def test_annul_restores_the_counters_and_the_ticket_enters_again(api):
    v = await venue(api)
    code = v.tickets[0]["code"]
    entry = await redeem(api, v.door, code, v.list_id, scan_id="mistake")
    assert entry.json()["verdict"] == "accepted"
    undo = await api.post(
        "/api/v1/checkin/annul", json={"scan_id": "mistake"}, headers=v.door.headers
    )
    assert undo.status_code == 200, undo.text
    assert undo.json()["annulled"] is True
    stats = await _stats(api, v.event_id)
    assert (stats["checked_in"], stats["inside"], stats["remaining"]) == (0, 0, 1)
    again = await redeem(api, v.door, code, v.list_id)
    assert again.json()["verdict"] == "accepted"
    retried = await redeem(api, v.door, code, v.list_id, scan_id="mistake")
    assert retried.json()["annulled"] is True


async def test_annulling_twice_changes_nothing_the_second_time(api, settings):
    v = await venue(api)
    await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="s1")
    body = {"scan_id": "s1"}
    one = await api.post("/api/v1/checkin/annul", json=body, headers=v.door.headers)
    changes = await api.get("/api/v1/checkin/changes?since=0", headers=v.door.headers)
    two = await api.post("/api/v1/checkin/annul", json=body, headers=v.door.headers)
    after = await api.get("/api/v1/checkin/changes?since=0", headers=v.door.headers)
    assert one.json() == two.json()
    assert after.json()["head"] == changes.json()["head"]
    assert [i["kind"] for i in after.json()["items"]][-2:] == ["scan.accepted", "scan.annulled"]


async def test_a_device_may_not_annul_another_devices_scan_but_the_organiser_may(api):
    v = await venue(api)
    other = await paired_door(api, v.event_id, name="Door 2", gate="B")
    await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="s1")
    refused = await api.post("/api/v1/checkin/annul", json={"scan_id": "s1"}, headers=other.headers)
    assert refused.status_code == 404  # the other device has no scan s1
    assert problem_of(refused)["code"] == "not_found"
    organiser = await api.post("/api/v1/scans/s1/annul")
    assert organiser.status_code == 200, organiser.text
    assert (organiser.json()["annulled"], organiser.json()["entries"]) == (True, 0)


async def test_the_organiser_names_the_device_when_two_devices_used_one_scan_id(api):
    v = await venue(api, 2)
    other = await paired_door(api, v.event_id, name="Door 2", gate="B")
    await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="same")
    await redeem(api, other, v.tickets[1]["code"], v.list_id, scan_id="same")
    ambiguous = await api.post("/api/v1/scans/same/annul")
    assert ambiguous.status_code == 409
    assert sorted(problem_of(ambiguous)["devices"]) == sorted([v.door.device_id, other.device_id])
    named = await api.post(f"/api/v1/scans/same/annul?device_id={other.device_id}")
    assert named.status_code == 200, named.text
    assert named.json()["ticket"]["id"] == v.tickets[1]["id"]
    stats = await _stats(api, v.event_id)
    assert stats["checked_in"] == 1  # only the other door's scan was undone


async def test_annul_of_a_rejected_or_unknown_scan_is_refused(api):
    v = await venue(api)
    code = v.tickets[0]["code"]
    await redeem(api, v.door, code, v.list_id)
    await redeem(api, v.door, code, v.list_id, scan_id="refused")
    headers = v.door.headers
    rejected = await api.post("/api/v1/checkin/annul", json={"scan_id": "refused"}, headers=headers)
    unknown = await api.post("/api/v1/checkin/annul", json={"scan_id": "nope"}, headers=headers)
    assert rejected.status_code == 409
    assert problem_of(rejected)["code"] == "invalid_state"
    assert unknown.status_code == 404


async def test_a_device_may_annul_its_own_scan_only_within_15_minutes(api, settings):
    v = await venue(api)
    await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="old")
    device = DeviceContext(v.door.device_id, v.event_id, "Door 1", "A")
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            later = utcnow() + timedelta(minutes=16)
            with pytest.raises(Forbidden, match="15 minutes"):
                await service.annul_scan(session, "old", device=device, now=later)
        async with database.transaction() as session:
            soon = utcnow() + timedelta(minutes=14)
            outcome = await service.annul_scan(session, "old", device=device, now=soon)
        assert outcome.results[0].annulled
    finally:
        await database.dispose()


async def _folded_from_history(settings: Any, v: Venue) -> list[Presence]:
    """Each ticket's presence folded afresh from the scans that took effect and stand."""
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            rows = await session.scalars(
                select(ScanRow)
                .where(ScanRow.seq.is_not(None), ScanRow.annulled.is_(False))
                .order_by(ScanRow.seq)
            )
            by_ticket: dict[str | None, list[RecordedScan]] = {}
            for row in rows:
                recorded = RecordedScan(
                    direction=Direction(row.direction), scanned_at=row.scanned_at
                )
                by_ticket.setdefault(row.ticket_id, []).append(recorded)
            rules = (await list_rules(session, [v.list_id]))[v.list_id]
    finally:
        await database.dispose()
    return [fold_all(scans, rules) for scans in by_ticket.values()]


async def test_counters_never_drift_under_retries_and_annulments(api, settings):
    v = await venue(api, 4, list_fields={"max_entries": 2, "allow_reentry": True})
    rng = random.Random(5)
    sent: list[dict[str, Any]] = []
    for _ in range(60):
        roll = rng.random()
        if sent and roll < 0.2:  # a retry of an earlier scan
            await api.post("/api/v1/checkin/redeem", json=rng.choice(sent), headers=v.door.headers)
        elif sent and roll < 0.35:  # an undo, allowed or not
            body = {"scan_id": rng.choice(sent)["scan_id"]}
            await api.post("/api/v1/checkin/annul", json=body, headers=v.door.headers)
        else:
            scan = {
                "scan_id": str(uuid.uuid4()),
                "code": rng.choice(v.tickets)["code"],
                "list_id": v.list_id,
                "direction": rng.choice(["entry", "entry", "exit"]),
            }
            if rng.random() < 0.3:  # an offline upload: the door admitted or refused the guest
                door_said = rng.choice(["accepted", "rejected"])
                scan |= {"offline": True, "verdict": door_said}
                if door_said == "rejected":
                    scan["reason"] = "already_redeemed"
            sent.append(scan)
            response = await api.post("/api/v1/checkin/redeem", json=scan, headers=v.door.headers)
            assert response.status_code == 200
    folded = await _folded_from_history(settings, v)
    stats = await _stats(api, v.event_id)
    assert stats["checked_in"] == sum(p.entries > 0 for p in folded)
    assert stats["inside"] == sum(p.inside for p in folded)
    assert stats["remaining"] == 4 - stats["checked_in"]
    assert stats["lists"][0]["checked_in"] == stats["checked_in"]


async def test_persons_multiply_the_head_counts(api):
    v = await venue(api, 2, persons=3)
    await redeem(api, v.door, v.tickets[0]["code"], v.list_id)
    stats = await _stats(api, v.event_id)
    assert (stats["total"], stats["checked_in"], stats["inside"], stats["remaining"]) == (
        6,
        3,
        3,
        3,
    )
    assert stats["gates"] == [{"gate": "A", "checked_in": 3, "inside": 3}]


async def test_a_batch_repeating_a_scan_id_records_it_once(api, settings):
    v = await venue(api)
    device = DeviceContext(v.door.device_id, v.event_id, "Door 1", "A")
    item = ScanItem(scan_id="twice", code=v.tickets[0]["code"], list_id=v.list_id)
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            before = await head(session, v.event_id)
            outcome = await service.redeem_scans(session, device, [item, item], now=utcnow())
    finally:
        await database.dispose()
    assert outcome.results[0] == outcome.results[1]
    assert outcome.head == before + 1
    assert await _scan_rows(settings) == 1


async def test_a_blocked_ticket_is_refused_then_admitted_once_unblocked(api):
    v = await venue(api)
    ticket = v.tickets[0]
    await api.post(f"/api/v1/tickets/{ticket['id']}/block")
    assert (await redeem(api, v.door, ticket["code"], v.list_id)).json()["reason"] == "blocked"
    await api.post(f"/api/v1/tickets/{ticket['id']}/unblock")
    assert (await redeem(api, v.door, ticket["code"], v.list_id)).json()["verdict"] == "accepted"


async def test_an_optimistic_batch_meeting_a_stored_scan_id_writes_nothing_and_says_so(
    api, settings
):
    """The writer decides without looking stored scans up; a repeat among them must roll the
    whole batch back (RepeatedScans) so that it is decided again with the lookup."""
    from server.checkin.redeem import RepeatedScans, decide_and_record

    v = await venue(api, 2)
    first = await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="stored-1")
    assert first.json()["verdict"] == "accepted"
    device = DeviceContext(v.door.device_id, v.event_id, "Door 1", "A")
    fresh = ScanItem(scan_id="fresh-1", code=v.tickets[1]["code"], list_id=v.list_id)
    repeat = ScanItem(scan_id="stored-1", code=v.tickets[0]["code"], list_id=v.list_id)
    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            before = await head(session, v.event_id)
        with pytest.raises(RepeatedScans):
            async with database.transaction() as session:
                await decide_and_record(
                    session, [(device, fresh), (device, repeat)], now=utcnow(), optimistic=True
                )
        async with database.transaction(read_only=True) as session:
            assert await head(session, v.event_id) == before
        assert await _scan_rows(settings, "fresh-1") == 0
        async with database.transaction() as session:
            results, _, heads = await decide_and_record(
                session, [(device, fresh), (device, repeat)], now=utcnow(), optimistic=False
            )
    finally:
        await database.dispose()
    assert [r.verdict for r in results] == ["accepted", "accepted"]
    assert results[1].entries == 1 and heads[v.event_id] == before + 1
    assert await _scan_rows(settings, "stored-1") == await _scan_rows(settings, "fresh-1") == 1
    stats = await _stats(api, v.event_id)
    assert stats["checked_in"] == 2


async def test_an_optimistic_batch_of_new_scans_is_recorded_as_before(api, settings):
    from server.checkin.redeem import decide_and_record

    v = await venue(api, 2)
    device = DeviceContext(v.door.device_id, v.event_id, "Door 1", "A")
    items = [
        ScanItem(scan_id=f"new-{i}", code=t["code"], list_id=v.list_id)
        for i, t in enumerate(v.tickets)
    ]
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            results, _, _ = await decide_and_record(
                session, [(device, i) for i in items + items], now=utcnow(), optimistic=True
            )
    finally:
        await database.dispose()
    assert [r.verdict for r in results] == ["accepted"] * 4
    assert results[:2] == results[2:]
    assert await _scan_rows(settings) == 2
