"""The console's contact-list pages: create, rename, duplicate, merge after the service's
preview, delete after a confirmation, export, and imports by the same analyse-then-commit flow."""

from __future__ import annotations

import io
import re

import pytest
from python_calamine import CalamineWorkbook

from tests.server.console.helpers import as_new_browser, make_user, sign_in


def xlsx_cells(data: bytes) -> list[object]:
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    return [cell for row in sheet.to_python() for cell in row]


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the pages' logic does not depend on the database


@pytest.fixture
async def admin(client, settings):
    await make_user(settings)
    return await sign_in(client, settings)


async def new_list(client, csrf, name):
    response = await client.post("/console/contact-lists", data={"csrf": csrf, "name": name})
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]


async def import_lines(client, csrf, list_id, lines):
    report = await client.post(
        f"/console/contact-lists/{list_id}/import",
        data={"csrf": csrf, "lines": lines, "duplicates": "skip", "on_error": "reject_all"},
        files={"file": ("", b"")},
    )
    assert report.status_code == 200, report.text
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', report.text))
    done = await client.post(f"/console/contact-lists/{list_id}/import/commit", data=fields)
    assert done.status_code == 303, done.text
    return done.headers["location"]


async def test_create_rename_duplicate_and_delete_a_list(client, admin):
    list_id = await new_list(client, admin, "Presse")
    empty = await client.post("/console/contact-lists", data={"csrf": admin, "name": ""})
    assert empty.status_code == 422 and 'id="e-name"' in empty.text
    where = await import_lines(client, admin, list_id, "ana@example.org;fr\nbob@example.org;de\n")
    page = await client.get(where)
    assert "2 contacts added by the import." in page.text and "ana@example.org" in page.text
    renamed = await client.post(
        f"/console/contact-lists/{list_id}/rename", data={"csrf": admin, "name": "Press"}
    )
    assert renamed.status_code == 303
    copy = await client.post(
        f"/console/contact-lists/{list_id}/duplicate", data={"csrf": admin, "name": ""}
    )
    assert copy.status_code == 303
    copy_page = await client.get(copy.headers["location"])
    assert "Press (copy)" in copy_page.text and "bob@example.org" in copy_page.text
    confirm = await client.get(f"/console/contact-lists/{list_id}/delete")
    assert "2 contacts will be deleted" in confirm.text
    deleted = await client.post(f"/console/contact-lists/{list_id}/delete", data={"csrf": admin})
    assert deleted.status_code == 303
    assert (await client.get(f"/console/contact-lists/{list_id}")).status_code == 404
    listing = await client.get("/console/contact-lists")
    assert "Press (copy)" in listing.text and ">Press<" not in listing.text


async def test_merge_is_previewed_then_done_and_archives_the_source(client, admin):
    target = await new_list(client, admin, "VIP")
    source = await new_list(client, admin, "Partners")
    await import_lines(client, admin, target, "ana@example.org\n")
    await import_lines(client, admin, source, "ana@example.org;fr\ncarl@example.org\n")
    form = await client.get(f"/console/contact-lists/{target}/merge")
    assert f'value="{source}"' in form.text
    data = {"csrf": admin, "sources": source, "action": "preview"}
    preview = await client.post(f"/console/contact-lists/{target}/merge", data=data)
    assert preview.status_code == 200
    text = re.sub(r"\s+", " ", preview.text)
    assert "<dt>Contacts added</dt><dd>1</dd>" in text
    assert "<dt>Contacts after the merge</dt><dd>2</dd>" in text
    assert "<dt>Contacts completed</dt><dd>1</dd>" in text  # ana gains her language
    page = await client.get(f"/console/contact-lists/{target}")
    assert "carl@example.org" not in page.text, "a preview writes nothing"
    merged = await client.post(
        f"/console/contact-lists/{target}/merge", data=data | {"action": "merge"}
    )
    assert merged.status_code == 303
    page = await client.get(f"/console/contact-lists/{target}")
    assert "carl@example.org" in page.text
    archived = await client.get(f"/console/contact-lists/{source}")
    assert "merged and is read-only" in archived.text
    again = await client.post(f"/console/contact-lists/{target}/merge", data=data)
    assert again.status_code == 409
    garbage = await client.post(
        f"/console/contact-lists/{target}/merge", data={"csrf": admin, "sources": "x\x00y"}
    )
    assert garbage.status_code == 400


async def test_a_list_exports_as_csv_and_xlsx_with_the_formula_guard(client, admin):
    list_id = await new_list(client, admin, "Export")
    await import_lines(client, admin, list_id, "ana@example.org;fr;=cmd()\n")
    csv = await client.get(f"/console/contact-lists/{list_id}/export.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["cache-control"] == "no-store"
    assert "attachment" in csv.headers["content-disposition"]
    assert "'=cmd()" in csv.text
    xlsx = await client.get(f"/console/contact-lists/{list_id}/export.xlsx")
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    cells = xlsx_cells(xlsx.content)
    assert "ana@example.org" in cells and "=cmd()" not in cells


async def test_read_only_users_see_and_export_lists_but_change_nothing(client, settings, admin):
    list_id = await new_list(client, admin, "Staff")
    await make_user(settings, email="rea@example.org", role="read_only", name="Rea")
    browser = await as_new_browser(client, settings, "rea@example.org")
    assert (await client.get(f"/console/contact-lists/{list_id}")).status_code == 200
    assert (await client.get(f"/console/contact-lists/{list_id}/export.csv")).status_code == 200
    for path in ("rename", "delete", "duplicate"):
        refused = await client.post(
            f"/console/contact-lists/{list_id}/{path}", data={"csrf": browser.csrf, "name": "x"}
        )
        assert refused.status_code == 403, path
    assert (await client.get(f"/console/contact-lists/{list_id}/import")).status_code == 403
    missing = await client.post(f"/console/contact-lists/{list_id}/delete", data={"x": "1"})
    assert missing.status_code == 403
    assert (await client.get("/console/contact-lists/nope")).status_code == 404
    huge = await client.get(f"/console/contact-lists/{list_id}?offset=99999999999&q=%00")
    assert huge.status_code == 400


async def test_a_list_import_applies_only_what_was_analysed(client, admin):
    list_id = await new_list(client, admin, "Import")
    lines = "ana@example.org\nana@example.org\nbad address\n"
    report = await client.post(
        f"/console/contact-lists/{list_id}/import",
        data={"csrf": admin, "lines": lines, "duplicates": "skip", "on_error": "reject_all"},
        files={"file": ("", b"")},
    )
    assert report.status_code == 200
    assert "Some lines are invalid" in report.text and "/import/commit" not in report.text
    assert "<td>line 1</td>" in report.text  # line 2 repeats the address of line 1
    report = await client.post(
        f"/console/contact-lists/{list_id}/import",
        data={"csrf": admin, "lines": lines, "duplicates": "skip", "on_error": "skip_invalid"},
        files={"file": ("", b"")},
    )
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', report.text))
    changed = await client.post(
        f"/console/contact-lists/{list_id}/import/commit", data=fields | {"duplicates": "update"}
    )
    assert changed.status_code == 409 and "changed since the analysis" in changed.text
    keep = await client.post(
        f"/console/contact-lists/{list_id}/import/commit", data=fields | {"duplicates": "keep"}
    )
    assert keep.status_code == 422  # the API's own refusal: a list holds each address once
    done = await client.post(f"/console/contact-lists/{list_id}/import/commit", data=fields)
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "1 contacts added by the import." in page.text
