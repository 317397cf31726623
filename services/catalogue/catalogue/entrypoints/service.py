"""The catalogue nameko service: offerings, editions, quotes, SLA purchases, cancellations, the
renewal round and the demand report over HTTP; members and contacts from membership's events.
Rules live in `catalogue.domain`, use cases in `catalogue.service_layer.handlers`."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

from marshmallow import RAISE, ValidationError, fields, validate, validates_schema

from shared import auth
from shared import service as base
from shared.auth import (ANYONE, CATALOGUE_MANAGER, COUNCIL_OFFICER, FINANCE, MAT_STAFF, OPERATIONS, SCHOOL_STAFF,
                         TRUST_STAFF)
from shared.config import operator_of
from shared.batch_consumer import consumes_batch
from shared.commands import CommandSchema
from shared.consumer import consumes
from shared.fields import BoundedDecimal, BoundedInteger, Pence
from shared.http import Conflict, NotFound, http
from shared.storage import Storage

from catalogue.adapters import access, repository
from catalogue.adapters.tables import audit_log, idempotency_keys, inbox, job_runs, outbox
from catalogue.domain import model
from catalogue.domain.model import PHASES
from catalogue.domain.pricing import PRICING_MODELS, SESSION_UNITS, PricingError, check_terms, terms_from_json
from catalogue.messages import consumed
from catalogue.messages.published import PUBLISHED
from catalogue.service_layer import commands, handlers
from shared import business_date
from shared.jobs import JobAlreadyRunning, Jobs

CODE = r"^[A-Z0-9][A-Z0-9-]{1,39}$"
URN = validate.Regexp(r"^\d{6}$", error="a URN is exactly 6 digits")
MAX_PUPILS = 100_000  # more pupils than any school or band has
MAX_RATE_PENCE = 10_000_000  # £100,000 per pupil: no real rate comes near


class _Strict(CommandSchema):
    class Meta:
        unknown = RAISE


class BandIn(_Strict):
    up_to_pupils = BoundedInteger(minimum=0, maximum=MAX_PUPILS, load_default=None, allow_none=True, strict=True)
    price_pence = Pence(required=True)


class Terms(_Strict):
    model = fields.String(required=True, validate=validate.OneOf(PRICING_MODELS))
    flat_fee_pence = Pence(load_default=0)
    base_fee_pence = Pence(load_default=0)
    rate_by_phase = fields.Dict(keys=fields.String(validate=validate.OneOf(PHASES)),
                                values=BoundedDecimal(minimum=0, maximum=MAX_RATE_PENCE, max_places=4),
                                load_default=dict)
    minimum_pence = Pence(load_default=None, allow_none=True)
    maximum_pence = Pence(load_default=None, allow_none=True)
    bands = fields.List(fields.Nested(BandIn), load_default=list)
    unit = fields.String(load_default="session", validate=validate.OneOf(SESSION_UNITS))
    unit_price_pence = Pence(load_default=0)
    subscriber_price_pence = Pence(load_default=0)
    non_subscriber_price_pence = Pence(load_default=0)
    bundle_price_pence = Pence(load_default=0)
    includes = fields.List(fields.String(validate=validate.Regexp(CODE)), load_default=list)

    @validates_schema
    def _consistent(self, data, **_):
        try:
            check_terms(terms_from_json(data))
        except PricingError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None


class EntitlementIn(_Strict):
    kind = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$",
                                                                 error="a kind is snake_case, e.g. included_place"))
    quantity = BoundedInteger(minimum=0, maximum=1000, required=True, strict=True)


class EditionYear(_Strict):
    """A route's `<int:year>`: an edition's year, as `EditionIn.year`."""

    year = BoundedInteger(minimum=2000, maximum=2100, required=True)


class EditionIn(_Strict):
    """POST /offerings/<code>/editions (and `edition` in POST /offerings)"""

    command = commands.PriceEdition

    year = BoundedInteger(minimum=2000, maximum=2100, required=True, strict=True)
    terms = fields.Nested(Terms, required=True)
    entitlements = fields.List(fields.Nested(EntitlementIn), load_default=list)
    on_sale = fields.Boolean(load_default=True)


class PublishOffering(_Strict):
    """POST /offerings"""

    command = commands.PublishOffering

    code = fields.String(required=True, validate=validate.Regexp(CODE))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    service_area = fields.String(required=True, validate=validate.OneOf(model.SERVICE_AREAS))
    vat_treatment = fields.String(required=True, validate=validate.OneOf(model.VAT_TREATMENTS))
    eligible_phases = fields.List(fields.String(validate=validate.OneOf(PHASES)), load_default=list)
    eligible_establishment_types = fields.List(fields.String(validate=validate.Length(min=1, max=60)),
                                               load_default=list)
    capacity = BoundedInteger(minimum=1, maximum=MAX_PUPILS, load_default=None, allow_none=True, strict=True)
    description = fields.String(load_default="", validate=validate.Length(max=4000))
    edition = fields.Nested(EditionIn, load_default=None)
    # sold only whole: bought during its period it still covers and costs the whole period (default: from
    # the purchase date, pro-rated)
    sold_whole = fields.Boolean(load_default=False)


class OnSale(_Strict):
    on_sale = fields.Boolean(required=True)


class Withdraw(_Strict):
    effective_date = fields.Date(required=True)


class BuySubscription(_Strict):
    """POST /subscriptions"""

    command = commands.BuySubscription

    urn = fields.String(required=True, validate=URN)
    offering_code = fields.String(required=True)
    edition_year = BoundedInteger(minimum=2000, maximum=2100, required=True, strict=True)
    years = BoundedInteger(minimum=1, maximum=3, load_default=1, strict=True)
    quantity = BoundedInteger(minimum=1, maximum=10000, load_default=1, strict=True)
    po_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    # bought after the notice date an SLA renews only if confirmed: here, or later at /renewal
    renew = fields.Boolean(load_default=False)


class ConfirmRenewal(_Strict):
    """POST /subscriptions/<id>/renewal: an empty object; the caller confirms (a contact who may commit
    the school's spending, named by their token)."""

    command = commands.ConfirmRenewal


class QuoteQuery(_Strict):
    command = commands.Quote
    urn = fields.String(required=True, validate=URN)
    offering_code = fields.String(required=True)
    edition_year = BoundedInteger(minimum=2000, maximum=2100, required=True)
    quantity = BoundedInteger(minimum=1, maximum=10000, load_default=1)


class Cancel(_Strict):
    """POST /subscriptions/<id>/cancel: no effective_date cancels the renewal (by the notice date)."""

    command = commands.CancelSubscription

    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))
    effective_date = fields.Date(load_default=None, allow_none=True)


