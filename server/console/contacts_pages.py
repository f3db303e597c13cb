"""The console's contact-list pages: list, create, rename, duplicate, merge (preview first),
delete (confirmed), a list's contacts page by page, and its export as CSV or XLSX.

Each change goes through the API's request struct and the same service call as the API route,
in a savepoint; a merge is previewed by the service's own preview (`MergeIn.preview`), so the
page shows exactly what the merge then does. Read-only users see and export; a change they
send anyway gets the 403 page. Imports into a list are in imports_pages.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from server.console.forms import FormValues, Refused, attempt, errors_by_field, shown, to_struct
from server.console.pages import ListPageDep, list_dependencies
from server.console.signin import Viewer, ViewerDep
from server.console.web import ConsolePageError, Form, html_page, read_form, redirect
from server.contacts import service
from server.contacts.export import attribute_names, export_filename, export_header, export_rows
from server.contacts.merge import merge_lists
from server.contacts.schemas import (
    MAX_MERGE_SOURCES,
    ContactListCreate,
    ContactListPatch,
    DuplicateIn,
    MergeIn,
)
from server.db import Database, utcnow
from server.exports.writers import Cell, XlsxSheet, csv_rows_async
from server.http import DbSession

__all__ = ["ContactListPages"]

PAGE = 50
CSV_TYPE = "text/csv"  # Litestar adds "; charset=utf-8" to text types
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_XLSX_BATCH = 5_000
Offset = FromQuery[int]
Text = FromQuery[str | None]


def _name_values(form: Form, *, optional: bool = False) -> FormValues:
    values = FormValues(form)
    values.text("name", optional=optional)
    return values


async def _lists_page(
    session: AsyncSession,
    viewer: Viewer,
    *,
    archived: bool = False,
    offset: int = 0,
    form: Form | None = None,
    refused: Refused | None = None,
) -> Response[str]:
    status, errors, problem = shown(refused)
    rows, total = await service.list_lists(session, archived=archived, limit=PAGE, offset=offset)
    return html_page(
        "contact_lists.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="contacts",
        here="/console/contact-lists",
        lists=[service.contact_list_out(r) for r in rows],
        total=total,
        offset=offset,
        page=PAGE,
        archived=archived,
        sent_name=form.get("name") if form is not None else "",
        errors=errors_by_field(errors),
        problem=problem,
    )


async def _list_page(
    session: AsyncSession,
    viewer: Viewer,
    list_id: str,
    *,
    offset: int = 0,
    q: str | None = None,
    imported: int | None = None,
    failed: str | None = None,
    form: Form | None = None,
    refused: Refused | None = None,
) -> Response[str]:
    status, errors, problem = shown(refused)
    contact_list = await service.get_list(session, list_id)
    rows, total = await service.list_contacts(session, list_id, q=q, limit=PAGE, offset=offset)
    merged_into = None
    if contact_list.merged_into_id:
        merged_into = await session.get(type(contact_list), contact_list.merged_into_id)
    return html_page(
        "contact_list.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="contacts",
        here=f"/console/contact-lists/{list_id}",
        contact_list=service.contact_list_out(contact_list),
        merged_into=merged_into,
        contacts=[service.contact_out(r) for r in rows],
        total=total,
        offset=offset,
        page=PAGE,
        q=q or "",
        imported=imported,
        failed=failed,
        sent=form,
        errors=errors_by_field(errors),
        problem=problem,
    )


def _bounded(offset: int) -> int:
    return max(0, min(offset, 1_000_000_000))


def _search(q: str | None) -> str | None:
    if q is None:
        return None
    if len(q) > 200 or "\x00" in q:
        raise ConsolePageError(400, "bad_request", "bad_request")
    return q


async def _merge_page(
    session: AsyncSession,
    viewer: Viewer,
    list_id: str,
    *,
    chosen: Sequence[str] = (),
    preview: Any = None,
    refused: Refused | None = None,
) -> Response[str]:
    status, errors, problem = shown(refused)
    target = await service.get_list(session, list_id)
    others, _ = await service.list_lists(session, archived=False, limit=500, offset=0)
    names = {row.id: row.name for row in others}
    return html_page(
        "contact_merge.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="contacts",
        here=f"/console/contact-lists/{list_id}/merge",
        contact_list=service.contact_list_out(target),
        others=[service.contact_list_out(r) for r in others if r.id != list_id],
        chosen=list(chosen),
        preview=preview,
        names=names,
        errors=errors_by_field(errors),
        problem=problem,
    )


def _download(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


async def _csv(database: Database, list_id: str) -> AsyncIterator[bytes]:
    # A streamed answer outlives the request's session: the rows are read in one of their own.
    async with database.transaction(read_only=True) as session:
        names = await attribute_names(session, list_id)
        rows = export_rows(session, list_id, names)
        async for chunk in csv_rows_async(export_header(names), rows, delimiter=";"):
            yield chunk


def _add_rows(sheet: XlsxSheet, rows: Sequence[Sequence[Cell]]) -> None:
    for row in rows:
        sheet.add(row)


async def _xlsx(database: Database, list_id: str, list_name: str) -> bytes:
    async with database.transaction(read_only=True) as session:
        names = await attribute_names(session, list_id)
        with XlsxSheet(list_name, export_header(names)) as sheet:
            batch: list[tuple[Cell, ...]] = []
            async for row in export_rows(session, list_id, names):
                batch.append(row)
                if len(batch) >= _XLSX_BATCH:
                    await anyio.to_thread.run_sync(_add_rows, sheet, batch)
                    batch = []
            await anyio.to_thread.run_sync(_add_rows, sheet, batch)
            return await anyio.to_thread.run_sync(sheet.close)


class ContactListPages(Controller):
    path = "/console/contact-lists"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = list_dependencies()

    @get("/")
    async def lists_page(
        self,
        viewer: ViewerDep,
        db_session: DbSession,
        offset: Offset = 0,
        archived: Text = None,
    ) -> Response[str]:
        return await _lists_page(
            db_session, viewer, archived=archived == "1", offset=_bounded(offset)
        )

    @post("/", status_code=303)
    async def create(
        self, request: Request[Any, Any, Any], viewer: ViewerDep, db_session: DbSession
    ) -> Response[str]:
        form = await read_form(request, viewer.csrf)
        viewer.require_edit()
        try:
            created = await attempt(
                db_session,
                lambda: service.create_list(
                    db_session, to_struct(_name_values(form), ContactListCreate), utcnow()
                ),
            )
        except Refused as no:
            return await _lists_page(db_session, viewer, form=form, refused=no)
        return redirect(f"/console/contact-lists/{created.id}")

    @get("/{list_id:str}")
    async def list_page(
        self,
        page: ListPageDep,
        db_session: DbSession,
        offset: Offset = 0,
        q: Text = None,
        imported: FromQuery[int | None] = None,
    ) -> Response[str]:
        shown = None if imported is None else max(0, min(imported, 10_000_000))
        return await _list_page(
            db_session,
            page.viewer,
            page.contact_list.id,
            offset=_bounded(offset),
            q=_search(q),
            imported=shown,
        )

    @post("/{list_id:str}/rename", status_code=303)
    async def rename(
        self,
        page: ListPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        try:
            await attempt(
                db_session,
                lambda: service.rename_list(
                    db_session,
                    page.contact_list.id,
                    to_struct(_name_values(page.form), ContactListPatch),
                    utcnow(),
                ),
            )
        except Refused as no:
            return await _list_page(
                db_session,
                page.viewer,
                page.contact_list.id,
                failed="rename",
                form=page.form,
                refused=no,
            )
        return redirect(f"/console/contact-lists/{page.contact_list.id}")

    @post("/{list_id:str}/duplicate", status_code=303)
    async def duplicate(
        self,
        page: ListPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        values = _name_values(page.form, optional=True)
        try:
            copy = await attempt(
                db_session,
                lambda: service.duplicate_list(
                    db_session, page.contact_list.id, to_struct(values, DuplicateIn).name, utcnow()
                ),
            )
        except Refused as no:
            return await _list_page(
                db_session,
                page.viewer,
                page.contact_list.id,
                failed="duplicate",
                form=page.form,
                refused=no,
            )
        return redirect(f"/console/contact-lists/{copy.id}")

    @get("/{list_id:str}/delete")
    async def delete_page(self, page: ListPageDep, db_session: DbSession) -> Response[str]:
        page.viewer.require_edit()
        contact_list = page.contact_list
        return html_page(
            "contact_delete.html",
            lang=page.viewer.lang,
            viewer=page.viewer,
            section="contacts",
            here=f"/console/contact-lists/{page.contact_list.id}/delete",
            contact_list=service.contact_list_out(contact_list),
        )

    @post("/{list_id:str}/delete", status_code=303)
    async def delete(
        self,
        page: ListPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        await attempt(db_session, lambda: service.delete_list(db_session, page.contact_list.id))
        return redirect("/console/contact-lists")

    @get("/{list_id:str}/merge")
    async def merge_page(self, page: ListPageDep, db_session: DbSession) -> Response[str]:
        page.viewer.require_edit()
        return await _merge_page(db_session, page.viewer, page.contact_list.id)

    @post("/{list_id:str}/merge", status_code=200)
    async def merge(
        self,
        page: ListPageDep,
        db_session: DbSession,
    ) -> Response[str]:
        """`action=preview` shows what merging the ticked lists does; `action=merge` does it."""
        sources = [s for s in page.form.all("sources") if s][: MAX_MERGE_SOURCES + 1]
        values = FormValues(page.form)
        values.values["sources"] = sources
        values.values["preview"] = page.form.get("action") != "merge"
        try:
            result = await attempt(
                db_session,
                lambda: merge_lists(
                    db_session, page.contact_list.id, to_struct(values, MergeIn), utcnow()
                ),
            )
        except Refused as no:
            return await _merge_page(
                db_session, page.viewer, page.contact_list.id, chosen=sources, refused=no
            )
        if result.committed:
            return redirect(f"/console/contact-lists/{page.contact_list.id}")
        return await _merge_page(
            db_session, page.viewer, page.contact_list.id, chosen=sources, preview=result
        )

    @get("/{list_id:str}/export.csv")
    async def export_csv(
        self,
        request: Request[Any, Any, Any],
        list_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Stream:
        contact_list = await service.get_list(db_session, list_id)
        body = _csv(request.app.state.database, list_id)
        headers = _download(export_filename(contact_list.name, "csv"))
        return Stream(body, media_type=CSV_TYPE, headers=headers)

    @get("/{list_id:str}/export.xlsx")
    async def export_xlsx(
        self,
        request: Request[Any, Any, Any],
        list_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[bytes]:
        contact_list = await service.get_list(db_session, list_id)
        data = await _xlsx(request.app.state.database, list_id, contact_list.name)
        headers = _download(export_filename(contact_list.name, "xlsx"))
        return Response(data, media_type=XLSX_TYPE, headers=headers)
