"""Reading bytes into rows: formats, encodings, delimiters, physical lines, unreadable input."""

from __future__ import annotations

import os
import zipfile
from datetime import date, datetime
from io import BytesIO
from pathlib import Path

import pytest
import xlsxwriter

from server.imports.sources import SourceError, SourceRow, open_source, sniff_delimiter


def rows_of(data: bytes, filename: str | None = "list.csv", content_type: str | None = None):
    info, rows = open_source(data, filename=filename, content_type=content_type)
    return info, list(rows)


def cells(rows: list[SourceRow]) -> list[tuple[str, ...]]:
    return [row.cells for row in rows]


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_each_delimiter_is_found_from_consistent_column_counts(delimiter):
    lines = ["email", "language", "name"], ["a@b.ch", "fr", "Anne"], ["c@d.ch", "de", "Carl"]
    data = "\n".join(delimiter.join(line) for line in lines).encode()
    info, rows = rows_of(data)
    assert info.delimiter == delimiter
    assert cells(rows) == [tuple(line) for line in lines]


def test_a_semicolon_file_whose_names_hold_commas_is_read_on_semicolons():
    data = 'a@b.ch;fr;"Dupont, Anne"\nc@d.ch;de;Müller, Carl\ne@f.ch;en;Eve\n'.encode()
    info, rows = rows_of(data)
    assert info.delimiter == ";"
    assert rows[1].cells == ("c@d.ch", "de", "Müller, Carl")


def test_one_quoted_column_has_no_delimiter_where_csv_sniffer_would_guess_one():
    data = b'"a@b.ch"\n"c,d@e.ch"\n"f@g.ch"\n'
    info, rows = rows_of(data)
    assert info.delimiter is None
    assert cells(rows) == [("a@b.ch",), ("c,d@e.ch",), ("f@g.ch",)]


def test_pasted_lines_with_and_without_a_quantity_split_on_semicolons():
    data = b"a@b.ch\nc@d.ch;3\ne@f.ch\n"
    info, rows = rows_of(data, filename=None, content_type="text/plain")
    assert (info.format, info.delimiter) == ("text", ";")
    assert cells(rows) == [("a@b.ch",), ("c@d.ch", "3"), ("e@f.ch",)]


def test_the_sniffer_ignores_a_cut_last_line_of_its_sample():
    sample = "a@b.ch;fr;Anne\n" * 4000 + "c@d.ch,x"
    assert sniff_delimiter(sample[: 64 * 1024]) == ";"


def test_lines_are_physical_and_count_the_header_blank_lines_and_quoted_line_breaks():
    data = (
        b'email;note\n\na@b.ch;"two\nlines"\n\r\n;;\nc@d.ch;x\r\ne@f.ch;"a\r\nb\r\nc"\nz@z.ch;end'
    )
    _, rows = rows_of(data)
    assert [(row.line, row.cells[0]) for row in rows] == [
        (1, "email"),
        (3, "a@b.ch"),
        (7, "c@d.ch"),
        (8, "e@f.ch"),
        (11, "z@z.ch"),
    ]
    assert rows[1].cells == ("a@b.ch", "two\nlines")


def test_trailing_empty_cells_are_dropped():
    _, rows = rows_of(b"a@b.ch;fr;;;;\nc@d.ch;;x;;\n")
    assert cells(rows) == [("a@b.ch", "fr"), ("c@d.ch", "", "x")]


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        pytest.param("é@exemple.ch;Zoë".encode(), "utf-8", id="utf-8"),
        pytest.param(b"\xef\xbb\xbf" + "é@exemple.ch;Zoë".encode(), "utf-8-sig", id="utf-8-bom"),
        pytest.param("é@exemple.ch;Zoë".encode("cp1252"), "cp1252", id="windows-1252"),
        pytest.param("é@exemple.ch;Zoë".encode("utf-16"), "utf-16", id="utf-16-bom"),
    ],
)
def test_encodings_are_detected(data, encoding):
    info, rows = rows_of(data)
    assert info.encoding == encoding
    assert rows[0].cells == ("é@exemple.ch", "Zoë")


def test_windows_1252_keeps_its_own_characters():
    info, rows = rows_of("a@b.ch;€ “Zoë” \u2013 œuvre".encode("cp1252"))
    assert info.encoding == "cp1252"
    assert rows[0].cells[1] == "€ “Zoë” \u2013 œuvre"


def test_bytes_windows_1252_leaves_undefined_are_read_as_latin_1():
    info, rows = rows_of(b"a@b.ch;Zo\xeb \x81\x8d\n")
    assert info.encoding == "latin-1"
    assert rows[0].cells == ("a@b.ch", "Zoë \x81\x8d")


def test_a_bom_that_lies_is_unreadable():
    with pytest.raises(SourceError, match="UTF-8"):
        open_source(b"\xef\xbb\xbfa@b.ch;Zo\xeb\n", filename="x.csv", content_type=None)


