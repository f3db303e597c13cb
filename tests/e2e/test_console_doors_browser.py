"""Doors and the live dashboard in a real Chromium against a real server (SQLite): create a
device in the console, reload its pairing page (the same code, one device), pair a door with
that code (the page then says it is paired), watch a scan redeemed through the REST API arrive
on the dashboard without reload, revoke the device; axe-core finds no WCAG 2.1 AA violation on
the doors, pairing and dashboard pages."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from server.config import Settings
from tests.conftest import _create_token
from tests.e2e.test_console_browser import (  # noqa: F401 (fixtures)
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


@pytest.fixture
def api(console: Settings) -> Iterator[httpx.Client]:  # noqa: F811
    """The organiser's API, set up before the browser starts (asyncio.run needs no loop)."""
    token = asyncio.run(_create_token(console))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=console.public_base_url, headers=headers, timeout=5) as client:
        yield client


def _post(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _sign_in(page: Page, settings: Settings) -> None:
    base = settings.public_base_url
    page.goto(f"{base}/console/sign-in")
    page.get_by_label("Email address").first.fill("camille@example.org")
    page.get_by_role("button", name="Mail me a sign-in link").click()
    expect(page.get_by_text("sign-in link is on its way")).to_be_visible()
    page.goto(f"{base}/console/sign-in/link/{_wait_for_link(settings)}")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/console/events")


def test_pair_a_door_watch_its_scan_arrive_live_then_revoke_it(
    console,  # noqa: F811
    api,
    browser: Browser,  # noqa: F811
):
    base = console.public_base_url
    event = _post(api, "/api/v1/events", event_body(name="Jazz à la Villette"))
    ticket_type = _post(api, f"/api/v1/events/{event['id']}/ticket-types", {"name": "Plein tarif"})
    booking = _post(
        api,
        f"/api/v1/events/{event['id']}/bookings",
        booking_body(ticket_type["id"], 2, confirm=True),
    )
    checkin_list = _post(api, f"/api/v1/events/{event['id']}/checkin-lists", {"name": "Parterre"})
    code = booking["tickets"][0]["code"]

    context = browser.new_context(locale="en-GB", viewport={"width": 375, "height": 800})
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else foreign.append(r.url))
    checked: list[str] = []
    SCREENSHOTS.mkdir(exist_ok=True)
    _sign_in(page, console)

    page.goto(f"{base}/console/events/{event['id']}/doors")
    page.get_by_label("Name").fill("Porte nord")
    page.get_by_label("Gate").fill("Nord")
    _check(page, checked)
    page.get_by_role("button", name="Create and show its pairing code").click()
    expect(page.get_by_role("img", name="Pairing QR code of Porte nord")).to_be_visible()
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-doors-pairing.png"), full_page=True)
    pairing_code = page.locator("#pairing-code").inner_text()
    page.reload()  # a GET after the form's redirect: the same code, no second device
    expect(page.locator("#pairing-code")).to_have_text(pairing_code)
    devices = api.get(f"/api/v1/events/{event['id']}/devices").json()
    assert devices["total"] == 1
    paired = api.post("/api/v1/devices/pair", json={"pairing_code": pairing_code})
    assert paired.status_code == 200, paired.text
    door = {"Authorization": f"Bearer {paired.json()['token']}"}
    page.reload()
    expect(page.get_by_text("Porte nord is paired")).to_be_visible()
    expect(page.locator("#pairing-code")).to_have_count(0)
    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("row", name=re.compile("Porte nord"))).to_contain_text("Offline")

    page.get_by_role("navigation", name="Event pages").get_by_role("link", name="Dashboard").click()
    expect(page.locator('[data-count="checked_in"]')).to_have_text("0")
    _check(page, checked)
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#dashboard")).to_have_attribute("data-updated", re.compile("[0-9]+"))
    scan = {"scan_id": str(uuid.uuid4()), "code": code, "list_id": checkin_list["id"]}
    redeemed = api.post("/api/v1/checkin/redeem", json=scan, headers=door)
    assert redeemed.json()["verdict"] == "accepted"
    expect(page.locator('[data-count="checked_in"]')).to_have_text("1")
    expect(page.locator('[data-count="remaining"]')).to_have_text("1")
    feed = page.locator("#dash-feed tbody tr").first
    expect(feed).to_contain_text(code)
    expect(feed).to_contain_text("Camille Martin")
    expect(feed).to_contain_text("Admitted")
    assert page.evaluate("window.stillTheSamePage") is True  # no reload
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-dashboard.png"), full_page=True)

    page.goto(f"{base}/console/events/{event['id']}/doors")
    page.get_by_role("link", name="Revoke Porte nord").click()
    page.get_by_role("button", name="Revoke this device").click()
    expect(page.get_by_role("row", name=re.compile("Porte nord"))).to_contain_text("Revoked")
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-doors.png"), full_page=True)
    scan["scan_id"] = str(uuid.uuid4())
    assert api.post("/api/v1/checkin/redeem", json=scan, headers=door).status_code == 401
    context.close()
    assert foreign == []  # nothing from another origin (no CDN)
    assert len(checked) == 5
