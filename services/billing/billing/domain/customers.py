"""Who an invoice is addressed to: the customer's name and address, and the person it is for.
Pure Python, no I/O.

- A school is addressed by its name, local authority and postcode: membership publishes no
  street address, so that is all billing has (README, known limits).
- A MAT billed centrally is addressed "c/o" one of its academies on the invoice (the lowest
  URN): membership publishes no address for a MAT at all.
- The invoice contact: for a MAT, its active finance contact; for a school, its active business
  manager, else its active head teacher. Only roles in force on the issue date count, and a person
  whose data was erased is never named again (their copy is gone, and a tombstone keeps it gone).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterable, Sequence

from billing.domain.upstream import is_newer

# The roles that receive invoices, most preferred first, per kind of payer.
INVOICE_ROLES = {"mat": ("finance_contact",), "school": ("business_manager", "head_teacher")}


@dataclasses.dataclass(frozen=True)
class ContactRole:
    """A person's role at an organisation as billing last heard of it; `version`: the sequence of the
    event that set it (None: from an event without one)."""

    contact_id: str
    organisation: str  # school:<urn>, mat:<id>, council:<id>, partner:<id>
    role: str
    display_name: str
    email: str | None
    active: bool
    effective_date: dt.date
    version: int | None = None


@dataclasses.dataclass(frozen=True)
class InvoiceContact:
    contact_id: str
    name: str
    email: str | None
    role: str


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a school is, as far as membership says: its name, postcode and local authority."""

    urn: str
    name: str | None
    postcode: str | None
    local_authority: str | None


def role_change_applies(recorded: ContactRole | None, *, erased: bool, effective_date: dt.date,
                        sequence: int | None) -> bool:
    """Whether a role change is to be applied to billing's copy of that role.

    Never after the person's erasure, whatever its number: nothing brings an erased person back.
    Otherwise a numbered change applies if newer than the one recorded for the same role at the same
    organisation; an unnumbered one (from before sequencing) unless the recorded one took effect later."""
    if erased:
        return False
    if recorded is None:
        return True
    if sequence is None:
        return recorded.effective_date <= effective_date
    return is_newer(sequence, recorded.version)


def invoice_contact(payer_kind: str, roles: Iterable[ContactRole], on: dt.date) -> InvoiceContact | None:
    """The person an invoice to this payer is for, on `on`: the first of `INVOICE_ROLES[payer_kind]` held
    by someone active since on or before `on` (of several, the one longest in the role, then by id)."""
    held = [r for r in roles if r.active and r.effective_date <= on]
    for role in INVOICE_ROLES.get(payer_kind, ()):
        holders = sorted((r for r in held if r.role == role), key=lambda r: (r.effective_date, r.contact_id))
        if holders:
            chosen = holders[0]
            return InvoiceContact(chosen.contact_id, chosen.display_name, chosen.email, chosen.role)
    return None


def customer_address(payer_kind: str, payer_id: str, places: dict[str, Place], urns_invoiced: Sequence[str]) -> str:
    """The customer's address under its name, one line per line ("" when billing knows nothing).

    A school: its local authority and postcode. A MAT (central billing): "c/o" the academy of the
    invoice with the lowest URN, with that academy's local authority and postcode."""
    if payer_kind == "school":
        place = places.get(payer_id)
        return "\n".join(_where(place)) if place else ""
    academies = sorted(u for u in set(urns_invoiced) if u in places)
    if not academies:
        return ""
    place = places[academies[0]]
    return "\n".join([f"c/o {place.name or place.urn}", *_where(place)])


def _where(place: Place) -> list[str]:
    return [line for line in (place.local_authority, place.postcode) if line]
