"""Membership as a real process (nameko entrypoints) on the real broker, on SQLite and PostgreSQL: the
lifecycle, conversion, contacts and imports over HTTP and RPC, and every event it publishes read back from
`membership.events` and checked against the published JSON Schema."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.archive_tap import ArchiveTap
from tests import tokens
from tests.conftest import eventually, http_json, scrape

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "services" / "membership" / "contracts"
TRUST = {"id": "TR01234", "name": "Chiltern Learning Trust"}


@pytest.fixture
def tap(amqp_uri):
    """Every membership event of the test, read from membership's archive (no observer queue bound)."""
    return ArchiveTap(amqp_uri, ["membership"])


def valid(envelope: dict) -> None:
    schema = json.loads((CONTRACTS / f"{envelope['type']}.v{envelope['version']}.schema.json").read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(envelope), key=str)
    assert not errors, [e.message for e in errors]


def school(**overrides) -> dict:
    urn = overrides.pop("urn", None) or str(random.randint(100000, 199999))
    data = {"urn": urn, "dfe_number": f"825/{random.randint(1000, 9999)}", "name": f"School {urn}",
            "establishment_type": "community", "phase": "primary", "local_authority": "Buckinghamshire",
            "postcode": "HP17 8DS", "number_on_roll": 172, "census_date": "2025-10-02", "joined_on": "2026-04-01"}
    data.update(overrides)
    return data


