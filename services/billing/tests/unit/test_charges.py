"""billing.domain.model: who pays, the first charge's period, and its amount in whole pence."""
import datetime as dt
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from billing.domain.model import Charge, Payer, charge_for_subscription, first_year_end, payer_for
from billing.domain.upstream import Subscription
from billing.messages.consumed import SubscriptionStarted

SCHOOL = dict(urn="145678", school_name="Aylesbury Vale Academy")


def subscription(**overrides) -> Subscription:
    """A `subscription_started` payload as billing's consumer schema loads it."""
    payload = {
        "subscription_id": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d", "urn": "110394",
        "school_name": "Haddenham Community Infant School", "is_academy": False, "mat": None,
        "payer_type": "maintained", "offering_code": "SI-CORE", "offering_name": "School improvement core offer",
        "service_area": "school_improvement", "vat_treatment": "standard", "edition_year": 2026,
        "period_start": "2026-04-01", "period_end": "2027-03-31", "years": 1, "quantity": 1,
        "annual_price_pence": 291900, "price_breakdown": [],
        "census": {"date": "2025-10-02", "number_on_roll": 172}, "po_number": "PO-4471",
        "purchased_on": "2026-03-02",
    }
    payload.update(overrides)
    return SubscriptionStarted().load(payload)


class TestPayerFor:
    def test_a_school_outside_a_mat_pays_for_itself(self):
        payer = payer_for(**SCHOOL, mat_id=None, mat_name=None, mat_pays_centrally=True)
        assert payer == Payer("school", "145678", "Aylesbury Vale Academy")

    def test_a_mat_that_pays_centrally_pays_for_its_academy(self):
        payer = payer_for(**SCHOOL, mat_id="TR01234", mat_name="Chiltern Learning Trust", mat_pays_centrally=True)
        assert payer == Payer("mat", "TR01234", "Chiltern Learning Trust")

    def test_an_academy_pays_for_itself_when_its_mat_does_not_pay_centrally(self):
        payer = payer_for(**SCHOOL, mat_id="TR01234", mat_name="Chiltern Learning Trust", mat_pays_centrally=False)
        assert payer == Payer("school", "145678", "Aylesbury Vale Academy")

    def test_a_mat_without_a_known_name_is_named_by_its_id(self):
        payer = payer_for(**SCHOOL, mat_id="TR01234", mat_name=None, mat_pays_centrally=True)
        assert payer == Payer("mat", "TR01234", "TR01234")

    @given(mat_id=st.none() | st.text(min_size=1, max_size=10), central=st.booleans())
    def test_the_mat_pays_only_when_there_is_one_and_it_pays_centrally(self, mat_id, central):
        payer = payer_for(**SCHOOL, mat_id=mat_id, mat_name="Trust", mat_pays_centrally=central)
        assert payer.kind == ("mat" if mat_id and central else "school")
        assert payer.id == (mat_id if payer.kind == "mat" else SCHOOL["urn"])


class TestFirstYearEnd:
    def test_a_one_year_agreement_is_charged_for_all_of_it(self):
        assert first_year_end(dt.date(2026, 4, 1), dt.date(2027, 3, 31)) == dt.date(2027, 3, 31)

    @pytest.mark.parametrize(("start", "end", "first_end"), [
        (dt.date(2026, 4, 1), dt.date(2029, 3, 31), dt.date(2027, 3, 31)),  # maintained, 3 years
        (dt.date(2026, 9, 1), dt.date(2028, 8, 31), dt.date(2027, 8, 31)),  # academy, 2 years
        (dt.date(2027, 3, 1), dt.date(2030, 2, 28), dt.date(2028, 2, 29)),  # first year runs through a leap day
    ])
    def test_a_multi_year_agreement_is_charged_one_year_first(self, start, end, first_end):
        assert first_year_end(start, end) == first_end

    def test_a_period_shorter_than_a_year_ends_where_it_ends(self):
        assert first_year_end(dt.date(2026, 4, 1), dt.date(2026, 8, 31)) == dt.date(2026, 8, 31)

    def test_a_29_february_start_runs_to_28_february_next_year(self):
        assert first_year_end(dt.date(2028, 2, 29), dt.date(2031, 2, 28)) == dt.date(2029, 2, 28)

    def test_a_29_february_start_of_a_short_period_ends_where_it_ends(self):
        assert first_year_end(dt.date(2028, 2, 29), dt.date(2028, 12, 31)) == dt.date(2028, 12, 31)

    @given(start=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2098, 12, 31)),
           length=st.integers(min_value=0, max_value=3 * 366))
    def test_first_year_is_at_most_a_year_and_within_the_period(self, start, length):
        end = start + dt.timedelta(days=length)
        first_end = first_year_end(start, end)
        assert start <= first_end <= end
        assert (first_end - start).days + 1 <= 366
        if length >= 366:  # long enough to hold a whole year: it holds exactly one
            assert (first_end - start).days + 1 in (365, 366)
            next_start = first_end + dt.timedelta(days=1)
            assert (next_start.month, next_start.day) == ((start.month, start.day)
                                                          if (start.month, start.day) != (2, 29) else (3, 1))


