"""Contact lists and their contacts.

A list belongs to the organiser, not to an event: one list serves many events' campaigns. A list
holds each address once (`email_key`, unique per list). `contact_count` is maintained by every
write in the same transaction (it is recounted, never incremented, so it cannot drift).
A merged list is archived: `archived_at` is set, `merged_into_id` names the list that took its
contacts, and its contacts become read-only (it can still be read, exported, duplicated, deleted).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

__all__ = ["Contact", "ContactList"]

# Stored as typed (up to 320 characters, RFC 5321) and as its comparison key, whose domain is
# IDNA-encoded: punycode makes a domain longer, so the key gets the room of the whole address
# with every label expanded.
EMAIL_LENGTH = 320
EMAIL_KEY_LENGTH = 640


class ContactList(Base):
    __tablename__ = "contact_list"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_count: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    merged_into_id: Mapped[str | None] = mapped_column(
        ForeignKey("contact_list.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Contact(Base):
    __tablename__ = "contact"
    # The unique index also serves paging a list in address order and looking an address up.
    __table_args__ = (UniqueConstraint("list_id", "email_key"),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    list_id: Mapped[str] = mapped_column(ForeignKey("contact_list.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    email_key: Mapped[str] = mapped_column(String(EMAIL_KEY_LENGTH))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
