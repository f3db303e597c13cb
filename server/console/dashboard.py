"""The live check-in dashboard of an event: its data, its page, and its server-sent events.

The page is complete without JavaScript (it refreshes itself every 10 s inside `<noscript>`).
With JavaScript, `static/dashboard.js` follows `/dashboard/events`, a stream of `update` events,
each carrying the whole dashboard (counters, latest scans, conflicts, devices) already worded in
the viewer's language, so the script only puts text into cells.

Rules of the stream:
- It subscribes to the event's fan-out notices through the `Fanout` interface only (in memory on
  one instance, Redis pub/sub across two), exactly as the hub's rooms do; a notice only says
  "look", so each wake reads the database again, and a lost notice costs at most one keep-alive
  interval of latency (a silent interval's wake reads too; an unchanged dashboard is not sent).
- A burst of notices costs one read: the queue is drained before reading.
- It checks the console session on every wake and ends once it is gone (signed out, signed out
  everywhere, expired, user disabled); it ends when the client goes away (Litestar cancels it).
- A comment line is sent every KEEP_ALIVE seconds of silence, so proxies keep it open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import Provide
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.messages import Counters
from server.checkin import service as checkin
from server.checkin.models import Device, ScanRow
from server.console import accounts
from server.console.i18n import Labels
from server.console.signin import Viewer, ViewerDep, provide_viewer
from server.console.web import CSP, SESSION_COOKIE, STATIC, html_page
from server.db import utcnow
from server.events import service as events
from server.http import DbSession
from server.tickets.models import Ticket

__all__ = ["DASHBOARD_CSP", "DashboardPages", "live_device_ids", "read_dashboard", "read_devices"]

KEEP_ALIVE = 15.0  # seconds of silence before a comment line
FEED_SIZE = 20
CONFLICTS_SIZE = 10
DEVICES_SIZE = 500
DASHBOARD_CSP = CSP + "; script-src 'self'; connect-src 'self'"
_JS = (STATIC / "dashboard.js").read_bytes()
_json = msgspec.json.Encoder()


@dataclass(frozen=True)
class FeedRow:
    """One scan as the dashboard shows it (times at the venue's wall clock)."""

    key: str
    at: str
    at_iso: str
    gate: str
    device: str
    code: str
    holder: str
    verdict: str  # accepted, rejected, forced
    verdict_label: str


@dataclass(frozen=True)
class DeviceRow:
    id: str
    name: str
    gate: str
    state: str  # live, offline, unpaired, revoked
    state_label: str
    last_seen: str


@dataclass
class Dashboard:
    counters: Counters
    feed: list[FeedRow] = field(default_factory=list)
    conflicts: list[FeedRow] = field(default_factory=list)
    devices: list[DeviceRow] = field(default_factory=list)

    def payload(self, labels: Labels) -> dict[str, Any]:
        """What an `update` event carries: counters and each table's rows as plain text."""
        c = self.counters
        none = "\N{EN DASH}"  # an empty cell
        return {
            "counters": {
                "total": c.total,
                "checked_in": c.checked_in,
                "inside": c.inside,
                "remaining": c.remaining,
            },
            "tables": {
                "dash-lists": [
                    {"cells": [x.name, x.checked_in, x.inside, x.remaining]} for x in c.lists
                ],
                "dash-gates": [
                    {"cells": [x.gate or none, x.checked_in, x.inside]} for x in c.gates
                ],
                "dash-feed": [_feed_cells(row) for row in self.feed],
                "dash-conflicts": [_feed_cells(row) for row in self.conflicts],
                "dash-devices": [
                    {
                        "cells": [d.name, d.gate or none, d.state_label, d.last_seen or none],
                        "cls": f"state-{d.state}",
                    }
                    for d in self.devices
                ],
            },
        }


def _feed_cells(row: FeedRow) -> dict[str, Any]:
    texts = [row.at, row.gate, row.device, row.code, row.holder, row.verdict_label]
    cells = [text or "\N{EN DASH}" for text in texts]  # an empty cell shows a dash
    return {"cells": cells, "cls": f"verdict-{row.verdict}"}


async def live_device_ids(request: Request[Any, Any, Any], event_id: str) -> set[str]:
    """The devices with a socket open on any instance: this instance's rooms, and with Redis
    the other instances' too (server/checkin/redis_fanout.py `online`)."""
    hub = getattr(request.app.state, "hub", None)
    if hub is None:
        return set()
    room = hub.rooms.get(event_id)
    here = room.device_ids() if room is not None else set()
    return await hub.fanout.online(event_id, here)


def _clock(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else moment.astimezone(zone).strftime("%H:%M:%S")


def _verdict(scan: ScanRow, labels: Labels) -> tuple[str, str]:
    if scan.forced:
        return "forced", labels("dash_forced", reason=scan.reason or "")
    if scan.accepted:
        label = labels.dash_accepted if not scan.annulled else labels.dash_annulled
        return ("accepted" if not scan.annulled else "annulled"), label
    return "rejected", labels("dash_rejected", reason=scan.reason or "")


async def _scans(
    session: AsyncSession,
    event_id: str,
    labels: Labels,
    zone: ZoneInfo,
    *,
    forced: bool,
    limit: int,
) -> list[FeedRow]:
    query = (
        select(ScanRow, Device.name, Ticket.holder_name, Ticket.code)
        .join(Device, Device.id == ScanRow.device_id, isouter=True)
        .join(Ticket, Ticket.id == ScanRow.ticket_id, isouter=True)
        .where(ScanRow.event_id == event_id)
    )
    if forced:
        query = query.where(ScanRow.forced.is_(True))
    query = query.order_by(ScanRow.received_at.desc(), ScanRow.scan_id.desc()).limit(limit)
    rows = []
    for scan, device, holder, code in await session.execute(query):
        verdict, label = _verdict(scan, labels)
        rows.append(
            FeedRow(
                key=f"{scan.device_id}:{scan.scan_id}",
                at=_clock(scan.scanned_at if forced else scan.received_at, zone),
                at_iso=(scan.scanned_at if forced else scan.received_at).isoformat(),
                gate=scan.gate or "",
                device=device or scan.device_id,
                code=code or scan.code[:20],
                holder=holder or "",
                verdict=verdict,
                verdict_label=label,
            )
        )
    return rows


async def read_devices(
    session: AsyncSession, event_id: str, labels: Labels, zone: ZoneInfo, live: set[str]
) -> list[DeviceRow]:
    """The event's devices with their state: connected on any instance (`live`), offline, not
    paired or revoked, and the time of their last scan."""
    devices, _ = await checkin.list_devices(session, event_id, limit=DEVICES_SIZE, offset=0)
    last = dict(
        (
            await session.execute(
                select(ScanRow.device_id, func.max(ScanRow.received_at))
                .where(ScanRow.event_id == event_id)
                .group_by(ScanRow.device_id)
            )
        ).all()
    )
    rows = []
    for d in devices:
        if d.revoked_at is not None:
            state = "revoked"
        elif d.paired_at is None:
            state = "unpaired"
        else:
            state = "live" if d.id in live else "offline"
        seen = last.get(d.id)
        rows.append(
            DeviceRow(
                id=d.id,
                name=d.name,
                gate=d.gate or "",
                state=state,
                state_label=labels("dash_state_" + state),
                last_seen=_clock(seen, zone) if seen else "",
            )
        )
    return rows


async def read_dashboard(
    session: AsyncSession, event_id: str, labels: Labels, *, zone: str, live: set[str]
) -> Dashboard:
    """The dashboard of `event_id`: the API's counters (`event_counters`), latest scans,
    forced offline entries, and devices with their state."""
    tz = ZoneInfo(zone)
    return Dashboard(
        counters=await checkin.event_counters(session, event_id),
        feed=await _scans(session, event_id, labels, tz, forced=False, limit=FEED_SIZE),
        conflicts=await _scans(session, event_id, labels, tz, forced=True, limit=CONFLICTS_SIZE),
        devices=await read_devices(session, event_id, labels, tz, live),
    )


async def _session_alive(request: Request[Any, Any, Any], secret: str) -> bool:
    async with request.app.state.database.transaction(read_only=True) as session:
        return await accounts.find_session(session, secret, now=utcnow()) is not None


async def _updates(
    request: Request[Any, Any, Any], event_id: str, zone: str, lang: str, secret: str
) -> AsyncIterator[ServerSentEventMessage]:
    labels = Labels(lang)
    database = request.app.state.database
    async with request.app.state.fanout.subscribe(event_id) as queue:
        woke, sent = True, ""  # subscribed first, read second: nothing committed is missed
        while True:
            if not await _session_alive(request, secret):
                return
            if not woke:
                yield ServerSentEventMessage(comment="keep-alive")
            # Every wake reads, a silent one too: a notice Redis lost costs one interval.
            async with database.transaction(read_only=True) as session:
                live = await live_device_ids(request, event_id)
                board = await read_dashboard(session, event_id, labels, zone=zone, live=live)
            data = _json.encode(board.payload(labels)).decode()
            if data != sent:
                yield ServerSentEventMessage(data=data, event="update")
                sent = data
            try:
                async with asyncio.timeout(KEEP_ALIVE):
                    await queue.get()
                woke = True
            except TimeoutError:
                woke = False
            while not queue.empty():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()


class DashboardPages(Controller):
    path = "/console"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = {"viewer": Provide(provide_viewer)}

    @get("/events/{event_id:str}/dashboard")
    async def dashboard_page(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        event = await events.get_event(db_session, event_id)
        labels = Labels(viewer.lang)
        board = await read_dashboard(
            db_session,
            event_id,
            labels,
            zone=event.timezone,
            live=await live_device_ids(request, event_id),
        )
        return _page(viewer, event, board)

    @get("/events/{event_id:str}/dashboard/events")
    async def dashboard_events(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> ServerSentEvent:
        """`update` events with the whole dashboard, after each change of the event."""
        event = await events.get_event(db_session, event_id)  # 404 before any stream
        secret = request.cookies.get(SESSION_COOKIE, "")
        stream = _updates(request, event_id, event.timezone, viewer.lang, secret)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return ServerSentEvent(stream, headers=headers, retry_duration=3000)

    @get("/static/dashboard.js")
    async def dashboard_js(self) -> Response[bytes]:
        return Response(
            _JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )


def _page(viewer: Viewer, event: Any, board: Dashboard) -> Response[str]:
    return html_page(
        "dashboard.html",
        lang=viewer.lang,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event.id}/dashboard",
        event=event,
        board=board,
        headers={"Content-Security-Policy": DASHBOARD_CSP},
    )
