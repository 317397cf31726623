"""Which schools may take part in which programmes. Pure Python, no I/O.

A school becomes eligible for an offering's sessions for the period its SLA
covers; scheduling learns both from events and keeps its own copy.
"""
from __future__ import annotations

import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True)
class Eligibility:
    urn: str
    offering_code: str
    service_area: str
    period_start: dt.date
    period_end: dt.date
    subscription_id: str

    def covers(self, day: dt.date) -> bool:
        return self.period_start <= day <= self.period_end


def eligibility_from_subscription(payload: dict) -> Eligibility:
    return Eligibility(urn=payload["urn"], offering_code=payload["offering_code"],
                       service_area=payload["service_area"], period_start=payload["period_start"],
                       period_end=payload["period_end"], subscription_id=str(payload["subscription_id"]))
