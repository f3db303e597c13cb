"""The baseline server of the REST and websocket benchmarks: the same stack (Litestar on
uvicorn), no work.

- `POST /redeem`: decodes the body into a struct (as Tessera's strict body decoding does) and
  answers 200 with a JSON body of `REPLY_BYTES`, the size of a redeem answer;
- `/ws/echo`: answers every text frame at once with a frame of `REPLY_BYTES`, the size of a
  scan `result`.
"""

from __future__ import annotations

import os

import msgspec
from litestar import Litestar, Request, Response, WebSocket, post, websocket

REPLY = ("x" * int(os.environ.get("REPLY_BYTES", "360"))).join(['{"type":"result","pad":"', '"}'])


class _Scan(msgspec.Struct, forbid_unknown_fields=True):
    scan_id: str
    code: str
    list_id: str


@post("/redeem", status_code=200)
async def redeem(request: Request) -> Response[bytes]:
    scan = msgspec.json.decode(await request.body(), type=_Scan)
    body = REPLY.replace('"type":"result"', f'"scan_id":"{scan.scan_id}"', 1).encode()
    return Response(body, media_type="application/json")


@websocket("/ws/echo")
async def echo(socket: WebSocket) -> None:
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] != "websocket.receive":
            return
        await socket.send_data(REPLY, mode="text")


app = Litestar([redeem, echo], logging_config=None)
