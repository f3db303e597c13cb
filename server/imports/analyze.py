"""Turn a source's rows into import entries and a per-line report: pure, nothing is written.

Rules (ARCHITECTURE §7, issue 15), in the order they are applied:
- The first row is a header when its first cell is no address but names one (`email`,
  `E-Mail`, `adresse`, `courriel`...), or when no cell holds an `@` and one names a known
  column. A header of more than 20 columns is a SourceError; so is a header with no row after.
- Column 1 is the address. The other columns are chosen by their header name: language
  (`language`, `langue`, `Sprache`...), name (`name`, `nom`, `affichage`...), quantity
  (`quantity`, `quantité`, `qty`, `Anzahl`...); any other named column is an attribute (at most
  64 characters of name). Column 2 with an unknown header name is the language when its values
  look like languages.
- Without a header, column 2 is the quantity when its first values look like numbers, else
  the language when they look like languages, else the quantity for two columns (`email;3`,
  pasted lines) and the language for more; column 3 is the name; further columns are
  attributes `column_4`, `column_5`...
- Each cell is stripped. Address: one `@`, non-empty parts, local part without spaces, controls
  or `"(),:;<>[\\]`, dots not leading, trailing or doubled, at most 64 octets; the domain's
  labels valid after IDNA (UTS 46, so `bücher.ch` and `xn--bcher-kva.ch` both are); at most
  320 characters. Language: fr, en or de, from `FR`, `fr-CH`, `Deutsch`, `anglais`... (empty is
  none). Quantity: digits only, 1 to 1,000 (empty is 1). Name: at most 200 characters, no control
  characters. Attribute values: at most 1,000 characters, no control characters but line breaks.
- A row with any problem is invalid: each problem is reported on its 1-based physical line and
  column, with the value cut at 100 characters. Valid rows become `Entry`s in file order.
  Repeated addresses are kept: whether they are duplicates is the target's decision
  (`classify_duplicates`), since only the target knows what exists already.
- Formula-looking cells (`=1+1`) are data: the guard is applied when exporting (server/exports).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain, islice
from typing import Literal

import idna
import msgspec

from server.imports.sources import MAX_COLUMNS, SourceError, SourceInfo, SourceRow, open_source

__all__ = [
    "MAX_ATTRIBUTE_NAME",
    "MAX_ATTRIBUTE_VALUE",
    "MAX_NAME",
    "MAX_QUANTITY",
    "REPORT_COLUMNS",
    "Analysis",
    "Decision",
    "Duplicates",
    "Entry",
    "OnError",
    "Problem",
    "Reason",
    "analyze_source",
    "check_email",
    "classify_duplicates",
    "email_key",
    "normalise_language",
]

Duplicates = Literal["keep", "skip", "update"]
OnError = Literal["reject_all", "skip_invalid"]
Action = Literal["create", "skip", "update"]

MAX_QUANTITY = 1000
MAX_NAME = 200
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_VALUE = 1000
MAX_EMAIL = 320
_MAX_LOCAL_OCTETS = 64
_PROBLEM_VALUE_CHARS = 100
_SAMPLE_ROWS = 100
# The last two columns of a report CSV (server/imports/report_csv.py): ignored when the fixed
# file is imported again, so they do not become attributes.
REPORT_COLUMNS = ("line", "reason")
_ANALYZER_VERSION = b"tessera-import-1"


class Reason(StrEnum):
    """Why a cell or row is refused: stable codes, shown with the line and column."""

    MISSING_EMAIL = "missing_email"
    INVALID_EMAIL = "invalid_email"
    UNKNOWN_LANGUAGE = "unknown_language"
    NOT_AN_INTEGER = "not_an_integer"
    QUANTITY_OUT_OF_RANGE = "quantity_out_of_range"
    TOO_LONG = "too_long"
    CONTROL_CHARACTERS = "control_characters"
    TOO_MANY_COLUMNS = "too_many_columns"
    UNNAMED_COLUMN = "unnamed_column"
    LINE_TOO_LONG = "line_too_long"
    FIELD_TOO_LARGE = "field_too_large"
    MALFORMED_ROW = "malformed_row"


class Entry(msgspec.Struct, frozen=True):
    """A valid row: the address as typed (compare with `email_key`), 1 <= quantity <= 1,000.

    A frozen msgspec Struct rather than a dataclass: a frozen dataclass takes four times as
    long to build, which is a third of the analysis of a large file.
    """

    line: int
    email: str
    language: str | None
    quantity: int
    name: str | None
    attributes: dict[str, str]


@dataclass(slots=True)
class Problem:
    line: int
    column: int | None  # 1-based; None for the whole row
    field: str  # "email", "language", "quantity", "name", an attribute's name, "row", "header"
    reason: str
    value: str  # the offending value, cut at 100 characters


@dataclass
class Analysis:
    info: SourceInfo
    header: tuple[str, ...] | None
    entries: list[Entry]
    problems: list[Problem]
    rows_read: int  # data rows, valid or not (header and blank lines excluded)
    invalid_rows: int
    languages: dict[str, int]
    digest: str
    columns: tuple[str, ...] = ()  # what each column holds: the header, or "email", "quantity"...
    header_line: int | None = None


class Decision(msgspec.Struct, frozen=True):
    entry: Entry
    action: Action
    duplicate_of: int | Literal["existing"] | None  # first line with the address, or "existing"


# -- addresses --------------------------------------------------------------------------------

# Plain ASCII addresses match the first pattern (fast: small classes); others the second.
_ASCII_ADDRESS = re.compile(r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+)@([A-Za-z0-9.-]+)")
_ADDRESS = re.compile(r'([^\s@"(),:;<>\[\\\]\x00-\x1f\x7f-\x9f]+)@([^\s@\x00-\x1f\x7f-\x9f]+)')
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_ASCII_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+(?!-)[a-z][a-z0-9-]{{0,62}}(?<!-)", re.IGNORECASE)
_domains: dict[str, str | None] = {}  # domain as typed -> A-label form, or None when invalid
_DOMAIN_CACHE = 100_000


def _domain_key(domain: str) -> str | None:
    """The domain in lower-case A-label (punycode) form, or None when it is no valid domain."""
    known = _domains.get(domain, False)
    if known is not False:
        return known  # type: ignore[return-value]
    result = _idna_domain(domain)
    if len(_domains) >= _DOMAIN_CACHE:
        _domains.clear()
    _domains[domain] = result
    return result


def _idna_domain(domain: str) -> str | None:
    if domain.isascii() and "xn--" not in domain.lower():
        ascii_form = domain.lower()
    else:
        try:
            ascii_form = idna.encode(domain, uts46=True).decode("ascii").lower()
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    if len(ascii_form) > 253 or not _ASCII_DOMAIN.fullmatch(ascii_form):
        return None
    return ascii_form


def check_email(email: str) -> bool:
    """Whether `email` (already stripped) is an address Tessera can send to."""
    match = _ASCII_ADDRESS.fullmatch(email) or _ADDRESS.fullmatch(email)
    if match is None or len(email) > MAX_EMAIL:
        return False
    local, domain = match.groups()
    if local[0] == "." or local[-1] == "." or ".." in local or len(local) > _MAX_LOCAL_OCTETS:
        return False
    if not local.isascii() and len(local.encode("utf-8")) > _MAX_LOCAL_OCTETS:
        return False
    return _domain_key(domain) is not None


def email_key(email: str) -> str:
    """The address compared for duplicates: case-folded, its domain IDNA-normalised."""
    local, at, domain = email.strip().rpartition("@")
    if not at:
        return email.strip().casefold()
    return f"{local.casefold()}@{_domain_key(domain) or domain.casefold()}"


# -- languages and header words ---------------------------------------------------------------

_LANGUAGE_WORDS = {
    "fr": "fr", "fra": "fr", "fre": "fr", "french": "fr", "francais": "fr", "franzosisch": "fr",
    "frances": "fr", "francese": "fr",
    "en": "en", "eng": "en", "english": "en", "anglais": "en", "englisch": "en", "ingles": "en",
    "inglese": "en",
    "de": "de", "deu": "de", "ger": "de", "german": "de", "deutsch": "de", "allemand": "de",
    "aleman": "de", "tedesco": "de",
}  # fmt: skip
_EMAIL_HINTS = ("mail", "courriel", "adresse", "address", "adresa")
_LANGUAGE_HEADERS = {"language", "langue", "lang", "sprache", "idioma", "lingua", "locale"}
_NAME_HEADERS = {
    "name", "nom", "fullname", "nomcomplet", "displayname", "affichage", "nomaffiche",
    "anzeigename", "vollername", "nomprenom", "prenomnom", "nometprenom", "guest", "invite",
}  # fmt: skip
_QUANTITY_HEADERS = {
    "quantity", "quantite", "qty", "qte", "anzahl", "menge", "nombre", "nb", "count",
    "invitations", "places", "tickets", "billets",
}  # fmt: skip
_KNOWN_HEADERS = _LANGUAGE_HEADERS | _NAME_HEADERS | _QUANTITY_HEADERS
_NOT_LETTERS = re.compile(r"[^a-z]")
_languages: dict[str, str | None] = {}


def _word(text: str) -> str:
    """`Quantité ` -> `quantite`, `E-Mail` -> `email`: header names compared loosely."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _NOT_LETTERS.sub("", decomposed)


