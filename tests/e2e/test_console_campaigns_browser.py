"""A campaign written, previewed, recapped and sent from the console in Chromium, against a
real server whose embedded outbox writes to its maildir; axe-core checks each page."""

from __future__ import annotations

import asyncio
import email
import re
from email import policy
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from server.config import Settings
from tests.conftest import _create_token
from tests.e2e.test_console_browser import (  # noqa: F401 (fixtures)
    AXE,
    SCREENSHOTS,
    _check,
    _wait_for_link,
    browser,
    console,
)
from tests.factories import booking_body, event_body

pytestmark = pytest.mark.browser


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _set_up(base: str, token: str) -> str:
    """An event with two confirmed bookings, made through the API; its id."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        event = api.post("/api/v1/events", json=event_body()).json()
        ticket_type = api.post(
            f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Standard"}
        ).json()
        for n in range(2):
            buyer = {"name": f"Guest {n}", "email": f"guest{n}@example.org", "language": "en"}
            body = booking_body(ticket_type["id"], 1, buyer=buyer, confirm=True)
            answer = api.post(f"/api/v1/events/{event['id']}/bookings", json=body)
            assert answer.status_code == 201, answer.text
    return str(event["id"])


def _follow(page: Page, target: Locator) -> None:
    """Click `target` and wait for the page it leads to (a loaded machine is slow)."""
    with page.expect_navigation(timeout=20_000):
        target.click()


def _guest_mails(maildir: Path) -> list[email.message.EmailMessage]:
    root = maildir / "new"
    found = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(root.iterdir())
    ]
    return [m for m in found if "guest" in str(m["To"])]


@pytest.fixture
def event_id(console: Settings) -> str:  # noqa: F811
    """Set up before the browser starts: Playwright then holds this thread's event loop."""
    return _set_up(console.public_base_url, asyncio.run(_create_token(console)))


def test_write_preview_recap_and_send_a_campaign(console, event_id, browser):  # noqa: F811
    base = console.public_base_url
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    checked: list[str] = []
    page.goto(f"{base}/console/sign-in")
    page.get_by_label("Email address").first.fill("camille@example.org")
    _follow(page, page.get_by_role("button", name="Mail me a sign-in link"))
    page.goto(f"{base}/console/sign-in/link/{_wait_for_link(console)}")
    _follow(page, page.get_by_role("button", name="Sign in"))
    expect(page).to_have_url(f"{base}/console/events")

    page.goto(f"{base}/console/events/{event_id}/campaigns")
    _check(page, checked)
    _follow(page, page.get_by_role("link", name="New campaign"))
    page.get_by_label("Name").fill("Your e-tickets")
    english = page.locator("fieldset", has_text="Words in English")
    english.get_by_label("Subject").fill("Tickets for {{ event.name }}")
    english.get_by_label("Body").fill("Hello {{ guest.first_name }},\n\n{{ ticket_buttons }}")
    page.get_by_text("{{ guest.first_name }}").first.wait_for()  # the merge-field picker
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-campaigns-editor.png"), full_page=True)
    _follow(page, page.get_by_role("button", name="Save draft"))
    expect(page.get_by_text("Draft saved.")).to_be_visible()

    _follow(page, page.get_by_role("link", name="Preview"))
    page.get_by_label("Recipient").select_option(label="Guest 1 <guest1@example.org>")
    page.get_by_label("Mail's language").select_option("en")
    _follow(page, page.get_by_role("button", name="Show"))
    expect(page.get_by_text("Tickets for Jazz at the Pier")).to_be_visible()
    frame = page.frame_locator("iframe.cmp-mail")
    expect(frame.get_by_text("Hello Guest,")).to_be_visible()  # the HTML part, in its frame
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-campaigns-preview.png"), full_page=True)

    # Followed by its address: after axe-core ran over the page and its sandboxed frame,
    # Chromium let the click on this link go without navigating.
    page.goto(base + str(page.get_by_role("link", name="Recap and send").get_attribute("href")))
    expect(page.get_by_text("2 recipients right now.")).to_be_visible()
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-campaigns-recap.png"), full_page=True)
    _follow(page, page.get_by_role("button", name="Send now to 2 recipients"))
    expect(page).to_have_url(re.compile(r".*/campaigns/[0-9A-Z]+$"))
    # The page refreshes itself while sending; both rows turn to sent.
    expect(page.locator("td .cmp-ms-sent")).to_have_count(2, timeout=15_000)
    expect(page.get_by_text("Sending: this page refreshes")).to_have_count(0)
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-campaigns-progress.png"), full_page=True)
    context.close()

    mails = _guest_mails(console.maildir)
    assert sorted(str(m["Subject"]) for m in mails) == ["Tickets for Jazz at the Pier"] * 2
    assert "Hello Guest," in mails[0].get_body(("plain",)).get_content()
    assert AXE.exists(), f"axe-core not installed at {AXE}: run `make axe`"
    assert len(checked) == 5
