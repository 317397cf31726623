"""Billing use cases: each takes a unit of work and an event payload or command."""
from __future__ import annotations

from billing.adapters import repository
from billing.adapters.tables import mat_billing, members
from billing.domain import model


def record_member_joined(uow, payload: dict) -> None:
    with uow:
        mat = payload.get("mat")
        repository.upsert(uow.session, members, "urn", {
            "urn": payload["urn"], "name": payload["name"], "is_academy": payload["is_academy"],
            "mat_id": mat["id"] if mat else None, "mat_name": mat["name"] if mat else None})
        uow.commit()


def record_subscription_charge(uow, payload: dict) -> model.Charge:
    """Charge the first year of a new SLA to its payer; commits the charge and `charge_recorded`."""
    with uow:
        mat = payload.get("mat")
        payer = model.payer_for(urn=payload["urn"], school_name=payload["school_name"],
                                mat_id=mat["id"] if mat else None, mat_name=mat["name"] if mat else None,
                                mat_pays_centrally=repository.mat_pays_centrally(uow.session,
                                                                                 mat["id"] if mat else None))
        charge = model.charge_for_subscription(payload, payer)
        repository.add_charge(uow.session, charge)
        uow.publish("charge_recorded", {
            "charge_id": charge.id, "subscription_id": charge.subscription_id, "urn": charge.urn,
            "payer": {"kind": payer.kind, "id": payer.id, "name": payer.name},
            "offering_code": charge.offering_code, "service_area": charge.service_area,
            "period_start": charge.period_start, "period_end": charge.period_end,
            "amount_pence": charge.amount_pence, "vat_treatment": charge.vat_treatment,
            "census_date": charge.census_date, "number_on_roll": charge.number_on_roll,
        }, aggregate=f"payer:{payer.kind}:{payer.id}")
        uow.commit()
    return charge


def set_mat_billing(uow, mat_id: str, pays_centrally: bool) -> None:
    with uow:
        repository.upsert(uow.session, mat_billing, "mat_id", {"mat_id": mat_id, "pays_centrally": pays_centrally})
        uow.commit()
