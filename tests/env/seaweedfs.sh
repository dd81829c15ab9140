#!/usr/bin/env bash
# A single-process SeaweedFS (master + volume + filer + S3 gateway) for the
# tests of the lake on S3-compatible storage, on loopback only.
#
# Usage: tests/env/seaweedfs.sh up|down|status|path
#   up      build the pinned `weed` once, write the S3 identities, start
#           `weed server -s3`, create bucket tickflow-test, check a
#           SigV4-signed PUT/GET/DELETE round trip and write .run/s3.env;
#           a running server of this checkout is reused
#   down    SIGTERM, up to 20 s for a clean shutdown, then SIGKILL
#   status  exit 0 when our server answers the signed round trip, 3 otherwise
#   path    build if needed, then print the path of the `weed` binary
#   Then: . .run/s3.env   (exports TICKFLOW_LAKE_S3_*)
#
# The binary: SeaweedFS at SW_VERSION below (Apache-2.0) from the Go module proxy,
# built with CGO_ENABLED=0 into ~/.cache/tickflow/seaweedfs-<version>/weed
# (about 10 minutes on 2 cores, once per machine; later calls reuse it and
# need no network). The module has replace directives, so `go install
# module@version` refuses it: the build runs in a writable copy of the
# downloaded module with GOFLAGS=-mod=mod. TF_CACHE_DIR overrides
# ~/.cache/tickflow.
#
# Ports, all on 127.0.0.1, each overridable:
#   TF_S3_PORT              S3 API           (default 58333)
#   TF_S3_GRPC_PORT         S3 gRPC          (default 58334)
#   TF_SEAWEED_MASTER_PORT  master HTTP      (default 58330; gRPC is +1)
#   TF_SEAWEED_VOLUME_PORT  volume HTTP      (default 58380; gRPC is +1)
#   TF_SEAWEED_FILER_PORT   filer HTTP       (default 58388; gRPC is +1)
#
# Layout under <repo>/.run/seaweedfs:
#   data/       master metadata, volumes and the filer's store
#   s3.json     S3 identities (rewritten on every start from keys.env)
#   keys.env    access keys and secrets, made once at random (mode 600)
#   logs/       weed.log (stdout and stderr of the server)
#   weed.pid
# and <repo>/.run/s3.env (mode 600), for the tests:
#   TICKFLOW_LAKE_S3_ENDPOINT, _REGION, _BUCKET, _ADDRESSING (path),
#   _ACCESS_KEY_ID, _SECRET_ACCESS_KEY   an identity that may do everything
#   TICKFLOW_TEST_S3_READONLY_ACCESS_KEY_ID, _SECRET_ACCESS_KEY
#                                        an identity that may only read/list
# Start-up takes about 11 s on an empty .run and about 17 s on existing data
# (the master holds writes until its volume server has reported); `down`
# takes up to 17 s. Buckets are not made on first upload (-s3.autoCreateBucket=false): a
# request to a bucket that does not exist fails with NoSuchBucket.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SW_MODULE=github.com/seaweedfs/seaweedfs
SW_VERSION=v0.0.0-20261109003541-7506e5f91cd6
# The one newer Go this machine may fetch, for a module whose go line is
# above the local Go.
SW_NEWER_GO=go1.27.3

TF_CACHE=${TF_CACHE_DIR:-$HOME/.cache/tickflow}
SW_HOME=$TF_CACHE/seaweedfs-$SW_VERSION
WEED=$SW_HOME/weed

S3_PORT=${TF_S3_PORT:-58333}
S3_GRPC_PORT=${TF_S3_GRPC_PORT:-58334}
MASTER_PORT=${TF_SEAWEED_MASTER_PORT:-58330}
VOLUME_PORT=${TF_SEAWEED_VOLUME_PORT:-58380}
FILER_PORT=${TF_SEAWEED_FILER_PORT:-58388}

SDIR=$TF_RUN/seaweedfs
DATA=$SDIR/data
LOGS=$SDIR/logs
PIDFILE=$SDIR/weed.pid
S3CONF=$SDIR/s3.json
KEYS=$SDIR/keys.env
ENVFILE=$TF_RUN/s3.env

ENDPOINT=http://127.0.0.1:$S3_PORT
REGION=us-east-1
BUCKET=tickflow-test
READY_TIMEOUT=60

need() { command -v "$1" >/dev/null 2>&1 || die "seaweedfs: '$1' not found; run tests/env/deps.sh"; }

