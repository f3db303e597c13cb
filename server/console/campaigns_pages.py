"""The console's campaign pages: list, editor, preview and test send, recap and send, progress.

Every change goes through the API's own struct (campaign_forms.py) and the service function
the API route calls, in a savepoint. A draft is saved on every "save" even when its templates
have problems (as the API does); the editor then comes back with 422 and each problem beside
its field, and the service refuses to test or send it until they are fixed. The send form
carries the count the recap showed as `expected_recipients`: when the audience changed in
between the service refuses (409) and the recap shows the new count to confirm.

The mail's HTML is shown in a sandboxed frame loaded from its own URL, whose answer alone
allows inline styles (the mail's layout needs them) and nothing else: no script, no foreign
image, a unique origin (`sandbox`), framable by the console only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from server.campaigns import service
from server.campaigns.models import Campaign, CampaignStatus
from server.campaigns.schemas import (
    CampaignCreate,
    CampaignPatch,
    PreviewIn,
    SendIn,
    TestIn,
)
from server.console.campaign_forms import (
    MERGE_FIELDS,
    draft_values,
    errors_of,
    problem_errors,
    schedule_values,
)
from server.console.forms import FormValues, local_input, to_struct
from server.console.i18n import Labels
from server.console.signin import Viewer, ViewerDep, provide_viewer
from server.console.web import CSP, ConsolePageError, Form, html_page, read_form, redirect
from server.contacts import service as contacts
from server.db import utcnow
from server.errors import BodyInvalid, Conflict, FieldError
from server.events import service as events
from server.events.models import Event
from server.http import DbSession, wake_outbox
from server.validation import decode_json_body

__all__ = ["CampaignPages"]

PAGE = 50
STATUSES = ("queued", "sending", "sent", "failed", "bounced")
PICKABLE = 20  # recipients offered in the preview's select
Query = FromQuery[str | None]
# The preview page frames the mail's own URL; the mail's answer allows its inline styles only.
PREVIEW_PAGE_CSP = f"{CSP}; frame-src 'self'"
MAIL_FRAME_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def _attempt(session: AsyncSession, change: Callable[[], Awaitable[Any]]) -> Any:
    """Run `change` in a savepoint: a refusal leaves nothing of it behind."""
    async with session.begin_nested():
        return await change()


async def _campaign(session: AsyncSession, event_id: str, campaign_id: str) -> Campaign:
    """The campaign, only under its own event's path (another event's is not found)."""
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None or campaign.event_id != event_id:
        raise ConsolePageError(404, "not_found", "not_found")
    return campaign


def _base(event_id: str, campaign_id: str | None = None) -> str:
    root = f"/console/events/{event_id}/campaigns"
    return f"{root}/{campaign_id}" if campaign_id else root


def _labelled(viewer: Viewer, errors: list[FieldError]) -> dict[str, str]:
    """Form errors by field; messages that are label keys are shown in the viewer's words."""
    labels = Labels(viewer.lang)
    return {k: labels(v) if v.startswith("cmp_") else v for k, v in errors_of(errors).items()}


async def _editor(
    session: AsyncSession,
    viewer: Viewer,
    event: Event,
    campaign: Campaign | None,
    *,
    form: Form | None = None,
    errors: list[FieldError] | None = None,
    problem: str | None = None,
    status: int = 200,
    saved: bool = False,
) -> Response[str]:
    types = await events.list_ticket_types(session, event.id)
    lists, _ = await contacts.list_lists(session, archived=False, limit=200, offset=0)
    if form is not None:
        fields = _sent_fields(form, list(event.languages))
    elif campaign is not None:
        fields = _stored_fields(campaign)
    else:
        fields = {"kind": "tickets", "delivery": "all", "checked_in": "", "ticket_type_ids": []}
    return html_page(
        "campaign_form.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"{_base(event.id, campaign.id)}/edit" if campaign else f"{_base(event.id)}/new",
        event=event,
        campaign=campaign,
        fields=fields,
        ticket_types=types,
        contact_lists=lists,
        merge_fields=MERGE_FIELDS,
        errors=_labelled(viewer, errors or []),
        problem=problem,
        saved=saved,
    )


