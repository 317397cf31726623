"""Every event type every service publishes carries the CloudEvents attributes in the AMQP binding's
header form, built from its envelope, and the official CloudEvents SDK reads them back: checked on
each published example (`services/*/contracts/examples`). The same on a message taken off the real
broker: tests/integration/test_cloudevents_on_the_wire.py."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from shared.envelope import amqp_properties
from tests.cloudevents_sdk import read_with_sdk

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("services/*/contracts/examples/*.json"))


def test_every_service_has_examples():
    assert {path.parts[-4] for path in EXAMPLES} == {"membership", "catalogue", "billing", "scheduling"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parts[-4]}/{p.stem}")
def test_the_sdk_reads_each_published_event_as_its_envelope_says(path):
    envelope = json.loads(path.read_text(encoding="utf-8"))
    envelope["causation_id"] = envelope["causation_id"] or "cause-1"  # exercise the optional extension too
    properties = amqp_properties(envelope)
    body = json.dumps(envelope).encode()
    event = read_with_sdk(properties["content_type"], properties["application_headers"], body)

    assert event.get_specversion() == "1.0"
    assert event.get_id() == envelope["event_id"] == properties["message_id"]
    assert event.get_source() == f"/operators/{envelope['operator']}/services/{envelope['producer']}"
    assert event.get_type() == f"uk.org.partnership.{envelope['producer']}.{envelope['type']}.v{envelope['version']}"
    assert event.get_time() == dt.datetime.fromisoformat(envelope["occurred_at"].replace("Z", "+00:00"))
    assert event.get_subject() == envelope["aggregate"]
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == envelope
    assert {name: event.get_extension(name) for name in
            ("correlationid", "causationid", "operator", "sequence", "eventversion")} == {
        "correlationid": envelope["correlation_id"], "causationid": "cause-1", "operator": envelope["operator"],
        "sequence": envelope["sequence"], "eventversion": envelope["version"]}
    # what consumers already read is unchanged
    headers = properties["application_headers"]
    assert (headers["x-event-id"], headers["x-event-type"], headers["x-event-version"]) == (
        envelope["event_id"], envelope["type"], envelope["version"])
    assert properties["type"] == envelope["type"]
