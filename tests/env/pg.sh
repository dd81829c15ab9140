#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster for tests and the demo, on loopback only.
#
# Usage: tests/env/pg.sh up|down|status|dsn
#   up      init the cluster once, start it, wait for it, make sure role and
#           database `tickflow` exist; an already running cluster is reused
#   down    fast shutdown if running
#   status  exit 0 when a usable server answers on the port, 3 otherwise
#   dsn     print the DSN: postgresql://tickflow@127.0.0.1:${TF_PG_PORT:-55432}/tickflow
#
# Layout (PGBASE is normally <repo>/.run/pg):
#   PGBASE/data   the cluster          PGBASE/log   server and start-up logs
#   PGBASE        the unix socket      (.s.PGSQL.<port>)
# Listens on 127.0.0.1:${TF_PG_PORT:-55432} only. Authentication is `trust`
# for local sockets and 127.0.0.1/32: a loopback dev/test cluster, so there
# is no password anywhere in the repo. Role `tickflow` is LOGIN SUPERUSER
# because tests create and drop databases.
#
# TLS: ssl = on with a certificate for localhost and 127.0.0.1 signed by the
# test CA (tests/env/certs.sh, .run/certs/ca.pem), so clients may ask for
# sslmode=verify-full; plain connections keep working. Role `tickflow_tls`
# (password in .run/certs/secrets.env, made at test time) may only log in
# over TLS with scram-sha-256: what tests of a secured DSN use. A running
# cluster whose settings changed is reloaded (TLS settings need no restart).
#
# Who runs the server: initdb and postgres refuse to run as root, so as root
# the cluster belongs to the `postgres` system user (made by Debian's
# package) and every server command goes through runuser; as any other user
# it runs as that user.
#
# Fallback location: when root runs this in a repo that the `postgres` user
# cannot reach (e.g. under /root, mode 700), or when the socket path would be
# longer than a unix socket allows (~100 bytes), PGBASE becomes
# /var/tmp/tickflow-pg-<first 12 hex of sha256 of the repo path> and
# <repo>/.run/pg is a symlink to it. The symlink is what records the choice:
# later runs follow it. Deleting .run/ leaves that folder behind; the next
# `up` finds it again through the same hash and reuses its data.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$TF_PG_PORT

pg_bindir() {
    local d
    for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/15/bin; do
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"; return 0
        fi
    done
    die "PostgreSQL 15 server binaries not found (no initdb in pg_config --bindir or /usr/lib/postgresql/15/bin); run tests/env/deps.sh"
}
BIN=$(pg_bindir)

# PG_USER: empty = run server commands as ourselves; otherwise via runuser.
PG_USER=
if is_root; then
    getent passwd postgres >/dev/null || die "user 'postgres' missing (it comes with Debian's postgresql package); run tests/env/deps.sh"
    PG_USER=postgres
fi

as_pg() {   # run a short command as the cluster's owner, from a neutral cwd
    if [ -n "$PG_USER" ]; then (cd / && runuser -u "$PG_USER" -- "$@"); else "$@"; fi
}

reachable_by_pg_user() {   # can the server user get into (and use) folder $1?
    [ -z "$PG_USER" ] && return 0
    (cd / && runuser -u "$PG_USER" -- test -x "$1")
}

# Decide PGBASE without creating anything (status/down must not create dirs).
resolve_base() {
    local link=$TF_RUN/pg hash fallback
    hash=$(printf '%s' "$TF_REPO" | sha256sum | cut -c1-12)
    fallback=/var/tmp/tickflow-pg-$hash
    if [ -L "$link" ]; then
        PGBASE=$(readlink -f "$link" 2>/dev/null || readlink "$link"); return
    fi
    if [ -d "$link" ]; then PGBASE=$link; return; fi
    if [ -d "$fallback" ]; then PGBASE=$fallback; return; fi   # .run was wiped
    PGBASE=$link
}

