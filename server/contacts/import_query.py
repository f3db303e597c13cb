"""The query parameters of a contact-list import, checked strictly: every parameter that is
unknown, repeated or of a value not allowed is named in one 422 (Litestar's own parsing would
answer 400, one parameter at a time)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from server.contacts.imports import ContactImportOptions
from server.imports.query import DIGEST, read_query

__all__ = ["IMPORT_DESCRIPTION", "ContactImportQuery", "parse_import_query"]

IMPORT_DESCRIPTION = """The body is a multipart/form-data `file` (CSV, TXT, XLSX, XLS,
ODS) or pasted lines as text/plain. Query parameters: `mode=analyze|commit` (required),
`duplicates=skip|update` (default skip; `keep` is refused: a list holds each address once),
`on_error=reject_all|skip_invalid` (default reject_all), `digest=` (the analysis's: a commit of
anything else is 409 `analysis_mismatch`), `report=json|csv` (csv: the invalid and duplicate
rows, to fix and upload again). Analyze answers 200 and writes nothing; commit answers 201 and
writes every row or none."""

_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("analyze", "commit"),
    "duplicates": ("skip", "update"),
    "on_error": ("reject_all", "skip_invalid"),
    "report": ("json", "csv"),
}


@dataclass(frozen=True)
class ContactImportQuery:
    mode: Literal["analyze", "commit"]
    options: ContactImportOptions
    digest: str | None
    report: Literal["json", "csv"]


def parse_import_query(items: Iterable[tuple[str, str]]) -> ContactImportQuery:
    """The import's parameters from the query's (name, value) pairs; BodyInvalid otherwise."""
    values = read_query(
        items,
        choices=_CHOICES,
        patterns={"digest": DIGEST},
        required={"mode": "required: analyze or commit"},
        refused={("duplicates", "keep"): "keep is not allowed: a list holds each address once"},
    )
    options = ContactImportOptions(
        duplicates=values.get("duplicates", "skip"),  # type: ignore[arg-type]
        on_error=values.get("on_error", "reject_all"),  # type: ignore[arg-type]
    )
    mode = values["mode"]
    return ContactImportQuery(mode, options, values.get("digest"), values.get("report", "json"))  # type: ignore[arg-type]
