"""What consumers were given stays true: the released schemas, and the check against them.

Each service's schemas as released to consumers are frozen in
`services/<service>/contracts/released/<type>.v<version>.schema.json` (the folder moves with the
service, like the rest of its contracts). `--check` (in `make lint`) compares what the code
publishes now (`deploy.contracts`, the consumers' schemas) with every released schema and fails on
anything that breaks a consumer who follows the policy of `docs/events.md` (ignore unknown fields,
de-duplicate, any order), or who replays a version's history from the archive with today's schema:

- a released event type and version no longer published (`removed event`);
- a field removed, or renamed (seen as removed; the likely new name is given);
- a field's type changed (including becoming or ceasing to be nullable), or its format;
- a new required field, an optional field becoming required, a required one becoming optional;
- an enum narrowed (events already published carry the dropped values) or widened (a consumer
  validating with the released schema refuses the new value), or any other change of a value's
  rules (`const`, `pattern`, lengths, bounds, item counts);
- a schema closing itself to unknown fields (`additionalProperties: false`).

Adding an optional field, or changing a description, is compatible. A breaking change is a new
version of the event, published beside the old one (`docs/events.md`).

    python -m deploy.compatibility --check            # make lint: exit 1 on a breaking change
    python -m deploy.compatibility --release          # freeze what is published now (refuses a break)
    python -m deploy.compatibility --release --retire membership:member_joined:1
                                                      # end a version after its deprecation period

An event published but not yet released may still change freely; `--check` lists them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable

from deploy import contracts

ROOT = contracts.ROOT
RELEASED = "released"
# Keywords that only document: changing them breaks nobody.
DOCUMENTATION = {"description", "title", "examples", "example", "$comment", "deprecated", "$id", "$schema",
                 "default", "readOnly", "writeOnly"}
# Keywords compared field by field below; any other validation keyword must stay the same.
STRUCTURE = {"type", "format", "enum", "properties", "required", "items", "additionalProperties"}


def released_dir(service: str, root: Path = ROOT) -> Path:
    return contracts.contracts_dir(service, root) / RELEASED


def _types(schema: dict) -> set[str]:
    kinds = schema.get("type")
    if kinds is None:
        return set()
    return {kinds} if isinstance(kinds, str) else set(kinds)


def breaking_changes(released: Any, current: Any, path: str = "") -> list[str]:
    """Why a consumer of the `released` JSON Schema would break on what `current` allows; empty when
    `current` only adds optional fields or changes documentation. Both are published (consumer) schemas;
    paths name fields as `payload.mat.id`, `payload.components[].offering_code`."""
    where = path or "(the event)"
    if not isinstance(released, dict) or not isinstance(current, dict):
        return [] if released == current else [f"{where}: schema changed"]
    found: list[str] = []
    old_types, new_types = _types(released), _types(current)
    if old_types != new_types:
        if old_types - {"null"} == new_types - {"null"}:
            change = "became nullable" if "null" in new_types else "is no longer nullable"
            found.append(f"{where}: changed type: {change} ({_show(old_types)} -> {_show(new_types)})")
        else:
            found.append(f"{where}: changed type {_show(old_types)} -> {_show(new_types)}")
    if released.get("format") != current.get("format"):
        found.append(f"{where}: changed format {released.get('format')!r} -> {current.get('format')!r}")
    if "enum" in released or "enum" in current:
        old_enum, new_enum = released.get("enum"), current.get("enum")
        if old_enum is None or new_enum is None:
            found.append(f"{where}: enum {'removed' if new_enum is None else 'added'}")
        else:
            dropped = [v for v in old_enum if v not in new_enum]
            added = [v for v in new_enum if v not in old_enum]
            if dropped:
                found.append(f"{where}: narrowed enum: {_values(dropped)} no longer allowed")
            if added:
                found.append(f"{where}: widened enum: {_values(added)} added")
    for key in sorted((set(released) | set(current)) - DOCUMENTATION - STRUCTURE):
        if released.get(key) != current.get(key):
            found.append(f"{where}: changed rule {key}: {_rule(released, key)} -> {_rule(current, key)}")
    if released.get("additionalProperties") is not False and current.get("additionalProperties") is False:
        found.append(f"{where}: no longer allows unknown fields (additionalProperties: false)")
    elif released.get("additionalProperties") != current.get("additionalProperties") \
            and isinstance(released.get("additionalProperties"), dict):
        found += breaking_changes(released["additionalProperties"], current.get("additionalProperties", {}),
                                  f"{path}{{}}")
    found += _properties(released, current, path)
    if "items" in released or "items" in current:
        found += breaking_changes(released.get("items"), current.get("items"), f"{path}[]")
    return found


def _properties(released: dict, current: dict, path: str) -> list[str]:
    found = []
    old, new = released.get("properties", {}), current.get("properties", {})
    old_required, new_required = set(released.get("required", [])), set(current.get("required", []))
    prefix = f"{path}." if path else ""
    added = [name for name in new if name not in old]
    for name, schema in old.items():
        if name not in new:
            renamed = [a for a in added if not breaking_changes(_undocumented(schema), _undocumented(new[a]))]
            hint = f" (renamed to {', '.join(renamed)}?)" if renamed else ""
            found.append(f"{prefix}{name}: removed field{hint}")
            continue
        if name in old_required and name not in new_required:
            found.append(f"{prefix}{name}: no longer required (consumers rely on it being there)")
        if name not in old_required and name in new_required:
            found.append(f"{prefix}{name}: became required (events already published may lack it)")
        found += breaking_changes(schema, new[name], f"{prefix}{name}")
    for name in added:
        if name in new_required:
            found.append(f"{prefix}{name}: new required field (events already published lack it)")
    return found


def _undocumented(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _undocumented(v) for k, v in schema.items() if k not in DOCUMENTATION}
    return schema


def _show(types: set[str]) -> str:
    return "/".join(sorted(types)) or "any"


def _values(values: list) -> str:
    return ", ".join(json.dumps(v) for v in values)


def _rule(schema: dict, key: str) -> str:
    return json.dumps(schema[key]) if key in schema else "none"


# -- the released folder ---------------------------------------------------------------------------
def current_schemas(services: Iterable[str] = contracts.SERVICES) -> dict[tuple[str, str, int], dict]:
    """(service, type, version) -> the consumers' schema of every event the code publishes now."""
    return {(service, event_type, version): contracts.envelope_json_schema(service, event_type, version, schema)
            for service in services
            for event_type, version, schema, _ in contracts.published_events(service)}


