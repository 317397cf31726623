"""The broker topology, provisioned from one declarative source before any service starts.

Operator tooling (`partnership-ops topology apply|check|print`): no running service imports
this module. The names it provisions are `shared.topology`'s, the ones the services use.

Services declare nothing but their own handler queues (nameko's consumer re-declares
them, with the same arguments, on every connect); everything else comes from a
RabbitMQ definitions document generated from the services' own handler declarations
(`definitions()`), applied through the management API (`apply()`, idempotent) and
compared with what the broker holds (`check()`).

For each producer `<p>`:
- `<p>.events`: its topic exchange (routing key `<type>.v<version>`);
- `<p>.events.archive`: a **stream** bound to it with `#`, so every event is kept
  (retention by age, policy `max-age`, 13 months by default) and routable: the
  relay's `mandatory` returns then only mean a broken topology.
For a handler `<method>` of service `<s>` reading `<source>`'s `<type>`:
- `evt-<source>-<type>--<s>.<method>` (nameko's naming): a quorum queue bound to
  `<source>.events` with routing key `<type>.v<version>` (the version its handler reads, so a v2
  published beside v1 reaches only v2 handlers), and bound to `<s>.requeue` with its
  own name (the way back from a retry queue, and for redelivery);
- its policy: `delivery-limit`, then dead-lettered by RabbitMQ through
  `<s>.dead-letter` to `<queue>.dead`, **at least once** (`dead-letter-strategy:
  at-least-once`, `overflow: reject-publish`). Limits live in policies, never in
  queue arguments, so changing one never makes a declaration fail with
  PRECONDITION_FAILED;
- `<queue>.dead`: its dead-letter queue (quorum), bound to `<s>.dead-letter`.
For each retry delay of service `<s>`: `<s>.retry.<ms>ms`, a fanout exchange and a
quorum queue whose policy gives the TTL and dead-letters (at least once) through
`<s>.requeue` with the routing key the copy was parked with: its handler's queue.

One broker user per service, least privilege: it may configure only its own handler
queues (nameko re-declares them), write only to its own exchanges (events, retry,
dead-letter, requeue) and bind its own queues, and read only its sources' exchanges and its
own queues. `DECLARE_EVENT_EXCHANGES: False` in every service's config keeps nameko
from declaring (configuring) a source's exchange. A service serving RPC (nameko's
`nameko-rpc` exchange, `rpc-<s>` queue) may also configure and use those two.

A consumer outside the system (another organisation's ledger, MIS or warehouse) gets a broker user
of its own, `consumer-<name>` (`provision_consumer`, `partnership-ops topology consumer-user NAME`),
with least privilege: it may configure, bind (write) and read only queues named
`consumer.<name>.*`, read (bind its queues to, never publish to) the producers' event exchanges
`<p>.events`, and read the archive streams `<p>.events.archive`. It cannot publish anywhere, nor
touch a service's queues, exchanges or anything else.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterable, Mapping

from shared import broker_addresses

# Re-exported: the provisioning and its callers speak the services' own names.
from shared.topology import (  # noqa: F401
    archive_name, dead_letter_exchange, dead_letter_queue_name, events_exchange, handler_queue_arguments,
    handler_queue_name, requeue_exchange, retry_name, routing_key, rpc_queue_arguments, service_of_queue)

ARCHIVE_MAX_AGE = "13M"
# Replicas each quorum queue and archive stream should have on a cluster (fewer on a smaller one).
# RabbitMQ places them on every node the cluster has when the queue is declared; no queue argument
# pins the number, because nameko re-declares handler queues on every connect and an argument the
# existing queues lack would make that fail with PRECONDITION_FAILED (checked on 3.10).
REPLICATION_FACTOR = 3
POLICY_PRIORITY = 10
RPC_EXCHANGE = "nameko-rpc"


# -- what the code declares -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Handler:
    source: str
    event_type: str
    method: str
    queue: str
    version: int = 1  # the payload version it reads: its queue is bound to `<event_type>.v<version>`

    @property
    def routing_key(self) -> str:
        return routing_key(self.event_type, self.version)


@dataclasses.dataclass(frozen=True)
class ServiceTopology:
    """What one service needs of the broker: its handlers, and whether it serves RPC."""

    service: str
    handlers: tuple[Handler, ...]
    serves_rpc: bool = False

    @property
    def sources(self) -> list[str]:
        return sorted({h.source for h in self.handlers})


def permissions_of(topology: ServiceTopology) -> dict[str, str]:
    """Least-privilege permission regexes of a service's broker user (see the module docstring)."""
    s = re.escape(topology.service)
    own_queues = f"evt-.*--{s}\\..*"
    rpc = [re.escape(RPC_EXCHANGE), f"rpc-{s}"] if topology.serves_rpc else []
    configure = [own_queues, *rpc]
    write = [own_queues, f"{s}\\.events", f"{s}\\.retry\\..*", f"{s}\\.dead-letter", f"{s}\\.requeue", *rpc]
    read = [own_queues, *(re.escape(events_exchange(src)) for src in topology.sources), *rpc]
    return {name: "^(" + "|".join(parts) + ")$" for name, parts in
            (("configure", configure), ("write", write), ("read", read))}


