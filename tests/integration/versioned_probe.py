"""A subscriber with two handlers of one event, `member_joined` v1 and v2, for
`test_versioned_routing.py`: run as the services are (`python -m nameko run`), with shared's
`consumes`. Each handler appends what it received to the JSON-lines file `PROBE_LOG` names.

`MemberJoinedV2` is a breaking change of membership's real `member_joined` v1 (see
`test_versioned_routing.py`): `local_authority` becomes an object (`{"code", "name"}`) and `urn`
is renamed `school_urn`. A v1 handler given it would fail its schema and dead-letter it.
"""
from __future__ import annotations

import json
import os

from marshmallow import EXCLUDE, Schema, fields

from shared.consumer import consumes


class MemberJoinedV1In(Schema):
    class Meta:
        unknown = EXCLUDE

    urn = fields.String(required=True)
    name = fields.String(required=True)
    local_authority = fields.String(required=True)


class LocalAuthorityIn(Schema):
    class Meta:
        unknown = EXCLUDE

    code = fields.String(required=True)
    name = fields.String(required=True)


class MemberJoinedV2In(Schema):
    class Meta:
        unknown = EXCLUDE

    school_urn = fields.String(required=True)
    name = fields.String(required=True)
    local_authority = fields.Nested(LocalAuthorityIn, required=True)


def _record(handler: str, event) -> None:
    with open(os.environ["PROBE_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"handler": handler, "event_id": event.event_id, "version": event.envelope.version,
                              "payload": event.payload}) + "\n")


class VersionProbe:
    name = "versionprobe"

    @consumes("membership", "member_joined", MemberJoinedV1In)
    def on_member_joined_v1(self, event):
        _record("v1", event)

    @consumes("membership", "member_joined", MemberJoinedV2In, version=2)
    def on_member_joined_v2(self, event):
        _record("v2", event)
