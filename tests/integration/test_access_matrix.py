"""Who may call what, route by route, on the four services running as processes (issue 15).

The routes are read off the service classes (as test_bad_input_everywhere does), and each must be in
`MATRIX` below, written by hand (not derived from the declarations it checks): a route added without
a line here fails. Over real HTTP, with tokens from the tests' issuer (JWKS served over HTTP):
- anonymous: 401 with a `WWW-Authenticate: Bearer` challenge on every route but /health and /ready;
  /metrics only with the scrape credential, never with a user's token;
- each role: 403 where the matrix does not allow it, anything but 401/403 where it does;
- school A's staff on school B's objects (and another MAT's staff on them): 404 on every route that
  takes the id of something a school owns, with the very body a missing object gets, naming nothing
  of school B; school B's own MAT reaches them.
"""
from __future__ import annotations

import inspect
import json
import re
import urllib.error
import urllib.request
import uuid

import sqlalchemy as sa
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

import billing.entrypoints.service
import catalogue.entrypoints.service
import membership.entrypoints.service
import scheduling.entrypoints.service
from shared.http import JsonHttp
from tests import factories, tokens
from tests.conftest import billing_run, eventually, http_json
from tests.e2e.steps import appoint, join, ok

SERVICE_CLASSES = {
    "membership": membership.entrypoints.service.MembershipService,
    "catalogue": catalogue.entrypoints.service.CatalogueService,
    "billing": billing.entrypoints.service.BillingService,
    "scheduling": scheduling.entrypoints.service.SchedulingService,
}

# Roles, one token each in the checks below.
TRUST = ("catalogue_manager", "finance", "scheduler", "operations", "membership_officer")
SCHOOL = ("head_teacher", "business_manager", "governor", "senco", "school_staff")
LEADERS = ("head_teacher", "business_manager")
MAT = ("mat_staff", "mat_finance")
COUNCIL = ("council_officer",)
EVERY = TRUST + SCHOOL + MAT + COUNCIL
PUBLIC, SCRAPE = "public", "scrape"


def _(*groups):
    return frozenset(role for group in groups for role in ((group,) if isinstance(group, str) else group))


OPS = {"POST /ops/quiesce": _("operations"), "GET /ops/outbox": _("operations"),
       "GET /audit": _("operations", "finance"), "GET /openapi.json": _(EVERY),
       "GET /health": PUBLIC, "GET /ready": PUBLIC, "GET /metrics": SCRAPE}