CONSUMER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def consumer_user(name: str) -> str:
    """The broker user of external consumer `name`."""
    return f"consumer-{name}"


def consumer_queue_prefix(name: str) -> str:
    """Every queue external consumer `name` may declare starts with this."""
    return f"consumer.{name}."


def consumer_permissions(name: str, producers: Iterable[str]) -> dict[str, str]:
    """Least-privilege permission regexes of an external consumer's broker user (module docstring)."""
    if not CONSUMER_NAME.match(name or ""):
        raise ValueError(f"consumer name {name!r}: lowercase letters, digits and '-', at most 40, "
                         "starting with a letter or digit")
    producers = sorted(set(producers))
    if not producers:
        raise ValueError("a consumer needs at least one producer to read")
    own = re.escape(consumer_queue_prefix(name)) + ".*"
    read = [own, *(re.escape(events_exchange(p)) for p in producers), *(re.escape(archive_name(p)) for p in producers)]
    return {"configure": f"^({own})$", "write": f"^({own})$", "read": "^(" + "|".join(read) + ")$"}


def provision_consumer(management: "Management", name: str, *, vhost: str, password: str,
                       producers: Iterable[str]) -> dict[str, Any]:
    """Create (or reset the password of) external consumer `name`'s broker user on `vhost`, with
    `consumer_permissions`; idempotent. Returns the user, its queue prefix and permissions."""
    permissions = consumer_permissions(name, producers)
    if not password:
        raise TopologyError(f"no password given for broker user {consumer_user(name)}")
    user = urllib.parse.quote(consumer_user(name), safe="")
    management.request("PUT", f"/api/users/{user}", {"password": password, "tags": ""})
    management.request("PUT", f"/api/permissions/{_vhost_path(vhost)}/{user}", permissions)
    return {"user": consumer_user(name), "vhost": vhost, "queue_prefix": consumer_queue_prefix(name),
            **permissions}


