from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

__all__ = ["SigningKey"]


class SigningKey(Base):
    """A public signing key; its private half lives in the keystore directory, never here."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))  # raw Ed25519, base64url
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
