"""The event's brand colour (`branding.colour`): refused unless white text on it is readable
(WCAG AA, 4.5:1), and shown on the guest page and in the e-ticket mail when set."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from server.campaigns.transport import MaildirMailer
from server.config import Settings
from tests.conftest import problem_of
from tests.factories import create_booking, create_event, create_ticket_type, event_body
from tests.server.campaigns.test_dkim_and_auto_send import drain, mail_of, stored_mail

BRAND = "#7A1F5C"  # 9.9:1 with white


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, worker="external")  # drain() sends, in the test


@pytest.mark.parametrize(
    ("colour", "says"),
    [
        pytest.param("red", "#RRGGBB", id="a-name"),
        pytest.param("#fff", "#RRGGBB", id="three-digits"),
        pytest.param("#1d4ed8;}", "#RRGGBB", id="css-injection"),
        pytest.param("#1d4ed8\n", "#RRGGBB", id="trailing-newline"),
        pytest.param("#GGGGGG", "#RRGGBB", id="not-hex"),
        pytest.param(5, None, id="not-a-string"),
        pytest.param("#ffff00", "4.5:1", id="yellow-low-contrast"),
        pytest.param("#777777", "4.5:1", id="just-under-aa"),
    ],
)
async def test_a_bad_or_unreadable_colour_is_422_on_branding_colour(api, colour, says):
    response = await api.post(
        "/api/v1/events", json={**event_body(), "branding": {"colour": colour}}
    )
    assert response.status_code == 422, response.text
    [error] = problem_of(response)["errors"]
    assert error["field"] == "branding.colour"
    if says:
        assert says in error["message"]
    assert (await api.get("/api/v1/events")).json()["total"] == 0


async def test_the_colour_is_kept_patched_and_cleared_with_the_sender(api):
    sender = {"name": "Camille Martin", "email": "billets@festival.fr"}
    event = await create_event(api, branding={"colour": "#767676", "sender": sender})
    assert event["branding"] == {"sender": sender, "colour": "#767676"}  # 4.54:1: just AA
    patched = await api.patch(f"/api/v1/events/{event['id']}", json={"branding": {}})
    assert patched.json()["branding"] == {"sender": None, "colour": None}


async def test_the_guest_page_wears_the_colour_in_its_nonced_style(api, client):
    event = await create_event(api, branding={"colour": BRAND})
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    path = "/t/" + booking["tickets"][0]["link"].rsplit("/", 1)[1]
    response = await client.get(path)
    assert response.status_code == 200
    nonce = re.search(r'<script nonce="([^"]+)"', response.text).group(1)
    styles = re.findall(r'<style nonce="([^"]+)">(.*?)</style>', response.text, re.S)
    assert [n for n, _ in styles] == [nonce] * len(styles)
    css = "".join(body for _, body in styles)
    assert f".head{{background:{BRAND}}}" in css
    assert f".button{{background:{BRAND}}}" in css
    assert "style=" not in response.text  # no inline style: the CSP stays strict
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]


async def test_an_unbranded_guest_page_keeps_the_default_colours(api, client):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    path = "/t/" + booking["tickets"][0]["link"].rsplit("/", 1)[1]
    html = (await client.get(path)).text
    assert "background:#1d2a44;color:#fff" in html  # the default header
    assert ".head{background:" not in html


async def test_the_ticket_mail_buttons_and_header_wear_the_colour(api, settings):
    event = await create_event(api, branding={"colour": BRAND})
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    resent = await api.post(f"/api/v1/bookings/{booking['id']}/resend", json={})
    assert resent.status_code == 202, resent.text
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    [data] = stored_mail(settings)
    html = mail_of(data).get_body(("html",)).get_content()
    assert f'<td style="border-radius:6px;background:{BRAND};">' in html
    assert f"border-top:6px solid {BRAND}" in html
