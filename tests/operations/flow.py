"""The first flow through running services (join, appoint, buy, charge, eligible), for the operations tests."""
from tests import factories, tokens
from tests.conftest import eventually, http_json


def first_flow(stack) -> dict:
    """A school joins, its head buys an SLA, billing charges it and scheduling knows the school: events
    have gone through every service. Returns the ids the flow made."""
    offering = factories.per_pupil_offering()
    assert http_json("POST", f"{stack.url('catalogue')}/offerings", offering)[0] == 201
    school = factories.school(number_on_roll=172)
    assert http_json("POST", f"{stack.url('membership')}/members", school)[0] == 201
    eventually(lambda: http_json("GET", f"{stack.url('catalogue')}/members/{school['urn']}")[0] == 200,
               message="catalogue learning of the school", timeout=60)
    status, body = http_json("POST", f"{stack.url('membership')}/members/{school['urn']}/contacts",
                             {"display_name": "A. Head", "role": "head_teacher", "effective_date": "2026-01-05"})
    assert status == 201, body
    head = body["contact_id"]
    eventually(lambda: head in [b["contact_id"] for b in http_json(
        "GET", f"{stack.url('catalogue')}/members/{school['urn']}")[1].get("authorised_buyers", [])],
        message="catalogue learning that the head may buy", timeout=60)
    status, subscription = http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
        "urn": school["urn"], "offering_code": offering["code"], "edition_year": 2026,
        "po_number": "PO-1"}, token=tokens.contact(school["urn"], head))
    assert status == 201, subscription
    eventually(lambda: http_json("GET", f"{stack.url('billing')}/charges?urn={school['urn']}")[1]["charges"],
               message="billing's charge", timeout=60)
    eventually(lambda: http_json("GET", f"{stack.url('scheduling')}/schools/{school['urn']}")[0] == 200,
               message="scheduling learning of the school", timeout=60)
    return {"urn": school["urn"], "offering": offering["code"], "subscription": subscription["subscription_id"],
            "head": head}