def normalise_language(value: str) -> str | None:
    """`FR`, `fr-CH`, `Deutsch`, `anglais` -> fr/de/en; None when it names no known language."""
    known = _languages.get(value, False)
    if known is not False:
        return known  # type: ignore[return-value]
    base = re.split(r"[-_ ]", value.strip(), maxsplit=1)[0]
    result = _LANGUAGE_WORDS.get(_word(base)) or _LANGUAGE_WORDS.get(_word(value))
    if len(_languages) < 10_000:
        _languages[value] = result
    return result


def _is_email_word(cell: str) -> bool:
    """`E-Mail`, `Adresse électronique`, `Courriel`; not `jean.mail.ch`, a typo for an address."""
    if "." in cell or len(cell) > 60:
        return False
    word = _word(cell)
    return any(hint in word for hint in _EMAIL_HINTS)


def _is_header(cells: tuple[str, ...]) -> bool:
    if not cells or "@" in cells[0]:
        return False
    if _is_email_word(cells[0]):
        return True
    return not any("@" in cell for cell in cells) and any(
        _word(cell) in _KNOWN_HEADERS for cell in cells
    )


# -- layout -----------------------------------------------------------------------------------


@dataclass
class _Layout:
    """Which column holds what (0-based indexes), decided once from the header or a sample."""

    language: int | None = None
    quantity: int | None = None
    name: int | None = None
    attributes: dict[int, str] = field(default_factory=dict)
    ignored: tuple[int, ...] = ()  # a report CSV's own `line` and `reason` columns
    roles: frozenset[int] = frozenset()  # the email, language, quantity and name columns
    first_other: int = 1  # rows no wider than this have no attribute or unexpected cell

    def finish(self) -> _Layout:
        named = (0, self.language, self.quantity, self.name, *self.ignored)
        self.roles = frozenset(index for index in named if index is not None)
        self.first_other = next(i for i in range(MAX_COLUMNS + 2) if i not in self.roles)
        return self

    def column_names(self, width: int) -> tuple[str, ...]:
        """What each of the first `width` columns holds, as a header naming it would say."""
        names = {0: "email", self.language: "language", self.quantity: "quantity"}
        names |= {self.name: "name", **self.attributes}
        return tuple(str(names.get(i) or f"column_{i + 1}") for i in range(width))


