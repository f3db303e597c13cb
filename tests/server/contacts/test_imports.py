"""Importing into a contact list: analyze writes nothing, commit writes every row or none, one
contact per address (skip keeps, update completes, keep is refused), and every bad upload or
parameter is a clear 4xx."""

from __future__ import annotations

import io

import pytest
import xlsxwriter
from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.conftest import problem_of
from tests.server.contacts.helpers import BASE, add_contact, contacts_of, content, create_list

TEXT = {"Content-Type": "text/plain"}
CSV = (
    "email;language;name;company\n"
    "ada@example.org;EN;Ada Lovelace;Analytical Engines\n"
    "\n"
    "grace@navy.example;fr;Grace Hopper;\n"
    "ADA@example.org;de;;Babbage & Co\n"
)


async def run(api, list_id, body, *, headers=TEXT, files=None, **params):
    url = f"{BASE}/{list_id}/imports"
    if files is not None:
        return await api.post(url, params=params, files=files)
    return await api.post(url, params=params, content=body, headers=headers)


async def test_analyze_reports_rows_languages_and_duplicates_and_writes_nothing(api):
    made = await create_list(api)
    response = await run(api, made["id"], CSV.encode(), mode="analyze")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["mode"] == "analyze" and report["committed"] is False
    assert report["source"]["delimiter"] == ";"
    assert report["source"]["header"] == ["email", "language", "name", "company"]
    assert report["rows"] == {
        "read": 3,
        "valid": 3,
        "invalid": 0,
        "duplicates": 1,
        "create": 2,
        "update": 0,
        "skip": 1,
    }
    assert report["languages"] == {"de": 1, "en": 1, "fr": 1}
    assert report["duplicates"] == [
        {"line": 5, "email": "ADA@example.org", "action": "skip", "duplicate_of": 2}
    ]
    assert report["options"] == {"duplicates": "skip", "on_error": "reject_all"}
    assert (report["list_id"], report["contacts_before"], report["contacts_after"]) == (
        made["id"],
        0,
        2,
    )
    assert len(report["digest"]) == 64
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 0


async def test_commit_writes_the_contacts_and_a_second_import_with_skip_adds_nothing(api):
    made = await create_list(api)
    response = await run(api, made["id"], CSV.encode(), mode="commit")
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith(f"{BASE}/{made['id']}/contacts")
    report = response.json()
    assert report["committed"] is True and report["contacts_after"] == 2
    contacts = [content(c) for c in await contacts_of(api, made["id"])]
    assert contacts == [
        ("ada@example.org", "Ada Lovelace", "en", {"company": "Analytical Engines"}),
        ("grace@navy.example", "Grace Hopper", "fr", {}),
    ]
    before = await contacts_of(api, made["id"])
    again = (await run(api, made["id"], CSV.encode(), mode="commit")).json()
    assert again["rows"]["create"] == 0 and again["rows"]["skip"] == 3
    assert again["contacts_before"] == again["contacts_after"] == 2
    assert await contacts_of(api, made["id"]) == before


async def test_update_overwrites_what_rows_give_and_merges_attributes_later_wins(api):
    made = await create_list(api)
    await add_contact(
        api,
        made["id"],
        "ada@example.org",
        name="Ada",
        language="fr",
        attributes={"table": "7", "company": "AE"},
    )
    response = await run(api, made["id"], CSV.encode(), mode="commit", duplicates="update")
    assert response.status_code == 201, response.text
    assert response.json()["rows"]["update"] == 2
    contacts = {c["email"]: content(c) for c in await contacts_of(api, made["id"])}
    assert contacts["ada@example.org"] == (
        # line 2 renames and sets en; line 5 sets de, gives no name, overrides the company
        "ada@example.org",
        "Ada Lovelace",
        "de",
        {"table": "7", "company": "Babbage & Co"},
    )
    assert contacts["grace@navy.example"] == ("grace@navy.example", "Grace Hopper", "fr", {})


