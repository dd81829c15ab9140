#!/usr/bin/env bash
# Installs the pinned kustomize (built from its Go module with this machine's
# Go) and prints the binary's path on stdout.
# Idempotent: when the binary is already there it makes no network call and
# returns at once.
#
# Usage: tests/env/kustomize.sh
#   Then: "$(tests/env/kustomize.sh)" build deploy/k8s/overlays/dev
# Needs Go 1.26 or newer (v5.8.3 and later need Go 1.27, hence the pin).
# The binary lives outside the clone, under ~/.cache/tickflow (XDG_CACHE_HOME
# is honoured), so a second checkout or CI run reuses it; the module and build
# caches are Go's defaults (GOMODCACHE, GOCACHE).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TF_KUSTOMIZE_VERSION=v5.8.2
TF_KUSTOMIZE_MODULE=sigs.k8s.io/kustomize/kustomize/v5

dir=${XDG_CACHE_HOME:-$HOME/.cache}/tickflow/bin/kustomize-$TF_KUSTOMIZE_VERSION
bin=$dir/kustomize

ready() { [ -x "$bin" ] && [ "$("$bin" version 2>/dev/null)" = "$TF_KUSTOMIZE_VERSION" ]; }
if ready; then
    printf '%s\n' "$bin"
    exit 0
fi

tf_lock kustomize
if ready; then # another caller finished it while we waited
    printf '%s\n' "$bin"
    exit 0
fi
command -v go >/dev/null || die "kustomize: go not found (Go 1.26 or newer builds kustomize $TF_KUSTOMIZE_VERSION)"
gov=$(go env GOVERSION)
case $gov in
go1.2[6-9]* | go1.[3-9][0-9]*) ;;
*) die "kustomize: $gov is too old; kustomize $TF_KUSTOMIZE_VERSION needs Go 1.26 or newer" ;;
esac
say "kustomize: building $TF_KUSTOMIZE_MODULE@$TF_KUSTOMIZE_VERSION with $gov into $dir"
mkdir -p "$dir"
# GOTOOLCHAIN=local: build with this Go or fail, never fetch another toolchain.
# A temporary GOBIN, then one rename: a half-written binary is never "ready".
tmp=$(mktemp -d "$dir.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0 GOBIN=$tmp \
    go install -trimpath "$TF_KUSTOMIZE_MODULE@$TF_KUSTOMIZE_VERSION" >&2 ||
    die "kustomize: go install $TF_KUSTOMIZE_MODULE@$TF_KUSTOMIZE_VERSION failed"
mv -f "$tmp/kustomize" "$bin"
ready || die "kustomize: $bin does not report version $TF_KUSTOMIZE_VERSION (it says: $("$bin" version 2>&1 | head -1))"
say "kustomize: $bin ready"
printf '%s\n' "$bin"
