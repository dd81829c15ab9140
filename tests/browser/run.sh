#!/usr/bin/env bash
# Runs the web console's tests in headless Chromium (test_console.py) against
# the stack that BUILD/tests/browser_stack starts, and prints their
# "ok - ..." lines and closing "N passed, N failed".
#
# Usage: tests/browser/run.sh [BUILD]      (default $BUILD, else build)
#   Needs PostgreSQL and Kafka (tests/env/up.sh, then . .run/env.sh),
#   Debian's chromium and chromium-driver (tests/env/deps.sh) and the venv
#   with selenium (tests/env/pyenv.sh, run here).
# Screenshots: .run/screenshots/ for build/, .run/screenshots-<x>/ for
# build-<x>/ (runs.png, run.png, job.png).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-${BUILD:-build}}
b=${BUILD##*/}
test_dir=${TF_TEST_DIR:-.run/test${b#build}}
mkdir -p "$test_dir"
export TF_BIN_DIR=${TF_BIN_DIR:-$BUILD/bin} TF_TEST_DIR=$test_dir
# selenium must not look for a browser or a driver to download.
export SE_OFFLINE=true

if ! bash tests/env/pyenv.sh >&2; then
    echo "not ok - the Python venv with selenium (tests/env/pyenv.sh) could not be made"
    echo "0 passed, 1 failed"
    exit 1
fi
exec .run/venv/bin/python tests/browser/test_console.py \
    --stack "$BUILD/tests/browser_stack" \
    --facts "$test_dir/browser-facts.json" \
    --shots ".run/screenshots${b#build}" \
    --log "$test_dir/browser-chromedriver.txt"
