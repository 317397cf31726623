"""`ReferenceData`: the DfE establishment type list, loaded once when the service starts.

A configured path that does not exist stops the service at start-up with a message naming the path and the
setting (`GIAS.establishment_types` / `MEMBERSHIP_GIAS_ESTABLISHMENT_TYPES`), rather than failing the first
import; without a setting the packaged copy is used.
"""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from membership.adapters import reference


class ReferenceData(DependencyProvider):
    def setup(self):
        self.establishment_types = frozenset(
            reference.load_establishment_types(reference.types_path(self.container.config)))

    def get_dependency(self, worker_ctx):
        return self
