"""The membership nameko service: HTTP and RPC in; member_joined, member_left, member_details_changed,
census_recorded, school_converted_to_academy, contact_role_changed, organisation_contact_role_changed and
contact_erased out (via the outbox).

Entrypoints only parse and validate (marshmallow), call a use case and map the result; the rules live in
`membership.domain`. A broken rule is a 400 naming the field, a second open record a 409, an unknown URN
or contact a 404; nothing is written when a command is refused.
"""
from __future__ import annotations

import datetime as dt

from marshmallow import RAISE, ValidationError, fields, validate, validates_schema
from werkzeug.wrappers import Response

from shared.http import NotFound, http
from shared.metrics import CONTENT_TYPE_LATEST, metrics_for
from shared import auth
from shared.rpc import rpc
from shared import service as base
from shared.fields import BoundedInteger
from shared.commands import CommandSchema
from shared.auth import COUNCIL, MAT_STAFF, MEMBERSHIP_OFFICER, SCHOOL_STAFF, TRUST_STAFF
from shared.storage import Storage

from membership.adapters import access, reference, repository
from membership.adapters.tables import audit_log, inbox, outbox
from membership.dependencies import ReferenceData
from membership.domain import contacts as people
from membership.domain import model
from membership.messages.published import PUBLISHED
from membership.service_layer import commands, handlers
from shared import business_date

URN_RULE = validate.Regexp(r"^[0-9]{6}\Z", error="a URN is exactly 6 digits")
POSTCODE_RULE = validate.Regexp(r"^[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}$", error="not a UK postcode")


class Strict(CommandSchema):
    class Meta:
        unknown = RAISE


