#!/usr/bin/env bash
# Runs tickflow's test suites and prints one closing line for the whole run:
#   N passed, N failed
# Usage: tests/run.sh [all|unit|integration|e2e|chaos|airflow|deploy]   (BUILD=build-address-undefined for sanitizer builds)
# The e2e suites that touch the lake run twice, the second time with the
# lake in a SeaweedFS bucket (e2e-s3-*), in the build without a sanitizer
# or with TF_TEST_LAKE_BOTH=1; tests/env/seaweedfs.sh builds its server once.
# The unit suite also reads test_parquet's files with pyarrow and DuckDB
# (tests/env/pyenv.sh makes the venv; it needs PyPI once).
# The e2e suite needs the PostgreSQL and Kafka that tests/env/up.sh starts;
# its browser tests need Debian's chromium and chromium-driver (deps.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
which=${1:-all}
# One folder of logs per build (build -> .run/test, build-thread ->
# .run/test-thread), so that builds tested side by side keep theirs apart.
b=${BUILD##*/}
out=.run/test${b#build}
mkdir -p "$out"
export TF_BIN_DIR=$BUILD/bin TF_TEST_DIR=$out
# Sanitizer builds: stop at the first error, report leaks, show where. The
# services a test starts inherit these, and their logs are read below.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# ThreadSanitizer: the first report ends the process with exit 66. The
# suppressions name only uninstrumented libraries (tests/env/tsan.supp).
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=$PWD/tests/env/tsan.supp}
# What a sanitizer writes when it finds something, in a test's or a service's output.
san_report='^(WARNING: ThreadSanitizer|==[0-9]+==ERROR: (Address|Leak)Sanitizer|.*: runtime error: )'

passed=0
failed=0

# run_suite NAME COMMAND...: runs it, adds its closing counts; a suite that
# exits non-zero without counting a failure counts as one failure.
run_suite() {
    local name=$1 log="$out/$1.out" line p f code
    shift
    echo "== $name"
    touch "$out/.started"
    "$@" > "$log" 2>&1
    code=$?
    grep -E '^(not ok|ok - )' "$log" | grep -v '^ok' || true
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "$name: no summary (exit $code); last lines of $log:"
        tail -n 20 "$log"
        failed=$((failed + 1))
        return
    fi
    p=${line%% passed*}
    f=${line#*passed, }
    f=${f%% failed*}
    # A sanitizer's report in the test or in a service it started (logs
    # written during this run) fails the suite, whatever the exit codes.
    reports=$( (echo "$log"; find "$out" -name '*.log' -newer "$out/.started") |
        xargs grep -lE "$san_report" 2>/dev/null)
    if [ -n "$reports" ]; then
        echo "$name: sanitizer report in:" $reports
        grep -hE -m 3 -A 12 "$san_report" $reports | head -n 60
        f=$((f + 1))
    fi
    if [ "$code" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$name: exit $code with no failed check; last lines of $log:"
        tail -n 20 "$log"
        f=1
    fi
    echo "$name: $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
}

if [ "$which" = all ] || [ "$which" = unit ]; then
    # test_parquet leaves its files here for the lake check below.
    export TF_PQ_OUT=$PWD/$out/parquet-${BUILD##*/}
    rm -rf "$TF_PQ_OUT"
    for t in "$BUILD"/tests/test_*; do
        case $t in *test_e2e_* | *test_int_*) continue ;; esac
        run_suite "unit-$(basename "$t")" "$t"
    done
    # Those files read back by pyarrow and DuckDB (pinned in .run/venv).
    # shellcheck disable=SC2016 # $TF_PQ_OUT is expanded by the inner bash
    run_suite lake-parquet bash -c \
        'tests/env/pyenv.sh && exec .run/venv/bin/python tests/lake/check_parquet.py "$TF_PQ_OUT"'
fi
if [ -f .run/env.sh ]; then
    # shellcheck disable=SC1091
    . .run/env.sh
fi
if [ "$which" = all ] || [ "$which" = integration ]; then
    for t in "$BUILD"/tests/test_int_*; do
        case $t in
        *test_int_lake_s3)
            # The lake in a bucket of a real S3 server (SeaweedFS, tests/env/seaweedfs.sh),
            # its settings in this suite's shell only.
            if bash tests/env/seaweedfs.sh up >"$out/seaweedfs-up.out" 2>&1; then
                # shellcheck disable=SC2016 # $0 is expanded by the inner bash
                run_suite "integration-$(basename "$t")" bash -c '. .run/s3.env && exec "$0"' "$t"
            else
                echo "== integration-$(basename "$t"): tests/env/seaweedfs.sh up failed:"
                tail -n 20 "$out/seaweedfs-up.out"
                failed=$((failed + 1))
            fi
            ;;
        *) run_suite "integration-$(basename "$t")" "$t" ;;
        esac
    done
fi
# Suites whose subject is the same in every build run in `make test` only
# for the build without a sanitizer (unless TF_AIRFLOW=1): CI's sanitizer
# passes would triple their time and test nothing new.
# (grep -c reads all of nm's output: with pipefail, grep -q would stop
# early and nm's SIGPIPE would make every build look plain.)
plain=0
if [ "${TF_AIRFLOW:-}" = 1 ] ||
    [ "$(nm "$BUILD/bin/tickflow-extract" 2>/dev/null | grep -cE '__(asan|tsan|ubsan)_')" = 0 ]; then
    plain=1
fi
if [ "$which" = all ] || [ "$which" = e2e ]; then
    # The replay test reads the silver lake with Apache Spark too (plain build only).
    if [ "$plain" = 1 ]; then
        export TF_TEST_SPARK=1
    fi
    for t in "$BUILD"/tests/test_e2e_*; do
        case $t in
        *test_e2e_lake_crash) ;; # a bucket's test: with the e2e-s3 suites below
        *) run_suite "e2e-$(basename "$t")" "$t" ;;
        esac
    done
    # The web console in headless Chromium after real runs (tests/browser/run.sh).
    run_suite e2e-browser bash tests/browser/run.sh "$BUILD"
