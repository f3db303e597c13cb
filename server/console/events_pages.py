"""The console's event pages: list, create, edit, ticket types and check-in lists.

Each form goes through the API's own request struct (server/console/forms.py) and the same
service call as the API route, inside a savepoint: a refusal rolls back whatever the call
began, and the form comes back with the service's errors next to their fields (422), or its
conflict above them (409). Read-only users see every page without its forms; a change they
send anyway gets the 403 page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from server.branding import service as branding
from server.branding.images import KINDS, clean_image
from server.checkin import service as checkin
from server.checkin.models import CheckinList
from server.checkin.schemas import CheckinListCreate, CheckinListPatch
from server.console.forms import (
    FormValues,
    Refused,
    attempt,
    errors_by_field,
    local_input,
    shown,
    to_struct,
    valid_zone,
)
from server.console.i18n import LANGUAGES
from server.console.labels.messages import translated
from server.console.pages import EventPageDep, dependencies
from server.console.signin import Viewer, ViewerDep
from server.console.upload_form import read_upload_form
from server.console.web import ConsolePageError, Form, html_page, read_form, redirect
from server.errors import BodyInvalid, FieldError
from server.events import service as events
from server.events.models import Event
from server.events.schemas import EventCreate, EventPatch, TicketTypeCreate, TicketTypePatch
from server.http import DbSession

__all__ = ["EventPages"]

PAGE = 50
Offset = FromQuery[int]


def _event_values(form: Form, event: Event | None = None) -> FormValues:
    values = FormValues(form)
    values.text("name")
    values.text("timezone")
    zone = valid_zone(values.values["timezone"])
    values.local_time("starts_at", zone)
    values.local_time("ends_at", zone, optional=True)
    values.text("venue", optional=True)
    values.choices("languages")
    # A patch replaces the whole branding: the sender, set by the API only, is sent back as stored.
    colour = form.get("colour").strip() or None
    values.values["branding"] = {**((event.branding or {}) if event else {}), "colour": colour}
    return values


def _shown_errors(errors: list[FieldError]) -> dict[str, str]:
    """The errors by form field; the colour's ("branding.colour") under its input's name."""
    shown = errors_by_field(errors)
    if "branding" in shown:
        shown["colour"] = shown.pop("branding")
    return shown


def _event_fields(event: Event | None, form: Form | None) -> dict[str, Any]:
    """What the event form shows: the form sent back, the stored event, or the defaults."""
    if form is not None:
        return {
            "name": form.get("name"),
            "timezone": form.get("timezone"),
            "starts_at": form.get("starts_at"),
            "ends_at": form.get("ends_at"),
            "venue": form.get("venue"),
            "languages": form.all("languages"),
            "colour": form.get("colour"),
        }
    if event is None:
        return {
            "name": "",
            "timezone": "Europe/Paris",
            "starts_at": "",
            "ends_at": "",
            "venue": "",
            "languages": ["fr", "en"],
            "colour": "",
        }
    return {
        "name": event.name,
        "timezone": event.timezone,
        "starts_at": local_input(event.starts_at, event.timezone),
        "ends_at": local_input(event.ends_at, event.timezone),
        "venue": event.venue or "",
        "languages": list(event.languages),
        "colour": (event.branding or {}).get("colour") or "",
    }


def _event_form(
    viewer: Viewer,
    event: Event | None,
    *,
    form: Form | None = None,
    refused: Refused | None = None,
    images: Mapping[str, str] | None = None,
    image_errors: Mapping[str, str] | None = None,
) -> Response[str]:
    status, errors, problem = shown(refused)
    if image_errors:
        status = 422
    return html_page(
        "event_form.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event.id}/edit" if event else "/console/events/new",
        event=event,
        fields=_event_fields(event, form),
        errors=_shown_errors(errors or []),
        problem=problem,
        all_languages=LANGUAGES,
        images=images or {},
        image_errors=image_errors or {},
    )


async def _detail(
    session: AsyncSession,
    viewer: Viewer,
    event_id: str,
    *,
    failed: str | None = None,
    form: Form | None = None,
    refused: Refused | None = None,
) -> Response[str]:
    """The event's page; `failed` names the form ("ticket_type", "list") sent back refused."""
    status, errors, problem = shown(refused)
    event = await events.get_event(session, event_id)
    types = await events.list_ticket_types(session, event_id)
    lists, _ = await checkin.list_lists(session, event_id, limit=500, offset=0)
    type_names = {t.id: t.name for t in types}
    return html_page(
        "event_detail.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event_id}",
        event=events.event_out(event),
        ticket_types=[events.ticket_type_out(t) for t in types],
        lists=lists,
        type_names=type_names,
        failed=failed,
        sent=form,
        errors=errors_by_field(errors or []),
        problem=problem,
    )


