"""The guest's e-ticket page `/t/{link}` and its files: states, languages, headers, limits."""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from PIL import Image

from tests.conftest import problem_of
from tests.factories import confirmed_booking
from tests.server.checkin.helpers import redeem, venue
from tests.server.tickets.helpers import changes_of

FILES = ["qr.svg", "qr.png", "ticket.pdf", "event.ics"]


def _path(ticket: dict) -> str:
    return "/t/" + ticket["link"].rsplit("/", 1)[1]


async def _ticket(api, **kwargs) -> tuple[dict, dict]:
    booking = await confirmed_booking(api, **kwargs)
    return booking, booking["tickets"][0]


async def test_valid_ticket_page_shows_qr_code_and_event_details(api, client):
    _, ticket = await _ticket(api, persons=2)
    await api.patch(f"/api/v1/tickets/{ticket['id']}", json={"seat": "R4-12"})

    response = await client.get(_path(ticket), headers={"Accept-Language": "en"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert re.search(r'<svg role="img" aria-label="QR code of your ticket, code [^"]+"', html)
    assert ticket["code"] in html
    for text in (
        "Jazz at the Pier",
        "Sunday 14 March 2027, 20:00 \N{EN DASH} 23:30",
        "Le Quai, Nantes",
    ):
        assert text in html
    for text in ("Camille Martin", "Standard", "R4-12", "<dd>2</dd>", "Status: Valid"):
        assert text in html
    assert f"{_path(ticket)}/event.ics" in html and f"{_path(ticket)}/ticket.pdf" in html
    assert "<h1>" in html and "<h2" in html


async def test_page_qr_svg_is_the_ticket_token(api, client):
    _, ticket = await _ticket(api)
    svg = (await client.get(f"{_path(ticket)}/qr.svg")).content
    png = await client.get(f"{_path(ticket)}/qr.png")
    assert svg.startswith(b"<svg")
    assert png.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert [d.text for d in decoded] == [ticket["token"]]


async def test_page_is_small_self_contained_and_locked_down(api, client):
    _, ticket = await _ticket(api)
    response = await client.get(_path(ticket))
    html = response.text
    assert len(response.content) < 50_000
    assert not re.search(r"(https?:)?//[^\s\"'<>]", html.replace("http://www.w3.org/2000/svg", ""))
    headers = response.headers
    nonce = re.search(r'<script nonce="([^"]+)"', html).group(1)
    assert f"script-src 'nonce-{nonce}'" in headers["content-security-policy"]
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-robots-tag"].startswith("noindex")
    assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("", "fr-CH, fr;q=0.9", ["Votre billet", "Statut : Valable", "dimanche 14 mars 2027"]),
        ("", "de", ["Ihr Ticket", "Status: Gültig", "Sonntag, 14. März 2027, 20:00"]),
        ("?lang=de", "fr", ["Ihr Ticket", "Zum Kalender hinzufügen"]),
        ("?lang=xx", "es, en;q=0.5", ["Your ticket", "Add to calendar"]),
    ],
)
async def test_page_speaks_the_guests_language(api, client, query, accept, expected):
    _, ticket = await _ticket(api)
    response = await client.get(_path(ticket) + query, headers={"Accept-Language": accept})
    html = response.text.replace("Statut: ", "Statut : ")
    lang = re.search(r'<html lang="(\w+)">', html).group(1)
    assert lang == {"Votre billet": "fr", "Ihr Ticket": "de"}.get(expected[0], "en")
    for text in expected:
        assert text in html


async def test_replaced_link_says_so_without_qr_and_its_files_are_gone(api, client):
    _, ticket = await _ticket(api)
    new = (await api.post(f"/api/v1/tickets/{ticket['id']}/reissue")).json()

    old_page = await client.get(_path(ticket), headers={"Accept-Language": "en"})

    assert old_page.status_code == 200
    assert "<svg" not in old_page.text
    assert "Status: Replaced" in old_page.text
    assert "Use the newest link you received" in old_page.text
    for name in FILES:
        response = await client.get(f"{_path(ticket)}/{name}")
        assert response.status_code == 410, name
        assert problem_of(response)["code"] == "ticket_gone"
    new_page = await client.get(_path(new))
    assert "<svg" in new_page.text and "Status: Valid" in new_page.text


