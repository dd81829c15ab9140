#!/usr/bin/env bash
# Runs Apache Airflow 3 against a real stack (test_airflow.py): the DAGs of
# deploy/airflow/dags through `airflow dags test` and through a backfill run
# by Airflow's scheduler, and prints their "ok - ..." lines and closing
# "N passed, N failed".
#
# Usage: tests/airflow/run.sh [BUILD]      (default $BUILD, else build)
#   Needs PostgreSQL and Kafka (tests/env/up.sh, then . .run/env.sh), psql,
#   BUILD/tests/airflow_stack (make), and the Airflow venv (tests/env/airflow.sh,
#   run here: PyPI once per machine, then reused from ~/.cache/tickflow).
# Logs: .run/test/airflow/ for build/, .run/test-<x>/airflow/ for build-<x>/
# (stack.txt, each `airflow dags test` output, the Airflow servers' output,
# airflow-home/ with the task logs and the metadata database).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-${BUILD:-build}}
b=${BUILD##*/}
test_dir=${TF_TEST_DIR:-.run/test${b#build}}
mkdir -p "$test_dir"
export TF_BIN_DIR=${TF_BIN_DIR:-$BUILD/bin} TF_TEST_DIR=$test_dir

t0=$(date +%s.%N)
if ! venv=$(bash tests/env/airflow.sh); then
    echo "not ok - the Airflow venv (tests/env/airflow.sh) could not be made"
    echo "0 passed, 1 failed"
    exit 1
fi
printf '# airflow venv ready in %.1f s\n' "$(echo "$(date +%s.%N) - $t0" | bc)"
exec "$venv/bin/python" tests/airflow/test_airflow.py \
    --stack "$BUILD/tests/airflow_stack" \
    --venv "$venv" \
    --work "$test_dir/airflow"
