"""Build, in the database, the state one case of THE verdict table describes.

Shared by the REST test (every case) and the websocket test (a subset), so both edges are checked
against identical states. Representation notes (the table speaks of ids the database generates):
  - `ticket=None` is a code no ticket has.
  - the ticket's type is the event's type; OTHER_TYPE_ID is a second type of the same event; a
    ticket of "TYPE0000000OTHER" on a list admitting every type is a ticket of a third type.
  - a presence of `entries=k` is k entries uploaded offline at EARLIER by the door (offline scans
    always take effect, which is also how a history over max_entries arises), then an exit when
    the case says the guest is outside. They are fed through the same service the hub uses, in
    one batch. The case's `first_entry` (gate A, device D1) is the door's: only where and when
    differ, and the verdict does not depend on them.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protocol.messages import ScanItem
from protocol.rules import Direction, ListRules, Presence, ScanFacts, TicketState, UnknownList
from protocol.token import TicketClaims, sign_ticket_token
from server.checkin import service
from server.checkin.store import DeviceContext
from server.db import Database
from server.keys.service import Keystore
from tests.factories import create_booking, create_event, create_ticket_type
from tests.protocol.cases import EARLIER, OTHER_TYPE_ID, TYPE_ID
from tests.server.checkin.helpers import Door, create_list, paired_door


@dataclass(frozen=True)
class ArrangedCase:
    """Where to scan: the door, its list, and the code to present."""

    door: Door
    list_id: str
    code: str


async def arrange_case(
    api: Any,
    settings: Any,
    ticket: TicketState | None,
    presence: Presence,
    rules: ListRules | UnknownList,
    scan: ScanFacts | None = None,
) -> ArrangedCase:
    """An event, a list with `rules`, a paired door at gate A, and `ticket` in `presence`,
    presented as the token of the scan's `token_version` when it has one."""
    event = await create_event(api)
    own_type = await _type(api, event["id"], ticket)
    list_id = rules.id  # an unknown list: no list of the event has this id
    if isinstance(rules, ListRules):
        body = await _list_body(api, event["id"], rules, own_type["id"])
        list_id = (await create_list(api, event["id"], **body))["id"]
    door = await paired_door(api, event["id"], gate="A")
    code = "ZZZZ-ZZZZ"  # no ticket here has it (one ticket of 40-bit codes: no collision)
    if ticket is None:
        return ArrangedCase(door, list_id, code)
    type_id = own_type["id"]
    if ticket.ticket_type_id != TYPE_ID:  # "TYPE0000000OTHER": a third type
        type_id = (await create_ticket_type(api, event["id"], name="Other"))["id"]
    ticket_event = event["id"]
    if ticket.event_id != rules.event_id:
        ticket_event = (await create_event(api, name="Another night"))["id"]
        type_id = (await _type(api, ticket_event, ticket))["id"]
    booking_id, issued = await _ticket_in(api, ticket_event, type_id)
    tokens = {1: issued["token"]}
    for version in range(2, ticket.version + 1):  # each reissue supersedes the token before
        reissued = await api.post(f"/api/v1/tickets/{issued['id']}/reissue")
        assert reissued.status_code == 200, reissued.text
        issued = dict(reissued.json())
        tokens[version] = issued["token"]
    device = DeviceContext(door.device_id, event["id"], "Door 1", "A")
    await _build_presence(settings, device, issued["code"], list_id, presence)
    # Blocked first: a revoked ticket can no longer be blocked.
    if ticket.blocked:
        block = await api.post(f"/api/v1/tickets/{issued['id']}/block")
        assert block.status_code == 200, block.text
    if ticket.revoked:
        cancel = await api.post(f"/api/v1/bookings/{booking_id}/cancel")
        assert cancel.status_code == 200, cancel.text
    # Only a signed token proves a ticket of another event genuine (a readable code of another
    # event is `invalid`), so those cases present the token.
    foreign = ticket.event_id != rules.event_id
    version = scan.token_version if scan is not None else None
    if version is not None:
        token = tokens.get(version) or _future_token(settings, issued, ticket_event, version)
        return ArrangedCase(door, list_id, token)
    return ArrangedCase(door, list_id, issued["token"] if foreign else issued["code"])


def _future_token(settings: Any, issued: dict[str, Any], event_id: str, version: int) -> str:
    """A genuine token of the ticket at a `version` it never had, signed with the event's key."""
    header = json.loads(base64.urlsafe_b64decode(issued["token"].split(".")[0] + "=="))
    private_key = Keystore(settings.keys_path).read(header["kid"])
    assert private_key is not None
    claims = TicketClaims(jti=issued["id"], evt=event_id, ver=version)
    return sign_ticket_token(claims, private_key, header["kid"])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def _ticket_in(api: Any, event_id: str, type_id: str) -> tuple[str, dict[str, Any]]:
    booking = await create_booking(api, event_id, type_id, 1, confirm=True)
    return booking["id"], dict(booking["tickets"][0])


async def _type(api: Any, event_id: str, ticket: TicketState | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": "Adult"}
    if ticket is not None:
        fields |= {"persons": ticket.persons}
        fields |= {k: _iso(getattr(ticket, k)) for k in ("valid_from", "valid_until")}
    return await create_ticket_type(api, event_id, **{k: v for k, v in fields.items() if v})


async def _list_body(api: Any, event_id: str, rules: ListRules, own_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {"max_entries": rules.max_entries, "allow_reentry": rules.allow_reentry}
    body |= {"valid_from": _iso(rules.valid_from), "valid_until": _iso(rules.valid_until)}
    if rules.ticket_type_ids is not None:
        names = {TYPE_ID: own_type}
        if OTHER_TYPE_ID in rules.ticket_type_ids:
            names[OTHER_TYPE_ID] = (await create_ticket_type(api, event_id, name="Child"))["id"]
        body["ticket_type_ids"] = [names[t] for t in sorted(rules.ticket_type_ids)]
    return body


async def _build_presence(
    settings: Any, device: DeviceContext, code: str, list_id: str, presence: Presence
) -> None:
    facts = [ScanFacts(direction=Direction.ENTRY, scanned_at=EARLIER)] * presence.entries
    if presence.entries and not presence.inside:
        facts.append(ScanFacts(direction=Direction.EXIT, scanned_at=EARLIER))
    if not facts:
        return
    items = [
        ScanItem(
            scan_id=str(uuid.uuid4()),
            code=code,
            list_id=list_id,
            direction=f.direction,
            scanned_at=f.scanned_at,
            offline=True,
            verdict="accepted",
        )
        for f in facts
    ]
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            outcome = await service.redeem_scans(session, device, items, now=EARLIER)
    finally:
        await database.dispose()
    assert all(r.verdict == "accepted" for r in outcome.results)
