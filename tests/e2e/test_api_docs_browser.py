"""The API docs at `/schema` in a real Chromium against `tessera serve`, with every other origin
cut off as if there were no internet: Swagger UI renders every operation, requests nothing from
elsewhere, and breaks no rule of its Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from server.config import Settings
from tests.e2e.test_guest_page_browser import CHROMIUM_ARGS
from tests.live import live_server

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]


def test_swagger_ui_renders_from_this_server_alone(settings: Settings, tmp_path: Path):
    with live_server(settings, tmp_path / "server.log") as base_url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            elsewhere: list[str] = []

            def cut_off(route):
                elsewhere.append(route.request.url)
                route.abort()

            context.route(lambda url: not url.startswith(base_url + "/"), cut_off)
            page = context.new_page()
            failed: list[str] = []
            errors: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on(
                "response",
                lambda response: response.status >= 400 and failed.append(response.url),
            )
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda error: errors.append(str(error)))

            page.goto(f"{base_url}/schema")
            page.wait_for_selector(".opblock", timeout=15_000)
            page.locator(".opblock-summary-control").first.click()  # renders its details
            page.locator("button.try-out__btn").first.click()
            page.locator("button.execute").first.click()  # a request from the page itself
            page.wait_for_selector(".live-responses-table", timeout=5_000)
            page.locator("button.authorize").first.click()
            page.wait_for_selector(".auth-container", timeout=5_000)
            page.wait_for_load_state("networkidle")

            assert "Tessera" in page.locator(".info .title").inner_text()
            assert page.locator(".opblock").count() > 10
            assert (elsewhere, failed, errors) == ([], [], [])
        finally:
            browser.close()
