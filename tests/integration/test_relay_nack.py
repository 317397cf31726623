"""A round the broker nacks ends the relay's connection: the next round starts on a new one.

On a cluster, a channel opened while a node died went on nacking every publish while a new channel's
publishes were confirmed (RabbitMQ 3.10.8, tests/reliability/test_cluster.py). Here a queue that refuses everything (`x-max-length` 0,
`reject-publish`) makes the shared broker nack, in a vhost of the test's own."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pika
import sqlalchemy as sa

from shared.config import events_settings
from shared.db import Database
from shared.messaging_tables import define_messaging_tables, utcnow
from shared.metrics import metrics_for
from shared.relay import OutboxRelay
from tests.reliability import tools


def test_a_nacked_round_keeps_its_row_and_drops_the_connection(vhost, tmp_path):
    connection = pika.BlockingConnection(pika.URLParameters(vhost.amqp_uri))
    channel = connection.channel()
    channel.exchange_declare("membership.events", "topic", durable=True)
    channel.queue_declare("refuses-all", durable=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    channel.queue_bind("refuses-all", "membership.events", "member_joined.v1")  # the one event the relay holds
    connection.close()

    metadata = sa.MetaData()
    outbox, _ = define_messaging_tables(metadata)
    database = Database(f"sqlite:///{tmp_path / 'relay.db'}")
    metadata.create_all(database.engine)
    now = utcnow()
    event_id = str(uuid.uuid4())
    with database.transaction() as session:
        session.execute(outbox.insert().values(
            event_id=event_id, event_type="member_joined", version=1, aggregate="school:100001", sequence=1,
            body=json.dumps(tools.envelope("member_joined", {}, producer="membership", event_id=event_id)),
            created_at=now, next_attempt_at=now - dt.timedelta(seconds=1), attempts=0))
        session.commit()
    relay = OutboxRelay(service="membership", database=database, outbox=outbox, amqp_uri=vhost.amqp_uri,
                        metrics=metrics_for("membership"), settings=events_settings({}))
    try:
        assert relay.publish_due() == 0
        assert relay._connection is None  # dropped: the next round opens a new channel
        with database.reader() as session:
            row = session.execute(sa.select(outbox.c.sent_at, outbox.c.last_error, outbox.c.attempts)).one()
        assert (row.sent_at, row.last_error, row.attempts) == (None, "nacked by the broker", 1)
    finally:
        relay.close()
