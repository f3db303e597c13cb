"""A third-party door client, written from docs/protocol.md and docs/organiser-api.md alone.

The client below knows the hub only through the documented wire contract: pairing over REST, the
msgpack snapshot (zstd or gzip), the `/ws/scanner` frames and the REST changes twin. It folds the
snapshot and the change log itself (not with `protocol.sync`) and decides offline with
`protocol.rules.decide` and `protocol.token.verify_ticket_token`, as section 11 tells Python
clients to. Against a real uvicorn server, on SQLite and on PostgreSQL, it checks after every
applied `changes` page that its folded state equals a freshly downloaded snapshot, that its
offline verdicts equal the hub's online ones, that an offline upload raises a `conflict` exactly
for the scan the door admitted against the hub's rules, and that every time it receives is
RFC 3339 UTC with `Z`.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import msgpack
import zstandard
from websockets.asyncio.client import ClientConnection, connect

from protocol.rules import (
    Direction,
    FirstEntry,
    ListRules,
    Presence,
    ScanFacts,
    TicketState,
    Verdict,
    apply,
    decide,
)
from protocol.token import load_public_jwk, verify_ticket_token
from server.config import Settings
from tests.e2e.conftest import Live

WAIT = 5.0
DEVICES = 20
PARIS_SUMMER = timezone(timedelta(hours=2))

# Section 2: "RFC 3339 in UTC with `Z` ... with a fraction of a second only when there is one,
# in microseconds".
RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z")
DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:")
TIME_FIELDS = {
    "at",
    "first_at",
    "scanned_at",
    "starts_at",
    "ends_at",
    "valid_from",
    "valid_until",
    "pairing_expires_at",
}

# Section 8, the snapshot's keys and the fields of each entity, as the table lists them.
SNAPSHOT_KEYS = {
    "event",
    "seq",
    "keys",
    "ticket_types",
    "lists",
    "tickets",
    "revoked",
    "blocked",
    "checkins",
}
EVENT_FIELDS = {"id", "name", "starts_at", "ends_at", "timezone", "venue"}
TICKET_TYPE_FIELDS = {"id", "name", "persons", "valid_from", "valid_until"}
LIST_FIELDS = {
    "id",
    "name",
    "ticket_type_ids",
    "max_entries",
    "allow_reentry",
    "valid_from",
    "valid_until",
}
TICKET_FIELDS = {
    "id",
    "code",
    "ticket_type_id",
    "holder_name",
    "seat",
    "version",
    "status",
    "blocked",
}
CHECKIN_FIELDS = {
    "ticket_id",
    "list_id",
    "entries",
    "inside",
    "first_scan_id",
    "first_at",
    "first_gate",
    "first_device",
}
RESULT_FIELDS = {
    "scan_id",
    "verdict",
    "reason",
    "forced",
    "offline",
    "annulled",
    "ticket",
    "entries",
    "first_scan",
}


def assert_times(value: Any, where: str) -> None:
    """Every time anywhere in `value` is RFC 3339 UTC with `Z` (section 2)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TIME_FIELDS and item is not None:
                assert isinstance(item, str), f"{where}.{key} is not a string: {item!r}"
                assert RFC3339_Z.fullmatch(item), f"{where}.{key} is not RFC 3339 Z: {item!r}"
            assert_times(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_times(item, f"{where}[{index}]")
    elif isinstance(value, str) and DATE_LIKE.match(value):
        assert RFC3339_Z.fullmatch(value), f"{where} is not RFC 3339 Z: {value!r}"
    else:
        assert not isinstance(value, msgpack.Timestamp | datetime), f"{where}: {value!r}"


def z(moment: datetime) -> str:
    """How the hub writes `moment` (section 2): UTC, `Z`, microseconds only when there are any."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def readable(code: str) -> str:
    """A readable code as section 3 reads it: any case, dash or not, O/I/L as 0/1/1."""
    return code.upper().replace("-", "").translate(str.maketrans("OIL", "011"))


# ---------------------------------------------------------------------------------------------
# The door's local state: the snapshot folded with the change log (sections 4 and 8)


@dataclass
class Folded:
    event: dict[str, Any]
    seq: int
    keys: list[dict[str, Any]]
    ticket_types: dict[str, dict[str, Any]]
    lists: dict[str, dict[str, Any]]
    tickets: dict[str, dict[str, Any]]
    revoked: set[str]
    blocked: set[str]
    checkins: dict[tuple[str, str], dict[str, Any]]

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> Folded:
        assert set(snapshot) == SNAPSHOT_KEYS, sorted(snapshot)
        assert set(snapshot["event"]) == EVENT_FIELDS, snapshot["event"]
        for kind, fields in (
            ("ticket_types", TICKET_TYPE_FIELDS),
            ("lists", LIST_FIELDS),
            ("tickets", TICKET_FIELDS),
            ("checkins", CHECKIN_FIELDS),
        ):
            for entity in snapshot[kind]:
                assert set(entity) == fields, (kind, entity)
        tickets = {t["id"]: t for t in snapshot["tickets"]}
        folded = cls(
            event=snapshot["event"],
            seq=snapshot["seq"],
            keys=list(snapshot["keys"]),
            ticket_types={t["id"]: t for t in snapshot["ticket_types"]},
            lists={x["id"]: x for x in snapshot["lists"]},
            tickets=tickets,
            revoked=set(snapshot["revoked"]),
            blocked=set(snapshot["blocked"]),
            checkins={(c["ticket_id"], c["list_id"]): c for c in snapshot["checkins"]},
        )
        assert len(tickets) == len(snapshot["tickets"])
        assert sorted(snapshot["revoked"]) == sorted(folded.revoked)
        assert folded.revoked == {i for i, t in tickets.items() if t["status"] == "revoked"}
        assert folded.blocked == {i for i, t in tickets.items() if t["blocked"]}
        return folded

    def apply_change(self, item: dict[str, Any]) -> None:
        """Fold one change item, per the table of section 4; items must come gap-free."""
        assert item["seq"] == self.seq + 1, (self.seq, item)
        kind = item["kind"]
        if kind == "event.updated":
            assert set(item["event"]) == set(self.event), item
            self.event = item["event"]
        elif kind in ("ticket_type.created", "ticket_type.updated"):
            entity = item["ticket_type"]
            assert set(entity) == TICKET_TYPE_FIELDS, item
            self.ticket_types[entity["id"]] = entity
        elif kind in ("list.created", "list.updated"):
            entity = item["list"]
            assert set(entity) == LIST_FIELDS, item
            self.lists[entity["id"]] = entity
        elif kind.startswith("ticket."):
            entity = item["ticket"]
            assert set(entity) == TICKET_FIELDS, item
            assert entity["ticket_type_id"] in self.ticket_types, "type not logged before ticket"
            self.tickets[entity["id"]] = entity
            self.revoked.discard(entity["id"])
            self.blocked.discard(entity["id"])
            if entity["status"] == "revoked":
                self.revoked.add(entity["id"])
            if entity["blocked"]:
                self.blocked.add(entity["id"])
        elif kind in ("scan.accepted", "scan.annulled"):
            presence = item["presence"]
            assert set(presence) == CHECKIN_FIELDS, item
            assert presence["ticket_id"] == item["scan"]["ticket_id"], item
            assert presence["list_id"] == item["scan"]["list_id"], item
            key = (presence["ticket_id"], presence["list_id"])
            empty = presence["entries"] == 0 and not presence["inside"]
            if empty and presence["first_at"] is None:  # section 4: an empty presence removes
                self.checkins.pop(key, None)
            else:
                self.checkins[key] = presence
        elif kind == "keys.changed":
            self.keys = list(item["keys"])
        # device.revoked and unknown kinds: nothing to fold
        self.seq = item["seq"]

    def normalised(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "seq": self.seq,
            "keys": sorted(self.keys, key=lambda k: k["kid"]),
            "ticket_types": dict(sorted(self.ticket_types.items())),
            "lists": dict(sorted(self.lists.items())),
            "tickets": dict(sorted(self.tickets.items())),
            "revoked": sorted(self.revoked),
            "blocked": sorted(self.blocked),
            "checkins": {f"{t}/{x}": c for (t, x), c in sorted(self.checkins.items())},
        }

    # -- the rules' inputs, built from the folded data (section 8: ticket joined with its type)

    def ticket_state(self, ticket: dict[str, Any]) -> TicketState:
        kind = self.ticket_types[ticket["ticket_type_id"]]
        return TicketState(
            id=ticket["id"],
            event_id=self.event["id"],
            ticket_type_id=ticket["ticket_type_id"],
            version=ticket["version"],
            revoked=ticket["id"] in self.revoked,
            blocked=ticket["id"] in self.blocked,
            persons=kind["persons"],
            valid_from=parse_time(kind["valid_from"]),
            valid_until=parse_time(kind["valid_until"]),
        )

    def list_rules(self, list_id: str) -> ListRules:
        rules = self.lists[list_id]
        types = rules["ticket_type_ids"]
        return ListRules(
            id=rules["id"],
            event_id=self.event["id"],
            ticket_type_ids=None if types is None else frozenset(types),
            max_entries=rules["max_entries"],
            allow_reentry=rules["allow_reentry"],
            valid_from=parse_time(rules["valid_from"]),
            valid_until=parse_time(rules["valid_until"]),
        )

    def presence(self, ticket_id: str, list_id: str) -> Presence:
        checkin = self.checkins.get((ticket_id, list_id))
        if checkin is None:
            return Presence()
        first = None
        if checkin["first_at"] is not None:
            first = FirstEntry(
                parse_time(checkin["first_at"]), checkin["first_gate"], checkin["first_device"]
            )
        return Presence(checkin["entries"], checkin["inside"], first)

    def ticket_by_code(self, code: str) -> dict[str, Any] | None:
        wanted = readable(code)
        for ticket in self.tickets.values():
            if readable(ticket["code"]) == wanted:
                return ticket
        return None


# ---------------------------------------------------------------------------------------------
# The door client


@dataclass
class Door:
    name: str
    gate: str
    base_url: str
    device_id: str
    token: str
    event_id: str
    ws_url: str
    http: httpx.AsyncClient
    check_sync: bool = False
    state: Folded | None = None
    ws: ClientConnection | None = None
    following: bool = False
    # presence of entries this door admitted offline, not yet uploaded (section 11, step 5)
    local: dict[tuple[str, str], Presence] = field(default_factory=dict)
    journal: list[dict[str, Any]] = field(default_factory=list)
    changes_seen: dict[int, dict[str, Any]] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    counters: list[dict[str, Any]] = field(default_factory=list)
    sync_checks: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        response = await self.http.get(f"{self.base_url}{path}", headers=self.auth, params=params)
        if response.headers.get("content-type", "").startswith("application/json"):
            assert_times(response.json(), f"{self.name} GET {path}")
        return response

    async def download_snapshot(self, encoding: str = "zstd") -> dict[str, Any]:
        """The snapshot, decompressed by hand per `Content-Encoding` (section 8)."""
        headers = {**self.auth, "Accept-Encoding": encoding}
        url = f"{self.base_url}/api/v1/checkin/snapshot"
        async with self.http.stream("GET", url, headers=headers) as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.status_code == 200, raw[:300]
        assert response.headers["content-encoding"] == encoding
        if encoding == "zstd":
            body = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        else:
            body = gzip.decompress(raw)
        snapshot = msgpack.unpackb(body, raw=False, timestamp=0)
        assert isinstance(snapshot, dict)
        assert int(response.headers["x-tessera-seq"]) == snapshot["seq"]
        assert_times(snapshot, f"{self.name} snapshot")
        return dict(snapshot)

    async def load_snapshot(self) -> None:
        self.state = Folded.from_snapshot(await self.download_snapshot())

    async def rest_changes(self, since: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Every change after `since` through the REST twin, page by page while `has_more`."""
        items: list[dict[str, Any]] = []
        while True:
            response = await self.get("/api/v1/checkin/changes", since=since, limit=limit)
            assert response.status_code == 200, response.text
            page = response.json()
            assert set(page) == {"items", "head", "has_more"}, page
            assert len(page["items"]) <= limit
            items += page["items"]
            if not page["has_more"]:
                return items
            assert page["items"], page
            since = page["items"][-1]["seq"]

    async def assert_in_sync(self) -> None:
        """Section 4: snapshot at n + every change after n = a snapshot at the new head."""
        assert self.state is not None
        fresh = Folded.from_snapshot(await self.download_snapshot())
        ours = self.state
        assert fresh.seq >= ours.seq, (fresh.seq, ours.seq)
        if fresh.seq > ours.seq:  # the server moved on: catch a copy up to the snapshot's seq
            ours = copy.deepcopy(ours)
            for item in await self.rest_changes(ours.seq):
                if item["seq"] <= fresh.seq:
                    ours.apply_change(item)
        mine, theirs = ours.normalised(), fresh.normalised()
        differing = {
            key: {"door": mine[key], "snapshot": theirs[key]}
            for key in mine
            if mine[key] != theirs[key]
        }
        assert mine == theirs, f"folded state != snapshot at seq {fresh.seq}: {differing}"
        self.sync_checks += 1

    # -- websocket

    async def connect(self) -> None:
        self.ws = await connect(
            self.ws_url,
            additional_headers=self.auth,
            compression=None,
            max_size=None,
            open_timeout=WAIT,
        )
        self.following = False

    async def disconnect(self) -> None:
        assert self.ws is not None
        await self.ws.close()
        self.ws = None
        self.following = False

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))

    async def recv(self, within: float = WAIT) -> dict[str, Any]:
        """The next frame; `changes` are folded (and checked) and `conflict`/`counters` kept."""
        assert self.ws is not None
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), within))
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), frame
        assert_times(frame, f"{self.name} frame {frame['type']}")
        kind = frame["type"]
        if kind == "changes":
            assert set(frame) == {"type", "head", "has_more", "items"}, frame
            assert len(frame["items"]) <= 500
            for item in frame["items"]:
                self.changes_seen[item["seq"]] = item
            if self.following and self.state is not None:
                for item in frame["items"]:
                    self.state.apply_change(item)
                if self.check_sync:
                    await self.assert_in_sync()
        elif kind == "conflict":
            self.conflicts.append(frame)
        elif kind == "counters":
            self.counters.append(frame)
        return dict(frame)

    async def recv_type(self, kind: str, within: float = WAIT) -> dict[str, Any]:
        """The next frame of type `kind`; pushed `changes`, `counters`, `conflict` pass by."""
        deadline = time.monotonic() + within
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            if frame["type"] == kind:
                return frame
            assert frame["type"] in ("changes", "counters", "conflict"), frame

    async def hello(self) -> dict[str, Any]:
        """`hello {cursor}`; apply the catch-up to the end (`has_more: false`), then `counters`."""
        assert self.state is not None
        await self.send({"type": "hello", "cursor": self.state.seq})
        welcome = await self.recv_type("welcome")
        assert set(welcome) == {"type", "device_id", "event_id", "head", "snapshot_required"}
        assert welcome["device_id"] == self.device_id
        assert welcome["event_id"] == self.event_id
        if welcome["snapshot_required"]:
            return welcome
        self.following = True
        while True:
            frame = await self.recv()
            assert frame["type"] == "changes", frame
            if not frame["has_more"]:
                break
        assert self.state.seq >= welcome["head"]
        await self.recv_type("counters")
        return welcome

    async def until_seq(self, seq: int) -> None:
        """Read frames until the folded state reached `seq`."""
        assert self.state is not None
        deadline = time.monotonic() + WAIT
        while self.state.seq < seq:
            await self.recv(max(0.01, deadline - time.monotonic()))

    async def drain(self, quiet: float) -> None:
        """Read every frame that comes until the socket was quiet for `quiet` seconds."""
        while True:
            try:
                await self.recv(quiet)
            except TimeoutError:
                return

    # -- offline decisions (section 11, step 5)

    def decide_offline(
        self, code: str, list_id: str, scanned_at: datetime, direction: str = "entry"
    ) -> tuple[Verdict, str | None]:
        """The door's own verdict on its local state, and the ticket id it found, if any."""
        state = self.state
        assert state is not None
        ticket: dict[str, Any] | None
        if "." in code:  # a signed token: verify with the snapshot keys, then check evt and ver
            keys = dict(load_public_jwk(jwk) for jwk in state.keys)
            now = scanned_at.timestamp()
            claims = verify_ticket_token(code, keys, event_id=state.event["id"], now=now)
            if isinstance(claims, str):
                return Verdict(False, claims), None  # type: ignore[arg-type]
            ticket = state.tickets.get(claims.jti)
            if ticket is not None:
                checked = verify_ticket_token(
                    code,
                    keys,
                    event_id=state.event["id"],
                    now=now,
                    current_version=ticket["version"],
                )
                if isinstance(checked, str):
                    return Verdict(False, checked), ticket["id"]  # type: ignore[arg-type]
        else:
            ticket = state.ticket_by_code(code)
        facts = ScanFacts(direction=Direction(direction), scanned_at=scanned_at)
        rules = state.list_rules(list_id)
        if ticket is None:
            return decide(facts, None, Presence(), rules), None
        key = (ticket["id"], list_id)
        presence = self.local.get(key, state.presence(*key))
        return decide(facts, state.ticket_state(ticket), presence, rules), ticket["id"]

    def scan_offline(
        self, code: str, list_id: str, scanned_at: datetime, direction: str = "entry"
    ) -> Verdict:
        """Decide offline, fold an admitted entry locally, and journal the scan for upload."""
        verdict, ticket_id = self.decide_offline(code, list_id, scanned_at, direction)
        item: dict[str, Any] = {
            "scan_id": str(uuid.uuid4()),
            "code": code,
            "list_id": list_id,
            "direction": direction,
            "scanned_at": scanned_at.isoformat(),
            "offline": True,
            "verdict": "accepted" if verdict.accepted else "rejected",
        }
        if not verdict.accepted:
            item["reason"] = str(verdict.reason)
        elif ticket_id is not None:
            assert self.state is not None
            key = (ticket_id, list_id)
            facts = ScanFacts(direction=Direction(direction), scanned_at=scanned_at)
            before = self.local.get(key, self.state.presence(*key))
            rules = self.state.list_rules(list_id)
            self.local[key] = apply(before, facts, rules, gate=self.gate, device_id=self.device_id)
        self.journal.append(item)
        return verdict


