"""A small county's year across all four services (issue 6), as separate processes on the real
broker (SQLite): twelve schools join through membership (four academies in two MATs, one MAT
paying centrally, the other not; one joins in October), their head teachers buy SLAs in the catalogue, one school
converts into a MAT, one leaves, one cancels an SLA early; a course session with chargeable
places is booked and attended through scheduling; billing (termly) runs the autumn and spring
terms, then the summer term, when a cancelled two-year SLA's second year falls due; payments are
recorded in full, in part and over. Every invoice and credit note total is
checked against figures worked out by hand below, numbers are gap-free, and every charge and
credit is on exactly one document."""
from __future__ import annotations

import pytest

from tests import factories, tokens
from tests.conftest import billing_run, eventually, http_json
from tests.e2e.steps import Observer, appoint, buy, charges, join, offering, ok, publish_offering, rows

MAT_A = {"id": "TR06001", "name": "Great Learners Trust"}  # pays centrally (the default)
MAT_B = {"id": "TR06002", "name": "Oxford Diocesan Bucks Schools Trust"}  # its academies pay themselves

SI = factories.per_pupil_offering(code="SI-COUNTY")  # 150,000 + roll x 825 (primary) / 610 (secondary); min 200,000; VAT 20%
GV = factories.flat_offering(code="GV-COUNTY")  # 95,000 flat, VAT exempt
CP = offering("CP-COUNTY", "Classroom practice review days", "school_improvement", "standard",
              {"model": "per_session", "unit": "day", "unit_price_pence": 47500})
DSL = offering("DSL-COUNTY", "Designated safeguarding lead training", "governance", "exempt",
               {"model": "per_delegate", "subscriber_price_pence": 9500, "non_subscriber_price_pence": 15000},
               edition={"entitlements": [{"kind": "included_place", "quantity": 1}]})

# name -> (urn, roll, phase, MAT or None)
SCHOOLS = {
    "M1": ("140001", 150, "primary", None), "M2": ("140002", 320, "primary", None),
    "M3": ("140003", 95, "primary", None), "M4": ("140004", 900, "secondary", None),
    "M5": ("140005", 210, "primary", None), "M6": ("140006", 180, "primary", None),
    "M7": ("140007", 240, "primary", None), "M8": ("140008", 60, "primary", None),
    "A1": ("150001", 400, "primary", MAT_A), "A2": ("150002", 260, "primary", MAT_A),
    "A3": ("150003", 300, "primary", MAT_B), "A4": ("150004", 120, "primary", MAT_B),
}
A5 = "150005"  # the academy M5 becomes, in MAT A, from 1 January 2027
# What each school buys (edition 2026, one year): maintained April 2026-March 2027, academies September-August.
PURCHASES = {
    "M1": [("SI", {}), ("GV", {}), ("DSL", {})], "M2": [("SI", {}), ("CP", {"quantity": 3})],
    "M3": [("GV", {})], "M4": [("SI", {})], "M5": [("SI", {}), ("DSL", {})], "M6": [("SI", {}), ("GV", {})],
    "M7": [("GV", {}), ("SI", {})], "M8": [("SI", {"years": 2})], "A1": [("SI", {})], "A2": [("GV", {})],
    "A3": [("SI", {})], "A4": [("GV", {})],
}
# Annual prices by hand:
PRICES = {
    ("M1", "SI"): 273750,   # 150,000 + 150 x 825
    ("M1", "GV"): 95000,
    ("M1", "DSL"): 9500,    # one delegate place at the subscriber price: M1 holds GV (governance) on 1 April
    ("M2", "SI"): 414000,   # 150,000 + 320 x 825
    ("M2", "CP"): 142500,   # 3 days x 47,500
    ("M3", "GV"): 95000,    # the annual price; M3 joined on 1 October 2026, so it is charged from then (below)
    ("M4", "SI"): 699000,   # 150,000 + 900 x 610 (secondary)
    ("M5", "SI"): 323250,   # 150,000 + 210 x 825
    ("M5", "DSL"): 15000,   # one place at the non-subscriber price: M5 holds nothing else in governance
    ("M6", "SI"): 298500,   # 150,000 + 180 x 825
    ("M6", "GV"): 95000,
    ("M7", "GV"): 95000,
    ("M7", "SI"): 348000,   # 150,000 + 240 x 825
    ("M8", "SI"): 200000,   # 150,000 + 60 x 825 = 199,500, raised to the 200,000 minimum
    ("A1", "SI"): 480000,   # 150,000 + 400 x 825
    ("A2", "GV"): 95000,
    ("A3", "SI"): 397500,   # 150,000 + 300 x 825
    ("A4", "GV"): 95000,
}
# M8's SI is a two-year agreement (April 2026 - March 2028), cancelled from 1 June 2027, in its second year.
# Pro-rated parts (agreement year 1 April 2026 - 31 March 2027 = 365 days; rounded once, half up):
M7_GV_CANCEL_CREDIT = 31493   # cancelled from 1 December: 121 days (31+31+28+31); 95,000 x 121/365 = 31,493.15
M6_SI_LEFT_CREDIT = 73603     # left from 1 January: 90 days; 298,500 x 90/365 = 73,602.74
M6_GV_LEFT_CREDIT = 23425     # 95,000 x 90/365 = 23,424.66
M5_CONVERSION_PART = 79705    # converted from 1 January: 323,250 x 90/365 = 79,705.48 (credit to M5 = charge to MAT A)
M5_DSL_CONVERSION_PART = 3699  # and its DSL SLA: 15,000 x 90/365 = 3,698.63
M3_LATE_JOINER = 47370       # joined 1 October 2026: its SLA runs 1 October - 31 March, 182 of 365 days;
                              # 95,000 x 182/365 = 47,369.86
