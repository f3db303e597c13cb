"""The asyncio shell offline: the real Door on a real store, no hub."""

from __future__ import annotations

import random
from pathlib import Path

from scanner_client.door import BACKOFF_UNAVAILABLE, Door, DoorOptions, reconnect_delay
from scanner_client.events import DoorEvent, VerdictShown
from tests.scanner_client.helpers import make_world, paired_home


async def test_search_shows_the_doors_own_unconfirmed_entry(tmp_path: Path) -> None:
    world = make_world(3)
    home = paired_home(tmp_path, world)
    events: list[DoorEvent] = []
    door = Door(home, DoorOptions(), on_event=events.append)
    await door.start(connect=False)
    try:
        door.scan(world.token(1))
        [shown] = [e for e in events if isinstance(e, VerdictShown)]
        assert shown.accepted and shown.source == "door"
        [match] = door.search("guest 1")
        assert (match.ticket.id, match.entries, match.inside) == (world.ticket(1).id, 1, True)
        [other] = door.search("Guest 2")
        assert (other.entries, other.inside) == (0, False)
        assert door.counters().checked_in == 1
    finally:
        await door.stop()


def test_after_a_close_1013_the_door_retries_within_seconds_and_keeps_its_backoff() -> None:
    rng = random.Random(7)
    for _ in range(200):
        wait, after = reconnect_delay(16.0, 1013, rng)
        assert BACKOFF_UNAVAILABLE[0] <= wait <= BACKOFF_UNAVAILABLE[1]
        assert after == 16.0  # the hub is up: its database will be back, no doubling
    wait, after = reconnect_delay(16.0, 1011, rng)
    assert 8.0 <= wait <= 16.0 and after == 30.0  # any other close backs off as before
    wait, after = reconnect_delay(0.5, None, rng)
    assert 0.25 <= wait <= 0.5 and after == 1.0


def test_snapshot_downloads_share_one_tls_context_that_still_verifies():
    """Building a TLS context reads the CA bundle and blocks the loop for tens of ms (200 doors
    of the load test stalled their loop for seconds): it is built once, and it still checks the
    hub's certificate and name."""
    import ssl

    from scanner_client.door import _tls_context

    first = _tls_context()
    assert _tls_context() is first
    assert first.verify_mode == ssl.CERT_REQUIRED
    assert first.check_hostname
