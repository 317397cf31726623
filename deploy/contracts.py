"""Published event contracts: JSON Schemas, examples and a README per service.

For each service, `<service>.messages.published` declares `PUBLISHED` (a
`shared.envelope.PayloadSchemas`: (type, version) -> marshmallow schema) and
`EXAMPLES` ((type, version) -> example payload). From those this tool writes,
under `services/<service>/contracts/`:

- `<type>.v<version>.schema.json`: a JSON Schema (draft 2020-12) of the whole
  envelope, with the payload converted from the marshmallow schema by
  apispec's converter and nested schemas inlined (no `$ref`). This is the schema
  published to consumers: it allows unknown fields at every level (no
  `additionalProperties: false`), because a consumer must ignore a field added
  within a version (`docs/events.md`). The producer's own schema stays strict
  (`unknown = RAISE`; `envelope_json_schema(..., strict=True)` is its JSON form);
- `examples/<type>.v<version>.json`: a full envelope around the example
  payload, with fixed ids and times so the file is stable;
- `README.md`: what each event means and what delivery guarantees it carries.

    python -m deploy.contracts          # (re)write the files
    python -m deploy.contracts --check  # exit 1 if any file is missing, stale or left over

The same command (re)writes, or with `--check` checks, the AsyncAPI catalogue of the whole system
built from these schemas and the provisioned topology (`deploy.asyncapi`, `docs/asyncapi/`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import json
import sys
import uuid
from pathlib import Path
from typing import Any, Iterable

from apispec import APISpec
from apispec.ext.marshmallow import OpenAPIConverter
from marshmallow import Schema

from deploy.local import SERVICES as SERVICE_SPECS
from shared.envelope import Envelope, amqp_properties

ROOT = Path(__file__).resolve().parents[1]
SERVICES = tuple(spec.name for spec in SERVICE_SPECS)
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
OPENAPI_VERSION = "3.1.0"
EXAMPLE_OPERATOR = "bucks-learning-trust"
EXAMPLE_OCCURRED_AT = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.timezone.utc)
EXAMPLE_NAMESPACE = uuid.UUID("8f1c2d3e-4b5a-4c6d-9e7f-0a1b2c3d4e5f")


def contracts_dir(service: str, root: Path = ROOT) -> Path:
    return root / "services" / service / "contracts"


def schema_filename(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.schema.json"


def example_filename(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.json"


def published_module(service: str):
    return importlib.import_module(f"{service}.messages.published")


def published_events(service: str) -> list[tuple[str, int, Schema, dict]]:
    """(type, version, schema, example payload) for each event the service publishes, sorted."""
    module = published_module(service)
    examples = getattr(module, "EXAMPLES", {})
    events = []
    for (event_type, version), schema in sorted(module.PUBLISHED.items(), key=lambda item: item[0]):
        if (event_type, version) not in examples:
            raise LookupError(f"{service}: {event_type} v{version} is published but has no entry in EXAMPLES")
        events.append((event_type, version, schema, examples[(event_type, version)]))
    return events


def describe(schema: Schema | type[Schema]) -> str:
    """The schema class docstring, on one line: when the event fires."""
    cls = schema if isinstance(schema, type) else type(schema)
    doc = cls.__doc__ and inspect.cleandoc(cls.__doc__)
    return " ".join((doc or "").split())


def converter() -> OpenAPIConverter:
    # A resolver that never names a schema makes apispec inline every nested schema instead of `$ref`.
    spec = APISpec(title="events", version="1", openapi_version=OPENAPI_VERSION)
    return OpenAPIConverter(openapi_version=OPENAPI_VERSION, schema_name_resolver=lambda schema: None, spec=spec)


def tolerant(json_schema: Any) -> Any:
    """A copy of a JSON Schema that allows unknown properties wherever it forbade them.

    What consumers are given: they ignore fields they do not know, so a field added within a
    version never makes their validation fail (`docs/events.md`)."""
    if isinstance(json_schema, dict):
        return {key: tolerant(value) for key, value in json_schema.items()
                if not (key == "additionalProperties" and value is False)}
    if isinstance(json_schema, list):
        return [tolerant(item) for item in json_schema]
    return json_schema


def payload_json_schema(schema: Schema | type[Schema], *, strict: bool = False) -> dict[str, Any]:
    """The JSON Schema of a marshmallow payload schema, nested schemas inlined.

    `strict`: exactly the fields of the schema (`additionalProperties: false`, the producer's rule);
    otherwise unknown fields are allowed (what is published to consumers)."""
    instance = schema() if isinstance(schema, type) else schema
    converted = converter().schema2jsonschema(instance)
    description = describe(instance)
    converted = {**({"description": description} if description else {}), **converted}
    return converted if strict else tolerant(converted)


def envelope_json_schema(service: str, event_type: str, version: int, schema: Schema, *,
                         strict: bool = False) -> dict[str, Any]:
    """The JSON Schema of one event as it travels: the envelope around its payload.

    By default the consumers' schema (unknown payload fields allowed, as the envelope always did);
    `strict` gives the producer's (the payload exactly its schema's fields)."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:partnership:events:{service}:{event_type}:v{version}",
        "title": f"{service} {event_type} v{version}",
        "description": describe(schema),
        "type": "object",
        "required": ["event_id", "type", "version", "occurred_at", "producer", "operator", "correlation_id",
                     "causation_id", "payload"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid",
                         "description": "Unique per event; also the AMQP message_id. De-duplicate on it."},
            "type": {"type": "string", "const": event_type},
            "version": {"type": "integer", "const": version},
            "occurred_at": {"type": "string", "format": "date-time", "description": "UTC, ISO 8601."},
            "producer": {"type": "string", "const": service},
            "operator": {"type": "string", "minLength": 1,
                         "description": "The organisation running the producing service."},
            "correlation_id": {"type": "string", "minLength": 1,
                               "description": "Shared by every event of one piece of work."},
            "causation_id": {"type": ["string", "null"],
                             "description": "The event_id of the event that caused this one, if any."},
            "aggregate": {"type": "string", "minLength": 1, "maxLength": 200,
                          "description": "What the event is about (e.g. `school:100000`); with `sequence`, "
                                         "present on every event published since sequencing began."},
            "sequence": {"type": "integer", "minimum": 1,
                         "description": "The aggregate's strictly increasing number, given in the same transaction "
                                        "as the change: of two events of one aggregate, the higher is the newer, "
                                        "whatever the order they arrive in."},
            "payload": payload_json_schema(schema, strict=strict),
        },
    }


