"""One event's live room on this instance: the connected sockets and the fan-out subscription.

Rules:
- A room exists while at least one socket of its event is connected here. It holds one fan-out
  subscription for the event, so a notice costs one change-log read per instance, not one per
  socket.
- Notices only say "look": on `head` (or `resync`, or every `heal_interval` seconds of silence) the
  room reads the change log after `read_seq`, the last seq it read, and offers the items to every
  socket; each socket sends what follows its own cursor and catches up from the change feed alone
  when the offer does not join its cursor. So a lost or forged notice never skips a change.
- The one exception: `head` notices of this process's own commits may carry the items they
  appended (never from Redis: server/checkin/redis_fanout.py). When every notice of a burst did,
  and their items are exactly the seqs after `read_seq` up to the highest head named, the room
  offers them without reading (`offer_carried`); anything else reads the log as above.
- `device_revoked` closes that device's sockets here with 4403 at once; a periodic check of the
  devices in the room covers a revocation notice that Redis lost.
- After it offered the changes of `head` notices (read, or carried) the room records, per
  notice, the delay from its commit to this push (`tessera_fanout_delay_seconds`).
- `conflict` notices are forwarded as `conflict` frames to every socket of the event.
- Counters are read once per room and pushed at most every `counters_interval` seconds.
- When the log after `read_seq` was pruned (an idle room, retention), the room moves `read_seq`
  to the head: the sockets behind it learn so when they catch up alone (connection.py).
- Offers never block the room: each socket has its own pusher task, so a slow socket only delays
  itself.
- A read that finds the database away closes every socket of the room with 1013
  (`Connection.close_unavailable`): its doors go offline at once instead of scanning into a hub
  that cannot answer, and come back, from their cursors, when it can. One warning line, no
  traceback; any other failure is logged in full and retried at the next notice or heal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from protocol.messages import FrameError, decode_hub_frame, encode_frame
from server.checkin.config import HubConfig
from server.checkin.connection import Connection
from server.checkin.fanout import Fanout
from server.checkin.feed import ChangeFeed
from server.checkin.notices import NoticePlan, carried_run, plan_notices
from server.db.unavailable import is_database_unavailable
from server.errors import SnapshotRequired
from server.metrics.fanout import FanoutDelays

__all__ = ["CLOSE_REVOKED", "EventRoom"]

log = logging.getLogger("tessera.hub")

CLOSE_REVOKED = 4403
_json = msgspec.json.Encoder()


class EventRoom:
    def __init__(
        self,
        event_id: str,
        *,
        feed: ChangeFeed,
        fanout: Fanout,
        config: HubConfig,
        forget_device: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        delays: FanoutDelays | None = None,
    ) -> None:
        self.event_id = event_id
        self.feed = feed
        self.fanout = fanout
        self.config = config
        self.forget_device = forget_device  # a revoked device's cached authentication goes
        self.clock = clock
        self.delays = delays  # fan-out delays of this instance (server/metrics/fanout.py)
        self.connections: set[Connection] = set()
        self.ready = asyncio.Event()
        self.read_seq = 0
        self._counters_at = -1e9
        self._counters_task: asyncio.Task[None] | None = None
        self._checked_devices_at = 0.0
        self.task = asyncio.create_task(self._run(), name=f"tessera-room-{event_id}")

    async def stop(self) -> None:
        for task in (self.task, self._counters_task):
            if task is not None:
                task.cancel()
                # A room that failed to start (its head read, with the database away) ended
                # with that error; the socket that waited for it was told (hub._join).
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _run(self) -> None:
        config = self.config
        async with self.fanout.subscribe(self.event_id) as queue:
            # Subscribed first, read the head second: nothing committed in between is missed.
            self.read_seq = await self.feed.head(self.event_id)
            self._checked_devices_at = self.clock()
            self.ready.set()
            while True:
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                    async with asyncio.timeout(config.heal_interval):
                        notice = await queue.get()
                except TimeoutError:
                    notice = {"kind": "heal"}
                try:
                    await self._handle(notice, queue)
                except Exception as exc:
                    if not is_database_unavailable(exc):  # the next notice or heal retries
                        log.exception(
                            "room %s failed on a %r notice", self.event_id, notice.get("kind")
                        )
                        continue
                    log.warning(
                        "room %s: database unavailable (%s): closing its %d sockets with 1013",
                        self.event_id,
                        type(exc).__name__,
                        len(self.connections),
                    )
                    for connection in list(self.connections):
                        connection.close_unavailable_soon()

    async def _handle(self, notice: dict[str, Any], queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Handle `notice` and any that queued behind it; a burst of heads costs one read."""
        notices = [notice]
        while not queue.empty():
            notices.append(queue.get_nowait())
        plan = plan_notices(notices)
        for device_id in plan.revoked:
            self.forget_device(device_id)
            self.close_device(device_id)
        for frame in plan.conflicts:
            self._forward_conflict(frame)
        if plan.must_read and self._has_listeners():
            if not self.offer_carried(plan):
                await self.read_and_offer()
            if self.delays is not None and plan.committed:
                self.delays.observe(plan.committed)
        elif plan.must_read:  # nobody here follows the log: skip the read (notices.py)
            self.read_seq = max(self.read_seq, plan.highest_head or 0)
        # Busy or silent: a room that hears a notice every second never heals, and its devices
        # must still be checked (a revocation Redis lost; the doors' online marks).
        await self._check_devices()

    def _has_listeners(self) -> bool:
        return any(connection.sent_seq is not None for connection in self.connections)

    def close_device(self, device_id: str) -> None:
        for connection in list(self.connections):
            if connection.device is not None and connection.device.device_id == device_id:
                connection.close_soon(CLOSE_REVOKED, "device revoked")

    def _forward_conflict(self, frame: Any) -> None:
        try:
            data = _json.encode(frame)
            decode_hub_frame(data)  # forward only a well-formed `conflict` frame
        except (FrameError, TypeError, msgspec.EncodeError):
            log.warning("room %s ignored a malformed conflict notice", self.event_id)
            return
        for connection in list(self.connections):
            connection.offer_frame(data)

    def offer_carried(self, plan: NoticePlan) -> bool:
        """Offer the items this process's own commits carried in their notices when they are
        exactly the changes after `read_seq` (`notices.carried_run`); False: read the log."""
        run = carried_run(plan, self.read_seq)
        if run is None:
            return False
        size = self.config.page_size
        for start in range(0, len(run), size):
            for connection in list(self.connections):
                connection.offer_changes(run[start : start + size])
        if run:
            self.read_seq = int(run[-1]["seq"])
            self.schedule_counters()
        return True

    async def read_and_offer(self) -> None:
        """Read the change log after `read_seq` and offer it to every socket, page by page."""
        page_size = self.config.page_size
        try:
            async for page in self.feed.pages(self.event_id, self.read_seq, page_size):
                if not page.items:
                    return
                self.read_seq = int(page.items[-1]["seq"])
                for connection in list(self.connections):
                    connection.offer_changes(page.items)
                self.schedule_counters()
        except SnapshotRequired as exc:
            self.read_seq = max(self.read_seq, int(exc.extra.get("head", 0)))
            for connection in list(self.connections):
                connection.offer_resync()

    def schedule_counters(self) -> None:
        """Push counters now, or once `counters_interval` after the last push (never more often)."""
        if self._counters_task is not None and not self._counters_task.done():
            return
        delay = self._counters_at + self.config.counters_interval - self.clock()
        self._counters_task = asyncio.create_task(self._push_counters(max(0.0, delay)))

    async def _push_counters(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self._counters_at = self.clock()
        try:
            counters = await self.feed.counters(self.event_id)
        except Exception as exc:
            if is_database_unavailable(exc):
                log.warning("room %s: counters: database unavailable", self.event_id)
            else:
                log.exception("room %s could not read counters", self.event_id)
            return
        data = encode_frame(counters)
        for connection in list(self.connections):
            connection.offer_counters(data)

    async def _check_devices(self) -> None:
        """Close sockets of devices revoked meanwhile (covers a revocation notice Redis lost)."""
        now = self.clock()
        if now - self._checked_devices_at < self.config.revocation_check_interval:
            return
        self._checked_devices_at = now
        device_ids = self.device_ids()
        active = await self.feed.active_devices(device_ids)
        for device_id in device_ids - active:
            self.close_device(device_id)
        await self.fanout.mark_online(self.event_id, device_ids & active, self.online_ttl)

    @property
    def online_ttl(self) -> float:
        """How long a mark of "online" holds: three device checks (one lost is no gap)."""
        return 3 * max(self.config.revocation_check_interval, self.config.heal_interval)

    def device_ids(self) -> set[str]:
        """The devices with a socket in this room."""
        return {c.device.device_id for c in self.connections if c.device is not None}
