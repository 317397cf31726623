"""Request schemas that load into a typed command (`CommandSchema`).

A route's body or query schema names the frozen dataclass it loads into (`command = ...`); the
entrypoint then hands the use case that object, not a dict, so a use case reads named, typed fields
and a misspelt one fails at once. The schema still does all the validating: the dataclass is built
only from a load that passed, and the OpenAPI document (built from the schema's fields) is unchanged.
"""
from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, post_load


class CommandSchema(Schema):
    """A schema whose `load` returns `command(**fields)`; top-level lists become tuples, so the
    command holds no list a use case could change. Without `command` it loads a dict, as any schema."""

    command: ClassVar[type | None] = None

    @post_load
    def _to_command(self, data: dict[str, Any], **_: Any) -> Any:
        if self.command is None:
            return data
        return self.command(**{name: tuple(value) if isinstance(value, list) else value
                               for name, value in data.items()})
