from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

__all__ = ["Ticket", "TicketLink", "TicketStatus"]


class TicketStatus:
    VALID = "valid"
    REVOKED = "revoked"


class Ticket(Base):
    __tablename__ = "ticket"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # the token's `jti`
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    booking_id: Mapped[str] = mapped_column(
        ForeignKey("booking.id", ondelete="CASCADE"), index=True
    )
    ticket_type_id: Mapped[str] = mapped_column(ForeignKey("ticket_type.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    holder_name: Mapped[str | None] = mapped_column(String(200), default=None)
    holder_email: Mapped[str | None] = mapped_column(String(320), default=None)
    seat: Mapped[str | None] = mapped_column(String(100), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    token: Mapped[str] = mapped_column(String(400))
    link: Mapped[str] = mapped_column(String(64), unique=True)  # current guest link
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.VALID)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class TicketLink(Base):
    """Every guest link a ticket ever had, so that a replaced link still says "replaced"."""

    __tablename__ = "ticket_link"

    link: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
