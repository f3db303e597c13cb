"""A link that is no longer the ticket's current link shows nothing of the ticket or its holder.

Whoever still holds an old link (the previous holder after a transfer, or whoever the link
leaked to) must learn neither the code that opens the door nor who holds the ticket now.
"""

from __future__ import annotations

from tests.conftest import problem_of
from tests.factories import confirmed_booking

FILES = ["qr.svg", "qr.png", "ticket.pdf", "event.ics"]
NEW_HOLDER, NEW_SEAT = "Zoltan Quimby-Farrow", "Balcony Q-77"


def _path(ticket: dict) -> str:
    return "/t/" + ticket["link"].rsplit("/", 1)[1]


async def _reissued_to_a_new_holder(api) -> tuple[dict, dict, dict]:
    """A booking, its ticket as first issued, and the ticket after reissue to a new holder."""
    booking = await confirmed_booking(api)
    old = booking["tickets"][0]
    reissued = await api.post(f"/api/v1/tickets/{old['id']}/reissue")
    assert reissued.status_code == 200, reissued.text
    patched = await api.patch(
        f"/api/v1/tickets/{old['id']}", json={"holder_name": NEW_HOLDER, "seat": NEW_SEAT}
    )
    assert patched.status_code == 200, patched.text
    return booking, old, patched.json()


def _assert_shows_nothing_of_the_ticket(html: str, old: dict, new: dict) -> None:
    for secret in (old["code"], new["code"], old["holder_name"], NEW_HOLDER, NEW_SEAT):
        assert secret not in html, secret
    assert "<svg" not in html


async def test_replaced_link_and_its_files_show_no_code_holder_or_seat(api, client):
    _, old, new = await _reissued_to_a_new_holder(api)
    assert old["holder_name"] and new["code"] != old["code"]

    page = await client.get(_path(old), headers={"Accept-Language": "en"})

    assert page.status_code == 200
    assert "Status: Replaced" in page.text
    assert "Jazz at the Pier" in page.text and "Le Quai, Nantes" in page.text
    _assert_shows_nothing_of_the_ticket(page.text, old, new)
    for name in FILES:
        response = await client.get(f"{_path(old)}/{name}")
        assert response.status_code == 410, name
        assert problem_of(response)["code"] == "ticket_gone"
        _assert_shows_nothing_of_the_ticket(response.text, old, new)
    current = await client.get(_path(new), headers={"Accept-Language": "en"})
    assert new["code"] in current.text and NEW_HOLDER in current.text and NEW_SEAT in current.text


async def test_old_link_of_a_reissued_then_cancelled_ticket_shows_nothing_of_it(api, client):
    booking, old, new = await _reissued_to_a_new_holder(api)
    cancelled = await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text

    page = await client.get(_path(old), headers={"Accept-Language": "en"})

    assert page.status_code == 200
    _assert_shows_nothing_of_the_ticket(page.text, old, new)
    current = await client.get(_path(new), headers={"Accept-Language": "en"})
    assert "Status: Cancelled" in current.text and new["code"] in current.text
