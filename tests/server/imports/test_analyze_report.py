"""The report of an analysis: JSON counts and lists, and the CSV to fix and upload again."""

from __future__ import annotations

import csv
import io

import msgspec

from server.imports.analyze import analyze_source, classify_duplicates, email_key
from server.imports.report_csv import report_csv
from server.imports.schemas import REPORT_LIST_LIMIT, ImportReport, build_report


def analyze(text: str, filename: str | None = "list.csv"):
    data = text.encode()
    return data, analyze_source(data, filename=filename, content_type=None, options_digest_part="")


def read_csv(chunks) -> list[list[str]]:
    text = b"".join(chunks).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


CONTACTS = (
    "email;langue;nom;Entreprise\n"
    "anne@exemple.ch;fr;Anne;ACME\n"
    "nobody;xx;Bob;\n"
    'ANNE@exemple.ch;de;=HYPERLINK("http://evil");\n'
    "carl@exemple.ch;en;Carl;Initech\n"
)


def test_the_report_counts_rows_problems_duplicates_and_actions():
    _, analysis = analyze(CONTACTS)
    existing = {email_key("carl@exemple.ch")}
    decisions = classify_duplicates(
        analysis.entries, existing, "update", within_file_are_duplicates=True
    )
    report = build_report(analysis, decisions, mode="analyze", options={"duplicates": "update"})
    body = msgspec.json.decode(msgspec.json.encode(report))
    assert body["source"] == {
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ";",
        "sheet": None,
        "header": ["email", "langue", "nom", "Entreprise"],
    }
    assert body["rows"] == {
        "read": 4,
        "valid": 3,
        "invalid": 1,
        "duplicates": 2,
        "create": 1,
        "update": 2,
        "skip": 0,
    }
    assert body["languages"] == {"de": 1, "en": 1, "fr": 1}
    assert [(p["line"], p["column"], p["reason"]) for p in body["problems"]] == [
        (3, 1, "invalid_email"),
        (3, 2, "unknown_language"),
    ]
    assert body["duplicates"] == [
        {"line": 4, "email": "ANNE@exemple.ch", "action": "update", "duplicate_of": 2},
        {"line": 5, "email": "carl@exemple.ch", "action": "update", "duplicate_of": "existing"},
    ]
    assert (body["problems_total"], body["duplicates_total"]) == (2, 2)
    assert body["digest"] == analysis.digest
    assert body["committed"] is False


def test_lists_stop_at_a_thousand_but_totals_do_not():
    _, analysis = analyze("".join(f"bad{i}\n" for i in range(1500)), filename=None)
    report = build_report(analysis, [], mode="analyze", options={})
    assert len(report.problems) == REPORT_LIST_LIMIT
    assert report.problems_total == 1500


def test_a_target_adds_its_own_fields():
    class InvitationReport(ImportReport, kw_only=True):
        tickets: int

    _, analysis = analyze("a@exemple.ch;3\n", filename=None)
    report = build_report(
        analysis, [], mode="commit", options={}, committed=True,
        report_type=InvitationReport, tickets=3,
    )  # fmt: skip
    assert isinstance(report, InvitationReport)
    assert (report.tickets, report.committed, report.mode) == (3, True, "commit")


def test_the_csv_report_holds_bad_and_duplicate_rows_with_line_and_reason_formula_safe():
    data, analysis = analyze(CONTACTS)
    decisions = classify_duplicates(
        analysis.entries, set(), "skip", within_file_are_duplicates=True
    )
    rows = read_csv(
        report_csv(data, filename="list.csv", content_type=None, analysis=analysis,
                   decisions=decisions)
    )  # fmt: skip
    assert rows == [
        ["email", "langue", "nom", "Entreprise", "line", "reason"],
        ["nobody", "xx", "Bob", "", "3", "email: invalid_email; language: unknown_language"],
        ["ANNE@exemple.ch", "de", "'=HYPERLINK(\"http://evil\")", "", "4",
         "duplicate of line 2: skip"],
    ]  # fmt: skip


def test_the_fixed_report_uploaded_again_reads_the_same_columns_without_line_and_reason():
    data, analysis = analyze(CONTACTS)
    report = b"".join(
        report_csv(data, filename="x.csv", content_type=None, analysis=analysis, decisions=[])
    )
    fixed = report.replace(b"nobody;xx", b"bob@exemple.ch;fr")
    again = analyze_source(fixed, filename="x.csv", content_type=None, options_digest_part="")
    assert again.problems == []
    assert [(e.email, e.language, e.name, e.attributes) for e in again.entries] == [
        ("bob@exemple.ch", "fr", "Bob", {}),
    ]
    assert again.columns == ("email", "langue", "nom", "Entreprise")


def test_without_a_header_the_report_names_the_columns_as_they_were_read():
    data, analysis = analyze("a@exemple.ch;2\nb@exemple.ch;0\nc@exemple.ch;1;Carl;VIP\n", None)
    rows = read_csv(
        report_csv(data, filename=None, content_type="text/plain", analysis=analysis,
                   decisions=[])
    )  # fmt: skip
    assert rows == [
        ["email", "quantity", "name", "column_4", "line", "reason"],
        ["b@exemple.ch", "0", "", "", "2", "quantity: quantity_out_of_range"],
    ]


def test_an_unreadable_row_is_in_the_report_with_empty_cells():
    data = b"email;note\na@exemple.ch;" + b"x" * (1024 * 1024) + b"\nb@exemple.ch;ok\n"
    analysis = analyze_source(data, filename="x.csv", content_type=None, options_digest_part="")
    rows = read_csv(
        report_csv(data, filename="x.csv", content_type=None, analysis=analysis, decisions=[])
    )
    assert rows == [["email", "note", "line", "reason"], ["", "", "2", "row: line_too_long"]]
