"""What membership's use cases are asked to do: each a frozen dataclass, loaded from a request by its
schema (`membership.entrypoints.service`) or built by a test. The schema has validated every field
(a date a request leaves out is today's by then); a use case still checks the rules that need stored
state. A MAT is given as `{"id", "name"}`."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class JoinSchool:
    """A school joins (or applies to join) the partnership."""

    urn: str
    dfe_number: str
    name: str
    establishment_type: str
    phase: str
    local_authority: str
    postcode: str
    number_on_roll: int
    census_date: dt.date
    joined_on: dt.date
    mat: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class ConvertToAcademy:
    """A maintained school converts: the academy (`successor_*`) opens, in a MAT, from `conversion_date`;
    a detail not given is the predecessor's."""

    successor_urn: str
    conversion_date: dt.date
    mat: Mapping[str, Any]
    successor_dfe_number: str | None = None
    successor_name: str | None = None
    establishment_type: str | None = None
    phase: str | None = None
    postcode: str | None = None
    number_on_roll: int | None = None
    census_date: dt.date | None = None
    carry_contacts: bool = False


@dataclasses.dataclass(frozen=True)
class Leave:
    """A member school or organisation leaves from `effective_date`."""

    effective_date: dt.date
    reason: str


@dataclasses.dataclass(frozen=True)
class JoinOrganisation:
    id: str
    kind: str
    name: str
    joined_on: dt.date


@dataclasses.dataclass(frozen=True)
class AddContact:
    """A new person at a school, in a role from `effective_date`."""

    display_name: str
    role: str
    effective_date: dt.date
    email: str | None = None
    may_commit_spending: bool | None = None
    appointment_type: str | None = None
    committees: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class AddRole:
    """A known person takes a role at a school (`urn`)."""

    urn: str
    role: str
    effective_date: dt.date
    may_commit_spending: bool | None = None
    appointment_type: str | None = None
    committees: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class ChangeRole:
    """Change a held role from `effective_date`; None leaves that part as it is."""

    effective_date: dt.date
    may_commit_spending: bool | None = None
    committees: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class EndRole:
    """End a role, committee membership or organisation role from `effective_date`."""

    effective_date: dt.date
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class RecordTraining:
    course: str
    completed_on: dt.date


@dataclasses.dataclass(frozen=True)
class AppointToCommittee:
    urn: str
    committee: str
    appointing_body: str
    started_on: dt.date
    ended_on: dt.date | None = None


@dataclasses.dataclass(frozen=True)
class AddOrganisationContact:
    """A new person at an organisation (MAT, council, partner), in a role from `effective_date`."""

    display_name: str
    role: str
    effective_date: dt.date
    email: str | None = None
    may_commit_spending: bool | None = None


@dataclasses.dataclass(frozen=True)
class AddOrganisationRole:
    organisation_id: str
    role: str
    effective_date: dt.date
    may_commit_spending: bool | None = None


@dataclasses.dataclass(frozen=True)
class JoinTrust:
    """A school (`urn`, trust role member) or partner (`id`, `name`) joins the co-operative trust."""

    trust_role: str
    joined_on: dt.date
    urn: str | None = None
    id: str | None = None
    name: str | None = None
    on_forum: bool = False
