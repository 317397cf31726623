"""Each service's OpenAPI 3 document (docs/openapi/<service>.json), generated from its route
declarations by `shared.openapi` — the document the service itself serves at `GET /openapi.json`.

    python -m deploy.openapi          # (re)write docs/openapi/*.json
    python -m deploy.openapi --check  # exit 1 unless every document is valid OpenAPI 3 (openapi-spec-validator),
                                      # describes every route of its service class, and matches the file (make lint)
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

from deploy.local import SERVICES
from shared import openapi

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "openapi"


def service_class(spec) -> type:
    module, _, name = spec.target.partition(":")
    return getattr(importlib.import_module(module), name)


def rendered(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def problems_of(name: str, cls: type, doc: dict[str, Any]) -> list[str]:
    """What is wrong with one service's document: invalid OpenAPI, or a route it does not describe."""
    found = []
    try:
        validate(doc)
    except Exception as exc:  # noqa: BLE001 - the validator's own error types, each reported
        found.append(f"{name}: not a valid OpenAPI 3 document: {str(exc).splitlines()[0]}")
    found += [f"{name}: route {route} is missing from its OpenAPI document" for route in openapi.missing_routes(cls, doc)]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="validate and compare, write nothing")
    args = parser.parse_args(argv)
    problems: list[str] = []
    for spec in SERVICES:
        cls = service_class(spec)
        doc = openapi.document(cls)
        problems += problems_of(spec.name, cls, doc)
        path = DOCS / f"{spec.name}.json"
        if args.check:
            if not path.exists() or path.read_text() != rendered(doc):
                problems.append(f"{path.relative_to(ROOT)} is missing or stale: run python -m deploy.openapi")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered(doc))
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"OpenAPI documents: {len(SERVICES)} valid, every route described"
              + ("" if args.check else f", written to {DOCS.relative_to(ROOT)}"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
