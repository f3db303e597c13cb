"""The console's campaign pages on the real app (SQLite: the page logic does not depend on the
database): drafts through the API's structs and service, template problems beside their
fields, preview, test send, the recap's count guarding the send, progress, the per-message
table, resend to those who did not get it, and garbage answered with a page, never a 5xx."""

from __future__ import annotations

import asyncio
import email
import re
from email import policy
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.factories import create_booking, create_event, create_ticket_type
from tests.server.branding.test_images import picture
from tests.server.campaigns.smtp_sink import SmtpSink
from tests.server.console.helpers import as_new_browser, csrf_of, make_user


@pytest.fixture
def backend() -> str:
    return "sqlite"


class Api:
    """The organiser API beside the console's cookies, for setting things up."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    async def post(self, url: str, **kw: Any) -> Any:
        return await self.client.post(url, headers=self.headers, **kw)

    async def get(self, url: str, **kw: Any) -> Any:
        return await self.client.get(url, headers=self.headers, **kw)


REFUSED = "guest0@example.org"


@pytest.fixture
def sink():
    with SmtpSink(rcpt_replies={REFUSED: "550 5.1.1 no such user"}) as smtp_sink:
        yield smtp_sink


@pytest.fixture
def settings(settings, request):
    """The app's mail: the maildir by its embedded outbox; with `settings` parametrised
    "idle" no worker runs (a send stays sending), "smtp" the outbox speaks to `sink`."""
    mode = getattr(request, "param", "maildir")
    if mode == "idle":
        return msgspec.structs.replace(settings, worker="external")
    if mode == "smtp":
        return msgspec.structs.replace(settings, smtp_url=request.getfixturevalue("sink").url)
    return settings


@pytest.fixture
async def csrf(client, settings):
    """Signed in by password: the sign-in mail would go to the SMTP sink in "smtp" tests."""
    await make_user(settings, password=PASSWORD)
    page = await client.get("/console/sign-in")
    form = {"email": "ada@example.org", "password": PASSWORD, "csrf": csrf_of(page.text)}
    response = await client.post("/console/sign-in/password", data=form)
    assert response.status_code == 303, response.text
    return csrf_of((await client.get("/console/events")).text)


PASSWORD = "correct horse battery staple"


@pytest.fixture
async def venue(client, organiser_token, csrf) -> dict[str, Any]:
    api = Api(client, organiser_token)
    event = await create_event(api, languages=["fr", "en"])
    ticket_type = await create_ticket_type(api, event["id"], name="Standard")
    booked = [
        await create_booking(
            api,
            event["id"],
            ticket_type["id"],
            1,
            confirm=True,
            buyer={"name": f"Guest {n}", "email": f"guest{n}@example.org", "language": "en"},
        )
        for n in range(2)
    ]
    base = f"/console/events/{event['id']}/campaigns"
    return {"api": api, "event": event, "type": ticket_type, "bookings": booked, "base": base}


FORM = {
    "name": "E-tickets",
    "kind": "tickets",
    "delivery": "all",
    "checked_in": "",
    "contact_list_id": "",
    "subject_fr": "Vos billets pour {{ event.name }}",
    "body_fr": "Bonjour {{ guest.first_name }},\n\n{{ ticket_buttons }}",
    "subject_en": "Your tickets for {{ event.name }}",
    "body_en": "Hello {{ guest.first_name }},\n\n{{ ticket_buttons }}",
}


async def _draft(client, venue, csrf, **overrides) -> str:
    response = await client.post(venue["base"], data=FORM | overrides | {"csrf": csrf})
    assert response.status_code == 303, response.text
    return response.headers["location"].split("?")[0].rsplit("/", 1)[1]


def _mails(settings) -> list[email.message.EmailMessage]:
    root = Path(settings.mail_dir) / "new"
    if not root.exists():
        return []
    found = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(root.iterdir())
    ]
    return [m for m in found if "/console/sign-in" not in m.get_body(("plain",)).get_content()]


async def _wait(check, seconds: float = 10.0):
    """Poll `check` until it is truthy (the embedded outbox sends within about a second)."""
    for _ in range(int(seconds / 0.05)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def _count(client, base: str, cid: str) -> int:
    page = await client.get(f"{base}/{cid}/recap")
    return int(re.search(r'name="expected_recipients" value="(\d+)"', page.text).group(1))


async def test_a_draft_is_created_edited_and_listed(client, venue, csrf):
    new = await client.get(f"{venue['base']}/new")
    assert (
        new.status_code == 200
        and 'name="subject_fr"' in new.text
        and "{{ ticket_buttons }}" in new.text
    )
    cid = await _draft(client, venue, csrf)
    editor = await client.get(f"{venue['base']}/{cid}/edit")
    assert "Vos billets pour {{ event.name }}" in editor.text
    saved = await client.post(
        f"{venue['base']}/{cid}/edit",
        data=FORM | {"name": "Billets v2", "per_ticket": "1", "attach_ics": "1", "csrf": csrf},
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=1")
    state = (await venue["api"].get(f"/api/v1/campaigns/{cid}")).json()
    assert state["name"] == "Billets v2" and state["per_ticket"] and state["attach_ics"]
    assert state["audience"]["delivery"] == "all"
    listing = await client.get(venue["base"])
    assert "Billets v2" in listing.text and "draft" in listing.text
    assert len(listing.content) < 100_000


async def test_template_problems_come_back_beside_their_field_with_the_line(client, venue, csrf):
    body = "Hello\n\n{{ guest.nmae }}"
    response = await client.post(venue["base"], data=FORM | {"body_en": body, "csrf": csrf})
    assert response.status_code == 422
    error = re.search(r'id="e-body_en">([^<]*)<', response.text).group(1)
    assert "line 3" in error and "guest.nmae" in error
    assert 'aria-invalid="true"' in response.text
    cid = re.search(r"/campaigns/([A-Za-z0-9]+)/edit", response.text).group(1)  # saved anyway
    broken = FORM | {"subject_fr": "{% if %}", "body_fr": "{{ ''.__class__ }}", "csrf": csrf}
    response = await client.post(f"{venue['base']}/{cid}/edit", data=broken)
    assert response.status_code == 422
    assert 'id="e-subject_fr"' in response.text and 'id="e-body_fr"' in response.text
    recap = await client.get(f"{venue['base']}/{cid}/recap")
    assert "/send" not in recap.text  # no send form while problems remain


async def test_the_preview_frame_shows_the_brand_as_the_mail_will(client, venue, csrf, settings):
    """Colour, banner and logo in the frame, by the absolute URLs the mail carries, which the
    frame's CSP lets load (the public base URL's origin)."""
    event_id = venue["event"]["id"]
    api = venue["api"]
    await api.client.patch(
        f"/api/v1/events/{event_id}", json={"branding": {"colour": "#7A1F5C"}}, headers=api.headers
    )
    for kind in ("logo", "banner"):
        put = await api.client.put(
            f"/api/v1/events/{event_id}/branding/{kind}", content=picture(), headers=api.headers
        )
        assert put.status_code == 200
    images = (await api.get(f"/api/v1/events/{event_id}")).json()["branding"]
    cid = await _draft(client, venue, csrf)
    mail = await client.get(f"{venue['base']}/{cid}/preview/mail", params={"language": "fr"})
    assert mail.status_code == 200
    base = settings.public_base_url
    for kind in ("logo", "banner"):
        assert f'<img src="{base}{images[kind]}"' in mail.text
    assert "border-top:6px solid #7A1F5C" in mail.text
    img_src = re.search(r"img-src ([^;]*)", mail.headers["content-security-policy"]).group(1)
    assert base in img_src.split()


async def test_preview_shows_the_mail_in_a_locked_frame_and_its_text(client, venue, csrf):
    cid = await _draft(client, venue, csrf)
    booking = venue["bookings"][1]
    page = await client.get(
        f"{venue['base']}/{cid}/preview", params={"recipient": booking["id"], "language": "fr"}
    )
    assert page.status_code == 200
    assert "Vos billets pour Jazz at the Pier" in page.text
    assert booking["tickets"][0]["link"] in page.text  # the plain-text part
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    frame = re.search(r'<iframe class="cmp-mail" src="([^"]+)" sandbox=""', page.text).group(1)
    mail = await client.get(frame.replace("&amp;", "&"))
    assert mail.status_code == 200 and "<html" in mail.text.lower()
    assert mail.headers["x-frame-options"] == "SAMEORIGIN"
    assert "sandbox" in mail.headers["content-security-policy"]
    assert "script-src" not in mail.headers["content-security-policy"]
    bad = await client.get(f"{venue['base']}/{cid}/preview", params={"recipient": "x" * 500})
    assert bad.status_code == 400


async def test_a_test_send_arrives_marked_and_counts_nowhere(client, venue, csrf, settings):
    cid = await _draft(client, venue, csrf)
    response = await client.post(
        f"{venue['base']}/{cid}/test", data={"to": "me@example.net", "csrf": csrf}
    )
    assert response.status_code == 303, response.text
    [mail] = await _wait(lambda: _async(_mails(settings)))
    assert str(mail["To"]) == "me@example.net" and str(mail["Subject"]).startswith("[TEST] ")
    state = (await venue["api"].get(f"/api/v1/campaigns/{cid}")).json()
    assert state["status"] == "draft" and state["counts"]["total"] == 0
    bad = await client.post(
        f"{venue['base']}/{cid}/test", data={"to": "not an address", "csrf": csrf}
    )
    assert bad.status_code == 422 and 'id="e-to"' in bad.text


async def _async(value):
    return value


async def test_a_booking_added_after_the_recap_makes_the_send_ask_again(
    client, venue, csrf, settings
):
    cid = await _draft(client, venue, csrf)
    assert await _count(client, venue["base"], cid) == 2
    await create_booking(
        venue["api"],
        venue["event"]["id"],
        venue["type"]["id"],
        1,
        confirm=True,
        buyer={"name": "Late", "email": "late@example.org"},
    )
    refused = await client.post(
        f"{venue['base']}/{cid}/send",
        data={"expected_recipients": "2", "when": "now", "csrf": csrf},
    )
    assert refused.status_code == 409
    assert "3 recipients" in refused.text and 'name="expected_recipients" value="3"' in refused.text
    sent = await client.post(
        f"{venue['base']}/{cid}/send",
        data={"expected_recipients": "3", "when": "now", "csrf": csrf},
    )
    assert sent.status_code == 303
    received = await _wait(lambda: _async(len(_mails(settings)) == 3 and _mails(settings)))
    assert sorted(str(m["To"]).rsplit("<")[-1] for m in received) == [
        "guest0@example.org>",
        "guest1@example.org>",
        "late@example.org>",
    ]

    async def finished():
        page = await client.get(f"{venue['base']}/{cid}")
        return "refresh" not in page.headers and page

    page = await _wait(finished)
    assert 'max="3" value="3"' in page.text and "late@example.org" in page.text
    assert page.text.count("cmp-ms-sent") == 3


async def test_schedule_in_the_events_zone_then_cancel(client, venue, csrf):
    cid = await _draft(client, venue, csrf)
    url = f"{venue['base']}/{cid}/send"
    base = {"expected_recipients": "2", "when": "schedule", "csrf": csrf}
    for bad in ("9999-12-31T23:59", "0001-01-01T00:00", "2020-01-01T10:00", "not a time", ""):
        response = await client.post(url, data=base | {"send_at": bad})
        assert response.status_code == 422, bad
        assert 'id="e-send_at"' in response.text
    for hours in ("9" * 40, "99999", "-3", "876000"):
        huge = await client.post(url, data=base | {"remind_hours": hours})
        assert huge.status_code == 422 and 'id="e-remind_hours"' in huge.text, hours
    past = await client.post(url, data=base | {"remind_hours": "8000"})  # before today
    assert past.status_code == 422 and 'id="e-remind_hours"' in past.text
    response = await client.post(url, data=base | {"send_at": "2027-03-10T09:30"})
    assert response.status_code == 303
    state = (await venue["api"].get(f"/api/v1/campaigns/{cid}")).json()
    assert state["status"] == "scheduled" and state["send_at"].startswith("2027-03-10T08:30:00")
    listing = await client.get(venue["base"])
    assert "2027-03-10 09:30" in listing.text  # shown at the venue's wall clock
    cancelled = await client.post(f"{venue['base']}/{cid}/cancel", data={"csrf": csrf})
    assert cancelled.status_code == 303
    assert (await venue["api"].get(f"/api/v1/campaigns/{cid}")).json()["status"] == "cancelled"
    again = await client.post(f"{venue['base']}/{cid}/cancel", data={"csrf": csrf})
    assert again.status_code == 409


@pytest.mark.parametrize("settings", ["smtp"], indirect=True)
async def test_a_refused_recipient_shows_the_smtp_reply_and_resend_goes_to_exactly_those(
    client, venue, csrf, sink
):
    """The outbox speaks to an SMTP server that refuses guest0: the failure and its reply are
    the outbox's own, read in the table."""
    cid = await _draft(client, venue, csrf)
    sent = await client.post(
        f"{venue['base']}/{cid}/send",
        data={"expected_recipients": "2", "when": "now", "csrf": csrf},
    )
    assert sent.status_code == 303

    async def finished():
        page = await client.get(f"{venue['base']}/{cid}")
        return "refresh" not in page.headers and page

    page = await _wait(finished)
    assert "cmp-ms-failed" in page.text and "550 5.1.1 no such user" in page.text
    failed = await client.get(f"{venue['base']}/{cid}", params={"status": "failed"})
    assert REFUSED in failed.text and "guest1@example.org" not in failed.text
    assert [m.recipients for m in sink.messages] == [("guest1@example.org",)]
    assert f'action="{venue["base"]}/{cid}/resend"' in page.text  # one failed: offered
    resend = await client.post(f"{venue['base']}/{cid}/resend", data={"csrf": csrf})
    assert resend.status_code == 303 and resend.headers["location"].endswith("/recap")
    copy = resend.headers["location"].split("/")[-2]
    assert await _count(client, venue["base"], copy) == 1  # guest0 alone


