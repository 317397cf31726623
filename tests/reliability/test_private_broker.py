"""The private RabbitMQ node tests restart instead of the shared one (tests/brokers.py): a node
that cannot start is a test error naming the cause, and leaves no process or folder behind."""
from __future__ import annotations

import socket
import subprocess

import pytest

from tests.brokers import BrokerNodeError, PrivateBroker


def test_a_node_that_cannot_start_is_an_error_with_its_log_and_leaves_nothing_behind():
    node = PrivateBroker()
    with socket.socket() as taken:  # its AMQP port already in use: the node exits during boot
        taken.bind(("127.0.0.1", node.amqp_port))
        taken.listen()
        with pytest.raises(BrokerNodeError) as failed:
            node.start(timeout=60)
    assert node.node in str(failed.value)
    assert "eaddrinuse" in str(failed.value)
    assert not node.base.exists()
    registered = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10).stdout
    assert f"name {node.node.split('@')[0]} " not in registered
