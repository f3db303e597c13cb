"""`tessera-scan run --headless` as a kiosk runs it: a subprocess, codes on stdin, JSON on stdout.

Against a real uvicorn server (SQLite and PostgreSQL) reached through a TCP proxy the test cuts:
online verdicts come from the hub; with the link cut the door decides; `kill -9` with scans
queued loses none of them, and `tessera-scan sync` uploads them once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import msgspec

from scanner_client.home import save_credentials
from scanner_client.pairing import pair, parse_pairing_input
from scanner_client.store import LocalStore
from tests.e2e.conftest import Live
from tests.e2e.test_scanner_doors import Venue, make_venue, ok
from tests.scanner_client.tcp_proxy import TcpProxy

WAIT = 15.0


def scanner(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "scanner_client.cli", *args]


def scanner_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_SCAN_HOME"] = str(home)
    return env


async def paired_home(
    tmp_path: Path, organiser: httpx.AsyncClient, venue: Venue, proxy: TcpProxy
) -> Path:
    device = await ok(
        await organiser.post(f"/api/v1/events/{venue.event_id}/devices", json={"name": "Kiosk"})
    )
    credentials = await pair(parse_pairing_input(device["pairing_uri"], None))
    credentials = msgspec.structs.replace(
        credentials,
        server=f"http://127.0.0.1:{proxy.port}",
        ws_url=f"ws://127.0.0.1:{proxy.port}/ws/scanner",
    )
    home = tmp_path / "kiosk"
    save_credentials(home, credentials)
    return home


async def run(command: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), WAIT * 2)
    return process.returncode or 0, out.decode(), err.decode()


async def read_verdicts(stream: asyncio.StreamReader, count: int) -> list[dict[str, Any]]:
    lines = []
    for _ in range(count):
        line = await asyncio.wait_for(stream.readline(), WAIT)
        assert line, "the door stopped answering"
        lines.append(json.loads(line))
    return lines


async def test_headless_online_verdicts_come_from_the_hub_one_line_each(
    tmp_path: Path, live: Live, organiser: httpx.AsyncClient
) -> None:
    venue = await make_venue(organiser, 2)
    proxy = await TcpProxy(live.port).start()
    try:
        home = await paired_home(tmp_path, organiser, venue, proxy)
        env = scanner_env(home)
        first, second = venue.tickets
        codes = [first["token"], first["code"].lower(), second["code"], "ZZZZ-ZZZZ"]
        stdin = (
            "\n".join(codes).encode()
            + b"\n\n"
            + b"\xff\xfe not utf-8\n"
            + b"A" * 10_000_000
            + b"\n"
        )
        code, out, err = await run(
            scanner(home, "run", "--headless", "--debounce", "0"), env, stdin
        )
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        # The hub answers in order; a code the door refuses on its own is shown at once, so it
        # may come first: each line names its code.
        hub = [(ln["verdict"], ln["reason"]) for ln in lines if ln["source"] == "hub"]
        assert hub == [
            ("accepted", None),
            ("rejected", "already_redeemed"),
            ("accepted", None),
            ("rejected", "invalid"),
            ("rejected", "invalid"),  # the bytes a scanner misread
        ]
        [door] = [ln for ln in lines if ln["source"] == "door"]
        assert (door["reason"], len(door["code"])) == ("invalid", 64)  # 10 MB: never recorded
        lines = [ln for ln in lines if ln["source"] == "hub"]
        assert (
            lines[1]["first_scan"]["at"] and lines[0]["ticket"]["holder_name"] == "Camille Martin"
        )
        store = LocalStore.open(home / "door.db")
        assert store.queued_count() == 0 and store.journal_count() == 5
        store.close()
    finally:
        await proxy.stop()


async def test_kill_9_with_scans_queued_offline_loses_nothing(
    tmp_path: Path, live: Live, organiser: httpx.AsyncClient
) -> None:
    venue = await make_venue(organiser, 20)
    proxy = await TcpProxy(live.port).start()
    try:
        home = await paired_home(tmp_path, organiser, venue, proxy)
        env = scanner_env(home)
        code, out, err = await run(scanner(home, "sync"), env)  # the first snapshot
        assert code == 0, err
        proxy.cut()
        process = await asyncio.create_subprocess_exec(
            *scanner(home, "run", "--headless"),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdin and process.stdout
        process.stdin.write("".join(t["token"] + "\n" for t in venue.tickets).encode())
        await process.stdin.drain()
        lines = await read_verdicts(process.stdout, len(venue.tickets))
        assert {(line["verdict"], line["source"]) for line in lines} == {("accepted", "door")}
        process.send_signal(signal.SIGKILL)  # shown means journaled: nothing may be lost
        await process.wait()

        store = LocalStore.open(home / "door.db")
        journaled = {entry.scan_id for entry in store.journal_entries()}
        assert journaled == {line["scan_id"] for line in lines}
        assert store.queued_count() == len(venue.tickets)
        store.close()

        proxy.restore()
        code, out, err = await run(scanner(home, "sync"), env)
        assert code == 0, err + out
        assert "uploaded   20 scans" in out
        stats = await ok(await organiser.get(f"/api/v1/events/{venue.event_id}/checkin/stats"))
        assert stats["checked_in"] == 20
        code, out, _ = await run(scanner(home, "sync"), env)  # nothing twice
        assert "uploaded   0 scans" in out
        stats = await ok(await organiser.get(f"/api/v1/events/{venue.event_id}/checkin/stats"))
        assert stats["checked_in"] == 20
    finally:
        await proxy.stop()
