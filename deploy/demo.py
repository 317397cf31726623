"""`make demo`: load a small county into the running services and show what each now holds.

Generates a few dozen schools (realistic types, phases, MATs and pupil numbers),
publishes three offerings, appoints each school's head teacher, has most schools buy
(the head orders), cancels one renewal and runs the 2027 renewal round (each SLA renews
only once its own notice date has passed), then prints each service's view.
Needs `make run` in another terminal (or services at the URLs in DEMO_*_URL). Every call carries a
bearer token minted with the development key `make run` made (var/dev-auth/): trust staff for the
trust's own work, each school's head teacher (their contact id in the token) for its purchases.
"""
from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request

from deploy.local import SERVICES

URLS = {spec.name: os.environ.get(f"DEMO_{spec.name.upper()}_URL", f"http://127.0.0.1:{spec.port}")
        for spec in SERVICES}
MATS = [("TR02345", "Great Learners Trust"), ("TR03456", "Oxford Diocesan Bucks Schools Trust"),
        ("TR04567", "Chiltern Learning Trust")]
TOWNS = [("Aylesbury", "HP19 8FF"), ("High Wycombe", "HP11 2JZ"), ("Amersham", "HP6 5AH"),
         ("Buckingham", "MK18 1RT"), ("Chesham", "HP5 1DS"), ("Marlow", "SL7 1NT")]
OFFERINGS = [
    {"code": "SI-CORE", "name": "School improvement core offer", "service_area": "school_improvement",
     "vat_treatment": "standard", "eligible_phases": ["primary", "secondary", "special"],
     "edition": {"year": 2026, "terms": {"model": "per_pupil", "base_fee_pence": 150000,
                                         "rate_by_phase": {"primary": "825", "secondary": "610", "special": "1200"},
                                         "minimum_pence": 200000, "maximum_pence": 900000}}},
    # Sold only whole: the year's training calendar and induction come as one annual licence, recordings of
    # sessions already held included, so a late buyer gets (and pays for) the whole year. The other two are
    # delivered through the year (visits, network meetings): bought late, they cover and cost from that day.
    {"code": "GOV-TRAIN", "name": "Governance training and induction", "service_area": "governance",
     "vat_treatment": "exempt", "eligible_phases": ["primary", "secondary", "special"], "sold_whole": True,
     "edition": {"year": 2026, "terms": {"model": "flat", "flat_fee_pence": 95000}}},
    {"code": "LD-NETWORK", "name": "Peer learning networks", "service_area": "leadership_development",
     "vat_treatment": "standard", "eligible_phases": ["primary", "secondary"],
     "edition": {"year": 2026, "terms": {"model": "flat", "flat_fee_pence": 60000}}},
]


_TRUST_STAFF: list[str] = []


def trust_staff_token() -> str:
    """A development token holding every trust role (made once per demo run)."""
    if not _TRUST_STAFF:
        from partnership_ops.devauth import DEV_KEY_FOLDER, development_issuer
        from shared.auth import TRUST_STAFF

        if not (DEV_KEY_FOLDER / "signing-key.pem").exists():
            raise SystemExit("no development signing key: start the services with `make run` first")
        _TRUST_STAFF.append(development_issuer(DEV_KEY_FOLDER).token("demo-trust-staff", roles=sorted(TRUST_STAFF)))
    return _TRUST_STAFF[0]


def head_teacher_token(urn: str, contact_id: str) -> str:
    from partnership_ops.devauth import DEV_KEY_FOLDER, development_issuer

    return development_issuer(DEV_KEY_FOLDER).token(f"demo-head-{urn}", roles=["head_teacher"], urn=urn,
                                                    contact_id=contact_id)


