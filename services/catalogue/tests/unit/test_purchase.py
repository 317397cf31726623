"""catalogue.domain.model.buy and sla_period: who may buy what, for which period."""
import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalogue.domain.model import (CatalogueRuleBroken, Conflicting, Contact, Edition, Entitlement, Holding,
                                    KnownMember, NotAllowed, Offering, OverCapacity, Overlapping, Subscription, buy,
                                    confirm_renewal, renewal_notice, sla_entitlements, sla_period)
from catalogue.domain.pricing import PriceTerms

TODAY = dt.date(2026, 3, 2)

MAINTAINED = KnownMember(urn="110394", name="Haddenham Community Infant School", establishment_type="community",
                         phase="primary", is_academy=False, mat_id=None, mat_name=None, number_on_roll=172,
                         census_date=dt.date(2025, 10, 2), status="active")
ACADEMY = dataclasses.replace(MAINTAINED, urn="145678", name="Aylesbury Vale Academy",
                              establishment_type="academy_converter", phase="secondary", is_academy=True,
                              mat_id="TR01234", mat_name="Chiltern Learning Trust", number_on_roll=900)
OFFERING = Offering(code="SI-CORE", name="School improvement core offer", service_area="school_improvement",
                    provider="Bucks Learning Trust", vat_treatment="standard",
                    eligible_phases=("primary", "secondary"))
TERMS = PriceTerms(model="per_pupil", base_fee_pence=150000,
                   rate_by_phase={"primary": Decimal("825"), "secondary": Decimal("600")})
EDITION = Edition(offering_code="SI-CORE", year=2026, terms=TERMS)
HEAD = Contact(contact_id="c-head", urn=MAINTAINED.urn, display_name="Sam Head", role="head_teacher",
               may_commit_spending=True, active=True)


def purchase(**overrides) -> Subscription:
    arguments = dict(member=MAINTAINED, urn=MAINTAINED.urn, offering=OFFERING, edition=EDITION, years=1,
                     buyer=HEAD, contact_id=HEAD.contact_id, po_number="PO-4471", today=TODAY, live_periods=[])
    arguments.update(overrides)
    if "member" in overrides and overrides["member"] is not None and "urn" not in overrides:
        arguments["urn"] = overrides["member"].urn
        if "buyer" not in overrides:
            arguments["buyer"] = dataclasses.replace(HEAD, urn=overrides["member"].urn)
    return buy(**arguments)


def refused(exception_type, **overrides) -> CatalogueRuleBroken:
    with pytest.raises(exception_type) as caught:
        purchase(**overrides)
    assert type(caught.value) is exception_type
    return caught.value


class TestSlaPeriod:
    def test_maintained_school_buys_april_to_march(self):
        assert sla_period(2026, is_academy=False, years=1) == ("maintained", dt.date(2026, 4, 1),
                                                               dt.date(2027, 3, 31))

    def test_academy_buys_september_to_august(self):
        assert sla_period(2026, is_academy=True, years=1) == ("academy", dt.date(2026, 9, 1), dt.date(2027, 8, 31))

    @pytest.mark.parametrize("years", [1, 2, 3])
    def test_multi_year_agreements_end_the_day_before_the_anniversary(self, years):
        _, start, end = sla_period(2026, is_academy=False, years=years)
        assert end == dt.date(2026 + years, 3, 31)
        _, start, end = sla_period(2026, is_academy=True, years=years)
        assert end == dt.date(2026 + years, 8, 31)

    @given(year=st.integers(min_value=2000, max_value=2100), is_academy=st.booleans(),
           years=st.sampled_from([1, 2, 3]))
    def test_period_is_exactly_whole_years(self, year, is_academy, years):
        _, start, end = sla_period(year, is_academy=is_academy, years=years)
        assert end + dt.timedelta(days=1) == start.replace(year=start.year + years)


