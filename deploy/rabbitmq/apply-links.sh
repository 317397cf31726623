#!/usr/bin/env bash
# Apply a link definitions file (deploy/rabbitmq/links/<service>.json) on the NEW
# operator's broker host, where rabbitmqctl talks to the local node:
#
#   OLD_BROKER_URI='amqps://shovel:SECRET@rabbit.county.example:5671/%2F' \
#   NEW_BROKER_URI='amqp://shovel:SECRET@localhost:5672/%2F' NEW_BROKER_VHOST=/ \
#     deploy/rabbitmq/apply-links.sh deploy/rabbitmq/links/scheduling.json
#
# 1. enables the shovel plugins (no broker restart);
# 2. imports the moved service's provisioned topology: queues, exchanges, bindings, its
#    archive and policies (rabbitmqctl import_definitions); its broker user and permissions
#    are the new operator's to create (`partnership-ops topology apply --service NAME`);
# 3. waits until every queue exists: RabbitMQ imports parameters before queues, and a
#    shovel started first would declare a plain classic queue the service cannot consume;
# 4. sets each shovel (rabbitmqctl set_parameter shovel ...) and waits until all run.
# The old broker must already have the service's handler queues and its `<service>.events`
# exchange: it does if the old instance ever ran there (`partnership-ops link-brokers`
# declares them when missing).
# ${VAR} placeholders in the file come from the environment; a missing one stops the script.
# Same effect as `partnership-ops link-brokers`, for hosts without the partnership's Python.
set -euo pipefail
file=${1:?usage: apply-links.sh DEFINITIONS.json}
RABBITMQCTL=${RABBITMQCTL:-rabbitmqctl}
RABBITMQ_PLUGINS=${RABBITMQ_PLUGINS:-rabbitmq-plugins}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$file" "$work" <<'PY'
import json, os, re, sys
source, work = sys.argv[1], sys.argv[2]
text = open(source, encoding="utf-8").read()
missing = sorted({m for m in re.findall(r"\$\{([A-Z0-9_]+)\}", text) if m not in os.environ})
if missing:
    sys.exit(f"set {', '.join(missing)} in the environment first")
document = json.loads(re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: os.environ[m.group(1)].replace('"', '\\"'), text))
topology = {k: document.get(k, []) for k in ("exchanges", "queues", "bindings", "policies")}
json.dump(topology, open(f"{work}/topology.json", "w"))
with open(f"{work}/queues.txt", "w") as out:
    for queue in document.get("queues", []):
        out.write(f"{queue['vhost']}\t{queue['name']}\n")
with open(f"{work}/shovels.txt", "w") as out:
    for parameter in document.get("parameters", []):
        out.write(f"{parameter['vhost']}\t{parameter['name']}\t{json.dumps(parameter['value'])}\n")
PY

"$RABBITMQ_PLUGINS" enable rabbitmq_shovel rabbitmq_shovel_management >/dev/null
# rabbitmqctl may run as the rabbitmq user: let it read the topology (it holds no URIs or secrets).
chmod 711 "$work" && chmod 644 "$work/topology.json"
"$RABBITMQCTL" -q import_definitions "$work/topology.json"

# One listing per vhost per round (each rabbitmqctl call costs about a second here).
for _ in $(seq 1 120); do
  ready=yes
  for vhost in $(cut -f1 "$work/queues.txt" | sort -u); do
    "$RABBITMQCTL" -q list_queues -p "$vhost" name --no-table-headers > "$work/present.txt"
    if grep -P "^\Q$vhost\E\t" "$work/queues.txt" | cut -f2 | grep -Fxvq -f "$work/present.txt"; then
      ready=no; break
    fi
  done
  [ "$ready" = yes ] && break
  sleep 0.5
done
[ "$ready" = yes ] || { echo "queues were not declared in time" >&2; exit 1; }

# (fd 3: rabbitmqctl reads standard input and would swallow the rest of the list)
while IFS=$'\t' read -r -u 3 vhost name value; do
  "$RABBITMQCTL" -q set_parameter -p "$vhost" shovel "$name" "$value"
  echo "shovel $name set in vhost $vhost"
done 3< "$work/shovels.txt"

for _ in $(seq 1 120); do
  pending=$(for vhost in $(cut -f1 "$work/shovels.txt" | sort -u); do
      "$RABBITMQCTL" -q shovel_status -p "$vhost" --formatter json | python3 -c \
        "import json,sys; rows={r['name']: r.get('state') for r in json.load(sys.stdin)}; wanted=[l.split('\t')[1] for l in open(sys.argv[1]) if l.split('\t')[0] == sys.argv[2]]; print(' '.join(n for n in wanted if rows.get(n) != 'running'))" \
        "$work/shovels.txt" "$vhost"
    done)
  if [ -z "${pending//[$'\n ']/}" ]; then echo "all shovels running"; exit 0; fi
  sleep 0.5
done
echo "shovels not running: $pending" >&2
exit 1
