"""What one socket was sent of its event's change log, and what to send it next (no I/O).

Rules:
- `sent_seq` is the last change-log seq sent on the socket; None until a `hello` that needs no
  snapshot, and while it is None nothing is offered or sent.
- `changes` leave gap-free and in seq order: offered items at or below `sent_seq` were sent
  already and are dropped; the rest go out only when they start at `sent_seq + 1`.
- An offer that does not join `sent_seq` (a notice was lost, or a `hello` raced the room's
  read), or a backlog past `pending_limit` (a slow socket), makes the stream stale: `take` then
  answers None and the shell reads the log after `sent_seq` itself, sending each page and
  reporting it with `sent`. The database stays the truth; offers only save it a read.
- A `hello` restarts the stream at its cursor and forgets every offer.
"""

from __future__ import annotations

from typing import Any

from protocol.messages import Changes

__all__ = ["ChangeStream"]


class ChangeStream:
    """The cursor, pending offers and staleness of one socket's `changes`."""

    def __init__(self, *, page_size: int, pending_limit: int) -> None:
        self.page_size = page_size
        self.pending_limit = pending_limit
        self.sent_seq: int | None = None
        self._pending: list[dict[str, Any]] = []
        self._stale = False

    def restart(self, cursor: int | None) -> None:
        """Follow the log after `cursor` from now on (None: follow nothing); forget offers."""
        self.sent_seq = cursor
        self._pending.clear()
        self._stale = False

    def offer(self, items: list[dict[str, Any]]) -> None:
        """Items the room read from the log, in seq order, to send after `sent_seq`."""
        if self.sent_seq is None:
            return
        if self._stale or len(self._pending) + len(items) > self.pending_limit:
            self._pending.clear()
            self._stale = True  # too far behind: the shell reads the log itself
        else:
            self._pending.extend(items)

    def mark_stale(self) -> None:
        """The room's offers no longer join anything (the log was pruned): read it alone."""
        if self.sent_seq is not None:
            self._pending.clear()
            self._stale = True

    def take(self) -> list[Changes] | None:
        """The `changes` frames to send now (maybe none), with `sent_seq` moved past them; or
        None when the socket must catch up from the log after `sent_seq`."""
        items, self._pending = self._pending, []
        stale, self._stale = self._stale, False
        if self.sent_seq is None:
            return []
        fresh = [item for item in items if item["seq"] > self.sent_seq]
        if stale or (fresh and fresh[0]["seq"] != self.sent_seq + 1):
            return None
        frames = []
        size = self.page_size
        for start in range(0, len(fresh), size):
            chunk = fresh[start : start + size]
            more = start + size < len(fresh)
            frames.append(Changes(items=chunk, head=fresh[-1]["seq"], has_more=more))
        if fresh:
            self.sent_seq = int(fresh[-1]["seq"])
        return frames

    def sent(self, page: Changes) -> None:
        """A page read from the log went out: the cursor moves to its last item."""
        if page.items:
            self.sent_seq = int(page.items[-1]["seq"])