async def test_blocked_ticket_page_asks_to_contact_the_organiser_without_qr(api, client):
    _, ticket = await _ticket(api)
    await api.post(f"/api/v1/tickets/{ticket['id']}/block")

    page = await client.get(_path(ticket), headers={"Accept-Language": "en"})

    assert "<svg" not in page.text
    assert "Status: On hold" in page.text and "contact the organiser" in page.text
    for name in FILES:
        response = await client.get(f"{_path(ticket)}/{name}")
        assert response.status_code == 423
        assert problem_of(response)["code"] == "ticket_blocked"
    await api.post(f"/api/v1/tickets/{ticket['id']}/unblock")
    assert (await client.get(f"{_path(ticket)}/qr.svg")).status_code == 200


async def test_cancelled_ticket_page_says_cancelled_without_qr(api, client):
    booking, ticket = await _ticket(api)
    await api.post(f"/api/v1/bookings/{booking['id']}/cancel")

    page = await client.get(_path(ticket), headers={"Accept-Language": "en"})

    assert page.status_code == 200
    assert "<svg" not in page.text
    assert "Status: Cancelled" in page.text and "no longer valid" in page.text
    assert ticket["code"] in page.text
    for name in FILES:
        assert (await client.get(f"{_path(ticket)}/{name}")).status_code == 410


async def test_pdf_and_ics_download_with_their_types_and_names(api, client):
    _, ticket = await _ticket(api)
    pdf = await client.get(f"{_path(ticket)}/ticket.pdf?lang=fr")
    ics = await client.get(f"{_path(ticket)}/event.ics")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-disposition"] == (
        f'attachment; filename="ticket-{ticket["code"]}.pdf"'
    )
    assert ics.headers["content-type"] == "text/calendar; charset=utf-8"
    assert ics.content.startswith(b"BEGIN:VCALENDAR")
    assert b"TZID=Europe/Paris:20270314T200000" in ics.content
    assert "attachment" in ics.headers["content-disposition"]


@pytest.mark.parametrize(
    "link",
    ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "short", "x" * 300, "%3Cscript%3E", "a&b=c"],
)
async def test_unknown_link_is_a_plain_html_404(client, link):
    response = await client.get(f"/t/{link}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Ticket not found" in response.text
    assert "<script" not in response.text.lower().replace("<script nonce", "")


async def test_service_worker_is_scoped_to_the_ticket_page(api, client):
    _, ticket = await _ticket(api)
    response = await client.get(f"{_path(ticket)}/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["service-worker-allowed"] == _path(ticket)
    assert f'const PAGE = "{_path(ticket)}";' in response.text
    page = (await client.get(_path(ticket))).text
    assert f'register("{_path(ticket)}/sw.js", {{scope: "{_path(ticket)}"}})' in page
    assert "wakeLock" in page


async def test_guest_get_changes_nothing(api, client, settings):
    booking, ticket = await _ticket(api)
    before = await changes_of(settings, booking["event_id"])
    for name in ["", *(f"/{f}" for f in FILES), "/sw.js"]:
        assert (await client.get(_path(ticket) + name)).status_code == 200
    assert (await api.get(f"/api/v1/tickets/{ticket['id']}")).json() == ticket
    assert await changes_of(settings, booking["event_id"]) == before


async def test_guessing_links_is_rate_limited_per_client_and_valid_links_cost_nothing(api, client):
    _, ticket = await _ticket(api)
    for _ in range(50):
        assert (await client.get(_path(ticket))).status_code == 200
    answers = [(await client.get(f"/t/guess{n:027d}")).status_code for n in range(21)]
    assert answers == [404] * 20 + [429]
    limited = await client.get(_path(ticket))
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert (await client.get(f"{_path(ticket)}/qr.png")).status_code == 429


async def test_a_ticket_scanned_in_says_already_used_and_still_shows_its_qr(api, client):
    place = await venue(api)
    ticket = place.tickets[0]
    assert "Status: Valid" in (await client.get(_path(ticket), params={"lang": "en"})).text
    scanned = await redeem(api, place.door, ticket["code"], place.list_id)
    assert scanned.json()["verdict"] == "accepted"
    html = (await client.get(_path(ticket), params={"lang": "en"})).text
    assert "Status: Already used" in html
    assert "<svg" in html
