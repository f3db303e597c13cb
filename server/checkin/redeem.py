"""The online decision on scans: verify, decide with `protocol.rules`, record, in one transaction.

Rules and invariants (ARCHITECTURE §5):
  - Exactly once, per device: `(device_id, scan_id)` is the primary key. A scan_id the device
    already used returns its stored result and changes nothing; within one batch a repeated
    scan_id repeats the first result. Another device's scan_id is another scan: its stored
    result is never shown to anyone else, and squatting an id cannot hide a real scan.
  - Atomic per ticket: every decision reads `presence` of its ticket x list under a lock. On
    PostgreSQL the row is created if missing (INSERT ... ON CONFLICT DO NOTHING) and locked with
    SELECT ... FOR UPDATE in a fixed order; on SQLite the IMMEDIATE transaction holds the write
    lock. After the lock, PostgreSQL re-reads which scan_ids exist: a retry racing its original
    on another instance finds it there.
  - A scan that took effect (accepted, or an offline one the door let in) is folded into
    presence, appended to the change log ("scan.accepted") and stored with that change's `seq`,
    the order `fold_all` rebuilds presence in. Rejected scans are stored, never folded or logged.
  - Offline scans are never refused: the door's verdict stands. A scan the door refused is stored
    as rejected with the door's reason, never folded, logged or counted, and raises no conflict.
    A scan the door admitted takes effect; when the online rules would have refused it, it is
    `forced`, its `reason` says what they would have decided, and a Conflict naming the ticket's
    first entry is returned for the event's devices.
  - The verdict is `protocol.rules.decide`, the door's own: the token's version against the
    ticket's and an unknown list (`UnknownList`) are decided there, from the shared table.
  - The code is the QR token (verified against the non-retired public keys) or the readable code.
    Only a signed token can say `wrong_event`: a readable code of another event is `invalid`, so
    a device is no oracle for other events' codes.
  - Times go on the wire in UTC (`protocol.sync`): the door's `scanned_at` is normalised here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import normalize_code
from protocol.messages import Conflict, EarlierScan, FirstScan, ResultItem, ScanItem, TicketInfo
from protocol.reasons import Reason
from protocol.rules import ListRules, Presence, ScanFacts, UnknownList, Verdict, apply, decide
from protocol.sync import PresenceEntry, ScanEntry, to_wire, utc
from protocol.token import unverified_ticket_id, verify_ticket_token
from server.changes.publish import notify_after_commit
from server.changes.service import (
    ChangeKind,
    append_changes,
    append_changes_on_driver,
    changed_events,
    committed_items,
    head,
)
from server.checkin import store
from server.checkin.store import DeviceContext, TicketRow
from server.db.fast_insert import on_driver_thread

__all__ = [
    "RedeemOutcome",
    "RepeatedScans",
    "conflict_entry",
    "decide_and_record",
    "presence_entry",
    "scan_change",
    "stored_result",
]

_NO_PRESENCE = Presence()


class StoredScan(Protocol):
    """A recorded scan: the ORM `ScanRow` or a Core row of the scan table."""

    scan_id: str
    device_id: str
    event_id: str
    list_id: str
    ticket_id: str | None
    accepted: bool
    reason: str | None
    forced: bool
    offline: bool
    annulled: bool
    entries: int


class RepeatedScans(Exception):
    """An optimistic batch met scan_ids already stored: roll its transaction back and decide it
    again with `optimistic=False` (the stored results are then looked up first)."""


@dataclass(frozen=True)
class RedeemOutcome:
    results: list[ResultItem]  # one per input item, same order
    conflicts: list[Conflict]  # for offline scans flagged forced
    head: int  # change-log head of the device's event after this transaction
    event_id: str = ""  # the event the scans belong to


@dataclass
class _Batch:
    """What one transaction decides: inputs, what it loaded, and what it will write."""

    requests: Sequence[tuple[DeviceContext, ScanItem]]
    now: datetime
    stored: dict[tuple[str, str], StoredScan] = field(default_factory=dict)  # (device, scan_id)
    tickets: dict[str, TicketRow] = field(default_factory=dict)  # by id and by code
    lists: dict[str, ListRules] = field(default_factory=dict)
    presence: dict[tuple[str, str], Presence] = field(default_factory=dict)
    results: dict[tuple[str, str], ResultItem] = field(default_factory=dict)
    scan_rows: list[dict[str, Any]] = field(default_factory=list)
    # per event, in order: (kind, payload, the scan row whose seq it gives, if any)
    changes: dict[str, list[tuple[str, dict[str, Any], dict[str, Any] | None]]] = field(
        default_factory=dict
    )
    touched: set[tuple[str, str]] = field(default_factory=set)
    conflicts: list[tuple[str, Conflict]] = field(default_factory=list)


@dataclass(frozen=True)
class _Parsed:
    ticket_id: str | None  # from a verified token
    code: str | None  # a readable code
    refusal: Reason | None  # the token's own refusal
    version: int | None  # the token's `ver`


async def decide_and_record(
    session: AsyncSession,
    requests: Sequence[tuple[DeviceContext, ScanItem]],
    *,
    now: datetime,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    optimistic: bool = False,
) -> tuple[list[ResultItem], list[tuple[str, Conflict]], dict[str, int]]:
    """Decide and record scans from possibly several devices, in the caller's transaction.

    Returns the results (input order), the conflicts with their event id, and each event's head.
    The new heads and the conflicts are also left on the session for `publish_committed`.

    `optimistic`: decide as if no scan_id were stored yet (a repeat is rare online) and find out
    from the scan INSERT itself (ON CONFLICT DO NOTHING RETURNING); if any row was already there,
    raise `RepeatedScans` before anything else is written, and the caller rolls back and decides
    the batch again with `optimistic=False`. Saves the stored-scan lookup of every batch.
    """
    batch = _Batch(requests, now)
    if keys is None:
        keys = await store.verifying_keys(session)
    # Tickets are loaded before tokens are verified: a token identical to its ticket's stored
    # one needs no signature computation (protocol/token.py, `issued`). The ids tokens name
    # unverified only choose rows to load; what is decided uses verified claims alone.
    named = [unverified_ticket_id(item.code) if "." in item.code else None for _, item in requests]
    scan_ids = [(device.device_id, item.scan_id) for device, item in requests]
    if not optimistic:
        batch.stored = await store.stored_scans(session, scan_ids)
    ticket_ids = {jti for jti in named if jti} | {
        s.ticket_id for s in batch.stored.values() if s.ticket_id
    }
    codes = {normalize_code(item.code) for _, item in requests if "." not in item.code} - {""}
    list_ids = {item.list_id for _, item in requests}
    is_sqlite = session.get_bind().dialect.name == "sqlite"
    batch.tickets, seen = await store.load_tickets_and_presence(
        session, ticket_ids, codes, list_ids if is_sqlite else ()
    )
    parsed = [
        _parse(item.code, keys, device.event_id, now, batch.tickets.get(jti) if jti else None)
        for (device, item), jti in zip(requests, named, strict=True)
    ]
    batch.lists = await store.list_rules(session, list_ids)
    pairs = _presence_pairs(batch, parsed)
    if is_sqlite:  # read with the tickets, under the IMMEDIATE transaction's write lock
        batch.presence = {p: seen.get(p, _NO_PRESENCE) for p in pairs if p[1] in list_ids}
        batch.presence |= await store.lock_presence(
            session, [p for p in pairs if p[1] not in list_ids]
        )
    else:
        batch.presence = await store.lock_presence(session, pairs)
        fresh = [i for i in scan_ids if i not in batch.stored]
        if pairs and not optimistic:  # optimistic: the INSERT finds a racing retry
            batch.stored |= await store.stored_scans(session, fresh)
    results = [
        _decide_one(batch, device, item, p)
        for (device, item), p in zip(requests, parsed, strict=True)
    ]
    heads = await _write(session, batch, optimistic=optimistic)
    for event_id, conflict in batch.conflicts:
        notify_after_commit(
            session, event_id, {"kind": "conflict", "frame": msgspec.to_builtins(conflict)}
        )
    for device, _ in requests:
        if device.event_id not in heads:
            heads[device.event_id] = await head(session, device.event_id)
    return results, batch.conflicts, heads


def _parse(
    code: str,
    keys: Mapping[str, Ed25519PublicKey],
    event_id: str,
    now: datetime,
    named: TicketRow | None,
) -> _Parsed:
    """A QR token (it has dots) is verified here, against `named`'s stored token when the
    ticket it names was found; anything else is a readable code."""
    if "." not in code:
        return _Parsed(None, normalize_code(code), None, None)
    issued = named.token if named is not None else None
    claims = verify_ticket_token(code, keys, event_id=event_id, now=now.timestamp(), issued=issued)
    if isinstance(claims, Reason):
        return _Parsed(None, None, claims, None)
    return _Parsed(claims.jti, None, None, claims.ver)


def _ticket_of(batch: _Batch, parsed: _Parsed, event_id: str) -> TicketRow | None:
    """The ticket behind a verified token, or behind a readable code of the device's event.

    A readable code of another event is no ticket at all (`invalid`): only a signature proves a
    ticket genuine, so only a token may say `wrong_event`.
    """
    if parsed.ticket_id:
        return batch.tickets.get(parsed.ticket_id)
    ticket = batch.tickets.get(parsed.code) if parsed.code else None
    return ticket if ticket is not None and ticket.state.event_id == event_id else None


def _presence_pairs(batch: _Batch, parsed: list[_Parsed]) -> list[tuple[str, str]]:
    """The ticket x list rows this batch may change or show: tickets of the device's event on
    one of its lists."""
    pairs: set[tuple[str, str]] = set()
    for (device, item), p in zip(batch.requests, parsed, strict=True):
        ticket = _ticket_of(batch, p, device.event_id)
        rules = batch.lists.get(item.list_id)
        if ticket and rules and rules.event_id == device.event_id == ticket.state.event_id:
            pairs.add((ticket.state.id, item.list_id))
    for scan in batch.stored.values():
        if scan.ticket_id and scan.list_id in batch.lists:
            pairs.add((scan.ticket_id, scan.list_id))
    return sorted(pairs)


def _decide_one(
    batch: _Batch, device: DeviceContext, item: ScanItem, parsed: _Parsed
) -> ResultItem:
    scan_key = (device.device_id, item.scan_id)
    if scan_key in batch.stored:
        return _stored_result(batch, batch.stored[scan_key])
    if scan_key in batch.results:
        return batch.results[scan_key]
    ticket = _ticket_of(batch, parsed, device.event_id)
    found = batch.lists.get(item.list_id)
    rules: ListRules | UnknownList = found or UnknownList(item.list_id, device.event_id)
    if found is not None and found.event_id != device.event_id:
        rules = UnknownList(item.list_id, device.event_id)  # another event's list is none here
    key = (ticket.state.id, item.list_id) if ticket else ("", "")
    before = batch.presence.get(key, _NO_PRESENCE)
    facts = ScanFacts(
        direction=item.direction,
        scanned_at=utc(item.scanned_at or batch.now),
        token_version=parsed.version,
    )
    online = Verdict(False, parsed.refusal)  # the token's own refusal comes first
    if parsed.refusal is None:
        online = decide(facts, ticket.state if ticket else None, before, rules)
    if online.reason is Reason.INVALID:  # no ticket behind the code (say, a token from the future)
        ticket, key, before = None, ("", ""), _NO_PRESENCE
    verdict, forced = _judge(item, online)
    takes_effect = (verdict.accepted or forced) and key in batch.presence
    after = before
    if takes_effect and isinstance(rules, ListRules):  # only a real list has presence rows
        after = apply(
            before, facts, rules, gate=device.gate, device_id=device.device_id, scan_id=item.scan_id
        )
        batch.presence[key] = after
        batch.touched.add(key)
    own_ticket = ticket if ticket and ticket.state.event_id == device.event_id else None
    result = ResultItem(
        scan_id=item.scan_id,
        verdict="accepted" if verdict.accepted or forced else "rejected",
        reason=verdict.reason,
        forced=forced,
        offline=item.offline,
        annulled=False,
        ticket=own_ticket.info if own_ticket else None,
        entries=after.entries,
        first_scan=_first_scan(before) if verdict.reason == Reason.ALREADY_REDEEMED else None,
    )
    batch.results[scan_key] = result
    _record(batch, device, item, facts, result, ticket, after if takes_effect else None)
    if forced:
        conflict = _conflict(device, item, facts, result, before)
        batch.conflicts.append((device.event_id, conflict))
        # Logged too, ticket or not, so that catch-up carries it to every door (decision 0012).
        payload = {"conflict": conflict_entry(conflict)}
        batch.changes.setdefault(device.event_id, []).append(
            (ChangeKind.SCAN_CONFLICT, payload, None)
        )
    return result


def _judge(item: ScanItem, online: Verdict) -> tuple[Verdict, bool]:
    """The verdict to record and whether it is forced (admitted offline against the rules)."""
    if item.offline and item.verdict == "rejected":
        # The door refused the guest: that is what happened, whatever the rules say now.
        return Verdict(False, item.reason or Reason.INVALID), False
    admitted = item.offline and item.verdict == "accepted"
    return online, admitted and not online.accepted


def _record(
    batch: _Batch,
    device: DeviceContext,
    item: ScanItem,
    facts: ScanFacts,
    result: ResultItem,
    ticket: TicketRow | None,
    effect: Presence | None,
) -> None:
    """Queue the scan row and, for a scan that took effect, its change-log entry."""
    row = {
        "scan_id": item.scan_id,
        "event_id": device.event_id,
        "device_id": device.device_id,
        "list_id": item.list_id,
        "ticket_id": ticket.state.id if ticket else None,
        "code": _printable(item.code[:64]),
        "direction": str(item.direction),
        "scanned_at": facts.scanned_at,
        "received_at": batch.now,
        "accepted": result.verdict == "accepted",
        "reason": str(result.reason) if result.reason else None,
        "offline": item.offline,
        "forced": result.forced,
        "gate": device.gate,
        "entries": result.entries,
        "seq": None,
        "annulled": False,
    }
    batch.scan_rows.append(row)
    if effect is not None and ticket is not None:
        payload = scan_change(row, presence_entry(ticket.state.id, item.list_id, effect))
        batch.changes.setdefault(device.event_id, []).append(
            (ChangeKind.SCAN_ACCEPTED, payload, row)
        )


def scan_change(row: Mapping[str, Any], presence: PresenceEntry) -> dict[str, Any]:
    """The payload of `scan.accepted` / `scan.annulled`: the scan, and the ticket's presence on
    its list after it (JSON-ready)."""
    scan = ScanEntry(
        scan_id=row["scan_id"],
        device_id=row["device_id"],
        ticket_id=row["ticket_id"],
        list_id=row["list_id"],
        direction=row["direction"],
        scanned_at=utc(row["scanned_at"]),
        gate=row["gate"],
        offline=row["offline"],
        forced=row["forced"],
    )
    return {"scan": to_wire(scan), "presence": to_wire(presence)}


def presence_entry(ticket_id: str, list_id: str, presence: Presence) -> PresenceEntry:
    """A ticket's presence on a list as doors see it, in the snapshot and the change log."""
    first = presence.first_entry
    return PresenceEntry(
        ticket_id=ticket_id,
        list_id=list_id,
        entries=presence.entries,
        inside=presence.inside,
        first_scan_id=first.scan_id if first else None,
        first_at=utc(first.at) if first else None,
        first_gate=first.gate if first else None,
        first_device=first.device_id if first else None,
    )