async def test_resend_is_not_offered_when_every_guest_got_the_mail(client, venue, csrf):
    """Delivered to both (the maildir): nobody failed or was never sent, so no resend form."""
    cid = await _draft(client, venue, csrf)
    sent = await client.post(
        f"{venue['base']}/{cid}/send",
        data={"expected_recipients": "2", "when": "now", "csrf": csrf},
    )
    assert sent.status_code == 303

    async def finished():
        page = await client.get(f"{venue['base']}/{cid}")
        return "refresh" not in page.headers and page

    page = await _wait(finished)
    assert page.text.count("cmp-ms-sent") == 2
    assert "/resend" not in page.text


@pytest.mark.parametrize("settings", ["idle"], indirect=True)
async def test_the_page_refreshes_itself_only_while_sending(client, venue, csrf):
    """With no worker running the campaign stays sending: the page asks to be reloaded."""
    cid = await _draft(client, venue, csrf)
    sent = await client.post(
        f"{venue['base']}/{cid}/send",
        data={"expected_recipients": "2", "when": "now", "csrf": csrf},
    )
    assert sent.status_code == 303
    page = await client.get(f"{venue['base']}/{cid}")
    assert page.headers["refresh"] == "3" and 'max="2" value="0"' in page.text
    assert page.text.count("cmp-ms-queued") == 2
    edit = await client.get(f"{venue['base']}/{cid}/edit")
    assert "can no longer be edited" in edit.text
    refused = await client.post(f"{venue['base']}/{cid}/edit", data=FORM | {"csrf": csrf})
    assert refused.status_code == 409
    cancelled = await client.post(f"{venue['base']}/{cid}/cancel", data={"csrf": csrf})
    assert cancelled.status_code == 303
    page = await client.get(f"{venue['base']}/{cid}")
    assert "refresh" not in page.headers and "cancelled by the organiser" in page.text


