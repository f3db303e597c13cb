"""The console's campaign pages: list, editor, preview and test send, recap and send, progress.

Every change goes through the API's own struct (campaign_forms.py) and the service function
the API route calls, in a savepoint. A draft is saved on every "save" even when its templates
have problems (as the API does); the editor then comes back with 422 and each problem beside
its field, and the service refuses to test or send it until they are fixed. The send form
carries the count the recap showed as `expected_recipients`: when the audience changed in
between the service refuses (409) and the recap shows the new count to confirm.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from server.campaigns import service
from server.campaigns.models import Campaign, CampaignStatus
from server.campaigns.recipients import Audience, resolve
from server.campaigns.schemas import CampaignCreate, CampaignPatch, SendIn, TestIn
from server.console.campaign_forms import draft_values, problem_errors, schedule_values
from server.console.campaign_views import (
    after_save,
    base,
    editor,
    mail_frame_headers,
    preview_in,
    preview_page,
    recap,
    refusal,
)
from server.console.forms import FormValues, Refused, attempt, local_input, to_struct
from server.console.i18n import Labels
from server.console.pages import CampaignDep, EventPageDep, dependencies
from server.console.web import html_page, redirect
from server.db import utcnow
from server.errors import BodyInvalid
from server.http import DbSession, wake_outbox
from server.validation import decode_json_body

_RESENDABLE = (CampaignStatus.SENDING, CampaignStatus.SENT)


async def _has_unreceived(session: AsyncSession, campaign: Campaign) -> bool:
    """Whether "resend to failed or never sent" would reach anyone: the audience its copy
    gets (`delivery: not_received`) resolved now, as that copy's recap counts it."""
    audience = campaign.audience or {}
    if campaign.status not in _RESENDABLE or audience.get("contact_list_id") is not None:
        return False
    narrowed = Audience.of({**audience, "delivery": "not_received"})
    recipients = await resolve(
        session,
        campaign.event_id,
        narrowed,
        per_ticket=campaign.per_ticket,
        news=campaign.kind == "message",
    )
    return bool(recipients)


__all__ = ["CampaignPages"]

PAGE = 50
STATUSES = ("queued", "sending", "sent", "delivered", "failed", "bounced")
Query = FromQuery[str | None]


