"""The outbox worker: claim due ledger rows, render them now, send, record what happened.

Rules and invariants (models.py has the states):
  - Claiming is one transaction: due `queued` rows and `sending` rows whose claim expired are
    marked `sending` with a new `claimed_until` and one more attempt. On PostgreSQL the SELECT
    takes `FOR UPDATE SKIP LOCKED`, so several workers never claim one row twice; on SQLite
    the IMMEDIATE transaction serialises them (run one worker there).
  - A row is rendered and sent outside any transaction, then recorded in one, guarded by its
    attempt number: a worker whose claim expired and was taken over cannot overwrite the new
    claim's outcome.
  - A worker killed after sending and before recording leaves the row `sending`; its claim
    expires and the row is sent again, with the same Message-ID: a crash duplicates at most
    the messages in flight, it never loses one.
  - Temporary failures (4xx, network) retry with exponential backoff (30 s doubling to an hour,
    jittered) up to MAX_ATTEMPTS; permanent ones (5xx) fail at once with the server's reply.
  - A campaign whose messages all reached a final state is marked sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select, update

from server.campaigns import service
from server.campaigns.compose import compose
from server.campaigns.mail import MailError
from server.campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from server.campaigns.templates import TemplateError
from server.campaigns.transport import Mailer
from server.config import Settings
from server.db import Database, utcnow

__all__ = ["MAX_ATTEMPTS", "Outbox"]

log = logging.getLogger("tessera.outbox")

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=120)
BATCH = 100


def _due_message(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Message.status == MessageStatus.QUEUED, Message.next_attempt_at <= now),
        and_(Message.status == MessageStatus.SENDING, Message.claimed_until < now),
    )


def _due_campaign(now: datetime) -> ColumnElement[bool]:
    return and_(Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now)


class Outbox:
    """One worker: `run` until `stop`, or `run_once` for one batch (tests, `tessera worker`)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        mailer: Mailer,
        *,
        concurrency: int = 4,
        batch: int = BATCH,
        lease: timedelta = LEASE,
        poll: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.mailer = mailer
        self.concurrency = concurrency
        self.batch = batch
        self.lease = lease
        self.poll = poll
        self.clock = clock
        self.on_progress = on_progress
        self._wake = asyncio.Event()
        self._rng = random.Random()

    def wake(self) -> None:
        """Look for work now (a send was confirmed in this process)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once()
            except Exception:  # a database hiccup must not end the worker
                log.exception("outbox batch failed")
                done = 0
            if done == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)
                self._wake.clear()

    async def run_once(self) -> int:
        """Start due schedules, then claim and deliver one batch; how many were delivered."""
        now = self.clock()
        # Look first (a read takes no write lock on SQLite), then claim only when there is work.
        async with self.database.transaction(read_only=True) as session:
            schedules = await session.scalar(select(exists().where(_due_campaign(now))))
            messages = await session.scalar(select(exists().where(_due_message(now))))
        if schedules:
            async with self.database.transaction() as session:
                await service.fire_due(session, now=now, settings=self.settings)
        claimed = await self._claim(now) if schedules or messages else []
        if not claimed:
            await self._finish_campaigns(now)
            return 0
        limit = asyncio.Semaphore(self.concurrency)

        async def one(message_id: str, attempt: int) -> None:
            async with limit:
                try:
                    await self._deliver(message_id, attempt)
                except Exception as exc:  # one bad row must not stall the others
                    log.exception("message %s could not be sent", message_id)
                    await self._retry_or_fail(message_id, attempt, f"internal error: {exc!r}")

        await asyncio.gather(*(one(message_id, attempt) for message_id, attempt in claimed))
        await self._finish_campaigns(self.clock())
        if self.on_progress is not None:
            self.on_progress(len(claimed))
        return len(claimed)

    async def _claim(self, now: datetime) -> list[tuple[str, int]]:
        due = _due_message(now)
        async with self.database.transaction() as session:
            query = (
                select(Message.id).where(due).order_by(Message.next_attempt_at).limit(self.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(await session.scalars(query))
            if not ids:
                return []
            await session.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(
                    status=MessageStatus.SENDING,
                    claimed_until=now + self.lease,
                    attempts=Message.attempts + 1,
                )
            )
            rows = await session.execute(
                select(Message.id, Message.attempts).where(Message.id.in_(ids))
            )
            return [(row.id, row.attempts) for row in rows]

    async def _deliver(self, message_id: str, attempt: int) -> None:
        async with self.database.session() as session:
            message = await session.get(Message, message_id)
            if message is None:
                return
            campaign = (
                await session.get(Campaign, message.campaign_id) if message.campaign_id else None
            )
            try:
                composed = await compose(session, message, self.settings, campaign)
            except TemplateError as exc:
                reply = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
                await self._record(message_id, attempt, MessageStatus.FAILED, reply=reply[:1000])
                return
            except MailError as exc:  # an address or a header that cannot be sent, ever
                await self._record(message_id, attempt, MessageStatus.FAILED, reply=str(exc))
                return
            to = message.to_email
        if message.kind == "tickets" and composed.tickets == 0:
            await self._record(
                message_id, attempt, MessageStatus.FAILED, reply="no valid ticket left to send"
            )
            return
        result = await self.mailer.send(
            composed.message, sender=self.settings.platform_sender, recipients=[to]
        )
        if result.ok:
            await self._record(message_id, attempt, MessageStatus.SENT, links=composed.links)
        elif result.permanent or attempt >= MAX_ATTEMPTS:
            await self._record(message_id, attempt, MessageStatus.FAILED, reply=result.reply)
        else:
            await self._retry_or_fail(message_id, attempt, result.reply)

    async def _retry_or_fail(self, message_id: str, attempt: int, reply: str) -> None:
        """A temporary failure: again later with backoff, or failed after MAX_ATTEMPTS."""
        if attempt >= MAX_ATTEMPTS:
            await self._record(message_id, attempt, MessageStatus.FAILED, reply=reply)
            return
        delay = min(3600.0, 30.0 * 2 ** (attempt - 1)) * self._rng.uniform(0.8, 1.2)
        await self._record(
            message_id,
            attempt,
            MessageStatus.QUEUED,
            reply=reply,
            retry_at=self.clock() + timedelta(seconds=delay),
        )

    async def _record(
        self,
        message_id: str,
        attempt: int,
        status: str,
        *,
        reply: str | None = None,
        links: list[str] | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        values: dict[str, object] = {"status": status, "claimed_until": None}
        if reply is not None:
            values["last_reply"] = reply[:1000]
        if status == MessageStatus.SENT:
            values["sent_at"] = self.clock()
            values["links"] = links or []
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        async with self.database.transaction() as session:
            await session.execute(
                update(Message)
                .where(
                    Message.id == message_id,
                    Message.attempts == attempt,
                    Message.status == MessageStatus.SENDING,
                )
                .values(**values)
            )

    async def _finish_campaigns(self, now: datetime) -> None:
        open_rows = exists().where(
            Message.campaign_id == Campaign.id,
            Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING]),
        )
        async with self.database.transaction() as session:
            await session.execute(
                update(Campaign)
                .where(Campaign.status == CampaignStatus.SENDING, ~open_rows)
                .values(status=CampaignStatus.SENT, finished_at=now)
            )
