"""People at a member in a role, governors' history, and the co-operative trust's voting. Pure Python.

Personal data is kept to the minimum (a display name and an optional work email); erasing a person
removes it and keeps the non-personal history (which role at which school, when, committees, the
dates of training) under the same id.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from membership.domain.model import MembershipRuleBroken

ROLES = ("head_teacher", "chair_of_governors", "business_manager", "senco", "dsl", "governor")
# who may commit the school's spending unless the school says otherwise
SPENDING_BY_DEFAULT = {"head_teacher": True, "business_manager": True}
# roles that may be given (or refused) spending authority explicitly
MAY_HOLD_SPENDING = ("head_teacher", "business_manager", "chair_of_governors")
GOVERNOR_ROLES = ("governor", "chair_of_governors")
APPOINTMENT_TYPES = ("parent", "staff", "headteacher", "local_authority", "foundation", "partnership", "co_opted")
ERASED_NAME = "[erased]"


@dataclasses.dataclass
class RoleHeld:
    """A person in a role at a member, from `started_on` up to the day before `ended_on`."""

    contact_id: str
    urn: str
    role: str
    may_commit_spending: bool
    started_on: dt.date
    ended_on: dt.date | None = None
    end_reason: str | None = None
    appointment_type: str | None = None
    committees: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.ended_on is None

    def held_on(self, day: dt.date) -> bool:
        return self.started_on <= day and (self.ended_on is None or day < self.ended_on)


def spending_authority(role: str, requested: bool | None) -> bool:
    if role not in ROLES:
        raise MembershipRuleBroken("role", f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if requested is None:
        return SPENDING_BY_DEFAULT.get(role, False)
    if requested and role not in MAY_HOLD_SPENDING:
        raise MembershipRuleBroken("may_commit_spending", f"a {role} cannot commit the school's spending; only "
                                                          f"{', '.join(MAY_HOLD_SPENDING)}")
    return bool(requested)


def take_role(*, contact_id: str, urn: str, role: str, started_on: dt.date, may_commit_spending: bool | None,
              current_roles: list[RoleHeld], member_open: bool, appointment_type: str | None = None,
              committees: list[str] | None = None) -> RoleHeld:
    """A person takes a role at an open member. One active holding of a role per person and school; a governor
    role needs its appointment type."""
    if not member_open:
        raise MembershipRuleBroken("urn", f"URN {urn} is not an open member")
    authority = spending_authority(role, may_commit_spending)
    if any(r.role == role and r.urn == urn and r.active for r in current_roles):
        raise MembershipRuleBroken("role", f"this person already holds {role} at {urn}")
    if role in GOVERNOR_ROLES:
        if appointment_type not in APPOINTMENT_TYPES:
            raise MembershipRuleBroken("appointment_type", f"a governor's appointment type is one of "
                                                           f"{', '.join(APPOINTMENT_TYPES)}")
    elif appointment_type is not None or committees:
        raise MembershipRuleBroken("appointment_type", "appointment type and committees are for governors only")
    committees = tuple(sorted({" ".join(c.split()) for c in (committees or []) if c.strip()}))
    return RoleHeld(contact_id, urn, role, authority, started_on, appointment_type=appointment_type,
                    committees=committees)


def change_spending(held: RoleHeld, *, may_commit_spending: bool) -> RoleHeld | None:
    if not held.active:
        raise MembershipRuleBroken("role", "the role has ended")
    authority = spending_authority(held.role, may_commit_spending)
    if authority == held.may_commit_spending:
        return None
    return dataclasses.replace(held, may_commit_spending=authority)


def end_role(held: RoleHeld, *, ended_on: dt.date, reason: str | None) -> RoleHeld:
    if not held.active:
        raise MembershipRuleBroken("role", f"the {held.role} role already ended on {held.ended_on.isoformat()}")
    if ended_on <= held.started_on:
        raise MembershipRuleBroken("effective_date", f"a role cannot end on or before it started "
                                                     f"({held.started_on.isoformat()})")
    reason = (reason or "").strip() or None
    if held.role in GOVERNOR_ROLES and not reason:
        raise MembershipRuleBroken("reason", "give the reason a governor left (e.g. end of term, resigned)")
    return dataclasses.replace(held, ended_on=ended_on, end_reason=reason, may_commit_spending=False)


# --- governors' committees: dated memberships with terms of office ------------------------------------------------

DEFAULT_APPOINTING_BODY = "governing_body"


@dataclasses.dataclass
class CommitteeMembership:
    """A governor on a committee for a term of office, from `started_on` up to the day before `ended_on` (None:
    open-ended; a fixed term gives its end when appointed), appointed by `appointing_body`. Never overwritten:
    a change of committees ends one membership and starts another."""

    contact_id: str
    urn: str
    committee: str
    appointing_body: str
    started_on: dt.date
    ended_on: dt.date | None = None
    end_reason: str | None = None
    id: int | None = None

    def held_on(self, day: dt.date) -> bool:
        return self.started_on <= day and (self.ended_on is None or day < self.ended_on)

    def overlaps(self, start: dt.date, end: dt.date | None) -> bool:
        return (end is None or self.started_on < end) and (self.ended_on is None or start < self.ended_on)


def tidy_committee(name: str) -> str:
    return " ".join((name or "").split())


def appoint_to_committee(*, contact_id: str, urn: str, committee: str, appointing_body: str | None,
                         started_on: dt.date, ended_on: dt.date | None, governor_roles: list[RoleHeld],
                         current: list[CommitteeMembership]) -> CommitteeMembership:
    """A governor of `urn` (a governor or chair role held on `started_on`) joins a committee for a term. Refuses a
    term that ends on or before it starts and one that overlaps the same person's term on the same committee."""
    committee = tidy_committee(committee)
    if not committee:
        raise MembershipRuleBroken("committee", "name the committee")
    body = tidy_committee(appointing_body or "")
    if not body:
        raise MembershipRuleBroken("appointing_body", "say which body appointed the governor to the committee")
    if ended_on is not None and ended_on <= started_on:
        raise MembershipRuleBroken("ended_on", "a term of office ends after it starts")
    if not any(r.urn == urn and r.role in GOVERNOR_ROLES and r.held_on(started_on) for r in governor_roles):
        raise MembershipRuleBroken("role", f"only a governor of {urn} on {started_on.isoformat()} sits on its "
                                           "committees")
    for m in current:
        if m.urn == urn and m.committee == committee and m.overlaps(started_on, ended_on):
            raise MembershipRuleBroken("started_on", f"this governor is already on {committee} from "
                                                     f"{m.started_on.isoformat()}")
    return CommitteeMembership(contact_id, urn, committee, body, started_on, ended_on)


