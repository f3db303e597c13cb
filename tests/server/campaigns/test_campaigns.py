"""Campaigns through the organiser API, sent by the real outbox to a real maildir.

The app under test runs with `worker=external`, so the test decides when the outbox works
(`Outbox.run_once`), on the test's own database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.campaigns.outbox import Outbox
from server.campaigns.transport import MaildirMailer
from server.config import Settings
from server.db import Database
from tests.conftest import problem_of
from tests.factories import create_booking, create_event, create_ticket_type


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, worker="external")


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


async def drain(outbox: Outbox) -> None:
    while await outbox.run_once():
        pass


async def venue(api: AsyncTestClient[Litestar], bookings: int = 3) -> dict[str, Any]:
    event = await create_event(api, languages=["fr", "en"])
    ticket_type = await create_ticket_type(api, event["id"], name="Standard")
    booked = [
        await create_booking(
            api,
            event["id"],
            ticket_type["id"],
            2,
            confirm=True,
            buyer={"name": f"Guest {n}", "email": f"guest{n}@example.org", "language": "en"},
        )
        for n in range(bookings)
    ]
    return {"event": event, "type": ticket_type, "bookings": booked}


async def draft(api: AsyncTestClient[Litestar], event_id: str, **body: Any) -> dict[str, Any]:
    response = await api.post(
        f"/api/v1/events/{event_id}/campaigns", json={"name": "E-tickets", **body}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_tickets_campaign_goes_to_every_confirmed_booking_once(api, settings, outbox):
    v = await venue(api, 3)
    campaign = await draft(api, v["event"]["id"])
    assert campaign["status"] == "draft" and campaign["problems"] == []
    assert set(campaign["content"]) == {"fr", "en"}  # the built-in e-ticket mail

    preview = await api.post(f"/api/v1/campaigns/{campaign['id']}/preview", json={})
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["to"] == "guest0@example.org" and "Jazz at the Pier" in shown["subject"]
    assert v["bookings"][0]["tickets"][0]["link"] in shown["text"]

    wrong = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 2}
    )
    assert wrong.status_code == 409
    assert problem_of(wrong)["recipients"] == 3
    sent = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 3}
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["status"] == "sending" and sent.json()["counts"]["queued"] == 3
    again = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 3}
    )
    assert again.status_code == 409

    await drain(outbox)
    received = mails(settings)
    assert sorted(str(m["To"]) for m in received) == [
        f"Guest {n} <guest{n}@example.org>" for n in range(3)
    ]
    assert len({m["Message-ID"] for m in received}) == 3
    body = received[0].get_body(("plain",)).get_content()
    codes = [t["code"] for b in v["bookings"] for t in b["tickets"]]
    assert sum(code in body for code in codes) == 2  # the recipient's own two tickets
    state = (await api.get(f"/api/v1/campaigns/{campaign['id']}")).json()
    assert state["status"] == "sent"
    assert state["counts"] | {} == {**state["counts"], "sent": 3, "remaining": 0, "failed": 0}
    messages = (await api.get(f"/api/v1/campaigns/{campaign['id']}/messages")).json()
    assert messages["total"] == 3 and {m["status"] for m in messages["items"]} == {"sent"}


async def test_a_seat_edited_after_the_send_is_what_the_guest_reads(api, settings, outbox):
    v = await venue(api, 1)
    campaign = await draft(api, v["event"]["id"])
    await api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 1})
    ticket = v["bookings"][0]["tickets"][0]
    patched = await api.patch(f"/api/v1/tickets/{ticket['id']}", json={"seat": "Z99"})
    assert patched.status_code == 200, patched.text
    await drain(outbox)
    [mail] = mails(settings)
    assert "Z99" in mail.get_body(("plain",)).get_content()


async def test_a_test_send_goes_anywhere_marked_and_uncounted(api, settings, outbox):
    v = await venue(api, 2)
    campaign = await draft(api, v["event"]["id"])
    response = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/test", json={"to": "organiser@example.net"}
    )
    assert response.status_code == 202, response.text
    await drain(outbox)
    [mail] = mails(settings)
    assert str(mail["To"]) == "organiser@example.net"  # not under the sample guest's name
    assert str(mail["Subject"]).startswith("[TEST] ")
    state = (await api.get(f"/api/v1/campaigns/{campaign['id']}")).json()
    assert state["status"] == "draft" and state["counts"]["total"] == 0


async def test_resend_to_those_who_did_not_get_it_sends_to_exactly_those(api, settings, outbox):
    v = await venue(api, 3)
    first = await draft(api, v["event"]["id"])
    await api.post(f"/api/v1/campaigns/{first['id']}/send", json={"expected_recipients": 3})
    await drain(outbox)
    # One guest's mail bounced; a fourth booking came in later and never got any.
    database = Database(settings.database_url)
    async with database.transaction() as session:
        from sqlalchemy import update

        from server.campaigns.models import Message

        await session.execute(
            update(Message)
            .where(Message.booking_id == v["bookings"][1]["id"])
            .values(status="bounced")
        )
    await database.dispose()
    late = await create_booking(
        api,
        v["event"]["id"],
        v["type"]["id"],
        1,
        confirm=True,
        buyer={"name": "Late", "email": "late@example.org"},
    )
    second = await draft(api, v["event"]["id"], audience={"delivery": "not_received"})
    preview = await api.post(
        f"/api/v1/campaigns/{second['id']}/send", json={"expected_recipients": 0}
    )
    assert problem_of(preview)["recipients"] == 2
    await api.post(f"/api/v1/campaigns/{second['id']}/send", json={"expected_recipients": 2})
    await drain(outbox)
    everyone = sorted(str(m["To"]) for m in mails(settings))
    assert everyone == sorted(
        [f"Guest {n} <guest{n}@example.org>" for n in range(3)]
        + ["Guest 1 <guest1@example.org>", "Late <late@example.org>"]
    )
    assert late["status"] == "confirmed"


async def test_resend_one_booking_or_ticket_to_a_corrected_address(api, settings, outbox):
    v = await venue(api, 1)
    booking = v["bookings"][0]
    response = await api.post(
        f"/api/v1/bookings/{booking['id']}/resend", json={"to": "fixed@example.org"}
    )
    assert response.status_code == 202, response.text
    ticket = booking["tickets"][1]
    response = await api.post(f"/api/v1/tickets/{ticket['id']}/resend", json={})
    assert response.status_code == 202, response.text
    await drain(outbox)
    received = {str(m["To"]): m.get_body(("plain",)).get_content() for m in mails(settings)}
    assert len(received) == 2
    fixed = next(body for to, body in received.items() if "fixed@example.org" in to)
    assert all(t["code"] in fixed for t in booking["tickets"])
    one = received["Guest 0 <guest0@example.org>"]
    assert ticket["code"] in one and booking["tickets"][0]["code"] not in one


async def test_a_schedule_fires_on_time_or_is_marked_missed(api, settings, outbox):
    v = await venue(api, 1)
    on_time = await draft(api, v["event"]["id"], name="On time")
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    response = await api.post(
        f"/api/v1/campaigns/{on_time['id']}/send",
        json={"expected_recipients": 1, "send_at": later},
    )
    assert response.json()["status"] == "scheduled"
    await drain(outbox)
    assert mails(settings) == []
    outbox.clock = lambda: datetime.now(UTC) + timedelta(minutes=6)
    await drain(outbox)
    assert len(mails(settings)) == 1
    missed = await draft(api, v["event"]["id"], name="Missed")
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    await api.post(
        f"/api/v1/campaigns/{missed['id']}/send",
        json={"expected_recipients": 1, "send_at": soon, "grace_seconds": 60},
    )
    outbox.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    await drain(outbox)
    assert (await api.get(f"/api/v1/campaigns/{missed['id']}")).json()["status"] == "missed"
    assert len(mails(settings)) == 1


async def test_template_problems_are_listed_with_their_line_and_block_sending(api):
    v = await venue(api, 1)
    body = {"content": {"en": {"subject": "Hi {{ guest.name }", "body": "Line\n{{ guest.nmae }}"}}}
    campaign = await draft(api, v["event"]["id"], kind="message", **body)
    fields = {(p["field"], p["line"]) for p in campaign["problems"]}
    assert ("subject.en", 1) in fields and ("body.en", 2) in fields
    response = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 1}
    )
    assert response.status_code == 422


async def test_opens_clicks_and_unsubscribes_change_no_ticket(api, client, settings, outbox):
    v = await venue(api, 1)
    words = {"subject": "News", "body": "Doors open at 19:00: https://example.org/programme"}
    campaign = await draft(api, v["event"]["id"], kind="message", content={"en": words})
    await api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 1})
    await drain(outbox)
    [mail] = mails(settings)
    html = mail.get_body(("html",)).get_content()
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = str(mail["List-Unsubscribe"]).split("/m/")[1].split("/")[0]
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
    click = await client.get(f"/m/{token}/c/0", headers=browser, follow_redirects=False)
    assert click.status_code == 302 and click.headers["location"] == "https://example.org/programme"
    assert f"/m/{token}/c/0" in html
    assert (await client.get(f"/m/{token}/c/9", follow_redirects=False)).status_code == 404
    assert (await client.get("/m/not-a-token-at-all/o.gif")).status_code == 404
    pixel = await client.get(f"/m/{token}/o.gif", headers=browser)
    assert pixel.headers["content-type"] == "image/gif"
    state = (await api.get(f"/api/v1/campaigns/{campaign['id']}")).json()["counts"]
    assert (state["opened"], state["clicked"], state["opened_and_clicked"]) == (1, 1, 1)
    # An image proxy fetching the pixel of another guest's mail is flagged, not counted.
    page = await client.get(f"/m/{token}/unsubscribe")
    assert page.status_code == 200 and "<form" in page.text
    done = await client.post(
        f"/m/{token}/unsubscribe", content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert done.status_code == 200
    again = await draft(api, v["event"]["id"], kind="message", content={"en": words})
    recap = await api.post(f"/api/v1/campaigns/{again['id']}/send", json={"expected_recipients": 1})
    assert problem_of(recap)["recipients"] == 0  # unsubscribed from news
    tickets = await draft(api, v["event"]["id"])
    recap = await api.post(
        f"/api/v1/campaigns/{tickets['id']}/send", json={"expected_recipients": 1}
    )
    assert recap.status_code == 202  # ticket mail still goes
    booking = (await api.get(f"/api/v1/bookings/{v['bookings'][0]['id']}")).json()
    assert [t["status"] for t in booking["tickets"]] == ["valid", "valid"]


@pytest.mark.parametrize(
    "body",
    [
        {"expected_recipients": -1},
        {"expected_recipients": 2**70},
        {"expected_recipients": "3"},
        {"expected_recipients": 1, "send_at": "2031-06-14T20:00:00"},
        {"expected_recipients": 1, "send_at": "9999-12-31T23:59:59-14:00"},
        {"expected_recipients": 1, "grace_seconds": 10**12},
        {"expected_recipients": 1, "extra": True},
    ],
)
async def test_bad_send_bodies_are_refused_with_the_field(api, body):
    v = await venue(api, 1)
    campaign = await draft(api, v["event"]["id"])
    response = await api.post(f"/api/v1/campaigns/{campaign['id']}/send", json=body)
    assert response.status_code in (400, 422), response.text
    assert (await api.get(f"/api/v1/campaigns/{campaign['id']}")).json()["status"] == "draft"


async def test_bad_campaign_bodies_are_refused(api):
    v = await venue(api, 1)
    path = f"/api/v1/events/{v['event']['id']}/campaigns"
    for body in [
        {"name": ""},
        {"name": "x", "kind": "spam"},
        {"name": "x", "content": {"xx": {"subject": "s", "body": "b"}}},
        {"name": "x", "content": {"en": {"subject": "s" * 301, "body": "b"}}},
        {"name": "x", "content": {"en": {"subject": "s", "body": "b" * 70000}}},
        {"name": "x", "kind": "message"},
        {"name": "x", "audience": {"delivery": "maybe"}},
    ]:
        response = await api.post(path, json=body)
        assert response.status_code == 422, (body, response.text)
    test = await draft(api, v["event"]["id"])
    for to in ["", "no-at-sign", "a@b.c\r\nBcc: x@y.z", "x" * 400 + "@example.org"]:
        response = await api.post(f"/api/v1/campaigns/{test['id']}/test", json={"to": to})
        assert response.status_code == 422, (to, response.text)


async def test_an_open_by_an_image_proxy_is_flagged_and_not_counted(api, client, settings, outbox):
    v = await venue(api, 2)
    words = {"subject": "News", "body": "See you at the doors."}
    campaign = await draft(api, v["event"]["id"], kind="message", content={"en": words})
    await api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 2})
    await drain(outbox)
    tokens = [str(m["List-Unsubscribe"]).split("/m/")[1].split("/")[0] for m in mails(settings)]
    proxy = {"User-Agent": "Mozilla/5.0 (Windows NT 5.1) (via ggpht.com GoogleImageProxy)"}
    assert (await client.get(f"/m/{tokens[0]}/o.gif", headers=proxy)).status_code == 200
    counts = (await api.get(f"/api/v1/campaigns/{campaign['id']}")).json()["counts"]
    assert (counts["opened"], counts["opened_by_machine"]) == (0, 1)
    messages = (await api.get(f"/api/v1/campaigns/{campaign['id']}/messages")).json()["items"]
    assert sorted(m["opened_by_machine"] for m in messages) == [False, True]


async def test_a_booking_mailed_automatically_counts_as_sent_for_never_sent(api, settings, outbox):
    event = await create_event(api, auto_send_tickets=True)
    ticket_type = await create_ticket_type(api, event["id"])
    await create_booking(api, event["id"], ticket_type["id"], 1, confirm=True)
    await drain(outbox)
    assert len(mails(settings)) == 1  # the automatic e-ticket mail
    campaign = await draft(api, event["id"], audience={"delivery": "never_sent"})
    recap = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 1}
    )
    assert problem_of(recap)["recipients"] == 0


async def test_a_bounce_reported_by_message_id_marks_the_message_and_feeds_failed(
    api, settings, outbox
):
    v = await venue(api, 2)
    campaign = await draft(api, v["event"]["id"])
    await api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 2})
    await drain(outbox)
    bounced = next(m for m in mails(settings) if "guest1@" in str(m["To"]))
    reply = "550 5.1.1 <guest1@example.org>: mailbox unavailable"
    response = await api.post(
        "/api/v1/messages/bounces", json={"message_id": str(bounced["Message-ID"]), "reply": reply}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["last_reply"]) == ("bounced", reply)
    counts = (await api.get(f"/api/v1/campaigns/{campaign['id']}")).json()["counts"]
    assert (counts["sent"], counts["bounced"]) == (1, 1)
    again = await draft(api, v["event"]["id"], audience={"delivery": "failed"})
    recap = await api.post(f"/api/v1/campaigns/{again['id']}/send", json={"expected_recipients": 9})
    assert problem_of(recap)["recipients"] == 1
    unknown = await api.post("/api/v1/messages/bounces", json={"message_id": "<nope@x>"})
    assert unknown.status_code == 404
    for body in [{}, {"message_id": ""}, {"message_id": "x" * 300}, {"message_id": 5}]:
        assert (await api.post("/api/v1/messages/bounces", json=body)).status_code == 422


@pytest.fixture
def mail_from_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, mail_from="tickets@mail.example.net")


async def test_automatic_ticket_mail_takes_its_message_id_from_the_mail_settings(
    mail_from_settings, organiser_token
):
    app = create_app(mail_from_settings)
    async with AsyncTestClient(app, base_url="https://tickets.test") as client:
        client.headers["Authorization"] = f"Bearer {organiser_token}"
        event = await create_event(client, auto_send_tickets=True)
        ticket_type = await create_ticket_type(client, event["id"])
        booking = await create_booking(client, event["id"], ticket_type["id"], 1, confirm=True)
        messages = (await client.get(f"/api/v1/bookings/{booking['id']}/messages")).json()
    [message] = messages["items"]
    assert message["source"] == "auto"
    assert message["message_id"].endswith("@mail.example.net>")
