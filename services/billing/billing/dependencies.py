"""Billing's own dependency providers."""
from __future__ import annotations

import logging

from nameko.extensions import DependencyProvider

from billing.operator_identity import ConfigurationError, operator_identity

log = logging.getLogger(__name__)


class OperatorIdentity(DependencyProvider):
    """The operator printed on every document, checked once when the service starts: outside development a
    missing VAT number, address or bank detail stops the service from starting, saying which
    (`billing.operator_identity`); a worker gets the checked `Operator`."""

    def setup(self):
        try:
            self.operator = operator_identity(self.container.config)
        except ConfigurationError as exc:
            log.critical("%s", exc)
            raise

    def get_dependency(self, worker_ctx):
        return self.operator