def call(method: str, url: str, body=None, token: str | None = None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers={"Content-Type": "application/json",
                                                             "Authorization": f"Bearer {token or trust_staff_token()}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def county(rng: random.Random, size: int = 36) -> list[dict]:
    schools = []
    for index in range(size):
        phase = rng.choices(["primary", "secondary", "special"], weights=[75, 20, 5])[0]
        academy = rng.random() < (0.35 if phase == "primary" else 0.7)
        town, postcode = rng.choice(TOWNS)
        mat = rng.choice(MATS) if academy else None
        roll = {"primary": rng.randint(60, 630), "secondary": rng.randint(600, 1800),
                "special": rng.randint(40, 220)}[phase]
        schools.append({
            "urn": str(110000 + index * 7), "dfe_number": f"825/{(2000 if phase == 'primary' else 4000) + index}",
            "name": f"{town} {'Academy' if academy else 'School'} {index + 1}",
            "establishment_type": "academy_converter" if academy else rng.choice(
                ["community", "voluntary_controlled", "voluntary_aided", "foundation"]),
            "phase": phase, "local_authority": "Buckinghamshire", "postcode": postcode,
            "number_on_roll": roll, "census_date": "2025-10-02", "joined_on": "2026-01-05",
            "mat": {"id": mat[0], "name": mat[1]} if mat else None,
        })
    return schools


def head_teacher(urn: str) -> str:
    """The school's head teacher's contact id: the one on record, else a newly appointed one."""
    status, found = call("GET", f"{URLS['membership']}/members/{urn}/contacts?role=head_teacher")
    if status == 200 and found["contacts"]:
        return found["contacts"][0]["contact_id"]
    status, body = call("POST", f"{URLS['membership']}/members/{urn}/contacts",
                        {"display_name": f"Head Teacher {urn}", "role": "head_teacher", "effective_date": "2026-01-05"})
    if status != 201:
        raise SystemExit(f"could not appoint a head teacher at {urn}: {body}")
    return body["contact_id"]


def run_job(base: str, path: str, body: dict) -> dict:
    """Start a job (a billing run, a renewal round: 202 and a run resource) and poll the run until it has
    finished (bounded: a demo county takes seconds). The finished run, or the refusal."""
    status, run = call("POST", f"{base}{path}", body)
    if status != 202:
        return run
    for _ in range(240):
        status, run = call("GET", f"{base}{run['links']['self']}")
        if run.get("status") not in ("queued", "running"):
            break
        time.sleep(0.5)
    return run


def main() -> None:
    rng = random.Random(2013)
    for name, url in URLS.items():
        status, _ = call("GET", f"{url}/ready")
        if status != 200:
            raise SystemExit(f"{name} is not ready at {url}: start the services with `make run` first")
    for offering in OFFERINGS:
        status, body = call("POST", f"{URLS['catalogue']}/offerings", offering)
        print(f"offering {offering['code']}: {'published' if status == 201 else body.get('message')}")
    schools = county(rng)
    joined = [s for s in schools if call("POST", f"{URLS['membership']}/members", s)[0] in (201, 409)]
    print(f"{len(joined)} schools are members")
    heads = {school["urn"]: head_teacher(school["urn"]) for school in joined}
    print(f"{len(heads)} head teachers on record (they may commit their school's spending)")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
            not call("GET", f"{URLS['catalogue']}/members/{s['urn']}")[1].get("authorised_buyers")
            for s in joined[-3:]):
        time.sleep(0.5)
    bought = 0
    for school in joined:
        for offering in OFFERINGS:
            if school["phase"] in offering["eligible_phases"] and rng.random() < 0.6:
                # The head teacher orders in person: their own token names their contact id.
                status, _ = call("POST", f"{URLS['catalogue']}/subscriptions", {
                    "urn": school["urn"], "offering_code": offering["code"], "edition_year": 2026},
                    token=head_teacher_token(school["urn"], heads[school["urn"]]))
                bought += status == 201
    print(f"{bought} SLAs bought (201s; repeats of the demo are refused as overlapping)")
    renewal_round(joined, heads)
    time.sleep(2)
    status, members = call("GET", f"{URLS['membership']}/members?limit=5000")
    print(f"\nmembership: {members['count']} members")
    status, charges = call("GET", f"{URLS['billing']}/charges")
    by_payer: dict[str, int] = {}
    for charge in charges["charges"]:
        by_payer[charge["payer_name"]] = by_payer.get(charge["payer_name"], 0) + charge["amount_pence"]
    print(f"billing: {charges['count']} charges, £{charges['total_pence'] / 100:,.2f} in all; biggest payers:")
    for payer, pence in sorted(by_payer.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {payer:<40} £{pence / 100:>12,.2f}")
    run = run_job(URLS["billing"], "/billing-runs", {"period": "2026/27", "issue_date": "2026-09-01"})
    if run.get("status") == "succeeded":
        run = run["result"]
        status, invoices = call("GET", f"{URLS['billing']}/invoices")
        documents = invoices["documents"]
        numbers = sorted(d["number"] for d in documents)
        print(f"billing run 2026/27{' (a rerun: nothing new issued)' if run.get('rerun') else ''}: "
              f"{len(numbers)} documents, {numbers[0] if numbers else '-'} .. {numbers[-1] if numbers else '-'}")
    else:
        print(f"billing run did not succeed: {run.get('message') or run.get('error')}")
    sample = joined[0]["urn"]
    status, seen = call("GET", f"{URLS['scheduling']}/schools/{sample}")
    print(f"scheduling: URN {sample} is eligible for {[e['offering_code'] for e in seen.get('eligibility', [])]}")


def renewal_round(joined: list[dict], heads: dict[str, str]) -> None:
    """One school cancels an SLA's renewal, then the 2027 round runs: an SLA renews only once its own notice
    date has passed (31 December for maintained schools' April-March SLAs, 31 May for academies')."""
    urn = joined[0]["urn"]
    subs = call("GET", f"{URLS['catalogue']}/members/{urn}")[1].get("subscriptions", [])
    if subs:
        sub = subs[0]
        status, body = call("POST", f"{URLS['catalogue']}/subscriptions/{sub['id']}/cancel",
                            {"reason": "demo: budget review"}, token=head_teacher_token(urn, heads[urn]))
        print(f"URN {urn} cancels the renewal of {sub['offering_code']} (notice date {sub['notice_date']}): "
              + (f"accepted, it runs to {body['covered_until']} and does not renew" if status == 200
                 else f"refused ({status}): {body.get('message')}"))
    run = run_job(URLS["catalogue"], "/renewal-rounds", {"year": 2027, "uplift_percent": "3"})
    if run.get("status") != "succeeded":
        print(f"renewal round did not succeed: {run}")
        return
    summary = run["result"]
    print(f"renewal round 2027 (editions opened: {', '.join(summary['editions_opened']) or 'none new'}): "
          f"{summary['renewed']} renewed, {summary['expired']} expired, {summary['awaiting_notice']} waiting for "
          f"their notice date to pass (the school may still cancel until then); a later run renews those")


if __name__ == "__main__":
    main()
