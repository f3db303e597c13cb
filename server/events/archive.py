"""Archiving a finished event: its exports written to a directory, then its doors closed for good.

Order (docs/decisions/0013-change-log-retention-and-archive.md):
1. The event must have ended (its end, or with none its start, is past) and not be archived.
2. The bookings, tickets and check-ins exports (the organiser API's CSV, formula-safe, without
   tokens or guest links) and a JSON manifest (the event, each file's rows and SHA-256) are
   written into the directory, which is created 0700; each file is created 0600 and never
   overwrites one that is there. Nothing in the database has changed yet: a failure here
   leaves the event as it was.
3. One transaction marks the event archived and revokes every device of the event (their
   sockets close, their tokens are refused with `event_archived` from then on).
4. The event's change log, its bulkiest rows, is removed (the floor becomes its head). Bookings,
   tickets and scans stay, read-only for the doors: guests' links and the organiser's records
   keep working.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from server.changes.publish import Publisher, committing
from server.changes.retention import drop_log
from server.checkin.models import Device
from server.checkin.service import revoke_device
from server.db import Database, utcnow
from server.errors import InvalidState
from server.events.service import get_event
from server.exports.service import ExportKind, prepare_export
from server.exports.writers import csv_rows_async

__all__ = ["Archived", "archive_event", "ensure_not_archived"]


@dataclass(frozen=True)
class Archived:
    event_id: str
    files: list[tuple[Path, int]]  # each file written and its data rows
    devices_revoked: int
    changes_removed: int


async def archive_event(
    database: Database,
    fanout: Publisher,
    event_id: str,
    directory: Path,
    *,
    now: datetime | None = None,
) -> Archived:
    """Export and archive the event (see the module's order). Raises NotFound, InvalidState
    (not ended, already archived), or OSError for the directory (nothing changed then)."""
    now = now or utcnow()
    async with database.transaction(read_only=True) as session:
        event = await get_event(session, event_id)
        ensure_not_archived(event)
        ended = event.ends_at or event.starts_at
        if ended > now:
            raise InvalidState(
                f"event {event_id} has not ended yet (it ends {ended.isoformat()}): "
                "archive it once it is over"
            )
        slug, summary = event.slug, _summary(event)
    _make_private_dir(directory)
    files = []
    for kind in ExportKind:
        path = directory / f"{slug}-{kind}.csv"
        files.append((path, *await _write_export(database, event_id, kind, path)))
    manifest = {
        "event": summary,
        "exported_at": now.isoformat(),
        "files": [{"name": p.name, "rows": rows, "sha256": digest} for p, rows, digest in files],
    }
    _write_private(directory / f"{slug}-archive.json", json.dumps(manifest, indent=2).encode())
    async with committing(database, fanout) as session:
        event = await get_event(session, event_id, for_update=True)
        ensure_not_archived(event)
        event.archived_at = now
        ids = list(await session.scalars(select(Device.id).where(Device.event_id == event_id)))
        revoked = 0
        for device_id in ids:
            device = await revoke_device(session, device_id, now=now)
            revoked += device.revoked_at == now
    removed = await drop_log(database, event_id)
    return Archived(event_id, [(p, rows) for p, rows, _ in files], revoked, removed)


def ensure_not_archived(event: object) -> None:
    """Raises InvalidState when `event` (an Event) was archived."""
    archived_at = getattr(event, "archived_at", None)
    if archived_at is not None:
        name = getattr(event, "id", "")
        raise InvalidState(f"event {name} was archived {archived_at.isoformat()}")


def _summary(event: object) -> dict[str, object]:
    names = ("id", "slug", "name", "starts_at", "ends_at", "timezone", "venue")
    values = {name: getattr(event, name) for name in names}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


async def _write_export(
    database: Database, event_id: str, kind: ExportKind, path: Path
) -> tuple[int, str]:
    """Write one export to `path` (created 0600, never replacing a file); its rows and SHA-256."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    digest = hashlib.sha256()
    rows = 0
    with os.fdopen(fd, "wb") as out:
        async with database.transaction(read_only=True) as session:
            export = await prepare_export(session, event_id, kind)

            async def counted():  # type: ignore[no-untyped-def]
                nonlocal rows
                async for row in export.rows(session):
                    rows += 1
                    yield row

            async for chunk in csv_rows_async(export.header, counted()):
                out.write(chunk)
                digest.update(chunk)
        out.flush()
        os.fsync(out.fileno())
    return rows, digest.hexdigest()


def _make_private_dir(directory: Path) -> None:
    """Create `directory` 0700 (and its parents); an existing one is used as it is."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
