"""Membership use cases: each takes a unit of work and a validated command, and commits the change with the
events it causes (outbox) in one transaction; a refused command writes nothing."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import uuid

from membership.adapters import repository
from membership.domain import contacts as people
from membership.domain import lineage, model, register
from membership.service_layer import commands
from shared import business_date


# Replicas on one PostgreSQL database (`UnitOfWork.lock`): a use case about one school (or two, a
# conversion) holds those schools' locks, shared with each other under `register`; every other write
# (imports, contacts, organisations, the trust's register), rare and free to touch any school, holds
# `register` alone, so it runs by itself. Each takes its locks before reading anything: nothing is
# read, changed and written back over another replica's change, and no check-then-insert is raced.
REGISTER = "register"


def _lock_schools(uow, *urns: str) -> None:
    uow.lock(REGISTER, shared=True)
    uow.lock(*(f"school:{urn}" for urn in urns))


def _mat(data) -> model.Mat | None:
    return model.Mat(data["id"], data["name"]) if data else None


def _mat_json(mat: model.Mat | None):
    return {"id": mat.id, "name": mat.name} if mat else None


def _snapshot(member: model.SchoolMember) -> dict:
    return {"dfe_number": member.dfe_number, "name": member.name, "establishment_type": member.establishment_type,
            "phase": member.phase, "local_authority": member.local_authority, "postcode": member.postcode,
            "mat": _mat_json(member.mat), "number_on_roll": member.number_on_roll,
            "census_date": member.census_date.isoformat()}


def _new_member(uow, command: commands.JoinSchool, *, status: str) -> model.SchoolMember:
    return model.join_school(
        open_member=repository.open_member(uow.session, command.urn),
        last_left_on=repository.last_left_on(uow.session, command.urn),
        urn=command.urn, dfe_number=command.dfe_number, name=command.name,
        establishment_type=command.establishment_type, phase=command.phase,
        local_authority=command.local_authority, postcode=command.postcode,
        number_on_roll=command.number_on_roll, census_date=command.census_date,
        joined_on=command.joined_on, mat=_mat(command.mat), status=status)


def _admitted(uow, member: model.SchoolMember, kind: str = "joined") -> None:
    repository.put_census(uow.session, member.urn, member.census_date, member.number_on_roll)
    repository.add_history(uow.session, [model.HistoryEntry(member.urn, member.joined_on, kind, _snapshot(member))])
    uow.publish("member_joined", member_joined_payload(member), aggregate=f"school:{member.urn}")


def join_school(uow, command: commands.JoinSchool) -> model.SchoolMember:
    """Admit a school (or re-admit one that left); commits the member and `member_joined` together."""
    with uow:
        _lock_schools(uow, command.urn)
        member = _new_member(uow, command, status="active")
        repository.add(uow.session, member)
        _admitted(uow, member)
        uow.commit()
    return member


def apply_to_join(uow, command: commands.JoinSchool) -> model.SchoolMember:
    """Record an application; nothing is published until it is accepted."""
    with uow:
        _lock_schools(uow, command.urn)
        member = _new_member(uow, command, status="applied")
        repository.add(uow.session, member)
        repository.add_history(uow.session, [model.HistoryEntry(member.urn, member.joined_on, "applied",
                                                                 _snapshot(member))])
        uow.commit()
    return member


def _open(uow, urn: str) -> model.SchoolMember:
    member = repository.open_member(uow.session, urn)
    if member is None:
        raise model.NotAMember("urn", f"no open membership for URN {urn}")
    return member


def activate(uow, urn: str, effective_date: dt.date) -> model.SchoolMember:
    with uow:
        _lock_schools(uow, urn)
        member = model.activate(_open(uow, urn), effective_date)
        repository.save(uow.session, member)
        _admitted(uow, member, kind="activated")
        uow.commit()
    return member


def leave(uow, urn: str, effective_date: dt.date, reason: str) -> model.SchoolMember:
    """The member leaves from `effective_date` (its first day no longer a member); publishes `member_left`."""
    with uow:
        _lock_schools(uow, urn)
        member = model.leave(_open(uow, urn), effective_date=effective_date, reason=reason)
        repository.save(uow.session, member)
        repository.add_history(uow.session, [model.HistoryEntry(urn, effective_date, "left",
                                                                {"reason": member.left_reason})])
        uow.publish("member_left", {"urn": urn, "name": member.name, "effective_date": effective_date,
                                    "reason": member.left_reason}, aggregate=f"school:{urn}")
        uow.commit()
    return member


def _details_changed_payload(member: model.SchoolMember, effective_date: dt.date, changes: dict) -> dict:
    return {"urn": member.urn, "effective_date": effective_date,
            "changes": {f: {"old": _mat_json(c["old"]) if f == "mat" else c["old"],
                            "new": _mat_json(c["new"]) if f == "mat" else c["new"]} for f, c in changes.items()},
            "name": member.name, "establishment_type": member.establishment_type, "phase": member.phase,
            "is_academy": member.is_academy, "mat": _mat_json(member.mat),
            "local_authority": member.local_authority, "postcode": member.postcode}


def change_details(uow, urn: str, effective_date: dt.date, proposed: dict) -> tuple[model.SchoolMember, dict]:
    """Publishes `member_details_changed` only when something really changed; a backdated change is kept in the
    dated history and never overwrites a later-dated one in the current record."""
    if "mat" in proposed:
        proposed = dict(proposed, mat=_mat(proposed["mat"]))
    with uow:
        _lock_schools(uow, urn)
        member, changes = model.change_details(_open(uow, urn), effective_date=effective_date,
                                               history=repository.history_of(uow.session, urn), **proposed)
        if changes:
            # the payload's snapshot is the current record (the latest effective state) even when the change
            # is backdated behind a later one: consumers apply events by aggregate sequence
            repository.save(uow.session, member)
            payload = _details_changed_payload(member, effective_date, changes)
            repository.add_history(uow.session, [model.HistoryEntry(urn, effective_date, "details_changed",
                                                                     payload["changes"])])
            if member.status == "active":
                uow.publish("member_details_changed", payload, aggregate=f"school:{urn}")
            uow.commit()
    return member, changes


def record_census(uow, urn: str, census_date: dt.date, number_on_roll: int):
    """Publishes `census_recorded` with the old and new figures (nothing when the same figure comes again)."""
    with uow:
        _lock_schools(uow, urn)
        member = _open(uow, urn)
        member, recorded = model.record_census(
            member, census_date=census_date, number_on_roll=number_on_roll,
            previous_on_that_date=repository.census_on(uow.session, urn, census_date),
            latest_before=repository.latest_census_before(uow.session, urn, census_date))
        if recorded is not None:
            repository.put_census(uow.session, urn, census_date, number_on_roll)
            if recorded.is_latest:
                repository.save(uow.session, member)
            repository.add_history(uow.session, [model.HistoryEntry(urn, census_date, "census_recorded", {
                "old_number_on_roll": recorded.old_number_on_roll, "number_on_roll": number_on_roll})])
            if member.status == "active":  # an application is announced, census and all, when accepted
                uow.publish("census_recorded", _census_payload(recorded), aggregate=f"school:{urn}")
            uow.commit()
    return member, recorded


def _census_payload(recorded: model.CensusRecorded) -> dict:
    return {"urn": recorded.urn, "census_date": recorded.census_date,
            "old_number_on_roll": recorded.old_number_on_roll, "number_on_roll": recorded.number_on_roll}


def convert_to_academy(uow, urn: str, command: commands.ConvertToAcademy) -> model.Conversion:
    """One command, one event: the maintained school closes, the academy opens (predecessor link), membership
    continuous; publishes `school_converted_to_academy` only (no member_joined / member_left)."""
    with uow:
        _lock_schools(uow, urn, command.successor_urn)
        predecessor = repository.open_member(uow.session, urn)
        if predecessor is None:
            raise model.NotAMember("urn", f"no open membership for URN {urn}")
        conversion = model.convert_to_academy(
            predecessor, successor_open=repository.open_member(uow.session, command.successor_urn),
            successor_urn=command.successor_urn, successor_dfe_number=command.successor_dfe_number,
            conversion_date=command.conversion_date, mat=_mat(command.mat),
            successor_name=command.successor_name,
            establishment_type=command.establishment_type or "academy_converter",
            phase=command.phase, postcode=command.postcode,
            number_on_roll=command.number_on_roll, census_date=command.census_date)
        old, new = conversion.predecessor, conversion.successor
        repository.save(uow.session, old)
        repository.add(uow.session, new)
        repository.put_census(uow.session, new.urn, new.census_date, new.number_on_roll)
        if not repository.link_exists(uow.session, old.urn, new.urn):
            repository.add_link(uow.session, lineage.Link(old.urn, new.urn, "academy_conversion",
                                                          conversion.conversion_date), source="conversion")
        repository.add_history(uow.session, [
            model.HistoryEntry(old.urn, conversion.conversion_date, "converted",
                               {"successor_urn": new.urn, "mat": _mat_json(conversion.mat)}),
            model.HistoryEntry(new.urn, conversion.conversion_date, "opened_by_conversion",
                               dict(_snapshot(new), predecessor_urn=old.urn,
                                    member_since=new.member_since.isoformat())),
        ])
        uow.publish("school_converted_to_academy", {
            "conversion_date": conversion.conversion_date,
            "predecessor": {"urn": old.urn, "dfe_number": old.dfe_number, "name": old.name},
            "successor": {"urn": new.urn, "dfe_number": new.dfe_number, "name": new.name,
                          "establishment_type": new.establishment_type, "phase": new.phase,
                          "local_authority": new.local_authority, "postcode": new.postcode,
                          "number_on_roll": new.number_on_roll, "census_date": new.census_date},
            "mat": _mat_json(conversion.mat)}, aggregate=f"school:{old.urn}")
        _carry_trust_participation(uow, old.urn, new, conversion.conversion_date)
        if command.carry_contacts:
            _carry_contacts(uow, old.urn, new.urn, conversion.conversion_date)
        uow.commit()
    return conversion


def _carry_trust_participation(uow, old_urn: str, new: model.SchoolMember, day: dt.date) -> None:
    """The academy takes over its predecessor's co-operative trust participation on the conversion date
    unless the trust's register recorded that it does not (`successor_inherits`)."""
    current = next((p for p in repository.trust_participants_all(uow.session)
                    if p.party_id == old_urn and p.left_on is None), None)
    if any(p.party_id == new.urn and p.left_on is None for p in repository.trust_participants_all(uow.session)):
        return  # the academy already has its own participation; never a second one
    carried = people.succeed_in_trust(current, successor_urn=new.urn, successor_name=new.name,
                                      conversion_date=day)
    if carried is None:
        return
    ended, successor = carried
    repository.save_participant(uow.session, ended)
    if successor is not None:
        repository.add_participant(uow.session, successor)


