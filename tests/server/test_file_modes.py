"""Tessera's own files are private: var/ 0700, the SQLite files and the demo token 0600, also
when an older version created them readable by everyone (they hold links, names and emails)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.config import Settings
from server.db import Database
from server.db.migrate import migrate
from server.demo import seed_demo


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common 022 umask, under which files are created 0644 unless asked otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _files(database: Path) -> list[Path]:
    return [database.with_name(database.name + s) for s in ("", "-wal", "-shm")]


def _old_version_layout(directory: Path) -> Path:
    """A database directory and WAL files as a version without file modes left them: 0755/0644."""
    directory.mkdir(mode=0o755)
    database = directory / "tessera.db"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
    for leftover in _files(database)[1:]:  # an empty WAL and shared-memory file are harmless
        leftover.touch(mode=0o644)
    assert [_mode(path) for path in _files(database)] == [0o644] * 3
    assert _mode(directory) == 0o755
    return database


async def test_a_new_sqlite_database_its_wal_files_and_its_directory_are_private(tmp_path):
    database = tmp_path / "var" / "tessera.db"
    db = Database(f"sqlite:///{database}")
    try:
        await migrate(db)
        async with db.transaction() as session:
            await session.connection()  # an open connection keeps -wal and -shm in place
            assert [_mode(path) for path in _files(database)] == [0o600] * 3
    finally:
        await db.dispose()
    assert _mode(database.parent) == 0o700


async def test_an_older_var_directory_and_its_files_are_tightened_on_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    database = _old_version_layout(tmp_path / "var")
    await Database("sqlite:///var/tessera.db").dispose()  # what every command builds first
    assert _mode(tmp_path / "var") == 0o700
    assert [_mode(path) for path in _files(database)] == [0o600] * 3


async def test_a_directory_the_operator_chose_keeps_its_mode_but_the_files_are_private(tmp_path):
    shared = tmp_path / "srv-data"
    database = _old_version_layout(shared)
    await Database(f"sqlite:///{database}").dispose()
    assert _mode(shared) == 0o755
    assert _mode(database) == 0o600


async def test_the_demo_token_and_var_are_private_even_if_left_readable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(database_url="sqlite:///var/tessera.db", keys_dir="keys", access_log=False)
    database = Database(settings.database_url)
    try:
        await migrate(database)
        await seed_demo(database, settings)
        token_file = tmp_path / "var" / "demo-token"
        assert _mode(token_file) == 0o600
        os.chmod(token_file, 0o644)
        os.chmod(tmp_path / "var", 0o755)
        await seed_demo(database, settings)
    finally:
        await database.dispose()
    assert _mode(token_file) == 0o600
    assert _mode(tmp_path / "var") == 0o700
