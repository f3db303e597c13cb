"""The console's exports page: an event's bookings, tickets and check-ins as CSV or XLSX.

The files come from the API's own export (server/exports: the same rows, writers and formula
guard), answered as attachments that no cache keeps (`Cache-Control: no-store`: they hold
guests' personal data). Read-only users may export: an export changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import anyio.to_thread
from litestar import Controller, Request, Response, get
from litestar.di import Provide
from litestar.params import FromPath
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from server.console.signin import ViewerDep, provide_viewer
from server.console.web import html_page
from server.db import Database
from server.errors import NotFound
from server.events import service as events
from server.exports.service import EventExport, ExportKind, prepare_export
from server.exports.writers import Cell, XlsxSheet, csv_rows_async
from server.http import DbSession

__all__ = ["ExportPages"]

CSV_TYPE = "text/csv"  # Litestar adds "; charset=utf-8" to text types
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_XLSX_BATCH = 5_000


def _parse(export_file: str) -> tuple[ExportKind, str]:
    name, _, extension = export_file.partition(".")
    if name not in {k.value for k in ExportKind} or extension not in ("csv", "xlsx"):
        raise NotFound("export", export_file[:100])
    return ExportKind(name), extension


async def _csv(database: Database, export: EventExport) -> AsyncIterator[bytes]:
    async with database.transaction(read_only=True) as session:
        async for chunk in csv_rows_async(export.header, export.rows(session), delimiter=";"):
            yield chunk


async def _xlsx(session: AsyncSession, export: EventExport) -> bytes:
    with XlsxSheet(str(export.kind), export.header) as sheet:
        batch: list[tuple[Cell, ...]] = []
        async for row in export.rows(session):
            batch.append(row)
            if len(batch) >= _XLSX_BATCH:
                await anyio.to_thread.run_sync(sheet.add_rows, batch)
                batch = []
        await anyio.to_thread.run_sync(sheet.add_rows, batch)
        return await anyio.to_thread.run_sync(sheet.close)


class ExportPages(Controller):
    path = "/console/events"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = {"viewer": Provide(provide_viewer)}

    @get("/{event_id:str}/exports")
    async def exports_page(
        self, event_id: FromPath[str], viewer: ViewerDep, db_session: DbSession
    ) -> Response[str]:
        event = await events.get_event(db_session, event_id)
        return html_page(
            "export_page.html",
            lang=viewer.lang,
            viewer=viewer,
            section="events",
            here=f"/console/events/{event_id}/exports",
            event=event,
            kinds=[k.value for k in ExportKind],
        )

    @get("/{event_id:str}/exports/{export_file:str}")
    async def download(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        export_file: FromPath[str],
        viewer: ViewerDep,
    ) -> Response[bytes]:
        kind, extension = _parse(export_file)
        database: Database = request.app.state.database
        # A read transaction of its own, as the API's export: the request's session would hold
        # SQLite's write lock while the file is built.
        async with database.transaction(read_only=True) as session:
            export = await prepare_export(session, event_id, kind)
            if extension == "xlsx":
                data = await _xlsx(session, export)
        headers = {
            "Content-Disposition": f'attachment; filename="{export.filename_stem}.{extension}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        if extension == "xlsx":
            return Response(data, media_type=XLSX_TYPE, headers=headers)
        return Stream(_csv(database, export), media_type=CSV_TYPE, headers=headers)  # type: ignore[return-value]
