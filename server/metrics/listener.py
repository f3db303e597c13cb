"""The separate metrics listener (`TESSERA_METRICS_ADDRESS=HOST:PORT`): `GET /metrics` only.

A few lines of HTTP/1.1 on asyncio's own server, in the app's event loop, so it reads the same
live state as the app without a thread or a second web server. It trusts its network instead of
a token: bind it to a private address that only Prometheus reaches. Each connection gets one
answer and is closed; a request head over 8 KiB or slower than 5 s is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.config import split_host_port
from server.metrics.registry import CONTENT_TYPE, Metrics

__all__ = ["MetricsListener"]

log = logging.getLogger("tessera.metrics")

_MAX_HEAD = 8192
_HEAD_SECONDS = 5.0


class MetricsListener:
    def __init__(self, metrics: Metrics, address: str) -> None:
        self.metrics = metrics
        self.host, self.port = split_host_port(address)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; if the address cannot be bound, log it and serve without the listener.

        Why not stop the start: with `tessera serve --workers N` every worker tries the same
        address and only the first can have it; the others must still serve requests.
        """
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, limit=_MAX_HEAD
            )
        except OSError as exc:
            log.error("metrics: cannot listen on %s:%d: %s", self.host, self.port, exc)
            return
        self.port = self._server.sockets[0].getsockname()[1]  # the real one when 0 was asked
        log.info("metrics served on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_HEAD_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body, content_type = await self._answer(head)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a slow, cut or oversized request head: dropped without an answer
        except (ConnectionError, OSError):
            pass
        except Exception:
            log.exception("metrics listener failed on a request")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, head: bytes) -> tuple[str, bytes, str]:
        method, _, rest = head.partition(b" ")
        target = rest.partition(b" ")[0].partition(b"?")[0]
        if target != b"/metrics":
            return "404 Not Found", b"only /metrics here\n", "text/plain"
        if method not in (b"GET", b"HEAD"):
            return "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
        body = await self.metrics.exposition()
        return "200 OK", b"" if method == b"HEAD" else body, CONTENT_TYPE
