"""The per-socket change stream (server.checkin.stream): its cursor, offer and stale rules, with
no socket, no database and no sleep."""

from __future__ import annotations

from protocol.messages import Changes
from server.checkin.stream import ChangeStream


def items(*seqs: int) -> list[dict]:
    return [{"seq": seq, "kind": "ticket.issued"} for seq in seqs]


def stream(cursor: int | None = 10, *, page_size: int = 500, pending_limit: int = 100):
    s = ChangeStream(page_size=page_size, pending_limit=pending_limit)
    s.restart(cursor)
    return s


def test_a_socket_that_follows_nothing_is_offered_and_sent_nothing():
    s = stream(None)
    s.offer(items(1, 2))
    assert s.take() == [] and s.sent_seq is None


def test_an_offer_that_joins_the_cursor_goes_out_in_order_and_moves_it():
    s = stream(10)
    s.offer(items(11, 12))
    s.offer(items(13))
    assert s.take() == [Changes(items=items(11, 12, 13), head=13, has_more=False)]
    assert s.sent_seq == 13
    assert s.take() == []  # nothing new: nothing to send


def test_items_already_sent_are_dropped_and_the_rest_still_joins():
    s = stream(12)
    s.offer(items(11, 12, 13))
    assert s.take() == [Changes(items=items(13), head=13, has_more=False)]


def test_an_offer_past_a_gap_makes_the_socket_read_the_log_itself():
    s = stream(10)
    s.offer(items(12, 13))  # 11 never offered: a lost notice
    assert s.take() is None and s.sent_seq == 10
    s.sent(Changes(items=items(11, 12, 13), head=13, has_more=False))
    assert s.sent_seq == 13


def test_a_backlog_past_the_limit_is_dropped_and_the_socket_catches_up_alone():
    s = stream(0, pending_limit=3)
    s.offer(items(1, 2))
    s.offer(items(3, 4))  # 4 pending > 3
    s.offer(items(5))  # still stale: this offer is not kept either
    assert s.take() is None
    s.offer(items(1))  # stale is spent: offers count again
    assert s.take() == [Changes(items=items(1), head=1, has_more=False)]


def test_a_hello_restarts_at_its_cursor_and_forgets_every_offer():
    s = stream(0, pending_limit=1)
    s.offer(items(1, 2))  # stale
    s.restart(5)
    s.offer(items(6))
    assert s.take() == [Changes(items=items(6), head=6, has_more=False)]


def test_a_long_offer_leaves_in_pages_each_naming_the_last_seq_offered():
    s = stream(0, page_size=2)
    s.offer(items(1, 2, 3, 4, 5))
    frames = s.take()
    assert [[i["seq"] for i in f.items] for f in frames] == [[1, 2], [3, 4], [5]]
    assert [f.has_more for f in frames] == [True, True, False]
    assert {f.head for f in frames} == {5} and s.sent_seq == 5


def test_an_empty_page_read_from_the_log_leaves_the_cursor():
    s = stream(7)
    s.sent(Changes(items=[], head=7, has_more=False))
    assert s.sent_seq == 7
