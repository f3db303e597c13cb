"""Database: engine and sessions (SQLite in WAL mode or PostgreSQL), base, migrations."""

from server.db.base import Base, UTCDateTime, utcnow
from server.db.engine import Database

__all__ = ["Base", "Database", "UTCDateTime", "utcnow"]
