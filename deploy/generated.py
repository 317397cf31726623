"""Checked-in generated files: write them, or check that what is checked in is what the code makes.

Used by the generators whose output is reviewed in git (the Kubernetes base, the Grafana boards):
`--check` in `make lint` prints a diff of each stale file and names unexpected ones."""
from __future__ import annotations

import difflib
import json
import pathlib
import sys
from typing import Mapping


def write_or_check(wanted: Mapping[str, str], folder: pathlib.Path, *, check: bool, pattern: str,
                   command: str) -> int:
    """Write each file of `wanted` (name -> text) into `folder`, or with `check` return 1 when a file
    differs or a file matching `pattern` is there that the generator does not make (0 otherwise)."""
    if not check:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in wanted.items():
            (folder / name).write_text(text)
        return 0
    stale = []
    for name, text in wanted.items():
        path = folder / name
        have = path.read_text() if path.exists() else ""
        if have != text:
            stale.append(name)
            sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), text.splitlines(True),
                                                       f"checked-in/{name}", f"generated/{name}", n=1))
    extra = sorted(p.name for p in folder.glob(pattern) if p.name not in wanted)
    if stale or extra:
        print(json.dumps({"stale": stale, "unexpected": extra}), file=sys.stderr)
        print(f"{folder.relative_to(folder.parents[2])} is out of date: run `{command}`", file=sys.stderr)
        return 1
    return 0