def _sent_fields(form: Form, languages: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        name: form.get(name)
        for name in ("name", "kind", "delivery", "checked_in", "contact_list_id")
    }
    fields |= {name: name in form for name in ("per_ticket", "attach_pdf", "attach_ics")}
    fields["ticket_type_ids"] = form.all("ticket_type_ids")
    for lang in languages:
        fields[f"subject_{lang}"] = form.get(f"subject_{lang}")
        fields[f"body_{lang}"] = form.get(f"body_{lang}")
    return fields


def _stored_fields(campaign: Campaign) -> dict[str, Any]:
    audience = campaign.audience or {}
    checked = audience.get("checked_in")
    fields: dict[str, Any] = {
        "name": campaign.name,
        "kind": campaign.kind,
        "delivery": audience.get("delivery") or "all",
        "checked_in": "" if checked is None else ("yes" if checked else "no"),
        "contact_list_id": audience.get("contact_list_id") or "",
        "ticket_type_ids": list(audience.get("ticket_type_ids") or []),
        "per_ticket": campaign.per_ticket,
        "attach_pdf": campaign.attach_pdf,
        "attach_ics": campaign.attach_ics,
    }
    for lang, words in campaign.content.items():
        fields[f"subject_{lang}"] = words.get("subject", "")
        fields[f"body_{lang}"] = words.get("body", "")
    return fields


