#!/bin/sh
# Writes rabbitmq.conf from the environment, then runs the command (rabbitmq-server).
set -eu
: "${RABBITMQ_DEFAULT_USER:?set RABBITMQ_DEFAULT_USER (the administrator; there is no guest)}"
: "${RABBITMQ_DEFAULT_PASS:?set RABBITMQ_DEFAULT_PASS}"
address="${RABBITMQ_LISTEN_ADDRESS:-}"
prefix=""
[ -n "$address" ] && prefix="$address:"
umask 077
cat > "$RABBITMQ_CONFIG_FILE" <<CONF
listeners.tcp.default = ${prefix}${RABBITMQ_NODE_PORT:-5672}
management.tcp.port = ${RABBITMQ_MANAGEMENT_PORT:-15672}
prometheus.tcp.port = ${RABBITMQ_PROMETHEUS_PORT:-15692}
default_user = ${RABBITMQ_DEFAULT_USER}
default_pass = ${RABBITMQ_DEFAULT_PASS}
default_user_tags.administrator = true
CONF
# The shipped settings (guest from localhost only): deploy/rabbitmq/rabbitmq.conf.
cat /usr/local/share/partnership/rabbitmq.conf >> "$RABBITMQ_CONFIG_FILE"
if [ -n "$address" ]; then
  printf 'management.tcp.ip = %s\nprometheus.tcp.ip = %s\n' "$address" "$address" >> "$RABBITMQ_CONFIG_FILE"
fi
# The password is in the file, not in the process's environment.
unset RABBITMQ_DEFAULT_PASS
exec "$@"
