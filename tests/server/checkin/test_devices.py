"""Check-in lists, devices, pairing (once, expiring, rate limited) and revocation."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from server.checkin.models import Device
from server.db import Database, utcnow
from tests.conftest import problem_of
from tests.factories import create_event, create_ticket_type
from tests.server.checkin.helpers import create_device, create_list, pair, paired_door, venue

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


async def test_a_list_is_created_with_its_rules_and_listed(api):
    event = await create_event(api)
    adult = await create_ticket_type(api, event["id"], name="Adult")
    created = await create_list(
        api, event["id"], ticket_type_ids=[adult["id"]], max_entries=None, allow_reentry=True
    )
    assert (created["ticket_type_ids"], created["max_entries"], created["allow_reentry"]) == (
        [adult["id"]],
        None,
        True,
    )
    listed = await api.get(f"/api/v1/events/{event['id']}/checkin-lists")
    assert [row["id"] for row in listed.json()["items"]] == [created["id"]]


async def test_a_list_naming_another_events_ticket_type_is_refused_naming_the_field(api):
    event, other = await create_event(api), await create_event(api, name="Other")
    foreign = await create_ticket_type(api, other["id"])
    body = {"name": "Main", "ticket_type_ids": [foreign["id"]]}
    response = await api.post(f"/api/v1/events/{event['id']}/checkin-lists", json=body)
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"] == "ticket_type_ids[0]"


@pytest.mark.parametrize("kind", ["checkin-lists", "devices"])
async def test_an_events_lists_and_devices_are_paginated_with_total(api, kind):
    event, other = await create_event(api), await create_event(api, name="Other")
    make = create_list if kind == "checkin-lists" else create_device
    names = [f"{kind} {n}" for n in range(5)]
    for name in names:
        await make(api, event["id"], name=name)
    await make(api, other["id"], name="elsewhere")
    url = f"/api/v1/events/{event['id']}/{kind}"
    window = (await api.get(url, params={"limit": 2, "offset": 1})).json()
    assert (window["total"], window["limit"], window["offset"]) == (5, 2, 1)
    assert [row["name"] for row in window["items"]] == names[1:3]
    default = (await api.get(url)).json()
    assert (default["total"], default["limit"], default["offset"]) == (5, 50, 0)
    assert [row["name"] for row in default["items"]] == names


@pytest.mark.parametrize("kind", ["checkin-lists", "devices"])
@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"offset": -1}])
async def test_out_of_range_pagination_of_lists_and_devices_is_refused(api, kind, params):
    event = await create_event(api)
    response = await api.get(f"/api/v1/events/{event['id']}/{kind}", params=params)
    assert response.status_code == 400
    assert problem_of(response)["errors"]


async def test_a_new_device_gets_a_typable_one_time_code_and_a_pairing_uri(api):
    event = await create_event(api)
    device = await create_device(api, event["id"], name="North door", gate="N")
    assert CODE.match(device["pairing_code"])
    query = parse_qs(urlsplit(device["pairing_uri"]).query)
    assert device["pairing_uri"].startswith("tessera-pair:")
    assert query == {"v": ["1"], "url": ["https://tickets.test"], "code": [device["pairing_code"]]}
    payload = json.loads(device["pairing_payload"])
    assert payload == {"v": 1, "url": "https://tickets.test", "code": device["pairing_code"]}
    listed = await api.get(f"/api/v1/events/{event['id']}/devices")
    assert [(d["name"], d["paired"], d["revoked"]) for d in listed.json()["items"]] == [
        ("North door", False, False)
    ]
    assert "pairing_code" not in listed.json()["items"][0]


async def test_a_pairing_code_works_once(api):
    event = await create_event(api)
    device = await create_device(api, event["id"])
    first = await pair(api, device["pairing_code"].lower().replace("-", " "))
    second = await pair(api, device["pairing_code"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["token"].startswith("tsd_") and len(body["token"]) >= 4 + 43
    assert (body["device_id"], body["event_id"]) == (device["id"], event["id"])
    assert body["ws_url"] == "wss://tickets.test/ws/scanner"
    assert second.status_code == 401
    assert problem_of(second)["code"] == "unauthenticated"


async def test_an_expired_pairing_code_is_refused(api, settings):
    event = await create_event(api)
    device = await create_device(api, event["id"])
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            past = utcnow() - timedelta(seconds=1)
            await session.execute(
                update(Device).where(Device.id == device["id"]).values(pairing_expires_at=past)
            )
    finally:
        await database.dispose()
    assert (await pair(api, device["pairing_code"])).status_code == 401


async def test_pairing_guesses_are_rate_limited_per_address(api):
    statuses = [(await pair(api, f"AAAA-AAAA-{i:04d}")).status_code for i in range(11)]
    assert statuses == [401] * 10 + [429]
    limited = await pair(api, "AAAA-AAAA-AAAA")
    assert problem_of(limited)["status"] == 429
    assert problem_of(limited)["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


async def test_a_fleet_of_twenty_devices_pairs_at_once_from_one_address(api):
    """Only failed attempts spend an address's budget: a fleet behind one NAT pairs at once."""
    event = await create_event(api)
    codes = [
        (await create_device(api, event["id"], name=f"Door {n}"))["pairing_code"] for n in range(20)
    ]
    statuses = [(await pair(api, code)).status_code for code in codes]
    assert statuses == [200] * 20
    guesses = [(await pair(api, f"AAAA-AAAA-{i:04d}")).status_code for i in range(11)]
    assert guesses == [401] * 10 + [429]


