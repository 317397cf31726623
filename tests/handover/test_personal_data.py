"""Each service declares its own personal data (`PERSONAL_DATA` in `<service>/adapters/tables.py`),
and `erase` reads that declaration: people's names and emails are declared, organisations'
names (schools, MATs, networks, payers, offerings) are not, and every declared column exists."""
from __future__ import annotations

import pytest

from partnership_ops.archive import ServiceSchema, personal_data_of

SERVICES = ("membership", "catalogue", "billing", "scheduling")

# What each service really holds about people (read from its tables and the events it consumes).
# Every service's audit trail names the caller (its token subject).
AUDIT = {("audit_log", "subject")}
PEOPLE = {
    "membership": AUDIT | {("contacts", "display_name"), ("contacts", "email")},
    "catalogue": AUDIT | {("contacts", "display_name"), ("subscriptions", "purchased_by_name")},
    # the people invoices are addressed to (from membership's contact events), and their name on documents
    "billing": AUDIT | {("contacts", "display_name"), ("contacts", "email"), ("documents", "contact_name"),
                        ("documents", "contact_email")},
    # peer-review reports are free text that names the people a review met
    "scheduling": AUDIT | {("contacts", "display_name"), ("peer_reviews", "report")},
}
# Organisations' names: erasing them would destroy business records, not personal data.
ORGANISATIONS = {("members", "name"), ("members", "mat_name"), ("member_affiliations", "name"),
                 ("member_affiliations", "mat_name"), ("charges", "payer_name"), ("documents", "payer_name"),
                 ("schools", "name"), ("networks", "name"), ("organisations", "name"), ("offerings", "name"),
                 ("trust_participants", "name")}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_declares_exactly_its_people_columns(service):
    schema = ServiceSchema.of(service)
    declared = {(table, column) for table, columns in personal_data_of(schema).items() for column in columns}
    assert declared == PEOPLE[service]
    assert not declared & ORGANISATIONS
    for table, column in declared:
        assert column in schema.metadata.tables[table].columns

