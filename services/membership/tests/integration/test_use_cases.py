"""Use cases on a real SQLite database: every command commits its change and its events together, a refused
command writes nothing, and the bulk import is idempotent."""
import datetime as dt

import pytest

from membership.adapters import reference, repository
from membership.domain import model
from membership.service_layer import commands, handlers

D = dt.date


def school(**overrides):
    data = dict(urn="110394", dfe_number="825/2001", name="Haddenham Community Infant School",
                establishment_type="community", phase="primary", local_authority="Buckinghamshire",
                postcode="HP17 8DS", number_on_roll=172, census_date=D(2025, 10, 2), joined_on=D(2026, 4, 1), mat=None)
    data.update(overrides)
    return commands.JoinSchool(**data)


TRUST = {"id": "TR01234", "name": "Chiltern Learning Trust"}


class TestLifecycle:
    def test_join_leave_and_rejoin_answer_who_was_a_member_on_a_date(self, uows):
        handlers.join_school(uows(), school())
        handlers.leave(uows(), "110394", D(2027, 4, 1), "stopped buying")
        with pytest.raises(model.MembershipRuleBroken) as early:
            handlers.join_school(uows(), school(joined_on=D(2027, 3, 1)))
        assert early.value.field == "joined_on"
        handlers.join_school(uows(), school(joined_on=D(2028, 4, 1)))
        with uows.read() as session:
            def on(day):
                return [m.urn for m in repository.list_members(session, on=day)]
            assert on(D(2027, 3, 31)) == ["110394"]
            assert on(D(2027, 4, 1)) == []
            assert on(D(2028, 4, 1)) == ["110394"]
        assert [e["_type"] for e in uows.events()] == ["member_joined", "member_left", "member_joined"]
        left = uows.events("member_left")[0]
        assert left == {"_type": "member_left", "urn": "110394", "name": "Haddenham Community Infant School",
                        "effective_date": "2027-04-01", "reason": "stopped buying"}

    def test_second_open_record_is_refused_and_writes_nothing(self, uows):
        handlers.join_school(uows(), school())
        with pytest.raises(model.AlreadyMember):
            handlers.join_school(uows(), school())
        assert len(uows.events()) == 1

    def test_leaving_before_joining_is_refused(self, uows):
        handlers.join_school(uows(), school())
        with pytest.raises(model.MembershipRuleBroken) as refused:
            handlers.leave(uows(), "110394", D(2026, 3, 1), "x")
        assert refused.value.field == "effective_date"
        assert [e["_type"] for e in uows.events()] == ["member_joined"]

    def test_application_publishes_only_when_activated(self, uows):
        handlers.apply_to_join(uows(), school())
        assert uows.events() == []
        member = handlers.activate(uows(), "110394", D(2026, 5, 1))
        assert member.status == "active" and member.joined_on == D(2026, 5, 1)
        assert uows.events("member_joined")[0]["joined_on"] == "2026-05-01"

    def test_details_change_publishes_only_real_changes(self, uows):
        handlers.join_school(uows(), school())
        handlers.change_details(uows(), "110394", D(2026, 9, 1), {"name": "Haddenham Community Infant School"})
        assert uows.events("member_details_changed") == []
        handlers.change_details(uows(), "110394", D(2026, 9, 1), {"name": "Haddenham Infant", "postcode": "hp17 8dt"})
        changed = uows.events("member_details_changed")[0]
        assert changed["changes"] == {"name": {"old": "Haddenham Community Infant School", "new": "Haddenham Infant"},
                                      "postcode": {"old": "HP17 8DS", "new": "HP17 8DT"}}
        assert changed["is_academy"] is False and changed["mat"] is None


