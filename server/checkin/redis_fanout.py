"""Fan-out between server instances over Redis pub/sub (scaled mode, `TESSERA_REDIS_URL`).

Each instance keeps one subscriber connection to Redis and one channel per event it has local
subscribers for (`{prefix}event:{event_id}`); messages are dispatched to the local `MemoryFanout`
queues. A publish is delivered to this instance's own subscribers at once (no round trip through
Redis) and sent to Redis for the others, tagged with this instance's id so it is not delivered
twice when Redis echoes it back.

It also keeps which doors are online across instances, for the console (`online`): a sorted set
per event (`{prefix}online:{event_id}`) whose members are `device|instance` scored by the time
they expire, refreshed by each room while the socket stays open and removed when it closes; an
instance killed without closing its sockets stops refreshing, and its doors drop out after the
ttl. A Redis failure there only makes the console see this instance's own doors.

Redis only notifies. The database change log is the truth, so every failure here costs latency,
never data:
- a publish that fails is logged and forgotten; the caller's commit stands, and the other
  instances' hubs re-read the change log on their next notice or periodic heal;
- when the subscriber connection drops, the listener reconnects with backoff, subscribes again and
  hands every local subscriber a `{"kind": "resync"}` notice, so hubs re-read what they may have
  missed while Redis was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from server.checkin.fanout import MemoryFanout, Notice

__all__ = ["DEFAULT_PREFIX", "RESYNC", "RedisFanout", "split_prefix"]

log = logging.getLogger("tessera.fanout")

RESYNC: Notice = {"kind": "resync"}
DEFAULT_PREFIX = "tessera:"
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0
_CONFIRM_TIMEOUT = 2.0
_PING_AFTER = 10.0  # seconds of silence before the listener pings Redis
_SILENCE_LIMIT = 25.0  # seconds of silence (pings unanswered) before it reconnects
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class RedisFanout:
    """The `Fanout` protocol over Redis pub/sub; `start()` before use, `stop()` at shutdown."""

    def __init__(self, url: str, prefix: str | None = None, *, queue_size: int = 256) -> None:
        """`prefix` defaults to the URL's `?prefix=` query parameter, else "tessera:"."""
        self._url, url_prefix = split_prefix(url)
        self.prefix = prefix or url_prefix or DEFAULT_PREFIX
        self.instance = secrets.token_hex(6)
        self._local = MemoryFanout(queue_size)
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._pubsub_client: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._counts: dict[str, int] = {}  # channel -> local subscribers
        self._confirmed: dict[str, asyncio.Event] = {}
        self._connected = asyncio.Event()

    @property
    def control_channel(self) -> str:
        """Always subscribed, so the subscriber connection exists even with no event open."""
        return f"{self.prefix}control"

    @property
    def client_name(self) -> str:
        """The Redis CLIENT name of this instance's subscriber connection."""
        return f"{self.prefix}sub:{self.instance}"

    def channel(self, event_id: str) -> str:
        return f"{self.prefix}event:{event_id}"

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._url)
        self._listener = asyncio.create_task(self._listen(), name="tessera-redis-fanout")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CONFIRM_TIMEOUT):
                await self._connected.wait()

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self._local.stop()
        self._counts.clear()

    async def publish(self, event_id: str, notice: Notice) -> None:
        """Deliver locally at once, then to the other instances; a Redis failure is only logged."""
        self._local.deliver(event_id, notice)
        if self._client is None:
            return
        # `items` are for this process's rooms only (server/changes/publish.py): a notice from
        # another instance only says "look".
        shared = {k: v for k, v in notice.items() if k != "items"}
        message = _encoder.encode({"from": self.instance, "notice": shared})
        try:
            await self._client.publish(self.channel(event_id), message)
        except (RedisError, OSError) as exc:
            log.warning("fan-out publish to Redis failed: %s: %s", type(exc).__name__, exc)

    @asynccontextmanager
    async def subscribe(self, event_id: str) -> AsyncIterator[asyncio.Queue[Notice]]:
        """The event's notices from every instance; yields once Redis confirmed the channel
        (or after a short wait if Redis is down: the hub's periodic heal covers the gap)."""
        channel = self.channel(event_id)
        async with self._local.subscribe(event_id) as queue:
            self._counts[channel] = self._counts.get(channel, 0) + 1
            try:
                if self._counts[channel] == 1:
                    await self._join(channel)
                yield queue
            finally:
                self._counts[channel] -= 1
                if self._counts[channel] == 0:
                    del self._counts[channel]
                    await self._leave(channel)

    def online_key(self, event_id: str) -> str:
        return f"{self.prefix}online:{event_id}"

    async def mark_online(self, event_id: str, device_ids: set[str], ttl: float) -> None:
        if self._client is None or not device_ids:
            return
        until = time.time() + ttl
        key = self.online_key(event_id)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {f"{d}|{self.instance}": until for d in device_ids})
                pipe.expire(key, max(1, int(ttl * 2)))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("marking doors online in Redis failed: %s", type(exc).__name__)

    async def drop_online(self, event_id: str, device_id: str) -> None:
        if self._client is None:
            return
        try:
            await self._client.zrem(self.online_key(event_id), f"{device_id}|{self.instance}")
        except (RedisError, OSError) as exc:
            log.warning("marking a door offline in Redis failed: %s", type(exc).__name__)

    async def online(self, event_id: str, here: set[str]) -> set[str]:
        if self._client is None:
            return set(here)
        key = self.online_key(event_id)
        try:
            members = await self._client.zrangebyscore(key, time.time(), "+inf")
        except (RedisError, OSError) as exc:
            log.warning("reading online doors from Redis failed: %s", type(exc).__name__)
            return set(here)
        found = {m.decode("utf-8", "replace").partition("|")[0] for m in members}
        return found | here

    async def _join(self, channel: str) -> None:
        confirmed = self._confirmed.setdefault(channel, asyncio.Event())
        pubsub = self._pubsub
        if pubsub is None:
            return  # the listener subscribes every counted channel when it (re)connects
        try:
            await pubsub.subscribe(channel)
            async with asyncio.timeout(_CONFIRM_TIMEOUT):
                await confirmed.wait()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("fan-out subscribe to %s failed: %s", channel, type(exc).__name__)

    async def _leave(self, channel: str) -> None:
        self._confirmed.pop(channel, None)
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            await pubsub.unsubscribe(channel)
        except (RedisError, OSError) as exc:
            log.warning("fan-out unsubscribe from %s failed: %s", channel, type(exc).__name__)

    async def _listen(self) -> None:
        """Read messages forever; on any connection failure reconnect with doubling backoff."""
        backoff = _BACKOFF_FIRST
        first = True
        while True:
            try:
                await self._connect()
                if not first:
                    self._resync_all()
                first = False
                backoff = _BACKOFF_FIRST
                await self._read_messages()
            except (RedisError, OSError) as exc:
                log.warning("fan-out Redis connection lost: %s: %s", type(exc).__name__, exc)
            await self._disconnect()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _connect(self) -> None:
        # No silent retries: a dropped subscriber connection must surface here, so that the
        # subscribers are told to resync.
        client = aioredis.Redis.from_url(
            self._url, client_name=self.client_name, retry=Retry(NoBackoff(), 0)
        )
        self._pubsub_client = client
        pubsub = client.pubsub()
        for event in self._confirmed.values():
            event.clear()
        await pubsub.subscribe(self.control_channel, *self._counts)
        self._pubsub = pubsub

    async def _disconnect(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        client, self._pubsub_client = self._pubsub_client, None
        self._connected.clear()
        with contextlib.suppress(Exception):  # the connection is already broken
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose()

    async def _read_messages(self) -> None:
        """Dispatch messages; ping when idle so that a silently dead connection is noticed."""
        loop = asyncio.get_running_loop()
        heard = pinged = loop.time()
        while True:
            message = await self._pubsub.get_message(timeout=1.0)
            now = loop.time()
            if message is not None:
                heard = now
                self._dispatch(message)
            elif now - heard > _SILENCE_LIMIT:
                raise RedisConnectionError(f"no answer from Redis for {_SILENCE_LIMIT:.0f} s")
            elif now - heard > _PING_AFTER and now - pinged > _PING_AFTER:
                pinged = now
                await self._pubsub.ping()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = _text(message.get("channel"))
        if kind == "subscribe":
            if channel == self.control_channel:
                self._connected.set()
            elif channel in self._confirmed:
                self._confirmed[channel].set()
            return
        if kind != "message" or not channel.startswith(f"{self.prefix}event:"):
            return
        try:
            envelope = _decoder.decode(message["data"])
            origin, notice = envelope["from"], envelope["notice"]
        except (msgspec.DecodeError, KeyError, TypeError):
            log.warning("fan-out ignored a malformed message on %s", channel)
            return
        if origin != self.instance and isinstance(notice, dict):
            notice.pop("items", None)  # never trusted from Redis: rooms read the log instead
            self._local.deliver(channel[len(self.prefix) + len("event:") :], notice)

    def _resync_all(self) -> None:
        for channel in self._counts:
            self._local.deliver(channel[len(self.prefix) + len("event:") :], dict(RESYNC))


def split_prefix(url: str) -> tuple[str, str | None]:
    """The Redis URL without its `prefix` query parameter, and that parameter.

    `TESSERA_REDIS_URL=redis://host:6379/0?prefix=tessera-staging:` lets deployments (and tests)
    sharing one Redis keep their channels apart: pub/sub channels ignore the database number.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for key, value in query if key == "prefix"]
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), (prefixes[-1] if prefixes else None)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value) if value is not None else ""
