#!/usr/bin/env bash
# Creates the Python virtual environment that the lake checks and the
# browser tests use, with pinned tools that no one here wrote from PyPI:
# pyarrow and DuckDB with its httpfs extension (readers, S3 too), selenium (the WebDriver client, with every
# package it pulls in pinned too).
# Idempotent: when the venv already holds the pinned versions it makes no
# network call and returns in well under a second.
#
# Usage: tests/env/pyenv.sh
#   Then: .run/venv/bin/python tests/lake/check_parquet.py DIR
# Needs Debian's python3-venv (tests/env/deps.sh installs it).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Pinned wheels (CPython 3.11 x86_64 on PyPI).
TF_PY_PINS=(pyarrow==26.0.1 duckdb==1.5.5 duckdb-extension-httpfs==1.5.5
    selenium==4.51.0 attrs==26.1.0 certifi==2026.10.19.post1 h11==0.16.0 idna==3.20
    outcome==1.3.0.post0 PySocks==1.7.1 sniffio==1.3.1 sortedcontainers==2.4.0 trio==0.35.0
    trio-websocket==0.12.2 typing_extensions==4.16.0 urllib3==2.8.0 websocket-client==1.9.2
    wsproto==1.3.2)

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
"$py" -c 'import pyarrow, duckdb, duckdb_extension_httpfs, selenium' || die "pyenv: pyarrow, duckdb or selenium does not import"
printf '%s' "$want" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
say "pyenv: $venv ready ($want)"
