"""Predecessor/successor lineage between establishments, from the DfE register's links. Pure Python.

The register lists each link from both ends (`URN` 100016 has `Successor` 132245, and 132245 has
`Predecessor` 100016), dates are `DD-MM-YYYY` or empty, and a merge has several predecessors. Links
are normalised to one `(predecessor, successor)` pair; rows that carry no lineage (sixth-form centre
links, "Other", "Closure", ...) or cannot be read are reported with their reason, never guessed.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import re

URN = re.compile(r"^[0-9]{6}\Z")
GIAS_DATE = re.compile(r"^([0-9]{2})-([0-9]{2})-([0-9]{4})\Z")
# LinkType -> (which end the row's LinkURN is, kind of link)
LINEAGE_TYPES = {
    "Predecessor": ("predecessor", "conversion"),
    "Successor": ("successor", "conversion"),
    "Predecessor - merged": ("predecessor", "merged"),
    "Successor - merged": ("successor", "merged"),
    "Predecessor - amalgamated": ("predecessor", "amalgamated"),
    "Successor - amalgamated": ("successor", "amalgamated"),
    "Predecessor - Split School": ("predecessor", "split"),
    "Successor - Split School": ("successor", "split"),
}


@dataclasses.dataclass(frozen=True)
class Link:
    predecessor_urn: str
    successor_urn: str
    kind: str
    established_on: dt.date | None


@dataclasses.dataclass
class LinkReport:
    """What an import of links did: lines read, distinct links kept, and every row it could not use."""

    rows_read: int = 0
    links: list[Link] = dataclasses.field(default_factory=list)
    both_directions: int = 0
    undated: int = 0
    already_held: int = 0
    unused: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    problems: list[dict] = dataclasses.field(default_factory=list)

    def summary(self) -> dict:
        return {"rows_read": self.rows_read, "links": len(self.links), "listed_from_both_ends": self.both_directions,
                "undated_links": self.undated, "already_held": self.already_held,
                "unused_by_reason": dict(sorted(self.unused.items())), "problems": self.problems[:200],
                "problem_count": len(self.problems)}


def parse_gias_date(text: str) -> dt.date | None:
    match = GIAS_DATE.match((text or "").strip())
    if not match:
        if (text or "").strip():
            raise ValueError(f"not a DD-MM-YYYY date: {text!r}")
        return None
    day, month, year = (int(g) for g in match.groups())
    return dt.date(year, month, day)


def normalise_links(rows) -> LinkReport:
    """Rows (dicts with URN, LinkURN, LinkType, LinkEstablishedDate; `line` optional) to distinct links.
    The same pair seen from both ends is one link; a date on either end is kept (the earlier if they differ)."""
    report = LinkReport()
    found: dict[tuple[str, str], Link] = {}
    for number, row in enumerate(rows, start=2):
        report.rows_read += 1
        line = row.get("line", number)
        urn, other = (row.get("URN") or "").strip(), (row.get("LinkURN") or "").strip()
        link_type = (row.get("LinkType") or "").strip()
        if link_type not in LINEAGE_TYPES:
            report.unused[f"link type {link_type!r} is not a predecessor/successor link"] += 1
            continue
        if not URN.match(urn) or not URN.match(other):
            report.unused["URN or LinkURN is not 6 digits"] += 1
            report.problems.append({"line": line, "reason": "URN or LinkURN is not 6 digits"})
            continue
        if urn == other:
            report.unused["an establishment linked to itself"] += 1
            report.problems.append({"line": line, "reason": f"URN {urn} is linked to itself"})
            continue
        try:
            established = parse_gias_date(row.get("LinkEstablishedDate") or "")
        except ValueError as exc:
            report.unused["unreadable date"] += 1
            report.problems.append({"line": line, "reason": str(exc)})
            continue
        end, kind = LINEAGE_TYPES[link_type]
        pair = (other, urn) if end == "predecessor" else (urn, other)
        seen = found.get(pair)
        if seen is None:
            found[pair] = Link(pair[0], pair[1], kind, established)
            continue
        report.both_directions += 1
        if established and (seen.established_on is None or established < seen.established_on):
            found[pair] = dataclasses.replace(seen, established_on=established)
    report.links = list(found.values())
    report.undated = sum(1 for link in report.links if link.established_on is None)
    return report


def trace(start: str, neighbours, *, max_steps: int = 50) -> list[dict]:
    """Walk a lineage from `start` with `neighbours(urns) -> {urn: [Link...]}`, breadth first, one generation a
    step, over several conversions and merges; cycles and very long chains stop the walk."""
    seen = {start}
    frontier = [start]
    steps = []
    for generation in range(1, max_steps + 1):
        if not frontier:
            break
        found = neighbours(frontier)
        next_frontier = []
        for urn in frontier:
            for link, other in found.get(urn, []):
                steps.append({"generation": generation, "from_urn": urn, "urn": other, "kind": link.kind,
                              "established_on": link.established_on})
                if other not in seen:
                    seen.add(other)
                    next_frontier.append(other)
        frontier = next_frontier
    return steps
