"""Scheduling use cases: each takes a unit of work and an upstream fact (`scheduling.domain.upstream`,
with its `Position`) or a command, applies the rules of `scheduling.domain` and writes its events to
the outbox in the same transaction.

Errors: `NotKnown` (404), `Refused` (422: a rule refuses, the message names it),
`AlreadyExists` (409). A refused command writes nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid

from scheduling.adapters import repository as repo
from scheduling.domain import calendar as cal
from scheduling.domain import coaching, courses, networks, peer_review as pr
from scheduling.domain import diary as di
from scheduling.domain import upstream
from scheduling.domain.copies import SLACopy, is_member_record
from scheduling.domain.ordering import BEFORE_OWN_EVENTS, UNORDERED, Position
from scheduling.domain.review_validator import validate
from shared import business_date

log = logging.getLogger(__name__)


# Each refusal declares its kind (`refusal`), which `shared.http` answers the same way in every service.
class NotKnown(Exception):
    """No such thing, or not within the caller's reach (404)."""

    refusal = "not_found"


class Refused(Exception):
    """A scheduling rule refused the request (422); `details` (a `field`, the clashes...) go in the answer."""

    refusal = "rule_broken"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class AlreadyExists(Exception):
    """The thing exists already (409)."""

    refusal = "conflict"


# =============================================================== upstream events
# Each takes the event's fact and its `Position` and applies it under `scheduling.domain.ordering`:
# only facets the event is newer for change, so the copies end the same whatever the delivery order.
# Reactions (re-planning reviews, moving meetings) follow a change of the copies, never an event
# that changed nothing.
def record_member_joined(uow, joining: upstream.Joining, position: Position = UNORDERED) -> None:
    sequence = position.sequence_in(f"school:{joining.urn}")
    with uow:
        school = repo.school_copy(uow.session, joining.urn)
        repo.save_school_copy(uow.session, school.joined(joining, sequence))
        repo.set_mat_from(uow.session, joining.urn, joining.joined_on or dt.date(2000, 1, 1), joining.details.mat_id,
                          sequence)
        uow.commit()


def record_member_left(uow, leaving: upstream.Leaving, position: Position = UNORDERED) -> list[dict]:
    """The school is no member from the leaving date; its hosted reviews from then are cancelled, its
    reviewers replaced, its meetings moved. A joining older than the leaving never undoes it."""
    urn, day = leaving.urn, leaving.effective_date
    with uow:
        before = repo.school_copy(uow.session, urn)
        after = before.left(leaving, position.sequence_in(f"school:{urn}"))
        changed = []
        if after != before:
            repo.save_school_copy(uow.session, after)
            # a partial copy was never a member: no review or meeting can involve it
            if before.is_member_record:
                changed = _replan_reviews(uow, day, f"school {urn} left the partnership on {day}", left=urn)
                changed += _move_meetings(uow, urn, day, f"host {urn} left the partnership on {day}")
        uow.commit()
    return changed


def record_member_details_changed(uow, change: upstream.DetailsChange, position: Position = UNORDERED) -> list[dict]:
    """The school's current details, unless a newer event already gave them; its MAT from the change's
    effective date in any case (a dated fact stays true when later changes follow). A change of that
    MAT re-plans reviews from the date."""
    urn, day, mat_id = change.urn, change.effective_date, change.details.mat_id
    sequence = position.sequence_in(f"school:{urn}")
    with uow:
        school = repo.school_copy(uow.session, urn)
        repo.save_school_copy(uow.session, school.details_changed(change, sequence))
        mat_before = repo.mat_on(uow.session, urn, day)
        changed = []
        if repo.set_mat_from(uow.session, urn, day, mat_id, sequence) and mat_before != mat_id:
            changed = _replan_reviews(uow, day, f"school {urn} moved to MAT {mat_id} on {day}")
        uow.commit()
    return changed


def record_census(uow, census: upstream.Census, position: Position = UNORDERED) -> None:
    with uow:
        school = repo.school_copy(uow.session, census.urn)
        repo.save_school_copy(uow.session, school.census_recorded(census.number_on_roll,
                                                                  position.sequence_in(f"school:{census.urn}")))
        uow.commit()


def record_conversion(uow, conversion: upstream.Conversion, position: Position = UNORDERED) -> list[dict]:
    """The predecessor closes on the conversion date; the successor (same membership) opens in the MAT.
    Its people move with it; peer reviews from that date are checked and only broken ones re-planned.

    The conversion is the successor's first event: what it says of the successor yields to any of
    the successor's own events, whichever arrives first."""
    day, old, new, mat = (conversion.conversion_date, conversion.predecessor_urn, conversion.successor.urn,
                          conversion.mat_id)
    with uow:
        predecessor = repo.school_copy(uow.session, old)
        successor = repo.school_copy(uow.session, new)
        repo.save_school_copy(uow.session, predecessor.converted(conversion, position.sequence_in(f"school:{old}")))
        repo.save_school_copy(uow.session, successor.opened_by(conversion))
        venue = repo.school(uow.session, old)["venue_capacity"]
        if venue is not None and repo.school(uow.session, new)["venue_capacity"] is None:
            repo.update_school(uow.session, new, venue_capacity=venue)
        repo.set_mat_from(uow.session, new, day, mat, BEFORE_OWN_EVENTS)
        previous_urns = {r["reviewer_id"]: r["urn"] for r in repo.reviewer_rows(uow.session)}
        repo.move_contacts(uow.session, old, new)
        repo.copy_calendar(uow.session, old, new, day)
        changed = _replan_reviews(uow, day, f"school {old} converted to academy {new} in MAT {mat} on {day}",
                                  renamed=(old, new), previous_urns=previous_urns)
        changed += _move_meetings(uow, old, day, f"host {old} converted to academy {new} on {day}", renamed=new)
        uow.commit()
    return changed


