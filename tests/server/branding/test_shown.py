"""The event's logo and banner where guests see them: on the ticket page (same origin, under its
CSP), in the e-ticket mail (absolute URLs from the public base URL), and named in the event's
API answer; `HEAD` of an image answers as `GET` without the bytes."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from server.campaigns.transport import MaildirMailer
from server.config import Settings
from tests.factories import create_booking, create_event, create_ticket_type
from tests.server.branding.test_images import picture, put
from tests.server.campaigns.test_dkim_and_auto_send import drain, mail_of, stored_mail

NAME = 'Jazz "at" <the> Pier'  # escaped into every alt attribute


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, worker="external")  # drain() sends, in the test


async def branded(api) -> tuple[dict, dict, dict]:
    """An event with a logo and a banner and one confirmed booking; the two upload answers."""
    event = await create_event(api, name=NAME)
    logo = (await put(api, event["id"], "logo", picture("PNG", (200, 80)))).json()
    banner = (await put(api, event["id"], "banner", picture("JPEG", (1200, 400)))).json()
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    return booking, logo, banner


def guest_path(booking: dict) -> str:
    return "/t/" + booking["tickets"][0]["link"].rsplit("/", 1)[1]


async def test_the_event_answer_names_its_images_read_only(api):
    event = await create_event(api)
    assert set(event["branding"]) == {"sender", "colour"}  # no image: the answer as before
    logo = (await put(api, event["id"], "logo", picture())).json()
    read = (await api.get(f"/api/v1/events/{event['id']}")).json()
    assert read["branding"] == {"sender": None, "colour": None, "logo": logo["url"]}
    [listed] = (await api.get("/api/v1/events")).json()["items"]
    assert listed["branding"]["logo"] == logo["url"]
    patched = await api.patch(f"/api/v1/events/{event['id']}", json={"branding": {}})
    assert patched.json()["branding"]["logo"] == logo["url"]  # images are not in the PATCH
    refused = await api.patch(
        f"/api/v1/events/{event['id']}", json={"branding": {"logo": "/brand/x/logo-1.png"}}
    )
    assert refused.status_code == 422
    await api.delete(f"/api/v1/events/{event['id']}/branding/logo")
    read = (await api.get(f"/api/v1/events/{event['id']}")).json()
    assert set(read["branding"]) == {"sender", "colour"}


async def test_the_guest_page_shows_logo_and_banner_from_its_own_origin(api, client):
    booking, logo, banner = await branded(api)
    response = await client.get(guest_path(booking))
    assert response.status_code == 200
    alt = "Jazz &#34;at&#34; &lt;the&gt; Pier"
    assert f'<img class="logo" src="{logo["url"]}" alt="{alt}">' in response.text
    assert f'<img class="banner" src="{banner["url"]}" alt="{alt}">' in response.text
    csp = response.headers["content-security-policy"]
    assert "img-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "style=" not in response.text
    for url in (logo["url"], banner["url"]):
        assert (await client.get(url)).status_code == 200


async def test_an_unbranded_guest_page_has_no_image(api, client):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    assert "<img" not in (await client.get(guest_path(booking))).text


async def test_the_ticket_mail_shows_them_by_absolute_url_with_alt_text(api, settings):
    booking, logo, banner = await branded(api)
    resent = await api.post(f"/api/v1/bookings/{booking['id']}/resend", json={})
    assert resent.status_code == 202, resent.text
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    [data] = stored_mail(settings)
    html = mail_of(data).get_body(("html",)).get_content()
    base = settings.public_base_url
    images = dict(re.findall(r'<img src="([^"]+)"[^>]* alt="([^"]*)"', html))
    alt = "Jazz &#34;at&#34; &lt;the&gt; Pier"
    assert images[base + logo["url"]] == alt
    assert images[base + banner["url"]] == alt
    assert re.search(r'<img src="[^"]+banner[^"]+" width="600"[^>]*width:100%;', html)
    assert re.search(r'<img src="[^"]+logo[^"]+" height="64"', html)
    assert html.index("banner-") < html.index("logo-") < html.index("<p ")


async def test_head_of_an_image_answers_like_get_without_a_body(api, client):
    event = await create_event(api)
    url = (await put(api, event["id"], "logo", picture())).json()["url"]
    got, head = await client.get(url), await client.head(url)
    assert head.status_code == 200, head.headers
    assert head.content == b""
    for header in ("content-type", "cache-control", "x-content-type-options"):
        assert head.headers[header] == got.headers[header]
    assert (await client.head(f"/brand/{event['id']}/logo-0.png")).status_code == 404