async def test_within_one_file_update_merges_later_lines_into_the_first(api):
    made = await create_list(api)
    body = "email;name;city\nbob@example.org;Bob;Paris\nBOB@example.org;Robert;\n"
    await run(api, made["id"], body.encode(), mode="commit", duplicates="update")
    contacts = [content(c) for c in await contacts_of(api, made["id"])]
    assert contacts == [("bob@example.org", "Robert", None, {"city": "Paris"})]


async def test_pasted_lines_with_a_quantity_become_one_contact_each(api):
    made = await create_list(api)
    body = b"ada@example.org;3\r\nbob@example.org\r\n"
    report = (await run(api, made["id"], body, mode="commit")).json()
    assert report["rows"]["create"] == 2
    assert [c["email"] for c in await contacts_of(api, made["id"])] == [
        "ada@example.org",
        "bob@example.org",
    ]


def xlsx(rows):
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer)
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write_string(r, c, value)
    book.close()
    return buffer.getvalue()


async def test_an_xlsx_and_a_windows_1252_csv_upload_as_multipart_files(api):
    made = await create_list(api)
    data = xlsx([["E-Mail", "Sprache", "Name"], ["zoe@bücher.example", "Deutsch", "Zoë"]])
    files = {"file": ("gäste.xlsx", data, "application/octet-stream")}
    response = await run(api, made["id"], None, files=files, mode="commit")
    assert response.status_code == 201, response.text
    assert response.json()["source"]["format"] == "xlsx"
    latin = "email;nom\nrene@example.org;René Müller\n".encode("cp1252")
    files = {"file": ("invites.csv", latin, "text/csv")}
    response = await run(api, made["id"], None, files=files, mode="commit")
    assert response.status_code == 201, response.text
    assert [content(c)[:3] for c in await contacts_of(api, made["id"])] == [
        ("rene@example.org", "René Müller", None),
        ("zoe@bücher.example", "Zoë", "de"),
    ]


async def test_reject_all_refuses_a_file_with_an_invalid_row_and_writes_nothing(api):
    made = await create_list(api)
    body = "email;name\nada@example.org;Ada\nnot-an-address;X\nbob@example.org;B\x1b[2J\n"
    response = await run(api, made["id"], body.encode(), mode="commit")
    assert response.status_code == 422
    problem = problem_of(response)
    assert problem["code"] == "import_invalid"
    assert [e["field"] for e in problem["errors"]] == ["line 3, column 1", "line 4, column 2"]
    assert problem["report"]["rows"]["invalid"] == 2
    assert {(p["line"], p["field"]) for p in problem["report"]["problems"]} == {
        (3, "email"),
        (4, "name"),
    }
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 0
    skipped = await run(api, made["id"], body.encode(), mode="commit", on_error="skip_invalid")
    assert skipped.status_code == 201
    assert [c["email"] for c in await contacts_of(api, made["id"])] == ["ada@example.org"]


async def test_a_commit_checks_the_analysis_digest(api):
    made = await create_list(api)
    analysis = (await run(api, made["id"], CSV.encode(), mode="analyze")).json()
    digest = analysis["digest"]
    other_file = await run(
        api, made["id"], CSV.encode() + b"x@example.org\n", mode="commit", digest=digest
    )
    other_options = await run(
        api, made["id"], CSV.encode(), mode="commit", digest=digest, duplicates="update"
    )
    for response in (other_file, other_options):
        assert response.status_code == 409
        problem = problem_of(response)
        assert problem["code"] == "analysis_mismatch" and problem["expected"] == digest
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 0
    done = await run(api, made["id"], CSV.encode(), mode="commit", digest=digest)
    assert done.status_code == 201
    assert {**done.json(), "mode": "analyze", "committed": False} == analysis


