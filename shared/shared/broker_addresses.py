"""Broker addresses: `AMQP_URI` names one RabbitMQ node, or the nodes of a cluster.

A cluster is given as several AMQP URIs separated by `;`, kombu's failover syntax:

    amqp://billing:secret@rabbit-1:5672/partnership;amqp://billing:secret@rabbit-2:5672/partnership;...

Guarantees, for every connection a service makes (nameko's consumers, the outbox relay, the
republisher of retries and dead letters, the readiness probe, the wait at startup):
- the addresses are tried in the order given, and a connection that cannot be made to one
  moves on to the next at once (no back-off between the addresses of one round), so a service
  connects as long as one node of the cluster answers;
- a connection that is lost is made again the same way, from the first address: it lands on
  a surviving node. Messages a dead node held in quorum queues are not lost (their replicas
  elect a new leader); a confirm lost with the connection means the relay publishes that row
  again, and the consumers' inboxes make the copy harmless.

One URI is the one-node case of the same thing. The operator tooling (pika, the management API)
reads the same list through `uris()`.
"""
from __future__ import annotations

import urllib.parse

SEPARATOR = ";"


def uris(amqp_uri: str) -> list[str]:
    """The URIs `amqp_uri` lists, in order (one for a single node). ValueError if it lists none."""
    found = [part.strip() for part in (amqp_uri or "").split(SEPARATOR) if part.strip()]
    if not found:
        raise ValueError("AMQP_URI: no broker address given (one AMQP URI, or several separated by ';')")
    return found


def join(addresses: list[str]) -> str:
    """The inverse of `uris()`."""
    return SEPARATOR.join(addresses)


def first(amqp_uri: str) -> str:
    """The first address: where per-broker facts that every node shares (vhost, credentials) are read."""
    return uris(amqp_uri)[0]


def with_credentials(amqp_uri: str, user: str, password: str) -> str:
    """The same nodes and vhost as `amqp_uri`, each with another user's credentials."""
    def one(uri: str) -> str:
        parsed = urllib.parse.urlparse(uri)
        host = parsed.hostname or "127.0.0.1"
        netloc = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@{host}"
        if parsed.port:
            netloc += f":{parsed.port}"
        return urllib.parse.urlunparse(parsed._replace(netloc=netloc))

    return join([one(uri) for uri in uris(amqp_uri)])


def masked(amqp_uri: str) -> str:
    """For logs and errors: every address, passwords masked."""
    from kombu import Connection

    return join([Connection(uri).as_uri() for uri in uris(amqp_uri)])


def connect_any(connection) -> None:
    """Connect a kombu `Connection` made from `amqp_uri`, trying each of its addresses once, in order
    (kombu's own `connect()` tries at most two); raises the last address's error if none answers."""
    addresses = len(connection.alt) or 1  # kombu lists every address of a `;` URI in `alt`, the first too
    connection.ensure_connection(max_retries=addresses - 1, interval_start=0, interval_step=0, interval_max=0)
