"""A confirmation that queues the e-ticket mail wakes the in-process outbox at once.

The embedded outbox here polls once an hour, so a mail that arrives is one it was woken for.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from litestar import Litestar

from server.config import Settings
from tests.conftest import app_for
from tests.factories import create_booking, create_event, create_ticket_type


@pytest.fixture
def app(settings: Settings) -> Litestar:
    application = app_for(settings)  # TESSERA_WORKER=embedded, the default
    application.state.outbox.poll = 3600.0
    return application


async def mail_files(settings: Settings, count: int, within: float = 10.0) -> list[Path]:
    """The maildir's new messages once there are `count` (bounded wait: the outbox works in
    the background of the test client's app)."""
    new = Path(settings.mail_dir) / "new"
    for _ in range(int(within / 0.05)):
        found = sorted(new.iterdir()) if new.exists() else []
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return sorted(new.iterdir()) if new.exists() else []


@pytest.mark.parametrize("how", ["create-confirmed", "confirm-later"])
async def test_an_auto_sent_confirmation_goes_without_waiting_for_the_poll(api, settings, how):
    event = await create_event(api, auto_send_tickets=True)
    ticket_type = await create_ticket_type(api, event["id"])
    if how == "create-confirmed":
        await create_booking(api, event["id"], ticket_type["id"], 1, confirm=True)
    else:
        pending = await create_booking(api, event["id"], ticket_type["id"], 1)
        confirmed = await api.post(f"/api/v1/bookings/{pending['id']}/confirm")
        assert confirmed.status_code == 200
    assert len(await mail_files(settings, 1)) == 1
