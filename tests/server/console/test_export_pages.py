"""The console's exports page: every file downloads as an attachment no cache keeps, through the
API's writers and formula guard; another event's path is a 404; read-only users may export."""

from __future__ import annotations

import io

import pytest
from python_calamine import CalamineWorkbook

from tests.factories import create_booking, create_event, create_ticket_type
from tests.server.console.helpers import make_user, sign_in


def xlsx_cells(data: bytes) -> list[object]:
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    return [cell for row in sheet.to_python() for cell in row]


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the pages' logic does not depend on the database


@pytest.mark.parametrize("role", ["admin", "read_only"])
async def test_every_export_downloads_with_its_type_and_the_formula_guard(api, settings, role):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    buyer = {"email": "a@example.org", "name": "=cmd()"}
    await create_booking(api, event["id"], ticket_type["id"], confirm=True, buyer=buyer)
    await make_user(settings, role=role)
    await sign_in(api, settings)
    page = await api.get(f"/console/events/{event['id']}/exports")
    assert page.status_code == 200 and len(page.content) < 100_000
    for kind in ("bookings", "tickets", "checkins"):
        csv = await api.get(f"/console/events/{event['id']}/exports/{kind}.csv")
        assert csv.status_code == 200, csv.text
        assert csv.headers["content-type"] == "text/csv; charset=utf-8"
        assert csv.headers["cache-control"] == "no-store"
        assert csv.headers["content-disposition"].startswith("attachment")
        xlsx = await api.get(f"/console/events/{event['id']}/exports/{kind}.xlsx")
        assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert xlsx.headers["cache-control"] == "no-store"
        cells = xlsx_cells(xlsx.content)
        assert "=cmd()" not in cells
        if kind == "bookings":
            assert "'=cmd()" in csv.text and "'=cmd()" in cells


async def test_unknown_exports_and_events_are_404_pages(api, settings):
    event = await create_event(api)
    await make_user(settings)
    await sign_in(api, settings)
    for path in (
        f"/console/events/{event['id']}/exports/secrets.csv",
        f"/console/events/{event['id']}/exports/tickets.pdf",
        "/console/events/nope/exports",
        "/console/events/nope/exports/tickets.csv",
    ):
        response = await api.get(path)
        assert response.status_code == 404, path
        assert "text/html" in response.headers["content-type"]