def _carry_contacts(uow, old_urn: str, new_urn: str, day: dt.date) -> None:
    """Opt-in at conversion: the people in role at the old school hold the same roles at the academy from the
    conversion date (the old roles end the same day); each change is a `contact_role_changed`."""
    for found in repository.contacts_at(uow.session, old_urn):
        if found["erased"]:
            continue
        held = next(r for r in repository.roles_of(uow.session, found["contact_id"])
                    if r.urn == old_urn and r.role == found["role"] and r.active)
        if day <= held.started_on:
            continue
        ended = dataclasses.replace(held, ended_on=day, end_reason="school converted to academy",
                                    may_commit_spending=False)
        repository.save_role(uow.session, ended)
        _role_event(uow, ended, found["display_name"], day)
        moved = dataclasses.replace(held, urn=new_urn, started_on=day, ended_on=None, end_reason=None)
        repository.add_role(uow.session, moved)
        _role_event(uow, moved, found["display_name"], day)


# --- bulk import of the DfE register -------------------------------------------------------------------------

@dataclasses.dataclass
class ImportReport:
    rows: int = 0
    joined: int = 0
    changed: int = 0
    census_updated: int = 0
    unchanged: int = 0
    rejected: list = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "joined": self.joined, "details_changed": self.changed,
                "census_recorded": self.census_updated, "unchanged": self.unchanged,
                "rejected_count": len(self.rejected), "rejected": self.rejected}


