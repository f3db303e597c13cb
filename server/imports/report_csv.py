"""The report as a CSV for the organiser to fix and upload again (`?report=csv`).

Rules:
- One line per invalid or duplicate row, in file order, with the row's original cells as read
  (not stripped), then `line` (its physical 1-based line in the uploaded file) and `reason`
  (`email: invalid_email; quantity: not_an_integer`, `duplicate of line 3: skip`, `already
  there: update`). A row that could not be read (a 10 MB field) has empty cells and its reason.
- The header is the file's own, or what the analysis took each column for (`email`,
  `quantity`, `name`, `column_4`...), so the fixed file is read the same way; the analysis
  ignores a header's last two columns when they are exactly `line` and `reason`.
- Written with the exports' CSV writer: UTF-8 with BOM, `;`, every text cell through the
  formula guard (an uploaded `=1+1` comes back as `'=1+1`), streamed in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from server.exports.writers import csv_rows
from server.imports.analyze import REPORT_COLUMNS, Analysis, Decision
from server.imports.sources import open_source

__all__ = ["report_csv", "report_reasons"]


def report_reasons(analysis: Analysis, decisions: Sequence[Decision]) -> dict[int, str]:
    """Why each reported line is in the report: its problems, or what its duplicate becomes."""
    header_line = analysis.header_line
    reasons: dict[int, list[str]] = {}
    for problem in analysis.problems:
        if problem.line == header_line:
            continue  # the header's problems are in the JSON report; its line is the header
        reasons.setdefault(problem.line, []).append(f"{problem.field}: {problem.reason}")
    for decision in decisions:
        if decision.duplicate_of == "existing":
            reasons.setdefault(decision.entry.line, []).append(f"already there: {decision.action}")
        elif decision.duplicate_of is not None:
            text = f"duplicate of line {decision.duplicate_of}: {decision.action}"
            reasons.setdefault(decision.entry.line, []).append(text)
    return {line: "; ".join(texts) for line, texts in reasons.items()}


def report_csv(
    data: bytes,
    *,
    filename: str | None,
    content_type: str | None,
    analysis: Analysis,
    decisions: Sequence[Decision],
) -> Iterator[bytes]:
    """The CSV's chunks of bytes; `data` is the file that was analysed, read again here."""
    reasons = report_reasons(analysis, decisions)
    _, source_rows = open_source(data, filename=filename, content_type=content_type)
    header_line = analysis.header_line
    # A report CSV uploaded again: its old `line` and `reason` cells are not carried over.
    again = analysis.header is not None and len(analysis.columns) < len(analysis.header)
    rows: list[list[str | int]] = []
    width = len(analysis.columns)
    for row in source_rows:
        reason = reasons.get(row.line)
        if reason is None or row.line == header_line:
            continue
        cells = row.cells[: len(analysis.columns)] if again else row.cells
        width = max(width, len(cells))
        rows.append([*cells, row.line, reason])
    header = [*analysis.columns, *(f"column_{i + 1}" for i in range(len(analysis.columns), width))]
    padded = ([*row[:-2], *[""] * (width + 2 - len(row)), *row[-2:]] for row in rows)
    return csv_rows([*header, *REPORT_COLUMNS], padded)
