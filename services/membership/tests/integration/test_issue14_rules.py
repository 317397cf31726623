"""Issue 14, membership rules 7-10, through the use cases on SQLite and PostgreSQL."""
import datetime as dt

import pytest

from membership.adapters import repository
from membership.domain import model
from membership.service_layer import commands, handlers

D = dt.date
TRUST = {"id": "TR01234", "name": "Chiltern Learning Trust"}


def school(**overrides):
    data = dict(urn="110394", dfe_number="825/2001", name="Haddenham Community Infant School",
                establishment_type="community", phase="primary", local_authority="Buckinghamshire",
                postcode="HP17 8DS", number_on_roll=172, census_date=D(2019, 10, 3), joined_on=D(2020, 4, 1),
                mat=None)
    data.update(overrides)
    return commands.JoinSchool(**data)


def votes(uows, day):
    with uows.read() as session:
        found = handlers.trust_on(session, day)
    return found["total_votes"], [v["urn"] for v in found["voters"]]


def convert(uows, urn="110394", successor="149876", day=D(2027, 9, 1)):
    return handlers.convert_to_academy(uows(), urn, commands.ConvertToAcademy(successor_urn=successor, conversion_date=day,
                                                     mat=TRUST))


class TestRule7ConversionKeepsTheCooperativeVote:
    def test_rule_7_the_academy_inherits_the_vote_on_the_conversion_date_and_never_votes_twice(self, stores):
        handlers.join_school(stores(), school())
        handlers.join_school(stores(), school(urn="110395", dfe_number="825/2002", name="Other School"))
        for urn in ("110394", "110395"):
            handlers.join_trust(stores(), commands.JoinTrust(trust_role="member", urn=urn, joined_on=D(2021, 1, 1),
                                           on_forum=urn == "110394"))
        convert(stores)
        assert votes(stores, D(2027, 8, 31)) == (2, ["110394", "110395"])
        assert votes(stores, D(2027, 9, 1)) == (2, ["110395", "149876"])
        with stores.read() as session:
            found = handlers.trust_on(session, D(2027, 9, 1))
            participants = repository.trust_participants_all(session)
        assert [p["party_id"] for p in found["forum"]] == ["149876"]  # the forum seat goes with the vote
        old = [p for p in participants if p.party_id == "110394"]
        assert [p.left_on for p in old] == [D(2027, 9, 1)]
        for day in (D(2027, 8, 31), D(2027, 9, 1), D(2028, 1, 1)):
            total, voters = votes(stores, day)
            assert total == len(set(voters)) == 2

    def test_rule_7_the_register_can_say_the_successor_does_not_inherit(self, stores):
        handlers.join_school(stores(), school())
        handlers.join_trust(stores(), commands.JoinTrust(trust_role="member", urn="110394", joined_on=D(2021, 1, 1)))
        assert handlers.set_succession(stores(), "110394", False)["successor_inherits"] is False
        convert(stores)
        assert votes(stores, D(2027, 8, 31)) == (1, ["110394"])
        assert votes(stores, D(2027, 9, 1)) == (0, [])

    def test_rule_7_a_school_outside_the_trust_gives_its_academy_no_vote(self, stores):
        handlers.join_school(stores(), school())
        convert(stores)
        assert votes(stores, D(2027, 9, 1)) == (0, [])


