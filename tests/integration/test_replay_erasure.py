"""A replay from the event archive never brings an erased person back (real broker, real databases).

The archive keeps a person's `organisation_contact_role_changed` (their name and email) for its whole
retention, erased or not. Replaying it into a consumer whose database was rebuilt or restored (its inbox
no longer knows the event) would store them again; `replay` therefore re-sends every archived
`contact_erased` to the service's erasure handler after, and the consumer's tombstone makes the order the
two are handled in irrelevant."""
from __future__ import annotations

import json
import types
import uuid

import pytest
from sqlalchemy import select

from billing.adapters.tables import contacts, erased_contacts, inbox, outbox
from billing.entrypoints.service import BillingService
from billing.messages import consumed
from billing.messages.published import PUBLISHED
from partnership_ops import event_archive
from shared.db import scratch_database
from shared.envelope import Envelope, ReceivedEvent
from shared.unit_of_work import Origin, Producer, UnitsOfWork
from tests.conftest import eventually, provision_vhost
from tests.integration.billing_upstream import publish
from tests.reliability import tools

ROLE_QUEUE = "evt-membership-organisation_contact_role_changed--billing.on_organisation_contact_role_changed"
ERASURE_QUEUE = "evt-membership-contact_erased--billing.on_contact_erased"
HANDLERS = {"organisation_contact_role_changed": (consumed.OrganisationContactRoleChanged,
                                                  BillingService.on_organisation_contact_role_changed),
            "contact_erased": (consumed.ContactErased, BillingService.on_contact_erased)}


@pytest.fixture
def vhost(vhost):
    provision_vhost(vhost.amqp_uri, None)
    return vhost


def _role(contact_id, name):
    return {"contact_id": contact_id, "organisation_kind": "mat", "organisation_id": "TR100",
            "organisation_name": "Chiltern Learning Trust", "display_name": name, "email": f"{contact_id}@t.example",
            "role": "finance_contact", "may_commit_spending": True, "active": True, "effective_date": "2026-04-01"}


def _handle(database, body: bytes) -> None:
    """What billing's consumer does with one delivered message (its inbox included)."""
    envelope = Envelope.from_dict(body)
    schema, method = HANDLERS[envelope.type]
    received = ReceivedEvent(envelope=envelope, payload=schema().load(envelope.payload))
    producer = Producer("billing", "bucks-learning-trust", PUBLISHED)
    method(types.SimpleNamespace(uow=UnitsOfWork(database, producer, outbox, inbox, Origin(event=received),
                                                 lambda: None)), received)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_replaying_a_persons_role_into_a_rebuilt_database_ends_with_them_erased(vhost, backend, tmp_path):
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    publish(vhost.amqp_uri, "membership", "organisation_contact_role_changed", _role(erased, "Ada Lovelace"))
    publish(vhost.amqp_uri, "membership", "organisation_contact_role_changed", _role(kept, "Bob Smith"))
    publish(vhost.amqp_uri, "membership", "contact_erased", {"contact_id": erased})
    # handled long ago: the queues are empty; then billing's database is lost and rebuilt empty
    for queue, depth in ((ROLE_QUEUE, 2), (ERASURE_QUEUE, 1)):
        eventually(lambda q=queue, d=depth: tools.queue_depth(vhost.amqp_uri, q) == d, timeout=20)
        tools.purge(vhost.amqp_uri, queue)

    report = event_archive.replay(vhost.amqp_uri, ROLE_QUEUE, source="membership",
                                  event_type="organisation_contact_role_changed", idle_seconds=1.0)

    assert (report["replayed"], report["erasures_reapplied"], report["erasure_queue"]) == (2, 1, ERASURE_QUEUE)
    roles = [body for _, body in tools.queue_messages(vhost.amqp_uri, ROLE_QUEUE)]
    erasures = [body for _, body in tools.queue_messages(vhost.amqp_uri, ERASURE_QUEUE)]
    assert len(roles) == 2 and [json.loads(b)["payload"] for b in erasures] == [{"contact_id": erased}]
    # the two queues are consumed independently: either may be handled first
    for order in (erasures + roles, roles + erasures):
        with scratch_database(backend, tmp_path, f"billing_replay_{uuid.uuid4().hex[:6]}",
                              migrations="billing:migrations") as database:
            for body in order:
                _handle(database, body)
            with database.reader() as session:
                names = session.execute(select(contacts.c.contact_id, contacts.c.display_name)).all()
                tombstones = session.execute(select(erased_contacts.c.contact_id)).scalars().all()
        assert [tuple(n) for n in names] == [(kept, "Bob Smith")]
        assert tombstones == [erased]
