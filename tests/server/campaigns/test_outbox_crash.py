"""A 1,000-message campaign, its worker killed with SIGKILL in the middle, then started again.

Real everything: `tessera worker` as a subprocess, a real aiosmtpd sink, the test's database
(SQLite and PostgreSQL). Every recipient gets the mail; a duplicate can only be a message that
was in flight at the kill, and it carries the same Message-ID (issue 14, item 5).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from server.campaigns.outbox import BATCH
from server.config import Settings
from tests.factories import create_booking, create_event, create_ticket_type
from tests.live import settings_env
from tests.server.campaigns.smtp_sink import SmtpSink

MESSAGES = 1000  # a multiple of 500 (the bookings it is made of); enough to kill the worker midway
LEASE = 2  # seconds: the killed worker's claims expire quickly


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, worker="external")


def worker(settings: Settings, sink: SmtpSink, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        settings_env(settings),
        TESSERA_SMTP_URL=sink.url,
        TESSERA_OUTBOX_LEASE=str(LEASE),
        TESSERA_BASE_URL="https://tickets.test",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate, within: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


async def test_a_killed_worker_loses_nothing_and_duplicates_only_what_was_in_flight(
    api, settings, tmp_path
):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=None)
    for n in range(MESSAGES // 500):
        await create_booking(
            api,
            event["id"],
            ticket_type["id"],
            500,
            confirm=True,
            buyer={"name": f"Buyer {n}", "email": f"buyer{n}@example.org"},
        )
    response = await api.post(
        f"/api/v1/events/{event['id']}/campaigns", json={"name": "Crash", "per_ticket": True}
    )
    campaign = response.json()
    send = await api.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": MESSAGES}
    )
    assert send.status_code == 202, send.text

    with SmtpSink() as sink:
        first = worker(settings, sink, tmp_path)
        try:
            wait_for(lambda: len(sink.messages) >= MESSAGES // 3, 120)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        at_kill = len(sink.messages)
        assert at_kill < MESSAGES, "the worker finished before the kill: nothing was tested"
        second = worker(settings, sink, tmp_path)
        try:
            state = {}

            async def finished() -> bool:
                state.update((await api.get(f"/api/v1/campaigns/{campaign['id']}")).json())
                return state["status"] == "sent"

            deadline = time.monotonic() + 180
            while not await finished():
                assert time.monotonic() < deadline, state
                await asyncio.sleep(0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
        received = [m.message() for m in sink.messages]

    assert state["counts"]["sent"] == MESSAGES and state["counts"]["failed"] == 0
    per_message = Counter(str(m["X-Tessera-Message"]) for m in received)
    assert len(per_message) == MESSAGES  # every recipient got it
    duplicated = {key for key, count in per_message.items() if count > 1}
    assert sum(per_message[key] - 1 for key in duplicated) <= BATCH  # at most the claim in flight
    ids: dict[str, set[str]] = {}
    for mail in received:
        ids.setdefault(str(mail["X-Tessera-Message"]), set()).add(str(mail["Message-ID"]))
    assert all(len(found) == 1 for found in ids.values())  # a retry keeps its Message-ID
