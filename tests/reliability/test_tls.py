"""TLS to RabbitMQ and PostgreSQL as a configuration switch, proven once on a broker node and a
database cluster this test starts itself, with certificates from a CA it makes (trustme):

- billing runs with `AMQP_URI=amqps://...` + `AMQP_SSL_CA_FILE` and a `DATABASE_URL` with
  `sslmode=verify-full&sslrootcert=...`: it consumes upstream events and its relay publishes its
  own (broker-confirmed) over TLS, and every connection it holds to either server is encrypted
  (the broker's and PostgreSQL's own views of their connections say so);
- with a CA that did not sign the broker's certificate, the service exits at once naming the
  failed verification and AMQP_SSL_CA_FILE; with the wrong CA for PostgreSQL it exits on
  libpq's "certificate verify failed".

The shared broker and PostgreSQL are never touched: the node (tests/brokers.py) and the cluster
(tests/reliability/pg_cluster.py) listen on ports of their own, on 127.0.0.1.
"""
from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import trustme

from deploy.local import SPECS, ServiceProcess
from shared.db import ensure_postgres_database
from tests import tokens
from tests.brokers import PrivateBroker, free_ports
from tests.conftest import TEST_EVENT_SETTINGS, Vhost, billing_run, eventually, free_port, http_json
from tests.integration.billing_upstream import Upstream
from tests.reliability.pg_cluster import PostgresCluster

HOST = "127.0.0.1"
SI = ("SI-CORE", "School improvement core offer", "school_improvement", "standard")
pytestmark = pytest.mark.timeout(600)


class TlsBroker(PrivateBroker):
    """A private node with a TLS listener too (the plain one stays, for the test's own publishing)."""

    def __init__(self, ca: trustme.CA):
        super().__init__()
        self.tls_port = free_ports(1)[0]
        self._server = ca.issue_cert("localhost", HOST)

    def _write_files(self) -> None:
        tls = self.base / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        self._server.private_key_pem.write_to_path(str(tls / "server.key"))
        self._server.cert_chain_pems[0].write_to_path(str(tls / "server.pem"))
        super()._write_files()  # writes the config and hands the whole folder to the rabbitmq user
        with open(self.config_file, "a") as config:
            config.write("\n".join([
                f"listeners.ssl.local = {HOST}:{self.tls_port}",
                f"ssl_options.certfile = {tls / 'server.pem'}",
                f"ssl_options.keyfile = {tls / 'server.key'}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
                "",
            ]))


@pytest.fixture
def ca(tmp_path) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, path


@pytest.fixture
def wrong_ca(tmp_path) -> Path:
    path = tmp_path / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def tls_broker(ca):
    node = TlsBroker(ca[0])
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def tls_postgres(ca):
    cluster = PostgresCluster(free_port())
    try:
        server = ca[0].issue_cert("localhost", HOST)
        tls = cluster.root / "tls"
        tls.mkdir()
        server.private_key_pem.write_to_path(str(tls / "server.key"))
        server.cert_chain_pems[0].write_to_path(str(tls / "server.pem"))
        for path in (tls, tls / "server.key", tls / "server.pem"):
            shutil.chown(path, "postgres", "postgres")
        (tls / "server.key").chmod(0o600)
        cluster.start("ssl=on", f"ssl_cert_file={tls / 'server.pem'}", f"ssl_key_file={tls / 'server.key'}")
        yield cluster
    finally:
        cluster.destroy()


def verify_full(cluster: PostgresCluster, database: str, ca_file: Path) -> str:
    return (f"postgresql+psycopg2://postgres@{HOST}:{cluster.port}/{database}"
            f"?sslmode=verify-full&sslrootcert={ca_file}")


def billing(tmp_path, amqps_uri: str, ca_file: Path, database_url: str, log_name: str) -> ServiceProcess:
    return ServiceProcess(SPECS["billing"], amqp_uri=amqps_uri, database_url=database_url, port=free_port(),
                          log_path=tmp_path / log_name,
                          extra_env={**TEST_EVENT_SETTINGS, **tokens.service_auth_env(),
                                     "AMQP_SSL_CA_FILE": str(ca_file), "EVENT_BROKER_STARTUP_TIMEOUT_SECONDS": "60"})


