"""The guest page in a real Chromium against a real uvicorn server: QR readable from a phone
screenshot, no QR for a revoked ticket, and the page opening again without network."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, sync_playwright

from server.auth.service import create_token
from server.db import Database
from server.db.migrate import migrate
from tests.factories import booking_body, event_body

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}


@dataclass
class Server:
    base_url: str
    api: httpx.Client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _prepare(database_url: str) -> str:
    database = Database(database_url)
    try:
        await migrate(database)
        async with database.transaction() as session:
            _, secret = await create_token(session, "browser-test")
    finally:
        await database.dispose()
    return secret


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("uvicorn did not answer /healthz within 20 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("browser")
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
    }
    command = [sys.executable, "-m", "uvicorn", "server.app:app_from_env", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        _wait_until_up(base_url, process)
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as api:
            yield Server(base_url, api)
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


def _confirmed_ticket(server: Server) -> tuple[dict, dict]:
    event = server.api.post("/api/v1/events", json=event_body()).raise_for_status().json()
    ticket_type = server.api.post(
        f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Standard", "persons": 1}
    )
    holders = [{"name": "Camille Martin", "seat": "R4-12"}]
    body = booking_body(ticket_type.json()["id"], 1, confirm=True)
    body["items"][0]["holders"] = holders
    booking = server.api.post(f"/api/v1/events/{event['id']}/bookings", json=body).json()
    return booking, booking["tickets"][0]


def test_phone_screenshot_of_the_page_decodes_to_the_ticket_token(server, browser):
    _, ticket = _confirmed_ticket(server)
    context = browser.new_context(viewport=PHONE, locale="fr-FR", is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(ticket["link"])
    assert page.locator(".qr svg[role=img]").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "guest_page_390x844.png"
    page.screenshot(path=str(shot), full_page=True)
    context.close()

    decoded = zxingcpp.read_barcodes(Image.open(shot))

    assert [d.text for d in decoded] == [ticket["token"]]


def test_revoked_ticket_page_shows_no_qr_and_says_cancelled(server, browser):
    booking, ticket = _confirmed_ticket(server)
    server.api.post(f"/api/v1/bookings/{booking['id']}/cancel").raise_for_status()
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.goto(ticket["link"])
    page.screenshot(path=str(ARTIFACTS / "guest_page_cancelled.png"), full_page=True)
    assert page.locator("svg").count() == 0
    assert "Status: Cancelled" in page.locator("h2").first.inner_text()
    context.close()


def test_page_opens_again_offline_after_the_first_visit(server, browser):
    _, ticket = _confirmed_ticket(server)
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.goto(ticket["link"])
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("navigator.serviceWorker.controller !== null")

    context.set_offline(True)
    page.reload()

    assert page.locator(".qr svg[role=img]").is_visible()
    assert ticket["code"] in page.locator(".code").inner_text()
    context.close()