def released_schemas(root: Path = ROOT, services: Iterable[str] = contracts.SERVICES
                     ) -> dict[tuple[str, str, int], dict]:
    """(service, type, version) -> the schema frozen at the last release."""
    found = {}
    for service in services:
        for path in sorted(released_dir(service, root).glob("*.v*.schema.json")):
            event_type, version = path.name[:-len(".schema.json")].rsplit(".v", 1)
            found[(service, event_type, int(version))] = json.loads(path.read_text(encoding="utf-8"))
    return found


def problems(released: dict[tuple[str, str, int], dict], current: dict[tuple[str, str, int], dict]) -> list[str]:
    """Every breaking change of `current` against `released`, named `service:type.vN: ...`."""
    found = []
    for key in sorted(released):
        service, event_type, version = key
        name = f"{service}:{event_type}.v{version}"
        if key not in current:
            found.append(f"{name}: removed event (released, no longer published; retire it only after its "
                         "deprecation period: docs/events.md)")
            continue
        found += [f"{name}: {problem}" for problem in breaking_changes(released[key], current[key])]
    return found


def unreleased(released: dict, current: dict) -> list[str]:
    return [f"{s}:{t}.v{v}" for s, t, v in sorted(set(current) - set(released))]


def release(root: Path = ROOT, services: Iterable[str] = contracts.SERVICES,
            retire: Iterable[tuple[str, str, int]] = ()) -> list[Path]:
    """Freeze what is published now as released; refuses (ValueError) when that would break a consumer.

    `retire`: released versions that may go (no longer published), each only if a later version of
    the same event is published and released (the one consumers were told to move to)."""
    services = list(services)
    released, current = released_schemas(root, services), current_schemas(services)
    retire = set(retire)
    for service, event_type, version in retire:
        successors = [v for (s, t, v) in current if (s, t) == (service, event_type) and v > version]
        if not any((service, event_type, v) in released for v in successors):
            raise ValueError(f"{service}:{event_type}.v{version} cannot be retired: no later version of it is "
                             "published and released")
    kept = {key: schema for key, schema in released.items() if key not in retire}
    found = problems(kept, current)
    if found:
        raise ValueError("refusing to release a breaking change:\n" + "\n".join(found))
    changed = []
    for (service, event_type, version), schema in sorted(current.items()):
        path = released_dir(service, root) / contracts.schema_filename(event_type, version)
        text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for service, event_type, version in sorted(retire):
        path = released_dir(service, root) / contracts.schema_filename(event_type, version)
        if path.exists():
            path.unlink()
            changed.append(path)
    return changed


def _event(text: str) -> tuple[str, str, int]:
    try:
        service, event_type, version = text.split(":")
        return service, event_type, int(version)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected service:event_type:version, "
                                         "e.g. membership:member_joined:1") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.compatibility", description=__doc__.splitlines()[0],
                                     epilog="See the module docstring and docs/events.md.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a released schema would be broken")
    mode.add_argument("--release", action="store_true", help="freeze the schemas published now as released")
    parser.add_argument("--retire", type=_event, action="append", default=[], metavar="SERVICE:TYPE:VERSION",
                        help="with --release: a released version to stop publishing (after deprecation)")
    args = parser.parse_args(argv)
    if args.check:
        released, current = released_schemas(), current_schemas()
        for name in unreleased(released, current):
            print(f"not yet released (may still change): {name}")
        found = problems(released, current)
        for problem in found:
            print(problem, file=sys.stderr)
        if found:
            print(f"{len(found)} breaking change(s) against the released schemas: publish a new version "
                  "beside the old one instead (docs/events.md)", file=sys.stderr)
            return 1
        print(f"compatible with the {len(released)} released event schemas")
        return 0
    try:
        changed = release(retire=args.retire)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in changed:
        print(f"{'wrote' if path.exists() else 'removed'} {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
