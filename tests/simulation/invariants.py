"""The invariants of issue 18 item 4, checked once the run has quiesced.

Read straight from the hub's SQLite file and each door's store (no hub code in between, so a bug
in the hub's reads cannot hide itself):
  1. every scan made at any door is stored at the hub exactly once by (device, scan_id), and the
     hub stores no scan no door made;
  2. among scans decided online, no single-entry ticket is accepted twice (annulled ones aside);
  3. a door-admitted scan the hub calls forced has a `scan.conflict` change, and every door
     connected at the end showed its conflict to staff, once (from the live `conflict` frame
     or from `changes`: `conflict-shown-once` is checked as it happens); a door-refused scan
     is stored refused, never counted, never in the change log;
  4. every door connected at the end has the hub's head as cursor, no scan queued, and the hub's
     presence, revocations and blocks;
  5. the hub's presence equals `protocol.rules.fold_all` of its stored scans, and its counters
     (checked in, inside, per list and gate) equal the fold's;
  6. the change log's seq has no gaps and ends at the event's head.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from protocol.rules import Direction, ListRules, RecordedScan, fold_all
from tests.simulation.sim import Sim

__all__ = ["check_end"]


def check_end(sim: Sim) -> None:
    db = sqlite3.connect(sim.venue.database_url.removeprefix("sqlite:///"))
    try:
        event_id = sim.venue.event_id
        scans = _scans(db, event_id)
        _each_scan_once(sim, scans)
        _single_entry(sim, db, scans)
        _offline_verdicts(sim, db, scans, event_id)
        _seq_gap_free(sim, db, event_id)
        _fold_and_counters(sim, db, scans, event_id)
        _doors_converge(sim, db, event_id)
    finally:
        db.close()


def _scans(db: sqlite3.Connection, event_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    db.row_factory = sqlite3.Row
    rows = db.execute("SELECT * FROM scan WHERE event_id = ?", (event_id,)).fetchall()
    db.row_factory = None
    return {(r["device_id"], r["scan_id"]): dict(r) for r in rows}


def _journals(sim: Sim) -> dict[tuple[str, str], Any]:
    out = {}
    for door in sim.doors:
        assert door.store is not None
        for entry in door.store.journal_entries():
            out[(door.device_id, entry.scan_id)] = (door, entry)
    return out


def _each_scan_once(sim: Sim, scans: dict[tuple[str, str], dict[str, Any]]) -> None:
    made = {(d.device_id, s) for d in sim.doors for s in d.scan_ids}
    journaled = _journals(sim)
    lost = made - journaled.keys()
    if lost:
        raise sim.fail(
            "journal-keeps-every-scan", f"{len(lost)} scans not journaled, e.g. {min(lost)}"
        )
    missing = journaled.keys() - scans.keys()
    if missing:
        raise sim.fail(
            "stored-exactly-once", f"{len(missing)} door scans not at the hub, e.g. {min(missing)}"
        )
    invented = scans.keys() - journaled.keys()
    if invented:
        raise sim.fail(
            "none-invented", f"{len(invented)} hub scans no door made, e.g. {min(invented)}"
        )


def _lists(db: sqlite3.Connection, event_id: str) -> dict[str, ListRules]:
    import json

    out = {}
    rows = db.execute(
        "SELECT id, ticket_type_ids, max_entries, allow_reentry, valid_from, valid_until "
        "FROM checkin_list WHERE event_id = ?",
        (event_id,),
    )
    for list_id, raw_types, max_entries, reentry, since, until in rows:
        types = json.loads(raw_types) if raw_types else None
        out[list_id] = ListRules(
            id=list_id,
            event_id=event_id,
            ticket_type_ids=None if types is None else frozenset(types),
            max_entries=max_entries,
            allow_reentry=bool(reentry),
            valid_from=_time(since),
            valid_until=_time(until),
        )
    return out


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _single_entry(sim: Sim, db: sqlite3.Connection, scans: dict[Any, dict[str, Any]]) -> None:
    rules = _lists(db, sim.venue.event_id)
    single = {i for i, r in rules.items() if r.max_entries == 1 and not r.allow_reentry}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for s in scans.values():
        online = s["accepted"] and not s["offline"] and not s["annulled"] and not s["forced"]
        if online and s["list_id"] in single and s["direction"] == Direction.ENTRY:
            counts[(s["ticket_id"], s["list_id"])] += 1
    twice = {k: n for k, n in counts.items() if n > 1}
    if twice:
        raise sim.fail("single-entry-once-online", f"accepted more than once online: {twice}")


def _offline_verdicts(
    sim: Sim, db: sqlite3.Connection, scans: dict[Any, dict[str, Any]], event_id: str
) -> None:
    logged = {
        row[0]
        for row in db.execute(
            "SELECT json_extract(payload, '$.scan.scan_id') FROM change "
            "WHERE event_id = ? AND kind = 'scan.accepted'",
            (event_id,),
        )
    }
    conflict_seqs = {
        (row[0], row[1]): row[2]
        for row in db.execute(
            "SELECT json_extract(payload, '$.conflict.device'), "
            "json_extract(payload, '$.conflict.scan_id'), seq FROM change "
            "WHERE event_id = ? AND kind = 'scan.conflict'",
            (event_id,),
        )
    }
    connected = [d for d in sim.doors if d.socket is not None and d.core is not None]
    for (device, scan_id), (door, entry) in _journals(sim).items():
        stored = scans[(device, scan_id)]
        refused = entry.door_verdict == "rejected" and stored["offline"]
        if refused and (stored["accepted"] or scan_id in logged):
            raise sim.fail("refused-stays-refused", f"{scan_id} of door{door.index} counted")
        if entry.door_verdict == "accepted" and stored["offline"] and not stored["accepted"]:
            raise sim.fail("door-admission-kept", f"{scan_id} of door{door.index} stored refused")
        if stored["forced"]:
            seq = conflict_seqs.get((device, scan_id))
            if seq is None:
                raise sim.fail("conflict-logged", f"forced {scan_id} of door{door.index}")
            for other in connected:
                if scan_id not in other.conflicts:
                    raise sim.fail(
                        "conflict-reaches-doors",
                        f"forced {scan_id} of door{door.index} never reached door{other.index}",
                    )


def _seq_gap_free(sim: Sim, db: sqlite3.Connection, event_id: str) -> None:
    seqs = [
        r[0]
        for r in db.execute("SELECT seq FROM change WHERE event_id = ? ORDER BY seq", (event_id,))
    ]
    head = db.execute("SELECT change_seq FROM event WHERE id = ?", (event_id,)).fetchone()[0]
    if seqs and (seqs != list(range(seqs[0], seqs[0] + len(seqs))) or seqs[-1] != head):
        raise sim.fail("seq-gap-free", f"change log seqs {seqs[:5]}…{seqs[-5:]} head {head}")


def _fold_and_counters(
    sim: Sim, db: sqlite3.Connection, scans: dict[Any, dict[str, Any]], event_id: str
) -> None:
    rules = _lists(db, event_id)
    effective: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in scans.values():
        if s["accepted"] and not s["annulled"] and s["ticket_id"] and s["seq"] is not None:
            effective[(s["ticket_id"], s["list_id"])].append(s)
    folded = {}
    for key, rows in effective.items():
        rows.sort(key=lambda r: r["seq"])
        recorded = [
            RecordedScan(
                direction=Direction(r["direction"]),
                scanned_at=_time(r["scanned_at"]),
                gate=r["gate"],
                device_id=r["device_id"],
                scan_id=r["scan_id"],
            )
            for r in rows
        ]
        p = fold_all(recorded, rules[key[1]])
        if p.entries or p.inside:
            folded[key] = (
                p.entries,
                bool(p.inside),
                p.first_entry.scan_id if p.first_entry else None,
            )
    stored = _hub_presence(db, event_id)
    if folded != stored:
        diff = {
            k: (folded.get(k), stored.get(k))
            for k in folded.keys() | stored.keys()
            if folded.get(k) != stored.get(k)
        }
        raise sim.fail(
            "presence-is-fold", f"fold vs stored presence differ: {dict(list(diff.items())[:5])}"
        )
    counters = sim.run(_counters(sim))
    persons = dict(
        db.execute(
            "SELECT t.id, tt.persons FROM ticket t JOIN ticket_type tt "
            "ON tt.id = t.ticket_type_id WHERE t.event_id = ?",
            (event_id,),
        ).fetchall()
    )
    for entry in counters.lists:
        checked = sum(
            persons[t] for (t, lst), v in folded.items() if lst == entry.list_id and v[0] > 0
        )
        inside = sum(persons[t] for (t, lst), v in folded.items() if lst == entry.list_id and v[1])
        if (entry.checked_in, entry.inside) != (checked, inside):
            raise sim.fail(
                "counters-are-fold",
                f"list {entry.list_id}: counters {entry.checked_in}/{entry.inside}, "
                f"fold {checked}/{inside}",
            )
    entered = {t for (t, _), v in folded.items() if v[0] > 0}
    if counters.checked_in != sum(persons[t] for t in entered):
        raise sim.fail(
            "counters-are-fold",
            f"checked_in {counters.checked_in} vs fold {sum(persons[t] for t in entered)}",
        )


async def _counters(sim: Sim) -> Any:
    from server.checkin import service

    async with sim.hub.database.transaction(read_only=True) as session:
        return await service.event_counters(session, sim.venue.event_id)


def _hub_presence(
    db: sqlite3.Connection, event_id: str
) -> dict[tuple[str, str], tuple[int, bool, str | None]]:
    rows = db.execute(
        "SELECT p.ticket_id, p.list_id, p.entries, p.inside, p.first_scan_id FROM presence p "
        "JOIN checkin_list l ON l.id = p.list_id WHERE l.event_id = ?",
        (event_id,),
    )
    return {(t, lst): (n, bool(i), f) for t, lst, n, i, f in rows if n or i}


def _doors_converge(sim: Sim, db: sqlite3.Connection, event_id: str) -> None:
    head = db.execute("SELECT change_seq FROM event WHERE id = ?", (event_id,)).fetchone()[0]
    hub = _hub_presence(db, event_id)
    status = {
        t: (s, bool(b))
        for t, s, b in db.execute(
            "SELECT id, status, blocked FROM ticket WHERE event_id = ?", (event_id,)
        )
    }
    for door in sim.doors:
        store = door.store
        if door.core is None or store is None or door.socket is None:
            raise sim.fail("doors-converge", f"door{door.index} not connected after the calm")
        if store.cursor() != head:
            raise sim.fail(
                "doors-converge", f"door{door.index} cursor {store.cursor()} != head {head}"
            )
        if store.queued_count():
            raise sim.fail(
                "doors-converge", f"door{door.index} still has {store.queued_count()} scans queued"
            )
        mine = {(t, lst): (n, bool(i), f) for t, lst, n, i, f in _door_presence(store) if n or i}
        if mine != hub:
            diff = {
                k: (mine.get(k), hub.get(k))
                for k in mine.keys() | hub.keys()
                if mine.get(k) != hub.get(k)
            }
            raise sim.fail(
                "doors-converge",
                f"door{door.index} presence differs: {dict(list(diff.items())[:3])}",
            )
        for ticket_id, (hub_status, blocked) in status.items():
            t = store.ticket(ticket_id)
            if t is None or (t.status, bool(t.blocked)) != (hub_status, blocked):
                raise sim.fail(
                    "doors-converge",
                    f"door{door.index} ticket {ticket_id}: {t} vs {hub_status}/{blocked}",
                )


def _state(sim: Sim, door: Any) -> str:
    """What a door and the hub think of its socket: for the failure's detail."""
    core, sock = door.core, door.socket
    hub_seq = sim.hub.sent_seq(sock.conn) if sock else None
    return (
        f"connection {core.connection(door.clock(sim.t)).value}, wants_snapshot "
        f"{core.wants_snapshot}, caught_up {core.is_caught_up}, conn{sock.conn if sock else None} "
        f"hub sent_seq {hub_seq}, life {door.life}"
    )


def _door_presence(store: Any) -> list[tuple[str, str, int, bool, str | None]]:
    return store._db.execute(
        "SELECT ticket_id, list_id, entries, inside, first_scan_id FROM checkins"
    ).fetchall()
