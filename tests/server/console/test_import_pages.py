"""The console's import pages: paste or upload, read the analysis in words, commit exactly what
was analysed, and never a 5xx nor a write for a broken, forged or oversized form."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.factories import create_event, create_ticket_type
from tests.server.console.helpers import as_new_browser, make_user, sign_in

SAMPLES = Path(__file__).parents[3] / "docs" / "samples"
TOKEN = re.compile(r'name="token" value="([^"]+)"')
DIGEST = re.compile(r'name="digest" value="([0-9a-f]{64})"')


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the pages' logic does not depend on the database


@pytest.fixture
async def stock(api, settings):
    """A signed-in admin (its CSRF token), an event and a ticket type of 10 seats."""
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=10)
    await make_user(settings)
    csrf = await sign_in(api, settings)
    return csrf, event["id"], ticket_type["id"]


def form(csrf: str, type_id: str, **fields: str) -> dict[str, str]:
    return (
        {"csrf": csrf, "ticket_type_id": type_id, "duplicates": "skip"}
        | {"on_error": "reject_all"}
        | fields
    )


async def analyze(client, event_id, data, files=None):
    return await client.post(
        f"/console/events/{event_id}/imports", data=data, files=files or {"file": ("", b"")}
    )


def commit_form(page: str, csrf: str, **changes: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page))
    return fields | {"csrf": csrf} | changes


async def bookings(api, event_id):
    response = await api.get(f"/api/v1/events/{event_id}/bookings", params={"limit": 500})
    return response.json()["items"]


async def test_pasted_lines_are_analysed_in_words_then_committed(api, stock):
    csrf, event_id, type_id = stock
    page = await api.get(f"/console/events/{event_id}/imports")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    lines = "ana@example.org;2\nnot-an-address;1\nbob@example.org;abc\n"
    report = await analyze(api, event_id, form(csrf, type_id, lines=lines, on_error="skip_invalid"))
    assert report.status_code == 200, report.text
    text = report.text
    assert "This is not a valid email address." in text  # line 2, column 1
    assert "The quantity must be a whole number." in text  # line 3, column 2
    assert "<td>2</td><td>1</td>" in text and "<td>3</td><td>2</td>" in text
    assert "invalid_email" not in text  # words, not codes
    assert await bookings(api, event_id) == []  # the analysis wrote nothing
    assert "report.csv" in text
    csv_link = re.search(r'href="([^"]+report\.csv[^"]*)"', text).group(1).replace("&amp;", "&")
    csv = await api.get(csv_link)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "not-an-address" in csv.text and csv.headers["cache-control"] == "no-store"
    done = await api.post(
        f"/console/events/{event_id}/imports/commit", data=commit_form(text, csrf, confirm="1")
    )
    assert done.status_code == 409, "confirm was not analysed: the digest refuses it"
    done = await api.post(
        f"/console/events/{event_id}/imports/commit", data=commit_form(text, csrf)
    )
    assert done.status_code == 303, done.text
    result = await api.get(done.headers["location"])
    assert "1 bookings created, 0 tickets issued." in result.text  # pending: none yet
    assert f"/console/events/{event_id}/bookings" in result.text
    made = await bookings(api, event_id)
    assert [(b["buyer"]["email"], b["status"]) for b in made] == [("ana@example.org", "pending")]
    again = await api.post(
        f"/console/events/{event_id}/imports/commit", data=commit_form(text, csrf)
    )
    assert again.status_code == 404, "a committed analysis is gone"


async def test_reimport_with_skip_adds_nothing_and_confirm_issues_tickets(api, stock):
    csrf, event_id, type_id = stock
    data = form(csrf, type_id, lines="ana@example.org;2\nbob@example.org\n", confirm="1")
    report = await analyze(api, event_id, data)
    assert "report.csv" not in report.text  # no line to fix, no download of them
    done = await api.post(
        f"/console/events/{event_id}/imports/commit", data=commit_form(report.text, csrf)
    )
    assert done.status_code == 303
    made = await bookings(api, event_id)
    assert sorted(len(b["tickets"]) for b in made) == [1, 2]
    assert {b["status"] for b in made} == {"confirmed"}
    report = await analyze(api, event_id, data)
    assert "<dt>To skip</dt><dd>2</dd>" in report.text
    assert "a booking already there" in report.text
    done = await api.post(
        f"/console/events/{event_id}/imports/commit", data=commit_form(report.text, csrf)
    )
    assert done.status_code == 303
    assert len(await bookings(api, event_id)) == 2


async def test_an_over_capacity_analysis_cannot_be_committed(api, stock, settings):
    csrf, event_id, type_id = stock
    data = form(csrf, type_id, lines="ana@example.org;6\nbob@example.org;5\n", confirm="1")
    report = await analyze(api, event_id, data)
    assert "would sell more tickets than remain" in report.text
    assert "It asks 11 tickets; 10 remain." in report.text
    assert "/imports/commit" not in report.text
    token = TOKEN.search(report.text)
    assert token is None  # no commit form at all; a forged one is refused by the service
    assert "report.csv" not in report.text  # no line to fix, no download of them
    # The analysis is kept server-side under its token all the same: forge a commit for it.
    kept = settings.maildir.parent / "console-imports"
    (analysis,) = kept.glob("*.json")
    fields = {"csrf": csrf, "ticket_type_id": type_id, "confirm": "1", "duplicates": "skip"}
    fields |= {"on_error": "reject_all", "digest": "0" * 64}
    refused = await api.post(
        f"/console/events/{event_id}/imports/commit", data=fields | {"token": analysis.stem}
    )
    assert refused.status_code == 409 and "nothing was imported" in refused.text
    assert await bookings(api, event_id) == []


@pytest.mark.parametrize("sample", ["guests.csv", "invitations.xlsx"])
async def test_an_uploaded_file_is_analysed_and_committed(api, stock, sample):
    csrf, event_id, type_id = stock
    data = (SAMPLES / sample).read_bytes()
    report = await analyze(
        api, event_id, form(csrf, type_id, on_error="skip_invalid"), {"file": (sample, data)}
    )
    assert report.status_code == 200, report.text
    assert sample in report.text
    rows = int(re.search(r"<dt>Bookings to create</dt><dd>(\d+)</dd>", report.text).group(1))
    assert rows > 0
    done = await api.post(
        f"/console/events/{event_id}/imports/commit", data=commit_form(report.text, csrf)
    )
    assert done.status_code == 303, done.text
    assert len(await bookings(api, event_id)) == rows


async def test_a_commit_whose_analysed_file_changed_is_refused(api, stock, settings):
    csrf, event_id, type_id = stock
    report = await analyze(api, event_id, form(csrf, type_id, lines="ana@example.org;1\n"))
    token = TOKEN.search(report.text).group(1)
    kept = settings.maildir.parent / "console-imports" / f"{token}.data"
    assert kept.stat().st_mode & 0o077 == 0, "the kept upload is private"
    kept.write_bytes(b"ana@example.org;9\n")
    done = await api.post(
        f"/console/events/{event_id}/imports/commit", data=commit_form(report.text, csrf)
    )
    assert done.status_code == 409 and "changed since the analysis" in done.text
    assert await bookings(api, event_id) == []


async def test_another_events_analysis_is_not_found_under_this_event(api, stock):
    csrf, event_id, type_id = stock
    other = await create_event(api)
    report = await analyze(api, event_id, form(csrf, type_id, lines="ana@example.org\n"))
    fields = commit_form(report.text, csrf)
    done = await api.post(f"/console/events/{other['id']}/imports/commit", data=fields)
    assert done.status_code == 404
    token = TOKEN.search(report.text).group(1)
    link = f"/console/events/{event_id}/imports/{token}/report.csv"
    assert (await api.get(link.replace(event_id, other["id"]))).status_code == 404
    other_type = await create_ticket_type(api, other["id"])
    wrong = await analyze(api, event_id, form(csrf, other_type["id"], lines="ana@example.org\n"))
    assert wrong.status_code == 422 and "no such ticket type" in wrong.text
    assert await bookings(api, event_id) == [] and await bookings(api, other["id"]) == []


async def test_broken_multipart_forms_get_a_page_and_write_nothing(api, stock, settings):
    csrf, event_id, type_id = stock
    url = f"/console/events/{event_id}/imports"
    no_boundary = await api.post(
        url, content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert no_boundary.status_code == 400
    big = b"a@example.org;1\n" * (settings.import_max_bytes // 16 + 1)
    too_large = await analyze(api, event_id, form(csrf, type_id), {"file": ("big.csv", big)})
    assert too_large.status_code == 413 and "larger than an import may be" in too_large.text
    nul = await analyze(
        api, event_id, form(csrf, type_id), {"file": ("nul.csv", b"a@example.org\x00;1\n" * 50)}
    )
    assert nul.status_code == 422 and "cannot be read" in nul.text
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'
        ).encode()
        + b'\xe9t\xff.csv"\r\n\r\na@example.org\r\n'
        + f"--{boundary}--\r\n".encode()
    )
    latin = await api.post(
        url, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert latin.status_code == 400
    no_csrf = await analyze(api, event_id, {"lines": "a@example.org", "ticket_type_id": type_id})
    assert no_csrf.status_code == 403
    huge = await analyze(api, event_id, form(csrf, type_id, lines="a@example.org;99999999999999"))
    assert huge.status_code == 200 and "between 1 and 1,000" in huge.text
    nul_field = await analyze(api, event_id, form(csrf, type_id + "\x00", lines="a@example.org"))
    assert nul_field.status_code == 400
    for response in (no_boundary, too_large, nul, latin, no_csrf, huge, nul_field):
        assert "text/html" in response.headers["content-type"]
    assert await bookings(api, event_id) == []


async def test_read_only_users_cannot_import(api, settings):
    event = await create_event(api)
    await make_user(settings, email="rea@example.org", role="read_only", name="Rea")
    browser = await as_new_browser(api, settings, "rea@example.org")
    assert (await api.get(f"/console/events/{event['id']}/imports")).status_code == 403
    posted = await api.post(
        f"/console/events/{event['id']}/imports",
        data={"csrf": browser.csrf, "lines": "a@example.org", "ticket_type_id": "x"},
        files={"file": ("", b"")},
    )
    assert posted.status_code == 403 and "Not allowed" in posted.text
