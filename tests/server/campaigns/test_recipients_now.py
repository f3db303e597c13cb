"""`recipients_now`, the public answer to "who would this campaign go to if sent now": the
audience resolved against today's bookings, one per booking (or ticket), its count the one
`send` checks `expected_recipients` against; a booking cancelled since drops out."""

from __future__ import annotations

from server.campaigns import service
from server.db import Database
from tests.server.campaigns.test_campaigns import draft, venue


async def _now(settings, campaign_id: str) -> list:
    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            campaign = await service.get_campaign(session, campaign_id)
            return await service.recipients_now(session, campaign)
    finally:
        await database.dispose()


async def test_the_recipients_now_are_the_count_send_expects_and_follow_cancellations(
    api, settings
):
    v = await venue(api, 3)
    campaign = await draft(api, v["event"]["id"])
    found = await _now(settings, campaign["id"])
    assert sorted(r.to_email for r in found) == [f"guest{n}@example.org" for n in range(3)]
    assert {r.booking_id for r in found} == {b["id"] for b in v["bookings"]}
    cancelled = await api.post(f"/api/v1/bookings/{v['bookings'][0]['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert len(await _now(settings, campaign["id"])) == 2
    send = f"/api/v1/campaigns/{campaign['id']}/send"
    assert (await api.post(send, json={"expected_recipients": 3})).status_code == 409
    assert (await api.post(send, json={"expected_recipients": 2})).status_code == 202