class RenewalRound(_Strict):
    """POST /renewal-rounds"""

    year = BoundedInteger(minimum=2000, maximum=2100, required=True, strict=True)
    uplift_percent = BoundedDecimal(minimum=0, maximum=50, max_places=2, load_default=0)


class YearQuery(_Strict):
    year = BoundedInteger(minimum=2000, maximum=2100, required=True)


def _offering_view(item: model.Offering, editions: list[model.Edition]) -> dict:
    return {"code": item.code, "name": item.name, "service_area": item.service_area, "provider": item.provider,
            "description": item.description, "vat_treatment": item.vat_treatment,
            "eligible_phases": list(item.eligible_phases), "eligible_establishment_types": list(item.eligible_types),
            "capacity": item.capacity, "sold_whole": item.sold_whole, "withdrawn_on": item.withdrawn_on.isoformat() if item.withdrawn_on else None,
            "editions": [{"year": e.year, "label": e.label, "on_sale": e.on_sale,
                          "terms": repository.terms_to_json(e.terms),
                          "entitlements": repository.entitlements_to_json(e.entitlements)} for e in editions]}



def renewal_round_job(units, params: dict, control) -> dict:
    """The renewal round as a job: resumable (a second run never renews twice), judged on the UK date
    it runs (each SLA's notice date), progress after each chunk."""
    summary = handlers.run_renewal_round(units, year=int(params["year"]), today=business_date.today(),
                                         uplift_percent=Decimal(params["uplift_percent"]), control=control)
    return summary.as_dict()



def _apply_batch(units, use_case) -> None:
    """A batch of membership's events in one transaction (`shared.batch_consumer`), each new one's use case
    as it would run alone, in URN order (stable: one school's events keep their delivery order)."""
    with units as batch:
        batch.apply_each(use_case, key=lambda event: event.payload.urn)
        batch.commit()


