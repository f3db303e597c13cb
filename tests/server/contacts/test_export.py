"""Exporting a contact list as CSV and XLSX: read back, the files hold every contact with its
attributes under the import's column names, and no cell can be evaluated as a formula."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from python_calamine import CalamineWorkbook

from tests.conftest import problem_of
from tests.server.contacts.helpers import BASE, add_contact, create_list


async def filled_list(api):
    made = await create_list(api, "Donors 2027 — Genève")
    await add_contact(
        api,
        made["id"],
        "zoe@bücher.example",
        name="Zoë Müller",
        language="de",
        attributes={"company": "Bücher AG", "note": 'line 1\nline 2; "quoted"'},
    )
    await add_contact(
        api,
        made["id"],
        "ada@example.org",
        name='=HYPERLINK("http://x")',
        attributes={"table": "-5", "company": "@SUM(A1)"},
    )
    await add_contact(api, made["id"], "bob@example.org", attributes={"vip": "+1"})
    return made


EXPECTED = [
    ["email", "name", "language", "table", "company", "vip", "note"],
    ["ada@example.org", '\'=HYPERLINK("http://x")', "", "'-5", "'@SUM(A1)", "", ""],
    ["bob@example.org", "", "", "", "", "'+1", ""],
    ["zoe@bücher.example", "Zoë Müller", "de", "", "Bücher AG", "", 'line 1\nline 2; "quoted"'],
]


async def test_the_csv_export_reads_back_as_the_list_with_formulas_neutralised(api):
    made = await filled_list(api)
    response = await api.get(f"{BASE}/{made['id']}/export.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="donors-2027-geneve.csv"'
    )
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows == EXPECTED


async def test_the_csv_separator_can_be_chosen(api):
    made = await filled_list(api)
    response = await api.get(f"{BASE}/{made['id']}/export.csv", params={"delimiter": "comma"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows == EXPECTED
    bad = await api.get(f"{BASE}/{made['id']}/export.csv", params={"delimiter": "pipe"})
    assert bad.status_code == 400
    problem_of(bad)


async def test_the_xlsx_export_reads_back_as_text_cells_and_holds_no_formula(api):
    made = await filled_list(api)
    response = await api.get(f"{BASE}/{made['id']}/export.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["content-disposition"].endswith('filename="donors-2027-geneve.xlsx"')
    book = CalamineWorkbook.from_filelike(io.BytesIO(response.content))
    rows = book.get_sheet_by_index(0).to_python()
    assert [[str(cell) for cell in row] for row in rows] == EXPECTED
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and all(b"<f>" not in archive.read(n) for n in sheets)


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_an_empty_list_exports_its_header_alone(api, extension):
    made = await create_list(api, "???")
    response = await api.get(f"{BASE}/{made['id']}/export.{extension}")
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith(f'filename="contacts.{extension}"')
    if extension == "csv":
        assert response.content.decode("utf-8-sig") == "email;name;language\r\n"
    else:
        book = CalamineWorkbook.from_filelike(io.BytesIO(response.content))
        assert book.get_sheet_by_index(0).to_python() == [["email", "name", "language"]]


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_exporting_a_list_that_does_not_exist_is_404(api, extension):
    response = await api.get(f"{BASE}/NOSUCHLIST000000/export.{extension}")
    assert response.status_code == 404
    assert problem_of(response)["code"] == "not_found"


async def test_an_archived_list_still_exports(api):
    target, source = await create_list(api, "T"), await create_list(api, "S")
    await add_contact(api, source["id"], "ada@example.org")
    await api.post(
        f"{BASE}/{target['id']}/merge", json={"sources": [source["id"]], "preview": False}
    )
    response = await api.get(f"{BASE}/{source['id']}/export.csv")
    assert response.content.decode("utf-8-sig").splitlines()[1] == "ada@example.org;;"
