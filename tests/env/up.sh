#!/usr/bin/env bash
# Brings up the whole test environment: Debian packages, PostgreSQL, Kafka.
# Idempotent: a second run reuses what is there and takes a few seconds.
#
# Usage: tests/env/up.sh
#   Then: . .run/env.sh   (exports TICKFLOW_PG_DSN and TICKFLOW_KAFKA_BROKERS, and
#   for tests of secured connections the SASL_SSL and SSL listeners, the test
#   certificates' folder and the test users' passwords: tests/env/certs.sh)
# Ports: TF_PG_PORT (55432), TF_KAFKA_PORT (59092), TF_KAFKA_CONTROLLER_PORT (59093),
# TF_KAFKA_SASL_SSL_PORT (59094), TF_KAFKA_SSL_PORT (59095).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$TF_ENV_DIR/deps.sh"
"$TF_ENV_DIR/pg.sh" up
"$TF_ENV_DIR/kafka.sh" up

mkdir -p "$TF_RUN"
cat >"$TF_RUN/env.sh.tmp" <<ENV
# Written by tests/env/up.sh. Source it: . .run/env.sh
export TICKFLOW_PG_DSN=$TF_PG_DSN
export TICKFLOW_KAFKA_BROKERS=$TF_KAFKA_BROKERS
export TF_TEST_KAFKA_SASL_SSL_BROKERS=127.0.0.1:$TF_KAFKA_SASL_SSL_PORT
export TF_TEST_KAFKA_SSL_BROKERS=127.0.0.1:$TF_KAFKA_SSL_PORT
export TF_TEST_CERTS=$TF_RUN/certs
# The test users' passwords, made at test time (never committed).
set -a; . "$TF_RUN/certs/secrets.env"; set +a
ENV
mv "$TF_RUN/env.sh.tmp" "$TF_RUN/env.sh"
say "environment up; wrote $TF_RUN/env.sh:"
grep '^export' "$TF_RUN/env.sh"
