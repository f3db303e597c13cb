"""Property tests of the source reader: any bytes are rows or a SourceError; CSV round trips.

Whatever a spreadsheet writes (any delimiter of the four, quotes, line breaks inside fields,
CRLF or LF, UTF-8 with or without BOM, Windows-1252) is read back as the same cells on the
physical line where each record starts.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.imports.analyze import analyze_source
from server.imports.sources import DELIMITERS, SourceError, open_source

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Windows-1252 letters that are UTF-8 lead bytes only: a text of them never passes for UTF-8.
_CP1252_LETTERS = "éèàçüöäßÉÀÇÜ"


def _read(data: bytes):
    info, rows = open_source(data, filename="x.csv", content_type=None)
    return info, list(rows)


@SETTINGS
@given(st.binary(max_size=2000))
def test_any_bytes_are_rows_or_a_source_error(data):
    with contextlib.suppress(SourceError):
        analyze_source(data, filename="x.csv", content_type=None, options_digest_part="")


@SETTINGS
@given(st.binary(max_size=500), st.sampled_from([b"", b"\xef\xbb\xbf"]))
def test_a_valid_file_with_trailing_or_leading_garbage_never_crashes(garbage, prefix):
    data = prefix + b"email;language\r\na@exemple.ch;fr\r\n" + garbage
    try:
        analysis = analyze_source(data, filename=None, content_type=None, options_digest_part="")
    except SourceError:
        return
    assert analysis.rows_read >= 0


@settings(max_examples=10, deadline=None)  # each example starts the spreadsheet reader
@given(
    st.binary(max_size=500), st.sampled_from([b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"])
)
def test_spreadsheet_magic_followed_by_garbage_is_a_source_error(garbage, magic):
    with contextlib.suppress(SourceError):
        analyze_source(magic + garbage, filename=None, content_type=None, options_digest_part="")


def _cell(alphabet: str) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=1, max_size=12)


@st.composite
def csv_files(draw):
    delimiter = draw(st.sampled_from(DELIMITERS))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    letters = "abcXYZ09 @." + (_CP1252_LETTERS if encoding == "cp1252" else "éüœ€😀ß")
    alphabet = letters + '"\n\r' + delimiter  # the delimiter in a cell is quoted
    width = draw(st.integers(2, 6))
    count = draw(st.integers(1, 12))
    rows = [
        [*draw(st.lists(_cell(alphabet), min_size=width - 1, max_size=width - 1)),
         draw(_cell(letters).filter(str.strip))]
        for _ in range(count)
    ]  # fmt: skip
    terminator = draw(st.sampled_from(["\r\n", "\n"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    blank_after = draw(st.sets(st.integers(0, count - 1)))
    return delimiter, encoding, terminator, quoting, rows, blank_after


@SETTINGS
@given(csv_files())
def test_what_a_spreadsheet_writes_is_read_back_on_its_physical_lines(case):
    delimiter, encoding, terminator, quoting, rows, blank_after = case
    text, expected, line = io.StringIO(), [], 1
    for index, row in enumerate(rows):
        record = io.StringIO()
        # Python's writer leaves a lone CR unquoted when lines end in LF (Excel quotes it);
        # the reader takes a lone CR for a line break, as old Mac files have them.
        quote = csv.QUOTE_ALL if any("\r" in cell for cell in row) else quoting
        writer = csv.writer(record, delimiter=delimiter, lineterminator=terminator, quoting=quote)
        writer.writerow(row)
        expected.append((line, tuple(row)))
        line += len(_LINE_BREAK.findall(record.getvalue()))
        text.write(record.getvalue())
        if index in blank_after:
            text.write(terminator)
            line += 1
    info, read = _read(text.getvalue().encode(encoding))
    assert info.delimiter == delimiter
    assert [(r.line, r.cells) for r in read] == expected
    if encoding == "cp1252" and not text.getvalue().isascii():
        assert info.encoding == "cp1252"


@SETTINGS
@given(st.lists(st.emails(), min_size=1, max_size=20), st.sampled_from(["\n", "\r\n", "\r"]))
def test_pasted_addresses_are_entries_on_their_lines(addresses, terminator):
    data = terminator.join(addresses).encode()
    analysis = analyze_source(
        data, filename=None, content_type="text/plain", options_digest_part=""
    )
    read = {e.line: e.email for e in analysis.entries}
    problems = {p.line for p in analysis.problems}
    assert set(read) | problems == set(range(1, len(addresses) + 1))
    assert all(read[line] == addresses[line - 1] for line in read)