def _csv_reader(text: str) -> csv.DictReader:
    if "\x00" in text:
        raise ValueError("the file contains a NUL character (\\u0000), which no CSV file has")
    # newline="": the csv module then reads a line break inside a quoted field (and a bare \r) itself.
    return csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))


def _csv_rows(reader: csv.DictReader) -> list[tuple[int, dict]]:
    """Every (line, row), read now, so a malformed file is a ValueError (400) before anything is written."""
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise ValueError(f"not a readable CSV file: {exc} (line {reader.line_num})") from None


def read_register_csv(text: str):
    """(column map, list of (line, row)); raises ValueError naming missing columns, or a malformed file."""
    reader = _csv_reader(text)
    try:
        columns = register.column_map(reader.fieldnames or [])
    except csv.Error as exc:
        raise ValueError(f"not a readable CSV file: {exc} (line {reader.line_num})") from None
    return columns, _csv_rows(reader)


def import_schools(uow, text: str, *, known_types: set[str], census_date: dt.date, joined_on: dt.date,
                   effective_date: dt.date | None = None) -> ImportReport:
    """Bulk import in the DfE register's layout. Idempotent: a new URN joins (`member_joined`), a changed row
    publishes `member_details_changed` and/or `census_recorded`, an unchanged row nothing. Each rejected row is
    reported with its line, column and reason; the good rows are kept. One transaction for the whole file."""
    columns, rows = read_register_csv(text)
    effective_date = effective_date or joined_on
    report = ImportReport()
    accepted: dict[str, register.RegisterRow] = {}
    for line, row in rows:
        report.rows += 1
        try:
            parsed = register.read_row(line, row, columns, known_types=known_types, default_census=census_date,
                                       joined_on=joined_on)
        except register.RowRejected as exc:
            report.rejected.append({"line": line, "urn": (row.get(columns["urn"]) or "").strip(),
                                    "field": exc.field, "reason": exc.reason})
            continue
        if parsed.urn in accepted:
            report.rejected.append({"line": line, "urn": parsed.urn, "field": columns["urn"],
                                    "reason": f"URN repeated (first on line {accepted[parsed.urn].line})"})
            continue
        accepted[parsed.urn] = parsed
    with uow:
        uow.lock(REGISTER)
        session = uow.session
        current = repository.all_open_members(session)
        closed = repository.closed_urns(session)
        census = repository.all_census(session)
        # a row dated before a URN's latest change must not overwrite it: those few URNs replay their history
        last_changed = repository.latest_change_dates(session)
        new_members, changed_members, history = [], [], []
        census_new, census_changed = [], []
        events = []  # published in bulk, in file order, with the rows they describe
        for urn, row in accepted.items():
            member = current.get(urn)
            try:
                if member is None:
                    member = model.join_school(
                        open_member=None, last_left_on=closed.get(urn), urn=urn, dfe_number=row.dfe_number,
                        name=row.name, establishment_type=row.establishment_type, phase=row.phase,
                        local_authority=row.local_authority, postcode=row.postcode,
                        number_on_roll=row.number_on_roll, census_date=row.census_date, joined_on=joined_on,
                        mat=row.mat)
                    new_members.append(member)
                    census_new.append((urn, row.census_date, row.number_on_roll))
                    history.append(model.HistoryEntry(urn, joined_on, "joined", _snapshot(member)))
                    events.append(("member_joined", member_joined_payload(member), f"school:{urn}"))
                    report.joined += 1
                    continue
                row_effective = max(effective_date, member.joined_on)
                backdated = last_changed.get(urn) is not None and last_changed[urn] > row_effective
                changed, changes = model.change_details(
                    member, effective_date=row_effective,
                    history=repository.history_of(session, urn) if backdated else (), dfe_number=row.dfe_number,
                    name=row.name, establishment_type=row.establishment_type, phase=row.phase,
                    local_authority=row.local_authority, postcode=row.postcode, mat=row.mat)
                previous = census.get((urn, row.census_date))
                recorded = None
                if previous != row.number_on_roll and row.census_date >= changed.census_date:
                    latest_before = None if previous is not None else changed.number_on_roll
                    changed, recorded = model.record_census(
                        changed, census_date=row.census_date, number_on_roll=row.number_on_roll,
                        previous_on_that_date=previous, latest_before=latest_before)
            except model.MembershipRuleBroken as exc:
                report.rejected.append({"line": row.line, "urn": urn, "field": exc.field, "reason": exc.message})
                continue
            if not changes and recorded is None:
                report.unchanged += 1
                continue
            changed_members.append(changed)
            if changes:
                payload = _details_changed_payload(changed, max(effective_date, member.joined_on), changes)
                history.append(model.HistoryEntry(urn, payload["effective_date"], "details_changed",
                                                  payload["changes"]))
                if changed.status == "active":
                    events.append(("member_details_changed", payload, f"school:{urn}"))
                report.changed += 1
            if recorded is not None:
                (census_changed if previous is not None else census_new).append(
                    (urn, row.census_date, row.number_on_roll))
                history.append(model.HistoryEntry(urn, row.census_date, "census_recorded", {
                    "old_number_on_roll": recorded.old_number_on_roll, "number_on_roll": row.number_on_roll}))
                if changed.status == "active":
                    events.append(("census_recorded", _census_payload(recorded), f"school:{urn}"))
                report.census_updated += 1
        repository.add_many(session, new_members)
        repository.save_many(session, changed_members)
        repository.add_census_many(session, census_new)
        repository.update_census_many(session, census_changed)
        repository.add_history(session, history)
        uow.publish_many(events)
        uow.commit()
    report.rejected.sort(key=lambda r: r["line"])
    return report


