"""Reads and writes membership's records through a unit of work's session (SQLAlchemy Core)."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, insert, or_, select, update

from membership.adapters.tables import (audit_log, census_records, committee_memberships, contact_roles, contacts,
                                        establishment_links, governor_training, inbox, member_history, members,
                                        organisation_contact_roles, organisations, outbox, trust_participants)
from membership.domain.contacts import CommitteeMembership, OrganisationRole, RoleHeld, TrustParticipant
from membership.domain.lineage import Link
from membership.domain.model import HistoryEntry, Mat, SchoolMember
from shared import erasure
from shared.messaging_tables import utcnow

CHUNK = 2000


def _to_member(row) -> SchoolMember:
    mat = Mat(row.mat_id, row.mat_name) if row.mat_id else None
    return SchoolMember(urn=row.urn, dfe_number=row.dfe_number, name=row.name,
                        establishment_type=row.establishment_type, phase=row.phase,
                        local_authority=row.local_authority, postcode=row.postcode,
                        number_on_roll=row.number_on_roll, census_date=row.census_date, joined_on=row.joined_on,
                        mat=mat, status=row.status, left_on=row.left_on, left_reason=row.left_reason,
                        member_since=row.member_since or row.joined_on)


def _member_values(member: SchoolMember) -> dict:
    return dict(urn=member.urn, dfe_number=member.dfe_number, name=member.name, kind=member.kind,
                establishment_type=member.establishment_type, phase=member.phase,
                local_authority=member.local_authority, postcode=member.postcode,
                number_on_roll=member.number_on_roll, census_date=member.census_date,
                mat_id=member.mat.id if member.mat else None, mat_name=member.mat.name if member.mat else None,
                status=member.status, joined_on=member.joined_on, left_on=member.left_on,
                left_reason=member.left_reason, member_since=member.member_since)


def open_member(session, urn: str) -> SchoolMember | None:
    row = session.execute(select(members).where(members.c.urn == urn, members.c.left_on.is_(None))).first()
    return _to_member(row) if row else None


def last_left_on(session, urn: str) -> dt.date | None:
    return session.execute(select(func.max(members.c.left_on)).where(members.c.urn == urn)).scalar()


def all_open_members(session) -> dict[str, SchoolMember]:
    return {row.urn: _to_member(row) for row in session.execute(select(members).where(members.c.left_on.is_(None)))}


def closed_urns(session) -> dict[str, dt.date]:
    query = select(members.c.urn, func.max(members.c.left_on)).where(members.c.left_on.is_not(None)) \
        .group_by(members.c.urn)
    return {urn: left for urn, left in session.execute(query)}


def records_of(session, urn: str) -> list[SchoolMember]:
    return [_to_member(r) for r in session.execute(select(members).where(members.c.urn == urn)
                                                   .order_by(members.c.joined_on, members.c.id))]


def list_members(session, *, status: str | None = None, phase: str | None = None, on: dt.date | None = None,
                 establishment_type: str | None = None, mat_id: str | None = None, kind: str | None = None,
                 limit: int = 500, offset: int = 0) -> list[SchoolMember]:
    query = select(members).order_by(members.c.urn, members.c.id)
    if on is not None:
        # a member on `on`: joined by then, not yet left, and not a mere application
        query = query.where(members.c.joined_on <= on, members.c.status != "applied",
                            or_(members.c.left_on.is_(None), members.c.left_on > on))
    if status:
        query = query.where(members.c.status == status)
    if phase:
        query = query.where(members.c.phase == phase)
    if establishment_type:
        query = query.where(members.c.establishment_type == establishment_type)
    if mat_id:
        query = query.where(members.c.mat_id == mat_id)
    if kind:
        query = query.where(members.c.kind == kind)
    return [_to_member(r) for r in session.execute(query.limit(limit).offset(offset))]


def member_counts(session) -> dict[tuple[str, str], int]:
    query = select(members.c.kind, members.c.status, func.count()).group_by(members.c.kind, members.c.status)
    return {(kind, status): count for kind, status, count in session.execute(query)}


def add(session, member: SchoolMember) -> None:
    session.execute(insert(members).values(**_member_values(member)))


def add_many(session, new_members: list[SchoolMember]) -> None:
    values = [_member_values(m) for m in new_members]
    for start in range(0, len(values), CHUNK):
        session.execute(insert(members), values[start:start + CHUNK])


def save(session, member: SchoolMember) -> None:
    """Update the open record of the member's URN."""
    values = _member_values(member)
    values.pop("urn")
    session.execute(update(members).where(members.c.urn == member.urn, members.c.left_on.is_(None)).values(**values))


