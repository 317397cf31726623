"""A breaking change is a new version, published beside the old one: v1 handlers keep getting v1 only,
v2 handlers get v2 only, and nothing is dead-lettered (real broker, provisioned topology, real outbox
and relay, a real nameko subscriber).

The v2 is a breaking change of membership's real `member_joined` v1 (its published schema,
`membership.messages.published.MemberJoinedV1`): `urn` renamed `school_urn` and `local_authority`
a `{"code", "name"}` object instead of a name. Before routing by version (routing key = type), the
v1 handler's queue received the v2 events too and dead-lettered them ("this handler reads version 1").
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from marshmallow import RAISE, Schema, fields, validate

from membership.messages.published import MemberJoinedV1
from partnership_ops import event_archive, links, topology
from shared.config import events_settings
from shared.db import Database
from shared.envelope import PayloadSchemas
from shared.messaging_tables import define_messaging_tables
from shared.metrics import metrics_for
from shared.relay import OutboxRelay
from shared.topology import dead_letter_queue_name
from shared.unit_of_work import Origin, Producer, UnitOfWork
from tests.conftest import ROOT, TEST_TOPOLOGY_SETTINGS, eventually
from tests.reliability import tools

PROBE = "tests.integration.versioned_probe:VersionProbe"
V1_QUEUE = "evt-membership-member_joined--versionprobe.on_member_joined_v1"
V2_QUEUE = "evt-membership-member_joined--versionprobe.on_member_joined_v2"


class LocalAuthority(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.Regexp(r"^\d{3}$"))
    name = fields.String(required=True)


class MemberJoinedV2(Schema):
    """`member_joined` v2: `school_urn` (was `urn`), `local_authority` as code and name."""

    class Meta:
        unknown = RAISE

    school_urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    name = fields.String(required=True)
    local_authority = fields.Nested(LocalAuthority, required=True)
    joined_on = fields.Date(required=True)


def v1_payload(urn: str, name: str) -> dict:
    return {"urn": urn, "dfe_number": "825/2001", "name": name, "kind": "school", "establishment_type": "community",
            "phase": "primary", "is_academy": False, "mat": None, "local_authority": "Buckinghamshire",
            "postcode": "HP17 8DS", "number_on_roll": 172, "census_date": dt.date(2025, 10, 2), "joined_on": dt.date(2026, 4, 1)}


def v2_payload(urn: str, name: str) -> dict:
    return {"school_urn": urn, "name": name, "local_authority": {"code": "825", "name": "Buckinghamshire"},
            "joined_on": dt.date(2026, 4, 1)}


class Membership:
    """membership's publishing path as the service runs it (outbox in the change's transaction, then the
    relay), publishing both versions of `member_joined`."""

    def __init__(self, amqp_uri: str, tmp_path: Path):
        metadata = sa.MetaData()
        self.outbox, self.inbox = define_messaging_tables(metadata)
        self.database = Database(f"sqlite:///{tmp_path / 'membership-v2.db'}")
        metadata.create_all(self.database.engine)
        self.producer = Producer("membership", "bucks-learning-trust",
                                 PayloadSchemas({("member_joined", 1): MemberJoinedV1(),
                                                 ("member_joined", 2): MemberJoinedV2()}))
        self.relay = OutboxRelay(service="membership", database=self.database, outbox=self.outbox, amqp_uri=amqp_uri,
                                 metrics=metrics_for("membership"), settings=events_settings({}))

    def join(self, urn: str, name: str) -> tuple[str, str]:
        """One school joins: v1 and v2 of its `member_joined` in one transaction; returns both ids."""
        with UnitOfWork(self.database, self.producer, self.outbox, self.inbox, Origin()) as uow:
            v1 = uow.publish("member_joined", v1_payload(urn, name), aggregate=f"school:{urn}")
            v2 = uow.publish("member_joined", v2_payload(urn, name), aggregate=f"school:{urn}", version=2)
            uow.commit()
        return v1.event_id, v2.event_id

    def relay_all(self, expected: int) -> None:
        report = self.relay.drain(30)
        self.relay.close()
        assert (report["published"], report["left_unsent"]) == (expected, 0), report


@pytest.fixture
def probe(vhost, tmp_path):
    """The subscriber, its queues provisioned as a deployment's are, running as a process."""
    settings = TEST_TOPOLOGY_SETTINGS
    document = topology.definitions([links.topology_of(PROBE), topology.ServiceTopology("membership", ())],
                                    delivery_limit=settings["delivery_limit"],
                                    retry_delays_ms=settings["retry_delays_ms"])
    document["permissions"] = []  # it runs as the vhost's administrator: the routing is what is tested
    topology.apply(topology.Management.for_amqp_uri(vhost.amqp_uri, url=vhost.management_url), document,
                   vhost=vhost.name)
    log = tmp_path / "probe.jsonl"
    log.touch()
    config = tmp_path / "probe.yml"
    config.write_text(yaml.safe_dump({
        "AMQP_URI": vhost.amqp_uri, "DECLARE_EVENT_EXCHANGES": False,
        "EVENTS": {"retry_delays_ms": settings["retry_delays_ms"], "delivery_limit": settings["delivery_limit"]},
        "LOGGING": {"version": 1, "root": {"level": "WARNING"}}}))
    output = open(tmp_path / "probe.out", "w")
    process = subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(config), PROBE], cwd=ROOT,
                               env={**os.environ, "PROBE_LOG": str(log), "PYTHONPATH": str(ROOT)},
                               stdout=output, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: all(tools.queue_consumers(vhost.amqp_uri, q) == 1 for q in (V1_QUEUE, V2_QUEUE)),
                   timeout=60, message="the probe consuming both queues")
        yield log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        output.close()