async def test_a_locked_out_address_cannot_pair_even_with_a_right_code(api, settings):
    """While locked out, a right code answers 429 as a guess does, so guessing learns nothing."""
    event = await create_event(api)
    device = await create_device(api, event["id"])
    for i in range(10):
        await pair(api, f"AAAA-AAAA-{i:04d}")
    refused = await pair(api, device["pairing_code"])
    assert refused.status_code == 429
    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            paired_at = await session.scalar(
                select(Device.paired_at).where(Device.id == device["id"])
            )
    finally:
        await database.dispose()
    assert paired_at is None


async def test_a_revoked_device_token_is_refused_and_its_sockets_are_told(api, app):
    v = await venue(api)
    async with app.state.fanout.subscribe(v.event_id) as notices:
        response = await api.delete(f"/api/v1/devices/{v.door.device_id}")
        notice = notices.get_nowait()
    assert response.status_code == 204
    assert notice == {"kind": "device_revoked", "device_id": v.door.device_id}
    refused = await api.get("/api/v1/checkin/changes?since=0", headers=v.door.headers)
    assert refused.status_code == 401
    body = {"scan_id": "x", "code": v.tickets[0]["code"], "list_id": v.list_id}
    redeem = await api.post("/api/v1/checkin/redeem", json=body, headers=v.door.headers)
    assert redeem.status_code == 401
    assert problem_of(redeem)["code"] == "unauthenticated"


async def test_device_calls_without_a_valid_token_are_401(api):
    v = await venue(api)
    organiser = await api.get("/api/v1/checkin/snapshot")  # the organiser's token is no device's
    bogus = await api.get("/api/v1/checkin/snapshot", headers={"Authorization": "Bearer tsd_x"})
    assert organiser.status_code == bogus.status_code == 401
    other_door = await paired_door(api, v.event_id, name="Door 2")
    assert (
        await api.get("/api/v1/checkin/snapshot", headers=other_door.headers)
    ).status_code == 200


async def test_the_pairing_qr_is_served_for_the_right_unused_code_only(api):
    event = await create_event(api)
    device = await create_device(api, event["id"])
    url = f"/api/v1/devices/{device['id']}/pairing.svg"
    shown = await api.get(url, params={"code": device["pairing_code"]})
    wrong = await api.get(url, params={"code": "AAAA-AAAA-AAAA"})
    assert shown.status_code == 200
    assert shown.headers["content-type"].startswith("image/svg+xml")
    assert shown.content.startswith(b"<svg")
    assert wrong.status_code == 404
    await pair(api, device["pairing_code"])
    assert (await api.get(url, params={"code": device["pairing_code"]})).status_code == 404


async def test_organiser_endpoints_need_the_organiser_token(client, api):
    event = await create_event(api)
    client.headers.pop("Authorization")
    response = await client.post(f"/api/v1/events/{event['id']}/devices", json={"name": "D"})
    assert response.status_code == 401


async def test_unknown_event_or_device_is_404(api):
    assert (await api.post("/api/v1/events/NOPE/devices", json={"name": "D"})).status_code == 404
    assert (await api.get("/api/v1/events/NOPE/checkin/stats")).status_code == 404
    assert (await api.delete("/api/v1/devices/NOPE")).status_code == 404
