#!/usr/bin/env bash
# Builds tests/deploy/compose_render (compose-go, the Compose loader that
# `docker compose` uses, pinned in its go.mod and verified by its go.sum) and
# prints the binary's path on stdout.
# Idempotent: when the binary for the current sources is already there it makes
# no network call and needs no Go; it returns at once.
#
# Usage: tests/env/compose-render.sh
#   Then: "$(tests/env/compose-render.sh)" -f docker-compose.yaml \
#             [--profile s3] [--env TICKFLOW_LAKE_URI=s3://tickflow/lake]
# Needs Go 1.24 or newer for the first build (compose-go v2.16.2's minimum;
# v2.17 needs Go 1.27, hence the pin). The binary lives outside the clone, in
# ${TF_CACHE_DIR:-~/.cache/tickflow}/compose-render-<hash of go.mod, go.sum
# and main.go> (XDG_CACHE_HOME is honoured), so a second checkout or CI run
# reuses it and an edit of the sources builds a new one; the module and build
# caches are Go's defaults (GOMODCACHE, GOCACHE).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

src=$TF_REPO/tests/deploy/compose_render
cache=${TF_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tickflow}
hash=$(cd "$src" && cat go.mod go.sum main.go | sha256sum | cut -c1-16)
dir=$cache/compose-render-$hash
bin=$dir/compose-render

if [ -x "$bin" ]; then
    printf '%s\n' "$bin"
    exit 0
fi

# The lock sits beside the binaries, so that checkouts sharing the cache
# serialise too; it is dropped when the script exits.
mkdir -p "$cache"
exec 9>"$cache/compose-render.lock"
flock -w 180 9 || die "compose-render: timed out waiting for $cache/compose-render.lock"
if [ -x "$bin" ]; then # another caller built it while we waited
    printf '%s\n' "$bin"
    exit 0
fi
command -v go >/dev/null || die "compose-render: go not found (Go 1.24 or newer builds $src)"
gov=$(GOTOOLCHAIN=local go env GOVERSION)
say "compose-render: building $src with $gov into $dir"
mkdir -p "$dir"
# GOTOOLCHAIN=local: build with this Go or fail, never fetch another toolchain.
# -mod=readonly: go.mod and go.sum as committed, every module checked against
# go.sum. GOWORK=off: no go.work from a parent directory.
# A temporary file, then one rename: a half-written binary is never there.
tmp=$(mktemp "$dir/compose-render.tmp.XXXXXX")
trap 'rm -f "$tmp"' EXIT
(cd "$src" && GOTOOLCHAIN=local GOWORK=off GOFLAGS='-mod=readonly -buildvcs=false' CGO_ENABLED=0 \
    go build -trimpath -o "$tmp" .) >&2 ||
    die "compose-render: go build in $src failed"
mv -f "$tmp" "$bin"
say "compose-render: $bin ready"
printf '%s\n' "$bin"
