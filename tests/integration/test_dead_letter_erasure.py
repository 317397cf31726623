"""`partnership-ops dead-letters --mentions` on the real broker, with the service's own least-privilege
user: the dead letters that mention an erased person are listed, rewritten (kept, redeliverable) or purged;
the others are untouched."""
from __future__ import annotations

import json
import uuid

import pika
import pytest

from partnership_ops import ops
from shared.topology import dead_letter_exchange, dead_letter_queue_name
from tests.conftest import provision_vhost

QUEUE = "evt-membership-organisation_contact_role_changed--billing.on_organisation_contact_role_changed"
DEAD = dead_letter_queue_name(QUEUE)
ADA, BOB = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def vhost(vhost):
    provision_vhost(vhost.amqp_uri, None)  # every handler's queues, dead-letter queues among them
    return vhost


def _role_event(contact_id, name, email):
    return {"event_id": str(uuid.uuid4()), "type": "organisation_contact_role_changed", "version": 1,
            "producer": "membership", "payload": {
                "contact_id": contact_id, "organisation_kind": "mat", "organisation_id": "TR100",
                "organisation_name": "Chiltern Learning Trust", "display_name": name, "email": email,
                "role": "finance_contact", "may_commit_spending": True, "active": True,
                "effective_date": "2026-04-01"}}


def _dead_letter(uri, event, error):
    """As the consumer dead-letters a message it cannot handle: to the service's dead-letter exchange."""
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(dead_letter_exchange("billing"), DEAD, json.dumps(event).encode(), pika.BasicProperties(
            message_id=event["event_id"], type=event["type"], delivery_mode=2,
            headers={"x-error": error, "x-dead-letter-reason": "handler_failed", "x-attempts": 5}), mandatory=True)
    finally:
        connection.close()


def _contents(admin_uri):
    """Every dead letter's body and headers, read (with the administrator) without consuming any."""
    connection = pika.BlockingConnection(pika.URLParameters(admin_uri))
    found = []
    try:
        channel = connection.channel()
        for _ in range(50):
            method, properties, body = channel.basic_get(DEAD, auto_ack=False)
            if method is None:
                break
            found.append((properties.message_id, json.loads(body), dict(properties.headers or {})))
    finally:
        connection.close()
    return {event_id: (body, headers) for event_id, body, headers in found}


@pytest.fixture
def letters(vhost):
    billing = vhost.service_uris["billing"]
    ada = _role_event(ADA, "Ada Lovelace", "ada@trust.example")
    bob = _role_event(BOB, "Bob Smith", "bob@trust.example")
    mentioned = _role_event(BOB, "Bob Smith", "bob@trust.example")
    mentioned["payload"]["organisation_name"] = "Ada Lovelace Academy Trust"  # names Ada, carries Bob's id
    _dead_letter(billing, ada, "ValueError: no MAT TR100 for Ada Lovelace")
    _dead_letter(billing, bob, "ValueError: no MAT TR100")
    _dead_letter(billing, mentioned, "ValueError: no MAT TR100")
    return {"ada": ada["event_id"], "bob": bob["event_id"], "mentioned": mentioned["event_id"]}


def _erase(vhost, action):
    return ops.erase_from_dead_letters(vhost.service_uris["billing"], [QUEUE], ADA,
                                       ["Ada Lovelace", "ada@trust.example"], action)


def test_list_names_the_letters_that_mention_the_person_and_consumes_nothing(vhost, letters):
    report = _erase(vhost, "list")
    assert sorted(m["event_id"] for m in report["mentions"]) == sorted([letters["ada"], letters["mentioned"]])
    assert report["count"] == 2 and report["rewritten"] == report["purged"] == 0
    assert set(_contents(vhost.amqp_uri)) == set(letters.values())


def test_rewrite_blanks_the_person_keeps_each_letter_and_leaves_the_others(vhost, letters):
    before = _contents(vhost.amqp_uri)
    report = _erase(vhost, "rewrite")
    assert report["rewritten"] == 2 and report["not_rewritable"] == []
    after = _contents(vhost.amqp_uri)
    assert set(after) == set(letters.values())  # nothing lost: each is still there to redeliver
    ada_body, ada_headers = after[letters["ada"]]
    assert ada_body["payload"]["contact_id"] == ADA
    assert (ada_body["payload"]["display_name"], ada_body["payload"]["email"]) == ("[erased]", None)
    assert ada_headers["x-error"] == "ValueError: no MAT TR100 for [erased]"
    assert ada_headers["x-dead-letter-reason"] == "handler_failed"
    assert after[letters["mentioned"]][0]["payload"]["organisation_name"] == "[erased] Academy Trust"
    assert after[letters["mentioned"]][0]["payload"]["display_name"] == "Bob Smith"  # Bob's own data stays
    assert after[letters["bob"]][0] == before[letters["bob"]][0]  # (its x-delivery-count counts the browsing)
    assert after[letters["bob"]][1]["x-error"] == before[letters["bob"]][1]["x-error"]
    assert "Lovelace" not in json.dumps([body for body, _ in after.values()]) + json.dumps(
        [h["x-error"] for _, h in after.values()])
    # the listing still works on the rewritten letters (reason, error, attempts)
    listed = {item["event_id"]: item for item in ops.list_dead_letters(vhost.service_uris["billing"], [QUEUE])}
    assert listed[letters["ada"]]["reason"] == "handler_failed"


def test_purge_removes_only_the_letters_that_mention_the_person(vhost, letters):
    report = _erase(vhost, "purge")
    assert report["purged"] == 2
    assert set(_contents(vhost.amqp_uri)) == {letters["bob"]}
    assert _erase(vhost, "list")["count"] == 0


def test_the_command_line_lists_and_rewrites_with_the_services_own_user(vhost, letters, tmp_path, capsys):
    config = tmp_path / "config.yml"
    config.write_text(f"AMQP_URI: {vhost.service_uris['billing']}\nDATABASE_URL: sqlite://\n")
    command = ["dead-letters", "--config", str(config), "--service", "billing", "--queue", QUEUE,
               "--mentions", ADA, "--known", "Ada Lovelace", "--known", "ada@trust.example"]
    assert ops.main(command) == 0
    listed = json.loads(capsys.readouterr().out)
    assert (listed["action"], listed["count"]) == ("list", 2)
    assert ops.main([*command, "--rewrite"]) == 0
    assert json.loads(capsys.readouterr().out)["rewritten"] == 2
    assert "Lovelace" not in json.dumps([body for body, _ in _contents(vhost.amqp_uri).values()])
