"""The sample files of docs/samples/ read as the guests they hold, in every format.

guests.xls is a real XLS (BIFF8) file, converted from guests.xlsx by LibreOffice with
docs/samples/make_samples.py: the old binary format is read by the same reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.imports.analyze import analyze_source

SAMPLES = Path(__file__).resolve().parents[3] / "docs" / "samples"
GUESTS = [
    ("anne.dupont@example.ch", "fr", "Anne Dupont", {"company": "Atelier Lumière"}),
    ("jurg.mueller@example.de", "de", "Jürg Müller", {"company": "Müller & Söhne"}),
    ("zoe@bücher.example", "en", "Zoë O'Brien", {}),
    ("marc.favre@example.org", "fr", "Marc Favre", {"company": "Café du Théâtre"}),
    ("lea.keller@example.com", "de", "Léa Keller", {"company": "Keller, Frey & Cie"}),
]


@pytest.mark.parametrize(
    ("name", "fmt", "encoding"),
    [
        ("guests.csv", "csv", "utf-8"),
        ("guests-windows-1252.csv", "csv", "cp1252"),
        ("guests.xlsx", "xlsx", None),
        ("guests.xls", "xls", None),
    ],
)
def test_each_sample_holds_the_same_five_guests(name, fmt, encoding):
    data = (SAMPLES / name).read_bytes()
    analysis = analyze_source(data, filename=name, content_type=None, options_digest_part="")
    assert (analysis.info.format, analysis.info.encoding) == (fmt, encoding)
    assert analysis.header == ("email", "language", "name", "company")
    assert analysis.problems == []
    assert [(e.email, e.language, e.name, e.attributes) for e in analysis.entries] == GUESTS
    assert [e.line for e in analysis.entries] == [2, 3, 4, 5, 6]


def test_the_pasted_lines_sample_keeps_repeats_and_quantities():
    data = (SAMPLES / "pasted-lines.txt").read_bytes()
    analysis = analyze_source(
        data, filename=None, content_type="text/plain", options_digest_part=""
    )
    assert [(e.email, e.quantity) for e in analysis.entries] == [
        ("anne.dupont@example.ch", 1),
        ("jurg.mueller@example.de", 2),
        ("presse@example.org", 3),
        ("anne.dupont@example.ch", 1),
    ]


@pytest.mark.parametrize("name", ["invitations.xlsx", "invitations.xls"])
def test_a_spreadsheet_of_email_and_quantity_without_header_keeps_its_row_numbers(name):
    data = (SAMPLES / name).read_bytes()
    analysis = analyze_source(data, filename=name, content_type=None, options_digest_part="")
    assert analysis.header is None
    assert [(e.line, e.email, e.quantity) for e in analysis.entries] == [
        (1, "presse@example.org", 3),
        (2, "anne.dupont@example.ch", 1),
        (5, "vip@example.ch", 10),
    ]
