"""Rule 5, billing's side (issue 14, interface A), the pure parts: a bundle's invoice has one line per
component, each with its own VAT treatment; the lines sum exactly to the charge and VAT is rounded once
per line."""
from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from billing.domain import invoicing, model
from billing.domain.money import allocate
from billing.domain.upstream import Census, Component, Subscription

SI = Component("SI-CORE", "School improvement core offer", "school_improvement", "standard", 60000)
GOV = Component("GOV-TRAIN", "Governor training", "governance", "exempt", 25000)
EY = Component("EY-SEND", "Early years SEND", "early_years_and_inclusion", "zero", 15000)


def bundle(start=dt.date(2026, 4, 1), components=(SI, GOV, EY), price=100000) -> Subscription:
    return Subscription("sla-1", "110001", "Wing School", None, "BUNDLE-PRIMARY", "Primary bundle",
                        "school_improvement", "standard", start, dt.date(2027, 3, 31), 1, price,
                        Census(dt.date(2025, 10, 2), 210), po_number="PO-9", components=tuple(components))


def charge_of(subscription: Subscription) -> model.Charge:
    return model.charge_for_subscription(subscription, model.Payer("school", "110001", "Wing School"))


class TestAllocation:
    @given(st.integers(-10**9, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=8))
    def test_the_parts_sum_exactly_and_each_is_within_a_penny_of_its_share(self, amount, weights):
        parts = allocate(amount, weights)
        assert sum(parts) == amount and len(parts) == len(weights)
        if sum(weights):
            for part, weight in zip(parts, weights):
                assert abs(part * sum(weights) - amount * weight) < sum(weights)

    def test_the_pence_left_over_go_to_the_largest_remainders(self):
        # 24,658 x 60/25/15 %: 14,794.8, 6,164.5, 3,698.7 -> 14,794 + 6,164 + 3,698 = 24,656; 2p to .8 and .7
        assert allocate(24658, [60000, 25000, 15000]) == [14795, 6164, 3699]
        assert allocate(-24658, [60000, 25000, 15000]) == [-14795, -6164, -3699]


class TestBundleLines:
    def test_a_bundle_is_one_line_per_component_with_its_own_vat(self):
        lines = invoicing.lines_for(charge_of(bundle()))
        assert [(l.offering_code, l.vat_code, l.net_pence, l.vat_pence, l.service_area) for l in lines] == [
            ("SI-CORE", "S", 60000, 12000, "school_improvement"), ("GOV-TRAIN", "E", 25000, 0, "governance"),
            ("EY-SEND", "Z", 15000, 0, "early_years_and_inclusion")]
        assert {l.po_number for l in lines} == {"PO-9"}
        assert lines[0].description == "Primary bundle: School improvement core offer"

    def test_a_late_start_is_pro_rated_once_then_split_exactly(self):
        charge = charge_of(bundle(start=dt.date(2027, 1, 1)))
        assert charge.amount_pence == 24658  # 100,000 x 90/365
        lines = invoicing.lines_for(charge)
        assert [l.net_pence for l in lines] == [14795, 6164, 3699] and sum(l.net_pence for l in lines) == 24658
        assert [l.vat_pence for l in lines] == [2959, 0, 0]  # 14,795 x 20% = 2,959.0, rounded once on its line

    def test_a_credit_of_a_bundle_is_split_the_same_way_negated(self):
        credit = model.credit_for(charge_of(bundle()), dt.date(2027, 1, 1), "cancelled")
        lines = invoicing.lines_for(credit, sign=-1)
        assert [(l.net_pence, l.vat_pence) for l in lines] == [(-14795, -2959), (-6164, 0), (-3699, 0)]

    def test_an_sla_without_components_is_one_line_as_before(self):
        [line] = invoicing.lines_for(charge_of(bundle(components=())))
        assert (line.offering_code, line.net_pence, line.vat_pence) == ("BUNDLE-PRIMARY", 100000, 20000)

    @given(st.integers(1, 366), st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(
        ["standard", "zero", "exempt"])), min_size=1, max_size=6))
    def test_lines_always_sum_to_the_charge(self, days_late, shares):
        components = [Component(f"C{i}", f"Component {i}", "governance", vat, price)
                      for i, (price, vat) in enumerate(shares)]
        price = sum(c.annual_price_pence for c in components)
        charge = charge_of(bundle(start=dt.date(2026, 4, 1) + dt.timedelta(days=days_late - 1),
                                  components=components, price=price))
        lines = invoicing.lines_for(charge)
        assert sum(l.net_pence for l in lines) == charge.amount_pence
        for line in lines:
            assert line.vat_pence == invoicing.vat_pence(line.net_pence, line.vat_treatment)