def save_many(session, changed: list[SchoolMember]) -> None:
    for member in changed:
        save(session, member)


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, Mat):
        return {"id": value.id, "name": value.name}
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def add_history(session, entries: list[HistoryEntry]) -> None:
    now = utcnow()
    values = [dict(urn=e.urn, effective_date=e.effective_date, kind=e.kind,
                   details=json.dumps(_json_safe(e.details), sort_keys=True), recorded_at=now) for e in entries]
    for start in range(0, len(values), CHUNK):
        session.execute(insert(member_history), values[start:start + CHUNK])


def latest_change_dates(session) -> dict[str, dt.date]:
    """Each URN's latest effective date of a change of details."""
    query = select(member_history.c.urn, func.max(member_history.c.effective_date)) \
        .where(member_history.c.kind == "details_changed").group_by(member_history.c.urn)
    return {urn: day for urn, day in session.execute(query)}


def history_of(session, urn: str) -> list[HistoryEntry]:
    rows = session.execute(select(member_history).where(member_history.c.urn == urn)
                           .order_by(member_history.c.effective_date, member_history.c.id))
    return [HistoryEntry(r.urn, r.effective_date, r.kind, json.loads(r.details)) for r in rows]


# --- census --------------------------------------------------------------------------------------------------

def census_on(session, urn: str, census_date: dt.date) -> int | None:
    return session.execute(select(census_records.c.number_on_roll).where(
        census_records.c.urn == urn, census_records.c.census_date == census_date)).scalar()


def latest_census_before(session, urn: str, census_date: dt.date) -> int | None:
    return session.execute(select(census_records.c.number_on_roll).where(
        census_records.c.urn == urn, census_records.c.census_date < census_date)
        .order_by(census_records.c.census_date.desc()).limit(1)).scalar()


def put_census(session, urn: str, census_date: dt.date, number_on_roll: int) -> None:
    found = session.execute(update(census_records).where(
        census_records.c.urn == urn, census_records.c.census_date == census_date)
        .values(number_on_roll=number_on_roll)).rowcount
    if not found:
        session.execute(insert(census_records).values(urn=urn, census_date=census_date,
                                                      number_on_roll=number_on_roll))


def all_census(session) -> dict[tuple[str, dt.date], int]:
    return {(r.urn, r.census_date): r.number_on_roll
            for r in session.execute(select(census_records.c.urn, census_records.c.census_date,
                                            census_records.c.number_on_roll))}


def add_census_many(session, rows: list[tuple[str, dt.date, int]]) -> None:
    values = [dict(urn=u, census_date=d, number_on_roll=n) for u, d, n in rows]
    for start in range(0, len(values), CHUNK):
        session.execute(insert(census_records), values[start:start + CHUNK])


def update_census_many(session, rows: list[tuple[str, dt.date, int]]) -> None:
    for urn, census_date, number in rows:
        put_census(session, urn, census_date, number)


def censuses_of(session, urn: str) -> list[dict]:
    rows = session.execute(select(census_records).where(census_records.c.urn == urn)
                           .order_by(census_records.c.census_date))
    return [{"census_date": r.census_date.isoformat(), "number_on_roll": r.number_on_roll} for r in rows]


# --- lineage -------------------------------------------------------------------------------------------------

def add_link(session, link: Link, source: str) -> None:
    session.execute(insert(establishment_links).values(
        predecessor_urn=link.predecessor_urn, successor_urn=link.successor_urn, kind=link.kind,
        established_on=link.established_on, source=source))


def link_exists(session, predecessor_urn: str, successor_urn: str) -> bool:
    return session.execute(select(establishment_links.c.kind).where(
        establishment_links.c.predecessor_urn == predecessor_urn,
        establishment_links.c.successor_urn == successor_urn).limit(1)).first() is not None


def existing_links(session) -> dict[tuple[str, str], tuple[str, dt.date | None]]:
    return {(r.predecessor_urn, r.successor_urn): (r.kind, r.established_on)
            for r in session.execute(select(establishment_links))}


def add_links_many(session, links: list[Link], source: str) -> None:
    values = [dict(predecessor_urn=l.predecessor_urn, successor_urn=l.successor_urn, kind=l.kind,
                   established_on=l.established_on, source=source) for l in links]
    for start in range(0, len(values), CHUNK):
        session.execute(insert(establishment_links), values[start:start + CHUNK])


def update_link_dates(session, links: list[Link]) -> None:
    for link in links:
        session.execute(update(establishment_links).where(
            establishment_links.c.predecessor_urn == link.predecessor_urn,
            establishment_links.c.successor_urn == link.successor_urn).values(established_on=link.established_on))


