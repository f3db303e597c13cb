"""SQLite backups through SQLite's online backup API, and their restore.

`backup`: the live database is copied in one backup step, which reads one snapshot (a WAL reader
blocks no writer), so the copy is consistent while `tessera serve` writes; every transaction
committed before the step began is in it, none that commits later. The copy is a private temp
file beside PATH, switched to rollback-journal mode so that it is one self-contained file, then
integrity-checked and read for its schema revision before it takes PATH's name.

`restore`: the file is checked whole before anything is written: its header against its length
(truncation), `PRAGMA integrity_check`, its revision. It is opened `immutable`, so checking an
untrusted file writes nothing beside it. A new database is a temp file renamed into place; an
existing one (empty, or any with --force) is overwritten by one backup step into it, which is one
write transaction of the target: a failure or a kill leaves it as it was.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from server.backup.common import (
    BackupError,
    BackupReport,
    RestoreReport,
    check_target_file,
    cleaned,
    file_kind,
    held_rows,
    judge_revision,
    private_temp,
    publish,
    schema_head,
)

__all__ = ["backup_sqlite", "restore_sqlite", "sqlite_path"]

# What the summary lines count: enough to recognise the database, cheap to count.
COUNTED = ("event", "ticket", "scan")


@dataclass(frozen=True)
class _Inspection:
    tables: frozenset[str]
    problems: list[str]  # what `PRAGMA integrity_check` found; empty when it says "ok"
    revision: str | None
    counts: dict[str, int]


def sqlite_path(url: str) -> Path:
    """The database file of a `sqlite:///...` URL; refuses an in-memory database."""
    path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        raise BackupError(f"{url}: not a database file that can be backed up or restored")
    return Path(path)


def _refuse_same(database: Path, other: Path, doing: str) -> None:
    """Refuse `other` when it is the live database or one of its side files: renaming a copy
    over them under a running server would corrupt what it reads and writes."""
    resolved = other.resolve()
    own = [database.with_name(database.name + s).resolve() for s in ("", "-wal", "-shm")]
    if resolved in own:
        raise BackupError(f"{other} is the database itself (or its {resolved.name}): {doing}")


def _connect(path: Path, options: str) -> sqlite3.Connection:
    """A connection by URI, so that `mode=rw` never creates a database that is not there."""
    uri = f"file:{quote(str(path))}?{options}"
    return sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)


def _inspect(connection: sqlite3.Connection) -> _Inspection:
    tables = frozenset(
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    )
    problems = [str(row[0]) for row in connection.execute("PRAGMA integrity_check(5)")]
    if problems == ["ok"]:
        problems = []
    revision = None
    if "alembic_version" in tables:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = None if row is None else str(row[0])
    counts = {
        name: int(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
        for name in COUNTED
        if name in tables
    }
    return _Inspection(tables, problems, revision, counts)


def backup_sqlite(url: str, target: Path) -> BackupReport:
    """Copy the live database at `url` to `target` (0600), checked; raises BackupError."""
    source = sqlite_path(url)
    if not source.is_file():
        raise BackupError(f"no database at {source}: check TESSERA_DATABASE_URL")
    check_target_file(target)
    _refuse_same(source, target, "give the backup another file name")
    started = time.monotonic()
    with cleaned(private_temp(target)) as temp:
        try:
            with closing(_connect(source, "mode=rw")) as live, closing(_connect(temp, "")) as copy:
                live.backup(copy)  # pages=-1: one step, one snapshot of the source
            with closing(_connect(temp, "")) as copy:
                copy.execute("PRAGMA journal_mode=DELETE")
                found = _inspect(copy)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"cannot back up {source}: {exc}") from None
        if found.problems:
            raise BackupError(
                f"{source} fails its integrity check, no backup written: {found.problems[0]}"
            )
        if found.revision is None:
            raise BackupError(
                f"{source} is not a Tessera database (no schema revision): run `tessera migrate`"
            )
        size = temp.stat().st_size
        publish(temp, target)
    seconds = time.monotonic() - started
    return BackupReport(target, "sqlite", size, found.revision, seconds, found.counts)


def _check_whole(path: Path) -> None:
    """Refuse a file shorter than its header says (SQLite would read what is left, or fail late)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100:
        raise BackupError(f"{path} is truncated: {size} bytes, less than a SQLite header")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise BackupError(f"{path} is damaged: its header names no valid page size")
    if size % page_size:
        raise BackupError(
            f"{path} is truncated: {size} bytes is not a whole number of {page_size}-byte pages"
        )
    declared = int.from_bytes(header[28:32], "big")
    # The in-header page count is valid only when "version-valid-for" matches the change counter.
    if declared and header[92:96] == header[24:28] and size < declared * page_size:
        raise BackupError(
            f"{path} is truncated: {size} bytes of the {declared * page_size} its header declares"
        )


def _check_backup(source: Path) -> _Inspection:
    kind = file_kind(source)
    if kind == "pg_dump":
        raise BackupError(
            f"{source} is a PostgreSQL archive (pg_dump), but TESSERA_DATABASE_URL is SQLite:"
            " restore it with a postgresql:// database URL"
        )
    _check_whole(source)
    try:
        with closing(_connect(source, "mode=ro&immutable=1")) as backup:
            found = _inspect(backup)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is damaged: {exc}") from None
    if found.problems:
        raise BackupError(f"{source} is damaged: the integrity check says {found.problems[0]}")
    return found


def _held(target: Path) -> dict[str, int] | None:
    """None for a new database (no file, or an empty one); else the row counts of its tables
    that hold any (an empty dict: migrated, nothing in it)."""
    if not target.exists() or target.stat().st_size == 0:
        wal = target.with_name(target.name + "-wal")
        if wal.exists() and wal.stat().st_size:
            raise BackupError(f"{wal} is left without its database: remove it, then restore")
        return None
    try:
        with closing(_connect(target, "mode=rw")) as connection:
            tables = [
                str(row[0])
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%' AND name <> 'alembic_version' ORDER BY name"
                )
            ]
            return {
                table: n
                for table in tables
                if (n := connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
            }
    except sqlite3.DatabaseError as exc:
        raise BackupError(
            f"{target} exists and cannot be read as a SQLite database ({exc}): move it away,"
            " then restore"
        ) from None


def restore_sqlite(url: str, source: Path, *, force: bool = False) -> RestoreReport:
    """Restore the SQLite backup `source` into the database at `url`; raises BackupError."""
    target = sqlite_path(url)
    _refuse_same(target, source, "a database cannot be restored from itself")
    started = time.monotonic()
    found = _check_backup(source)
    revision = judge_revision(source, found.revision, found.tables)
    held = _held(target)
    if held and not force:
        listed = held_rows(held)
        raise BackupError(
            f"{target} already holds data ({listed}): restore into a new database (another"
            " TESSERA_DATABASE_URL), or give --force to replace it"
        )
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if held is None:
            _restore_new(source, target)
        else:
            with (
                closing(_connect(source, "mode=ro&immutable=1")) as backup,
                closing(_connect(target, "mode=rw")) as existing,
            ):
                backup.backup(existing)  # one step: one write transaction of the target
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot restore into {target}, left as it was: {exc}") from None
    seconds = time.monotonic() - started
    return RestoreReport(source, str(target), revision, schema_head(), seconds, found.counts)


def _restore_new(source: Path, target: Path) -> None:
    with cleaned(private_temp(target)) as temp:
        with (
            closing(_connect(source, "mode=ro&immutable=1")) as backup,
            closing(_connect(temp, "")) as copy,
        ):
            backup.backup(copy)
        publish(temp, target)
