# shellcheck shell=bash
# Helpers shared by tests/env/*.sh. Sourced, never executed.
#
# Everything the test environment keeps lives under $TF_RUN (<repo>/.run,
# git-ignored). Ports are fixed defaults, overridable for a second checkout
# on the same machine:
#   TF_PG_PORT               (default 55432)
#   TF_KAFKA_PORT            (default 59092)
#   TF_KAFKA_CONTROLLER_PORT (default 59093)
#   TF_KAFKA_SASL_SSL_PORT   (default 59094: SASL_SSL, PLAIN and SCRAM users)
#   TF_KAFKA_SSL_PORT        (default 59095: SSL, client certificate required)

# shellcheck disable=SC2034  # the variables below are used by the scripts that source this file
TF_ENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TF_REPO=$(cd "$TF_ENV_DIR/../.." && pwd -P)
TF_RUN=$TF_REPO/.run

TF_PG_PORT=${TF_PG_PORT:-55432}
TF_KAFKA_PORT=${TF_KAFKA_PORT:-59092}
TF_KAFKA_CONTROLLER_PORT=${TF_KAFKA_CONTROLLER_PORT:-59093}
TF_KAFKA_SASL_SSL_PORT=${TF_KAFKA_SASL_SSL_PORT:-59094}
TF_KAFKA_SSL_PORT=${TF_KAFKA_SSL_PORT:-59095}
TF_PG_DSN="postgresql://tickflow@127.0.0.1:${TF_PG_PORT}/tickflow"
TF_KAFKA_BROKERS="127.0.0.1:${TF_KAFKA_PORT}"

# Progress goes to stderr so that stdout stays clean for values.
say()  { printf 'env: %s\n' "$*" >&2; }
warn() { printf 'env: WARNING: %s\n' "$*" >&2; }
die()  { printf 'env: ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# tf_reserve_ports PORT...: keeps the kernel from handing these ports out as
# the local end of outgoing connections. They lie in Linux's ephemeral
# range (32768-60999), so a client socket could otherwise take one while
# its server restarts (the chaos suite restarts Kafka and PostgreSQL), and
# the server's bind would fail with "Address already in use". Root only
# (net.ipv4.ip_local_reserved_ports); elsewhere it does nothing.
tf_reserve_ports() {
    local f=/proc/sys/net/ipv4/ip_local_reserved_ports have p add=""
    [ -w "$f" ] || return 0
    have=$(cat "$f" 2>/dev/null) || return 0
    for p in "$@"; do
        # shellcheck disable=SC2076 # a literal match in the comma list
        [[ ",$have," =~ ",$p," ]] || add=$add${add:+,}$p
    done
    [ -z "$add" ] || echo "${have:+$have,}$add" >"$f" 2>/dev/null || true
}

# True when something accepts TCP connections on 127.0.0.1:$1.
tf_port_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# tf_tail FILE...: show the end of log files after a failure.
tf_tail() {
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        printf 'env: ---- last lines of %s ----\n' "$f" >&2
        tail -n 40 "$f" >&2 || true
    done
}

# The exec'd command keeps only stdin/stdout/stderr: a daemon must not hold
# the caller's lock files, make's jobserver pipes or a CI runner's pipes open.
TF_CLOSE_FDS='for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi; done'

# tf_lock NAME: serialise up/down of one service across concurrent callers
# (make -j, two terminals). The lock is dropped when the script exits.
tf_lock() {
    mkdir -p "$TF_RUN"
    exec 9>"$TF_RUN/$1.lock"
    if ! flock -w 180 9; then
        die "timed out waiting for $TF_RUN/$1.lock (another tests/env script is running)"
    fi
}

# tf_stop_pid NAME PID: SIGTERM, up to 20 s for it to go, then SIGKILL.
tf_stop_pid() {
    local name=$1 pid=$2 i
    say "$name: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        [ -d "/proc/$pid" ] || break
        sleep 0.5
    done
    if [ -d "/proc/$pid" ]; then
        warn "$name: still running after 20 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.25; done
    fi
}

# The test servers' ports (seaweedfs.sh's defaults and their gRPC ports, +1, too).
tf_reserve_ports "$TF_PG_PORT" "$TF_KAFKA_PORT" "$TF_KAFKA_CONTROLLER_PORT" \
    "$TF_KAFKA_SASL_SSL_PORT" "$TF_KAFKA_SSL_PORT" "${TF_S3_PORT:-58333}" \
    "${TF_S3_GRPC_PORT:-58334}" "${TF_SEAWEED_MASTER_PORT:-58330}" \
    "${TF_SEAWEED_VOLUME_PORT:-58380}" "${TF_SEAWEED_FILER_PORT:-58388}" \
    "$((${TF_SEAWEED_MASTER_PORT:-58330} + 1))" "$((${TF_SEAWEED_VOLUME_PORT:-58380} + 1))" \
    "$((${TF_SEAWEED_FILER_PORT:-58388} + 1))"
