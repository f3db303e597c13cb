"""`/metrics` and request ids: the figures move with real requests, scans, sockets and mail;
scrapes are protected; a client's X-Request-Id is kept only when safe (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from server.app import create_app
from server.campaigns.outbox import Outbox
from server.campaigns.transport import MaildirMailer
from server.checkin.models import ScanRow
from server.config import Settings, SettingsError
from server.db import Database, utcnow
from server.events.models import Event
from server.logs import JsonFormatter
from server.metrics.database import ScanTally
from server.request_ids import request_id_from_headers
from tests.conftest import (
    _create_pg_database,
    _create_token,
    _drop_pg_database,
    _pg_url,
    problem_of,
)
from tests.factories import create_booking, create_event, create_ticket_type
from tests.live import serve_in_thread
from tests.server.checkin.helpers import redeem, venue

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: Any, token: str) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_requests_are_counted_by_route_template_and_status(api, organiser_token):
    event = await create_event(api)
    for event_id in (event["id"], "nope1", "nope2"):
        await api.get(f"/api/v1/events/{event_id}")
    await api.get("/no/such/path")
    found = await scrape(api, organiser_token)
    route = "/api/v1/events/{event_id}"
    assert value(found, "tessera_http_requests_total", method="GET", route=route, status="200") == 1
    assert value(found, "tessera_http_requests_total", method="GET", route=route, status="404") == 2
    unmatched = value(
        found, "tessera_http_requests_total", method="GET", route="unmatched", status="404"
    )
    assert unmatched == 1
    assert not any("nope1" in str(labels) for _, labels in found)  # no raw path as a label
    latency = {"method": "GET", "route": route, "status": "404"}
    assert value(found, "tessera_http_request_duration_seconds_count", **latency) == 2
    assert value(found, "tessera_http_request_duration_seconds_bucket", le="+Inf", **latency) == 2
    assert value(found, "tessera_metrics_database_up") == 1
    assert value(found, "process_resident_memory_bytes") > 0


async def test_a_scrape_without_a_valid_token_is_refused(client, read_only_token):
    missing = await client.get("/metrics")
    assert missing.status_code == 401 and problem_of(missing)["code"] == "unauthenticated"
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401
    assert "tessera_" not in wrong.text
    assert await scrape(client, read_only_token)  # a read-only token may scrape


async def test_scans_change_log_and_door_sockets_are_read_at_scrape(app, settings, organiser_token):
    with serve_in_thread(app) as (port, _loop):
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {organiser_token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=5) as http:
            v = await venue(http, 2)
            before = await scrape(http, organiser_token)
            head = value(before, "tessera_change_log_head", event=v.event_id)
            code = v.tickets[0]["code"]
            assert (await redeem(http, v.door, code, v.list_id)).json()["verdict"] == "accepted"
            again = await redeem(http, v.door, code, v.list_id)
            assert again.json()["reason"] == "already_redeemed"
            url = f"ws://127.0.0.1:{port}/ws/scanner"
            door_headers = {"Authorization": f"Bearer {v.door.token}"}
            from websockets.asyncio.client import connect

            async with connect(url, additional_headers=door_headers, open_timeout=5) as ws:
                await ws.send(json.dumps({"type": "hello", "cursor": None}))
                await asyncio.wait_for(ws.recv(), 5)
                during = await scrape(http, organiser_token)
            after = await _scrape_until(http, organiser_token, "tessera_websocket_connections", 0)
    event = v.event_id
    accepted = {"event": event, "verdict": "accepted", "reason": "none"}
    refused = {"event": event, "verdict": "rejected", "reason": "already_redeemed"}
    assert value(during, "tessera_scans_total", **accepted) == 1
    assert value(during, "tessera_scans_total", **refused) == 1
    assert value(during, "tessera_change_log_head", event=event) == head + 1  # scan.accepted
    assert value(during, "tessera_websocket_connections", event=event) == 1
    assert value(after, "tessera_websocket_connections", event=event) == 0


async def _scrape_until(http: Any, token: str, name: str, expected: float) -> Samples:
    """Scrape until no sample of `name` differs from `expected` (a closed socket leaves its
    room a moment later), at most 5 s."""
    deadline = time.monotonic() + 5
    while True:
        found = await scrape(http, token)
        values = [v for (n, _), v in found.items() if n == name]
        if all(v == expected for v in values) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


@pytest.fixture
def external_worker(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, worker="external")


async def test_a_queued_campaign_shows_in_the_outbox_depth(external_worker, organiser_token):
    app = create_app(external_worker)
    async with AsyncTestClient(app, base_url="https://tickets.test") as api:
        api.headers["Authorization"] = f"Bearer {organiser_token}"
        event = await create_event(api)
        ticket_type = await create_ticket_type(api, event["id"])
        for n in range(2):
            buyer = {"name": f"Guest {n}", "email": f"guest{n}@example.org", "language": "en"}
            await create_booking(api, event["id"], ticket_type["id"], buyer=buyer, confirm=True)
        before = await scrape(api, organiser_token)
        body = {"name": "E-tickets"}
        campaign = (await api.post(f"/api/v1/events/{event['id']}/campaigns", json=body)).json()
        sent = await api.post(
            f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 2}
        )
        assert sent.status_code == 202, sent.text
        queued = await scrape(api, organiser_token)
        await _send_the_outbox(external_worker)  # what `tessera worker` does
        delivered = await scrape(api, organiser_token)
        # A delivery report moves one to delivered: still counted as sent, never going down.
        messages = (await api.get(f"/api/v1/campaigns/{campaign['id']}/messages")).json()
        report = (
            "Original-Envelope-Id: " + messages["items"][0]["message_id"] + "\r\n\r\n"
            "Final-Recipient: rfc822; guest0@example.org\r\nAction: delivered\r\n"
        )
        answer = await api.post(
            "/api/v1/messages/reports",
            content=report.encode(),
            headers={"Content-Type": "message/delivery-status"},
        )
        assert answer.status_code == 200, answer.text
        reported = await scrape(api, organiser_token)
    assert value(reported, "tessera_outbox_messages", status="delivered") == 1
    assert value(reported, "tessera_outbox_messages", status="sent") == 1
    assert value(reported, "tessera_outbox_sent_total") == 2
    assert value(before, "tessera_outbox_messages", status="queued") == 0
    assert value(queued, "tessera_outbox_messages", status="queued") == 2
    assert value(queued, "tessera_outbox_sent_total") == 0
    assert value(delivered, "tessera_outbox_messages", status="queued") == 0
    assert value(delivered, "tessera_outbox_sent_total") == 2


async def _send_the_outbox(settings: Settings) -> None:
    database = Database(settings.database_url)
    outbox = Outbox(database, settings, MaildirMailer(Path(settings.mail_dir)))
    try:
        while await outbox.run_once():
            pass
    finally:
        await outbox.mailer.close()
        await database.dispose()


async def test_import_jobs_are_counted_by_target_mode_and_status(api, organiser_token):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    url = f"/api/v1/events/{event['id']}/imports?mode=analyze&ticket_type_id={ticket_type['id']}"
    lines = "a@example.org\nb@example.org\n"
    pasted = {"content": lines, "headers": {"content-type": "text/plain"}}
    response = await api.post(url, **pasted)
    assert response.status_code == 200, response.text
    await api.post(url.replace("analyze", "bogus"), **pasted)
    found = await scrape(api, organiser_token)
    jobs = "tessera_import_jobs_total"
    assert value(found, jobs, target="event", mode="analyze", status="200") == 1
    assert value(found, jobs, target="event", mode="other", status="422") == 1
    assert value(found, "tessera_import_jobs_running") == 0


async def test_metrics_off_or_elsewhere_are_not_on_the_app_port(settings, organiser_token):
    headers = {"Authorization": f"Bearer {organiser_token}"}
    off = create_app(settings.replace(metrics=False))
    async with AsyncTestClient(off) as client:
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 404 and problem_of(response)["code"] == "not_found"
        assert (await client.get("/healthz")).headers["x-request-id"]  # ids stay on
    elsewhere = create_app(settings.replace(metrics_address="127.0.0.1:0"))
    async with AsyncTestClient(elsewhere) as client:
        assert (await client.get("/metrics", headers=headers)).status_code == 404
        await client.get("/healthz")
        port = elsewhere.state.metrics_listener.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as plain:
            served = await plain.get("/metrics")  # no token: the address is the protection
            other = await plain.get("/api/v1/events")
    assert served.status_code == 200 and other.status_code == 404
    found = samples(served.text)
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(found, "tessera_http_requests_total", **healthz) == 1


async def test_metrics_without_a_token_when_the_operator_says_so(settings):
    app = create_app(settings.replace(metrics_token_required=False))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_locked_database_does_not_hang_the_scrape(api, settings, organiser_token):
    """The event table locked by another session: the scrape answers within its time box,
    without the database figures, and has them again once the lock is gone."""
    api.app.state.metrics.reader.timeout = 0.5
    await scrape(api, organiser_token)  # the token check's connection is warm
    blocker = await asyncpg.connect(settings.database_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE event IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        # The organiser token is checked before the lock matters: api_token is not locked.
        found = await scrape(api, organiser_token)
        took = time.monotonic() - started
        await transaction.rollback()
    finally:
        await blocker.close()
    assert took < 2.0
    assert value(found, "tessera_metrics_database_up") == 0
    assert value(found, "tessera_http_requests_total", method="GET", route="/metrics", status="200")
    await asyncio.sleep(0.5)  # the read cut off by the time box ends once the lock is gone
    assert value(await scrape(api, organiser_token), "tessera_metrics_database_up") == 1


async def test_a_failure_in_recording_never_fails_the_request(api, organiser_token):
    metrics = api.app.state.metrics
    metrics.requests.series = None  # recording now raises
    assert (await api.get("/healthz")).status_code == 200
    assert metrics.requests is None  # recording stopped in this process
    assert (await api.get("/healthz")).status_code == 200
    assert value(await scrape(api, organiser_token), "tessera_metrics_database_up") == 1


# Request ids


async def test_a_problem_answer_and_its_log_line_carry_the_request_id(settings, caplog):
    app = create_app(settings.replace(access_log=True))
    async with AsyncTestClient(app) as client:
        with caplog.at_level(logging.INFO, logger="tessera.access"):
            mine = await client.get("/api/v1/events", headers={"X-Request-Id": "lb-7f3a.1"})
            fresh = await client.get("/api/v1/events")
    assert mine.headers["x-request-id"] == "lb-7f3a.1"
    assert problem_of(mine)["request_id"] == "lb-7f3a.1"
    assert problem_of(mine)["code"] == "unauthenticated"  # the standard members are unchanged
    made = fresh.headers["x-request-id"]
    assert len(made) == 32 and problem_of(fresh)["request_id"] == made
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert [line["request_id"] for line in lines if line["logger"] == "tessera.access"] == [
        "lb-7f3a.1",
        made,
    ]


GARBAGE = [
    pytest.param(b"x" * 10_240, id="10-KB"),
    pytest.param(b"abc\x01def", id="control-character"),
    pytest.param(b"abc\x1b[31mred", id="terminal-escape"),
    pytest.param("zoë-☃".encode(), id="non-ASCII"),
    pytest.param(b'a" ,"level":"error', id="json-quote"),
    pytest.param(b"", id="empty"),
    pytest.param(b"x" * 65, id="65-characters"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_an_unsafe_client_request_id_is_replaced(garbage):
    made = request_id_from_headers([(b"x-request-id", garbage)])
    assert made != garbage.decode("latin-1") and len(made) == 32
    assert made.isalnum()


def test_a_safe_client_request_id_is_kept():
    uuid = "0f8c2c1e-9a8b-4c55-a1d3-2b7f9e0c4d11"
    assert request_id_from_headers([(b"x-request-id", uuid.encode())]) == uuid
    assert request_id_from_headers([(b"host", b"x"), (b"x-request-id", b"a" * 64)]) == "a" * 64


@pytest.mark.parametrize("garbage", GARBAGE)
async def test_garbage_request_ids_over_http_get_a_new_id_and_stay_out_of_logs(
    settings, garbage, caplog
):
    """Sent as raw bytes through the app (what the server hands over): the answer is the
    usual one, with a new id in its header, its body and its log line."""
    app = create_app(settings.replace(access_log=True))
    answer = await _raw_get(app, "/api/v1/events", [(b"x-request-id", garbage)], caplog)
    assert answer["status"] == 401
    made = answer["headers"][b"x-request-id"].decode()
    assert len(made) == 32 and json.loads(answer["body"])["request_id"] == made
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert json.loads(logged)["request_id"] == made  # one line, still one JSON object
    if garbage:
        assert garbage.decode("latin-1") not in logged


async def _raw_get(
    app: Litestar, path: str, headers: list[tuple[bytes, bytes]], caplog: Any
) -> dict[str, Any]:
    async with AsyncTestClient(app):  # the app's lifespan runs around the raw call
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"tickets.test"), *headers],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = dict(message["headers"])
            else:
                answer["body"] += message.get("body", b"")

        with caplog.at_level(logging.INFO):
            await app(scope, receive, send)
        return answer


# Settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TESSERA_METRICS_ADDRESS": "9100"}, "TESSERA_METRICS_ADDRESS: expected HOST:PORT"),
        ({"TESSERA_METRICS_ADDRESS": "0.0.0.0:99999"}, "TESSERA_METRICS_ADDRESS: expected"),
        (
            {"TESSERA_METRICS_ADDRESS": "127.0.0.1:9100", "TESSERA_METRICS": "false"},
            "TESSERA_METRICS_ADDRESS: set while TESSERA_METRICS is false",
        ),
        ({"TESSERA_METRICS": "maybe"}, "TESSERA_METRICS:"),
        ({"TESSERA_METRICS_TOKEN_REQUIRED": "perhaps"}, "TESSERA_METRICS_TOKEN_REQUIRED:"),
    ],
)
def test_bad_metrics_settings_stop_the_start_naming_the_variable(env, message):
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        Settings.from_env(env)


def test_metrics_settings_are_read_from_the_environment():
    settings = Settings.from_env(
        {"TESSERA_METRICS_ADDRESS": "[::1]:9100", "TESSERA_METRICS_TOKEN_REQUIRED": "false"}
    )
    assert settings.metrics and settings.metrics_address == "[::1]:9100"
    assert not settings.metrics_token_required
    assert Settings.from_env({"TESSERA_METRICS_ADDRESS": ""}).metrics_address == ""


# The scan tally


async def test_the_scan_tally_counts_each_scan_once_as_time_moves(database_url):
    """Scans counted by the first full read, by later increments and in the recent window
    always add up to a full GROUP BY, however the marks fall; a scan committed later than
    the lag is caught by the periodic recount."""
    database = Database(database_url)
    tally = ScanTally()
    now = utcnow()
    try:
        await _insert_scans(database, now - timedelta(hours=1), accepted=3, refused=2)
        assert await _count(database, tally, now) == {
            ("EVTALLY001", True, "none"): 3,
            ("EVTALLY001", False, "revoked"): 2,
        }
        await _insert_scans(database, now, accepted=4, refused=1, first=10)  # within the lag
        assert await _count(database, tally, now) == await _full(database)
        later = now + timedelta(minutes=1)  # those are now behind the mark: counted once
        assert await _count(database, tally, later) == await _full(database)
        assert await _count(database, tally, later) == await _full(database)
        await _insert_scans(database, now - timedelta(minutes=5), accepted=1, first=20)  # late
        assert await _count(database, tally, later) != await _full(database)
        tally.recounted_at = -1e9  # RECOUNT_SECONDS have passed
        assert await _count(database, tally, later) == await _full(database)
    finally:
        await database.dispose()


async def _count(database: Database, tally: ScanTally, now: Any) -> dict[Any, int]:
    async with database.transaction(read_only=True) as session:
        return await tally.count(session, now)


async def _full(database: Database) -> dict[Any, int]:
    return await _count(database, ScanTally(), utcnow() + timedelta(days=1))


async def _insert_scans(
    database: Database, at: Any, *, accepted: int, refused: int = 0, first: int = 0
) -> None:
    async with database.transaction() as session:
        if first == 0:
            await session.execute(
                insert(Event.__table__).values(
                    id="EVTALLY001",
                    slug="tally",
                    name="Tally",
                    starts_at=at,
                    timezone="UTC",
                    languages=[],
                    branding={},
                    change_seq=0,
                )
            )
        rows = [
            {
                "device_id": "D1",
                "scan_id": f"s{first + n}",
                "event_id": "EVTALLY001",
                "list_id": "L1",
                "code": "c",
                "direction": "entry",
                "scanned_at": at,
                "received_at": at,
                "accepted": n < accepted,
                "reason": None if n < accepted else "revoked",
            }
            for n in range(accepted + refused)
        ]
        await session.execute(insert(ScanRow.__table__), rows)


async def test_a_metrics_address_already_taken_leaves_the_app_serving(settings, caplog):
    """As a second worker finds it: the error is logged and the app serves without it."""
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        app = create_app(settings.replace(metrics_address=f"127.0.0.1:{port}"))
        with caplog.at_level(logging.ERROR, logger="tessera.metrics"):
            async with AsyncTestClient(app) as client:
                assert (await client.get("/healthz")).status_code == 200
    finally:
        taken.close()
        await taken.wait_closed()
    assert "cannot listen on 127.0.0.1" in caplog.text


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_with_the_database_gone_a_scrape_says_so_and_never_fails(settings):
    """A scratch PostgreSQL database dropped under a running app: with a token the scrape is a
    clear 503 (the token cannot be checked); on the metrics address it still answers, with
    `tessera_metrics_database_up 0`."""
    name = await _create_pg_database()
    scratch = settings.replace(database_url=_pg_url(name), metrics_address="127.0.0.1:0")
    token = await _create_token(scratch)
    by_token = create_app(scratch.replace(metrics_address=None))
    by_address = create_app(scratch)
    try:
        async with AsyncTestClient(by_token) as client, AsyncTestClient(by_address):
            port = by_address.state.metrics_listener.port
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as plain:
                assert value(await scrape(client, token), "tessera_metrics_database_up") == 1
                await _drop_pg_database(name)
                refused = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
                served = await plain.get("/metrics")
    finally:
        await _drop_pg_database(name)
    assert refused.status_code == 503
    assert problem_of(refused)["code"] == "database_unreachable"
    assert served.status_code == 200
    assert value(samples(served.text), "tessera_metrics_database_up") == 0


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/checkin/redeem"])
async def test_a_client_that_hangs_up_mid_body_is_counted_499_not_500(
    app, settings, organiser_token, path
):
    """No answer reaches a client that left: it is not the server's error (nginx's 499)."""
    with serve_in_thread(app) as (port, _loop):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: tickets.test\r\n"
            f"Authorization: Bearer {organiser_token}\r\nContent-Type: application/json\r\n"
            'Content-Length: 100\r\n\r\n{"name":'.encode()
        )
        await writer.drain()
        await asyncio.sleep(0.3)  # the server is reading the body
        writer.close()
        await writer.wait_closed()
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            for _ in range(50):  # the server learns of the hang-up on its loop
                found = await scrape(http, organiser_token)
                posts = {
                    dict(labels)["status"]: n
                    for (name, labels), n in found.items()
                    if name == "tessera_http_requests_total"
                    and dict(labels).get("method") == "POST"
                }
                if posts:
                    break
                await asyncio.sleep(0.1)
    assert posts.get("499") == 1, posts
    assert "500" not in posts, posts