prepare_base() {
    local link=$TF_RUN/pg hash fallback
    hash=$(printf '%s' "$TF_REPO" | sha256sum | cut -c1-12)
    fallback=/var/tmp/tickflow-pg-$hash
    mkdir -p "$TF_RUN"
    # .run is ours: let the postgres user pass through it.
    if [ -n "$PG_USER" ]; then chmod go+x "$TF_RUN"; fi

    if [ ! -e "$link" ] && [ ! -L "$link" ]; then
        local sock_len=$(( ${#link} + ${#PORT} + 11 ))   # "/.s.PGSQL.<port>"
        if [ -d "$fallback" ]; then
            say "pg: reusing cluster folder $fallback"
            ln -s "$fallback" "$link"
        elif [ "$sock_len" -gt 100 ]; then
            say "pg: socket path under $link would be too long; using $fallback (symlinked from .run/pg)"
            mkdir -p "$fallback"; ln -s "$fallback" "$link"
        elif ! reachable_by_pg_user "$TF_RUN"; then
            say "pg: user $PG_USER cannot reach $TF_RUN; using $fallback (symlinked from .run/pg)"
            mkdir -p "$fallback"; ln -s "$fallback" "$link"
        else
            mkdir -p "$link"
        fi
    fi
    if [ -L "$link" ]; then
        mkdir -p "$(readlink "$link")"
    fi
    PGBASE=$(readlink -f "$link")
    mkdir -p "$PGBASE/log"
    if [ -n "$PG_USER" ]; then
        chown "$PG_USER:" "$PGBASE" "$PGBASE/log"
        reachable_by_pg_user "$PGBASE/log" ||
            die "user $PG_USER cannot reach $PGBASE; remove $TF_RUN/pg and retry"
    fi
    chmod 755 "$PGBASE"   # holds the socket; data/ itself is 0700
}

set_paths() {
    DATA=$PGBASE/data
    LOGDIR=$PGBASE/log
    SOCKDIR=$PGBASE
}

pg_running() {   # our own postmaster, per its pid file
    [ -f "$DATA/postmaster.pid" ] || return 1
    as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

pg_ready() {
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1
}

running_port() {   # the port our running postmaster listens on (postmaster.pid line 4)
    sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true
}

check_same_port() {
    local p
    p=$(running_port)
    if [ -n "$p" ] && [ "$p" != "$PORT" ]; then
        die "pg: this checkout's cluster is running on port $p, not $PORT; run 'tests/env/pg.sh down' with TF_PG_PORT=$p first"
    fi
}

psql_admin() {   # bootstrap superuser `postgres`, over TCP, trust auth
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"
}

# The test CA's server certificate, copied into the data folder for the
# server's user (it wants its key 0600 and its own).
install_cert() {
    local certs=$TF_RUN/certs f
    for f in server.pem server.key; do
        if ! cmp -s "$certs/$f" "$DATA/tickflow-$f"; then
            install -m 600 "$certs/$f" "$DATA/tickflow-$f"
            if [ -n "$PG_USER" ]; then chown "$PG_USER:" "$DATA/tickflow-$f"; fi
        fi
    done
}

# write_config: tickflow.conf and pg_hba.conf; returns 0 when either changed.
write_config() {
    local changed=1 f
    # Our settings live in tickflow.conf, included from postgresql.conf, so
    # initdb's file stays untouched and a changed TF_PG_PORT takes effect at
    # the next start.
    cat >"$DATA/tickflow.conf.want" <<EOF
# Written by tests/env/pg.sh on every 'up'; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 200
shared_buffers = 128MB
fsync = on
timezone = 'UTC'
log_timezone = 'UTC'
logging_collector = on
log_directory = '$LOGDIR'
log_filename = 'postgresql.log'
log_file_mode = 0640
log_rotation_age = 0
log_rotation_size = 64MB
log_truncate_on_rotation = on
log_line_prefix = '%m [%p] %q%u@%d '
ssl = on
ssl_cert_file = 'tickflow-server.pem'
ssl_key_file = 'tickflow-server.key'
EOF
    cat >"$DATA/pg_hba.conf.want" <<'EOF'
# Written by tests/env/pg.sh. Loopback-only dev/test cluster: trust, no
# passwords, except tickflow_tls: TLS and a password (tests of secured DSNs).
# TYPE     DATABASE  USER          ADDRESS        METHOD
local      all       tickflow_tls                 reject
hostssl    all       tickflow_tls  127.0.0.1/32   scram-sha-256
host       all       tickflow_tls  127.0.0.1/32   reject
local      all       all                          trust
host       all       all           127.0.0.1/32   trust
EOF
    for f in tickflow.conf pg_hba.conf; do
        if cmp -s "$DATA/$f.want" "$DATA/$f"; then
            rm -f "$DATA/$f.want"
        else
            mv "$DATA/$f.want" "$DATA/$f"
            changed=0
        fi
        if [ -n "$PG_USER" ]; then chown "$PG_USER:" "$DATA/$f"; fi
    done
    return $changed
}

init_cluster() {
    local tmp=$PGBASE/data.initdb
    say "pg: initdb $DATA"
    rm -rf "$tmp"
    # initdb into a side folder and rename, so an interrupted initdb never
    # leaves a half-made data folder behind.
    if ! as_pg "$BIN/initdb" -D "$tmp" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 --no-instructions >"$LOGDIR/initdb.log" 2>&1; then
        tf_tail "$LOGDIR/initdb.log"
        die "pg: initdb failed"
    fi
    printf "\n# tickflow test settings (tests/env/pg.sh)\ninclude_if_exists = 'tickflow.conf'\n" >>"$tmp/postgresql.conf"
    mv "$tmp" "$DATA"
}

start_cluster() {
    say "pg: starting PostgreSQL on 127.0.0.1:$PORT (data $DATA)"
    # pg_ctl without -w returns at once; we wait with pg_isready below. The
    # wrapper closes every inherited fd above 2 before pg_ctl forks postgres.
    as_pg bash -c "$TF_CLOSE_FDS; exec \"\$@\"" tf-pg \
        "$BIN/pg_ctl" -D "$DATA" -l "$LOGDIR/startup.log" -W start \
        </dev/null >/dev/null 2>&1 || true
    wait_ready
}

wait_ready() {   # 30 s for pg_isready; fail early if the postmaster died
    local i
    for ((i = 0; i < 60; i++)); do
        if pg_ready; then say "pg: ready"; return 0; fi
        if [ "$i" -ge 6 ] && ! pg_running; then break; fi
        sleep 0.5
    done
    tf_tail "$LOGDIR/startup.log" "$LOGDIR/postgresql.log"
    die "pg: PostgreSQL did not become ready on 127.0.0.1:$PORT within 30 s"
}

ensure_role_and_db() {
    # shellcheck disable=SC1091
    . "$TF_RUN/certs/secrets.env"
    psql_admin -v pw="$TF_TEST_PG_SSL_PASSWORD" <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tickflow') THEN
    CREATE ROLE tickflow LOGIN SUPERUSER;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tickflow_tls') THEN
    CREATE ROLE tickflow_tls LOGIN SUPERUSER;
  END IF;
END
$$;
ALTER ROLE tickflow_tls PASSWORD :'pw';
SELECT 'CREATE DATABASE tickflow OWNER tickflow'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'tickflow')
\gexec
SQL
}

wait_ssl() {   # a reload is a signal: wait until the server has taken ssl = on
    local i
    for ((i = 0; i < 40; i++)); do
        [ "$(psql_admin -At -c 'SHOW ssl' 2>/dev/null)" = on ] && return 0
        sleep 0.25
    done
    tf_tail "$LOGDIR/postgresql.log"
    die "pg: ssl is not on 10 s after the reload"
}

usable_server_on_port() {   # anything answering that we can log into as tickflow
    "$BIN/psql" -X -q -At -h 127.0.0.1 -p "$PORT" -U tickflow -d tickflow \
        -c 'select 1' >/dev/null 2>&1
}

cmd_up() {
    tf_lock pg
    bash "$TF_ENV_DIR/certs.sh" up
    prepare_base
    set_paths
    if pg_running; then
        check_same_port
        install_cert
        if write_config; then
            say "pg: settings changed; reloading"
            as_pg "$BIN/pg_ctl" -D "$DATA" reload >/dev/null || die "pg: pg_ctl reload failed"
            wait_ssl
        fi
        if pg_ready; then
            ensure_role_and_db || die "pg: could not create role/database tickflow"
            say "pg: already running on 127.0.0.1:$PORT ($DATA)"
            return 0
        fi
        say "pg: postmaster running but not answering yet; waiting"
        wait_ready
        ensure_role_and_db || die "pg: could not create role/database tickflow"
        return 0
    fi
    if tf_port_open "$PORT"; then
        # Another checkout's cluster (e.g. CI's fresh clone next to a
        # developer's environment): reuse it when it is a usable one.
        if pg_ready; then
            usable_server_on_port || ensure_role_and_db >/dev/null 2>&1 || true
        fi
        if pg_ready && usable_server_on_port; then
            warn "pg: 127.0.0.1:$PORT is served by a PostgreSQL not started from this checkout; reusing it (set TF_PG_PORT for a separate one)"
            return 0
        fi
        die "pg: 127.0.0.1:$PORT is in use by something else; stop it or set TF_PG_PORT"
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        [ -e "$DATA" ] && die "pg: $DATA exists but is not a cluster; remove it and retry"
        init_cluster
    fi
    install_cert
    write_config || true
    start_cluster
    ensure_role_and_db || die "pg: could not create role/database tickflow"
    say "pg: DSN $TF_PG_DSN"
}

cmd_down() {
    tf_lock pg
    resolve_base
    set_paths
    if ! pg_running; then
        say "pg: not running"
        return 0
    fi
    say "pg: stopping (fast)"
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null ||
        die "pg: pg_ctl stop failed"
    say "pg: stopped"
}

cmd_status() {
    resolve_base
    set_paths
    if pg_running; then check_same_port; fi
    if pg_running && pg_ready; then
        say "pg: running on 127.0.0.1:$PORT ($DATA)"
        return 0
    fi
    if pg_running; then
        say "pg: postmaster running but not accepting connections on 127.0.0.1:$PORT"
        return 3
    fi
    if pg_ready && usable_server_on_port; then
        say "pg: not started from this checkout, but a usable server answers on 127.0.0.1:$PORT"
        return 0
    fi
    say "pg: not running"
    return 3
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    dsn) echo "$TF_PG_DSN" ;;
    *) echo "usage: $0 up|down|status|dsn" >&2; exit 2 ;;
esac
