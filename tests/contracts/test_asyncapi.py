"""The AsyncAPI catalogue: built from the contracts and the provisioned topology, checked in, valid.

Everything but the last class is pure Python; that one runs the AsyncAPI project's own parser
(`deploy/asyncapi-tools`, installed by `make install`) on the checked-in document and on a broken one.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from deploy import asyncapi, contracts, topology as deploy_topology
from membership.messages.published import MemberJoinedV1
from partnership_ops import links
from shared import topology as names

ROOT = asyncapi.ROOT
VALIDATOR = ROOT / "deploy" / "asyncapi-tools" / "validate.cjs"


@pytest.fixture(scope="module")
def doc():
    return asyncapi.document()


def published_events():
    return [(service, event_type, version, schema, example)
            for service in contracts.SERVICES
            for event_type, version, schema, example in contracts.published_events(service)]


def message_ids(channel: dict) -> set[str]:
    return {ref["$ref"].rsplit("/", 1)[1] for ref in channel["messages"].values()}


class TestFromTheCode:
    def test_checked_in_files_are_what_the_code_makes(self):
        for name, text in asyncapi.files().items():
            assert (asyncapi.FOLDER / name).read_text() == text, "run `python -m deploy.contracts`"

    def test_every_published_event_is_a_message_with_its_contract_schema(self, doc):
        messages = doc["components"]["messages"]
        assert len(messages) == len(published_events())
        for service, event_type, version, _, _ in published_events():
            message = messages[f"{service}.{event_type}.v{version}"]
            contract = json.loads((contracts.contracts_dir(service) / contracts.schema_filename(event_type, version))
                                  .read_text())
            assert message["payload"] == {k: v for k, v in contract.items() if k not in ("$schema", "$id")}
            assert message["bindings"]["amqp"]["messageType"] == event_type
            assert message["headers"]["properties"]["x-event-version"]["const"] == version
            example = json.loads((contracts.contracts_dir(service) / "examples"
                                  / contracts.example_filename(event_type, version)).read_text())
            assert message["examples"][0]["payload"] == example

    def test_each_event_is_sent_on_its_producers_exchange_with_its_routing_key(self, doc):
        for service, event_type, version, _, _ in published_events():
            key = asyncapi.routing_key(event_type, version)
            channel = doc["channels"][f"{names.events_exchange(service)}.{key}"]
            assert channel["address"] == key
            assert channel["bindings"]["amqp"]["is"] == "routingKey"
            assert channel["bindings"]["amqp"]["exchange"]["name"] == names.events_exchange(service)
            assert channel["bindings"]["amqp"]["exchange"]["type"] == "topic"
            assert f"{service}.{event_type}.v{version}" in message_ids(channel)
            operation = doc["operations"][f"{service}.send.{key}"]
            assert operation["action"] == "send"
            assert operation["bindings"]["amqp"]["mandatory"] is True

    def test_every_handler_queue_of_the_provisioned_topology_is_a_channel(self, doc):
        handlers = [(service.name, handler) for service in deploy_topology.SERVICES
                    for handler in links.topology_of(service.name).handlers]
        assert handlers
        for service, handler in handlers:
            channel = doc["channels"][handler.queue]
            assert channel["bindings"]["amqp"] == {
                "is": "queue", "bindingVersion": asyncapi.AMQP_BINDING_VERSION,
                "queue": {"name": handler.queue, "durable": True, "exclusive": False, "autoDelete": False,
                          "vhost": "/"}}
            facts = channel["x-topology"]
            assert (facts["subscriber"], facts["handler"], facts["queueType"]) == (service, handler.method, "quorum")
            assert facts["deadLetterQueue"] == names.dead_letter_queue_name(handler.queue)
            assert facts["deliveryLimit"] >= 1
            assert [b["exchange"] for b in facts["boundTo"]] == [names.events_exchange(handler.source)]
            assert {m.rsplit(".", 1)[0] for m in message_ids(channel)} == {f"{handler.source}.{handler.event_type}"}
            operation = doc["operations"][f"{service}.{handler.method}"]
            assert operation["action"] == "receive" and operation["channel"] == {"$ref": f"#/channels/{handler.queue}"}
        queue_channels = {cid for cid, c in doc["channels"].items()
                          if c["bindings"]["amqp"]["is"] == "queue" and not cid.endswith(".archive")}
        assert queue_channels == {handler.queue for _, handler in handlers}

    def test_each_producer_has_its_archive_stream_holding_all_its_events(self, doc):
        for service in contracts.SERVICES:
            channel = doc["channels"][names.archive_name(service)]
            assert channel["x-topology"]["queueType"] == "stream"
            assert channel["x-topology"]["boundTo"] == [{"exchange": names.events_exchange(service), "routingKey": "#"}]
            assert channel["x-topology"]["maxAge"]
            assert message_ids(channel) == {f"{service}.{t}.v{v}" for t, v, _, _ in contracts.published_events(service)}

    def test_a_new_event_version_appears_without_touching_the_generator(self, monkeypatch):
        example = contracts.published_module("membership").EXAMPLES[("member_joined", 1)]
        events = published_events() + [("membership", "member_joined", 2, MemberJoinedV1(), example)]
        monkeypatch.setattr(asyncapi, "_events", lambda: events)
        doc = asyncapi.document()
        assert "membership.member_joined.v2" in doc["components"]["messages"]
        key = asyncapi.routing_key("member_joined", 2)
        assert "membership.member_joined.v2" in message_ids(doc["channels"][f"membership.events.{key}"])
        assert "membership.member_joined.v2" in message_ids(doc["channels"]["membership.events.archive"])
        assert "membership.member_joined.v2" in asyncapi.page(doc)

    def test_page_is_static_and_lists_every_message(self, doc):
        text = asyncapi.page(doc)
        assert "<script" not in text and "src=" not in text and "http" not in text.replace("https://json-schema", "")
        for mid, message in doc["components"]["messages"].items():
            assert f'id="{mid}"' in text and message["title"] in text


@pytest.mark.parametrize(("pattern", "key", "matches"), [
    ("member_joined", "member_joined", True), ("member_joined", "member_left", False),
    ("#", "member_joined", True), ("#", "member_joined.v2", True), ("*", "member_joined.v2", False),
    ("member_joined.*", "member_joined.v2", True), ("member_joined.*", "member_joined", False),
    ("member_joined.#", "member_joined", True), ("*.v1", "member_joined.v1", True),
])
def test_topic_matching(pattern, key, matches):
    assert asyncapi.topic_matches(pattern, key) is matches


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (`.ci/run` installs it)")
class TestTheAsyncAPIParser:
    """`make lint` runs the validator on the checked-in document; here: it does fail on a broken one."""

    SMALL = {"asyncapi": "3.0.0", "info": {"title": "t", "version": "1"},
             "channels": {"c": {"address": "k", "messages": {"m": {"payload": {"type": "object"}}}}},
             "operations": {"o": {"action": "send", "channel": {"$ref": "#/channels/c"},
                                  "messages": [{"$ref": "#/channels/c/messages/m"}]}}}

    def run(self, document, tmp_path):
        path = tmp_path / "asyncapi.json"
        path.write_text(json.dumps(document))
        return subprocess.run(["node", str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120)

    def test_a_valid_document_passes(self, tmp_path):
        result = self.run(self.SMALL, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "valid AsyncAPI 3.0.0 (1 channels, 1 operations, 1 messages)" in result.stdout

    def test_a_broken_reference_fails(self, tmp_path):
        broken = json.loads(json.dumps(self.SMALL))
        broken["operations"]["o"]["channel"] = {"$ref": "#/channels/no-such-channel"}
        result = self.run(broken, tmp_path)
        assert result.returncode == 1
        assert " error " in result.stdout and "no-such-channel" in result.stdout

    def test_a_document_against_the_specification_fails(self, tmp_path):
        broken = json.loads(json.dumps(self.SMALL))
        broken["operations"]["o"]["action"] = "publish"  # AsyncAPI 2's verb; 3.0 has send and receive
        result = self.run(broken, tmp_path)
        assert result.returncode == 1
        assert " error " in result.stdout