async def _recap(
    session: AsyncSession,
    viewer: Viewer,
    event: Event,
    campaign: Campaign,
    *,
    form: Form | None = None,
    errors: list[FieldError] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response[str]:
    count = len(await service._recipients(session, campaign))  # the count send() compares
    return html_page(
        "campaign_recap.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"{_base(event.id, campaign.id)}/recap",
        event=event,
        campaign=campaign,
        count=count,
        problems=service.problems(campaign),
        sent=form,
        errors=_labelled(viewer, errors or []),
        problem=problem,
    )


def _preview_in(recipient: str | None, language: str | None) -> PreviewIn:
    body = {"booking_id": recipient or None, "language": language or None}
    try:
        return decode_json_body(msgspec.json.encode(body), PreviewIn)
    except BodyInvalid:
        raise ConsolePageError(400, "bad_request", "bad_request") from None


class CampaignPages(Controller):
    path = "/console/events/{event_id:str}/campaigns"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = {"viewer": Provide(provide_viewer)}

    @get("/")
    async def list_page(
        self, event_id: FromPath[str], viewer: ViewerDep, db_session: DbSession
    ) -> Response[str]:
        event = await events.get_event(db_session, event_id)
        rows, total = await service.list_campaigns(db_session, event_id, limit=500, offset=0)
        counts = {c.id: await service.counts(db_session, c.id) for c in rows}
        return html_page(
            "campaigns_list.html",
            lang=viewer.lang,
            viewer=viewer,
            section="events",
            here=_base(event_id),
            event=event,
            campaigns=rows,
            counts=counts,
            total=total,
            local_input=local_input,
        )

    @get("/new")
    async def new_page(
        self, event_id: FromPath[str], viewer: ViewerDep, db_session: DbSession
    ) -> Response[str]:
        viewer.require_edit()
        return await _editor(db_session, viewer, await events.get_event(db_session, event_id), None)

    @post("/", status_code=303)
    async def create(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        form = await read_form(request, viewer.csrf)
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        try:
            data = to_struct(
                draft_values(form, list(event.languages), creating=True), CampaignCreate
            )
            campaign = await _attempt(
                db_session, lambda: service.create_campaign(db_session, event_id, data)
            )
        except BodyInvalid as exc:
            return await _editor(
                db_session, viewer, event, None, form=form, errors=exc.errors, status=422
            )
        return await self._after_save(db_session, viewer, event, campaign)

    @get("/{campaign_id:str}/edit")
    async def edit_page(
        self,
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        campaign = await _campaign(db_session, event_id, campaign_id)
        errors = problem_errors(service.problems(campaign))
        return await _editor(db_session, viewer, event, campaign, errors=errors)

    @post("/{campaign_id:str}/edit", status_code=303)
    async def save(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        form = await read_form(request, viewer.csrf)
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        campaign = await _campaign(db_session, event_id, campaign_id)
        try:
            patch = to_struct(
                draft_values(form, list(event.languages), creating=False), CampaignPatch
            )
            await _attempt(
                db_session, lambda: service.update_campaign(db_session, campaign_id, patch)
            )
        except BodyInvalid as exc:
            return await _editor(
                db_session, viewer, event, campaign, form=form, errors=exc.errors, status=422
            )
        except Conflict as exc:
            return await _editor(
                db_session, viewer, event, campaign, form=form, problem=exc.detail, status=409
            )
        return await self._after_save(db_session, viewer, event, campaign)

    async def _after_save(
        self, session: AsyncSession, viewer: Viewer, event: Event, campaign: Campaign
    ) -> Response[str]:
        """Saved: back to the campaign, or to the editor with its template problems (422)."""
        found = service.problems(campaign)
        if not found:
            return redirect(f"{_base(event.id, campaign.id)}?saved=1")
        labels = Labels(viewer.lang)
        return await _editor(
            session,
            viewer,
            event,
            campaign,
            errors=problem_errors(found),
            problem=labels.cmp_problems,
            status=422,
        )

    @get("/{campaign_id:str}")
    async def campaign_page(
        self,
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
        status: Query = None,
        offset: FromQuery[int] = 0,
        saved: Query = None,
    ) -> Response[str]:
        """The campaign's state, counts, progress bar and per-message table (paged, by status);
        it refreshes itself while sending (the Refresh header: the page's own `<head>` is the
        shared layout's)."""
        event = await events.get_event(db_session, event_id)
        campaign = await _campaign(db_session, event_id, campaign_id)
        shown = status if status in STATUSES else None
        offset = max(0, min(offset, 1_000_000_000))
        rows, total = await service.list_messages(
            db_session, campaign_id, status=shown, limit=PAGE, offset=offset
        )
        sending = campaign.status == CampaignStatus.SENDING
        return html_page(
            "campaign_detail.html",
            lang=viewer.lang,
            viewer=viewer,
            section="events",
            here=_base(event_id, campaign_id),
            headers={"Refresh": "3"} if sending else None,
            event=event,
            campaign=campaign,
            counts=await service.counts(db_session, campaign_id),
            problems=service.problems(campaign),
            messages=rows,
            total=total,
            offset=offset,
            page=PAGE,
            status_filter=shown,
            statuses=STATUSES,
            sending=sending,
            saved=saved == "1",
            zone=event.timezone,
            local_input=local_input,
        )

    @get("/{campaign_id:str}/preview")
    async def preview_page(
        self,
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
        state: State,
        recipient: Query = None,
        language: Query = None,
        tested: Query = None,
    ) -> Response[str]:
        event = await events.get_event(db_session, event_id)
        campaign = await _campaign(db_session, event_id, campaign_id)
        return await self._preview(
            db_session, viewer, event, campaign, state, recipient, language, tested=tested
        )

    async def _preview(
        self,
        session: AsyncSession,
        viewer: Viewer,
        event: Event,
        campaign: Campaign,
        state: State,
        recipient: str | None,
        language: str | None,
        *,
        tested: str | None = None,
        form: Form | None = None,
        errors: list[FieldError] | None = None,
        status: int = 200,
    ) -> Response[str]:
        wanted = _preview_in(recipient, language)
        found = service.problems(campaign)
        shown = None
        if not found:
            shown = await service.preview(session, campaign.id, wanted, state.settings)
        recipients = await service._recipients(session, campaign)
        choices: dict[str, str] = {}
        for r in recipients:
            if r.booking_id and len(choices) < PICKABLE:
                choices.setdefault(r.booking_id, f"{r.to_name or ''} <{r.to_email}>".strip())
        query = urlencode(
            {k: v for k, v in (("recipient", recipient), ("language", language)) if v}
        )
        return html_page(
            "campaign_preview.html",
            lang=viewer.lang,
            status=status,
            viewer=viewer,
            section="events",
            here=f"{_base(event.id, campaign.id)}/preview",
            headers={"Content-Security-Policy": PREVIEW_PAGE_CSP},
            event=event,
            campaign=campaign,
            problems=found,
            shown=shown,
            choices=choices,
            recipient=wanted.booking_id or "",
            language=wanted.language or "",
            frame=f"{_base(event.id, campaign.id)}/preview/mail?{query}",
            tested=tested if tested and len(tested) <= 320 else None,
            sent=form,
            errors=_labelled(viewer, errors or []),
        )

    @get("/{campaign_id:str}/preview/mail")
    async def preview_mail(
        self,
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
        state: State,
        recipient: Query = None,
        language: Query = None,
    ) -> Response[str]:
        """The mail's HTML part alone, for the preview's frame (headers: the module's note)."""
        await _campaign(db_session, event_id, campaign_id)
        shown = await service.preview(
            db_session, campaign_id, _preview_in(recipient, language), state.settings
        )
        return Response(shown.html, media_type="text/html", headers=MAIL_FRAME_HEADERS)

    @post("/{campaign_id:str}/test", status_code=303)
    async def send_test(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
        state: State,
    ) -> Response[str]:
        form = await read_form(request, viewer.csrf)
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        campaign = await _campaign(db_session, event_id, campaign_id)
        recipient, language = form.get("recipient") or None, form.get("language") or None
        values = FormValues(form)
        values.values = {
            "to": form.get("to").strip(),
            "booking_id": recipient,
            "language": language,
        }
        try:
            data = to_struct(values, TestIn)
            await _attempt(
                db_session, lambda: service.send_test(db_session, campaign_id, data, state.settings)
            )
        except BodyInvalid as exc:
            return await self._preview(
                db_session,
                viewer,
                event,
                campaign,
                state,
                None,
                None,
                form=form,
                errors=exc.errors,
                status=422,
            )
        query = urlencode(
            {"tested": data.to, "recipient": recipient or "", "language": language or ""}
        )
        response = redirect(f"{_base(event_id, campaign_id)}/preview?{query}")
        response.background = wake_outbox(state)
        return response

    @get("/{campaign_id:str}/recap")
    async def recap_page(
        self,
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        event = await events.get_event(db_session, event_id)
        campaign = await _campaign(db_session, event_id, campaign_id)
        return await _recap(db_session, viewer, event, campaign)

    @post("/{campaign_id:str}/send", status_code=303)
    async def send(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
        state: State,
    ) -> Response[str]:
        """Send now, or schedule (`when=schedule`), against the count the recap showed."""
        form = await read_form(request, viewer.csrf)
        viewer.require_edit()
        event = await events.get_event(db_session, event_id)
        campaign = await _campaign(db_session, event_id, campaign_id)
        now = utcnow()
        values, extra = schedule_values(
            form, event.timezone, now, scheduling=form.get("when") == "schedule"
        )
        try:
            data = to_struct(values, SendIn)
            if extra:
                raise BodyInvalid(extra)
            await _attempt(
                db_session,
                lambda: service.send(
                    db_session, campaign_id, data, now=now, settings=state.settings
                ),
            )
        except BodyInvalid as exc:
            errors = [*exc.errors, *(e for e in extra if e not in exc.errors)]
            return await _recap(
                db_session, viewer, event, campaign, form=form, errors=errors, status=422
            )
        except Conflict as exc:
            labels = Labels(viewer.lang)
            count = exc.extra.get("recipients")
            problem = labels("cmp_count_changed", n=count) if count is not None else exc.detail
            return await _recap(
                db_session, viewer, event, campaign, form=form, problem=problem, status=409
            )
        response = redirect(_base(event_id, campaign_id))
        response.background = wake_outbox(state)
        return response

    @post("/{campaign_id:str}/cancel", status_code=303)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        await read_form(request, viewer.csrf)
        viewer.require_edit()
        await _campaign(db_session, event_id, campaign_id)
        await _attempt(db_session, lambda: service.cancel(db_session, campaign_id, now=utcnow()))
        return redirect(_base(event_id, campaign_id))

    @post("/{campaign_id:str}/resend", status_code=303)
    async def resend(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        campaign_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        """ "Resend to failed or never sent": the API's way, a new draft with these words and
        the audience narrowed to `delivery: not_received`; its recap shows the count."""
        await read_form(request, viewer.csrf)
        viewer.require_edit()
        source = await _campaign(db_session, event_id, campaign_id)
        audience = {**(source.audience or {}), "delivery": "not_received"}
        name = Labels(viewer.lang)("cmp_resend_name", name=source.name)[:200]
        body = {
            "name": name,
            "kind": source.kind,
            "per_ticket": source.per_ticket,
            "audience": audience,
            "content": source.content,
            "attach_pdf": source.attach_pdf,
            "attach_ics": source.attach_ics,
        }
        data = decode_json_body(msgspec.json.encode(body), CampaignCreate)
        copy = await _attempt(
            db_session, lambda: service.create_campaign(db_session, event_id, data)
        )
        return redirect(f"{_base(event_id, copy.id)}/recap")
