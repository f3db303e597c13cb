"""The live dashboard (SQLite only): the API's counters, the latest scans and devices on a page
complete without JavaScript; its server-sent events, from a real server, carry a scan redeemed
through the REST API; the stream needs a session, ends with it, and knows no unknown event."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from server.app import create_app
from server.config import Settings
from server.console import dashboard
from tests.conftest import _create_token
from tests.live import free_port, serve_in_thread
from tests.server.checkin.helpers import redeem, venue
from tests.server.console.helpers import (
    ask_link,
    csrf_of,
    mailed_links,
    make_user,
    sign_in,
    use_link,
)

WAIT = 5.0


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def test_the_dashboard_shows_the_apis_counters_and_the_latest_scans(client, settings, api):
    v = await venue(api, 2, list_fields={"name": "Parterre"})
    code = v.tickets[0]["code"]
    assert (await redeem(api, v.door, code, v.list_id)).json()["verdict"] == "accepted"
    await redeem(api, v.door, code, v.list_id)  # second entry: refused
    forced = await redeem(api, v.door, code, v.list_id, offline=True, verdict="accepted")
    assert forced.json()["forced"] is True  # the door let it in offline: a conflict
    stats = (await api.get(f"/api/v1/events/{v.event_id}/checkin/stats")).json()
    del client.headers["Authorization"]
    await make_user(settings, role="read_only")
    await sign_in(client, settings)
    page = await client.get(f"/console/events/{v.event_id}/dashboard")
    assert page.status_code == 200
    assert f'data-count="checked_in">{stats["checked_in"]}<' in page.text
    assert f'data-count="remaining">{stats["remaining"]}<' in page.text
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", page.text.split('id="dash-lists"')[1])
    assert cells[4:8] == ["Parterre", "1", "1", "1"]  # checked in, inside, still to come
    assert page.text.count(code) == 4  # three scans in the feed, one conflict
    assert "Refused: already_redeemed" in page.text
    conflicts = page.text.split('id="dash-conflicts"', 1)[1].split("</table>", 1)[0]
    assert code in conflicts and "Let in offline, would be refused: already_redeemed" in conflicts
    assert "Camille Martin" in page.text and "Door 1" in page.text
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in page.text
    csp = page.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
    )
    assert len(page.content) < 100_000
    script = await client.get("/console/static/dashboard.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "EventSource" in script.text
    assert (await client.get("/console/events/NOPE/dashboard")).status_code == 404


@pytest.fixture
def live(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Any]]:
    port = free_port()
    served = Settings(
        database_url=settings.database_url,
        keys_dir=settings.keys_dir,
        base_url=f"http://127.0.0.1:{port}",
        access_log=False,
        mail_dir=str(tmp_path / "mail"),
    )
    app = create_app(served)
    with serve_in_thread(app, port):
        yield served, app


@pytest.fixture
async def organiser(live: tuple[Settings, Any]) -> AsyncIterator[httpx.AsyncClient]:
    token = await _create_token(live[0])
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live[0].public_base_url, headers=headers) as client:
        yield client


async def _sign_in_live(client: httpx.AsyncClient, settings: Settings) -> str:
    """Sign in against the real server, whose mail leaves in a background task."""
    before = len(mailed_links(settings.maildir))
    await ask_link(client, "ada@example.org")
    for _ in range(100):
        if len(links := mailed_links(settings.maildir)) > before:
            break
        await asyncio.sleep(0.05)
    assert (await use_link(client, links[-1])).status_code == 303
    return csrf_of((await client.get("/console/events")).text)


async def _updates(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The `update` events of an SSE response, decoded."""
    kind = None
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and kind == "update":
            yield json.loads(line.split(":", 1)[1])
        elif not line:
            kind = None


