"""Lineage from the DfE links, register rows, contacts and governors, co-operative voting."""
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.domain import contacts as people
from membership.domain import lineage, register
from membership.domain.model import MembershipRuleBroken

D = dt.date


def row(urn, link, link_type, date=""):
    return {"URN": urn, "LinkURN": link, "LinkType": link_type, "LinkEstablishedDate": date}


class TestLinks:
    def test_both_ends_are_one_link_and_the_date_on_either_end_is_kept(self):
        report = lineage.normalise_links([row("100016", "132245", "Successor"),
                                          row("132245", "100016", "Predecessor", "01-09-2005")])
        assert report.links == [lineage.Link("100016", "132245", "conversion", D(2005, 9, 1))]
        assert report.both_directions == 1

    def test_a_merge_keeps_every_predecessor(self):
        report = lineage.normalise_links([row("100016", "132245", "Successor - merged"),
                                          row("100017", "132245", "Successor - merged")])
        assert {link.predecessor_urn for link in report.links} == {"100016", "100017"}
        assert {link.kind for link in report.links} == {"merged"}

    def test_empty_dates_are_kept_as_unknown(self):
        report = lineage.normalise_links([row("100016", "132245", "Predecessor")])
        assert report.links[0].established_on is None and report.undated == 1
        assert report.links[0].predecessor_urn == "132245"

    @pytest.mark.parametrize("bad, reason", [
        (row("100016", "132245", "Sixth Form Centre Link"), "not a predecessor/successor link"),
        (row("10001", "132245", "Successor"), "not 6 digits"),
        (row("100016", "100016", "Successor"), "linked to itself"),
        (row("100016", "132245", "Successor", "2005-09-01"), "unreadable date"),
    ])
    def test_what_cannot_be_used_is_reported(self, bad, reason):
        report = lineage.normalise_links([bad])
        assert report.links == [] and any(reason in key for key in report.unused)

    def test_trace_follows_several_generations_and_stops_on_cycles(self):
        edges = {"C": [("B", "conversion")], "B": [("A", "merged")], "A": [("C", "conversion")]}

        def neighbours(urns):
            return {u: [(lineage.Link(o, u, k, None), o) for o, k in edges.get(u, [])] for u in urns}
        steps = lineage.trace("C", neighbours)
        assert [(s["generation"], s["urn"]) for s in steps] == [(1, "B"), (2, "A"), (3, "C")]

    @given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=80))
    def test_trace_always_terminates_and_visits_each_urn_once(self, pairs):
        edges = {}
        for a, b in pairs:
            edges.setdefault(f"{b:06d}", []).append(f"{a:06d}")

        def neighbours(urns):
            return {u: [(lineage.Link(o, u, "conversion", None), o) for o in edges.get(u, [])] for u in urns}
        steps = lineage.trace("000000", neighbours)
        assert len({s["from_urn"] for s in steps}) <= 31


COLUMNS = register.column_map(["URN", "LAESTAB", "EstablishmentName", "TypeOfEstablishment", "PhaseOfEducation",
                               "NumberOfPupils", "Postcode", "Trusts"])
TYPES = {"Community school", "Academy converter", "Other independent school"}


def read(**overrides):
    data = {"URN": "110394", "LAESTAB": "8252001", "EstablishmentName": " Haddenham  Infant ",
            "TypeOfEstablishment": "Community school", "PhaseOfEducation": "Primary", "NumberOfPupils": "172",
            "Postcode": "hp17 8ds", "Trusts": ""}
    data.update(overrides)
    return register.read_row(2, data, COLUMNS, known_types=TYPES, default_census=D(2025, 10, 2),
                             joined_on=D(2026, 4, 1))


