"""membership.domain.model: URN and DfE number validation, and the rules for a school joining."""
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.domain.model import (ACADEMY_TYPES, MAINTAINED_TYPES, AlreadyMember, Mat, MembershipRuleBroken,
                                     SchoolMember, check_dfe_number, check_urn, join_school)

JOINED_ON = dt.date(2026, 4, 1)
TRUST = Mat(id="TR01234", name="Chiltern Learning Trust")


def join(**overrides) -> SchoolMember:
    arguments = dict(open_member=None, urn="110394", dfe_number="825/2001",
                     name="Haddenham Community Infant School", establishment_type="community", phase="primary",
                     local_authority="Buckinghamshire", postcode="HP17 8DS", number_on_roll=172,
                     census_date=dt.date(2025, 10, 2), joined_on=JOINED_ON, mat=None)
    arguments.update(overrides)
    return join_school(**arguments)


def refused(exception_type, **overrides) -> MembershipRuleBroken:
    with pytest.raises(exception_type) as caught:
        join(**overrides)
    assert type(caught.value) is exception_type
    return caught.value


class TestUrn:
    @pytest.mark.parametrize("urn", ["110394", "100000", "199999"])
    def test_six_digits_in_the_school_range_are_accepted(self, urn):
        check_urn(urn)

    @pytest.mark.parametrize("urn", ["", "11039", "1103940", "11039a", " 110394", "110394 ", None,
                                     "110394\n",  # `$` alone would let a trailing newline through
                                     "११०३९४", "١١٠٣٩٤"])  # other scripts' digits (`\d` alone would)
    def test_anything_but_six_digits_is_refused(self, urn):
        with pytest.raises(MembershipRuleBroken) as refused_urn:
            check_urn(urn)
        assert refused_urn.value.field == "urn"

    @pytest.mark.parametrize("urn", ["500000", "650123", "799999"])
    def test_early_years_urns_are_500000_to_799999(self, urn):
        check_urn(urn, early_years=True)

    @pytest.mark.parametrize("urn", ["499999", "800000", "110394", "000000", "999999"])
    def test_early_years_urn_outside_the_range_is_refused(self, urn):
        with pytest.raises(MembershipRuleBroken) as refused_urn:
            check_urn(urn, early_years=True)
        assert refused_urn.value.field == "urn"

    @given(number=st.integers(min_value=0, max_value=999999))
    def test_early_years_range_property(self, number):
        urn = f"{number:06d}"
        if 100000 <= number <= 199999:
            check_urn(urn)
        else:
            with pytest.raises(MembershipRuleBroken):
                check_urn(urn)
        if 500000 <= number <= 799999:
            check_urn(urn, early_years=True)
        else:
            with pytest.raises(MembershipRuleBroken):
                check_urn(urn, early_years=True)


class TestDfeNumber:
    @pytest.mark.parametrize("dfe_number", ["825/2001", "000/0000", "999/9999"])
    def test_la_code_slash_establishment_number_is_accepted(self, dfe_number):
        check_dfe_number(dfe_number)

    @pytest.mark.parametrize("dfe_number", ["", "8252001", "825-2001", "82/2001", "825/201", "825/20011",
                                            "ABC/2001", "825/2001 ", "825/2001\n", "८२५/२००१", None])
    def test_other_shapes_are_refused(self, dfe_number):
        with pytest.raises(MembershipRuleBroken) as refused_number:
            check_dfe_number(dfe_number)
        assert refused_number.value.field == "dfe_number"


class TestJoinSchool:
    def test_a_maintained_school_joins_without_a_mat(self):
        member = join()
        assert (member.urn, member.status, member.joined_on, member.mat) == ("110394", "active", JOINED_ON, None)
        assert not member.is_academy and member.kind == "school"

    @pytest.mark.parametrize("establishment_type", ACADEMY_TYPES)
    def test_an_academy_joins_with_its_mat(self, establishment_type):
        member = join(establishment_type=establishment_type, mat=TRUST)
        assert member.mat == TRUST and member.is_academy

    def test_an_early_years_provider_joins_with_an_early_years_urn(self):
        member = join(urn="612345", establishment_type="early_years_provider", phase="early_years")
        assert member.kind == "early_years_provider" and not member.is_academy

    def test_an_early_years_provider_with_a_school_urn_is_refused(self):
        error = refused(MembershipRuleBroken, urn="110394", establishment_type="early_years_provider",
                        phase="early_years")
        assert error.field == "urn"

    def test_name_local_authority_and_postcode_are_tidied(self):
        member = join(name="  Haddenham Infant  ", local_authority=" Buckinghamshire ", postcode=" hp17 8ds ")
        assert (member.name, member.local_authority, member.postcode) == ("Haddenham Infant", "Buckinghamshire",
                                                                          "HP17 8DS")

    def test_zero_on_roll_is_allowed(self):
        assert join(number_on_roll=0).number_on_roll == 0

    def test_census_up_to_a_year_after_joining_is_allowed(self):
        assert join(census_date=JOINED_ON + dt.timedelta(days=366)).census_date == dt.date(2027, 4, 2)


class TestJoinSchoolRefusals:
    def test_second_open_record_for_the_urn(self):
        error = refused(AlreadyMember, open_member=join())
        assert error.field == "urn"
        assert isinstance(error, MembershipRuleBroken)

    @pytest.mark.parametrize("establishment_type", ACADEMY_TYPES)
    def test_academy_without_a_mat(self, establishment_type):
        error = refused(MembershipRuleBroken, establishment_type=establishment_type, mat=None)
        assert error.field == "mat"

    @pytest.mark.parametrize("establishment_type", MAINTAINED_TYPES)
    def test_maintained_school_with_a_mat(self, establishment_type):
        error = refused(MembershipRuleBroken, establishment_type=establishment_type, mat=TRUST)
        assert error.field == "mat"

    @pytest.mark.parametrize("number_on_roll", [-1, -500])
    def test_negative_number_on_roll(self, number_on_roll):
        error = refused(MembershipRuleBroken, number_on_roll=number_on_roll)
        assert error.field == "number_on_roll"

    def test_unknown_establishment_type(self):
        error = refused(MembershipRuleBroken, establishment_type="grammar_school_of_wizardry")
        assert error.field == "establishment_type"

    def test_census_more_than_a_year_after_joining(self):
        error = refused(MembershipRuleBroken, census_date=JOINED_ON + dt.timedelta(days=367))
        assert error.field == "census_date"

    def test_bad_urn(self):
        assert refused(MembershipRuleBroken, urn="12345").field == "urn"

    def test_a_urn_with_a_trailing_newline_is_not_a_second_urn(self):
        # the service looks up the open member by the URN as given, so a variant spelling would
        # let the same school hold two open memberships
        assert refused(MembershipRuleBroken, urn="110394\n").field == "urn"

    def test_bad_dfe_number(self):
        assert refused(MembershipRuleBroken, dfe_number="8252001").field == "dfe_number"
