"""Operator commands for the event plumbing of one service.

    partnership-ops dead-letters  --config services/billing/config.yml --service billing.entrypoints.service:BillingService
                                  [--mentions CONTACT_ID [--known NAME_OR_EMAIL ...] [--rewrite | --purge]]
    partnership-ops redeliver     --config ... --service ... [--queue QUEUE.dead] [--event-id ID ...] [--all]
    partnership-ops outbox        --config services/billing/config.yml

Handing a function to another operator (docs/handover.md):

    partnership-ops export    --service billing --database URL --out billing.tar.gz [--operator NAME]
    partnership-ops import    --service billing --database URL --archive billing.tar.gz
                              [--handover-to OPERATOR --effective-date YYYY-MM-DD]
    partnership-ops drain     --service billing --database URL --amqp URI
    partnership-ops quiesce   --url http://old-instance:8003 [--timeout 30]
    partnership-ops handover  --service billing --from-database URL --from-amqp URI --from-operator NAME
                              --to-database URL --to-operator NAME --archive FILE [--effective-date D]
                              [--quiesce-url URL] [--stop-pid PID]
    partnership-ops link-brokers --service scheduling --old-amqp URI --new-amqp URI --label mat [--enable-plugin]
    partnership-ops erase     --service billing --database URL --archive billing.tar.gz

The broker's topology and the event archive (`partnership_ops.topology`, `partnership_ops.event_archive`):

    partnership-ops topology apply --service membership --service catalogue ... [--config ...]
                              [--definitions deploy/rabbitmq/definitions.json] [--vhost V] [--user-prefix P]
    partnership-ops topology check  (same arguments: exit 1 and a list of what differs)
    partnership-ops topology print  (the definitions document, as generated from the code)
    partnership-ops topology consumer-user NAME [--producer membership ...] [--amqp ADMIN_URI]
                              (a broker user `consumer-NAME` for a consumer outside the system;
                              password from PARTNERSHIP_AMQP_PASSWORD_CONSUMER_<NAME> or --passwords-file)
    partnership-ops tail      [--producer billing ...] [--type invoice_issued ...] [--from first|last|next|OFFSET|TIME]
                              [--follow] [--limit N]
    partnership-ops replay    --queue evt-membership-member_joined--billing.on_member_joined
                              [--version N] [--from first|OFFSET|TIME] [--until TIME]
    partnership-ops dev-token --role head_teacher --urn 110000 [--contact-id C-...] [--mat ID] [--minutes 60]

`dev-token` mints a bearer token with the development key `make run` made (var/dev-auth/); only
services started with AUTH_DEVELOPMENT=1 accept it. `quiesce` and `handover --quiesce-url` call the
instance's /ops/* routes with PARTNERSHIP_OPS_TOKEN, a token with the `operations` role.

`topology apply` provisions exchanges, queues, the archive streams, bindings,
policies, and one user per service with least-privilege permissions (passwords
from `PARTNERSHIP_AMQP_PASSWORD_<SERVICE>` or `--passwords-file`, a JSON object
user -> password), through the management API of the broker `AMQP_URI` names
(`--admin-uri` for an administrator's credentials, `--management-url` if it is
not on port 15672 of that host); it is idempotent. `tail` prints archived events
as JSON lines; `replay` re-sends one handler's events from the archive to that
handler's queue only (its inbox drops what it already applied), then every
archived `contact_erased` to that service's erasure handler, so that a replay
never brings an erased person back.

`dead-letters` lists every dead-lettered event of the service's handlers with
its reason, error, attempts and time, without consuming anything; with
`--mentions CONTACT_ID [--known NAME_OR_EMAIL ...]` only those that mention an
erased person, and with `--rewrite` or `--purge` it blanks the person's data in
them (kept, still redeliverable) or removes them (`erase_from_dead_letters`).
`redeliver` moves dead-lettered events back to the queue of the handler that
failed (and only that handler), with a fresh attempt count; each is removed
from the dead-letter queue only after the broker confirmed the redelivery.
`outbox` shows the unsent backlog, the age of the oldest unsent row and the
rows the broker returned or refused, with their last error.

`export` writes a verified, portable archive of a service's database (its
tables, inbox, unsent outbox and Alembic revision); `import` loads one into an
empty database (either dialect), refusing a damaged archive, an unknown
revision or a non-empty target; `drain` publishes a stopped instance's outbox;
`handover` runs the whole cut-over (stop, check, drain, export, import with the
`function_handed_over` event); `link-brokers` links a service moved to another
broker with shovels; `erase` removes the old operator's personal data. `quiesce` asks a running instance to
stop consuming and waits until its relay has drained its outbox. Each
prints a JSON report; a refusal exits with status 2 and says why.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import pika
from sqlalchemy import MetaData, func, select

from partnership_ops import topology
from shared.config import load_config
from shared.db import Database
from shared.messaging_tables import define_messaging_tables, utcnow
from shared.topology import dead_letter_exchange, dead_letter_queue_name, requeue_exchange, service_of_queue
from shared import business_date, erasure


def handler_queues(service_path: str) -> list[str]:
    """Queue names of a service class's reliable handlers, e.g. `billing.entrypoints.service:BillingService`."""
    from partnership_ops import links

    return [h.queue for h in links.handlers_of(service_path)]


