"""The organiser's whole day in the console, as issue 16's "Done when" says, in one journey.

A real server started as `make run` starts it (`tessera migrate`, `tessera demo`, `tessera
serve`, subprocesses of the venv in a scratch directory), its mail to a real aiosmtpd sink; in
headless Chromium, through the console's forms only: sign in by the link the demo printed,
create an event with a ticket type and a check-in list, import pasted lines, send the e-tickets
by campaign, open the guest link from the mail, pair a door from the Doors page and watch its
scan (the real `tessera-scan`, over the websocket hub) arrive on the open dashboard, then resend
one guest's tickets from the booking's page and read that second mail. axe-core checks every
page on the way; each step leaves tests/artifacts/journey-NN-name.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from tests.e2e.make_run import Demo, HeadlessDoor, demo_server
from tests.e2e.test_console_browser import AXE, CHROMIUM_ARGS, SCREENSHOTS, _check
from tests.server.campaigns.smtp_sink import SmtpSink

pytestmark = pytest.mark.browser

CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}\b")  # a readable ticket code
GUESTS = "ana@example.org;2\nbruno@example.org;1\nchloe@example.org;1\n"
PAGE_WAIT = 15_000  # ms: a page on a loaded two-core machine
TICKET_BUTTON = re.compile(r'<a href="([^"]+)"[^>]*>Your ticket online</a>')


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as smtp:
        yield smtp


@pytest.fixture
def demo(tmp_path: Path, sink: SmtpSink) -> Iterator[Demo]:
    with demo_server(tmp_path / "run", sink.url) as running:
        yield running


@pytest.fixture
def browser(demo: Demo) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class Journey:
    """The organiser's browser tab, and what the journey checked and saw on the way."""

    page: Page
    base: str
    checked: list[str] = field(default_factory=list)
    shots: list[str] = field(default_factory=list)

    def look(self, name: str) -> None:
        """axe-core and the size limit on the page as it is, then its screenshot."""
        _check(self.page, self.checked)
        self.shot(self.page, name)

    def shot(self, page: Page, name: str) -> None:
        path = SCREENSHOTS / f"journey-{len(self.shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.shots.append(path.name)

    def follow(self, target: Locator) -> None:
        """Click `target` and wait for the page it leads to."""
        with self.page.expect_navigation(timeout=PAGE_WAIT):
            target.click()

    def event_menu(self, name: str) -> Locator:
        return self.page.get_by_role("navigation", name="Event pages").get_by_role(
            "link", name=name
        )


def _wait(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}"
        time.sleep(0.05)


def _mails_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [m.message() for m in sink.messages if address in m.recipients]