async def _write(session: AsyncSession, batch: _Batch, *, optimistic: bool) -> dict[str, int]:
    """Append the changes (which hands out each scan's seq), then store scans and presence.

    Optimistic: raise `RepeatedScans` when a scan row was already stored (nothing is saved of
    presence; the caller's rollback takes the appended changes back)."""
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":  # the same statements, in one hop to the driver's thread
        heads = await on_driver_thread(
            session, lambda driver: _write_on_driver(driver, dialect, batch, optimistic)
        )
        if heads is None:
            raise RepeatedScans
        for event_id, new_head in heads.items():
            changed_events(session)[event_id] = new_head
        _keep_items(session, batch, heads)
        return heads
    heads: dict[str, int] = {}
    for event_id, entries in batch.changes.items():
        new_head = await append_changes(
            session, event_id, [(kind, payload) for kind, payload, _ in entries]
        )
        for offset, (_, _, row) in enumerate(entries):
            if row is not None:
                row["seq"] = new_head - len(entries) + 1 + offset
        heads[event_id] = new_head
    if optimistic:
        if await store.insert_new_scans(session, batch.scan_rows) < len(batch.scan_rows):
            raise RepeatedScans
    else:
        await store.insert_scans(session, batch.scan_rows)
    await store.save_presence(session, {k: batch.presence[k] for k in batch.touched})
    _keep_items(session, batch, heads)
    return heads