class TestLifecycleOverHttp:
    def test_join_census_change_convert_contacts_leave(self, stack_factory, databases, tap):
        stack = stack_factory(databases).start("membership")
        base = stack.url("membership")
        a = school()
        # another school URN (100000-199999, rule 11), never the predecessor's
        successor = str(int(a["urn"]) + 1 if int(a["urn"]) < 199999 else int(a["urn"]) - 1)

        assert http_json("POST", f"{base}/members", a)[0] == 201
        status, body = http_json("POST", f"{base}/members", a)
        assert status == 409 and body["field"] == "urn"
        status, body = http_json("POST", f"{base}/members", school(urn="12345"))
        assert status == 422 and body["field"] == "urn"
        status, body = http_json("POST", f"{base}/members/{a['urn']}/leaving", {"effective_date": "2026-01-01",
                                                                               "reason": "x"})
        assert status == 422 and body["field"] == "effective_date"

        status, body = http_json("POST", f"{base}/members/{a['urn']}/census",
                                 {"census_date": "2026-10-01", "number_on_roll": 181})
        assert status == 201 and body["old_number_on_roll"] == 172
        status, body = http_json("PATCH", f"{base}/members/{a['urn']}", {"effective_date": "2026-09-01",
                                                                        "name": "Renamed School"})
        assert status == 200 and body["changed"] == ["name"]

        status, body = http_json("POST", f"{base}/members/{a['urn']}/conversion", {
            "successor_urn": successor, "conversion_date": "2027-09-01", "mat": TRUST,
            "successor_name": "Renamed Academy"})
        assert status == 201, body
        assert body["successor"]["member_since"] == "2026-04-01"
        status, body = http_json("POST", f"{base}/members/{successor}/conversion", {
            "successor_urn": "149999", "conversion_date": "2028-09-01", "mat": TRUST})
        assert status == 422 and body["field"] == "urn" and "not a maintained school" in body["message"]

        status, head = http_json("POST", f"{base}/members/{successor}/contacts", {
            "display_name": "A. Head", "email": "head@example.org", "role": "head_teacher",
            "effective_date": "2027-09-01"})
        assert status == 201 and head["may_commit_spending"] is True
        status, body = http_json("POST", f"{base}/members/{successor}/contacts", {
            "display_name": "S. Enco", "role": "senco", "may_commit_spending": True})
        assert status == 422 and body["field"] == "may_commit_spending"
        status, governor = http_json("POST", f"{base}/members/{successor}/contacts", {
            "display_name": "G. Overnor", "role": "governor", "appointment_type": "parent",
            "committees": ["Finance", "Curriculum"], "effective_date": "2027-09-01"})
        assert status == 201 and governor["committees"] == ["Curriculum", "Finance"]
        gid = governor["contact_id"]
        assert http_json("POST", f"{base}/contacts/{gid}/training",
                         {"course": "Safeguarding for governors", "completed_on": "2025-11-01"})[0] == 201
        status, body = http_json("POST", f"{base}/contacts/{gid}/roles/{successor}/governor/end",
                                 {"effective_date": "2028-08-31", "reason": "end of term"})
        assert status == 200 and body["active"] is False
        status, body = http_json("PATCH", f"{base}/contacts/{head['contact_id']}/roles/{successor}/head_teacher",
                                 {"may_commit_spending": False, "effective_date": "2027-10-01"})
        assert status == 200 and body["may_commit_spending"] is False
        status, found = http_json("GET", f"{base}/members/{successor}/contacts?role=head_teacher")
        assert [c["display_name"] for c in found["contacts"]] == ["A. Head"]

        status, exported = http_json("GET", f"{base}/contacts/{gid}/export")
        assert exported["display_name"] == "G. Overnor" and exported["training"][0]["course"]
        assert http_json("DELETE", f"{base}/contacts/{gid}")[0] == 200
        status, exported = http_json("GET", f"{base}/contacts/{gid}/export")
        assert exported["display_name"] == "[erased]" and exported["email"] is None
        assert exported["roles"][0]["end_reason"] == "end of term"  # non-personal history kept

        assert http_json("POST", f"{base}/members/{successor}/leaving",
                         {"effective_date": "2029-04-01", "reason": "stopped buying"})[0] == 200

        status, on = http_json("GET", f"{base}/members?on=2027-08-31&phase=primary")
        assert [m["urn"] for m in on["members"]] == [a["urn"]]
        status, on = http_json("GET", f"{base}/members?on=2027-09-01&mat_id=TR01234")
        assert [m["urn"] for m in on["members"]] == [successor]
        assert http_json("GET", f"{base}/members/{successor}/mat?on=2027-09-01")[1]["mat"] == TRUST
        assert http_json("GET", f"{base}/members/{a['urn']}/mat?on=2027-08-31")[1]["mat"] is None
        assert http_json("GET", f"{base}/members/{a['urn']}/mat?on=2027-09-01")[0] == 404
        status, lineage = http_json("GET", f"{base}/members/{a['urn']}/lineage")
        assert [s["urn"] for s in lineage["successors"]] == [successor]
        status, history = http_json("GET", f"{base}/members/{a['urn']}/history")
        assert [e["kind"] for e in history["events"]] == ["joined", "details_changed", "census_recorded",
                                                          "converted"]

        expected = ["member_joined", "census_recorded", "member_details_changed", "school_converted_to_academy",
                    "contact_role_changed", "contact_role_changed", "contact_role_changed", "contact_role_changed",
                    "contact_erased", "member_left"]
        eventually(lambda: len(tap.drain()) >= len(expected), message="events on membership.events")
        assert tap.types() == expected
        for envelope in tap.seen:
            valid(envelope)
        conversion = tap.seen[3]["payload"]
        assert (conversion["predecessor"]["urn"], conversion["successor"]["urn"], conversion["mat"],
                conversion["conversion_date"]) == (a["urn"], successor, TRUST, "2027-09-01")
        roles = [e["payload"] for e in tap.seen if e["type"] == "contact_role_changed"]
        assert [(r["role"], r["may_commit_spending"], r["active"]) for r in roles] == [
            ("head_teacher", True, True), ("governor", False, True), ("governor", False, False),
            ("head_teacher", False, True)]

    def test_unknown_urn_and_bad_bodies_are_clear_errors(self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases).start("membership")
        base = stack.url("membership")
        assert http_json("GET", f"{base}/members/999998")[0] == 404
        assert http_json("POST", f"{base}/members/999998/leaving",
                         {"effective_date": "2027-01-01", "reason": "x"})[0] == 404
        status, body = http_json("GET", f"{base}/members/abc")
        assert status == 400 and "urn" in body["fields"]
        status, body = http_json("PATCH", f"{base}/members/999998", {"effective_date": "2027-01-01"})
        assert status == 400 and "_body" in body["fields"]
        status, body = http_json("GET", f"{base}/members?on=yesterday")
        assert status == 400 and "on" in body["fields"]