def end_committee_membership(membership: CommitteeMembership, *, ended_on: dt.date,
                             reason: str | None) -> CommitteeMembership:
    """The term ends early (or its open end is fixed): `ended_on` is the first day off the committee."""
    if membership.ended_on is not None and membership.ended_on <= ended_on:
        raise MembershipRuleBroken("effective_date", f"the term already ends on {membership.ended_on.isoformat()}")
    if ended_on <= membership.started_on:
        raise MembershipRuleBroken("effective_date", "a term cannot end on or before it started "
                                                     f"({membership.started_on.isoformat()})")
    return dataclasses.replace(membership, ended_on=ended_on, end_reason=(reason or "").strip() or None)


def committees_on(memberships: list[CommitteeMembership], day: dt.date) -> list[CommitteeMembership]:
    return [m for m in memberships if m.held_on(day)]


# --- people at a MAT, council or partner (interface D) -----------------------------------------------------------

ORGANISATION_ROLES = {"mat": ("ceo", "finance_contact", "peer_review_lead"),
                      "council": ("finance_contact", "main_contact"),
                      "partner": ("finance_contact", "main_contact")}
ALL_ORGANISATION_ROLES = ("ceo", "finance_contact", "peer_review_lead", "main_contact")
# a MAT that pays centrally commits spending through its CEO and finance contact unless it says otherwise;
# a council's or partner's finance contact only when granted (they are not buyers); never the others
ORGANISATION_SPENDING_BY_DEFAULT = {("mat", "ceo"): True, ("mat", "finance_contact"): True}
ORGANISATION_MAY_HOLD_SPENDING = {("mat", "ceo"), ("mat", "finance_contact"), ("council", "finance_contact"),
                                  ("partner", "finance_contact")}


@dataclasses.dataclass
class OrganisationRole:
    """A person in a role at a MAT, council or partner, from `started_on` up to the day before `ended_on`."""

    contact_id: str
    organisation_id: str
    organisation_kind: str
    role: str
    may_commit_spending: bool
    started_on: dt.date
    ended_on: dt.date | None = None
    end_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.ended_on is None


def check_organisation_role(organisation_kind: str, role: str) -> None:
    """The role must fit the kind of organisation (400 naming `role`)."""
    fitting = ORGANISATION_ROLES.get(organisation_kind)
    if fitting is None:
        raise MembershipRuleBroken("organisation_id", f"{organisation_kind!r} is not a MAT, council or partner")
    if role not in fitting:
        raise MembershipRuleBroken("role", f"a {organisation_kind}'s contact roles are {', '.join(fitting)}; "
                                           f"{role!r} is not one of them")


def organisation_spending(organisation_kind: str, role: str, requested: bool | None) -> bool:
    check_organisation_role(organisation_kind, role)
    if requested is None:
        return ORGANISATION_SPENDING_BY_DEFAULT.get((organisation_kind, role), False)
    if requested and (organisation_kind, role) not in ORGANISATION_MAY_HOLD_SPENDING:
        raise MembershipRuleBroken("may_commit_spending", f"a {organisation_kind}'s {role} cannot commit spending")
    return bool(requested)


