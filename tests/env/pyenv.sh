#!/usr/bin/env bash
# Creates the Python virtual environment that the lake checks use, with
# pinned readers that no one here wrote: pyarrow and DuckDB from PyPI.
# Idempotent: when the venv already holds the pinned versions it makes no
# network call and returns in well under a second.
#
# Usage: tests/env/pyenv.sh
#   Then: .run/venv/bin/python tests/lake/check_parquet.py DIR
# Needs Debian's python3-venv (tests/env/deps.sh installs it).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Pinned readers (CPython 3.11 x86_64 wheels on PyPI).
TF_PY_PINS=(pyarrow==26.0.1 duckdb==1.5.6)

venv=$TF_RUN/venv
py=$venv/bin/python
stamp=$venv/.tickflow-pins

want="${TF_PY_PINS[*]}"
ready() { [ -x "$py" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }
if ready; then
    say "pyenv: $venv ready ($want)"
    exit 0
fi

tf_lock venv
if ready; then # another caller finished it while we waited
    say "pyenv: $venv ready ($want)"
    exit 0
fi
# Debian's interpreter, so the venv does not depend on a per-user Python.
base=/usr/bin/python3
[ -x "$base" ] || base=$(command -v python3)
if [ ! -x "$py" ]; then
    say "pyenv: creating $venv with $base"
    rm -rf "$venv"
    "$base" -m venv "$venv" || die "python3 -m venv failed (is python3-venv installed? tests/env/deps.sh)"
fi
say "pyenv: installing $want"
"$py" -m pip install -q --disable-pip-version-check --only-binary=:all: "${TF_PY_PINS[@]}" >&2
"$py" -c 'import pyarrow, duckdb' || die "pyenv: pyarrow or duckdb does not import"
printf '%s' "$want" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
say "pyenv: $venv ready ($want)"