# ---------------------------------------------------------------- build

# go_toolchain_for GO_MOD: the GOTOOLCHAIN value for that module's go line:
# `local` when the machine's Go is new enough (no download), else the one
# newer Go this machine may fetch from the module proxy.
go_toolchain_for() {   # $1 = go.mod path
    local want have
    want=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' "$1" | head -n1)
    have=$(GOTOOLCHAIN=local go env GOVERSION); have=${have#go}
    if [ -z "$want" ] || [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" = "$want" ]; then
        echo local
    else
        echo "$SW_NEWER_GO"
    fi
}

build_weed() {
    [ -x "$WEED" ] && return 0
    mkdir -p "$SW_HOME"
    exec 8>"$SW_HOME.lock"
    flock -w 1800 8 || die "seaweedfs: timed out waiting for $SW_HOME.lock (another build is running)"
    if [ -x "$WEED" ]; then exec 8>&-; return 0; fi
    need go
    local t0 src moddir toolchain log=$SW_HOME/build.log
    t0=$(date +%s)
    say "seaweedfs: building $SW_MODULE@$SW_VERSION into $WEED (about 10 minutes on 2 cores, once)"
    moddir=$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "$SW_MODULE@$SW_VERSION" 2>"$log" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
    if [ -z "$moddir" ] || [ ! -f "$moddir/go.mod" ]; then
        tf_tail "$log"
        die "seaweedfs: go mod download $SW_MODULE@$SW_VERSION failed"
    fi
    toolchain=$(go_toolchain_for "$moddir/go.mod")
    # The module cache is read-only: build in a writable copy.
    src=$SW_HOME/src.tmp
    rm -rf "$src" "$WEED.tmp"
    cp -r "$moddir" "$src"
    chmod -R u+w "$src"
    if ! (cd "$src" && GOTOOLCHAIN=$toolchain GOFLAGS=-mod=mod CGO_ENABLED=0 \
            go build -trimpath -ldflags "-s -w" -o "$WEED.tmp" ./weed) >>"$log" 2>&1; then
        tf_tail "$log"
        die "seaweedfs: go build failed (GOTOOLCHAIN=$toolchain; log $log)"
    fi
    "$WEED.tmp" version >>"$log" 2>&1 || { tf_tail "$log"; die "seaweedfs: the built weed does not run"; }
    mv "$WEED.tmp" "$WEED"
    rm -rf "$src"
    exec 8>&-
    say "seaweedfs: built in $(( $(date +%s) - t0 )) s ($(du -h "$WEED" | cut -f1))"
}

# ---------------------------------------------------------------- keys

rand_token() {   # $1 characters of [A-Z0-9] (access key) or [A-Za-z0-9] (secret)
    local set=$2
    LC_ALL=C tr -dc "$set" </dev/urandom | head -c "$1" || true
}

ensure_keys() {
    [ -s "$KEYS" ] && return 0
    umask 077
    cat >"$KEYS.tmp" <<EOF
# Made by tests/env/seaweedfs.sh for the loopback test server; not used anywhere else.
ADMIN_KEY=TF$(rand_token 18 'A-Z0-9')
ADMIN_SECRET=$(rand_token 40 'A-Za-z0-9')
READONLY_KEY=TFRO$(rand_token 16 'A-Z0-9')
READONLY_SECRET=$(rand_token 40 'A-Za-z0-9')
EOF
    mv "$KEYS.tmp" "$KEYS"
}

load_keys() {
    [ -s "$KEYS" ] || die "seaweedfs: $KEYS is missing; run 'tests/env/seaweedfs.sh up'"
    ADMIN_KEY=$(sed -n 's/^ADMIN_KEY=//p' "$KEYS")
    ADMIN_SECRET=$(sed -n 's/^ADMIN_SECRET=//p' "$KEYS")
    READONLY_KEY=$(sed -n 's/^READONLY_KEY=//p' "$KEYS")
    READONLY_SECRET=$(sed -n 's/^READONLY_SECRET=//p' "$KEYS")
    if [ -z "$ADMIN_KEY" ] || [ -z "$ADMIN_SECRET" ] || [ -z "$READONLY_KEY" ] || [ -z "$READONLY_SECRET" ]; then
        die "seaweedfs: $KEYS is incomplete; remove it and run up again"
    fi
}

write_s3_config() {
    umask 077
    cat >"$S3CONF.tmp" <<EOF
{
  "identities": [
    {
      "name": "tickflow_test",
      "credentials": [{"accessKey": "$ADMIN_KEY", "secretKey": "$ADMIN_SECRET"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    },
    {
      "name": "tickflow_test_readonly",
      "credentials": [{"accessKey": "$READONLY_KEY", "secretKey": "$READONLY_SECRET"}],
      "actions": ["Read", "List"]
    }
  ]
}
EOF
    mv "$S3CONF.tmp" "$S3CONF"
}

write_env() {
    umask 077
    cat >"$ENVFILE.tmp" <<EOF
# Written by tests/env/seaweedfs.sh up. Source it: . .run/s3.env
export TICKFLOW_LAKE_S3_ENDPOINT=$ENDPOINT
export TICKFLOW_LAKE_S3_REGION=$REGION
export TICKFLOW_LAKE_S3_BUCKET=$BUCKET
export TICKFLOW_LAKE_S3_ADDRESSING=path
export TICKFLOW_LAKE_S3_ACCESS_KEY_ID=$ADMIN_KEY
export TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY=$ADMIN_SECRET
export TICKFLOW_TEST_S3_READONLY_ACCESS_KEY_ID=$READONLY_KEY
export TICKFLOW_TEST_S3_READONLY_SECRET_ACCESS_KEY=$READONLY_SECRET
EOF
    mv "$ENVFILE.tmp" "$ENVFILE"
}

# ---------------------------------------------------------------- S3 calls

# s3 METHOD PATH [curl args...]: a SigV4-signed request as the full-access
# identity; prints the HTTP status. The key stays off the command line (curl
# reads it from a config on a pipe).
s3() {
    local method=$1 path=$2
    shift 2
    printf 'user = "%s:%s"\n' "$ADMIN_KEY" "$ADMIN_SECRET" |
        curl -sS -K - --max-time "${S3_MAX_TIME:-10}" -o /dev/null -w '%{http_code}' \
            --aws-sigv4 "aws:amz:$REGION:s3" -X "$method" "$@" "$ENDPOINT$path" 2>/dev/null || true
}

ensure_bucket() {   # 200 made; 409 BucketAlreadyOwnedByYou
    local code
    code=$(s3 PUT "/$BUCKET")
    [ "$code" = 200 ] || [ "$code" = 409 ]
}

round_trip() {   # PUT, GET (compare), DELETE one small object
    local key=/$BUCKET/.tickflow-env-probe body got code
    body="probe $$ $RANDOM"
    # curl 7.88 puts the body's hash in the signature but does not send
    # x-amz-content-sha256, which the server then takes as empty: name it.
    # After a restart the master holds writes until the volume server has
    # reported (about 15 s): the PUT waits that out rather than time out
    # and land later, after the DELETE below.
    code=$(S3_MAX_TIME=45 s3 PUT "$key" -H 'Content-Type: text/plain' \
        -H "x-amz-content-sha256: $(printf '%s' "$body" | sha256sum | cut -d' ' -f1)" \
        --data-binary "$body")
    [ "$code" = 200 ] || return 1
    got=$(printf 'user = "%s:%s"\n' "$ADMIN_KEY" "$ADMIN_SECRET" |
        curl -sS -K - --max-time 10 -f --aws-sigv4 "aws:amz:$REGION:s3" "$ENDPOINT$key" 2>/dev/null) || return 1
    [ "$got" = "$body" ] || return 1
    code=$(s3 DELETE "$key")
    [ "$code" = 204 ] || [ "$code" = 200 ]
}

# ---------------------------------------------------------------- process

# Pid of our server, if the pid file names a live `weed server` whose data
# folder is this checkout's (a stale pid file or a reused pid does not count).
our_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "-dir=$DATA"; then
        echo "$pid"
        return 0
    fi
    return 1
}

PORTS_ARG="-s3.port=$S3_PORT"
check_same_ports() {
    if ! tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$PORTS_ARG"; then
        die "seaweedfs: this checkout's server (pid $1) runs on other ports than asked for (S3 $S3_PORT); run 'tests/env/seaweedfs.sh down' first"
    fi
}

start_server() {
    local port
    for port in "$S3_PORT" "$S3_GRPC_PORT" "$MASTER_PORT" "$((MASTER_PORT + 1))" "$VOLUME_PORT" \
            "$((VOLUME_PORT + 1))" "$FILER_PORT" "$((FILER_PORT + 1))"; do
        if tf_port_open "$port"; then
            die "seaweedfs: 127.0.0.1:$port is in use by something else; stop it or set TF_S3_PORT / TF_S3_GRPC_PORT / TF_SEAWEED_{MASTER,VOLUME,FILER}_PORT"
        fi
    done
    say "seaweedfs: starting weed server -s3 on $ENDPOINT (data $DATA)"
    rm -f "$PIDFILE"
    cd "$SDIR"
    # Small volumes (64 MB) so a test bucket does not reserve gigabytes; no
    # telemetry, Iceberg or Lance listeners; no pre-stop delay on shutdown.
    # A restart (test_int_lake_s3 makes one) rebuilds the master's state, and
    # this SeaweedFS then freezes volume growth until an operator runs
    # volume.growth.resume: on a test server, never freeze.
    WEED_MASTER_VOLUME_GROWTH_FREEZE_ON_TOPOLOGY_MISMATCH=false \
        setsid bash -c "echo \$\$ >\"\$1\"; shift; $TF_CLOSE_FDS; exec \"\$@\"" tf-seaweedfs "$PIDFILE" \
        "$WEED" -logtostderr=true server \
        -dir="$DATA" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="$MASTER_PORT" -master.port.grpc="$((MASTER_PORT + 1))" \
        -master.volumeSizeLimitMB=64 -master.telemetry=false -master.electionTimeout=1s \
        -volume.port="$VOLUME_PORT" -volume.port.grpc="$((VOLUME_PORT + 1))" \
        -volume.max=100 -volume.preStopSeconds=0 \
        -filer -filer.port="$FILER_PORT" -filer.port.grpc="$((FILER_PORT + 1))" \
        -s3 "$PORTS_ARG" -s3.port.grpc="$S3_GRPC_PORT" \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.config="$S3CONF" -s3.autoCreateBucket=false \
        </dev/null >>"$LOGS/weed.log" 2>&1 &
    wait_ready
}

wait_ready() {
    local pid="" t0=$SECONDS
    while ((SECONDS - t0 < READY_TIMEOUT)); do
        if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
            pid=$(our_pid) || pid=
            if [ -z "$pid" ] && ((SECONDS - t0 >= 2)); then
                tf_tail "$LOGS/weed.log"
                die "seaweedfs: the server exited during start-up"
            fi
        fi
        if tf_port_open "$S3_PORT" && ensure_bucket && round_trip; then
            say "seaweedfs: ready (pid $pid) after ~$((SECONDS - t0)) s; bucket $BUCKET"
            return 0
        fi
        sleep 0.25
    done
    tf_tail "$LOGS/weed.log"
    die "seaweedfs: no signed PUT/GET/DELETE round trip on $ENDPOINT within ${READY_TIMEOUT} s; still running as pid ${pid:-?}, see seaweedfs.sh down"
}

# ---------------------------------------------------------------- commands

cmd_up() {
    tf_lock seaweedfs
    need curl
    build_weed
    mkdir -p "$SDIR" "$DATA" "$LOGS"
    ensure_keys
    load_keys
    local pid
    if pid=$(our_pid); then
        check_same_ports "$pid"
        say "seaweedfs: already running (pid $pid); checking"
        wait_ready
    else
        write_s3_config
        start_server
    fi
    write_env
    say "seaweedfs: wrote $ENVFILE (endpoint $ENDPOINT, bucket $BUCKET, path-style)"
}

cmd_down() {
    tf_lock seaweedfs
    local pid
    if ! pid=$(our_pid); then
        rm -f "$PIDFILE"
        say "seaweedfs: not running"
        return 0
    fi
    tf_stop_pid seaweedfs "$pid"
    rm -f "$PIDFILE"
    say "seaweedfs: stopped"
}

cmd_status() {
    local pid
    if ! pid=$(our_pid); then
        say "seaweedfs: not running"
        return 3
    fi
    check_same_ports "$pid"
    load_keys
    if round_trip; then
        say "seaweedfs: running (pid $pid) on $ENDPOINT"
        return 0
    fi
    say "seaweedfs: process $pid running but no signed round trip on $ENDPOINT"
    return 3
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    path) build_weed; echo "$WEED" ;;
    *) echo "usage: $0 up|down|status|path" >&2; exit 2 ;;
esac