def _plain(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None, "the mail has no plain-text part"
    return str(part.get_content())


def _ticket_button(mail: EmailMessage) -> str:
    """Where the mail's first ticket button leads (through the click counter, as sent)."""
    html = mail.get_body(("html",))
    assert html is not None, "the ticket mail has no HTML part"
    found = TICKET_BUTTON.search(html.get_content())
    assert found, "no 'Your ticket online' button in the ticket mail"
    return found.group(1)


def sign_in(journey: Journey, demo: Demo) -> None:
    page = journey.page
    page.goto(demo.console_link)
    journey.look("sign-in-link")
    journey.follow(page.get_by_role("button", name="Sign in"))
    expect(page).to_have_url(f"{journey.base}/console/events")
    expect(page.get_by_text("Signed in as Demo Admin")).to_be_visible()
    journey.look("signed-in")


def create_event(journey: Journey) -> str:
    """The event, its ticket type of 50 seats and its check-in list; the event's page URL."""
    page = journey.page
    journey.follow(page.get_by_role("link", name="New event"))
    page.get_by_label("Name").fill("Jazz à la Villette")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Starts").fill("2031-09-05T20:30")
    page.get_by_label("Ends").fill("2031-09-05T23:30")
    page.get_by_label("Venue").fill("Grande Halle, 211 avenue Jean Jaurès, Paris")
    journey.look("new-event")
    journey.follow(page.get_by_role("button", name="Create"))
    expect(page).to_have_url(re.compile(rf"{re.escape(journey.base)}/console/events/[0-9A-Z]+$"))
    event_url = page.url

    kind = page.locator("form", has=page.get_by_role("heading", name="New ticket type"))
    kind.get_by_label("Name").fill("Plein tarif")
    kind.get_by_label("Capacity").fill("50")
    journey.follow(kind.get_by_role("button", name="Create"))
    types = page.locator("section", has=page.get_by_role("heading", name="Ticket types"))
    expect(types.get_by_role("row", name=re.compile("Plein tarif"))).to_contain_text("50")

    lists = page.locator("form", has=page.get_by_role("heading", name="New check-in list"))
    lists.get_by_label("Name").fill("Grande porte")
    journey.follow(lists.get_by_role("button", name="Create"))
    section = page.locator("section", has=page.get_by_role("heading", name="Check-in lists"))
    expect(section.get_by_role("cell", name="Grande porte", exact=True)).to_be_visible()
    journey.look("event")
    return event_url


def import_guests(journey: Journey) -> None:
    page = journey.page
    journey.follow(journey.event_menu("Import guests"))
    page.get_by_label("Pasted lines").fill(GUESTS)
    page.get_by_label("Confirm the bookings at once").check()
    journey.look("import-form")
    journey.follow(page.get_by_role("button", name="Analyse"))
    expect(page.get_by_role("heading", name=re.compile("^Lines to fix"))).to_have_count(0)
    journey.look("import-report")
    journey.follow(page.get_by_role("button", name="Import: create 3 bookings"))
    expect(page.get_by_role("status")).to_contain_text("3 bookings created, 4 tickets issued.")
    journey.look("import-done")


def send_tickets(journey: Journey, sink: SmtpSink) -> None:
    page = journey.page
    journey.follow(journey.event_menu("Campaigns"))
    journey.follow(page.get_by_role("link", name="New campaign"))
    page.get_by_label("Name").fill("Vos billets")
    words = page.locator("fieldset", has_text="Words in English")
    words.get_by_label("Subject").fill("Your tickets for {{ event.name }}")
    words.get_by_label("Body").fill("Hello {{ guest.first_name }},\n\n{{ ticket_buttons }}")
    journey.look("campaign-editor")
    journey.follow(page.get_by_role("button", name="Save draft"))
    expect(page.get_by_text("Draft saved.")).to_be_visible()

    journey.follow(page.get_by_role("link", name="Preview"))
    recipient = page.get_by_label("Recipient")
    ana = recipient.locator("option", has_text="ana@example.org").get_attribute("value")
    recipient.select_option(str(ana))
    journey.follow(page.get_by_role("button", name="Show"))
    expect(page.get_by_text("Your tickets for Jazz à la Villette")).to_be_visible()
    journey.look("campaign-preview")

    recap = page.get_by_role("link", name="Recap and send").get_attribute("href")
    page.goto(journey.base + str(recap))  # see test_console_campaigns_browser: axe and the frame
    expect(page.get_by_text("3 recipients right now.")).to_be_visible()
    journey.look("campaign-recap")
    journey.follow(page.get_by_role("button", name="Send now to 3 recipients"))
    expect(page.locator("td .cmp-ms-sent")).to_have_count(3, timeout=20_000)
    expect(page.get_by_text("Sending: this page refreshes")).to_have_count(0)
    journey.look("campaign-sent")
    _wait(lambda: len(sink.messages) >= 3, 10, "three ticket mails at the SMTP sink")


def open_guest_link(journey: Journey, context: BrowserContext, mail: EmailMessage) -> str:
    """The guest's phone opens the link of the mail; the ticket code it shows."""
    phone = context.browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844})
    try:
        guest = phone.new_page()
        guest.goto(_ticket_button(mail))
        expect(guest).to_have_url(re.compile(rf"{re.escape(journey.base)}/t/[A-Za-z0-9_-]+$"))
        qr = guest.get_by_role("img", name=re.compile("QR", re.IGNORECASE)).first
        expect(qr).to_be_visible()
        loaded = "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        assert guest.evaluate(loaded)
        _check(guest, journey.checked)
        journey.shot(guest, "guest-ticket")
        code = CODE.search(guest.locator("main").inner_text())
        assert code, "the ticket page shows no readable ticket code"
        return code.group(0)
    finally:
        phone.close()


