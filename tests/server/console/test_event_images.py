"""The logo and banner on the console's event edit page: uploaded by a multipart form (no
JavaScript), through the API's own checks and service, previewed, removed by a POST form; a
refused image comes back next to its field in the page's language, never a 5xx."""

from __future__ import annotations

import re

import pytest

from tests.factories import create_booking, create_event, create_ticket_type
from tests.server.branding.test_images import picture, png_claiming
from tests.server.console.helpers import as_new_browser, csrf_of, make_user, sign_in


@pytest.fixture
async def admin(client, settings):
    await make_user(settings)
    return await sign_in(client, settings)


class Api:
    def __init__(self, client, token):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    async def post(self, url, **kw):
        return await self.client.post(url, headers=self.headers, **kw)

    async def get(self, url, **kw):
        return await self.client.get(url, headers=self.headers, **kw)


@pytest.fixture
async def event(client, organiser_token, admin):
    return await create_event(Api(client, organiser_token), name="Nuit du jazz")


async def upload(client, csrf, event_id, kind, data, name="logo.png", ctype="image/png"):
    return await client.post(
        f"/console/events/{event_id}/branding/{kind}",
        data={"csrf": csrf},
        files={"file": (name, data, ctype)},
    )


async def test_upload_preview_guest_page_and_remove(client, admin, event, organiser_token):
    api = Api(client, organiser_token)
    edit = f"/console/events/{event['id']}/edit"
    page = await client.get(edit)
    assert 'enctype="multipart/form-data"' in page.text and "/branding/logo/remove" not in page.text
    sent = await upload(client, admin, event["id"], "logo", picture("PNG", (200, 80)))
    assert sent.status_code == 303 and sent.headers["location"] == edit
    url = (await api.get(f"/api/v1/events/{event['id']}")).json()["branding"]["logo"]
    page = await client.get(edit)
    assert f'src="{url}"' in page.text and "/branding/logo/remove" in page.text
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    guest = "/t/" + booking["tickets"][0]["link"].rsplit("/", 1)[1]
    assert f'src="{url}"' in (await client.get(guest)).text
    removed = await client.post(
        f"/console/events/{event['id']}/branding/logo/remove", data={"csrf": admin}
    )
    assert removed.status_code == 303
    assert "logo" not in (await api.get(f"/api/v1/events/{event['id']}")).json()["branding"]
    assert "<img" not in (await client.get(guest)).text
    again = await client.post(
        f"/console/events/{event['id']}/branding/logo/remove", data={"csrf": admin}
    )
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(b"GIF89a not really", "PNG, JPEG or WebP", id="wrong-type"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "PNG, JPEG or WebP", id="svg"),
        pytest.param(b"\x89PNG" + b"\0" * 1_100_000, "over the 1000000 allowed", id="too-big"),
        pytest.param(png_claiming(5000, 100), "5000x100 pixels", id="too-many-pixels"),
        pytest.param(picture()[:60], "damaged or truncated", id="truncated"),
        pytest.param(b"", "is empty", id="empty"),
    ],
)
async def test_a_refused_image_comes_back_next_to_its_field(client, admin, event, data, says):
    response = await upload(client, admin, event["id"], "banner", data)
    assert response.status_code == 422, response.text
    error = re.search(r'<p class="error" id="e-banner">([^<]*)</p>', response.text)
    assert error and says in error.group(1)
    assert (
        'id="f-banner" name="file" accept="image/png,image/jpeg,image/webp" aria-invalid="true"'
        in (response.text)
    )


async def test_the_error_is_in_the_pages_language(client, admin, event):
    await client.post("/console/language", data={"csrf": admin, "language": "fr"})
    csrf = csrf_of((await client.get("/console/events")).text)
    response = await upload(client, csrf, event["id"], "logo", png_claiming(5000, 5000))
    assert response.status_code == 422
    assert "fait 5000x5000 pixels, plus que 4000x4000" in response.text


async def test_csrf_role_kind_and_size_are_checked(client, settings, admin, event):
    forged = await upload(client, "not-the-token", event["id"], "logo", picture())
    assert forged.status_code == 403
    unknown = await upload(client, admin, event["id"], "favicon", picture())
    assert unknown.status_code == 404
    nowhere = await upload(client, admin, "NOSUCHEVNT", "logo", picture())
    assert nowhere.status_code == 404
    huge = await upload(client, admin, event["id"], "logo", b"\0" * (21 * 1024 * 1024))
    assert huge.status_code == 413
    await make_user(settings, email="reader@example.org", role="read_only")
    reader = await as_new_browser(client, settings, "reader@example.org")
    refused = await upload(client, reader.csrf, event["id"], "logo", picture())
    assert refused.status_code == 403
