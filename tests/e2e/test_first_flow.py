"""The first flow across all four services, as separate processes on the real broker:
a school joins -> member_joined, its head teacher is appointed -> contact_role_changed
-> the head buys an SLA -> subscription_started -> billing charges the right payer and
scheduling records the school as eligible."""
from __future__ import annotations

from tests import factories, tokens
from tests.conftest import eventually, http_json


def _join(stack, school):
    status, body = http_json("POST", f"{stack.url('membership')}/members", school)
    assert status == 201, body
    return body


def _catalogue_knows(stack, urn):
    return eventually(lambda: http_json("GET", f"{stack.url('catalogue')}/members/{urn}")[0] == 200,
                      message=f"catalogue learning of {urn}")


def _appoint(stack, urn, role="head_teacher", name="A. Head"):
    """Membership appoints a contact; returns its id once the catalogue knows it may buy."""
    status, body = http_json("POST", f"{stack.url('membership')}/members/{urn}/contacts",
                             {"display_name": name, "role": role, "effective_date": "2026-01-05"})
    assert status == 201, body
    contact_id = body["contact_id"]
    if body["may_commit_spending"]:
        eventually(lambda: contact_id in [b["contact_id"] for b in http_json(
            "GET", f"{stack.url('catalogue')}/members/{urn}")[1].get("authorised_buyers", [])],
            message=f"catalogue learning that {role} {contact_id} may buy")
    return contact_id


class TestSchoolJoinsAndBuys:
    def test_maintained_school_is_charged_itself_and_becomes_eligible(self, stack_factory, databases):
        stack = stack_factory(databases).start()
        offering = factories.per_pupil_offering()
        assert http_json("POST", f"{stack.url('catalogue')}/offerings", offering)[0] == 201
        school = factories.school(number_on_roll=172)

        joined = _join(stack, school)
        assert joined["status"] == "active" and joined["urn"] == school["urn"]
        _catalogue_knows(stack, school["urn"])
        head = _appoint(stack, school["urn"])
        status, sub = http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
            "urn": school["urn"], "offering_code": offering["code"], "edition_year": 2026,
            "po_number": "PO-1"}, token=tokens.contact(school["urn"], head))
        assert status == 201, sub
        # 150000 + 172 x 825 = 291900 pence, above the 200000 minimum
        assert sub["annual_price_pence"] == 291900
        assert (sub["period_start"], sub["period_end"]) == ("2026-04-01", "2027-03-31")

        charges = eventually(lambda: http_json("GET", f"{stack.url('billing')}/charges?urn={school['urn']}")[1]
                             ["charges"], message="billing charge")
        assert len(charges) == 1
        charge = charges[0]
        assert (charge["payer_kind"], charge["payer_id"]) == ("school", school["urn"])
        assert charge["amount_pence"] == 291900
        assert (charge["period_start"], charge["period_end"]) == ("2026-04-01", "2027-03-31")
        assert (charge["census_date"], charge["number_on_roll"]) == ("2025-10-02", 172)

        def eligible():
            status, body = http_json("GET", f"{stack.url('scheduling')}/schools/{school['urn']}")
            return body if status == 200 and body["eligibility"] and body["school"] else None

        seen = eventually(eligible, message="scheduling eligibility")
        assert seen["school"]["name"] == school["name"]
        assert [(e["offering_code"], e["period_start"]) for e in seen["eligibility"]] == [
            (offering["code"], "2026-04-01")]

        status, member = http_json("GET", f"{stack.url('membership')}/members/{school['urn']}")
        assert status == 200 and member["number_on_roll"] == 172

    def test_academy_in_a_mat_is_charged_to_its_mat_for_an_academic_year(self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases).start()
        offering = factories.flat_offering()
        assert http_json("POST", f"{stack.url('catalogue')}/offerings", offering)[0] == 201
        school = factories.academy(mat_id="TR04321", mat_name="Oxford Diocesan Bucks Schools Trust")
        _join(stack, school)
        _catalogue_knows(stack, school["urn"])
        manager = _appoint(stack, school["urn"], role="business_manager", name="B. Manager")
        status, sub = http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
            "urn": school["urn"], "offering_code": offering["code"], "edition_year": 2026, "years": 2},
            token=tokens.contact(school["urn"], manager, "business_manager"))
        assert status == 201, sub
        assert (sub["period_start"], sub["period_end"]) == ("2026-09-01", "2028-08-31")

        charges = eventually(lambda: http_json("GET", f"{stack.url('billing')}/charges?payer_id=TR04321")[1]
                             ["charges"], message="charge to the MAT")
        assert [(c["urn"], c["payer_kind"], c["amount_pence"], c["period_end"]) for c in charges] == [
            (school["urn"], "mat", 95000, "2027-08-31")]


class TestRefusals:
    def test_purchase_refused_for_unknown_school_and_unauthorised_buyer(self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases).start("membership", "catalogue")
        offering = factories.flat_offering()
        http_json("POST", f"{stack.url('catalogue')}/offerings", offering)
        status, body = http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
            "urn": "123456", "offering_code": offering["code"], "edition_year": 2026},
            token=tokens.contact("123456", "5d1c8f0e-7a43-4a8e-9a55-0f6f0f1b2c3d"))
        assert status == 422 and body["field"] == "urn" and "not a member" in body["message"]

        school = factories.school()
        _join(stack, school)
        _catalogue_knows(stack, school["urn"])
        senco = _appoint(stack, school["urn"], role="senco", name="C. Senco")
        # the SENCO's appointment reaches the catalogue, but a SENCO may not commit spending
        as_senco = tokens.contact(school["urn"], senco, "senco")
        eventually(lambda: http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
            "urn": school["urn"], "offering_code": offering["code"], "edition_year": 2026},
            token=as_senco)[1].get("message", "").find("may not commit") >= 0,
            message="the catalogue refusing the SENCO as a buyer")
        status, body = http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
            "urn": school["urn"], "offering_code": offering["code"], "edition_year": 2026}, token=as_senco)
        assert status == 422 and body["field"] == "contact_id" and "may not commit" in body["message"]
        # A purchase is the authenticated person's: trust staff cannot buy for a school, nor can a
        # school's staff whose token names no contact; and no body may name the buyer.
        purchase = {"urn": school["urn"], "offering_code": offering["code"], "edition_year": 2026}
        assert http_json("POST", f"{stack.url('catalogue')}/subscriptions", purchase)[0] == 403
        status, body = http_json("POST", f"{stack.url('catalogue')}/subscriptions", purchase,
                                 token=tokens.school_staff(school["urn"]))
        assert status == 403 and "contact id" in body["message"]
        status, body = http_json("POST", f"{stack.url('catalogue')}/subscriptions", {**purchase, "contact_id": senco},
                                 token=as_senco)
        assert status == 400 and "contact_id" in body["fields"]
        status, body = http_json("GET", f"{stack.url('catalogue')}/members/{school['urn']}")
        assert body["subscriptions"] == []