def _type_form(
    viewer: Viewer,
    event: Event,
    ticket_type: Any,
    *,
    form: Form | None = None,
    refused: Refused | None = None,
) -> Response[str]:
    status, errors, _ = shown(refused)
    if form is not None:
        fields = {k: form.get(k) for k in ("name", "capacity", "valid_from", "valid_until")}
    else:
        fields = {
            "name": ticket_type.name,
            "capacity": "" if ticket_type.capacity is None else str(ticket_type.capacity),
            "valid_from": local_input(ticket_type.valid_from, event.timezone),
            "valid_until": local_input(ticket_type.valid_until, event.timezone),
        }
    return html_page(
        "ticket_type_form.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event.id}",
        event=event,
        ticket_type=events.ticket_type_out(ticket_type),
        fields=fields,
        errors=errors_by_field(errors or []),
        problem=None,
    )


def _list_values(form: Form) -> FormValues:
    """A check-in list's form fields as its API body has them: none ticked is every type."""
    values = FormValues(form)
    values.text("name")
    values.whole("max_entries", optional=True)
    values.flag("allow_reentry")
    values.choices("ticket_type_ids")
    if not values.values["ticket_type_ids"]:
        values.values["ticket_type_ids"] = None
    return values


def _list_form(
    viewer: Viewer,
    event: Event,
    checkin_list: CheckinList,
    ticket_types: list[Any],
    *,
    form: Form | None = None,
    refused: Refused | None = None,
) -> Response[str]:
    status, errors, problem = shown(refused)
    if form is not None:
        fields: dict[str, Any] = {
            k: form.get(k) for k in ("name", "max_entries", "valid_from", "valid_until")
        }
        fields["allow_reentry"] = "allow_reentry" in form
        fields["ticket_type_ids"] = form.all("ticket_type_ids")
    else:
        fields = {
            "name": checkin_list.name,
            "max_entries": ""
            if checkin_list.max_entries is None
            else str(checkin_list.max_entries),
            "valid_from": local_input(checkin_list.valid_from, event.timezone),
            "valid_until": local_input(checkin_list.valid_until, event.timezone),
            "allow_reentry": checkin_list.allow_reentry,
            "ticket_type_ids": list(checkin_list.ticket_type_ids or []),
        }
    return html_page(
        "checkin_list_form.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event.id}",
        event=event,
        checkin_list=checkin_list,
        ticket_types=ticket_types,
        fields=fields,
        errors=errors_by_field(errors or []),
        problem=problem,
    )


