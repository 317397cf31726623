"""The `function_handed_over` event every service publishes when it changes operator.

A function (one service) handed to another operator announces it once, from its new
instance: the operator tooling (`partnership_ops.handover`, `partnership-ops handover`;
see docs/handover.md) writes the event to the new database's outbox in the same
transaction as the imported state, and the new instance's relay publishes it.

This module is what a running service needs of it: the v1 payload schema and example,
added to the service's own `PUBLISHED` and `EXAMPLES` (`with_handover`) so its contracts
list the event. `function_handed_over` v1 payload: `function` (the service's name),
`from_operator`, `to_operator`, `effective_date` (first day the new operator runs it).
Published on `<service>.events`.
"""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from shared.envelope import PayloadSchemas

EVENT_TYPE = "function_handed_over"
SERVICE_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class FunctionHandedOverV1(Schema):
    """A function (one service) is run by another operator from `effective_date`.

    Published once by the new instance, from the outbox row the import wrote.
    """

    class Meta:
        unknown = RAISE

    function = fields.String(required=True, validate=validate.Regexp(SERVICE_NAME_PATTERN))
    from_operator = fields.String(required=True, validate=validate.Length(min=1, max=100))
    to_operator = fields.String(required=True, validate=validate.Length(min=1, max=100))
    effective_date = fields.Date(required=True)


# A service adds these to its own PUBLISHED/EXAMPLES so its contracts list the event.
PUBLISHED = PayloadSchemas({(EVENT_TYPE, 1): FunctionHandedOverV1()})
EXAMPLES = {(EVENT_TYPE, 1): {"function": "billing", "from_operator": "bucks-learning-trust",
                              "to_operator": "buckinghamshire-council", "effective_date": "2027-04-01"}}


def with_handover(published: PayloadSchemas) -> PayloadSchemas:
    """A service's own published schemas plus `function_handed_over`, for its `PUBLISHED`."""
    return PayloadSchemas({**dict(published.items()), **dict(PUBLISHED.items())})