SCHOOL_RECORD = _(TRUST, SCHOOL, MAT, COUNCIL)
SCHOOL_PRIVATE = _(TRUST, SCHOOL, MAT)
OFFICER = _("membership_officer")
MATRIX = {
    "membership": {**OPS,
        "POST /members": OFFICER, "POST /applications": OFFICER,
        "POST /members/<string:urn>/activation": OFFICER, "POST /members/<string:urn>/leaving": OFFICER,
        "PATCH /members/<string:urn>": OFFICER, "POST /members/<string:urn>/census": OFFICER,
        "POST /members/<string:urn>/conversion": OFFICER,
        "GET /members/<string:urn>": SCHOOL_RECORD, "GET /members": _(TRUST, COUNCIL),
        "GET /members/<string:urn>/history": SCHOOL_RECORD, "GET /members/<string:urn>/mat": SCHOOL_RECORD,
        "GET /members/<string:urn>/lineage": SCHOOL_RECORD,
        "POST /imports/schools": OFFICER, "POST /imports/links": OFFICER,
        "POST /organisations": OFFICER, "POST /organisations/<string:org_id>/leaving": OFFICER,
        "GET /organisations": _(TRUST, COUNCIL),
        "POST /members/<string:urn>/contacts": OFFICER, "GET /members/<string:urn>/contacts": SCHOOL_PRIVATE,
        "POST /contacts/<string:contact_id>/roles": OFFICER,
        "PATCH /contacts/<string:contact_id>/roles/<string:urn>/<string:role>": OFFICER,
        "POST /contacts/<string:contact_id>/roles/<string:urn>/<string:role>/end": OFFICER,
        "POST /contacts/<string:contact_id>/training": OFFICER,
        "GET /contacts/<string:contact_id>/export": OFFICER, "DELETE /contacts/<string:contact_id>": OFFICER,
        "POST /contacts/<string:contact_id>/committees": OFFICER,
        "POST /committee-memberships/<int:membership_id>/end": OFFICER,
        "GET /members/<string:urn>/committees": SCHOOL_PRIVATE,
        "POST /organisations/<string:org_id>/contacts": OFFICER,
        "GET /organisations/<string:org_id>/contacts": _(TRUST, MAT),
        "POST /contacts/<string:contact_id>/organisation-roles": OFFICER,
        "POST /contacts/<string:contact_id>/organisation-roles/<string:org_id>/<string:role>/end": OFFICER,
        "POST /cooperative/participants": OFFICER,
        "POST /cooperative/participants/<string:party_id>/leaving": OFFICER,
        "PUT /cooperative/participants/<string:party_id>/forum": OFFICER,
        "PUT /cooperative/participants/<string:party_id>/succession": OFFICER,
        "GET /cooperative": _(TRUST, COUNCIL)},
    "catalogue": {**OPS,
        "POST /offerings": _("catalogue_manager"), "GET /offerings": _(EVERY),
        "GET /offerings/<string:code>": _(EVERY),
        "POST /offerings/<string:code>/editions": _("catalogue_manager"),
        "POST /offerings/<string:code>/editions/<int:year>/sale": _("catalogue_manager"),
        "POST /offerings/<string:code>/withdraw": _("catalogue_manager"),
        "GET /quotes": _(EVERY),
        "POST /subscriptions": _(SCHOOL),
        "GET /subscriptions/<string:subscription_id>": SCHOOL_PRIVATE,
        "POST /subscriptions/<string:subscription_id>/cancel": _(SCHOOL),
        "POST /subscriptions/<string:subscription_id>/renewal": _(SCHOOL),
        "POST /renewal-rounds": _("catalogue_manager"), "GET /runs/<string:run_id>": _("catalogue_manager", "operations"),
        "GET /members/<string:urn>": SCHOOL_PRIVATE, "GET /members/<string:urn>/renewal": SCHOOL_PRIVATE,
        "GET /reports/buy-back": _("catalogue_manager", "finance", COUNCIL)},
    "billing": {**OPS,
        "GET /charges": _("finance"), "PUT /mats/<string:mat_id>/billing": _("finance"),
        "POST /billing-runs": _("finance"), "GET /runs/<string:run_id>": _("finance", "operations"),
        "GET /invoices": _("finance"),
        "GET /invoices/<string:number>": _("finance", SCHOOL, MAT),
        "GET /invoices/<string:number>/document.html": _("finance", SCHOOL, MAT),
        "POST /invoices/<string:number>/corrections": _("finance"), "POST /payments": _("finance"),
        "GET /payers/<string:kind>/<string:payer_id>/statement": _("finance", SCHOOL, MAT),
        "GET /reports/aged-debt": _("finance"), "POST /overdue-checks": _("finance"),
        "GET /reports/sustainability": _(TRUST),
        "GET /exports/invoices.csv": _("finance"), "GET /exports/journal.csv": _("finance")},
    "scheduling": {**OPS,
        "GET /schools/<string:urn>": SCHOOL_PRIVATE, "GET /schools/<string:urn>/open/<string:day>": SCHOOL_PRIVATE,
        "PUT /calendars/<string:la>/<int:year>": _("scheduler"),
        "PUT /schools/<string:urn>/term-dates/<int:year>": _("scheduler", LEADERS),
        "PUT /schools/<string:urn>/inset-days/<int:year>": _("scheduler", LEADERS),
        "PUT /schools/<string:urn>/venue": _("scheduler", LEADERS),
        "POST /reviewers": _("scheduler"), "POST /peer-review-cycles": _("scheduler"),
        "GET /peer-review-cycles/<int:cycle>": _("scheduler"),
        "PUT /peer-reviews/<string:review_id>/report": _("scheduler"),
        "GET /peer-reviews/<string:review_id>/report": _("scheduler", SCHOOL, MAT),
        "POST /networks": _("scheduler"), "POST /networks/<string:network_id>/meetings/<int:year>": _("scheduler"),
        "GET /networks/<string:network_id>": _(TRUST),
        "POST /coaching/matches": _("scheduler"), "POST /coaching/pairs": _("scheduler"),
        "GET /coaching/pairs/<string:pair_id>": _("scheduler"),
        "POST /coaching/pairs/<string:pair_id>/sessions": _("scheduler"),
        "POST /courses": _("scheduler"), "POST /courses/<string:code>/sessions": _("scheduler"),
        "GET /sessions/<string:session_id>": _(TRUST),
        "POST /sessions/<string:session_id>/bookings": _(SCHOOL),
        "POST /bookings/<string:booking_id>/cancel": _("scheduler", LEADERS),
        "POST /bookings/<string:booking_id>/attendance": _("scheduler")},
}