HEADER = "URN,LAESTAB,EstablishmentName,TypeOfEstablishment,PhaseOfEducation,NumberOfPupils,Postcode,Trusts\n"


def post_csv(url: str, text: str):
    import urllib.error
    import urllib.request
    request = urllib.request.Request(url, data=text.encode("cp1252"), method="POST",
                                     headers={"Content-Type": "text/csv", **tokens.bearer(tokens.trust_staff())})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class TestBulkImport:
    def test_import_reports_rejects_and_reimport_publishes_nothing(self, stack_factory, databases, tap):
        stack = stack_factory(databases).start("membership")
        base = stack.url("membership")
        text = HEADER + ("110394,8252001,Haddenham Infant,Community school,Primary,172,HP17 8DS,\n"
                         "137000,8254000,Aylesbury Grammar,Academy converter,Secondary,1300,HP21 7RP,Grammar Trust\n"
                         "137001,8254001,St Mary’s Independent,Other independent school,Primary,80,HP21 7RP,\n")
        url = f"{base}/imports/schools?census_date=2025-10-02&joined_on=2026-04-01"
        status, report = post_csv(url, text)
        assert status == 200, report
        assert (report["joined"], report["rejected_count"]) == (2, 1)
        assert report["rejected"][0]["line"] == 4 and "not admitted" in report["rejected"][0]["reason"]
        status, again = post_csv(url, text)
        assert (again["joined"], again["unchanged"], again["details_changed"]) == (0, 2, 0)
        status, third = post_csv(url, text.replace(",172,", ",175,"))
        assert third["census_recorded"] == 1
        eventually(lambda: len(tap.drain()) >= 3, message="import events")
        assert sorted(tap.types()) == ["census_recorded", "member_joined", "member_joined"]
        for envelope in tap.seen:
            valid(envelope)
        status, body = post_csv(f"{base}/imports/schools", "URN,Name\n1,2\n")
        assert status == 400 and "TypeOfEstablishment" in body["fields"]["_body"][0]
        status, body = post_csv(f"{base}/imports/schools", text)
        assert status == 400 and "census_date" in body["fields"]

    def test_links_import_and_rpc_queries(self, stack_factory, sqlite_databases, amqp_uri):
        stack = stack_factory(sqlite_databases).start("membership")
        base = stack.url("membership")
        links = ('"URN","LinkURN","LinkName","LinkType","LinkEstablishedDate"\n'
                 '100016,132245,"K","Successor",""\n100017,132245,"K","Successor",""\n'
                 '132245,100016,"A","Predecessor","01-09-2005"\n')
        status, report = post_csv(f"{base}/imports/links", links)
        assert status == 200 and report["links"] == 2 and report["listed_from_both_ends"] == 1
        status, lineage = http_json("GET", f"{base}/members/132245/lineage")
        assert sorted(s["urn"] for s in lineage["predecessors"]) == ["100016", "100017"]

        a = school()
        assert http_json("POST", f"{base}/members", a)[0] == 201
        from nameko.standalone.rpc import ClusterRpcProxy
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=20) as cluster:
            assert cluster.membership.get_member(a["urn"])["name"] == a["name"]
            assert cluster.membership.get_member("999997") is None
            found = cluster.membership.find_members(on="2026-04-01")
            assert [m["urn"] for m in found["members"]] == [a["urn"]]
            assert cluster.membership.lineage("100016")["successors"][0]["urn"] == "132245"
            assert cluster.membership.school_history(a["urn"])["events"][0]["kind"] == "joined"
            assert cluster.membership.mat_of_school_on(a["urn"], "2026-05-01")["mat"] is None
            assert cluster.membership.contacts_by_role(a["urn"], role="head_teacher")["count"] == 0


