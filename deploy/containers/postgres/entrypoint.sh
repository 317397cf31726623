#!/bin/sh
# The official postgres image's start, in short: initialise an empty PGDATA (superuser password
# from POSTGRES_PASSWORD, password authentication over TCP), run /docker-entrypoint-initdb.d/ once
# on a socket-only server, then run postgres listening on POSTGRES_LISTEN_ADDRESSES (default *).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username=postgres --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
         --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)  echo "init: running $f"; POSTGRES_USER=postgres sh "$f" ;;
      *.sql) echo "init: running $f"; psql -v ON_ERROR_STOP=1 -U postgres -d postgres -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
unset POSTGRES_PASSWORD
if [ "$1" = postgres ]; then
  shift
  exec postgres -c "listen_addresses=${POSTGRES_LISTEN_ADDRESSES:-*}" "$@"
fi
exec "$@"
