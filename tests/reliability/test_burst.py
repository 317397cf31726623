"""A national-size burst in the topology a council runs: nothing but the provisioned queues and
archives is bound (no observer, no catch-all), and most of what billing publishes has no
consumer inside the system. Every event must still leave every outbox: the archive makes it
routable, so the relay never loops on an event that simply has no subscriber."""
from __future__ import annotations

import pika

from shared.envelope import Envelope
from tests.archive_tap import ArchiveTap
from tests.conftest import billing_run, eventually, http_json
from tests.integration.billing_upstream import Upstream
from tests.integration.test_billing_api import SI
from tests.reliability import tools

SCHOOLS = 2000


def publish_many(amqp_uri: str, producer: str, events: list[tuple[str, dict]]) -> None:
    """Publish upstream events on one connection, confirmed (as the producer's relay would)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for event_type, payload in events:
            envelope = Envelope.new(type=event_type, payload=payload, producer=producer, operator="bucks-learning-trust")
            properties = envelope.amqp_properties()
            headers = properties.pop("application_headers")
            channel.basic_publish(f"{producer}.events", envelope.routing_key, envelope.to_json().encode(),
                                  pika.BasicProperties(headers=headers, **properties), mandatory=True)
    finally:
        connection.close()


def test_a_billing_run_of_thousands_of_invoices_leaves_every_outbox_empty(stack_factory, sqlite_databases, amqp_uri):
    stack = stack_factory(sqlite_databases).start("billing")
    billing, database = stack.url("billing"), stack.database_urls["billing"]
    up = Upstream(amqp_uri)
    urns = [f"{700000 + n}" for n in range(SCHOOLS)]
    joined = [("member_joined", {
        "urn": urn, "dfe_number": f"825/{urn[-4:]}", "name": f"School {urn}", "kind": "school",
        "establishment_type": "community", "phase": "primary", "is_academy": False, "mat": None,
        "local_authority": "Buckinghamshire", "postcode": "HP19 8FF", "number_on_roll": 210,
        "census_date": "2025-10-02", "joined_on": "2020-09-01"}) for urn in urns]
    publish_many(amqp_uri, "membership", joined)
    eventually(lambda: tools.count(database, "members") == SCHOOLS, timeout=240, interval=1.0,
               message="billing knowing every school")
    publish_many(amqp_uri, "catalogue", [("subscription_started", up.sla(urn, f"School {urn}", SI, 100000,
                                                                         "2026-04-01", "2027-03-31"))
                                         for urn in urns])
    eventually(lambda: tools.count(database, "charges") == SCHOOLS, timeout=240, interval=1.0,
               message="a charge per school")

    run = billing_run(billing, {"period": "2026/27", "issue_date": "2026-09-01"}, timeout=300)
    assert not run["rerun"], run
    assert run["invoices_issued"] == SCHOOLS

    # charge_recorded and invoice_issued have no consumer in the system: the archive takes them all.
    outbox = eventually(lambda: (lambda b: b if b["unsent"] == 0 else None)(
        http_json("GET", f"{billing}/ops/outbox")[1]), timeout=180, interval=1.0, message="billing's outbox empty")
    assert outbox["unsent"] == 0
    assert tools.count(database, "outbox", "WHERE sent_at IS NULL") == 0
    assert tools.count(database, "outbox", "WHERE attempts > 1") == 0  # nothing was returned and retried
    archived = ArchiveTap(amqp_uri, ["billing"])
    archived.drain_sent(database)  # read up to the outbox's last event before counting
    assert archived.count("invoice_issued") == SCHOOLS
    assert archived.count("charge_recorded") == SCHOOLS
    metrics = http_json_text(f"{billing}/metrics")
    assert 'partnership_events_unroutable_total' not in metrics or all(
        line.endswith(" 0.0") for line in metrics.splitlines()
        if line.startswith("partnership_events_unroutable_total{"))


def http_json_text(url: str) -> str:
    """A service's /metrics (`url` ends in /metrics), with the scrape credential."""
    from tests.conftest import scrape

    return scrape(url.removesuffix("/metrics"))
