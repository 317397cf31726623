"""The ordering rule for upstream events, whatever order they are delivered in. Pure Python, no I/O.

Each producer numbers the events of one aggregate (`school:<urn>`, `contact:<id>`) strictly
increasingly. Scheduling keeps, on each *facet* of its copies (a school's details, its roll, its
lifecycle; a contact's role; an SLA's terms; a MAT membership from a date), the sequence number of
the event that last set it. An event is applied to a facet only if it is newer than that;
otherwise it is recorded as seen (the inbox) without effect. One number per aggregate would be
wrong: a census is newer than a joining but says nothing of the school's details.

A facet's version is None while nothing has set it (the copy does not know that fact yet), 0 when
it was set by an event that carries no order (written before sequencing, applied as before:
last writer wins) or by a conversion for its successor (see `BEFORE_OWN_EVENTS`), else the
sequence number.
"""
from __future__ import annotations

import dataclasses

# A conversion is the successor's first event, but it belongs to the predecessor's aggregate, so its
# number says nothing about the successor's own events: its facts for the successor rank below
# every one of them, whatever the arrival order.
BEFORE_OWN_EVENTS = 0


@dataclasses.dataclass(frozen=True)
class Position:
    """Where an upstream event stands: its aggregate and that aggregate's sequence number (both None
    on an event written before sequencing)."""

    aggregate: str | None = None
    sequence: int | None = None

    def sequence_in(self, aggregate: str) -> int | None:
        """The event's sequence number if it is one of `aggregate`'s events, else None: numbers of
        different aggregates are never compared."""
        return self.sequence if self.aggregate == aggregate else None


UNORDERED = Position()


def is_newer(sequence: int | None, applied: int | None) -> bool:
    """Whether an event numbered `sequence` is to be applied to a facet last set at version `applied`.

    Yes if the facet is unknown, if either side carries no order (applied as before sequencing),
    or if the event is strictly newer."""
    return sequence is None or not applied or sequence > applied


def version_after(sequence: int | None, applied: int | None) -> int:
    """The facet's version once an event numbered `sequence` has been applied to it (an event
    without order leaves a known order as it was)."""
    return max(sequence or 0, applied or 0)
