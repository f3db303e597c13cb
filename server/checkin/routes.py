"""Check-in HTTP API: organiser (lists, devices, stats), pairing, and the device's REST twin of
the websocket (redeem, annul, snapshot, changes). Thin: parse, call the service, shape.

Device calls carry the device token (`Authorization: Bearer tsd_...`) and manage their own
transactions, so that fan-out notices go out only after commit and reads take no write lock.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import CacheControlHeader, State
from litestar.params import FromPath, JSONBody, QueryParameter

from protocol.messages import Counters, ResultItem
from protocol.sync import utc
from server.changes.feed import changes_after, needs_snapshot
from server.changes.publish import committing
from server.changes.service import head
from server.checkin import service
from server.checkin.fast_redeem import FAILURE
from server.checkin.models import CheckinList, Device
from server.checkin.schemas import (
    AnnulRequest,
    ChangesOut,
    CheckinListCreate,
    CheckinListOut,
    CheckinListPatch,
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    PairOut,
    PairRequest,
    RedeemRequest,
)
from server.checkin.store import DeviceContext
from server.checkin.writer import RedeemWriter
from server.db import utcnow
from server.errors import NotFound, RateLimited, SnapshotRequired, Unauthenticated
from server.http import (
    Body,
    DbSession,
    Limit,
    Offset,
    Page,
    bearer_token,
    created,
    organiser_guard,
    page,
)
from ticket_renderer import qr_svg

__all__ = ["CheckinAdminController", "DeviceApiController", "pair_device"]

Since = Annotated[
    int, QueryParameter(ge=0, le=2**62, description="the last seq the device applied")
]
WithConflicts = Annotated[
    bool, QueryParameter(description="add `conflicts`, every scan.conflict's (decision 0012)")
]
ChangesLimit = Annotated[int, QueryParameter(ge=1, le=1000, description="changes per page")]
PairingCodeQuery = Annotated[str, QueryParameter(min_length=1, max_length=64)]
# For answers carrying a pairing code or a device token: no cache may keep a copy.
NO_STORE = CacheControlHeader(no_store=True)
DeviceIdQuery = Annotated[
    str | None,
    QueryParameter(
        min_length=1, max_length=64, description="the device whose scan it is, when ambiguous"
    ),
]


def list_out(row: CheckinList) -> CheckinListOut:
    return CheckinListOut(
        id=row.id,
        event_id=row.event_id,
        name=row.name,
        ticket_type_ids=row.ticket_type_ids,
        max_entries=row.max_entries,
        allow_reentry=row.allow_reentry,
        # What was just written echoes as read back: in UTC, like the doors see it.
        valid_from=utc(row.valid_from) if row.valid_from else None,
        valid_until=utc(row.valid_until) if row.valid_until else None,
    )


def device_out(row: Device) -> DeviceOut:
    return DeviceOut(
        id=row.id,
        event_id=row.event_id,
        name=row.name,
        gate=row.gate,
        paired=row.paired_at is not None,
        revoked=row.revoked_at is not None,
        created_at=row.created_at,
        paired_at=row.paired_at,
        revoked_at=row.revoked_at,
    )


class CheckinAdminController(Controller):
    path = "/api/v1"
    tags = ["check-in"]
    guards = [organiser_guard]
    security = [{"organiser": []}]

    @post(
        "/events/{event_id:str}/checkin-lists",
        dto=Body[CheckinListCreate],
        return_dto=None,
        summary="Create a check-in list",
    )
    async def create_list(
        self,
        request: Request,
        event_id: FromPath[str],
        data: JSONBody[CheckinListCreate],
        db_session: DbSession,
    ) -> Response[CheckinListOut]:
        row = await service.create_list(db_session, event_id, data)
        return created(list_out(row), request, f"/api/v1/events/{event_id}/checkin-lists/{row.id}")

    @get("/events/{event_id:str}/checkin-lists", summary="List an event's check-in lists")
    async def list_lists(
        self, event_id: FromPath[str], db_session: DbSession, limit: Limit = 50, offset: Offset = 0
    ) -> Page[CheckinListOut]:
        rows, total = await service.list_lists(db_session, event_id, limit=limit, offset=offset)
        return page([list_out(row) for row in rows], total, limit, offset)

    @get("/events/{event_id:str}/checkin-lists/{list_id:str}", summary="Read a check-in list")
    async def get_list(
        self, event_id: FromPath[str], list_id: FromPath[str], db_session: DbSession
    ) -> CheckinListOut:
        return list_out(await service.get_list(db_session, event_id, list_id))

    @patch(
        "/events/{event_id:str}/checkin-lists/{list_id:str}",
        dto=Body[CheckinListPatch],
        return_dto=None,
        summary="Change a check-in list (doors learn it from `list.updated`)",
    )
    async def update_list(
        self,
        event_id: FromPath[str],
        list_id: FromPath[str],
        data: JSONBody[CheckinListPatch],
        db_session: DbSession,
    ) -> CheckinListOut:
        return list_out(await service.update_list(db_session, event_id, list_id, data))

    @post(
        "/events/{event_id:str}/devices",
        dto=Body[DeviceCreate],
        return_dto=None,
        summary="Create a door device and its one-time pairing code",
        cache_control=NO_STORE,
    )
    async def create_device(
        self,
        request: Request,
        state: State,
        event_id: FromPath[str],
        data: JSONBody[DeviceCreate],
        db_session: DbSession,
    ) -> Response[DeviceCreated]:
        new = await service.create_device(db_session, event_id, data, now=utcnow())
        base = state.settings.public_base_url
        device = new.device
        body = DeviceCreated(
            id=device.id,
            event_id=device.event_id,
            name=device.name,
            gate=device.gate,
            pairing_code=new.pairing_code,
            pairing_expires_at=device.pairing_expires_at or utcnow(),
            pairing_uri=new.pairing_uri(base),
            pairing_payload=new.pairing_payload(base),
        )
        return created(body, request, f"/api/v1/devices/{device.id}")

    @get("/events/{event_id:str}/devices", summary="List an event's devices")
    async def list_devices(
        self, event_id: FromPath[str], db_session: DbSession, limit: Limit = 50, offset: Offset = 0
    ) -> Page[DeviceOut]:
        rows, total = await service.list_devices(db_session, event_id, limit=limit, offset=offset)
        return page([device_out(row) for row in rows], total, limit, offset)

    @get("/devices/{device_id:str}", summary="Read a device: paired, revoked, when")
    async def get_device(self, device_id: FromPath[str], db_session: DbSession) -> DeviceOut:
        return device_out(await service.get_device(db_session, device_id))

    @delete("/devices/{device_id:str}", summary="Revoke a device: its token is refused at once")
    async def revoke_device(self, state: State, device_id: FromPath[str]) -> None:
        async with committing(state.database, state.fanout) as session:
            await service.revoke_device(session, device_id, now=utcnow())
        state.redeem_writer.forget_device(device_id)  # this instance refuses it from now on

    @get(
        "/devices/{device_id:str}/pairing.svg",
        media_type="image/svg+xml",
        summary="The pairing QR of an unpaired device, for the code shown at its creation",
    )
    async def pairing_svg(
        self, state: State, device_id: FromPath[str], code: PairingCodeQuery, db_session: DbSession
    ) -> Response[bytes]:
        # Only the code's hash is stored, so the caller brings the code; the QR is shown only
        # while that code can still pair.
        if not await service.pairing_code_matches(db_session, device_id, code, now=utcnow()):
            raise NotFound("pairing code of device", device_id)
        payload = service.NewDevice.payload_for(state.settings.public_base_url, code)
        headers = {"Cache-Control": "no-store"}
        return Response(qr_svg(payload), media_type="image/svg+xml", headers=headers)

    @get("/events/{event_id:str}/checkin/stats", summary="Live check-in counters")
    async def stats(self, event_id: FromPath[str], db_session: DbSession) -> Counters:
        await service.list_lists(db_session, event_id, limit=1, offset=0)  # 404 if unknown
        return await service.event_counters(db_session, event_id)

    @post("/scans/{scan_id:str}/annul", status_code=200, summary="Annul any scan (organiser)")
    async def annul(
        self, state: State, scan_id: FromPath[str], device_id: DeviceIdQuery = None
    ) -> ResultItem:
        """`device_id` names the device when several used the same scan_id (409 otherwise)."""
        return await _annul(state, scan_id, device=None, device_id=device_id)


@post(
    "/api/v1/devices/pair",
    dto=Body[PairRequest],
    return_dto=None,
    status_code=200,
    tags=["check-in"],
    summary="Exchange a one-time pairing code for a device token",
    cache_control=NO_STORE,
)
async def pair_device(request: Request, state: State, data: JSONBody[PairRequest]) -> PairOut:
    """No authentication: the code is the credential, so failed guesses are rate limited per
    address. A right code costs nothing (a fleet pairs at once behind one NAT), but while an
    address is locked out every code answers 429, so guessing learns nothing meanwhile."""
    client = request.client.host if request.client else "unknown"
    limiter, now = state.pair_limiter, time.monotonic()
    wait = limiter.blocked(client, now)
    if wait:
        raise RateLimited("too many failed pairing attempts from this address", retry_after=wait)
    try:
        async with state.database.transaction() as session:
            device, token = await service.pair_device(session, data.pairing_code, now=utcnow())
    except Unauthenticated:
        limiter.take(client, now)
        raise
    base = state.settings.public_base_url
    ws_url = "ws" + base.removeprefix("http") + "/ws/scanner"
    return PairOut(device_id=device.id, token=token, event_id=device.event_id, ws_url=ws_url)


class DeviceApiController(Controller):
    """The device's REST calls; `Authorization: Bearer <device token>`."""

    path = "/api/v1/checkin"
    tags = ["check-in"]
    security = [{"device": []}]

    @post(
        "/redeem",
        dto=Body[RedeemRequest],
        return_dto=None,
        status_code=200,
        summary="Redeem one scan: always 200 with the verdict once decided",
    )
    async def redeem(
        self, request: Request, state: State, data: JSONBody[RedeemRequest]
    ) -> ResultItem:
        failure = request.scope.get(FAILURE)  # fast_redeem ran the writer, which raised
        if failure is not None:
            raise failure
        return await state.redeem_writer.redeem(_token(request), data)

    @post(
        "/annul", dto=Body[AnnulRequest], return_dto=None, status_code=200, summary="Annul a scan"
    )
    async def annul(
        self, request: Request, state: State, data: JSONBody[AnnulRequest]
    ) -> ResultItem:
        return await _annul(state, data.scan_id, device=_token(request))

    @get("/snapshot", summary="The event's snapshot (msgpack, gzip or zstd) and its seq")
    async def snapshot(
        self, request: Request, state: State, conflicts: WithConflicts = False
    ) -> Response[bytes]:
        async with state.database.transaction(read_only=True) as session:
            device = await _device(session, _token(request))
        body, encoding, seq = await state.snapshot_builds.get(
            state.database,
            device.event_id,
            conflicts=conflicts,
            accept_encoding=request.headers.get("accept-encoding", ""),
        )
        headers = {"Content-Encoding": encoding, "X-Tessera-Seq": str(seq)}
        headers["Vary"] = "Accept-Encoding"
        return Response(body, media_type="application/vnd.msgpack", headers=headers)

    @get("/changes", summary="The change log after a cursor")
    async def changes(
        self, request: Request, state: State, since: Since, limit: ChangesLimit = 500
    ) -> ChangesOut:
        async with state.database.transaction(read_only=True) as session:
            device = await _device(session, _token(request))
            if await needs_snapshot(session, device.event_id, since):
                raise SnapshotRequired(
                    f"cursor {since} cannot be followed: load the snapshot, then follow its seq",
                    head=await head(session, device.event_id),
                )
            page = await changes_after(session, device.event_id, since, limit)
        return ChangesOut(items=page.items, head=page.head, has_more=page.has_more)


def _token(request: Request[Any, Any, Any]) -> str:
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("a device token is required: Authorization: Bearer <token>")
    return token


async def _device(session: Any, token: str) -> DeviceContext:
    device = await service.authenticate_device(session, token)
    if device is None:
        raise await service.refusal(session, token)
    return device


async def _annul(
    state: State, scan_id: str, *, device: str | None, device_id: str | None = None
) -> ResultItem:
    writer: RedeemWriter = state.redeem_writer
    return await writer.annul(scan_id, token=device, device_id=device_id)