def take_organisation_role(*, contact_id: str, organisation_id: str, organisation_kind: str | None, role: str,
                           started_on: dt.date, may_commit_spending: bool | None,
                           current_roles: list[OrganisationRole]) -> OrganisationRole:
    """A person takes a role at an organisation open on `started_on` (`organisation_kind` None if it is not).
    The role must fit the organisation's kind; one active holding of a role per person and organisation."""
    if organisation_kind is None:
        raise MembershipRuleBroken("organisation_id", f"{organisation_id} is not an open organisation on "
                                                      f"{started_on.isoformat()}")
    authority = organisation_spending(organisation_kind, role, may_commit_spending)
    if any(r.organisation_id == organisation_id and r.role == role and r.active for r in current_roles):
        raise MembershipRuleBroken("role", f"this person already holds {role} at {organisation_id}")
    return OrganisationRole(contact_id, organisation_id, organisation_kind, role, authority, started_on)


def end_organisation_role(held: OrganisationRole, *, ended_on: dt.date, reason: str | None) -> OrganisationRole:
    if not held.active:
        raise MembershipRuleBroken("role", f"the {held.role} role already ended on {held.ended_on.isoformat()}")
    if ended_on <= held.started_on:
        raise MembershipRuleBroken("effective_date", f"a role cannot end on or before it started "
                                                     f"({held.started_on.isoformat()})")
    return dataclasses.replace(held, ended_on=ended_on, end_reason=(reason or "").strip() or None,
                               may_commit_spending=False)


def check_training(*, course: str, completed_on: dt.date, today: dt.date) -> str:
    course = " ".join((course or "").split())
    if not course:
        raise MembershipRuleBroken("course", "name the course")
    if completed_on > today:
        raise MembershipRuleBroken("completed_on", "training is recorded once done, not in the future")
    return course


# --- the co-operative trust ------------------------------------------------------------------------------------

TRUST_ROLES = ("member", "partner")


@dataclasses.dataclass(frozen=True)
class TrustParticipant:
    """A member school (votes) or a partner (takes part, never votes) of the co-operative trust."""

    party_id: str
    name: str
    trust_role: str
    joined_on: dt.date
    left_on: dt.date | None = None
    on_forum: bool = False
    # the trust's register decides whether an academy that replaces this school takes over its participation
    # (and its vote) on the conversion date; True unless the register recorded otherwise
    successor_inherits: bool = True

    def in_trust_on(self, day: dt.date) -> bool:
        return self.joined_on <= day and (self.left_on is None or day < self.left_on)


def voters_on(participants: list[TrustParticipant], day: dt.date, school_is_member_on) -> list[dict]:
    """One vote per member school of the co-operative trust that is in the trust and in the partnership on `day`;
    partners take part but do not vote."""
    votes = {}
    for p in participants:
        if p.trust_role == "member" and p.in_trust_on(day) and school_is_member_on(p.party_id):
            votes[p.party_id] = {"urn": p.party_id, "name": p.name, "votes": 1}
    return [votes[k] for k in sorted(votes)]


def join_trust(*, party_id: str, name: str, trust_role: str, joined_on: dt.date, current: list[TrustParticipant],
               is_partnership_member: bool) -> TrustParticipant:
    if trust_role not in TRUST_ROLES:
        raise MembershipRuleBroken("trust_role", "member or partner")
    if trust_role == "member" and not is_partnership_member:
        raise MembershipRuleBroken("urn", "only a school that is a member of the partnership on that date can be "
                                          "a member of the co-operative trust")
    if any(p.party_id == party_id and p.left_on is None for p in current):
        raise MembershipRuleBroken("party_id" if trust_role == "partner" else "urn",
                                   f"{party_id} is already in the co-operative trust")
    return TrustParticipant(party_id, name.strip(), trust_role, joined_on)


def leave_trust(participant: TrustParticipant, *, left_on: dt.date) -> TrustParticipant:
    if participant.left_on is not None:
        raise MembershipRuleBroken("party_id", "already left the co-operative trust")
    if left_on <= participant.joined_on:
        raise MembershipRuleBroken("effective_date", "leaving must be after joining")
    return dataclasses.replace(participant, left_on=left_on)


def succeed_in_trust(participation: TrustParticipant | None, *, successor_urn: str, successor_name: str,
                     conversion_date: dt.date) -> tuple[TrustParticipant, TrustParticipant | None] | None:
    """A converting school's trust participation on its conversion date: the predecessor's ends that day and,
    unless the register says the successor does not inherit it, the academy's begins that day (same forum
    seat). One vote, never two: the two participations never overlap. None when there is nothing to carry
    (no open member participation on the conversion date)."""
    if participation is None or participation.trust_role != "member" or participation.left_on is not None:
        return None
    if conversion_date <= participation.joined_on:
        return None
    ended = dataclasses.replace(participation, left_on=conversion_date)
    if not participation.successor_inherits:
        return ended, None
    return ended, TrustParticipant(successor_urn, successor_name, "member", conversion_date,
                                   on_forum=participation.on_forum)