class TestBuy:
    def test_maintained_school_gets_an_april_to_march_sla(self):
        sub = purchase()
        assert (sub.payer_type, sub.period_start, sub.period_end) == ("maintained", dt.date(2026, 4, 1),
                                                                      dt.date(2027, 3, 31))

    def test_academy_gets_a_september_to_august_sla(self):
        sub = purchase(member=ACADEMY)
        assert (sub.payer_type, sub.period_start, sub.period_end) == ("academy", dt.date(2026, 9, 1),
                                                                      dt.date(2027, 8, 31))

    @pytest.mark.parametrize("years", [1, 2, 3])
    def test_agreement_runs_one_to_three_years(self, years):
        sub = purchase(years=years)
        assert sub.years == years
        assert sub.period_end == dt.date(2026 + years, 3, 31)

    def test_price_is_quoted_from_the_members_phase_and_roll_and_frozen(self):
        sub = purchase(years=3)
        assert sub.annual_price_pence == 150000 + 825 * 172 == sub.quote.total_pence
        assert (sub.census_date, sub.number_on_roll) == (MAINTAINED.census_date, 172)
        assert purchase(member=ACADEMY).annual_price_pence == 150000 + 600 * 900

    def test_subscription_records_what_was_bought_and_by_whom(self):
        manager = dataclasses.replace(HEAD, contact_id="c-bm", display_name="Bo Manager", role="business_manager")
        sub = purchase(buyer=manager, contact_id="c-bm", po_number=None)
        assert (sub.urn, sub.offering_code, sub.edition_year) == ("110394", "SI-CORE", 2026)
        assert (sub.purchased_by_name, sub.purchased_by_role, sub.po_number) == ("Bo Manager", "business_manager",
                                                                                 None)
        assert sub.purchased_by_contact_id == "c-bm"
        assert sub.purchased_on == TODAY and sub.status == "active"

    def test_each_purchase_has_its_own_id(self):
        assert purchase().id != purchase().id

    def test_periods_that_only_touch_do_not_overlap(self):
        before = (dt.date(2025, 4, 1), dt.date(2026, 3, 31))
        after = (dt.date(2027, 4, 1), dt.date(2028, 3, 31))
        assert purchase(live_periods=[before, after]).period_start == dt.date(2026, 4, 1)


class TestLateJoiners:
    """Found by tests/e2e/test_county_year.py: a school that joined during the period was sold the whole
    period from 1 April, so billing (which pro-rates a late start) charged it for months before it joined."""

    def test_a_school_that_joined_during_the_period_is_covered_from_the_day_it_joined(self):
        sub = purchase(member=dataclasses.replace(MAINTAINED, joined_on=dt.date(2026, 10, 1)))
        assert (sub.period_start, sub.period_end) == (dt.date(2026, 10, 1), dt.date(2027, 3, 31))
        assert sub.annual_price_pence == 150000 + 172 * 825  # the annual price; billing pro-rates the part year

    def test_a_school_that_joined_before_the_period_gets_the_whole_period(self):
        sub = purchase(member=dataclasses.replace(MAINTAINED, joined_on=dt.date(2026, 1, 5)))
        assert sub.period_start == dt.date(2026, 4, 1)

    def test_an_academy_opened_by_conversion_mid_year_is_covered_from_its_opening(self):
        sub = purchase(member=dataclasses.replace(ACADEMY, joined_on=dt.date(2027, 1, 1)))
        assert (sub.period_start, sub.period_end) == (dt.date(2027, 1, 1), dt.date(2027, 8, 31))

    def test_an_edition_whose_period_ended_before_the_school_joined_is_refused(self):
        error = refused(NotAllowed, member=dataclasses.replace(MAINTAINED, joined_on=dt.date(2027, 4, 1)))
        assert error.field == "edition_year" and "joined on 2027-04-01" in str(error)


