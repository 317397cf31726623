"""Catalogue use cases on the real databases (SQLite and PostgreSQL), without a broker:
purchases, refusals that write nothing, leaving, conversion, cancellation, the renewal round
(bulk outbox rows) and the buy-back report. Events are read back from the outbox."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from shared.db import scratch_database
from shared.unit_of_work import Origin, Producer, UnitsOfWork

from catalogue.adapters import repository
from catalogue.adapters.tables import inbox, outbox, subscriptions
from catalogue.domain import model
from catalogue.messages import consumed
from catalogue.messages.published import PUBLISHED, SubscriptionRenewedV1
from catalogue.service_layer import commands, handlers


def offering_command(edition: dict | None = None, **fields) -> commands.PublishOffering:
    """A `PublishOffering` as its request schema loads it: the edition a `PriceEdition`."""
    return commands.PublishOffering(**fields, edition=commands.PriceEdition(**edition) if edition else None)


D = dt.date


@pytest.fixture(params=["sqlite", "postgresql"])
def uows(request, tmp_path):
    with scratch_database(request.param, tmp_path, "catalogue_uc", migrations="catalogue:migrations") as database:
        producer = Producer(service="catalogue", operator="test-operator", schemas=PUBLISHED)
        yield UnitsOfWork(database, producer, outbox, inbox, Origin(correlation_id="test"), lambda: None)


def events(uows, event_type=None) -> list[dict]:
    with uows.read() as session:
        rows = session.execute(sa.select(outbox.c.body).order_by(outbox.c.id)).scalars().all()
    found = [json.loads(body) for body in rows]
    return [e for e in found if event_type is None or e["type"] == event_type]


def typed(schema, payload: dict):
    """The typed event the entrypoint hands over, loaded from a payload as membership writes it."""
    return schema().load(json.loads(json.dumps(payload, default=str)))


def join(uows, urn, *, phase="primary", roll=210, mat=None, establishment_type="community"):
    handlers.record_member_joined(uows(), typed(consumed.MemberJoined, {
        "urn": urn, "name": f"School {urn}", "establishment_type": establishment_type, "phase": phase,
        "is_academy": mat is not None, "mat": mat, "number_on_roll": roll, "census_date": D(2025, 10, 2),
        "joined_on": D(2026, 1, 5)}))
    contact_id = str(uuid.uuid4())
    handlers.record_contact_role(uows(), typed(consumed.ContactRoleChanged, {
        "contact_id": contact_id, "urn": urn, "display_name": f"Head of {urn}", "role": "head_teacher",
        "may_commit_spending": True, "active": True, "effective_date": D(2026, 1, 5)}))
    return contact_id


OFFERINGS = {
    "SI-CORE": {"name": "School improvement core offer", "service_area": "school_improvement",
                "terms": {"model": "per_pupil", "base_fee_pence": 150000,
                          "rate_by_phase": {"primary": Decimal("825"), "secondary": Decimal("610")},
                          "minimum_pence": 200000, "maximum_pence": 900000}},
    "GOV-TRAIN": {"name": "Governance training", "service_area": "governance",
                  "terms": {"model": "banded", "bands": [{"up_to_pupils": 200, "price_pence": 60000},
                                                         {"up_to_pupils": None, "price_pence": 95000}]}},
    "LD-COACH": {"name": "Leadership coaching days", "service_area": "leadership_development",
                 "terms": {"model": "per_session", "unit": "day", "unit_price_pence": 45000}},
}


def publish_offerings(uows):
    for code, spec in OFFERINGS.items():
        handlers.publish_offering(uows(), offering_command(**{
            "code": code, "name": spec["name"], "service_area": spec["service_area"], "vat_treatment": "standard",
            "eligible_phases": ["primary", "secondary"], "edition": {
                "year": 2026, "terms": spec["terms"], "entitlements": [{"kind": "in_house_session", "quantity": 2}]}}),
            provider="test-operator")


def buy(uows, urn, contact_id, code, today=D(2026, 3, 2), **extra):
    return handlers.buy_subscription(uows(), commands.BuySubscription(
        urn=urn, offering_code=code, edition_year=2026, contact_id=contact_id, **extra), today=today)


class TestPurchase:
    def test_three_pricing_models_priced_and_published_with_entitlements(self, uows):
        publish_offerings(uows)
        head = join(uows, "110001", roll=172)
        subs = [buy(uows, "110001", head, "SI-CORE"), buy(uows, "110001", head, "GOV-TRAIN"),
                buy(uows, "110001", head, "LD-COACH", quantity=3)]
        assert [s.annual_price_pence for s in subs] == [291900, 60000, 135000]
        started = [e["payload"] for e in events(uows, "subscription_started")]
        assert [(p["offering_code"], p["annual_price_pence"], p["quantity"]) for p in started] == [
            ("SI-CORE", 291900, 1), ("GOV-TRAIN", 60000, 1), ("LD-COACH", 135000, 3)]
        assert started[0]["entitlements"] == [{"kind": "in_house_session", "quantity": 2}]
        assert started[0]["continues_subscription_id"] is None
        assert started[0]["census"] == {"date": "2025-10-02", "number_on_roll": 172}
        priced = [e["payload"] for e in events(uows, "edition_priced")]
        assert priced[1]["pricing"] == {"model": "banded", "bands": [{"up_to_pupils": 200, "price_pence": 60000},
                                                                     {"up_to_pupils": None, "price_pence": 95000}]}

    def test_refusals_write_nothing(self, uows):
        publish_offerings(uows)
        head = join(uows, "110002")
        before = len(events(uows))
        senco = str(uuid.uuid4())
        handlers.record_contact_role(uows(), typed(consumed.ContactRoleChanged, {
            "contact_id": senco, "urn": "110002", "display_name": "S. Senco", "role": "senco",
            "may_commit_spending": False, "active": True, "effective_date": D(2026, 1, 5)}))
        with pytest.raises(model.NotAllowed) as refused:
            buy(uows, "110002", senco, "SI-CORE")
        assert refused.value.field == "contact_id"
        buy(uows, "110002", head, "SI-CORE")
        with pytest.raises(model.Overlapping):
            buy(uows, "110002", head, "SI-CORE", years=2)
        with uows.read() as session:
            assert session.execute(sa.select(sa.func.count()).select_from(subscriptions)).scalar_one() == 1
        assert len(events(uows)) == before + 1

    def test_erasing_a_contact_removes_their_name_and_authority(self, uows):
        publish_offerings(uows)
        head = join(uows, "110003")
        sub = buy(uows, "110003", head, "GOV-TRAIN")
        handlers.erase_contact(uows(), typed(consumed.ContactErased, {"contact_id": head}))
        with uows.read() as session:
            row = session.execute(sa.select(subscriptions).where(subscriptions.c.id == sub.id)).one()
        assert (row.purchased_by_name, row.purchased_by_contact_id) == ("(erased)", None)
        with pytest.raises(model.NotAllowed):
            buy(uows, "110003", head, "SI-CORE")


class TestLeavingAndConversion:
    def test_leaving_ends_every_sla_from_the_leaving_date(self, uows):
        publish_offerings(uows)
        head = join(uows, "110010")
        first = buy(uows, "110010", head, "SI-CORE", years=2)
        handlers.record_member_left(uows(), typed(consumed.MemberLeft, {
            "urn": "110010", "effective_date": D(2026, 11, 1), "reason": "closed"}))
        ended = [e["payload"] for e in events(uows, "subscription_ended")]
        assert ended == [{"subscription_id": first.id, "urn": "110010", "effective_date": "2026-11-01",
                          "reason": "left"}]
        with pytest.raises(model.NotAllowed) as refused:
            buy(uows, "110010", head, "GOV-TRAIN", today=D(2026, 11, 1))
        assert refused.value.field == "urn"

    def test_a_school_leaving_on_a_future_date_may_buy_until_the_day_before(self, uows):
        """The leaving is known months ahead: the school stays a member to 31 October; what it buys
        meanwhile ends from 1 November like its older SLAs."""
        publish_offerings(uows)
        head = join(uows, "110011")
        handlers.record_member_left(uows(), typed(consumed.MemberLeft, {
            "urn": "110011", "effective_date": D(2026, 11, 1), "reason": "closed"}))
        late = buy(uows, "110011", head, "GOV-TRAIN", today=D(2026, 10, 31))
        assert [e["payload"] for e in events(uows, "subscription_ended")] == [
            {"subscription_id": late.id, "urn": "110011", "effective_date": "2026-11-01", "reason": "left"}]
        with uows.read() as session:
            row = session.execute(sa.select(subscriptions).where(subscriptions.c.id == late.id)).one()
        assert (row.covered_until, row.status) == (D(2026, 10, 31), "ended")
        with pytest.raises(model.NotAllowed) as refused:
            buy(uows, "110011", head, "SI-CORE", today=D(2026, 11, 1))
        assert refused.value.field == "urn"

    def test_a_school_converting_on_a_future_date_may_buy_until_the_day_before(self, uows):
        """Bought after the conversion was announced, before it happened: the SLA ends on the conversion
        date and carries on for the academy, as the SLAs it held when the event arrived did."""
        publish_offerings(uows)
        head = join(uows, "110021", roll=172)
        handlers.record_conversion(uows(), typed(consumed.SchoolConvertedToAcademy, {
            "conversion_date": D(2027, 1, 1), "predecessor": {"urn": "110021"},
            "successor": {"urn": "149021", "name": "Academy 149021", "establishment_type": "academy_converter",
                          "phase": "primary", "number_on_roll": 180, "census_date": D(2026, 10, 1)},
            "mat": {"id": "TR01234", "name": "Great Learners Trust"}}))
        assert events(uows, "subscription_ended") == []
        bought = buy(uows, "110021", head, "GOV-TRAIN", today=D(2026, 12, 31))
        assert [e["payload"]["effective_date"] for e in events(uows, "subscription_ended")] == ["2027-01-01"]
        started = [e["payload"] for e in events(uows, "subscription_started")]
        # bought during the period: covered from the day of purchase (issue 14, rule 2)
        assert [(p["urn"], p["period_start"], p["continues_subscription_id"]) for p in started] == [
            ("110021", "2026-12-31", None), ("149021", "2027-01-01", bought.id)]
        with pytest.raises(model.NotAllowed) as refused:
            buy(uows, "110021", head, "SI-CORE", today=D(2027, 1, 1))
        assert refused.value.field == "urn"

    def test_conversion_ends_each_predecessor_sla_and_starts_the_successors(self, uows):
        publish_offerings(uows)
        head = join(uows, "110020", roll=172)
        bought = [buy(uows, "110020", head, "SI-CORE", years=2), buy(uows, "110020", head, "GOV-TRAIN"),
                  buy(uows, "110020", head, "LD-COACH", quantity=2)]
        handlers.record_conversion(uows(), typed(consumed.SchoolConvertedToAcademy, {
            "conversion_date": D(2027, 1, 1), "predecessor": {"urn": "110020"},
            "successor": {"urn": "149020", "name": "Academy 149020", "establishment_type": "academy_converter",
                          "phase": "primary", "number_on_roll": 180, "census_date": D(2026, 10, 1)},
            "mat": {"id": "TR01234", "name": "Great Learners Trust"}}))
        ended = {e["payload"]["subscription_id"]: e["payload"] for e in events(uows, "subscription_ended")}
        assert set(ended) == {s.id for s in bought}
        assert {(p["effective_date"], p["reason"]) for p in ended.values()} == {("2027-01-01", "converted")}
        started = [e["payload"] for e in events(uows, "subscription_started")][3:]
        by_old = {p["continues_subscription_id"]: p for p in started}
        for old in bought:
            new = by_old[old.id]
            assert (new["urn"], new["payer_type"], new["is_academy"]) == ("149020", "academy", True)
            assert new["mat"] == {"id": "TR01234", "name": "Great Learners Trust"}
            assert (new["period_start"], new["period_end"]) == ("2027-01-01", old.period_end.isoformat())
            assert new["annual_price_pence"] == old.annual_price_pence and new["offering_code"] == old.offering_code
            assert new["census"] == {"date": "2025-10-02", "number_on_roll": 172}  # frozen with the price


class TestRenewalRound:
    def test_round_opens_editions_renews_the_due_and_expires_the_rest_once(self, uows):
        publish_offerings(uows)
        staying, leaving, cancelling, multi = (join(uows, u) for u in ("120001", "120002", "120003", "120004"))
        academy = join(uows, "140005", mat={"id": "TR1", "name": "Trust One"})
        renewing = buy(uows, "120001", staying, "SI-CORE")
        buy(uows, "120002", leaving, "SI-CORE")
        cancelled = buy(uows, "120003", cancelling, "GOV-TRAIN")
        buy(uows, "120004", multi, "SI-CORE", years=3)
        academic = buy(uows, "140005", academy, "LD-COACH", quantity=2)
        handlers.cancel_subscription(uows(), cancelled.id,
                                     commands.CancelSubscription(contact_id=cancelling, reason="budget"),
                                     today=D(2026, 12, 1))
        handlers.record_member_left(uows(), typed(consumed.MemberLeft, {
            "urn": "120002", "effective_date": D(2027, 4, 1), "reason": "closed"}))
        handlers.record_census(uows(), typed(consumed.CensusRecorded, {
            "urn": "120001", "census_date": D(2026, 10, 1), "old_number_on_roll": 210, "number_on_roll": 300}))

        summary = handlers.run_renewal_round(uows, year=2027, today=D(2027, 1, 11),
                                             uplift_percent=Decimal("3"))
        assert sorted(summary.editions_opened) == ["GOV-TRAIN", "LD-COACH", "SI-CORE"]
        # the academy's SLA (notice date 31 May 2027) waits for the June round (issue 14, rule 1)
        assert (summary.due, summary.renewed, summary.expired, summary.awaiting_notice) == (2, 1, 1, 1)
        renewed = {e["payload"]["renewal_of"]: e for e in events(uows, "subscription_renewed")}
        assert set(renewed) == {renewing.id}
        payload = renewed[renewing.id]["payload"]
        # 154500 + 300 x 849.75 = 409425 at the new census and the uplifted 2027 price
        assert (payload["period_start"], payload["period_end"], payload["annual_price_pence"]) == (
            "2027-04-01", "2028-03-31", 409425)
        assert payload["census"] == {"date": "2026-10-01", "number_on_roll": 300}
        assert payload["continues_subscription_id"] == renewing.id
        assert renewed[renewing.id]["correlation_id"] == "test"
        expired = [e["payload"] for e in events(uows, "subscription_ended") if e["payload"]["reason"] == "expired"]
        assert [(p["urn"], p["effective_date"]) for p in expired] == [("120002", "2027-04-01")]

        june = handlers.run_renewal_round(uows, year=2027, today=D(2027, 6, 1))
        assert (june.editions_opened, june.due, june.renewed, june.expired, june.awaiting_notice) == (
            [], 1, 1, 0, 0)
        renewed = {e["payload"]["renewal_of"]: e for e in events(uows, "subscription_renewed")}
        assert set(renewed) == {renewing.id, academic.id}
        assert renewed[academic.id]["payload"]["period_start"] == "2027-09-01"
        assert renewed[academic.id]["payload"]["annual_price_pence"] == 2 * 46350
        for event in renewed.values():
            # the bulk path writes exactly what the strict schema would (`build` dumps then validates)
            facts = SubscriptionRenewedV1().load(event["payload"])
            assert PUBLISHED.build("subscription_renewed", 1, facts) == event["payload"]

        again = handlers.run_renewal_round(uows, year=2027, today=D(2027, 6, 2))
        assert (again.editions_opened, again.due, again.renewed, again.expired) == ([], 0, 0, 0)

        with uows.read() as session:
            view = handlers.renewal_view(session, "120001", 2027)
        assert [(line["offering_code"], line["last_year"]["annual_price_pence"], line["renewed_as"] is not None)
                for line in view["lines"]] == [("SI-CORE", 323250, True)]
        assert view["lines"][0]["this_year"]["annual_price_pence"] == 409425

    def test_buy_back_report_by_area_and_year(self, uows):
        publish_offerings(uows)
        heads = {u: join(uows, u) for u in ("130001", "130002", "130003", "130004")}
        bought = {urn: buy(uows, urn, head, "GOV-TRAIN") for urn, head in heads.items()}
        handlers.cancel_subscription(uows(), bought["130004"].id,
                                     commands.CancelSubscription(contact_id=heads["130004"], reason="budget"),
                                     today=D(2026, 12, 1))
        handlers.run_renewal_round(uows, year=2027, today=D(2027, 1, 11))
        with uows.read() as session:
            report = handlers.demand_report(session)
        assert report == [{"service_area": "governance", "year": 2027, "eligible": 4, "renewing": 3,
                           "buy_back_rate": "0.7500"}]

    def test_a_renewed_sla_reads_back_as_bought_and_ends_when_the_school_leaves(self, uows):
        """The round's SLA rows are the ones a purchase writes: its breakdown and entitlements read back as
        lists (not JSON text stored inside JSON), so leaving ends the renewed SLA like any other."""
        publish_offerings(uows)
        head = join(uows, "120031")
        bought = buy(uows, "120031", head, "SI-CORE")
        handlers.run_renewal_round(uows, year=2027, today=D(2027, 1, 11))
        renewal = {e["payload"]["renewal_of"]: e["payload"] for e in events(uows, "subscription_renewed")}[bought.id]
        with uows.read() as session:
            renewed = repository.subscription(session, renewal["subscription_id"])
            stored = session.execute(sa.select(subscriptions.c.breakdown, subscriptions.c.entitlements)
                                     .where(subscriptions.c.id == renewed.id)).one()
        assert stored.breakdown == renewal["price_breakdown"] == renewed.quote.breakdown()
        assert stored.entitlements == renewal["entitlements"] == [{"kind": "in_house_session", "quantity": 2}]
        assert (renewed.continues_subscription_id, renewed.origin, renewed.period_start) == (
            bought.id, "renewal", D(2027, 4, 1))

        endings = handlers.record_member_left(uows(), typed(consumed.MemberLeft, {
            "urn": "120031", "effective_date": "2027-09-01", "reason": "closed"}))
        assert [(e.subscription_id, e.effective_date) for e in endings] == [(renewed.id, D(2027, 9, 1))]
        ended = [e["payload"] for e in events(uows, "subscription_ended")]
        assert ended == [{"subscription_id": renewed.id, "urn": "120031", "effective_date": "2027-09-01",
                          "reason": "left"}]


class TestCatalogueChanges:
    def test_withdrawal_ends_slas_takes_editions_off_sale_and_refuses_new_purchases(self, uows):
        publish_offerings(uows)
        head = join(uows, "150001")
        sub = buy(uows, "150001", head, "GOV-TRAIN")
        endings = handlers.withdraw_offering(uows(), "GOV-TRAIN", D(2026, 9, 1))
        assert [(e.subscription_id, e.effective_date, e.reason) for e in endings] == [
            (sub.id, D(2026, 9, 1), "withdrawn")]
        assert events(uows, "offering_withdrawn")[0]["payload"] == {"offering_code": "GOV-TRAIN",
                                                                    "effective_date": "2026-09-01"}
        assert events(uows, "edition_priced")[-1]["payload"]["on_sale"] is False
        head2 = join(uows, "150002")
        with pytest.raises(model.NotAllowed):
            buy(uows, "150002", head2, "GOV-TRAIN")
        with pytest.raises(model.Conflicting):
            handlers.withdraw_offering(uows(), "GOV-TRAIN", D(2026, 10, 1))

    def test_an_editions_price_never_changes_and_sale_can_be_paused(self, uows):
        publish_offerings(uows)
        with pytest.raises(model.Conflicting) as refused:
            handlers.add_edition(uows(), "SI-CORE",
                                 commands.PriceEdition(year=2026, terms={"model": "flat", "flat_fee_pence": 1}))
        assert refused.value.field == "year"
        handlers.set_on_sale(uows(), "SI-CORE", 2026, False)
        head = join(uows, "150003")
        with pytest.raises(model.NotAllowed) as refused:
            buy(uows, "150003", head, "SI-CORE")
        assert refused.value.field == "edition_year" and "not on sale" in refused.value.message

    def test_capacity_and_the_subscriber_delegate_price(self, uows):
        publish_offerings(uows)
        handlers.publish_offering(uows(), offering_command(**{
            "code": "LD-NET", "name": "Peer learning network", "service_area": "leadership_development",
            "vat_treatment": "standard", "capacity": 1, "edition": {"year": 2026, "terms": {
                "model": "per_delegate", "subscriber_price_pence": 9000, "non_subscriber_price_pence": 15000}}}),
            provider="test-operator")
        first, second = join(uows, "150004"), join(uows, "150005")
        buy(uows, "150004", first, "LD-COACH")  # same service area: a subscriber from April
        with uows.read() as session:
            quoted = handlers.quote_for(session, commands.Quote(urn="150004", offering_code="LD-NET", edition_year=2026,
                                                  quantity=3), today=D(2026, 3, 2))
        assert (quoted["subscriber"], quoted["annual_price_pence"]) == (True, 27000)
        assert buy(uows, "150004", first, "LD-NET", quantity=3).annual_price_pence == 27000
        with pytest.raises(model.OverCapacity):
            buy(uows, "150005", second, "LD-NET")

    def test_details_and_census_keep_the_newest_and_never_reprice_a_sold_sla(self, uows):
        publish_offerings(uows)
        head = join(uows, "150006", roll=172)
        sub = buy(uows, "150006", head, "SI-CORE")
        handlers.record_census(uows(), typed(consumed.CensusRecorded, {
            "urn": "150006", "census_date": D(2026, 10, 1), "number_on_roll": 400}))
        handlers.record_census(uows(), typed(consumed.CensusRecorded, {
            "urn": "150006", "census_date": D(2024, 10, 1), "number_on_roll": 10}))
        handlers.record_member_details_changed(uows(), typed(consumed.MemberDetailsChanged, {
            "urn": "150006", "effective_date": D(2026, 11, 1), "name": "Renamed School", "phase": "primary",
            "establishment_type": "foundation", "is_academy": False, "mat": None}))
        with uows.read() as session:
            member = handlers.repository.member(session, "150006")
            again = handlers.repository.subscription(session, sub.id)
        assert (member.name, member.establishment_type, member.number_on_roll) == ("Renamed School", "foundation",
                                                                                   400)
        assert (again.annual_price_pence, again.number_on_roll) == (291900, 172)


def renewals_of(uows) -> set[str]:
    return {e["payload"]["renewal_of"] for e in events(uows, "subscription_renewed")}


def publish_delegate_offering(uows, capacity=None):
    handlers.publish_offering(uows(), offering_command(**{
        "code": "LD-NET", "name": "Peer learning network", "service_area": "leadership_development",
        "vat_treatment": "standard", "capacity": capacity, "edition": {"year": 2026, "terms": {
            "model": "per_delegate", "subscriber_price_pence": 9000, "non_subscriber_price_pence": 15000}}}),
        provider="test-operator")


class TestIssue14RenewalsAndNoticeDates:
    """Rule 1: an SLA renews only once its own notice date has passed without a cancellation; a renewal
    recorded before then is undone by a cancellation in time (`subscription_cancelled` for the renewal)."""

    def test_each_sla_renews_only_after_its_own_notice_date(self, uows):
        publish_offerings(uows)
        maintained = buy(uows, "160001", join(uows, "160001"), "GOV-TRAIN")  # notice date 31 Dec 2026
        academy = buy(uows, "160002", join(uows, "160002", mat={"id": "TR1", "name": "Trust One"}),
                      "GOV-TRAIN")  # September-August: notice date 31 May 2027
        for day, renewed in ((D(2026, 12, 30), set()), (D(2026, 12, 31), set()), (D(2027, 1, 1), {maintained.id}),
                             (D(2027, 5, 30), {maintained.id}), (D(2027, 5, 31), {maintained.id}),
                             (D(2027, 6, 1), {maintained.id, academy.id})):
            handlers.run_renewal_round(uows, year=2027, today=day)
            assert renewals_of(uows) == renewed, day

    def test_a_cancellation_on_the_notice_date_means_no_renewal(self, uows):
        publish_offerings(uows)
        head = join(uows, "160003")
        sub = buy(uows, "160003", head, "GOV-TRAIN")
        handlers.cancel_subscription(uows(), sub.id, commands.CancelSubscription(contact_id=head, reason="budget"),
                                     today=D(2026, 12, 31))
        summary = handlers.run_renewal_round(uows, year=2027, today=D(2027, 1, 11))
        assert (summary.due, summary.renewed, renewals_of(uows)) == (0, 0, set())

    def test_a_renewal_recorded_early_is_undone_by_a_cancellation_in_time(self, uows):
        publish_offerings(uows)
        head = join(uows, "160004")
        sub = buy(uows, "160004", head, "GOV-TRAIN")
        early = dataclasses.replace(sub, id=str(uuid.uuid4()), edition_year=2027, period_start=D(2027, 4, 1),
                                    period_end=D(2028, 3, 31), covered_until=D(2028, 3, 31), origin="renewal",
                                    continues_subscription_id=sub.id, purchased_on=D(2026, 11, 2))
        with uows() as uow:  # as a round run before the notice date recorded it, before this rule was kept
            repository.add_subscription(uow.session, early)
            uow.commit()
        handlers.cancel_subscription(uows(), sub.id, commands.CancelSubscription(contact_id=head, reason="budget"),
                                     today=D(2026, 12, 1))
        cancelled = [e["payload"] for e in events(uows, "subscription_cancelled")]
        assert [(p["subscription_id"], p["effective_date"], p["cancelled_on"]) for p in cancelled] == [
            (sub.id, "2027-04-01", "2026-12-01"), (early.id, "2027-04-01", "2026-12-01")]
        with uows.read() as session:
            undone = repository.subscription(session, early.id)
        assert undone.covered_until < undone.period_start and undone.status == "cancelled"
        summary = handlers.run_renewal_round(uows, year=2027, today=D(2027, 1, 11))
        assert (summary.due, summary.renewed) == (0, 0)


class TestIssue14PurchasesOfThePast:
    """Rule 2: an ended period cannot be bought; a purchase during the period covers from its day unless the
    offering is sold only whole; bought after the notice date an SLA renews only once confirmed."""

    def test_an_ended_period_is_refused_writing_nothing_and_a_late_purchase_starts_on_its_day(self, uows):
        publish_offerings(uows)
        head = join(uows, "160010")
        before = len(events(uows))
        with pytest.raises(model.NotAllowed) as refused:
            buy(uows, "160010", head, "GOV-TRAIN", today=D(2027, 4, 1))
        assert refused.value.field == "edition_year" and "ended on 2027-03-31" in refused.value.message
        assert len(events(uows)) == before
        late = buy(uows, "160010", head, "SI-CORE", today=D(2027, 2, 28))
        started = events(uows, "subscription_started")[-1]["payload"]
        assert (started["subscription_id"], started["period_start"], started["period_end"]) == (
            late.id, "2027-02-28", "2027-03-31")
        assert started["annual_price_pence"] == 150000 + 210 * 825  # the annual price; billing pro-rates by days

    def test_an_offering_sold_only_whole_keeps_the_whole_period(self, uows):
        handlers.publish_offering(uows(), offering_command(**{
            "code": "LD-PROG", "name": "Leadership programme", "service_area": "leadership_development",
            "vat_treatment": "standard", "sold_whole": True,
            "edition": {"year": 2026, "terms": {"model": "flat", "flat_fee_pence": 120000}}}), provider="test-operator")
        head = join(uows, "160011")
        buy(uows, "160011", head, "LD-PROG", today=D(2027, 2, 28))
        started = events(uows, "subscription_started")[-1]["payload"]
        assert (started["period_start"], started["period_end"]) == ("2026-04-01", "2027-03-31")

    def test_bought_after_the_notice_date_it_renews_only_once_confirmed(self, uows):
        publish_offerings(uows)
        unconfirmed_head, confirmed_head = join(uows, "160012"), join(uows, "160013")
        unconfirmed = buy(uows, "160012", unconfirmed_head, "GOV-TRAIN", today=D(2027, 1, 15))
        confirmed = buy(uows, "160013", confirmed_head, "GOV-TRAIN", today=D(2027, 1, 15), renew=True)
        assert (unconfirmed.auto_renew, confirmed.auto_renew) == (False, True)
        assert "will not renew" in model.renewal_notice(unconfirmed)
        handlers.run_renewal_round(uows, year=2027, today=D(2027, 1, 20))
        assert renewals_of(uows) == {confirmed.id}
        handlers.confirm_renewal(uows(), unconfirmed.id, commands.ConfirmRenewal(contact_id=unconfirmed_head),
                                 today=D(2027, 2, 1))
        handlers.run_renewal_round(uows, year=2027, today=D(2027, 2, 2))
        assert renewals_of(uows) == {confirmed.id, unconfirmed.id}


class TestIssue14RenewalPricingAndPlaces:
    def test_a_school_holding_a_multi_year_sla_of_the_area_renews_at_the_subscriber_price(self, uows):
        """Rule 3: the multi-year coaching SLA covers 1 April 2027, so the network renews at the subscriber
        price (it was the non-subscriber price: only SLAs due in the same round counted)."""
        publish_offerings(uows)
        publish_delegate_offering(uows)
        head = join(uows, "160020")
        buy(uows, "160020", head, "LD-COACH", years=3)
        network = buy(uows, "160020", head, "LD-NET", quantity=2)
        assert network.annual_price_pence == 2 * 9000
        handlers.run_renewal_round(uows, year=2027, today=D(2027, 1, 11))
        renewed = [e["payload"] for e in events(uows, "subscription_renewed")]
        assert [(p["renewal_of"], p["annual_price_pence"]) for p in renewed] == [(network.id, 2 * 9000)]
        assert "subscriber price" in renewed[0]["price_breakdown"][0]["label"]
        # rule 6: each of the two delegate places bought is a place scheduling counts, renewed too
        assert renewed[0]["entitlements"] == [{"kind": "included_place", "quantity": 2}]

    def test_a_per_delegate_sla_of_n_places_publishes_n_included_places(self, uows):
        """Rule 6: the SLA carried the edition's entitlements (none here), so scheduling counted no place."""
        publish_delegate_offering(uows)
        head = join(uows, "160021")
        buy(uows, "160021", head, "LD-NET", quantity=3)
        started = events(uows, "subscription_started")[-1]["payload"]
        assert (started["quantity"], started["entitlements"]) == (3, [{"kind": "included_place", "quantity": 3}])
        assert started["components"] == []  # not a bundle


