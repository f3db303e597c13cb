"""`tessera import` as an operator runs it: analyze, then commit, against a migrated database."""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path

import pytest
import xlsxwriter

from tests.cli_home import Tessera, copy_home, tessera_in


@pytest.fixture
def tessera(demo_home_template: Path, tmp_path: Path) -> Tessera:
    # COLUMNS: the report tables' width; each test reads the exit code itself
    return partial(tessera_in(copy_home(demo_home_template, tmp_path), COLUMNS="120"), ok=False)


@pytest.fixture
def target(tmp_path: Path) -> tuple[str, str]:
    """The demo event and its ticket type."""
    database = sqlite3.connect(tmp_path / "var" / "tessera.db")
    try:
        event_id = database.execute("SELECT id FROM event").fetchone()[0]
        type_id = database.execute("SELECT id FROM ticket_type").fetchone()[0]
    finally:
        database.close()
    return event_id, type_id


def bookings(tmp_path: Path) -> list[tuple[str, str, int]]:
    database = sqlite3.connect(tmp_path / "var" / "tessera.db")
    try:
        return database.execute(
            "SELECT b.buyer_email, b.status, count(t.id) FROM booking b "
            "LEFT JOIN ticket t ON t.booking_id = b.id GROUP BY b.id ORDER BY b.buyer_email"
        ).fetchall()
    finally:
        database.close()


def test_analyze_prints_the_report_and_writes_nothing_then_commit_writes(tessera, target, tmp_path):
    event_id, type_id = target
    before = bookings(tmp_path)
    (tmp_path / "guests.txt").write_text("ana@example.org;2\nbob@example.org\n")
    options = ["--event", event_id, "--ticket-type", type_id, "--confirm"]
    analysed = tessera("import", "guests.txt", *options)
    assert analysed.returncode == 0, analysed.stderr
    assert "import analyze" in analysed.stdout and "rows valid" in analysed.stdout
    assert "committed" in analysed.stdout and " no " in analysed.stdout
    assert bookings(tmp_path) == before
    committed = tessera("import", "guests.txt", *options, "--commit")
    assert committed.returncode == 0, committed.stderr
    assert "created tickets" in committed.stdout
    added = sorted(set(bookings(tmp_path)) - set(before))
    assert added == [("ana@example.org", "confirmed", 2), ("bob@example.org", "confirmed", 1)]
    again = tessera("import", "guests.txt", *options, "--commit")
    assert again.returncode == 0 and "rows skip" in again.stdout
    assert len(bookings(tmp_path)) == len(before) + 2, "re-importing with skip adds nothing"


def test_an_xlsx_is_imported_like_a_csv(tessera, target, tmp_path):
    event_id, type_id = target
    book = xlsxwriter.Workbook(str(tmp_path / "guests.xlsx"))
    sheet = book.add_worksheet()
    for row, (email, quantity) in enumerate([("zoe@example.org", 3), ("max@example.de", 1)]):
        sheet.write(row, 0, email)
        sheet.write(row, 1, quantity)
    book.close()
    done = tessera(
        "import", "guests.xlsx", "--event", event_id, "--ticket-type", type_id, "--commit"
    )
    assert done.returncode == 0, done.stderr
    assert ("zoe@example.org", "pending", 0) in bookings(tmp_path)


def test_an_invalid_file_exits_non_zero_and_writes_nothing(tessera, target, tmp_path):
    event_id, type_id = target
    before = bookings(tmp_path)
    options = ["--event", event_id, "--ticket-type", type_id]
    (tmp_path / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    unreadable = tessera("import", "image.csv", *options, "--commit")
    assert unreadable.returncode == 1 and "PNG" in unreadable.stderr
    (tmp_path / "bad.csv").write_text("ok@example.org;1\nnot-an-address;1\nx@example.org;abc\n")
    analysed = tessera("import", "bad.csv", *options, "--report-csv", "fix.csv")
    assert analysed.returncode == 1
    assert "invalid_email" in analysed.stdout and "not_an_integer" in analysed.stdout
    fix = (tmp_path / "fix.csv").read_text("utf-8-sig").splitlines()
    assert fix[0].endswith("line;reason") and len(fix) == 3
    refused = tessera("import", "bad.csv", *options, "--commit")
    assert refused.returncode == 1 and "nothing was imported" in refused.stderr
    missing = tessera("import", "nowhere.csv", *options)
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert bookings(tmp_path) == before


def test_an_oversell_says_so_in_the_analysis_and_the_commit_writes_nothing(
    tessera, target, tmp_path
):
    event_id, type_id = target
    before = bookings(tmp_path)
    (tmp_path / "crowd.txt").write_text("crowd@example.org;1000\n")  # the demo has 500 seats
    options = ["--event", event_id, "--ticket-type", type_id, "--confirm"]
    analysed = tessera("import", "crowd.txt", *options)
    assert analysed.returncode == 1
    assert "over capacity" in analysed.stdout and "capacity_exceeded" in analysed.stdout
    refused = tessera("import", "crowd.txt", *options, "--commit")
    assert refused.returncode == 1 and "nothing was imported" in refused.stderr
    assert bookings(tmp_path) == before


def test_a_garbled_or_foreign_ticket_type_is_refused_without_echoing_controls(
    tessera, target, tmp_path
):
    event_id, _ = target
    (tmp_path / "x.csv").write_text("ana@example.org\n")
    done = tessera("import", "x.csv", "--event", event_id, "--ticket-type", "\x1b[31mred")
    assert done.returncode == 1 and "\x1b" not in done.stderr and "no ticket type" in done.stderr
    other = tessera("import", "x.csv", "--event", event_id, "--ticket-type", "NOSUCHTYPE")
    assert other.returncode == 1 and "no such ticket type" in other.stderr
