"""What a burst of fan-out notices asks of an event's room (no I/O).

Rules: notices only say "look". `device_revoked` closes that device's sockets here at once and
`conflict` is forwarded as it came, both in the order received; every other kind (`head`,
`resync`, `heal`, or a kind from a newer instance) asks for one read of the change log, however
many of them came. A `head` notice of this process's own commit may carry the items it
appended (server/changes/publish.py); when every notice asking for a read did, the room may
offer those instead of reading (server/checkin/room.py decides whether they join). When nobody
here follows the log the read is skipped and the room's read position moves to the highest head
named: a socket that says hello later reads the log itself, and one whose cursor an offer does
not join catches up alone, so a wrong head never skips a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from server.metrics.fanout import commit_time

__all__ = ["NoticePlan", "carried_run", "plan_notices"]


@dataclass
class NoticePlan:
    revoked: list[str] = field(default_factory=list)  # devices to close here, in order
    conflicts: list[Any] = field(default_factory=list)  # conflict frames to forward, in order
    must_read: bool = False  # read the change log once
    highest_head: int | None = None  # the highest head a notice named
    heal: bool = False  # the room's silence timer fired: check its devices too
    committed: list[float] = field(default_factory=list)  # commit times the heads carried
    # The change-log items the heads carried (this process's own commits), and whether every
    # notice that asks for a read carried its items: only then may the room skip the read.
    items: list[dict[str, Any]] = field(default_factory=list)
    items_cover: bool = True


def plan_notices(notices: Iterable[dict[str, Any]]) -> NoticePlan:
    """The plan for `notices`, taken together."""
    plan = NoticePlan()
    for notice in notices:
        kind = notice.get("kind")
        if kind == "device_revoked":
            plan.revoked.append(str(notice.get("device_id")))
        elif kind == "conflict":
            plan.conflicts.append(notice.get("frame"))
        else:
            plan.must_read = True
            plan.heal = plan.heal or kind == "heal"
            moment = commit_time(notice.get("committed_at"))
            if moment is not None:
                plan.committed.append(moment)
            named = notice.get("head")
            if isinstance(named, int) and not isinstance(named, bool):
                plan.highest_head = max(named, plan.highest_head or named)
            carried = notice.get("items")
            if kind == "head" and isinstance(named, int) and isinstance(carried, list) and carried:
                plan.items.extend(carried)
            else:
                plan.items_cover = False
    return plan


def carried_run(plan: NoticePlan, read_seq: int) -> list[dict[str, Any]] | None:
    """The changes after `read_seq` up to the plan's highest head, taken from the items its
    notices carried (in seq order, each once); [] when those seqs were read already; None when
    the items cannot stand for a read of the log: a notice without items in the burst, or a seq
    missing (another instance's commit, a lost notice)."""
    if not plan.items_cover or plan.highest_head is None:
        return None
    fresh: dict[int, dict[str, Any]] = {}
    for item in plan.items:
        seq = item.get("seq")
        if isinstance(seq, int) and seq > read_seq:
            fresh[seq] = item
    if not fresh:
        return [] if plan.highest_head <= read_seq else None
    if sorted(fresh) != list(range(read_seq + 1, plan.highest_head + 1)):
        return None
    return [fresh[seq] for seq in sorted(fresh)]
