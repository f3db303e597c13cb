"""Rows into entries and problems: header, columns, addresses, languages, quantities, limits."""

from __future__ import annotations

import pytest

from server.imports.analyze import (
    Analysis,
    Entry,
    Problem,
    analyze_source,
    check_email,
    classify_duplicates,
    email_key,
    normalise_language,
)
from server.imports.sources import SourceError


def analyze(text: str | bytes, filename: str | None = "list.csv", options: str = "") -> Analysis:
    data = text.encode() if isinstance(text, str) else text
    return analyze_source(data, filename=filename, content_type=None, options_digest_part=options)


def pasted(text: str) -> Analysis:
    return analyze_source(
        text.encode(), filename=None, content_type="text/plain", options_digest_part=""
    )


def reasons(analysis: Analysis) -> list[tuple[int, int | None, str, str]]:
    return [(p.line, p.column, p.field, p.reason) for p in analysis.problems]


def test_a_semicolon_csv_with_a_header_gives_language_name_and_attributes():
    analysis = analyze(
        "E-Mail;Langue;Nom;Entreprise;Table\n"
        "anne@exemple.ch;FR;Anne Dupont;ACME;12\n"
        "\n"
        "carl@exemple.ch;Deutsch;;;\n"
    )
    assert analysis.header == ("E-Mail", "Langue", "Nom", "Entreprise", "Table")
    assert analysis.entries == [
        Entry(2, "anne@exemple.ch", "fr", 1, "Anne Dupont", {"Entreprise": "ACME", "Table": "12"}),
        Entry(4, "carl@exemple.ch", "de", 1, None, {}),
    ]
    assert (analysis.rows_read, analysis.invalid_rows, analysis.problems) == (2, 0, [])
    assert analysis.languages == {"de": 1, "fr": 1}


def test_pasted_email_and_quantity_lines_keep_repeated_addresses():
    analysis = pasted("mel@yahoo.fr\nami@exemple.ch;3\nmel@yahoo.fr;2\n")
    assert analysis.header is None
    assert [(e.line, e.email, e.quantity) for e in analysis.entries] == [
        (1, "mel@yahoo.fr", 1),
        (2, "ami@exemple.ch", 3),
        (3, "mel@yahoo.fr", 2),
    ]


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        ("0", "quantity_out_of_range"),
        ("-1", "not_an_integer"),
        ("abc", "not_an_integer"),
        ("1e9", "not_an_integer"),
        ("2.5", "not_an_integer"),
        ("1001", "quantity_out_of_range"),
        ("9" * 5000, "quantity_out_of_range"),
        ("٣", "not_an_integer"),
    ],
)
def test_bad_quantities_are_problems_on_their_line_and_column(quantity, reason):
    analysis = pasted(f"a@exemple.ch;2\nb@exemple.ch;{quantity}\nc@exemple.ch\n")
    assert [e.line for e in analysis.entries] == [1, 3]
    assert reasons(analysis) == [(2, 2, "quantity", reason)]
    assert analysis.problems[0].value == quantity[:100]


def test_quantity_limits_are_inclusive():
    analysis = pasted("a@exemple.ch;1\nb@exemple.ch;1000\nc@exemple.ch;007\n")
    assert [e.quantity for e in analysis.entries] == [1, 1000, 7]


def test_without_a_header_column_two_is_the_language_when_it_looks_like_one():
    analysis = analyze("a@exemple.ch;FR\nb@exemple.ch;en\nc@exemple.ch;xx\n")
    assert [e.language for e in analysis.entries] == ["fr", "en"]
    assert reasons(analysis) == [(3, 2, "language", "unknown_language")]


def test_without_a_header_three_columns_are_email_language_name():
    analysis = analyze("a@exemple.ch;fr;Anne;extra\n")
    assert analysis.entries == [Entry(1, "a@exemple.ch", "fr", 1, "Anne", {"column_4": "extra"})]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("FR", "fr"),
        ("fr-CH", "fr"),
        ("fr_ch", "fr"),
        ("Français", "fr"),
        ("EN", "en"),
        ("english", "en"),
        ("Deutsch", "de"),
        ("de-AT", "de"),
        ("allemand", "de"),
        ("it", None),
        ("", None),
    ],
)
def test_languages_are_normalised(value, expected):
    assert normalise_language(value) == expected


