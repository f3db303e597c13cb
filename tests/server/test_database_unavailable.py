"""With the database out of reach, Tessera says so: 503 problem+json, never a 500.

A real uvicorn server on a PostgreSQL database of the test's own, reached through a TCP proxy
(tests/scanner_client/tcp_proxy.py) that the test cuts: every connection to PostgreSQL is reset
and new ones are refused, as when PostgreSQL stops. Issue 19, item 5.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import msgspec

from server.app import create_app
from server.config import Settings
from tests.conftest import POSTGRES_ADMIN_URL, _empty_pg_database
from tests.live import serve_in_thread
from tests.scanner_client.tcp_proxy import TcpProxy


@contextmanager
def _proxy_in_thread(target: int) -> Iterator[tuple[TcpProxy, asyncio.AbstractEventLoop]]:
    """The proxy on a loop of its own: the server's start-up (which blocks this test's loop)
    already goes through it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = asyncio.run_coroutine_threadsafe(TcpProxy(target).start(), loop).result(10)
    try:
        yield proxy, loop
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def test_redeem_and_readyz_answer_503_while_postgresql_is_cut_and_recover(
    pg_database: str, tmp_path: Path
) -> None:
    await _empty_pg_database(pg_database)
    target = int(POSTGRES_ADMIN_URL.rsplit(":", 1)[1].split("/")[0])
    base = POSTGRES_ADMIN_URL.rsplit(":", 1)[0]
    settings = Settings(
        database_url=f"{base}:{target}/{pg_database}",
        keys_dir=str(tmp_path / "keys"),
        access_log=False,
    )
    scan = {"scan_id": "0" * 32, "code": "ABCD-EFGH-JKLM", "list_id": "x"}
    device = {"Authorization": "Bearer tsd_not_a_device"}
    with _proxy_in_thread(target) as (proxy, loop):
        proxy_port = proxy.port
        settings = msgspec.structs.replace(
            settings, database_url=f"{base}:{proxy_port}/{pg_database}"
        )
        with serve_in_thread(create_app(settings)) as (port, _):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
                before = await api.post("/api/v1/checkin/redeem", json=scan, headers=device)
                assert before.status_code == 401, before.text
                loop.call_soon_threadsafe(proxy.cut)
                for _ in range(3):  # the pool's connections are reset, then refused
                    ready = await api.get("/readyz")
                    assert ready.status_code == 503, ready.text
                    answer = await api.post("/api/v1/checkin/redeem", json=scan, headers=device)
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["content-type"] == "application/problem+json"
                    assert answer.json()["code"] == "database_unavailable"
                    assert answer.headers["retry-after"].isdigit()
                loop.call_soon_threadsafe(proxy.restore)
                await asyncio.sleep(0.1)
                after = await api.post("/api/v1/checkin/redeem", json=scan, headers=device)
                assert after.status_code == 401, after.text
                assert (await api.get("/readyz")).status_code == 200
