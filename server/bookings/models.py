from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base, UTCDateTime, utcnow

__all__ = ["Booking", "BookingItem", "BookingStatus"]


class BookingStatus:
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class Booking(Base):
    __tablename__ = "booking"
    __table_args__ = (UniqueConstraint("event_id", "external_ref"),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.PENDING, index=True)
    buyer_name: Mapped[str] = mapped_column(String(200))
    buyer_email: Mapped[str] = mapped_column(String(320), index=True)
    buyer_language: Mapped[str | None] = mapped_column(String(8), default=None)
    external_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    items: Mapped[list[BookingItem]] = relationship(
        order_by="BookingItem.position", lazy="selectin", cascade="all, delete-orphan"
    )


class BookingItem(Base):
    __tablename__ = "booking_item"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    booking_id: Mapped[str] = mapped_column(
        ForeignKey("booking.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    ticket_type_id: Mapped[str] = mapped_column(ForeignKey("ticket_type.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    # Per-ticket details given at booking time: [{name?, email?, seat?}], at most `quantity`.
    holders: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