def example_envelope(service: str, event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """A full envelope around an example payload, with ids and times fixed so the file is stable."""
    event_id = str(uuid.uuid5(EXAMPLE_NAMESPACE, f"{service}:{event_type}:v{version}"))
    return Envelope(event_id=event_id, type=event_type, version=version, occurred_at=EXAMPLE_OCCURRED_AT,
                    producer=service, operator=EXAMPLE_OPERATOR, correlation_id=event_id, causation_id=None,
                    payload=dict(payload), aggregate=f"{service}-example", sequence=1).to_dict()


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def readme(service: str, events: Iterable[tuple[str, int, Schema, dict]]) -> str:
    events = list(events)
    lines = [
        f"# Events published by {service}",
        "",
        "Generated by `python -m deploy.contracts` from "
        f"`{service}/messages/published.py`; do not edit by hand "
        "(`python -m deploy.contracts --check` fails when this folder is out of date).",
        "",
        f"Events are published to the topic exchange `{service}.events` with routing key = the event type.",
        "",
    ]
    if events:
        lines += ["| Event | Version | When it fires | JSON Schema | Example |",
                  "| --- | --- | --- | --- | --- |"]
        for event_type, version, schema, _ in events:
            lines.append(f"| `{event_type}` | {version} | {_cell(describe(schema))} "
                         f"| [{schema_filename(event_type, version)}]({schema_filename(event_type, version)}) "
                         f"| [examples/{example_filename(event_type, version)}]"
                         f"(examples/{example_filename(event_type, version)}) |")
    else:
        lines.append(f"{service} publishes no events yet.")
    sample = example_envelope(service, "example_event", 1, {})
    properties = amqp_properties(sample)
    headers = properties.pop("application_headers")
    lines += [
        "",
        "## Guarantees",
        "",
        "- **Published only after commit.** An event is written to the service's outbox in the same database "
        "transaction as the change it reports and relayed to the broker only after that transaction commits; "
        "a rolled-back change publishes nothing. The relay marks an event sent only after the broker confirmed "
        "it (publisher confirms, persistent messages) and publishes in commit order.",
        "- **Any order.** Events reach a consumer in any order (one queue per event type, retries). Of two "
        "events of one `aggregate`, the one with the higher `sequence` is the newer: apply an event only if it "
        "is newer than what you applied for that aggregate.",
        "- **At-least-once delivery.** An event may arrive more than once (e.g. a confirm lost with the "
        "connection). Every event carries a unique `event_id`: de-duplicate on it (the services keep an inbox "
        "of handled ids).",
        "- **Versioned payloads.** `type` + `version` name the payload schema (one file per pair here). A "
        "field may be added to a version, never removed, renamed or changed: ignore fields you do not know "
        "(the schemas here allow them, in the envelope and the payload). A breaking change is a new version, "
        "published beside the old one (`docs/events.md`); what consumers were given is frozen in `released/`.",
        "- **Self-describing without the body.** The envelope's facts are copied into AMQP properties and "
        "headers, so a consumer can route and de-duplicate without parsing JSON.",
        "",
        "## AMQP properties",
        "",
        "| Property | Value |",
        "| --- | --- |",
    ]
    property_values = {
        "message_id": "`event_id`", "type": "`type`", "content_type": f"`{properties['content_type']}`",
        "content_encoding": f"`{properties['content_encoding']}`",
        "delivery_mode": f"`{properties['delivery_mode']}` (persistent)", "app_id": "`producer`",
        "correlation_id": "`correlation_id`",
    }
    for name in properties:
        lines.append(f"| `{name}` | {property_values.get(name, '')} |")
    header_values = {
        "x-event-id": "`event_id`", "x-event-type": "`type`", "x-event-version": "`version`",
        "x-producer": "`producer`", "x-operator": "`operator`", "x-correlation-id": "`correlation_id`",
        "x-causation-id": "`causation_id` (empty string when there is none)", "x-occurred-at": "`occurred_at`",
        "x-aggregate": "`aggregate`", "x-sequence": "`sequence`",
    }
    lines += ["", "## AMQP headers", "", "| Header | Value |", "| --- | --- |"]
    for name in headers:
        lines.append(f"| `{name}` | {header_values.get(name, '')} |")
    return "\n".join(lines) + "\n"


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render(service: str, root: Path = ROOT) -> dict[Path, str]:
    """Every contract file of one service: path -> its text."""
    folder = contracts_dir(service, root)
    events = published_events(service)
    files = {folder / "README.md": readme(service, events)}
    for event_type, version, schema, example in events:
        files[folder / schema_filename(event_type, version)] = _json(
            envelope_json_schema(service, event_type, version, schema))
        files[folder / "examples" / example_filename(event_type, version)] = _json(
            example_envelope(service, event_type, version, example))
    return files


def _managed(folder: Path) -> set[Path]:
    """Files in a contracts folder that this tool owns (so leftovers can be found)."""
    found = set(folder.glob("*.schema.json")) | set((folder / "examples").glob("*.json"))
    if (folder / "README.md").exists():
        found.add(folder / "README.md")
    return found


def problems(root: Path = ROOT, services: Iterable[str] = SERVICES) -> list[str]:
    """What is missing, stale or left over; empty when every contract file is up to date."""
    found = []
    for service in services:
        expected = render(service, root)
        for path, text in expected.items():
            if not path.exists():
                found.append(f"missing: {path.relative_to(root)}")
            elif path.read_text(encoding="utf-8") != text:
                found.append(f"out of date: {path.relative_to(root)}")
        for path in sorted(_managed(contracts_dir(service, root)) - set(expected)):
            found.append(f"no longer published: {path.relative_to(root)}")
    return found


def check(root: Path = ROOT, services: Iterable[str] = SERVICES) -> bool:
    return not problems(root, services)


def write(root: Path = ROOT, services: Iterable[str] = SERVICES) -> list[Path]:
    """(Re)write every contract file and remove leftovers; returns the paths changed."""
    changed = []
    for service in services:
        expected = render(service, root)
        for path, text in expected.items():
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                changed.append(path)
        for path in sorted(_managed(contracts_dir(service, root)) - set(expected)):
            path.unlink()
            changed.append(path)
    return changed


def catalogue(*, check: bool) -> int:
    """Write, or with `check` check, the AsyncAPI catalogue built from these contracts (`docs/asyncapi/`)."""
    from deploy import asyncapi
    from deploy.generated import write_or_check

    return write_or_check(asyncapi.files(), asyncapi.FOLDER, check=check, pattern="*",
                          command="python -m deploy.contracts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.contracts", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if any contract file or the AsyncAPI catalogue is out of date")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        for problem in found:
            print(problem, file=sys.stderr)
        if found:
            print("contracts are out of date: run `python -m deploy.contracts`", file=sys.stderr)
        stale_catalogue = catalogue(check=True)
        if found or stale_catalogue:
            return 1
        print("contracts and the AsyncAPI catalogue are up to date")
        return 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}" if path.exists() else f"removed {path.relative_to(ROOT)}")
    catalogue(check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
