"""`AMQP_URI` may list a cluster's nodes (`;`): every connection takes the first that answers."""
from __future__ import annotations

import logging
import socket

import pytest
from kombu import Connection

from shared import broker_addresses
from shared.broker import wait_for_broker

SHARED = "amqp://guest:guest@127.0.0.1:5672/"


def closed_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_a_list_is_read_in_order_and_an_empty_one_is_refused_naming_the_setting():
    assert broker_addresses.uris(" amqp://a:1/v ; amqp://b:2/v;") == ["amqp://a:1/v", "amqp://b:2/v"]
    assert broker_addresses.uris("amqp://a:1/v") == ["amqp://a:1/v"]
    with pytest.raises(ValueError, match="AMQP_URI"):
        broker_addresses.uris(" ; ")


def test_credentials_are_given_to_every_node_and_passwords_stay_quoted():
    uri = broker_addresses.with_credentials("amqp://admin:x@h1:5671/v%2F1;amqp://admin:x@h2/v%2F1", "billing", "s;c/t")
    assert uri == "amqp://billing:s%3Bc%2Ft@h1:5671/v%2F1;amqp://billing:s%3Bc%2Ft@h2/v%2F1"
    assert broker_addresses.uris(uri)[1] == "amqp://billing:s%3Bc%2Ft@h2/v%2F1"  # `;` in a password never splits


def test_connect_any_reaches_the_third_node_when_the_first_two_are_down():
    down = [f"amqp://guest:guest@127.0.0.1:{port}/" for port in closed_ports(2)]
    uri = broker_addresses.join([*down, SHARED])
    with Connection(uri, connect_timeout=10) as connection:
        broker_addresses.connect_any(connection)
        assert connection.connected and connection.port == 5672
    with Connection(uri, connect_timeout=10) as connection:  # kombu's own connect() gives up after two
        with pytest.raises(Exception):
            connection.connect()


def test_connect_any_fails_when_no_node_answers():
    uri = broker_addresses.join([f"amqp://guest:guest@127.0.0.1:{port}/" for port in closed_ports(3)])
    with Connection(uri, connect_timeout=1) as connection:
        with pytest.raises(Exception):
            broker_addresses.connect_any(connection)


def test_the_startup_wait_finds_the_node_that_answers_and_logs_every_address_masked():
    wait_for_broker(broker_addresses.join([f"amqp://guest:guest@127.0.0.1:{closed_ports(1)[0]}/", SHARED]), 60.0)
    assert broker_addresses.masked("amqp://u:secret@a:1/v;amqp://u:secret@b:2/v") == "amqp://u:**@a:1/v;amqp://u:**@b:2/v"


@pytest.mark.parametrize("style", ["json", "plain"])
def test_log_lines_mask_the_password_of_every_node_where_nameko_masks_only_the_first(style):
    from nameko.utils import sanitize_url

    from shared.logs import ContextFilter, formatter

    cluster = "amqp://billing:secret1@rabbit-1:5672/p;amqp://billing:secret2@rabbit-2:5672/p"
    assert "secret2" in sanitize_url(cluster)  # what nameko's consumer logs on a connection error
    record = logging.LogRecord("nameko.messaging", logging.WARNING, __file__, 1, "Error connecting to broker at %s",
                               (sanitize_url(cluster),), None)
    ContextFilter().filter(record)
    line = formatter(style).format(record)
    assert "secret" not in line and "amqp://billing:**@rabbit-2:5672/p" in line
