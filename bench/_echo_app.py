"""The baseline server of bench/redeem_ws.py: the same stack (Litestar on uvicorn), no work.

Answers every text frame at once with a frame of `REPLY_BYTES`, the size of a scan `result`.
"""

from __future__ import annotations

import os

from litestar import Litestar, WebSocket, websocket

REPLY = ("x" * int(os.environ.get("REPLY_BYTES", "360"))).join(['{"type":"result","pad":"', '"}'])


@websocket("/ws/echo")
async def echo(socket: WebSocket) -> None:
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] != "websocket.receive":
            return
        await socket.send_data(REPLY, mode="text")


app = Litestar([echo], logging_config=None)
