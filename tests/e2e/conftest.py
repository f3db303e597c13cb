"""A real server for end-to-end tests: uvicorn in a thread on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from server.app import create_app
from server.config import Settings
from tests.live import free_port, serve_in_thread


@dataclass
class Live:
    base_url: str
    port: int
    settings: Settings


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    """The app on the test's database (SQLite or PostgreSQL), served for real."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    live_settings = Settings(
        database_url=settings.database_url,
        keys_dir=settings.keys_dir,
        base_url=base_url,
        access_log=False,
    )
    with serve_in_thread(create_app(live_settings), port):
        yield Live(base_url, port, live_settings)


@pytest.fixture
async def organiser(live: Live, organiser_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the live server with the organiser's token."""
    headers = {"Authorization": f"Bearer {organiser_token}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers, timeout=10) as client:
        yield client