def _channel(amqp_uri: str):
    connection = pika.BlockingConnection(topology.pika_parameters(amqp_uri))
    return connection, connection.channel()


def list_dead_letters(amqp_uri: str, queues: list[str]) -> list[dict]:
    found = []
    connection, channel = _channel(amqp_uri)
    try:
        for queue in queues:
            dead = dead_letter_queue_name(queue)
            for _ in range(100000):
                method, properties, body = channel.basic_get(dead, auto_ack=False)
                if method is None:
                    break
                headers = dict(properties.headers or {})
                death = (headers.get("x-death") or [{}])[0]
                found.append({
                    "queue": dead, "event_id": properties.message_id, "type": properties.type,
                    "reason": headers.get("x-dead-letter-reason") or death.get("reason", "broker"),
                    "error": headers.get("x-error") or "dead-lettered by RabbitMQ (delivery limit)",
                    "attempts": headers.get("x-attempts") or headers.get("x-delivery-count"),
                    "dead_lettered_at": headers.get("x-dead-lettered-at"),
                })
            channel.close()  # returns everything browsed to its queue
            channel = connection.channel()
    finally:
        connection.close()
    return found


def redeliver(amqp_uri: str, queues: list[str], event_ids: set[str] | None) -> int:
    """Move dead letters back to their handler's queue; returns how many moved."""
    moved = 0
    connection, channel = _channel(amqp_uri)
    channel.confirm_delivery()
    try:
        for queue in queues:
            dead = dead_letter_queue_name(queue)
            depth = channel.queue_declare(dead, passive=True).method.message_count
            for _ in range(depth):
                method, properties, body = channel.basic_get(dead, auto_ack=False)
                if method is None:
                    break
                if event_ids is not None and properties.message_id not in event_ids:
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    continue
                headers = {k: v for k, v in (properties.headers or {}).items()
                           if not k.startswith("x-") or k.startswith("x-event") or k in (
                               "x-producer", "x-operator", "x-correlation-id", "x-causation-id", "x-occurred-at")}
                headers["x-redelivered-from"] = dead
                properties.headers = headers
                # The service's requeue exchange binds each of its handler queues by name: back to
                # this handler only.
                channel.basic_publish(requeue_exchange(service_of_queue(queue)), queue, body, properties,
                                      mandatory=True)
                channel.basic_ack(method.delivery_tag)
                moved += 1
    finally:
        connection.close()
    return moved


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, bytes):
        return [value.decode("utf-8", "replace")]
    return [value] if isinstance(value, str) else []


def _mentions(text: str, parsed, headers: dict, contact_id: str, known: list[str]) -> bool:
    """The person's id or one of their known values (name, email) is in the body or a header."""
    found = [text, *_strings(parsed), *_strings(headers)]
    return any(contact_id in s for s in found) or any(k.lower() in s.lower() for s in found for k in known)


ERASE_ACTIONS = ("list", "rewrite", "purge")


