"""What scheduling publishes. Nothing yet: meetings, bookings and peer reviews come with
the scheduling issue; the registry exists so the outbox refuses anything undeclared."""
from shared.envelope import PayloadSchemas

PUBLISHED = PayloadSchemas({})
EXAMPLES: dict = {}