class TestCensus:
    def test_update_publishes_old_and_new_figures(self, uows):
        handlers.join_school(uows(), school())
        handlers.record_census(uows(), "110394", D(2026, 10, 1), 181)
        handlers.record_census(uows(), "110394", D(2026, 10, 1), 181)  # same figure again: nothing
        handlers.record_census(uows(), "110394", D(2026, 10, 1), 185)  # correction of that census
        assert [(e["old_number_on_roll"], e["number_on_roll"]) for e in uows.events("census_recorded")] == [
            (172, 181), (181, 185)]
        with uows.read() as session:
            assert repository.open_member(session, "110394").number_on_roll == 185

    def test_an_application_census_is_announced_with_the_joining(self, uows):
        handlers.apply_to_join(uows(), school())
        handlers.record_census(uows(), "110394", D(2026, 1, 15), 190)
        assert uows.events() == []
        handlers.activate(uows(), "110394", D(2026, 4, 1))
        joined = uows.events("member_joined")[0]
        assert (joined["number_on_roll"], joined["census_date"]) == (190, "2026-01-15")

    def test_census_of_a_left_school_is_refused(self, uows):
        handlers.join_school(uows(), school())
        handlers.leave(uows(), "110394", D(2027, 1, 1), "closed")
        with pytest.raises(model.NotAMember):
            handlers.record_census(uows(), "110394", D(2027, 10, 1), 100)


class TestConversion:
    def test_one_event_with_predecessor_successor_mat_and_date(self, uows):
        handlers.join_school(uows(), school())
        conversion = handlers.convert_to_academy(uows(), "110394", commands.ConvertToAcademy(
            successor_urn="149876", successor_name="Haddenham Infant Academy", conversion_date=D(2027, 9, 1),
            mat=TRUST))
        assert conversion.successor.member_since == D(2026, 4, 1)
        events = uows.events()
        assert [e["_type"] for e in events] == ["member_joined", "school_converted_to_academy"]
        event = events[1]
        assert event["predecessor"] == {"urn": "110394", "dfe_number": "825/2001",
                                        "name": "Haddenham Community Infant School"}
        assert event["successor"]["urn"] == "149876" and event["successor"]["establishment_type"] == "academy_converter"
        assert event["mat"] == TRUST and event["conversion_date"] == "2027-09-01"
        with uows.read() as session:
            lineage = handlers.lineage_of(session, "149876")
            assert [s["urn"] for s in lineage["predecessors"]] == ["110394"]
            assert [m.urn for m in repository.list_members(session, on=D(2027, 8, 31))] == ["110394"]
            assert [m.urn for m in repository.list_members(session, on=D(2027, 9, 1))] == ["149876"]
            assert model.mat_on(repository.history_of(session, "149876"), D(2027, 9, 1)) == TRUST
            assert model.mat_on(repository.history_of(session, "110394"), D(2027, 8, 31)) is None
            assert model.mat_on(repository.history_of(session, "110394"), D(2027, 9, 1)) is False

    def test_contacts_move_to_the_academy_only_when_asked(self, uows):
        handlers.join_school(uows(), school())
        head = handlers.add_contact(uows(), "110394", commands.AddContact(display_name="A. Head", role="head_teacher",
                                                       effective_date=D(2026, 4, 1)))
        handlers.convert_to_academy(uows(), "110394", commands.ConvertToAcademy(successor_urn="149876", conversion_date=D(2027, 9, 1),
                                                       mat=TRUST, carry_contacts=True))
        roles = [(e["urn"], e["active"], e["may_commit_spending"], e["effective_date"])
                 for e in uows.events("contact_role_changed")]
        assert roles == [("110394", True, True, "2026-04-01"), ("110394", False, False, "2027-09-01"),
                         ("149876", True, True, "2027-09-01")]
        with uows.read() as session:
            assert [c["contact_id"] for c in repository.contacts_at(session, "149876", role="head_teacher")] == [
                head["contact_id"]]
            assert repository.contacts_at(session, "110394") == []

    def test_an_academy_cannot_convert(self, uows):
        handlers.join_school(uows(), school(establishment_type="academy_converter", mat=TRUST))
        with pytest.raises(model.MembershipRuleBroken) as refused:
            handlers.convert_to_academy(uows(), "110394", commands.ConvertToAcademy(successor_urn="149876",
                                                           conversion_date=D(2027, 9, 1), mat=TRUST))
        assert "not a maintained school" in refused.value.message
        assert [e["_type"] for e in uows.events()] == ["member_joined"]


HEADER = "URN,LAESTAB,EstablishmentName,TypeOfEstablishment,PhaseOfEducation,NumberOfPupils,Postcode,Trusts\n"


