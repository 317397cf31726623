"""The catalogue nameko service: offerings and SLA purchases over HTTP, members from events,
`subscription_started` out. Rules live in `catalogue.domain`."""
from __future__ import annotations

import datetime as dt

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared import service as base
from shared.config import operator_of
from shared.consumer import consumes
from shared.http import Conflict, NotFound, RuleViolation, http, load_body
from shared.storage import Storage

from catalogue.adapters import repository
from catalogue.adapters.tables import inbox, outbox
from catalogue.domain import model
from catalogue.domain.pricing import PRICING_MODELS, PricingError
from catalogue.messages import consumed
from catalogue.messages.published import PUBLISHED
from catalogue.service_layer import handlers

PHASES = ("early_years", "primary", "secondary", "all_through", "special", "not_applicable")


class Terms(Schema):
    class Meta:
        unknown = RAISE

    model = fields.String(required=True, validate=validate.OneOf(PRICING_MODELS))
    flat_fee_pence = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    base_fee_pence = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    rate_by_phase = fields.Dict(keys=fields.String(validate=validate.OneOf(PHASES)),
                                values=fields.Decimal(validate=validate.Range(min=0), places=None), load_default=dict)
    minimum_pence = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0))
    maximum_pence = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0))

    @validates_schema
    def _consistent(self, data, **_):
        if data["model"] == "per_pupil" and not data["rate_by_phase"]:
            raise ValidationError({"rate_by_phase": ["a per-pupil price needs a rate for at least one phase"]})
        low, high = data.get("minimum_pence"), data.get("maximum_pence")
        if low is not None and high is not None and low > high:
            raise ValidationError({"minimum_pence": ["the minimum is above the maximum"]})


class EditionIn(Schema):
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2100))
    terms = fields.Nested(Terms, required=True)


class PublishOffering(Schema):
    """POST /offerings"""

    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9][A-Z0-9-]{1,39}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    service_area = fields.String(required=True, validate=validate.OneOf(model.SERVICE_AREAS))
    vat_treatment = fields.String(required=True, validate=validate.OneOf(model.VAT_TREATMENTS))
    eligible_phases = fields.List(fields.String(validate=validate.OneOf(PHASES)), required=True,
                                  validate=validate.Length(min=1))
    description = fields.String(load_default="")
    edition = fields.Nested(EditionIn, required=True)


class Buyer(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.Length(min=1, max=40))


class BuySubscription(Schema):
    """POST /subscriptions"""

    class Meta:
        unknown = RAISE

    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$", error="a URN is exactly 6 digits"))
    offering_code = fields.String(required=True)
    edition_year = fields.Integer(required=True, strict=True)
    years = fields.Integer(load_default=1, strict=True, validate=validate.OneOf((1, 2, 3)))
    po_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    purchased_by = fields.Nested(Buyer, required=True)


def _offering_view(item: model.Offering, editions: list[model.Edition]) -> dict:
    return {"code": item.code, "name": item.name, "service_area": item.service_area, "provider": item.provider,
            "vat_treatment": item.vat_treatment, "eligible_phases": list(item.eligible_phases),
            "editions": [{"year": e.year, "label": e.label, "on_sale": e.on_sale,
                          "terms": repository.terms_to_json(e.terms)} for e in editions]}


class CatalogueService(base.ObservableService):
    """What the operator sells and who bought it; publishes `subscription_started`."""

    name = "catalogue"
    uow = Storage(migrations="catalogue:migrations", published=PUBLISHED, outbox=outbox, inbox=inbox)

    @consumes("membership", "member_joined", consumed.MemberJoined)
    def on_member_joined(self, event):
        handlers.record_member_joined(self.uow(), event.payload)

    @http("POST", "/offerings")
    def publish_offering(self, request):
        command = load_body(request, PublishOffering())
        try:
            item = handlers.publish_offering(self.uow(), command, provider=operator_of(self.config)["name"])
        except model.CatalogueRuleBroken as exc:
            raise Conflict(exc.message, field=exc.field) from None
        return 201, {"code": item.code}

    @http("GET", "/offerings")
    def list_offerings(self, request):
        with self.uow.read() as session:
            return {"offerings": [_offering_view(o, e) for o, e in repository.all_offerings(session)]}

    @http("POST", "/subscriptions")
    def buy(self, request):
        command = load_body(request, BuySubscription())
        try:
            sub = handlers.buy_subscription(self.uow(), command, today=dt.date.today())
        except handlers.UnknownOffering as exc:
            raise NotFound(f"no offering {exc.args[0]}", field="offering_code") from None
        except model.Overlapping as exc:
            raise Conflict(exc.message, field=exc.field) from None
        except (model.CatalogueRuleBroken, PricingError) as exc:
            raise RuleViolation(exc.message, field=exc.field) from None
        return 201, {"subscription_id": sub.id, "urn": sub.urn, "offering_code": sub.offering_code,
                     "period_start": sub.period_start.isoformat(), "period_end": sub.period_end.isoformat(),
                     "annual_price_pence": sub.annual_price_pence, "price_breakdown": sub.quote.breakdown(),
                     "census": {"date": sub.census_date.isoformat(), "number_on_roll": sub.number_on_roll}}

    @http("GET", "/members/<string:urn>")
    def known_member(self, request, urn):
        with self.uow.read() as session:
            found = repository.member(session, urn)
            subs = repository.subscriptions_of(session, urn)
        if found is None:
            raise NotFound(f"the catalogue knows no member with URN {urn}")
        return {"urn": found.urn, "name": found.name, "phase": found.phase, "is_academy": found.is_academy,
                "status": found.status, "subscriptions": subs}
