"""TLS to RabbitMQ as a configuration switch: `amqps://` in `AMQP_URI`, a CA bundle in `AMQP_SSL_CA_FILE`.

With an `amqps://` URI every connection a service makes (nameko's consumers and publishers,
the outbox relay, the retry and dead-letter republisher, the startup wait, the readiness
probe) is TLS, verifies the broker's certificate against `AMQP_SSL_CA_FILE` (the system's
CAs when unset) and checks that the certificate names the URI's host, as PostgreSQL's
`sslmode=verify-full` does. A certificate that does not verify fails the connection with
the SSL error (`CERTIFICATE_VERIFY_FAILED`), reported by the startup wait as a refusal
(it exits at once: waiting cannot fix a wrong CA). With `amqp://` nothing changes.

With a cluster's list of URIs (`shared.broker_addresses`) one set of options serves every node
(kombu shares it between the addresses of a failover list), so the host name checked is the first
URI's: the certificate of every node must name that host too (a certificate whose subjectAltName
lists every node's name, or the cluster's one DNS name in every URI), or a fail-over to another
node fails its TLS handshake.

`AMQP_SSL` given explicitly in a service's config (nameko's own setting: a dict of
`ssl.SSLContext.wrap_socket`-style options, see py-amqp) wins over the derived options.
"""
from __future__ import annotations

import os
import ssl
from typing import Any, Mapping
from urllib.parse import urlsplit

CA_FILE_KEY = "AMQP_SSL_CA_FILE"
NAMEKO_SSL_KEY = "AMQP_SSL"  # nameko.constants.AMQP_SSL_CONFIG_KEY


def is_tls(amqp_uri: str) -> bool:
    return urlsplit(amqp_uri).scheme == "amqps"


def amqp_ssl(amqp_uri: str, ca_file: str | None = None) -> dict[str, Any] | None:
    """The `ssl` options for kombu/py-amqp for `amqp_uri`: None for `amqp://`; for `amqps://`,
    certificate and host name verification against `ca_file` (or the system's CAs)."""
    if not is_tls(amqp_uri):
        return None
    options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": urlsplit(amqp_uri).hostname}
    if ca_file:
        if not os.path.isfile(ca_file):
            raise FileNotFoundError(f"{CA_FILE_KEY}={ca_file}: no such file (the CA bundle that signed the broker's "
                                    "certificate)")
        options["ca_certs"] = ca_file
    return options


def amqp_ssl_of(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `ssl` options for a service's broker connections, from its config (see the module docstring)."""
    explicit = config.get(NAMEKO_SSL_KEY)
    if explicit:
        return dict(explicit) if isinstance(explicit, Mapping) else explicit
    return amqp_ssl(config["AMQP_URI"], config.get(CA_FILE_KEY) or os.environ.get(CA_FILE_KEY))


def apply_amqp_tls(config: dict) -> None:
    """Put the derived options where nameko's own consumers and publishers read them (`AMQP_SSL`).

    Called while the service container binds its extensions, before any of them is set up."""
    if not config.get(NAMEKO_SSL_KEY) and "AMQP_URI" in config:
        options = amqp_ssl_of(config)
        if options:
            config[NAMEKO_SSL_KEY] = options
