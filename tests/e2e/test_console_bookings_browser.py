"""The bookings pages in a real Chromium against a real server: find a guest, open the booking,
change a seat, block and unblock a ticket, mail the tickets to a corrected address and watch
the mail arrive in the delivery table (the embedded outbox delivers into the maildir);
axe-core finds no WCAG 2.1 AA violation on the way."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_console_browser import (
    AXE,
    SCREENSHOTS,
    _check,
    _wait_for_link,
    browser,  # noqa: F401  (fixture)
    console,  # noqa: F401  (fixture)
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
]


def _set_up(base: str, token: str) -> dict:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        event = api.post(
            "/api/v1/events",
            json={
                "name": "Jazz à la Villette",
                "starts_at": "2031-09-05T20:30:00+02:00",
                "timezone": "Europe/Paris",
                "languages": ["fr", "en"],
            },
        ).json()
        kind = api.post(
            f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Plein tarif"}
        ).json()
        for name, email in [("Marc Petit", "marc@example.net"), ("Léa Dubois", "lea@exmaple.org")]:
            booking = api.post(
                f"/api/v1/events/{event['id']}/bookings",
                json={
                    "buyer": {"name": name, "email": email, "language": "fr"},
                    "items": [{"ticket_type_id": kind["id"], "quantity": 2}],
                    "confirm": True,
                },
            ).json()
    return {"event": event, "booking": booking}


def _sign_in(page: Page, console_settings) -> None:
    base = console_settings.public_base_url
    page.goto(f"{base}/console/sign-in")
    page.get_by_label("Email address").first.fill("camille@example.org")
    page.get_by_role("button", name="Mail me a sign-in link").click()
    page.goto(f"{base}/console/sign-in/link/{_wait_for_link(console_settings)}")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/console/events")


def test_find_a_guest_fix_a_ticket_and_resend_to_a_corrected_address(
    organiser_token,  # first: an async fixture cannot run once Playwright holds a loop
    console,  # noqa: F811
    browser,  # noqa: F811
):
    base = console.public_base_url
    made = _set_up(base, organiser_token)
    event, booking = made["event"], made["booking"]
    ticket = booking["tickets"][0]
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    checked: list[str] = []
    _sign_in(page, console)

    page.goto(f"{base}/console/events/{event['id']}")
    page.get_by_role("link", name="Bookings").click()
    expect(page).to_have_url(f"{base}/console/events/{event['id']}/bookings")
    assert "Bookings found: 2" in page.content()
    page.get_by_label("Search").fill("dubois")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("Bookings found: 1")).to_be_visible()
    _check(page, checked)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-bookings-list.png"), full_page=True)

    page.get_by_role("link", name=booking["reference"]).click()
    expect(page.get_by_role("heading", name=f"Booking {booking['reference']}")).to_be_visible()
    assert page.locator("img.bk-qr").count() == 2
    page.wait_for_load_state("load")  # the heading shows before the QR images have loaded
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    actions = page.locator("details", has_text=f"Change ticket {ticket['code']}")
    actions.locator("summary").click()
    actions.get_by_label("Seat").fill("Balcon B12")
    actions.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The ticket is saved.")).to_be_visible()
    row = page.locator(f"#t-{ticket['id']}")
    expect(row.get_by_role("cell", name="Balcon B12")).to_be_visible()

    actions.locator("summary").click()
    actions.get_by_role("button", name=f"Block {ticket['code']}").click()
    expect(row.get_by_text("Blocked")).to_be_visible()
    assert page.locator("img.bk-qr").count() == 1  # no QR while on hold
    actions.locator("summary").click()
    actions.get_by_role("button", name=f"Unblock {ticket['code']}").click()
    expect(row.get_by_text("Valid")).to_be_visible()

    resend = page.locator("form", has=page.get_by_role("heading", name="Mail the e-tickets again"))
    resend.get_by_label("To a corrected address (optional)").fill("lea@example.org")
    resend.get_by_role("button", name="Send again").click()
    expect(page.get_by_text("The mail is on its way.")).to_be_visible()
    mails = page.locator("table.bk-mails")
    expect(mails.get_by_role("cell", name="lea@example.org")).to_be_visible()
    for _ in range(50):  # the embedded outbox sends within moments
        if mails.locator(".bk-mail-sent").count():
            break
        time.sleep(0.1)
        page.reload()
    expect(mails.locator(".bk-mail-sent")).to_have_text("Sent")
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-booking-detail.png"), full_page=True)
    context.close()

    mailed = list((console.maildir / "new").iterdir())
    assert any(b"lea@example.org" in path.read_bytes() for path in mailed)
    assert AXE.exists(), f"axe-core not installed at {AXE}: run `make axe`"
    assert len(checked) == 2
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", ticket["code"])
