"""The asyncio shell offline: the real Door on a real store, no hub."""

from __future__ import annotations

from pathlib import Path

from scanner_client.door import Door, DoorOptions
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