def erase_from_dead_letters(amqp_uri: str, queues: list[str], contact_id: str, known_values=(),
                            action: str = "list") -> dict:
    """The dead-lettered events of `queues` that mention a person (their contact id, or one of
    `known_values`, their name or email as it was, anywhere in the body or the headers): listed,
    rewritten or purged.

    - `list` consumes nothing: every message browsed returns to its queue when the channel closes.
    - `rewrite` publishes a copy of each with the person's fields blanked (`shared.erasure`: in every
      object that carries their id, names `[erased]` and emails null; any known value elsewhere in the
      payload or the headers, such as the error, `[erased]`) to the same dead-letter queue, through
      the service's dead-letter exchange, and removes the original only after the broker confirmed the
      copy: the event can still be redelivered, and nothing is lost between the two. A body that is not
      an event envelope cannot be rewritten; it is reported (`not_rewritable`) and left.
    - `purge` removes each for good (acknowledged): the handler will never see that event; its event ids
      are reported so the operator can replay them from the archive if the handler still needs them.

    Runs with the service's own broker user (read and write on its dead-letter queues and exchange).
    Each queue is read once, to the depth it had at the start: a rewritten copy behind it is not
    read again."""
    if action not in ERASE_ACTIONS:
        raise ValueError(f"action must be one of {ERASE_ACTIONS}, not {action!r}")
    known = sorted({v for v in known_values if v}, key=len, reverse=True)
    report = {"contact_id": contact_id, "action": action, "mentions": [], "rewritten": 0, "purged": 0,
              "not_rewritable": []}
    connection, channel = _channel(amqp_uri)
    channel.confirm_delivery()
    try:
        for queue in queues:
            dead = dead_letter_queue_name(queue)
            depth = channel.queue_declare(dead, passive=True).method.message_count
            for _ in range(depth):
                method, properties, body = channel.basic_get(dead, auto_ack=False)
                if method is None:
                    break
                text = body.decode("utf-8", "replace")
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = None
                headers = dict(properties.headers or {})
                if not _mentions(text, parsed, headers, contact_id, known):
                    continue  # left unacknowledged: back to its place when the channel closes
                report["mentions"].append({"queue": dead, "event_id": properties.message_id, "type": properties.type,
                                           "error": headers.get("x-error")})
                if action == "purge":
                    channel.basic_ack(method.delivery_tag)
                    report["purged"] += 1
                elif action == "rewrite":
                    if not isinstance(parsed, dict) or "payload" not in parsed:
                        report["not_rewritable"].append(properties.message_id)
                        continue
                    parsed["payload"], _ = erasure.redact_payload(parsed["payload"], contact_id, known)
                    properties.headers = {k: erasure.redact_text(v, known)[0] if isinstance(v, str) else v
                                          for k, v in headers.items()}
                    copy = json.dumps(parsed, separators=(",", ":"), sort_keys=True).encode("utf-8")
                    # confirmed and routed (mandatory) or this raises, and the original stays
                    channel.basic_publish(dead_letter_exchange(service_of_queue(queue)), dead, copy, properties,
                                          mandatory=True)
                    channel.basic_ack(method.delivery_tag)
                    report["rewritten"] += 1
            channel.close()  # returns everything browsed and not acknowledged to its queue
            channel = connection.channel()
            channel.confirm_delivery()
    finally:
        connection.close()
    report["count"] = len(report["mentions"])
    return report


def outbox_report(database_url: str) -> dict:
    outbox, _ = define_messaging_tables(MetaData())
    database = Database(database_url)
    try:
        with database.reader() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))).one()
            failing = session.execute(
                select(outbox.c.event_id, outbox.c.event_type, outbox.c.attempts, outbox.c.last_error,
                       outbox.c.next_attempt_at)
                .where(outbox.c.sent_at.is_(None), outbox.c.last_error.is_not(None))
                .order_by(outbox.c.id).limit(50)).all()
    finally:
        database.dispose()
    return {
        "unsent": int(count),
        "oldest_unsent_age_seconds": round((utcnow() - oldest).total_seconds(), 1) if oldest else 0.0,
        "failing": [{"event_id": r.event_id, "type": r.event_type, "attempts": r.attempts,
                     "last_error": r.last_error, "next_attempt_at": r.next_attempt_at.isoformat()} for r in failing],
    }


HANDOVER_COMMANDS = ("export", "import", "drain", "quiesce", "handover", "link-brokers", "erase")


