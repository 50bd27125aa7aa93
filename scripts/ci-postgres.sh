#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: a new cluster in a temporary folder, owned by the
# `postgres` user (initdb refuses root), listening on a Unix socket in that folder only (no TCP).
#
#   eval "$(bash scripts/ci-postgres.sh start)"   # exports SCENARIOCAST_TEST_POSTGRES_URL/_DIR
#   bash scripts/ci-postgres.sh stop "$SCENARIOCAST_TEST_POSTGRES_DIR"
#
# `start` installs Debian's postgresql first when no initdb is found (apt-get update, then
# apt-get install -y postgresql), which needs root. Everything it says goes to stderr; stdout
# carries only the export lines.
set -euo pipefail

find_bin() {
  local name=$1 found
  if found=$(command -v "$name" 2>/dev/null); then echo "$found"; return 0; fi
  found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && echo "$found"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local initdb pg_ctl dir
  if ! initdb=$(find_bin initdb); then
    echo "ci-postgres: no PostgreSQL found; installing Debian's postgresql" >&2
    if [ "$(id -u)" != 0 ]; then echo "ci-postgres: installing needs root" >&2; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y postgresql >&2
    initdb=$(find_bin initdb)
  fi
  pg_ctl=$(dirname "$initdb")/pg_ctl
  dir=$(mktemp -d "${TMPDIR:-/tmp}/scenariocast-pg.XXXXXX")
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  as_postgres "$initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_postgres "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-k $dir -c listen_addresses='' -c fsync=off -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "export SCENARIOCAST_TEST_POSTGRES_DIR='$dir'"
  echo "export SCENARIOCAST_TEST_POSTGRES_URL='postgresql+psycopg://postgres@/postgres?host=$dir'"
}

stop() {
  local dir=${1:?usage: ci-postgres.sh stop DIR} pg_ctl
  pg_ctl=$(dirname "$(find_bin initdb)")/pg_ctl
  if [ -d "$dir/data" ]; then as_postgres "$pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true; fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
