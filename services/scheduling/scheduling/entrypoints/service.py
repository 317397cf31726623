"""The scheduling nameko service: members, MATs, contacts, offerings and SLAs in from events;
calendars, peer reviews, networks, courses and bookings over HTTP. Thin: every rule lives
in `scheduling.domain`, every use case in `scheduling.service_layer.handlers`."""
from __future__ import annotations

import datetime as dt

from eventlet import tpool
from marshmallow import Schema, fields, validate

from shared import auth
from shared import service as base
from shared.auth import MAT_STAFF, SCHEDULER, SCHOOL_LEADERS, SCHOOL_STAFF, TRUST_STAFF
from shared.batch_consumer import consumes_batch
from shared.consumer import consumes
from shared.fields import BoundedFloat, BoundedInteger
from shared.envelope import ReceivedEvent
from shared.http import NotFound, http

from scheduling.adapters import access, repository
from scheduling.adapters.tables import audit_log, idempotency_keys, inbox, outbox
from scheduling.domain.calendar import TERMS
from scheduling.domain.ordering import Position
from scheduling.messages import consumed
from scheduling.messages.published import PUBLISHED
from scheduling.service_layer import handlers
from shared.storage import Storage
from shared import business_date

URN = validate.Regexp(r"^\d{6}$", error="a URN is 6 digits")


class _Body(Schema):
    pass


class CoachingSessionBody(_Body):
    date = fields.Date(required=True)
    today = fields.Date(load_default=None)


class Period(_Body):
    term = fields.String(required=True, validate=validate.OneOf(TERMS))
    start = fields.Date(required=True)
    end = fields.Date(required=True)


class AcademicYear(Schema):
    """A route's `<int:year>`: the academic year starting in it (as the catalogue's editions)."""
    year = BoundedInteger(minimum=2000, maximum=2100, required=True)


class LaCalendar(AcademicYear):
    """`/calendars/<la>/<int:year>`: a local authority's name, as stored (at most 80 characters), and the year."""
    la = fields.String(required=True, validate=validate.Length(min=1, max=80))


class TermDatesBody(_Body):
    periods = fields.List(fields.Nested(Period), required=True, validate=validate.Length(min=1))


class InsetDaysBody(_Body):
    days = fields.List(fields.Date(), required=True, validate=validate.Length(max=5))


class VenueBody(_Body):
    capacity = BoundedInteger(minimum=1, maximum=2000, required=True, strict=True)


class ReviewerBody(_Body):
    reviewer_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    urn = fields.String(required=True, validate=URN)
    trained = fields.Boolean(required=True)
    can_lead = fields.Boolean(load_default=False)
    unavailable = fields.List(fields.Date(), load_default=list)
    today = fields.Date(load_default=None)


class CycleBody(_Body):
    cycle = BoundedInteger(minimum=2000, maximum=2100, required=True, strict=True)
    offering_code = fields.String(load_default="PEER-REVIEW")
    days = BoundedInteger(minimum=1, maximum=3, load_default=2, strict=True)
    team_size = BoundedInteger(minimum=2, maximum=4, load_default=2, strict=True)
    time_limit_seconds = BoundedFloat(minimum=0.5, maximum=120, load_default=4.0)


class ReportBody(_Body):
    urn = fields.String(required=True, validate=URN)
    report = fields.String(required=True, validate=validate.Length(min=1, max=20000))


class AsSchool(_Body):
    urn = fields.String(required=True, validate=URN)


class NetworkBody(_Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    member_urns = fields.List(fields.String(validate=URN), required=True, validate=validate.Length(min=1))
    people = fields.List(fields.String(validate=validate.Length(min=1, max=36)), load_default=list)
    preferred_weekday = BoundedInteger(minimum=0, maximum=4, load_default=None, allow_none=True)


class CourseBody(_Body):
    course_code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9][A-Z0-9-]{1,39}$"))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    offering_code = fields.String(load_default=None, allow_none=True)
    service_area = fields.String(load_default=None)
    vat_treatment = fields.String(load_default=None, validate=validate.OneOf(("standard", "zero", "exempt")))


class SessionBody(_Body):
    date = fields.Date(required=True)
    capacity = BoundedInteger(minimum=1, maximum=1000, required=True, strict=True)
    cutoff_days = BoundedInteger(minimum=0, maximum=90, load_default=7, strict=True)  # cancellation
    booking_cutoff_days = BoundedInteger(minimum=0, maximum=90, load_default=0, strict=True)


