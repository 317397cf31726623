"""Buy-back: do last year's buyers buy again? Pure Python, no I/O.

The same definition as the catalogue's demand report (`GET /reports/buy-back` there), so the board
sees one figure whichever function it asks:

- "held in year Y" = the SLA covered the first day of Y's period for its payer type (1 April for a
  maintained school, 1 September for an academy), between its start and its last covered day;
- a school and the academy that replaced it at conversion are one buyer (its lineage: followed to
  the newest successor), so a conversion is a kept buyer, not a lost one plus a new one;
- eligible in Y = held the area in Y-1; renewing = of those, held it again in Y; years with nobody
  eligible are left out; the rate is renewing / eligible to four places, half up.

One difference, on purpose: the catalogue shows a year only if somebody held the area in it, so a year
in which nobody bought again does not appear at all; billing shows it, at 0, once the year has begun.

Billing adds the same figure across all areas (a buyer of anything in Y-1 who buys anything in Y).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Mapping


@dataclasses.dataclass(frozen=True)
class Holding:
    """An SLA as the buy-back sees it: who, which area, for which payer type, and what it covered."""

    urn: str
    service_area: str
    payer_type: str  # "maintained" or "academy"
    period_start: dt.date
    covered_until: dt.date  # its last covered day (the day before it ended early, else its period's end)


@dataclasses.dataclass(frozen=True)
class BuyBack:
    service_area: str | None  # None: across every area
    year: int
    eligible: int
    renewing: int

    @property
    def rate(self) -> str:
        if not self.eligible:
            return "0.0000"
        return format((Decimal(self.renewing) / Decimal(self.eligible)).quantize(Decimal("0.0001"),
                                                                                rounding=ROUND_HALF_UP), "f")


def years_held(period_start: dt.date, covered_until: dt.date, payer_type: str) -> list[int]:
    """Edition years whose first day (1 April maintained, 1 September academies) this coverage includes."""
    month = 9 if payer_type == "academy" else 4
    found = []
    year = period_start.year
    while dt.date(year, month, 1) <= covered_until:
        if dt.date(year, month, 1) >= period_start:
            found.append(year)
        year += 1
    return found


def lineage(urn: str, successors: Mapping[str, str]) -> str:
    """The newest establishment of the school's line (itself unless it converted)."""
    seen = set()
    while urn in successors and urn not in seen:
        seen.add(urn)
        urn = successors[urn]
    return urn


def holdings_facts(holdings: Iterable[Holding], successors: Mapping[str, str]) -> set[tuple[str, str, int]]:
    """(buyer by lineage, service area, year held) of every SLA that covered something."""
    facts = set()
    for h in holdings:
        if h.covered_until >= h.period_start:
            for year in years_held(h.period_start, h.covered_until, h.payer_type):
                facts.add((lineage(h.urn, successors), h.service_area, year))
    return facts


def current_year(on: dt.date) -> int:
    """The newest edition year that has begun by `on` (a maintained school's begins 1 April)."""
    return on.year if on >= dt.date(on.year, 4, 1) else on.year - 1


def _years(holders_by_year: Mapping[int, set], up_to_year: int | None) -> list[int]:
    """Years with someone eligible: held the year before, and either held by someone or already begun (so a
    year in which nobody bought again is shown, at 0, rather than left out)."""
    years = {y for y in holders_by_year if holders_by_year.get(y - 1)}
    if up_to_year is not None:
        years |= {y + 1 for y, holders in holders_by_year.items() if holders and y + 1 <= up_to_year}
    return sorted(years)


def buy_back(facts: set[tuple[str, str, int]], up_to_year: int | None = None) -> list[BuyBack]:
    """Buy-back by service area and year from (buyer, area, year held) facts (the catalogue's rule; with
    `up_to_year`, also the years up to it in which nobody bought again, which the catalogue leaves out)."""
    by_area: dict[str, dict[int, set[str]]] = {}
    for school, area, year in facts:
        by_area.setdefault(area, {}).setdefault(year, set()).add(school)
    report = []
    for area, by_year in sorted(by_area.items()):
        for year in _years(by_year, up_to_year):
            previous, holders = by_year[year - 1], by_year.get(year, set())
            report.append(BuyBack(area, year, len(previous), len(previous & holders)))
    return report


def buy_back_overall(facts: set[tuple[str, str, int]], up_to_year: int | None = None) -> list[BuyBack]:
    """Buy-back by year across every area: a buyer of anything in Y-1 who buys anything in Y."""
    by_year: dict[int, set[str]] = {}
    for school, _area, year in facts:
        by_year.setdefault(year, set()).add(school)
    return [BuyBack(None, year, len(by_year[year - 1]), len(by_year[year - 1] & by_year.get(year, set())))
            for year in _years(by_year, up_to_year)]
