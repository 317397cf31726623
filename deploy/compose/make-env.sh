#!/bin/sh
# Write an env file for docker-compose.yml with a random password for every account
# (default `.env` at the repository root; refuses to overwrite one). Never commit it.
#   bash deploy/compose/make-env.sh [FILE]
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
file="${1:-$root/.env}"
if [ -e "$file" ]; then echo "$file exists; not overwriting" >&2; exit 1; fi
secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
{
  echo "# Written by deploy/compose/make-env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Never commit it."
  grep -v '^#' "$root/deploy/compose/env.example" | while IFS='=' read -r key value; do
    [ -n "$key" ] || continue
    case "$key" in
      *_PASSWORD) echo "$key=$(secret)" ;;
      *) echo "$key=$value" ;;
    esac
  done
} > "$file"
token_file="$root/var/compose/metrics-token"
if [ ! -e "$token_file" ]; then
  mkdir -p "$(dirname "$token_file")"
  secret > "$token_file"
  echo "wrote $token_file (the metrics scrape credential)"
fi
echo "wrote $file"
