#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker+controller) for tests and
# the demo, on loopback only, run straight from the release's jars.
#
# Usage: tests/env/kafka.sh up|down|status|brokers
#   up       fetch the jars once, write the config, format storage once, start
#            the broker and wait until it serves metadata and consumer-group
#            coordination; a running broker is reused
#   down     SIGTERM, up to 20 s for a clean shutdown, then SIGKILL
#   status   exit 0 when a ready broker answers on the port, 3 otherwise
#   brokers  print the bootstrap list: 127.0.0.1:${TF_KAFKA_PORT:-59092}
#
# Layout under <repo>/.run/kafka:
#   jars/              Kafka's runtime jars, copied by Maven from Central using
#                      tests/env/kafka/pom.xml (the version pin lives there);
#                      jars/.pom.sha256 records the pom they came from, so a
#                      changed pom fetches again
#   cluster.id         KRaft cluster id, made once
#   server.properties  log4j.properties   (rewritten on every start)
#   data/              log.dirs (formatted once)
#   logs/              server.log (log4j), stdout.log (JVM), format.log
#   kafka.pid
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KDIR=$TF_RUN/kafka
JARS=$KDIR/jars
DATA=$KDIR/data
LOGS=$KDIR/logs
PIDFILE=$KDIR/kafka.pid
PROPS=$KDIR/server.properties
LOG4J=$KDIR/log4j.properties
POM=$TF_ENV_DIR/kafka/pom.xml
PORT=$TF_KAFKA_PORT
CPORT=$TF_KAFKA_CONTROLLER_PORT
READY_TIMEOUT=60

need() { command -v "$1" >/dev/null 2>&1 || die "kafka: '$1' not found; run tests/env/deps.sh"; }

# Pid of our broker, if the pid file names a live process that is the
# kafka.Kafka of this checkout (a stale pid file, or a pid reused by another
# process, does not count).
our_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$PROPS"; then
        echo "$pid"
        return 0
    fi
    return 1
}

LISTENERS="listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT"

check_same_ports() {   # the running broker was started with $PROPS as then written
    local have
    have=$(grep '^listeners=' "$PROPS" 2>/dev/null || true)
    if [ "$have" != "$LISTENERS" ]; then
        die "kafka: this checkout's broker runs with ${have:-unknown listeners}, not the ports asked for ($PORT, $CPORT); run 'tests/env/kafka.sh down' first"
    fi
}

broker_ready() {
    python3 "$TF_ENV_DIR/kafka_ready.py" "127.0.0.1:$PORT" 2>/dev/null
}

fetch_jars() {
    local want have=
    want=$(sha256sum "$POM" | cut -d' ' -f1)
    [ -f "$JARS/.pom.sha256" ] && have=$(cat "$JARS/.pom.sha256")
    if [ "$have" = "$want" ] && compgen -G "$JARS/kafka_*.jar" >/dev/null; then
        return 0
    fi
    need mvn
    say "kafka: fetching broker jars with Maven (pom $POM)"
    local tmp=$KDIR/jars.tmp
    rm -rf "$tmp"
    if ! mvn -q -B -f "$POM" package -Djars.dir="$tmp" >"$KDIR/mvn.log" 2>&1; then
        tf_tail "$KDIR/mvn.log"
        die "kafka: mvn could not fetch the jars (log: $KDIR/mvn.log)"
    fi
    compgen -G "$tmp/kafka_*.jar" >/dev/null || die "kafka: mvn ran but no kafka_*.jar in $tmp"
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$JARS"
    mv "$tmp" "$JARS"
    say "kafka: $(ls "$JARS"/*.jar | wc -l) jars in $JARS"
}

write_config() {
    cat >"$PROPS" <<EOF
# Written by tests/env/kafka.sh on every start; edits are overwritten.
# Single-node KRaft: this process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
controller.listener.names=CONTROLLER
$LISTENERS
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA

# One node, so every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
default.replication.factor=1
min.insync.replicas=1

# Tests want groups to form at once and topics to appear on first use.
group.initial.rebalance.delay.ms=0
num.partitions=3
auto.create.topics.enable=true
delete.topic.enable=true

# A small machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=104857600
EOF
    cat >"$LOG4J" <<EOF
# Written by tests/env/kafka.sh. Everything goes to files, nothing to the console.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$LOGS/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
EOF
}

java_opts() {
    JOPTS=(-Djava.awt.headless=true "-Dlog4j.configuration=file:$LOG4J" "-Dkafka.logs.dir=$LOGS")
}