def pair_door(journey: Journey, door: HeadlessDoor, event_url: str) -> None:
    page = journey.page
    page.goto(event_url)
    journey.follow(journey.event_menu("Doors"))
    page.get_by_label("Name").fill("Porte nord")
    page.get_by_label("Gate").fill("Nord")
    journey.look("doors")
    journey.follow(page.get_by_role("button", name="Create and show its pairing code"))
    expect(page.get_by_role("img", name="Pairing QR code of Porte nord")).to_be_visible()
    journey.look("door-pairing")
    code = page.locator("#pairing-code").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code), code
    door.pair(code, journey.base)
    journey.follow(page.get_by_role("link", name="Done"))
    expect(page.get_by_role("row", name=re.compile("Porte nord"))).to_contain_text("Offline")
    journey.look("door-paired")


def watch_the_scan(journey: Journey, door: HeadlessDoor, code: str) -> None:
    page = journey.page
    journey.follow(journey.event_menu("Dashboard"))
    expect(page.locator('[data-count="checked_in"]')).to_have_text("0")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#dashboard")).to_have_attribute("data-updated", re.compile("[0-9]+"))
    door.start()
    verdict = door.scan(code)
    assert (verdict["verdict"], verdict["source"]) == ("accepted", "hub"), verdict
    expect(page.locator('[data-count="checked_in"]')).to_have_text("1", timeout=5_000)
    feed = page.locator("#dash-feed tbody tr").first
    expect(feed).to_contain_text(code)
    expect(feed).to_contain_text("Admitted")
    # A new socket alone wakes no dashboard (it reads again every 15 s); the scan did.
    devices = page.locator("#dash-devices tbody tr", has_text="Porte nord")
    expect(devices).to_contain_text("Connected")
    assert page.evaluate("window.stillTheSamePage") is True  # no reload
    journey.look("dashboard-scan")


def resend_to_one_guest(journey: Journey, sink: SmtpSink, address: str) -> EmailMessage:
    page = journey.page
    journey.follow(journey.event_menu("Bookings"))
    page.get_by_label("Search").fill(address)
    journey.follow(page.get_by_role("button", name="Search"))
    expect(page.get_by_text("Bookings found: 1")).to_be_visible()
    journey.look("bookings-search")
    journey.follow(page.get_by_role("link", name=re.compile(r"^TSR-")))
    ticket = page.locator("summary", has_text="Change ticket").first.inner_text()
    resend = page.locator("form", has=page.get_by_role("heading", name="Mail the e-tickets again"))
    journey.follow(resend.get_by_role("button", name="Send again"))
    expect(page.get_by_text("The mail is on its way.")).to_be_visible()
    _wait(lambda: len(_mails_to(sink, address)) == 2, 10, f"a second mail to {address}")
    page.reload()
    expect(page.locator("table.bk-mails .bk-mail-sent")).to_have_count(2)
    journey.look("booking-resent")
    second = _mails_to(sink, address)[1]
    shown = CODE.search(ticket)
    assert shown, ticket
    assert shown.group(0) in _plain(second)  # the booking's ticket, mailed again
    return second


def test_an_organiser_runs_the_whole_day_from_the_console(demo, sink, browser, tmp_path):
    assert AXE.exists(), f"axe-core not installed at {AXE}: run `make axe`"
    SCREENSHOTS.mkdir(exist_ok=True)
    for old in SCREENSHOTS.glob("journey-*.png"):  # a previous run's, maybe numbered otherwise
        old.unlink()
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    context.set_default_timeout(PAGE_WAIT)
    journey = Journey(context.new_page(), demo.base_url)
    foreign: list[str] = []
    journey.page.on(
        "request", lambda r: None if r.url.startswith(demo.base_url) else foreign.append(r.url)
    )
    door = HeadlessDoor(tmp_path / "door")
    try:
        sign_in(journey, demo)
        event_url = create_event(journey)
        import_guests(journey)
        send_tickets(journey, sink)
        [ana_mail] = _mails_to(sink, "ana@example.org")
        assert str(ana_mail["Subject"]) == "Your tickets for Jazz à la Villette"
        code = open_guest_link(journey, context, ana_mail)
        assert f"Code {code}" in _plain(ana_mail)  # the page of a ticket of that mail
        pair_door(journey, door, event_url)
        watch_the_scan(journey, door, code)
        again = resend_to_one_guest(journey, sink, "bruno@example.org")
        assert _ticket_button(again).startswith(f"{demo.base_url}/m/")
    finally:
        door.stop()
        context.close()
    assert len(sink.messages) == 4  # three by the campaign, one resent; nothing else
    assert foreign == []  # nothing from another origin
    assert len(journey.checked) == len(journey.shots)  # axe-core ran on every page shot
