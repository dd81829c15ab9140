#!/usr/bin/env bash
# The API contract test: schemathesis (pinned, tests/contract/requirements.txt)
# against the /openapi.json of extract, transform and aggregate on a running
# stack (tests/airflow/stack.c: PostgreSQL, Kafka, marketsim, an API token),
# with a fixed seed and a bounded number of examples. test_contract.py prints
# an "ok - ..." or "not ok - ..." line per service and check class and the
# closing "N passed, N failed".
#
# Usage: tests/contract/run.sh [BUILD]      (default $BUILD, else build)
#   Needs PostgreSQL and Kafka (tests/env/up.sh; .run/env.sh is read here),
#   BUILD/tests/airflow_stack (make), and PyPI once per machine: the venv is
#   made under ~/.cache/tickflow (TF_CACHE_DIR overrides it), named after the
#   hash of the pin list and the interpreter, and reused afterwards.
#   TF_CONTRACT_EXAMPLES (default 100) and TF_CONTRACT_SEED (default 20240304)
#   change the run's size and seed.
# Logs: .run/test/contract/ for build/, .run/test-<x>/contract/ for build-<x>/
# (stack.txt, each service's schemathesis output and JSON report).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${1:-${BUILD:-build}}
b=${BUILD##*/}
test_dir=${TF_TEST_DIR:-.run/test${b#build}}
mkdir -p "$test_dir"
export TF_BIN_DIR=${TF_BIN_DIR:-$BUILD/bin} TF_TEST_DIR=$test_dir
if [ -z "${TICKFLOW_PG_DSN:-}" ] && [ -f .run/env.sh ]; then
    # shellcheck disable=SC1091
    . .run/env.sh
fi

fail() {
    echo "not ok - $1"
    echo "0 passed, 1 failed"
    exit 1
}

# The venv: every package pinned and installed with --no-deps, so nothing floats.
make_venv() {
    local pins=tests/contract/requirements.txt base=/usr/bin/python3 key cache venv
    [ -x "$base" ] || base=$(command -v python3)
    key=$({
        cat "$pins"
        "$base" -c 'import platform, sys; print(sys.version, platform.machine())'
    } | sha256sum | cut -c1-16)
    cache=${TF_CACHE_DIR:-$HOME/.cache/tickflow}
    venv=$cache/contract-venv-$key
    ready() { [ -x "$venv/bin/schemathesis" ] && [ "$(cat "$venv/.tickflow-pins" 2>/dev/null)" = "$key" ]; }
    if ! ready; then
        mkdir -p "$cache"
        exec 8>"$venv.lock"
        flock -w 900 8 || return 1
        if ! ready; then # not made by another caller while we waited
            rm -rf "$venv"
            echo "# contract: creating $venv" >&2
            "$base" -m venv "$venv" >&2 &&
                "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
                    -r "$pins" >&2 &&
                "$venv/bin/python" -m pip check --disable-pip-version-check >&2 &&
                printf '%s' "$key" >"$venv/.tickflow-pins" || return 1
        fi
        exec 8>&-
    fi
    printf '%s\n' "$venv"
}

[ -x "$BUILD/tests/airflow_stack" ] || fail "no $BUILD/tests/airflow_stack (make $BUILD/tests/airflow_stack)"
[ -n "${TICKFLOW_PG_DSN:-}" ] || fail "TICKFLOW_PG_DSN is not set (tests/env/up.sh, then . .run/env.sh)"
t0=$(date +%s.%N)
venv=$(make_venv) || fail "the schemathesis venv (tests/contract/requirements.txt) could not be made"
printf '# contract venv %s ready in %.1f s\n' "$venv" "$(echo "$(date +%s.%N) - $t0" | bc)"
exec "$venv/bin/python" tests/contract/test_contract.py \
    --stack "$BUILD/tests/airflow_stack" \
    --schemathesis "$venv/bin/schemathesis" \
    --config tests/contract/schemathesis.toml \
    --work "$test_dir/contract" \
    --examples "${TF_CONTRACT_EXAMPLES:-100}" \
    --seed "${TF_CONTRACT_SEED:-20240304}"
