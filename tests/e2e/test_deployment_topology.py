"""docker/compose.yaml's deployment, started from plain processes, works through its proxy.

tests/e2e/topology.py starts PostgreSQL's and Redis's stand-ins of compose.yaml (a database and a
key prefix of the test's own), `tessera migrate` once, the two `tessera serve` instances, `tessera
worker` and Debian's nginx on docker/nginx.conf. Everything below goes through nginx alone, as
guests and doors would; the instances' own access logs (one JSON line per request) tell which
instance served each request, so the test knows when a request reached the other one:

- a guest page and its QR load, with links that name the proxy (TESSERA_BASE_URL);
- a REST redeem is accepted, and the same ticket is refused `already_redeemed` by the other
  instance: the decision lives in the shared database;
- a body above Tessera's limit gets Tessera's own 413 (problem+json), not nginx's;
- the worker, not an instance, sends a resent e-ticket mail (TESSERA_WORKER=external);
- a door's websocket through the proxy sees scans accepted on the other instance within
  FAN_OUT seconds. An instance's hub re-reads the change log only after HEAL seconds of silence
  (`HubConfig.heal_interval`), and two such scans in a row must both arrive in time, so only the
  Redis fan-out can bring them. Which instance holds the door's socket is learnt at the end:
  stopping that instance closes the socket;
- with one instance stopped, the proxy sends every request to the other;
- the image's HEALTHCHECK (docker/healthcheck.py) passes on a running instance, fails on a
  stopped one.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.checkin.hub import HubConfig
from tests.deployment import DOCKER
from tests.e2e.topology import (
    NGINX_MISSING,
    Topology,
    local_nginx_config,
    nginx_binary,
    topology,
)
from tests.factories import create_booking, create_event, create_ticket_type

WAIT = 15.0  # seconds for any one answer
FAN_OUT = 1.5  # seconds a scan may take to reach a door on the other instance
HEAL = HubConfig().heal_interval  # 5 s: the hubs' own re-read, which must not be what delivers
TICKETS = 16
REDEEM = "/api/v1/checkin/redeem"


@pytest.fixture
def deployment(tmp_path: Path):
    with topology(tmp_path) as running:
        yield running


def test_the_compose_topology_serves_guests_redeems_once_and_fans_out_through_the_proxy(
    deployment: Topology,
):
    assert HEAL >= 3 * FAN_OUT, "a heal inside the fan-out window would prove nothing"
    assert sorted(deployment.commands.values()) == [["migrate"], ["serve"], ["serve"], ["worker"]]
    for base in deployment.instances.values():
        assert _healthcheck(base) == 0, f"the image's HEALTHCHECK fails on {base}"
    token = deployment.tessera("token", "create", "--name", "deployment-test").strip()
    asyncio.run(_journey(deployment, token))


def _healthcheck(base: str) -> int:
    """The exit code of the image's HEALTHCHECK (docker/healthcheck.py) for the instance at base."""
    env = {"TESSERA_PORT": base.rsplit(":", 1)[1], "PATH": os.environ.get("PATH", "")}
    command = [sys.executable, str(DOCKER / "healthcheck.py")]
    return subprocess.run(command, env=env, capture_output=True, timeout=30).returncode


async def _journey(deployment: Topology, token: str) -> None:
    organiser = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=deployment.proxy, headers=organiser, timeout=WAIT) as api:
        door = await _setup(api, deployment)
        await _guest_page_loads(deployment, door["tickets"][0])
        await _tessera_answers_a_large_body_itself(api)
        await _redeemed_once_across_instances(api, deployment, door)
        await _worker_sends_the_mail(api, deployment, door["booking_id"])
        async with await _open(door["ws_url"], door["watcher"]) as ws:
            served = await _scans_reach_the_door(api, deployment, door, ws)
            holder = await _instance_holding(ws, deployment)
        others = [delay for instance, delay in served if instance != holder]
        assert len(others) >= 2, f"scans by instance: {served}"
        assert all(delay is not None and delay <= FAN_OUT for delay in others), (
            f"scans on the instance without the door ({holder} holds it) took {others} s"
        )


