"""`tessera backup` and `tessera restore`: the database to one file and back (docs/backup.md).

SQLite goes through its online backup API, PostgreSQL through pg_dump's custom format; either
way the file is private (0600), checked, and written whole or not at all, and a restore refuses
what is not a whole Tessera backup of a schema this Tessera knows. The keystore (the private
signing keys) is not in the database and so not in its backup: it is backed up on its own.
"""

from __future__ import annotations

from pathlib import Path

from server.backup.common import BackupError, BackupReport, RestoreReport
from server.config import Settings, async_database_url

__all__ = ["BackupError", "BackupReport", "RestoreReport", "backup_database", "restore_database"]


def _is_sqlite(settings: Settings) -> bool:
    return async_database_url(settings.database_url).startswith("sqlite")


def backup_database(settings: Settings, path: Path) -> BackupReport:
    """Back up the database of `settings` to the file `path`; raises BackupError."""
    if _is_sqlite(settings):
        from server.backup.sqlite import backup_sqlite

        return backup_sqlite(settings.database_url, path)
    from server.backup.postgres import backup_pg

    return backup_pg(settings.database_url, path)


def restore_database(settings: Settings, path: Path, *, force: bool = False) -> RestoreReport:
    """Restore the backup file `path` into the database of `settings`, which must be new or
    empty unless `force`; raises BackupError, leaving that database as it was."""
    if _is_sqlite(settings):
        from server.backup.sqlite import restore_sqlite

        return restore_sqlite(settings.database_url, path, force=force)
    from server.backup.postgres import restore_pg

    return restore_pg(settings.database_url, path, force=force)