def _add_handover_commands(commands) -> None:
    import os

    env = os.environ.get
    sub = commands.add_parser("export", help="write a service's archive")
    sub.add_argument("--service", required=True)
    sub.add_argument("--database", default=env("DATABASE_URL"), help="default: $DATABASE_URL")
    sub.add_argument("--out", required=True)
    sub.add_argument("--operator", default=env("OPERATOR_NAME"), help="operator running it (default $OPERATOR_NAME)")
    sub.add_argument("--operator-legal-name", default=env("OPERATOR_LEGAL_NAME"))

    sub = commands.add_parser("import", help="load an archive into an empty database")
    sub.add_argument("--service", required=True)
    sub.add_argument("--database", default=env("DATABASE_URL"), help="default: $DATABASE_URL")
    sub.add_argument("--archive", required=True)
    sub.add_argument("--handover-to", help="new operator: also write function_handed_over to the new outbox")
    sub.add_argument("--effective-date", type=_date, help="first day the new operator runs it (default today)")

    sub = commands.add_parser("drain", help="publish a stopped instance's outbox")
    sub.add_argument("--service", required=True)
    sub.add_argument("--database", default=env("DATABASE_URL"))
    sub.add_argument("--amqp", default=env("AMQP_URI"))
    sub.add_argument("--timeout", type=float, default=30.0)

    sub = commands.add_parser("quiesce", help="a running instance stops consuming; wait for its outbox to drain")
    sub.add_argument("--url", required=True, help="the instance's HTTP address, e.g. http://127.0.0.1:8003")
    sub.add_argument("--timeout", type=float, default=30.0)

    sub = commands.add_parser("handover", help="stop, drain, export and import under the new operator")
    sub.add_argument("--service", required=True)
    sub.add_argument("--from-database", required=True)
    sub.add_argument("--from-amqp", required=True)
    sub.add_argument("--from-operator", required=True)
    sub.add_argument("--from-operator-legal-name")
    sub.add_argument("--to-database", required=True)
    sub.add_argument("--to-operator", required=True)
    sub.add_argument("--archive", required=True)
    sub.add_argument("--effective-date", type=_date, help="default today")
    sub.add_argument("--quiesce-url", help="the old instance's HTTP address: it stops consuming and drains its "
                                           "outbox before it is stopped")
    sub.add_argument("--stop-pid", type=int, help="SIGTERM this process (the old instance) and wait for it")
    sub.add_argument("--drain-timeout", type=float, default=30.0)

    sub = commands.add_parser("link-brokers", help="shovels between the old broker and the new operator's")
    sub.add_argument("--service", required=True, help="the service that moved to the new broker")
    sub.add_argument("--old-amqp", required=True, help="old broker, as this host reaches it")
    sub.add_argument("--new-amqp", required=True, help="new broker, as this host reaches it")
    sub.add_argument("--old-shovel-uri", help="old broker as the new broker reaches it (default --old-amqp)")
    sub.add_argument("--new-shovel-uri", help="new broker as itself reaches it (default --new-amqp)")
    sub.add_argument("--label", required=True, help="short name of the link, e.g. the new operator")
    sub.add_argument("--shovel-vhost", help="vhost on the new broker holding the shovels (default: --new-amqp's)")
    sub.add_argument("--config", help="the new instance's config.yml, for its delivery limit and retry delays")
    sub.add_argument("--enable-plugin", action="store_true", help="rabbitmq-plugins enable the shovel plugins")
    sub.add_argument("--write-definitions", help="also write a definitions file (rabbitmqctl import_definitions)")
    sub.add_argument("--dry-run", action="store_true", help="print the plan; declare and apply nothing")
    sub.add_argument("--rabbitmqctl", default="rabbitmqctl")

    sub = commands.add_parser("erase", help="erase the old operator's personal data after a handover")
    sub.add_argument("--service", required=True)
    sub.add_argument("--database", default=env("DATABASE_URL"))
    sub.add_argument("--archive", required=True, help="the verified archive the handover wrote")


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _require(parser, args, *names) -> None:
    for name in names:
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} is required (or set its environment variable)")


