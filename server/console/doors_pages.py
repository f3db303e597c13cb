"""The console's doors pages: an event's devices, creating one, its pairing QR, revoking it.

Creating a device, or giving a device not paired yet a new code (the old one stops working),
is a POST that answers 303 to the device's pairing page, so a reload shows that page again and
creates nothing. A pairing code is stored only as its hash: the GET finds it in a cookie sealed
for the session that asked for it (`pairing_view` says why that and not another way), and
shows it only while it is still the device's live code, for SHOWN_FOR at most, with
`Cache-Control: no-store`. The QR holds exactly the API's `pairing_payload`
(`NewDevice.pairing_payload`), which `tessera-scan pair` reads.

Revoking goes through the same service call as `DELETE /api/v1/devices/{id}`, then, after the
commit, tells this instance's writer to forget the device and every instance's doors to close
its sockets, as that route does.
"""

from __future__ import annotations

from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import Cookie, State
from litestar.di import Provide
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from server.checkin import service as checkin
from server.checkin.models import Device
from server.checkin.schemas import DeviceCreate
from server.console import pairing_view
from server.console.dashboard import live_device_ids, read_devices
from server.console.forms import FormValues, Refused, attempt, errors_by_field, shown, to_struct
from server.console.i18n import Labels
from server.console.pages import DeviceDep, EventPage, EventPageDep, dependencies
from server.console.web import SESSION_COOKIE, html_page, is_https, redirect
from server.db import utcnow
from server.http import DbSession
from ticket_renderer import qr_svg

__all__ = ["DoorPages"]

NO_STORE = {"Cache-Control": "no-store"}


def pairing_qr(payload: str, label: str) -> Markup:
    """The pairing payload's QR as inline SVG (the same drawing as the API's pairing.svg)."""
    svg = qr_svg(payload, scale=10).decode()
    named = f'<svg role="img" aria-label="{escape(label)}" class="pairing-qr" '
    return Markup(svg.replace("<svg ", named, 1))


async def _doors_page(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    page: EventPage,
    *,
    refused: Refused | None = None,
) -> Response[str]:
    """The event's devices and the new-device form (sent back as it was, when refused)."""
    status, errors, problem = shown(refused)
    event, viewer = page.event, page.viewer
    labels = Labels(viewer.lang)
    live = await live_device_ids(request, event.id)
    devices = await read_devices(session, event.id, labels, ZoneInfo(event.timezone), live)
    return html_page(
        "doors.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event.id}/doors",
        event=event,
        devices=devices,
        fields={"name": page.form.get("name"), "gate": page.form.get("gate")},
        errors=errors_by_field(errors),
        problem=problem,
    )


def _pairing_path(event_id: str, device_id: str) -> str:
    return f"/console/events/{event_id}/doors/{device_id}/pairing"


def _to_pairing_page(
    request: Request[Any, Any, Any], event_id: str, new: checkin.NewDevice
) -> Response[str]:
    """303 to the device's pairing page, with its code sealed for this session (`pairing_view`)."""
    path = _pairing_path(event_id, new.device.id)
    secret = request.cookies.get(SESSION_COOKIE, "")
    sealed = pairing_view.seal(secret, new.device.id, new.pairing_code, now=utcnow())
    kept = Cookie(
        key=pairing_view.COOKIE,
        value=sealed,
        max_age=int(pairing_view.SHOWN_FOR.total_seconds()),
        path=path,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return redirect(path, cookies=[kept])


async def _shown_code(
    request: Request[Any, Any, Any], session: AsyncSession, device: Device
) -> str | None:
    """The code this browser's session was given for `device`, while it is still its live one."""
    now = utcnow()
    secret = request.cookies.get(SESSION_COOKIE, "")
    sealed = request.cookies.get(pairing_view.COOKIE, "")
    code = pairing_view.unseal(secret, device.id, sealed, now=now)
    if code is None or not await checkin.pairing_code_matches(session, device.id, code, now=now):
        return None
    return code


def _pairing_page(state: State, page: EventPage, device: Device, code: str | None) -> Response[str]:
    event, viewer = page.event, page.viewer
    labels = Labels(viewer.lang)
    qr = None
    if code is not None:
        payload = checkin.NewDevice.payload_for(state.settings.public_base_url, code)
        qr = pairing_qr(payload, labels("doors_qr_alt", name=device.name))
    return html_page(
        "device_pairing.html",
        lang=viewer.lang,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event.id}/doors",
        event=event,
        device=device,
        code=code,
        expires=device.pairing_expires_at,
        tz=ZoneInfo(event.timezone),
        qr=qr,
        headers=NO_STORE,
    )