format_storage() {
    [ -f "$DATA/meta.properties" ] && return 0
    java_opts
    if [ ! -s "$KDIR/cluster.id" ]; then
        java "${JOPTS[@]}" -cp "$JARS/*" kafka.tools.StorageTool random-uuid \
            2>>"$LOGS/format.log" | tr -d '[:space:]' >"$KDIR/cluster.id.tmp"
        [ -s "$KDIR/cluster.id.tmp" ] || { tf_tail "$LOGS/format.log"; die "kafka: StorageTool random-uuid failed"; }
        mv "$KDIR/cluster.id.tmp" "$KDIR/cluster.id"
    fi
    say "kafka: formatting $DATA (cluster id $(cat "$KDIR/cluster.id"))"
    if ! java "${JOPTS[@]}" -cp "$JARS/*" kafka.tools.StorageTool format \
            -t "$(cat "$KDIR/cluster.id")" -c "$PROPS" --ignore-formatted \
            >>"$LOGS/format.log" 2>&1; then
        tf_tail "$LOGS/format.log"
        die "kafka: storage format failed"
    fi
}

start_broker() {
    java_opts
    say "kafka: starting broker on 127.0.0.1:$PORT (controller $CPORT, data $DATA)"
    rm -f "$PIDFILE"   # stale: our_pid() found no live broker behind it
    cd "$KDIR"         # the JVM's cwd (hs_err files land here)
    # setsid: own session, immune to the caller's terminal and make's signals.
    # The inner bash records its pid (kept by exec), drops every inherited fd
    # above 2, then becomes the JVM.
    setsid bash -c "echo \$\$ >\"\$1\"; shift; $TF_CLOSE_FDS; exec \"\$@\"" tf-kafka "$PIDFILE" \
        java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError "${JOPTS[@]}" \
        -cp "$JARS/*" kafka.Kafka "$PROPS" \
        </dev/null >>"$LOGS/stdout.log" 2>&1 &
    wait_ready
}

wait_ready() {
    local i pid="" why
    for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
        if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
            pid=$(our_pid) || pid=
            if [ -z "$pid" ] && [ "$i" -ge 4 ]; then
                tf_tail "$LOGS/stdout.log" "$LOGS/server.log"
                die "kafka: the broker process exited during start-up"
            fi
        fi
        if tf_port_open "$PORT" && broker_ready; then
            say "kafka: ready (pid $pid) after ~$((i / 2)) s"
            return 0
        fi
        sleep 0.5
    done
    why=$(python3 "$TF_ENV_DIR/kafka_ready.py" "127.0.0.1:$PORT" 2>&1 || true)
    tf_tail "$LOGS/stdout.log" "$LOGS/server.log"
    die "kafka: broker not ready on 127.0.0.1:$PORT within ${READY_TIMEOUT} s (${why:-no answer}); still running as pid ${pid:-?}, see kafka.sh down"
}

cmd_up() {
    tf_lock kafka
    mkdir -p "$KDIR" "$LOGS"
    need python3
    local pid
    if pid=$(our_pid); then
        check_same_ports
        if broker_ready; then
            say "kafka: already running (pid $pid) on 127.0.0.1:$PORT"
            return 0
        fi
        say "kafka: broker (pid $pid) running but not ready yet; waiting"
        wait_ready
        return 0
    fi
    if tf_port_open "$PORT" || tf_port_open "$CPORT"; then
        # Another checkout's broker (e.g. CI's fresh clone next to a
        # developer's environment): reuse it when it is ready.
        if broker_ready; then
            warn "kafka: 127.0.0.1:$PORT is served by a Kafka not started from this checkout; reusing it (set TF_KAFKA_PORT/TF_KAFKA_CONTROLLER_PORT for a separate one)"
            return 0
        fi
        die "kafka: 127.0.0.1:$PORT or :$CPORT is in use by something else; stop it or set TF_KAFKA_PORT/TF_KAFKA_CONTROLLER_PORT"
    fi
    need java
    fetch_jars
    mkdir -p "$DATA"
    write_config
    format_storage
    start_broker
}

cmd_down() {
    tf_lock kafka
    local pid
    if ! pid=$(our_pid); then
        rm -f "$PIDFILE"
        say "kafka: not running"
        return 0
    fi
    tf_stop_pid kafka "$pid"
    rm -f "$PIDFILE"
    say "kafka: stopped"
}

cmd_status() {
    local pid
    if pid=$(our_pid); then
        check_same_ports
        if broker_ready; then say "kafka: running (pid $pid) on 127.0.0.1:$PORT"; return 0; fi
        say "kafka: process $pid running but broker not ready on 127.0.0.1:$PORT"
        return 3
    fi
    if broker_ready; then
        say "kafka: not started from this checkout, but a ready broker answers on 127.0.0.1:$PORT"
        return 0
    fi
    say "kafka: not running"
    return 3
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    brokers) echo "$TF_KAFKA_BROKERS" ;;
    *) echo "usage: $0 up|down|status|brokers" >&2; exit 2 ;;
esac
