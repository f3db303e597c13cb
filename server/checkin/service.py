"""Check-in services: lists, devices and pairing, redeem and annul, change-log reads, counters.

Services never import Litestar; time is passed in. Everything runs in the caller's transaction;
the caller publishes fan-out notices after commit (a notice about an uncommitted change would send
devices looking for something they cannot see yet).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import urlencode

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import ALPHABET, new_id, normalize_code
from protocol.messages import ScanItem
from protocol.rules import Direction, Presence, RecordedScan, fold_all
from protocol.sync import DeviceEntry, ListEntry, to_wire, utc
from server.auth.service import hash_secret
from server.changes.publish import notify_after_commit
from server.changes.service import ChangeKind, append_changes, head
from server.checkin import counters, store
from server.checkin.models import CheckinList, Device, ScanRow
from server.checkin.redeem import (
    RedeemOutcome,
    decide_and_record,
    presence_entry,
    scan_change,
)
from server.checkin.redeem import stored_result as _stored_result
from server.checkin.schemas import CheckinListCreate, CheckinListPatch, DeviceCreate
from server.checkin.store import DeviceContext
from server.errors import (
    BodyInvalid,
    Conflict,
    DomainError,
    EventArchived,
    FieldError,
    Forbidden,
    InvalidState,
    NotFound,
    Unauthenticated,
)
from server.events.models import Event, TicketType
from server.schemas import check_patched_window

__all__ = [
    "ANNUL_WINDOW",
    "DEVICE_TOKEN_PREFIX",
    "IS_ACTIVE",
    "IS_UNPAIRED",
    "PAIRING_TTL",
    "DeviceContext",
    "NewDevice",
    "RedeemOutcome",
    "active_devices",
    "annul_scan",
    "authenticate_device",
    "authenticate_devices",
    "create_device",
    "create_list",
    "event_counters",
    "get_device",
    "get_list",
    "list_devices",
    "list_entry",
    "list_lists",
    "new_pairing_code",
    "pair_device",
    "pairing_code_matches",
    "redeem_scans",
    "revoke_device",
    "update_list",
]

DEVICE_TOKEN_PREFIX = "tsd_"
PAIRING_TTL = timedelta(hours=24)
ANNUL_WINDOW = timedelta(minutes=15)
event_counters = counters.event_counters


# --- lists ------------------------------------------------------------------------------------


async def create_list(session: AsyncSession, event_id: str, data: CheckinListCreate) -> CheckinList:
    """A check-in list of the event; its ticket types must be the event's own. Logs
    `list.created`."""
    await _require_event(session, event_id)
    await _check_ticket_types(session, event_id, data.ticket_type_ids)
    row = CheckinList(
        id=new_id(),
        event_id=event_id,
        name=data.name,
        ticket_type_ids=None if data.ticket_type_ids is None else sorted(set(data.ticket_type_ids)),
        max_entries=data.max_entries,
        allow_reentry=data.allow_reentry,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
    )
    session.add(row)
    await session.flush()
    await append_changes(
        session, event_id, [(ChangeKind.LIST_CREATED, {"list": to_wire(list_entry(row))})]
    )
    return row


async def update_list(
    session: AsyncSession, event_id: str, list_id: str, patch: CheckinListPatch
) -> CheckinList:
    """Change a list's name, ticket types, entry rules or window; logs `list.updated` when
    anything changed. Entries already counted stay counted: a lower `max_entries` refuses the
    next entry of a ticket that reached it, it never undoes one."""
    row = await get_list(session, event_id, list_id, for_update=True)
    wanted = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    if "ticket_type_ids" in wanted:
        await _check_ticket_types(session, event_id, wanted["ticket_type_ids"])
        if wanted["ticket_type_ids"] is not None:
            wanted["ticket_type_ids"] = sorted(set(wanted["ticket_type_ids"]))
    check_patched_window(wanted, row)
    before = list_entry(row)
    for name, value in wanted.items():
        setattr(row, name, value)
    await session.flush()
    after = list_entry(row)
    if after != before:
        await append_changes(
            session, event_id, [(ChangeKind.LIST_UPDATED, {"list": to_wire(after)})]
        )
    return row


async def get_list(
    session: AsyncSession, event_id: str, list_id: str, *, for_update: bool = False
) -> CheckinList:
    """The list `list_id` of the event; raises NotFound (also for another event's list)."""
    query = select(CheckinList).where(CheckinList.id == list_id, CheckinList.event_id == event_id)
    row = await session.scalar(query.with_for_update() if for_update else query)
    if row is None:
        raise NotFound("check-in list", list_id)
    return row


async def _check_ticket_types(
    session: AsyncSession, event_id: str, type_ids: Sequence[str] | None
) -> None:
    """Raise BodyInvalid naming each id that is not a ticket type of the event."""
    if not type_ids:
        return
    known = set(
        await session.scalars(
            select(TicketType.id).where(
                TicketType.event_id == event_id, TicketType.id.in_(list(type_ids))
            )
        )
    )
    errors = [
        FieldError(f"ticket_type_ids[{i}]", f"no ticket type {type_id!r} in this event")
        for i, type_id in enumerate(type_ids)
        if type_id not in known
    ]
    if errors:
        raise BodyInvalid(errors)


def list_entry(row: CheckinList) -> ListEntry:
    """A list as doors see it, in the snapshot and the change log."""
    return ListEntry(
        id=row.id,
        name=row.name,
        ticket_type_ids=None if row.ticket_type_ids is None else list(row.ticket_type_ids),
        max_entries=row.max_entries,
        allow_reentry=row.allow_reentry,
        valid_from=utc(row.valid_from) if row.valid_from else None,
        valid_until=utc(row.valid_until) if row.valid_until else None,
    )


async def list_lists(
    session: AsyncSession, event_id: str, *, limit: int, offset: int
) -> tuple[list[CheckinList], int]:
    """One page of the event's lists, oldest first, and how many it has in all."""
    return await _event_page(session, CheckinList, event_id, limit=limit, offset=offset)


_Row = TypeVar("_Row", CheckinList, Device)


async def _event_page(
    session: AsyncSession, model: type[_Row], event_id: str, *, limit: int, offset: int
) -> tuple[list[_Row], int]:
    """One page of an event's rows of `model`, oldest first, and how many there are in all;
    raises NotFound for an unknown event."""
    await _require_event(session, event_id)
    where = model.event_id == event_id
    total = await session.scalar(select(func.count()).select_from(model).where(where))
    query = select(model).where(where).order_by(model.created_at, model.id)
    rows = await session.scalars(query.limit(limit).offset(offset))
    return list(rows), int(total or 0)


# --- devices and pairing ----------------------------------------------------------------------

# A device's two live states, each stated once: waiting for its pairing code, or paired and not
# revoked (the only state whose token is accepted). Revoked is final: neither holds again.
IS_ACTIVE = and_(Device.paired_at.is_not(None), Device.revoked_at.is_(None))
IS_UNPAIRED = and_(Device.paired_at.is_(None), Device.revoked_at.is_(None))


class NewDevice:
    """A created device with its one-time pairing code (shown once, stored hashed)."""

    def __init__(self, device: Device, pairing_code: str) -> None:
        self.device = device
        self.pairing_code = pairing_code

    def pairing_payload(self, base_url: str) -> str:
        return self.payload_for(base_url, self.pairing_code)

    @staticmethod
    def payload_for(base_url: str, code: str) -> str:
        """The QR content: compact JSON `{"v":1,"url":...,"code":...}` (ARCHITECTURE §5)."""
        compact = normalize_code(code).replace("-", "")
        shown = f"{compact[:4]}-{compact[4:8]}-{compact[8:]}" if len(compact) == 12 else compact
        body = {"v": 1, "url": base_url, "code": shown}
        return json.dumps(body, separators=(",", ":"))

    def pairing_uri(self, base_url: str) -> str:
        return "tessera-pair:?" + urlencode({"v": 1, "url": base_url, "code": self.pairing_code})


def _pairing_code() -> str:
    """12 Crockford characters (60 random bits) as XXXX-XXXX-XXXX: typable, unguessable in 24 h."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _code_hash(typed: str) -> str:
    """Hash of the canonical code, so `abcd efgh ijkl` and `ABCD-EFGH-1JK1` match alike."""
    return hash_secret(normalize_code(typed).replace("-", ""))


async def create_device(
    session: AsyncSession, event_id: str, data: DeviceCreate, *, now: datetime
) -> NewDevice:
    """A new device of the event and its pairing code; raises EventArchived for an archived
    event (its doors are closed for good)."""
    await _require_event(session, event_id)
    archived_at = await session.scalar(select(Event.archived_at).where(Event.id == event_id))
    if archived_at is not None:
        raise EventArchived(_archived_detail(event_id, archived_at))
    code = _pairing_code()
    device = Device(
        id=new_id(),
        event_id=event_id,
        name=data.name,
        gate=data.gate,
        pairing_code_hash=_code_hash(code),
        pairing_expires_at=now + PAIRING_TTL,
        created_at=now,
    )
    session.add(device)
    await session.flush()
    return NewDevice(device, code)


async def list_devices(
    session: AsyncSession, event_id: str, *, limit: int, offset: int
) -> tuple[list[Device], int]:
    """One page of the event's devices, oldest first, and how many it has in all."""
    return await _event_page(session, Device, event_id, limit=limit, offset=offset)


async def get_device(session: AsyncSession, device_id: str) -> Device:
    device = await session.get(Device, device_id)
    if device is None:
        raise NotFound("device", device_id)
    return device


async def pairing_code_matches(
    session: AsyncSession, device_id: str, code: str, *, now: datetime
) -> bool:
    """Whether `code` is the device's unused, unexpired pairing code; raises NotFound."""
    await get_device(session, device_id)
    found = await session.scalar(
        select(Device.id).where(
            Device.id == device_id,
            IS_UNPAIRED,
            Device.pairing_code_hash == _code_hash(code),
            Device.pairing_expires_at > now,
        )
    )
    return found is not None


async def pair_device(session: AsyncSession, code: str, *, now: datetime) -> tuple[Device, str]:
    """Exchange a pairing code for a device token, once: a conditional UPDATE claims the code,
    so two racing requests cannot both win. Raises Unauthenticated for an unknown, used or
    expired code (all alike: the answer must not help guessing)."""
    token = DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    claimed = await session.execute(
        update(Device)
        .where(
            Device.pairing_code_hash == _code_hash(code),
            Device.pairing_expires_at > now,
            IS_UNPAIRED,
        )
        .values(token_hash=hash_secret(token), paired_at=now, pairing_code_hash=None)
        .returning(Device.id)
    )
    device_id = claimed.scalar_one_or_none()
    if device_id is None:
        raise Unauthenticated("unknown, used or expired pairing code")
    return await get_device(session, device_id), token


async def revoke_device(session: AsyncSession, device_id: str, *, now: datetime) -> Device:
    """Refuse the device's token from now on (idempotent); logs `device.revoked` and, after
    commit, tells every instance to close the device's sockets (`server.changes.publish`)."""
    device = await get_device(session, device_id)
    if device.revoked_at is None:
        device.revoked_at = now
        device.pairing_code_hash = None
        await session.flush()
        entry = DeviceEntry(id=device.id, name=device.name, gate=device.gate)
        payload = {"device": to_wire(entry)}
        await append_changes(session, device.event_id, [(ChangeKind.DEVICE_REVOKED, payload)])
        notice = {"kind": "device_revoked", "device_id": device.id}
        notify_after_commit(session, device.event_id, notice)
    return device


async def authenticate_device(session: AsyncSession, token: str) -> DeviceContext | None:
    """The paired, unrevoked device holding `token`, else None."""
    return (await authenticate_devices(session, [token])).get(token)


async def authenticate_devices(
    session: AsyncSession, tokens: Collection[str]
) -> dict[str, DeviceContext]:
    """The paired, unrevoked devices among `tokens`, by token, in one query."""
    hashes = {
        hash_secret(t): t for t in tokens if t.startswith(DEVICE_TOKEN_PREFIX) and len(t) <= 200
    }
    if not hashes:
        return {}
    rows = await session.execute(
        select(Device.token_hash, Device.id, Device.event_id, Device.name, Device.gate).where(
            Device.token_hash.in_(list(hashes)), IS_ACTIVE
        )
    )
    return {hashes[r.token_hash]: DeviceContext(r.id, r.event_id, r.name, r.gate) for r in rows}


async def refusal(session: AsyncSession, token: str) -> DomainError:
    """Why `token` authenticates no device: EventArchived when its device's event was archived
    (archiving revoked it), else Unauthenticated. Read only on the refusal path."""
    unknown = Unauthenticated("unknown, unpaired or revoked device token")
    if not token.startswith(DEVICE_TOKEN_PREFIX) or len(token) > 200:
        return unknown
    row = (
        await session.execute(
            select(Event.id, Event.archived_at)
            .join(Device, Device.event_id == Event.id)
            .where(Device.token_hash == hash_secret(token))
        )
    ).first()
    if row is None or row.archived_at is None:
        return unknown
    return EventArchived(_archived_detail(row.id, row.archived_at))


def _archived_detail(event_id: str, archived_at: datetime) -> str:
    return (
        f"event {event_id} was archived {utc(archived_at).isoformat()}: its doors are closed "
        "and it takes no more scans"
    )


async def active_devices(session: AsyncSession, device_ids: Collection[str]) -> set[str]:
    """Those of `device_ids` that are paired and not revoked, in one query."""
    if not device_ids:
        return set()
    query = select(Device.id).where(Device.id.in_(list(device_ids)), IS_ACTIVE)
    return set(await session.scalars(query))


async def new_pairing_code(session: AsyncSession, device_id: str, *, now: datetime) -> NewDevice:
    """A fresh one-time pairing code for a device not paired yet; the previous code stops
    working (only the new code's hash is kept). Raises NotFound, or InvalidState for a device
    already paired or revoked (a paired device's token is its credential: re-pair a new one).

    One conditional UPDATE, like `pair_device`: a pairing racing with it either wins before
    (and this refuses) or finds the new hash in place (and the old code fails)."""
    code = _pairing_code()
    renewed = await session.execute(
        update(Device)
        .where(Device.id == device_id, IS_UNPAIRED)
        .values(pairing_code_hash=_code_hash(code), pairing_expires_at=now + PAIRING_TTL)
        .returning(Device.id)
        .execution_options(synchronize_session=False)
    )
    found = renewed.scalar_one_or_none() is not None
    device = await session.get(Device, device_id, populate_existing=True)
    if device is None:
        raise NotFound("device", device_id)
    if not found:
        state = "revoked" if device.revoked_at is not None else "already paired"
        raise InvalidState(f"device {device_id!r} is {state}: it takes no new pairing code")
    return NewDevice(device, code)


# --- redeem and annul -------------------------------------------------------------------------


async def redeem_scans(
    session: AsyncSession,
    device: DeviceContext,
    items: Sequence[ScanItem],
    *,
    now: datetime,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
) -> RedeemOutcome:
    """Decide and record `items` of one device exactly once (see server.checkin.redeem).

    `keys` are the verifying keys by kid; by default the non-retired keys of the database.
    """
    results, conflicts, heads = await decide_and_record(
        session, [(device, item) for item in items], now=now, keys=keys
    )
    return RedeemOutcome(
        results, [c for _, c in conflicts], heads[device.event_id], device.event_id
    )


async def annul_scan(
    session: AsyncSession,
    scan_id: str,
    *,
    device: DeviceContext | None,
    now: datetime,
    device_id: str | None = None,
) -> RedeemOutcome:
    """Undo a scan as a new fact: flag it annulled, rebuild presence without it, log it.

    A device names its own scans only (a scan_id is scoped to its device), within ANNUL_WINDOW.
    The organiser (`device` None) may annul any scan; `device_id` says whose when two devices
    used the same scan_id (Conflict otherwise). The result's `entries` are the ticket's entries
    on the list after the annulment. Raises NotFound, Forbidden, Conflict, or InvalidState (a
    rejected scan changed nothing to undo). Annulling twice changes nothing the second time.
    """
    scan = await _scan_to_annul(session, scan_id, device, device_id)
    if device is not None and now - scan.received_at > ANNUL_WINDOW:
        raise Forbidden("a device may annul a scan only within 15 minutes; ask an organiser")
    if not scan.accepted:
        raise InvalidState("a rejected scan changed nothing: there is nothing to annul")
    if not scan.annulled:
        await _annul(session, scan, by=device.device_id if device else "organiser", now=now)
    result = _stored_result(scan, None, None)
    if scan.ticket_id is not None:
        # The ticket and its presence as they stand now, in one query: the entries after the
        # annulment, not those the scan left when it was recorded.
        tickets, presence = await store.load_tickets_and_presence(
            session, [scan.ticket_id], [], [scan.list_id]
        )
        ticket = tickets.get(scan.ticket_id)
        own = ticket.info if ticket and ticket.state.event_id == scan.event_id else None
        current = presence.get((scan.ticket_id, scan.list_id))
        entries = current.entries if current else 0
        result = msgspec.structs.replace(result, ticket=own, entries=entries)
    current_head = await head(session, scan.event_id)
    return RedeemOutcome([result], [], current_head, scan.event_id)


async def _scan_to_annul(
    session: AsyncSession, scan_id: str, device: DeviceContext | None, device_id: str | None
) -> ScanRow:
    if device is not None:
        scan = await session.get(ScanRow, (device.device_id, scan_id))
        if scan is None:
            raise NotFound("scan", scan_id)
        return scan
    query = select(ScanRow).where(ScanRow.scan_id == scan_id)
    if device_id is not None:
        query = query.where(ScanRow.device_id == device_id)
    found = list(await session.scalars(query.limit(10)))
    if not found:
        raise NotFound("scan", scan_id)
    if len(found) > 1:
        devices = sorted(s.device_id for s in found)
        raise Conflict(
            f"several devices used scan_id {scan_id!r}: name one with ?device_id=",
            id=scan_id,
            devices=devices,
        )
    return found[0]


async def _annul(session: AsyncSession, scan: ScanRow, *, by: str, now: datetime) -> None:
    key = (scan.ticket_id or "", scan.list_id)
    took_effect = scan.seq is not None and scan.ticket_id is not None
    if took_effect:
        await store.lock_presence(session, [key])
    scan.annulled, scan.annulled_at, scan.annulled_by = True, now, by
    await session.flush()
    if not took_effect:
        return
    rebuilt = await _refold(session, key)
    await store.save_presence(session, {key: rebuilt})
    row = {c: getattr(scan, c) for c in ("scan_id", "ticket_id", "list_id", "direction")}
    row |= {"scanned_at": scan.scanned_at, "device_id": scan.device_id, "gate": scan.gate}
    row |= {"forced": scan.forced, "offline": scan.offline}
    payload = scan_change(row, presence_entry(key[0], key[1], rebuilt)) | {"annulled_by": by}
    await append_changes(session, scan.event_id, [(ChangeKind.SCAN_ANNULLED, payload)])


async def _refold(session: AsyncSession, key: tuple[str, str]) -> Presence:
    """Presence rebuilt with `protocol.rules.fold_all` from the scans that took effect and
    stand, in seq order."""
    rules = (await store.list_rules(session, [key[1]]))[key[1]]
    scans = await session.scalars(
        select(ScanRow)
        .where(
            ScanRow.ticket_id == key[0],
            ScanRow.list_id == key[1],
            ScanRow.seq.is_not(None),
            ScanRow.annulled.is_(False),
        )
        .order_by(ScanRow.seq)
    )
    history = (
        RecordedScan(
            direction=Direction(scan.direction),
            scanned_at=scan.scanned_at,
            gate=scan.gate,
            device_id=scan.device_id,
            scan_id=scan.scan_id,
        )
        for scan in scans
    )
    return fold_all(history, rules)


async def _require_event(session: AsyncSession, event_id: str) -> None:
    if await session.scalar(select(Event.id).where(Event.id == event_id)) is None:
        raise NotFound("event", event_id)
