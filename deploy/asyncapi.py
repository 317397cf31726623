"""The AsyncAPI 3.0 catalogue of every event of the system, generated from the code.

`docs/asyncapi/asyncapi.json` is built from the same sources as the rest of the plumbing, so it
cannot drift from them:

- the messages: every event each service publishes (`<service>.messages.published`), with the
  consumers' JSON Schema of its envelope (`deploy.contracts`, the files in
  `services/<service>/contracts/`), its example, and its AMQP properties and headers as
  `shared.envelope.amqp_properties` sets them on that example;
- the channels: each producer's topic exchange and routing key (one channel per routing key), each
  subscriber's queue and the archive stream of each producer, with their bindings, dead-letter
  queues, delivery limits and retention, read from the provisioned topology (`deploy.topology`,
  the document `deploy/rabbitmq/definitions.json` is written from);
- the operations: each producer sending, each handler receiving from its queue, the archive read.

`docs/asyncapi/index.html` is a static page rendered from that document (no script, no fetch).

    python -m deploy.contracts          # (re)writes both, with the contracts
    python -m deploy.contracts --check  # fails when either is stale (make lint)

`make lint` also validates the document with the AsyncAPI project's parser
(`deploy/asyncapi-tools/validate.cjs`, `@asyncapi/parser` pinned there).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Iterable

from deploy import contracts
from deploy import topology as deploy_topology
from shared import topology as names
from shared.envelope import amqp_properties

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "docs" / "asyncapi"
DOCUMENT = "asyncapi.json"
PAGE = "index.html"
ASYNCAPI_VERSION = "3.0.0"
# The version of this catalogue's layout; each message carries its own event version.
CATALOGUE_VERSION = "1.0.0"
AMQP_BINDING_VERSION = "0.3.0"
CLOUDEVENTS_PREFIXES = ("cloudEvents:", "cloudEvents_")

HEADER_MEANINGS = {
    "x-event-id": "The envelope's `event_id` (also the AMQP `message_id`): de-duplicate on it.",
    "x-event-type": "The envelope's `type`.",
    "x-event-version": "The envelope's `version`: the payload schema's version.",
    "x-producer": "The envelope's `producer`: the service that published it.",
    "x-operator": "The envelope's `operator`: the organisation running the producer.",
    "x-correlation-id": "The envelope's `correlation_id`: shared by every event of one piece of work.",
    "x-causation-id": "The envelope's `causation_id`: the event that caused this one (empty string if none).",
    "x-occurred-at": "The envelope's `occurred_at` (UTC, ISO 8601).",
    "x-aggregate": "The envelope's `aggregate`: what the event is about.",
    "x-sequence": "The envelope's `sequence`: the aggregate's strictly increasing number.",
}


def routing_key(event_type: str, version: int) -> str:
    """The routing key an event is published with: `shared.topology.routing_key` where the code
    defines one (routing by version), else the event type (routing by type alone)."""
    by_version = getattr(names, "routing_key", None)
    return by_version(event_type, version) if by_version else event_type


def topic_matches(pattern: str, key: str) -> bool:
    """Whether a topic exchange binding `pattern` (`*` one word, `#` zero or more) matches `key`."""
    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and (p[0] == "*" or p[0] == k[0]) and match(p[1:], k[1:])
    return match(pattern.split("."), key.split("."))


def message_id(producer: str, event_type: str, version: int) -> str:
    return f"{producer}.{event_type}.v{version}"


def _schema_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, (dict, list)):
        return "object" if isinstance(value, dict) else "array"
    return "string"


def headers_schema(producer: str, event_type: str, version: int, example: dict) -> tuple[dict, dict]:
    """The AMQP application headers of one event (schema, example): read off the headers
    `shared.envelope` sets on its example, so a header added there appears here."""
    headers = amqp_properties(example)["application_headers"]
    fixed = {event_type: "this event's type", version: "this event's version", producer: "its producer"}
    properties = {}
    for name, value in headers.items():
        prop: dict[str, Any] = {"type": _schema_type(value)}
        if name in HEADER_MEANINGS:
            prop["description"] = HEADER_MEANINGS[name]
        elif name.startswith(CLOUDEVENTS_PREFIXES):
            attribute = name.split(":", 1)[-1] if ":" in name else name.split("_", 1)[-1]
            prop["description"] = (f"CloudEvents attribute `{attribute}`, in the AMQP protocol binding's "
                                   "application-property form.")
        else:
            prop["description"] = "Set by the producer's envelope (`shared/shared/envelope.py`)."
        if name in ("x-event-type", "x-event-version", "x-producer"):
            prop["const"] = value
        prop["examples"] = [value]
        properties[name] = prop
    # Required: the headers set even on an envelope with nothing optional (no aggregate, sequence or cause).
    bare = {key: value for key, value in example.items() if key not in ("aggregate", "sequence")}
    always = amqp_properties({**bare, "causation_id": None})["application_headers"]
    schema = {"type": "object", "properties": properties, "required": [n for n in headers if n in always]}
    return schema, headers


def describe_age(max_age: str | None) -> str:
    """RabbitMQ's `max-age` (`13M`, `7D`, `12h`) in words."""
    units = {"Y": "years", "M": "months", "D": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    if not max_age or max_age[-1] not in units or not max_age[:-1].isdigit():
        return str(max_age)
    return f"{max_age[:-1]} {units[max_age[-1]]}"


def _payload_schema(envelope_schema: dict) -> dict:
    # The AsyncAPI schema format is JSON Schema draft-07 plus extras: the contract's own `$schema`
    # (2020-12, whose keywords it does not use) and `$id` are left to the contract file.
    return {key: value for key, value in envelope_schema.items() if key not in ("$schema", "$id")}


def _events() -> list[tuple[str, str, int, Any, dict]]:
    return [(service, event_type, version, schema, example)
            for service in contracts.SERVICES
            for event_type, version, schema, example in contracts.published_events(service)]


def _policy(definitions: dict, queue: str) -> dict:
    for policy in definitions["policies"]:
        if policy["pattern"] == f"^{re.escape(queue)}$":
            return policy["definition"]
    return {}


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the whole system (see the module docstring)."""
    definitions = deploy_topology.document()
    events = _events()
    queues = {q["name"]: q for q in definitions["queues"]}
    exchanges = {e["name"]: e for e in definitions["exchanges"]}

    messages: dict[str, Any] = {}
    # (exchange, routing key) -> [(message id, producer, type, version)]
    by_route: dict[tuple[str, str], list[tuple[str, str, str, int]]] = {}
    for producer, event_type, version, schema, example in events:
        mid = message_id(producer, event_type, version)
        envelope = contracts.example_envelope(producer, event_type, version, example)
        headers, example_headers = headers_schema(producer, event_type, version, envelope)
        properties = amqp_properties(envelope)
        contract = (f"services/{producer}/contracts/{contracts.schema_filename(event_type, version)}")
        messages[mid] = {
            "name": event_type,
            "title": f"{producer} {event_type} v{version}",
            "summary": contracts.describe(schema) or f"{event_type} v{version}",
            "description": (f"Published by `{producer}` to the topic exchange `{names.events_exchange(producer)}` "
                            f"with routing key `{routing_key(event_type, version)}`. The body is the envelope "
                            f"(JSON Schema: `{contract}`); ignore fields you do not know."),
            "contentType": properties["content_type"],
            "headers": headers,
            "payload": _payload_schema(contracts.envelope_json_schema(producer, event_type, version, schema)),
            "correlationId": {"description": "Shared by every event of one piece of work.",
                              "location": "$message.payload#/correlation_id"},
            "tags": [{"name": producer}],
            "bindings": {"amqp": {"contentEncoding": properties["content_encoding"],
                                  "messageType": properties["type"], "bindingVersion": AMQP_BINDING_VERSION}},
            "examples": [{"name": f"{event_type}-v{version}", "summary": f"An example {event_type} v{version}",
                          "headers": example_headers, "payload": envelope}],
        }
        by_route.setdefault((names.events_exchange(producer), routing_key(event_type, version)), []).append(
            (mid, producer, event_type, version))

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def exchange_binding(name: str) -> dict:
        exchange = exchanges.get(name, {"type": "topic", "durable": True, "auto_delete": False})
        return {"name": name, "type": exchange["type"], "durable": exchange["durable"],
                "autoDelete": exchange["auto_delete"], "vhost": "/"}

    def queue_binding(name: str) -> dict:
        queue = queues[name]
        return {"name": name, "durable": queue["durable"], "exclusive": False, "autoDelete": queue["auto_delete"],
                "vhost": "/"}

    def refs(channel: str, ids: Iterable[str]) -> list[dict]:
        return [{"$ref": f"#/channels/{channel}/messages/{mid}"} for mid in ids]

    for (exchange, key), routed in sorted(by_route.items()):
        producer = routed[0][1]
        channel_id = f"{exchange}.{key}"
        channels[channel_id] = {
            "address": key,
            "title": f"{exchange} / {key}",
            "description": (f"`{producer}`'s events with routing key `{key}` on its topic exchange `{exchange}`. "
                            "Bind a queue of your own to the exchange with this key to receive them."),
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"} for mid, *_ in routed},
            "tags": [{"name": producer}],
            "bindings": {"amqp": {"is": "routingKey", "exchange": exchange_binding(exchange),
                                  "bindingVersion": AMQP_BINDING_VERSION}},
        }
        operations[f"{producer}.send.{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "title": f"{producer} publishes {key}",
            "summary": "Relayed from the producer's outbox after commit: persistent, mandatory, confirmed.",
            "messages": refs(channel_id, (mid for mid, *_ in routed)),
            "tags": [{"name": producer}],
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP_BINDING_VERSION}},
        }

    def routed_to(queue: str) -> list[tuple[str, str, list[tuple[str, str, str, int]]]]:
        """(exchange, binding key, messages) of each events-exchange binding of `queue`."""
        found = []
        for binding in definitions["bindings"]:
            if binding["destination"] != queue or not binding["source"].endswith(".events"):
                continue
            routed = [message for (exchange, key), ms in sorted(by_route.items()) for message in ms
                      if exchange == binding["source"] and topic_matches(binding["routing_key"], key)]
            found.append((binding["source"], binding["routing_key"], routed))
        return found

    producers = sorted({producer for producer, *_ in events})
    archives = {names.archive_name(p) for p in producers}
    for queue in sorted(queues):
        bound = routed_to(queue)
        routed = [m for _, _, ms in bound for m in ms]
        if not routed:
            continue  # dead-letter and retry queues: internal, never bound to an events exchange
        policy = _policy(definitions, queue)
        topology_facts: dict[str, Any] = {
            "queueType": queues[queue]["arguments"].get("x-queue-type", "classic"),
            "boundTo": [{"exchange": exchange, "routingKey": key} for exchange, key, _ in bound],
        }
        tag = None
        if queue in archives:
            producer = routed[0][1]
            tag = producer
            topology_facts["maxAge"] = policy.get("max-age")
            description = (f"The archive of every event `{producer}` publishes: a RabbitMQ stream bound to "
                           f"`{names.events_exchange(producer)}` with `#`, kept {describe_age(policy.get('max-age'))} "
                           f"(policy `max-age` {policy.get('max-age')}). Read it with `x-stream-offset` (`first`, a timestamp or an "
                           "offset) to replay history; `partnership-ops tail` and `replay` read it.")
            operation_id = f"{producer}.archive.read"
            operation = {"title": f"Read {producer}'s archive",
                         "summary": "Replay history from the stream (prefetch and ack required by streams)."}
        else:
            subscriber = names.service_of_queue(queue)
            method = queue.split("--", 1)[1].split(".", 1)[1]
            tag = subscriber
            dead = names.dead_letter_queue_name(queue)
            topology_facts.update({"subscriber": subscriber, "handler": method, "deadLetterQueue": dead,
                                   "deliveryLimit": policy.get("delivery-limit")})
            description = (f"`{subscriber}`'s handler `{method}` reads this quorum queue, bound to "
                           + ", ".join(f"`{exchange}` with `{key}`" for exchange, key, _ in bound)
                           + f". After {policy.get('delivery-limit')} deliveries, or its retries, a message "
                             f"goes to `{dead}`.")
            operation_id = f"{subscriber}.{method}"
            operation = {"title": f"{subscriber} handles {', '.join(sorted({t for _, _, t, _ in routed}))}",
                         "summary": "Acked only after the handler's transaction (inbox + effect) commits."}
        channels[queue] = {
            "address": queue,
            "title": queue,
            "description": description,
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"} for mid, *_ in routed},
            "tags": [{"name": tag}],
            "bindings": {"amqp": {"is": "queue", "queue": queue_binding(queue),
                                  "bindingVersion": AMQP_BINDING_VERSION}},
            "x-topology": topology_facts,
        }
        operations[operation_id] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{queue}"},
            **operation,
            "messages": refs(queue, (mid for mid, *_ in routed)),
            "tags": [{"name": tag}],
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:partnership:events",
        "info": {
            "title": "School-improvement partnership: events",
            "version": CATALOGUE_VERSION,
            "description": (
                "Every event the four services (membership, catalogue, billing, scheduling) publish over "
                "RabbitMQ (AMQP 0.9.1): each producer's topic exchange and routing keys, the envelope and "
                "payload schema of every event, the queue of each subscribing handler and each producer's "
                "archive stream. Generated from the code by `python -m deploy.contracts`; do not edit. "
                "Compatibility policy, versions and deprecation: `docs/events.md`. Consumers ignore fields "
                "they do not know and de-duplicate on `event_id`; events arrive in any order (use "
                "`aggregate` and `sequence`)."),
            "tags": [{"name": p, "description": f"The {p} service"} for p in producers],
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "{host}:{port}",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "title": "The operator's RabbitMQ",
                "description": ("Each operator runs its own broker; ask it for the host, the virtual host and "
                                "a broker user of your own, allowed to declare and read your queues and to "
                                "bind them to the `<producer>.events` exchanges you read."),
                "variables": {"host": {"default": "127.0.0.1", "description": "The broker's host name."},
                              "port": {"default": "5672", "description": "The AMQP port."}},
                "security": [{"$ref": "#/components/securitySchemes/brokerUser"}],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {"brokerUser": {"type": "userPassword",
                                               "description": "A RabbitMQ user and password given by the operator."}},
        },
    }


# -- the page ------------------------------------------------------------------------------------
STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;background:#fafbfc}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem 4rem}
h1{font-size:1.7rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin-top:2rem}h4{margin:1.2rem 0 .3rem}
code{font:13px ui-monospace,Menlo,Consolas,monospace;background:#eef1f4;padding:0 .25rem;border-radius:3px}
pre{background:#0f1720;color:#e6edf3;padding:.8rem;overflow:auto;border-radius:6px;font-size:12.5px}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem;font-size:13.5px}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#eef1f4}section.message{background:#fff;border:1px solid #d0d7de;border-radius:6px;
padding:.2rem 1rem 1rem;margin:1rem 0}nav ul{columns:2}.muted{color:#57606a}details{margin:.4rem 0}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _md(text: str) -> str:
    """`code` spans of a description as <code>; everything escaped."""
    parts = str(text).split("`")
    return "".join(f"<code>{_e(p)}</code>" if i % 2 else _e(p) for i, p in enumerate(parts))


def _type_of(schema: dict) -> str:
    kinds = schema.get("type", "")
    text = " | ".join(kinds) if isinstance(kinds, list) else str(kinds)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        text = f"array of {_type_of(schema['items'])}"
    return text


def _rules(schema: dict) -> str:
    rules = []
    if "format" in schema:
        rules.append(f"format {schema['format']}")
    if "const" in schema:
        rules.append(f"always {json.dumps(schema['const'])}")
    if "enum" in schema:
        rules.append("one of " + ", ".join(json.dumps(v) for v in schema["enum"]))
    if "pattern" in schema:
        rules.append(f"pattern {schema['pattern']}")
    for key, word in (("minLength", "min length"), ("maxLength", "max length"), ("minimum", "min"),
                      ("maximum", "max"), ("minItems", "min items"), ("maxItems", "max items")):
        if key in schema:
            rules.append(f"{word} {schema[key]}")
    return "; ".join(rules)


def fields_of(schema: dict, prefix: str = "") -> list[tuple[str, dict, bool]]:
    """(dotted path, schema, required) of every field of an object schema, depth first."""
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        rows.append((path, prop, name in required))
        if "properties" in prop:
            rows += fields_of(prop, f"{path}.")
        items = prop.get("items")
        if isinstance(items, dict) and "properties" in items:
            rows += fields_of(items, f"{path}[].")
    return rows


def _field_table(schema: dict) -> str:
    rows = ["<table><tr><th>field</th><th>type</th><th>rules</th><th>required</th><th>meaning</th></tr>"]
    for path, prop, required in fields_of(schema):
        rows.append(f"<tr><td><code>{_e(path)}</code></td><td>{_e(_type_of(prop))}</td><td>{_e(_rules(prop))}</td>"
                    f"<td>{'yes' if required else 'no'}</td><td>{_md(prop.get('description', ''))}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def page(doc: dict[str, Any]) -> str:
    """A static HTML page of the catalogue: read in a browser, offline."""
    info = doc["info"]
    messages = doc["components"]["messages"]
    channels = doc["channels"]
    route_of = {}  # message id -> routing-key channel id
    readers: dict[str, list[str]] = {}  # message id -> queue channel ids
    for channel_id, channel in channels.items():
        for ref in channel["messages"].values():
            mid = ref["$ref"].rsplit("/", 1)[1]
            if channel["bindings"]["amqp"]["is"] == "routingKey":
                route_of[mid] = channel_id
            else:
                readers.setdefault(mid, []).append(channel_id)
    producers = [tag["name"] for tag in info["tags"]]
    server = doc["servers"]["broker"]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(info['title'])}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{_e(info['title'])}</h1>",
        f"<p class=\"muted\">AsyncAPI {_e(doc['asyncapi'])} catalogue version {_e(info['version'])}, generated "
        "from the code by <code>python -m deploy.contracts</code>. Machine-readable: "
        f"<a href=\"{DOCUMENT}\"><code>{DOCUMENT}</code></a>. Compatibility and versions: "
        "<a href=\"../events.md\"><code>docs/events.md</code></a>.</p>",
        f"<p>{_md(info['description'])}</p>",
        "<h2 id=\"broker\">Broker</h2>",
        f"<p>{_e(server['protocol'])} {_e(server['protocolVersion'])} at <code>{_e(server['host'])}</code>. "
        f"{_md(server['description'])}</p>",
        "<nav><h2>Events</h2><ul>",
    ]
    for producer in producers:
        out.append(f"<li><a href=\"#{_e(producer)}\">{_e(producer)}</a> (exchange "
                   f"<code>{_e(names.events_exchange(producer))}</code>)<ul>")
        for mid, message in messages.items():
            if mid.startswith(f"{producer}."):
                out.append(f"<li><a href=\"#{_e(mid)}\">{_e(message['title'])}</a></li>")
        out.append("</ul></li>")
    out.append("</ul></nav>")
    for producer in producers:
        archive = names.archive_name(producer)
        out += [f"<h2 id=\"{_e(producer)}\">{_e(producer)}</h2>",
                f"<p>Topic exchange <code>{_e(names.events_exchange(producer))}</code>. "
                + (f"Archive stream <code>{_e(archive)}</code>: {_md(channels[archive]['description'])}"
                   if archive in channels else "") + "</p>"]
        for mid, message in messages.items():
            if not mid.startswith(f"{producer}."):
                continue
            route = channels[route_of[mid]]
            queues = [q for q in readers.get(mid, []) if q != archive]
            example = message["examples"][0]
            out += [
                f"<section class=\"message\" id=\"{_e(mid)}\"><h3>{_e(message['title'])}</h3>",
                f"<p>{_md(message['summary'])}</p>",
                f"<p>Routing key <code>{_e(route['address'])}</code> on "
                f"<code>{_e(route['bindings']['amqp']['exchange']['name'])}</code>; AMQP <code>type</code> "
                f"<code>{_e(message['bindings']['amqp']['messageType'])}</code>, content type "
                f"<code>{_e(message['contentType'])}</code>. {_md(message['description'])}</p>",
                "<h4>Subscribers in the system</h4>",
                ("<ul>" + "".join(
                    f"<li><code>{_e(q)}</code>: {_md(channels[q]['description'])}</li>" for q in queues) + "</ul>")
                if queues else "<p class=\"muted\">None inside the system yet (its archive keeps it).</p>",
                "<h4>Body: the envelope and its payload</h4>",
                _field_table(message["payload"]),
                "<h4>AMQP headers</h4>",
                _field_table(message["headers"]),
                "<details><summary>Example body</summary>",
                f"<pre>{_e(json.dumps(example['payload'], indent=2, ensure_ascii=False))}</pre></details>",
                "<details><summary>Example headers</summary>",
                f"<pre>{_e(json.dumps(example['headers'], indent=2, ensure_ascii=False))}</pre></details>",
                "</section>",
            ]
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def files() -> dict[str, str]:
    """Every file of `docs/asyncapi/`: name -> text."""
    doc = document()
    return {DOCUMENT: json.dumps(doc, indent=2, ensure_ascii=False) + "\n", PAGE: page(doc)}