def record_contact(uow, role: upstream.ContactRole, position: Position = UNORDERED) -> None:
    """The person's role, unless a newer one is known or they were erased. A person at a school that
    has converted is recorded at the academy, as the conversion moved those it found. Each role is also
    kept on its own with whether it may commit the school's spending (as catalogue keeps it): a paid
    place is booked only by such a person."""
    sequence = position.sequence_in(f"contact:{role.contact_id}")
    with uow:
        person = repo.contact_copy(uow.session, role.contact_id)
        urn = repo.successor_of(uow.session, role.urn)
        repo.save_contact_copy(uow.session, person.role_changed(role, urn, sequence))
        if not person.erased:
            repo.put_contact_role(uow.session, role.contact_id, urn, role.role, role.may_commit_spending, role.active,
                                  sequence)
        uow.commit()


def erase_contact(uow, erasure: upstream.ContactErasure, position: Position = UNORDERED) -> None:
    """Name and role go for good: a tombstone stays, so no role change, however late, brings them back.
    The name also goes from every peer-review report that names it, and the person from the outbox
    and the audit trail, in the same transaction."""
    with uow:
        person = repo.contact_copy(uow.session, erasure.contact_id)
        repo.save_contact_copy(uow.session, person.erased_now(position.sequence_in(f"contact:{erasure.contact_id}")))
        repo.erase_contact_roles(uow.session, erasure.contact_id)
        repo.erase_person_elsewhere(uow.session, erasure.contact_id, [person.display_name] if person.display_name else [])
        uow.commit()


def record_offering(uow, offering: upstream.Offering, position: Position = UNORDERED) -> None:
    with uow:
        repo.put_offering(uow.session, dataclasses.asdict(offering),
                          position.sequence_in(f"offering:{offering.offering_code}"))
        uow.commit()


def record_edition_price(uow, price: upstream.EditionPrice, position: Position = UNORDERED) -> None:
    with uow:
        repo.put_edition_price(uow.session, price.offering_code, price.edition_year, {
            "model": price.model, "subscriber_price_pence": price.subscriber_price_pence,
            "non_subscriber_price_pence": price.non_subscriber_price_pence,
            "included_places": upstream.included_places(price.entitlements)},
            position.sequence_in(f"offering:{price.offering_code}"))
        uow.commit()


def record_eligibility(uow, sla: upstream.SLA, position: Position = UNORDERED, *, renewal: bool = False) -> SLACopy:
    """An SLA (`subscription_started`, or with `renewal` a `subscription_renewed`: a new term, fresh
    entitlements). A `subscription_started` that carries another SLA on (`continues_subscription_id`:
    moved to the academy at conversion) is the same agreement: the included places already used under
    the old SLA are used for the successor too. An ending that arrived first still cuts its cover."""
    with uow:
        included, delegate_used = sla.included_places, 0
        previous = None if renewal else sla.continues_subscription_id
        old = repo.eligibility_row(uow.session, str(previous)) if previous else None
        if old is not None and old["subscription_id"] != sla.subscription_id:
            used = repo.included_used(uow.session, [old["subscription_id"]]).get(old["subscription_id"], 0)
            carried = min(included, old["included_places"])
            included = max(0, carried - used)
            # places used beyond the included ones came out of the delegate places the SLA paid for
            delegate_used = max(0, used - carried) + old["delegate_places_used_before"]
        copy = repo.sla_copy(uow.session, sla.subscription_id, sla.urn)
        after = copy.started(sla, included, position.sequence_in(f"school:{sla.urn}"), delegate_used)
        repo.save_sla_copy(uow.session, after)
        if after.terms_sequence != copy.terms_sequence:  # these terms are the newest: so are their components
            repo.replace_components(uow.session, sla.subscription_id, sla.components)
        uow.commit()
    return after


def end_eligibility(uow, ending: upstream.SLAEnding) -> None:
    """The SLA covers nothing from the ending's date; arriving before the SLA's start, it waits for it.
    Endings only shorten cover, so the earliest counts whatever the order: no position needed."""
    with uow:
        copy = repo.sla_copy(uow.session, ending.subscription_id, ending.urn)
        repo.save_sla_copy(uow.session, copy.ended(ending))
        uow.commit()


# =============================================================== calendars
def set_la_term_dates(uow, la: str, year: int, periods: list[dict]) -> dict:
    dates = _term_dates(year, periods)
    with uow:
        repo.set_la_term_dates(uow.session, cal.la_key(la), year, _periods_json(dates))
        uow.commit()
    return {"local_authority": cal.la_key(la), "academic_year": year, "periods": _periods_json(dates)}


def set_school_term_dates(uow, urn: str, year: int, periods: list[dict]) -> dict:
    dates = _term_dates(year, periods)
    with uow:
        school = _school(uow.session, urn)
        if cal.follows_la_dates(school.get("establishment_type")):
            raise Refused(f"school {urn} is a {school.get('establishment_type')} school: it follows its LA's term dates",
                          field="periods", rule="la_sets_term_dates")
        repo.set_school_term_dates(uow.session, urn, year, _periods_json(dates))
        uow.commit()
    return {"urn": urn, "academic_year": year, "periods": _periods_json(dates)}


def set_inset_days(uow, urn: str, year: int, days: list[dt.date]) -> dict:
    if len(set(days)) != len(days) or len(days) > 5:
        raise Refused("a school has at most five distinct INSET days a year", field="days", rule="at_most_five")
    outside = [d for d in days if cal.academic_year_of(d) != year]
    if outside:
        raise Refused(f"{outside[0]} is not in academic year {year}", field="days", rule="in_academic_year")
    with uow:
        _school(uow.session, urn)
        repo.set_inset_days(uow.session, urn, year, sorted(days))
        uow.commit()
    return {"urn": urn, "academic_year": year, "inset_days": [d.isoformat() for d in sorted(days)]}


def school_open(session, urn: str, day: dt.date) -> dict:
    _school(session, urn)
    calendars = repo.calendars(session, cal.academic_year_of(day), [urn])
    if urn not in calendars:
        raise Refused(f"no term dates for school {urn}'s local authority in {cal.academic_year_of(day)}",
                      field="date", rule="term_dates_known")
    calendar = calendars[urn]
    reason = None
    if day.weekday() >= 5:
        reason = "weekend"
    elif calendar.term_dates.term_of(day) is None:
        reason = "school holiday"
    elif cal.is_bank_holiday(day):
        reason = "bank holiday"
    elif day in calendar.inset_days:
        reason = "INSET day"
    return {"urn": urn, "date": day.isoformat(), "open": cal.is_open(calendar, day), "closed_because": reason}


