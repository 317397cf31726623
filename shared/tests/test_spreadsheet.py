"""CSV cells that a spreadsheet would run as formulas are neutralised; numbers stay numbers."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from shared.spreadsheet import SafeWriter, safe_cell


class TestSafeCell:
    @pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1:A2)",
                                      "\t=1+1", "\r=1+1", "-1500+cmd|' /C calc'!A0", "=1"])
    def test_a_cell_starting_a_formula_gets_a_leading_quote(self, text):
        assert safe_cell(text) == "'" + text

    @pytest.mark.parametrize("value", [-1500, 0, 120000, Decimal("-12.50"), "-1500", "-12.50", "1500"])
    def test_numbers_and_negative_amounts_stay_as_they_are(self, value):
        assert safe_cell(value) == value

    @pytest.mark.parametrize("text", ["St Mary's C of E School", "BLT-000001", "2026-09-01", "", "a=b"])
    def test_ordinary_text_is_unchanged(self, text):
        assert safe_cell(text) == text

    def test_none_is_an_empty_cell(self):
        assert safe_cell(None) == ""


def test_the_writer_neutralises_every_cell_and_still_writes_valid_csv():
    out = io.StringIO()
    SafeWriter(out, lineterminator="\n").writerow(["=cmd|' /C calc'!A0", -1500, "ok, with comma", None])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["'=cmd|' /C calc'!A0", "-1500", "ok, with comma", ""]]
