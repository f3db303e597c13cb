"""The event's logo in a real Chromium: uploaded from the console's edit page (a plain multipart
form), previewed there, shown on the guest's ticket page (and offline, from its service worker's
copy), then removed; axe-core finds no WCAG
2.1 AA violation on the edit page or the guest page with the image."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from server.auth.service import create_token
from server.config import Settings
from server.db import Database
from tests.e2e.test_console_browser import (  # noqa: F401 (fixtures)
    AXE,
    SCREENSHOTS,
    _check,
    browser,
    console,
)
from tests.factories import booking_body, event_body
from tests.server.branding.test_images import picture
from tests.server.console.helpers import make_user

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery staple"


async def _token(settings: Settings) -> str:
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            _, secret = await create_token(session, "branding-browser-test")
    finally:
        await database.dispose()
    return secret


def _guest_link(base: str, token: str) -> tuple[str, str]:
    """An event with one confirmed booking: the event id and the ticket's page URL."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        event = api.post("/api/v1/events", json=event_body(name="Nuit du jazz")).json()
        kind = api.post(
            f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Standard"}
        ).json()
        body = booking_body(kind["id"]) | {"confirm": True}
        booking = api.post(f"/api/v1/events/{event['id']}/bookings", json=body).json()
    return event["id"], booking["tickets"][0]["link"]


@pytest.fixture
def prepared(console: Settings) -> tuple[str, str]:  # noqa: F811
    """Before `browser` (Playwright's sync API then holds this thread's event loop)."""
    asyncio.run(make_user(console, email="ada@example.org", password=PASSWORD))
    return _guest_link(console.public_base_url, asyncio.run(_token(console)))


def test_upload_a_logo_see_it_on_the_guest_page_and_remove_it(
    console,  # noqa: F811
    prepared,
    browser,  # noqa: F811
    tmp_path,
):
    base = console.public_base_url
    event_id, guest = prepared
    logo = Path(tmp_path / "logo.png")
    logo.write_bytes(picture("PNG", (240, 96)))
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    checked: list[str] = []

    page.goto(f"{base}/console/sign-in")
    page.locator("#pw-email").fill("ada@example.org")
    page.locator("#pw-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/console/events")

    page.goto(f"{base}/console/events/{event_id}/edit")
    logo_form = page.locator("form", has=page.locator("#f-logo"))
    logo_form.locator("#f-logo").set_input_files(str(logo))
    logo_form.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(f"{base}/console/events/{event_id}/edit")
    preview = page.locator("img.brand-logo")
    expect(preview).to_be_visible()
    assert page.evaluate("document.querySelector('img.brand-logo').naturalWidth") == 240
    _check(page, checked)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-event-edit.png"), full_page=True)

    wrong = Path(tmp_path / "notes.txt")
    wrong.write_text("not an image")
    banner_form = page.locator("form", has=page.locator("#f-banner"))
    banner_form.locator("#f-banner").set_input_files(str(wrong))
    banner_form.get_by_role("button", name="Upload").click()
    expect(page.locator("#e-banner")).to_contain_text("PNG, JPEG or WebP")
    _check(page, checked)

    guest_page = context.new_page()
    guest_page.goto(guest)
    image = guest_page.locator("img.logo")
    expect(image).to_have_attribute("alt", "Nuit du jazz")
    assert guest_page.evaluate("document.querySelector('img.logo').naturalWidth") == 240
    _check(guest_page, checked)

    # The service worker keeps the logo (not only the browser's HTTP cache, which may evict
    # it), and offline the page opens again with it.
    guest_page.wait_for_function("navigator.serviceWorker.controller !== null")
    kept = guest_page.evaluate(
        """async () => {
            const path = new URL(document.querySelector('img.logo').src).pathname;
            for (const name of await caches.keys()) {
                if (await (await caches.open(name)).match(path)) return true;
            }
            return false;
        }"""
    )
    assert kept, "the service worker did not keep the logo"
    context.set_offline(True)
    guest_page.reload()
    expect(guest_page.locator("img.logo")).to_be_visible()
    assert guest_page.evaluate("document.querySelector('img.logo').naturalWidth") == 240
    context.set_offline(False)

    page.goto(f"{base}/console/events/{event_id}/edit")
    page.get_by_role("button", name="Remove").click()
    expect(page.locator("img.brand-logo")).to_have_count(0)
    guest_page.goto(guest)
    expect(guest_page.locator("img.logo")).to_have_count(0)
    context.close()
    assert AXE.exists(), f"axe-core not installed at {AXE}: run `make axe`"
    assert len(checked) == 3
