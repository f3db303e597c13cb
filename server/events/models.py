from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

__all__ = ["Event", "TicketType"]


class Event(Base):
    __tablename__ = "event"

    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    timezone: Mapped[str] = mapped_column(String(64))
    venue: Mapped[str | None] = mapped_column(String(300), default=None)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    branding: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Confirming a booking queues its e-ticket mail in the same transaction (server/bookings).
    auto_send_tickets: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Head of the event's change log: the last `seq` handed out. Bumping it row-locks the event,
    # which is what keeps `seq` gap-free and commits in `seq` order (server/changes).
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The highest seq the change log no longer keeps (retention, archive, restore): a cursor
    # below it cannot be followed, the door loads a snapshot (server/changes/retention.py).
    change_floor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Set when the event was archived: its doors are refused (`event_archived`), its change log
    # is gone (server/events/archive.py).
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TicketType(Base):
    __tablename__ = "ticket_type"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    persons: Mapped[int] = mapped_column(Integer, default=1)
    capacity: Mapped[int | None] = mapped_column(Integer, default=None)
    # Tickets of confirmed bookings; confirm raises it with a conditional UPDATE that never
    # passes `capacity`, cancel lowers it.
    confirmed_count: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