def _term_dates(year: int, periods: list[dict]) -> cal.TermDates:
    try:
        return cal.term_dates_from_dict(year, periods)
    except ValueError as exc:
        raise Refused(str(exc), field="periods", rule="valid_term_dates") from None


def _periods_json(dates: cal.TermDates) -> list[dict]:
    return [{"term": p.term, "start": p.start.isoformat(), "end": p.end.isoformat()} for p in dates.periods]


def _school(session, urn: str) -> dict:
    """A school known as a member (now or before); a partial copy is not one yet."""
    found = repo.school(session, urn)
    if found is None or not is_member_record(found["details_sequence"], found["lifecycle_sequence"]):
        raise NotKnown(f"scheduling knows no school with URN {urn}")
    return found


# =============================================================== peer reviews
def register_reviewer(uow, reviewer_id: str, urn: str, trained: bool, can_lead: bool,
                      unavailable: list[dt.date], today: dt.date | None = None) -> dict:
    """Adds or updates a reviewer; reviews from today on that the change breaks are re-planned."""
    with uow:
        school = _school(uow.session, urn)
        if not _member_on(school, today or business_date.today()):
            raise Refused(f"school {urn} is no longer a member", field="urn", rule="active_member")
        if can_lead and not trained:
            raise Refused("a lead reviewer must be trained", field="can_lead", rule="lead_is_trained")
        repo_had = any(r["reviewer_id"] == reviewer_id for r in repo.reviewer_rows(uow.session))
        repo.upsert_reviewer(uow.session, reviewer_id, urn, trained, can_lead, sorted(d.isoformat() for d in unavailable))
        changed = _replan_reviews(uow, today or business_date.today(),
                                  f"reviewer {reviewer_id} became unavailable or changed role") if repo_had else []
        uow.commit()
    return {"reviewer_id": reviewer_id, "urn": urn, "trained": trained, "can_lead": can_lead,
            "unavailable": sorted(d.isoformat() for d in unavailable), "rescheduled": changed}


def plan_cycle(uow, cycle: int, offering_code: str, days: int, team_size: int, time_limit: float,
               run=lambda fn, *args, **kwargs: fn(*args, **kwargs)) -> dict:
    """Plans and publishes a cycle's reviews. `run` executes the (CPU-bound) planner; the
    entrypoint passes a runner that keeps the service responsive meanwhile."""
    with uow:
        if repo.cycle(uow.session, cycle):
            raise AlreadyExists(f"peer reviews for cycle {cycle} are already planned")
        first, last = dt.date(cycle, 9, 1), dt.date(cycle + 1, 8, 31)
        subscribed = repo.subscribed_urns(uow.session, offering_code, first, last)
        rows = repo.member_rows(uow.session, subscribed)
        hosts = {u for u, r in rows.items() if r["active"]}
        if not hosts:
            raise Refused(f"no active school subscribes to {offering_code} in cycle {cycle}",
                          field="offering_code", rule="subscribed_hosts")
        # reviewers come from schools subscribed to peer review (`problem.subscribed`, kept by the planner,
        # every re-plan and the validator alike)
        problem = repo.review_problem(uow.session, cycle, hosts, days, team_size, offering_code)
        missing = sorted(hosts - {h.urn for h in problem.hosts})
        if missing:
            raise Refused(f"no term dates known for host school(s) {', '.join(missing[:5])} in {cycle}",
                          field="cycle", rule="term_dates_known")
        try:
            result = run(pr.plan, problem, time_limit=time_limit)
        except pr.Infeasible as exc:
            raise Refused("no peer-review schedule satisfies the hard rules", rule="infeasible",
                          reasons=exc.reasons) from None
        violations = validate(problem, result.reviews)
        if violations:  # never publish a schedule the independent validator refuses
            raise Refused("the planned schedule failed validation", rule="validator",
                          reasons=[f"{v.rule}: {v.detail}" for v in violations])
        repo.add_cycle(uow.session, cycle, offering_code, result.method, result.parts, days, team_size)
        out = []
        urn_of = {k: r.urn for k, r in problem.reviewers.items()}
        for review in result.reviews:
            review_id = str(uuid.uuid4())
            repo.add_review(uow.session, review_id, cycle, review)
            repo.add_diary(uow.session, _review_diary(review_id, review))
            body = _review_payload(review_id, cycle, review, urn_of)
            uow.publish("peer_review_scheduled", {**body, "method": result.method}, aggregate=f"school:{review.host_urn}")
            out.append(body)
        uow.commit()
    return {"cycle": cycle, "method": result.method, "parts": result.parts, "seconds": round(result.seconds, 3),
            "violations": 0, "reviews": out}


def _review_payload(review_id, cycle, review: pr.Review, urn_of) -> dict:
    """The review as events and the API show it; `urn_of` maps each reviewer to their school."""
    return {"review_id": review_id, "cycle": cycle, "host_urn": review.host_urn,
            "dates": list(review.dates),
            "team": [{"reviewer_id": rid, "urn": urn_of[rid], "role": role}
                     for rid, role in review.team]}


def _review_diary(review_id: str, review: pr.Review) -> list[di.Entry]:
    return [di.Entry(rid, day, di.PEER_REVIEW, review_id, f"peer review of school {review.host_urn}")
            for rid in review.reviewer_ids for day in review.dates]