def _row_link(r) -> Link:
    return Link(r.predecessor_urn, r.successor_urn, r.kind, r.established_on)


def predecessors_of(session, urns: list[str]) -> dict[str, list[tuple[Link, str]]]:
    found: dict[str, list] = {}
    for r in session.execute(select(establishment_links).where(establishment_links.c.successor_urn.in_(urns))
                             .order_by(establishment_links.c.predecessor_urn)):
        found.setdefault(r.successor_urn, []).append((_row_link(r), r.predecessor_urn))
    return found


def successors_of(session, urns: list[str]) -> dict[str, list[tuple[Link, str]]]:
    found: dict[str, list] = {}
    for r in session.execute(select(establishment_links).where(establishment_links.c.predecessor_urn.in_(urns))
                             .order_by(establishment_links.c.successor_urn)):
        found.setdefault(r.predecessor_urn, []).append((_row_link(r), r.successor_urn))
    return found


def names_of(session, urns) -> dict[str, str]:
    urns = list(urns)
    names = {}
    for start in range(0, len(urns), 500):
        for urn, name in session.execute(select(members.c.urn, members.c.name)
                                         .where(members.c.urn.in_(urns[start:start + 500]))):
            names[urn] = name
    return names


# --- organisations -------------------------------------------------------------------------------------------

def open_organisation(session, org_id: str):
    return session.execute(select(organisations).where(organisations.c.org_id == org_id,
                                                       organisations.c.left_on.is_(None))).first()


def add_organisation(session, *, org_id: str, kind: str, name: str, joined_on: dt.date) -> None:
    session.execute(insert(organisations).values(org_id=org_id, kind=kind, name=name, joined_on=joined_on))


def close_organisation(session, org_id: str, left_on: dt.date, reason: str) -> None:
    session.execute(update(organisations).where(organisations.c.org_id == org_id, organisations.c.left_on.is_(None))
                    .values(left_on=left_on, left_reason=reason))


def organisation_on(session, org_id: str, day: dt.date):
    """The organisation's record open on `day` (joined by then, not yet left), or None."""
    return session.execute(select(organisations).where(
        organisations.c.org_id == org_id, organisations.c.joined_on <= day,
        or_(organisations.c.left_on.is_(None), organisations.c.left_on > day))).first()


def _to_org_role(r) -> OrganisationRole:
    return OrganisationRole(r.contact_id, r.organisation_id, r.organisation_kind, r.role, bool(r.may_commit_spending),
                            r.started_on, r.ended_on, r.end_reason)


def organisation_roles_of(session, contact_id: str) -> list[OrganisationRole]:
    return [_to_org_role(r) for r in session.execute(
        select(organisation_contact_roles).where(organisation_contact_roles.c.contact_id == contact_id)
        .order_by(organisation_contact_roles.c.started_on, organisation_contact_roles.c.id))]


def add_organisation_role(session, held: OrganisationRole) -> None:
    session.execute(insert(organisation_contact_roles).values(
        contact_id=held.contact_id, organisation_id=held.organisation_id, organisation_kind=held.organisation_kind,
        role=held.role, may_commit_spending=held.may_commit_spending, started_on=held.started_on,
        ended_on=held.ended_on, end_reason=held.end_reason))


def save_organisation_role(session, held: OrganisationRole) -> None:
    session.execute(update(organisation_contact_roles).where(
        organisation_contact_roles.c.contact_id == held.contact_id,
        organisation_contact_roles.c.organisation_id == held.organisation_id,
        organisation_contact_roles.c.role == held.role, organisation_contact_roles.c.ended_on.is_(None)).values(
        may_commit_spending=held.may_commit_spending, ended_on=held.ended_on, end_reason=held.end_reason))


def organisation_role_view(held: OrganisationRole) -> dict:
    return {"contact_id": held.contact_id, "organisation_id": held.organisation_id,
            "organisation_kind": held.organisation_kind, "role": held.role,
            "may_commit_spending": held.may_commit_spending, "active": held.active,
            "started_on": held.started_on.isoformat(), "ended_on": held.ended_on.isoformat() if held.ended_on else None,
            "end_reason": held.end_reason}