class TestBuyRefusals:
    def test_not_a_member(self):
        error = refused(NotAllowed, member=None, urn="999999")
        assert error.field == "urn"

    @pytest.mark.parametrize("status", ["left", "suspended"])
    def test_inactive_member(self, status):
        error = refused(NotAllowed, member=dataclasses.replace(MAINTAINED, status=status))
        assert error.field == "urn"

    @pytest.mark.parametrize("role", ["senco", "governor", "dsl"])
    def test_contact_not_allowed_to_commit_spending(self, role):
        buyer = dataclasses.replace(HEAD, role=role, may_commit_spending=False)
        error = refused(NotAllowed, buyer=buyer)
        assert error.field == "contact_id" and "may not commit the school's spending" in error.message

    def test_contact_whose_role_ended(self):
        error = refused(NotAllowed, buyer=dataclasses.replace(HEAD, active=False))
        assert error.field == "contact_id" and "has ended" in error.message

    def test_unknown_contact(self):
        error = refused(NotAllowed, buyer=None, contact_id="nobody")
        assert error.field == "contact_id" and "not a contact of URN 110394" in error.message

    def test_contact_of_another_school(self):
        error = refused(NotAllowed, buyer=dataclasses.replace(HEAD, urn="999999"))
        assert error.field == "contact_id"

    def test_establishment_type_not_eligible(self):
        offering = dataclasses.replace(OFFERING, eligible_types=("academy_converter",))
        error = refused(NotAllowed, offering=offering)
        assert error.field == "offering_code" and "community schools" in error.message

    def test_empty_eligibility_sells_to_everyone(self):
        offering = dataclasses.replace(OFFERING, eligible_phases=(), eligible_types=())
        assert purchase(offering=offering, member=dataclasses.replace(MAINTAINED, phase="primary"))

    def test_withdrawn_offering(self):
        error = refused(NotAllowed, offering=dataclasses.replace(OFFERING, withdrawn_on=TODAY))
        assert error.field == "offering_code" and "withdrawn" in error.message

    def test_over_capacity(self):
        error = refused(OverCapacity, offering=dataclasses.replace(OFFERING, capacity=3), holders=3)
        assert error.field == "offering_code" and "full" in error.message

    def test_under_capacity_is_sold(self):
        assert purchase(offering=dataclasses.replace(OFFERING, capacity=3), holders=2)

    def test_phase_not_eligible(self):
        error = refused(NotAllowed, member=dataclasses.replace(MAINTAINED, phase="early_years"))
        assert error.field == "offering_code"

    def test_edition_not_on_sale(self):
        error = refused(NotAllowed, edition=dataclasses.replace(EDITION, on_sale=False))
        assert error.field == "edition_year"

    @pytest.mark.parametrize("years", [0, 4, -1])
    def test_years_outside_one_to_three(self, years):
        error = refused(NotAllowed, years=years)
        assert error.field == "years"

    @pytest.mark.parametrize("other", [
        (dt.date(2026, 4, 1), dt.date(2027, 3, 31)),   # the same period
        (dt.date(2025, 4, 1), dt.date(2026, 4, 1)),    # ends on our first day
        (dt.date(2027, 3, 31), dt.date(2028, 3, 31)),  # starts on our last day
        (dt.date(2026, 9, 1), dt.date(2027, 8, 31)),   # an academy-shaped period inside ours
        (dt.date(2024, 4, 1), dt.date(2029, 3, 31)),   # covering ours entirely
    ])
    def test_overlapping_periods(self, other):
        error = refused(Overlapping, live_periods=[other])
        assert error.field == "offering_code"

    def test_refusals_are_catalogue_rule_breaks(self):
        assert issubclass(NotAllowed, CatalogueRuleBroken) and issubclass(Overlapping, CatalogueRuleBroken)
        assert issubclass(OverCapacity, CatalogueRuleBroken)
        assert not issubclass(Overlapping, NotAllowed)


class TestDatedLeavingAndConversion:
    """Found by an end-to-end test: `member_left` / `school_converted_to_academy` arrive well before their
    effective date, and the school was refused at once. It is a member up to the day before that date."""

    LEAVING = dataclasses.replace(MAINTAINED, status="left", left_on=dt.date(2026, 11, 1))
    CONVERTING = dataclasses.replace(MAINTAINED, status="converted", left_on=dt.date(2027, 1, 1))

    @pytest.mark.parametrize("member", [LEAVING, CONVERTING], ids=["left", "converted"])
    def test_is_a_member_up_to_the_day_before_the_effective_date(self, member):
        day_before = member.left_on - dt.timedelta(days=1)
        assert member.is_member_on(TODAY) and member.is_member_on(day_before)
        assert not member.is_member_on(member.left_on)
        assert not member.is_member_on(member.left_on + dt.timedelta(days=1))

    def test_a_member_with_no_leaving_date_is_a_member_on_any_day(self):
        assert MAINTAINED.is_member_on(dt.date(2099, 1, 1))

    @pytest.mark.parametrize("member", [LEAVING, CONVERTING], ids=["left", "converted"])
    def test_may_buy_before_the_effective_date(self, member):
        day_before = member.left_on - dt.timedelta(days=1)
        sub = purchase(member=member, today=day_before)
        # bought during the period: covered from the day of purchase (issue 14, rule 2)
        assert (sub.period_start, sub.period_end) == (day_before, dt.date(2027, 3, 31))

    @pytest.mark.parametrize("member", [LEAVING, CONVERTING], ids=["left", "converted"])
    def test_may_not_buy_from_the_effective_date(self, member):
        error = refused(NotAllowed, member=member, today=member.left_on)
        assert error.field == "urn" and member.left_on.isoformat() in str(error)

    def test_an_edition_whose_period_starts_on_or_after_the_leaving_date_is_refused(self):
        leaving_in_april = dataclasses.replace(MAINTAINED, status="left", left_on=dt.date(2026, 4, 1))
        error = refused(NotAllowed, member=leaving_in_april)
        assert error.field == "edition_year" and "2026-04-01" in str(error)

    def test_the_other_rules_still_apply_before_the_effective_date(self):
        error = refused(NotAllowed, member=self.LEAVING, buyer=dataclasses.replace(HEAD, active=False))
        assert error.field == "contact_id"