async def test_a_scan_arrives_on_the_dashboards_stream_and_the_stream_ends_with_the_session(
    live, organiser
):
    live, app = live
    v = await venue(organiser, 2)
    await make_user(live)
    async with httpx.AsyncClient(base_url=live.public_base_url, timeout=WAIT) as browser:
        csrf = await _sign_in_live(browser, live)
        path = f"/console/events/{v.event_id}/dashboard/events"
        async with browser.stream("GET", path) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            updates = _updates(response)
            async with asyncio.timeout(WAIT):
                first = await anext(updates)
            assert first["counters"]["checked_in"] == 0
            code = v.tickets[0]["code"]
            ws_url = live.public_base_url.replace("http", "ws", 1) + "/ws/scanner"
            async with connect(ws_url, additional_headers=v.door.headers) as socket:
                await socket.send(json.dumps({"type": "hello", "cursor": None}))
                assert json.loads(await socket.recv())["type"] == "welcome"
                assert (await redeem(organiser, v.door, code, v.list_id)).status_code == 200
                async with asyncio.timeout(WAIT):
                    update = await anext(updates)
                    while update["counters"]["checked_in"] == 0:
                        update = await anext(updates)
            assert update["counters"]["checked_in"] == 1
            (row,) = update["tables"]["dash-feed"]
            assert row["cells"][3] == code and row["cls"] == "verdict-accepted"
            assert row["cells"][4] == "Camille Martin"
            (door,) = update["tables"]["dash-devices"]
            assert door["cells"][2] == "Connected"  # its socket was open on this instance

            ended = await browser.post("/console/sign-out-everywhere", data={"csrf": csrf})
            assert ended.status_code == 303
            await redeem(organiser, v.door, v.tickets[1]["code"], v.list_id)  # wakes the stream
            async with asyncio.timeout(WAIT):
                async for _ in updates:
                    pass  # the stream ends: no session any more

        async with browser.stream("GET", path) as response:  # signed out: to the sign-in page
            assert response.status_code == 303
    async with httpx.AsyncClient(base_url=live.public_base_url, timeout=WAIT) as browser:
        await _sign_in_live(browser, live)
        async with browser.stream("GET", path) as response:
            async with asyncio.timeout(WAIT):
                await anext(_updates(response))
            assert app.state.fanout._subscribers.get(v.event_id)
    for _ in range(100):  # the client went away: its subscription ends with it
        if not app.state.fanout._subscribers.get(v.event_id):
            break
        await asyncio.sleep(0.05)
    assert not app.state.fanout._subscribers.get(v.event_id)


async def test_the_stream_needs_a_session_and_a_known_event_and_keeps_itself_alive(
    live, organiser, monkeypatch
):
    live, _ = live
    monkeypatch.setattr(dashboard, "KEEP_ALIVE", 0.2)
    v = await venue(organiser)
    await make_user(live)
    async with httpx.AsyncClient(base_url=live.public_base_url, timeout=WAIT) as browser:
        path = f"/console/events/{v.event_id}/dashboard/events"
        anonymous = await browser.get(path)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/console/sign-in"
        await _sign_in_live(browser, live)
        async with browser.stream("GET", path) as response:
            lines = response.aiter_lines()
            async with asyncio.timeout(WAIT):
                while await anext(lines) != ": keep-alive":
                    pass
        unknown = await browser.get("/console/events/NOPE/dashboard/events")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("text/html")


def test_a_scan_of_a_guest_without_a_name_or_gate_shows_dashes_not_blank_cells() -> None:
    row = dashboard.FeedRow(
        key="s1", at="20:01:02", at_iso="2026-12-20T19:01:02Z", gate="", device="Door 1",
        code="K7QH-M2PX", holder="", verdict="accepted", verdict_label="Admitted",
    )  # fmt: skip
    cells = dashboard._feed_cells(row)["cells"]
    assert cells == ["20:01:02", "\N{EN DASH}", "Door 1", "K7QH-M2PX", "\N{EN DASH}", "Admitted"]
