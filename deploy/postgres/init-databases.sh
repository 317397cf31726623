#!/bin/sh
# One role and one database per service: no service can read another's tables.
# Run once by the postgres image on an empty data volume (docker-compose.yml mounts it in
# /docker-entrypoint-initdb.d/). Each role's password comes from the environment
# (<SERVICE>_DB_PASSWORD, from the uncommitted env file): none is written here.
set -eu
for service in membership catalogue billing scheduling; do
  variable="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password="$(printenv "$variable" || true)"
  [ -n "$password" ] || { echo "init-databases.sh: $variable is not set" >&2; exit 1; }
  psql -v ON_ERROR_STOP=1 -v role="$service" -v password="$password" \
       --username "${POSTGRES_USER:-postgres}" --dbname postgres <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
