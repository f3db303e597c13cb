"""The outbox worker: claim due ledger rows, render them now, send, record what happened.

Rules and invariants (models.py has the states):
  - Claiming is one transaction: due `queued` rows and `sending` rows whose claim expired are
    marked `sending` with a new `claimed_until` and one more attempt. On PostgreSQL the SELECT
    takes `FOR UPDATE SKIP LOCKED`, so several workers never claim one row twice; on SQLite
    the IMMEDIATE transaction serialises them (run one worker there).
  - A claimed batch is rendered and sent outside any write transaction: one read session
    loads the batch's rows, campaigns, events, bookings, their valid tickets and the events'
    ticket types in six queries, then renders the messages one after the other, at most
    `concurrency` ahead of the senders that keep that many SMTP sends going. Each mail is
    serialised once; the mailer sends those bytes. Rendering reads the tickets as they are when
    the batch starts, so a seat edited after the send was confirmed is what the guest reads,
    unless it was edited during the seconds its batch takes.
  - Outcomes are recorded RECORD_EVERY at a time (the rest when the batch ends), each group in
    one transaction with one UPDATE per kind of outcome, while the senders go on; each row's
    update is guarded by its attempt number, so a worker whose claim expired and was taken over
    cannot overwrite the new claim's outcome.
  - A worker killed after sending and before recording leaves those rows `sending`; their
    claims expire and they are sent again, with the same Message-IDs: a crash duplicates at most
    the messages sent and not yet recorded (about RECORD_EVERY + `concurrency`, never more than
    the BATCH claimed), it never loses one.
  - Temporary failures (4xx, network) retry with exponential backoff (30 s doubling to an hour,
    jittered) up to MAX_ATTEMPTS; permanent ones (5xx) fail at once with the server's reply.
  - A campaign whose messages all reached a final state is marked sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, Update, and_, bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.models import Booking
from server.campaigns import service
from server.campaigns.compose import Composed, Prefetched, compose
from server.campaigns.mail import MailError
from server.campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from server.campaigns.templates import TemplateError
from server.campaigns.transport import Mailer
from server.config import Settings
from server.db import Database, utcnow
from server.db.unavailable import is_database_unavailable
from server.events.models import Event, TicketType
from server.tickets.models import Ticket, TicketStatus

__all__ = ["MAX_ATTEMPTS", "Outbox"]

log = logging.getLogger("tessera.outbox")

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=120)
BATCH = 100
RECORD_EVERY = 20  # outcomes recorded together: a crash re-sends at most these and those in flight


def _due_message(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Message.status == MessageStatus.QUEUED, Message.next_attempt_at <= now),
        and_(Message.status == MessageStatus.SENDING, Message.claimed_until < now),
    )


def _due_campaign(now: datetime) -> ColumnElement[bool]:
    return and_(Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now)


@dataclass(frozen=True)
class _Ready:
    """A rendered message waiting for a sender."""

    message_id: str
    attempt: int
    to: str
    composed: Composed
    envelope_id: str  # the mail's Message-ID: delivery reports name it (ENVID)


@dataclass(frozen=True)
class _Outcome:
    """What to record on one row: its new status and what goes with it."""

    message_id: str
    attempt: int
    status: str  # sent | failed | queued (a retry)
    reply: str | None = None
    links: list[str] = field(default_factory=list)
    at: datetime | None = None  # sent_at when sent, next_attempt_at for a retry


@dataclass
class _Loaded:
    """A batch's rows and what their mails need, held (the session's identity map is weak, so
    `session.get` in `compose` finds the events and bookings only while something holds them)."""

    messages: dict[str, Message]
    campaigns: dict[str, Campaign]
    prefetched: Prefetched
    held: list[Any]


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
            except Exception as exc:  # a database hiccup must not end the worker
                if is_database_unavailable(exc):  # PostgreSQL away: one line, try at next poll
                    log.warning("outbox: database unavailable (%s)", type(exc).__name__)
                else:
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
        await self._deliver(claimed)
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

    async def _deliver(self, claimed: list[tuple[str, int]]) -> None:
        """Render, send and record a claimed batch (the module docstring)."""
        # Outcomes not recorded yet; the recorder takes them RECORD_EVERY at a time (the rest
        # when the batch ends) while the senders keep their connections busy.
        outcomes: list[_Outcome] = []
        # Bounded: rendering runs at most `concurrency` messages ahead of the sends.
        ready: asyncio.Queue[_Ready | None] = asyncio.Queue(maxsize=self.concurrency)
        wanted = asyncio.Event()
        ended = False

        async def sender() -> None:
            while (item := await ready.get()) is not None:
                outcomes.append(await self._send(item))
                if len(outcomes) >= RECORD_EVERY:
                    wanted.set()

        async def recorder() -> None:
            while True:
                await wanted.wait()
                wanted.clear()
                while len(outcomes) >= RECORD_EVERY or (ended and outcomes):
                    group = outcomes[:]
                    outcomes.clear()
                    await self._record(group)
                if ended:
                    return

        # A failure or a cancellation anywhere cancels the sends in hand: their rows stay
        # `sending` until their claims expire, then go again (the module docstring).
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(recorder())
            async with asyncio.TaskGroup() as senders:
                for _ in range(self.concurrency):
                    senders.create_task(sender())
                await self._render(claimed, ready, outcomes)
                for _ in range(self.concurrency):
                    await ready.put(None)
            ended = True
            wanted.set()

    async def _render(
        self,
        claimed: list[tuple[str, int]],
        ready: asyncio.Queue[_Ready | None],
        outcomes: list[_Outcome],
    ) -> None:
        pending = list(reversed(claimed))  # popped from the end: in the claimed order
        while pending:
            # Never committed: reading only, and on SQLite a DEFERRED transaction takes no lock.
            async with self.database.read_sessions() as session:
                try:
                    loaded = await self._load(session, [message_id for message_id, _ in pending])
                except Exception as exc:  # the database is away: everything left, later
                    log.exception("a batch of %d messages could not be loaded", len(pending))
                    outcomes.extend(self._retry_or_fail(m, a, _internal(exc)) for m, a in pending)
                    return
                while pending:
                    message_id, attempt = pending.pop()
                    message = loaded.messages.get(message_id)
                    if message is None:  # deleted since the claim (its event was)
                        continue
                    try:
                        item = await self._compose(session, message, attempt, loaded)
                    except Exception as exc:  # one bad row must not stall the others
                        log.exception("message %s could not be rendered", message_id)
                        outcomes.append(self._retry_or_fail(message_id, attempt, _internal(exc)))
                        break  # the session may be unusable now: a fresh one for the rest
                    if isinstance(item, _Ready):
                        await ready.put(item)
                    else:
                        outcomes.append(item)

    async def _load(self, session: AsyncSession, ids: list[str]) -> _Loaded:
        messages = {
            m.id: m for m in await session.scalars(select(Message).where(Message.id.in_(ids)))
        }
        rows = messages.values()
        campaign_ids = {m.campaign_id for m in rows if m.campaign_id is not None}
        booking_ids = {m.booking_id for m in rows if m.booking_id is not None}
        campaigns = {
            c.id: c
            for c in await session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids)))
        }
        event_ids = {m.event_id for m in rows}
        held: list[Any] = list(await session.scalars(select(Event).where(Event.id.in_(event_ids))))
        types: dict[str, dict[str, TicketType]] = defaultdict(dict)
        for ticket_type in await session.scalars(
            select(TicketType).where(TicketType.event_id.in_(event_ids))
        ):
            types[ticket_type.event_id][ticket_type.id] = ticket_type
        tickets: dict[str, list[Ticket]] = defaultdict(list)
        if booking_ids:
            held.extend(await session.scalars(select(Booking).where(Booking.id.in_(booking_ids))))
            valid = select(Ticket).where(
                Ticket.booking_id.in_(booking_ids), Ticket.status == TicketStatus.VALID
            )
            for ticket in await session.scalars(valid.order_by(Ticket.position)):
                tickets[ticket.booking_id].append(ticket)
        by_id = {ticket.id: ticket for batch in tickets.values() for ticket in batch}
        return _Loaded(messages, campaigns, Prefetched(tickets, by_id, types), held)

    async def _compose(
        self, session: AsyncSession, message: Message, attempt: int, loaded: _Loaded
    ) -> _Ready | _Outcome:
        """The rendered mail of `message`, or the outcome that it cannot be sent."""
        campaign = loaded.campaigns.get(message.campaign_id) if message.campaign_id else None
        try:
            # Every ticket-carrying row names its booking; one that did not would read its own.
            prefetched = loaded.prefetched if message.booking_id is not None else None
            composed = await compose(session, message, self.settings, campaign, prefetched)
        except TemplateError as exc:
            reply = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
            return _Outcome(message.id, attempt, MessageStatus.FAILED, reply=reply)
        except MailError as exc:  # an address or a header that cannot be sent, ever
            return _Outcome(message.id, attempt, MessageStatus.FAILED, reply=str(exc))
        if message.kind == "tickets" and composed.tickets == 0:
            reply = "no valid ticket left to send"
            return _Outcome(message.id, attempt, MessageStatus.FAILED, reply=reply)
        return _Ready(message.id, attempt, message.to_email, composed, message.message_id)

    async def _send(self, item: _Ready) -> _Outcome:
        message_id, attempt = item.message_id, item.attempt
        try:
            result = await self.mailer.send(
                item.composed.data,
                sender=self.settings.envelope_sender,  # where delivery reports go
                recipients=[item.to],
                envelope_id=item.envelope_id,
            )
        except Exception as exc:  # one bad row must not stall the others
            log.exception("message %s could not be sent", message_id)
            return self._retry_or_fail(message_id, attempt, _internal(exc))
        if result.ok:
            links = item.composed.links
            return _Outcome(message_id, attempt, MessageStatus.SENT, links=links, at=self.clock())
        if result.permanent or attempt >= MAX_ATTEMPTS:
            return _Outcome(message_id, attempt, MessageStatus.FAILED, reply=result.reply)
        return self._retry_or_fail(message_id, attempt, result.reply)

    def _retry_or_fail(self, message_id: str, attempt: int, reply: str) -> _Outcome:
        """A temporary failure: again later with backoff, or failed after MAX_ATTEMPTS."""
        if attempt >= MAX_ATTEMPTS:
            return _Outcome(message_id, attempt, MessageStatus.FAILED, reply=reply)
        delay = min(3600.0, 30.0 * 2 ** (attempt - 1)) * self._rng.uniform(0.8, 1.2)
        retry_at = self.clock() + timedelta(seconds=delay)
        return _Outcome(message_id, attempt, MessageStatus.QUEUED, reply=reply, at=retry_at)

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """A group of outcomes in one transaction: one UPDATE per kind of outcome, run once per
        row (executemany), each guarded by the row's attempt."""
        params: dict[str, list[dict[str, object]]] = {status: [] for status in _RECORD}
        for o in outcomes:
            row: dict[str, object] = {"m_id": o.message_id, "m_attempt": o.attempt}
            if o.status == MessageStatus.SENT:
                row.update(m_at=o.at, m_links=o.links)
            else:
                row["m_reply"] = (o.reply or "")[:1000]
                if o.status == MessageStatus.QUEUED:
                    row["m_at"] = o.at
            params[o.status].append(row)
        if not outcomes:
            return
        async with self.database.transaction() as session:
            for status, statement in _RECORD.items():
                if params[status]:
                    await session.execute(statement, params[status])

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


def _record_statements() -> dict[str, Update]:
    """The UPDATE recording each kind of outcome (bound per row: `m_id`, `m_attempt`, ...)."""
    table: Table = Message.__table__  # type: ignore[assignment]
    c = table.c
    guarded = update(table).where(
        c.id == bindparam("m_id"),
        c.attempts == bindparam("m_attempt"),
        c.status == MessageStatus.SENDING,  # and not since taken over by another claim
    )
    return {
        MessageStatus.SENT: guarded.values(
            status=MessageStatus.SENT,
            claimed_until=None,
            sent_at=bindparam("m_at", type_=c.sent_at.type),
            links=bindparam("m_links", type_=c.links.type),
        ),
        MessageStatus.FAILED: guarded.values(
            status=MessageStatus.FAILED, claimed_until=None, last_reply=bindparam("m_reply")
        ),
        MessageStatus.QUEUED: guarded.values(  # a retry
            status=MessageStatus.QUEUED,
            claimed_until=None,
            last_reply=bindparam("m_reply"),
            next_attempt_at=bindparam("m_at", type_=c.next_attempt_at.type),
        ),
    }


_RECORD = _record_statements()


def _internal(exc: BaseException) -> str:
    return f"internal error: {exc!r}"