def _replan_reviews(uow, day: dt.date, reason: str, *, renamed: tuple[str, str] | None = None,
                    left: str | None = None, previous_urns: dict | None = None) -> list[dict]:
    """Re-plan, in every cycle that reaches past `day`, only the reviews from `day` on that now break a rule."""
    changed_out = []
    session = uow.session
    urns_now = None  # each reviewer's school now (read once: only reviews change below)
    for number in repo.cycles_touching(session, day):
        settings = repo.cycle(session, number)
        stored = repo.reviews_of_cycle(session, number)
        if not stored:
            continue
        before = {rid: review for rid, review, _row in stored}
        if urns_now is None:
            urns_now = {r["reviewer_id"]: r["urn"] for r in repo.reviewer_rows(session)}
        # the team as stored, with each reviewer's school as it was then (for `previous_team`)
        urns_before = previous_urns or urns_now
        reviews = []
        for rid, review, row in stored:
            if renamed and review.host_urn == renamed[0] and review.dates[0] >= day:
                review = pr.Review(renamed[1], review.dates, review.team)
            reviews.append((rid, review))
        if left:
            for rid, review in list(reviews):
                if review.host_urn == left and review.dates[-1] >= day:
                    old_review = before[rid]
                    repo.update_review(session, rid, None, status="cancelled")
                    repo.remove_diary(session, rid)
                    old_payload = _review_payload(rid, number, old_review, urns_before)
                    payload = {**old_payload, "status": "cancelled", "previous_host_urn": old_review.host_urn,
                               "previous_dates": list(old_review.dates), "previous_team": old_payload["team"],
                               "reason": reason}
                    uow.publish("peer_review_rescheduled", payload, aggregate=f"school:{old_review.host_urn}")
                    changed_out.append(payload)
                    reviews.remove((rid, review))
        hosts = [r.host_urn for _, r in reviews]
        problem = repo.review_problem(session, number, hosts, settings["days"], settings["team_size"],
                                      settings["offering_code"])
        ids = [rid for rid, _ in reviews]
        plain = [r for _, r in reviews]
        new, changed, unresolved = pr.replan(problem, plain, from_date=day,
                                             problems_of=lambda r: validate(problem, [r], require_all_hosts=False))
        for reason_left in unresolved:  # stays visible as a violation in GET /peer-review-cycles/<cycle>
            log.warning("cycle %s: %s", number, reason_left)
        for rid, fresh in zip(ids, new):
            original = before[rid]
            if fresh == original:
                continue
            repo.update_review(session, rid, fresh)
            repo.remove_diary(session, rid)
            repo.add_diary(session, _review_diary(rid, fresh))
            payload = {**_review_payload(rid, number, fresh, urns_now), "status": "scheduled",
                       "previous_host_urn": original.host_urn,
                       "previous_dates": list(original.dates),
                       "previous_team": _review_payload(rid, number, original, urns_before)["team"],
                       "reason": reason}
            uow.publish("peer_review_rescheduled", payload, aggregate=f"school:{fresh.host_urn}")
            changed_out.append(payload)
    return changed_out


def cycle_view(session, number: int) -> dict:
    settings = repo.cycle(session, number)
    if settings is None:
        raise NotKnown(f"no peer reviews planned for cycle {number}")
    stored = repo.reviews_of_cycle(session, number, status=None)
    live = [review for _, review, row in stored if row["status"] == "scheduled"]
    problem = repo.review_problem(session, number, [r.host_urn for r in live], settings["days"], settings["team_size"],
                                  settings["offering_code"])
    violations = validate(problem, live)
    urn_of = {r["reviewer_id"]: r["urn"] for r in repo.reviewer_rows(session)}
    loads: dict[str, int] = {}
    for review in live:
        for rid in review.reviewer_ids:
            loads[rid] = loads.get(rid, 0) + 1
    return {"cycle": number, "method": settings["method"], "parts": settings["parts"],
            "violations": [f"{v.rule}: {v.detail}" for v in violations],
            "load": {"min": min(loads.values(), default=0), "max": max(loads.values(), default=0)},
            "reviews": [{**_review_payload(rid, number, review, urn_of), "status": row["status"]}
                        for rid, review, row in stored]}


def write_report(uow, review_id: str, urn: str, report: str) -> dict:
    with uow:
        row = repo.review_row(uow.session, review_id)
        if row is None:
            raise NotKnown(f"no peer review {review_id}")
        if row["host_urn"] != urn:
            raise Refused("only the host school's review team lead files a review's report; it is private to the host",
                          field="urn", rule="host_only")
        repo.set_report(uow.session, review_id, report)
        uow.commit()
    return {"review_id": review_id, "host_urn": urn}


def read_report(session, review_id: str, urn: str) -> dict:
    row = repo.review_row(session, review_id)
    if row is None:
        raise NotKnown(f"no peer review {review_id}")
    if row["host_urn"] != urn:
        # Never name the host: which school a review visits is not the asker's to learn (issue 15).
        raise Forbidden("a review's report is private to its host school")
    return {"review_id": review_id, "host_urn": urn, "report": row["report"]}


class Forbidden(Exception):
    """The object is the caller's to know of, but not this part of it (a private report): 403."""

    refusal = "forbidden"


# =============================================================== networks and meetings
def create_network(uow, name: str, member_urns: list[str], people: list[str], preferred_weekday) -> dict:
    with uow:
        if repo.network_by_name(uow.session, name):
            raise AlreadyExists(f"a network called {name!r} exists")
        rows = repo.member_rows(uow.session, member_urns)
        unknown = sorted(set(member_urns) - set(rows))
        if unknown:
            raise NotKnown(f"scheduling knows no school with URN {', '.join(unknown)}")
        inactive = sorted(u for u, r in rows.items() if not r["active"])
        if inactive:
            raise Refused(f"school(s) {', '.join(inactive)} are no longer members", field="member_urns",
                          rule="active_member")
        for person in people:
            found = repo.contact(uow.session, person)
            if found is None or not found["active"] or found["urn"] not in member_urns:
                raise Refused(f"person {person} is not an active contact at a member school of the network",
                              field="people", rule="member_school_contact")
        network_id = str(uuid.uuid4())
        repo.add_network(uow.session, {"network_id": network_id, "name": name, "member_urns": sorted(set(member_urns)),
                                       "people": list(dict.fromkeys(people))})
        uow.commit()
    return {"network_id": network_id, "name": name, "member_urns": sorted(set(member_urns)), "people": people,
            "preferred_weekday": preferred_weekday}


