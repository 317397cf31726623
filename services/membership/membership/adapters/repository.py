"""Reads and writes members through a unit of work's session."""
from __future__ import annotations

from sqlalchemy import insert, select

from membership.adapters.tables import members
from membership.domain.model import Mat, SchoolMember


def _to_member(row) -> SchoolMember:
    mat = Mat(row.mat_id, row.mat_name) if row.mat_id else None
    return SchoolMember(urn=row.urn, dfe_number=row.dfe_number, name=row.name,
                        establishment_type=row.establishment_type, phase=row.phase,
                        local_authority=row.local_authority, postcode=row.postcode,
                        number_on_roll=row.number_on_roll, census_date=row.census_date, joined_on=row.joined_on,
                        mat=mat, status=row.status, left_on=row.left_on)


def open_member(session, urn: str) -> SchoolMember | None:
    row = session.execute(select(members).where(members.c.urn == urn, members.c.left_on.is_(None))).first()
    return _to_member(row) if row else None


def list_members(session, *, status: str | None = None, phase: str | None = None, limit: int = 500,
                 offset: int = 0) -> list[SchoolMember]:
    query = select(members).order_by(members.c.urn, members.c.id)
    if status:
        query = query.where(members.c.status == status)
    if phase:
        query = query.where(members.c.phase == phase)
    return [_to_member(r) for r in session.execute(query.limit(limit).offset(offset))]


def add(session, member: SchoolMember) -> None:
    session.execute(insert(members).values(
        urn=member.urn, dfe_number=member.dfe_number, name=member.name, kind=member.kind,
        establishment_type=member.establishment_type, phase=member.phase, local_authority=member.local_authority,
        postcode=member.postcode, number_on_roll=member.number_on_roll, census_date=member.census_date,
        mat_id=member.mat.id if member.mat else None, mat_name=member.mat.name if member.mat else None,
        status=member.status, joined_on=member.joined_on, left_on=member.left_on))