class TestRule8BackdatedChange:
    def test_rule_8_a_backdated_change_never_overwrites_a_later_dated_one(self, stores):
        handlers.join_school(stores(), school(name="Haddenham Infant School"))
        handlers.change_details(stores(), "110394", D(2026, 9, 1), {"name": "Haddenham September Name"})
        member, changes = handlers.change_details(stores(), "110394", D(2026, 1, 1),
                                                  {"name": "Haddenham January Name"})
        assert changes == {"name": {"old": "Haddenham Infant School", "new": "Haddenham January Name"}}
        assert member.name == "Haddenham September Name"
        with stores.read() as session:
            assert repository.open_member(session, "110394").name == "Haddenham September Name"
            history = repository.history_of(session, "110394")
        answers = {day: model.details_on(history, day)["name"]
                   for day in (D(2025, 12, 31), D(2026, 1, 1), D(2026, 8, 31), D(2026, 9, 1), D(2027, 1, 1))}
        assert answers == {D(2025, 12, 31): "Haddenham Infant School", D(2026, 1, 1): "Haddenham January Name",
                           D(2026, 8, 31): "Haddenham January Name", D(2026, 9, 1): "Haddenham September Name",
                           D(2027, 1, 1): "Haddenham September Name"}
        published = stores.events("member_details_changed")
        assert [e["effective_date"] for e in published] == ["2026-09-01", "2026-01-01"]
        # consumers apply by aggregate sequence: the later event's snapshot must be the latest effective state
        assert published[-1]["name"] == "Haddenham September Name"
        assert published[-1]["changes"] == {"name": {"old": "Haddenham Infant School",
                                                     "new": "Haddenham January Name"}}

    def test_rule_8_a_backdated_mat_change_keeps_the_later_mat_current_and_answers_mat_on(self, stores):
        handlers.join_school(stores(), school(establishment_type="academy_converter", mat=TRUST))
        later = {"id": "TR09999", "name": "Later Trust"}
        earlier = {"id": "TR05555", "name": "Earlier Trust"}
        handlers.change_details(stores(), "110394", D(2026, 9, 1), {"mat": later})
        member, _ = handlers.change_details(stores(), "110394", D(2026, 1, 1), {"mat": earlier})
        assert member.mat == model.Mat(**later)
        with stores.read() as session:
            history = repository.history_of(session, "110394")
        assert model.mat_on(history, D(2026, 3, 1)) == earlier
        assert model.mat_on(history, D(2026, 10, 1)) == later
        assert stores.events("member_details_changed")[-1]["mat"] == later

    def test_rule_8_a_backdated_import_row_does_not_overwrite_a_later_change(self, stores):
        handlers.join_school(stores(), school(name="Haddenham Infant School"))
        handlers.change_details(stores(), "110394", D(2026, 9, 1), {"name": "Haddenham September Name"})
        csv = ("URN,LAESTAB,LA (name),EstablishmentName,TypeOfEstablishment (name),PhaseOfEducation (name),"
               "NumberOfPupils,Postcode,CensusDate\r\n"
               "110394,8252001,Buckinghamshire,Haddenham Imported Name,Community school,Primary,172,HP17 8DS,"
               "03-10-2019\r\n")
        report = handlers.import_schools(stores(), csv, known_types={"Community school"},
                                         census_date=D(2019, 10, 3), joined_on=D(2020, 4, 1),
                                         effective_date=D(2026, 2, 1))
        assert report.changed == 1
        with stores.read() as session:
            assert repository.open_member(session, "110394").name == "Haddenham September Name"
            history = repository.history_of(session, "110394")
        assert model.details_on(history, D(2026, 3, 1))["name"] == "Haddenham Imported Name"
        assert stores.events("member_details_changed")[-1]["name"] == "Haddenham September Name"