async def _revoke_notices(state: State, event_id: str, device_id: str) -> None:
    """After the commit (a background task runs once the answer is sent); the sockets are told
    by the request's after-commit publish (`server.changes.publish`)."""
    state.redeem_writer.forget_device(device_id)


class DoorPages(Controller):
    path = "/console/events/{event_id:str}/doors"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = dependencies("page", "device")

    @get("/")
    async def doors_page(
        self, request: Request[Any, Any, Any], page: EventPageDep, db_session: DbSession
    ) -> Response[str]:
        return await _doors_page(request, db_session, page)

    @post("/", status_code=303)
    async def create_device(
        self, request: Request[Any, Any, Any], page: EventPageDep, db_session: DbSession
    ) -> Response[str]:
        """Form `name`, `gate`: the API's DeviceCreate; 303 to the device's pairing page."""
        values = FormValues(page.form)
        values.text("name")
        values.text("gate", optional=True)
        try:
            new = await attempt(
                db_session,
                lambda: checkin.create_device(
                    db_session, page.event.id, to_struct(values, DeviceCreate), now=utcnow()
                ),
            )
        except Refused as no:
            return await _doors_page(request, db_session, page, refused=no)
        return _to_pairing_page(request, page.event.id, new)

    @post("/{device_id:str}/pairing", status_code=303)
    async def new_code(
        self,
        request: Request[Any, Any, Any],
        page: EventPageDep,
        device: DeviceDep,
        db_session: DbSession,
    ) -> Response[str]:
        """A new pairing code for a device not paired yet (its previous code stops working)."""
        try:
            new = await attempt(
                db_session, lambda: checkin.new_pairing_code(db_session, device.id, now=utcnow())
            )
        except Refused as no:
            return await _doors_page(request, db_session, page, refused=no)
        return _to_pairing_page(request, page.event.id, new)

    @get("/{device_id:str}/pairing")
    async def pairing_page(
        self,
        request: Request[Any, Any, Any],
        state: State,
        page: EventPageDep,
        device: DeviceDep,
        db_session: DbSession,
    ) -> Response[str]:
        """The device's pairing QR and code for the browser that asked for them (changes
        nothing); otherwise its state, and for an unpaired device the new-code button."""
        page.viewer.require_edit()
        code = await _shown_code(request, db_session, device)
        return _pairing_page(state, page, device, code)

    @get("/{device_id:str}/revoke")
    async def revoke_page(self, page: EventPageDep, device: DeviceDep) -> Response[str]:
        page.viewer.require_edit()
        return html_page(
            "device_revoke.html",
            lang=page.viewer.lang,
            viewer=page.viewer,
            section="events",
            here=f"/console/events/{page.event.id}/doors",
            event=page.event,
            device=device,
        )

    @post("/{device_id:str}/revoke", status_code=303)
    async def revoke(
        self, state: State, page: EventPageDep, device: DeviceDep, db_session: DbSession
    ) -> Response[str]:
        """The API's revocation: its token is refused at once and its sockets are closed."""
        await checkin.revoke_device(db_session, device.id, now=utcnow())
        response = redirect(f"/console/events/{page.event.id}/doors")
        response.background = BackgroundTask(_revoke_notices, state, page.event.id, device.id)
        return response