class TestIssue14Capacity:
    def test_two_purchases_of_the_last_place_at_once_give_one_sla_and_one_refusal(self, uows, monkeypatch):
        """Rule 4: both purchases counted the places, then both inserted. Released together by a barrier,
        each waits after counting for the other to have counted too: without a lock both meet there and
        both buy; with it the second counts only after the first committed (the meeting then times out)."""
        publish_delegate_offering(uows, capacity=1)
        heads = {urn: join(uows, urn) for urn in ("160030", "160031")}
        released, counted = threading.Barrier(2), threading.Barrier(2, timeout=2)
        count = repository.holders

        def count_then_meet(*args, **kwargs):
            found = count(*args, **kwargs)
            try:
                counted.wait()
            except threading.BrokenBarrierError:
                pass  # the other purchase is waiting for the lock this one holds
            return found

        monkeypatch.setattr(repository, "holders", count_then_meet)
        outcomes = {}

        def attempt(urn):
            released.wait()
            try:
                outcomes[urn] = buy(uows, urn, heads[urn], "LD-NET")
            except model.CatalogueRuleBroken as exc:
                outcomes[urn] = exc

        threads = [threading.Thread(target=attempt, args=(urn,)) for urn in heads]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        sold = [o for o in outcomes.values() if isinstance(o, model.Subscription)]
        refused = [o for o in outcomes.values() if isinstance(o, model.OverCapacity)]
        assert (len(sold), len(refused)) == (1, 1), outcomes
        assert refused[0].field == "offering_code" and "full" in refused[0].message
        with uows.read() as session:
            assert count(session, "LD-NET", D(2026, 4, 1), D(2027, 3, 31)) == 1


