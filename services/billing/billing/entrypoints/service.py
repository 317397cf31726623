"""The billing nameko service: members, SLAs and attendance in from upstream events;
charges, invoices, credit notes, payments and reports out, over HTTP and events.
Rules live in `billing.domain`; use cases in `billing.service_layer`.

Every refusal is a JSON 4xx naming the field and the rule (`shared.http`).
"""
from __future__ import annotations

import datetime as dt

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from nameko.timer import timer
from werkzeug.wrappers import Response

from shared import service as base
from shared.auth import FINANCE, MAT_STAFF, OPERATIONS, SCHOOL_STAFF, TRUST_STAFF
from shared.batch_consumer import consumes_batch
from shared.consumer import consumes
from shared.fields import BoundedInteger, Pence
from shared.http import Conflict, NotFound, RuleViolation, http
from shared.jobs import JobAlreadyRunning, Jobs
from shared.metrics import CONTENT_TYPE_LATEST, metrics_for
from shared.storage import Storage

from billing.adapters import access, repository
from billing.adapters.tables import audit_log, idempotency_keys, inbox, job_runs, outbox
from billing.dependencies import BoardFigures, OperatorIdentity
from billing.operator_identity import operator_identity
from billing.domain.periods import billing_period
from billing.domain.upstream import Position
from billing.messages import consumed
from billing.messages.published import PUBLISHED
from billing.service_layer import handlers, reports
from shared import business_date

URN = validate.Regexp(r"^\d{6}$", error="a URN is exactly 6 digits")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class ChargeFilter(_Strict):
    urn = fields.String(validate=URN)
    payer_id = fields.String(validate=validate.Length(min=1, max=20))
    status = fields.String(validate=validate.OneOf(("unmatched", "uninvoiced", "invoiced", "netted")))


class MatInPath(_Strict):
    """A route's `<mat_id>`: a MAT's id, as billing stores it (at most 20 characters)."""

    mat_id = fields.String(required=True, validate=validate.Length(min=1, max=20))


class MatBilling(_Strict):
    pays_centrally = fields.Boolean(required=True)


class BillingRunRequest(_Strict):
    period = fields.String(required=True, validate=validate.Length(min=7, max=20))
    issue_date = fields.Date(required=True)


class PaymentRequest(_Strict):
    invoice_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    amount_pence = Pence(minimum=1, required=True,
                         error="a payment is a positive whole number of pence, at most {max}")
    currency = fields.String(load_default="GBP", validate=validate.Equal("GBP", error="only GBP is accepted"))
    received_on = fields.Date(required=True)
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class CorrectedLine(_Strict):
    line_no = BoundedInteger(minimum=1, maximum=100_000, required=True, strict=True)
    net_pence = Pence(required=True, error="a corrected line is zero or more whole pence, at most {max}")


