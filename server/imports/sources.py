"""Read an uploaded file or pasted text into rows of cells: the first stage of every import.

Rules (ARCHITECTURE §7, issue 15):
- The format is decided by the bytes first, then the name: a ZIP is XLSX (or ODS), an OLE2
  file is XLS, a PNG, JPEG, GIF or PDF is refused whatever it is called; anything else is text
  (CSV, TXT or pasted lines, one reader for all).
- Text is UTF-8 (a BOM is dropped), else UTF-16 when it starts with a UTF-16 BOM, else
  Windows-1252, else Latin-1 (which decodes any byte). NUL bytes or many control characters
  mean binary data (or UTF-16 without a BOM, said as such): `SourceError`. A line ends at LF,
  CRLF or a lone CR (old Mac files).
- The delimiter is the one among `;` `,` TAB `|` that splits the first lines into the most
  consistent column counts (quotes respected; `;` wins ties, as it is the French default).
  No delimiter splitting anything means one column (`SourceInfo.delimiter` is None).
- `SourceRow.line` is the physical, 1-based line where the record starts: the header and blank
  lines count, and a quoted field holding line breaks makes its record span several lines. In a
  spreadsheet it is the sheet's row number. Blank rows (no cell but empty ones) are skipped.
- Trailing empty cells are dropped (spreadsheets export `a;b;;;`); cells are otherwise as read.
- Streaming: text is decoded and split as it is read; a line is cut at `MAX_LINE_CHARS` and a
  field at the csv module's field limit, each giving that row an `error` instead of its cells,
  so one 10 MB field is one bad row, not a 10 MB string per row.
- Spreadsheets: the first sheet, read by python-calamine in a child process whose memory and
  CPU time are bounded (`_open_spreadsheet` says why); lines are the sheet's row numbers,
  column 1 is the first column holding anything. Numbers read as typed (3.0 is `3`), dates
  and times as ISO 8601, a formula as its last computed value. Call `open_source` off the
  event loop (a worker thread): reading a large file takes a second or more.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import resource
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Literal

import msgspec
import python_calamine

from server.errors import BodyInvalid, FieldError

__all__ = [
    "DELIMITERS",
    "MAX_COLUMNS",
    "MAX_LINE_CHARS",
    "SourceError",
    "SourceInfo",
    "SourceRow",
    "open_source",
]

Format = Literal["csv", "text", "xlsx", "xls", "ods"]
DELIMITERS = (";", ",", "\t", "|")
MAX_COLUMNS = 20
MAX_LINE_CHARS = 256 * 1024  # no valid row comes near: 20 columns of at most 1,000 characters
_SNIFF_CHARS = 64 * 1024
_SNIFF_RECORDS = 200
_DECODE_CHUNK = 1024 * 1024
SHEET_MEMORY = 1024 * 1024 * 1024  # the spreadsheet reader's address space (bytes)
SHEET_SECONDS = 30  # and its CPU time

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
]
_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODS_MIMETYPE = b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet"
# C0 controls but TAB, LF, CR and FF: a text file has next to none, binary data ~11% of bytes.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class SourceError(BodyInvalid):
    """The file cannot be read at all: answered as 422 `import_unreadable`, nothing analysed."""

    code = "import_unreadable"
    title = "Import file unreadable"

    def __init__(self, detail: str) -> None:
        super().__init__([FieldError("file", detail)])
        self.detail = detail
        self.args = (detail,)


class SourceRow(msgspec.Struct, frozen=True):
    """One record: its physical 1-based line and its cells, or why it could not be read."""

    line: int
    cells: tuple[str, ...]
    error: str | None = None  # "line_too_long" / "field_too_large" / "malformed_row": no cells


class SourceInfo(msgspec.Struct, frozen=True):
    format: Format
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


def open_source(
    data: bytes, *, filename: str | None, content_type: str | None
) -> tuple[SourceInfo, Iterator[SourceRow]]:
    """The file's format and an iterator over its non-blank rows; raises SourceError."""
    kind = _spreadsheet_kind(data)
    if kind is not None:
        return _open_spreadsheet(data, kind)
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise SourceError(f"the file is {what}, not a spreadsheet or a text file")
    fmt: Format = "csv" if _is_csv_name(filename, content_type) else "text"
    encoding, text_start = _detect_encoding(data)
    sample = _decoded_sample(data, encoding, text_start)
    if not sample.strip():
        raise SourceError("the file is empty")
    if encoding != "utf-16" and _looks_like_utf16(data):
        raise SourceError("the file is UTF-16 text without a byte order mark: save it as UTF-8")
    if "\x00" in sample or len(_CONTROLS.findall(sample)) > max(2, len(sample) // 200):
        raise SourceError("the file holds binary data, not text: is it a spreadsheet or image?")
    delimiter = sniff_delimiter(sample)
    info = SourceInfo(format=fmt, encoding=encoding, delimiter=delimiter)
    return info, _text_rows(data, encoding, text_start, delimiter or ";")


# -- format -----------------------------------------------------------------------------------


def _spreadsheet_kind(data: bytes) -> Format | None:
    if data.startswith(_ZIP):
        return "ods" if data[30 : 30 + len(_ODS_MIMETYPE)] == _ODS_MIMETYPE else "xlsx"
    if data.startswith(_OLE2):
        return "xls"
    return None


def _is_csv_name(filename: str | None, content_type: str | None) -> bool:
    name = (filename or "").lower()
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return name.endswith((".csv", ".tsv")) or media in ("text/csv", "text/tab-separated-values")


# -- text -------------------------------------------------------------------------------------


def _detect_encoding(data: bytes) -> tuple[str, int]:
    """The codec and where the text starts (after a BOM); UTF-8, then 1252, then Latin-1."""
    if data.startswith(codecs.BOM_UTF8):
        if _decodes(data, "utf-8", 3):
            return "utf-8-sig", 3
        raise SourceError("the file starts as UTF-8 (a BOM) but is not valid UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        if _decodes(data, "utf-16", 0):
            return "utf-16", 0
        raise SourceError("the file starts as UTF-16 (a BOM) but is not valid UTF-16")
    for encoding in ("utf-8", "cp1252"):
        if _decodes(data, encoding, 0):
            return encoding, 0
    return "latin-1", 0


def _decodes(data: bytes, encoding: str, start: int) -> bool:
    """Whether all of `data` decodes, checked chunk by chunk without keeping the text."""
    decoder = codecs.getincrementaldecoder(encoding)()
    view = memoryview(data)
    try:
        for offset in range(start, len(data), _DECODE_CHUNK):
            decoder.decode(view[offset : offset + _DECODE_CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_utf16(data: bytes) -> bool:
    """ASCII-heavy UTF-16 has a NUL in every other byte (the high byte of each character)."""
    head = data[:_SNIFF_CHARS]
    if len(head) < 4 or b"\x00" not in head:
        return False
    return head[1::2].count(0) * 10 >= len(head) * 4 or head[0::2].count(0) * 10 >= len(head) * 4


def _decoded_sample(data: bytes, encoding: str, start: int) -> str:
    decoder = codecs.getincrementaldecoder(encoding)()
    # UTF-16 needs twice the bytes for as many characters.
    return decoder.decode(data[start : start + 2 * _SNIFF_CHARS])[:_SNIFF_CHARS]


def sniff_delimiter(sample: str) -> str | None:
    """The delimiter giving the most consistent column counts over the sample's first records.

    A delimiter scores the records it splits into its most common count (above 1), less those
    it splits into another count; records it leaves whole are neutral (a pasted `email` line
    among `email;quantity` ones). None when no candidate splits any record.
    """
    lines = list(io.StringIO(sample, newline=""))  # split as the reader splits: CR, LF, CRLF
    if len(sample) >= _SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]  # the sample cut the last line
    best: tuple[int, str] | None = None
    for delimiter in DELIMITERS:
        counts = Counter(
            len(record) for record in _sniff_records(lines, delimiter) if len(record) > 1
        )
        if not counts:
            continue
        _, hits = counts.most_common(1)[0]
        score = hits - (counts.total() - hits)
        if best is None or score > best[0]:
            best = (score, delimiter)
    return best[1] if best else None


def _sniff_records(lines: list[str], delimiter: str) -> Iterator[list[str]]:
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    for _ in range(_SNIFF_RECORDS):
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error:
            continue
        while record and not record[-1].strip():
            record.pop()
        if record:
            yield record


class _Lines:
    """The text's physical lines for the csv reader, each cut at MAX_LINE_CHARS.

    It numbers the lines, remembers the ones it cut, where the current record started and
    whether that record is inside quotes, so that after a record the csv module refused (a field
    over its limit) the rest of that quoted field is skipped rather than read as rows.
    """

    def __init__(self, stream: io.TextIOBase) -> None:
        self._stream = stream
        self.number = 0  # lines read so far
        self.cut: set[int] = set()
        self.start = 0  # the current record's first line, 0 before it has one
        self.in_quotes = False
        self.skip_quoted = False

    def begin_record(self) -> None:
        self.start = 0
        self.in_quotes = False

    def __iter__(self) -> Iterator[str]:
        readline = self._stream.readline
        while line := readline(MAX_LINE_CHARS):
            self.number += 1
            if len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
                self.cut.add(self.number)
                while (rest := readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
                    pass
                line = "\n"  # the record is reported, the line's cells are not kept
            odd = '"' in line and line.count('"') % 2 == 1
            if self.skip_quoted:  # the rest of a refused quoted field, up to its closing quote
                self.skip_quoted = not odd
                continue
            if not self.start:
                self.start = self.number
            self.in_quotes ^= odd
            yield line


def _text_rows(data: bytes, encoding: str, start: int, delimiter: str) -> Iterator[SourceRow]:
    stream = io.TextIOWrapper(io.BytesIO(data[start:]), encoding=encoding, newline="")
    lines = _Lines(stream)
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    while True:
        lines.begin_record()
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            lines.skip_quoted = lines.in_quotes
            reason = "field_too_large" if "field limit" in str(exc) else "malformed_row"
            yield SourceRow(lines.start or lines.number, (), reason)
            continue
        first = lines.start
        if lines.cut and not lines.cut.isdisjoint(range(first, lines.number + 1)):
            yield SourceRow(first, (), "line_too_long")
            continue
        while record and not record[-1].strip():
            record.pop()
        if record and (len(record) > 1 or record[0].strip()):
            yield SourceRow(first, tuple(record))


# -- spreadsheets -----------------------------------------------------------------------------


def _open_spreadsheet(data: bytes, kind: Format) -> tuple[SourceInfo, Iterator[SourceRow]]:
    """The first sheet's rows, read by calamine in a child process with bounded memory.

    calamine builds a sheet as a dense table from its first to its last cell, so a 5 KB XLSX
    with one cell at XFD1048576 asks for 512 GiB and aborts the process: the whole server, if
    it ran here. The child has SHEET_MEMORY of address space and SHEET_SECONDS of CPU time;
    whatever kills it becomes a SourceError.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", "server.imports.sources"],
            input=data,
            capture_output=True,
            timeout=SHEET_SECONDS * 2,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SourceError(f"the {kind.upper()} file took too long to read") from None
    if done.returncode != 0:
        if b"memory allocation" in done.stderr or b"MemoryError" in done.stderr:
            raise SourceError(
                f"the {kind.upper()} sheet spans too many cells to be read: are there stray "
                "cells far below or right of the data?"
            )
        raise SourceError(f"the file looks like {kind.upper()} but cannot be read")
    answer = _SheetAnswer(**msgspec.msgpack.decode(done.stdout))
    if answer.error is not None:
        raise SourceError(f"the file looks like {kind.upper()} but cannot be read: {answer.error}")
    info = SourceInfo(format=kind, sheet=answer.sheet)
    return info, (SourceRow(line, tuple(cells)) for line, cells in answer.rows)


class _SheetAnswer(msgspec.Struct, frozen=True):
    sheet: str | None = None
    rows: list[tuple[int, list[str]]] = []  # (line, cells); decoded untyped: 3 times as fast
    error: str | None = None


def _read_sheet(data: bytes) -> _SheetAnswer:
    """The child's work: the first sheet's non-blank rows as text, with their row numbers.

    Leading empty rows are counted (lines stay the sheet's row numbers); leading empty columns
    are skipped, so column 1 is the first column holding anything.
    """
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            return _SheetAnswer(error="the spreadsheet has no sheet")
        sheet = workbook.get_sheet_by_index(0)
        first_row = sheet.start[0] if sheet.start else 0
        values = sheet.to_python(skip_empty_area=True)
    except Exception as exc:  # calamine raises its own errors, ZipError, ValueError, ...
        return _SheetAnswer(error=str(exc)[:200] or type(exc).__name__)
    rows = []
    for index, row in enumerate(values, start=first_row + 1):
        cells = [value if type(value) is str else _cell_text(value) for value in row]
        while cells and not cells[-1].strip():
            cells.pop()
        if cells:
            rows.append((index, cells))
    return _SheetAnswer(sheet=sheet.name, rows=rows)


def _sheet_child() -> None:
    """`python -m server.imports.sources`: read the workbook on stdin, answer on stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (SHEET_MEMORY, SHEET_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (SHEET_SECONDS, SHEET_SECONDS))
    answer = _read_sheet(sys.stdin.buffer.read())
    sys.stdout.buffer.write(msgspec.msgpack.encode(answer))


def _cell_text(value: object) -> str:
    """A spreadsheet cell as the organiser sees it: 3.0 is `3`, a date is ISO 8601."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return "" if value is None else str(value)


if __name__ == "__main__":
    _sheet_child()
