"""Rule 11 (issue 14): identity checks beyond format. The LAESTAB's LA code must be the member's local
authority's DfE code, its establishment number one the DfE issues, and the URN in its kind's range."""
import datetime as dt

import pytest

from membership.domain import la_codes, model, register

D = dt.date


def bucks_school(**overrides):
    data = dict(open_member=None, urn="110394", dfe_number="825/2001", name="Haddenham Community Infant School",
                establishment_type="community", phase="primary", local_authority="Buckinghamshire",
                postcode="HP17 8DS", number_on_roll=172, census_date=D(2025, 10, 2), joined_on=D(2026, 4, 1),
                mat=None)
    data.update(overrides)
    return data


def refused(**overrides) -> model.MembershipRuleBroken:
    with pytest.raises(model.MembershipRuleBroken) as caught:
        model.join_school(**bucks_school(**overrides))
    return caught.value


def test_rule_11_urn_000000_is_refused_for_a_buckinghamshire_school():
    error = refused(urn="000000")
    assert error.field == "urn"
    assert "100000-199999" in error.message


def test_rule_11_laestab_201_0000_is_refused_for_a_buckinghamshire_school():
    error = refused(dfe_number="201/0000")
    assert error.field == "dfe_number"
    assert "201" in error.message and "City of London" in error.message and "Buckinghamshire" in error.message


def test_rule_11_establishment_number_0000_is_refused_even_with_the_right_la_code():
    error = refused(dfe_number="825/0000")
    assert error.field == "dfe_number" and "0000" in error.message


def test_rule_11_an_unknown_la_code_is_refused():
    error = refused(dfe_number="999/2001")
    assert error.field == "dfe_number" and "999 is not a DfE local authority code" in error.message


def test_rule_11_an_unknown_local_authority_is_refused_naming_the_field():
    assert refused(local_authority="Authority 825").field == "local_authority"


@pytest.mark.parametrize("name", ["Buckinghamshire", "Buckinghamshire Council", "BUCKINGHAMSHIRE COUNTY COUNCIL",
                                  "LA 825"])
def test_rule_11_the_usual_spellings_of_the_authority_match_its_code(name):
    assert model.join_school(**bucks_school(local_authority=name)).dfe_number == "825/2001"


def test_rule_11_an_early_years_urn_is_refused_for_a_school_and_a_school_urn_for_an_early_years_provider():
    assert refused(urn="650123").field == "urn"
    assert refused(urn="110394", establishment_type="early_years_provider", phase="early_years").field == "urn"
    provider = model.join_school(**bucks_school(urn="650123", establishment_type="early_years_provider",
                                                phase="early_years"))
    assert provider.kind == "early_years_provider"


def test_rule_11_a_change_of_dfe_number_to_another_authority_is_refused():
    member = model.join_school(**bucks_school())
    with pytest.raises(model.MembershipRuleBroken) as caught:
        model.change_details(member, effective_date=D(2026, 9, 1), dfe_number="826/2001")
    assert caught.value.field == "dfe_number"
    moved, changes = model.change_details(member, effective_date=D(2026, 9, 1), dfe_number="826/2001",
                                          local_authority="Milton Keynes")
    assert set(changes) == {"dfe_number", "local_authority"}


def test_rule_11_the_import_rejects_a_row_whose_la_code_is_not_its_authority():
    columns = register.column_map(["URN", "LAESTAB", "LA (name)", "EstablishmentName", "TypeOfEstablishment (name)",
                                   "PhaseOfEducation (name)", "NumberOfPupils", "Postcode"])
    row = {"URN": "110394", "LAESTAB": "2010000", "LA (name)": "Buckinghamshire", "EstablishmentName": "X",
           "TypeOfEstablishment (name)": "Community school", "PhaseOfEducation (name)": "Primary",
           "NumberOfPupils": "100", "Postcode": "HP17 8DS"}
    with pytest.raises(register.RowRejected) as caught:
        register.read_row(2, row, columns, known_types={"Community school"}, default_census=D(2025, 10, 2),
                          joined_on=D(2026, 4, 1))
    assert caught.value.field == "LAESTAB" and "City of London" in caught.value.reason
    without_name = {k: v for k, v in row.items() if k != "LA (name)"} | {"LAESTAB": "8252001"}
    columns.pop("la_name")
    accepted = register.read_row(2, without_name, columns, known_types={"Community school"},
                                 default_census=D(2025, 10, 2), joined_on=D(2026, 4, 1))
    assert accepted.local_authority == "Buckinghamshire"


def test_rule_11_the_la_code_table_names_each_authority_once():
    names = [la_codes.normalise(n) for code, ns in la_codes.LA_CODES.items() for n in ns if code != "835"]
    assert len(names) == len(set(names))
    assert la_codes.code_of("Buckinghamshire") == "825" and la_codes.name_of("201") == "City of London"