def definitions(topologies: Iterable[ServiceTopology], *, delivery_limit: int, retry_delays_ms: list[int],
                archive_max_age: str = ARCHIVE_MAX_AGE, user_prefix: str = "") -> dict[str, Any]:
    """A RabbitMQ definitions document (vhost-independent: `apply()` names the vhost) for these services:
    exchanges, queues, bindings, policies, and the permissions of one user per service
    (`<user_prefix><service>`; users themselves, with their passwords, are created by `apply()`)."""
    exchanges: dict[str, dict] = {}
    queues: dict[str, dict] = {}
    bindings: list[dict] = []
    policies: list[dict] = []
    permissions: list[dict] = []

    def exchange(name: str, kind: str) -> None:
        exchanges[name] = {"name": name, "type": kind, "durable": True, "auto_delete": False, "internal": False,
                           "arguments": {}}

    def queue(name: str, arguments: dict) -> None:
        queues[name] = {"name": name, "durable": True, "auto_delete": False, "arguments": arguments}

    def bind(source: str, destination: str, routing_key: str) -> None:
        bindings.append({"source": source, "destination": destination, "destination_type": "queue",
                         "routing_key": routing_key, "arguments": {}})

    def policy(name: str, queue_name: str, definition: dict) -> None:
        policies.append({"name": name, "pattern": f"^{re.escape(queue_name)}$", "apply-to": "queues",
                         "priority": POLICY_PRIORITY, "definition": definition})

    at_least_once = {"dead-letter-strategy": "at-least-once", "overflow": "reject-publish"}
    topologies = sorted(topologies, key=lambda t: t.service)
    for topology in topologies:
        service = topology.service
        exchange(events_exchange(service), "topic")
        queue(archive_name(service), {"x-queue-type": "stream"})
        bind(events_exchange(service), archive_name(service), "#")
        policy(f"archive.{service}", archive_name(service), {"max-age": archive_max_age})
        if topology.serves_rpc:
            exchange(RPC_EXCHANGE, "topic")
            queue(f"rpc-{service}", rpc_queue_arguments())
            bind(RPC_EXCHANGE, f"rpc-{service}", f"{service}.*")
        if topology.handlers:
            exchange(dead_letter_exchange(service), "direct")
            exchange(requeue_exchange(service), "direct")
            for delay in retry_delays_ms:
                name = retry_name(service, delay)
                exchange(name, "fanout")
                queue(name, {"x-queue-type": "quorum"})
                bind(name, name, "")
                policy(name, name, {"message-ttl": int(delay), "dead-letter-exchange": requeue_exchange(service),
                                    **at_least_once})
        for handler in topology.handlers:
            dead = dead_letter_queue_name(handler.queue)
            queue(handler.queue, handler_queue_arguments())
            queue(dead, {"x-queue-type": "quorum"})
            bind(events_exchange(handler.source), handler.queue, handler.routing_key)
            bind(requeue_exchange(service), handler.queue, handler.queue)
            bind(dead_letter_exchange(service), dead, dead)
            policy(handler.queue, handler.queue, {
                "delivery-limit": int(delivery_limit), "dead-letter-exchange": dead_letter_exchange(service),
                "dead-letter-routing-key": dead, **at_least_once})
        permissions.append({"user": f"{user_prefix}{service}", **permissions_of(topology)})
    # A handler's source may be a producer that is not among these services (a partial deployment):
    # its exchange must exist for the binding.
    for topology in topologies:
        for source in topology.sources:
            if events_exchange(source) not in exchanges:
                exchange(events_exchange(source), "topic")
    return {
        "exchanges": sorted(exchanges.values(), key=lambda e: e["name"]),
        "queues": sorted(queues.values(), key=lambda q: q["name"]),
        "bindings": sorted(bindings, key=lambda b: (b["source"], b["destination"], b["routing_key"])),
        "policies": sorted(policies, key=lambda p: p["name"]),
        "permissions": permissions,
    }


# -- the broker's management API -----------------------------------------------------------------
class TopologyError(Exception):
    """The broker refused a definition, or its management API could not be reached."""


IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "HEAD"})