class TestPurchasesOfThePast:
    """Issue 14, rule 2: `buy` sold an edition whose period ended long ago, and a purchase a month before
    the period ended was charged the whole year, backdated to 1 April or 1 September."""

    def test_a_period_that_has_ended_cannot_be_bought(self):
        error = refused(NotAllowed, edition=dataclasses.replace(EDITION, year=2024), today=dt.date(2026, 11, 29))
        assert error.field == "edition_year" and "ended on 2025-03-31" in error.message

    def test_the_last_day_of_the_period_can_still_be_bought_the_day_after_cannot(self):
        sub = purchase(today=dt.date(2027, 3, 31))
        assert (sub.period_start, sub.period_end) == (dt.date(2027, 3, 31), dt.date(2027, 3, 31))
        assert refused(NotAllowed, today=dt.date(2027, 4, 1)).field == "edition_year"

    def test_a_multi_year_agreement_whose_first_year_ended_cannot_be_bought(self):
        assert refused(NotAllowed, years=3, today=dt.date(2027, 4, 1)).field == "edition_year"

    def test_bought_during_the_period_it_covers_from_the_purchase_date(self):
        sub = purchase(today=dt.date(2027, 2, 28))
        assert (sub.period_start, sub.period_end) == (dt.date(2027, 2, 28), dt.date(2027, 3, 31))
        assert sub.annual_price_pence == 150000 + 172 * 825  # the annual price: billing pro-rates by days
        academy = purchase(member=ACADEMY, today=dt.date(2027, 7, 1))
        assert (academy.period_start, academy.period_end) == (dt.date(2027, 7, 1), dt.date(2027, 8, 31))

    def test_bought_before_the_period_it_covers_all_of_it(self):
        assert purchase(today=dt.date(2026, 4, 1)).period_start == dt.date(2026, 4, 1)

    def test_an_offering_sold_only_whole_keeps_the_whole_period(self):
        sub = purchase(offering=dataclasses.replace(OFFERING, sold_whole=True), today=dt.date(2027, 2, 28))
        assert (sub.period_start, sub.period_end) == (dt.date(2026, 4, 1), dt.date(2027, 3, 31))

    def test_a_late_joiner_buying_later_still_is_covered_from_the_purchase(self):
        member = dataclasses.replace(MAINTAINED, joined_on=dt.date(2026, 10, 1))
        assert purchase(member=member, today=dt.date(2026, 12, 1)).period_start == dt.date(2026, 12, 1)

    @pytest.mark.parametrize("member,notice", [(MAINTAINED, dt.date(2026, 12, 31)), (ACADEMY, dt.date(2027, 5, 31))],
                             ids=["maintained", "academy"])
    def test_bought_after_the_notice_date_it_renews_only_if_confirmed(self, member, notice):
        on_notice = purchase(member=member, today=notice)
        assert on_notice.auto_renew and renewal_notice(on_notice) is None
        after = purchase(member=member, today=notice + dt.timedelta(days=1))
        assert not after.auto_renew
        assert f"notice date {notice.isoformat()}" in renewal_notice(after) and "confirm" in renewal_notice(after)
        confirmed = purchase(member=member, today=notice + dt.timedelta(days=1), confirm_renewal=True)
        assert confirmed.auto_renew and renewal_notice(confirmed) is None

    def test_a_late_purchase_can_be_confirmed_later_once(self):
        late = purchase(today=dt.date(2027, 1, 15))
        assert confirm_renewal(late, today=dt.date(2027, 2, 1)).auto_renew
        with pytest.raises(Conflicting):
            confirm_renewal(dataclasses.replace(late, auto_renew=True), today=dt.date(2027, 2, 1))

    def test_a_renewal_cancelled_by_the_notice_date_is_not_confirmed_back(self):
        cancelled = dataclasses.replace(purchase(), auto_renew=False)
        with pytest.raises(Conflicting) as caught:
            confirm_renewal(cancelled, today=dt.date(2027, 2, 1))
        assert caught.value.field == "subscription_id"


