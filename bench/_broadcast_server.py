"""The baseline server of bench/fanout.py: a bare `websockets` server that broadcasts.

Every text frame a client sends is answered to that client with a small ack, and broadcast to
every other connected client as `{"type":"changes","id":<the frame's id>,"pad":...}` padded to
FRAME_BYTES, the size of the Tessera `changes` frame measured in the same run.

Run: ``python bench/_broadcast_server.py PORT FRAME_BYTES``
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

CLIENTS: set[ServerConnection] = set()


def _frame(frame_id: str, size: int) -> str:
    head = json.dumps({"type": "changes", "id": frame_id, "pad": ""})
    return head[:-2] + "x" * max(0, size - len(head)) + '"}'


async def handler(connection: ServerConnection) -> None:
    size = int(sys.argv[2])
    CLIENTS.add(connection)
    try:
        async for message in connection:
            frame_id = json.loads(message)["id"]
            await connection.send(json.dumps({"type": "result", "id": frame_id}))
            broadcast([c for c in CLIENTS if c is not connection], _frame(frame_id, size))
    finally:
        CLIENTS.discard(connection)


async def main() -> None:
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