def import_links(uow, text: str) -> lineage.LinkReport:
    """Import the register's predecessor/successor links (idempotent: a pair already held is skipped, a date
    learnt later is filled in). Reports what it could not use."""
    reader = _csv_reader(text)
    try:
        missing = {"URN", "LinkURN", "LinkType", "LinkEstablishedDate"} - set(reader.fieldnames or [])
    except csv.Error as exc:
        raise ValueError(f"not a readable CSV file: {exc} (line {reader.line_num})") from None
    if missing:
        raise ValueError(f"the file has no column {', '.join(sorted(missing))}")
    report = lineage.normalise_links(dict(row, line=line) for line, row in _csv_rows(reader))
    with uow:
        uow.lock(REGISTER)
        held = repository.existing_links(uow.session)
        new = [link for link in report.links if (link.predecessor_urn, link.successor_urn) not in held]
        dated = [link for link in report.links if (link.predecessor_urn, link.successor_urn) in held
                 and link.established_on and held[(link.predecessor_urn, link.successor_urn)][1] is None]
        repository.add_links_many(uow.session, new, source="gias")
        repository.update_link_dates(uow.session, dated)
        uow.commit()
    report.already_held = len(report.links) - len(new)
    return report


def lineage_of(session, urn: str) -> dict:
    """Which establishments `urn` replaced (predecessors, across conversions and merges) and what became of it."""
    before = lineage.trace(urn, lambda urns: repository.predecessors_of(session, urns))
    after = lineage.trace(urn, lambda urns: repository.successors_of(session, urns))
    names = repository.names_of(session, {s["urn"] for s in before + after} | {urn})

    def view(steps):
        return [dict(s, name=names.get(s["urn"]),
                     established_on=s["established_on"].isoformat() if s["established_on"] else None) for s in steps]
    return {"urn": urn, "name": names.get(urn), "predecessors": view(before), "successors": view(after)}


# --- views ---------------------------------------------------------------------------------------------------

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
    view.update(status=member.status, left_on=member.left_on, left_reason=member.left_reason,
                member_since=member.member_since)
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in view.items()}


# --- organisations (MATs, councils, partners) ----------------------------------------------------------------

