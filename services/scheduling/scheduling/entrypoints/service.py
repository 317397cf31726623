"""The scheduling nameko service: members and SLAs in from events, eligibility kept locally.
Rules live in `scheduling.domain`."""
from __future__ import annotations

from shared import service as base
from shared.consumer import consumes
from shared.http import NotFound, http
from shared.storage import Storage

from scheduling.adapters import repository
from scheduling.adapters.tables import inbox, outbox
from scheduling.messages import consumed
from scheduling.messages.published import PUBLISHED
from scheduling.service_layer import handlers


class SchedulingService(base.ObservableService):
    """Who may take part in what, from members' and SLAs' events."""

    name = "scheduling"
    uow = Storage(migrations="scheduling:migrations", published=PUBLISHED, outbox=outbox, inbox=inbox)

    @consumes("membership", "member_joined", consumed.MemberJoined)
    def on_member_joined(self, event):
        handlers.record_member_joined(self.uow(), event.payload)

    @consumes("catalogue", "subscription_started", consumed.SubscriptionStarted)
    def on_subscription_started(self, event):
        handlers.record_eligibility(self.uow(), event.payload)

    @http("GET", "/schools/<string:urn>")
    def school(self, request, urn):
        with self.uow.read() as session:
            found = repository.school(session, urn)
            eligible = repository.eligibility_of(session, urn)
        if found is None and not eligible:
            raise NotFound(f"scheduling knows no school with URN {urn}")
        return {"school": found, "eligibility": eligible}