def run_handover_command(parser, args) -> dict:
    import datetime as dt

    from partnership_ops import archive, handover, links

    today = business_date.today()
    if args.command == "export":
        _require(parser, args, "database", "operator")
        operator = {"name": args.operator, **({"legal_name": args.operator_legal_name}
                                              if args.operator_legal_name else {})}
        manifest = archive.export_service(args.service, args.database, args.out, operator=operator)
        return {"archive": args.out, "service": args.service, "operator": operator,
                "alembic_revision": manifest["alembic_revision"], "row_counts": manifest["row_counts"],
                "checksums": {e["file"]: e["sha256"] for e in manifest["tables"]}}
    if args.command == "import":
        _require(parser, args, "database")
        extra = None
        if args.handover_to:
            with archive.Archive(args.archive) as opened:
                from_operator = opened.manifest["operator"].get("name")
            if not from_operator or from_operator == args.handover_to:
                raise archive.ImportRefused(f"--handover-to {args.handover_to!r}: the archive's operator is "
                                            f"{from_operator!r}; a handover needs a different operator")
            envelope = handover.handed_over_envelope(args.service, from_operator, args.handover_to,
                                                     args.effective_date or today)
            extra = handover.outbox_writer(envelope)
        return archive.import_service(args.service, args.database, args.archive, extra_rows=extra)
    if args.command == "drain":
        _require(parser, args, "database", "amqp")
        queues = [h.queue for h in links.handlers_of(args.service)]
        return {"queues": handover.assert_not_consuming(args.amqp, queues),
                "drain": handover.drain_outbox(args.service, args.database, args.amqp, args.timeout)}
    if args.command == "handover":
        if args.from_operator == args.to_operator:
            parser.error("--to-operator must differ from --from-operator (to move a database, export and import)")
        operator = {"name": args.from_operator, **({"legal_name": args.from_operator_legal_name}
                                                   if args.from_operator_legal_name else {})}
        return handover.handover(
            service=args.service, from_database=args.from_database, from_amqp=args.from_amqp,
            to_database=args.to_database, archive=args.archive, from_operator=operator,
            to_operator=args.to_operator, effective_date=args.effective_date or today,
            handler_queues=[h.queue for h in links.handlers_of(args.service)], stop_pid=args.stop_pid,
            drain_timeout=args.drain_timeout, quiesce_url=args.quiesce_url)
    if args.command == "quiesce":
        return handover.quiesce_instance(args.url, args.timeout)
    if args.command == "link-brokers":
        return _link_brokers(args)
    if args.command == "erase":
        _require(parser, args, "database")
        return archive.erase_personal_data(args.service, args.database, archive_path=args.archive)
    raise AssertionError(args.command)


def _link_brokers(args) -> dict:
    from partnership_ops import links
    from shared.config import events_settings

    settings = events_settings(load_config(args.config) if args.config else {})
    delivery_limit = settings["delivery_limit"]
    retry_delays = settings["retry_delays_ms"]
    old_uri = args.old_shovel_uri or args.old_amqp
    new_uri = args.new_shovel_uri or args.new_amqp
    vhost = args.shovel_vhost or links.vhost_of(args.new_amqp)
    shovels = links.plan(args.service, old_uri=old_uri, new_uri=new_uri, label=args.label)
    report: dict = {"service": args.service, "shovel_vhost": vhost,
                    "shovels": [{"name": s["name"], **{k: v for k, v in s["value"].items()
                                                       if not k.endswith("-uri")}} for s in shovels]}
    if args.write_definitions:
        links.write_definitions(args.write_definitions, links.definitions(
            args.service, old_uri=old_uri, new_uri=new_uri, label=args.label, shovel_vhost=vhost,
            delivery_limit=delivery_limit, retry_delays_ms=retry_delays))
        report["definitions"] = args.write_definitions
    if args.dry_run:
        return report
    if args.enable_plugin:
        links.enable_plugin()
        report["plugins_enabled"] = list(links.PLUGINS)
    report["declared"] = links.declare(args.service, old_amqp=args.old_amqp, new_amqp=args.new_amqp,
                                       label=args.label, delivery_limit=delivery_limit, retry_delays_ms=retry_delays)
    names = links.apply(shovels, vhost=vhost, executable=args.rabbitmqctl)
    report["running"] = links.wait_running(names, vhost=vhost, executable=args.rabbitmqctl)
    return report


