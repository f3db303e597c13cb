"""Campaign tables: the campaign an organiser writes, and the message ledger (the outbox).

`message` is the ledger of every mail Tessera sends to a guest: a campaign's messages, resends
of one booking or ticket, and test sends. Rows are written when a send is confirmed, one per
recipient (one per ticket in per-ticket campaigns), each with its own RFC 5322 Message-ID that every
retry reuses; workers claim them, render them at send time and record what happened. Its state
moves forward only:

  queued     waiting for a worker (also after a temporary failure, until `next_attempt_at`)
  sending    claimed by a worker until `claimed_until`; a worker that died leaves it to expire,
             and it is sent again with the same Message-ID (a crash duplicates at most the
             messages in flight, never loses one)
  sent       accepted by the SMTP server (or written to the local maildir)
  delivered  a delivery report (RFC 3464 DSN) said the receiving side delivered it, or relayed
             it to a server that sends no reports, or expanded it to an alias's mailboxes
  failed     refused for good (the server's reply in `last_reply`), or too many attempts
  bounced    reported back by the receiving side after it was sent (a DSN with Action failed,
             or `POST /api/v1/messages/bounces`)

      queued -> sending -> sent -> delivered
        ^          |        |         |
        +----------+        +---------+--> bounced
                   +--> failed

Delivery reports (`after_report`, applied by `service.record_report`) move only sent messages
forward, and never back (docs/decisions/0011-delivery-reports.md says why):
  - delivered / relayed / expanded: sent -> delivered; on delivered or bounced it changes
    nothing: a late or repeated success never undoes a bounce.
  - failed: sent or delivered -> bounced, the diagnostic in `last_reply`: a receiving server may
    accept a mail and bounce it later (a forward, a full mailbox behind a relay), and the guest
    did not get it. On bounced it changes nothing (the first bounce's words stay).
  - delayed: no state changes; on a sent message its diagnostic goes to `last_reply`, so the
    organiser sees why the mail has not arrived yet.
  - queued and sending messages are refused a report (the worker has not recorded the send
    yet: the reporter tries again later); failed messages were never accepted and keep their
    state. The same report twice changes nothing the second time.

Opens and clicks are facts beside the status (`opened_at`, `clicked_at`), not states.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

__all__ = [
    "REPORTABLE",
    "Campaign",
    "CampaignStatus",
    "Message",
    "MessageSource",
    "MessageStatus",
    "Unsubscribe",
    "after_report",
]


class CampaignStatus:
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"  # its messages are written; workers are sending them
    SENT = "sent"  # every message reached a final state
    CANCELLED = "cancelled"
    MISSED = "missed"  # its time passed by more than its grace window while nothing ran


class MessageStatus:
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    BOUNCED = "bounced"


# The statuses a delivery report may be about (the mail left Tessera), and what each action of
# one makes of them (the rules above). Missing: no state change.
REPORTABLE = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.BOUNCED)
_SUCCESS = ("delivered", "relayed", "expanded")


def after_report(status: str, action: str) -> tuple[str, bool]:
    """The status after a report's `action` on a message that is `status`, and whether the
    report's words go to `last_reply`. ValueError for an unknown action."""
    if action in _SUCCESS:
        if status == MessageStatus.SENT:
            return MessageStatus.DELIVERED, True
        return status, False
    if action == "failed":
        if status in (MessageStatus.SENT, MessageStatus.DELIVERED):
            return MessageStatus.BOUNCED, True
        return status, False
    if action == "delayed":
        return status, status == MessageStatus.SENT
    raise ValueError(f"unknown report action {action!r}")


class MessageSource:
    CAMPAIGN = "campaign"
    RESEND = "resend"  # one booking's or ticket's e-tickets sent again
    TEST = "test"  # a campaign's test send to any address: not counted, changes nothing
    AUTO = "auto"  # a booking's e-tickets, queued as it was confirmed (event.auto_send_tickets)


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # tickets | message
    per_ticket: Mapped[bool] = mapped_column(Boolean, default=False)  # else one per booking
    # {ticket_type_ids: [...] | null, checked_in: bool | null, delivery: all|never_sent|failed}
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # {"fr": {"subject": ..., "body": ...}, ...}: the recipient's language picks, else the
    # event's first language, else the first one written.
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attach_pdf: Mapped[bool] = mapped_column(Boolean, default=False)
    attach_ics: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT, index=True)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    # A reminder: `send_at` is the event's start minus this many seconds.
    remind_before: Mapped[int | None] = mapped_column(Integer, default=None)
    grace_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    recipients: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        # what workers claim: due queued rows, and expired claims
        Index("ix_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[str | None] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), index=True, default=None
    )
    source: Mapped[str] = mapped_column(String(16), default=MessageSource.CAMPAIGN)
    kind: Mapped[str] = mapped_column(String(16))  # tickets | message
    booking_id: Mapped[str | None] = mapped_column(
        ForeignKey("booking.id", ondelete="CASCADE"), index=True, default=None
    )
    ticket_id: Mapped[str | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="CASCADE"), index=True, default=None
    )
    to_name: Mapped[str | None] = mapped_column(String(200), default=None)
    to_email: Mapped[str] = mapped_column(String(320), index=True)
    language: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[str] = mapped_column(String(200), unique=True)  # RFC 5322, kept on retries
    token: Mapped[str] = mapped_column(String(32), unique=True)  # in tracking and unsubscribe URLs
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_reply: Mapped[str | None] = mapped_column(String(1000), default=None)
    # The links of the mail as sent, by position: a click URL names a position, never a target,
    # so the redirect can only lead where the mail did.
    links: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    opened_by_machine: Mapped[bool] = mapped_column(Boolean, default=False)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Unsubscribe(Base):
    """A guest who asked for no more news mail of an event's organiser (ticket mail still goes:
    it is what they bought)."""

    __tablename__ = "unsubscribe"

    event_id: Mapped[str] = mapped_column(
        ForeignKey("event.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower case
    message_id: Mapped[str | None] = mapped_column(
        String(16), default=None
    )  # the mail it came from
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