async def test_another_events_campaign_is_not_found_under_this_events_path(client, venue, csrf):
    cid = await _draft(client, venue, csrf)
    other = await create_event(venue["api"], name="Other")
    base = f"/console/events/{other['id']}/campaigns/{cid}"
    for suffix in ("", "/edit", "/preview", "/preview/mail", "/recap"):
        assert (await client.get(base + suffix)).status_code == 404, suffix
    for suffix in ("/edit", "/test", "/send", "/cancel", "/resend"):
        response = await client.post(base + suffix, data=FORM | {"csrf": csrf, "to": "a@b.org"})
        assert response.status_code == 404, suffix
    assert (await client.get("/console/events/nope/campaigns")).status_code == 404


async def test_read_only_users_and_forged_forms_are_refused(client, venue, csrf, settings):
    cid = await _draft(client, venue, csrf)
    url = f"{venue['base']}/{cid}/edit"
    assert (await client.post(url, data=FORM)).status_code == 403
    assert (await client.post(url, data=FORM | {"csrf": "forged"})).status_code == 403
    cross = await client.post(
        url, data=FORM | {"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    await make_user(settings, email="ro@example.org", name="Reader", role="read_only")
    reader = await as_new_browser(client, settings, "ro@example.org")
    page = await client.get(f"{venue['base']}/{cid}")
    assert page.status_code == 200 and "/edit" not in page.text
    for suffix, data in (("/edit", FORM), ("/send", {"expected_recipients": "2"}), ("/resend", {})):
        response = await client.post(
            f"{venue['base']}/{cid}{suffix}", data=data | {"csrf": reader.csrf}
        )
        assert response.status_code == 403, suffix
    assert (await client.post(venue["base"], data=FORM | {"csrf": reader.csrf})).status_code == 403


async def test_garbage_in_every_field_gets_a_page_never_a_5xx(client, venue, csrf):
    cid = await _draft(client, venue, csrf)
    edit = f"{venue['base']}/{cid}/edit"
    big = await client.post(edit, data=FORM | {"csrf": csrf, "body_fr": "x" * 10_000_000})
    assert big.status_code == 413
    nul = await client.post(edit, data=FORM | {"csrf": csrf, "name": "a\x00b"})
    assert nul.status_code == 400
    for field, value in (
        ("name", ""),
        ("name", "n" * 5000),
        ("delivery", "everyone"),
        ("checked_in", "maybe"),
        ("ticket_type_ids", "x" * 300),
        ("contact_list_id", "nope"),
        ("subject_fr", "s" * 400),
        ("kind", "spam"),
    ):
        response = await client.post(venue["base"], data=FORM | {"csrf": csrf, field: value})
        assert response.status_code == 422, (field, response.status_code)
    send = f"{venue['base']}/{cid}/send"
    for value in ("99999999999999999999", "-1", "two", ""):
        response = await client.post(send, data={"csrf": csrf, "expected_recipients": value})
        assert response.status_code in (409, 422), value
    for query in ({"offset": "9" * 30}, {"status": "\x00"}, {"offset": "-5"}):
        assert (await client.get(f"{venue['base']}/{cid}", params=query)).status_code < 500
    assert (
        await client.get(f"{venue['base']}/{cid}/preview", params={"language": "xx"})
    ).status_code == 400


async def test_delivery_reports_show_delivered_in_the_table_counts_and_filter(
    client, venue, csrf, settings
):
    """A DSN saying delivered (posted to the API as an MTA pipe would) is read in the table, the
    counts and the status filter, in the viewer's language; a bounce beside it stays failed."""
    from tests.server.campaigns.test_reports import sample

    cid = await _draft(client, venue, csrf)
    sent = await client.post(
        f"{venue['base']}/{cid}/send",
        data={"expected_recipients": "2", "when": "now", "csrf": csrf},
    )
    assert sent.status_code == 303

    async def finished():
        page = await client.get(f"{venue['base']}/{cid}")
        return "refresh" not in page.headers and page

    await _wait(finished)
    listed = (await venue["api"].get(f"/api/v1/campaigns/{cid}/messages")).json()["items"]
    by_to = {m["to"]: m["message_id"] for m in listed}
    for name, to in (
        ("postfix-delivered.eml", "guest1@example.org"),
        ("postfix-failed.eml", "guest0@example.org"),
    ):
        raw = sample(name, envid=by_to[to], message_id=by_to[to])
        api = venue["api"]
        answer = await api.client.post(
            "/api/v1/messages/reports",
            content=raw,
            headers={**api.headers, "Content-Type": "message/rfc822"},
        )
        assert answer.status_code == 200, answer.text
    page = await client.get(f"{venue['base']}/{cid}")
    assert page.text.count("cmp-ms-delivered") == 1 and ">delivered<" in page.text
    assert "cmp-ms-bounced" in page.text and "550 5.1.1 &lt;nobody@example.com&gt;" in page.text
    assert re.search(r"<dt>Delivered</dt><dd>1</dd>", page.text)
    assert 'max="2" value="2"' in page.text  # delivered and bounced are both done
    assert '<option value="delivered">delivered</option>' in page.text
    only = await client.get(f"{venue['base']}/{cid}", params={"status": "delivered"})
    assert "guest1@example.org" in only.text and "guest0@example.org" not in only.text
    french = await client.get(f"{venue['base']}/{cid}", params={"lang": "fr"})
    assert ">distribué<" in french.text and "<dt>Distribués</dt><dd>1</dd>" in french.text
    german = await client.get(f"{venue['base']}/{cid}", params={"lang": "de"})
    assert ">zugestellt<" in german.text
    listing = await client.get(venue["base"])
    assert "<td>1</td><td>1</td><td>2</td>" in listing.text  # sent (delivered too), failed, total
    # The guest then opened it: an open says more than delivered; a bounce is never "opened".
    from sqlalchemy import update

    from server.campaigns.models import Message
    from server.db import Database, utcnow

    database = Database(settings.database_url)
    async with database.transaction() as session:
        await session.execute(update(Message).values(opened_at=utcnow()))
    await database.dispose()
    page = await client.get(f"{venue['base']}/{cid}")
    assert '<span class="cmp-ms cmp-ms-delivered">opened</span>' in page.text
    assert '<span class="cmp-ms cmp-ms-bounced">bounced</span>' in page.text