def _add_event_commands(commands) -> None:
    import os

    env = os.environ.get
    sub = commands.add_parser("topology", help="provision or check the broker topology and users")
    sub.add_argument("action", choices=("apply", "check", "print", "consumer-user"))
    sub.add_argument("name", nargs="?", help="consumer-user: the external consumer's name (its queues: "
                                             "consumer.<name>.*)")
    sub.add_argument("--producer", action="append", help="consumer-user: a producer whose events it may read "
                                                         "(repeatable; default all four)")
    sub.add_argument("--service", action="append", help="a service whose topology to generate from its code "
                                                        "(repeatable); or --definitions")
    sub.add_argument("--definitions", help="a definitions document (deploy/rabbitmq/definitions.json)")
    sub.add_argument("--config", help="a service config.yml for the delivery limit and retry delays "
                                      "(default: the defaults)")
    sub.add_argument("--archive-max-age", default=env("EVENT_ARCHIVE_MAX_AGE"),
                     help="archive retention, RabbitMQ's max-age form (default 13M)")
    sub.add_argument("--amqp", default=env("AMQP_URI"), help="the broker and vhost (default $AMQP_URI)")
    sub.add_argument("--admin-uri", default=env("RABBITMQ_ADMIN_URI"),
                     help="an administrator's AMQP URI for the management API (default --amqp)")
    sub.add_argument("--management-url", default=env("RABBITMQ_MANAGEMENT_URL"))
    sub.add_argument("--vhost", help="default: --amqp's")
    sub.add_argument("--user-prefix", default="", help="broker user names are <prefix><service>")
    sub.add_argument("--passwords-file", help="JSON object user -> password (e.g. a mounted secret)")

    sub = commands.add_parser("tail", help="print archived events (JSON lines)")
    sub.add_argument("--amqp", default=env("AMQP_URI"))
    sub.add_argument("--producer", action="append", help="repeatable; default every one of --known")
    sub.add_argument("--known", default="membership,catalogue,billing,scheduling",
                     help="producers to read when no --producer is given")
    sub.add_argument("--type", action="append", help="only this event type (repeatable)")
    sub.add_argument("--from", dest="start", default=None, help="first (default), last, next, an offset, a time")
    sub.add_argument("--follow", action="store_true", help="keep printing new events (one producer)")
    sub.add_argument("--limit", type=int, default=1_000_000)
    sub.add_argument("--timeout", type=float, default=3600.0)

    sub = commands.add_parser("replay", help="re-send archived events to one handler queue")
    sub.add_argument("--amqp", default=env("AMQP_URI"))
    sub.add_argument("--queue", required=True, help="the handler queue, evt-<source>-<type>--<service>.<method>")
    sub.add_argument("--version", type=int, default=1,
                     help="the payload version the handler reads (its queue is bound to <type>.v<version>; default 1)")
    sub.add_argument("--from", dest="start", default=None, help="first (default), an offset or a time")
    sub.add_argument("--until", help="last time to replay (default: now)")
    sub.add_argument("--timeout", type=float, default=600.0)


def _passwords(args, users: list[str]) -> dict[str, str]:
    import os

    passwords = {}
    if args.passwords_file:
        with open(args.passwords_file, encoding="utf-8") as handle:
            passwords.update(json.load(handle))
    for user in users:
        variable = f"PARTNERSHIP_AMQP_PASSWORD_{user.upper().replace('-', '_')}"
        if os.environ.get(variable):
            passwords.setdefault(user, os.environ[variable])
    return passwords


