"""Event imports over HTTP: analyze writes nothing, commit writes all or nothing, bad input is
a report line or a clear 4xx, and doors see the imported tickets."""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pytest
import xlsxwriter

from tests.conftest import problem_of
from tests.factories import create_booking, create_event, create_ticket_type
from tests.server.checkin.helpers import paired_door


@pytest.fixture
async def stock(api):
    """An event and a ticket type of 50 seats."""
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=50)
    return event["id"], ticket_type["id"]


async def send(api, event_id, body, *, filename=None, content_type="text/plain", **query):
    """POST the import: `body` as pasted text, or as the multipart file `filename`."""
    params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in query.items()}
    url = f"/api/v1/events/{event_id}/imports"
    if filename is None:
        return await api.post(
            url, content=body, params=params, headers={"Content-Type": content_type}
        )
    return await api.post(url, files={"file": (filename, body, content_type)}, params=params)


async def analyze(api, event_id, type_id, body, **kw):
    response = await send(api, event_id, body, mode="analyze", ticket_type_id=type_id, **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def commit(api, event_id, type_id, body, **kw):
    response = await send(api, event_id, body, mode="commit", ticket_type_id=type_id, **kw)
    assert response.status_code == 201, response.text
    return response.json()


async def bookings(api, event_id) -> list[dict[str, Any]]:
    response = await api.get(f"/api/v1/events/{event_id}/bookings", params={"limit": 500})
    return list(response.json()["items"])


def xlsx(rows: list[list[Any]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("Invités")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


PASTED = b"ana@example.org;2\nbob@example.org\n\nchloe@example.org;3\nana@example.org\n"


async def test_analyzing_pasted_lines_reports_and_writes_nothing(api, stock):
    event_id, type_id = stock
    report = await analyze(api, event_id, type_id, PASTED)
    assert report["mode"] == "analyze" and report["committed"] is False
    assert report["rows"] == {
        "read": 4,
        "valid": 4,
        "invalid": 0,
        "duplicates": 0,
        "create": 4,
        "update": 0,
        "skip": 0,
    }
    assert report["tickets"] == 7, "quantity 2 + 1 + 3 + 1; the repeated address is not merged"
    assert report["source"]["format"] == "text"
    assert report["options"] == {
        "ticket_type_id": type_id,
        "confirm": False,
        "duplicates": "skip",
        "on_error": "reject_all",
    }
    assert len(report["digest"]) == 64 and report["refusal"] is None
    assert report["created"] is None
    assert await bookings(api, event_id) == []


async def test_commit_books_each_row_with_its_quantity(api, stock):
    event_id, type_id = stock
    report = await commit(api, event_id, type_id, PASTED, confirm=True)
    assert report["committed"] is True and report["mode"] == "commit"
    assert report["created"] == {"bookings": 4, "tickets": 7, "mails": 0, "updated": 0}
    made = await bookings(api, event_id)
    assert sorted((b["buyer"]["email"], len(b["tickets"])) for b in made) == [
        ("ana@example.org", 1),
        ("ana@example.org", 2),
        ("bob@example.org", 1),
        ("chloe@example.org", 3),
    ]
    assert {b["status"] for b in made} == {"confirmed"}
    types = (await api.get(f"/api/v1/events/{event_id}/ticket-types")).json()
    assert types[0]["remaining"] == 43


async def test_a_semicolon_csv_with_a_header_gives_names_and_languages(api, stock):
    event_id, type_id = stock
    csv = "email;langue;nom\r\nzoe@example.org;FR;Zoë Ångström\r\nmax@example.de;Deutsch;Max\r\n"
    body = csv.encode("utf-8-sig")
    named = {"filename": "invités.csv", "content_type": "text/csv"}
    report = await analyze(api, event_id, type_id, body, **named)
    assert report["source"]["delimiter"] == ";" and report["source"]["format"] == "csv"
    assert report["source"]["header"] == ["email", "langue", "nom"]
    assert report["languages"] == {"de": 1, "fr": 1}
    committed = await commit(api, event_id, type_id, body, **named, digest=report["digest"])
    assert committed["digest"] == report["digest"]
    made = {b["buyer"]["email"]: b for b in await bookings(api, event_id)}
    assert made["zoe@example.org"]["buyer"] == {
        "name": "Zoë Ångström",
        "email": "zoe@example.org",
        "language": "fr",
    }
    assert made["max@example.de"]["status"] == "pending"
    assert made["max@example.de"]["tickets"] == []


async def test_an_xlsx_without_header_is_email_then_quantity(api, stock):
    event_id, type_id = stock
    body = xlsx([["ana@example.org", 2], ["bob@example.org", 1]])
    ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    report = await commit(
        api, event_id, type_id, body, filename="guests.xlsx", content_type=ctype, confirm=True
    )
    assert report["source"]["format"] == "xlsx" and report["source"]["sheet"] == "Invités"
    assert report["created"]["tickets"] == 3
    made = await bookings(api, event_id)
    assert sorted(len(b["tickets"]) for b in made) == [1, 2]


async def test_reimporting_with_skip_adds_nothing(api, stock):
    event_id, type_id = stock
    await commit(api, event_id, type_id, PASTED, confirm=True)
    again = await analyze(api, event_id, type_id, PASTED, confirm=True)
    assert again["rows"]["duplicates"] == 4 and again["rows"]["skip"] == 4
    assert again["tickets"] == 0
    assert {d["duplicate_of"] for d in again["duplicates"]} == {"existing"}
    report = await commit(api, event_id, type_id, PASTED, confirm=True)
    assert report["created"] == {"bookings": 0, "tickets": 0, "mails": 0, "updated": 0}
    assert len(await bookings(api, event_id)) == 4


async def test_duplicates_are_by_address_case_and_idna_insensitive(api, stock):
    event_id, type_id = stock
    await commit(api, event_id, type_id, "Ana@Bücher.ch\n".encode())
    report = await analyze(api, event_id, type_id, b"ana@xn--bcher-kva.ch\n")
    assert report["rows"]["duplicates"] == 1


async def test_a_cancelled_booking_or_another_ticket_type_is_no_duplicate(api, stock):
    event_id, type_id = stock
    other = await create_ticket_type(api, event_id, name="VIP")
    ana = {"name": "A", "email": "ana@example.org"}
    await create_booking(api, event_id, other["id"], 1, buyer=ana)
    cancelled = await create_booking(
        api, event_id, type_id, 1, buyer={"name": "B", "email": "bob@example.org"}
    )
    await api.post(f"/api/v1/bookings/{cancelled['id']}/cancel")
    report = await analyze(api, event_id, type_id, b"ana@example.org\nbob@example.org\n")
    assert report["rows"]["duplicates"] == 0 and report["rows"]["create"] == 2


async def test_update_changes_name_and_language_never_quantities(api, stock):
    event_id, type_id = stock
    await commit(api, event_id, type_id, b"email;quantity\nana@example.org;2\n", confirm=True)
    body = "email;language;name;quantity\nana@example.org;en;Ana Lima;5\nnew@example.org;fr;;1\n"
    report = await commit(api, event_id, type_id, body.encode(), duplicates="update", confirm=True)
    assert report["rows"]["update"] == 1 and report["rows"]["create"] == 1
    assert report["created"] == {"bookings": 1, "tickets": 1, "mails": 0, "updated": 1}
    made = {b["buyer"]["email"]: b for b in await bookings(api, event_id)}
    assert made["ana@example.org"]["buyer"]["name"] == "Ana Lima"
    assert made["ana@example.org"]["buyer"]["language"] == "en"
    assert len(made["ana@example.org"]["tickets"]) == 2


async def test_keep_books_a_duplicate_again(api, stock):
    event_id, type_id = stock
    await commit(api, event_id, type_id, b"ana@example.org\n")
    report = await commit(api, event_id, type_id, b"ana@example.org\n", duplicates="keep")
    assert report["rows"]["duplicates"] == 1 and report["rows"]["create"] == 1
    assert len(await bookings(api, event_id)) == 2


async def test_an_oversell_is_in_the_analysis_and_its_commit_writes_nothing(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=5)
    body = b"a@example.org;3\nb@example.org;3\n"
    report = await analyze(api, event["id"], ticket_type["id"], body, confirm=True)
    assert report["capacity"] == {
        "ticket_type_id": ticket_type["id"],
        "capacity": 5,
        "confirmed": 0,
        "remaining": 5,
        "asked": 6,
        "exceeded": True,
    }
    assert report["refusal"] == "capacity_exceeded"
    refused = await send(
        api, event["id"], body, mode="commit", ticket_type_id=ticket_type["id"], confirm=True
    )
    problem = problem_of(refused)
    assert refused.status_code == 409 and problem["code"] == "capacity_exceeded"
    assert (problem["asked"], problem["remaining"]) == (6, 5)
    assert problem["report"]["capacity"]["exceeded"] is True
    assert problem["report"]["committed"] is False
    assert await bookings(api, event["id"]) == []
    # pending bookings hold no seats: the same rows import without confirming
    pending = await analyze(api, event["id"], ticket_type["id"], body)
    assert pending["capacity"]["asked"] == 0 and pending["refusal"] is None


async def test_a_commit_of_another_file_than_analysed_writes_nothing(api, stock):
    event_id, type_id = stock
    report = await analyze(api, event_id, type_id, PASTED)
    changed = PASTED + b"eve@example.org\n"
    refused = await send(
        api, event_id, changed, mode="commit", ticket_type_id=type_id, digest=report["digest"]
    )
    assert refused.status_code == 409
    problem = problem_of(refused)
    assert problem["code"] == "analysis_mismatch" and problem["expected"] == report["digest"]
    assert problem["report"]["rows"]["read"] == 5
    assert await bookings(api, event_id) == []
    # other options are another analysis too
    refused = await send(
        api,
        event_id,
        PASTED,
        mode="commit",
        ticket_type_id=type_id,
        confirm=True,
        digest=report["digest"],
    )
    assert problem_of(refused)["code"] == "analysis_mismatch"


QUANTITIES = b"a@example.org;0\nb@example.org;-1\nc@example.org;abc\nd@example.org;1e9\n"
QUANTITIES += b"e@example.org;" + str(2**70).encode() + b"\nf@example.org;2.5\ng@example.org;4\n"


async def test_bad_quantities_are_report_lines_and_reject_all_writes_nothing(api, stock):
    event_id, type_id = stock
    report = await analyze(api, event_id, type_id, QUANTITIES)
    assert report["rows"]["invalid"] == 6 and report["rows"]["valid"] == 1
    assert [(p["line"], p["column"], p["field"]) for p in report["problems"]] == [
        (line, 2, "quantity") for line in range(1, 7)
    ]
    assert all(len(p["value"]) <= 100 for p in report["problems"])
    assert report["refusal"] == "import_invalid"
    refused = await send(api, event_id, QUANTITIES, mode="commit", ticket_type_id=type_id)
    problem = problem_of(refused)
    assert refused.status_code == 422 and problem["code"] == "import_invalid"
    assert problem["errors"][0]["field"] == "line 1, column 2"
    assert problem["report"]["problems_total"] == 6
    assert await bookings(api, event_id) == []


async def test_skip_invalid_imports_the_valid_rows(api, stock):
    event_id, type_id = stock
    report = await commit(api, event_id, type_id, QUANTITIES, on_error="skip_invalid", confirm=True)
    assert report["created"]["bookings"] == 1 and report["created"]["tickets"] == 4
    assert [b["buyer"]["email"] for b in await bookings(api, event_id)] == ["g@example.org"]


async def test_a_10_mb_field_is_one_bad_row_not_a_crash(api, stock):
    event_id, type_id = stock
    body = b"ok@example.org;1\n" + b"x" * (10 * 1024 * 1024) + b"@example.org;1\nlast@example.org\n"
    response = await send(api, event_id, body, mode="analyze", ticket_type_id=type_id)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"]["valid"] == 2 and report["rows"]["invalid"] == 1
    assert report["problems"][0]["line"] == 2 and len(report["problems"][0]["value"]) <= 100
    refused = await send(api, event_id, body, mode="commit", ticket_type_id=type_id)
    assert refused.status_code == 422
    assert await bookings(api, event_id) == []


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.mark.parametrize(
    ("body", "filename"),
    [
        pytest.param(b"", None, id="empty"),
        pytest.param(b"\n\n  \n", None, id="blank-lines"),
        pytest.param(bytes(range(256)) * 64, "guests.csv", id="binary"),
        pytest.param(PNG, "guests.csv", id="png-renamed-csv"),
        pytest.param(b"email;language;name\n", "guests.csv", id="header-only"),
        pytest.param(b"PK\x03\x04garbage" * 50, "guests.xlsx", id="broken-xlsx"),
    ],
)
async def test_unreadable_files_are_a_clear_422_and_write_nothing(api, stock, body, filename):
    event_id, type_id = stock
    for mode in ("analyze", "commit"):
        response = await send(
            api,
            event_id,
            body,
            filename=filename,
            content_type="text/csv",
            mode=mode,
            ticket_type_id=type_id,
        )
        assert response.status_code == 422, response.text
        problem = problem_of(response)
        assert problem["code"] == "import_unreadable" and problem["detail"]
    assert await bookings(api, event_id) == []


async def test_quoted_fields_with_newlines_keep_physical_line_numbers(api, stock):
    event_id, type_id = stock
    body = b'email;note\n"a@example.org";"Line\none"\nnot-an-address;x\n'
    report = await analyze(api, event_id, type_id, body, filename="g.csv", content_type="text/csv")
    assert [(p["line"], p["field"]) for p in report["problems"]] == [(4, "email")]


async def test_the_report_as_csv_lists_what_to_fix(api, stock):
    event_id, type_id = stock
    response = await send(
        api, event_id, QUANTITIES, mode="analyze", ticket_type_id=type_id, report="csv"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    text = response.content.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].split(";")[-2:] == ["line", "reason"]
    assert len(lines) == 7 and "quantity" in lines[1]


async def test_a_ticket_type_of_another_event_is_refused(api, stock):
    event_id, _ = stock
    other = await create_event(api, name="Another night")
    foreign = await create_ticket_type(api, other["id"])
    response = await send(api, event_id, PASTED, mode="commit", ticket_type_id=foreign["id"])
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"] == "ticket_type_id"
    missing = await send(api, "NOSUCHEVENT", PASTED, mode="analyze", ticket_type_id=foreign["id"])
    assert missing.status_code == 404 and problem_of(missing)["code"] == "not_found"
    assert await bookings(api, event_id) == []


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        pytest.param({"ticket_type_id": "T"}, ["mode"], id="no-mode"),
        pytest.param({"mode": "analyze"}, ["ticket_type_id"], id="no-ticket-type"),
        pytest.param({"mode": "dry-run", "ticket_type_id": "T"}, ["mode"], id="bad-mode"),
        pytest.param({"mode": "analyze", "ticket_type_id": "T", "confirm": "1"}, ["confirm"]),
        pytest.param(
            {"mode": "analyze", "ticket_type_id": "T", "duplicates": "merge", "on_error": "x"},
            ["duplicates", "on_error"],
            id="bad-policies",
        ),
        pytest.param(
            {"mode": "analyze", "ticket_type_id": "T", "dry": "1", "limit": "2"},
            ["dry", "limit"],
            id="unknown",
        ),
        pytest.param({"mode": "commit", "ticket_type_id": "T", "digest": "abc"}, ["digest"]),
        pytest.param({"mode": "analyze", "ticket_type_id": "x" * 10_000}, ["ticket_type_id"]),
    ],
)
async def test_query_parameters_are_checked_strictly(api, stock, query, fields):
    event_id, _ = stock
    response = await api.post(
        f"/api/v1/events/{event_id}/imports",
        params=query,
        content=PASTED,
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 422, response.text
    assert sorted(e["field"] for e in problem_of(response)["errors"]) == sorted(fields)


async def test_a_repeated_parameter_is_refused(api, stock):
    event_id, type_id = stock
    url = f"/api/v1/events/{event_id}/imports?mode=analyze&mode=commit&ticket_type_id={type_id}"
    response = await api.post(url, content=PASTED, headers={"Content-Type": "text/plain"})
    assert response.status_code == 422
    assert problem_of(response)["errors"] == [{"field": "mode", "message": "given more than once"}]


async def test_a_json_body_is_415(api, stock):
    event_id, type_id = stock
    response = await send(
        api,
        event_id,
        b'{"email": "a@example.org"}',
        content_type="application/json",
        mode="analyze",
        ticket_type_id=type_id,
    )
    assert response.status_code == 415 and problem_of(response)


async def test_an_upload_over_the_import_limit_is_413_naming_it(settings, organiser_token):
    from litestar.testing import AsyncTestClient

    from server.app import create_app

    app = create_app(settings.replace(import_max_bytes=4096))
    async with AsyncTestClient(app, base_url="https://tickets.test") as client:
        client.headers["Authorization"] = f"Bearer {organiser_token}"
        event = await create_event(client)
        ticket_type = await create_ticket_type(client, event["id"])
        body = b"a@example.org;1\n" * 1000
        response = await send(
            client, event["id"], body, mode="analyze", ticket_type_id=ticket_type["id"]
        )
        assert response.status_code == 413
        assert "4096" in problem_of(response)["detail"]
        # a body bigger than the app's 1 MiB JSON limit but under the import limit is read
    big = create_app(settings.replace(import_max_bytes=4 * 1024 * 1024))
    async with AsyncTestClient(big, base_url="https://tickets.test") as client:
        client.headers["Authorization"] = f"Bearer {organiser_token}"
        event = await create_event(client)
        ticket_type = await create_ticket_type(client, event["id"])
        body = b"".join(b"guest%d@example.org;1\n" % n for n in range(80_000))
        assert len(body) > 1024 * 1024
        report = await analyze(client, event["id"], ticket_type["id"], body)
        assert report["rows"]["valid"] == 80_000


async def test_imports_need_an_organiser_token_that_may_write(client, read_only_token, stock):
    event_id, type_id = stock
    client.headers.pop("Authorization", None)
    anonymous = await send(client, event_id, PASTED, mode="analyze", ticket_type_id=type_id)
    assert anonymous.status_code == 401 and problem_of(anonymous)
    client.headers["Authorization"] = f"Bearer {read_only_token}"
    read_only = await send(client, event_id, PASTED, mode="analyze", ticket_type_id=type_id)
    assert read_only.status_code == 403 and problem_of(read_only)


async def test_answers_are_never_cached(api, stock):
    event_id, type_id = stock
    response = await send(api, event_id, PASTED, mode="analyze", ticket_type_id=type_id)
    assert response.headers["cache-control"] == "no-store"


async def test_doors_see_the_imported_tickets(api, stock):
    event_id, type_id = stock
    door = await paired_door(api, event_id)
    before = (await api.get("/api/v1/checkin/changes?since=0", headers=door.headers)).json()
    await commit(api, event_id, type_id, PASTED, confirm=True)
    changes = await api.get(f"/api/v1/checkin/changes?since={before['head']}", headers=door.headers)
    items = changes.json()["items"]
    assert [i["kind"] for i in items] == ["ticket.issued"] * 7
    issued = {i["ticket"]["code"] for i in items}
    snapshot = await api.get("/api/v1/checkin/snapshot", headers=door.headers)
    tickets = msgspec.msgpack.decode(snapshot.content)["tickets"]
    assert {t["code"] for t in tickets} == issued
    made = await bookings(api, event_id)
    assert {t["code"] for b in made for t in b["tickets"]} == issued


async def test_auto_send_queues_the_ticket_mail_of_each_booking(api, stock):
    event_id, type_id = stock
    await api.patch(f"/api/v1/events/{event_id}", json={"auto_send_tickets": True})
    report = await commit(api, event_id, type_id, PASTED, confirm=True)
    assert report["created"]["mails"] == 4
    made = await bookings(api, event_id)
    ledger = await api.get(f"/api/v1/bookings/{made[0]['id']}/messages")
    assert [m["source"] for m in ledger.json()["items"]] == ["auto"]


async def test_the_operation_is_documented(api):
    spec = (await api.get("/schema/openapi.json")).json()
    operation = spec["paths"]["/api/v1/events/{event_id}/imports"]["post"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"mode", "ticket_type_id", "confirm", "duplicates", "on_error", "digest"} <= names
    assert set(operation["requestBody"]["content"]) == {"multipart/form-data", "text/plain"}
    assert {"200", "201", "401", "409", "413", "415", "422"} <= set(operation["responses"])