def _keep_items(session: AsyncSession, batch: _Batch, heads: Mapping[str, int]) -> None:
    """The batch's changes as the log will show them, for this process's rooms to be offered
    after the commit without reading them back (server/changes/publish.py)."""
    kept = committed_items(session)
    for event_id, entries in batch.changes.items():
        first = heads[event_id] - len(entries) + 1
        kept[event_id] = [
            {"seq": first + offset, "kind": kind, **payload}
            for offset, (kind, payload, _) in enumerate(entries)
        ]


def _write_on_driver(
    driver: Any, dialect: Any, batch: _Batch, optimistic: bool
) -> dict[str, int] | None:
    """`_write` on SQLite's driver thread; None (and presence unwritten) when an optimistic
    batch met a stored scan."""
    heads: dict[str, int] = {}
    for event_id, entries in batch.changes.items():
        kinds = [(kind, payload) for kind, payload, _ in entries]
        new_head = append_changes_on_driver(driver, dialect, event_id, kinds)
        for offset, (_, _, row) in enumerate(entries):
            if row is not None:
                row["seq"] = new_head - len(entries) + 1 + offset
        heads[event_id] = new_head
    inserted = store.insert_scans_on_driver(driver, dialect, batch.scan_rows)
    if optimistic and inserted < len(batch.scan_rows):
        return None
    store.save_presence_on_driver(driver, dialect, {k: batch.presence[k] for k in batch.touched})
    return heads


