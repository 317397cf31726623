"""billing.service_layer on a real SQLite database (no broker): charges from events, billing runs,
credit notes, payments, overdue checks, corrections, reports and exports."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import select

from billing.adapters.tables import inbox, outbox
from billing.domain.periods import billing_period
from billing.messages.consumed import MemberJoined, SubscriptionStarted
from billing.messages.consumed import AttendanceRecorded, SchoolConvertedToAcademy, SubscriptionCancelled
from billing.messages.published import PUBLISHED
from billing.service_layer import handlers, reports
from shared.db import Database
from shared.http import NotFound, RuleViolation
from shared.unit_of_work import Origin, Producer, UnitsOfWork

OPERATOR_CONFIG = {"name": "bucks-learning-trust", "legal_name": "Bucks Learning Trust", "address": "Aylesbury",
                   "vat_number": "GB123456789", "bank_account_name": "BLT", "bank_sort_code": "30-00-00",
                   "bank_account_number": "00012345", "invoice_prefix": "BLT-", "payment_terms_days": 30}
OPERATOR = handlers.operator_from_config(OPERATOR_CONFIG)
YEAR = billing_period("2026/27", "annual")
ISSUE = dt.date(2026, 9, 1)


class Books:
    def __init__(self, tmp_path):
        self.database = Database(f"sqlite:///{tmp_path / 'billing.db'}")
        self.database.upgrade("billing:migrations")
        self.uows = UnitsOfWork(self.database, Producer("billing", OPERATOR.name, PUBLISHED), outbox, inbox,
                                Origin(correlation_id="test"), lambda: None)

    def uow(self):
        return self.uows()

    def join(self, urn, name=None, mat=None, joined_on="2020-01-01"):
        handlers.record_member_joined(self.uow(), MemberJoined().load({
            "urn": urn, "name": name or f"School {urn}", "is_academy": mat is not None, "mat": mat,
            "joined_on": joined_on}))

    def buy(self, urn, price, start="2026-04-01", end="2027-03-31", sid=None, **extra):
        payload = {"subscription_id": sid or str(uuid.uuid4()), "urn": urn, "school_name": f"School {urn}",
                   "is_academy": False, "mat": None, "offering_code": "SI-CORE", "offering_name": "School improvement",
                   "service_area": "school_improvement", "vat_treatment": "standard", "period_start": start,
                   "period_end": end, "quantity": 1, "annual_price_pence": price,
                   "census": {"date": "2025-10-02", "number_on_roll": 200}, **extra}
        return handlers.record_subscription_charge(self.uow(), SubscriptionStarted().load(payload))

    def run(self, period=YEAR, issue=ISSUE, operator=OPERATOR):
        return handlers.run_billing(self.uow(), operator=operator, period=period, issue_date=issue)

    def read(self):
        return self.database.reader()

    def outbox_types(self):
        with self.read() as s:
            return [r.event_type for r in s.execute(select(outbox.c.event_type).order_by(outbox.c.id))]

    def envelopes(self, event_type):
        with self.read() as s:
            bodies = s.execute(select(outbox.c.body).where(outbox.c.event_type == event_type).order_by(outbox.c.id))
            return [json.loads(body) for body in bodies.scalars()]

    def docs(self, **kw):
        with self.read() as s:
            return reports.document_list(s, **kw)


@pytest.fixture
def books(tmp_path):
    b = Books(tmp_path)
    yield b
    b.database.dispose()


class TestBillingRun:
    def test_one_invoice_per_payer_with_numbers_in_sequence_and_events(self, books):
        for urn in ("110001", "110002"):
            books.join(urn)
        books.buy("110001", 100000)
        books.buy("110001", 50000)
        books.buy("110002", 20000)
        result = books.run()
        assert (result["invoices_issued"], result["rerun"]) == (2, False)
        docs = books.docs()
        assert [d["number"] for d in docs] == ["BLT-000001", "BLT-000002"]
        first = next(d for d in docs if d["payer_id"] == "110001")
        assert (first["net_pence"], first["vat_pence"], first["gross_pence"]) == (150000, 30000, 180000)
        assert first["due_date"] == "2026-10-01"
        assert books.outbox_types().count("invoice_issued") == 2
        # each payer's invoice follows its charges in that payer's sequence, as `publish` numbers them
        issued = {e["aggregate"]: e for e in books.envelopes("invoice_issued")}
        assert {a: e["sequence"] for a, e in issued.items()} == {"payer:school:110001": 3, "payer:school:110002": 2}
        assert {e["operator"] for e in issued.values()} == {"bucks-learning-trust"}
        assert issued["payer:school:110001"]["payload"] == {
            "invoice_id": issued["payer:school:110001"]["payload"]["invoice_id"], "invoice_number": first["number"],
            "operator": {"name": "bucks-learning-trust", "legal_name": "Bucks Learning Trust",
                         "vat_number": "GB123456789"},
            "payer": {"kind": "school", "id": "110001", "name": "School 110001"}, "billing_period": "2026/27",
            "issue_date": "2026-09-01", "due_date": "2026-10-01", "line_count": 2, "net_pence": 150000,
            "vat_pence": 30000, "gross_pence": 180000, "currency": "GBP"}

    def test_a_rerun_issues_nothing_new(self, books):
        books.join("110001")
        books.buy("110001", 100000)
        books.run()
        again = books.run()
        assert again["rerun"] is True and again["invoices_issued"] == 1
        assert len(books.docs()) == 1 and books.outbox_types().count("invoice_issued") == 1

    def test_late_charges_go_on_the_next_run_and_numbers_stay_gap_free(self, books):
        books.join("110001")
        books.buy("110001", 100000)
        books.run()
        books.buy("110001", 100000, start="2027-04-01", end="2028-03-31")
        books.run(billing_period("2027/28", "annual"), dt.date(2027, 9, 1))
        assert [d["number"] for d in books.docs()] == ["BLT-000001", "BLT-000002"]

    def test_a_new_operator_starts_its_own_series_with_its_prefix(self, books):
        books.join("110001")
        books.buy("110001", 100000)
        books.run()
        council = handlers.operator_from_config({**OPERATOR_CONFIG, "name": "buckinghamshire-council",
                                                 "legal_name": "Buckinghamshire Council", "invoice_prefix": "BC-"})
        books.buy("110001", 100000, start="2027-04-01", end="2028-03-31")
        books.run(billing_period("2027/28", "annual"), dt.date(2027, 9, 1), operator=council)
        docs = books.docs()
        assert [d["number"] for d in docs] == ["BLT-000001", "BC-000001"]
        with books.read() as s:
            view = reports.document_view(s, "BC-000001")
        assert view["operator"]["legal_name"] == "Buckinghamshire Council"

    def test_later_years_of_a_multi_year_agreement_are_charged_when_due(self, books):
        books.join("110001")
        books.buy("110001", 100000, end="2029-03-31")
        books.run(billing_period("2026/27 autumn", "termly"), ISSUE)  # September-December 2026
        with books.read() as s:
            periods = [(c["period_start"], c["status"]) for c in reports.repository.find_charges(s, urn="110001")]
        assert periods == [("2026-04-01", "invoiced")]
        books.run(billing_period("2027/28 autumn", "termly"), dt.date(2027, 9, 1))
        books.run(billing_period("2027/28 autumn", "termly"), dt.date(2027, 9, 1))  # a rerun charges nothing twice
        with books.read() as s:
            periods = [(c["period_start"], c["status"]) for c in reports.repository.find_charges(s, urn="110001")]
        assert periods == [("2026-04-01", "invoiced"), ("2027-04-01", "invoiced")]
        assert [d["net_pence"] for d in books.docs()] == [100000, 100000]

    def test_a_later_year_that_starts_before_an_early_end_is_charged_only_up_to_the_end(self, books):
        # found by tests/e2e/test_county_year.py: the end (1 June 2027) was consumed in year one, before the
        # second year's charge existed, so that whole second year was charged and never credited
        books.join("110001")
        sid = str(uuid.uuid4())
        books.buy("110001", 200000, end="2028-03-31", sid=sid)
        handlers.record_subscription_end(books.uow(), SubscriptionCancelled().load({
            "subscription_id": sid, "urn": "110001", "effective_date": "2027-06-01", "reason": "budget"}))
        books.run(billing_period("2026/27 summer", "termly"), dt.date(2027, 9, 1))
        with books.read() as s:
            found = [(c["kind"], c["period_start"], c["period_end"], c["amount_pence"])
                     for c in reports.repository.find_charges(s, urn="110001")]
        # 2027-06-01..2028-03-31 is 305 of the 366 days of 2027/28: 200,000 x 305 / 366 = 166,666.67 -> 166,667
        assert sorted(found) == [("charge", "2026-04-01", "2027-03-31", 200000),
                                 ("charge", "2027-04-01", "2028-03-31", 200000),
                                 ("credit", "2027-06-01", "2028-03-31", 166667)]
        assert [d["net_pence"] for d in books.docs()] == [200000 + 200000 - 166667]


class TestUnmatched:
    def test_a_charge_for_an_unknown_school_is_kept_and_matched_when_it_joins(self, books):
        books.buy("120001", 100000)
        with books.read() as s:
            assert [c["status"] for c in reports.repository.find_charges(s, urn="120001")] == ["unmatched"]
        assert "charge_recorded" not in books.outbox_types()
        assert books.run()["invoices_issued"] == 0
        books.join("120001", mat={"id": "TR1", "name": "Trust One"})
        with books.read() as s:
            found = reports.repository.find_charges(s, urn="120001")
        assert [(c["status"], c["payer_kind"], c["payer_id"]) for c in found] == [("uninvoiced", "mat", "TR1")]
        assert books.outbox_types() == ["charge_recorded"]


class TestCancellationAndConversion:
    def test_cancelling_an_invoiced_sla_issues_a_credit_note_for_the_unexpired_part(self, books):
        books.join("110001")
        sid = str(uuid.uuid4())
        books.buy("110001", 365000, sid=sid)
        books.run(billing_period("2025/26", "annual"), dt.date(2026, 4, 1))
        handlers.record_subscription_end(books.uow(), SubscriptionCancelled().load({
            "subscription_id": sid, "urn": "110001", "effective_date": "2027-01-01", "reason": "cancelled"}))
        books.run(billing_period("2026/27", "annual"), dt.date(2027, 1, 4))
        notes = books.docs(kind="credit_note")
        assert [(n["number"], n["net_pence"], n["gross_pence"]) for n in notes] == [("BLT-CN000001", 90000, 108000)]
        with books.read() as s:
            view = reports.document_view(s, "BLT-CN000001")
            invoice = reports.document_view(s, "BLT-000001")
        assert view["credits_invoice_number"] == "BLT-000001"
        assert invoice["balance_pence"] == 438000 - 108000
        assert "credit_note_issued" in books.outbox_types()

    def test_conversion_credits_the_school_and_invoices_the_mat_never_more_than_the_whole(self, books):
        books.join("110001")
        sid = str(uuid.uuid4())
        books.buy("110001", 365000, sid=sid)
        books.run(billing_period("2025/26", "annual"), dt.date(2026, 4, 1))
        handlers.record_conversion(books.uow(), SchoolConvertedToAcademy().load({
            "conversion_date": "2027-01-01", "predecessor": {"urn": "110001", "name": "School 110001"},
            "successor": {"urn": "149001", "name": "Academy 149001"}, "mat": {"id": "TR9", "name": "Trust Nine"}}))
        handlers.record_subscription_end(books.uow(), SubscriptionCancelled().load({
            "subscription_id": sid, "urn": "110001", "effective_date": "2027-01-01", "reason": "converted"}))
        books.buy("149001", 365000, start="2027-01-01", end="2027-03-31", continues_subscription_id=sid)
        books.run(billing_period("2026/27", "annual"), dt.date(2027, 1, 4))
        mat_invoice = books.docs(payer_key="mat:TR9")
        credit = books.docs(kind="credit_note")
        assert [d["net_pence"] for d in mat_invoice] == [90000]
        assert [d["net_pence"] for d in credit] == [90000]
        assert 365000 - credit[0]["net_pence"] + mat_invoice[0]["net_pence"] == 365000

    def test_an_end_consumed_before_its_start_still_credits_the_unexpired_part(self, books):
        books.join("110001")
        sid = str(uuid.uuid4())
        handlers.record_subscription_end(books.uow(), SubscriptionCancelled().load({
            "subscription_id": sid, "urn": "110001", "effective_date": "2027-01-01"}))
        books.buy("110001", 365000, sid=sid)
        books.run()
        assert [d["net_pence"] for d in books.docs()] == [275000]

    def test_cancelled_before_invoicing_nets_on_the_same_invoice(self, books):
        books.join("110001")
        sid = str(uuid.uuid4())
        books.buy("110001", 365000, sid=sid)
        handlers.record_subscription_end(books.uow(), SubscriptionCancelled().load({
            "subscription_id": sid, "urn": "110001", "effective_date": "2027-01-01"}))
        books.run()
        [invoice] = books.docs()
        assert invoice["net_pence"] == 275000
        assert books.docs(kind="credit_note") == []


class TestPaymentsAndDebt:
    def _invoice(self, books, price=100000):
        books.join("110001")
        books.buy("110001", price)
        books.run()
        return "BLT-000001"

    def test_partial_full_and_over_payment(self, books):
        number = self._invoice(books)  # gross 120000
        part = handlers.record_payment(books.uow(), number=number, amount_pence=50000,
                                       received_on=dt.date(2026, 9, 20), reference="BACS 1")
        assert (part["balance_pence"], part["status"]) == (70000, "part_paid")
        full = handlers.record_payment(books.uow(), number=number, amount_pence=70000,
                                       received_on=dt.date(2026, 9, 25), reference="BACS 2")
        assert (full["balance_pence"], full["status"]) == (0, "paid")
        over = handlers.record_payment(books.uow(), number=number, amount_pence=5,
                                       received_on=dt.date(2026, 9, 26), reference="BACS 3")
        assert (over["balance_pence"], over["status"]) == (-5, "overpaid")
        assert books.outbox_types().count("payment_recorded") == 3
        with books.read() as s:
            statement = reports.statement(s, "school:110001")
        assert [e["balance_pence"] for e in statement["entries"]] == [120000, 70000, 0, -5]

    def test_payment_for_an_unknown_invoice_is_refused_and_nothing_is_written(self, books):
        with pytest.raises(RuleViolation) as refused:
            handlers.record_payment(books.uow(), number="BLT-999999", amount_pence=100,
                                    received_on=dt.date(2026, 9, 1), reference=None)
        assert refused.value.details["field"] == "invoice_number"
        assert books.outbox_types() == []

    def test_overdue_is_published_once_per_invoice_and_aged_debt_buckets_it(self, books):
        number = self._invoice(books)
        assert handlers.check_overdue(books.uow(), dt.date(2026, 10, 1)) == []  # due that day: not late
        found = handlers.check_overdue(books.uow(), dt.date(2026, 11, 5))
        assert [(f["invoice_number"], f["days_overdue"], f["balance_pence"]) for f in found] == [(number, 35, 120000)]
        assert handlers.check_overdue(books.uow(), dt.date(2026, 12, 5)) == []
        assert books.outbox_types().count("invoice_overdue") == 1
        with books.read() as s:
            debt = reports.aged_debt(s, dt.date(2026, 11, 5))
        assert debt["totals"]["31_60"] == 120000 and debt["totals"]["total"] == 120000


class TestCorrection:
    def test_a_correction_is_a_credit_note_and_a_new_invoice_never_an_edit(self, books):
        books.join("110001")
        books.buy("110001", 100000)
        books.run()
        result = handlers.correct_invoice(books.uow(), operator=OPERATOR, number="BLT-000001",
                                          corrections={1: 80000}, reason="wrong census", issue_date=dt.date(2026, 9, 8))
        assert result == {"credit_note_number": "BLT-CN000001", "rebill_invoice_number": "BLT-000002"}
        with books.read() as s:
            original = reports.document_view(s, "BLT-000001")
            rebill = reports.document_view(s, "BLT-000002")
        assert original["gross_pence"] == 120000 and original["balance_pence"] == 0
        assert rebill["net_pence"] == 80000 and rebill["gross_pence"] == 96000
        with pytest.raises(RuleViolation):
            handlers.correct_invoice(books.uow(), operator=OPERATOR, number="BLT-000001", corrections={1: 1},
                                     reason="again", issue_date=dt.date(2026, 9, 9))
        with pytest.raises(NotFound):
            handlers.correct_invoice(books.uow(), operator=OPERATOR, number="BLT-000404", corrections={1: 1},
                                     reason="nope", issue_date=dt.date(2026, 9, 9))


class TestAttendanceReportsExports:
    def test_chargeable_attendance_is_invoiced_and_reported(self, books):
        books.join("110001")
        books.buy("110001", 100000)
        for i, chargeable in enumerate((True, False)):
            handlers.record_attendance(books.uow(), AttendanceRecorded().load({
                "attendance_id": f"att-{i}", "booking_id": "b", "session_id": "s", "course_code": "SENCO-NET",
                "offering_code": None, "service_area": "inclusion", "urn": "110001", "contact_id": "c",
                "session_date": "2026-11-05", "attended": True, "chargeable": chargeable,
                "price_basis": "non_subscriber", "unit_price_pence": 12500, "vat_treatment": "exempt"}))
        books.run()
        [invoice] = books.docs()
        assert (invoice["net_pence"], invoice["vat_pence"]) == (112500, 20000)
        with books.read() as s:
            picture = reports.sustainability(s, dt.date(2027, 1, 1))
            csv_text = reports.invoices_csv(s)
            journal = reports.journal_csv(s)
            page = reports.document_html(reports.document_view(s, "BLT-000001"))
        assert picture["revenue_pence"]["2026/27"] == {"inclusion": 12500, "school_improvement": 100000}
        assert picture["debt_pence"]["total"] == 132500
        assert len(csv_text.strip().splitlines()) == 3 and "SENCO-NET" in csv_text
        debit = sum(int(r.split(",")[3]) for r in journal.strip().splitlines()[1:])
        credit = sum(int(r.split(",")[4]) for r in journal.strip().splitlines()[1:])
        assert debit == credit == 132500
        assert "GB123456789" in page and "Bucks Learning Trust" in page and "£1,325.00" in page


class TestNumberingProperty:
    def test_reserved_numbers_are_consecutive_per_operator_and_kind_and_roll_back_with_their_work(self, tmp_path):
        from hypothesis import given, settings
        from hypothesis import strategies as st

        from billing.adapters import repository

        books = Books(tmp_path)
        issued: dict[tuple[str, str], list[int]] = {}

        @settings(max_examples=25, deadline=None)
        @given(st.lists(st.tuples(st.sampled_from(["trust", "council"]), st.sampled_from(["invoice", "credit_note"]),
                                  st.integers(1, 5), st.booleans()), min_size=1, max_size=8))
        def check(steps):
            for operator, kind, count, commits in steps:
                with books.database.transaction() as session:
                    repository.lock_numbering(session, operator)
                    first = repository.take_numbers(session, operator, kind, count)
                    if commits:
                        session.commit()
                        issued.setdefault((operator, kind), []).extend(range(first, first + count))
            for numbers in issued.values():
                assert numbers == list(range(1, len(numbers) + 1))  # gap-free, no repeats

        check()
        books.database.dispose()


class TestMembershipChanges:
    def test_a_mat_change_moves_charges_dated_from_it_to_the_mat_but_not_earlier_ones(self, books):
        from billing.messages.consumed import MemberDetailsChanged

        books.join("110001", name="Wing School")
        books.buy("110001", 100000)  # dated 2026-04-01: the school pays
        handlers.record_member_details_changed(books.uow(), MemberDetailsChanged().load({
            "urn": "110001", "effective_date": "2026-09-01", "name": "Wing Academy", "is_academy": True,
            "mat": {"id": "TR5", "name": "Trust Five"},
            "changes": {"mat": {"old": None, "new": {"id": "TR5", "name": "Trust Five"}}}}))
        books.buy("110001", 50000, start="2026-09-01", end="2027-08-31")  # dated after: the MAT pays
        with books.read() as s:
            found = reports.repository.find_charges(s, urn="110001")
        assert [(c["period_start"], c["payer_kind"], c["payer_id"]) for c in found] == [
            ("2026-04-01", "school", "110001"), ("2026-09-01", "mat", "TR5")]

    def test_a_backdated_mat_change_bills_its_own_mat_not_the_later_one(self, books):
        # membership (issue 14, rule 8): a change dated 1 January recorded after one dated 1 September
        # carries the latest state as its snapshot (Trust B) and the change itself (Trust A) in `changes`
        from billing.messages.consumed import MemberDetailsChanged

        books.join("110002", name="Vale School")
        handlers.record_member_details_changed(books.uow(), MemberDetailsChanged().load({
            "urn": "110002", "effective_date": "2026-09-01", "name": "Vale School", "is_academy": True,
            "mat": {"id": "TRB", "name": "Trust B"},
            "changes": {"mat": {"old": None, "new": {"id": "TRB", "name": "Trust B"}}}}))
        handlers.record_member_details_changed(books.uow(), MemberDetailsChanged().load({
            "urn": "110002", "effective_date": "2026-01-01", "name": "Vale School", "is_academy": True,
            "mat": {"id": "TRB", "name": "Trust B"},
            "changes": {"mat": {"old": None, "new": {"id": "TRA", "name": "Trust A"}}}}))
        books.buy("110002", 100000)  # dated 2026-04-01: Trust A's academy then
        books.buy("110002", 50000, start="2026-10-01", end="2027-08-31")  # Trust B's by then
        with books.read() as s:
            found = reports.repository.find_charges(s, urn="110002")
        assert [(c["period_start"], c["payer_kind"], c["payer_id"]) for c in found] == [
            ("2026-04-01", "mat", "TRA"), ("2026-10-01", "mat", "TRB")]

    def test_attendance_of_an_unknown_school_waits_unmatched_and_a_leaver_keeps_its_open_items(self, books):
        from billing.messages.consumed import MemberLeft

        handlers.record_attendance(books.uow(), AttendanceRecorded().load({
            "attendance_id": "att-9", "course_code": "DSL-UPDATE", "offering_code": None,
            "service_area": "governance", "urn": "130001", "session_date": "2026-10-01", "attended": True,
            "chargeable": True, "price_basis": "non_subscriber", "unit_price_pence": 9000, "vat_treatment": "standard"}))
        with books.read() as s:
            assert [c["status"] for c in reports.repository.find_charges(s, urn="130001")] == ["unmatched"]
        books.join("130001")
        books.run()
        handlers.record_member_left(books.uow(), MemberLeft().load(
            {"urn": "130001", "name": "School 130001", "effective_date": "2026-12-01", "reason": "closed"}))
        paid = handlers.record_payment(books.uow(), number="BLT-000001", amount_pence=10800,
                                       received_on=dt.date(2027, 2, 1), reference="after leaving")
        assert paid["status"] == "paid"
        with books.read() as s:
            assert reports.sustainability(s, dt.date(2027, 1, 1))["members"] == 0
