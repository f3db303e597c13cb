"""What a burst of fan-out notices asks of a room (server.checkin.notices): no I/O."""

from __future__ import annotations

from server.checkin.notices import plan_notices


def test_a_burst_of_heads_costs_one_read_and_names_the_highest_head():
    plan = plan_notices([{"kind": "head", "head": 7}, {"kind": "head", "head": 9}])
    assert plan.must_read and plan.highest_head == 9
    assert not plan.revoked and not plan.conflicts and not plan.heal


def test_revocations_and_conflicts_are_kept_in_order_and_ask_for_no_read():
    plan = plan_notices(
        [
            {"kind": "device_revoked", "device_id": "D1"},
            {"kind": "conflict", "frame": {"type": "conflict", "scan_id": "s1"}},
            {"kind": "device_revoked", "device_id": "D2"},
        ]
    )
    assert plan.revoked == ["D1", "D2"]
    assert plan.conflicts == [{"type": "conflict", "scan_id": "s1"}]
    assert not plan.must_read


def test_a_resync_heal_or_unknown_kind_looks_at_the_log_without_naming_a_head():
    for kind in ("resync", "heal", "from.a.newer.instance"):
        plan = plan_notices([{"kind": kind}])
        assert plan.must_read and plan.highest_head is None
    assert plan_notices([{"kind": "heal"}]).heal


def test_a_head_that_is_not_a_whole_number_is_no_head():
    plan = plan_notices([{"kind": "head", "head": "12"}, {"kind": "head", "head": True}])
    assert plan.must_read and plan.highest_head is None


def test_heads_that_carry_their_items_let_the_room_skip_its_read():
    first = [{"seq": 8, "kind": "scan.accepted"}]
    second = [{"seq": 9, "kind": "scan.accepted"}]
    plan = plan_notices(
        [{"kind": "head", "head": 8, "items": first}, {"kind": "head", "head": 9, "items": second}]
    )
    assert plan.must_read and plan.items_cover and plan.items == first + second


def test_any_notice_without_items_in_the_burst_means_the_log_is_read():
    carried = {"kind": "head", "head": 8, "items": [{"seq": 8, "kind": "scan.accepted"}]}
    for other in (
        {"kind": "head", "head": 9},  # another instance's commit, or an organiser's change
        {"kind": "resync"},
        {"kind": "heal"},
        {"kind": "head", "head": 9, "items": []},
        {"kind": "head", "head": 9, "items": "not a list"},
        {"kind": "head", "items": [{"seq": 9}]},  # no head named
    ):
        assert not plan_notices([carried, other]).items_cover, other
    assert plan_notices([carried, {"kind": "device_revoked", "device_id": "D"}]).items_cover