@dataclasses.dataclass(frozen=True)
class Management:
    """RabbitMQ's management HTTP API (`http://host:15672`) with an administrator's credentials.

    `url` may list the nodes of a cluster, separated by `;` (as `AMQP_URI` does): a request goes to
    the first node that answers, so the tooling works while one node is down. A node that answers
    with an HTTP error has answered: its error is the request's (never retried on another node)."""

    url: str
    username: str
    password: str
    timeout: float = 30.0
    attempts: int = 3

    @classmethod
    def for_amqp_uri(cls, amqp_uri: str, *, port: int = 15672, url: str | None = None,
                     timeout: float = 30.0) -> "Management":
        """The management API of the broker an (administrator's) AMQP URI names, same credentials:
        for a cluster's list of URIs, port `port` of each of its hosts, in the same order."""
        addresses = broker_addresses.uris(amqp_uri)
        parsed = urllib.parse.urlparse(addresses[0])
        hosts = dict.fromkeys(urllib.parse.urlparse(a).hostname or "127.0.0.1" for a in addresses)
        return cls(url or broker_addresses.join([f"http://{host}:{port}" for host in hosts]),
                   urllib.parse.unquote(parsed.username or "guest"), urllib.parse.unquote(parsed.password or "guest"),
                   timeout)

    @property
    def urls(self) -> list[str]:
        return broker_addresses.uris(self.url)

    def request(self, method: str, path: str, body: Any = None, *, idempotent: bool | None = None) -> Any:
        """One call, to the first node that answers; `idempotent` (by default: the method is GET, PUT,
        DELETE or HEAD) lets a round in which no node answered be tried again."""
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        data = json.dumps(body).encode() if body is not None else None
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        # A connection the management listener dropped, reset or let time out (it does, under load)
        # moves on to the next node of a cluster; a round in which none answered is tried again for an
        # idempotent call, a bounded number of times. An HTTP answer is final.
        for attempt in range(1, self.attempts + 1):
            unreachable = []
            for url in self.urls:
                request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
                request.add_header("Authorization", f"Basic {token}")
                request.add_header("Content-Type", "application/json")
                try:
                    with urllib.request.urlopen(request, timeout=self.timeout) as response:
                        raw = response.read()
                except urllib.error.HTTPError as exc:
                    detail = exc.read().decode(errors="replace")[:500]
                    raise TopologyError(f"{method} {path}: HTTP {exc.code} {detail}") from None
                except OSError as exc:
                    unreachable.append(f"{url} ({exc})")
                    continue  # the next node of the cluster, if any
                return json.loads(raw) if raw else None
            if attempt == self.attempts or not idempotent:
                raise TopologyError(f"{method} {path}: management API at {'; '.join(unreachable)} not reachable "
                                    f"({attempt} attempt{'s' if attempt > 1 else ''})")
            time.sleep(0.5 * attempt)
        raise TopologyError(f"{method} {path}: no attempt made")  # pragma: no cover - attempts >= 1


def _vhost_path(vhost: str) -> str:
    return urllib.parse.quote(vhost, safe="")