class TestOrganisationContactsOverHttp:
    def test_rule_9_organisation_contacts_and_role_validation(self, stack_factory, sqlite_databases, tap):
        stack = stack_factory(sqlite_databases).start("membership")
        base = stack.url("membership")
        assert http_json("POST", f"{base}/organisations", {"id": TRUST["id"], "kind": "mat", "name": TRUST["name"],
                                                           "joined_on": "2020-01-01"})[0] == 201
        status, body = http_json("POST", f"{base}/organisations/{TRUST['id']}/contacts",
                                 {"display_name": "M. Ain", "role": "main_contact", "effective_date": "2026-04-01"})
        assert status == 422 and body["field"] == "role" and "mat's contact roles" in body["message"]
        status, body = http_json("POST", f"{base}/organisations/{TRUST['id']}/contacts",
                                 {"display_name": "B. Finance", "role": "finance_contact",
                                  "email": "finance@chiltern.example", "effective_date": "2026-04-01"})
        assert status == 201 and body["may_commit_spending"] is True
        status, listed = http_json("GET", f"{base}/organisations/{TRUST['id']}/contacts?role=finance_contact")
        assert status == 200 and [c["contact_id"] for c in listed["contacts"]] == [body["contact_id"]]
        payloads = tap.wait_for("organisation_contact_role_changed", 1)
        assert payloads[0]["organisation_name"] == TRUST["name"] and payloads[0]["role"] == "finance_contact"
        for envelope in tap.of_type("organisation_contact_role_changed"):
            valid(envelope)


class TestCooperativeTrust:
    def test_who_may_vote_on_a_date(self, stack_factory, databases):
        stack = stack_factory(databases).start("membership")
        base = stack.url("membership")
        a, b = (school(joined_on="2019-09-01", census_date="2019-10-03") for _ in range(2))
        for s in (a, b):
            assert http_json("POST", f"{base}/members", s)[0] == 201
        assert http_json("POST", f"{base}/cooperative/participants",
                         {"trust_role": "member", "urn": a["urn"], "joined_on": "2020-01-01", "on_forum": True})[0] == 201
        assert http_json("POST", f"{base}/cooperative/participants",
                         {"trust_role": "member", "urn": b["urn"], "joined_on": "2020-01-01"})[0] == 201
        status, body = http_json("POST", f"{base}/cooperative/participants",
                                 {"trust_role": "member", "urn": "499999", "joined_on": "2020-01-01"})
        assert status == 422 and body["field"] == "urn"
        assert http_json("POST", f"{base}/cooperative/participants", {
            "trust_role": "partner", "id": "COOPCOL", "name": "The Co-operative College", "joined_on": "2020-01-01",
            "on_forum": True})[0] == 201
        assert http_json("POST", f"{base}/members/{b['urn']}/leaving",
                         {"effective_date": "2021-09-01", "reason": "left the partnership"})[0] == 200
        status, body = http_json("PUT", f"{base}/cooperative/participants/{a['urn']}/succession",
                                 {"successor_inherits": False})
        assert status == 200 and body["successor_inherits"] is False
        status, body = http_json("PUT", f"{base}/cooperative/participants/COOPCOL/succession",
                                 {"successor_inherits": False})
        assert status == 422 and body["field"] == "successor_inherits"
        status, before = http_json("GET", f"{base}/cooperative?on=2021-08-31")
        assert status == 200 and before["total_votes"] == 2
        status, after = http_json("GET", f"{base}/cooperative?on=2021-09-01")
        assert [v["urn"] for v in after["voters"]] == [a["urn"]]
        assert [p["party_id"] for p in after["partners"]] == ["COOPCOL"]
        assert sorted(p["party_id"] for p in after["forum"]) == sorted([a["urn"], "COOPCOL"])
        assert http_json("POST", f"{base}/organisations", {"id": "BC", "kind": "council",
                                                           "name": "Buckinghamshire Council"})[0] == 201
        assert http_json("POST", f"{base}/organisations", {"id": "BC", "kind": "council",
                                                           "name": "Buckinghamshire Council"})[0] == 409
        status, body = http_json("POST", f"{base}/organisations/BC/leaving", {"effective_date": "2000-01-01",
                                                                             "reason": "x"})
        assert status == 422 and body["field"] == "effective_date"
        metrics = scrape(base)
        assert 'partnership_membership_members{kind="school",status="active"} 1.0' in metrics
        assert 'partnership_membership_members{kind="school",status="left"} 1.0' in metrics