def join_organisation(uow, command: commands.JoinOrganisation) -> dict:
    with uow:
        uow.lock(REGISTER)
        if repository.open_organisation(uow.session, command.id) is not None:
            raise model.AlreadyMember("id", f"{command.id} is already an open member")
        repository.add_organisation(uow.session, org_id=command.id, kind=command.kind,
                                    name=command.name.strip(), joined_on=command.joined_on)
        uow.commit()
    return {"id": command.id, "kind": command.kind, "name": command.name.strip(),
            "joined_on": command.joined_on.isoformat(), "left_on": None}


def organisation_leaves(uow, org_id: str, command: commands.Leave) -> dict:
    with uow:
        uow.lock(REGISTER)
        row = repository.open_organisation(uow.session, org_id)
        if row is None:
            raise model.NotAMember("id", f"no open organisation {org_id}")
        if command.effective_date <= row.joined_on:
            raise model.MembershipRuleBroken("effective_date", "leaving must be after joining "
                                                               f"({row.joined_on.isoformat()})")
        repository.close_organisation(uow.session, org_id, command.effective_date, command.reason.strip())
        uow.commit()
    return {"id": org_id, "kind": row.kind, "name": row.name, "joined_on": row.joined_on.isoformat(),
            "left_on": command.effective_date.isoformat(), "left_reason": command.reason.strip()}


# --- contacts ------------------------------------------------------------------------------------------------

def _role_event(uow, held: people.RoleHeld, display_name: str, effective_date: dt.date) -> None:
    uow.publish("contact_role_changed", {
        "contact_id": held.contact_id, "urn": held.urn, "display_name": display_name, "role": held.role,
        "may_commit_spending": held.may_commit_spending, "active": held.active, "effective_date": effective_date,
    }, aggregate=f"contact:{held.contact_id}")


def _live_contact(uow, contact_id: str):
    row = repository.contact(uow.session, contact_id)
    if row is None:
        raise model.NotAMember("contact_id", f"no contact {contact_id}")
    if row.erased_at is not None:
        raise model.MembershipRuleBroken("contact_id", "this person's data was erased; add them again as new")
    return row


def add_contact(uow, urn: str, command: commands.AddContact) -> dict:
    """A new person in a role at a member; publishes `contact_role_changed` (active)."""
    contact_id = str(uuid.uuid4())
    with uow:
        uow.lock(REGISTER)
        held = people.take_role(
            contact_id=contact_id, urn=urn, role=command.role, started_on=command.effective_date,
            may_commit_spending=command.may_commit_spending, current_roles=[],
            member_open=repository.member_record_on(uow.session, urn, command.effective_date) is not None
            or _active_now(uow, urn),
            appointment_type=command.appointment_type, committees=command.committees)
        repository.add_contact(uow.session, contact_id=contact_id, display_name=command.display_name.strip(),
                               email=command.email)
        repository.add_role(uow.session, held)
        _appoint_committees(uow, held, held.committees, held.started_on)
        _role_event(uow, held, command.display_name.strip(), held.started_on)
        uow.commit()
    return dict(repository.role_view(held), display_name=command.display_name.strip(), email=command.email)


def _active_now(uow, urn: str) -> bool:
    member = repository.open_member(uow.session, urn)
    return member is not None and member.status == "active"


def add_role(uow, contact_id: str, command: commands.AddRole) -> dict:
    with uow:
        uow.lock(REGISTER)
        row = _live_contact(uow, contact_id)
        urn = command.urn
        held = people.take_role(
            contact_id=contact_id, urn=urn, role=command.role, started_on=command.effective_date,
            may_commit_spending=command.may_commit_spending,
            current_roles=repository.roles_of(uow.session, contact_id),
            member_open=repository.member_record_on(uow.session, urn, command.effective_date) is not None
            or _active_now(uow, urn),
            appointment_type=command.appointment_type, committees=command.committees)
        repository.add_role(uow.session, held)
        _appoint_committees(uow, held, held.committees, held.started_on)
        _role_event(uow, held, row.display_name, held.started_on)
        uow.commit()
    return dict(repository.role_view(held), display_name=row.display_name)


def _held(uow, contact_id: str, urn: str, role: str) -> people.RoleHeld:
    for held in repository.roles_of(uow.session, contact_id):
        if held.urn == urn and held.role == role and held.active:
            return held
    raise model.NotAMember("role", f"contact {contact_id} holds no active {role} role at {urn}")


def change_role(uow, contact_id: str, urn: str, role: str, command: commands.ChangeRole) -> dict:
    """Spending authority and (governors) committees; publishes `contact_role_changed` when authority changes."""
    with uow:
        uow.lock(REGISTER)
        row = _live_contact(uow, contact_id)
        held = _held(uow, contact_id, urn, role)
        changed = held
        if command.may_commit_spending is not None:
            changed = people.change_spending(held, may_commit_spending=command.may_commit_spending) or held
        if command.committees is not None:
            if role not in people.GOVERNOR_ROLES:
                raise model.MembershipRuleBroken("committees", "committees are for governors only")
            wanted = tuple(sorted({people.tidy_committee(c) for c in command.committees if c.strip()}))
            day = command.effective_date
            sitting = {m.committee for m in repository.committee_memberships_of(
                uow.session, urn=urn, contact_id=contact_id, on=day)}
            # a change of committees is dated: the ones left end and the new ones start on effective_date
            _end_committees(uow, held, sitting - set(wanted), day, "left the committee")
            _appoint_committees(uow, held, sorted(set(wanted) - sitting), day)
            changed = dataclasses.replace(changed, committees=wanted)
        repository.save_role(uow.session, changed)
        if changed.may_commit_spending != held.may_commit_spending:
            _role_event(uow, changed, row.display_name, command.effective_date)
        uow.commit()
    return dict(repository.role_view(changed), display_name=row.display_name)