BUNDLE_TERMS = PriceTerms(model="bundle", bundle_price_pence=200000, includes=("SI-CORE", "GOV-TRAIN"))
BUNDLE = Offering(code="SI-GOV", name="Improvement and governance bundle", service_area="school_improvement",
                  provider="Bucks Learning Trust", vat_treatment="standard", eligible_phases=())
BUNDLE_EDITION = Edition(offering_code="SI-GOV", year=2026, terms=BUNDLE_TERMS)


class TestBundleOverlaps:
    """Issue 14, rule 5: a bundle gives the cover of each offering it includes, so it never overlaps an SLA
    of one of them bought separately, nor one of them a bundle holding it."""

    def held(self, code, covers, start=dt.date(2026, 4, 1), until=dt.date(2027, 3, 31)):
        return Holding(code, frozenset(covers), start, until)

    def test_a_bundle_cannot_be_bought_over_a_component_held_separately(self):
        error = refused(Overlapping, offering=BUNDLE, edition=BUNDLE_EDITION,
                        holdings=(self.held("GOV-TRAIN", {"GOV-TRAIN"}),))
        assert error.field == "offering_code" and "GOV-TRAIN" in error.message and "bundle" in error.message

    def test_a_component_cannot_be_bought_over_a_bundle_holding_it(self):
        error = refused(Overlapping, holdings=(self.held("SI-GOV", {"SI-GOV", "SI-CORE", "GOV-TRAIN"}),))
        assert "SI-CORE" in error.message and "through SI-GOV" in error.message

    def test_a_component_held_in_another_period_does_not_overlap(self):
        earlier = self.held("GOV-TRAIN", {"GOV-TRAIN"}, dt.date(2025, 4, 1), dt.date(2026, 3, 31))
        assert purchase(offering=BUNDLE, edition=BUNDLE_EDITION, holdings=(earlier,))

    def test_an_unrelated_holding_does_not_overlap(self):
        assert purchase(holdings=(self.held("LD-NET", {"LD-NET"}),))


class TestPerDelegatePlaces:
    """Issue 14, rule 6: a per-delegate SLA of N places gave the edition's entitlements as they stood (one
    place, or none), so scheduling counted fewer places than were bought and charged delegates again."""

    TERMS = PriceTerms(model="per_delegate", subscriber_price_pence=9000, non_subscriber_price_pence=15000)

    def test_a_per_delegate_sla_of_n_places_carries_n_included_places(self):
        edition = Edition(offering_code="SI-CORE", year=2026, terms=self.TERMS)
        sub = purchase(edition=edition, quantity=4)
        assert sub.entitlements == (Entitlement("included_place", 4),)
        assert sub.annual_price_pence == 4 * 15000

    def test_the_editions_places_per_delegate_are_multiplied_and_other_kinds_kept(self):
        edition = Edition(offering_code="X", year=2026, terms=self.TERMS,
                          entitlements=(Entitlement("included_place", 1), Entitlement("resource_pack", 1)))
        assert sla_entitlements(edition, 3) == (Entitlement("resource_pack", 1), Entitlement("included_place", 3))

    def test_other_models_keep_the_editions_entitlements(self):
        edition = dataclasses.replace(EDITION, entitlements=(Entitlement("included_place", 2),))
        assert sla_entitlements(edition, 1) == (Entitlement("included_place", 2),)
