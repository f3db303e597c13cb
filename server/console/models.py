"""Organiser accounts of the console: users, their one-time sign-in links and their sessions.

Every secret (a link's token, a session's token) is kept only as its SHA-256: each carries 256
random bits, so a leaked table signs nobody in. A password is kept as its argon2id hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

__all__ = ["ConsoleSession", "ConsoleUser", "SignInLink"]


class ConsoleUser(Base):
    """An organiser who signs in to the console; `email_key` (the address lower-cased) is
    unique, so one address is one user whatever its case."""

    __tablename__ = "console_user"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # admin | editor | read_only
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    language: Mapped[str | None] = mapped_column(String(8), default=None)  # None: the browser's
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class SignInLink(Base):
    """A mailed one-time sign-in link: used once (`used_at`), and never after `expires_at`."""

    __tablename__ = "console_signin_link"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("console_user.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ConsoleSession(Base):
    """A signed-in browser; deleting the row signs it out (all rows of a user: everywhere)."""

    __tablename__ = "console_session"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("console_user.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
