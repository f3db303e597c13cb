"""`POST /api/v1/checkin/redeem` answered without Litestar's request machinery, when it may be.

Why: a redeem is the one request doors send by the thousand a minute, and Litestar's routing,
dependency resolution, DTO, response building and the second exception middleware cost about as
much server CPU as the redeem's own decision (docs/performance.md, "Fifth pass"). This ASGI
wrapper sits just inside `ObserveRequests` (request ids and figures as for every request) and
takes a redeem only when it is certain to be the ordinary one:

  - `POST` on exactly the route's path, `Content-Type: application/json` (parameters allowed),
    a `Content-Length` within the app's body limit, a bearer token;
  - the body decodes strictly into `RedeemRequest` (`decode_json_body`, the route's own decoder).

Then it awaits the same `RedeemWriter.redeem` the route calls and sends the same answer: 200,
the `ResultItem` as msgspec encodes it, the headers Litestar sends (`content-type`,
`content-length`), one access line (`AccessLogMiddleware.record`). Everything else goes to
Litestar unchanged, the body handed back as it was read, so every refusal (401, 413, 415, 422,
429, 500 ...) is Litestar's own; when the writer raises, the exception travels in the scope
(`FAILURE`) and the route raises it again, so the scan is not decided twice and the problem
answer is the error map's (and Litestar writes that request's access line).

Durability is unchanged: the writer resolves a caller's future only after the batch's commit.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from server.checkin.schemas import RedeemRequest
from server.errors import DomainError
from server.http import bearer_token_of
from server.validation import decode_json_body

__all__ = ["FAILURE", "PATH", "FastRedeem"]

PATH = "/api/v1/checkin/redeem"
FAILURE = "tessera.redeem_failure"  # scope key: what the writer raised, for the route to raise
_ENCODER = msgspec.json.Encoder()
_JSON = b"application/json"


class FastRedeem:
    """ASGI wrapper of Litestar's handler: ordinary redeems answered here, the rest passed on."""

    def __init__(self, handler: Any, litestar: Any, *, max_body: int, access_log: bool) -> None:
        self.handler = handler
        self.litestar = litestar
        self.max_body = max_body
        self.answered = 0  # redeems answered here, not by Litestar (tests read it)
        self._access: Any = None
        if access_log:
            from server.logs import AccessLogMiddleware

            self._access = AccessLogMiddleware(handler)  # only its `record` is used here

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.handler(scope, receive, send)
            return
        started = time.perf_counter()
        token, length = self._admissible(scope["headers"])
        if token is None or length is None:
            await self.handler(scope, receive, send)
            return
        body, messages = await _read_body(receive, length)
        item = _decoded(body) if body is not None else None
        if item is None:  # Litestar decides what is wrong with it, from the same bytes
            await self.handler(scope, _replay(messages, receive), send)
            return
        scope["path_template"] = PATH  # the route label of the request figures
        try:
            result = await self.litestar.state.redeem_writer.redeem(token, item)
        except Exception as exc:  # answered (and logged) by the route, through the error map
            scope[FAILURE] = exc
            await self.handler(scope, _replay(messages, receive), send)
            return
        body = _ENCODER.encode(result)
        headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
        self.answered += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            if self._access is not None:
                self._access.record(scope, 200, started)

    def _admissible(self, headers: Any) -> tuple[str | None, int | None]:
        """The bearer token and the body's length, each None when Litestar should judge."""
        token = length = content_type = None
        for name, value in headers:  # the first of each, as Litestar's `headers.get`
            if name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length" and length is None:
                length = value
            elif name == b"authorization" and token is None:
                token = value
        if content_type is None or content_type.split(b";", 1)[0].strip().lower() != _JSON:
            return None, None
        if length is None or not length.isdigit() or int(length) > self.max_body:
            return None, None
        if token is None:
            return None, None
        return bearer_token_of(token.decode("latin-1")), int(length)


async def _read_body(receive: Any, length: int) -> tuple[bytes | None, list[Any]]:
    """The body (None when it is not exactly `length` bytes, or the client left) and the
    messages it came in, to hand back to Litestar unread."""
    messages: list[Any] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > length:
            return None, messages
        if not message.get("more_body", False):
            break
    if size != length:
        return None, messages
    return b"".join(chunks), messages


def _decoded(body: bytes) -> Any:
    try:
        return decode_json_body(body, RedeemRequest)
    except DomainError:
        return None


def _replay(messages: list[Any], receive: Any) -> Any:
    """A `receive` that gives `messages` again, then the connection's own."""
    pending = list(messages)

    async def replayed() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