class BookingBody(_Body):
    urn = fields.String(required=True, validate=URN)
    booked_on = fields.Date(load_default=None)


class CancelBody(_Body):
    today = fields.Date(load_default=None)


class AttendanceBody(_Body):
    attended = fields.Boolean(required=True)


class MentorBody(_Body):
    mentor_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    urn = fields.String(required=True, validate=URN)
    phase = fields.String(required=True)
    strengths = fields.List(fields.String(), load_default=list)
    capacity = BoundedInteger(minimum=1, maximum=10, load_default=2, strict=True)


class LeaderBody(_Body):
    leader_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    urn = fields.String(required=True, validate=URN)
    phase = fields.String(required=True)
    needs = fields.List(fields.String(), load_default=list)


class CoachingBody(_Body):
    mentors = fields.List(fields.Nested(MentorBody), required=True, validate=validate.Length(min=1))
    leaders = fields.List(fields.Nested(LeaderBody), required=True, validate=validate.Length(min=1))


class CoachingPairsBody(CoachingBody):
    today = fields.Date(load_default=None)


def _urn(urn: str) -> str:
    from marshmallow import ValidationError

    if not URN.regex.match(urn):
        raise ValidationError({"urn": ["a URN is 6 digits"]})
    return urn


def _position(event: ReceivedEvent) -> Position:
    return Position(event.aggregate, event.sequence)


def _apply_batch(units, use_case) -> None:
    """A batch of upstream events in one transaction (`shared.batch_consumer`): each new event's use
    case, in delivery order, as it would run alone."""
    with units as batch:
        batch.apply_each(use_case)
        batch.commit()


def _day(value: str, field: str = "date") -> dt.date:
    from marshmallow import ValidationError

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError({field: ["not a valid date (YYYY-MM-DD)"]}) from None