def declared_routes():
    """(service, "METHOD url", entrypoint) of every HTTP route, read off the service classes."""
    for service, service_class in SERVICE_CLASSES.items():
        seen = {}
        for _name, method in inspect.getmembers(service_class, inspect.isfunction):
            for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, JsonHttp):
                    seen[f"{entrypoint.method.upper()} {entrypoint.url}"] = entrypoint
        for key, entrypoint in sorted(seen.items()):
            yield service, key, entrypoint


ROUTES = list(declared_routes())


def concrete(url: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: {"urn": "999999", "year": "2026", "cycle": "1",
                                                  "membership_id": "999999", "kind": "school",
                                                  "day": "2026-11-05"}.get(m.group(1), "no-such-thing"), url)


def send(method: str, url: str, token: str | None, body: dict | None = None) -> tuple[int, dict | str, object]:
    data = json.dumps(body if body is not None else {}).encode() if method in ("POST", "PUT", "PATCH") else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **tokens.bearer(token)})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw, status, headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as exc:
        raw, status, headers = exc.read(), exc.code, exc.headers
    try:
        return status, json.loads(raw or b"null"), headers
    except ValueError:
        return status, raw.decode(errors="replace"), headers


def anonymised(answer, ids) -> str:
    """An answer with every object id taken out: two refusals equal here say the same of any object."""
    text = json.dumps(answer, sort_keys=True)
    for value in sorted(ids, key=len, reverse=True):
        text = text.replace(value, "<id>")
    return text


def role_token(role: str, urn: str = "100001", mat_id: str = "TR0AAA") -> str:
    return tokens.token(f"matrix-{role}", [role], urn=urn, mat_id=mat_id, la_code="825")


def test_every_route_is_in_the_matrix_and_declared_as_it_says():
    """A route missing from the matrix (or a matrix line for no route) fails; so does a declaration that
    allows other roles than the matrix."""
    declared = {(service, key) for service, key, _ in ROUTES}
    written = {(service, key) for service, routes in MATRIX.items() for key in routes}
    assert declared - written == set(), f"routes missing from the matrix: {sorted(declared - written)}"
    assert written - declared == set(), f"matrix lines naming no route: {sorted(written - declared)}"
    for service, key, entrypoint in ROUTES:
        expected = MATRIX[service][key]
        access = entrypoint.access
        got = PUBLIC if access.public else SCRAPE if access.scrape else access.allow
        assert got == expected, f"{service} {key}: declared {got}, matrix {expected}"


def test_anonymous_callers_get_401_and_roles_get_403_or_through_as_the_matrix_says(stack_factory, sqlite_databases):
    stack = stack_factory(sqlite_databases).start()
    role_tokens = {role: role_token(role) for role in EVERY}
    failures = []
    # /ops/quiesce last: an allowed call really stops the service's consumers.
    for service, key, _entrypoint in sorted(ROUTES, key=lambda r: r[1] == "POST /ops/quiesce"):
        method, url = key.split(" ", 1)
        path = f"{stack.url(service)}{concrete(url)}"
        expected = MATRIX[service][key]
        status, body, headers = send(method, path, None)
        if expected == PUBLIC:
            if status in (401, 403):
                failures.append(f"{service} {key}: public, but anonymous got {status}")
            continue
        if status != 401 or not headers.get("WWW-Authenticate", "").startswith("Bearer"):
            failures.append(f"{service} {key}: anonymous got {status} {headers.get('WWW-Authenticate')!r}")
        if expected == SCRAPE:
            if send(method, path, tokens.trust_staff())[0] != 401:
                failures.append(f"{service} {key}: a user's token opened the metrics")
            if send(method, path, tokens.METRICS_TOKEN)[0] != 200:
                failures.append(f"{service} {key}: the scrape credential was refused")
            continue
        for role, token in role_tokens.items():
            status, body, _ = send(method, path, token)
            if role in expected and status in (401, 403):
                failures.append(f"{service} {key}: {role} is allowed but got {status} {body}")
            elif role not in expected and status != 403:
                failures.append(f"{service} {key}: {role} is not allowed but got {status}")
    expired = tokens.issuer().token("late", roles=list(TRUST), issued_at=0, lifetime_seconds=60)
    status, body, headers = send("GET", f"{stack.url('billing')}/charges", expired)
    if status != 401 or 'error="invalid_token"' not in headers.get("WWW-Authenticate", ""):
        failures.append(f"an expired token got {status} {headers.get('WWW-Authenticate')!r}")
    assert not failures, "\n".join(failures)


