"""The guests' "send me my tickets again" page `/resend`: the same answer for every address,
the mails it queues (read back from the real maildir), its limits, and the garbage it refuses.

The app runs with `worker=external`, so the test decides when the outbox sends
(`Outbox.run_once`); its limiter reads a clock the test moves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import hashlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from server.app import create_app
from server.campaigns.models import Message
from server.campaigns.outbox import Outbox
from server.campaigns.transport import MaildirMailer
from server.config import Settings
from server.db import Database
from server.guests.resend import MAX_BOOKINGS, ResendLimits, parse_form
from server.ratelimit import TokenBuckets
from tests.conftest import app_for, problem_of
from tests.factories import create_booking, create_event, create_ticket_type
from tests.live import free_port, serve_in_thread

FORM = "application/x-www-form-urlencoded"
ANSWER = {
    "en": "If tickets were booked with this address, we have sent them again. Check your inbox.",
    "fr": "Si des billets ont été réservés avec cette adresse, nous venons de les renvoyer.",
    "de": "Falls mit dieser Adresse Tickets gebucht wurden, haben wir sie erneut gesendet.",
}
KNOWN = "camille%40example.org"  # as a form encodes it
CAMILLE = {"name": "Camille Martin", "email": "camille@example.org", "language": "fr"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, worker="external")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Litestar:
    app = app_for(settings)
    app.state.resend_limiter = ResendLimits(clock=clock)
    return app


@pytest.fixture
async def outbox(settings: Settings) -> Any:
    database = Database(settings.database_url)
    box = Outbox(database, settings, MaildirMailer(Path(settings.mail_dir)))
    yield box
    await box.mailer.close()
    await database.dispose()


def mails(settings: Settings) -> list[email.message.EmailMessage]:
    root = Path(settings.mail_dir) / "new"
    if not root.exists():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted(root.iterdir())
    ]


def text_of(mail: email.message.EmailMessage) -> str:
    return str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]


async def drain(outbox: Outbox) -> None:
    while await outbox.run_once():
        pass


async def ledger(settings: Settings) -> list[tuple[str | None, str, str]]:
    """(booking_id, source, to_email) of every ledger row."""
    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            rows = await session.execute(
                select(Message.booking_id, Message.source, Message.to_email).order_by(Message.id)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await database.dispose()


def as_guest(api: AsyncTestClient[Litestar]) -> AsyncTestClient[Litestar]:
    """The same client without the organiser's token: the page needs none."""
    api.headers.pop("Authorization", None)
    return api


async def resend(
    client: AsyncTestClient[Litestar], address: str, query: str = "?lang=en", **headers: str
) -> Any:
    body = urlencode({"email": address})
    return await client.post(
        f"/resend{query}", content=body, headers={"Content-Type": FORM, **headers}
    )


