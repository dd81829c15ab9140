#!/usr/bin/env bash
# Makes the Python virtual environment that the Airflow tests run: Apache
# Airflow 3 with the HTTP and standard providers, every package pinned in
# tests/airflow/requirements.txt and installed with --no-deps, so nothing
# floats.
#
# The venv lives outside the clone, under ~/.cache/tickflow (TF_CACHE_DIR
# overrides it), named after the hash of the pin list and the interpreter,
# so that a second run on this machine (another clone, CI) reuses it and a
# changed pin list makes a new one. .run/airflow-venv points at it.
# Idempotent: when the venv is complete it makes no network call and
# returns at once.
#
# Usage: tests/env/airflow.sh        prints the venv's folder on stdout
#   Then: "$venv/bin/airflow version"
# Needs Debian's python3 and python3-venv (tests/env/deps.sh installs them).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pins=$TF_REPO/tests/airflow/requirements.txt
# Debian's interpreter, so the venv does not depend on a per-user Python.
base=/usr/bin/python3
[ -x "$base" ] || base=$(command -v python3)
[ -f "$pins" ] || die "airflow: no pin list at $pins"
key=$({
    cat "$pins"
    "$base" -c 'import platform, sys; print(sys.version, platform.machine())'
} | sha256sum | cut -c1-16)
cache=${TF_CACHE_DIR:-$HOME/.cache/tickflow}
venv=$cache/airflow-venv-$key
stamp=$venv/.tickflow-pins

ready() { [ -x "$venv/bin/airflow" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; }
link() {
    mkdir -p "$TF_RUN"
    ln -sfn "$venv" "$TF_RUN/airflow-venv"
    say "airflow: $venv ready"
    printf '%s\n' "$venv"
}
if ready; then
    link
    exit 0
fi

mkdir -p "$cache"
exec 8>"$venv.lock"
flock -w 900 8 || die "airflow: timed out waiting for $venv.lock"
if ready; then # another caller finished it while we waited
    link
    exit 0
fi
# A half-made venv (an interrupted install) is made again from nothing.
rm -rf "$venv"
say "airflow: creating $venv with $base"
"$base" -m venv "$venv" || die "python3 -m venv failed (is python3-venv installed? tests/env/deps.sh)"
say "airflow: installing $(grep -c '==' "$pins") pinned packages"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$pins" >&2 ||
    die "airflow: pip install of $pins failed"
"$venv/bin/python" -m pip check --disable-pip-version-check >&2 ||
    die "airflow: the pinned packages do not fit together (pip check)"
"$venv/bin/python" -c 'import airflow.sdk, airflow.providers.http, airflow.providers.standard' ||
    die "airflow: airflow.sdk or a provider does not import"
printf '%s' "$key" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
link