def _diary(session, year: int) -> networks.Diary:
    """Host schools from the year's meetings; people from the one diary (meetings, courses, peer reviews,
    coaching sessions alike)."""
    diary = networks.Diary()
    for m in repo.meetings(session):
        if m["academic_year"] == year:
            diary.hosts.add((m["host_urn"], m["day"]))
    for entry in repo.diary_entries(session, first=dt.date(year, 9, 1), last=dt.date(year + 1, 8, 31)):
        diary.people.add((entry.person_id, entry.day))
    return diary


def _meeting_diary(meeting_id: str, network_name: str, people, day: dt.date) -> list[di.Entry]:
    return [di.Entry(person, day, di.NETWORK_MEETING, meeting_id, f"network meeting of {network_name}")
            for person in dict.fromkeys(people)]


def plan_meetings(uow, network_id: str, year: int) -> dict:
    with uow:
        row = repo.network(uow.session, network_id)
        if row is None:
            raise NotKnown(f"no network {network_id}")
        existing = [m for m in repo.meetings(uow.session, network_id) if m["academic_year"] == year]
        if existing:
            raise AlreadyExists(f"meetings of {row['name']} for {year} are already planned")
        net = networks.Network(network_id, row["name"], tuple(row["member_urns"]), tuple(row["people"]))
        calendars = repo.calendars(uow.session, year, net.member_urns)
        schools = repo.member_rows(uow.session, net.member_urns)
        capacities = {u: (r["venue_capacity"] or 30) for u, r in schools.items() if r["active"]}
        history = [(m["host_urn"], m["day"]) for m in repo.meetings(uow.session, network_id)]
        try:
            planned = networks.plan_year(net, year, calendars, capacities, history, _diary(uow.session, year))
        except networks.NoMeetingPossible as exc:
            raise Refused(str(exc), rule="no_meeting_possible") from None
        out = []
        for meeting in planned:
            meeting_id = str(uuid.uuid4())
            repo.add_meeting(uow.session, {"meeting_id": meeting_id, "network_id": network_id, "academic_year": year,
                                           "term": meeting.term, "day": meeting.date, "host_urn": meeting.host_urn,
                                           "invited": meeting.invited})
            repo.add_diary(uow.session, _meeting_diary(meeting_id, net.name, net.people, meeting.date))
            body = {"meeting_id": meeting_id, "network_id": network_id, "network_name": net.name,
                    "academic_year": year, "term": meeting.term, "date": meeting.date,
                    "host_urn": meeting.host_urn, "invited": meeting.invited}
            uow.publish("meeting_scheduled", body, aggregate=f"network:{network_id}")
            out.append(body)
        uow.commit()
    return {"network_id": network_id, "academic_year": year, "meetings": out}


def _move_meetings(uow, urn: str, day: dt.date, reason: str, renamed: str | None = None) -> list[dict]:
    """A converted host keeps its meetings under its new URN; a host that left hands each of its
    meetings from `day` on to the next school in the rotation, in the same term."""
    session = uow.session
    out = []
    for net in repo.networks(session):
        if urn not in net["member_urns"]:
            continue
        members = [m for m in net["member_urns"] if m != urn] + ([renamed] if renamed else [])
        repo.update_network(session, net["network_id"], member_urns=sorted(members))
        network = networks.Network(net["network_id"], net["name"], tuple(sorted(members)), tuple(net["people"]))
        for m in repo.meetings(session, net["network_id"]):
            if m["host_urn"] != urn or m["day"] < day:
                continue
            if renamed:
                moved = networks.Meeting(net["network_id"], m["term"], m["day"], renamed, m["invited"])
            else:
                year = m["academic_year"]
                calendars = repo.calendars(session, year, members)
                schools = repo.member_rows(session, members)
                capacities = {u: (r["venue_capacity"] or 30) for u, r in schools.items() if r["active"]}
                history = [(x["host_urn"], x["day"]) for x in repo.meetings(session, net["network_id"])
                           if x["meeting_id"] != m["meeting_id"]]
                old = networks.Meeting(net["network_id"], m["term"], m["day"], urn, m["invited"])
                try:
                    moved = networks.reschedule(old, network, calendars, capacities, history, _diary(session, year))
                except networks.NoMeetingPossible as exc:
                    log.warning("meeting %s could not move: %s", m["meeting_id"], exc)
                    continue
            repo.update_meeting(session, m["meeting_id"], day=moved.date, host_urn=moved.host_urn)
            if moved.date != m["day"]:
                repo.remove_diary(session, m["meeting_id"])
                repo.add_diary(session, _meeting_diary(m["meeting_id"], net["name"], net["people"], moved.date))
            body = {"meeting_id": m["meeting_id"], "network_id": net["network_id"], "network_name": net["name"],
                    "academic_year": m["academic_year"], "term": m["term"], "date": moved.date,
                    "host_urn": moved.host_urn, "invited": m["invited"], "previous_date": m["day"],
                    "previous_host_urn": urn, "reason": reason}
            uow.publish("meeting_rescheduled", body, aggregate=f"network:{net['network_id']}")
            out.append(body)
    return out


def network_view(session, network_id: str) -> dict:
    row = repo.network(session, network_id)
    if row is None:
        raise NotKnown(f"no network {network_id}")
    return {**row, "meetings": [{**m, "day": m["day"].isoformat()} for m in repo.meetings(session, network_id)]}


def set_venue_capacity(uow, urn: str, capacity: int) -> dict:
    with uow:
        _school(uow.session, urn)
        repo.update_school(uow.session, urn, venue_capacity=capacity)
        uow.commit()
    return {"urn": urn, "venue_capacity": capacity}


# =============================================================== courses and bookings
def create_course(uow, values: dict) -> dict:
    with uow:
        if repo.course(uow.session, values["course_code"]):
            raise AlreadyExists(f"course {values['course_code']} exists")
        if values.get("offering_code"):
            found = repo.offering(uow.session, values["offering_code"])
            if found is None:
                raise NotKnown(f"no offering {values['offering_code']} has been published")
            values = {**values, "service_area": values.get("service_area") or found["service_area"],
                      "vat_treatment": values.get("vat_treatment") or found["vat_treatment"]}
        if not values.get("service_area") or not values.get("vat_treatment"):
            raise Refused("a course without an offering needs service_area and vat_treatment",
                          field="service_area", rule="required_without_offering")
        repo.add_course(uow.session, values)
        uow.commit()
    return values


