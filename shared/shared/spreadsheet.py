"""CSV exports that are safe to open in a spreadsheet (OWASP "CSV injection").

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula, and tab or
carriage return can hide such a start; a school name, a reference or a description typed
by anyone could then run in a finance officer's Excel. `safe_cell` neutralises such a
cell the way OWASP recommends: it puts a single quote (`'`) in front, which spreadsheets
show as text and do not evaluate. `csv.writer` then quotes the cell if it needs it.

Numbers stay numbers: a value that *is* a number (an int, a Decimal) or a string that is
only a plain decimal number (`-1500`, `-12.50`) is written unchanged, so a negative amount
(a credit note's `-1500` pence) stays a readable, summable negative number; a lone number
cannot be a formula. Everything else that starts with one of those characters, including
`-1500+cmd|...`, gets the quote.
"""
from __future__ import annotations

import csv
import decimal
import re
from typing import Any, Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    """`value` as it may go into a CSV cell (see the module docstring); None becomes ""."""
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (int, decimal.Decimal)):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """A `csv.writer` whose every cell goes through `safe_cell`."""

    def __init__(self, out, **kwargs):
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