def contacts_of_organisation(session, org_id: str, *, role: str | None = None, on: dt.date | None = None,
                             include_ended: bool = False) -> list[dict]:
    t = organisation_contact_roles
    query = select(t, contacts.c.display_name, contacts.c.email, contacts.c.erased_at) \
        .join(contacts, contacts.c.contact_id == t.c.contact_id) \
        .where(t.c.organisation_id == org_id).order_by(t.c.role, t.c.started_on, t.c.id)
    if role:
        query = query.where(t.c.role == role)
    if on is not None:
        query = query.where(t.c.started_on <= on, or_(t.c.ended_on.is_(None), t.c.ended_on > on))
    elif not include_ended:
        query = query.where(t.c.ended_on.is_(None))
    return [dict(organisation_role_view(_to_org_role(r)), display_name=r.display_name, email=r.email,
                 erased=r.erased_at is not None) for r in session.execute(query)]


def list_organisations(session, *, kind: str | None = None, on: dt.date | None = None) -> list[dict]:
    query = select(organisations).order_by(organisations.c.org_id, organisations.c.id)
    if kind:
        query = query.where(organisations.c.kind == kind)
    if on:
        query = query.where(organisations.c.joined_on <= on,
                            or_(organisations.c.left_on.is_(None), organisations.c.left_on > on))
    return [{"id": r.org_id, "kind": r.kind, "name": r.name, "joined_on": r.joined_on.isoformat(),
             "left_on": r.left_on.isoformat() if r.left_on else None} for r in session.execute(query)]


# --- contacts ------------------------------------------------------------------------------------------------

def add_contact(session, *, contact_id: str, display_name: str, email: str | None) -> None:
    session.execute(insert(contacts).values(contact_id=contact_id, display_name=display_name, email=email,
                                            created_at=utcnow()))


def contact(session, contact_id: str):
    return session.execute(select(contacts).where(contacts.c.contact_id == contact_id)).first()


def _to_role(r) -> RoleHeld:
    return RoleHeld(r.contact_id, r.urn, r.role, bool(r.may_commit_spending), r.started_on, r.ended_on, r.end_reason,
                    r.appointment_type, tuple(json.loads(r.committees or "[]")))


def roles_of(session, contact_id: str) -> list[RoleHeld]:
    return [_to_role(r) for r in session.execute(select(contact_roles).where(contact_roles.c.contact_id == contact_id)
                                                 .order_by(contact_roles.c.started_on, contact_roles.c.id))]


def add_role(session, held: RoleHeld) -> None:
    session.execute(insert(contact_roles).values(
        contact_id=held.contact_id, urn=held.urn, role=held.role, may_commit_spending=held.may_commit_spending,
        started_on=held.started_on, ended_on=held.ended_on, end_reason=held.end_reason,
        appointment_type=held.appointment_type, committees=json.dumps(list(held.committees))))


def save_role(session, held: RoleHeld) -> None:
    session.execute(update(contact_roles).where(
        contact_roles.c.contact_id == held.contact_id, contact_roles.c.urn == held.urn,
        contact_roles.c.role == held.role, contact_roles.c.ended_on.is_(None)).values(
        may_commit_spending=held.may_commit_spending, ended_on=held.ended_on, end_reason=held.end_reason,
        committees=json.dumps(list(held.committees))))


def contacts_at(session, urn: str, *, role: str | None = None, on: dt.date | None = None,
                include_ended: bool = False) -> list[dict]:
    query = select(contact_roles, contacts.c.display_name, contacts.c.email, contacts.c.erased_at) \
        .join(contacts, contacts.c.contact_id == contact_roles.c.contact_id) \
        .where(contact_roles.c.urn == urn).order_by(contact_roles.c.role, contact_roles.c.started_on)
    if role:
        query = query.where(contact_roles.c.role == role)
    if on is not None:
        query = query.where(contact_roles.c.started_on <= on,
                            or_(contact_roles.c.ended_on.is_(None), contact_roles.c.ended_on > on))
    elif not include_ended:
        query = query.where(contact_roles.c.ended_on.is_(None))
    return [dict(role_view(_to_role(r)), display_name=r.display_name, email=r.email, erased=r.erased_at is not None)
            for r in session.execute(query)]


def role_view(held: RoleHeld) -> dict:
    return {"contact_id": held.contact_id, "urn": held.urn, "role": held.role,
            "may_commit_spending": held.may_commit_spending, "active": held.active,
            "started_on": held.started_on.isoformat(), "ended_on": held.ended_on.isoformat() if held.ended_on else None,
            "end_reason": held.end_reason, "appointment_type": held.appointment_type,
            "committees": list(held.committees)}


def add_training(session, contact_id: str, course: str, completed_on: dt.date) -> None:
    session.execute(insert(governor_training).values(contact_id=contact_id, course=course, completed_on=completed_on))


def training_of(session, contact_id: str) -> list[dict]:
    return [{"course": r.course, "completed_on": r.completed_on.isoformat()}
            for r in session.execute(select(governor_training).where(governor_training.c.contact_id == contact_id)
                                     .order_by(governor_training.c.completed_on, governor_training.c.id))]


