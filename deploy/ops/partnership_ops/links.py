"""Linking two operators' brokers with RabbitMQ's shovel plugin, for one handed-over service.

When a function moves to an operator with its own RabbitMQ ("the new broker"),
the other functions keep publishing on the old one. For the moved service
`<svc>` this module plans, declares and applies dynamic shovels, all defined on
the new broker (the new operator owns its links; the old broker only grants a
user):

- **inbound, one per handler of `<svc>`**: from the handler's own durable quorum
  queue on the old broker (`evt-<source>-<type>--<svc>.<method>`, bound there
  to `<source>.events` since the old instance first started) to the queue of
  the same name on the new broker. That queue on the old broker kept
  collecting while nothing consumed it, so the backlog of the gap comes first
  and in order, and every later event follows through the same path. Retry
  copies that expire on the old broker return to that queue and follow too;
  dead letters left there can still be redelivered there (`partnership-ops
  redeliver` on the old broker) and then follow.
- **outbound, one for `<svc>.events`**: a durable quorum queue
  `link.<svc>.events.<label>` on the new broker, bound to `<svc>.events` with
  `#`, shovelled to the exchange `<svc>.events` on the old broker with the
  routing key each event had, so consumers there (e.g. billing) receive it.

Shovels use `ack-mode: on-confirm`: a message leaves its source queue only
after the destination broker confirmed it, so a link that breaks loses
nothing; it may deliver twice, which the consumers' inboxes absorb.

The moved service's topology on the new broker (its queues, policies, exchanges,
archive and broker user's permissions: `partnership_ops.topology`) is provisioned before any
shovel starts, because a shovel would otherwise declare a plain classic queue that
the service could then not consume (PRECONDITION_FAILED). The shovel definitions
carry no queue arguments: the queues exist already and a declaration without
arguments of an existing queue succeeds.
"""
from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

from partnership_ops import topology
from partnership_ops.topology import Handler, ServiceTopology
from shared.topology import handler_queue_name

PLUGINS = ("rabbitmq_shovel", "rabbitmq_shovel_management")


def service_class(service: str):
    """`billing` -> its nameko class (`billing.entrypoints.service`, the class whose `name` is `billing`);
    `module:Class` is taken as given. A service not installed here is a `LookupError` naming it (an
    image holds one service: read the others' topology from a definitions file instead)."""
    module_name, _, class_name = service.partition(":") if ":" in service else (
        f"{service}.entrypoints.service", "", "")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise LookupError(f"no installed service {service!r} ({exc})") from exc
    if class_name:
        return getattr(module, class_name)
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ == module.__name__ and getattr(cls, "name", None) == service:
            return cls
    raise LookupError(f"{module.__name__} has no nameko service class named {service!r}")


def handlers_of(service: str) -> list[Handler]:
    from shared.consumer import ReliableEventHandler

    cls = service_class(service)
    found = []
    for method_name, method in inspect.getmembers(cls, inspect.isfunction):
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, ReliableEventHandler):
                found.append(Handler(entrypoint.source_service, entrypoint.event_type, method_name,
                                     handler_queue_name(entrypoint.source_service, entrypoint.event_type,
                                                        cls.name, method_name), entrypoint.version))
    return sorted(found, key=lambda h: h.queue)


def topology_of(service: str) -> ServiceTopology:
    """What `service` (a name, or `module:Class`) needs of the broker, read from its class."""
    from nameko.rpc import Rpc

    cls = service_class(service)
    serves_rpc = any(isinstance(entrypoint, Rpc) for _, method in inspect.getmembers(cls, inspect.isfunction)
                     for entrypoint in getattr(method, "nameko_entrypoints", ()))
    return ServiceTopology(cls.name, tuple(handlers_of(service)), serves_rpc)


def vhost_of(uri: str) -> str:
    """The vhost of an AMQP URI (of the first, for a cluster's list: every node has the same)."""
    path = urllib.parse.urlparse(uri.split(";", 1)[0].strip()).path
    return urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"


def outbound_queue(service: str, label: str) -> str:
    return f"link.{service}.events.{label}"


def plan(service: str, *, old_uri: str, new_uri: str, label: str) -> list[dict[str, Any]]:
    """The shovels (name and definition) linking `service`, moved to the new broker, with the old one.

    `old_uri` and `new_uri` are as the new broker reaches them (the shovels run there).
    """
    common = {"ack-mode": "on-confirm", "reconnect-delay": 5, "src-protocol": "amqp091",
              "dest-protocol": "amqp091", "src-delete-after": "never", "src-prefetch-count": 200}
    shovels = []
    for handler in handlers_of(service):
        shovels.append({"name": f"handover.{handler.queue}", "value": {
            **common, "src-uri": old_uri, "src-queue": handler.queue, "dest-uri": new_uri,
            "dest-queue": handler.queue}})
    shovels.append({"name": f"link.{service}.events.{label}", "value": {
        **common, "src-uri": new_uri, "src-queue": outbound_queue(service, label), "dest-uri": old_uri,
        "dest-exchange": f"{service}.events"}})
    return shovels


