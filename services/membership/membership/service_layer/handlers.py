"""Membership use cases: each takes a unit of work and a validated command."""
from __future__ import annotations

from membership.adapters import repository
from membership.domain import model


def join_school(uow, command: dict) -> model.SchoolMember:
    """Admit a school; commits the member and `member_joined` together."""
    with uow:
        mat = command.get("mat")
        member = model.join_school(
            open_member=repository.open_member(uow.session, command["urn"]),
            urn=command["urn"], dfe_number=command["dfe_number"], name=command["name"],
            establishment_type=command["establishment_type"], phase=command["phase"],
            local_authority=command["local_authority"], postcode=command["postcode"],
            number_on_roll=command["number_on_roll"], census_date=command["census_date"],
            joined_on=command["joined_on"], mat=model.Mat(mat["id"], mat["name"]) if mat else None)
        repository.add(uow.session, member)
        uow.publish("member_joined", member_joined_payload(member), aggregate=f"school:{member.urn}")
        uow.commit()
    return member


def member_joined_payload(member: model.SchoolMember) -> dict:
    return {
        "urn": member.urn, "dfe_number": member.dfe_number, "name": member.name, "kind": member.kind,
        "establishment_type": member.establishment_type, "phase": member.phase, "is_academy": member.is_academy,
        "mat": {"id": member.mat.id, "name": member.mat.name} if member.mat else None,
        "local_authority": member.local_authority, "postcode": member.postcode,
        "number_on_roll": member.number_on_roll, "census_date": member.census_date, "joined_on": member.joined_on,
    }


def member_view(member: model.SchoolMember) -> dict:
    view = member_joined_payload(member)
    view.update(status=member.status, left_on=member.left_on)
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in view.items()}