def end_role(uow, contact_id: str, urn: str, role: str, command: commands.EndRole) -> dict:
    with uow:
        uow.lock(REGISTER)
        row = _live_contact(uow, contact_id)
        ended = people.end_role(_held(uow, contact_id, urn, role), ended_on=command.effective_date,
                                reason=command.reason)
        repository.save_role(uow.session, ended)
        _end_committees_with_role(uow, ended, "role ended")
        _role_event(uow, ended, row.display_name, ended.ended_on)
        uow.commit()
    return dict(repository.role_view(ended), display_name=row.display_name)


def _appoint_committees(uow, held: people.RoleHeld, committees, day: dt.date) -> None:
    for committee in committees:
        membership = people.appoint_to_committee(
            contact_id=held.contact_id, urn=held.urn, committee=committee,
            appointing_body=people.DEFAULT_APPOINTING_BODY, started_on=day, ended_on=None,
            governor_roles=[dataclasses.replace(held, ended_on=None)],
            current=repository.committee_memberships_of(uow.session, urn=held.urn, contact_id=held.contact_id))
        repository.add_committee_membership(uow.session, membership)


def _end_committees(uow, held: people.RoleHeld, committees, day: dt.date, reason: str) -> None:
    for m in repository.committee_memberships_of(uow.session, urn=held.urn, contact_id=held.contact_id):
        if m.committee in committees and m.started_on < day and (m.ended_on is None or m.ended_on > day):
            repository.save_committee_membership(uow.session, people.end_committee_membership(
                m, ended_on=day, reason=reason))


def _end_committees_with_role(uow, ended: people.RoleHeld, reason: str) -> None:
    """A governor who leaves the board leaves its committees the same day (unless still a governor of the
    school in another governor role, e.g. chair)."""
    if ended.role not in people.GOVERNOR_ROLES:
        return
    if any(r.urn == ended.urn and r.role in people.GOVERNOR_ROLES and r.active and r.role != ended.role
           for r in repository.roles_of(uow.session, ended.contact_id)):
        return
    running = {m.committee for m in repository.committee_memberships_of(uow.session, urn=ended.urn,
                                                                        contact_id=ended.contact_id)
               if m.ended_on is None or m.ended_on > ended.ended_on}
    _end_committees(uow, ended, running, ended.ended_on, reason)


def appoint_to_committee(uow, contact_id: str, command: commands.AppointToCommittee) -> dict:
    """A governor joins a committee for a term of office (start, optional end, appointing body)."""
    with uow:
        uow.lock(REGISTER)
        row = _live_contact(uow, contact_id)
        membership = people.appoint_to_committee(
            contact_id=contact_id, urn=command.urn, committee=command.committee,
            appointing_body=command.appointing_body, started_on=command.started_on,
            ended_on=command.ended_on, governor_roles=repository.roles_of(uow.session, contact_id),
            current=repository.committee_memberships_of(uow.session, urn=command.urn, contact_id=contact_id))
        membership.id = repository.add_committee_membership(uow.session, membership)
        _refresh_role_committees(uow, contact_id, command.urn)
        uow.commit()
    return dict(repository.committee_view(membership), display_name=row.display_name)


def end_committee_membership(uow, membership_id: int, command: commands.EndRole) -> dict:
    with uow:
        uow.lock(REGISTER)
        membership = repository.committee_membership(uow.session, membership_id)
        if membership is None:
            raise model.NotAMember("membership_id", f"no committee membership {membership_id}")
        ended = people.end_committee_membership(membership, ended_on=command.effective_date,
                                                reason=command.reason)
        repository.save_committee_membership(uow.session, ended)
        _refresh_role_committees(uow, ended.contact_id, ended.urn)
        uow.commit()
    return repository.committee_view(ended)


def _refresh_role_committees(uow, contact_id: str, urn: str) -> None:
    """The role's list of committees (its view) is the committees held today, from the dated memberships."""
    today = business_date.today()
    current = tuple(sorted({m.committee for m in repository.committee_memberships_of(
        uow.session, urn=urn, contact_id=contact_id, on=today)}))
    for held in repository.roles_of(uow.session, contact_id):
        if held.urn == urn and held.active and held.role in people.GOVERNOR_ROLES:
            repository.save_role(uow.session, dataclasses.replace(held, committees=current))


def committees_at(session, urn: str, on: dt.date | None = None) -> dict:
    """The committee memberships at a school: on a date (terms held that day) or the whole dated history."""
    found = repository.committee_memberships_of(session, urn=urn, on=on)
    names = {}
    for m in found:
        if m.contact_id not in names:
            names[m.contact_id] = repository.contact(session, m.contact_id).display_name
    return {"urn": urn, "on": on.isoformat() if on else None,
            "memberships": [dict(repository.committee_view(m), display_name=names[m.contact_id]) for m in found]}