@pytest.mark.parametrize(
    "address",
    [
        "anne@exemple.ch",
        "anne.marie+tag@sub.exemple.co.uk",
        "jürgen@bücher.de",
        "jurgen@xn--bcher-kva.de",
        "用户@例子.广告",
        "δοκιμή@παράδειγμα.δοκιμή",
        "o'hara@exemple.ie",
        "x@" + "a" * 63 + ".ch",
    ],
)
def test_valid_and_internationalised_addresses(address):
    assert check_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plain",
        "@exemple.ch",
        "anne@",
        "anne@@exemple.ch",
        "anne@b@exemple.ch",
        "an ne@exemple.ch",
        "anne@exem ple.ch",
        "anne@exemple",
        ".anne@exemple.ch",
        "anne.@exemple.ch",
        "an..ne@exemple.ch",
        "anne@-exemple.ch",
        "anne@exemple-.ch",
        "anne@exemple..ch",
        "anne@xn--zz.ch",
        "anne@" + "a" * 64 + ".ch",
        "a" * 65 + "@exemple.ch",
        "x@" + ("a" * 60 + ".") * 5 + "ch",
        "an\x00ne@exemple.ch",
        "anne@exemple.ch\n",
        '"an ne"@exemple.ch',
        "anne@1.2.3.4",
        "anne@exemple.c_h",
    ],
)
def test_invalid_addresses(address):
    assert not check_email(address)


def test_email_keys_fold_case_and_normalise_the_domain():
    assert email_key("Jürgen@BÜCHER.de") == email_key("jürgen@xn--bcher-kva.de")
    assert email_key(" Anne@Exemple.CH ") == "anne@exemple.ch"
    assert email_key("not an address") == "not an address"


def test_invalid_addresses_and_names_are_reported_and_the_rest_is_kept():
    analysis = analyze(
        "email;name\n"
        "anne@exemple.ch;Anne\n"
        "nobody;Bob\n"
        ";No address\n"
        "carl@exemple.ch;" + "x" * 201 + "\n"
        "dora@exemple.ch;Do\x07ra\n"
    )
    assert [e.line for e in analysis.entries] == [2]
    assert reasons(analysis) == [
        (3, 1, "email", "invalid_email"),
        (4, 1, "email", "missing_email"),
        (5, 2, "name", "too_long"),
        (6, 2, "name", "control_characters"),
    ]
    assert analysis.problems[2].value == "x" * 100
    assert (analysis.rows_read, analysis.invalid_rows) == (5, 4)


def test_attribute_limits():
    analysis = analyze(
        "email;note;" + "n" * 65 + "\n"
        "a@exemple.ch;" + "v" * 1000 + "\n"
        "b@exemple.ch;" + "v" * 1001 + "\n"
        'c@exemple.ch;"line\r\nbreak"\n'
        "d@exemple.ch;tab\there\n"
    )
    assert reasons(analysis) == [
        (1, 3, "header", "too_long"),
        (3, 2, "note", "too_long"),
        (6, 2, "note", "control_characters"),  # the quoted line break spans 4-5
    ]
    assert [(e.line, e.attributes) for e in analysis.entries] == [
        (2, {"note": "v" * 1000}),
        (4, {"note": "line\nbreak"}),
    ]


def test_more_than_twenty_columns_in_the_header_is_unreadable():
    header = ";".join(["email", *(f"c{i}" for i in range(20))])
    with pytest.raises(SourceError, match="21 columns"):
        analyze(header + "\na@exemple.ch;x\n")


def test_a_row_of_more_than_twenty_columns_is_a_problem():
    analysis = analyze("a@exemple.ch;fr\nb@exemple.ch;" + ";".join(["x"] * 20) + "\n")
    assert reasons(analysis) == [(2, 21, "row", "too_many_columns")]