M8_CANCEL_CREDIT = 166667     # second year 1 April 2027 - 31 March 2028 has 366 days (29 February 2028); cancelled
                              # from 1 June 2027: 305 days unexpired; 200,000 x 305/366 = 166,666.67
# Course session (DSL, 5 November 2026): M1's first delegate takes its included place (free), its second
# the delegate place M1's per-delegate DSL SLA already paid for (free: never charged twice, issue 14 rule 6);
# M3 and A2 (no DSL SLA) pay the non-subscriber price 15,000 each (A2's delegate does not come: a no-show
# still pays), A2's to MAT A; M5's head takes M5's included place.
# A second session (4 February 2027): M5's head, now at the academy A5 (contacts carried at conversion),
# takes the delegate place M5's DSL SLA paid for, carried on at conversion (M5 used only the included one
# in November, which the carried SLA does not bring again): free.

# -- the autumn run (charges dated up to 31 December 2026), by payer: (net, VAT, gross) ----------
AUTUMN = {
    # 273,750 (VAT 54,750) + 95,000 + 9,500 (DSL SLA: one delegate place, so its course places are free)
    "school:140001": (378250, 54750, 433000),
    # 414,000 (VAT 82,800) + 142,500 (VAT 28,500)
    "school:140002": (556500, 111300, 667800),
    # 47,370 (joined late) + 15,000 (course place), exempt
    "school:140003": (62370, 0, 62370),
    "school:140004": (699000, 139800, 838800),
    "school:140005": (338250, 64650, 402900),  # 323,250 (VAT 64,650) + 15,000 (DSL SLA, exempt)
    # 298,500 (VAT 59,700) + 95,000 + a December course place 15,000 booked after it gave notice (still a
    # member until 31 December); the leaving credit is dated 1 January, so it waits for spring
    "school:140006": (408500, 59700, 468200),
    # 95,000 - 31,493 (cancelled before it was invoiced: a negative line) + 348,000 (VAT 69,600)
    "school:140007": (411507, 69600, 481107),
    "school:140008": (200000, 40000, 240000),
    # MAT A centrally: A1 480,000 (VAT 96,000) + A2 95,000 + A2's course place 15,000
    "mat:TR06001": (590000, 96000, 686000),
    # MAT B does not pay centrally: its academies pay themselves
    "school:150003": (397500, 79500, 477000),
    "school:150004": (95000, 0, 95000),
}
# -- the summer run (April - August 2027): M8's second year falls due, netted with its cancellation credit
SUMMER_INVOICES = {"school:140008": (33333, 6667, 40000)}  # 200,000 (VAT 40,000) - 166,667 (VAT 33,333)
# -- the spring run (1 January - 31 March 2027) ----------------------------------------------------
# MAT A: A5's carried-on SI 79,705 (VAT 15,941) and DSL 3,699 (A5's course place is the DSL SLA's own)
SPRING_INVOICES = {"mat:TR06001": (83404, 15941, 99345)}
SPRING_CREDIT_NOTES = {
    "school:140005": (83404, 15941, 99345),               # conversion: the unexpired parts back to M5
    "school:140006": (97028, 14721, 111749),              # left: 73,603 (VAT 14,720.6 -> 14,721) + 23,425
}