def record_training(uow, contact_id: str, command: commands.RecordTraining, today: dt.date) -> dict:
    with uow:
        uow.lock(REGISTER)
        _live_contact(uow, contact_id)
        if not any(r.role in people.GOVERNOR_ROLES for r in repository.roles_of(uow.session, contact_id)):
            raise model.MembershipRuleBroken("contact_id", "training records are kept for governors")
        course = people.check_training(course=command.course, completed_on=command.completed_on, today=today)
        repository.add_training(uow.session, contact_id, course, command.completed_on)
        uow.commit()
    return {"contact_id": contact_id, "course": course, "completed_on": command.completed_on.isoformat()}


def export_contact(session, contact_id: str) -> dict | None:
    """Everything held on a person (subject access)."""
    row = repository.contact(session, contact_id)
    if row is None:
        return None
    return {"contact_id": contact_id, "display_name": row.display_name, "email": row.email,
            "created_at": row.created_at.isoformat() + "Z",
            "erased_at": row.erased_at.isoformat() + "Z" if row.erased_at else None,
            "roles": [repository.role_view(r) for r in repository.roles_of(session, contact_id)],
            "organisation_roles": [repository.organisation_role_view(r)
                                   for r in repository.organisation_roles_of(session, contact_id)],
            "committee_memberships": [repository.committee_view(m)
                                      for m in repository.committee_memberships_of(session, contact_id=contact_id)],
            "training": repository.training_of(session, contact_id)}


def erase_contact(uow, contact_id: str) -> dict:
    """Erase a person's personal data, keep the non-personal history; publishes `contact_erased` (once)."""
    with uow:
        uow.lock(REGISTER)
        row = repository.contact(uow.session, contact_id)
        if row is None:
            raise model.NotAMember("contact_id", f"no contact {contact_id}")
        if row.erased_at is None:
            for held in repository.roles_of(uow.session, contact_id):
                if held.active:
                    # the person is gone: their roles end today so nobody can buy in their name
                    ended = dataclasses.replace(held, ended_on=max(business_date.today(), held.started_on
                                                                   + dt.timedelta(days=1)),
                                                end_reason="personal data erased", may_commit_spending=False)
                    repository.save_role(uow.session, ended)
                    _end_committees_with_role(uow, ended, "personal data erased")
            for held in repository.organisation_roles_of(uow.session, contact_id):
                if held.active:
                    repository.save_organisation_role(uow.session, dataclasses.replace(
                        held, ended_on=max(business_date.today(), held.started_on + dt.timedelta(days=1)),
                        end_reason="personal data erased", may_commit_spending=False))
            repository.erase_contact(uow.session, contact_id, people.ERASED_NAME)
            uow.publish("contact_erased", {"contact_id": contact_id}, aggregate=f"contact:{contact_id}")
            uow.commit()
    return {"contact_id": contact_id, "erased": True}


# --- contacts at MATs, councils and partners (interface D) ---------------------------------------------------

def _organisation_role_event(uow, held: people.OrganisationRole, organisation_name: str, display_name: str,
                             email: str | None, effective_date: dt.date) -> None:
    uow.publish("organisation_contact_role_changed", {
        "contact_id": held.contact_id, "organisation_kind": held.organisation_kind,
        "organisation_id": held.organisation_id, "organisation_name": organisation_name,
        "display_name": display_name, "email": email, "role": held.role,
        "may_commit_spending": held.may_commit_spending, "active": held.active, "effective_date": effective_date,
    }, aggregate=f"contact:{held.contact_id}")


def _organisation_role(uow, *, contact_id: str, org_id: str, command: commands.AddOrganisationContact | commands.AddOrganisationRole, current: list):
    organisation = repository.organisation_on(uow.session, org_id, command.effective_date)
    held = people.take_organisation_role(
        contact_id=contact_id, organisation_id=org_id,
        organisation_kind=organisation.kind if organisation else None, role=command.role,
        started_on=command.effective_date, may_commit_spending=command.may_commit_spending,
        current_roles=current)
    return held, organisation


def add_organisation_contact(uow, org_id: str, command: commands.AddOrganisationContact) -> dict:
    """A new person in a role at a MAT, council or partner; publishes `organisation_contact_role_changed`."""
    contact_id = str(uuid.uuid4())
    display_name = command.display_name.strip()
    with uow:
        uow.lock(REGISTER)
        held, organisation = _organisation_role(uow, contact_id=contact_id, org_id=org_id, command=command,
                                                current=[])
        repository.add_contact(uow.session, contact_id=contact_id, display_name=display_name,
                               email=command.email)
        repository.add_organisation_role(uow.session, held)
        _organisation_role_event(uow, held, organisation.name, display_name, command.email, held.started_on)
        uow.commit()
    return dict(repository.organisation_role_view(held), display_name=display_name, email=command.email)