def _layout_from_header(
    header: SourceRow, sample: list[SourceRow]
) -> tuple[_Layout, list[Problem]]:
    layout, problems = _Layout(), []
    taken: set[str] = set()
    cells = header.cells
    if len(cells) > 2 and tuple(c.strip() for c in cells[-2:]) == REPORT_COLUMNS:
        layout.ignored = (len(cells) - 2, len(cells) - 1)
        cells = cells[:-2]
    for index, raw in enumerate(cells[1:], start=1):
        title, word = raw.strip(), _word(raw)
        if word in _LANGUAGE_HEADERS and layout.language is None:
            layout.language = index
        elif word in _QUANTITY_HEADERS and layout.quantity is None:
            layout.quantity = index
        elif word in _NAME_HEADERS and layout.name is None:
            layout.name = index
        elif index == 1 and _looks_like(sample, 1, _is_language):
            layout.language = index
        elif not title:
            problems.append(_problem(header.line, index, "header", Reason.UNNAMED_COLUMN, raw))
        elif len(title) > MAX_ATTRIBUTE_NAME:
            problems.append(_problem(header.line, index, "header", Reason.TOO_LONG, raw))
        else:
            name = title if title not in taken else f"{title}_{index + 1}"
            taken.add(name)
            layout.attributes[index] = name
    return layout.finish(), problems


def _layout_without_header(sample: list[SourceRow]) -> _Layout:
    """Column 2 as its values suggest (the pasted form `email;quantity` when unsure), then name."""
    widest = _widest(sample)
    layout = _Layout(name=2)
    if _looks_like(sample, 1, _is_number):
        layout.quantity = 1
    elif _looks_like(sample, 1, _is_language) or widest > 2:
        layout.language = 1
    else:
        layout.quantity = 1
    layout.attributes = {index: f"column_{index + 1}" for index in range(3, MAX_COLUMNS)}
    return layout.finish()


