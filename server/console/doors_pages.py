"""The console's doors pages: an event's devices, creating one, its pairing QR, revoking it.

A pairing code is shown once (only its hash is stored), so creating a device answers with the
pairing page itself (200, `Cache-Control: no-store`) rather than a redirect that would have to
carry the code in its URL. A device not paired yet can be given a new code from the doors page
(the old one stops working), which shows the same page. The QR holds exactly the API's
`pairing_payload` (`NewDevice.pairing_payload`), which `tessera-scan pair` reads.

Revoking goes through the same service call as `DELETE /api/v1/devices/{id}`, then, after the
commit, tells this instance's writer to forget the device and every instance's doors to close
its sockets, as that route does.
"""

from __future__ import annotations

from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import FromPath
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from server.checkin import service as checkin
from server.checkin.models import Device
from server.checkin.schemas import DeviceCreate
from server.console.dashboard import live_device_ids, read_devices
from server.console.events_pages import _attempt
from server.console.forms import FormValues, errors_by_field, to_struct
from server.console.i18n import Labels
from server.console.signin import Viewer, ViewerDep, provide_viewer
from server.console.web import Form, html_page, read_form, redirect
from server.db import utcnow
from server.errors import BodyInvalid, Conflict, FieldError, InvalidState, NotFound
from server.events import service as events
from server.http import DbSession
from ticket_renderer import qr_svg

__all__ = ["DoorPages"]

NO_STORE = {"Cache-Control": "no-store"}


async def _device_of(session: AsyncSession, event_id: str, device_id: str) -> Device:
    """The device, only under its own event's path: another event's device is not found."""
    device = await checkin.get_device(session, device_id)
    if device.event_id != event_id:
        raise NotFound("device", device_id)
    return device


def pairing_qr(payload: str, label: str) -> Markup:
    """The pairing payload's QR as inline SVG (the same drawing as the API's pairing.svg)."""
    svg = qr_svg(payload, scale=10).decode()
    named = f'<svg role="img" aria-label="{escape(label)}" class="pairing-qr" '
    return Markup(svg.replace("<svg ", named, 1))


async def _doors_page(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    viewer: Viewer,
    event_id: str,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: list[FieldError] | None = None,
    problem: str | None = None,
) -> Response[str]:
    event = await events.get_event(session, event_id)
    labels = Labels(viewer.lang)
    live = live_device_ids(request, event_id)
    devices = await read_devices(session, event_id, labels, ZoneInfo(event.timezone), live)
    return html_page(
        "doors.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event_id}/doors",
        event=event,
        devices=devices,
        fields={"name": form.get("name") if form else "", "gate": form.get("gate") if form else ""},
        errors=errors_by_field(errors or []),
        problem=problem,
    )


def _pairing_page(
    state: State, viewer: Viewer, event: Any, new: checkin.NewDevice
) -> Response[str]:
    labels = Labels(viewer.lang)
    payload = new.pairing_payload(state.settings.public_base_url)
    expires = new.device.pairing_expires_at
    return html_page(
        "device_pairing.html",
        lang=viewer.lang,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event.id}/doors",
        event=event,
        device=new.device,
        code=new.pairing_code,
        expires=expires,
        tz=ZoneInfo(event.timezone),
        qr=pairing_qr(payload, labels("doors_qr_alt", name=new.device.name)),
        headers=NO_STORE,
    )


async def _revoke_notices(state: State, event_id: str, device_id: str) -> None:
    """After the commit (a background task runs once the answer is sent)."""
    state.redeem_writer.forget_device(device_id)
    await state.fanout.publish(event_id, {"kind": "device_revoked", "device_id": device_id})


class DoorPages(Controller):
    path = "/console/events"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = {"viewer": Provide(provide_viewer)}

    @get("/{event_id:str}/doors")
    async def doors_page(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        return await _doors_page(request, db_session, viewer, event_id)

    @post("/{event_id:str}/doors", status_code=200)
    async def create_device(
        self,
        request: Request[Any, Any, Any],
        state: State,
        event_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        """Form `name`, `gate`: the API's DeviceCreate; answers the pairing page."""
        form = await read_form(request, viewer.csrf)
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        values = FormValues(form)
        values.text("name")
        values.text("gate", optional=True)
        try:
            data = to_struct(values, DeviceCreate)
            new = await _attempt(
                db_session,
                lambda: checkin.create_device(db_session, event_id, data, now=utcnow()),
            )
        except BodyInvalid as exc:
            return await _doors_page(
                request, db_session, viewer, event_id, status=422, form=form, errors=exc.errors
            )
        except Conflict as exc:
            return await _doors_page(
                request, db_session, viewer, event_id, status=409, form=form, problem=exc.detail
            )
        return _pairing_page(state, viewer, event, new)

    @post("/{event_id:str}/doors/{device_id:str}/pairing", status_code=200)
    async def new_code(
        self,
        request: Request[Any, Any, Any],
        state: State,
        event_id: FromPath[str],
        device_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        """A new pairing code for a device not paired yet (its previous code stops working)."""
        await read_form(request, viewer.csrf)
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        await _device_of(db_session, event_id, device_id)
        try:
            new = await _attempt(
                db_session,
                lambda: checkin.new_pairing_code(db_session, device_id, now=utcnow()),
            )
        except InvalidState as exc:
            return await _doors_page(
                request, db_session, viewer, event_id, status=409, problem=exc.detail
            )
        return _pairing_page(state, viewer, event, new)

    @get("/{event_id:str}/doors/{device_id:str}/revoke")
    async def revoke_page(
        self,
        event_id: FromPath[str],
        device_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        device = await _device_of(db_session, event_id, device_id)
        return html_page(
            "device_revoke.html",
            lang=viewer.lang,
            viewer=viewer,
            section="events",
            here=f"/console/events/{event_id}/doors",
            event=event,
            device=device,
        )

    @post("/{event_id:str}/doors/{device_id:str}/revoke", status_code=303)
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        state: State,
        event_id: FromPath[str],
        device_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        """The API's revocation: its token is refused at once and its sockets are closed."""
        await read_form(request, viewer.csrf)
        viewer.require_edit()
        await _device_of(db_session, event_id, device_id)
        await checkin.revoke_device(db_session, device_id, now=utcnow())
        response = redirect(f"/console/events/{event_id}/doors")
        response.background = BackgroundTask(_revoke_notices, state, event_id, device_id)
        return response