def add_session(uow, course_code: str, day: dt.date, capacity: int, cutoff_days: int,
                booking_cutoff_days: int = 0) -> dict:
    """A session with its capacity, its cancellation cut-off (`cutoff_days` before it) and its booking
    cut-off (`booking_cutoff_days` before it; 0: bookable up to the day)."""
    with uow:
        if repo.course(uow.session, course_code) is None:
            raise NotKnown(f"no course {course_code}")
        if day.weekday() >= 5 or cal.is_bank_holiday(day):
            raise Refused(f"{day} is a weekend or bank holiday: every school is closed", field="date",
                          rule="open_day")
        session_id = str(uuid.uuid4())
        repo.add_session(uow.session, {"session_id": session_id, "course_code": course_code, "day": day,
                                       "capacity": capacity, "cutoff_days": cutoff_days,
                                       "booking_cutoff_days": booking_cutoff_days})
        uow.commit()
    return {"session_id": session_id, "course_code": course_code, "date": day.isoformat(), "capacity": capacity,
            "cutoff_days": cutoff_days, "booking_cutoff_days": booking_cutoff_days}


def _price(session, course: dict, urn: str, day: dt.date, session_day: dt.date) -> courses.PriceDecision:
    code = course["offering_code"]
    if not code:
        return courses.PriceDecision("free", 0, None)
    row = repo.edition_price(session, code, cal.academic_year_of(session_day))
    price = None
    if row and row["non_subscriber_price_pence"] is not None:
        price = courses.Price(row["subscriber_price_pence"] if row["subscriber_price_pence"] is not None
                              else row["non_subscriber_price_pence"], row["non_subscriber_price_pence"])
    held = []
    for e in repo.entitlements(session, urn, code):
        edition = repo.edition_price(session, code, e["edition_year"] or cal.academic_year_of(e["period_start"]))
        # a per-delegate SLA paid for `quantity` places: those are the school's, never charged again
        bought = e["quantity"] if edition and edition["model"] == "per_delegate" else 0
        bought = max(0, bought - e.get("delegate_places_used_before", 0))  # used before a conversion
        held.append(courses.Entitlement(e["subscription_id"], e["period_start"], e["period_end"],
                                        courses.places_held(e["included_places"], bought)))
    used = repo.included_used(session, [e.subscription_id for e in held], code)
    return courses.price_for(day, price, held, used)


def _as_date(value) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _member_on(school: dict | None, day: dt.date) -> bool:
    """A member on `day`: open, or leaving (or converting) only from a later date (`closed_on` is the first
    day no longer a member, which membership announces in advance). A partial copy is no member."""
    if school is None or not is_member_record(school["details_sequence"], school["lifecycle_sequence"]):
        return False
    closed_on = _as_date(school.get("closed_on"))
    return bool(school["active"]) or (closed_on is not None and day < closed_on)


def _opened_by(session, school: dict | None, day: dt.date) -> bool:
    """An academy made by conversion exists from its conversion date (its predecessor's `closed_on`)."""
    if school is None or not school.get("predecessor_urn"):
        return True
    predecessor = repo.school(session, school["predecessor_urn"])
    closed_on = _as_date(predecessor.get("closed_on")) if predecessor else None
    return closed_on is None or day >= closed_on


def _works_at_on(session, person: dict, urn: str, day: dt.date) -> bool:
    """The person's school on `day`: their school, or (before a conversion date, their people having
    moved to the academy when the event arrived) the maintained school it converts from."""
    if person["urn"] == urn:
        return True
    theirs = repo.school(session, person["urn"])
    return bool(theirs and theirs.get("predecessor_urn") == urn and not _opened_by(session, theirs, day))


def book(uow, session_id: str, urn: str, contact_id: str, booked_on: dt.date) -> dict:
    with uow:
        found = repo.session_row(uow.session, session_id, lock=True)
        if found is None:
            raise NotKnown(f"no session {session_id}")
        school = repo.school(uow.session, urn)
        if not _member_on(school, found["day"]) or not _opened_by(uow.session, school, found["day"]):
            raise Refused(f"school {urn} is not a member on {found['day']}: only member schools' people may book",
                          field="urn", rule="member_school")
        person = repo.contact(uow.session, contact_id)
        # active in some role there: the newest event may have ended another role the person held
        active = person is not None and (person["active"] or repo.has_active_role(uow.session, contact_id, person["urn"]))
        if not active or not _works_at_on(uow.session, person, urn, found["day"]):
            raise Refused(f"person {contact_id} is not an active contact of school {urn}", field="contact_id",
                          rule="contact_of_school")
        if booked_on > found["day"]:
            raise Refused("the session has already taken place", field="booked_on", rule="before_session")
        try:
            courses.may_book(found["day"], found["booking_cutoff_days"], booked_on)
        except courses.BookingRefused as exc:
            raise Refused(str(exc), field="booked_on", rule="booking_cut_off") from None
        existing = repo.bookings_of(uow.session, session_id)
        if any(b["contact_id"] == contact_id and b["status"] != courses.CANCELLED for b in existing):
            raise AlreadyExists(f"person {contact_id} already holds a booking on this session")
        course = repo.course(uow.session, found["course_code"])
        confirmed = sum(1 for b in existing if b["status"] == courses.CONFIRMED)
        status = courses.status_for_new_booking(found["capacity"], confirmed)
        # what the place would cost if confirmed now: a paid place needs someone who may commit spending
        would_cost = _price(uow.session, course, urn, booked_on, found["day"])
        try:
            courses.must_have_spending_authority(would_cost, repo.may_commit_spending(uow.session, contact_id,
                                                                                      person["urn"]), contact_id, urn)
        except courses.BookingRefused as exc:
            raise Refused(str(exc), field="contact_id", rule="may_commit_spending") from None
        booking_id = str(uuid.uuid4())
        try:
            di.must_be_free(repo.diary_entries(uow.session, [contact_id], found["day"], found["day"]),
                            [contact_id], [found["day"]])
        except di.DoubleBooked as exc:
            raise Refused(str(exc), field="contact_id", rule="double_booked") from None
        repo.add_diary(uow.session, [di.Entry(contact_id, found["day"], di.COURSE, booking_id,
                                              f"course {course['course_code']} ({course['title']})")])
        position = max((b["position"] for b in existing), default=0) + 1
        base = {"booking_id": booking_id, "session_id": session_id, "course_code": course["course_code"], "urn": urn,
                "contact_id": contact_id, "session_date": found["day"]}
        if status == courses.CONFIRMED:
            decision = would_cost
            repo.add_booking(uow.session, {"booking_id": booking_id, "session_id": session_id, "urn": urn,
                                           "contact_id": contact_id, "status": status, "position": position,
                                           "price_basis": decision.basis, "unit_price_pence": decision.unit_price_pence,
                                           "subscription_id": decision.subscription_id, "booked_on": booked_on})
            body = {**base, "price_basis": decision.basis, "unit_price_pence": decision.unit_price_pence,
                    "promoted_from_waiting_list": False}
            uow.publish("booking_confirmed", body, aggregate=f"session:{session_id}")
        else:
            repo.add_booking(uow.session, {"booking_id": booking_id, "session_id": session_id, "urn": urn,
                                           "contact_id": contact_id, "status": status, "position": position,
                                           "booked_on": booked_on})
            waiting = sum(1 for b in existing if b["status"] == courses.WAITLISTED) + 1
            body = {**base, "position": waiting}
            uow.publish("booking_waitlisted", body, aggregate=f"session:{session_id}")
        uow.commit()
    return {**body, "status": status}


