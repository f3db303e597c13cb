"""The console's import pages: guests into an event, contacts into a list; analyze, then commit.

Both go through the API's own query parsers (`parse_invitation_query`, `parse_import_query`) and
service calls, so a form is checked by the rules a query string is, and a commit is refused for
the reasons the API refuses it. The flow:
  1. the form (pasted lines or a file, and the options) is posted as multipart/form-data
     (server/console/upload_form.py); the analysis writes nothing, the bytes are kept on the
     server under a random token for an hour, and the report page shows what the commit does;
  2. the report's commit form sends the token, the analysis's digest and the options back;
     the service analyses the kept bytes again and refuses (409) if the digest is not theirs,
     so a commit applies exactly what was analysed; on success the kept bytes are deleted and
     the browser is sent to the result (303).
A token belongs to its user and its event or list: under another path it is a 404 page.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from server.console.forms import Refused, attempt, errors_by_field
from server.console.i18n import Labels
from server.console.signin import Viewer, ViewerDep, provide_viewer
from server.console.upload_form import (
    LINES_FIELD,
    delete_upload,
    load_upload,
    read_upload_form,
    store_upload,
)
from server.console.web import ConsolePageError, Form, html_page, read_form, redirect
from server.contacts import service as contacts
from server.contacts.import_query import parse_import_query as parse_list_query
from server.contacts.imports import (
    ContactAnalysisMismatch,
    ContactImportInvalid,
    analyze_contacts,
    commit_contacts,
)
from server.db import utcnow
from server.errors import FieldError
from server.events import service as events
from server.http import DbSession, wake_outbox
from server.imports.analyze import Reason
from server.imports.invitation_query import parse_invitation_query as parse_event_query
from server.imports.invitations import (
    ImportRefused,
    Source,
    analyze_invitations,
    commit_invitations,
    invitation_report,
)
from server.imports.report_csv import report_csv
from server.imports.sources import SourceError
from server.tickets.service import TicketIssuer

__all__ = ["EventImportPages", "ListImportPages"]

SHOWN = 200  # problems and duplicates listed on the page; the CSV report has them all
_EVENT_OPTIONS = ("ticket_type_id", "confirm", "duplicates", "on_error")
_LIST_OPTIONS = ("duplicates", "on_error")
_REASON_CODES = frozenset(r.value for r in Reason)
# refused commits answered with their report, not by `attempt`'s field errors
_COMMIT_REFUSALS = (ImportRefused, ContactAnalysisMismatch, ContactImportInvalid)
Count = FromQuery[int]
Target = Literal["event", "list"]


def _event_pairs(values: Any, mode: str) -> list[tuple[str, str]]:
    pairs = [("mode", mode), ("confirm", "true" if values.get("confirm") else "false")]
    pairs += [(name, values.get(name)) for name in ("ticket_type_id", "duplicates", "on_error")]
    return pairs


def _list_pairs(values: Any, mode: str) -> list[tuple[str, str]]:
    return [("mode", mode), *((name, values.get(name)) for name in _LIST_OPTIONS)]


def _options_of(form: Form, target: Target) -> dict[str, str]:
    names = _EVENT_OPTIONS if target == "event" else _LIST_OPTIONS
    options = {name: form.get(name)[:100] for name in names}
    # an option left out is the API's default, as a query parameter left out is
    options["duplicates"] = options["duplicates"] or "skip"
    options["on_error"] = options["on_error"] or "reject_all"
    if target == "event":
        options["confirm"] = "true" if form.get("confirm") in ("1", "true") else ""
    return options


async def _import_form(
    session: AsyncSession,
    viewer: Viewer,
    target: Target,
    owner: Any,
    *,
    options: dict[str, str] | None = None,
    lines: str = "",
    errors: list[FieldError] | None = None,
    status: int = 200,
) -> Response[str]:
    context = await _context(session, target, owner)
    return html_page(
        "import_form.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        options=options or {"duplicates": "skip", "on_error": "reject_all", "confirm": ""},
        lines=lines if len(lines) <= 64 * 1024 else "",
        errors=errors_by_field(errors or []),
        **context,
    )


async def _context(session: AsyncSession, target: Target, owner: Any) -> dict[str, Any]:
    if target == "event":
        types = await events.list_ticket_types(session, owner.id)
        base = f"/console/events/{owner.id}/imports"
        return {
            "target": target,
            "event": owner,
            "contact_list": None,
            "ticket_types": [events.ticket_type_out(t) for t in types],
            "base": base,
            "here": base,
            "section": "events",
        }
    base = f"/console/contact-lists/{owner.id}/import"
    return {
        "target": target,
        "event": None,
        "contact_list": owner,
        "ticket_types": [],
        "base": base,
        "here": base,
        "section": "contacts",
    }


async def _owner(session: AsyncSession, target: Target, owner_id: str) -> Any:
    if target == "event":
        return await events.get_event(session, owner_id)
    return await contacts.get_list(session, owner_id)


def _user(viewer: Viewer) -> str:
    return str(viewer.user.id)


async def _analyze(
    session: AsyncSession, target: Target, owner_id: str, values: Any, source: Source
) -> Any:
    """The service's analysis (in a savepoint: it writes nothing, and leaves nothing); raises
    SourceError for an unreadable file, Refused for options the API refuses."""

    async def analyze() -> Any:
        if target == "event":
            query = parse_event_query(_event_pairs(values, "analyze"))
            return await analyze_invitations(session, owner_id, source, query.options)
        list_query = parse_list_query(_list_pairs(values, "analyze"))
        return await analyze_contacts(
            session,
            owner_id,
            source.data,
            filename=source.filename,
            content_type=source.content_type,
            options=list_query.options,
        )

    return await attempt(session, analyze, own=(SourceError,))


def _report(result: Any, target: Target) -> Any:
    if target == "event":
        return invitation_report(result, "commit" if result.committed else "analyze")
    return result.report("analyze")


def _refusal(report: Any, target: Target) -> str | None:
    if target == "event":
        return report.refusal
    if report.problems_total and report.options.get("on_error") == "reject_all":
        return "import_invalid"
    return None


async def _report_page(
    viewer: Viewer,
    context: dict[str, Any],
    result: Any,
    *,
    token: str,
    options: dict[str, str],
    status: int = 200,
    problem: str | None = None,
    filename: str | None = None,
) -> Response[str]:
    target = context["target"]
    report = _report(result, target)
    return html_page(
        "import_report.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        report=report,
        refusal=_refusal(report, target),
        token=token,
        options=options,
        problem=problem,
        shown=SHOWN,
        reason_codes=_REASON_CODES,
        filename=filename,
        **context,
    )


async def _analyze_post(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    session: AsyncSession,
    target: Target,
    owner_id: str,
) -> Response[str]:
    settings = request.app.state.settings
    upload = await read_upload_form(request, viewer.csrf, settings)
    viewer.require_edit()
    owner = await _owner(session, target, owner_id)
    options = _options_of(upload.fields, target)
    lines = upload.fields.get(LINES_FIELD)
    if upload.data is not None:
        source = Source(upload.data, upload.filename, upload.content_type)
    elif lines.strip():
        source = Source(lines.replace("\r\n", "\n").encode("utf-8", "surrogatepass"))
    else:
        errors = [FieldError(LINES_FIELD, viewer_label(viewer, "imp_nothing"))]
        return await _import_form(
            session, viewer, target, owner, options=options, errors=errors, status=422
        )
    try:
        result = await _analyze(session, target, owner_id, options, source)
    except SourceError as exc:
        errors = [FieldError("file", viewer_label(viewer, "imp_unreadable", why=exc.detail))]
        return await _import_form(
            session, viewer, target, owner, options=options, lines=lines, errors=errors, status=422
        )
    except Refused as no:
        return await _import_form(
            session,
            viewer,
            target,
            owner,
            options=options,
            lines=lines,
            errors=no.errors,
            status=422,
        )
    token = store_upload(
        settings,
        owner=_user(viewer),
        target=f"{target}:{owner_id}",
        data=source.data,
        filename=source.filename,
        content_type=source.content_type,
    )
    context = await _context(session, target, owner)
    return await _report_page(
        viewer, context, result, token=token, options=options, filename=source.filename
    )


def viewer_label(viewer: Viewer, key: str, **values: object) -> str:
    return Labels(viewer.lang)(key, **values)


async def _commit_post(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    session: AsyncSession,
    target: Target,
    owner_id: str,
) -> Response[str]:
    form = await read_form(request, viewer.csrf)
    viewer.require_edit()
    owner = await _owner(session, target, owner_id)
    settings = request.app.state.settings
    token = form.get("token")
    stored = load_upload(settings, token, owner=_user(viewer), target=f"{target}:{owner_id}")
    options = _options_of(form, target)
    digest = form.get("digest")
    source = Source(stored.data, stored.filename, stored.content_type)
    context = await _context(session, target, owner)

    async def commit() -> Any:
        if target == "event":
            query = parse_event_query([*_event_pairs(options, "commit"), ("digest", digest)])
            # made here, after the viewer: both read the one session, and Litestar
            # resolves independent dependencies concurrently
            keys = await request.app.state.keyring.keys(session)
            issuer = TicketIssuer(keys=keys, base_url=settings.public_base_url)
            return await commit_invitations(
                session,
                owner_id,
                source,
                query.options,
                issuer,
                digest=query.digest,
                settings=settings,
            )
        list_query = parse_list_query([*_list_pairs(options, "commit"), ("digest", digest)])
        return await commit_contacts(
            session,
            owner_id,
            source.data,
            filename=source.filename,
            content_type=source.content_type,
            options=list_query.options,
            digest=list_query.digest,
            now=utcnow(),
        )

    try:
        result = await attempt(session, commit, own=_COMMIT_REFUSALS)
    except ImportRefused as exc:
        status = 409 if exc.code != "import_invalid" else 422
        return await _report_page(
            viewer,
            context,
            exc.result,
            token=token,
            options=options,
            status=status,
            problem=viewer_label(viewer, f"imp_refused_{exc.code}"),
            filename=stored.filename,
        )
    except (ContactAnalysisMismatch, ContactImportInvalid) as exc:
        again = await _analyze(session, target, owner_id, options, source)
        return await _report_page(
            viewer,
            context,
            again,
            token=token,
            options=options,
            status=409 if isinstance(exc, ContactAnalysisMismatch) else 422,
            problem=viewer_label(viewer, f"imp_refused_{exc.code}"),
            filename=stored.filename,
        )
    except Refused as no:  # options forged into values the API refuses
        return await _import_form(
            session, viewer, target, owner, options=options, errors=no.errors, status=422
        )
    delete_upload(settings, token)
    if target == "event":
        written = result.written
        done = (
            f"{context['base']}/done?bookings={len(written.booking_ids)}"
            f"&tickets={written.tickets}&updated={result.updated}&mails={written.mails}"
        )
        response = redirect(done)
        if written.mails:
            response.background = wake_outbox(request.app.state)
        return response
    return redirect(f"/console/contact-lists/{owner_id}?imported={result.creates()}")


async def _report_csv(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    session: AsyncSession,
    target: Target,
    owner_id: str,
    token: str,
) -> Stream:
    viewer.require_edit()
    await _owner(session, target, owner_id)
    settings = request.app.state.settings
    stored = load_upload(settings, token, owner=_user(viewer), target=f"{target}:{owner_id}")
    values = {k: request.query_params.get(k, "")[:100] for k in _EVENT_OPTIONS}
    source = Source(stored.data, stored.filename, stored.content_type)
    try:
        result = await _analyze(session, target, owner_id, values, source)
    except Refused:
        raise ConsolePageError(400, "bad_request", "bad_request") from None
    body = report_csv(
        source.data,
        filename=source.filename,
        content_type=source.content_type,
        analysis=result.analysis,
        decisions=result.decisions,
    )
    return Stream(
        body,
        media_type="text/csv",  # Litestar adds the charset
        headers={
            "Content-Disposition": 'attachment; filename="import-report.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _count(value: int) -> int:
    return max(0, min(value, 10_000_000))


class _ImportPages(Controller):
    """The import pages of one kind of owner (`target`) under `path`: the form, its analysis,
    the commit and the report as CSV. One implementation for both, as the API has one flow."""

    target: ClassVar[Target]
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = {"viewer": Provide(provide_viewer)}

    @get("/")
    async def import_form(
        self, owner_id: FromPath[str], viewer: ViewerDep, db_session: DbSession
    ) -> Response[str]:
        viewer.require_edit()
        owner = await _owner(db_session, self.target, owner_id)
        return await _import_form(db_session, viewer, self.target, owner)

    @post("/", status_code=200, request_max_body_size=None)
    async def analyze(
        self,
        request: Request[Any, Any, Any],
        owner_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        return await _analyze_post(request, viewer, db_session, self.target, owner_id)

    @post("/commit", status_code=303)
    async def commit(
        self,
        request: Request[Any, Any, Any],
        owner_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        return await _commit_post(request, viewer, db_session, self.target, owner_id)

    @get("/{token:str}/report.csv")
    async def report_csv(
        self,
        request: Request[Any, Any, Any],
        owner_id: FromPath[str],
        token: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Stream:
        return await _report_csv(request, viewer, db_session, self.target, owner_id, token)


class EventImportPages(_ImportPages):
    """Guests into an event, and the page the commit ends on."""

    path = "/console/events/{owner_id:str}/imports"
    target = "event"

    @get("/done")
    async def done(
        self,
        owner_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
        bookings: Count = 0,
        tickets: Count = 0,
        updated: Count = 0,
        mails: Count = 0,
    ) -> Response[str]:
        event = await events.get_event(db_session, owner_id)
        return html_page(
            "import_done.html",
            lang=viewer.lang,
            viewer=viewer,
            section="events",
            here=f"/console/events/{owner_id}/imports",
            event=event,
            bookings=_count(bookings),
            tickets=_count(tickets),
            updated=_count(updated),
            mails=_count(mails),
        )


class ListImportPages(_ImportPages):
    """Contacts into a contact list."""

    path = "/console/contact-lists/{owner_id:str}/import"
    target = "list"