class CampaignPages(Controller):
    path = "/console/events/{event_id:str}/campaigns"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = dependencies("page", "campaign")

    @get("/")
    async def list_page(self, page: EventPageDep, db_session: DbSession) -> Response[str]:
        rows, total = await service.list_campaigns(db_session, page.event.id, limit=500, offset=0)
        counts = {c.id: await service.counts(db_session, c.id) for c in rows}
        return html_page(
            "campaigns_list.html",
            lang=page.viewer.lang,
            viewer=page.viewer,
            section="events",
            here=base(page.event.id),
            event=page.event,
            campaigns=rows,
            counts=counts,
            total=total,
            local_input=local_input,
        )

    @get("/new")
    async def new_page(self, page: EventPageDep, db_session: DbSession) -> Response[str]:
        page.viewer.require_edit()
        return await editor(db_session, page.viewer, page.event, None)

    @post("/", status_code=303)
    async def create(
        self,
        page: EventPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        values = draft_values(page.form, list(page.event.languages), creating=True)
        try:
            campaign = await attempt(
                db_session,
                lambda: service.create_campaign(
                    db_session, page.event.id, to_struct(values, CampaignCreate)
                ),
            )
        except Refused as no:
            return await editor(
                db_session, page.viewer, page.event, None, form=page.form, **refusal(no)
            )
        return await after_save(db_session, page.viewer, page.event, campaign)

    @get("/{campaign_id:str}/edit")
    async def edit_page(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
    ) -> Response[str]:
        page.viewer.require_edit()
        errors = problem_errors(service.problems(campaign))
        problem = None
        if campaign.status != CampaignStatus.DRAFT:  # shown; a save would be refused (409)
            labels = Labels(page.viewer.lang)
            problem = labels("cmp_not_editable", status=labels("cmp_st_" + campaign.status))
        return await editor(
            db_session, page.viewer, page.event, campaign, errors=errors, problem=problem
        )

    @post("/{campaign_id:str}/edit", status_code=303)
    async def save(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
    ) -> Response[str]:
        values = draft_values(page.form, list(page.event.languages), creating=False)
        try:
            await attempt(
                db_session,
                lambda: service.update_campaign(
                    db_session, campaign.id, to_struct(values, CampaignPatch)
                ),
            )
        except Refused as no:
            return await editor(
                db_session, page.viewer, page.event, campaign, form=page.form, **refusal(no)
            )
        return await after_save(db_session, page.viewer, page.event, campaign)

    @get("/{campaign_id:str}")
    async def campaign_page(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
        status: Query = None,
        offset: FromQuery[int] = 0,
        saved: Query = None,
    ) -> Response[str]:
        """The campaign's state, counts, progress bar and per-message table (paged, by status);
        it refreshes itself while sending (the Refresh header: the page's own `<head>` is the
        shared layout's)."""
        shown = status if status in STATUSES else None
        offset = max(0, min(offset, 1_000_000_000))
        rows, total = await service.list_messages(
            db_session, campaign.id, status=shown, limit=PAGE, offset=offset
        )
        sending = campaign.status == CampaignStatus.SENDING
        return html_page(
            "campaign_detail.html",
            lang=page.viewer.lang,
            viewer=page.viewer,
            section="events",
            here=base(page.event.id, campaign.id),
            headers={"Refresh": "3"} if sending else None,
            event=page.event,
            campaign=campaign,
            counts=await service.counts(db_session, campaign.id),
            can_resend=await _has_unreceived(db_session, campaign),
            problems=service.problems(campaign),
            messages=rows,
            total=total,
            offset=offset,
            page=PAGE,
            status_filter=shown,
            statuses=STATUSES,
            sending=sending,
            saved=saved == "1",
            zone=page.event.timezone,
            local_input=local_input,
        )

    @get("/{campaign_id:str}/preview")
    async def preview_page(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
        state: State,
        recipient: Query = None,
        language: Query = None,
        tested: Query = None,
    ) -> Response[str]:
        return await preview_page(
            db_session, page.viewer, page.event, campaign, state, recipient, language, tested=tested
        )

    @get("/{campaign_id:str}/preview/mail")
    async def preview_mail(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
        state: State,
        recipient: Query = None,
        language: Query = None,
    ) -> Response[str]:
        """The mail's HTML part alone, for the preview's frame (headers: the module's note)."""
        shown = await service.preview(
            db_session, campaign.id, preview_in(recipient, language), state.settings
        )
        return Response(
            shown.html, media_type="text/html", headers=mail_frame_headers(state.settings)
        )

    @post("/{campaign_id:str}/test", status_code=303)
    async def send_test(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
        state: State,
    ) -> Response[str]:
        recipient, language = page.form.get("recipient") or None, page.form.get("language") or None
        values = FormValues(page.form)
        values.values = {
            "to": page.form.get("to").strip(),
            "booking_id": recipient,
            "language": language,
        }

        async def test_send() -> TestIn:
            data = to_struct(values, TestIn)
            await service.send_test(db_session, campaign.id, data, state.settings)
            return data

        try:
            data = await attempt(db_session, test_send)
        except Refused as no:
            return await preview_page(
                db_session,
                page.viewer,
                page.event,
                campaign,
                state,
                None,
                None,
                form=page.form,
                **refusal(no),
            )
        query = urlencode(
            {"tested": data.to, "recipient": recipient or "", "language": language or ""}
        )
        response = redirect(f"{base(page.event.id, campaign.id)}/preview?{query}")
        response.background = wake_outbox(state)
        return response

    @get("/{campaign_id:str}/recap")
    async def recap_page(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
    ) -> Response[str]:
        return await recap(db_session, page.viewer, page.event, campaign)

    @post("/{campaign_id:str}/send", status_code=303)
    async def send(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
        state: State,
    ) -> Response[str]:
        """Send now, or schedule (`when=schedule`), against the count the recap showed."""
        now = utcnow()
        values, extra = schedule_values(
            page.form,
            page.event.timezone,
            page.event.starts_at,
            now,
            scheduling=page.form.get("when") == "schedule",
        )

        async def send_now() -> None:
            data = to_struct(values, SendIn)
            if extra:
                raise BodyInvalid(extra)
            await service.send(db_session, campaign.id, data, now=now, settings=state.settings)

        try:
            await attempt(db_session, send_now)
        except Refused as no:
            if no.status == 422:
                no.errors += [e for e in extra if e not in no.errors]
            count = no.extra.get("recipients")
            if count is not None:  # the audience changed since the recap: the new count
                no.problem = Labels(page.viewer.lang)("cmp_count_changed", n=count)
            return await recap(
                db_session, page.viewer, page.event, campaign, form=page.form, **refusal(no)
            )
        response = redirect(base(page.event.id, campaign.id))
        response.background = wake_outbox(state)
        return response

    @post("/{campaign_id:str}/cancel", status_code=303)
    async def cancel(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
    ) -> Response[str]:
        await attempt(db_session, lambda: service.cancel(db_session, campaign.id, now=utcnow()))
        return redirect(base(page.event.id, campaign.id))

    @post("/{campaign_id:str}/resend", status_code=303)
    async def resend(
        self,
        page: EventPageDep,
        campaign: CampaignDep,
        db_session: DbSession,
    ) -> Response[str]:
        """ "Resend to failed or never sent": the API's way, a new draft with these words and
        the audience narrowed to `delivery: not_received`; its recap shows the count."""
        source = campaign
        audience = {**(source.audience or {}), "delivery": "not_received"}
        name = Labels(page.viewer.lang)("cmp_resend_name", name=source.name)[:200]
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
        copy = await attempt(
            db_session, lambda: service.create_campaign(db_session, page.event.id, data)
        )
        return redirect(f"{base(page.event.id, copy.id)}/recap")