class CatalogueService(base.ObservableService):
    """What the operator sells, on what terms and at what price, and who bought it."""

    name = "catalogue"
    uow = Storage(migrations="catalogue:migrations", published=PUBLISHED, outbox=outbox, inbox=inbox,
                  idempotency_keys=idempotency_keys)
    jobs = Jobs(job_runs, {"renewal_round": renewal_round_job}, resumable={"renewal_round"})
    authentication = base.Authentication(mat_of=access.mat_of, audit=audit_log)

    # -- membership's events -------------------------------------------------------------------
    # Each payload arrives as the catalogue's own typed event (`catalogue.messages.consumed`); its
    # aggregate and number let the use case apply it only where it is newer, whatever the order.
    # The busiest (a membership import, a census) come in batches, applied in URN order: each locks its
    # school's copy, so two batches never lock in opposite orders (the outcome is the same in any order).
    @consumes_batch("membership", "member_joined", consumed.MemberJoined)
    def on_member_joined(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_member_joined(
            uow, e.payload, aggregate=e.aggregate, sequence=e.sequence))

    @consumes("membership", "member_left", consumed.MemberLeft)
    def on_member_left(self, event):
        handlers.record_member_left(self.uow(), event.payload, aggregate=event.aggregate, sequence=event.sequence)

    @consumes_batch("membership", "member_details_changed", consumed.MemberDetailsChanged)
    def on_member_details_changed(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_member_details_changed(
            uow, e.payload, aggregate=e.aggregate, sequence=e.sequence))

    @consumes_batch("membership", "census_recorded", consumed.CensusRecorded)
    def on_census_recorded(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_census(
            uow, e.payload, aggregate=e.aggregate, sequence=e.sequence))

    @consumes("membership", "school_converted_to_academy", consumed.SchoolConvertedToAcademy)
    def on_school_converted(self, event):
        handlers.record_conversion(self.uow(), event.payload, aggregate=event.aggregate, sequence=event.sequence)

    @consumes("membership", "contact_role_changed", consumed.ContactRoleChanged)
    def on_contact_role_changed(self, event):
        handlers.record_contact_role(self.uow(), event.payload, aggregate=event.aggregate, sequence=event.sequence)

    @consumes("membership", "contact_erased", consumed.ContactErased)
    def on_contact_erased(self, event):
        handlers.erase_contact(self.uow(), event.payload, aggregate=event.aggregate, sequence=event.sequence)

    # -- offerings and editions ----------------------------------------------------------------
    @http("POST", "/offerings", allow=(CATALOGUE_MANAGER,), body=PublishOffering, responses={201: "created"})
    def publish_offering(self, request):
        command = request.command
        item = handlers.publish_offering(self.uow(), command, provider=operator_of(self.config)["name"])
        return 201, {"code": item.code}

    @http("GET", "/offerings", allow=(ANYONE,))
    def list_offerings(self, request):
        with self.uow.read() as session:
            return {"offerings": [_offering_view(o, e) for o, e in repository.all_offerings(session)]}

    @http("GET", "/offerings/<string:code>", allow=(ANYONE,))
    def show_offering(self, request, code):
        with self.uow.read() as session:
            found = repository.all_offerings(session, code)
        if not found:
            raise NotFound(f"no offering {code}", field="offering_code")
        return _offering_view(*found[0])

    @http("POST", "/offerings/<string:code>/editions", allow=(CATALOGUE_MANAGER,), body=EditionIn, responses={201: "created"})
    def add_edition(self, request, code):
        command = request.command
        edition = handlers.add_edition(self.uow(), code, command)
        return 201, {"offering_code": code, "year": edition.year, "on_sale": edition.on_sale}

    @http("POST", "/offerings/<string:code>/editions/<int:year>/sale", allow=(CATALOGUE_MANAGER,), body=OnSale, path=EditionYear)
    def set_on_sale(self, request, code, year):
        command = request.command
        edition = handlers.set_on_sale(self.uow(), code, year, command["on_sale"])
        return {"offering_code": code, "year": edition.year, "on_sale": edition.on_sale}

    @http("POST", "/offerings/<string:code>/withdraw", allow=(CATALOGUE_MANAGER,), body=Withdraw)
    def withdraw(self, request, code):
        command = request.command
        endings = handlers.withdraw_offering(self.uow(), code, command["effective_date"])
        return {"offering_code": code, "effective_date": command["effective_date"].isoformat(),
                "subscriptions_ended": [e.subscription_id for e in endings]}

    # -- quotes and purchases ------------------------------------------------------------------
    @http("GET", "/quotes", allow=(ANYONE,), owner=auth.school_in_query("urn"), query=QuoteQuery)
    def quote(self, request):
        query = request.query_args
        with self.uow.read() as session:
            return handlers.quote_for(session, query, today=business_date.today())

    @http("POST", "/subscriptions", allow=(SCHOOL_STAFF,), owner=auth.school_in_body("urn"), idempotent=True, body=BuySubscription, responses={201: "created"})
    def buy(self, request):
        command = dataclasses.replace(request.command, contact_id=auth.acting_contact(request))
        sub = handlers.buy_subscription(self.uow(), command, today=business_date.today())
        return 201, {"subscription_id": sub.id, "urn": sub.urn, "offering_code": sub.offering_code,
                     "edition_year": sub.edition_year, "payer_type": sub.payer_type,
                     "period_start": sub.period_start.isoformat(), "period_end": sub.period_end.isoformat(),
                     "years": sub.years, "quantity": sub.quantity, "notice_date": sub.notice_date.isoformat(),
                     "auto_renew": sub.auto_renew, "renewal_notice": model.renewal_notice(sub),
                     "annual_price_pence": sub.annual_price_pence, "price_breakdown": sub.quote.breakdown(),
                     "census": {"date": sub.census_date.isoformat(), "number_on_roll": sub.number_on_roll},
                     "entitlements": repository.entitlements_to_json(sub.entitlements),
                     "components": repository.components_to_json(sub.components)}

    @http("GET", "/subscriptions/<string:subscription_id>", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF),
          owner=access.subscription_owner)
    def show_subscription(self, request, subscription_id):
        with self.uow.read() as session:
            found = repository.subscription_row(session, subscription_id)
        if found is None:
            raise NotFound(f"no subscription {subscription_id}", field="subscription_id")
        return repository.subscription_view(found)

    @http("POST", "/subscriptions/<string:subscription_id>/cancel", allow=(SCHOOL_STAFF,),
          owner=access.subscription_owner, body=Cancel)
    def cancel(self, request, subscription_id):
        command = dataclasses.replace(request.command, contact_id=auth.acting_contact(request))
        ending = handlers.cancel_subscription(self.uow(), subscription_id, command, today=business_date.today())
        return {"subscription_id": subscription_id, "effective_date": ending.effective_date.isoformat(),
                "covered_until": ending.covered_until.isoformat(), "reason": ending.reason}

    @http("POST", "/subscriptions/<string:subscription_id>/renewal", allow=(SCHOOL_STAFF,),
          owner=access.subscription_owner, idempotent=True, body=ConfirmRenewal)
    def confirm_renewal(self, request, subscription_id):
        command = dataclasses.replace(request.command, contact_id=auth.acting_contact(request))
        sub = handlers.confirm_renewal(self.uow(), subscription_id, command, today=business_date.today())
        return {"subscription_id": sub.id, "auto_renew": sub.auto_renew, "notice_date": sub.notice_date.isoformat()}

    # -- renewal round, views and reports ------------------------------------------------------
    @http("POST", "/renewal-rounds", allow=(CATALOGUE_MANAGER,), body=RenewalRound, responses={202: "accepted: the job runs on; poll its status"})
    def renewal_round(self, request):
        """Start the renewal round as a job: 202 with the run to poll at `GET /runs/<id>` (its result is
        the round's summary); 409 naming the run while one is queued or running."""
        command = request.command
        try:
            run = self.jobs.start("renewal_round", {"year": command["year"],
                                                    "uplift_percent": str(command["uplift_percent"])})
        except JobAlreadyRunning as exc:
            raise Conflict(str(exc), field="year", run=exc.run["links"]["self"]) from None
        return 202, run

    @http("GET", "/runs/<string:run_id>", allow=(CATALOGUE_MANAGER, OPERATIONS))
    def job_run(self, request, run_id):
        """A renewal round's run: status (queued, running, succeeded, failed, interrupted), progress,
        result (the summary) or error."""
        run = self.jobs.get(run_id)
        if run is None:
            raise NotFound(f"no run {run_id}", field="run_id")
        return run

    @http("GET", "/members/<string:urn>", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF),
          owner=auth.school_in_path("urn"))
    def known_member(self, request, urn):
        with self.uow.read() as session:
            copy = repository.member_copy(session, urn)
            subs = repository.subscriptions_of(session, urn)
            buyers = repository.authorised_buyers(session, urn)
        found = copy and copy.known()
        if found is None:  # unknown, or only partly known from events that overtook its joining
            raise NotFound(f"the catalogue knows no member with URN {urn}", field="urn")
        return {"urn": found.urn, "name": found.name, "phase": found.phase, "is_academy": found.is_academy,
                "establishment_type": found.establishment_type, "number_on_roll": found.number_on_roll,
                "census_date": found.census_date.isoformat(), "status": found.status,
                "mat": {"id": found.mat_id, "name": found.mat_name} if found.mat_id else None,
                "predecessor_urn": copy.predecessor_urn, "successor_urn": copy.successor_urn,
                "authorised_buyers": buyers, "subscriptions": subs}

    @http("GET", "/members/<string:urn>/renewal", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF),
          owner=auth.school_in_path("urn"), query=YearQuery)
    def renewal_view(self, request, urn):
        query = request.query_args
        with self.uow.read() as session:
            return handlers.renewal_view(session, urn, query["year"])

    @http("GET", "/reports/buy-back", allow=(CATALOGUE_MANAGER, FINANCE, COUNCIL_OFFICER))
    def buy_back(self, request):
        with self.uow.read() as session:
            return {"buy_back": handlers.demand_report(session)}
