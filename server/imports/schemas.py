"""The import report every target answers with (analyze and commit alike).

`ImportReport` is the common part; a target subclasses it to add its own fields (what it
created, its ticket type...), and builds it with `build_report`, which counts the rows and keeps
the first 1,000 problems and duplicates (`problems_total`, `duplicates_total` say how many
there were in all).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import msgspec

from server.imports.analyze import Analysis, Decision

__all__ = [
    "REPORT_LIST_LIMIT",
    "DuplicateOut",
    "ImportReport",
    "ProblemOut",
    "RowCounts",
    "SourceOut",
    "build_report",
]

REPORT_LIST_LIMIT = 1000
Mode = Literal["analyze", "commit"]
ReportT = TypeVar("ReportT", bound="ImportReport")


class SourceOut(msgspec.Struct, frozen=True, kw_only=True):
    format: Literal["csv", "text", "xlsx", "xls", "ods"]
    encoding: str | None
    delimiter: str | None
    sheet: str | None
    header: list[str] | None


class RowCounts(msgspec.Struct, frozen=True, kw_only=True):
    read: int  # data rows (the header and blank lines are not rows)
    valid: int
    invalid: int
    duplicates: int
    create: int
    update: int
    skip: int


class ProblemOut(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    column: int | None
    field: str
    reason: str
    value: str


class DuplicateOut(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    email: str
    action: Literal["create", "skip", "update"]
    duplicate_of: int | Literal["existing"]


class ImportReport(msgspec.Struct, kw_only=True):
    mode: Mode
    source: SourceOut
    options: dict[str, Any]
    rows: RowCounts
    languages: dict[str, int]
    problems: list[ProblemOut]
    problems_total: int
    duplicates: list[DuplicateOut]
    duplicates_total: int
    digest: str
    committed: bool = False


def build_report(
    analysis: Analysis,
    decisions: Sequence[Decision],
    *,
    mode: Mode,
    options: Mapping[str, Any],
    committed: bool = False,
    report_type: type[ReportT] = ImportReport,  # type: ignore[assignment]
    **target: Any,
) -> ReportT:
    """The report of `analysis` with the target's `decisions` (one per valid entry).

    `target` holds the fields `report_type` adds to ImportReport.
    """
    duplicates = [d for d in decisions if d.duplicate_of is not None]
    actions = {"create": 0, "update": 0, "skip": 0}
    for decision in decisions:
        actions[decision.action] += 1
    info = analysis.info
    return report_type(
        mode=mode,
        source=SourceOut(
            format=info.format,
            encoding=info.encoding,
            delimiter=info.delimiter,
            sheet=info.sheet,
            header=list(analysis.header) if analysis.header is not None else None,
        ),
        options=dict(options),
        rows=RowCounts(
            read=analysis.rows_read,
            valid=len(analysis.entries),
            invalid=analysis.invalid_rows,
            duplicates=len(duplicates),
            **actions,
        ),
        languages=dict(analysis.languages),
        problems=_first(
            ProblemOut(line=p.line, column=p.column, field=p.field, reason=p.reason, value=p.value)
            for p in analysis.problems
        ),
        problems_total=len(analysis.problems),
        duplicates=_first(
            DuplicateOut(
                line=d.entry.line,
                email=d.entry.email,
                action=d.action,
                duplicate_of=d.duplicate_of,  # type: ignore[arg-type]  # not None: filtered
            )
            for d in duplicates
        ),
        duplicates_total=len(duplicates),
        digest=analysis.digest,
        committed=committed,
        **target,
    )


def _first(items: Iterable[Any]) -> list[Any]:
    out = []
    for item in items:
        if len(out) == REPORT_LIST_LIMIT:
            break
        out.append(item)
    return out
