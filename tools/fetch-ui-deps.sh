#!/bin/sh
# Fetches the web console's one third-party file, TradingView's
# lightweight-charts (the candlestick chart), from registry.npmjs.org at a
# pinned version, checks the tarball against the registry's sha512
# "integrity" pinned here, and unpacks its standalone build and licence into
# the cache outside the clone, where the build embeds them from. A second
# run finds them and does nothing.
#
# Usage: tools/fetch-ui-deps.sh        prints the folder holding the files
# Cache: $TICKFLOW_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/tickflow
set -eu

NAME=lightweight-charts
VERSION=5.2.1
# `npm view lightweight-charts@5.2.1 dist.integrity`
INTEGRITY=sha512-IVwoK1RLFiLPubaKIjNbtjWLnpPMqiABSrTay6whmNa8L1+19292VtHJ+BWyPUuLCwF0tcQlhEWd1CLB2a1nsQ==
URL=https://registry.npmjs.org/$NAME/-/$NAME-$VERSION.tgz
JS=dist/lightweight-charts.standalone.production.js

cache=${TICKFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tickflow}
dir=$cache/$NAME-$VERSION
if [ -s "$dir/lightweight-charts.js" ] && [ -s "$dir/LICENSE" ]; then
    echo "$dir"
    exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "fetch-ui-deps: $URL" >&2
if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$tmp/pkg.tgz" "$URL"
else
    wget -q -O "$tmp/pkg.tgz" "$URL"
fi

# The integrity is base64 of the tarball's SHA-512; compared as hex.
want=$(printf '%s' "${INTEGRITY#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
have=$(sha512sum "$tmp/pkg.tgz" | cut -d' ' -f1)
if [ "$want" != "$have" ]; then
    echo "fetch-ui-deps: $NAME-$VERSION.tgz does not match its pinned sha512; not used" >&2
    exit 1
fi

tar -xzf "$tmp/pkg.tgz" -C "$tmp" "package/$JS" package/LICENSE
mkdir -p "$tmp/out"
cp "$tmp/package/$JS" "$tmp/out/lightweight-charts.js"
cp "$tmp/package/LICENSE" "$tmp/out/LICENSE"
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "$dir"