def received(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line]


class TestVersionedRouting:
    def test_v1_and_v2_side_by_side_reach_only_their_own_handlers_and_replay_keeps_them_apart(
            self, vhost, probe, tmp_path):
        membership = Membership(vhost.amqp_uri, tmp_path)
        ids = [membership.join(urn, f"School {urn}") for urn in ("110394", "110395")]
        membership.relay_all(4)

        got = eventually(lambda: (lambda r: r if len(r) >= 4 else None)(received(probe)), timeout=30,
                         message="both handlers receiving their events")
        by_handler = {h: [(e["event_id"], e["version"]) for e in got if e["handler"] == h] for h in ("v1", "v2")}
        assert sorted(by_handler["v1"]) == sorted((v1, 1) for v1, _ in ids)
        assert sorted(by_handler["v2"]) == sorted((v2, 2) for _, v2 in ids)
        v2_seen = [e["payload"] for e in got if e["handler"] == "v2"]
        assert {p["school_urn"] for p in v2_seen} == {"110394", "110395"}
        assert all(p["local_authority"] == {"code": "825", "name": "Buckinghamshire"} for p in v2_seen)
        for queue in (V1_QUEUE, V2_QUEUE):
            assert tools.queue_depth(vhost.amqp_uri, dead_letter_queue_name(queue)) == 0
            assert tools.queue_depth(vhost.amqp_uri, queue) == 0
        # the archive keeps both versions, each under its own routing key
        archived = [(e.routing_key, e.event_version) for e in event_archive.read(vhost.amqp_uri, "membership",
                                                                                  idle_seconds=0.5)]
        assert sorted(archived) == [("member_joined.v1", 1)] * 2 + [("member_joined.v2", 2)] * 2
        assert len(received(probe)) == 4  # nothing more arrived meanwhile

        # replaying a v2 handler's queue from the archive re-sends the v2 events only
        report = event_archive.replay(vhost.amqp_uri, V2_QUEUE, source="membership", event_type="member_joined",
                                      version=2, idle_seconds=0.5)
        assert (report["replayed"], report["other_types_skipped"]) == (2, 2)
        eventually(lambda: tools.queue_depth(vhost.amqp_uri, V2_QUEUE) == 0 and len(received(probe)) == 6,
                   timeout=30, message="the replayed v2 events handled")
        replayed = sorted((e["handler"], e["event_id"]) for e in received(probe)[4:])
        assert replayed == sorted(("v2", v2) for _, v2 in ids)
        assert tools.queue_depth(vhost.amqp_uri, dead_letter_queue_name(V2_QUEUE)) == 0