async def booked(
    api: AsyncTestClient[Litestar],
    quantity: int = 1,
    buyer: dict[str, Any] | None = None,
    *,
    confirm: bool = True,
    **event: Any,
) -> dict[str, Any]:
    """A booking of `quantity` tickets of a new event (overrides in `event`), with the event."""
    created = await create_event(api, **event)
    ticket_type = await create_ticket_type(api, created["id"])
    booking = await create_booking(
        api, created["id"], ticket_type["id"], quantity, confirm=confirm, buyer=buyer or CAMILLE
    )
    return {**booking, "event": created}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# --- the page ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "accept", "lang", "title", "label"),
    [
        ("?lang=de", "fr", "de", "Meine Tickets erneut senden", "E-Mail-Adresse"),
        ("", "fr-CH, en;q=0.5", "fr", "Renvoyer mes billets", "Adresse e-mail"),
        ("", "de-DE,de;q=0.9", "de", "Meine Tickets erneut senden", "E-Mail-Adresse"),
        ("", None, "en", "Send me my tickets again", "Email address"),
        ("?lang=xx", "sv", "en", "Send me my tickets again", "Email address"),
    ],
)
async def test_the_page_is_one_labelled_email_field_and_a_button_in_the_guests_language(
    client, query, accept, lang, title, label
):
    headers = {"Accept-Language": accept} if accept else {}
    response = await client.get(f"/resend{query}", headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert f'<html lang="{lang}">' in html
    assert f"<h1>{title}</h1>" in html
    assert f'<label for="email">{label}</label>' in html
    assert re.search(
        r'<input id="email" name="email" type="email" required [^>]*autocomplete', html
    )
    assert html.count("<button") == 1 and 'type="submit"' in html
    assert f'<form method="post" action="/resend?lang={lang}">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


async def test_the_page_is_locked_down_uncached_and_names_its_style_by_hash(client):
    response = await client.get("/resend")
    headers, html = response.headers, response.text
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "same-origin"  # else the form posts Origin: null
    assert headers["x-robots-tag"].startswith("noindex")
    csp = headers["content-security-policy"]
    [style] = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "nonce" not in csp + html
    assert "<script" not in html
    assert not re.search(r"(https?:)?//", html)
    assert len(response.content) < 10_000


async def test_a_page_for_one_event_names_it_and_an_unknown_event_is_not_found(api):
    booking = await booked(api)
    client = as_guest(api)
    slug = booking["event"]["slug"]

    page = await client.get(f"/resend?event={slug}&lang=en")
    assert page.status_code == 200
    assert "<p>Jazz at the Pier</p>" in page.text
    assert f'action="/resend?lang=en&amp;event={slug}"' in page.text

    for query in ("event=no-such-event", "event=%00", "event=" + "a" * 5000, "event=Ab%20C"):
        missing = await client.get(f"/resend?{query}&lang=fr")
        assert missing.status_code == 404, query
        assert "Événement introuvable" in missing.text
        assert missing.headers["cache-control"] == "no-store"


# --- the answer -------------------------------------------------------------------------------


async def test_the_answer_is_the_same_bytes_for_a_booked_a_cancelled_and_an_unknown_address(
    api, settings
):
    await booked(api, 2)
    cancelled = await booked(api, 1, {**CAMILLE, "email": "gone@example.org"})
    await api.post(f"/api/v1/bookings/{cancelled['id']}/cancel")
    client = as_guest(api)

    answers = [
        await resend(client, address)
        for address in ("camille@example.org", "gone@example.org", "nobody@example.org")
    ]

    known, gone, unknown = answers
    assert known.status_code == gone.status_code == unknown.status_code == 200
    assert known.content == gone.content == unknown.content
    per_answer = ("date", "x-request-id")  # the clock's and a random id: they tell nothing
    same = {k: v for k, v in known.headers.items() if k not in per_answer}
    assert same == {k: v for k, v in unknown.headers.items() if k not in per_answer}
    assert same == {k: v for k, v in gone.headers.items() if k not in per_answer}
    assert ANSWER["en"] in known.text
    assert "camille" not in known.text and "nobody" not in known.text
    assert known.headers["cache-control"] == "no-store"
    assert [(source, to) for _, source, to in await ledger(settings)] == [
        ("resend", "camille@example.org")
    ]


@pytest.mark.parametrize(
    ("query", "accept", "lang"),
    [("?lang=fr", "de", "fr"), ("", "de-CH", "de"), ("", "en-GB", "en"), ("?lang=de", None, "de")],
)
async def test_the_answer_is_in_the_guests_language(client, query, accept, lang):
    headers = {"Accept-Language": accept} if accept else {}
    response = await resend(client, "camille@example.org", query, **headers)
    assert response.status_code == 200
    assert ANSWER[lang] in response.text and f'<html lang="{lang}">' in response.text


async def test_each_booking_of_the_address_gets_its_ticket_mail_with_its_links(
    api, settings, outbox
):
    first = await booked(api, 2)
    second = await booked(api, 1, {**CAMILLE, "language": "en"}, name="Night at the Museum")
    other = await booked(api, 1, {**CAMILLE, "email": "someone@example.org"})
    client = as_guest(api)

    response = await resend(client, "  Camille@EXAMPLE.org ")
    assert response.status_code == 200
    await drain(outbox)

    received = mails(settings)
    assert len(received) == 2
    assert {str(m["To"]) for m in received} == {"Camille Martin <camille@example.org>"}
    by_subject = {str(m["Subject"]): text_of(m) for m in received}
    french = by_subject["Vos billets pour Jazz at the Pier"]
    english = by_subject["Your tickets for Night at the Museum"]
    for ticket in first["tickets"]:
        assert ticket["link"] in french and ticket["code"] in french
    assert second["tickets"][0]["link"] in english
    assert other["tickets"][0]["link"] not in french + english
    rows = await ledger(settings)
    assert sorted(b for b, _, _ in rows) == sorted([first["id"], second["id"]])
    assert {source for _, source, _ in rows} == {"resend"}


async def test_a_page_for_one_event_sends_only_that_events_tickets(api, settings, outbox):
    await booked(api)
    chosen = await booked(api, name="Night at the Museum")
    client = as_guest(api)

    response = await resend(client, "camille@example.org", f"?event={chosen['event']['slug']}")
    assert response.status_code == 200
    await drain(outbox)

    [mail] = mails(settings)
    assert chosen["tickets"][0]["link"] in text_of(mail)
    assert [b for b, _, _ in await ledger(settings)] == [chosen["id"]]


async def test_cancelled_pending_and_ended_bookings_send_nothing(api, settings, outbox):
    now = datetime.now(UTC)
    cancelled = await booked(api)
    await api.post(f"/api/v1/bookings/{cancelled['id']}/cancel")
    await booked(api, confirm=False)
    await booked(api, starts_at="2020-05-01T20:00:00+02:00", ends_at="2020-05-01T23:00:00+02:00")
    # No end given: over a day after its start counts as ended, within a day as running.
    await booked(api, starts_at=_iso(now - timedelta(days=2)), ends_at=None)
    running = await booked(api, starts_at=_iso(now - timedelta(hours=2)), ends_at=None)
    client = as_guest(api)

    assert (await resend(client, "camille@example.org")).status_code == 200
    await drain(outbox)

    assert [b for b, _, _ in await ledger(settings)] == [running["id"]]
    assert len(mails(settings)) == 1


async def test_at_most_ten_bookings_are_sent_the_soonest_first(api, settings):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    for _ in range(MAX_BOOKINGS + 2):
        await create_booking(api, event["id"], ticket_type["id"], 1, confirm=True, buyer=CAMILLE)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    sooner = await booked(api, starts_at=_iso(tomorrow), ends_at=None)
    client = as_guest(api)

    assert (await resend(client, "camille@example.org")).status_code == 200

    rows = await ledger(settings)
    assert len(rows) == MAX_BOOKINGS
    assert sooner["id"] in {b for b, _, _ in rows}


@contextlib.asynccontextmanager
async def write_lock(settings: Settings, backend: str) -> AsyncIterator[None]:
    """Hold what an insert into the ledger waits for, from another connection."""
    if backend == "sqlite":
        connection = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
        connection.isolation_level = None
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    url = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
    pg = await asyncpg.connect(url)
    try:
        async with pg.transaction():
            await pg.execute("LOCK TABLE message IN EXCLUSIVE MODE")  # reads still pass
            yield
    finally:
        await pg.close()


async def test_the_answer_does_not_wait_for_the_lookup_or_the_queueing(api, settings, backend):
    """So its time says nothing either: the queueing of a booked address runs after it."""
    await booked(api)
    port = free_port()
    with serve_in_thread(create_app(settings), port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as guest:
            async with write_lock(settings, backend):
                started = time.perf_counter()
                answer = await guest.post(
                    "/resend", content=f"email={KNOWN}", headers={"Content-Type": FORM}
                )
                waited = time.perf_counter() - started
                assert answer.status_code == 200 and ANSWER["en"] in answer.text
                assert waited < 2.0
                assert await ledger(settings) == []  # the queueing waits for the lock
            for _ in range(200):  # once the lock is gone, the queueing goes through
                if await ledger(settings):
                    break
                await asyncio.sleep(0.05)
    assert len(await ledger(settings)) == 1


# --- limits -----------------------------------------------------------------------------------


async def test_every_request_for_an_address_counts_three_an_hour(api, settings, clock):
    await booked(api)
    client = as_guest(api)
    spellings = ["camille@example.org", "CAMILLE@example.org", "camille@Example.ORG"]

    assert [(await resend(client, a)).status_code for a in spellings] == [200, 200, 200]
    refused = await resend(client, "camille@example.org")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1200"  # 3 an hour: one every 20 minutes
    assert "Try again in 20 min." in refused.text
    assert refused.headers["cache-control"] == "no-store"
    assert (await resend(client, "someone@example.org")).status_code == 200
    assert len(await ledger(settings)) == 3

    clock.now += 1200
    assert (await resend(client, "camille@example.org")).status_code == 200
    assert (await resend(client, "camille@example.org")).status_code == 429
    assert len(await ledger(settings)) == 4


async def test_a_client_has_a_burst_of_ten_then_ten_an_hour(client, clock):
    for n in range(10):
        assert (await resend(client, f"guest{n}@example.org")).status_code == 200
    refused = await resend(client, "guest10@example.org", "?lang=de")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "360"
    assert "Zu viele Versuche" in refused.text and 'role="alert"' in refused.text
    clock.now += 360
    assert (await resend(client, "guest10@example.org")).status_code == 200
    assert (await resend(client, "guest11@example.org")).status_code == 429


async def test_a_typo_corrected_within_a_minute_is_sent(api, settings, outbox, clock):
    booking = await booked(api)
    client = as_guest(api)

    assert (await resend(client, "camile@exmaple.org")).status_code == 200
    clock.now += 20
    assert (await resend(client, "camille@example.org")).status_code == 200
    await drain(outbox)

    [mail] = mails(settings)
    assert booking["tickets"][0]["link"] in text_of(mail)


def test_the_address_budget_is_shared_by_every_client_and_keeps_no_address():
    clock = Clock()
    limits = ResendLimits(clock=clock)
    assert [limits.take_client(f"10.0.0.{n}") for n in range(3)] == [0, 0, 0]
    assert [limits.take_address("camille@example.org") for _ in range(3)] == [0, 0, 0]
    assert limits.take_address("Camille@Example.org") == 1200
    assert limits.take_client("10.0.0.9") == 0  # another client, same address: still refused
    assert limits.take_address("camille@example.org") == 1200
    keys = list(limits.per_address._buckets)
    assert len(keys) == 1 and "camille" not in keys[0] and "example" not in keys[0]
    assert ResendLimits(clock=clock).take_address("camille@example.org") == 0  # per process


def test_limits_given_to_the_page_are_the_ones_it_keeps():
    per_address, per_client = TokenBuckets(rate=1, burst=5), TokenBuckets(rate=1, burst=7)
    limits = ResendLimits(per_address=per_address, per_client=per_client, clock=Clock())
    assert limits.per_address is per_address and limits.per_client is per_client
    assert [limits.take_address("a@example.org") for _ in range(6)] == [0] * 5 + [1]


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://tickets.test.evil.example"},
        {"Origin": "http://tickets.test"},
        {"Origin": "https://tickets.test:8443"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://tickets.test"},
    ],
)
async def test_a_form_posted_from_another_site_is_refused_and_sends_nothing(api, settings, headers):
    await booked(api)
    client = as_guest(api)
    response = await resend(client, "camille@example.org", **headers)
    assert response.status_code == 403
    assert problem_of(response)["code"] == "cross_site"
    assert await ledger(settings) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://tickets.test"},
        {"Origin": "https://TICKETS.test:443"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://tickets.test"},
        {"Sec-Fetch-Site": "none"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    ],
)
async def test_a_form_from_this_site_or_without_browser_headers_is_taken(api, settings, headers):
    await booked(api)
    client = as_guest(api)
    assert (await resend(client, "camille@example.org", **headers)).status_code == 200
    assert len(await ledger(settings)) == 1


GARBAGE = [
    pytest.param(b"", FORM, 422, id="empty-body"),
    pytest.param(b"email=", FORM, 422, id="empty-email"),
    pytest.param(b"email=%20%20%09", FORM, 422, id="blank-email"),
    pytest.param(b"email=camille", FORM, 422, id="no-at"),
    pytest.param(b"email=camille%40%40example.org", FORM, 422, id="two-ats"),
    pytest.param(b"email=" + b"a" * 300 + b"%40example.org", FORM, 422, id="too-long"),
    pytest.param(f"email={KNOWN}%0d%0aBcc%3a+x%40evil.example".encode(), FORM, 422, id="crlf"),
    pytest.param(f"email={KNOWN}%0a".encode(), FORM, 422, id="trailing-lf"),
    pytest.param(f"email={KNOWN}%00".encode(), FORM, 422, id="nul"),
    pytest.param(f"email=%E2%80%AE{KNOWN}".encode(), FORM, 422, id="bidi-override"),
    pytest.param(b"email=" + b"a" * (10 * 1024 * 1024), FORM, 413, id="10-MB"),
    pytest.param(b"email=%ff%fe%40example.org", FORM, 400, id="bad-utf8-escaped"),
    pytest.param(b"email=caf\xc3\xa9%40example.org", FORM, 400, id="raw-non-ascii"),
    pytest.param(b"email=\xff%40example.org", FORM, 400, id="raw-bad-utf8"),
    pytest.param(f"email={KNOWN}&email={KNOWN}".encode(), FORM, 400, id="twice"),
    pytest.param(f"email={KNOWN}&lang=fr".encode(), FORM, 400, id="unknown-field"),
    pytest.param(f"email={KNOWN}&x".encode(), FORM, 400, id="no-equals"),
    pytest.param(b"&&&", FORM, 400, id="ampersands"),
    pytest.param(b'{"email": "camille@example.org"}', "application/json", 415, id="json"),
    pytest.param(f"email={KNOWN}".encode(), "text/plain", 415, id="text-plain"),
    pytest.param(f"email={KNOWN}".encode(), None, 415, id="no-content-type"),
    pytest.param(f"email={KNOWN}".encode(), f"{FORM}; charset=latin-1", 415, id="latin-1"),
    pytest.param(
        b'--x\r\nContent-Disposition: form-data; name="email"\r\n\r\ncamille@example.org\r\n--x--',
        "multipart/form-data; boundary=x",
        415,
        id="multipart",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "status"), GARBAGE)
async def test_garbage_is_refused_with_a_clear_4xx_and_sends_nothing(
    api, settings, body, content_type, status
):
    await booked(api)
    client = as_guest(api)
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/resend?lang=en", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    if status == 422:  # the form again, saying what is wrong, in the guest's language
        assert "Enter a valid email address" in response.text
        assert 'aria-invalid="true"' in response.text and ANSWER["en"] not in response.text
        assert "\r" not in response.text.split('value="')[1].split('"')[0]
    else:
        assert problem_of(response)["status"] == status
    assert await ledger(settings) == []


async def test_a_chunked_body_without_a_length_is_cut_off_past_the_limit(api, settings):
    """Over real sockets (the test client cannot stream a request body)."""
    await booked(api)

    async def chunks() -> AsyncIterator[bytes]:
        yield f"email={KNOWN}".encode()
        for _ in range(160):
            yield b"a" * 65536  # 10 MB in all

    port = free_port()
    with serve_in_thread(create_app(settings), port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as guest:
            response = await guest.post("/resend", content=chunks(), headers={"Content-Type": FORM})
    assert response.status_code == 413
    assert problem_of(response)["code"] == "body_too_large"
    assert await ledger(settings) == []


async def test_a_rejected_address_is_shown_again_escaped(client):
    response = await resend(client, '"><script>alert(1)</script>')
    assert response.status_code == 422
    assert "<script>" not in response.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text


@pytest.mark.parametrize("method", ["HEAD", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_not_allowed(api, settings, method):
    await booked(api)
    client = as_guest(api)
    response = await client.request(
        method, "/resend", content=f"email={KNOWN}", headers={"Content-Type": FORM}
    )
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert await ledger(settings) == []


@pytest.mark.parametrize(
    "query",
    ["?event=%00", "?event=" + "a" * 5000, "?event=no-such-event", "?event=a&event=b"],
)
async def test_a_post_for_a_bad_event_is_refused_and_sends_nothing(api, settings, query):
    await booked(api)
    client = as_guest(api)
    response = await resend(client, "camille@example.org", query)
    assert 400 <= response.status_code < 500
    assert await ledger(settings) == []


@pytest.mark.parametrize("lang", ["%ff", "x" * 5000, "fr%00", "de;q=1"])
async def test_a_garbage_language_falls_back_to_english(client, lang):
    response = await resend(client, "nobody@example.org", f"?lang={lang}")
    assert response.status_code == 200 and ANSWER["en"] in response.text


def test_the_form_parser_reads_one_address_and_normalises_its_domain():
    assert parse_form(FORM, b"email=Camille%40EXAMPLE.org") == "Camille@example.org"
    assert parse_form(f"{FORM}; charset=UTF-8", b"email=a%40b.example") == "a@b.example"
    assert parse_form(FORM.upper(), b"email=a%40b%C3%BCcher.example") == "a@xn--bcher-kva.example"
