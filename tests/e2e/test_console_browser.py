"""The console in a real Chromium against a real server, on both backends: sign in by the link
read from the maildir, create an event with a ticket type, see it listed; axe-core finds no
WCAG 2.1 AA violation on any page on the way (when installed: `make axe`)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from server.app import create_app
from server.config import Settings
from tests.live import free_port, serve_in_thread
from tests.server.console.helpers import mailed_links, make_user

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "build" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "tests" / "artifacts"  # docs/images/console-*.png are copies of these
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def console(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    port = free_port()
    live = Settings(
        database_url=settings.database_url,
        keys_dir=settings.keys_dir,
        base_url=f"http://127.0.0.1:{port}",
        access_log=False,
        mail_dir=str(tmp_path / "mail"),
    )
    asyncio.run(make_user(live, email="camille@example.org", name="Camille Martin"))
    with serve_in_thread(create_app(live), port):
        yield live


@pytest.fixture
def browser(console: Settings) -> Iterator[Browser]:
    """Started after the server: Playwright's sync API holds an event loop in this thread,
    and the database fixtures run theirs with asyncio.run."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _axe(page: Page) -> list[str]:
    """The WCAG 2.1 A/AA rules axe-core finds broken on the page (its source is evaluated
    through the DevTools protocol: the page's CSP, which allows no script, stays as it is)."""
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in result["violations"]]


def _check(page: Page, checked: list[str]) -> None:
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.outerHTML.length") < 100_000
    if AXE.exists():
        assert _axe(page) == [], page.url
        checked.append(page.url)


def _wait_for_link(settings: Settings) -> str:
    for _ in range(100):
        links = mailed_links(settings.maildir)
        if links:
            return links[-1]
        time.sleep(0.05)
    raise AssertionError("no sign-in mail arrived")


def test_sign_in_by_mail_and_create_an_event_with_a_ticket_type(console, browser):
    base = console.public_base_url
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    checked: list[str] = []
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    page.on("request", lambda r: None if r.url.startswith(base) else scripts.append(r.url))

    page.goto(f"{base}/console/events")
    assert page.url == f"{base}/console/sign-in"  # no session: sent to sign in
    _check(page, checked)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-sign-in.png"), full_page=True)
    page.get_by_label("Email address").first.fill("camille@example.org")
    page.get_by_role("button", name="Mail me a sign-in link").click()
    assert "sign-in link is on its way" in page.content()

    secret = _wait_for_link(console)
    page.goto(f"{base}/console/sign-in/link/{secret}")
    _check(page, checked)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/console/events")
    _check(page, checked)

    page.get_by_role("link", name="New event").click()
    page.get_by_label("Name").fill("Jazz à la Villette")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Starts").fill("2031-09-05T20:30")
    page.get_by_label("Ends").fill("2031-09-05T23:30")
    page.get_by_label("Venue").fill("Grande Halle, 211 avenue Jean Jaurès, Paris")
    _check(page, checked)
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(base)}/console/events/[0-9A-Z]+"))

    ticket_form = page.locator("form", has=page.get_by_role("heading", name="New ticket type"))
    ticket_form.get_by_label("Name").fill("Plein tarif")
    ticket_form.get_by_label("Capacity").fill("800")
    ticket_form.get_by_role("button", name="Create").click()
    assert page.get_by_role("cell", name="Plein tarif", exact=True).is_visible()
    assert page.get_by_role("cell", name="800", exact=True).count() == 2  # capacity, remaining
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-event.png"), full_page=True)

    page.get_by_role("link", name="Events").click()
    expect(page).to_have_url(f"{base}/console/events")
    assert page.get_by_role("link", name="Jazz à la Villette").is_visible()
    assert "2031-09-05 20:30" in page.content()
    _check(page, checked)
    page.screenshot(path=str(SCREENSHOTS / "console-events.png"), full_page=True)
    page.get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(f"{base}/console/tokens")
    _check(page, checked)
    context.close()

    assert scripts == []  # no script, and nothing from another origin (no CDN)
    # `make test` installs axe-core (`make axe`): without it the accessibility check would not
    # have run, which is a failure, not a pass.
    assert AXE.exists(), f"axe-core not installed at {AXE}: run `make axe`"
    assert len(checked) == 7


def test_keyboard_users_reach_the_content_first(console, browser):
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.goto(f"{console.public_base_url}/console/sign-in")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Zum Inhalt springen"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    context.close()