def apply(management: Management, document: Mapping[str, Any], *, vhost: str,
          passwords: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Apply a definitions document to `vhost` (created if missing); idempotent.

    Users named in its permissions are created (or their password reset) from `passwords`
    (user -> password); a user with no password given must already exist. Returns what was
    applied, by kind."""
    passwords = dict(passwords or {})
    v = _vhost_path(vhost)
    management.request("PUT", f"/api/vhosts/{v}", {})
    users = [p["user"] for p in document.get("permissions", [])]
    existing = {u["name"] for u in management.request("GET", "/api/users") or []}
    missing = [u for u in users if u not in existing and u not in passwords]
    if missing:
        raise TopologyError(f"no password given for new broker users {missing} "
                            "(set PARTNERSHIP_AMQP_PASSWORD_<SERVICE> or --passwords-file)")
    for user in users:
        if user in passwords:
            management.request("PUT", f"/api/users/{urllib.parse.quote(user, safe='')}",
                               {"password": passwords[user], "tags": ""})
    body = {key: document.get(key, []) for key in ("exchanges", "queues", "bindings", "policies")}
    # Importing definitions creates or overwrites each one: safe to repeat.
    management.request("POST", f"/api/definitions/{v}", body, idempotent=True)
    for permission in document.get("permissions", []):
        management.request("PUT", f"/api/permissions/{v}/{urllib.parse.quote(permission['user'], safe='')}",
                           {k: permission[k] for k in ("configure", "write", "read")})
    return {"vhost": vhost, "exchanges": len(body["exchanges"]), "queues": len(body["queues"]),
            "bindings": len(body["bindings"]), "policies": len(body["policies"]), "users": users}


def check(management: Management, document: Mapping[str, Any], *, vhost: str) -> list[str]:
    """What the broker's `vhost` lacks or holds differently from the document (empty when it matches)."""
    v = _vhost_path(vhost)
    try:
        held = management.request("GET", f"/api/definitions/{v}")
    except TopologyError as exc:
        return [str(exc)]
    problems: list[str] = []

    def index(items, key):
        return {key(item): item for item in items or []}

    held_exchanges = index(held.get("exchanges"), lambda e: e["name"])
    for e in document.get("exchanges", []):
        found = held_exchanges.get(e["name"])
        if found is None:
            problems.append(f"exchange {e['name']} missing")
        elif found.get("type") != e["type"] or not found.get("durable"):
            problems.append(f"exchange {e['name']} is {found.get('type')} (durable={found.get('durable')}), "
                            f"expected durable {e['type']}")
    held_queues = index(held.get("queues"), lambda q: q["name"])
    for q in document.get("queues", []):
        found = held_queues.get(q["name"])
        if found is None:
            problems.append(f"queue {q['name']} missing")
        elif (found.get("arguments") or {}) != q["arguments"]:
            problems.append(f"queue {q['name']} has arguments {found.get('arguments')}, expected {q['arguments']}")
    held_bindings = {(b["source"], b["destination"], b["routing_key"]) for b in held.get("bindings") or []}
    for b in document.get("bindings", []):
        if (b["source"], b["destination"], b["routing_key"]) not in held_bindings:
            problems.append(f"binding {b['source']} -[{b['routing_key']}]-> {b['destination']} missing")
    held_policies = index(held.get("policies"), lambda p: p["name"])
    for p in document.get("policies", []):
        found = held_policies.get(p["name"])
        if found is None:
            problems.append(f"policy {p['name']} missing")
        elif (found.get("pattern"), found.get("definition"), found.get("apply-to")) != (
                p["pattern"], p["definition"], p["apply-to"]):
            problems.append(f"policy {p['name']} is {found.get('definition')}, expected {p['definition']}")
    try:
        held_permissions = index(management.request("GET", f"/api/vhosts/{v}/permissions"), lambda p: p["user"])
    except TopologyError as exc:
        return problems + [str(exc)]
    for p in document.get("permissions", []):
        found = held_permissions.get(p["user"])
        expected = {k: p[k] for k in ("configure", "write", "read")}
        if found is None:
            problems.append(f"user {p['user']} has no permissions on {vhost}")
        elif {k: found.get(k) for k in expected} != expected:
            problems.append(f"user {p['user']} permissions {({k: found.get(k) for k in expected})}, "
                            f"expected {expected}")
    return problems + replication_problems(management, document, vhost=vhost)


def replication_problems(management: Management, document: Mapping[str, Any], *, vhost: str) -> list[str]:
    """Quorum queues and streams of the document with fewer replicas than REPLICATION_FACTOR (or than the
    cluster's nodes, if fewer): a queue declared before a node joined has none there until
    `rabbitmq-queues grow <node> all` adds one."""
    try:
        nodes = [n for n in management.request("GET", "/api/nodes") or [] if n.get("running")]
        held = {q["name"]: q for q in management.request("GET", f"/api/queues/{_vhost_path(vhost)}") or []}
    except TopologyError as exc:
        return [str(exc)]
    wanted = min(REPLICATION_FACTOR, max(1, len(nodes)))
    problems = []
    for q in document.get("queues", []):
        if q["arguments"].get("x-queue-type") not in ("quorum", "stream") or q["name"] not in held:
            continue
        members = held[q["name"]].get("members")
        if members is None:
            # Not reported yet: the management API lists a new stream's members only once its metrics are
            # first collected (about 5 s after the declaration here); unknown is not fewer.
            continue
        if len(members) < wanted:
            problems.append(f"queue {q['name']} has {len(members)} replica(s), expected {wanted} "
                            "(rabbitmq-queues grow <node> all)")
    return problems


def amqp_uri_for(amqp_uri: str, user: str, password: str) -> str:
    """The same broker (every node of a cluster's list) and vhost as `amqp_uri`, with another user's
    credentials."""
    return broker_addresses.with_credentials(amqp_uri, user, password)


def pika_parameters(amqp_uri: str) -> list:
    """pika's connection parameters for every node `amqp_uri` lists: `pika.BlockingConnection` takes
    the list and connects to the first node that answers."""
    import pika

    return [pika.URLParameters(uri) for uri in broker_addresses.uris(amqp_uri)]
