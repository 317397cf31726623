"""The billing nameko service: SLAs in from the catalogue's events, charges out.
Rules live in `billing.domain`."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from shared import service as base
from shared.consumer import consumes
from shared.http import http, load_body, load_query
from shared.storage import Storage

from billing.adapters import repository
from billing.adapters.tables import inbox, outbox
from billing.messages import consumed
from billing.messages.published import PUBLISHED
from billing.service_layer import handlers


class ChargeFilter(Schema):
    class Meta:
        unknown = RAISE

    urn = fields.String(validate=validate.Regexp(r"^\d{6}$", error="a URN is exactly 6 digits"))
    payer_id = fields.String(validate=validate.Length(min=1, max=20))


class MatBilling(Schema):
    class Meta:
        unknown = RAISE

    pays_centrally = fields.Boolean(required=True)


class BillingService(base.ObservableService):
    """Charges for the right payer; publishes `charge_recorded`."""

    name = "billing"
    uow = Storage(migrations="billing:migrations", published=PUBLISHED, outbox=outbox, inbox=inbox)

    @consumes("membership", "member_joined", consumed.MemberJoined)
    def on_member_joined(self, event):
        handlers.record_member_joined(self.uow(), event.payload)

    @consumes("catalogue", "subscription_started", consumed.SubscriptionStarted)
    def on_subscription_started(self, event):
        handlers.record_subscription_charge(self.uow(), event.payload)

    @http("GET", "/charges")
    def list_charges(self, request):
        query = load_query(request, ChargeFilter())
        with self.uow.read() as session:
            found = repository.find_charges(session, **query)
        return {"charges": found, "count": len(found), "total_pence": sum(c["amount_pence"] for c in found)}

    @http("PUT", "/mats/<string:mat_id>/billing")
    def set_mat_billing(self, request, mat_id):
        command = load_body(request, MatBilling())
        handlers.set_mat_billing(self.uow(), mat_id, command["pays_centrally"])
        return {"mat_id": mat_id, "pays_centrally": command["pays_centrally"]}
