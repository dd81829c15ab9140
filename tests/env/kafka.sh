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
# Listeners: PLAINTEXT on TF_KAFKA_PORT (what every test uses), SASL_SSL on
# TF_KAFKA_SASL_SSL_PORT (PLAIN user from the JAAS line below, SCRAM-SHA-256
# and SCRAM-SHA-512 user made with Kafka's ConfigCommand once per storage) and
# SSL on TF_KAFKA_SSL_PORT requiring a client certificate (mTLS), both with
# the test CA's certificate for localhost/127.0.0.1 (tests/env/certs.sh, under
# .run/certs with the users' random passwords). A running broker whose
# server.properties differs from what this script would write now is
# restarted by `up`.
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
SPORT=$TF_KAFKA_SASL_SSL_PORT
TPORT=$TF_KAFKA_SSL_PORT
CERTS=$TF_RUN/certs
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

LISTENERS="listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT,SASL_SSL://127.0.0.1:$SPORT,SSL://127.0.0.1:$TPORT"

check_same_ports() {   # the running broker was started with $PROPS as then written
    local have
    have=$(grep '^listeners=' "$PROPS" 2>/dev/null || true)
    if [ "$have" != "$LISTENERS" ]; then
        die "kafka: this checkout's broker runs with ${have:-unknown listeners}, not the ports asked for ($PORT, $CPORT, $SPORT, $TPORT); 'tests/env/kafka.sh up' restarts it"
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

# write_config [FILE]: server.properties (default $PROPS) and log4j.properties.
write_config() {
    local out=${1:-$PROPS}
    # shellcheck disable=SC1091
    . "$CERTS/secrets.env"
    cat >"$out" <<EOF
# Written by tests/env/kafka.sh on every start; edits are overwritten.
# Single-node KRaft: this process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
controller.listener.names=CONTROLLER
$LISTENERS
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SPORT,SSL://127.0.0.1:$TPORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
log.dirs=$DATA

# Secured listeners (tests/env/certs.sh): the test CA's certificate for
# localhost and 127.0.0.1; SASL_SSL takes PLAIN and SCRAM users, SSL wants a
# client certificate signed by the test CA.
ssl.keystore.type=PEM
ssl.keystore.location=$CERTS/server-bundle.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$TF_TEST_KAFKA_PLAIN_USER="$TF_TEST_KAFKA_PLAIN_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

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
    cat >"$KDIR/tools-log4j.properties" <<EOF
# Written by tests/env/kafka.sh: Kafka's command-line tools log warnings to stderr.
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
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
        if tf_port_open "$PORT" && tf_port_open "$SPORT" && tf_port_open "$TPORT" &&
            broker_ready; then
            say "kafka: ready (pid $pid) after ~$((i / 2)) s"
            return 0
        fi
        sleep 0.5
    done
    why=$(python3 "$TF_ENV_DIR/kafka_ready.py" "127.0.0.1:$PORT" 2>&1 || true)
    tf_tail "$LOGS/stdout.log" "$LOGS/server.log"
    die "kafka: broker not ready on 127.0.0.1:$PORT within ${READY_TIMEOUT} s (${why:-no answer}); still running as pid ${pid:-?}, see kafka.sh down"
}

# The SCRAM user of secrets.env, with both mechanisms, made through the
# PLAINTEXT listener by Kafka's own ConfigCommand (kafka-configs.sh); once per
# storage and password (a marker in the data folder).
ensure_scram_user() {
    local mark=$DATA/.tf-scram-user want
    # shellcheck disable=SC1091
    . "$CERTS/secrets.env"
    want=$(printf '%s:%s' "$TF_TEST_KAFKA_SCRAM_USER" "$TF_TEST_KAFKA_SCRAM_PASSWORD" | sha256sum | cut -c1-64)
    [ -f "$mark" ] && [ "$(cat "$mark")" = "$want" ] && return 0
    local mech
    : >"$LOGS/scram.log"
    for mech in SCRAM-SHA-256 SCRAM-SHA-512; do   # one credential per request
        if ! java -Xmx256m -Djava.awt.headless=true \
                "-Dlog4j.configuration=file:$KDIR/tools-log4j.properties" \
                -cp "$JARS/*" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$PORT" \
                --alter --entity-type users --entity-name "$TF_TEST_KAFKA_SCRAM_USER" \
                --add-config "$mech=[password=$TF_TEST_KAFKA_SCRAM_PASSWORD]" \
                >>"$LOGS/scram.log" 2>&1; then
            tf_tail "$LOGS/scram.log"
            die "kafka: could not create the $mech user $TF_TEST_KAFKA_SCRAM_USER"
        fi
    done
    echo "$want" >"$mark"
    say "kafka: SCRAM-SHA-256/512 user $TF_TEST_KAFKA_SCRAM_USER created"
}

cmd_up() {
    tf_lock kafka
    mkdir -p "$KDIR" "$LOGS"
    need python3
    bash "$TF_ENV_DIR/certs.sh" up
    local pid
    if pid=$(our_pid); then
        write_config "$PROPS.want"
        if cmp -s "$PROPS.want" "$PROPS"; then
            rm -f "$PROPS.want"
            if ! broker_ready; then
                say "kafka: broker (pid $pid) running but not ready yet; waiting"
                wait_ready
            fi
            ensure_scram_user
            say "kafka: already running (pid $pid) on 127.0.0.1:$PORT"
            return 0
        fi
        rm -f "$PROPS.want"
        say "kafka: the running broker's configuration differs from this script's; restarting it"
        tf_stop_pid kafka "$pid"
        rm -f "$PIDFILE"
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
    ensure_scram_user
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
