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

Queues on the new broker are declared here, before any shovel starts, with the
arguments the new instance will use (quorum, delivery limit, dead-letter
routing), because a shovel would otherwise declare a plain classic queue that
the service could then not consume (PRECONDITION_FAILED). RabbitMQ 3.10's
shovel validation rejects `x-dead-letter-routing-key` in `src/dest-queue-args`,
so the definitions carry no queue arguments: the queues exist already and a
declaration without arguments of an existing queue succeeds.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Queue

from shared.topology import (dead_letter_queue, dead_letter_queue_name, declare_handler_topology,
                             handler_queue_arguments, handler_queue_name, retry_exchange_and_queue, retry_name)

PLUGINS = ("rabbitmq_shovel", "rabbitmq_shovel_management")


@dataclasses.dataclass(frozen=True)
class Handler:
    source: str
    event_type: str
    method: str
    queue: str


def service_class(service: str):
    """`billing` -> its nameko class (`billing.entrypoints.service`, the class whose `name` is `billing`);
    `module:Class` is taken as given."""
    if ":" in service:
        module_name, _, class_name = service.partition(":")
        return getattr(importlib.import_module(module_name), class_name)
    module = importlib.import_module(f"{service}.entrypoints.service")
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
                                                        cls.name, method_name)))
    return sorted(found, key=lambda h: h.queue)


def vhost_of(uri: str) -> str:
    path = urllib.parse.urlparse(uri).path
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
    the moved service's queues, exchanges and bindings there, and the shovels."""
    vhost = shovel_vhost
    exchanges, queues, bindings = {}, {}, []

    def exchange(name, type_="topic"):
        exchanges[name] = {"name": name, "vhost": vhost, "type": type_, "durable": True, "auto_delete": False,
                           "internal": False, "arguments": {}}

    def queue(name, arguments):
        queues[name] = {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": arguments}

    handlers = handlers_of(service)
    for handler in handlers:
        exchange(f"{handler.source}.events")
        queue(handler.queue, handler_queue_arguments(handler.queue, delivery_limit))
        queue(dead_letter_queue_name(handler.queue), dead_letter_queue(handler.queue).queue_arguments)
        bindings.append({"source": f"{handler.source}.events", "vhost": vhost, "destination": handler.queue,
                         "destination_type": "queue", "routing_key": handler.event_type, "arguments": {}})
    for delay in retry_delays_ms if handlers else ():
        name = retry_name(service, delay)
        exchange(name, "fanout")
        queue(name, retry_exchange_and_queue(service, delay)[1].queue_arguments)
        bindings.append({"source": name, "vhost": vhost, "destination": name, "destination_type": "queue",
                         "routing_key": "", "arguments": {}})
    exchange(f"{service}.events")
    queue(outbound_queue(service, label), {"x-queue-type": "quorum"})
    bindings.append({"source": f"{service}.events", "vhost": vhost, "destination": outbound_queue(service, label),
                     "destination_type": "queue", "routing_key": "#", "arguments": {}})
    return {
        "exchanges": sorted(exchanges.values(), key=lambda e: e["name"]),
        "queues": sorted(queues.values(), key=lambda q: q["name"]),
        "bindings": bindings,
        "parameters": [{"vhost": vhost, "component": "shovel", "name": s["name"], "value": s["value"]}
                       for s in plan(service, old_uri=old_uri, new_uri=new_uri, label=label)],
    }


# -- applying -------------------------------------------------------------------------------------
def declare(service: str, *, old_amqp: str, new_amqp: str, label: str, delivery_limit: int,
            retry_delays_ms: list[int]) -> dict:
    """Declare what the shovels need before they start (idempotent); `*_amqp` as this host reaches them."""
    handlers = handlers_of(service)
    with Connection(new_amqp, connect_timeout=5) as connection:
        channel = connection.default_channel
        for handler in handlers:
            declare_handler_topology(channel, source=handler.source, event_type=handler.event_type,
                                     service=service, method=handler.method, delivery_limit=delivery_limit,
                                     retry_delays_ms=retry_delays_ms)
        events = Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)
        events(channel).declare()
        Queue(outbound_queue(service, label), exchange=events, routing_key="#", durable=True, auto_delete=False,
              queue_arguments={"x-queue-type": "quorum"})(channel).declare()
    from shared.handover import queue_consumers

    on_old = queue_consumers(old_amqp, [h.queue for h in handlers])
    missing_on_old = [queue for queue, state in on_old.items() if state.get("missing")]
    with Connection(old_amqp, connect_timeout=5) as connection:
        channel = connection.default_channel
        Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)(channel).declare()
        # A handler never started on the old broker gets its queue there now, so
        # events published from now on are kept for the new instance.
        for handler in handlers:
            if handler.queue in missing_on_old:
                declare_handler_topology(channel, source=handler.source, event_type=handler.event_type,
                                         service=service, method=handler.method, delivery_limit=delivery_limit,
                                         retry_delays_ms=retry_delays_ms)
    return {"declared_on_new": [h.queue for h in handlers] + [outbound_queue(service, label)],
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
