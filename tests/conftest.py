"""Fixtures shared by every test: real SQLite and PostgreSQL databases, the app, an organiser.

Every database test runs twice, on SQLite and on PostgreSQL (parametrised `backend`). Each test
session migrates a SQLite template file once and creates its own PostgreSQL database
(`tessera_t_<random>`) that it drops at the end; each test then gets a copy of the template, or the
PostgreSQL database emptied, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import hypothesis
import pytest
from httpx._transports import default as _httpx_transports
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.app import build_state, create_app
from server.auth.service import create_token
from server.config import Settings
from server.db import Base, Database
from server.db import models as _models  # noqa: F401 (every table in Base.metadata)
from server.db.migrate import migrate
from tests.cli_home import make_demo_home

# Hypothesis's per-example deadline is a timing assertion: on a loaded 2-core CI machine an example
# that takes 250 ms proves nothing about the code (speed is bench/'s job), so there is none.
hypothesis.settings.register_profile("tessera", deadline=None)
hypothesis.settings.load_profile("tessera")

# httpx reads the CA bundle into a new SSL context for every client it makes: 40 ms of CPU here,
# and the tests make thousands of clients, nearly all to plain-HTTP loopback servers. One context
# per set of arguments and test process serves them all (httpx itself accepts a shared context as
# `verify=`); nothing mutates it after it is made.
_httpx_transports.create_ssl_context = functools.cache(_httpx_transports.create_ssl_context)

BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    # Here, not in pyproject.toml's list, so that the marker lives beside the tests that use it.
    config.addinivalue_line(
        "markers",
        "load: minutes of real doors on the deployment's topology (tests/e2e/door_load.py); "
        "`make test` runs them, `-m 'not load'` leaves them out",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Each `load` test takes most of the two cores while its doors scan: run two at once and
    # both starve (a door cut off by kill -9 then waits for CPU, not for the hub). With
    # `--dist loadgroup` (make test) they run one after another on one worker, beside the rest.
    for item in items:
        if item.get_closest_marker("load") is not None:
            item.add_marker(pytest.mark.xdist_group("load"))


POSTGRES_ADMIN_URL = os.environ.get("TESSERA_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")


def _pg_url(database: str) -> str:
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


async def _create_pg_database() -> str:
    name = f"tessera_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    database = Database(_pg_url(name))
    await migrate(database)
    await database.dispose()
    return name


async def _drop_pg_database(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _empty_pg_database(name: str) -> None:
    """Every table emptied, children before parents, in one transaction.

    DELETE rather than TRUNCATE: on these near-empty tables TRUNCATE (new files for 21 tables)
    took 0.1 to 0.4 s a test, DELETE ~0.01 s. No table has a sequence to restart.
    """
    connection = await asyncpg.connect(_pg_url(name))
    try:
        present = {
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        }
        ordered = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name in present]
        unknown = sorted(present - set(ordered))  # not in the models: nothing refers to them
        async with connection.transaction():
            for table in [*unknown, *ordered]:
                await connection.execute(f'DELETE FROM "{table}"')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tessera.db"

    async def build() -> None:
        database = Database(f"sqlite:///{path}")
        await migrate(database)
        await database.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def demo_home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where `tessera migrate` and `tessera demo` ran (tests/cli_home.py)."""
    return make_demo_home(tmp_path_factory.mktemp("demo-home"))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    name = asyncio.run(_create_pg_database())
    yield name
    asyncio.run(_drop_pg_database(name))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        target = tmp_path / "tessera.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    name = request.getfixturevalue("pg_database")
    asyncio.run(_empty_pg_database(name))
    return _pg_url(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        keys_dir=str(tmp_path / "keys"),
        base_url="https://tickets.test",
        access_log=False,
        mail_dir=str(tmp_path / "mail"),
    )


# One app per worker process and per shape: building Litestar's route tree is 0.3 s, a third of
# a typical test, and `settings` changes only these two things in it (see `create_app`).
_APPS: dict[tuple[bool, int], Litestar] = {}


def app_for(settings: Settings) -> Litestar:
    """The service for `settings`: the worker's app for that shape, with a new state (database,
    keys, fan-out, hub, outbox, rate limiters) made from `settings`. One app of a shape at a
    time: a test that runs two side by side (two instances) builds the second with `create_app`."""
    shape = (settings.access_log, settings.max_body_bytes)
    cached = _APPS.get(shape)
    if cached is None:
        cached = _APPS[shape] = create_app(settings)
    else:
        cached.state = build_state(settings)
    return cached


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The service for this test's settings (`app_for`)."""
    return app_for(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app, base_url="https://tickets.test") as test_client:
        yield test_client


async def _create_token(settings: Settings, *, read_only: bool = False) -> str:
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            _, secret = await create_token(session, "tests", read_only=read_only)
    finally:
        await database.dispose()
    return secret


@pytest.fixture
async def organiser_token(settings: Settings) -> str:
    return await _create_token(settings)


@pytest.fixture
async def read_only_token(settings: Settings) -> str:
    return await _create_token(settings, read_only=True)


@pytest.fixture
async def api(client: AsyncTestClient[Litestar], organiser_token: str) -> AsyncTestClient[Litestar]:
    """The test client carrying a full-access organiser token."""
    client.headers["Authorization"] = f"Bearer {organiser_token}"
    return client


def problem_of(response: Any) -> dict[str, Any]:
    """The problem+json body of an error answer, checked to be one."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code
    assert {"type", "title", "status", "detail"} <= set(body)
    return dict(body)