_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d*)?(?:[eE][-+]?\d+)?")


def _is_number(value: str) -> bool:
    return _NUMBER.fullmatch(value) is not None


def _is_language(value: str) -> bool:
    return normalise_language(value) is not None


def _looks_like(sample: list[SourceRow], index: int, test: Callable[[str], bool]) -> bool:
    """Whether most non-empty values of column `index` in the sample pass `test`."""
    values = [row.cells[index].strip() for row in sample if len(row.cells) > index]
    values = [value for value in values if value]
    passing = sum(1 for value in values if test(value))
    return bool(values) and passing * 2 > len(values)


# -- rows -------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_SOURCE_REASONS = {
    "line_too_long": Reason.LINE_TOO_LONG,
    "field_too_large": Reason.FIELD_TOO_LARGE,
    "malformed_row": Reason.MALFORMED_ROW,
}


def _problem(line: int, index: int | None, name: str, reason: str, value: str) -> Problem:
    column = None if index is None else index + 1
    return Problem(line, column, name, str(reason), value[:_PROBLEM_VALUE_CHARS])


def _read_row(row: SourceRow, layout: _Layout, problems: list[Problem]) -> Entry | None:
    """The row's entry, or None after adding its problems to `problems`.

    Written for speed (a 100,000-row file is read in about a second): each optional column is
    looked at only when the row has it, and each helper runs only on a non-empty value.
    """
    line, cells = row.line, row.cells
    if row.error is not None:
        problems.append(_problem(line, None, "row", _SOURCE_REASONS[row.error], ""))
        return None
    width = len(cells)
    if width > MAX_COLUMNS:
        value = cells[MAX_COLUMNS]
        problems.append(_problem(line, MAX_COLUMNS, "row", Reason.TOO_MANY_COLUMNS, value))
        return None
    before = len(problems)
    email = cells[0].strip()
    if not email:
        problems.append(_problem(line, 0, "email", Reason.MISSING_EMAIL, ""))
    elif not check_email(email):
        problems.append(_problem(line, 0, "email", Reason.INVALID_EMAIL, email))
    language = name = None
    quantity = 1
    index = layout.language
    if index is not None and index < width and (value := cells[index].strip()):
        language = _language(line, index, value, problems)
    index = layout.quantity
    if index is not None and index < width and (value := cells[index].strip()):
        quantity = _quantity(line, index, value, problems)
    index = layout.name
    if index is not None and index < width and (value := cells[index].strip()):
        name = _name(line, index, value, problems)
    attributes = _attributes(line, cells, layout, problems) if width > layout.first_other else {}
    if len(problems) > before:
        return None
    return Entry(line, email, language, quantity, name, attributes)


def _language(line: int, index: int, value: str, out: list[Problem]) -> str | None:
    language = normalise_language(value)
    if language is None:
        out.append(_problem(line, index, "language", Reason.UNKNOWN_LANGUAGE, value))
    return language


def _quantity(line: int, index: int, value: str, out: list[Problem]) -> int:
    if not (value.isascii() and value.isdigit()):
        out.append(_problem(line, index, "quantity", Reason.NOT_AN_INTEGER, value))
        return 1
    digits = value.lstrip("0")
    if not digits or len(digits) > 4 or int(digits) > MAX_QUANTITY:
        out.append(_problem(line, index, "quantity", Reason.QUANTITY_OUT_OF_RANGE, value))
        return 1
    return int(digits)


def _name(line: int, index: int, value: str, out: list[Problem]) -> str:
    if len(value) > MAX_NAME:
        out.append(_problem(line, index, "name", Reason.TOO_LONG, value))
    elif _CONTROL.search(value):
        out.append(_problem(line, index, "name", Reason.CONTROL_CHARACTERS, value))
    return value


def _attributes(
    line: int, cells: tuple[str, ...], layout: _Layout, out: list[Problem]
) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for index in range(1, len(cells)):
        name = layout.attributes.get(index)
        if name is None:
            if index in layout.roles:
                continue
            if cells[index].strip():
                out.append(_problem(line, index, "row", Reason.UNNAMED_COLUMN, cells[index]))
            continue
        value = cells[index].strip()
        if not value:
            continue
        if "\r" in value:
            value = value.replace("\r\n", "\n")
        if len(value) > MAX_ATTRIBUTE_VALUE:
            out.append(_problem(line, index, name, Reason.TOO_LONG, value))
        elif _CONTROL_BUT_NEWLINE.search(value):
            out.append(_problem(line, index, name, Reason.CONTROL_CHARACTERS, value))
        else:
            attributes[name] = value
    return attributes


