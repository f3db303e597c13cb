"""A `message` campaign to a contact list: one mail per contact, in the contact's language,
with the unsubscribes of the event honoured and the booking filters refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.campaigns.outbox import Outbox
from server.campaigns.transport import MaildirMailer
from server.config import Settings
from server.db import Database
from tests.conftest import problem_of
from tests.server.campaigns.test_campaigns import drain, mails, venue


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, worker="external")  # the test drains the outbox


@pytest.fixture
async def outbox(settings: Settings) -> Any:
    database = Database(settings.database_url)
    box = Outbox(database, settings, MaildirMailer(Path(settings.mail_dir)))
    yield box
    await box.mailer.close()
    await database.dispose()


WORDS = {
    "en": {"subject": "Hello {{ guest.first_name }}", "body": "Doors open at 19:00."},
    "fr": {"subject": "Bonjour {{ guest.first_name }}", "body": "Ouverture à 19 h."},
}


async def contact_list(api: AsyncTestClient[Litestar], contacts: list[dict[str, Any]]) -> str:
    created = await api.post("/api/v1/contact-lists", json={"name": "Press"})
    assert created.status_code == 201, created.text
    list_id = str(created.json()["id"])
    for contact in contacts:
        added = await api.post(f"/api/v1/contact-lists/{list_id}/contacts", json=contact)
        assert added.status_code == 201, added.text
    return list_id


async def news_draft(api: AsyncTestClient[Litestar], event_id: str, **body: Any) -> Any:
    return await api.post(
        f"/api/v1/events/{event_id}/campaigns",
        json={"name": "Press news", "kind": "message", "content": WORDS, **body},
    )


PRESS = [
    {"email": "ada@press.example", "name": "Ada Lovelace", "language": "en"},
    {"email": "zoe@presse.example", "name": "Zoé Martin", "language": "fr"},
    {"email": "noname@press.example"},
]


async def test_news_to_a_contact_list_reaches_each_contact_in_their_language(
    api, client, settings, outbox
):
    v = await venue(api, 2)  # bookings of the event that must not be written to
    list_id = await contact_list(api, PRESS)
    drafted = await news_draft(api, v["event"]["id"], audience={"contact_list_id": list_id})
    assert drafted.status_code == 201, drafted.text
    campaign = drafted.json()
    assert campaign["audience"]["contact_list_id"] == list_id
    preview = await api.post(f"/api/v1/campaigns/{campaign['id']}/preview", json={})
    assert preview.status_code == 200, preview.text
    assert preview.json()["to"] == "ada@press.example"
    recap = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 2}
    )
    assert problem_of(recap)["recipients"] == 3
    sent = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 3}
    )
    assert sent.status_code == 202, sent.text
    await drain(outbox)
    received = {str(m["To"]): str(m["Subject"]) for m in mails(settings)}
    assert received == {
        "Ada Lovelace <ada@press.example>": "Hello Ada",
        "Zoé Martin <zoe@presse.example>": "Bonjour Zoé",
        # no language: the event's first one (fr); no name: the greeting has none
        "noname@press.example": "Bonjour",
    }
    state = (await api.get(f"/api/v1/campaigns/{campaign['id']}")).json()
    assert state["counts"]["sent"] == 3 and state["status"] == "sent"

    # An unsubscribe from one of those mails holds for the next news of the event.
    [ada] = [m for m in mails(settings) if "ada@" in str(m["To"])]
    token = str(ada["List-Unsubscribe"]).split("/m/")[1].split("/")[0]
    done = await client.post(
        f"/m/{token}/unsubscribe",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    again = (await news_draft(api, v["event"]["id"], audience={"contact_list_id": list_id})).json()
    recap = await api.post(f"/api/v1/campaigns/{again['id']}/send", json={"expected_recipients": 0})
    assert problem_of(recap)["recipients"] == 2


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"kind": "tickets"}, "audience.contact_list_id"),
        ({"per_ticket": True}, "per_ticket"),
        ({"audience": {"checked_in": True}}, "audience.contact_list_id"),
        ({"audience": {"delivery": "failed"}}, "audience.contact_list_id"),
        ({"audience": {"ticket_type_ids": ["abc"]}}, "audience.contact_list_id"),
    ],
    ids=["tickets-kind", "per-ticket", "checked-in", "delivery", "ticket-types"],
)
async def test_booking_filters_and_ticket_mail_are_refused_for_a_list(api, extra, field):
    v = await venue(api, 0)
    list_id = await contact_list(api, PRESS[:1])
    body: dict[str, Any] = {"audience": {"contact_list_id": list_id}}
    for name, value in extra.items():
        if name == "audience":
            body["audience"] = {**body["audience"], **value}
        else:
            body[name] = value
    response = await news_draft(api, v["event"]["id"], **body)
    assert response.status_code == 422, response.text
    assert field in {error["field"] for error in problem_of(response)["errors"]}


@pytest.mark.parametrize(
    "list_id", ["does-not-exist", "x" * 32, "a" * 33, "", "é", "a\u0000b", 2**70, None]
)
async def test_an_unknown_or_garbage_list_id_is_a_422_naming_the_field(api, list_id):
    v = await venue(api, 0)
    response = await news_draft(api, v["event"]["id"], audience={"contact_list_id": list_id})
    if list_id is None:  # no list: the event's bookings, as without the field
        assert response.status_code == 201
        return
    assert response.status_code == 422, response.text
    fields = {error["field"] for error in problem_of(response)["errors"]}
    assert any("contact_list_id" in f for f in fields)


async def test_a_merged_list_is_refused_and_a_deleted_one_leaves_no_recipient(api):
    v = await venue(api, 0)
    kept = await contact_list(api, PRESS[:1])
    merged = await contact_list(api, PRESS[1:2])
    merge = await api.post(
        f"/api/v1/contact-lists/{kept}/merge", json={"sources": [merged], "preview": False}
    )
    assert merge.status_code == 200, merge.text
    refused = await news_draft(api, v["event"]["id"], audience={"contact_list_id": merged})
    assert refused.status_code == 422
    assert "archived" in problem_of(refused)["errors"][0]["message"]

    campaign = (await news_draft(api, v["event"]["id"], audience={"contact_list_id": kept})).json()
    assert (await api.delete(f"/api/v1/contact-lists/{kept}")).status_code == 204
    recap = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 99}
    )
    assert recap.status_code == 409 and problem_of(recap)["recipients"] == 0
