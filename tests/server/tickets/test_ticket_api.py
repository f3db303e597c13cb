"""Organiser ticket API: read, change without reissue, reissue, block and unblock."""

from __future__ import annotations

import base64
import json

import pytest
import segno

from protocol.reasons import Reason
from protocol.token import load_public_jwk, verify_ticket_token
from server.db import Database
from server.keys.service import Keystore, rotate_key
from tests.conftest import problem_of
from tests.factories import confirmed_booking
from tests.server.tickets.helpers import change_head, changes_of, links_of


def _segment(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def _ticket(api, quantity: int = 1) -> tuple[dict, dict]:
    booking = await confirmed_booking(api, quantity)
    return booking, booking["tickets"][0]


async def _verify(client, token: str, event_id: str, current_version: int):
    jwks = (await client.get("/.well-known/jwks.json")).json()["keys"]
    keys = dict(load_public_jwk(k) for k in jwks)
    return verify_ticket_token(
        token, keys, event_id=event_id, now=0, current_version=current_version
    )


async def test_fresh_ticket_token_carries_only_jti_evt_ver_and_fits_qr_version_10(api):
    booking, ticket = await _ticket(api)
    token = ticket["token"]
    assert set(_segment(token, 0)) == {"alg", "kid"}
    assert _segment(token, 0)["alg"] == "EdDSA"
    assert _segment(token, 1) == {"jti": ticket["id"], "evt": booking["event_id"], "ver": 1}
    assert segno.make(token, error="m", boost_error=False, micro=False).version <= 10


async def test_get_ticket_answers_the_ticket_as_the_booking_shows_it(api):
    _, ticket = await _ticket(api)
    response = await api.get(f"/api/v1/tickets/{ticket['id']}")
    assert response.status_code == 200
    assert response.json() == ticket


async def test_unknown_ticket_is_404_problem(api):
    response = await api.get("/api/v1/tickets/NOPE")
    assert response.status_code == 404
    assert problem_of(response)["code"] == "not_found"


async def test_ticket_api_needs_an_organiser_token(client):
    response = await client.get("/api/v1/tickets/ANY")
    assert response.status_code == 401
    assert problem_of(response)["code"] == "unauthenticated"


async def test_read_only_token_reads_but_cannot_change_tickets(api, read_only_token):
    _, ticket = await _ticket(api)
    headers = {"Authorization": f"Bearer {read_only_token}"}
    url = f"/api/v1/tickets/{ticket['id']}"
    assert (await api.get(url, headers=headers)).status_code == 200
    attempts = [
        await api.patch(url, json={"seat": "B2"}, headers=headers),
        *[await api.post(f"{url}/{action}", headers=headers) for action in ("reissue", "block")],
    ]
    assert [problem_of(r)["code"] for r in attempts] == ["forbidden"] * 3
    assert (await api.get(url)).json() == ticket


async def test_patch_changes_holder_and_seat_without_reissue(api, settings):
    booking, ticket = await _ticket(api)
    body = {"holder_name": "Léa Durand", "holder_email": "lea@example.org", "seat": "R4-12"}

    response = await api.patch(f"/api/v1/tickets/{ticket['id']}", json=body)

    assert response.status_code == 200, response.text
    changed = response.json()
    assert {k: changed[k] for k in body} == body
    assert (changed["token"], changed["version"], changed["link"]) == (
        ticket["token"],
        1,
        ticket["link"],
    )
    seq, kind, payload = (await changes_of(settings, booking["event_id"]))[-1]
    payload = payload["ticket"]
    assert (kind, payload["holder_name"], payload["seat"], payload["version"]) == (
        "ticket.updated",
        "Léa Durand",
        "R4-12",
        1,
    )
    assert "holder_email" not in payload  # scanners get no e-mail addresses
    assert seq == await change_head(settings, booking["event_id"])


async def test_patch_null_clears_a_field_and_absent_fields_are_kept(api):
    _, ticket = await _ticket(api)
    url = f"/api/v1/tickets/{ticket['id']}"
    await api.patch(url, json={"seat": "A1", "holder_email": "x@example.org"})
    changed = (await api.patch(url, json={"seat": None})).json()
    assert changed["seat"] is None
    assert changed["holder_email"] == "x@example.org"
    assert changed["holder_name"] == ticket["holder_name"]


async def test_patch_that_changes_nothing_writes_no_change(api, settings):
    booking, ticket = await _ticket(api)
    before = await changes_of(settings, booking["event_id"])
    url = f"/api/v1/tickets/{ticket['id']}"
    assert (await api.patch(url, json={})).status_code == 200
    assert (await api.patch(url, json={"holder_name": ticket["holder_name"]})).status_code == 200
    assert await changes_of(settings, booking["event_id"]) == before


GARBAGE_PATCHES = [
    pytest.param({"holder": "x"}, ["holder"], id="unknown-field"),
    pytest.param({"holder_name": 1, "seat": True}, ["holder_name", "seat"], id="wrong-types"),
    pytest.param({"holder_name": ""}, ["holder_name"], id="empty-name"),
    pytest.param({"holder_email": "not-an-address"}, ["holder_email"], id="bad-email"),
    pytest.param({"version": 7, "token": "x"}, ["version", "token"], id="read-only-fields"),
    pytest.param({"seat": "x" * 1_000_000}, ["seat"], id="one-megabyte-string"),
]


@pytest.mark.parametrize(("body", "fields"), GARBAGE_PATCHES)
async def test_garbage_patch_is_422_naming_every_bad_field_and_changes_nothing(
    api, settings, body, fields
):
    booking, ticket = await _ticket(api)
    before = await changes_of(settings, booking["event_id"])
    response = await api.patch(f"/api/v1/tickets/{ticket['id']}", json=body)
    assert response.status_code == 422
    assert sorted(e["field"] for e in problem_of(response)["errors"]) == sorted(fields)
    assert (await api.get(f"/api/v1/tickets/{ticket['id']}")).json() == ticket
    assert await changes_of(settings, booking["event_id"]) == before


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        pytest.param(b'{"seat": "A', "application/json", 400, id="truncated-json"),
        pytest.param(b'{"seat": "\xff"}', "application/json", 400, id="invalid-utf8"),
        pytest.param(b"[]", "application/json", 422, id="array"),
        pytest.param(b'{"seat": "A1"}', "text/plain", 415, id="wrong-content-type"),
        pytest.param(b'{"seat": "' + b"x" * 1_100_000 + b'"}', "application/json", 413, id="2mb"),
    ],
)
async def test_malformed_patch_bodies_get_clear_problems(api, content, content_type, status):
    _, ticket = await _ticket(api)
    response = await api.patch(
        f"/api/v1/tickets/{ticket['id']}", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    problem_of(response)
    assert (await api.get(f"/api/v1/tickets/{ticket['id']}")).json() == ticket


async def test_reissue_gives_a_new_version_token_and_link_in_one_change(api, client, settings):
    booking, ticket = await _ticket(api)

    response = await api.post(f"/api/v1/tickets/{ticket['id']}/reissue")

    assert response.status_code == 200, response.text
    new = response.json()
    assert new["version"] == 2
    assert new["token"] != ticket["token"] and new["link"] != ticket["link"]
    assert _segment(new["token"], 1)["ver"] == 2
    event_id = booking["event_id"]
    assert await _verify(client, ticket["token"], event_id, 2) == Reason.REVOKED
    claims = await _verify(client, new["token"], event_id, 2)
    assert (claims.jti, claims.ver) == (ticket["id"], 2)
    old_link, new_link = ticket["link"].rsplit("/", 1)[1], new["link"].rsplit("/", 1)[1]
    assert await links_of(settings, ticket["id"]) == [(old_link, 1), (new_link, 2)]
    _, kind, payload = (await changes_of(settings, event_id))[-1]
    assert (kind, payload["ticket"]["version"]) == ("ticket.reissued", 2)


async def test_reissue_signs_with_the_current_key(api, app, settings):
    _, ticket = await _ticket(api)
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            new_kid = (await rotate_key(session, Keystore(settings.keys_path))).kid
    finally:
        await database.dispose()
    app.state.keyring.invalidate()
    new = (await api.post(f"/api/v1/tickets/{ticket['id']}/reissue")).json()
    assert _segment(new["token"], 0)["kid"] == new_kid != _segment(ticket["token"], 0)["kid"]


async def test_block_and_unblock_are_idempotent_and_logged_once_each(api, settings):
    booking, ticket = await _ticket(api)
    url = f"/api/v1/tickets/{ticket['id']}"
    before = len(await changes_of(settings, booking["event_id"]))

    answers = [await api.post(f"{url}/{a}") for a in ("block", "block", "unblock", "unblock")]

    assert [r.status_code for r in answers] == [200] * 4
    assert [r.json()["blocked"] for r in answers] == [True, True, False, False]
    assert answers[-1].json()["token"] == ticket["token"]
    kinds = [kind for _, kind, _ in (await changes_of(settings, booking["event_id"]))[before:]]
    assert kinds == ["ticket.blocked", "ticket.unblocked"]


@pytest.mark.parametrize("action", ["reissue", "block", "unblock"])
async def test_revoked_ticket_cannot_be_reissued_blocked_or_unblocked(api, settings, action):
    booking, ticket = await _ticket(api)
    await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    before = await changes_of(settings, booking["event_id"])

    response = await api.post(f"/api/v1/tickets/{ticket['id']}/{action}")

    assert response.status_code == 409
    body = problem_of(response)
    assert (body["code"], body["id"], body["ticket_status"]) == (
        "invalid_state",
        ticket["id"],
        "revoked",
    )
    assert await changes_of(settings, booking["event_id"]) == before


async def test_every_change_is_logged_with_a_gap_free_seq(api, settings):
    booking = await confirmed_booking(api, 3)
    first, second = booking["tickets"][0]["id"], booking["tickets"][1]["id"]
    await api.patch(f"/api/v1/tickets/{first}", json={"seat": "C3"})
    await api.post(f"/api/v1/tickets/{first}/reissue")
    await api.post(f"/api/v1/tickets/{second}/block")
    await api.post(f"/api/v1/tickets/{second}/unblock")
    await api.post(f"/api/v1/bookings/{booking['id']}/cancel")

    log = await changes_of(settings, booking["event_id"])

    assert [seq for seq, _, _ in log] == list(range(1, len(log) + 1))
    assert len(log) == await change_head(settings, booking["event_id"])
    assert [kind for _, kind, _ in log] == [
        "ticket_type.created",
        *["ticket.issued"] * 3,
        "ticket.updated",
        "ticket.reissued",
        "ticket.blocked",
        "ticket.unblocked",
        *["ticket.revoked"] * 3,
    ]