class TestRule9ContactsAtOrganisations:
    def test_rule_9_a_mat_council_and_partner_have_contacts_in_roles_that_fit(self, stores):
        handlers.join_organisation(stores(), commands.JoinOrganisation(id="TR01234", kind="mat", name="Chiltern Learning Trust",
                                              joined_on=D(2020, 1, 1)))
        handlers.join_organisation(stores(), commands.JoinOrganisation(id="BC", kind="council", name="Buckinghamshire Council",
                                              joined_on=D(2020, 1, 1)))
        finance = handlers.add_organisation_contact(stores(), "TR01234", commands.AddOrganisationContact(
            display_name="B. Finance", email="finance@chiltern.example", role="finance_contact",
            effective_date=D(2026, 4, 1)))
        assert finance["may_commit_spending"] is True and finance["active"] is True
        with pytest.raises(model.MembershipRuleBroken) as wrong:
            handlers.add_organisation_contact(stores(), "BC", commands.AddOrganisationContact(display_name="C. Eo", role="ceo",
                                                               effective_date=D(2026, 4, 1)))
        assert wrong.value.field == "role" and "council's contact roles are finance_contact, main_contact" \
            in wrong.value.message
        with pytest.raises(model.MembershipRuleBroken) as unknown:
            handlers.add_organisation_contact(stores(), "NOPE", commands.AddOrganisationContact(display_name="X", role="main_contact",
                                                                 effective_date=D(2026, 4, 1)))
        assert unknown.value.field == "organisation_id"
        main = handlers.add_organisation_role(stores(), finance["contact_id"], commands.AddOrganisationRole(
            organisation_id="BC", role="main_contact", effective_date=D(2026, 5, 1)))
        assert main["may_commit_spending"] is False
        handlers.end_organisation_role(stores(), finance["contact_id"], "TR01234", "finance_contact",
                                       commands.EndRole(effective_date=D(2027, 4, 1)))
        events = stores.events("organisation_contact_role_changed")
        assert [(e["organisation_id"], e["role"], e["active"]) for e in events] == [
            ("TR01234", "finance_contact", True), ("BC", "main_contact", True), ("TR01234", "finance_contact", False)]
        assert {k: v for k, v in events[0].items() if k not in ("_type", "contact_id")} == {
            "organisation_kind": "mat", "organisation_id": "TR01234", "organisation_name": "Chiltern Learning Trust",
            "display_name": "B. Finance", "email": "finance@chiltern.example", "role": "finance_contact",
            "may_commit_spending": True, "active": True, "effective_date": "2026-04-01"}
        assert stores.events("contact_role_changed") == []  # school contacts' event is untouched
        with stores.read() as session:
            on = repository.contacts_of_organisation(session, "TR01234", on=D(2026, 6, 1))
            assert [c["role"] for c in on] == ["finance_contact"]
            assert repository.contacts_of_organisation(session, "TR01234") == []

    def test_rule_9_erasure_covers_an_organisation_contact(self, stores):
        handlers.join_organisation(stores(), commands.JoinOrganisation(id="TR01234", kind="mat", name="Chiltern Learning Trust",
                                              joined_on=D(2020, 1, 1)))
        ceo = handlers.add_organisation_contact(stores(), "TR01234", commands.AddOrganisationContact(
            display_name="C. Eo", email="ceo@chiltern.example", role="ceo", effective_date=D(2020, 4, 1)))
        handlers.erase_contact(stores(), ceo["contact_id"])
        assert [e["contact_id"] for e in stores.events("contact_erased")] == [ceo["contact_id"]]
        with stores.read() as session:
            exported = handlers.export_contact(session, ceo["contact_id"])
        assert exported["email"] is None and exported["display_name"] == "[erased]"
        assert exported["organisation_roles"][0]["active"] is False


def governor(uows, **overrides):
    command = {"display_name": "G. Overnor", "role": "governor", "appointment_type": "parent",
               "effective_date": D(2024, 9, 1)}
    command.update(overrides)
    return handlers.add_contact(uows(), "110394", commands.AddContact(**command))