class TestChargeForSubscription:
    def test_charge_is_the_annual_price_for_the_first_year(self):
        payer = Payer("school", "110394", "Haddenham Community Infant School")
        charge = charge_for_subscription(subscription(), payer)
        assert isinstance(charge, Charge)
        assert charge.amount_pence == 291900 and type(charge.amount_pence) is int
        assert (charge.period_start, charge.period_end) == (dt.date(2026, 4, 1), dt.date(2027, 3, 31))
        assert charge.payer == payer

    def test_charge_carries_what_was_bought_and_the_census_behind_the_price(self):
        charge = charge_for_subscription(subscription(), Payer("school", "110394", "Haddenham"))
        assert (charge.subscription_id, charge.urn) == ("6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d", "110394")
        assert (charge.offering_code, charge.offering_name, charge.service_area, charge.vat_treatment) == (
            "SI-CORE", "School improvement core offer", "school_improvement", "standard")
        assert (charge.census_date, charge.number_on_roll) == (dt.date(2025, 10, 2), 172)
        uuid.UUID(charge.id)

    def test_a_multi_year_agreement_is_charged_its_first_year_only(self):
        charge = charge_for_subscription(subscription(period_end="2029-03-31", years=3), Payer("school", "1", "x"))
        assert charge.period_end == dt.date(2027, 3, 31)
        assert charge.amount_pence == 291900

    def test_the_annual_price_already_counts_the_quantity(self):
        # the catalogue prices 4 days at 475.00 as annual_price_pence 190000 (found by tests/e2e/test_conversion.py)
        charge = charge_for_subscription(subscription(quantity=4, annual_price_pence=190000), Payer("school", "1", "x"))
        assert (charge.amount_pence, charge.quantity, charge.unit_price_pence) == (190000, 4, 47500)
        assert type(charge.amount_pence) is int

    def test_a_price_that_does_not_divide_by_the_quantity_is_one_line_of_the_whole(self):
        charge = charge_for_subscription(subscription(quantity=3, annual_price_pence=100000), Payer("school", "1", "x"))
        assert (charge.amount_pence, charge.quantity, charge.unit_price_pence) == (100000, 1, 100000)

    def test_each_charge_has_its_own_id(self):
        payer = Payer("school", "1", "x")
        assert charge_for_subscription(subscription(), payer).id != charge_for_subscription(subscription(), payer).id

    @given(price=st.integers(min_value=0, max_value=10**9), quantity=st.integers(min_value=1, max_value=50))
    def test_amount_is_exact_integer_pence(self, price, quantity):
        charge = charge_for_subscription(subscription(annual_price_pence=price, quantity=quantity),
                                         Payer("school", "1", "x"))
        assert charge.amount_pence == price
        assert charge.quantity * charge.unit_price_pence == price
        assert type(charge.amount_pence) is int and not isinstance(charge.amount_pence, float)

    @given(start=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2090, 12, 31)),
           years=st.integers(min_value=1, max_value=3))
    def test_any_start_date_gives_a_charge(self, start, years):
        assume(start.year + years <= 2099)
        end = dt.date(start.year + years, start.month, 28) - dt.timedelta(days=1)
        charge = charge_for_subscription(subscription(period_start=start.isoformat(), period_end=end.isoformat()),
                                         Payer("school", "1", "x"))
        assert start <= charge.period_end <= end