def run_event_command(parser, args) -> tuple[int, object]:
    from partnership_ops import event_archive, links, topology
    from shared.config import events_settings

    if args.command == "topology" and args.action == "consumer-user":
        _require(parser, args, "amqp")
        if not args.name:
            parser.error("topology consumer-user needs the consumer's NAME")
        user = topology.consumer_user(args.name)
        management = topology.Management.for_amqp_uri(args.admin_uri or args.amqp, url=args.management_url)
        try:
            return 0, topology.provision_consumer(
                management, args.name, vhost=args.vhost or links.vhost_of(args.amqp),
                password=_passwords(args, [user]).get(user, ""),
                producers=args.producer or ["membership", "catalogue", "billing", "scheduling"])
        except ValueError as exc:
            parser.error(str(exc))
    if args.command == "topology":
        if args.definitions:
            with open(args.definitions, encoding="utf-8") as handle:
                document = json.load(handle)
        elif args.service:
            settings = events_settings(load_config(args.config) if args.config else {})
            document = topology.definitions(
                [links.topology_of(name) for name in args.service], delivery_limit=settings["delivery_limit"],
                retry_delays_ms=settings["retry_delays_ms"],
                archive_max_age=args.archive_max_age or topology.ARCHIVE_MAX_AGE, user_prefix=args.user_prefix)
        else:
            parser.error("topology needs --service NAME (repeatable) or --definitions FILE")
        if args.action == "print":
            return 0, document
        _require(parser, args, "amqp")
        admin = args.admin_uri or args.amqp
        management = topology.Management.for_amqp_uri(admin, url=args.management_url)
        vhost = args.vhost or links.vhost_of(args.amqp)
        if args.action == "apply":
            users = [p["user"] for p in document.get("permissions", [])]
            return 0, topology.apply(management, document, vhost=vhost, passwords=_passwords(args, users))
        problems = topology.check(management, document, vhost=vhost)
        return (1 if problems else 0), {"vhost": vhost, "matches": not problems, "problems": problems}
    _require(parser, args, "amqp")
    if args.command == "tail":
        producers = args.producer or [p for p in args.known.split(",") if p]
        count = event_archive.tail(args.amqp, producers, start=event_archive.parse_start(args.start),
                                   types=set(args.type) if args.type else None, follow=args.follow,
                                   timeout=args.timeout, limit=args.limit,
                                   emit=lambda item: print(json.dumps(item, default=str), flush=True))
        return 0, {"events": count}
    if args.command == "replay":
        source, event_type = _queue_source(args.queue)
        until = event_archive.parse_start(args.until) if args.until else None
        return 0, event_archive.replay(args.amqp, args.queue, source=source, event_type=event_type,
                                       version=args.version, start=event_archive.parse_start(args.start), until=until,
                                       timeout=args.timeout)
    raise AssertionError(args.command)


def _queue_source(queue: str) -> tuple[str, str]:
    """`evt-<source>-<type>--<service>.<method>` -> (source, type)."""
    head = queue.split("--", 1)[0]
    if not head.startswith("evt-") or "-" not in head[4:]:
        raise LookupError(f"{queue!r} is not a handler queue (evt-<source>-<type>--<service>.<method>)")
    source, _, event_type = head[4:].partition("-")
    return source, event_type


EVENT_COMMANDS = ("topology", "tail", "replay")


def migrate(service: str, database_url: str | None) -> int:
    """Bring `service`'s database to its head migration (safe beside starting replicas: see Database.upgrade)."""
    if not database_url:
        print(json.dumps({"command": "migrate", "refused": "no database: pass --database-url or set DATABASE_URL"}),
              file=sys.stderr)
        return 2
    database = Database(database_url)
    try:
        before, head = database.revisions(f"{service}:migrations")
        database.upgrade(f"{service}:migrations")
        after, _ = database.revisions(f"{service}:migrations")
    finally:
        database.dispose()
    print(json.dumps({"command": "migrate", "service": service, "from": before, "to": after, "head": head}))
    return 0


