"""The console's doors pages (SQLite only: the services they call are tested on both backends):
create a device, its pairing QR holds the API's payload and pairs a door, revoke it; creating
redirects to a pairing page that a reload shows again without creating anything, to the
organiser who created it only, and not once the code is used; another event's device is not
found under this event's path; read-only users and forged forms are refused; garbage is
answered with a page."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import segno
import zxingcpp
from PIL import Image

from scanner_client.pairing import parse_pairing_input
from server.checkin.service import NewDevice
from server.console import pairing_view
from tests.factories import create_event
from tests.server.checkin.helpers import create_device, pair, redeem, venue
from tests.server.console.helpers import as_new_browser, make_user, sign_in
from ticket_renderer import qr_svg

CODE = re.compile(r'id="pairing-code">([0-9A-Z-]+)<')
PAIRING_PATH = re.compile(r"^/console/events/[^/]+/doors/([^/]+)/pairing$")


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def admin(client, settings):
    await make_user(settings)
    return await sign_in(client, settings)


def _decoded(payload: str, tmp_path) -> str:
    """What a camera reads from the QR of `payload` (drawn by segno as the page's SVG is)."""
    path = tmp_path / "qr.png"
    segno.make(payload, error="m", boost_error=False, mask=0, micro=False).save(path, scale=8)
    (found,) = zxingcpp.read_barcodes(Image.open(path))
    return found.text


async def test_create_a_device_and_pair_it_with_the_code_of_its_pairing_page(
    client, admin, organiser_token, settings, tmp_path
):
    client.headers["Authorization"] = f"Bearer {organiser_token}"
    event = await create_event(client)
    del client.headers["Authorization"]
    doors = await client.get(f"/console/events/{event['id']}/doors")
    assert doors.status_code == 200 and 'name="gate"' in doors.text
    form = {"csrf": admin, "name": "Porte nord", "gate": "Nord"}
    created = await client.post(f"/console/events/{event['id']}/doors", data=form)
    assert created.status_code == 303, created.text
    page = await client.get(created.headers["location"])
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert "data:" not in page.text and "<script" not in page.text
    code = CODE.search(page.text).group(1)
    payload = NewDevice.payload_for(settings.public_base_url, code)
    svg = qr_svg(payload, scale=10).decode()
    assert svg.split("<path", 1)[1] in page.text  # the page draws exactly this payload's QR
    decoded = _decoded(payload, tmp_path)
    request = parse_pairing_input(decoded, None)  # what `tessera-scan pair` reads
    assert (request.base_url, request.code) == (settings.public_base_url, code)

    paired = await pair(client, code)
    assert paired.status_code == 200, paired.text
    assert paired.json()["event_id"] == event["id"]
    listing = await client.get(f"/console/events/{event['id']}/doors")
    assert "Porte nord" in listing.text and "Nord" in listing.text
    assert "Offline" in listing.text  # paired, no socket open
    assert len(listing.content) < 100_000


async def test_a_new_code_for_an_unpaired_device_replaces_the_old_one(client, admin, api):
    event = await create_event(api)
    device = await create_device(api, event["id"])
    del client.headers["Authorization"]
    path = f"/console/events/{event['id']}/doors/{device['id']}/pairing"
    renewed = await client.post(path, data={"csrf": admin})
    assert renewed.status_code == 303 and renewed.headers["location"] == path
    page = await client.get(path)
    code = CODE.search(page.text).group(1)
    assert (await pair(client, device["pairing_code"])).status_code == 401
    assert (await pair(client, code)).status_code == 200
    again = await client.post(path, data={"csrf": admin})
    assert again.status_code == 409  # paired: its token is its credential now


async def _create_in_console(client, event_id: str, csrf: str) -> str:
    """Create a device by the doors form; returns its pairing page's path."""
    form = {"csrf": csrf, "name": "Porte sud"}
    created = await client.post(f"/console/events/{event_id}/doors", data=form)
    assert created.status_code == 303, created.text
    path = created.headers["location"]
    assert PAIRING_PATH.match(path), path
    return path


async def _event(client, organiser_token: str) -> dict:
    client.headers["Authorization"] = f"Bearer {organiser_token}"
    try:
        return await create_event(client)
    finally:
        del client.headers["Authorization"]


async def _devices(api, organiser_token: str, event_id: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {organiser_token}"}
    listing = await api.get(f"/api/v1/events/{event_id}/devices", headers=headers)
    assert listing.status_code == 200, listing.text
    return listing.json()["items"]


async def test_reloading_the_pairing_page_shows_the_same_code_and_creates_nothing(
    client, admin, organiser_token
):
    event = await _event(client, organiser_token)
    path = await _create_in_console(client, event["id"], admin)
    first = await client.get(path)
    again = await client.get(path)
    assert first.status_code == again.status_code == 200
    assert again.headers["cache-control"] == "no-store"
    code = CODE.search(first.text).group(1)
    assert CODE.search(again.text).group(1) == code
    assert len(await _devices(client, organiser_token, event["id"])) == 1
    assert (await pair(client, code)).status_code == 200  # the code shown is the live one


async def test_the_pairing_code_is_shown_only_to_the_session_that_created_it(
    client, settings, admin, organiser_token
):
    event = await _event(client, organiser_token)
    path = await _create_in_console(client, event["id"], admin)
    code = CODE.search((await client.get(path)).text).group(1)
    carried = dict(client.cookies.items())
    await make_user(settings, email="bo@example.org", role="admin")
    await as_new_browser(client, settings, "bo@example.org")
    other = await client.get(path)
    assert other.status_code == 200 and other.headers["cache-control"] == "no-store"
    assert code not in other.text and not CODE.search(other.text)
    assert "New pairing code" in other.text  # what this organiser can do instead
    for name, value in carried.items():  # even with the creator's pairing cookie copied over
        if name != "tessera_console":
            client.cookies.set(name, value, domain="tickets.test", path=path)
    assert code not in (await client.get(path)).text
    assert (await pair(client, code)).status_code == 200  # viewing changed nothing


async def test_once_paired_the_pairing_page_shows_no_code(client, admin, organiser_token):
    event = await _event(client, organiser_token)
    path = await _create_in_console(client, event["id"], admin)
    code = CODE.search((await client.get(path)).text).group(1)
    assert (await pair(client, code)).status_code == 200
    page = await client.get(path)
    assert page.status_code == 200
    assert code not in page.text and not CODE.search(page.text)
    assert "is paired" in page.text and "New pairing code" not in page.text


def test_a_sealed_pairing_code_opens_only_for_its_session_device_and_ten_minutes():
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    sealed = pairing_view.seal("tss_one", "DEV1", "ABCD-EFGH-JKMN", now=now)
    assert "ABCD" not in sealed
    later = now + pairing_view.SHOWN_FOR - timedelta(seconds=1)
    assert pairing_view.unseal("tss_one", "DEV1", sealed, now=later) == "ABCD-EFGH-JKMN"
    assert pairing_view.unseal("tss_one", "DEV1", sealed, now=now + pairing_view.SHOWN_FOR) is None
    assert pairing_view.unseal("tss_two", "DEV1", sealed, now=now) is None
    assert pairing_view.unseal("tss_one", "DEV2", sealed, now=now) is None
    for garbage in ("", "x", sealed[:-2], sealed + "A", "é" * 40, "A" * 5000):
        assert pairing_view.unseal("tss_one", "DEV1", garbage, now=now) is None


async def test_revoke_a_device_refuses_its_token(client, admin, api):
    v = await venue(api)
    del client.headers["Authorization"]
    base = f"/console/events/{v.event_id}/doors/{v.door.device_id}/revoke"
    confirm = await client.get(base)
    assert confirm.status_code == 200 and 'action="' + base + '"' in confirm.text
    response = await client.post(base, data={"csrf": admin})
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/events/{v.event_id}/doors"
    refused = await redeem(client, v.door, v.tickets[0]["code"], v.list_id)
    assert refused.status_code == 401
    listing = await client.get(f"/console/events/{v.event_id}/doors")
    assert "Revoked" in listing.text


async def test_another_events_device_is_not_found_under_this_events_path(client, admin, api):
    mine = await create_event(api)
    theirs = await create_event(api, name="Another")
    device = await create_device(api, theirs["id"])
    del client.headers["Authorization"]
    for method, path in [
        ("get", f"/console/events/{mine['id']}/doors/{device['id']}/revoke"),
        ("post", f"/console/events/{mine['id']}/doors/{device['id']}/revoke"),
        ("post", f"/console/events/{mine['id']}/doors/{device['id']}/pairing"),
        ("get", "/console/events/NOPE/doors"),
        ("post", "/console/events/NOPE/doors"),
    ]:
        data = {"csrf": admin, "name": "x"} if method == "post" else None
        response = await client.request(method.upper(), path, data=data)
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
    assert (await pair(client, device["pairing_code"])).status_code == 200  # untouched


async def test_read_only_users_see_the_doors_but_cannot_change_them(client, settings, api):
    event = await create_event(api)
    device = await create_device(api, event["id"])
    del client.headers["Authorization"]
    await make_user(settings, email="ro@example.org", role="read_only")
    browser = await as_new_browser(client, settings, "ro@example.org")
    page = await client.get(f"/console/events/{event['id']}/doors")
    assert page.status_code == 200 and "Door 1" in page.text
    assert 'name="gate"' not in page.text and "/revoke" not in page.text
    base = f"/console/events/{event['id']}/doors"
    for path, data in [
        (base, {"name": "Sneaky"}),
        (f"{base}/{device['id']}/revoke", {}),
        (f"{base}/{device['id']}/pairing", {}),
    ]:
        response = await client.post(path, data={"csrf": browser.csrf, **data})
        assert response.status_code == 403, path
    assert (await client.get(f"{base}/{device['id']}/revoke")).status_code == 403
    assert (await pair(client, device["pairing_code"])).status_code == 200  # not revoked


async def test_forms_without_the_sessions_csrf_token_are_refused(client, admin, api):
    event = await create_event(api)
    device = await create_device(api, event["id"])
    del client.headers["Authorization"]
    base = f"/console/events/{event['id']}/doors"
    for path in (base, f"{base}/{device['id']}/revoke", f"{base}/{device['id']}/pairing"):
        for token in (None, "forged-" + admin[:10]):
            data = {"name": "x"} | ({"csrf": token} if token else {})
            response = await client.post(path, data=data)
            assert response.status_code == 403, (path, token)
    cross = await client.post(
        base, data={"csrf": admin, "name": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    assert (await pair(client, device["pairing_code"])).status_code == 200


GARBAGE = [
    ({"name": ""}, 422),
    ({"name": "x" * 201}, 422),
    ({"name": "ok", "gate": "g" * 101}, 422),
    ({"name": "a\x00b"}, 400),
    ({"name": "x" * 10_000_000}, 413),
    ({"name": str(10**150)}, 303),
]


async def test_garbage_in_the_device_form_gets_a_page_never_a_crash(client, admin, api):
    event = await create_event(api)
    del client.headers["Authorization"]
    for fields, status in GARBAGE:
        response = await client.post(
            f"/console/events/{event['id']}/doors", data={"csrf": admin, **fields}
        )
        assert response.status_code == status, (fields.get("name", "")[:20], response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        if status == 422:
            assert 'aria-invalid="true"' in response.text
            assert html.escape(fields["name"][:50]) in response.text  # what was typed comes back
