"""`tessera serve` believes X-Forwarded-For only from the proxies named in TESSERA_TRUSTED_PROXIES.

Without them, a client rotating the header from loopback is still one client to the pairing and
guest-link limits; with the loopback proxy trusted, each forwarded address has its own budget.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from server.config import Settings
from tests.live import live_server

PAIR_BURST = 10  # failed pairings per address before 429 (server/app.py)
LINK_BURST = 20  # failed guest-link lookups per address before 429


def _attempts(base_url: str) -> tuple[list[int], list[int]]:
    """Failed pairings and unknown guest links, each from a new forwarded address."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        pairings = [
            client.post(
                "/api/v1/devices/pair",
                json={"pairing_code": f"AAAA-AAAA-{n:04d}"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(PAIR_BURST + 1)
        ]
        links = [
            client.get(
                f"/t/not-a-link-{n}", headers={"X-Forwarded-For": f"198.51.100.{n}"}
            ).status_code
            for n in range(LINK_BURST + 1)
        ]
    return pairings, links


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_rotated_forwarded_header_is_ignored_without_trusted_proxies(
    settings: Settings, tmp_path: Path
):
    with live_server(settings, tmp_path / "server.log") as base_url:
        pairings, links = _attempts(base_url)
    assert pairings == [401] * PAIR_BURST + [429]
    assert links == [404] * LINK_BURST + [429]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_trusted_proxys_forwarded_header_names_the_client(settings: Settings, tmp_path: Path):
    log = tmp_path / "server.log"
    with live_server(settings, log, TESSERA_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1") as base_url:
        pairings, links = _attempts(base_url)
    assert pairings == [401] * (PAIR_BURST + 1)
    assert links == [404] * (LINK_BURST + 1)