class TestRegisterRows:
    def test_a_good_row(self):
        parsed = read()
        assert (parsed.dfe_number, parsed.name, parsed.establishment_type, parsed.postcode, parsed.mat) == (
            "825/2001", "Haddenham Infant", "community", "HP17 8DS", None)

    def test_an_academy_gets_a_stable_mat_id_from_its_trust_name(self):
        one = read(TypeOfEstablishment="Academy converter", Trusts="Great  Learners Trust")
        two = read(TypeOfEstablishment="Academy converter", Trusts="great learners trust")
        assert one.mat.id == two.mat.id and one.mat.name == "Great Learners Trust"

    @pytest.mark.parametrize("overrides, column", [
        ({"URN": "11039"}, "URN"), ({"LAESTAB": "825-2001"}, "LAESTAB"), ({"EstablishmentName": ""}, "EstablishmentName"),
        ({"TypeOfEstablishment": "Hogwarts"}, "TypeOfEstablishment"),
        ({"TypeOfEstablishment": "Other independent school"}, "TypeOfEstablishment"),
        ({"PhaseOfEducation": "Sixth"}, "PhaseOfEducation"), ({"NumberOfPupils": "-3"}, "NumberOfPupils"),
        ({"NumberOfPupils": ""}, "NumberOfPupils"), ({"Postcode": "NOWHERE"}, "Postcode"),
        ({"TypeOfEstablishment": "Academy converter"}, "Trusts"),
    ])
    def test_bad_rows_name_the_column(self, overrides, column):
        with pytest.raises(register.RowRejected) as rejected:
            read(**overrides)
        assert rejected.value.field == column

    def test_missing_columns_are_named(self):
        with pytest.raises(ValueError) as missing:
            register.column_map(["URN", "EstablishmentName"])
        assert "TypeOfEstablishment" in str(missing.value) and "LAESTAB" in str(missing.value)

    def test_gias_long_column_names_and_la_code_plus_number(self):
        columns = register.column_map(["URN", "LA (code)", "LA (name)", "EstablishmentNumber", "EstablishmentName",
                                       "TypeOfEstablishment (name)", "PhaseOfEducation (name)", "NumberOfPupils",
                                       "Postcode", "CensusDate", "EstablishmentStatus (name)"])
        data = {"URN": "110394", "LA (code)": "825", "LA (name)": "Buckinghamshire", "EstablishmentNumber": "2001",
                "EstablishmentName": "X", "TypeOfEstablishment (name)": "Community school",
                "PhaseOfEducation (name)": "Primary", "NumberOfPupils": "5", "Postcode": "HP17 8DS",
                "CensusDate": "16-01-2025", "EstablishmentStatus (name)": "Open"}
        parsed = register.read_row(2, data, columns, known_types=TYPES, default_census=D(2025, 10, 2),
                                   joined_on=D(2026, 4, 1))
        assert (parsed.dfe_number, parsed.local_authority, parsed.census_date) == (
            "825/2001", "Buckinghamshire", D(2025, 1, 16))
        with pytest.raises(register.RowRejected) as closed:
            register.read_row(3, dict(data, **{"EstablishmentStatus (name)": "Closed"}), columns, known_types=TYPES,
                              default_census=D(2025, 10, 2), joined_on=D(2026, 4, 1))
        assert "closed" in closed.value.reason

    def test_every_mapped_type_is_in_the_real_dfe_list(self):
        from membership.adapters.reference import load_establishment_types
        assert set(register.GIAS_TYPES) <= load_establishment_types()


def take(role="head_teacher", **overrides):
    arguments = dict(contact_id="c1", urn="110394", role=role, started_on=D(2026, 4, 1), may_commit_spending=None,
                     current_roles=[], member_open=True)
    arguments.update(overrides)
    return people.take_role(**arguments)