def test_a_school_sees_only_its_own_objects_and_a_mat_those_of_its_schools(stack_factory, sqlite_databases):
    """School A's staff (and another MAT's) on school B's objects: 404 with the body a missing object gets."""
    stack = stack_factory(sqlite_databases).start()
    urls = {name: stack.url(name) for name in SERVICE_CLASSES}
    school_a = factories.school()
    school_b = factories.academy(mat_id="TR0BBB", mat_name="B's Trust", urn=str(int(school_a["urn"]) % 99999 + 100001))
    a, b = school_a["urn"], school_b["urn"]
    join(stack, school_a)
    join(stack, school_b)
    head_b = appoint(stack, b)
    offering = factories.flat_offering()
    ok(201, http_json("POST", f"{urls['catalogue']}/offerings", offering))
    subscription = ok(201, http_json("POST", f"{urls['catalogue']}/subscriptions", {
        "urn": b, "offering_code": offering["code"], "edition_year": 2026},
        token=tokens.school_staff(b, contact_id=head_b)))["subscription_id"]
    eventually(lambda: http_json("GET", f"{urls['billing']}/charges?urn={b}")[1]["count"] == 1, message="charge")
    billing_run(urls["billing"], {"period": "2026/27", "issue_date": "2026-09-01"})
    invoice = http_json("GET", f"{urls['billing']}/invoices")[1]["documents"][0]["number"]
    # A peer review hosted by B and a booking of B's, written straight into scheduling's database:
    # scheduling them needs a solved cycle and a course; what is checked here is only who reaches them.
    review, booking = str(uuid.uuid4()), str(uuid.uuid4())
    engine = sa.create_engine(stack.database_urls["scheduling"])
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO peer_reviews (review_id, cycle, host_urn, dates, team, status, report) "
            "VALUES (:id, 1, :urn, '[]', '[]', 'scheduled', 'private findings')"), {"id": review, "urn": b})
        connection.execute(sa.text(
            "INSERT INTO bookings (booking_id, session_id, urn, contact_id, status, position, booked_on) "
            "VALUES (:id, 'no-session', :urn, :contact, 'confirmed', 1, '2026-10-01')"),
            {"id": booking, "urn": b, "contact": head_b})
    engine.dispose()
    eventually(lambda: http_json("GET", f"{urls['scheduling']}/schools/{b}")[0] == 200, message="scheduling knows B")

    # school B's objects, route by route: (service, route, path for B's object, path for a missing one, body)
    body_b = {"urn": b, "offering_code": offering["code"], "edition_year": 2026}
    objects = [
        ("membership", "GET /members/<string:urn>", f"/members/{b}", "/members/999999", None),
        ("membership", "GET /members/<string:urn>/history", f"/members/{b}/history", "/members/999999/history", None),
        ("membership", "GET /members/<string:urn>/mat", f"/members/{b}/mat", "/members/999999/mat", None),
        ("membership", "GET /members/<string:urn>/lineage", f"/members/{b}/lineage", "/members/999999/lineage", None),
        ("membership", "GET /members/<string:urn>/contacts", f"/members/{b}/contacts", "/members/999999/contacts", None),
        ("membership", "GET /members/<string:urn>/committees", f"/members/{b}/committees",
         "/members/999999/committees", None),
        ("catalogue", "GET /members/<string:urn>", f"/members/{b}", "/members/999999", None),
        ("catalogue", "GET /members/<string:urn>/renewal", f"/members/{b}/renewal?year=2026",
         "/members/999999/renewal?year=2026", None),
        ("catalogue", "GET /subscriptions/<string:subscription_id>", f"/subscriptions/{subscription}",
         "/subscriptions/no-such-sla", None),
        ("catalogue", "POST /subscriptions/<string:subscription_id>/cancel", f"/subscriptions/{subscription}/cancel",
         "/subscriptions/no-such-sla/cancel", {"reason": "x"}),
        ("catalogue", "POST /subscriptions/<string:subscription_id>/renewal",
         f"/subscriptions/{subscription}/renewal", "/subscriptions/no-such-sla/renewal", {}),
        ("billing", "GET /invoices/<string:number>", f"/invoices/{invoice}", "/invoices/NO-SUCH-1", None),
        ("billing", "GET /invoices/<string:number>/document.html", f"/invoices/{invoice}/document.html",
         "/invoices/NO-SUCH-1/document.html", None),
        ("billing", "GET /payers/<string:kind>/<string:payer_id>/statement", f"/payers/school/{b}/statement",
         "/payers/school/999999/statement", None),
        ("scheduling", "GET /schools/<string:urn>", f"/schools/{b}", "/schools/999999", None),
        ("scheduling", "GET /schools/<string:urn>/open/<string:day>", f"/schools/{b}/open/2026-11-05",
         "/schools/999999/open/2026-11-05", None),
        ("scheduling", "PUT /schools/<string:urn>/term-dates/<int:year>", f"/schools/{b}/term-dates/2026",
         "/schools/999999/term-dates/2026", {}),
        ("scheduling", "PUT /schools/<string:urn>/inset-days/<int:year>", f"/schools/{b}/inset-days/2026",
         "/schools/999999/inset-days/2026", {}),
        ("scheduling", "PUT /schools/<string:urn>/venue", f"/schools/{b}/venue", "/schools/999999/venue", {}),
        ("scheduling", "GET /peer-reviews/<string:review_id>/report", f"/peer-reviews/{review}/report",
         "/peer-reviews/no-such-review/report", None),
        ("scheduling", "POST /bookings/<string:booking_id>/cancel", f"/bookings/{booking}/cancel",
         "/bookings/no-such-booking/cancel", {}),
    ]
    # Routes acting for the school their body names: B's name in A's request is refused as not found.
    by_body = [
        ("catalogue", "POST /subscriptions", "/subscriptions", body_b, {**body_b, "urn": "999999"}),
        ("scheduling", "POST /sessions/<string:session_id>/bookings", "/sessions/no-session/bookings",
         {"urn": b}, {"urn": "999999"}),
    ]
    # Every route that takes the id of something a school owns, and that school staff may call, is here.
    owned = {(service, key) for service, key, entrypoint in ROUTES
             if entrypoint.access.owner is not None and entrypoint.access.allow & set(SCHOOL)}
    covered = {(service, key) for service, key, *_ in objects + by_body} | {("catalogue", "GET /quotes")}
    assert owned - covered == set(), f"routes with an owner and no object-level check here: {sorted(owned - covered)}"

    ids = (b, subscription, invoice, review, booking, "999999", "no-such-sla", "NO-SUCH-1", "no-such-review",
           "no-such-booking")
    failures = []
    outsiders = {"head teacher of A": tokens.school_staff(a), "governor of A": tokens.school_staff(a, "governor"),
                 "staff of another MAT": tokens.mat_staff("TR0AAA")}
    for service, key, path_b, path_missing, body in objects + [
            (s, k, p, p, bb) for s, k, p, bb, _ in by_body]:
        method = key.split(" ", 1)[0]
        for who, token in outsiders.items():
            allowed = MATRIX[service][key]
            role = "head_teacher" if "head" in who else "governor" if "governor" in who else "mat_staff"
            if role not in allowed:
                continue
            status, answer, _ = send(method, f"{urls[service]}{path_b}", token, body)
            if status != 404:
                failures.append(f"{who}: {service} {method} {path_b} answered {status} {answer}")
                continue
            missing_body = body if path_b != path_missing else next(
                m for s, k, _p, _b, m in by_body if (s, k) == (service, key))
            status_m, answer_m, _ = send(method, f"{urls[service]}{path_missing}", token, missing_body)
            if status_m != 404 or anonymised(answer, ids) != anonymised(answer_m, ids):
                failures.append(f"{who}: {service} {method} {path_b}: {answer} differs from a missing one's {answer_m}")
            text = json.dumps(answer)
            for secret in (school_b["name"], head_b, "private findings"):
                if secret in text:
                    failures.append(f"{who}: {service} {method} {path_b} named {secret!r}: {answer}")
    # The quote of another school's price (its pupils): refused as not found too.
    status, _answer, _ = send("GET", f"{urls['catalogue']}/quotes?urn={b}&offering_code={offering['code']}&edition_year=2026",
                              tokens.school_staff(a))
    if status != 404:
        failures.append(f"head teacher of A got {status} for B's quote")
    # B's own staff and B's MAT (on the date asked about) reach them.
    # (B's MAT pays centrally, so the invoice is the MAT's: B's own staff see B's statement instead.)
    for who, token, billing_path in (("head teacher of B", tokens.school_staff(b), f"/payers/school/{b}/statement"),
                                     ("staff of B's MAT", tokens.mat_staff("TR0BBB"), f"/invoices/{invoice}")):
        for service, path in (("membership", f"/members/{b}/contacts"), ("catalogue", f"/subscriptions/{subscription}"),
                              ("billing", billing_path), ("scheduling", f"/peer-reviews/{review}/report")):
            status, answer, _ = send("GET", f"{urls[service]}{path}", token)
            out_of_reach = isinstance(answer, dict) and str(answer.get("message", "")).startswith("nothing found for")
            if status in (401, 403) or out_of_reach:
                failures.append(f"{who}: {service} GET {path} answered {status} {answer}")
    assert not failures, "\n".join(failures)