def conflict_entry(conflict: Conflict) -> dict[str, Any]:
    """The `conflict` of a `scan.conflict` change: the conflict frame's fields without `type`."""
    built: dict[str, Any] = msgspec.to_builtins(conflict)
    del built["type"]
    return built


def _first_scan(presence: Presence) -> FirstScan | None:
    first = presence.first_entry
    return FirstScan(at=utc(first.at), gate=first.gate, device=first.device_id) if first else None


def _conflict(
    device: DeviceContext, item: ScanItem, facts: ScanFacts, result: ResultItem, before: Presence
) -> Conflict:
    first = before.first_entry
    earlier = None
    if first is not None and first.scan_id is not None:
        earlier = EarlierScan(
            scan_id=first.scan_id, device=first.device_id, gate=first.gate, at=utc(first.at)
        )
    return Conflict(
        scan_id=item.scan_id,
        ticket=result.ticket,
        reason=result.reason or Reason.INVALID,
        device=device.device_id,
        gate=device.gate,
        scanned_at=facts.scanned_at,
        earlier=earlier,
    )


def _stored_result(batch: _Batch, scan: StoredScan) -> ResultItem:
    """The result of a scan already recorded, as it was decided (and whether it is annulled)."""
    ticket = batch.tickets.get(scan.ticket_id) if scan.ticket_id else None
    own = ticket if ticket and ticket.state.event_id == scan.event_id else None
    reason = Reason(scan.reason) if scan.reason else None
    first = None
    if reason == Reason.ALREADY_REDEEMED and scan.ticket_id:
        presence = batch.presence.get((scan.ticket_id, scan.list_id))
        first = _first_scan(presence) if presence else None
    return stored_result(scan, own.info if own else None, first)


def stored_result(scan: StoredScan, info: TicketInfo | None, first: FirstScan | None) -> ResultItem:
    return ResultItem(
        scan_id=scan.scan_id,
        verdict="accepted" if scan.accepted else "rejected",
        reason=Reason(scan.reason) if scan.reason else None,
        forced=scan.forced,
        offline=scan.offline,
        annulled=scan.annulled,
        ticket=info,
        entries=scan.entries,
        first_scan=first,
    )


def _printable(text: str) -> str:
    """The scanned text as stored for audit: control characters (NUL among them, which
    PostgreSQL refuses in text) become U+FFFD, so any garbage a door reads can be recorded."""
    if text.isprintable():  # nearly always: one C-level pass instead of a loop per character
        return text
    return "".join(c if c.isprintable() else "\ufffd" for c in text)