class TestIssue14Bundles:
    """Rule 5: a bundle gives the cover of each included offering: `components` on its events (each with
    its own VAT treatment and a share of the price summing to it), and no overlap with them."""

    def publish(self, uows):
        publish_offerings(uows)
        handlers.publish_offering(uows(), offering_command(**{
            "code": "GOV-LAW", "name": "Governance compliance advice", "service_area": "governance",
            "vat_treatment": "exempt", "edition": {"year": 2026, "terms": {"model": "flat", "flat_fee_pence": 95000},
                                                   "entitlements": [{"kind": "advice_call", "quantity": 4}]}}),
            provider="test-operator")
        handlers.publish_offering(uows(), offering_command(**{
            "code": "SI-GOV", "name": "Improvement and governance bundle", "service_area": "school_improvement",
            "vat_treatment": "standard", "edition": {"year": 2026, "terms": {
                "model": "bundle", "bundle_price_pence": 300000, "includes": ["SI-CORE", "GOV-LAW"]}}}),
            provider="test-operator")

    def test_a_bundle_publishes_its_components_and_renews_with_them(self, uows):
        self.publish(uows)
        head = join(uows, "160040", roll=172)
        bundle = buy(uows, "160040", head, "SI-GOV")
        started = events(uows, "subscription_started")[-1]["payload"]
        # own prices 291900 (SI-CORE, 172 pupils) and 95000: 226337.56 and 73662.44, the spare penny to the first
        assert started["components"] == [
            {"offering_code": "SI-CORE", "offering_name": "School improvement core offer",
             "service_area": "school_improvement", "vat_treatment": "standard",
             "entitlements": [{"kind": "in_house_session", "quantity": 2}], "annual_price_pence": 226338},
            {"offering_code": "GOV-LAW", "offering_name": "Governance compliance advice",
             "service_area": "governance", "vat_treatment": "exempt",
             "entitlements": [{"kind": "advice_call", "quantity": 4}], "annual_price_pence": 73662}]
        assert sum(c["annual_price_pence"] for c in started["components"]) == bundle.annual_price_pence == 300000
        handlers.run_renewal_round(uows, year=2027, today=D(2027, 1, 11), uplift_percent=Decimal("3"))
        renewed = events(uows, "subscription_renewed")[-1]["payload"]
        assert [c["offering_code"] for c in renewed["components"]] == ["SI-CORE", "GOV-LAW"]
        assert sum(c["annual_price_pence"] for c in renewed["components"]) == renewed["annual_price_pence"] == 309000

    def test_a_bundle_and_an_offering_it_includes_never_cover_the_same_days(self, uows):
        self.publish(uows)
        holder, separate = join(uows, "160041"), join(uows, "160042")
        buy(uows, "160041", holder, "SI-GOV")
        with pytest.raises(model.Overlapping) as refused:
            buy(uows, "160041", holder, "GOV-LAW")
        assert refused.value.field == "offering_code" and "through SI-GOV" in refused.value.message
        buy(uows, "160042", separate, "GOV-LAW")
        with pytest.raises(model.Overlapping) as refused:
            buy(uows, "160042", separate, "SI-GOV")
        assert "GOV-LAW" in refused.value.message
        assert buy(uows, "160041", holder, "GOV-TRAIN")  # not part of the bundle