class _Address:
    """A service's base URL that names the next replica each time it is used (`Stack.url`)."""

    def __init__(self, stack, name: str):
        self.stack, self.name = stack, name

    def __str__(self) -> str:
        return self.stack.url(self.name)

    def __format__(self, spec: str) -> str:  # what an f-string calls
        return format(str(self), spec)


def _invoices(stack, **query) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    found = ok(200, http_json("GET", f"{stack.url('billing')}/invoices?{qs}"))["documents"]
    return [{**d, "payer_key": f"{d['payer_kind']}:{d['payer_id']}"} for d in found]


@pytest.mark.timeout(300)
def test_a_county_year_is_invoiced_exactly_once_to_the_right_payers(stack_factory, sqlite_databases, amqp_uri):
    observer = Observer(amqp_uri)
    stack = stack_factory(sqlite_databases, COUNTY_SETTINGS).start()
    county_year(stack, observer)


COUNTY_SETTINGS = {"BILLING_FREQUENCY": "termly"}


def county_year(stack, observer, *, midstream=lambda: None, republished: bool = False) -> None:
    """The county's year through `stack` (each call of `stack.url` may name another replica), checked
    against the figures above. `midstream` is called while the purchases' events are still being
    handled (to kill replicas there); `republished`: an event may reach the archive more than once (a
    relay died between publishing and recording it), so events are counted by id."""
    billing, sched = _Address(stack, "billing"), _Address(stack, "scheduling")
    offerings = {"SI": SI, "GV": GV, "CP": CP, "DSL": DSL}
    for item in offerings.values():
        publish_offering(stack, item)
    ok(200, http_json("PUT", f"{billing}/mats/{MAT_B['id']}/billing", {"pays_centrally": False}))

    urn = {name: spec[0] for name, spec in SCHOOLS.items()}
    heads = {}
    for i, (name, (school_urn, roll, phase, mat)) in enumerate(SCHOOLS.items()):
        extra = dict(urn=school_urn, number_on_roll=roll, phase=phase, name=f"County {name}",
                     dfe_number=f"825/{3000 + i}", postcode=f"HP{10 + i} 1AA",
                     joined_on="2026-10-01" if name == "M3" else "2026-01-05")
        school = (factories.academy(mat_id=mat["id"], mat_name=mat["name"], **extra) if mat
                  else factories.school(establishment_type="foundation" if name == "M4" else "community", **extra))
        join(stack, school)
        heads[name] = appoint(stack, school_urn, name=f"Head {name}")
    dsl_lead = appoint(stack, urn["M1"], role="dsl", name="DSL M1")

    bought = {}
    for name, items in PURCHASES.items():
        for key, extra in items:
            sub = buy(stack, urn[name], offerings[key]["code"], heads[name], **extra)
            bought[(name, key)] = sub
            assert sub["annual_price_pence"] == PRICES[(name, key)], (name, key, sub)
            expected = ("2026-09-01", "2027-08-31") if name.startswith("A") else (
                "2026-10-01" if name == "M3" else "2026-04-01", "2028-03-31" if extra.get("years") == 2 else "2027-03-31")
            assert (sub["period_start"], sub["period_end"]) == expected, (name, key)
    midstream()
    total_slas = sum(len(items) for items in PURCHASES.values())
    eventually(lambda: len(charges(stack)) >= total_slas, timeout=45,
               message="billing charging every SLA")

    # -- the course: booked and attended through scheduling ----------------------------------
    def course_created():
        status, body = http_json("POST", f"{sched}/courses", {"course_code": "DSL-2026-AUT", "title": "DSL refresher",
                                                              "offering_code": DSL["code"]})
        return body if status == 201 else None
    eventually(course_created, message="scheduling learning the DSL offering")
    session = ok(201, http_json("POST", f"{sched}/courses/DSL-2026-AUT/sessions",
                                {"date": "2026-11-05", "capacity": 10, "cutoff_days": 7}))

    def book(school_name, contact_id):
        def attempt():
            status, body = http_json("POST", f"{sched}/sessions/{session['session_id']}/bookings",
                                     {"urn": urn[school_name], "booked_on": "2026-10-01"},
                                     token=tokens.contact(urn[school_name], contact_id))
            return body if status == 201 else None
        return eventually(attempt, message=f"{school_name}'s booking")
    eventually(lambda: http_json("GET", f"{sched}/schools/{urn['M1']}")[1].get("eligibility"),
               message="scheduling learning M1's SLAs")
    eventually(lambda: any(e["offering_code"] == DSL["code"] for e in
                           http_json("GET", f"{sched}/schools/{urn['M1']}")[1]["eligibility"]),
               message="scheduling learning M1's DSL SLA")
    eventually(lambda: any(e["offering_code"] == DSL["code"] for e in
                           http_json("GET", f"{sched}/schools/{urn['M5']}")[1].get("eligibility") or []),
               message="scheduling learning M5's DSL SLA")
    places = {"M1-dsl": book("M1", dsl_lead), "M1-head": book("M1", heads["M1"]),
              "M3": book("M3", heads["M3"]), "A2": book("A2", heads["A2"]), "M5": book("M5", heads["M5"])}
    assert {k: (p["status"], p["price_basis"], p["unit_price_pence"]) for k, p in places.items()} == {
        "M1-dsl": ("confirmed", "included_place", 0), "M1-head": ("confirmed", "included_place", 0),
        "M3": ("confirmed", "non_subscriber", 15000), "A2": ("confirmed", "non_subscriber", 15000),
        "M5": ("confirmed", "included_place", 0)}
    for key, place in places.items():
        ok(201, http_json("POST", f"{sched}/bookings/{place['booking_id']}/attendance", {"attended": key != "A2"}))
    recorded = observer.wait_for("attendance_recorded", 5)
    assert sorted((p["urn"], p["chargeable"], p["unit_price_pence"]) for p in recorded) == sorted([
        (urn["M1"], False, 0), (urn["M1"], False, 0), (urn["M3"], True, 15000), (urn["A2"], True, 15000),
        (urn["M5"], False, 0)])

    # -- changes during the year --------------------------------------------------------------
    ok(200, http_json("POST", f"{stack.url('catalogue')}/subscriptions/{bought[('M7', 'GV')]['subscription_id']}/cancel",
                      {"reason": "budget", "effective_date": "2026-12-01"}, token=tokens.contact(urn["M7"], heads["M7"])))
    ok(200, http_json("POST", f"{stack.url('catalogue')}/subscriptions/{bought[('M8', 'SI')]['subscription_id']}/cancel",
                      {"reason": "budget", "effective_date": "2027-06-01"}, token=tokens.contact(urn["M8"], heads["M8"])))
    ok(200, http_json("POST", f"{stack.url('membership')}/members/{urn['M6']}/leaving",
                      {"effective_date": "2027-01-01", "reason": "closing"}))
    ok(201, http_json("POST", f"{stack.url('membership')}/members/{urn['M5']}/conversion",
                      {"successor_urn": A5, "conversion_date": "2027-01-01", "mat": MAT_A, "carry_contacts": True}))

    # M6 gave notice (it leaves from 1 January) but is a member until then: it books a December session
    december = ok(201, http_json("POST", f"{sched}/courses/DSL-2026-AUT/sessions",
                                 {"date": "2026-12-03", "capacity": 10, "cutoff_days": 7}))
    eventually(lambda: http_json("GET", f"{sched}/schools/{urn['M6']}")[1]["school"]["closed_on"] == "2027-01-01",
               message="scheduling learning that M6 leaves")
    status, m6_place = http_json("POST", f"{sched}/sessions/{december['session_id']}/bookings",
                                 {"urn": urn["M6"], "booked_on": "2026-11-23"}, token=tokens.contact(urn["M6"], heads["M6"]))
    assert status == 201 and (m6_place["price_basis"], m6_place["unit_price_pence"]) == ("non_subscriber", 15000), \
        m6_place
    ok(201, http_json("POST", f"{sched}/bookings/{m6_place['booking_id']}/attendance", {"attended": True}))
    # but not a session after it has left
    january = ok(201, http_json("POST", f"{sched}/courses/DSL-2026-AUT/sessions",
                                {"date": "2027-01-14", "capacity": 10, "cutoff_days": 7}))
    status, refused = http_json("POST", f"{sched}/sessions/{january['session_id']}/bookings",
                                {"urn": urn["M6"], "booked_on": "2026-11-23"}, token=tokens.contact(urn["M6"], heads["M6"]))
    assert status == 422 and refused["rule"] == "member_school", refused

    # the spring session: M5's head, now A5's, books through scheduling and attends
    spring_session = ok(201, http_json("POST", f"{sched}/courses/DSL-2026-AUT/sessions",
                                       {"date": "2027-02-04", "capacity": 10, "cutoff_days": 7}))

    def a5_books():
        status, body = http_json("POST", f"{sched}/sessions/{spring_session['session_id']}/bookings",
                                 {"urn": A5, "booked_on": "2027-01-20"}, token=tokens.contact(A5, heads["M5"]))
        return body if status == 201 else None
    eventually(lambda: any(e["offering_code"] == DSL["code"] for e in
                           http_json("GET", f"{sched}/schools/{A5}")[1].get("eligibility") or []),
               message="scheduling learning A5's carried-on DSL SLA")
    a5_place = eventually(a5_books, message="A5's booking")
    assert (a5_place["status"], a5_place["price_basis"], a5_place["unit_price_pence"]) == (
        "confirmed", "included_place", 0)
    ok(201, http_json("POST", f"{sched}/bookings/{a5_place['booking_id']}/attendance", {"attended": True}))

    # billing has every charge and credit before the run: 18 SLA charges, 3 attendance charges (M3, A2, M6),
    # 1 cancellation credit, 2 leaving credits, 2 conversion credits and MAT A's 2 conversion charges
    def all_in():
        found = charges(stack)
        return found if len(found) == 18 + 3 + 1 + 2 + 2 + 2 else None
    everything = eventually(all_in, timeout=45, message="billing holding every charge and credit")
    assert not [c for c in everything if c["status"] == "unmatched"]

    # -- the autumn run ------------------------------------------------------------------------
    autumn = billing_run(billing, {"period": "2026/27 autumn", "issue_date": "2027-01-04"})
    assert (autumn["invoices_issued"], autumn["credit_notes_issued"]) == (11, 0)
    assert autumn["invoiced_gross_pence"] == sum(g for _, _, g in AUTUMN.values()) == 4852177
    documents = _invoices(stack)
    got = {d["payer_key"]: (d["net_pence"], d["vat_pence"], d["gross_pence"]) for d in documents}
    assert got == AUTUMN
    assert sorted(d["number"] for d in documents) == [f"BLT-{n:06d}" for n in range(1, 12)]
    again = billing_run(billing, {"period": "2026/27 autumn", "issue_date": "2027-01-05"})
    assert again["rerun"] is True and len(_invoices(stack)) == 11

    number_of = {d["payer_key"]: d["number"] for d in documents}
    m7 = ok(200, http_json("GET", f"{billing}/invoices/{number_of['school:140007']}"))
    assert sorted(line["net_pence"] for line in m7["lines"]) == [-M7_GV_CANCEL_CREDIT, 95000, 348000]
    mat_a = ok(200, http_json("GET", f"{billing}/invoices/{number_of['mat:TR06001']}"))
    assert sorted((line["urn"], line["net_pence"]) for line in mat_a["lines"]) == [
        (urn["A1"], 480000), (urn["A2"], 15000), (urn["A2"], 95000)]

    # -- payments: full, part, over ------------------------------------------------------------
    def pay(payer_key, amount, reference):
        return ok(201, http_json("POST", f"{billing}/payments", {
            "invoice_number": number_of[payer_key], "amount_pence": amount, "currency": "GBP",
            "received_on": "2027-01-20", "reference": reference}))
    assert (pay("school:140001", 433000, "BACS M1")["status"], ) == ("paid", )
    part = pay("school:140002", 300000, "BACS M2")
    assert (part["status"], part["balance_pence"]) == ("part_paid", 367800)
    over = pay("school:140004", 900000, "BACS M4")
    assert (over["status"], over["balance_pence"]) == ("overpaid", -61200)
    pay("school:140005", 402900, "BACS M5")  # M5 pays in full before its conversion credit is issued

    # -- the spring run ------------------------------------------------------------------------
    spring = billing_run(billing, {"period": "2026/27 spring", "issue_date": "2027-04-02"})
    assert (spring["invoices_issued"], spring["credit_notes_issued"]) == (1, 2)
    later = _invoices(stack, issued_from="2027-04-01")
    assert {d["payer_key"]: (d["net_pence"], d["vat_pence"], d["gross_pence"]) for d in later
            if d["kind"] == "invoice"} == SPRING_INVOICES
    notes = {d["payer_key"]: d for d in later if d["kind"] == "credit_note"}
    assert {k: (d["net_pence"], d["vat_pence"], d["gross_pence"]) for k, d in notes.items()} == SPRING_CREDIT_NOTES
    assert sorted(d["number"] for d in later) == ["BLT-000012", "BLT-CN000001", "BLT-CN000002"]
    # each credit note credits the autumn invoice of the charges it gives back
    for key, note in notes.items():
        assert ok(200, http_json("GET", f"{billing}/invoices/{note['number']}"))["credits_invoice_number"] \
            == number_of[key]
    # the conversion: what M5 keeps plus what MAT A pays for the rest of the year is exactly the whole
    mat_spring = ok(200, http_json("GET", f"{billing}/invoices/BLT-000012"))
    assert sorted((line["urn"], line["period_start"], line["net_pence"]) for line in mat_spring["lines"]) == [
        (A5, "2027-01-01", M5_DSL_CONVERSION_PART), (A5, "2027-01-01", M5_CONVERSION_PART)]
    assert SPRING_CREDIT_NOTES["school:140005"][0] == M5_CONVERSION_PART + M5_DSL_CONVERSION_PART
    for key, part in (("SI", M5_CONVERSION_PART), ("DSL", M5_DSL_CONVERSION_PART)):
        assert (PRICES[("M5", key)] - part) + part == PRICES[("M5", key)]
    # M5 paid in full, then was credited: a credit balance of the credit note's gross
    m5 = ok(200, http_json("GET", f"{billing}/invoices/{number_of['school:140005']}"))
    assert m5["balance_pence"] == -99345

    # -- the summer run: M8's second year, net of its cancellation from 1 June 2027 -------------
    summer = billing_run(billing, {"period": "2026/27 summer", "issue_date": "2027-09-01"})
    assert (summer["invoices_issued"], summer["credit_notes_issued"]) == (1, 0)
    last = _invoices(stack, issued_from="2027-09-01")
    assert {d["payer_key"]: (d["net_pence"], d["vat_pence"], d["gross_pence"]) for d in last} == SUMMER_INVOICES
    m8 = ok(200, http_json("GET", f"{billing}/invoices/{last[0]['number']}"))
    assert sorted((line["period_start"], line["period_end"], line["net_pence"]) for line in m8["lines"]) == [
        ("2027-04-01", "2028-03-31", 200000), ("2027-06-01", "2028-03-31", -M8_CANCEL_CREDIT)]
    later_years = billing_run(billing, {"period": "2027/28 autumn", "issue_date": "2028-01-04"})
    assert (later_years["invoices_issued"], later_years["credit_notes_issued"]) == (0, 0)  # nothing left to bill

    # -- every charge and credit on exactly one document; numbers gap-free --------------------
    db = stack.database_urls["billing"]
    lines = rows(db, "SELECT charge_id, count(*) AS n FROM document_lines GROUP BY charge_id")
    assert all(r["n"] == 1 for r in lines)
    all_charge_ids = {r["id"] for r in rows(db, "SELECT id FROM charges")}
    assert {r["charge_id"] for r in lines} == all_charge_ids and len(all_charge_ids) == 28 + 2  # two course places fewer (rule 6)
    assert {r["status"] for r in rows(db, "SELECT status FROM charges")} == {"invoiced"}
    numbers = sorted(d["number"] for d in _invoices(stack))
    assert numbers == [f"BLT-{n:06d}" for n in range(1, 14)] + ["BLT-CN000001", "BLT-CN000002"]

    archived = observer.drain_sent(*stack.database_urls.values())  # complete up to the empty outboxes
    events = list({e["event_id"]: e for e in archived}.values())
    if not republished:
        assert len(events) == len(archived), "an event was published twice"
    assert len([e for e in events if e["type"] == "invoice_issued"]) == 13
    assert len([e for e in events if e["type"] == "credit_note_issued"]) == 2
    assert len([e for e in events if e["type"] == "payment_recorded"]) == 4
    assert len([e for e in events if e["type"] == "school_converted_to_academy"]) == 1
    assert [e["payload"]["urn"] for e in events if e["type"] == "member_left"] == [urn["M6"]]