# ---------------------------------------------------------------------------------------------
# A real server: uvicorn in a thread, its base URL the one doors are told to use


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def rotate_key(settings: Settings) -> str:
    """`tessera keys rotate` (docs/tickets.md) on the server's database and keystore."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_DATABASE_URL=settings.database_url, TESSERA_KEYS_DIR=settings.keys_dir)
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def said(verdict: Verdict) -> tuple[bool, str | None]:
    """A verdict as the wire says it: accepted or not, and the reason code."""
    return verdict.accepted, None if verdict.reason is None else str(verdict.reason)


def expected_counters(state: Folded) -> dict[str, Any]:
    """Section 4 `counters` from the folded state: head counts multiply by `persons` (section 6).

    A ticket counts as checked in on a list once it has an entry there (whatever the number),
    inside while its presence says so, and under the gate of its first entry.
    """
    valid = [t for t in state.tickets.values() if t["status"] == "valid"]

    def persons(ticket: dict[str, Any]) -> int:
        return int(state.ticket_types[ticket["ticket_type_id"]]["persons"])

    def figures(tickets: list[dict[str, Any]], list_ids: list[str]) -> dict[str, int]:
        def any_presence(ticket: dict[str, Any], key: str) -> bool:
            return any(bool(state.checkins.get((ticket["id"], x), {}).get(key)) for x in list_ids)

        total = sum(persons(t) for t in tickets)
        checked_in = sum(persons(t) for t in tickets if any_presence(t, "entries"))
        inside = sum(persons(t) for t in tickets if any_presence(t, "inside"))
        return {
            "total": total,
            "checked_in": checked_in,
            "inside": inside,
            "remaining": total - checked_in,
        }

    lists = []
    for list_id, rules in sorted(state.lists.items()):
        types = rules["ticket_type_ids"]
        admitted = [t for t in valid if types is None or t["ticket_type_id"] in types]
        counts = figures(admitted, [list_id])
        del counts["total"]  # section 4: a list's figures are checked_in, inside, remaining
        lists.append({"list_id": list_id, "name": rules["name"], **counts})
    gates: dict[str | None, dict[str, Any]] = {}
    for (ticket_id, _), checkin in state.checkins.items():
        ticket = state.tickets[ticket_id]
        if checkin["entries"] and ticket["status"] == "valid":
            gate = gates.setdefault(
                checkin["first_gate"],
                {"gate": checkin["first_gate"], "checked_in": 0, "inside": 0},
            )
            gate["checked_in"] += persons(ticket)
            gate["inside"] += persons(ticket) if checkin["inside"] else 0
    return {
        "type": "counters",
        **figures(valid, list(state.lists)),
        "lists": lists,
        "gates": sorted(gates.values(), key=lambda g: (g["gate"] is None, g["gate"] or "")),
    }


def sorted_counters(counters: dict[str, Any]) -> dict[str, Any]:
    """`lists` and `gates` in a fixed order (the docs give none)."""
    return {
        **counters,
        "lists": sorted(counters["lists"], key=lambda x: x["list_id"]),
        "gates": sorted(counters["gates"], key=lambda g: (g["gate"] is None, g["gate"] or "")),
    }


async def assert_counters(
    door: Door, organiser: httpx.AsyncClient, *, checked_in: int, inside: int
) -> None:
    """The door's last `counters` frame = the fold of its state = the organiser's stats."""
    assert door.state is not None
    await door.drain(0.3)  # counters are sent at most 5 times a second: take the last one
    expected = expected_counters(door.state)
    assert (expected["checked_in"], expected["inside"]) == (checked_in, inside), expected
    assert sorted_counters(door.counters[-1]) == expected
    stats = await organiser.get(f"/api/v1/events/{door.event_id}/checkin/stats")
    assert stats.status_code == 200, stats.text
    assert sorted_counters(stats.json()) == expected


def expected_result(
    item: dict[str, Any],
    result: dict[str, Any],
    *,
    verdict: str,
    reason: str | None,
    forced: bool,
    entries: int,
    ticket: dict[str, Any] | None,
) -> None:
    assert set(result) == RESULT_FIELDS, result
    assert result["scan_id"] == item["scan_id"]
    assert (result["verdict"], result["reason"], result["forced"]) == (verdict, reason, forced)
    assert result["offline"] is item.get("offline", False)
    assert result["annulled"] is False
    assert result["entries"] == entries, result
    if ticket is None:
        assert result["ticket"] is None, result
    else:
        assert result["ticket"]["id"] == ticket["id"], result
        assert result["ticket"]["code"] == ticket["code"], result


# ---------------------------------------------------------------------------------------------


async def test_third_party_door(live: Live, organiser: httpx.AsyncClient) -> None:
    base = live.base_url
    day = datetime(2031, 6, 14, tzinfo=UTC)

    # 1. The organiser sets up an event, a ticket type, two lists and confirmed bookings.
    event = await created(
        await organiser.post(
            "/api/v1/events",
            json={
                "name": "Jazz at the Pier",
                "starts_at": "2031-06-14T20:00:00+02:00",
                "ends_at": "2031-06-14T23:30:00+02:00",
                "timezone": "Europe/Paris",
                "venue": "Le Quai, Nantes",
                "languages": ["fr", "en"],
            },
        )
    )
    eid = event["id"]
    standard = await created(
        await organiser.post(
            f"/api/v1/events/{eid}/ticket-types", json={"name": "Standard", "capacity": 200}
        )
    )
    main = await created(
        await organiser.post(f"/api/v1/events/{eid}/checkin-lists", json={"name": "Main door"})
    )
    standard_only = await created(
        await organiser.post(
            f"/api/v1/events/{eid}/checkin-lists",
            json={"name": "Standard only", "ticket_type_ids": [standard["id"]]},
        )
    )
    booking = await created(
        await organiser.post(
            f"/api/v1/events/{eid}/bookings",
            json={
                "buyer": {"name": "Camille Martin", "email": "camille@example.org"},
                "external_ref": "shop-1042",
                "items": [{"ticket_type_id": standard["id"], "quantity": 5}],
                "confirm": True,
            },
        )
    )
    s1, s2, s3, s4, _s5 = booking["tickets"]

    # 2. Twenty devices, paired in a row from one address: only failed attempts are limited.
    devices = []
    for n in range(DEVICES):
        last = await organiser.post(
            f"/api/v1/events/{eid}/devices", json={"name": f"Door {n}", "gate": f"G{n}"}
        )
        device = await created(last)
        assert last.headers["cache-control"] == "no-store"
        payload = json.loads(device["pairing_payload"])
        assert payload == {"v": 1, "url": base, "code": device["pairing_code"]}
        assert device["pairing_uri"].startswith("tessera-pair:?v=1&")
        devices.append(device)
    paired = []
    async with httpx.AsyncClient(timeout=WAIT) as anonymous:
        for device in devices:
            payload = json.loads(device["pairing_payload"])
            response = await anonymous.post(
                f"{payload['url']}/api/v1/devices/pair", json={"pairing_code": payload["code"]}
            )
            assert response.status_code == 200, (len(paired), response.status_code, response.text)
            assert response.headers["cache-control"] == "no-store"
            answer = response.json()
            assert set(answer) == {"device_id", "token", "event_id", "ws_url"}
            assert answer["device_id"] == device["id"]
            assert answer["event_id"] == eid
            assert answer["token"].startswith("tsd_")
            assert answer["ws_url"] == base.replace("http://", "ws://") + "/ws/scanner"
            paired.append(answer)
        # a used code answers 401 like an unknown one
        again = await anonymous.post(
            f"{base}/api/v1/devices/pair", json={"pairing_code": devices[0]["pairing_code"]}
        )
        assert again.status_code == 401, again.text
        assert again.json()["code"] == "unauthenticated"

    async with httpx.AsyncClient(timeout=WAIT) as device_http:

        def door(index: int, name: str, check_sync: bool = False) -> Door:
            answer = paired[index]
            return Door(
                name=name,
                gate=devices[index]["gate"],
                base_url=base,
                device_id=answer["device_id"],
                token=answer["token"],
                event_id=answer["event_id"],
                ws_url=answer["ws_url"],
                http=device_http,
                check_sync=check_sync,
            )

        a, b, c = door(0, "A", check_sync=True), door(1, "B"), door(2, "C")
        silent = door(3, "D")  # connected, authenticated, never says hello
        await silent.connect()

        # 3. Door A downloads the snapshot, zstd and gzip alike, and builds its state from it.
        zstd_snapshot = await a.download_snapshot("zstd")
        gzip_snapshot = await a.download_snapshot("gzip")
        assert zstd_snapshot == gzip_snapshot
        a.state = Folded.from_snapshot(zstd_snapshot)
        assert a.state.event["id"] == eid
        assert set(a.state.tickets) == {t["id"] for t in booking["tickets"]}
        assert set(a.state.lists) == {main["id"], standard_only["id"]}
        assert a.state.lists[standard_only["id"]]["ticket_type_ids"] == [standard["id"]]
        assert a.state.checkins == {}
        snapshot_kids = {jwk["kid"] for jwk in a.state.keys}
        await a.assert_in_sync()
        for other in (b, c):
            await other.load_snapshot()
            await other.connect()
            await other.hello()

        # 4. After the snapshot: the organiser moves the venue (the snapshot's `event`), rotates
        # the signing key, then adds a ticket type (a window, 3 persons) and a booking of it.
        # Door A learns all of it only from `changes`.
        await created(
            await organiser.patch(f"/api/v1/events/{eid}", json={"venue": "Hangar 32, Nantes"})
        )
        new_kid = rotate_key(live.settings)
        assert new_kid not in snapshot_kids
        deadline = time.monotonic() + 3
        while new_kid not in {
            k["kid"]
            for k in (await device_http.get(f"{base}/.well-known/jwks.json")).json()["keys"]
        }:
            assert time.monotonic() < deadline, "rotation not picked up"
            await asyncio.sleep(0.1)
        window_from, window_until = day.replace(hour=19), day.replace(hour=21)
        family = await created(
            await organiser.post(
                f"/api/v1/events/{eid}/ticket-types",
                json={
                    "name": "Family",
                    "persons": 3,
                    "valid_from": "2031-06-14T21:00:00+02:00",
                    "valid_until": "2031-06-14T23:00:00+02:00",
                },
            )
        )
        family_booking = await created(
            await organiser.post(
                f"/api/v1/events/{eid}/bookings",
                json={
                    "buyer": {"name": "Zoë Petit", "email": "zoe@example.org"},
                    "items": [{"ticket_type_id": family["id"], "quantity": 1}],
                    "confirm": True,
                },
            )
        )
        (f1,) = family_booking["tickets"]
        assert kid_of(f1["token"]) == new_kid

        await a.connect()
        welcome = await a.hello()
        assert welcome["snapshot_required"] is False
        assert welcome["head"] > zstd_snapshot["seq"]
        assert new_kid in {jwk["kid"] for jwk in a.state.keys}
        assert a.state.ticket_types[family["id"]]["persons"] == 3
        assert a.state.ticket_types[family["id"]]["valid_from"] == z(window_from)
        assert f1["id"] in a.state.tickets
        await a.assert_in_sync()
        # Only the `keys.changed` change lets door A verify a token signed by the new key.
        folded_keys, a.state.keys = a.state.keys, list(zstd_snapshot["keys"])
        assert said(a.decide_offline(f1["token"], main["id"], window_from)[0]) == (
            False,
            "invalid",
        )
        a.state.keys = folded_keys

        # Decide the new ticket offline at times around its window; another door asks online.
        moments = [
            window_from - timedelta(seconds=0.5),  # not yet valid
            window_until,  # valid_until is exclusive: expired
            window_from,  # valid_from is inclusive: accepted
        ]
        for moment in moments:
            offline, _ = a.decide_offline(f1["token"], main["id"], moment)
            scan = {
                "type": "scan",
                "scan_id": str(uuid.uuid4()),
                "code": f1["token"],
                "list_id": main["id"],
                "direction": "entry",
                "scanned_at": moment.astimezone(PARIS_SUMMER).isoformat(),  # any offset goes
                "offline": False,
            }
            await b.send(scan)
            online = await b.recv_type("result")
            assert set(online) == {"type", *RESULT_FIELDS}, online
            assert online["scan_id"] == scan["scan_id"]
            assert (online["verdict"] == "accepted", online["reason"]) == said(offline), (
                moment,
                online,
                offline,
            )
            assert online["ticket"]["persons"] == 3
            assert online["ticket"]["ticket_type"] == "Family"
        assert [said(a.decide_offline(f1["token"], main["id"], m)[0]) for m in moments] == [
            (False, "not_yet_valid"),
            (False, "expired"),
            (True, None),
        ]
        # The accepted scan reaches door A as a change; its presence now says "inside".
        await a.until_seq(welcome["head"] + 1)
        assert a.state.checkins[(f1["id"], main["id"])]["first_at"] == z(window_from)
        assert a.state.checkins[(f1["id"], main["id"])]["first_device"] == b.device_id

        # 5. The organiser blocks s3 (door A learns it), then door A goes offline.
        await created(await organiser.post(f"/api/v1/tickets/{s3['id']}/block"))
        await a.until_seq(a.state.seq + 1)
        assert s3["id"] in a.state.blocked
        cursor = a.state.seq
        await a.disconnect()
        # Meanwhile: s3 is unblocked and door B lets s1 in online; door A knows neither.
        await created(await organiser.post(f"/api/v1/tickets/{s3['id']}/unblock"))
        b_scan = {
            "type": "scan",
            "scan_id": str(uuid.uuid4()),
            "code": s1["token"],
            "list_id": main["id"],
            "scanned_at": z(day.replace(hour=19, minute=40)),
        }
        await b.send(b_scan)
        b_result = await b.recv_type("result")
        assert (b_result["verdict"], b_result["entries"]) == ("accepted", 1), b_result
        await b.until_seq(cursor + 2)

        forged = f"{s4['token'][:-4]}AAAA"
        at = day.replace(hour=19, minute=42, second=10)
        verdicts = [
            a.scan_offline(s1["token"], main["id"], at),  # admitted; the hub knows better
            a.scan_offline(s2["code"].lower().replace("-", ""), main["id"], at),
            a.scan_offline(s2["token"], main["id"], at + timedelta(minutes=1)),  # again
            a.scan_offline(s3["token"], main["id"], at),  # blocked as far as door A knows
            a.scan_offline(forged, main["id"], at),  # bad signature
            a.scan_offline(f1["token"], main["id"], at.replace(hour=20), "exit"),
        ]
        assert [said(v) for v in verdicts] == [
            (True, None),
            (True, None),
            (False, "already_redeemed"),
            (False, "blocked"),
            (False, "invalid"),
            (True, None),
        ]

        # Back online: reconnect by cursor, catch up, then upload the journal in one batch.
        assert a.state.seq == cursor
        await a.connect()
        welcome = await a.hello()
        assert welcome["snapshot_required"] is False
        assert a.state.checkins[(s1["id"], main["id"])]["first_device"] == b.device_id
        assert s3["id"] not in a.state.blocked
        head_before_upload = a.state.seq
        conflicts_before = {d.name: len(d.conflicts) for d in (a, b, c, silent)}
        await a.send({"type": "scan_batch", "items": a.journal})
        results = (await a.recv_type("results"))["items"]
        assert len(results) == len(a.journal)
        j = list(a.journal)
        expected_result(
            j[0], results[0], verdict="accepted", reason="already_redeemed", forced=True,
            entries=2, ticket=s1,
        )  # fmt: skip
        assert results[0]["first_scan"] == {
            "at": b_scan["scanned_at"],
            "gate": b.gate,
            "device": b.device_id,
        }
        expected_result(
            j[1], results[1], verdict="accepted", reason=None, forced=False, entries=1, ticket=s2
        )
        expected_result(
            j[2], results[2], verdict="rejected", reason="already_redeemed", forced=False,
            entries=1, ticket=s2,
        )  # fmt: skip
        assert results[2]["first_scan"] == {"at": z(at), "gate": a.gate, "device": a.device_id}
        expected_result(
            j[3], results[3], verdict="rejected", reason="blocked", forced=False, entries=0,
            ticket=s3,
        )  # fmt: skip
        expected_result(
            j[4], results[4], verdict="rejected", reason="invalid", forced=False, entries=0,
            ticket=None,
        )  # fmt: skip
        expected_result(
            j[5], results[5], verdict="accepted", reason=None, forced=False, entries=1, ticket=f1
        )
        a.journal.clear()
        a.local.clear()

        # Only the door-admitted entries are logged; only the forced one raises a conflict,
        # logged as `scan.conflict` right after its `scan.accepted` (protocol.md, "changes").
        await a.until_seq(head_before_upload + 4)
        items = [a.changes_seen[s] for s in range(head_before_upload + 1, a.state.seq + 1)]
        assert [x["kind"] for x in items] == [
            "scan.accepted", "scan.conflict", "scan.accepted", "scan.accepted"
        ]  # fmt: skip
        conflict_item = items[1]["conflict"]
        assert conflict_item["scan_id"] == j[0]["scan_id"] and "type" not in conflict_item
        logged = [x for x in items if x["kind"] == "scan.accepted"]
        assert [x["scan"]["scan_id"] for x in logged] == [
            j[0]["scan_id"], j[1]["scan_id"], j[5]["scan_id"]
        ]  # fmt: skip
        assert [x["scan"]["forced"] for x in logged] == [True, False, False]
        assert all(x["scan"]["offline"] is True for x in logged)
        assert logged[0]["scan"]["scanned_at"] == z(at)
        assert logged[0]["scan"]["gate"] == a.gate
        assert logged[2]["scan"]["direction"] == "exit"
        assert logged[2]["presence"]["inside"] is False
        for other in (b, c):
            await other.until_seq(a.state.seq)
        for d in (a, b, c, silent):
            await d.drain(0.4)
            new = d.conflicts[conflicts_before[d.name] :]
            assert len(new) == 1, (d.name, new)
            assert new[0] == {
                "type": "conflict",
                "scan_id": j[0]["scan_id"],
                "reason": "already_redeemed",
                "ticket": results[0]["ticket"],
                "device": a.device_id,
                "gate": a.gate,
                "scanned_at": z(at),
                "earlier": {
                    "scan_id": b_scan["scan_id"],
                    "device": b.device_id,
                    "gate": b.gate,
                    "at": b_scan["scanned_at"],
                },
            }, new[0]
            assert conflict_item == {k: v for k, v in new[0].items() if k != "type"}
        await a.assert_in_sync()

        # Counters: s1 (entered twice, counted once), s2 inside; f1 (3 persons) went out.
        assert a.state.checkins[(f1["id"], main["id"])]["inside"] is False
        await assert_counters(a, organiser, checked_in=5, inside=2)

        # 6. Annul door A's admission of s2: entries recomputed without it.
        await a.send({"type": "annul", "scan_id": j[1]["scan_id"]})
        annulled = await a.recv_type("result")
        assert annulled["scan_id"] == j[1]["scan_id"]
        assert (annulled["annulled"], annulled["verdict"], annulled["entries"]) == (
            True,
            "accepted",
            0,
        ), annulled
        await a.until_seq(a.state.seq + 1)
        undo = a.changes_seen[a.state.seq]
        assert undo["kind"] == "scan.annulled" and undo["scan"]["scan_id"] == j[1]["scan_id"]
        assert undo["presence"]["entries"] == 0 and undo["presence"]["inside"] is False
        assert undo["annulled_by"] == a.device_id
        head_after_annul = a.state.seq
        await a.send({"type": "annul", "scan_id": j[1]["scan_id"]})  # twice: nothing changes
        assert (await a.recv_type("result"))["entries"] == 0
        await a.send({"type": "annul", "scan_id": j[2]["scan_id"]})  # a rejected scan
        assert (await a.recv_type("error"))["code"] == "invalid_state"
        await a.send({"type": "annul", "scan_id": b_scan["scan_id"]})  # another device's id
        assert (await a.recv_type("error"))["code"] == "not_found"
        await a.drain(0.3)
        assert a.state.seq == head_after_annul
        await a.assert_in_sync()
        await assert_counters(a, organiser, checked_in=4, inside=1)

        # Reconnect by cursor while another door lets s4 in.
        cursor = a.state.seq
        await a.disconnect()
        await b.send(
            {
                "type": "scan",
                "scan_id": str(uuid.uuid4()),
                "code": s4["code"],
                "list_id": main["id"],
            }
        )
        assert (await b.recv_type("result"))["verdict"] == "accepted"
        await a.connect()
        welcome = await a.hello()
        assert welcome["head"] == cursor + 1 and a.state.seq == cursor + 1
        assert a.changes_seen[cursor + 1]["presence"]["ticket_id"] == s4["id"]
        await a.assert_in_sync()
        await assert_counters(a, organiser, checked_in=5, inside=2)

        # The REST twin serves the same items, page by page, as the websocket did.
        since = zstd_snapshot["seq"]
        rest = await a.rest_changes(since, limit=2)
        assert [x["seq"] for x in rest] == list(range(since + 1, a.state.seq + 1))
        assert rest == [a.changes_seen[x["seq"]] for x in rest]
        head = a.state.seq
        empty = await a.get("/api/v1/checkin/changes", since=head)
        assert empty.json() == {"items": [], "head": head, "has_more": False}
        beyond = await a.get("/api/v1/checkin/changes", since=head + 1)
        assert beyond.status_code == 409, beyond.text
        assert beyond.headers["content-type"].startswith("application/problem+json")
        assert beyond.json()["code"] == "snapshot_required"
        assert beyond.json()["head"] == head
        await a.send({"type": "hello", "cursor": head + 1})
        lost = await a.recv_type("welcome")
        assert (lost["snapshot_required"], lost["head"]) == (True, head)

        for d in (a, b, c, silent):
            await d.disconnect()
    assert a.sync_checks >= 10  # every changes page door A applied was checked
