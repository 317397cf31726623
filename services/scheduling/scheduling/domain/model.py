"""Which schools may take part in which programmes. Pure Python, no I/O.

A school becomes eligible for an offering's sessions for the period its SLA
covers; scheduling learns both from events and keeps its own copy.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from scheduling.domain.upstream import SLA


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


def eligibility_from_subscription(sla: SLA) -> Eligibility:
    return Eligibility(urn=sla.urn, offering_code=sla.offering_code, service_area=sla.service_area,
                       period_start=sla.period_start, period_end=sla.period_end,
                       subscription_id=str(sla.subscription_id))
