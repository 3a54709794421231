#!/usr/bin/env bash
# Throwaway PostgreSQL server for tests.
#
#   tests/support/postgres.sh start     -> prints  PGDIR=<dir>  and  URL=postgresql+psycopg://...  (last lines)
#   tests/support/postgres.sh stop DIR  -> stops that server and deletes DIR
#
# `start` installs Debian's postgresql if initdb is missing (root only; apt-get update when the package
# is unknown), creates a cluster in a fresh temp dir owned by the `postgres` user (initdb refuses to run
# as root), starts it on a free 127.0.0.1 port with fsync off, and creates database `posestyle_test`.
# Use it in a shell with:  eval "$(tests/support/postgres.sh start | grep -E '^(PGDIR|URL)=')"
set -euo pipefail

DB_NAME="${POSESTYLE_TEST_PG_DB:-posestyle_test}"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then echo "$dir"; return 0; fi
    fi
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return 0; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return 0; fi
    return 1
}

install_postgres() {
    if [[ "$(id -u)" != 0 ]]; then
        log "PostgreSQL is not installed and we are not root; install it or set POSESTYLE_TEST_PG_URL"
        return 1
    fi
    log "installing Debian package postgresql"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q postgresql >&2; then
        apt-get update -q >&2
        apt-get install -y -q postgresql >&2
    fi
}

free_port() {
    local python
    python="$(command -v python3 || command -v python || true)"
    if [[ -n "$python" ]]; then
        "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    else
        echo $(( 20000 + RANDOM % 20000 ))
    fi
}

# Run a command as the cluster owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
        else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
    else
        "$@"
    fi
}

start() {
    local bindir pgdir port
    bindir="$(find_bindir)" || { install_postgres && bindir="$(find_bindir)"; } || {
        log "no initdb found after installing postgresql"; exit 1; }
    pgdir="$(mktemp -d "${TMPDIR:-/tmp}/posestyle-pg.XXXXXX")"
    chmod 755 "$pgdir"
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || { log "user 'postgres' is missing"; rm -rf "$pgdir"; exit 1; }
        chown postgres: "$pgdir"
    fi
    port="$(free_port)"
    if ! as_owner "$bindir/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --no-locale --no-sync >"$pgdir/initdb.log" 2>&1; then
        log "initdb failed:"; cat "$pgdir/initdb.log" >&2; rm -rf "$pgdir"; exit 1
    fi
    if ! as_owner "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
            -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >&2; then
        log "server failed to start:"; cat "$pgdir/server.log" >&2 || true; rm -rf "$pgdir"; exit 1
    fi
    if ! as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB_NAME" >&2; then
        log "createdb failed"; stop "$pgdir"; exit 1
    fi
    echo "PGDIR=$pgdir"
    echo "URL=postgresql+psycopg://postgres@127.0.0.1:$port/$DB_NAME"
}

stop() {
    local pgdir="$1" bindir
    [[ -n "$pgdir" && -d "$pgdir" ]] || { log "no such cluster dir: '$pgdir'"; return 0; }
    [[ "$(basename "$pgdir")" == posestyle-pg.* ]] || { log "refusing to remove $pgdir"; return 1; }
    bindir="$(find_bindir || true)"
    if [[ -n "$bindir" && -f "$pgdir/data/postmaster.pid" ]]; then
        as_owner "$bindir/pg_ctl" -D "$pgdir/data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$pgdir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
