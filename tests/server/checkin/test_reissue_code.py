"""A reissue retires the ticket's readable code as well as its token, on a real server.

A reissue after a leak or transfer is only worth something if nothing the old holder still has
opens the door: neither the old QR (superseded `ver`) nor the code printed under it.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.server.checkin.conftest import hello, recv_type, send, socket
from tests.server.checkin.helpers import redeem, venue


async def _reissue(http: Any, ticket_id: str) -> dict[str, Any]:
    response = await http.post(f"/api/v1/tickets/{ticket_id}/reissue")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_after_a_reissue_the_old_code_and_token_are_refused_and_the_new_code_admits(
    live, http
):
    v = await venue(http)
    old = v.tickets[0]
    new = await _reissue(http, old["id"])

    typed_old = await redeem(http, v.door, old["code"], v.list_id)
    old_token = await redeem(http, v.door, old["token"], v.list_id)
    typed_new = await redeem(http, v.door, new["code"], v.list_id)

    assert typed_old.status_code == old_token.status_code == typed_new.status_code == 200
    assert (typed_old.json()["verdict"], typed_old.json()["reason"]) == ("rejected", "invalid")
    assert typed_old.json()["ticket"] is None
    assert (old_token.json()["verdict"], old_token.json()["reason"]) == ("rejected", "revoked")
    assert typed_new.json()["verdict"] == "accepted"
    assert typed_new.json()["ticket"]["id"] == old["id"]
    assert typed_new.json()["ticket"]["code"] == new["code"]


async def test_a_door_on_the_websocket_gets_invalid_for_the_old_code(live, http):
    v = await venue(http)
    old = v.tickets[0]
    new = await _reissue(http, old["id"])
    async with socket(live, v.door.token) as ws:
        await hello(ws, 0)
        for code, expected in ((old["code"], "rejected"), (new["code"], "accepted")):
            scan_id = str(uuid.uuid4())
            await send(ws, {"type": "scan", "scan_id": scan_id, "code": code, "list_id": v.list_id})
            result = await recv_type(ws, "result")
            assert (result["scan_id"], result["verdict"]) == (scan_id, expected), result
        assert result["ticket"]["code"] == new["code"]


async def test_the_change_log_tells_doors_the_new_code_of_a_reissued_ticket(live, http):
    v = await venue(http)
    old = v.tickets[0]
    new = await _reissue(http, old["id"])

    response = await http.get("/api/v1/checkin/changes?since=0", headers=v.door.headers)

    assert response.status_code == 200, response.text
    reissued = [c for c in response.json()["items"] if c["kind"] == "ticket.reissued"]
    assert len(reissued) == 1
    ticket = reissued[0]["ticket"]
    assert ticket["id"] == old["id"]
    assert ticket["code"] == new["code"] != old["code"]
    assert ticket["version"] == new["version"] == old["version"] + 1
