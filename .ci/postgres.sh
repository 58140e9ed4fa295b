#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the tests, and print the line that points
# them at it:  eval "$(.ci/postgres.sh)"  (or `make postgres`). Safe to run again: a server
# already running in the data directory is reused. Installs Debian's `postgresql` when
# it is missing and this is root with apt-get; otherwise says what to install.
#   DOMAIN_ROUTER_PG_PORT (55432)   DOMAIN_ROUTER_PG_DIR (/tmp/domain-router-postgres)
#   .ci/postgres.sh stop            stop that server
set -euo pipefail
port="${DOMAIN_ROUTER_PG_PORT:-55432}"
dir="${DOMAIN_ROUTER_PG_DIR:-/tmp/domain-router-postgres}"
log() { echo "postgres.sh: $*" >&2; }

bindir() { find /usr/lib/postgresql -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname; }
if [ -z "$(bindir)" ] && ! command -v initdb >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing postgresql"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    else
        log "PostgreSQL is not installed: apt-get install postgresql (as root)"
        exit 1
    fi
fi
bin="$(bindir)"
bin="${bin:-$(dirname "$(command -v initdb)")}"

# PostgreSQL refuses to run as root: root runs it as the `postgres` user the package made.
run() { "$@"; }
if [ "$(id -u)" = 0 ]; then run() { runuser -u postgres -- "$@"; }; fi

if [ "${1:-}" = stop ]; then
    run "$bin/pg_ctl" -D "$dir/data" stop -m fast >&2
    exit 0
fi
if ! run "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
        run "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >&2
    fi
    # Loopback only; the socket lives beside the data, not in /var/run.
    run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >&2
fi
psql_admin() { run "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'router'")" ]; then
    psql_admin -c "CREATE ROLE router LOGIN PASSWORD 'router'" >&2
fi
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'router'")" ]; then
    psql_admin -c "CREATE DATABASE router OWNER router" >&2
fi
log "PostgreSQL on 127.0.0.1:$port (data in $dir/data)"
echo "export DOMAIN_ROUTER_TEST_POSTGRES_DSN=postgresql://router:router@127.0.0.1:$port/router"
