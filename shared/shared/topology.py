"""Names and declarations of the broker objects a service consumes from.

For a handler `<method>` of service `<service>` reading `<source>`'s `<type>`:
- `evt-<source>-<type>--<service>.<method>`: its queue (nameko's naming), a
  durable **quorum** queue bound to `<source>.events` with routing key `<type>`,
  with a delivery limit after which RabbitMQ itself dead-letters the message
  (e.g. one that kills the process every time);
- `<queue>.dead`: its dead-letter queue, where exhausted and invalid messages
  wait, with the error recorded in their headers, until an operator redelivers;
- `<service>.retry.<ms>ms`: one delay queue per backoff step, shared by the
  service's handlers. A failed message is parked there with routing key = its
  handler's queue; when its TTL ends RabbitMQ dead-letters it through the
  default exchange straight back to that queue only.
"""
from __future__ import annotations

from kombu import Exchange, Queue


def handler_queue_name(source: str, event_type: str, service: str, method: str) -> str:
    return f"evt-{source}-{event_type}--{service}.{method}"


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}.dead"


def retry_name(service: str, delay_ms: int) -> str:
    return f"{service}.retry.{int(delay_ms)}ms"


def handler_queue_arguments(queue_name: str, delivery_limit: int) -> dict:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": int(delivery_limit),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue_name(queue_name),
    }


def dead_letter_queue(queue_name: str) -> Queue:
    return Queue(dead_letter_queue_name(queue_name), exchange=None, routing_key=dead_letter_queue_name(queue_name),
                 durable=True, auto_delete=False, queue_arguments={"x-queue-type": "quorum"})


def retry_exchange_and_queue(service: str, delay_ms: int) -> tuple[Exchange, Queue]:
    name = retry_name(service, delay_ms)
    exchange = Exchange(name, type="fanout", durable=True, auto_delete=False)
    queue = Queue(name, exchange=exchange, routing_key="", durable=True, auto_delete=False,
                  queue_arguments={"x-message-ttl": int(delay_ms), "x-dead-letter-exchange": ""})
    return exchange, queue


def declare_handler_topology(channel, *, source: str, event_type: str, service: str, method: str,
                             delivery_limit: int, retry_delays_ms: list[int]) -> str:
    """Declare (idempotently) everything one handler needs; returns its queue name."""
    name = handler_queue_name(source, event_type, service, method)
    exchange = Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False)
    exchange(channel).declare()
    Queue(name, exchange=exchange, routing_key=event_type, durable=True, auto_delete=False,
          queue_arguments=handler_queue_arguments(name, delivery_limit))(channel).declare()
    dead_letter_queue(name)(channel).declare()
    for delay in retry_delays_ms:
        retry_exchange, retry_queue = retry_exchange_and_queue(service, delay)
        retry_exchange(channel).declare()
        retry_queue(channel).declare()
    return name