class TestImport:
    def run(self, uows, text, **kw):
        return handlers.import_schools(uows(), text, known_types=reference.load_establishment_types(),
                                       census_date=D(2025, 10, 2), joined_on=D(2026, 4, 1), **kw)

    def test_rejects_bad_rows_keeps_good_ones_and_is_idempotent(self, uows):
        text = HEADER + (
            "110394,8252001,Haddenham Infant,Community school,Primary,172,HP17 8DS,\n"
            "137000,8254000,Aylesbury Grammar,Academy converter,Secondary,1300,HP21 7RP,Grammar Trust\n"
            "12345,8252002,Bad Urn,Community school,Primary,100,HP17 8DS,\n"
            "110395,8252003,Eton,Other independent school,Secondary,1300,SL4 6DW,\n"
            "110396,8252004,Wizard,School of wizardry,Primary,10,HP17 8DS,\n"
            "110397,8252005,No Trust Academy,Academy converter,Primary,10,HP17 8DS,\n"
            "110394,8252001,Haddenham Infant,Community school,Primary,172,HP17 8DS,\n"
            "110398,8252006,Bad postcode,Community school,Primary,10,NOWHERE,\n")
        report = self.run(uows, text)
        assert (report.joined, report.changed, report.unchanged) == (2, 0, 0)
        assert [(r["line"], r["field"]) for r in report.rejected] == [
            (4, "URN"), (5, "TypeOfEstablishment"), (6, "TypeOfEstablishment"), (7, "Trusts"), (8, "URN"),
            (9, "Postcode")]
        assert "not admitted" in report.rejected[1]["reason"] and "not in the DfE" in report.rejected[2]["reason"]
        assert len(uows.events("member_joined")) == 2
        again = self.run(uows, text)
        assert (again.joined, again.changed, again.census_updated, again.unchanged) == (0, 0, 0, 2)
        assert len(uows.events()) == 2
        changed = text.replace("Haddenham Infant,Community school,Primary,172", "Haddenham Infants,Community school,Primary,180", 1)
        third = self.run(uows, changed, effective_date=D(2026, 9, 1))
        assert (third.changed, third.census_updated, third.unchanged) == (1, 1, 1)
        assert [e["_type"] for e in uows.events()][2:] == ["member_details_changed", "census_recorded"]
        assert uows.events("census_recorded")[0]["old_number_on_roll"] == 172

    def test_missing_columns_are_named(self, uows):
        with pytest.raises(ValueError) as missing:
            self.run(uows, "URN,EstablishmentName\n110394,X\n")
        assert "TypeOfEstablishment" in str(missing.value)


class TestLinks:
    def test_both_directions_merges_empty_dates_and_chains(self, uows):
        text = ('"URN","LinkURN","LinkName","LinkType","LinkEstablishedDate"\n'
                '100016,132245,"K","Successor",""\n'
                '100017,132245,"K","Successor",""\n'
                '132245,100016,"A","Predecessor","01-09-2005"\n'
                '132245,140000,"K2","Successor - merged","01-09-2015"\n'
                '132245,150000,"X","Sixth Form Centre Link",""\n'
                '132245,132245,"X","Successor",""\n')
        report = handlers.import_links(uows(), text)
        summary = report.summary()
        assert summary["links"] == 3 and summary["listed_from_both_ends"] == 1
        assert summary["unused_by_reason"]["an establishment linked to itself"] == 1
        assert any("Sixth Form" in reason for reason in summary["unused_by_reason"])
        with uows.read() as session:
            found = handlers.lineage_of(session, "140000")
        assert [(s["generation"], s["urn"]) for s in found["predecessors"]] == [
            (1, "132245"), (2, "100016"), (2, "100017")]
        assert found["predecessors"][1]["established_on"] == "2005-09-01"
        again = handlers.import_links(uows(), text)
        assert again.already_held == 3

    def test_the_real_register_file(self, uows):
        from pathlib import Path
        path = Path(__file__).resolve().parents[5] / "shared/data/gias/links_edubasealldata20250422.csv"
        if not path.exists():
            pytest.skip("the GIAS links file is not beside the worktree")
        report = handlers.import_links(uows(), reference.read_text(str(path), "links"))
        summary = report.summary()
        assert summary["rows_read"] == 33801  # the last line has no newline
        assert 16000 < summary["links"] < 17500
        assert summary["unused_by_reason"]
