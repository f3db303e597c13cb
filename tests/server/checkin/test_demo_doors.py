"""`tessera demo` gives the demo two doors to pair, with a fresh pairing code on every run.

Codes are stored hashed, so the one printed last time cannot be printed again: every run issues
a new one for each door still unpaired, and the old one stops working. The printed command is
checked the way a person uses it: pasted into a shell, it pairs a real `tessera-scan` with a
served hub.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.checkin import service
from server.checkin.schemas import DeviceCreate
from server.config import Settings
from server.db import Database, utcnow
from server.db.migrate import migrate
from server.demo import seed_demo
from server.errors import InvalidState, NotFound, Unauthenticated
from tests.factories import create_event
from tests.live import free_port, serve_in_thread

ROOT = Path(__file__).resolve().parents[3]
PAIR_PREFIX = "  pair a door     "


def _seed(settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    """One `tessera demo` on `settings`' database; what it printed."""

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            await migrate(database)
            await seed_demo(database, settings)
        finally:
            await database.dispose()

    capsys.readouterr()
    asyncio.run(run())
    return capsys.readouterr().out


def _pair_commands(output: str) -> dict[str, list[str]]:
    """The printed pair commands by door name (the shell comment after each), as argv."""
    commands = {}
    for line in output.splitlines():
        if line.startswith(PAIR_PREFIX):
            command = line.removeprefix(PAIR_PREFIX)
            argv = shlex.split(command, comments=True)
            commands[command.rsplit("# ", 1)[1]] = argv
    return commands


def _code(argv: list[str]) -> str:
    return argv[2].rsplit("code=", 1)[1]


def _tessera_scan(argv: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    assert argv[:2] == ["tessera-scan", "pair"] and len(argv) == 3, argv
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "XDG_"))}
    env["TESSERA_SCAN_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "scanner_client.cli", *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def demo_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.chdir(tmp_path)  # the demo keeps its organiser token in ./var/demo-token
    port = free_port()
    yield Settings(
        database_url=f"sqlite:///{tmp_path / 'var' / 'tessera.db'}",
        keys_dir=str(tmp_path / "keys"),
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        access_log=False,
    )


def test_demo_doors_get_a_fresh_code_each_run_and_the_printed_command_pairs(
    demo_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _pair_commands(_seed(demo_settings, capsys))
    second_output = _seed(demo_settings, capsys)
    second = _pair_commands(second_output)

    assert sorted(first) == sorted(second) == ["Door North", "Door South"]
    for name in first:
        assert _code(first[name]) != _code(second[name])
        assert second[name][2].startswith("tessera-pair:?v=1&url=http%3A%2F%2F127.0.0.1%3A")
    token = (tmp_path / "var" / "demo-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    base = demo_settings.public_base_url
    with (
        serve_in_thread(create_app(demo_settings), demo_settings.port),
        httpx.Client(base_url=base, headers=headers, timeout=5) as organiser,
    ):
        stale = organiser.post(
            "/api/v1/devices/pair", json={"pairing_code": _code(first["Door North"])}
        )
        assert stale.status_code == 401, stale.text

        done = _tessera_scan(second["Door North"], tmp_path / "door-home")

        assert done.returncode == 0, done.stderr
        device_id = next(
            li.split()[1] for li in done.stdout.splitlines() if li.startswith("device")
        )
        device = organiser.get(f"/api/v1/devices/{device_id}").json()
        assert (device["name"], device["gate"], device["paired"]) == ("Door North", "North", True)

        third_output = _seed(demo_settings, capsys)
        third = _pair_commands(third_output)
        assert "  door            Door North (paired)" in third_output.splitlines()
        assert list(third) == ["Door South"]
        stale_south = _tessera_scan(second["Door South"], tmp_path / "south-home")
        assert stale_south.returncode == 1
        assert "unknown, used or expired pairing code" in stale_south.stderr

        south_id = organiser.get(f"/api/v1/events/{device['event_id']}/devices").json()
        south = next(d for d in south_id["items"] if d["name"] == "Door South")
        assert organiser.delete(f"/api/v1/devices/{south['id']}").status_code == 204
        fourth_output = _seed(demo_settings, capsys)

        assert _pair_commands(fourth_output) == {}
        assert "  door            Door South (revoked)" in fourth_output.splitlines()
        assert _tessera_scan(third["Door South"], tmp_path / "late-home").returncode == 1
        devices = organiser.get(f"/api/v1/events/{device['event_id']}/devices").json()
        assert devices["total"] == 2  # the doors were created once


async def _devices(settings: Settings, api: object, count: int) -> tuple[Database, list[str]]:
    """A database handle and `count` new devices of a new event."""
    event = await create_event(api)
    database = Database(settings.database_url)
    async with database.transaction() as session:
        created = [
            await service.create_device(
                session, event["id"], DeviceCreate(name=f"Door {n}", gate="East"), now=utcnow()
            )
            for n in range(count)
        ]
    return database, [new.device.id for new in created]


async def test_a_new_pairing_code_replaces_the_old_one(settings: Settings, api: object) -> None:
    database, (device_id, other_id) = await _devices(settings, api, 2)
    try:
        async with database.transaction() as session:
            other = await service.new_pairing_code(session, other_id, now=utcnow())
            first = await service.new_pairing_code(session, device_id, now=utcnow())
            second = await service.new_pairing_code(session, device_id, now=utcnow())
        assert first.pairing_code != second.pairing_code
        assert second.device.id == device_id and second.device.pairing_expires_at is not None
        async with database.transaction() as session:
            assert not await service.pairing_code_matches(
                session, device_id, first.pairing_code, now=utcnow()
            )
            assert await service.pairing_code_matches(
                session, device_id, second.pairing_code, now=utcnow()
            )
            # Another device's code is untouched.
            assert await service.pairing_code_matches(
                session, other_id, other.pairing_code, now=utcnow()
            )
        with pytest.raises(Unauthenticated):
            async with database.transaction() as session:
                await service.pair_device(session, first.pairing_code, now=utcnow())
        async with database.transaction() as session:
            paired, _ = await service.pair_device(session, second.pairing_code, now=utcnow())
        assert paired.id == device_id
    finally:
        await database.dispose()


async def test_a_paired_revoked_or_unknown_device_gets_no_new_code(
    settings: Settings, api: object
) -> None:
    database, (device_id,) = await _devices(settings, api, 1)
    try:
        async with database.transaction() as session:
            code = (await service.new_pairing_code(session, device_id, now=utcnow())).pairing_code
            await service.pair_device(session, code, now=utcnow())
        with pytest.raises(InvalidState, match="already paired"):
            async with database.transaction() as session:
                await service.new_pairing_code(session, device_id, now=utcnow())
        async with database.transaction() as session:
            await service.revoke_device(session, device_id, now=utcnow())
        with pytest.raises(InvalidState, match="revoked"):
            async with database.transaction() as session:
                await service.new_pairing_code(session, device_id, now=utcnow())
        with pytest.raises(NotFound):
            async with database.transaction() as session:
                await service.new_pairing_code(session, "NO-SUCH-DEVICE", now=utcnow())
        async with database.transaction() as session:
            device = await service.get_device(session, device_id)
            assert device.pairing_code_hash is None  # the refusal wrote nothing
    finally:
        await database.dispose()
