"""The "send me my tickets again" page in a real Chromium against a real uvicorn server (its
embedded outbox mailing into a maildir): a guest fills the form and reads the answer, the mail
arrives with the ticket's link, and a form on another site cannot post to it."""

from __future__ import annotations

import asyncio
import email
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.test_guest_page_browser import ARTIFACTS, PHONE, _free_port, _prepare, _wait_until_up
from tests.factories import booking_body, event_body

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Server:
    base_url: str
    api: httpx.Client
    mail_dir: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("resend-browser")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{root / 'tessera.db'}"
    secret = asyncio.run(_prepare(database_url))
    env = {
        **os.environ,
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_KEYS_DIR": str(root / "keys"),
        "TESSERA_BASE_URL": base_url,
        "TESSERA_ACCESS_LOG": "false",
        "TESSERA_MAIL_DIR": str(root / "mail"),
        "TESSERA_WORKER": "embedded",
    }
    env.pop("TESSERA_SMTP_URL", None)
    command = [sys.executable, "-m", "uvicorn", "server.app:app_from_env", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        _wait_until_up(base_url, process)
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as api:
            yield Server(base_url, api, root / "mail")
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _booking(server: Server, address: str) -> dict:
    event = server.api.post("/api/v1/events", json=event_body()).raise_for_status().json()
    ticket_type = server.api.post(
        f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Standard"}
    ).raise_for_status()
    body = booking_body(ticket_type.json()["id"], 1, confirm=True)
    body["buyer"] = {"name": "Camille Martin", "email": address, "language": "fr"}
    booking = server.api.post(f"/api/v1/events/{event['id']}/bookings", json=body)
    return dict(booking.raise_for_status().json())


def _mail_to(server: Server, address: str, timeout: float = 15.0) -> email.message.EmailMessage:
    """The first mail in the maildir addressed to `address`, waiting for the outbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted((server.mail_dir / "new").glob("*")):
            mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if address in str(mail["To"]):
                return mail  # type: ignore[return-value]
        time.sleep(0.1)
    raise AssertionError(f"no mail to {address} within {timeout} s")


def _messages(server: Server, booking_id: str) -> list[dict]:
    answer = server.api.get(f"/api/v1/bookings/{booking_id}/messages").raise_for_status()
    return list(answer.json()["items"])


def test_a_guest_fills_the_form_reads_the_answer_and_gets_the_mail(server, browser):
    booking = _booking(server, "camille.browser@example.org")
    context = browser.new_context(viewport=PHONE, locale="fr-FR", is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{server.base_url}/resend")
    assert page.locator("html").get_attribute("lang") == "fr"

    page.get_by_label("Adresse e-mail").fill("Camille.Browser@example.org")
    page.get_by_role("button", name="Envoyer mes billets").click()

    answer = page.get_by_role("status")
    answer.wait_for()
    assert "Si des billets ont été réservés avec cette adresse" in answer.inner_text()
    assert "camille" not in page.content().lower()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "resend_page_answer.png"), full_page=True)
    context.close()

    mail = _mail_to(server, "camille.browser@example.org")
    text = mail.get_body(("plain",)).get_content()
    assert booking["tickets"][0]["link"] in text and booking["tickets"][0]["code"] in text
    assert [m["source"] for m in _messages(server, booking["id"])] == ["resend"]


def test_the_browser_refuses_a_malformed_address_before_sending(server, browser):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.goto(f"{server.base_url}/resend")
    page.get_by_label("Email address").fill("camille")
    page.get_by_role("button", name="Send my tickets").click()
    assert page.evaluate("document.querySelector('#email').validity.valid") is False
    assert page.get_by_role("status").count() == 0
    context.close()


def test_a_form_on_another_site_cannot_post_to_the_page(server, browser):
    booking = _booking(server, "camille.csrf@example.org")
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    # Another origin, served by Playwright itself (no network): a form that posts to Tessera.
    form = (
        f'<form method="post" action="{server.base_url}/resend">'
        '<input name="email" value="camille.csrf@example.org">'
        '<button type="submit">Go</button></form>'
    )
    page.route(
        "https://evil.example/",
        lambda route: route.fulfill(status=200, content_type="text/html", body=form),
    )
    page.goto("https://evil.example/")
    with page.expect_response(f"{server.base_url}/resend") as posted:
        page.get_by_role("button", name="Go").click()
    assert posted.value.status == 403
    context.close()
    time.sleep(0.5)  # what an accepted post would have queued by now
    assert _messages(server, booking["id"]) == []
