"""What SQLite and PostgreSQL backups share: the refusal, the reports, the schema judgement, and
writing a private file that takes its name only once it is whole and checked.

A backup file is recognised by its first bytes (SQLite's header or pg_dump's `PGDMP`), then
judged by the Alembic revision it holds: one of this Tessera's revisions is restorable (an older
one is brought up to date by `tessera migrate` afterwards); an unknown revision in a database that
has Tessera's tables comes from a newer Tessera, which must be installed first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

__all__ = [
    "BackupError",
    "BackupReport",
    "RestoreReport",
    "check_target_file",
    "cleaned",
    "file_kind",
    "held_rows",
    "judge_revision",
    "private_temp",
    "publish",
    "remove",
    "schema_head",
]

Kind = Literal["sqlite", "pg_dump"]

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
# Tables every Tessera schema has had since 0001: their presence tells a Tessera database of an
# unknown (newer) revision from some other application's database.
TESSERA_TABLES = frozenset({"alembic_version", "event", "ticket", "booking", "signing_key"})


class BackupError(Exception):
    """A backup or restore that cannot be done; `str()` is the one line shown to the operator."""


@dataclass(frozen=True)
class BackupReport:
    """What `tessera backup` wrote and checked."""

    path: Path
    kind: Kind
    size: int
    revision: str
    seconds: float
    counts: Mapping[str, int] = field(default_factory=dict)
    check: str = "integrity ok"

    def summary(self) -> str:
        what = "SQLite database" if self.kind == "sqlite" else "pg_dump custom-format archive"
        return (
            f"backup {self.path}: {what}, {_size(self.size)}, schema {self.revision}"
            f"{_counted(self.counts)}, {self.check} ({self.seconds:.1f} s)"
        )


@dataclass(frozen=True)
class RestoreReport:
    """What `tessera restore` put where, and whether `tessera migrate` is needed next."""

    source: Path
    target: str
    revision: str
    head: str
    seconds: float
    counts: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        state = (
            "up to date"
            if self.revision == self.head
            else f"older than this Tessera's {self.head}: run `tessera migrate` next"
        )
        return (
            f"restored {self.source} into {self.target}: schema {self.revision} ({state})"
            f"{_counted(self.counts)} ({self.seconds:.1f} s)"
        )


def _counted(counts: Mapping[str, int]) -> str:
    return "".join(f", {n} {name}{'' if n == 1 else 's'}" for name, n in counts.items())


def held_rows(held: Mapping[str, int]) -> str:
    """The tables a target already fills, the ones people know first: "1 event, 6 ticket"."""
    first = sorted(held, key=lambda name: (name not in ("event", "ticket", "scan"), name))
    return ", ".join(f"{held[name]} {name}" for name in first[:3])


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def file_kind(path: Path) -> Kind:
    """Which kind of backup `path` is, from its first bytes; raises BackupError for any other."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise BackupError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BackupError(f"{path} is a directory, not a backup file") from None
    except PermissionError:
        raise BackupError(f"{path}: permission denied") from None
    if not head:
        raise BackupError(f"{path} is empty: not a Tessera backup (an interrupted copy?)")
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "pg_dump"
    raise BackupError(
        f"{path} is not a Tessera backup: neither a SQLite database nor a pg_dump archive"
    )


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    from alembic.script import ScriptDirectory

    from server.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None, "the migrations have a head"
    return head, frozenset(r.revision for r in script.walk_revisions())


def schema_head() -> str:
    """The newest schema revision this Tessera knows (what `tessera migrate` upgrades to)."""
    return _revisions()[0]


def judge_revision(path: Path, revision: str | None, tables: frozenset[str]) -> str:
    """The backup's revision if this Tessera can restore it; raises BackupError otherwise."""
    head, known = _revisions()
    if revision is None or "event" not in tables:
        raise BackupError(
            f"{path} is not a Tessera backup: it holds no Tessera schema (no alembic_version"
            " revision and event table)"
        )
    if revision in known:
        return revision
    if tables >= TESSERA_TABLES:
        raise BackupError(
            f"{path} was made by a newer Tessera (schema {revision}; this one knows up to"
            f" {head}): upgrade Tessera, then restore"
        )
    raise BackupError(f"{path} is not a Tessera backup: unknown schema revision {revision!r}")


def private_temp(target: Path) -> Path:
    """A new empty file beside `target`, mode 0600 from its creation (mkstemp), to fill then
    `publish`: the target never exists half-written, nor readable by others for a moment."""
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(descriptor)
    return Path(name)


def publish(temp: Path, target: Path) -> None:
    """Give the finished `temp` its name atomically, durable once this returns."""
    with temp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def cleaned(temp: Path) -> Iterator[Path]:
    """`temp` and its SQLite side files are gone afterwards unless it was published."""
    try:
        yield temp
    finally:
        remove(*(temp.with_name(temp.name + s) for s in ("", "-wal", "-shm", "-journal")))


def check_target_file(target: Path) -> None:
    """A backup is written as a file in an existing directory; refuse anything else up front."""
    if target.is_dir():
        raise BackupError(f"{target} is a directory: give the backup file's name")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} does not exist: create it first")
