"""Test data: realistic schools and offerings, with overrides and random references."""
from __future__ import annotations

import random


def random_urn(rng: random.Random | None = None) -> str:
    # England's school URNs (membership's identity check, issue 14 rule 11)
    return str((rng or random).randint(100000, 199999))


def school(**overrides) -> dict:
    urn = overrides.pop("urn", None) or random_urn()
    data = {
        "urn": urn, "dfe_number": f"825/{random.randint(1000, 9999)}", "name": f"Test School {urn}",
        "establishment_type": "community", "phase": "primary", "local_authority": "Buckinghamshire",
        "postcode": "HP19 8FF", "number_on_roll": 210, "census_date": "2025-10-02", "joined_on": "2026-01-05",
        "mat": None,
    }
    data.update(overrides)
    return data


def academy(mat_id: str = "TR01234", mat_name: str = "Great Learners Trust", **overrides) -> dict:
    return school(establishment_type="academy_converter", mat={"id": mat_id, "name": mat_name}, **overrides)


# Sold only whole (issue 14, rule 2): these offerings are bought by end-to-end flows on the real calendar,
# so a purchase covering from the day the suite runs would move every period and charge with that day.
# The catalogue's own tests buy late on fixed dates (covered and charged from the purchase date).
SOLD_WHOLE = {"sold_whole": True}


def per_pupil_offering(**overrides) -> dict:
    code = overrides.pop("code", None) or f"SI-{random.randint(1000, 9999)}"
    data = {
        "code": code, "name": "School improvement core offer", "service_area": "school_improvement",
        "vat_treatment": "standard", "eligible_phases": ["primary", "secondary"],
        "edition": {"year": 2026, "terms": {"model": "per_pupil", "base_fee_pence": 150000,
                                            "rate_by_phase": {"primary": "825", "secondary": "610"},
                                            "minimum_pence": 200000, "maximum_pence": 900000}},
        **SOLD_WHOLE,
    }
    data.update(overrides)
    return data


def flat_offering(**overrides) -> dict:
    code = overrides.pop("code", None) or f"GV-{random.randint(1000, 9999)}"
    data = {
        "code": code, "name": "Governance training and induction", "service_area": "governance",
        "vat_treatment": "exempt", "eligible_phases": ["primary", "secondary", "special"],
        "edition": {"year": 2026, "terms": {"model": "flat", "flat_fee_pence": 95000}},
        **SOLD_WHOLE,
    }
    data.update(overrides)
    return data