class SchedulingService(base.ObservableService):
    """Peer networks, peer reviews, coaching and courses on real school calendars."""

    name = "scheduling"
    uow = Storage(migrations="scheduling:migrations", published=PUBLISHED, outbox=outbox, inbox=inbox,
                  idempotency_keys=idempotency_keys)
    authentication = base.Authentication(mat_of=access.mat_of, audit=audit_log)

    # ---------------------------------------------------------------- upstream events
    # Each hands the use case the event's fact and its position (aggregate and sequence): the use case
    # applies it only where it is newer, so delivery order does not matter.
    # The busiest (a membership import, a census, a renewal round, a year's endings) come in batches.
    @consumes_batch("membership", "member_joined", consumed.MemberJoined)
    def on_member_joined(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_member_joined(uow, e.payload, _position(e)))

    @consumes("membership", "member_left", consumed.MemberLeft)
    def on_member_left(self, event):
        handlers.record_member_left(self.uow(), event.payload, _position(event))

    @consumes_batch("membership", "member_details_changed", consumed.MemberDetailsChanged)
    def on_member_details_changed(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_member_details_changed(uow, e.payload, _position(e)))

    @consumes_batch("membership", "census_recorded", consumed.CensusRecorded)
    def on_census_recorded(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_census(uow, e.payload, _position(e)))

    @consumes("membership", "school_converted_to_academy", consumed.SchoolConvertedToAcademy)
    def on_school_converted(self, event):
        handlers.record_conversion(self.uow(), event.payload, _position(event))

    @consumes("membership", "contact_role_changed", consumed.ContactRoleChanged)
    def on_contact_role_changed(self, event):
        handlers.record_contact(self.uow(), event.payload, _position(event))

    @consumes("membership", "contact_erased", consumed.ContactErased)
    def on_contact_erased(self, event):
        handlers.erase_contact(self.uow(), event.payload, _position(event))

    @consumes("catalogue", "offering_published", consumed.OfferingPublished)
    def on_offering_published(self, event):
        handlers.record_offering(self.uow(), event.payload, _position(event))

    @consumes("catalogue", "edition_priced", consumed.EditionPriced)
    def on_edition_priced(self, event):
        handlers.record_edition_price(self.uow(), event.payload, _position(event))

    @consumes_batch("catalogue", "subscription_started", consumed.SubscriptionStarted)
    def on_subscription_started(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_eligibility(uow, e.payload, _position(e)))

    @consumes_batch("catalogue", "subscription_renewed", consumed.SubscriptionRenewed)
    def on_subscription_renewed(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.record_eligibility(uow, e.payload, _position(e),
                                                                             renewal=True))

    @consumes("catalogue", "subscription_cancelled", consumed.SubscriptionCancelled)
    def on_subscription_cancelled(self, event):
        handlers.end_eligibility(self.uow(), event.payload)

    @consumes_batch("catalogue", "subscription_ended", consumed.SubscriptionEnded)
    def on_subscription_ended(self, events):
        _apply_batch(self.uow(), lambda uow, e: handlers.end_eligibility(uow, e.payload))

    # ---------------------------------------------------------------- schools and calendars
    @http("GET", "/schools/<string:urn>", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF), owner=auth.school_in_path("urn"))
    def school(self, request, urn):
        with self.uow.read() as session:
            found = repository.school(session, urn)
            eligible = repository.eligibility_of(session, urn)
        if found is None and not eligible:
            raise NotFound(f"scheduling knows no school with URN {urn}")
        return {"school": found, "eligibility": eligible}

    @http("GET", "/schools/<string:urn>/open/<string:day>", allow=(TRUST_STAFF, SCHOOL_STAFF, MAT_STAFF), owner=auth.school_in_path("urn"))
    def school_open(self, request, urn, day):
        with self.uow.read() as session:
            return handlers.school_open(session, _urn(urn), _day(day))

    @http("PUT", "/calendars/<string:la>/<int:year>", allow=(SCHEDULER,), body=TermDatesBody, path=LaCalendar)
    def put_la_term_dates(self, request, la, year):
        body = request.command
        return handlers.set_la_term_dates(self.uow(), la, year, body["periods"])

    @http("PUT", "/schools/<string:urn>/term-dates/<int:year>", allow=(SCHEDULER, SCHOOL_LEADERS), owner=auth.school_in_path("urn"), body=TermDatesBody, path=AcademicYear)
    def put_school_term_dates(self, request, urn, year):
        body = request.command
        return handlers.set_school_term_dates(self.uow(), _urn(urn), year, body["periods"])

    @http("PUT", "/schools/<string:urn>/inset-days/<int:year>", allow=(SCHEDULER, SCHOOL_LEADERS), owner=auth.school_in_path("urn"), body=InsetDaysBody, path=AcademicYear)
    def put_inset_days(self, request, urn, year):
        body = request.command
        return handlers.set_inset_days(self.uow(), _urn(urn), year, body["days"])

    @http("PUT", "/schools/<string:urn>/venue", allow=(SCHEDULER, SCHOOL_LEADERS), owner=auth.school_in_path("urn"), body=VenueBody)
    def put_venue(self, request, urn):
        body = request.command
        return handlers.set_venue_capacity(self.uow(), _urn(urn), body["capacity"])

    # ---------------------------------------------------------------- peer reviews
    @http("POST", "/reviewers", allow=(SCHEDULER,), body=ReviewerBody, responses={201: "created"})
    def post_reviewer(self, request):
        body = request.command
        return 201, handlers.register_reviewer(self.uow(), body["reviewer_id"], body["urn"], body["trained"],
                                               body["can_lead"], body["unavailable"], body["today"])

    @http("POST", "/peer-review-cycles", allow=(SCHEDULER,), body=CycleBody, responses={201: "created"})
    def post_cycle(self, request):
        body = request.command
        # the solver runs in a native thread so heartbeats, events and other requests go on meanwhile
        return 201, handlers.plan_cycle(self.uow(), body["cycle"], body["offering_code"], body["days"],
                                        body["team_size"], body["time_limit_seconds"], run=tpool.execute)

    @http("GET", "/peer-review-cycles/<int:cycle>", allow=(SCHEDULER,))
    def get_cycle(self, request, cycle):
        with self.uow.read() as session:
            return handlers.cycle_view(session, cycle)

    @http("PUT", "/peer-reviews/<string:review_id>/report", allow=(SCHEDULER,), body=ReportBody)
    def put_report(self, request, review_id):
        body = request.command
        return handlers.write_report(self.uow(), review_id, body["urn"], body["report"])

    @http("GET", "/peer-reviews/<string:review_id>/report", allow=(SCHEDULER, SCHOOL_STAFF, MAT_STAFF),
          owner=access.review_owner, query=AsSchool)
    def get_report(self, request, review_id):
        query = request.query_args
        with self.uow.read() as session:
            return handlers.read_report(session, review_id, query["urn"])

    # ---------------------------------------------------------------- networks
    @http("POST", "/networks", allow=(SCHEDULER,), body=NetworkBody, responses={201: "created"})
    def post_network(self, request):
        body = request.command
        return 201, handlers.create_network(self.uow(), body["name"], body["member_urns"], body["people"],
                                            body["preferred_weekday"])

    @http("POST", "/networks/<string:network_id>/meetings/<int:year>", allow=(SCHEDULER,), responses={201: "created"}, path=AcademicYear)
    def post_meetings(self, request, network_id, year):
        return 201, handlers.plan_meetings(self.uow(), network_id, year)

    @http("GET", "/networks/<string:network_id>", allow=(TRUST_STAFF,))
    def get_network(self, request, network_id):
        with self.uow.read() as session:
            return handlers.network_view(session, network_id)

    # ---------------------------------------------------------------- coaching
    @http("POST", "/coaching/matches", allow=(SCHEDULER,), body=CoachingBody)
    def post_coaching(self, request):
        body = request.command
        with self.uow.read() as session:
            return handlers.match_coaching(session, body["mentors"], body["leaders"])

    @http("POST", "/coaching/pairs", allow=(SCHEDULER,), body=CoachingPairsBody, responses={201: "created"})
    def post_coaching_pairs(self, request):
        body = request.command
        return 201, handlers.form_coaching_pairs(self.uow(), body["mentors"], body["leaders"],
                                                 body["today"] or business_date.today())

    @http("GET", "/coaching/pairs/<string:pair_id>", allow=(SCHEDULER,))
    def get_coaching_pair(self, request, pair_id):
        with self.uow.read() as session:
            return handlers.coaching_pair_view(session, pair_id)

    @http("POST", "/coaching/pairs/<string:pair_id>/sessions", allow=(SCHEDULER,), body=CoachingSessionBody, responses={201: "created"})
    def post_coaching_session(self, request, pair_id):
        body = request.command
        return 201, handlers.book_coaching_session(self.uow(), pair_id, body["date"],
                                                   body["today"] or business_date.today())

    # ---------------------------------------------------------------- courses and bookings
    @http("POST", "/courses", allow=(SCHEDULER,), body=CourseBody, responses={201: "created"})
    def post_course(self, request):
        body = request.command
        return 201, handlers.create_course(self.uow(), body)

    @http("POST", "/courses/<string:code>/sessions", allow=(SCHEDULER,), body=SessionBody, responses={201: "created"})
    def post_session(self, request, code):
        body = request.command
        return 201, handlers.add_session(self.uow(), code, body["date"], body["capacity"], body["cutoff_days"],
                                         body["booking_cutoff_days"])

    @http("GET", "/sessions/<string:session_id>", allow=(TRUST_STAFF,))
    def get_session(self, request, session_id):
        with self.uow.read() as session:
            return handlers.session_view(session, session_id)

    @http("POST", "/sessions/<string:session_id>/bookings", allow=(SCHOOL_STAFF,),
          owner=auth.school_in_body("urn"), idempotent=True, body=BookingBody, responses={201: "created"})
    def post_booking(self, request, session_id):
        body = request.command
        # The person booking is the one attending, the token's contact (never one named in the body).
        return 201, handlers.book(self.uow(), session_id, body["urn"], auth.acting_contact(request),
                                  body["booked_on"] or business_date.today())

    @http("POST", "/bookings/<string:booking_id>/cancel", allow=(SCHEDULER, SCHOOL_LEADERS), owner=access.booking_owner, body=CancelBody)
    def post_cancel(self, request, booking_id):
        body = request.command
        return handlers.cancel_booking(self.uow(), booking_id, body["today"] or business_date.today())

    @http("POST", "/bookings/<string:booking_id>/attendance", allow=(SCHEDULER,), body=AttendanceBody, responses={201: "created"})
    def post_attendance(self, request, booking_id):
        body = request.command
        return 201, handlers.record_attendance(self.uow(), booking_id, body["attended"])