class TestContacts:
    @pytest.mark.parametrize("role, spends", [("head_teacher", True), ("business_manager", True),
                                              ("chair_of_governors", False), ("senco", False), ("dsl", False)])
    def test_default_spending_authority(self, role, spends):
        extra = {"appointment_type": "co_opted"} if role == "chair_of_governors" else {}
        assert take(role, **extra).may_commit_spending is spends

    @pytest.mark.parametrize("role", ["senco", "dsl"])
    def test_only_some_roles_may_commit_spending(self, role):
        with pytest.raises(MembershipRuleBroken) as refused:
            take(role, may_commit_spending=True)
        assert refused.value.field == "may_commit_spending"

    def test_a_governor_needs_an_appointment_type(self):
        with pytest.raises(MembershipRuleBroken) as refused:
            take("governor")
        assert refused.value.field == "appointment_type"

    def test_committees_are_for_governors(self):
        with pytest.raises(MembershipRuleBroken):
            take("senco", committees=["Finance"])

    def test_one_active_holding_of_a_role(self):
        held = take()
        with pytest.raises(MembershipRuleBroken) as refused:
            take(current_roles=[held])
        assert refused.value.field == "role"

    def test_not_at_a_school_that_is_not_a_member(self):
        with pytest.raises(MembershipRuleBroken) as refused:
            take(member_open=False)
        assert refused.value.field == "urn"

    def test_a_governor_leaves_with_a_reason_and_history_is_kept(self):
        held = take("governor", appointment_type="parent", committees=["Finance", " Finance "])
        assert held.committees == ("Finance",)
        with pytest.raises(MembershipRuleBroken) as refused:
            people.end_role(held, ended_on=D(2027, 1, 1), reason=None)
        assert refused.value.field == "reason"
        ended = people.end_role(held, ended_on=D(2027, 1, 1), reason="end of term")
        assert not ended.active and ended.held_on(D(2026, 12, 31)) and not ended.held_on(D(2027, 1, 1))

    def test_no_ending_before_starting(self):
        with pytest.raises(MembershipRuleBroken) as refused:
            people.end_role(take(), ended_on=D(2026, 4, 1), reason="x")
        assert refused.value.field == "effective_date"

    def test_changing_spending_to_the_same_value_is_no_change(self):
        assert people.change_spending(take(), may_commit_spending=True) is None
        assert people.change_spending(take(), may_commit_spending=False).may_commit_spending is False

    def test_training_is_not_in_the_future(self):
        with pytest.raises(MembershipRuleBroken) as refused:
            people.check_training(course="Safeguarding", completed_on=D(2030, 1, 1), today=D(2026, 1, 1))
        assert refused.value.field == "completed_on"


class TestCooperativeTrust:
    def participants(self):
        return [people.TrustParticipant("110394", "A", "member", D(2020, 1, 1)),
                people.TrustParticipant("110395", "B", "member", D(2020, 1, 1), left_on=D(2022, 1, 1)),
                people.TrustParticipant("COOPCOL", "The Co-operative College", "partner", D(2020, 1, 1)),
                people.TrustParticipant("110396", "C", "member", D(2021, 1, 1))]

    def test_one_vote_per_member_school_in_the_trust_and_partnership_on_the_date(self):
        voters = people.voters_on(self.participants(), D(2021, 6, 1), lambda urn: urn != "110396")
        assert voters == [{"urn": "110394", "name": "A", "votes": 1}, {"urn": "110395", "name": "B", "votes": 1}]
        voters = people.voters_on(self.participants(), D(2022, 6, 1), lambda urn: True)
        assert [v["urn"] for v in voters] == ["110394", "110396"]

    def test_partners_do_not_vote(self):
        voters = people.voters_on(self.participants(), D(2021, 6, 1), lambda urn: True)
        assert "COOPCOL" not in [v["urn"] for v in voters]

    def test_a_member_school_must_be_in_the_partnership(self):
        with pytest.raises(MembershipRuleBroken) as refused:
            people.join_trust(party_id="110397", name="D", trust_role="member", joined_on=D(2022, 1, 1), current=[],
                              is_partnership_member=False)
        assert refused.value.field == "urn"

    def test_no_second_open_participation(self):
        with pytest.raises(MembershipRuleBroken):
            people.join_trust(party_id="110394", name="A", trust_role="member", joined_on=D(2022, 1, 1),
                              current=self.participants(), is_partnership_member=True)

    @given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 100), st.integers(1, 100)), max_size=20),
           st.integers(0, 250))
    def test_never_more_than_one_vote_per_school(self, spans, probe):
        base = D(2020, 1, 1)
        participants = [people.TrustParticipant(f"11000{i}", "S", "member", base + dt.timedelta(days=s),
                                                base + dt.timedelta(days=s + n)) for i, s, n in spans]
        voters = people.voters_on(participants, base + dt.timedelta(days=probe), lambda urn: True)
        assert len(voters) == len({v["urn"] for v in voters}) and all(v["votes"] == 1 for v in voters)
