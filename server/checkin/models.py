"""Check-in tables: lists, paired devices, every scan as a fact, and the folded presence.

`presence` is the folded state of one ticket on one list (protocol.rules.Presence). It is the row
an online decision locks, so two instances deciding on one ticket serialise on it; it is always
rebuildable from the `scan` rows that took effect (accepted or forced, not annulled) in `seq`
order, which is how an annulment updates it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

__all__ = ["CheckinList", "Device", "PresenceRow", "ScanRow"]


class CheckinList(Base):
    __tablename__ = "checkin_list"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # None admits every ticket type of the event; a list of ids admits only those.
    ticket_type_ids: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # None is unlimited. No column default: SQLAlchemy would put it in place of an explicit None.
    max_entries: Mapped[int | None] = mapped_column(Integer)
    allow_reentry: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Device(Base):
    """A door device. Unpaired: holds a one-time pairing code hash. Paired: a token hash."""

    __tablename__ = "device"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    gate: Mapped[str | None] = mapped_column(String(100), default=None)
    # Cleared when the code is used, so a used code can never match again.
    pairing_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    pairing_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ScanRow(Base):
    """One scan as received; never deleted. An annulment sets `annulled`, it removes nothing."""

    __tablename__ = "scan"

    # A scan is named by its device and the id the device gave it (a UUID): ids are scoped to
    # the device, so one device can neither read nor squat another's scans by reusing an id.
    device_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    scan_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    # As sent by the device: an unknown list is kept for the audit (its verdict is not_on_list).
    list_id: Mapped[str] = mapped_column(String(64), index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(16), index=True, default=None)
    code: Mapped[str] = mapped_column(String(64))  # the first 64 characters, for the audit
    direction: Mapped[str] = mapped_column(String(8))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the door's clock
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the hub's clock
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(32), default=None)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    gate: Mapped[str | None] = mapped_column(String(100), default=None)
    entries: Mapped[int] = mapped_column(Integer, default=0)  # the ticket's entries after it
    # The change-log seq of a scan that took effect: the order presence is folded in.
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    annulled: Mapped[bool] = mapped_column(Boolean, default=False)
    annulled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    annulled_by: Mapped[str | None] = mapped_column(String(64), default=None)


class PresenceRow(Base):
    """The folded check-in state of one ticket on one list, locked by every decision on it."""

    __tablename__ = "presence"

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[str] = mapped_column(
        ForeignKey("checkin_list.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    entries: Mapped[int] = mapped_column(Integer, default=0)
    inside: Mapped[bool] = mapped_column(Boolean, default=False)
    first_scan_id: Mapped[str | None] = mapped_column(String(64), default=None)
    first_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    first_gate: Mapped[str | None] = mapped_column(String(100), default=None)
    first_device: Mapped[str | None] = mapped_column(String(16), default=None)