def definitions(service: str, *, old_uri: str, new_uri: str, label: str, shovel_vhost: str,
                delivery_limit: int, retry_delays_ms: list[int]) -> dict:
    """A RabbitMQ definitions document (`rabbitmqctl import_definitions`) for the new broker:
    the moved service's provisioned topology (`partnership_ops.topology`), the outbound queue and the shovels."""
    vhost = shovel_vhost
    document = topology.definitions([topology_of(service)], delivery_limit=delivery_limit,
                                    retry_delays_ms=retry_delays_ms)
    document["queues"].append({"name": outbound_queue(service, label), "durable": True, "auto_delete": False,
                               "arguments": {"x-queue-type": "quorum"}})
    document["bindings"].append({"source": f"{service}.events", "destination": outbound_queue(service, label),
                                 "destination_type": "queue", "routing_key": "#", "arguments": {}})
    for kind in ("exchanges", "queues", "bindings", "policies"):
        for item in document[kind]:
            item["vhost"] = vhost
    document["permissions"] = [{**p, "vhost": vhost} for p in document["permissions"]]
    document["parameters"] = [{"vhost": vhost, "component": "shovel", "name": s["name"], "value": s["value"]}
                              for s in plan(service, old_uri=old_uri, new_uri=new_uri, label=label)]
    return document


# -- applying -------------------------------------------------------------------------------------
def declare(service: str, *, old_amqp: str, new_amqp: str, label: str, delivery_limit: int,
            retry_delays_ms: list[int], passwords: dict[str, str] | None = None) -> dict:
    """Provision what the shovels need before they start (idempotent), through each broker's management
    API (reached at the AMQP URI's host, port 15672, with its credentials); `*_amqp` as this host
    reaches them. The moved service's full topology goes to the new broker; on the old one, its
    handler queues (so events published from now on are kept for the new instance)."""
    from partnership_ops.handover import queue_consumers

    moved = topology_of(service)
    vhost_new = vhost_of(new_amqp)
    document = topology.definitions([moved], delivery_limit=delivery_limit, retry_delays_ms=retry_delays_ms)
    document["queues"].append({"name": outbound_queue(service, label), "durable": True, "auto_delete": False,
                               "arguments": {"x-queue-type": "quorum"}})
    document["bindings"].append({"source": f"{service}.events", "destination": outbound_queue(service, label),
                                 "destination_type": "queue", "routing_key": "#", "arguments": {}})
    new_management = topology.Management.for_amqp_uri(new_amqp)
    existing = {u["name"] for u in new_management.request("GET", "/api/users") or []}
    if service not in existing and not (passwords or {}).get(service):
        document["permissions"] = []  # the new operator creates its service's user with its own password
    topology.apply(new_management, document, vhost=vhost_new, passwords=passwords)
    on_old = queue_consumers(old_amqp, [h.queue for h in moved.handlers])
    missing_on_old = [queue for queue, state in on_old.items() if state.get("missing")]
    if missing_on_old:
        # A handler never started on the old broker gets its queue there now, with the old
        # broker's own topology for it (policies, dead-letter and retry paths).
        old_document = topology.definitions([moved], delivery_limit=delivery_limit, retry_delays_ms=retry_delays_ms)
        old_document["permissions"] = []
        topology.apply(topology.Management.for_amqp_uri(old_amqp), old_document, vhost=vhost_of(old_amqp))
    return {"declared_on_new": [h.queue for h in moved.handlers] + [outbound_queue(service, label)],
            "declared_on_old": missing_on_old}


def rabbitmqctl(*args: str, executable: str = "rabbitmqctl", timeout: float = 60) -> str:
    result = subprocess.run([executable, *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{executable} {' '.join(args[:3])} ... failed: {result.stderr.strip()}")
    return result.stdout


def enable_plugin(executable: str = "rabbitmq-plugins") -> str:
    """Enable the shovel plugins (does not restart the broker)."""
    result = subprocess.run([executable, "enable", *PLUGINS], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{executable} enable failed: {result.stderr.strip()}")
    return result.stdout


def apply(shovels: list[dict], *, vhost: str, executable: str = "rabbitmqctl") -> list[str]:
    names = []
    for shovel in shovels:
        rabbitmqctl("set_parameter", "-p", vhost, "shovel", shovel["name"], json.dumps(shovel["value"]),
                    executable=executable)
        names.append(shovel["name"])
    return names


def status(vhost: str, executable: str = "rabbitmqctl") -> dict[str, str]:
    out = rabbitmqctl("shovel_status", "-p", vhost, "--formatter", "json", executable=executable)
    try:
        rows = json.loads(out)
    except ValueError:
        return {}
    return {row["name"]: row.get("state", "unknown") for row in rows if row.get("vhost", vhost) == vhost}


def wait_running(names: list[str], *, vhost: str, timeout: float = 60.0, executable: str = "rabbitmqctl") -> dict:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = status(vhost, executable)
        if all(states.get(name) == "running" for name in names):
            return {name: states[name] for name in names}
        time.sleep(0.5)
    raise TimeoutError(f"shovels not running after {timeout:.0f}s: { {n: states.get(n) for n in names} }")


def write_definitions(path: str | Path, document: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