def cancel_booking(uow, booking_id: str, today: dt.date) -> dict:
    with uow:
        found = repo.booking(uow.session, booking_id)
        if found is None:
            raise NotKnown(f"no booking {booking_id}")
        if found["status"] == courses.CANCELLED:
            raise Refused("the booking is already cancelled", rule="not_cancelled")
        sess = repo.session_row(uow.session, found["session_id"], lock=True)
        try:
            courses.may_cancel(sess["day"], sess["cutoff_days"], today)
        except courses.BookingRefused as exc:
            raise Refused(str(exc), rule="cancellation_cut_off") from None
        was_confirmed = found["status"] == courses.CONFIRMED
        repo.update_booking(uow.session, booking_id, status=courses.CANCELLED)
        repo.remove_diary(uow.session, booking_id)
        promoted = None
        if was_confirmed:
            waiting = [(b["position"], b["booking_id"]) for b in repo.bookings_of(uow.session, sess["session_id"])
                       if b["status"] == courses.WAITLISTED]
            next_id = courses.next_in_line(waiting)
            if next_id:
                nb = repo.booking(uow.session, next_id)
                course = repo.course(uow.session, sess["course_code"])
                decision = _price(uow.session, course, nb["urn"], today, sess["day"])
                repo.update_booking(uow.session, next_id, status=courses.CONFIRMED, price_basis=decision.basis,
                                    unit_price_pence=decision.unit_price_pence,
                                    subscription_id=decision.subscription_id)
                promoted = {"booking_id": next_id, "session_id": sess["session_id"], "course_code": sess["course_code"],
                            "urn": nb["urn"], "contact_id": nb["contact_id"], "session_date": sess["day"],
                            "price_basis": decision.basis, "unit_price_pence": decision.unit_price_pence,
                            "promoted_from_waiting_list": True}
                uow.publish("booking_confirmed", promoted, aggregate=f"session:{sess['session_id']}")
        uow.commit()
    return {"booking_id": booking_id, "status": courses.CANCELLED, "promoted": promoted}


def session_view(session, session_id: str) -> dict:
    found = repo.session_row(session, session_id)
    if found is None:
        raise NotKnown(f"no session {session_id}")
    books = repo.bookings_of(session, session_id)
    return {"session_id": session_id, "course_code": found["course_code"], "date": found["day"].isoformat(),
            "capacity": found["capacity"], "cutoff_days": found["cutoff_days"],
            "booking_cutoff_days": found["booking_cutoff_days"],
            "confirmed": [b["booking_id"] for b in books if b["status"] == courses.CONFIRMED],
            "waiting_list": [b["booking_id"] for b in books if b["status"] == courses.WAITLISTED],
            "bookings": [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in b.items()} for b in books]}


def record_attendance(uow, booking_id: str, attended: bool) -> dict:
    with uow:
        found = repo.booking(uow.session, booking_id)
        if found is None:
            raise NotKnown(f"no booking {booking_id}")
        if found["status"] != courses.CONFIRMED:
            raise Refused(f"only a confirmed place has attendance; this booking is {found['status']}",
                          rule="confirmed_booking")
        if repo.attendance_of(uow.session, booking_id):
            raise AlreadyExists(f"attendance for booking {booking_id} is already recorded")
        sess = repo.session_row(uow.session, found["session_id"])
        course = repo.course(uow.session, sess["course_code"])
        # a confirmed paid place is charged whether or not the person came (no-shows pay)
        chargeable = courses.chargeable(found["price_basis"], found["unit_price_pence"])
        attendance_id = str(uuid.uuid4())
        repo.add_attendance(uow.session, {"attendance_id": attendance_id, "booking_id": booking_id,
                                          "attended": attended, "chargeable": chargeable})
        body = {"attendance_id": attendance_id, "booking_id": booking_id, "session_id": sess["session_id"],
                "course_code": course["course_code"], "offering_code": course["offering_code"],
                "service_area": course["service_area"], "urn": found["urn"], "contact_id": found["contact_id"],
                "session_date": sess["day"], "attended": attended, "chargeable": chargeable,
                "price_basis": found["price_basis"], "unit_price_pence": found["unit_price_pence"],
                "vat_treatment": course["vat_treatment"]}
        uow.publish("attendance_recorded", body, aggregate=f"school:{found['urn']}")
        uow.commit()
    return body