class CorrectionRequest(_Strict):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=150))
    issue_date = fields.Date(required=True)
    lines = fields.List(fields.Nested(CorrectedLine), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _distinct_lines(self, data, **kwargs):
        numbers = [line["line_no"] for line in data.get("lines", [])]
        if len(numbers) != len(set(numbers)):
            raise ValidationError("each line is corrected at most once", "lines")


class AsOf(_Strict):
    as_of = fields.Date(load_default=None)


class DocumentFilter(_Strict):
    payer_key = fields.String(validate=validate.Regexp(r"^(school|mat):.{1,20}$",
                                                       error="a payer is school:<urn> or mat:<id>"))
    issued_from = fields.Date()
    issued_to = fields.Date()
    kind = fields.String(validate=validate.OneOf(("invoice", "credit_note")))


class DateRange(_Strict):
    issued_from = fields.Date()
    issued_to = fields.Date()


class OverdueCheck(_Strict):
    as_of = fields.Date(required=True)


def _position(event) -> Position:
    return Position(event.aggregate, event.sequence)


def _apply_batch(units, use_case) -> None:
    """A batch of upstream events in one transaction (`shared.batch_consumer`): the schools' locks taken
    first, in URN order, so two batches (or a batch and a single event) never wait on each other in
    opposite orders; then each new event's use case, in delivery order, as it would run alone."""
    with units as batch:
        handlers.lock_schools(batch, {event.payload.urn for event in batch.fresh})
        batch.apply_each(use_case)
        batch.commit()


def billing_run_job(units, params: dict, control) -> dict:
    """A billing run as a job: one transaction (all documents or none), resumable (a stopped run rolled
    back; a rerun of a period already invoiced issues nothing and reports `rerun`)."""
    frequency = (control.config.get("BILLING") or {}).get("frequency", "annual")
    return handlers.run_billing(units(), operator=operator_identity(control.config),
                                period=billing_period(params["period"], frequency),
                                issue_date=dt.date.fromisoformat(params["issue_date"]), control=control)


class BillingService(base.ObservableService):
    """Billing for the right payer: charges, invoices, credit notes, payments, reports and exports."""

    name = "billing"
    uow = Storage(migrations="billing:migrations", published=PUBLISHED, outbox=outbox, inbox=inbox,
                  idempotency_keys=idempotency_keys)
    operator = OperatorIdentity()
    jobs = Jobs(job_runs, {"billing_run": billing_run_job}, resumable={"billing_run"})
    board = BoardFigures()  # recomputed after changes and after a job, never on a scrape
    authentication = base.Authentication(mat_of=access.mat_of, audit=audit_log)

    # -- upstream events ---------------------------------------------------------------------------
    # Each handler passes the event's facts (loaded by its `consumed` schema) and, where billing must
    # tell an older event from a newer one, its position in its aggregate. An SLA's start and an
    # attendance need none: each is the only event that states its facts (its own id, once).
    # The busiest (a membership import, a renewal round, a year's endings) take their events in batches.
    @consumes_batch("membership", "member_joined", consumed.MemberJoined)
    def on_member_joined(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_member_joined(uow, e.payload, _position(e)))

    @consumes("membership", "member_left", consumed.MemberLeft)
    def on_member_left(self, event):
        handlers.record_member_left(self.uow(), event.payload, _position(event))

    @consumes_batch("membership", "member_details_changed", consumed.MemberDetailsChanged)
    def on_member_details_changed(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_member_details_changed(uow, e.payload, _position(e)))

    @consumes("membership", "school_converted_to_academy", consumed.SchoolConvertedToAcademy)
    def on_school_converted(self, event):
        handlers.record_conversion(self.uow(), event.payload, _position(event))

    # The people invoices are addressed to (a school's business manager or head teacher, a MAT's finance
    # contact), and their erasure; ordered in the person's aggregate (`contact:<id>`).
    @consumes("membership", "contact_role_changed", consumed.ContactRoleChanged)
    def on_contact_role_changed(self, event):
        handlers.record_contact_role(self.uow(), event.payload, _position(event))

    @consumes("membership", "organisation_contact_role_changed", consumed.OrganisationContactRoleChanged)
    def on_organisation_contact_role_changed(self, event):
        handlers.record_contact_role(self.uow(), event.payload, _position(event))

    @consumes("membership", "contact_erased", consumed.ContactErased)
    def on_contact_erased(self, event):
        handlers.erase_contact(self.uow(), event.payload, _position(event))

    @consumes_batch("catalogue", "subscription_started", consumed.SubscriptionStarted)
    def on_subscription_started(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_subscription_charge(uow, e.payload))

    @consumes_batch("catalogue", "subscription_renewed", consumed.SubscriptionRenewed)
    def on_subscription_renewed(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_subscription_charge(uow, e.payload))

    @consumes("catalogue", "subscription_cancelled", consumed.SubscriptionCancelled)
    def on_subscription_cancelled(self, event):
        handlers.record_subscription_end(self.uow(), event.payload, _position(event))

    @consumes_batch("catalogue", "subscription_ended", consumed.SubscriptionEnded)
    def on_subscription_ended(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_subscription_end(uow, e.payload, _position(e)))

    @consumes("scheduling", "attendance_recorded", consumed.AttendanceRecorded)
    def on_attendance_recorded(self, event):
        handlers.record_attendance(self.uow(), event.payload)

    # -- charges and payers ------------------------------------------------------------------------
    @http("GET", "/charges", allow=(FINANCE,), query=ChargeFilter)
    def list_charges(self, request):
        query = request.query_args
        with self.uow.read() as session:
            found = repository.find_charges(session, **query)
        return {"charges": found, "count": len(found),
                "total_pence": sum(c["amount_pence"] * (1 if c["kind"] == "charge" else -1) for c in found)}

    @http("PUT", "/mats/<string:mat_id>/billing", allow=(FINANCE,), body=MatBilling, path=MatInPath)
    def set_mat_billing(self, request, mat_id):
        command = request.command
        handlers.set_mat_billing(self.uow(), mat_id, command["pays_centrally"])
        return {"mat_id": mat_id, "pays_centrally": command["pays_centrally"]}

    # -- invoicing ---------------------------------------------------------------------------------
    def _operator(self):
        return self.operator

    @http("POST", "/billing-runs", allow=(FINANCE,), idempotent=True, body=BillingRunRequest, responses={202: "accepted: the job runs on; poll its status"})
    def run_billing(self, request):
        """Start a billing run as a job: 202 with the run to poll at `GET /runs/<id>`; 422 naming `period`
        for a period of the wrong shape or frequency; 409 naming the run while one is running."""
        command = request.command
        frequency = (self.config.get("BILLING") or {}).get("frequency", "annual")
        try:
            period = billing_period(command["period"], frequency)
        except ValueError as exc:
            raise RuleViolation(str(exc), field="period") from None
        try:
            run = self.jobs.start("billing_run", {"period": period.label,
                                                  "issue_date": command["issue_date"].isoformat()})
        except JobAlreadyRunning as exc:
            raise Conflict(str(exc), field="period", run=exc.run["links"]["self"]) from None
        return 202, run

    @http("GET", "/runs/<string:run_id>", allow=(FINANCE, OPERATIONS))
    def job_run(self, request, run_id):
        """A billing run's job: status (running, succeeded, failed, interrupted), progress, result (the
        run's summary, `rerun` true when the period had been invoiced already) or error."""
        run = self.jobs.get(run_id)
        if run is None:
            raise NotFound(f"no run {run_id}", field="run_id")
        return run

    @http("GET", "/invoices", allow=(FINANCE,), query=DocumentFilter)
    def list_documents(self, request):
        query = request.query_args
        with self.uow.read() as session:
            found = reports.document_list(session, **query)
        return {"documents": found, "count": len(found)}

    @http("GET", "/invoices/<string:number>", allow=(FINANCE, SCHOOL_STAFF, MAT_STAFF),
          owner=access.document_owner)
    def get_document(self, request, number):
        with self.uow.read() as session:
            view = reports.document_view(session, number)
        if view is None:
            raise NotFound(f"no invoice or credit note numbered {number}", field="number")
        return view

    @http("GET", "/invoices/<string:number>/document.html", allow=(FINANCE, SCHOOL_STAFF, MAT_STAFF),
          owner=access.document_owner, produces="text/html")
    def get_document_html(self, request, number):
        with self.uow.read() as session:
            view = reports.document_view(session, number)
        if view is None:
            raise NotFound(f"no invoice or credit note numbered {number}", field="number")
        return Response(reports.document_html(view), mimetype="text/html")

    @http("POST", "/invoices/<string:number>/corrections", allow=(FINANCE,), idempotent=True, body=CorrectionRequest, responses={201: "created"})
    def correct_invoice(self, request, number):
        command = request.command
        result = handlers.correct_invoice(
            self.uow(), operator=self._operator(), number=number, reason=command["reason"],
            corrections={line["line_no"]: line["net_pence"] for line in command["lines"]},
            issue_date=command["issue_date"])
        return 201, result

    # -- payments and debt -------------------------------------------------------------------------
    @http("POST", "/payments", allow=(FINANCE,), idempotent=True, body=PaymentRequest, responses={201: "created"})
    def record_payment(self, request):
        command = request.command
        result = handlers.record_payment(self.uow(), number=command["invoice_number"],
                                         amount_pence=command["amount_pence"], received_on=command["received_on"],
                                         reference=command["reference"])
        return 201, result

    @http("GET", "/payers/<string:kind>/<string:payer_id>/statement", allow=(FINANCE, SCHOOL_STAFF, MAT_STAFF),
          owner=access.payer_owner, query=AsOf)
    def statement(self, request, kind, payer_id):
        if kind not in ("school", "mat"):
            raise NotFound(f"no payer kind {kind}: it is school or mat", field="kind")
        query = request.query_args
        with self.uow.read() as session:
            return reports.statement(session, f"{kind}:{payer_id}", query.get("as_of"))

    @http("GET", "/reports/aged-debt", allow=(FINANCE,), query=AsOf)
    def aged_debt(self, request):
        query = request.query_args
        with self.uow.read() as session:
            return reports.aged_debt(session, query.get("as_of") or business_date.today())

    @http("POST", "/overdue-checks", allow=(FINANCE,), body=OverdueCheck)
    def overdue_check(self, request):
        command = request.command
        found = handlers.check_overdue(self.uow(), command["as_of"])
        return {"as_of": command["as_of"].isoformat(), "newly_overdue": found, "count": len(found)}

    @timer(interval=handlers.OVERDUE_CHECK_SECONDS)
    def overdue_check_hourly(self):
        """Every hour: publish `invoice_overdue` for invoices found overdue as of today (each invoice once);
        with several replicas, only the first to fire in each clock hour does the check."""
        handlers.check_overdue(self.uow(), business_date.today(), once_per_period=True)

    # -- reports and exports -----------------------------------------------------------------------
    @http("GET", "/reports/sustainability", allow=(TRUST_STAFF,), query=AsOf)
    def sustainability(self, request):
        query = request.query_args
        with self.uow.read() as session:
            return reports.sustainability(session, query.get("as_of") or business_date.today())

    @http("GET", "/exports/invoices.csv", allow=(FINANCE,), query=DateRange, produces="text/csv")
    def export_invoices(self, request):
        query = request.query_args
        with self.uow.read() as session:
            body = reports.invoices_csv(session, query.get("issued_from"), query.get("issued_to"))
        return Response(body, mimetype="text/csv")

    @http("GET", "/exports/journal.csv", allow=(FINANCE,), query=DateRange, produces="text/csv")
    def export_journal(self, request):
        query = request.query_args
        with self.uow.read() as session:
            body = reports.journal_csv(session, query.get("issued_from"), query.get("issued_to"))
        return Response(body, mimetype="text/csv")

    @http("GET", "/metrics", scrape=True, produces="text/plain")
    def prometheus_metrics(self, request):
        """Prometheus text: the board's gauges as `BoardFigures` keeps them (a scrape never walks the books)."""
        metrics = metrics_for(self.name)
        return Response(metrics.exposition(), mimetype=None, headers={"Content-Type": CONTENT_TYPE_LATEST})