def add_organisation_role(uow, contact_id: str, command: commands.AddOrganisationRole) -> dict:
    """An existing person (at a school or another organisation) takes a role at an organisation."""
    with uow:
        uow.lock(REGISTER)
        row = _live_contact(uow, contact_id)
        held, organisation = _organisation_role(
            uow, contact_id=contact_id, org_id=command.organisation_id, command=command,
            current=repository.organisation_roles_of(uow.session, contact_id))
        repository.add_organisation_role(uow.session, held)
        _organisation_role_event(uow, held, organisation.name, row.display_name, row.email, held.started_on)
        uow.commit()
    return dict(repository.organisation_role_view(held), display_name=row.display_name)


def end_organisation_role(uow, contact_id: str, org_id: str, role: str, command: commands.EndRole) -> dict:
    with uow:
        uow.lock(REGISTER)
        row = _live_contact(uow, contact_id)
        held = next((r for r in repository.organisation_roles_of(uow.session, contact_id)
                     if r.organisation_id == org_id and r.role == role and r.active), None)
        if held is None:
            raise model.NotAMember("role", f"contact {contact_id} holds no active {role} role at {org_id}")
        ended = people.end_organisation_role(held, ended_on=command.effective_date, reason=command.reason)
        repository.save_organisation_role(uow.session, ended)
        organisation = repository.open_organisation(uow.session, org_id) or \
            repository.organisation_on(uow.session, org_id, held.started_on)
        _organisation_role_event(uow, ended, organisation.name, row.display_name, row.email, ended.ended_on)
        uow.commit()
    return dict(repository.organisation_role_view(ended), display_name=row.display_name)


# --- co-operative trust --------------------------------------------------------------------------------------

def join_trust(uow, command: commands.JoinTrust) -> dict:
    with uow:
        uow.lock(REGISTER)
        party_id = command.urn or command.id
        name = command.name
        is_member = False
        if command.trust_role == "member":
            record = repository.member_record_on(uow.session, party_id, command.joined_on)
            is_member = record is not None
            name = name or (record.name if record else party_id)
        participant = people.join_trust(party_id=party_id, name=name or party_id, trust_role=command.trust_role,
                                        joined_on=command.joined_on,
                                        current=repository.trust_participants_all(uow.session),
                                        is_partnership_member=is_member)
        participant = dataclasses.replace(participant, on_forum=bool(command.on_forum))
        repository.add_participant(uow.session, participant)
        uow.commit()
    return participant_view(participant)


def leave_trust(uow, party_id: str, left_on: dt.date) -> dict:
    with uow:
        uow.lock(REGISTER)
        current = [p for p in repository.trust_participants_all(uow.session)
                   if p.party_id == party_id and p.left_on is None]
        if not current:
            raise model.NotAMember("party_id", f"{party_id} is not in the co-operative trust")
        left = people.leave_trust(current[0], left_on=left_on)
        repository.save_participant(uow.session, left)
        uow.commit()
    return participant_view(left)


def set_forum(uow, party_id: str, on_forum: bool) -> dict:
    with uow:
        uow.lock(REGISTER)
        current = [p for p in repository.trust_participants_all(uow.session)
                   if p.party_id == party_id and p.left_on is None]
        if not current:
            raise model.NotAMember("party_id", f"{party_id} is not in the co-operative trust")
        changed = dataclasses.replace(current[0], on_forum=on_forum)
        repository.save_participant(uow.session, changed)
        uow.commit()
    return participant_view(changed)


def set_succession(uow, party_id: str, successor_inherits: bool) -> dict:
    """Record the trust's decision whether an academy replacing this member school inherits its participation."""
    with uow:
        uow.lock(REGISTER)
        current = [p for p in repository.trust_participants_all(uow.session)
                   if p.party_id == party_id and p.left_on is None]
        if not current:
            raise model.NotAMember("party_id", f"{party_id} is not in the co-operative trust")
        if current[0].trust_role != "member":
            raise model.MembershipRuleBroken("successor_inherits", "only a member school has a successor; "
                                                                   "partners do not convert")
        changed = dataclasses.replace(current[0], successor_inherits=successor_inherits)
        repository.save_participant(uow.session, changed)
        uow.commit()
    return participant_view(changed)


def participant_view(p: people.TrustParticipant) -> dict:
    return {"party_id": p.party_id, "name": p.name, "trust_role": p.trust_role, "joined_on": p.joined_on.isoformat(),
            "left_on": p.left_on.isoformat() if p.left_on else None, "on_forum": p.on_forum,
            "successor_inherits": p.successor_inherits}


def trust_on(session, day: dt.date) -> dict:
    participants = repository.trust_participants_all(session)
    urns = [p.party_id for p in participants if p.trust_role == "member"]
    members_then = repository.members_on(session, urns, day) if urns else set()
    voters = people.voters_on(participants, day, lambda urn: urn in members_then)
    present = [p for p in participants if p.in_trust_on(day)]
    return {"date": day.isoformat(), "voters": voters, "total_votes": len(voters),
            "partners": [participant_view(p) for p in present if p.trust_role == "partner"],
            "forum": [participant_view(p) for p in present if p.on_forum]}
