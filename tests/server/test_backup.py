"""`tessera backup` and `tessera restore` on SQLite and PostgreSQL, with real files and databases.

A backup is a private (0600) file written whole or not at all, checked before it takes its name;
a restore goes into a new or empty database only (unless forced), and refuses anything that is
not a whole Tessera backup of a schema this Tessera knows, with one line and exit code 1,
leaving the target as it was.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from server.backup import BackupError, backup_database, restore_database
from server.backup.common import schema_head
from server.cli import main
from server.config import Settings
from server.db import Database
from server.db.migrate import migrate
from server.demo import seed_demo
from tests.conftest import POSTGRES_ADMIN_URL, _create_pg_database, _drop_pg_database, _pg_url

HEAD = schema_head()  # the newest migration: what `tessera migrate` writes
COUNTED = ("event", "booking", "ticket", "signing_key", "api_token", "device")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _sqlite_counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return {t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED}


def _revision(path: Path) -> str:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def _settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, keys_dir=str(tmp_path / "keys"), access_log=False)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common 022 umask, under which a file is 0644 unless its writer asks otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def demo(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A migrated SQLite database holding the demo event, bookings, tickets, doors and key."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir(mode=0o700)
    shutil.copyfile(sqlite_template, tmp_path / "var" / "tessera.db")
    settings = _settings(f"sqlite:///{tmp_path}/var/tessera.db", tmp_path)

    async def seed() -> None:
        database = Database(settings.database_url)
        try:
            await seed_demo(database, settings)
        finally:
            await database.dispose()

    asyncio.run(seed())
    return settings


def _new_target(tmp_path: Path, demo: Settings, name: str = "restored") -> Settings:
    return demo.replace(database_url=f"sqlite:///{tmp_path}/{name}/tessera.db")


# --- SQLite: backup -------------------------------------------------------------------------


def test_backup_is_a_private_checked_copy_with_a_summary(demo, tmp_path):
    target = tmp_path / "backups" / "tessera.db"
    target.parent.mkdir()
    report = backup_database(demo, target)
    assert _mode(target) == 0o600
    assert _sqlite_counts(target) == _sqlite_counts(tmp_path / "var" / "tessera.db")
    assert _revision(target) == HEAD
    line = report.summary()
    assert "\n" not in line and str(target) in line
    assert f"schema {HEAD}" in line and "integrity ok" in line and "6 tickets" in line
    assert sorted(p.name for p in target.parent.iterdir()) == ["tessera.db"], "no temp file left"
    with closing(sqlite3.connect(f"file:{target}?mode=ro", uri=True)) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "delete", "the backup is one self-contained file, no -wal beside it"


def test_a_failed_backup_leaves_the_previous_one_untouched(demo, tmp_path):
    target = tmp_path / "tessera.backup"
    backup_database(demo, target)
    before = target.read_bytes()
    plain = tmp_path / "other.db"
    with closing(sqlite3.connect(plain)) as connection:
        connection.execute("CREATE TABLE notes (x)")
        connection.commit()
    with pytest.raises(BackupError, match="not a Tessera database"):
        backup_database(demo.replace(database_url=f"sqlite:///{plain}"), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda d: d / "missing" / "x.db", "does not exist", id="no-directory"),
        pytest.param(lambda d: d, "is a directory", id="a-directory"),
    ],
)
def test_backup_refuses_a_path_it_cannot_write_as_a_file(demo, tmp_path, make, message):
    with pytest.raises(BackupError, match=message):
        backup_database(demo, make(tmp_path))


@pytest.mark.parametrize("name", ["tessera.db", "tessera.db-wal"])
def test_backup_refuses_to_overwrite_the_live_database(demo, tmp_path, name):
    live = tmp_path / "var" / "tessera.db"
    before = _sqlite_counts(live)
    with pytest.raises(BackupError, match="the database itself"):
        backup_database(demo, tmp_path / "var" / ".." / "var" / name)
    assert _sqlite_counts(live) == before


def test_restore_refuses_a_backup_into_itself(demo, tmp_path):
    with pytest.raises(BackupError, match="the database itself"):
        restore_database(demo, tmp_path / "var" / "tessera.db", force=True)


def test_backup_of_a_database_that_does_not_exist_creates_nothing(tmp_path):
    settings = _settings(f"sqlite:///{tmp_path}/nowhere/tessera.db", tmp_path)
    with pytest.raises(BackupError, match="no database at"):
        backup_database(settings, tmp_path / "b.db")
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "b.db").exists()


def test_the_keystore_is_not_in_the_database_backup(demo, tmp_path):
    target = tmp_path / "b.db"
    backup_database(demo, target)
    (pem,) = (tmp_path / "keys").glob("*.pem")
    private = pem.read_bytes()
    body = b"".join(line for line in private.splitlines() if not line.startswith(b"-----"))
    data = target.read_bytes()
    assert body not in data and b"PRIVATE KEY" not in data
    assert pem.stem.encode() in data, "the public half (signing_key row) is in it"


def test_backup_is_consistent_while_another_connection_writes(demo, tmp_path):
    """A write transaction open during the backup is not in it: the backup is one snapshot."""
    live = tmp_path / "var" / "tessera.db"
    writer = sqlite3.connect(live, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE ticket SET holder_name = 'half-written'")
        backup_database(demo, tmp_path / "b.db")
        writer.execute("COMMIT")
    finally:
        writer.close()
    with closing(sqlite3.connect(tmp_path / "b.db")) as connection:
        names = {r[0] for r in connection.execute("SELECT holder_name FROM ticket")}
    assert "half-written" not in names


# --- SQLite: restore ------------------------------------------------------------------------


def test_restore_into_a_new_database_gives_the_same_rows_privately(demo, tmp_path):
    backup_database(demo, tmp_path / "b.db")
    target = _new_target(tmp_path, demo)
    report = restore_database(target, tmp_path / "b.db")
    restored = tmp_path / "restored" / "tessera.db"
    assert _sqlite_counts(restored) == _sqlite_counts(tmp_path / "var" / "tessera.db")
    assert _mode(restored) == 0o600 and _mode(restored.parent) == 0o700
    assert report.revision == HEAD and "up to date" in report.summary()
    assert sorted(p.name for p in restored.parent.iterdir()) == ["tessera.db"]


def test_restore_into_a_migrated_empty_database(demo, tmp_path):
    backup_database(demo, tmp_path / "b.db")
    target = _new_target(tmp_path, demo)
    asyncio.run(_migrate(target.database_url))
    restore_database(target, tmp_path / "b.db")
    assert _sqlite_counts(tmp_path / "restored" / "tessera.db")["ticket"] == 6


def test_restore_refuses_a_database_with_data_unless_forced(demo, tmp_path):
    backup_database(demo, tmp_path / "b.db")
    live = tmp_path / "var" / "tessera.db"
    with closing(sqlite3.connect(live)) as connection:
        connection.execute("DELETE FROM api_token")
        connection.commit()
    before = _sqlite_counts(live)
    with pytest.raises(BackupError, match=r"already holds data.*--force"):
        restore_database(demo, tmp_path / "b.db")
    assert _sqlite_counts(live) == before
    restore_database(demo, tmp_path / "b.db", force=True)
    assert _sqlite_counts(live)["api_token"] == 1
    assert _mode(live) == 0o600


async def _migrate(url: str, revision: str = "head") -> None:
    database = Database(url)
    try:
        await migrate(database, revision)
    finally:
        await database.dispose()


def test_an_older_backup_restores_and_migrate_brings_it_up_to_date(tmp_path):
    old = _settings(f"sqlite:///{tmp_path}/old.db", tmp_path)
    asyncio.run(_migrate(old.database_url, "0005"))
    backup_database(old, tmp_path / "old.backup")
    target = _settings(f"sqlite:///{tmp_path}/new/tessera.db", tmp_path)
    report = restore_database(target, tmp_path / "old.backup")
    assert report.revision == "0005" and "tessera migrate" in report.summary()
    asyncio.run(_migrate(target.database_url))
    assert _revision(tmp_path / "new" / "tessera.db") == HEAD


def _garbage(backup: Path, tmp_path: Path) -> Path:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"\x89PNG not a database at all\n" * 400)
    return path


def _empty(backup: Path, tmp_path: Path) -> Path:
    path = tmp_path / "empty.db"
    path.touch()
    return path


def _half(backup: Path, tmp_path: Path) -> Path:
    path = tmp_path / "half.db"
    data = backup.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _cut_mid_page(backup: Path, tmp_path: Path) -> Path:
    path = tmp_path / "cut.db"
    path.write_bytes(backup.read_bytes()[:-1000])
    return path


def _corrupt(backup: Path, tmp_path: Path) -> Path:
    """Whole length, a page of the middle overwritten: only the integrity check can tell."""
    path = tmp_path / "corrupt.db"
    data = bytearray(backup.read_bytes())
    middle = (len(data) // 4096 // 2) * 4096
    data[middle : middle + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    return path


def _not_tessera(backup: Path, tmp_path: Path) -> Path:
    path = tmp_path / "notes.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE notes (x)")
        connection.commit()
    return path


def _newer(backup: Path, tmp_path: Path) -> Path:
    path = tmp_path / "newer.db"
    shutil.copyfile(backup, path)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0042'")
        connection.commit()
    return path


def _pg_archive(backup: Path, tmp_path: Path) -> Path:
    path = tmp_path / "tessera.dump"
    path.write_bytes(b"PGDMP\x01\x0f\x00" + b"\x00" * 200)
    return path


def _missing(backup: Path, tmp_path: Path) -> Path:
    return tmp_path / "no-such-file.db"


BAD_FILES = [
    pytest.param(_garbage, "not a Tessera backup", id="garbage"),
    pytest.param(_empty, "is empty", id="empty"),
    pytest.param(_half, "truncated", id="truncated-half"),
    pytest.param(_cut_mid_page, "truncated", id="truncated-mid-page"),
    pytest.param(_corrupt, "damaged", id="corrupt-page"),
    pytest.param(_not_tessera, "not a Tessera backup", id="other-sqlite-database"),
    pytest.param(_newer, r"newer Tessera.*upgrade", id="newer-schema"),
    pytest.param(_pg_archive, "PostgreSQL", id="pg-archive-into-sqlite"),
    pytest.param(_missing, "no such file", id="missing"),
]


@pytest.fixture
def big_backup(demo: Settings, tmp_path: Path) -> Path:
    """A backup of several pages of scans, so that halves and middles hit real data."""
    live = tmp_path / "var" / "tessera.db"
    with closing(sqlite3.connect(live)) as connection:
        device, event = connection.execute("SELECT id, event_id FROM device").fetchone()
        rows = [
            (device, f"scan-{n:05}", event, "list", f"CODE-{n}", "entry", "2027-01-01", 0)
            for n in range(3000)
        ]
        connection.executemany(
            "INSERT INTO scan (device_id, scan_id, event_id, list_id, code, direction,"
            " scanned_at, received_at, accepted, offline, forced, entries, annulled)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?7, ?8, 0, 0, 0, 0)",
            rows,
        )
        connection.commit()
    path = tmp_path / "big.backup"
    backup_database(demo, path)
    return path


@pytest.mark.parametrize(("make", "message"), BAD_FILES)
def test_restore_refuses_a_bad_file_and_writes_nothing(big_backup, demo, tmp_path, make, message):
    source = make(big_backup, tmp_path)
    target = _new_target(tmp_path, demo)
    with pytest.raises(BackupError, match=message) as refused:
        restore_database(target, source)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "restored" / "tessera.db").exists()
    leftovers = list((tmp_path / "restored").iterdir()) if (tmp_path / "restored").exists() else []
    assert leftovers == []


@pytest.mark.parametrize(("make", "message"), BAD_FILES[:3])
def test_a_bad_file_leaves_an_existing_database_as_it_was(
    big_backup, demo, tmp_path, make, message
):
    live = tmp_path / "var" / "tessera.db"
    before = _sqlite_counts(live)
    with pytest.raises(BackupError, match=message):
        restore_database(demo, make(big_backup, tmp_path), force=True)
    assert _sqlite_counts(live) == before


# --- the command line -----------------------------------------------------------------------


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for name in [k for k in os.environ if k.startswith("TESSERA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TESSERA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TESSERA_KEYS_DIR", settings.keys_dir)


def test_the_commands_print_one_summary_line_or_one_error_line(demo, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, demo)
    assert main(["backup", str(tmp_path / "b.db")]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "integrity ok" in out
    assert "keys" in err, "the reminder that the keystore is not in it"
    assert main(["restore", str(tmp_path / "b.db")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("tessera: ") and err.count("\n") == 1
    assert "--force" in err
    (tmp_path / "junk").write_bytes(b"junk" * 100)
    _env(monkeypatch, _new_target(tmp_path, demo))
    assert main(["restore", str(tmp_path / "junk")]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["restore", str(tmp_path / "b.db")]) == 0
    out, _ = capsys.readouterr()
    assert out.count("\n") == 1 and "restored" in out


# --- PostgreSQL -----------------------------------------------------------------------------


def _need_pg_tools() -> None:
    missing = [t for t in ("pg_dump", "pg_restore", "psql") if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not on PATH: install the PostgreSQL client (postgresql-client)"
        )


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _pg_counts(name: str) -> dict[str, int]:
    connection = await asyncpg.connect(_pg_url(name))
    try:
        return {t: await connection.fetchval(f'SELECT count(*) FROM "{t}"') for t in COUNTED}
    finally:
        await connection.close()


async def _pg_tables(name: str) -> set[str]:
    connection = await asyncpg.connect(_pg_url(name))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await connection.close()


@pytest.fixture
def pg_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, str]]:
    """A migrated PostgreSQL database of its own with the demo in it; dropped afterwards."""
    _need_pg_tools()
    monkeypatch.chdir(tmp_path)
    name = asyncio.run(_create_pg_database())
    settings = _settings(_pg_url(name), tmp_path)

    async def seed() -> None:
        database = Database(settings.database_url)
        try:
            await seed_demo(database, settings)
        finally:
            await database.dispose()

    try:
        asyncio.run(seed())
        yield settings, name
    finally:
        asyncio.run(_drop_pg_database(name))


@pytest.fixture
def pg_empty() -> Iterator[str]:
    """A new PostgreSQL database with nothing in it, as an operator creates one to restore into."""
    name = f"tessera_restore_{os.urandom(4).hex()}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(_drop_pg_database(name))


def test_pg_backup_and_restore_into_a_new_database(pg_demo, pg_empty, tmp_path):
    settings, name = pg_demo
    archive = tmp_path / "tessera.dump"
    report = backup_database(settings, archive)
    assert _mode(archive) == 0o600 and archive.read_bytes().startswith(b"PGDMP")
    assert f"schema {HEAD}" in report.summary() and "read back whole" in report.summary()
    restored = restore_database(settings.replace(database_url=_pg_url(pg_empty)), archive)
    assert restored.revision == HEAD
    assert asyncio.run(_pg_counts(pg_empty)) == asyncio.run(_pg_counts(name))


def test_pg_restore_refuses_data_unless_forced_and_a_bad_archive_changes_nothing(pg_demo, tmp_path):
    settings, name = pg_demo
    archive = tmp_path / "tessera.dump"
    backup_database(settings, archive)
    with pytest.raises(BackupError, match=r"already holds data.*--force"):
        restore_database(settings, archive)
    truncated = tmp_path / "cut.dump"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    before = asyncio.run(_pg_counts(name))
    with pytest.raises(BackupError, match="truncated or damaged"):
        restore_database(settings, truncated, force=True)
    assert asyncio.run(_pg_counts(name)) == before
    asyncio.run(_admin_in(name, "DELETE FROM api_token"))
    restore_database(settings, archive, force=True)
    assert asyncio.run(_pg_counts(name)) == before


async def _admin_in(name: str, sql: str) -> None:
    connection = await asyncpg.connect(_pg_url(name))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def test_pg_restore_refuses_a_newer_schema_and_a_sqlite_file(pg_demo, pg_empty, tmp_path):
    settings, name = pg_demo
    asyncio.run(_admin_in(name, "UPDATE alembic_version SET version_num = '0042'"))
    archive = tmp_path / "newer.dump"
    backup_database(settings, archive)
    target = settings.replace(database_url=_pg_url(pg_empty))
    with pytest.raises(BackupError, match=r"newer Tessera.*upgrade"):
        restore_database(target, archive)
    sqlite_file = tmp_path / "x.db"
    with closing(sqlite3.connect(sqlite_file)) as connection:
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
    with pytest.raises(BackupError, match="SQLite"):
        restore_database(target, sqlite_file)
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"PGDMP" + os.urandom(3000))
    with pytest.raises(BackupError, match=r"truncated or damaged|not a Tessera backup"):
        restore_database(target, garbage)
    assert asyncio.run(_pg_tables(pg_empty)) == set()


def test_pg_backup_without_pg_dump_says_what_to_run(pg_demo, tmp_path, monkeypatch):
    settings, _ = pg_demo
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(BackupError, match=r"pg_dump is not on PATH.*pg_dump --format=custom"):
        backup_database(settings, tmp_path / "x.dump")
    assert not (tmp_path / "x.dump").exists()


def test_pg_restore_that_fails_midway_rolls_back_the_drop_too(pg_demo, tmp_path):
    """The archive check is bypassed: pg_restore dies on the stream after the DROP of every
    table went in, and without its COMMIT the database keeps all its rows."""
    from server.backup.postgres import _stream, libpq_url

    settings, name = pg_demo
    archive = tmp_path / "tessera.dump"
    backup_database(settings, archive)
    cut = tmp_path / "cut.dump"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    before = asyncio.run(_pg_counts(name))
    dsn, env = libpq_url(settings.database_url)
    psql = [shutil.which("psql") or "psql", "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", dsn]
    with pytest.raises(BackupError, match="changed nothing"):
        _stream(cut, psql, env, drop_first=True)
    assert asyncio.run(_pg_counts(name)) == before
