"""Upgrading a database keeps what it holds: each migration applied to a database with an
event, bookings, tickets, a scan and a campaign message in it loses none of them.

On SQLite, rebuilding a parent table (Alembic's batch mode drops and recreates it) with foreign
keys on deletes every row that cascades from it; this is the test that catches that.
"""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from server.db import Database
from server.db.migrate import alembic_config, migrate

TABLES = [
    "event",
    "ticket_type",
    "booking",
    "ticket",
    "checkin_list",
    "device",
    "scan",
    "campaign",
    "message",
]


async def _counts(database: Database) -> dict[str, int]:
    async with database.session() as session:
        return {
            table: int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
            for table in TABLES
        }


@pytest.mark.parametrize("start", ["0004"])
async def test_upgrading_keeps_every_row(database_url, start):
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:  # back to `start`, then fill it
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), start))
        statements = [
            "INSERT INTO event (id, slug, name, starts_at, timezone, languages, branding,"
            " change_seq, created_at, updated_at) VALUES ('EVT0000001', 'e', 'E',"
            " '2031-06-14 18:00:00+00:00', 'UTC', '[]', '{}', 0, '2031-01-01 00:00:00+00:00',"
            " '2031-01-01 00:00:00+00:00')",
            "INSERT INTO ticket_type (id, event_id, name, persons, confirmed_count, created_at)"
            " VALUES ('TT1', 'EVT0000001', 'Std', 1, 1, '2031-01-01 00:00:00+00:00')",
            "INSERT INTO booking (id, event_id, reference, status, buyer_name, buyer_email,"
            " created_at) VALUES ('B1', 'EVT0000001', 'TSR-1', 'confirmed', 'A', 'a@example.org',"
            " '2031-01-01 00:00:00+00:00')",
            "INSERT INTO ticket (id, event_id, booking_id, ticket_type_id, position, code, version,"
            " token, link, status, blocked, created_at, updated_at) VALUES ('T1', 'EVT0000001',"
            " 'B1', 'TT1', 0, 'AAAA-BBBB', 1, 'x.y.z', 'link-1', 'valid', false,"
            " '2031-01-01 00:00:00+00:00', '2031-01-01 00:00:00+00:00')",
            "INSERT INTO checkin_list (id, event_id, name, max_entries, allow_reentry, created_at)"
            " VALUES ('L1', 'EVT0000001', 'Main', 1, false, '2031-01-01 00:00:00+00:00')",
            "INSERT INTO device (id, event_id, name, created_at) VALUES ('D1', 'EVT0000001',"
            " 'Door', '2031-01-01 00:00:00+00:00')",
            "INSERT INTO scan (scan_id, event_id, device_id, list_id, ticket_id, code, direction,"
            " scanned_at, received_at, accepted, offline, forced, entries, annulled) VALUES ('s1',"
            " 'EVT0000001', 'D1', 'L1', 'T1', 'AAAA-BBBB', 'entry', '2031-06-14 18:00:00+00:00',"
            " '2031-06-14 18:00:00+00:00', true, false, false, 1, false)",
            "INSERT INTO campaign (id, event_id, name, kind, per_ticket, audience, content,"
            " attach_pdf, attach_ics, status, grace_seconds, created_at, updated_at) VALUES ('C1',"
            " 'EVT0000001', 'C', 'tickets', false, '{}', '{}', false, false, 'sent', 3600,"
            " '2031-01-01 00:00:00+00:00', '2031-01-01 00:00:00+00:00')",
            "INSERT INTO message (id, event_id, campaign_id, source, kind, booking_id, to_email,"
            " language, message_id, token, status, attempts, next_attempt_at, links, created_at,"
            " opened_by_machine) VALUES ('M1', 'EVT0000001', 'C1', 'campaign', 'tickets', 'B1',"
            " 'a@example.org', 'en', '<m1@x>', 'tok1', 'sent', 1, '2031-01-01 00:00:00+00:00',"
            " '[]', '2031-01-01 00:00:00+00:00', false)",
        ]
        async with database.transaction() as session:
            for statement in statements:
                await session.execute(text(statement))
        before = await _counts(database)
        assert all(before.values()), before
        await migrate(database)
        assert await _counts(database) == before
    finally:
        await database.dispose()