# -- the analysis -----------------------------------------------------------------------------


def analyze_source(
    data: bytes, *, filename: str | None, content_type: str | None, options_digest_part: str
) -> Analysis:
    """Read and check every row of `data`; raises SourceError when it cannot be read at all.

    `options_digest_part` is whatever else shapes the result (the target's options, in a fixed
    order): it enters `digest`, so a commit can check it applies what was analysed.
    """
    info, rows = open_source(data, filename=filename, content_type=content_type)
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise SourceError("the file has no rows")
    header: SourceRow | None = first if first.error is None and _is_header(first.cells) else None
    if header is None:
        rows = chain([first], rows)
    sample = list(islice(rows, _SAMPLE_ROWS))
    problems: list[Problem] = []
    if header is not None:
        if len(header.cells) > MAX_COLUMNS:
            raise SourceError(f"the header has {len(header.cells)} columns; at most {MAX_COLUMNS}")
        if not sample:
            raise SourceError(f"the file has a header (line {header.line}) but no rows")
        layout, problems = _layout_from_header(header, sample)
    else:
        if all(len(row.cells) > MAX_COLUMNS for row in sample):
            widest = max(len(row.cells) for row in sample)
            raise SourceError(f"the rows have {widest} columns; at most {MAX_COLUMNS}")
        layout = _layout_without_header(sample)
    entries, rows_read, invalid = _read_rows(chain(sample, rows), layout, problems)
    return Analysis(
        info=info,
        header=header.cells if header else None,
        entries=entries,
        problems=problems,
        rows_read=rows_read,
        invalid_rows=invalid,
        languages=_count_languages(entries),
        digest=_digest(data, options_digest_part),
        columns=_columns(header, layout, sample),
        header_line=header.line if header else None,
    )


def _columns(header: SourceRow | None, layout: _Layout, sample: list[SourceRow]) -> tuple[str, ...]:
    if header is None:
        return layout.column_names(_widest(sample))
    cells = tuple(cell.strip() for cell in header.cells)
    return cells[: -len(REPORT_COLUMNS)] if layout.ignored else cells


def _widest(rows: list[SourceRow]) -> int:
    return max((len(row.cells) for row in rows), default=1)


def _read_rows(
    rows: Iterable[SourceRow], layout: _Layout, problems: list[Problem]
) -> tuple[list[Entry], int, int]:
    entries: list[Entry] = []
    append = entries.append
    read = invalid = 0
    for row in rows:
        read += 1
        entry = _read_row(row, layout, problems)
        if entry is None:
            invalid += 1
        else:
            append(entry)
    return entries, read, invalid


def _count_languages(entries: list[Entry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        if entry.language is not None:
            counts[entry.language] = counts.get(entry.language, 0) + 1
    return dict(sorted(counts.items()))


def _digest(data: bytes, options_digest_part: str) -> str:
    digest = hashlib.sha256(_ANALYZER_VERSION)
    digest.update(b"\0")
    digest.update(options_digest_part.encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()


# -- duplicates -------------------------------------------------------------------------------


def classify_duplicates(
    entries: Iterable[Entry],
    existing_keys: set[str],
    policy: Duplicates,
    *,
    within_file_are_duplicates: bool,
) -> list[Decision]:
    """What the target does with each entry: a duplicate is an address in `existing_keys`
    (`duplicate_of="existing"`) or, when `within_file_are_duplicates`, one seen on an earlier
    line (`duplicate_of` that line). `keep` creates duplicates anyway, `skip` leaves them out,
    `update` applies them to what they duplicate. Keys are `email_key`s.
    """
    duplicate_action: Action = "create" if policy == "keep" else policy
    first_line: dict[str, int] = {}
    decisions: list[Decision] = []
    for entry in entries:
        key = email_key(entry.email)
        if key in existing_keys:
            decisions.append(Decision(entry, duplicate_action, "existing"))
        elif within_file_are_duplicates and key in first_line:
            decisions.append(Decision(entry, duplicate_action, first_line[key]))
        else:
            first_line.setdefault(key, entry.line)
            decisions.append(Decision(entry, "create", None))
    return decisions
