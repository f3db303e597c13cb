"""Imports and contact lists in a real Chromium against a real server: paste guest lines, read
the analysis, commit, see the bookings; create two contact lists and merge them after the
preview. axe-core checks every page on the way (tests/e2e/test_console_browser.py's `_check`)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from server.auth.service import create_token
from server.config import Settings
from server.db import Database
from tests.e2e.test_console_browser import (  # noqa: F401 (fixtures)
    AXE,
    SCREENSHOTS,
    _check,
    _wait_for_link,
    browser,
    console,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the pages do not depend on the database (the console test runs both)


def _token(settings: Settings) -> str:
    async def make() -> str:
        database = Database(settings.database_url)
        try:
            async with database.transaction() as session:
                _, secret = await create_token(session, "browser test")
        finally:
            await database.dispose()
        return secret

    return asyncio.run(make())


@pytest.fixture
def event_id(console: Settings) -> str:  # noqa: F811
    """An event with a ticket type of 100 seats, made by the API before the browser starts
    (Playwright's sync API then holds this thread's event loop)."""
    return _event_with_seats(console)


def _event_with_seats(settings: Settings) -> str:
    headers = {"Authorization": f"Bearer {_token(settings)}"}
    with httpx.Client(base_url=settings.public_base_url, headers=headers) as api:
        event = api.post(
            "/api/v1/events",
            json={
                "name": "Gala des partenaires",
                "starts_at": "2031-06-14T19:00:00+02:00",
                "timezone": "Europe/Zurich",
            },
        ).json()
        api.post(
            f"/api/v1/events/{event['id']}/ticket-types",
            json={"name": "Invitation", "capacity": 100},
        ).raise_for_status()
    return str(event["id"])


def _sign_in(page: Page, settings: Settings, checked: list[str]) -> None:
    base = settings.public_base_url
    page.goto(f"{base}/console/sign-in")
    page.get_by_label("Email address").first.fill("camille@example.org")
    page.get_by_role("button", name="Mail me a sign-in link").click()
    page.goto(f"{base}/console/sign-in/link/{_wait_for_link(settings)}")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/console/events")


def test_paste_guests_analyse_commit_and_see_the_bookings(console, event_id, browser):  # noqa: F811
    base = console.public_base_url
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    checked: list[str] = []
    _sign_in(page, console, checked)

    page.goto(f"{base}/console/events/{event_id}")
    page.get_by_role("link", name="Import guests").click()
    expect(page).to_have_url(f"{base}/console/events/{event_id}/imports")
    page.get_by_label("Pasted lines").fill(
        "ana@example.org;2\nbruno@example.org\nnot an address;1\nchloe@example.org;3\n"
    )
    page.get_by_label("When a line is invalid").select_option("skip_invalid")
    page.get_by_label("Confirm the bookings at once").check()
    _check(page, checked)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-imports-form.png"), full_page=True)
    page.get_by_role("button", name="Analyse").click()

    expect(page.get_by_role("heading", name="Lines to fix (1)")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="not an address")
    expect(row).to_contain_text("This is not a valid email address.")
    expect(row.get_by_role("cell").first).to_have_text("3")  # line 3
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-imports-report.png"), full_page=True)
    page.get_by_role("button", name="Import: create 3 bookings").click()

    expect(page.get_by_role("status")).to_contain_text("3 bookings created, 6 tickets issued.")
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-imports-done.png"), full_page=True)
    page.get_by_role("link", name="See the bookings").click()
    expect(page).to_have_url(f"{base}/console/events/{event_id}/bookings")
    for address in ("ana@example.org", "bruno@example.org", "chloe@example.org"):
        expect(page.get_by_text(address).first).to_be_visible()
    page.goto(f"{base}/console/events/{event_id}/exports")
    _check(page, checked)
    context.close()
    assert AXE.exists(), f"axe-core not installed at {AXE}: run `make axe`"
    assert len(checked) == 4


def _new_list(page: Page, base: str, name: str, lines: str) -> str:
    page.goto(f"{base}/console/contact-lists")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    list_url = page.url
    page.get_by_role("link", name="Import contacts").click()
    page.get_by_label("Pasted lines").fill(lines)
    page.get_by_role("button", name="Analyse").click()
    page.get_by_role("button", name=re.compile(r"Import: add \d+ contacts")).click()
    expect(page.get_by_role("status")).to_contain_text("contacts added by the import")
    return list_url


def test_two_contact_lists_are_merged_after_the_preview(console, browser):  # noqa: F811
    base = console.public_base_url
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    checked: list[str] = []
    _sign_in(page, console, checked)
    vip = _new_list(page, base, "VIP", "ana@example.org;fr\nbruno@example.org\n")
    _new_list(page, base, "Press", "bruno@example.org;de;Bruno Keller\ndora@example.org;en\n")
    _check(page, checked)

    page.goto(vip)
    page.get_by_role("link", name="Merge other lists into this one").click()
    page.get_by_label("Press (2)").check()
    _check(page, checked)
    page.get_by_role("button", name="Preview the merge").click()
    preview = page.locator("section", has=page.get_by_role("heading", name="Preview of the merge"))
    expect(preview).to_contain_text("Contacts after the merge")
    expect(preview.locator("dd").nth(5)).to_have_text("3")
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-contacts-merge.png"), full_page=True)
    page.get_by_role("button", name="Merge now").click()

    expect(page).to_have_url(vip)
    expect(page.get_by_role("cell", name="dora@example.org")).to_be_visible()
    expect(page.get_by_role("cell", name="Bruno Keller")).to_be_visible()  # completed
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-contacts-list.png"), full_page=True)
    page.goto(f"{base}/console/contact-lists")
    expect(page.get_by_role("link", name="Press")).to_have_count(0)  # archived
    page.get_by_role("link", name="Show the archived (merged) lists").click()
    expect(page.get_by_role("link", name="Press")).to_be_visible()
    _check(page, checked)
    context.close()
    assert len(checked) == 5