class MatIn(Strict):
    id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class JoinSchool(Strict):
    """POST /members (and /applications): a school joins (applies to join) the partnership."""

    command = commands.JoinSchool

    urn = fields.String(required=True)
    dfe_number = fields.String(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    establishment_type = fields.String(required=True, validate=validate.OneOf(model.ESTABLISHMENT_TYPES))
    phase = fields.String(required=True, validate=validate.OneOf(model.PHASES))
    local_authority = fields.String(required=True, validate=validate.Length(min=1, max=100))
    postcode = fields.String(required=True, validate=POSTCODE_RULE)
    number_on_roll = BoundedInteger(minimum=0, maximum=10000, required=True, strict=True)
    census_date = fields.Date(required=True)
    joined_on = fields.Date(load_default=lambda: business_date.today())
    mat = fields.Nested(MatIn, load_default=None, allow_none=True)


class EffectiveDate(Strict):
    effective_date = fields.Date(required=True)


class Leave(Strict):
    command = commands.Leave

    effective_date = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ChangeDetails(Strict):
    effective_date = fields.Date(required=True)
    dfe_number = fields.String()
    name = fields.String(validate=validate.Length(min=1, max=200))
    establishment_type = fields.String(validate=validate.OneOf(model.ESTABLISHMENT_TYPES))
    phase = fields.String(validate=validate.OneOf(model.PHASES))
    local_authority = fields.String(validate=validate.Length(min=1, max=100))
    postcode = fields.String(validate=POSTCODE_RULE)
    mat = fields.Nested(MatIn, allow_none=True)

    @validates_schema
    def something_to_change(self, data, **kwargs):
        if len(data) < 2:
            raise ValidationError("give at least one detail to change", "_body")


class Census(Strict):
    census_date = fields.Date(required=True)
    number_on_roll = BoundedInteger(minimum=0, maximum=10000, required=True, strict=True)


class Conversion(Strict):
    command = commands.ConvertToAcademy

    successor_urn = fields.String(required=True, validate=URN_RULE)
    successor_dfe_number = fields.String()
    successor_name = fields.String(validate=validate.Length(min=1, max=200))
    conversion_date = fields.Date(required=True)
    mat = fields.Nested(MatIn, required=True)
    establishment_type = fields.String(validate=validate.OneOf(model.ACADEMY_TYPES))
    phase = fields.String(validate=validate.OneOf(model.PHASES))
    postcode = fields.String(validate=POSTCODE_RULE)
    number_on_roll = BoundedInteger(minimum=0, maximum=10000, strict=True)
    census_date = fields.Date()
    carry_contacts = fields.Boolean(load_default=False)


class MemberFilter(Strict):
    status = fields.String(validate=validate.OneOf(model.STATUSES))
    phase = fields.String(validate=validate.OneOf(model.PHASES))
    establishment_type = fields.String(validate=validate.OneOf(model.ESTABLISHMENT_TYPES))
    mat_id = fields.String(validate=validate.Length(min=1, max=20))
    kind = fields.String(validate=validate.OneOf(("school", "early_years_provider")))
    on = fields.Date()
    limit = BoundedInteger(minimum=1, maximum=50000, load_default=500)
    offset = BoundedInteger(minimum=0, maximum=10_000_000, load_default=0)


class OnDate(Strict):
    on = fields.Date(required=True)


class SchoolImport(Strict):
    census_date = fields.Date(load_default=None)
    joined_on = fields.Date(load_default=lambda: business_date.today())
    effective_date = fields.Date(load_default=None)


class Organisation(Strict):
    command = commands.JoinOrganisation

    id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    kind = fields.String(required=True, validate=validate.OneOf(("mat", "council", "partner")))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    joined_on = fields.Date(load_default=lambda: business_date.today())


class NewContact(Strict):
    command = commands.AddContact

    display_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    role = fields.String(required=True, validate=validate.OneOf(people.ROLES))
    may_commit_spending = fields.Boolean(load_default=None, allow_none=True)
    effective_date = fields.Date(load_default=lambda: business_date.today())
    appointment_type = fields.String(load_default=None, validate=validate.OneOf(people.APPOINTMENT_TYPES))
    committees = fields.List(fields.String(validate=validate.Length(min=1, max=100)), load_default=None)


class NewRole(Strict):
    command = commands.AddRole

    urn = fields.String(required=True, validate=URN_RULE)
    role = fields.String(required=True, validate=validate.OneOf(people.ROLES))
    may_commit_spending = fields.Boolean(load_default=None, allow_none=True)
    effective_date = fields.Date(load_default=lambda: business_date.today())
    appointment_type = fields.String(load_default=None, validate=validate.OneOf(people.APPOINTMENT_TYPES))
    committees = fields.List(fields.String(validate=validate.Length(min=1, max=100)), load_default=None)


class ChangeRole(Strict):
    command = commands.ChangeRole

    may_commit_spending = fields.Boolean()
    committees = fields.List(fields.String(validate=validate.Length(min=1, max=100)))
    effective_date = fields.Date(load_default=lambda: business_date.today())


class EndRole(Strict):
    command = commands.EndRole

    effective_date = fields.Date(required=True)
    reason = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class Training(Strict):
    command = commands.RecordTraining

    course = fields.String(required=True, validate=validate.Length(min=1, max=200))
    completed_on = fields.Date(required=True)


class ContactFilter(Strict):
    role = fields.String(validate=validate.OneOf(people.ROLES))
    on = fields.Date()
    include_ended = fields.Boolean(load_default=False)


class NewOrganisationContact(Strict):
    command = commands.AddOrganisationContact

    display_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    role = fields.String(required=True, validate=validate.OneOf(people.ALL_ORGANISATION_ROLES))
    may_commit_spending = fields.Boolean(load_default=None, allow_none=True)
    effective_date = fields.Date(load_default=lambda: business_date.today())


class NewOrganisationRole(Strict):
    command = commands.AddOrganisationRole

    organisation_id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    role = fields.String(required=True, validate=validate.OneOf(people.ALL_ORGANISATION_ROLES))
    may_commit_spending = fields.Boolean(load_default=None, allow_none=True)
    effective_date = fields.Date(load_default=lambda: business_date.today())


class OrganisationContactFilter(Strict):
    role = fields.String(validate=validate.OneOf(people.ALL_ORGANISATION_ROLES))
    on = fields.Date()
    include_ended = fields.Boolean(load_default=False)


class CommitteeAppointment(Strict):
    command = commands.AppointToCommittee

    urn = fields.String(required=True, validate=URN_RULE)
    committee = fields.String(required=True, validate=validate.Length(min=1, max=100))
    appointing_body = fields.String(required=True, validate=validate.Length(min=1, max=100))
    started_on = fields.Date(required=True)
    ended_on = fields.Date(load_default=None, allow_none=True)


class CommitteeFilter(Strict):
    on = fields.Date()


class TrustJoin(Strict):
    command = commands.JoinTrust

    trust_role = fields.String(required=True, validate=validate.OneOf(people.TRUST_ROLES))
    urn = fields.String(validate=URN_RULE)
    id = fields.String(validate=validate.Length(min=1, max=20))
    name = fields.String(validate=validate.Length(min=1, max=200))
    joined_on = fields.Date(required=True)
    on_forum = fields.Boolean(load_default=False)

    @validates_schema
    def identified(self, data, **kwargs):
        if data["trust_role"] == "member" and not data.get("urn"):
            raise ValidationError("a member of the co-operative trust is a school: give its urn", "urn")
        if data["trust_role"] == "partner" and not (data.get("id") and data.get("name")):
            raise ValidationError("a partner needs an id and a name", "id")


class TrustLeave(Strict):
    effective_date = fields.Date(required=True)


class Forum(Strict):
    on_forum = fields.Boolean(required=True)


class Succession(Strict):
    successor_inherits = fields.Boolean(required=True)



def _check_urn(urn: str) -> None:
    if not model.URN_PATTERN.match(urn):
        raise ValidationError({"urn": ["a URN is exactly 6 digits"]})


class MembershipService(base.ObservableService):
    """Who belongs to the partnership, since when and in what capacity; tells the others by events."""

    name = "membership"
    uow = Storage(migrations="membership:migrations", published=PUBLISHED, outbox=outbox, inbox=inbox)
    reference_data = ReferenceData()
    authentication = base.Authentication(mat_of=access.mat_of, audit=audit_log)

    # --- members and their lifecycle ---------------------------------------------------------------------------

    @http("POST", "/members", allow=(MEMBERSHIP_OFFICER,), body=JoinSchool, responses={201: "created"})
    def join(self, request):
        command = request.command
        member = handlers.join_school(self.uow(), command)
        return 201, handlers.member_view(member)

    @http("POST", "/applications", allow=(MEMBERSHIP_OFFICER,), body=JoinSchool, responses={201: "created"})
    def apply(self, request):
        command = request.command
        member = handlers.apply_to_join(self.uow(), command)
        return 201, handlers.member_view(member)

    @http("POST", "/members/<string:urn>/activation", allow=(MEMBERSHIP_OFFICER,), body=EffectiveDate)
    def activate(self, request, urn):
        _check_urn(urn)
        command = request.command
        member = handlers.activate(self.uow(), urn, command["effective_date"])
        return handlers.member_view(member)

    @http("POST", "/members/<string:urn>/leaving", allow=(MEMBERSHIP_OFFICER,), body=Leave)
    def leave(self, request, urn):
        _check_urn(urn)
        command = request.command
        member = handlers.leave(self.uow(), urn, command.effective_date, command.reason)
        return handlers.member_view(member)

    @http("PATCH", "/members/<string:urn>", allow=(MEMBERSHIP_OFFICER,), body=ChangeDetails)
    def change_details(self, request, urn):
        _check_urn(urn)
        command = request.command
        effective_date = command.pop("effective_date")
        member, changes = handlers.change_details(self.uow(), urn, effective_date, command)
        view = handlers.member_view(member)
        view["changed"] = sorted(changes)
        return view

    @http("POST", "/members/<string:urn>/census", allow=(MEMBERSHIP_OFFICER,), body=Census)
    def record_census(self, request, urn):
        _check_urn(urn)
        command = request.command
        member, recorded = handlers.record_census(
            self.uow(), urn, command["census_date"], command["number_on_roll"])
        return (201 if recorded else 200), {
            "urn": urn, "census_date": command["census_date"].isoformat(),
            "number_on_roll": command["number_on_roll"],
            "old_number_on_roll": recorded.old_number_on_roll if recorded else command["number_on_roll"],
            "recorded": recorded is not None, "member": handlers.member_view(member)}

    @http("POST", "/members/<string:urn>/conversion", allow=(MEMBERSHIP_OFFICER,), body=Conversion, responses={201: "created"})
    def convert(self, request, urn):
        _check_urn(urn)
        command = request.command
        conversion = handlers.convert_to_academy(self.uow(), urn, command)
        return 201, {"conversion_date": conversion.conversion_date.isoformat(),
                     "predecessor": handlers.member_view(conversion.predecessor),
                     "successor": handlers.member_view(conversion.successor)}

    @http("GET", "/members/<string:urn>", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF, COUNCIL),
          owner=auth.school_in_path("urn"))
    def get_member_http(self, request, urn):
        return self._member(urn)

    @http("GET", "/members", allow=(TRUST_STAFF, COUNCIL), query=MemberFilter)
    def list_members_http(self, request):
        return self.find_members(**request.query_args)

    @http("GET", "/members/<string:urn>/history", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF, COUNCIL),
          owner=auth.school_in_path("urn"))
    def history_http(self, request, urn):
        return self._history(urn)

    @http("GET", "/members/<string:urn>/mat", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF, COUNCIL),
          owner=auth.school_in_path("urn"), query=OnDate)
    def mat_on_http(self, request, urn):
        return self._mat_on(urn, request.query_args["on"])

    @http("GET", "/members/<string:urn>/lineage", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF, COUNCIL),
          owner=auth.school_in_path("urn"))
    def lineage_http(self, request, urn):
        _check_urn(urn)
        with self.uow.read() as session:
            return handlers.lineage_of(session, urn)

    # --- bulk imports --------------------------------------------------------------------------------------------

    @http("POST", "/imports/schools", allow=(MEMBERSHIP_OFFICER,), body_limit="MAX_IMPORT_BODY_BYTES", query=SchoolImport,
          consumes="text/csv")
    def import_schools_http(self, request):
        options = request.query_args
        text = reference.decode(request.get_data())
        return self._import_schools(text, options)

    @http("POST", "/imports/links", allow=(MEMBERSHIP_OFFICER,), body_limit="MAX_IMPORT_BODY_BYTES",
          consumes="text/csv")
    def import_links_http(self, request):
        text = reference.decode(request.get_data())
        try:
            report = handlers.import_links(self.uow(), text)
        except ValueError as exc:
            raise ValidationError({"_body": [str(exc)]}) from None
        return report.summary()

    def _import_schools(self, text: str, options: dict) -> dict:
        try:
            columns, _ = handlers.read_register_csv(text)
        except ValueError as exc:
            raise ValidationError({"_body": [str(exc)]}) from None
        if options["census_date"] is None and "census_date" not in columns:
            raise ValidationError({"census_date": ["the file has no CensusDate column: give census_date"]})
        report = handlers.import_schools(
            self.uow(), text, known_types=set(self.reference_data.establishment_types),
            census_date=options["census_date"] or options["joined_on"], joined_on=options["joined_on"],
            effective_date=options["effective_date"])
        return report.as_dict()

    # --- organisations -------------------------------------------------------------------------------------------

    @http("POST", "/organisations", allow=(MEMBERSHIP_OFFICER,), body=Organisation, responses={201: "created"})
    def join_organisation(self, request):
        command = request.command
        return 201, handlers.join_organisation(self.uow(), command)

    @http("POST", "/organisations/<string:org_id>/leaving", allow=(MEMBERSHIP_OFFICER,), body=Leave)
    def organisation_leaves(self, request, org_id):
        command = request.command
        return handlers.organisation_leaves(self.uow(), org_id, command)

    @http("GET", "/organisations", allow=(TRUST_STAFF, COUNCIL))
    def list_organisations(self, request):
        with self.uow.read() as session:
            found = repository.list_organisations(session)
        return {"organisations": found, "count": len(found)}

    # --- contacts ------------------------------------------------------------------------------------------------

    @http("POST", "/members/<string:urn>/contacts", allow=(MEMBERSHIP_OFFICER,), body=NewContact, responses={201: "created"})
    def add_contact(self, request, urn):
        _check_urn(urn)
        command = request.command
        return 201, handlers.add_contact(self.uow(), urn, command)

    @http("GET", "/members/<string:urn>/contacts", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF),
          owner=auth.school_in_path("urn"), query=ContactFilter)
    def contacts_http(self, request, urn):
        _check_urn(urn)
        return self.contacts_by_role(urn, **{k: (v.isoformat() if isinstance(v, dt.date) else v)
                                             for k, v in request.query_args.items()})

    @http("POST", "/contacts/<string:contact_id>/roles", allow=(MEMBERSHIP_OFFICER,), body=NewRole, responses={201: "created"})
    def add_role(self, request, contact_id):
        command = request.command
        return 201, handlers.add_role(self.uow(), contact_id, command)

    @http("PATCH", "/contacts/<string:contact_id>/roles/<string:urn>/<string:role>", allow=(MEMBERSHIP_OFFICER,), body=ChangeRole)
    def change_role(self, request, contact_id, urn, role):
        command = request.command
        return handlers.change_role(self.uow(), contact_id, urn, role, command)

    @http("POST", "/contacts/<string:contact_id>/roles/<string:urn>/<string:role>/end", allow=(MEMBERSHIP_OFFICER,), body=EndRole)
    def end_role(self, request, contact_id, urn, role):
        command = request.command
        return handlers.end_role(self.uow(), contact_id, urn, role, command)

    @http("POST", "/contacts/<string:contact_id>/training", allow=(MEMBERSHIP_OFFICER,), body=Training, responses={201: "created"})
    def record_training(self, request, contact_id):
        command = request.command
        return 201, handlers.record_training(self.uow(), contact_id, command,
                                                                    business_date.today())

    @http("GET", "/contacts/<string:contact_id>/export", allow=(MEMBERSHIP_OFFICER,))
    def export_contact(self, request, contact_id):
        with self.uow.read() as session:
            found = handlers.export_contact(session, contact_id)
        if found is None:
            raise NotFound(f"no contact {contact_id}", field="contact_id")
        return found

    @http("DELETE", "/contacts/<string:contact_id>", allow=(MEMBERSHIP_OFFICER,))
    def erase_contact(self, request, contact_id):
        return handlers.erase_contact(self.uow(), contact_id)

    @http("POST", "/contacts/<string:contact_id>/committees", allow=(MEMBERSHIP_OFFICER,), body=CommitteeAppointment, responses={201: "created"})
    def appoint_to_committee(self, request, contact_id):
        command = request.command
        return 201, handlers.appoint_to_committee(self.uow(), contact_id, command)

    @http("POST", "/committee-memberships/<int:membership_id>/end", allow=(MEMBERSHIP_OFFICER,), body=EndRole)
    def end_committee_membership(self, request, membership_id):
        command = request.command
        return handlers.end_committee_membership(self.uow(), membership_id, command)

    @http("GET", "/members/<string:urn>/committees", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF),
          owner=auth.school_in_path("urn"), query=CommitteeFilter)
    def committees_http(self, request, urn):
        _check_urn(urn)
        on = request.query_args.get("on")
        with self.uow.read() as session:
            return handlers.committees_at(session, urn, on)

    # --- contacts at MATs, councils and partners -----------------------------------------------------------------

    @http("POST", "/organisations/<string:org_id>/contacts", allow=(MEMBERSHIP_OFFICER,), body=NewOrganisationContact, responses={201: "created"})
    def add_organisation_contact(self, request, org_id):
        command = request.command
        return 201, handlers.add_organisation_contact(self.uow(), org_id, command)

    @http("GET", "/organisations/<string:org_id>/contacts", allow=(TRUST_STAFF, MAT_STAFF), owner=auth.mat_in_path("org_id"), query=OrganisationContactFilter)
    def organisation_contacts_http(self, request, org_id):
        query = request.query_args
        with self.uow.read() as session:
            found = repository.contacts_of_organisation(session, org_id, **query)
        return {"organisation_id": org_id, "contacts": found, "count": len(found)}

    @http("POST", "/contacts/<string:contact_id>/organisation-roles", allow=(MEMBERSHIP_OFFICER,), body=NewOrganisationRole, responses={201: "created"})
    def add_organisation_role(self, request, contact_id):
        command = request.command
        return 201, handlers.add_organisation_role(self.uow(), contact_id, command)

    @http("POST", "/contacts/<string:contact_id>/organisation-roles/<string:org_id>/<string:role>/end", allow=(MEMBERSHIP_OFFICER,), body=EndRole)
    def end_organisation_role(self, request, contact_id, org_id, role):
        command = request.command
        return handlers.end_organisation_role(self.uow(), contact_id, org_id, role, command)

    # --- co-operative trust --------------------------------------------------------------------------------------

    @http("POST", "/cooperative/participants", allow=(MEMBERSHIP_OFFICER,), body=TrustJoin, responses={201: "created"})
    def join_trust(self, request):
        command = request.command
        return 201, handlers.join_trust(self.uow(), command)

    @http("POST", "/cooperative/participants/<string:party_id>/leaving", allow=(MEMBERSHIP_OFFICER,), body=TrustLeave)
    def leave_trust(self, request, party_id):
        command = request.command
        return handlers.leave_trust(self.uow(), party_id, command["effective_date"])

    @http("PUT", "/cooperative/participants/<string:party_id>/forum", allow=(MEMBERSHIP_OFFICER,), body=Forum)
    def forum(self, request, party_id):
        command = request.command
        return handlers.set_forum(self.uow(), party_id, command["on_forum"])

    @http("PUT", "/cooperative/participants/<string:party_id>/succession", allow=(MEMBERSHIP_OFFICER,), body=Succession)
    def succession(self, request, party_id):
        command = request.command
        return handlers.set_succession(self.uow(), party_id, command["successor_inherits"])

    @http("GET", "/cooperative", allow=(TRUST_STAFF, COUNCIL), query=OnDate)
    def trust_http(self, request):
        return self.cooperative_on(request.query_args["on"].isoformat())

    @http("GET", "/metrics", scrape=True, produces="text/plain")
    def prometheus_metrics(self, request):
        """Prometheus text, with the board's figures: members by kind and status, open organisations."""
        registry = metrics_for(self.name)
        gauge = registry.gauge("members", "Membership records by kind and status (left and converted included).",
                               ("kind", "status"))
        with self.uow.read() as session:
            for (kind, status), count in repository.member_counts(session).items():
                gauge.labels(kind=kind, status=status).set(count)
        return Response(registry.exposition(), mimetype=None, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- RPC (queries only; never on another service's write path) ----------------------------------------------

    @rpc
    def get_member(self, urn):
        """The open membership of `urn`, or None."""
        try:
            return self._member(urn)
        except (NotFound, ValidationError):
            return None

    @rpc
    def find_members(self, on=None, status=None, phase=None, establishment_type=None, mat_id=None, kind=None,
                     limit=500, offset=0):
        """Members (records) with filters; `on` (ISO date) keeps those who were members that day."""
        if isinstance(on, str):
            on = dt.date.fromisoformat(on)
        with self.uow.read() as session:
            found = repository.list_members(session, status=status, phase=phase, on=on,
                                            establishment_type=establishment_type, mat_id=mat_id, kind=kind,
                                            limit=limit, offset=offset)
        return {"members": [handlers.member_view(m) for m in found], "count": len(found)}

    @rpc
    def school_history(self, urn):
        return self._history(urn)

    @rpc
    def mat_of_school_on(self, urn, on):
        return self._mat_on(urn, dt.date.fromisoformat(on) if isinstance(on, str) else on)

    @rpc
    def lineage(self, urn):
        with self.uow.read() as session:
            return handlers.lineage_of(session, urn)

    @rpc
    def contacts_by_role(self, urn, role=None, on=None, include_ended=False):
        with self.uow.read() as session:
            found = repository.contacts_at(session, urn, role=role,
                                           on=dt.date.fromisoformat(on) if isinstance(on, str) else on,
                                           include_ended=include_ended)
        return {"urn": urn, "contacts": found, "count": len(found)}

    @rpc
    def cooperative_on(self, on):
        with self.uow.read() as session:
            return handlers.trust_on(session, dt.date.fromisoformat(on) if isinstance(on, str) else on)

    def _member(self, urn: str) -> dict:
        _check_urn(urn)
        with self.uow.read() as session:
            member = repository.open_member(session, urn)
        if member is None:
            raise NotFound(f"no open membership for URN {urn}", field="urn")
        return handlers.member_view(member)

    def _history(self, urn: str) -> dict:
        _check_urn(urn)
        with self.uow.read() as session:
            records = repository.records_of(session, urn)
            entries = repository.history_of(session, urn)
            censuses = repository.censuses_of(session, urn)
            lineage = handlers.lineage_of(session, urn)
        if not records:
            raise NotFound(f"URN {urn} has never been a member", field="urn")
        return {"urn": urn, "records": [handlers.member_view(r) for r in records],
                "events": [{"effective_date": e.effective_date.isoformat(), "kind": e.kind, "details": e.details}
                           for e in entries],
                "censuses": censuses, "predecessors": lineage["predecessors"], "successors": lineage["successors"]}

    def _mat_on(self, urn: str, day: dt.date) -> dict:
        _check_urn(urn)
        with self.uow.read() as session:
            entries = repository.history_of(session, urn)
        mat = model.mat_on(entries, day)
        if mat is False:
            raise NotFound(f"URN {urn} was not a member on {day.isoformat()}", field="urn")
        return {"urn": urn, "on": day.isoformat(), "mat": mat}