class EventPages(Controller):
    path = "/console/events"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = dependencies("page")

    @get("/")
    async def list_page(
        self, viewer: ViewerDep, db_session: DbSession, offset: Offset = 0
    ) -> Response[str]:
        offset = max(0, min(offset, 1_000_000_000))
        rows, total = await events.list_events(db_session, PAGE, offset)
        return html_page(
            "events_list.html",
            lang=viewer.lang,
            viewer=viewer,
            section="events",
            here="/console/events",
            events=[events.event_out(e) for e in rows],
            total=total,
            offset=offset,
            page=PAGE,
        )

    @get("/new")
    async def new_page(self, viewer: ViewerDep) -> Response[str]:
        viewer.require_edit()
        return _event_form(viewer, None)

    @post("/", status_code=303)
    async def create(
        self, request: Request[Any, Any, Any], viewer: ViewerDep, db_session: DbSession
    ) -> Response[str]:
        form = await read_form(request, viewer.csrf)
        viewer.require_edit()
        try:
            event = await attempt(
                db_session,
                lambda: events.create_event(
                    db_session, to_struct(_event_values(form), EventCreate)
                ),
            )
        except Refused as no:
            return _event_form(viewer, None, form=form, refused=no)
        return redirect(f"/console/events/{event.id}")

    @get("/{event_id:str}")
    async def detail_page(self, page: EventPageDep, db_session: DbSession) -> Response[str]:
        return await _detail(db_session, page.viewer, page.event.id)

    @get("/{event_id:str}/edit")
    async def edit_page(self, page: EventPageDep, db_session: DbSession) -> Response[str]:
        page.viewer.require_edit()
        images = await branding.event_images(db_session, page.event.id)
        return _event_form(page.viewer, page.event, images=images)

    @post("/{event_id:str}/branding/{kind:str}", status_code=303, request_max_body_size=None)
    async def upload_image(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        kind: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        """The API's upload (same checks, same service) from a multipart form's `file`."""
        settings = request.app.state.settings
        upload = await read_upload_form(request, viewer.csrf, settings)
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        if kind not in KINDS:
            raise ConsolePageError(404, "not_found", "not_found")
        try:
            clean = clean_image(upload.data or b"")
            await branding.put_image(db_session, event.id, kind, clean)
        except BodyInvalid as no:
            message = translated(no.errors[0]["message"], viewer.lang)
            images = await branding.event_images(db_session, event.id)
            return _event_form(viewer, event, images=images, image_errors={kind: message})
        return redirect(f"/console/events/{event.id}/edit")

    @post("/{event_id:str}/branding/{kind:str}/remove", status_code=303)
    async def remove_image(
        self, page: EventPageDep, kind: FromPath[str], db_session: DbSession
    ) -> Response[str]:
        await branding.remove_image(db_session, page.event.id, kind)
        return redirect(f"/console/events/{page.event.id}/edit")

    @post("/{event_id:str}/edit", status_code=303)
    async def edit(
        self,
        page: EventPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        try:
            await attempt(
                db_session,
                lambda: events.update_event(
                    db_session,
                    page.event.id,
                    to_struct(_event_values(page.form, page.event), EventPatch),
                ),
            )
        except Refused as no:
            return _event_form(page.viewer, page.event, form=page.form, refused=no)
        return redirect(f"/console/events/{page.event.id}")

    @post("/{event_id:str}/ticket-types", status_code=303)
    async def create_ticket_type(
        self,
        page: EventPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        values = FormValues(page.form)
        values.text("name")
        values.whole("persons")
        values.whole("capacity", optional=True)
        values.local_time("valid_from", page.event.timezone, optional=True)
        values.local_time("valid_until", page.event.timezone, optional=True)
        try:
            await attempt(
                db_session,
                lambda: events.create_ticket_type(
                    db_session, page.event.id, to_struct(values, TicketTypeCreate)
                ),
            )
        except Refused as no:
            return await _detail(
                db_session,
                page.viewer,
                page.event.id,
                failed="ticket_type",
                form=page.form,
                refused=no,
            )
        return redirect(f"/console/events/{page.event.id}#ticket-types")

    @post("/{event_id:str}/checkin-lists", status_code=303)
    async def create_list(
        self,
        page: EventPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        values = _list_values(page.form)
        try:
            await attempt(
                db_session,
                lambda: checkin.create_list(
                    db_session, page.event.id, to_struct(values, CheckinListCreate)
                ),
            )
        except Refused as no:
            return await _detail(
                db_session, page.viewer, page.event.id, failed="list", form=page.form, refused=no
            )
        return redirect(f"/console/events/{page.event.id}#checkin-lists")

    @get("/{event_id:str}/checkin-lists/{list_id:str}/edit")
    async def edit_list_page(
        self,
        list_id: FromPath[str],
        page: EventPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        page.viewer.require_edit()
        checkin_list = await checkin.get_list(db_session, page.event.id, list_id)
        types = await events.list_ticket_types(db_session, page.event.id)
        return _list_form(page.viewer, page.event, checkin_list, types)

    @post("/{event_id:str}/checkin-lists/{list_id:str}/edit", status_code=303)
    async def edit_list(
        self,
        list_id: FromPath[str],
        page: EventPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        """Name, ticket types, entries and window, by the API's `PATCH` rules: none ticked
        means every type, an empty number no limit, an empty time no bound."""
        checkin_list = await checkin.get_list(db_session, page.event.id, list_id)
        values = _list_values(page.form)
        values.local_time("valid_from", page.event.timezone, optional=True)
        values.local_time("valid_until", page.event.timezone, optional=True)
        try:
            await attempt(
                db_session,
                lambda: checkin.update_list(
                    db_session, page.event.id, list_id, to_struct(values, CheckinListPatch)
                ),
            )
        except Refused as no:
            types = await events.list_ticket_types(db_session, page.event.id)
            return _list_form(
                page.viewer, page.event, checkin_list, types, form=page.form, refused=no
            )
        return redirect(f"/console/events/{page.event.id}#checkin-lists")

    @get("/{event_id:str}/ticket-types/{ticket_type_id:str}/edit")
    async def edit_ticket_type_page(
        self,
        ticket_type_id: FromPath[str],
        page: EventPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        page.viewer.require_edit()
        ticket_type = await events.get_ticket_type(db_session, page.event.id, ticket_type_id)
        return _type_form(page.viewer, page.event, ticket_type)

    @post("/{event_id:str}/ticket-types/{ticket_type_id:str}/edit", status_code=303)
    async def edit_ticket_type(
        self,
        ticket_type_id: FromPath[str],
        page: EventPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        """Name, capacity and validity; the service refuses a capacity below the tickets
        already confirmed, and that refusal is shown on the capacity field."""
        ticket_type = await events.get_ticket_type(db_session, page.event.id, ticket_type_id)
        values = FormValues(page.form)
        values.text("name")
        values.whole("capacity", optional=True)
        values.local_time("valid_from", page.event.timezone, optional=True)
        values.local_time("valid_until", page.event.timezone, optional=True)
        try:
            await attempt(
                db_session,
                lambda: events.update_ticket_type(
                    db_session, page.event.id, ticket_type_id, to_struct(values, TicketTypePatch)
                ),
                field="capacity",  # the only refusal update_ticket_type makes
            )
        except Refused as no:
            return _type_form(page.viewer, page.event, ticket_type, form=page.form, refused=no)
        return redirect(f"/console/events/{page.event.id}#ticket-types")
