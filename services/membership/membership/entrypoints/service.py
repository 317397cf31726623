"""The membership nameko service: HTTP and RPC in, `member_joined` out.

Entrypoints only parse, call a use case and map the result; the rules live in
`membership.domain`.
"""
from __future__ import annotations

import datetime as dt

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from nameko.rpc import rpc

from shared.http import Conflict, NotFound, http, load_body, load_query
from shared import service as base
from shared.storage import Storage

from membership.adapters import repository
from membership.adapters.tables import inbox, outbox
from membership.domain import model
from membership.messages.published import PUBLISHED
from membership.service_layer import handlers


class MatIn(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class JoinSchool(Schema):
    """POST /members: a school joins the partnership."""

    class Meta:
        unknown = RAISE

    urn = fields.String(required=True)
    dfe_number = fields.String(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    establishment_type = fields.String(required=True, validate=validate.OneOf(model.ESTABLISHMENT_TYPES))
    phase = fields.String(required=True, validate=validate.OneOf(model.PHASES))
    local_authority = fields.String(required=True, validate=validate.Length(min=1, max=100))
    postcode = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}$",
                                                                      error="not a UK postcode"))
    number_on_roll = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10000))
    census_date = fields.Date(required=True)
    joined_on = fields.Date(load_default=lambda: dt.date.today())
    mat = fields.Nested(MatIn, load_default=None, allow_none=True)


class MemberFilter(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(("active", "left")))
    phase = fields.String(validate=validate.OneOf(model.PHASES))
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=5000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


def _domain_errors(call):
    try:
        return call()
    except model.AlreadyMember as exc:
        raise Conflict(exc.message, field=exc.field) from None
    except model.MembershipRuleBroken as exc:
        raise ValidationError({exc.field: [exc.message]}) from None


class MembershipService(base.ObservableService):
    """Who belongs to the partnership; publishes `member_joined`."""

    name = "membership"
    uow = Storage(migrations="membership:migrations", published=PUBLISHED, outbox=outbox, inbox=inbox)

    @http("POST", "/members")
    def join(self, request):
        command = load_body(request, JoinSchool())
        member = _domain_errors(lambda: handlers.join_school(self.uow(), command))
        return 201, handlers.member_view(member)

    @http("GET", "/members/<string:urn>")
    def get_member_http(self, request, urn):
        return self._member(urn)

    @http("GET", "/members")
    def list_members_http(self, request):
        query = load_query(request, MemberFilter())
        with self.uow.read() as session:
            found = repository.list_members(session, **query)
        return {"members": [handlers.member_view(m) for m in found], "count": len(found)}

    @rpc
    def get_member(self, urn):
        """The open membership of `urn`, or None. For queries only, never on a write path."""
        try:
            return self._member(urn)
        except NotFound:
            return None

    def _member(self, urn: str) -> dict:
        with self.uow.read() as session:
            member = repository.open_member(session, urn)
        if member is None:
            raise NotFound(f"no open membership for URN {urn}")
        return handlers.member_view(member)
