"""Event imports over HTTP: `POST /api/v1/events/{event_id}/imports?mode=analyze|commit`.

The body is the file (multipart/form-data `file`) or pasted lines (text/plain), read by
server/imports/upload.py within TESSERA_IMPORT_MAX_BYTES. The options are query parameters,
checked strictly here: every unknown, repeated or ill-valued parameter is named in one 422
(Litestar's own parsing would answer 400, one parameter at a time, and take `1` for `true`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import CacheControlHeader, State
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
)
from litestar.params import FromPath
from litestar.response import Stream

from server.http import DbSession, Issuer, organiser_guard, wake_outbox
from server.imports.invitation_query import (
    CHOICES,
    DESCRIPTIONS,
    REQUIRED,
    parse_invitation_query,
)
from server.imports.invitations import (
    InvitationReport,
    Source,
    analyze_invitations,
    commit_invitations,
    invitation_report,
)
from server.imports.report_csv import report_csv
from server.imports.upload import FILE_FIELD, read_upload

__all__ = ["EventImportController"]

CSV_TYPE = "text/csv; charset=utf-8"


@dataclass
class _ImportOperation(Operation):
    """The OpenAPI operation with what the handler reads itself: the upload and the query."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="the file, or the pasted lines `email[;quantity]`",
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=[FILE_FIELD],
                        properties={
                            FILE_FIELD: Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]
                        },
                    )
                ),
                "text/plain": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            },
        )
        self.parameters = [
            *(self.parameters or []),
            *(
                Parameter(
                    name=name,
                    param_in="query",
                    required=name in REQUIRED,
                    description=description,
                    schema=Schema(
                        type=OpenAPIType.STRING,
                        enum=list(CHOICES[name]) if name in CHOICES else None,
                    ),
                )
                for name, description in DESCRIPTIONS.items()
            ),
        ]


class EventImportController(Controller):
    path = "/api/v1"
    tags = ["imports"]
    guards = [organiser_guard]
    security = [{"organiser": []}]
    # Reports carry guests' addresses: no cache may keep a copy.
    cache_control = CacheControlHeader(no_store=True)

    @post(
        "/events/{event_id:str}/imports",
        status_code=200,
        request_max_body_size=None,  # read_upload enforces TESSERA_IMPORT_MAX_BYTES
        operation_class=_ImportOperation,
        summary="Import guests as bookings of a ticket type: analyze, then commit",
        description="Each valid row books `quantity` tickets for its address (see "
        "docs/import.md). The report says what the commit does: rows read, valid and invalid "
        "(line, column, reason), duplicates and their fate, languages, the ticket type's "
        "capacity. A refused commit (409 `analysis_mismatch` or `capacity_exceeded`, 422 "
        "`import_invalid`) writes nothing and carries the report in `report`.",
        responses={201: ResponseSpec(InvitationReport, description="committed")},
    )
    async def import_invitations(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        db_session: DbSession,
        issuer: Issuer,
        state: State,
    ) -> Response[InvitationReport]:
        query = parse_invitation_query(request.query_params.multi_items())
        upload = await read_upload(request, state.settings)
        source = Source(upload.data, upload.filename, upload.content_type)
        wake = None
        if query.mode == "analyze":
            result = await analyze_invitations(db_session, event_id, source, query.options)
            status = 200
        else:
            result = await commit_invitations(
                db_session,
                event_id,
                source,
                query.options,
                issuer,
                digest=query.digest,
                settings=state.settings,
            )
            status = 201
            wake = wake_outbox(state) if result.written.mails else None
        if query.report == "csv":
            body = report_csv(
                upload.data,
                filename=upload.filename,
                content_type=upload.content_type,
                analysis=result.analysis,
                decisions=result.decisions,
            )
            return Stream(body, status_code=status, media_type=CSV_TYPE, background=wake)  # type: ignore[return-value]
        report = invitation_report(result, query.mode)
        return Response(report, status_code=status, background=wake)
