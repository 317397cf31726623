"""Charges and who pays them. Pure Python, no I/O.

The payer of a charge is decided on the charge's date: a school pays for
itself unless it is an academy whose MAT pays centrally (a setting per MAT,
central by default). Money is integer pence.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid


@dataclasses.dataclass(frozen=True)
class Payer:
    kind: str  # "school" or "mat"
    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class Charge:
    id: str
    subscription_id: str
    urn: str
    payer: Payer
    offering_code: str
    offering_name: str
    service_area: str
    period_start: dt.date
    period_end: dt.date
    amount_pence: int
    vat_treatment: str
    census_date: dt.date
    number_on_roll: int


def payer_for(*, urn: str, school_name: str, mat_id: str | None, mat_name: str | None,
              mat_pays_centrally: bool) -> Payer:
    if mat_id and mat_pays_centrally:
        return Payer("mat", mat_id, mat_name or mat_id)
    return Payer("school", urn, school_name)


def first_year_end(period_start: dt.date, period_end: dt.date) -> dt.date:
    """Charges are annual: the first charge of an agreement covers at most its first year."""
    try:
        anniversary = period_start.replace(year=period_start.year + 1)
    except ValueError:  # a 29 February start: the next year has no 29 February, its anniversary is 1 March
        anniversary = dt.date(period_start.year + 1, 3, 1)
    one_year_on = anniversary - dt.timedelta(days=1)
    return min(one_year_on, period_end)


def charge_for_subscription(subscription: dict, payer: Payer) -> Charge:
    start = subscription["period_start"]
    census = subscription["census"]
    return Charge(id=str(uuid.uuid4()), subscription_id=str(subscription["subscription_id"]),
                  urn=subscription["urn"], payer=payer, offering_code=subscription["offering_code"],
                  offering_name=subscription["offering_name"], service_area=subscription["service_area"],
                  period_start=start, period_end=first_year_end(start, subscription["period_end"]),
                  amount_pence=subscription["annual_price_pence"] * subscription["quantity"],
                  vat_treatment=subscription["vat_treatment"], census_date=census["date"],
                  number_on_roll=census["number_on_roll"])
