"""Membership's request schemas load into the typed commands its use cases take."""
from __future__ import annotations

import datetime as dt

import pytest
from marshmallow import ValidationError

from membership.entrypoints import service
from membership.service_layer import commands


def test_a_joining_school_loads_typed_with_its_mat_as_given():
    loaded = service.JoinSchool().load({
        "urn": "110394", "dfe_number": "825/2001", "name": "Haddenham", "establishment_type": "community",
        "phase": "primary", "local_authority": "Buckinghamshire", "postcode": "HP17 8DS", "number_on_roll": 172,
        "census_date": "2025-10-02", "joined_on": "2026-04-01", "mat": {"id": "TR01", "name": "A Trust"}})
    assert isinstance(loaded, commands.JoinSchool)
    assert (loaded.urn, loaded.census_date, loaded.joined_on) == ("110394", dt.date(2025, 10, 2), dt.date(2026, 4, 1))
    assert loaded.mat == {"id": "TR01", "name": "A Trust"}


def test_the_same_leaving_schema_serves_a_school_and_an_organisation():
    assert service.Leave().load({"effective_date": "2026-08-31", "reason": "closed"}) == \
        commands.Leave(effective_date=dt.date(2026, 8, 31), reason="closed")


def test_a_new_contact_loads_with_committees_as_a_tuple_and_unset_parts_none():
    loaded = service.NewContact().load({"display_name": "G. Overnor", "role": "governor",
                                        "appointment_type": "parent", "effective_date": "2024-09-01",
                                        "committees": ["Finance"]})
    assert loaded == commands.AddContact(display_name="G. Overnor", role="governor", appointment_type="parent",
                                         effective_date=dt.date(2024, 9, 1), committees=("Finance",))
    assert loaded.may_commit_spending is None and loaded.email is None


def test_a_conversion_and_a_trust_joining_load_typed():
    conversion = service.Conversion().load({"successor_urn": "149876", "conversion_date": "2027-09-01",
                                            "mat": {"id": "TR01", "name": "A Trust"}})
    assert conversion == commands.ConvertToAcademy(successor_urn="149876", conversion_date=dt.date(2027, 9, 1),
                                                   mat={"id": "TR01", "name": "A Trust"})
    joined = service.TrustJoin().load({"trust_role": "member", "urn": "110394", "joined_on": "2021-01-01"})
    assert joined == commands.JoinTrust(trust_role="member", urn="110394", joined_on=dt.date(2021, 1, 1))


def test_a_schema_rule_still_refuses_by_name_before_a_command_exists():
    with pytest.raises(ValidationError) as refused:
        service.TrustJoin().load({"trust_role": "member", "joined_on": "2021-01-01"})
    assert set(refused.value.messages) == {"urn"}