def test_rows_all_wider_than_twenty_columns_are_unreadable():
    with pytest.raises(SourceError, match="at most 20"):
        analyze(("a@exemple.ch;" + ";".join(["x"] * 25) + "\n") * 3)


def test_a_header_alone_is_unreadable():
    with pytest.raises(SourceError, match="header"):
        analyze("email;language;name\n\n")


def test_a_ten_megabyte_field_is_one_problem():
    analysis = analyze(b"email;note\na@exemple.ch;" + b"x" * (10 * 1024 * 1024) + b"\nb@e.ch;ok\n")
    assert reasons(analysis) == [(2, None, "row", "line_too_long")]
    assert [e.email for e in analysis.entries] == ["b@e.ch"]


def test_formula_cells_are_kept_as_data():
    analysis = analyze("email;name;note\na@exemple.ch;=1+1;@SUM(A1)\n")
    assert analysis.entries[0].name == "=1+1"
    assert analysis.entries[0].attributes == {"note": "@SUM(A1)"}


def test_the_digest_covers_the_bytes_and_the_options():
    first = analyze("a@exemple.ch\n", options="ticket_type=1")
    assert first.digest == analyze("a@exemple.ch\n", options="ticket_type=1").digest
    assert first.digest != analyze("a@exemple.ch\n", options="ticket_type=2").digest
    assert first.digest != analyze("b@exemple.ch\n", options="ticket_type=1").digest


def entries(*emails: str) -> list[Entry]:
    return [Entry(line, email, None, 1, None, {}) for line, email in enumerate(emails, start=1)]


def test_duplicates_of_existing_addresses_follow_the_policy():
    rows = entries("a@exemple.ch", "B@Exemple.ch")
    existing = {email_key("b@exemple.ch")}
    for policy, action in (("skip", "skip"), ("update", "update"), ("keep", "create")):
        decisions = classify_duplicates(rows, existing, policy, within_file_are_duplicates=False)
        assert [(d.action, d.duplicate_of) for d in decisions] == [
            ("create", None),
            (action, "existing"),
        ]


def test_repeated_addresses_in_the_file_are_duplicates_only_when_the_target_says_so():
    rows = entries("a@exemple.ch", "b@exemple.ch", "A@EXEMPLE.CH")
    invitations = classify_duplicates(rows, set(), "skip", within_file_are_duplicates=False)
    assert [d.action for d in invitations] == ["create", "create", "create"]
    contacts = classify_duplicates(rows, set(), "skip", within_file_are_duplicates=True)
    assert [(d.action, d.duplicate_of) for d in contacts] == [
        ("create", None),
        ("create", None),
        ("skip", 1),
    ]


def test_problem_values_are_cut_at_a_hundred_characters():
    analysis = pasted("x" * 500 + "\n")
    assert analysis.problems == [Problem(1, 1, "email", "invalid_email", "x" * 100)]


@pytest.mark.parametrize(
    "first",
    ["email;language", "E-Mail;Sprache", "Adresse électronique;Langue", "Courriel", "Mail;Nom",
     "Destinataire;Quantité", "EMAIL ADDRESS;NAME"],
)  # fmt: skip
def test_header_rows_are_recognised(first):
    analysis = analyze(first + "\na@exemple.ch\n")
    assert analysis.header is not None
    assert [e.line for e in analysis.entries] == [2]


@pytest.mark.parametrize("first", ["jean.gmail.com;fr", "jean;fr", "hotmail.fr", "a@b.ch;email"])
def test_a_bad_first_row_is_a_row_not_a_header(first):
    analysis = analyze(first + "\nb@exemple.ch;fr\n")
    assert analysis.header is None
    assert analysis.rows_read == 2


def test_a_cell_beyond_the_header_is_a_problem_since_it_has_no_name():
    analysis = analyze("email;name\na@exemple.ch;Anne;extra\n")
    assert reasons(analysis) == [(2, 3, "row", "unnamed_column")]