def erase_contact(session, contact_id: str, placeholder: str) -> dict[str, int]:
    """Blank the person's name and email, and their copies in the outbox (sent or not) and the audit
    trail, in the caller's transaction: nothing of them is left for a later read or relay to find."""
    before = contact(session, contact_id)
    session.execute(update(contacts).where(contacts.c.contact_id == contact_id).values(
        display_name=placeholder, email=None, erased_at=utcnow()))
    known = [before.display_name, before.email] if before is not None else []
    return erasure.erase_person(session, contact_id=contact_id, outbox=outbox, inbox=inbox, audit_log=audit_log,
                                known_values=known)


# --- co-operative trust --------------------------------------------------------------------------------------

def _to_participant(r) -> TrustParticipant:
    return TrustParticipant(r.party_id, r.name, r.trust_role, r.joined_on, r.left_on, bool(r.on_forum),
                            bool(r.successor_inherits))


def trust_participants_all(session) -> list[TrustParticipant]:
    return [_to_participant(r) for r in session.execute(select(trust_participants)
                                                        .order_by(trust_participants.c.party_id,
                                                                  trust_participants.c.joined_on))]


def add_participant(session, p: TrustParticipant) -> None:
    session.execute(insert(trust_participants).values(party_id=p.party_id, name=p.name, trust_role=p.trust_role,
                                                      joined_on=p.joined_on, left_on=p.left_on, on_forum=p.on_forum,
                                                      successor_inherits=p.successor_inherits))


def save_participant(session, p: TrustParticipant) -> None:
    session.execute(update(trust_participants).where(trust_participants.c.party_id == p.party_id,
                                                     trust_participants.c.left_on.is_(None))
                    .values(left_on=p.left_on, on_forum=p.on_forum, successor_inherits=p.successor_inherits))


def members_on(session, urns: list[str], day: dt.date) -> set[str]:
    rows = session.execute(select(members.c.urn).where(
        members.c.urn.in_(urns), members.c.status != "applied", members.c.joined_on <= day,
        or_(members.c.left_on.is_(None), members.c.left_on > day)))
    return {r.urn for r in rows}


def member_record_on(session, urn: str, day: dt.date) -> SchoolMember | None:
    row = session.execute(select(members).where(
        members.c.urn == urn, members.c.status != "applied", members.c.joined_on <= day,
        or_(members.c.left_on.is_(None), members.c.left_on > day))).first()
    return _to_member(row) if row else None




# --- governors' committee memberships ------------------------------------------------------------------------

def _to_committee(r) -> CommitteeMembership:
    return CommitteeMembership(r.contact_id, r.urn, r.committee, r.appointing_body, r.started_on, r.ended_on,
                               r.end_reason, r.id)


def add_committee_membership(session, m: CommitteeMembership) -> int:
    result = session.execute(insert(committee_memberships).values(
        contact_id=m.contact_id, urn=m.urn, committee=m.committee, appointing_body=m.appointing_body,
        started_on=m.started_on, ended_on=m.ended_on, end_reason=m.end_reason))
    return result.inserted_primary_key[0]


def save_committee_membership(session, m: CommitteeMembership) -> None:
    session.execute(update(committee_memberships).where(committee_memberships.c.id == m.id)
                    .values(ended_on=m.ended_on, end_reason=m.end_reason))


def committee_membership(session, membership_id: int) -> CommitteeMembership | None:
    row = session.execute(select(committee_memberships).where(committee_memberships.c.id == membership_id)).first()
    return _to_committee(row) if row else None


def committee_memberships_of(session, *, urn: str | None = None, contact_id: str | None = None,
                             on: dt.date | None = None) -> list[CommitteeMembership]:
    t = committee_memberships
    query = select(t).order_by(t.c.committee, t.c.started_on, t.c.id)
    if urn:
        query = query.where(t.c.urn == urn)
    if contact_id:
        query = query.where(t.c.contact_id == contact_id)
    if on is not None:
        query = query.where(t.c.started_on <= on, or_(t.c.ended_on.is_(None), t.c.ended_on > on))
    return [_to_committee(r) for r in session.execute(query)]


def committee_view(m: CommitteeMembership) -> dict:
    return {"membership_id": m.id, "contact_id": m.contact_id, "urn": m.urn, "committee": m.committee,
            "appointing_body": m.appointing_body, "started_on": m.started_on.isoformat(),
            "ended_on": m.ended_on.isoformat() if m.ended_on else None, "end_reason": m.end_reason}