async def _setup(api: httpx.AsyncClient, deployment: Topology) -> dict[str, Any]:
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], TICKETS, confirm=True)
    listed = await api.post(f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Door"})
    assert listed.status_code == 201, listed.text
    tokens = []
    for name in ("Scanner", "Watcher"):
        created = await api.post(f"/api/v1/events/{event['id']}/devices", json={"name": name})
        assert created.status_code == 201, created.text
        paired = await api.post(
            "/api/v1/devices/pair", json={"pairing_code": created.json()["pairing_code"]}
        )
        assert paired.status_code == 200, paired.text
        ws_url = paired.json()["ws_url"]
        assert ws_url == "ws" + deployment.proxy.removeprefix("http") + "/ws/scanner"
        tokens.append(paired.json()["token"])
    return {
        "booking_id": booking["id"],
        "tickets": booking["tickets"],
        "list_id": listed.json()["id"],
        "scanner": tokens[0],
        "watcher": tokens[1],
        "ws_url": ws_url,
    }


async def _guest_page_loads(deployment: Topology, ticket: dict[str, Any]) -> None:
    """The guest's link names the proxy, and opens there without any credential."""
    assert ticket["link"].startswith(f"{deployment.proxy}/t/"), ticket["link"]
    async with httpx.AsyncClient(timeout=WAIT) as guest:
        page = await guest.get(ticket["link"])
        qr = await guest.get(ticket["link"] + "/qr.svg")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert ticket["code"] in page.text
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")


async def _tessera_answers_a_large_body_itself(api: httpx.AsyncClient) -> None:
    """A body over TESSERA_MAX_BODY_BYTES passes nginx and gets Tessera's problem+json 413."""
    body = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = await api.post(
        "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413, answer.text[:200]
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text[:200]


def _served(deployment: Topology, path: str) -> dict[str, int]:
    """How many requests for `path` each instance's access log holds."""
    counts = {}
    for name in deployment.instances:
        lines = deployment.log_of(name).read_text(errors="replace").splitlines()
        counts[name] = sum(1 for line in lines if _is_request(line, path))
    return counts


def _is_request(line: str, path: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("msg") == "request" and entry.get("path") == path


async def _served_by(deployment: Topology, path: str, before: dict[str, int]) -> str:
    """The instance whose log gained the request (the line is written as the answer goes)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        now = _served(deployment, path)
        grown = [name for name in now if now[name] > before[name]]
        if grown:
            assert len(grown) == 1, f"one request, logged by {grown}"
            return grown[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no instance logged the request for {path}")


async def _redeem(
    api: httpx.AsyncClient, deployment: Topology, door: dict[str, Any], ticket: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """A REST redeem through the proxy; its answer and the instance that took it."""
    before = _served(deployment, REDEEM)
    scan = {"scan_id": str(uuid.uuid4()), "code": ticket["token"], "list_id": door["list_id"]}
    answer = await api.post(
        REDEEM, json=scan, headers={"Authorization": f"Bearer {door['scanner']}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json() | {"scan_id": scan["scan_id"]}, await _served_by(
        deployment, REDEEM, before
    )


async def _redeemed_once_across_instances(
    api: httpx.AsyncClient, deployment: Topology, door: dict[str, Any]
) -> None:
    ticket = door["tickets"][0]
    first, winner = await _redeem(api, deployment, door, ticket)
    assert first["verdict"] == "accepted", first
    for _ in range(12):  # the proxy balances: within a few tries one lands on the other
        again, instance = await _redeem(api, deployment, door, ticket)
        assert (again["verdict"], again["reason"]) == ("rejected", "already_redeemed"), again
        if instance != winner:
            return
    raise AssertionError(f"12 redeems through the proxy all reached {winner}")


async def _worker_sends_the_mail(
    api: httpx.AsyncClient, deployment: Topology, booking_id: str
) -> None:
    resent = await api.post(f"/api/v1/bookings/{booking_id}/resend", json={})
    assert resent.status_code == 202, resent.text
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        messages = await api.get(f"/api/v1/bookings/{booking_id}/messages")
        statuses = [m["status"] for m in messages.json()["items"]]
        if "sent" in statuses:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"the worker did not send the mail: {statuses}")
    delivered = list((deployment.maildir / "new").iterdir())
    assert len(delivered) == 1, delivered
    assert b"camille@example.org" in delivered[0].read_bytes()


async def _open(url: str, token: str) -> ClientConnection:
    ws = await connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=WAIT
    )
    await ws.send(json.dumps({"type": "hello", "cursor": 0}))
    welcome = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert welcome["type"] == "welcome", welcome
    while json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] != "counters":
        pass  # the catch-up of what happened before
    return ws


async def _arrival(ws: ClientConnection, scan_id: str, sent: float) -> float | None:
    """Seconds from `sent` until the door sees `scan_id` accepted; None past twice FAN_OUT."""
    loop = asyncio.get_running_loop()
    while (left := sent + 2 * FAN_OUT - loop.time()) > 0:
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return None
        for item in frame.get("items", []) if frame["type"] == "changes" else []:
            if item["kind"] == "scan.accepted" and item["scan"]["scan_id"] == scan_id:
                return loop.time() - sent
    return None


async def _scans_reach_the_door(
    api: httpx.AsyncClient, deployment: Topology, door: dict[str, Any], ws: ClientConnection
) -> list[tuple[str, float | None]]:
    """Fresh tickets redeemed through the proxy until each instance took two: (instance, delay)."""
    served: list[tuple[str, float | None]] = []
    for ticket in door["tickets"][1:]:
        sent = asyncio.get_running_loop().time()
        answer, instance = await _redeem(api, deployment, door, ticket)
        assert answer["verdict"] == "accepted", answer
        served.append((instance, await _arrival(ws, answer["scan_id"], sent)))
        if all(sum(1 for i, _ in served if i == name) >= 2 for name in deployment.instances):
            break
    return served


async def _instance_holding(ws: ClientConnection, deployment: Topology) -> str:
    """Stop instances one by one until the door's socket closes: that one held it. On the way,
    check that the proxy sends requests to the instance still running."""
    first, second = deployment.instances
    deployment.processes[first].stop()
    assert _healthcheck(deployment.instances[first]) == 1, "a stopped instance is unhealthy"
    for _ in range(4):
        health = await asyncio.to_thread(httpx.get, f"{deployment.proxy}/readyz", timeout=WAIT)
        assert health.status_code == 200, f"with {first} stopped the proxy answered {health}"
    if await _closes(ws):
        return first
    deployment.processes[second].stop()
    assert await _closes(ws), "the door's socket outlived both instances"
    return second


async def _closes(ws: ClientConnection) -> bool:
    deadline = asyncio.get_running_loop().time() + 3
    try:
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.wait_for(ws.recv(), left)
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False
    return False


def test_the_local_proxy_config_changes_only_ports_upstreams_and_the_runtime_directory(
    tmp_path: Path,
):
    original = (DOCKER / "nginx.conf").read_text()
    local = local_nginx_config(original, 9000, {"tessera-a": 9001, "tessera-b": 9002}, tmp_path)
    changed = [
        (old.strip(), new.strip())
        for old, new in zip(original.splitlines(), local.splitlines(), strict=True)
        if old != new
    ]
    assert [new for _, new in changed if "listen" in new] == ["listen 127.0.0.1:9000;"]
    assert [new.split()[1] for _, new in changed if new.startswith("server ")] == [
        "127.0.0.1:9001",
        "127.0.0.1:9002",
    ]
    others = [(old, new) for old, new in changed if "listen" not in new and "server " not in new]
    assert others and all(old.replace("/tmp/", f"{tmp_path}/") == new for old, new in others)
    with pytest.raises(ValueError, match="proxies to"):
        local_nginx_config(original, 9000, {"tessera-a": 9001}, tmp_path)


def test_without_nginx_the_deployment_test_fails_saying_how_to_install_it(tmp_path: Path):
    with pytest.raises(pytest.fail.Exception) as failed:
        nginx_binary(search=str(tmp_path))  # a directory without nginx
    assert str(failed.value) == NGINX_MISSING
    assert "apt-get install -y nginx" in NGINX_MISSING