def dev_token(args) -> int:
    """Print a token signed with the development key (never accepted without AUTH_DEVELOPMENT=1)."""
    from pathlib import Path

    from partnership_ops.devauth import DEV_KEY_FOLDER, development_issuer

    folder = Path(args.key_folder) if args.key_folder else DEV_KEY_FOLDER
    if not (folder / "signing-key.pem").exists():
        print(f"no development key in {folder}: start the services with `make run` first", file=sys.stderr)
        return 1
    issuer = development_issuer(folder)
    print(issuer.token(args.subject or f"dev-{args.role[0]}", roles=args.role, urn=args.urn, mat_id=args.mat,
                       la_code=args.la, contact_id=args.contact_id, lifetime_seconds=args.minutes * 60))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="partnership-ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_handover_commands(commands)
    _add_event_commands(commands)
    for name in ("dead-letters", "redeliver"):
        sub = commands.add_parser(name)
        sub.add_argument("--config", required=True)
        sub.add_argument("--service", required=True, help="module:Class of the service, for its handlers' queues")
        sub.add_argument("--queue", action="append", help="only this handler queue (repeatable)")
        if name == "dead-letters":
            sub.add_argument("--mentions", metavar="CONTACT_ID",
                             help="only the dead letters that mention this person (their contact id, or a --known value)")
            sub.add_argument("--known", action="append", default=[],
                             help="with --mentions: the person's name or email as it was (repeatable)")
            what = sub.add_mutually_exclusive_group()
            what.add_argument("--rewrite", action="store_true",
                              help="with --mentions: blank the person's data in each (kept, still redeliverable)")
            what.add_argument("--purge", action="store_true", help="with --mentions: remove each for good")
        if name == "redeliver":
            sub.add_argument("--event-id", action="append", help="only this event (repeatable)")
            sub.add_argument("--all", action="store_true", help="redeliver every dead letter of the queues")
    sub = commands.add_parser("outbox")
    sub.add_argument("--config", required=True)
    sub = commands.add_parser("dev-token", help="mint a development bearer token (the key `make run` made)")
    sub.add_argument("--role", action="append", required=True,
                     help="a role (repeatable): finance, catalogue_manager, scheduler, operations, membership_officer, "
                          "head_teacher, business_manager, governor, senco, school_staff, mat_staff, mat_finance, "
                          "council_officer")
    sub.add_argument("--urn", help="the school of a school role")
    sub.add_argument("--mat", help="the MAT of a MAT role")
    sub.add_argument("--la", help="the local authority of a council officer")
    sub.add_argument("--contact-id", help="the membership contact the person is (buys and books as them)")
    sub.add_argument("--subject", default=None, help="the token's subject (default: dev-<role>)")
    sub.add_argument("--minutes", type=int, default=60, help="lifetime (default 60)")
    sub.add_argument("--key-folder", default=None, help="default: var/dev-auth of the checkout")
    sub = commands.add_parser("migrate", help="apply a service's database migrations (the job before a rollout)")
    sub.add_argument("--service", required=True, choices=("membership", "catalogue", "billing", "scheduling"))
    sub.add_argument("--database-url", default=None, help="default: $DATABASE_URL")
    args = parser.parse_args(argv)
    if args.command == "dev-token":
        return dev_token(args)
    if args.command == "migrate":
        return migrate(args.service, args.database_url or os.environ.get("DATABASE_URL"))
    if args.command in HANDOVER_COMMANDS:
        from partnership_ops.archive import ArchiveError, ImportRefused, UnsupportedColumn
        from partnership_ops.handover import StillConsuming

        try:
            report = run_handover_command(parser, args)
        except (ArchiveError, ImportRefused, UnsupportedColumn, StillConsuming, LookupError, TimeoutError) as exc:
            print(json.dumps({"command": args.command, "refused": f"{type(exc).__name__}: {exc}"}), file=sys.stderr)
            return 2
        except (RuntimeError, OSError) as exc:  # rabbitmqctl failed or missing, broker or database unreachable
            print(json.dumps({"command": args.command, "failed": f"{type(exc).__name__}: {exc}"}), file=sys.stderr)
            return 1
        print(json.dumps(report, indent=2, default=str))
        return 0
    if args.command in EVENT_COMMANDS:
        from partnership_ops.topology import TopologyError

        try:
            status, report = run_event_command(parser, args)
        except (TopologyError, LookupError, ValueError, OSError, pika.exceptions.AMQPError) as exc:
            print(json.dumps({"command": args.command, "failed": f"{type(exc).__name__}: {exc}"}), file=sys.stderr)
            return 2
        if args.command != "tail":
            print(json.dumps(report, indent=2, default=str))
        return status
    config = load_config(args.config)
    if args.command == "outbox":
        print(json.dumps(outbox_report(config["DATABASE_URL"]), indent=2))
        return 0
    queues = args.queue or handler_queues(args.service)
    if args.command == "dead-letters" and (args.mentions or args.rewrite or args.purge or args.known):
        if not args.mentions:
            parser.error("--known, --rewrite and --purge need --mentions CONTACT_ID")
        action = "rewrite" if args.rewrite else "purge" if args.purge else "list"
        print(json.dumps(erase_from_dead_letters(config["AMQP_URI"], queues, args.mentions, args.known, action),
                         indent=2, default=str))
        return 0
    if args.command == "dead-letters":
        letters = list_dead_letters(config["AMQP_URI"], queues)
        print(json.dumps({"dead_letters": letters, "count": len(letters)}, indent=2, default=str))
        return 0
    if not args.all and not args.event_id:
        parser.error("redeliver needs --event-id ID (repeatable) or --all")
    moved = redeliver(config["AMQP_URI"], queues, None if args.all else set(args.event_id))
    print(json.dumps({"redelivered": moved}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
