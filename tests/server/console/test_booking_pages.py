"""The console's bookings pages: the API's list and search, a booking added by hand, its
tickets, links, QR codes and mails, and every action on them through the API's services and
rules; another event's ids, read-only users, missing CSRF and garbage are answered with a page.

Page logic does not depend on the database: SQLite only (the services are tested on both)."""

from __future__ import annotations

import re

import pytest

from tests.server.checkin.helpers import redeem, venue
from tests.server.console.helpers import as_new_browser, make_user, sign_in

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
async def admin(api, settings):
    await make_user(settings)
    return await sign_in(api, settings)


async def _event(api, name="Nuit blanche", capacity=10):
    event = await api.post(
        "/api/v1/events",
        json={"name": name, "starts_at": "2031-06-14T20:00:00+02:00", "timezone": "Europe/Paris"},
    )
    assert event.status_code == 201, event.text
    event_id = event.json()["id"]
    kind = await api.post(
        f"/api/v1/events/{event_id}/ticket-types",
        json={"name": "Plein tarif", "capacity": capacity},
    )
    assert kind.status_code == 201, kind.text
    return event_id, kind.json()["id"]


async def _booking(
    api, event_id, type_id, *, name="Léa Dubois", email="lea@example.org", n=2, confirm=True
):
    body = {
        "buyer": {"name": name, "email": email},
        "items": [{"ticket_type_id": type_id, "quantity": n}],
        "confirm": confirm,
    }
    response = await api.post(f"/api/v1/events/{event_id}/bookings", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _page(event_id, booking_id=""):
    return f"/console/events/{event_id}/bookings" + (f"/{booking_id}" if booking_id else "")


async def test_search_by_name_email_reference_and_code_with_a_status_filter(api, admin):
    event_id, type_id = await _event(api)
    lea = await _booking(api, event_id, type_id)
    marc = await _booking(
        api, event_id, type_id, name="Marc Petit", email="marc@example.net", confirm=False
    )
    listing = await api.get(_page(event_id))
    assert listing.status_code == 200
    assert "Bookings found: 2" in listing.text and len(listing.content) < 100_000
    assert f'href="{_page(event_id, lea["id"])}"' in listing.text
    for q, found, missing in [
        ("dubois", lea, marc),
        ("MARC@example", marc, lea),
        (lea["reference"].lower(), lea, marc),
        (lea["tickets"][1]["code"].lower().replace("-", ""), lea, marc),
    ]:
        page = await api.get(_page(event_id), params={"q": q})
        assert found["reference"] in page.text and missing["reference"] not in page.text, q
    pending = await api.get(_page(event_id), params={"status": "pending", "q": ""})
    assert marc["reference"] in pending.text and lea["reference"] not in pending.text
    assert '<option value="pending" selected>' in pending.text


async def test_filter_by_ticket_type_and_by_checked_in_or_not(api, admin):
    v = await venue(api, 1, name="Parterre")
    balcony = await api.post(f"/api/v1/events/{v.event_id}/ticket-types", json={"name": "Balcon"})
    other = await _booking(api, v.event_id, balcony.json()["id"], name="Marc Petit", n=1)
    scanned = await redeem(api, v.door, v.tickets[0]["code"], v.list_id)
    assert scanned.json()["verdict"] == "accepted"
    listing = await api.get(_page(v.event_id))
    entered = re.search(r">(TSR-[0-9A-Z]+)<", listing.text.split(other["reference"])[0])
    assert entered, listing.text[:3000]
    form = listing.text.split('role="search"', 1)[1].split("</form>", 1)[0]
    assert 'name="ticket_type"' in form and 'name="checked_in"' in form
    assert f'value="{v.type_id}"' in form and "Balcon" in form
    for params, shown, hidden in [
        ({"checked_in": "yes"}, entered.group(1), other["reference"]),
        ({"checked_in": "no"}, other["reference"], entered.group(1)),
        ({"ticket_type": balcony.json()["id"]}, other["reference"], entered.group(1)),
        ({"ticket_type": v.type_id, "checked_in": "no"}, None, other["reference"]),
    ]:
        page = await api.get(_page(v.event_id), params={**params, "q": "", "status": ""})
        assert page.status_code == 200, params
        assert hidden not in page.text, params
        if shown:
            assert shown in page.text and "Bookings found: 1" in page.text, params
        else:
            assert "Bookings found: 0" in page.text
    kept = await api.get(_page(v.event_id), params={"checked_in": "no"})
    assert '<option value="no" selected>' in kept.text
    for params in ({"checked_in": "maybe"}, {"ticket_type": "NOT-OF-THIS-EVENT"}):
        refused = await api.get(_page(v.event_id), params=params)
        assert refused.status_code == 400, params
        assert refused.headers["content-type"].startswith("text/html")


async def test_paging_the_bookings(api, admin):
    event_id, type_id = await _event(api, capacity=100)
    for i in range(51):
        await _booking(api, event_id, type_id, name=f"Guest {i:02}", n=1, confirm=False)
    first = await api.get(_page(event_id))
    assert "Guest 00" in first.text and "Guest 50" not in first.text
    assert "offset=50" in first.text
    second = await api.get(_page(event_id), params={"offset": 50})
    assert "Guest 50" in second.text and "Guest 00" not in second.text


async def test_add_a_booking_by_hand(api, admin, settings):
    event_id, type_id = await _event(api)
    form = {
        "csrf": admin,
        "name": "Ana Lima",
        "email": "ana@example.org",
        "language": "de",
        "ticket_type_id": type_id,
        "quantity": "3",
        "confirm": "1",
    }
    response = await api.post(_page(event_id), data=form)
    assert response.status_code == 303, response.text
    booking_id = response.headers["location"].rsplit("/", 1)[1]
    booking = (await api.get(f"/api/v1/bookings/{booking_id}")).json()
    assert booking["status"] == "confirmed" and len(booking["tickets"]) == 3
    assert booking["buyer"] == {"name": "Ana Lima", "email": "ana@example.org", "language": "de"}
    page = await api.get(_page(event_id, booking_id))
    assert page.status_code == 200 and "Ana Lima" in page.text
    for ticket in booking["tickets"]:
        assert ticket["code"] in page.text
        assert f'href="{ticket["link"]}"' in page.text  # the link the mail carries
        src = ticket["link"].removeprefix("https://tickets.test") + "/qr.svg"
        assert f'src="{src}"' in page.text
        assert (await api.get(src)).headers["content-type"].startswith("image/svg+xml")


REFUSED_FORMS = [
    ({"name": "", "email": "nope", "quantity": "abc"}, ("name", "email", "quantity")),
    ({"quantity": str(10**30)}, ("quantity",)),
    ({"quantity": "0", "language": "xx"}, ("quantity", "language")),
    ({"ticket_type_id": "NOSUCHTYPE"}, ("ticket_type_id",)),
    ({"name": "n" * 60_000}, ("name",)),
    ({"name": "a\x07b", "email": "a@b"}, ("name", "email")),
]


async def test_a_refused_booking_form_comes_back_with_its_errors(api, admin):
    event_id, type_id = await _event(api)
    for overrides, fields in REFUSED_FORMS:
        form = {
            "csrf": admin,
            "name": "Ana Lima",
            "email": "ana@example.org",
            "language": "",
            "ticket_type_id": type_id,
            "quantity": "1",
        } | overrides
        response = await api.post(_page(event_id), data=form)
        assert response.status_code == 422, (overrides, response.text[:500])
        for field in fields:
            assert f'id="e-{field}"' in response.text, (overrides, field)
        assert 'aria-invalid="true"' in response.text
    nul = await api.post(_page(event_id), data={"csrf": admin, "name": "A\x00"})
    assert nul.status_code == 400
    assert (await api.get(f"/api/v1/events/{event_id}/bookings")).json()["total"] == 0


async def test_over_capacity_shows_the_services_reason(api, admin):
    event_id, type_id = await _event(api, capacity=2)
    form = {
        "csrf": admin,
        "name": "Ana Lima",
        "email": "ana@example.org",
        "language": "",
        "ticket_type_id": type_id,
        "quantity": "3",
        "confirm": "1",
    }
    response = await api.post(_page(event_id), data=form)
    assert response.status_code == 409
    assert "not enough places left" in response.text
    assert (await api.get(f"/api/v1/events/{event_id}/bookings")).json()["total"] == 0


async def test_confirm_and_cancel_a_booking(api, admin):
    event_id, type_id = await _event(api)
    booking = await _booking(api, event_id, type_id, confirm=False)
    path = _page(event_id, booking["id"])
    page = await api.get(path)
    assert "No tickets" in page.text and f'action="{path}/confirm"' in page.text
    response = await api.post(f"{path}/confirm", data={"csrf": admin})
    assert response.status_code == 303
    assert response.headers["location"] == f"{path}?done=confirm"
    assert (await api.get(response.headers["location"])).text.count("Valid") == 2
    # Cancelling needs its box ticked; without it nothing changes.
    refused = await api.post(f"{path}/cancel", data={"csrf": admin})
    assert refused.status_code == 422 and 'id="b-cancel-sure-e"' in refused.text
    assert (await api.get(f"/api/v1/bookings/{booking['id']}")).json()["status"] == "confirmed"
    response = await api.post(f"{path}/cancel", data={"csrf": admin, "sure": "1"})
    assert response.status_code == 303
    after = (await api.get(f"/api/v1/bookings/{booking['id']}")).json()
    assert after["status"] == "cancelled"
    assert {t["status"] for t in after["tickets"]} == {"revoked"}
    # A cancelled booking cannot be confirmed: the service's reason, as the API's 409.
    refused = await api.post(f"{path}/confirm", data={"csrf": admin})
    assert refused.status_code == 409 and "booking is cancelled" in refused.text
    again = await api.post(f"{path}/resend", data={"csrf": admin, "to": ""})
    assert again.status_code == 409 and "has no tickets to send" in again.text


async def test_edit_block_unblock_and_reissue_a_ticket(api, admin):
    event_id, type_id = await _event(api)
    booking = await _booking(api, event_id, type_id)
    ticket = booking["tickets"][0]
    path = f"{_page(event_id, booking['id'])}/tickets/{ticket['id']}"
    edit = {"csrf": admin, "holder_name": "Théo Dubois", "seat": "B12"}
    assert (await api.post(f"{path}/edit", data=edit)).status_code == 303
    after = (await api.get(f"/api/v1/tickets/{ticket['id']}")).json()
    assert (after["holder_name"], after["seat"], after["version"]) == ("Théo Dubois", "B12", 1)
    bad = await api.post(f"{path}/edit", data=edit | {"seat": "s" * 101})
    assert bad.status_code == 422 and f'id="t{ticket["id"]}-seat-e"' in bad.text
    assert (await api.get(f"/api/v1/tickets/{ticket['id']}")).json()["seat"] == "B12"

    assert (await api.post(f"{path}/block", data={"csrf": admin})).status_code == 303
    page = await api.get(_page(event_id, booking["id"]))
    assert "Blocked" in page.text and f"{path}/unblock" in page.text
    assert f"/t/{ticket['link'].rsplit('/', 1)[1]}/qr.svg" not in page.text  # no QR on hold
    assert (await api.post(f"{path}/unblock", data={"csrf": admin})).status_code == 303
    assert (await api.get(f"/api/v1/tickets/{ticket['id']}")).json()["blocked"] is False

    refused = await api.post(f"{path}/reissue", data={"csrf": admin})
    assert refused.status_code == 422
    assert (await api.get(f"/api/v1/tickets/{ticket['id']}")).json()["version"] == 1
    assert (await api.post(f"{path}/reissue", data={"csrf": admin, "sure": "1"})).status_code == 303
    reissued = (await api.get(f"/api/v1/tickets/{ticket['id']}")).json()
    assert reissued["version"] == 2 and reissued["code"] != ticket["code"]


async def test_resend_to_a_corrected_address_shows_in_the_mails(api, admin):
    event_id, type_id = await _event(api)
    booking = await _booking(api, event_id, type_id)
    ticket = booking["tickets"][1]
    base = _page(event_id, booking["id"])
    bad = await api.post(f"{base}/resend", data={"csrf": admin, "to": "not an address"})
    assert bad.status_code == 422 and 'id="b-to-e"' in bad.text
    assert "No mail yet" in bad.text
    sent = await api.post(f"{base}/resend", data={"csrf": admin, "to": "lea.d@example.com"})
    assert sent.status_code == 303
    one = await api.post(f"{base}/tickets/{ticket['id']}/resend", data={"csrf": admin, "to": ""})
    assert one.status_code == 303
    page = await api.get(f"{base}?done=resend")
    assert "The mail is on its way." in page.text
    mails = page.text.split('id="mails"', 1)[1]
    assert "lea.d@example.com" in mails and "lea@example.org" in mails
    messages = (await api.get(f"/api/v1/bookings/{booking['id']}/messages")).json()
    assert messages["total"] == 2


async def test_another_events_ids_are_not_found_under_this_event(api, admin):
    event_a, type_a = await _event(api)
    event_b, type_b = await _event(api, name="Autre")
    mine = await _booking(api, event_a, type_a)
    theirs = await _booking(api, event_b, type_b)
    assert (await api.get(_page(event_a, theirs["id"]))).status_code == 404
    for action in ("confirm", "cancel", "resend"):
        response = await api.post(
            f"{_page(event_a, theirs['id'])}/{action}", data={"csrf": admin, "sure": "1"}
        )
        assert response.status_code == 404, action
    other_ticket = theirs["tickets"][0]["id"]
    for action in ("edit", "block", "reissue", "resend"):
        response = await api.post(
            f"{_page(event_a, mine['id'])}/tickets/{other_ticket}/{action}",
            data={"csrf": admin, "sure": "1", "seat": "X"},
        )
        assert response.status_code == 404, action
        assert "text/html" in response.headers["content-type"]
    unknown = await api.post(f"{_page(event_a, mine['id'])}/delete", data={"csrf": admin})
    assert unknown.status_code == 404
    assert (await api.get(_page("NOSUCHEVENT"))).status_code == 404
    after = (await api.get(f"/api/v1/bookings/{theirs['id']}")).json()
    assert after["status"] == "confirmed" and after["tickets"][0] == theirs["tickets"][0]


async def test_read_only_users_see_everything_but_cannot_change(api, admin, settings):
    event_id, type_id = await _event(api)
    booking = await _booking(api, event_id, type_id)
    await make_user(settings, email="ro@example.org", name="Reader", role="read_only")
    reader = await as_new_browser(api, settings, "ro@example.org")
    listing = await api.get(_page(event_id))
    assert (
        booking["reference"] in listing.text
        and 'method="post" action="/console/events/' not in listing.text
    )
    page = await api.get(_page(event_id, booking["id"]))
    assert booking["tickets"][0]["code"] in page.text and "/qr.svg" in page.text
    assert "/block" not in page.text and "/cancel" not in page.text
    ticket = booking["tickets"][0]["id"]
    for path in (
        f"{_page(event_id, booking['id'])}/cancel",
        f"{_page(event_id, booking['id'])}/tickets/{ticket}/block",
        _page(event_id),
    ):
        response = await api.post(path, data={"csrf": reader.csrf, "sure": "1", "name": "X"})
        assert response.status_code == 403, path
    after = (await api.get(f"/api/v1/bookings/{booking['id']}")).json()
    assert after["status"] == "confirmed" and not after["tickets"][0]["blocked"]


async def test_a_missing_or_forged_csrf_token_is_refused(api, admin):
    event_id, type_id = await _event(api)
    booking = await _booking(api, event_id, type_id)
    path = f"{_page(event_id, booking['id'])}/cancel"
    assert (await api.post(path, data={"sure": "1"})).status_code == 403
    assert (await api.post(path, data={"sure": "1", "csrf": "forged"})).status_code == 403
    cross = await api.post(
        path, data={"sure": "1", "csrf": admin}, headers={"Origin": "https://evil.test"}
    )
    assert cross.status_code == 403
    assert (await api.get(f"/api/v1/bookings/{booking['id']}")).json()["status"] == "confirmed"


GARBAGE_QUERIES = [
    ({"q": "x" * 60_000}, 400),  # httpx sends at most 64 KiB of query; 10 MB: checked by hand
    ({"q": "a\x00b"}, 200),
    ({"offset": str(10**30)}, 400),
    ({"offset": "-1"}, 400),
    ({"offset": "abc"}, 400),
    ({"status": "bogus"}, 400),
    ({"q": "%_\\"}, 200),
]


async def test_garbage_queries_get_a_page(api, admin):
    event_id, type_id = await _event(api)
    await _booking(api, event_id, type_id)
    for params, status in GARBAGE_QUERIES:
        response = await api.get(_page(event_id), params=params)
        assert response.status_code == status, params
        assert response.headers["content-type"].startswith("text/html")
        if status == 200:
            assert "Bookings found: 0" in response.text
    detail = await api.get(_page(event_id, "NOSUCHBOOKING"), params={"done": "x" * 100})
    assert detail.status_code in (400, 404)


async def test_garbage_in_action_forms_gets_a_page_and_changes_nothing(api, admin):
    event_id, type_id = await _event(api)
    booking = await _booking(api, event_id, type_id)
    ticket = booking["tickets"][0]
    path = f"{_page(event_id, booking['id'])}/tickets/{ticket['id']}"
    nul = await api.post(f"{path}/edit", data={"csrf": admin, "seat": "A\x00"})
    assert nul.status_code == 400
    huge = await api.post(f"{path}/edit", data={"csrf": admin, "seat": "s" * 10_000_000})
    assert huge.status_code == 413
    control = await api.post(f"{path}/edit", data={"csrf": admin, "holder_name": "a\x07b"})
    assert control.status_code == 422
    to = await api.post(f"{path}/resend", data={"csrf": admin, "to": "x" * 400})
    assert to.status_code == 422
    sure = await api.post(f"{path}/reissue", data={"csrf": admin, "sure": "yes"})
    assert sure.status_code == 422
    after = (await api.get(f"/api/v1/tickets/{ticket['id']}")).json()
    assert after == ticket
    assert (await api.get(f"/api/v1/bookings/{booking['id']}/messages")).json()["total"] == 0


async def test_the_pages_follow_the_users_language(api, admin):
    event_id, type_id = await _event(api)
    booking = await _booking(api, event_id, type_id)
    for lang, word in (("fr", "Réservations"), ("de", "Buchungen")):
        listing = await api.get(_page(event_id), params={"lang": lang})
        assert word in listing.text and f'lang="{lang}"' in listing.text
        page = await api.get(_page(event_id, booking["id"]), params={"lang": lang})
        assert page.status_code == 200
    assert re.search(r'<label for="f-q">', listing.text)


async def test_a_large_booking_pages_its_tickets_and_shows_one_tickets_forms(api, admin):
    event_id, type_id = await _event(api, capacity=500)
    booking = await _booking(api, event_id, type_id, n=120)
    path = _page(event_id, booking["id"])
    page = await api.get(path)
    assert len(page.content) < 100_000
    assert "Tickets 1 to 50 of 120" in page.text and "?tickets=50#tickets" in page.text
    assert page.text.count("/qr.svg") == 50 and "<details" not in page.text
    last = booking["tickets"][-1]
    third = await api.get(path, params={"tickets": 100, "ticket": last["id"]})
    assert "Tickets 101 to 120 of 120" in third.text and last["code"] in third.text
    assert third.text.count("<details") == 1 and f"/tickets/{last['id']}/edit" in third.text
    edit = {"csrf": admin, "holder_name": "", "seat": "Z9"}
    done = await api.post(f"{path}/tickets/{last['id']}/edit", data=edit)
    assert done.headers["location"] == f"{path}?done=edit&ticket={last['id']}#t-{last['id']}"
    after = (await api.get(f"/api/v1/tickets/{last['id']}")).json()
    assert (after["holder_name"], after["seat"]) == (None, "Z9")


async def test_a_scanned_ticket_shows_as_checked_in(api, admin):
    place = await venue(api, 2)
    scanned = await redeem(api, place.door, place.tickets[0]["code"], place.list_id)
    assert scanned.json()["verdict"] == "accepted"
    listed = (await api.get(f"/api/v1/events/{place.event_id}/bookings")).json()
    page = await api.get(_page(place.event_id, listed["items"][0]["id"]))
    rows = {t["id"]: page.text.split(f'id="t-{t["id"]}"', 1)[1][:1500] for t in place.tickets}
    assert "Checked in" in rows[place.tickets[0]["id"]]
    assert "Checked in" not in rows[place.tickets[1]["id"]].split("</tr>", 1)[0]
