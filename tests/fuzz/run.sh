#!/usr/bin/env bash
# The libFuzzer harnesses (tests/fuzz/fuzz_*.c), built with clang under
# ASan and UBSan into build-fuzz/.
#
#   tests/fuzz/run.sh --corpus-only   each harness runs every input of its
#                                     committed corpus once (make test)
#   tests/fuzz/run.sh --seconds N     each harness fuzzes for N seconds from
#                                     its corpus (make fuzz; FUZZ_SECONDS)
#
# New inputs go to .run/fuzz/<harness>/, crashes to .run/fuzz/crashes/; a
# crash found is made a regression test by adding its input to
# tests/fuzz/corpus/<harness>/ once fixed. One line per harness (executions,
# coverage, features), then "N passed, N failed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. tests/env/lib.sh

mode=corpus seconds=0
case "${1:-}" in
--corpus-only) ;;
--seconds) mode=fuzz seconds=${2:?--seconds needs a number} ;;
*) die "usage: tests/fuzz/run.sh --corpus-only | --seconds N" ;;
esac
command -v clang >/dev/null || die "fuzz: clang not found; run tests/env/deps.sh"

B=build-fuzz
make --no-print-directory -j2 CC=clang SANITIZER=fuzzer-no-link,address,undefined BUILD=$B \
    fuzz-bins >"$TF_RUN/fuzz-build.log" 2>&1 || { tf_tail "$TF_RUN/fuzz-build.log"; die "fuzz: build failed"; }

passed=0 failed=0
mkdir -p "$TF_RUN/fuzz/crashes"
for bin in "$B"/fuzz/fuzz_*; do
    name=${bin##*/fuzz_}
    seeds=tests/fuzz/corpus/$name
    log=$TF_RUN/fuzz/$name.log
    mkdir -p "$TF_RUN/fuzz/$name" "$seeds"
    if [ "$mode" = corpus ]; then
        args=(-runs=0 "$seeds")
    else
        args=(-max_total_time="$seconds" -print_final_stats=1 "$TF_RUN/fuzz/$name" "$seeds")
    fi
    if ASAN_OPTIONS=detect_leaks=1 "$bin" -artifact_prefix="$TF_RUN/fuzz/crashes/$name-" \
        "${args[@]}" >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
        cov=$(grep -aoE 'cov: +[0-9]+ ft: +[0-9]+' "$log" | tail -n1)
        inputs=$(find "$seeds" -type f | wc -l)
        echo "ok - fuzz_$name: ${execs:-$inputs inputs} executions, ${cov:-no coverage line}"
        passed=$((passed + 1))
    else
        echo "not ok - fuzz_$name: it failed (log $log); its crash input is in $TF_RUN/fuzz/crashes/"
        grep -m1 -A12 -E 'ERROR: (AddressSanitizer|libFuzzer)|runtime error|deadly signal' "$log" || tail -n 20 "$log"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
