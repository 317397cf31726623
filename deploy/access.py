"""Each service README's role matrix, generated from the route declarations (`@http(..., allow=...,
owner=...)`, see `shared.auth`), so the documented access is the enforced one.

    python -m deploy.access          # (re)write the tables between the markers in services/*/README.md
    python -m deploy.access --check  # exit 1 if any table is missing or stale (make lint)
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from deploy.local import SERVICES
from shared import auth
from shared.http import JsonHttp

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- access-matrix:start (python -m deploy.access) -->", "<!-- access-matrix:end -->"
GROUPS = (("trust staff", auth.TRUST_STAFF), ("school staff", auth.SCHOOL_STAFF),
          ("school leaders", auth.SCHOOL_LEADERS), ("MAT staff", auth.MAT_STAFF), ("council officers", auth.COUNCIL))


def routes(spec) -> list[tuple[str, str, JsonHttp]]:
    module, _, name = spec.target.partition(":")
    service_class = getattr(importlib.import_module(module), name)
    found = {}
    for _name, method in inspect.getmembers(service_class, inspect.isfunction):
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, JsonHttp):
                found[(entrypoint.url, entrypoint.method.upper())] = entrypoint
    return [(method, url, found[(url, method)]) for url, method in sorted(found)]


def who(access: auth.Access) -> str:
    if access.public:
        return "anyone (no token)"
    if access.scrape:
        return "the metrics scrape credential (`METRICS_TOKEN`) only"
    remaining = set(access.allow)
    named = []
    for label, group in GROUPS:
        if group <= remaining:
            named.append(label)
            remaining -= group
    named += [f"`{role}`" for role in sorted(remaining)]
    return ", ".join(named)


def reach(access: auth.Access) -> str:
    if access.owner is None or access.public or access.scrape:
        return "-"
    if not access.allow - auth.TRUST_STAFF:
        return "-"
    return "own school's / MAT's only (else 404)"


def table(spec) -> str:
    lines = [START, "", "| route | who may call it | object-level check |", "|---|---|---|"]
    for method, url, entrypoint in routes(spec):
        lines.append(f"| `{method} {url}` | {who(entrypoint.access)} | {reach(entrypoint.access)} |")
    lines += ["", END]
    return "\n".join(lines)


def updated(text: str, new_table: str) -> str:
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        return head + new_table + tail
    return text.rstrip("\n") + "\n\n## Who may call what\n\nGenerated from the route declarations; see " \
        "[`shared/shared/auth.py`](../../shared/shared/auth.py) for the roles and the README's " \
        "\"Authentication and roles\".\n\n" + new_table + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for spec in SERVICES:
        path = ROOT / "services" / spec.name / "README.md"
        text = path.read_text()
        new = updated(text, table(spec))
        if new != text:
            if args.check:
                stale.append(str(path.relative_to(ROOT)))
            else:
                path.write_text(new)
    if stale:
        print("role matrix out of date (run `python -m deploy.access`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
