"""The DfE's reference data: the establishment type list (validated against) and the links file's location.

The type list is read from `GIAS_ESTABLISHMENT_TYPES` (config key `GIAS.establishment_types` or the
environment variable `MEMBERSHIP_GIAS_ESTABLISHMENT_TYPES`); without either, the copy packaged with the
service (OGL v3.0, GIAS snapshot 2025-04-22) is used, so the container image needs nothing else. A
path that is given but missing is an error that names it, never a silent fallback.
"""
from __future__ import annotations

import csv
import os
from importlib import resources
from pathlib import Path

PACKAGED_TYPES = "establishment-types-20250422.csv"
TYPES_ENV = "MEMBERSHIP_GIAS_ESTABLISHMENT_TYPES"
LINKS_ENV = "MEMBERSHIP_GIAS_LINKS"
TYPE_COLUMN = "type-of-establishment-name"


class ReferenceDataMissing(RuntimeError):
    pass


def types_path(config: dict | None = None) -> str | None:
    configured = ((config or {}).get("GIAS") or {}).get("establishment_types")
    return configured or os.environ.get(TYPES_ENV) or None


def load_establishment_types(path: str | None = None) -> set[str]:
    """The DfE type names (`TypeOfEstablishment (name)`)."""
    if path:
        file = Path(path)
        if not file.is_file():
            raise ReferenceDataMissing(f"the DfE establishment type list is not at {file} (set {TYPES_ENV} or "
                                       "GIAS.establishment_types to the GIAS establishment-types CSV)")
        text = file.read_text(encoding="utf-8-sig")
    else:
        text = resources.files("membership.reference").joinpath(PACKAGED_TYPES).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(text.splitlines())
    if TYPE_COLUMN not in (reader.fieldnames or []):
        raise ReferenceDataMissing(f"{path or PACKAGED_TYPES} has no column {TYPE_COLUMN!r}")
    names = {row[TYPE_COLUMN].strip() for row in reader if row.get(TYPE_COLUMN)}
    if not names:
        raise ReferenceDataMissing(f"{path or PACKAGED_TYPES} lists no establishment types")
    return names


def read_text(path: str, what: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise ReferenceDataMissing(f"{what} file not found: {file}")
    return decode(file.read_bytes())


def decode(data: bytes) -> str:
    """GIAS files are Windows-1252, files saved from spreadsheets often UTF-8 (with a BOM): accept both."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