class TestRule10CommitteeMemberships:
    def test_rule_10_a_change_of_committees_is_dated_not_overwritten(self, stores):
        handlers.join_school(stores(), school())
        person = governor(stores, committees=["Finance"])
        handlers.change_role(stores(), person["contact_id"], "110394", "governor",
                             commands.ChangeRole(committees=["Curriculum"], effective_date=D(2025, 9, 1)))
        with stores.read() as session:
            def on(day):
                return [m["committee"] for m in handlers.committees_at(session, "110394", day)["memberships"]]
            assert on(D(2025, 8, 31)) == ["Finance"]
            assert on(D(2025, 9, 1)) == ["Curriculum"]
            history = handlers.committees_at(session, "110394")["memberships"]
        assert [(m["committee"], m["started_on"], m["ended_on"]) for m in history] == [
            ("Curriculum", "2025-09-01", None), ("Finance", "2024-09-01", "2025-09-01")]

    def test_rule_10_a_term_of_office_has_start_end_and_appointing_body(self, stores):
        handlers.join_school(stores(), school())
        person = governor(stores)
        term = handlers.appoint_to_committee(stores(), person["contact_id"], commands.AppointToCommittee(
            urn="110394", committee="Pay and Personnel", appointing_body="full governing board",
            started_on=D(2025, 1, 1), ended_on=D(2029, 1, 1)))
        assert (term["appointing_body"], term["started_on"], term["ended_on"]) == (
            "full governing board", "2025-01-01", "2029-01-01")
        with pytest.raises(model.MembershipRuleBroken) as overlap:
            handlers.appoint_to_committee(stores(), person["contact_id"], commands.AppointToCommittee(
                urn="110394", committee="Pay and Personnel", appointing_body="full governing board",
                started_on=D(2026, 1, 1), ended_on=None))
        assert overlap.value.field == "started_on"
        with pytest.raises(model.MembershipRuleBroken) as before_governor:
            handlers.appoint_to_committee(stores(), person["contact_id"], commands.AppointToCommittee(
                urn="110394", committee="Audit", appointing_body="full governing board",
                started_on=D(2024, 1, 1), ended_on=None))
        assert before_governor.value.field == "role"
        ended = handlers.end_committee_membership(stores(), term["membership_id"],
                                                  commands.EndRole(effective_date=D(2027, 1, 1), reason="resigned"))
        assert ended["ended_on"] == "2027-01-01" and ended["end_reason"] == "resigned"
        with stores.read() as session:
            assert handlers.committees_at(session, "110394", D(2027, 1, 1))["memberships"] == []
            assert len(handlers.committees_at(session, "110394", D(2026, 12, 31))["memberships"]) == 1

    def test_rule_10_a_governor_leaving_the_board_leaves_its_committees_that_day(self, stores):
        handlers.join_school(stores(), school())
        person = governor(stores, committees=["Finance", "Audit"])
        handlers.end_role(stores(), person["contact_id"], "110394", "governor",
                          commands.EndRole(effective_date=D(2026, 9, 1), reason="end of term"))
        with stores.read() as session:
            history = handlers.committees_at(session, "110394")["memberships"]
            assert handlers.committees_at(session, "110394", D(2026, 9, 1))["memberships"] == []
        assert [(m["committee"], m["ended_on"], m["end_reason"]) for m in history] == [
            ("Audit", "2026-09-01", "role ended"), ("Finance", "2026-09-01", "role ended")]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_rule_10_migration_0004_keeps_the_committees_held_before_it(tmp_path, backend):
    """The committees a role listed before migration 0004 become memberships over the role's dates."""
    import json
    import os
    import uuid

    from sqlalchemy import insert

    from membership.adapters.tables import contact_roles, contacts
    from shared.db import Database, drop_postgres_database, ensure_postgres_database
    from shared.messaging_tables import utcnow

    url = f"sqlite:///{tmp_path / 'old.db'}"
    if backend == "postgresql":
        admin = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
        url = admin.rsplit("/", 1)[0] + f"/t_membership_{uuid.uuid4().hex[:10]}"
        ensure_postgres_database(url)
    database = Database(url)
    database.upgrade("membership:migrations", "0003")
    with database.engine.begin() as connection:
        connection.execute(insert(contacts).values(contact_id="c1", display_name="G", created_at=utcnow()))
        connection.execute(insert(contact_roles).values(
            contact_id="c1", urn="110394", role="governor", may_commit_spending=False, started_on=D(2024, 9, 1),
            ended_on=D(2026, 9, 1), appointment_type="parent", committees=json.dumps(["Audit", "Finance"])))
    database.upgrade("membership:migrations")
    with database.reader() as session:
        found = repository.committee_memberships_of(session, urn="110394")
    assert [(m.committee, m.started_on, m.ended_on, m.appointing_body) for m in found] == [
        ("Audit", D(2024, 9, 1), D(2026, 9, 1), "governing_body"),
        ("Finance", D(2024, 9, 1), D(2026, 9, 1), "governing_body")]
    database.dispose()
    if backend == "postgresql":
        drop_postgres_database(url)
