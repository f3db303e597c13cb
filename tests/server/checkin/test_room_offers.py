"""When a room offers the items its own commits carried instead of reading the log
(server/checkin/room.py, `offer_carried`): only when they are exactly the seqs after what it read
up to the highest head named."""

from __future__ import annotations

from typing import Any

import pytest

from server.checkin.config import HubConfig
from server.checkin.fanout import MemoryFanout
from server.checkin.feed import DatabaseFeed
from server.checkin.notices import plan_notices
from server.checkin.room import EventRoom
from server.db import Database


class Offers:
    """Stands in for a socket's side of `Connection`: what the room offered it."""

    sent_seq = 0
    device = None

    def __init__(self) -> None:
        self.pages: list[list[dict[str, Any]]] = []

    def offer_changes(self, items: list[dict[str, Any]]) -> None:
        self.pages.append(items)


@pytest.fixture
async def room(settings):
    database = Database(settings.database_url)
    room = EventRoom(
        "EVT",
        feed=DatabaseFeed(database),
        fanout=MemoryFanout(),
        config=HubConfig(page_size=2, counters_interval=3600.0, heal_interval=3600.0),
        forget_device=lambda _device: None,
    )
    await room.ready.wait()
    room.schedule_counters = lambda: None  # no counters read in these tests
    room.read_seq = 10
    yield room
    await room.stop()
    await database.dispose()


def _heads(*runs: tuple[int, list[int]]) -> Any:
    return plan_notices(
        [
            {"kind": "head", "head": head, "items": [{"seq": s, "kind": "k"} for s in seqs]}
            for head, seqs in runs
        ]
    )


def _offers(room: EventRoom) -> Offers:
    offers = Offers()
    room.connections.add(offers)  # type: ignore[arg-type]
    return offers


async def test_items_joining_the_read_position_are_offered_in_pages(room):
    offers = _offers(room)
    assert room.offer_carried(_heads((12, [11, 12]), (13, [13])))
    assert [[i["seq"] for i in page] for page in offers.pages] == [[11, 12], [13]]
    assert room.read_seq == 13


async def test_notices_out_of_order_and_repeated_are_put_in_order_once(room):
    offers = _offers(room)
    assert room.offer_carried(_heads((13, [13]), (12, [11, 12]), (12, [11, 12])))
    assert [i["seq"] for page in offers.pages for i in page] == [11, 12, 13]


@pytest.mark.parametrize(
    "runs",
    [
        ((12, [12]),),  # 11 is missing: another instance's commit, or a lost notice
        ((13, [11, 12]),),  # the head names more than the items hold
        ((12, [11, 12]), (14, [14])),  # a gap in the middle
    ],
)
async def test_a_gap_means_the_log_is_read(room, runs):
    offers = _offers(room)
    assert not room.offer_carried(_heads(*runs))
    assert offers.pages == [] and room.read_seq == 10


async def test_items_already_read_need_no_read_and_offer_nothing(room):
    offers = _offers(room)
    assert room.offer_carried(_heads((9, [9]), (10, [10])))
    assert offers.pages == [] and room.read_seq == 10


async def test_a_burst_with_a_notice_that_carried_nothing_reads_the_log(room):
    plan = plan_notices(
        [{"kind": "head", "head": 11, "items": [{"seq": 11, "kind": "k"}]}, {"kind": "resync"}]
    )
    assert not room.offer_carried(plan)