class TestErasureReachesThePlumbing:
    def test_an_erasure_blanks_the_persons_outbox_copies_stored_answers_and_audit_subject(self, uows):
        from catalogue.adapters.tables import audit_log, idempotency_keys
        from shared.messaging_tables import utcnow

        head = join(uows, "110004")
        other = join(uows, "110005")
        # catalogue's own events name no person today; a body that does (an older version, a future field) is
        # rewritten all the same, sent or not
        body = {"event_id": "e-1", "type": "x", "version": 1, "payload": {
            "purchased_by": {"contact_id": head, "display_name": "Head of 110004", "email": "head@110004.example"},
            "urn": "110004"}}
        with uows.database.transaction() as session:
            session.execute(outbox.insert().values(event_id="e-1", event_type="x", version=1, aggregate="x",
                                                   body=json.dumps(body), created_at=utcnow(),
                                                   next_attempt_at=utcnow(), sent_at=utcnow()))
            answer = {"subscription_id": "s-1", "purchased_by": {"contact_id": head, "display_name": "Head of 110004"}}
            session.execute(idempotency_keys.insert().values(key="k-1", fingerprint="f" * 64, route="/subscriptions",
                                                             status=201, content_type="application/json",
                                                             body=json.dumps(answer), created_at=utcnow(),
                                                             completed_at=utcnow()))
            for contact_id, subject in ((head, "idp|head"), (other, "idp|other")):
                session.execute(audit_log.insert().values(at=utcnow(), subject=subject, contact_id=contact_id,
                                                          method="POST", route="/subscriptions", status=201,
                                                          outcome="done"))
            session.commit()

        handlers.erase_contact(uows(), typed(consumed.ContactErased, {"contact_id": head}))

        with uows.read() as session:
            stored = json.loads(session.execute(sa.select(outbox.c.body).where(outbox.c.event_id == "e-1")).scalar())
            audit = session.execute(sa.select(audit_log.c.contact_id, audit_log.c.subject)
                                    .order_by(audit_log.c.id)).all()
            answer = json.loads(session.execute(sa.select(idempotency_keys.c.body)).scalar())
        assert stored["payload"] == {"purchased_by": {"contact_id": head, "display_name": "[erased]", "email": None},
                                     "urn": "110004"}
        assert [tuple(r) for r in audit] == [(head, None), (other, "idp|other")]
        assert answer == {"subscription_id": "s-1", "purchased_by": {"contact_id": head, "display_name": "[erased]"}}
