"""Delivery reports reaching the ledger: `POST /api/v1/messages/reports` and `tessera mail report`.

Real campaigns are sent by the real outbox (to the maildir, or over SMTP to an aiosmtpd sink that
advertises DSN); the hand-written reports of `dsn/` are filled with the Message-IDs that were
really sent, and posted or piped in. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.campaigns.outbox import Outbox
from server.campaigns.transport import MaildirMailer, SmtpMailer
from server.config import Settings
from server.db import Database
from tests.conftest import problem_of
from tests.server.campaigns.smtp_sink import SmtpSink
from tests.server.campaigns.test_campaigns import draft, drain, venue
from tests.server.campaigns.test_reports import sample

REPORTS = "/api/v1/messages/reports"
RFC822 = {"Content-Type": "message/rfc822"}
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, worker="external")  # the test drains the outbox


@pytest.fixture
async def outbox(settings: Settings) -> Any:
    database = Database(settings.database_url)
    box = Outbox(database, settings, MaildirMailer(Path(settings.mail_dir)))
    yield box
    await database.dispose()


async def sent_campaign(api: AsyncTestClient[Litestar], outbox: Any, n: int = 2) -> dict[str, Any]:
    """An event with `n` bookings and a tickets campaign sent to them all."""
    v = await venue(api, n)
    campaign = await draft(api, v["event"]["id"])
    sent = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": n}
    )
    assert sent.status_code == 202, sent.text
    await drain(outbox)
    listed = (await api.get(f"/api/v1/campaigns/{campaign['id']}/messages")).json()["items"]
    assert {m["status"] for m in listed} == {"sent"}
    return {**v, "campaign": campaign, "messages": listed}


def report(name: str, message: dict[str, Any], *, by: str = "both") -> bytes:
    """Sample `name` about `message`: by its envelope id, its returned Message-ID, or both."""
    mid = message["message_id"]
    envid = mid if by in ("both", "envelope") else "<someone-else@relay.example>"
    returned = mid if by in ("both", "headers") else "<other@relay.example>"
    return sample(name, envid=envid, message_id=returned)


async def post(api: AsyncTestClient[Litestar], body: bytes, **headers: str) -> Any:
    return await api.post(REPORTS, content=body, headers=headers or RFC822)


async def counts(api: AsyncTestClient[Litestar], campaign: dict[str, Any]) -> dict[str, int]:
    return dict((await api.get(f"/api/v1/campaigns/{campaign['id']}")).json()["counts"])


async def test_a_delivered_report_moves_a_sent_message_to_delivered_once(api, outbox):
    c = await sent_campaign(api, outbox)
    first = c["messages"][0]
    answer = await post(api, report("postfix-delivered.eml", first))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["changed"], body["found_by"], body["message"]["status"]) == (
        True,
        "envelope_id",
        "delivered",
    )
    assert body["message"]["id"] == first["id"]
    assert body["message"]["last_reply"].startswith("smtp; 250 2.0.0 OK")
    assert [r["action"] for r in body["recipients"]] == ["delivered"]
    n = await counts(api, c["campaign"])
    assert (n["delivered"], n["sent"], n["remaining"]) == (1, 1, 0)
    again = await post(api, report("postfix-delivered.eml", first))
    assert again.status_code == 200
    assert (again.json()["changed"], again.json()["message"]) == (False, body["message"])
    listed = await api.get(f"/api/v1/campaigns/{c['campaign']['id']}/messages?status=delivered")
    assert [m["id"] for m in listed.json()["items"]] == [first["id"]]


async def test_a_failed_report_bounces_with_the_diagnostic_and_a_late_success_keeps_it(api, outbox):
    c = await sent_campaign(api, outbox)
    first = c["messages"][0]
    bounced = await post(api, report("postfix-failed.eml", first))
    assert bounced.status_code == 200, bounced.text
    message = bounced.json()["message"]
    assert message["status"] == "bounced"
    assert message["last_reply"].startswith("smtp; 550 5.1.1 <nobody@example.com>: Recipient")
    late = await post(api, report("postfix-delivered.eml", first))
    assert (late.json()["changed"], late.json()["message"]["status"]) == (False, "bounced")
    assert late.json()["message"]["last_reply"] == message["last_reply"]
    n = await counts(api, c["campaign"])
    assert (n["bounced"], n["delivered"], n["sent"]) == (1, 0, 1)
    # "failed or never sent" counts the bounce, and a delivered message is not failed.
    await post(api, report("postfix-delivered.eml", c["messages"][1]))
    again = await draft(api, c["event"]["id"], audience={"delivery": "not_received"})
    recap = await api.post(f"/api/v1/campaigns/{again['id']}/send", json={"expected_recipients": 9})
    assert problem_of(recap)["recipients"] == 1


async def test_a_bounce_after_delivered_is_taken(api, outbox):
    c = await sent_campaign(api, outbox, 1)
    [only] = c["messages"]
    await post(api, report("postfix-delivered.eml", only))
    answer = await post(api, report("exim-failed.eml", only, by="headers"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["found_by"], answer.json()["message"]["status"]) == (
        "message_id",
        "bounced",
    )
    assert answer.json()["message"]["last_reply"] == (
        "5.2.2 X-Exim; mailbox is full: retry timeout exceeded"
    )


async def test_a_delay_changes_no_status_but_shows_why(api, outbox):
    c = await sent_campaign(api, outbox, 1)
    [only] = c["messages"]
    answer = await post(api, report("postfix-delayed.eml", only))
    assert answer.status_code == 200, answer.text
    message = answer.json()["message"]
    assert message["status"] == "sent"
    assert "Connection timed out" in message["last_reply"]
    assert (await counts(api, c["campaign"]))["sent"] == 1


async def test_relayed_and_expanded_count_as_delivered(api, outbox):
    c = await sent_campaign(api, outbox, 2)
    for name, message in zip(("postfix-relayed.eml", "expanded.eml"), c["messages"], strict=True):
        answer = await post(api, report(name, message, by="envelope"))
        assert answer.json()["message"]["status"] == "delivered", answer.text
    assert (await counts(api, c["campaign"]))["delivered"] == 2


async def test_gmail_style_report_is_found_by_the_returned_headers(api, outbox):
    c = await sent_campaign(api, outbox, 1)
    answer = await post(api, report("gmail-failed.eml", c["messages"][0], by="headers"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"]["status"] == "bounced"


async def test_a_bare_status_part_or_a_multipart_body_is_taken_by_its_content_type(api, outbox):
    c = await sent_campaign(api, outbox, 2)
    first, second = c["messages"]
    fields = (
        f"Reporting-MTA: dns; mx.example\r\nOriginal-Envelope-Id: {first['message_id']}\r\n\r\n"
        "Final-Recipient: rfc822; guest0@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
    ).encode()
    bare = await post(api, fields, **{"Content-Type": "message/delivery-status"})
    assert bare.json()["message"]["status"] == "delivered", bare.text
    whole = report("postfix-failed.eml", second)
    _, _, body = whole.partition(b"\r\n\r\n")
    boundary = "7Hq3Np2R8Vz1xQ.1718381140/smtp.relay.example.net"
    ct = f'multipart/report; report-type=delivery-status; boundary="{boundary}"'
    multipart = await post(api, body, **{"Content-Type": ct})
    assert multipart.json()["message"]["status"] == "bounced", multipart.text


async def test_garbage_is_a_problem_never_a_5xx(api, outbox):
    c = await sent_campaign(api, outbox, 1)
    for body in (b"", b"hello", b"\x00\xff" * 5000, b"Subject: hi\r\n\r\nJust mail\r\n"):
        answer = await post(api, body)
        assert answer.status_code == 422, answer.text
        assert problem_of(answer)["code"] == "not_a_report"
        assert problem_of(answer)["errors"][0]["field"] == "report"
    huge = await post(api, b"a" * 10_000_000)
    assert huge.status_code == 413 and problem_of(huge)
    wrong = await api.post(REPORTS, json={"message_id": c["messages"][0]["message_id"]})
    assert wrong.status_code == 415 and problem_of(wrong)
    control = await post(api, b"x", **{"Content-Type": 'multipart/report; boundary="a\x7fb"'})
    assert control.status_code in (400, 422) and problem_of(control)
    assert (await counts(api, c["campaign"]))["sent"] == 1  # nothing changed


async def test_a_report_naming_no_message_of_ours_is_422_and_changes_nothing(api, outbox):
    c = await sent_campaign(api, outbox, 1)
    stranger = {"message_id": "<5f0c2b9e4a7d@another-platform.example>"}
    answer = await post(api, report("postfix-failed.eml", stranger))
    assert answer.status_code == 422
    problem = problem_of(answer)
    assert problem["code"] == "unknown_message"
    assert "<5f0c2b9e4a7d@another-platform.example>" in problem["errors"][0]["message"]
    assert (await counts(api, c["campaign"]))["bounced"] == 0


async def test_a_report_on_a_message_not_sent_yet_is_409_to_try_later(api, outbox):
    v = await venue(api, 1)
    campaign = await draft(api, v["event"]["id"])
    await api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 1})
    [queued] = (await api.get(f"/api/v1/campaigns/{campaign['id']}/messages")).json()["items"]
    answer = await post(api, report("postfix-delivered.eml", queued))
    assert answer.status_code == 409
    assert problem_of(answer)["id"] == queued["id"]


async def test_reports_need_an_organiser_token_that_may_write(client, read_only_token, api, outbox):
    c = await sent_campaign(api, outbox, 1)
    body = report("postfix-failed.eml", c["messages"][0])
    client.headers["Authorization"] = f"Bearer {read_only_token}"
    assert (await post(client, body)).status_code == 403
    del client.headers["Authorization"]
    assert (await post(client, body)).status_code == 401


async def test_the_json_bounce_report_still_works_and_bounces_a_delivered_message(api, outbox):
    c = await sent_campaign(api, outbox, 1)
    [only] = c["messages"]
    await post(api, report("postfix-delivered.eml", only))
    answer = await api.post(
        "/api/v1/messages/bounces", json={"message_id": only["message_id"], "reply": "550 gone"}
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["last_reply"]) == ("bounced", "550 gone")


async def test_mail_over_smtp_carries_the_message_id_as_envid_and_its_report_matches(api, settings):
    settings = msgspec.structs.replace(settings, bounce_address="bounces@tickets.test")
    v = await venue(api, 1)
    campaign = await draft(api, v["event"]["id"])
    await api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 1})
    with SmtpSink(dsn=True) as sink:
        database = Database(settings.database_url)
        box = Outbox(database, settings, SmtpMailer(sink.url))
        await drain(box)
        await box.mailer.close()
        await database.dispose()
    [received] = sink.messages
    assert received.sender == "bounces@tickets.test"  # where the reports go
    assert received.message()["From"].addresses[0].addr_spec == "no-reply@tickets.test"
    message_id = str(received.message()["Message-ID"])
    assert f"ENVID={message_id}" in received.mail_params
    # What the relay would send back: the ENVID as Original-Envelope-Id, no returned headers.
    fields = (
        f"Reporting-MTA: dns; relay.example\r\nOriginal-Envelope-Id: {message_id}\r\n\r\n"
        "Final-Recipient: rfc822; guest0@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
    ).encode()
    answer = await post(api, fields, **{"Content-Type": "message/delivery-status"})
    assert answer.json()["message"]["status"] == "delivered", answer.text


# --- tessera mail report FILE|- ---


def tessera(
    settings: Settings, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")},
        "TESSERA_DATABASE_URL": settings.database_url,
        "TESSERA_MAIL_DIR": settings.mail_dir,
        "TESSERA_KEYS_DIR": settings.keys_dir,
    }
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


async def test_the_cli_reads_a_report_from_stdin_or_a_file_with_mta_exit_codes(
    api, outbox, settings, tmp_path
):
    c = await sent_campaign(api, outbox, 2)
    first, second = c["messages"]
    piped = await asyncio.to_thread(
        tessera, settings, "mail", "report", "-", stdin=report("postfix-failed.eml", first)
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.decode().startswith(f"{first['id']} bounced (was sent)")
    path = tmp_path / "report.eml"
    path.write_bytes(report("postfix-delivered.eml", second))
    filed = await asyncio.to_thread(tessera, settings, "mail", "report", str(path))
    assert filed.returncode == 0, filed.stderr
    assert filed.stdout.decode().startswith(f"{second['id']} delivered (was sent)")
    repeat = await asyncio.to_thread(tessera, settings, "mail", "report", str(path))
    assert (repeat.returncode, repeat.stdout.decode()) == (
        0,
        f"{second['id']} delivered (unchanged)\n",
    )
    n = await counts(api, c["campaign"])
    assert (n["bounced"], n["delivered"]) == (1, 1)


async def test_the_cli_refuses_garbage_and_strangers_with_one_line_and_sysexits(
    api, outbox, settings, tmp_path
):
    await sent_campaign(api, outbox, 1)
    garbage = await asyncio.to_thread(tessera, settings, "mail", "report", "-", stdin=b"\xff" * 50)
    assert garbage.returncode == 65  # EX_DATAERR: the MTA bounces it, and a bounce to <> is dropped
    assert (
        garbage.stderr.decode().count("\n") == 1
        and "not a delivery report" in garbage.stderr.decode()
    )
    stranger = sample(
        "postfix-failed.eml", envid="<x@elsewhere.example>", message_id="<y@z.example>"
    )
    unknown = await asyncio.to_thread(tessera, settings, "mail", "report", "-", stdin=stranger)
    assert unknown.returncode == 67, unknown.stderr  # EX_NOUSER
    missing = await asyncio.to_thread(tessera, settings, "mail", "report", str(tmp_path / "none"))
    assert missing.returncode == 66 and missing.stderr.decode().startswith(
        "tessera: "
    )  # EX_NOINPUT
    big = tmp_path / "big.eml"
    big.write_bytes(b"a" * 10_000_000)
    too_big = await asyncio.to_thread(tessera, settings, "mail", "report", str(big))
    assert too_big.returncode == 65 and "too large" in too_big.stderr.decode()