def test_utf8_split_across_decoding_chunks_is_still_utf8():
    data = ("a@b.ch;" + "é" * (1024 * 1024) + "\n").encode()
    info, _ = open_source(data, filename=None, content_type=None)
    assert info.encoding == "utf-8"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"  \r\n\n\t\n", "empty", id="whitespace"),
        pytest.param(b"\xef\xbb\xbf", "empty", id="bom-only"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(200), "PNG", id="png"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF", id="pdf"),
        pytest.param(os.urandom(4096), "binary|cannot be read|not a", id="random-bytes"),
        pytest.param(bytes(range(256)) * 8, "binary", id="all-bytes"),
        pytest.param(b"a@b.ch\x00;fr\n", "binary", id="nul"),
        pytest.param("é@x.ch;fr\r\n".encode("utf-16-le"), "UTF-16", id="utf-16-no-bom"),
        pytest.param("é@x.ch;fr\r\n".encode("utf-16-be"), "UTF-16", id="utf-16-be-no-bom"),
        pytest.param(b"PK\x03\x04" + os.urandom(300), "XLSX", id="broken-zip"),
        pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "XLS", id="broken-ole2"),
    ],
)
def test_unreadable_files_are_a_source_error(data, message):
    with pytest.raises(SourceError, match=message) as raised:
        open_source(data, filename="guests.csv", content_type="text/csv")
    assert raised.value.code == "import_unreadable"
    assert raised.value.errors == [{"field": "file", "message": raised.value.detail}]


def test_a_zip_that_is_no_workbook_is_a_source_error():
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "a@b.ch")
    with pytest.raises(SourceError, match="XLSX"):
        open_source(buffer.getvalue(), filename="guests.xlsx", content_type=None)


def test_a_ten_megabyte_field_is_one_bad_row_and_the_rest_is_read():
    data = b'email;note\na@b.ch;"' + b"x" * (10 * 1024 * 1024) + b'"\nc@d.ch;ok\n'
    _, rows = rows_of(data)
    assert rows[1:] == [SourceRow(2, (), "line_too_long"), SourceRow(3, ("c@d.ch", "ok"))]


def test_a_field_over_the_csv_limit_on_short_lines_is_one_bad_row():
    data = b'a@b.ch;"' + b"x\n" * 80_000 + b'"\nc@d.ch;ok\n'
    _, rows = rows_of(data)
    assert rows == [SourceRow(1, (), "field_too_large"), SourceRow(80_002, ("c@d.ch", "ok"))]


def test_a_ten_megabyte_line_without_a_line_break_is_one_bad_row():
    _, rows = rows_of(b"a@b.ch;" + b"y" * (10 * 1024 * 1024))
    assert rows == [SourceRow(1, (), "line_too_long")]


def test_formula_cells_are_read_as_they_are():
    _, rows = rows_of(b'a@b.ch;=1+1;"=HYPERLINK(""http://x"")";@SUM(A1);-2;+3\n')
    assert rows[0].cells == ("a@b.ch", "=1+1", '=HYPERLINK("http://x")', "@SUM(A1)", "-2", "+3")


def _xlsx(path: Path, rows: dict[int, list[object]]) -> bytes:
    """A workbook as an organiser's: dates formatted as dates, formula-looking text as text."""
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Invités")
        dates = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        for index, values in rows.items():
            for column, value in enumerate(values):
                if isinstance(value, date):
                    sheet.write_datetime(index - 1, column, value, dates)
                elif isinstance(value, str):
                    sheet.write_string(index - 1, column, value)
                else:
                    sheet.write(index - 1, column, value)
        workbook.add_worksheet("Other").write(0, 0, "ignored@example.ch")
    return path.read_bytes()


def test_xlsx_rows_keep_their_sheet_row_numbers_and_read_numbers_as_typed(tmp_path):
    data = _xlsx(
        tmp_path / "g.xlsx",
        {
            2: ["email", "quantity", "since"],
            3: ["a@b.ch", 3, datetime(2024, 5, 1, 18, 30)],
            5: ["c@d.ch", 2.5, date(2024, 5, 2)],
            6: ["e@f.ch", "=1+1"],
        },
    )
    info, rows = rows_of(data, filename="whatever.csv")
    assert (info.format, info.sheet, info.delimiter) == ("xlsx", "Invités", None)
    assert [(row.line, row.cells) for row in rows] == [
        (2, ("email", "quantity", "since")),
        (3, ("a@b.ch", "3", "2024-05-01T18:30:00")),
        (5, ("c@d.ch", "2.5", "2024-05-02")),
        (6, ("e@f.ch", "=1+1")),
    ]


def test_an_empty_workbook_has_no_rows(tmp_path):
    data = _xlsx(tmp_path / "empty.xlsx", {})
    info, rows = rows_of(data)
    assert info.format == "xlsx"
    assert rows == []


def test_a_workbook_with_a_cell_at_the_far_corner_is_unreadable_not_a_crash(tmp_path):
    """calamine would allocate the whole sheet (512 GiB): the child process reading it dies."""
    path = tmp_path / "corner.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet()
        sheet.write_string(0, 0, "a@b.ch")
        sheet.write_string(1_048_575, 16_383, "x")
    with pytest.raises(SourceError, match="too many cells"):
        open_source(path.read_bytes(), filename="corner.xlsx", content_type=None)


def test_data_starting_below_and_right_keeps_row_numbers_and_starts_at_its_first_column(tmp_path):
    path = tmp_path / "offset.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet()
        sheet.write_row(3, 2, ["email", "name"])
        sheet.write_row(4, 2, ["a@b.ch", "Anne"])
        sheet.write_string(200_000, 2, "z@b.ch")
    _, rows = rows_of(path.read_bytes())
    assert [(row.line, row.cells) for row in rows] == [
        (4, ("email", "name")),
        (5, ("a@b.ch", "Anne")),
        (200_001, ("z@b.ch",)),
    ]
