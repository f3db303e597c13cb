"""The formula guard: no exported cell may be read by a spreadsheet as a formula.

Rules (OWASP "CSV Injection"; CWE-1236; ASVS 5.0 §1.2.10):

- A cell whose text starts with `=` `+` `-` `@`, TAB, CR or NUL gets a leading apostrophe `'`.
  Excel, LibreOffice Calc and Google Sheets take the apostrophe as "this is text", show the value
  without it, and never evaluate it; `=HYPERLINK(...)`, `+1`, `-1`, `@SUM(...)` and DDE payloads
  (`=cmd|' /C calc'!A0`) all stay text.
- The trigger is also looked for after leading whitespace (any `str.isspace` character, so also
  NBSP and LF) and zero-width characters (ZWSP, ZWNJ, ZWJ, WJ, BOM). Excel keeps ` =1+1` as text,
  but LibreOffice's "Trim spaces" import option, Google Sheets and any clean-up step that trims a
  cell turn it back into `=1+1`; the apostrophe costs nothing there and closes that gap.
- The full-width forms of those four (U+FF1D, U+FF0B, U+FF0D, U+FF20) count too: Excel in East
  Asian locales may normalise them to the ASCII forms, and guarding the rare value that starts
  with one costs nothing.
- Leading quotes are NOT looked through. OWASP's warning about quotes and separators is about a
  value that closes its own field and opens a new one; the writers quote every field as RFC 4180
  says (`"` doubled, separators and line breaks inside quotes), so a value cannot leave its cell,
  and `"=1"` arrives as the text `"=1`, which no spreadsheet evaluates.

The apostrophe changes the data for a program reading the CSV (it sees `'-1`), so only text is
guarded: real numbers are written as numbers by the writers (`-1` as an `int` is a number, never
a formula) and do not pass here.
"""

from __future__ import annotations

import re

__all__ = ["FORMULA_TRIGGERS", "formula_safe", "is_formula_like"]

FORMULA_TRIGGERS = frozenset("=+-@\t\r\x00\uff1d\uff0b\uff0d\uff20")
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
# Whitespace (as `str.isspace` knows it) and zero-width characters, in any mix.
_LEADING_BLANKS = re.compile(f"[\\s{_ZERO_WIDTH}]*")


def is_formula_like(value: str) -> bool:
    """True if a spreadsheet could evaluate `value`, now or once its leading blanks are trimmed."""
    if not value:
        return False
    first = value[0]
    if first in FORMULA_TRIGGERS:
        return True
    if not (first.isspace() or first in _ZERO_WIDTH):
        return False  # the common case: no blanks to look through
    start = _LEADING_BLANKS.match(value).end()  # type: ignore[union-attr]  # `*` always matches
    return start < len(value) and value[start] in FORMULA_TRIGGERS


def formula_safe(value: str) -> str:
    """`value` with a leading `'` if a spreadsheet could read it as a formula, else unchanged.

    Idempotent: a guarded value starts with `'`, which is no trigger.
    """
    return "'" + value if is_formula_like(value) else value
