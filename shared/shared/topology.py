"""The broker's names: what every exchange and queue of the event plumbing is called.

A running service needs these to publish, consume, retry and dead-letter (`shared.consumer`,
`shared.relay`); it never declares anything but its own handler queues. Everything else is
provisioned before any service starts by the operator tooling (`partnership_ops.topology`,
`partnership-ops topology apply`), from a definitions document built with these same names:

- `<p>.events`: producer `<p>`'s topic exchange, routing key `<type>.v<version>` (`routing_key`);
- `<p>.events.archive`: the stream that keeps every event `<p>` published;
- `evt-<source>-<type>--<s>.<method>` (nameko's naming): the quorum queue of handler
  `<method>` of service `<s>`, reading `<source>`'s `<type>`; `<queue>.dead` its dead letters;
- `<s>.retry.<ms>ms`: a retry delay's exchange and queue; `<s>.dead-letter` and
  `<s>.requeue`: the service's exchanges to its dead-letter queues and back to one handler's queue.
"""
from __future__ import annotations


def routing_key(event_type: str, version: int) -> str:
    """The routing key an event is published with: `member_joined.v1`. Consumers bind by type and
    version (`member_joined.v1`; `member_joined.*` for every version), so a breaking change, a new
    version published beside the old one, reaches only the handlers written for it."""
    return f"{event_type}.v{int(version)}"


def handler_queue_name(source: str, event_type: str, service: str, method: str) -> str:
    return f"evt-{source}-{event_type}--{service}.{method}"


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}.dead"


def retry_name(service: str, delay_ms: int) -> str:
    return f"{service}.retry.{int(delay_ms)}ms"


def events_exchange(service: str) -> str:
    return f"{service}.events"


def archive_name(producer: str) -> str:
    return f"{producer}.events.archive"


def dead_letter_exchange(service: str) -> str:
    return f"{service}.dead-letter"


def requeue_exchange(service: str) -> str:
    return f"{service}.requeue"


def service_of_queue(queue_name: str) -> str:
    """`evt-membership-member_joined--billing.on_member_joined` -> `billing`."""
    return queue_name.split("--", 1)[1].split(".", 1)[0]


def handler_queue_arguments() -> dict:
    """The only argument a handler queue is declared with; everything else is policy."""
    return {"x-queue-type": "quorum"}


def rpc_queue_arguments() -> dict:
    """`rpc-<service>`'s arguments (`shared.rpc`): a quorum queue, so that it outlives any one node."""
    return {"x-queue-type": "quorum"}