# =============================================================== coaching
def match_coaching(session, mentors: list[dict], leaders: list[dict]) -> dict:
    """Pairs mentors with leaders (phase, need, never the same school, load limits); every school must be known."""
    urns = {m["urn"] for m in mentors} | {l["urn"] for l in leaders}
    known = repo.member_rows(session, urns)
    unknown = sorted(urns - set(known))
    if unknown:
        raise NotKnown(f"scheduling knows no school with URN {', '.join(unknown)}")
    pairs, unmatched = coaching.match(
        [coaching.Mentor(m["mentor_id"], m["urn"], m["phase"], frozenset(m["strengths"]), m["capacity"]) for m in mentors],
        [coaching.Leader(l["leader_id"], l["urn"], l["phase"], frozenset(l["needs"])) for l in leaders])
    return {"pairs": [{"mentor_id": p.mentor_id, "leader_id": p.leader_id, "needs_met": list(p.needs_met)}
                      for p in pairs], "unmatched": unmatched}


def form_coaching_pairs(uow, mentors: list[dict], leaders: list[dict], today: dt.date) -> dict:
    """Stores a maximum matching of the mentors and leaders (see `coaching.match`) and publishes
    `coaching_pair_formed` for each pair. Pairs already formed count: a mentor's capacity is what their
    active pairs leave, a leader already paired is not paired again. Every school must be a member today."""
    with uow:
        session = uow.session
        urns = {m["urn"] for m in mentors} | {l["urn"] for l in leaders}
        known = repo.member_rows(session, urns)
        unknown = sorted(urns - set(known))
        if unknown:
            raise NotKnown(f"scheduling knows no school with URN {', '.join(unknown)}")
        gone = sorted(u for u, row in known.items() if not _member_on(row, today))
        if gone:
            raise Refused(f"school(s) {', '.join(gone)} are not members on {today}", field="urn", rule="active_member")
        existing = repo.active_coaching_pairs(session)
        load = {}
        for pair in existing:
            load[pair["mentor_id"]] = load.get(pair["mentor_id"], 0) + 1
        paired = {p["leader_id"]: p["mentor_id"] for p in existing}
        free_leaders = [l for l in leaders if l["leader_id"] not in paired]
        pairs, unmatched = coaching.match(
            [coaching.Mentor(m["mentor_id"], m["urn"], m["phase"], frozenset(m["strengths"]),
                             max(0, m["capacity"] - load.get(m["mentor_id"], 0))) for m in mentors],
            [coaching.Leader(l["leader_id"], l["urn"], l["phase"], frozenset(l["needs"])) for l in free_leaders])
        unmatched += [f"{l['leader_id']}: already paired with mentor {paired[l['leader_id']]}"
                      for l in leaders if l["leader_id"] in paired]
        urn_of = {m["mentor_id"]: m["urn"] for m in mentors} | {l["leader_id"]: l["urn"] for l in leaders}
        out = []
        for pair in pairs:
            body = {"pair_id": str(uuid.uuid4()), "mentor_id": pair.mentor_id, "mentor_urn": urn_of[pair.mentor_id],
                    "leader_id": pair.leader_id, "leader_urn": urn_of[pair.leader_id],
                    "needs_met": list(pair.needs_met), "formed_on": today}
            repo.add_coaching_pair(session, {**body, "status": "active"})
            uow.publish("coaching_pair_formed", body, aggregate=f"coaching_pair:{body['pair_id']}")
            out.append(body)
        uow.commit()
    return {"pairs": out, "unmatched": unmatched}


def book_coaching_session(uow, pair_id: str, day: dt.date, booked_on: dt.date) -> dict:
    """A session of a pair on an open day of both schools, both members then, with neither person
    elsewhere that day (the one diary); publishes `coaching_session_booked`."""
    with uow:
        session = uow.session
        pair = repo.coaching_pair(session, pair_id, lock=True)
        if pair is None or pair["status"] != "active":
            raise NotKnown(f"no active coaching pair {pair_id}")
        if day < booked_on:
            raise Refused(f"{day} has already passed", field="date", rule="not_in_the_past")
        if day.weekday() >= 5 or cal.is_bank_holiday(day):
            raise Refused(f"{day} is a weekend or bank holiday: every school is closed", field="date", rule="open_day")
        urns = [pair["mentor_urn"], pair["leader_urn"]]
        for urn in urns:
            if not _member_on(repo.school(session, urn), day):
                raise Refused(f"school {urn} is not a member on {day}", field="date", rule="member_school")
        calendars = repo.calendars(session, cal.academic_year_of(day), urns)
        for urn in urns:
            if urn in calendars and not cal.is_open(calendars[urn], day):
                raise Refused(f"school {urn} is closed on {day}", field="date", rule="open_day")
        people = [pair["mentor_id"], pair["leader_id"]]
        try:
            di.must_be_free(repo.diary_entries(session, people, day, day), people, [day])
        except di.DoubleBooked as exc:
            raise Refused(str(exc), field="date", rule="double_booked") from None
        session_id = str(uuid.uuid4())
        repo.add_coaching_session(session, {"coaching_session_id": session_id, "pair_id": pair_id, "day": day,
                                            "booked_on": booked_on})
        repo.add_diary(session, [di.Entry(person, day, di.COACHING, session_id,
                                          f"coaching session of mentor {pair['mentor_id']} with {pair['leader_id']}")
                                 for person in people])
        body = {"coaching_session_id": session_id, "pair_id": pair_id, "mentor_id": pair["mentor_id"],
                "mentor_urn": pair["mentor_urn"], "leader_id": pair["leader_id"], "leader_urn": pair["leader_urn"],
                "date": day}
        uow.publish("coaching_session_booked", body, aggregate=f"coaching_pair:{pair_id}")
        uow.commit()
    return body


def coaching_pair_view(session, pair_id: str) -> dict:
    pair = repo.coaching_pair(session, pair_id)
    if pair is None:
        raise NotKnown(f"no coaching pair {pair_id}")
    return {**{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in pair.items()},
            "sessions": [{"coaching_session_id": x["coaching_session_id"], "date": x["day"].isoformat()}
                         for x in repo.coaching_sessions_of(session, pair_id)]}