fi
# The e2e suites that touch the lake, again with it in a bucket
# (TF_TEST_LAKE=s3; tests/env/seaweedfs.sh starts SeaweedFS, which stays up
# like PostgreSQL and Kafka): in the build without a sanitizer, or in any
# with TF_TEST_LAKE_BOTH=1.
if { [ "$which" = all ] || [ "$which" = e2e ]; } &&
    { [ "${TF_TEST_LAKE_BOTH:-}" = 1 ] || [ "$plain" = 1 ]; }; then
    if bash tests/env/seaweedfs.sh up >"$out/seaweedfs-up.out" 2>&1 && [ -f .run/s3.env ]; then
        for t in console faults lake_crash objects pipeline replay silver twelvedata; do
            # s3.env in the suite's shell only: later suites keep their folder lakes.
            # shellcheck disable=SC2016 # $0 is expanded by the inner bash
            run_suite "e2e-s3-test_e2e_$t" bash -c '. .run/s3.env && TF_TEST_LAKE=s3 exec "$0"' \
                "$BUILD/tests/test_e2e_$t"
        done
    else
        echo "== e2e-s3: tests/env/seaweedfs.sh up failed; last lines of $out/seaweedfs-up.out:"
        tail -n 20 "$out/seaweedfs-up.out"
        failed=$((failed + 1))
    fi
fi
# The chaos suite (tests/chaos/test_chaos.c): seeded trials of faults on
# two replicas of each stage, TF_CHAOS_TRIALS of them (30 here; `make
# test-chaos` runs 200), in the build without a sanitizer.
if [ "$which" = chaos ] || { [ "$which" = all ] && [ "$plain" = 1 ]; }; then
    run_suite chaos env TF_CHAOS_TRIALS="${TF_CHAOS_TRIALS:-30}" "$BUILD/chaos/test_chaos"
    grep -E '^chaos: ' "$out/chaos.out" || true
fi
# Apache Airflow 3 running deploy/airflow's DAGs against a real stack
# (tests/airflow/run.sh; `make test-airflow` runs it alone).
if [ "$which" = airflow ] || { [ "$which" = all ] && [ "$plain" = 1 ]; }; then
    run_suite e2e-airflow bash tests/airflow/run.sh "$BUILD"
fi
# The API contract: schemathesis against each service's /openapi.json on a
# running stack (tests/contract/run.sh; `make test-contract` runs it alone).
if [ "$which" = contract ] || { [ "$which" = all ] && [ "$plain" = 1 ]; }; then
    run_suite contract bash tests/contract/run.sh "$BUILD"
fi
if [ "$which" = all ] || [ "$which" = deploy ]; then
    run_suite deploy-checks python3 tests/deploy/check_deploy.py
    # Each check of check_deploy.py shown failing on a manifest broken for it.
    if [ "$plain" = 1 ]; then
        run_suite deploy-mutations python3 tests/deploy/check_deploy_mutations.py
    fi
    # The layers of common/ (common/README.md), from sources and objects.
    run_suite tree-layers python3 tools/check_layers.py "$BUILD"
fi
# The libFuzzer harnesses (clang, ASan, UBSan) over their committed corpus;
# `make fuzz` fuzzes with them.
if [ "$which" = all ] && [ "$plain" = 1 ]; then
    run_suite fuzz-corpus bash tests/fuzz/run.sh --corpus-only
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