def exited_with(process: ServiceProcess, timeout: float = 90.0) -> str:
    """Wait (bounded) for a service that must refuse to start to exit; returns its log."""
    deadline = time.monotonic() + timeout
    while process.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = process.alive()
    process.stop()
    log = process.log_path.read_text(errors="replace")
    assert not alive, f"billing kept running with a certificate it cannot verify:\n{log[-3000:]}"
    return log


def test_billing_runs_over_tls_to_rabbitmq_and_postgresql_and_refuses_a_wrong_ca(
        tmp_path, ca, wrong_ca, tls_broker, tls_postgres):
    ca_file = ca[1]
    vhost = Vhost(broker=tls_broker, provision=False)
    try:
        from deploy.local import provision_broker

        user = f"tls-{uuid.uuid4().hex[:6]}-"
        password = uuid.uuid4().hex
        provision_broker(vhost.amqp_uri, {name: password for name in SPECS}, user_prefix=user,
                         settings={"retry_delays_ms": [200, 500], "delivery_limit": 5}, consumers=["billing"],
                         management_url=tls_broker.management_url)
        amqps_uri = f"amqps://{user}billing:{password}@{HOST}:{tls_broker.tls_port}/{vhost.name}"
        database_url = verify_full(tls_postgres, "billing", ca_file)
        ensure_postgres_database(database_url)  # over verify-full too

        # 1. the right CA: events in and out over TLS, a verified TLS session to PostgreSQL
        service = billing(tmp_path, amqps_uri, ca_file, database_url, "billing.log").start()
        try:
            service.wait_ready(120)
            up = Upstream(vhost.amqp_uri)  # the test publishes as membership and catalogue would
            up.member_joined("110041", "Encrypted Primary School")
            up.subscription_started(up.sla("110041", "Encrypted Primary School", SI, 50000, "2026-04-01",
                                           "2027-03-31"))
            eventually(lambda: http_json("GET", f"{service.url}/charges?urn=110041")[1]["count"] == 1,
                       timeout=60, message="the charge, from events consumed over TLS")
            summary = billing_run(service.url, {"period": "2026/27", "issue_date": "2026-09-01"})
            assert summary["rerun"] is False, summary
            # the relay published invoice_issued (and the charge's event), confirmed by the broker over TLS
            eventually(lambda: http_json("GET", f"{service.url}/ops/outbox")[1]["unsent"] == 0, timeout=60,
                       message="the outbox published over TLS")
            engine = sa.create_engine(database_url)
            try:
                with engine.connect() as connection:
                    sent = connection.execute(sa.text(
                        "SELECT event_type FROM outbox WHERE sent_at IS NOT NULL")).scalars().all()
                    encrypted = connection.execute(sa.text(
                        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                        "WHERE a.datname = 'billing'")).scalars().all()
            finally:
                engine.dispose()
            assert "invoice_issued" in sent, sent
            assert encrypted and all(encrypted), encrypted  # every billing connection, this test's included
            # The management API lists a connection once its stats are collected (every few seconds).
            connections = eventually(lambda: [c for c in tls_broker.management().request("GET", "/api/connections")
                                              if c.get("user") == f"{user}billing" and "ssl" in c], timeout=60,
                                     message="billing's connections in the broker's list")
            assert all(c["ssl"] for c in connections), connections
            assert {c["port"] for c in connections} == {tls_broker.tls_port}
        finally:
            service.stop()

        # 2. a CA that did not sign the broker's certificate: a clear error at once, not a wait
        log = exited_with(billing(tmp_path, amqps_uri, wrong_ca, database_url, "wrong-amqp-ca.log").start())
        assert "presented a TLS certificate that does not verify" in log, log[-3000:]
        assert "certificate verify failed" in log and "AMQP_SSL_CA_FILE" in log
        assert "waiting for the broker" not in log

        # 3. the wrong CA for PostgreSQL: libpq refuses the server
        log = exited_with(billing(tmp_path, amqps_uri, ca_file, verify_full(tls_postgres, "billing", wrong_ca),
                                  "wrong-pg-ca.log").start())
        assert "certificate verify failed" in log, log[-3000:]
    finally:
        vhost.delete()