async def test_the_report_as_csv_lists_the_rows_to_fix(api):
    made = await create_list(api)
    body = "email;name\nada@example.org;=1+1\nnot-an-address;X\nada@example.org;Again\n"
    response = await run(
        api, made["id"], body.encode(), mode="analyze", report="csv", on_error="skip_invalid"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "email;name;line;reason"
    assert lines[1].startswith("not-an-address;X;3;email")
    assert lines[2] == "ada@example.org;Again;4;duplicate of line 2: skip"


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"mode": "analyze", "duplicates": "keep"}, ["duplicates"]),
        ({}, ["mode"]),
        ({"mode": "dry-run"}, ["mode"]),
        (
            {"mode": "analyze", "ticket_type_id": "X", "confirm": "true"},
            ["ticket_type_id", "confirm"],
        ),
        (
            {"mode": "analyze", "on_error": "ignore", "report": "pdf", "digest": "abc"},
            ["on_error", "report", "digest"],
        ),
        ({"mode": ["analyze", "commit"]}, ["mode"]),
        ({"mode": "analyze", "x" * 10_000: "1"}, ["x" * 100]),
    ],
)
async def test_bad_import_parameters_are_422_naming_each_and_write_nothing(api, params, fields):
    made = await create_list(api)
    response = await run(api, made["id"], CSV.encode(), **params)
    assert response.status_code == 422, response.text
    assert sorted(e["field"] for e in problem_of(response)["errors"]) == sorted(fields)
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 0


GARBAGE = [
    pytest.param(b"", id="empty"),
    pytest.param(bytes(range(256)) * 64, id="binary"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(2000), id="png-renamed"),
    pytest.param(b"email;name\n", id="header-only"),
    pytest.param(
        ("email;" + ";".join(f"c{n}" for n in range(1, 21))).encode() + b"\na@example.org\n",
        id="21-columns",
    ),
]


@pytest.mark.parametrize("body", GARBAGE)
@pytest.mark.parametrize("mode", ["analyze", "commit"])
async def test_an_unreadable_file_is_a_422_problem_and_writes_nothing(api, body, mode):
    made = await create_list(api)
    files = {"file": ("guests.csv", body, "text/csv")}
    response = await run(api, made["id"], None, files=files, mode=mode)
    assert response.status_code == 422, response.text
    assert problem_of(response)["code"] in {"import_unreadable", "import_invalid"}
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 0


async def test_a_ten_megabyte_field_is_a_report_line_not_a_crash(api):
    made = await create_list(api)
    body = b"email;name\nada@example.org;" + b"x" * (10 * 1024 * 1024) + b"\nbob@example.org;B\n"
    response = await run(api, made["id"], body, mode="commit", on_error="skip_invalid")
    assert response.status_code == 201, response.text
    problems = response.json()["problems"]
    assert problems[0]["line"] == 2 and len(problems[0]["value"]) <= 100
    assert [c["email"] for c in await contacts_of(api, made["id"])] == ["bob@example.org"]


async def test_wrong_media_type_is_415_and_an_upload_over_the_limit_413(api, settings):
    made = await create_list(api)
    response = await run(
        api, made["id"], b"{}", headers={"Content-Type": "application/json"}, mode="analyze"
    )
    assert response.status_code == 415
    problem_of(response)
    small = create_app(settings.replace(import_max_bytes=1000))
    async with AsyncTestClient(small, base_url="https://tickets.test") as client:
        client.headers["Authorization"] = api.headers["Authorization"]
        response = await run(client, made["id"], b"a@example.org\n" * 100, mode="commit")
        assert response.status_code == 413
        assert "1000" in problem_of(response)["detail"]
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 0


async def test_an_archived_list_refuses_imports_and_an_unknown_list_is_404(api):
    target, source = await create_list(api, "T"), await create_list(api, "S")
    await api.post(
        f"{BASE}/{target['id']}/merge", json={"sources": [source["id"]], "preview": False}
    )
    for mode in ("analyze", "commit"):
        response = await run(api, source["id"], CSV.encode(), mode=mode)
        assert response.status_code == 409
        assert problem_of(response)["code"] == "list_archived"
        response = await run(api, "NOSUCHLIST000000", CSV.encode(), mode=mode)
        assert response.status_code == 404
        problem_of(response)
    assert (await api.get(f"{BASE}/{source['id']}")).json()["contacts"] == 0
