"""The operator's identity on every invoice, and the rule that a real deployment configures it.

A UK VAT invoice names its supplier, the supplier's address and VAT registration number, and the
invoices say where to pay. Those come from `OPERATOR` in `config.yml` (`OPERATOR_*` environment
variables). The environment is named by `ENVIRONMENT` (`PARTNERSHIP_ENV`, default `development`):

- `development` (a laptop, the test suite): a setting left empty gets a placeholder, marked as such,
  so the service runs out of the box.
- any other value (`production`, and `staging` or anything else: held to the same rule): every one of
  `REQUIRED` must be set, to a real value (not a development placeholder), or the service refuses to
  start with one message naming every missing setting.

Whatever the environment, a VAT number, sort code or account number that is given must have the
right shape.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Mapping

from billing.domain.invoicing import Operator

log = logging.getLogger(__name__)

DEVELOPMENT = "development"

# The settings a real deployment must give (config key -> environment variable).
REQUIRED = {
    "legal_name": "OPERATOR_LEGAL_NAME",
    "address": "OPERATOR_ADDRESS",
    "vat_number": "OPERATOR_VAT_NUMBER",
    "bank_account_name": "OPERATOR_BANK_ACCOUNT_NAME",
    "bank_sort_code": "OPERATOR_BANK_SORT_CODE",
    "bank_account_number": "OPERATOR_BANK_ACCOUNT_NUMBER",
}

# Filled in for an empty setting in development only.
DEVELOPMENT_PLACEHOLDERS = {
    "legal_name": "Bucks Learning Trust",
    "address": "County Hall, Walton Street, Aylesbury HP20 1UA",
    "vat_number": "GB123456789",
    "bank_account_name": "Bucks Learning Trust",
    "bank_sort_code": "30-00-00",
    "bank_account_number": "00012345",
}

# Of those, the ones that cannot be a real operator's: refused as a value outside development (a name or
# an address could be real: County Hall is the council's).
NEVER_REAL = ("vat_number", "bank_sort_code", "bank_account_number")

_SHAPES = {
    # GB and 9 digits (12 for a branch), or a government department (GD) or health authority (HA) code
    "vat_number": (re.compile(r"^GB(\d{9}|\d{12}|GD[0-4]\d{2}|HA[5-9]\d{2})$"),
                   "GB followed by 9 digits (12 for a branch), or GBGD/GBHA and 3 digits"),
    "bank_sort_code": (re.compile(r"^\d{2}-?\d{2}-?\d{2}$"), "six digits, as 12-34-56"),
    "bank_account_number": (re.compile(r"^\d{8}$"), "eight digits"),
}


class ConfigurationError(RuntimeError):
    """The configuration cannot run this service; the message names each setting and what is wrong."""


def environment_of(config: Mapping[str, Any]) -> str:
    return str(config.get("ENVIRONMENT") or DEVELOPMENT).strip().lower()


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def operator_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The OPERATOR block checked for this environment (placeholders filled in development only).

    Raises `ConfigurationError` naming every setting that is missing, a development placeholder outside
    development, or of the wrong shape."""
    environment = environment_of(config)
    settings = dict(config.get("OPERATOR") or {})
    problems = []
    for key, variable in REQUIRED.items():
        value = _text(settings.get(key))
        if environment == DEVELOPMENT:
            settings[key] = value or DEVELOPMENT_PLACEHOLDERS[key]
        elif not value:
            problems.append(f"{variable} (OPERATOR.{key}) is not set")
        elif key in NEVER_REAL and value.replace(" ", "") == DEVELOPMENT_PLACEHOLDERS[key]:
            problems.append(f"{variable} (OPERATOR.{key}) is the development placeholder {value!r}")
        else:
            settings[key] = value
    for key, (shape, expected) in _SHAPES.items():
        value = _text(settings.get(key)).replace(" ", "")
        if value and not shape.match(value):
            problems.append(f"{REQUIRED[key]} (OPERATOR.{key}) must be {expected}, not {value!r}")
        elif value:
            settings[key] = value
    if problems:
        raise ConfigurationError(
            f"billing will not start in the {environment!r} environment (PARTNERSHIP_ENV): the operator's identity "
            "printed on every VAT invoice is incomplete: " + "; ".join(problems)
            + ". Set them in the environment (outside development there are no placeholder defaults).")
    return settings


def operator_identity(config: Mapping[str, Any]) -> Operator:
    """The operator printed on invoices, from a checked configuration (`operator_settings`)."""
    settings = operator_settings(config)
    return Operator(
        name=settings["name"], legal_name=settings["legal_name"], address=settings["address"],
        vat_number=settings["vat_number"],
        bank_details={"account_name": settings["bank_account_name"], "sort_code": settings["bank_sort_code"],
                      "account_number": settings["bank_account_number"]},
        invoice_prefix=_text(settings.get("invoice_prefix")),
        payment_terms_days=int(settings.get("payment_terms_days") or 30))
