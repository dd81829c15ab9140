#!/usr/bin/env bash
# Installs the Debian 12 packages tickflow needs to build and test, and only
# the missing ones: when everything is installed it never calls apt.
#
# Usage: tests/env/deps.sh
#   As root it installs with apt-get; as another user it uses `sudo -n` when
#   that works without a password, otherwise it prints the command to run
#   and exits 1.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

packages=(
    build-essential pkg-config
    libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libpq-dev librdkafka-dev
    libssl-dev uuid-dev zlib1g-dev libzstd-dev
    postgresql postgresql-client
    openjdk-17-jre-headless maven
    curl python3 python3-yaml python3-venv ca-certificates tzdata
    wrk  # make bench-status
    chromium chromium-driver  # tests/browser (headless, through /usr/bin/chromedriver)
    clang  # tests/fuzz: libFuzzer harnesses (make fuzz, and the corpus pass of make test)
)

missing=()
for p in "${packages[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    say "deps: all ${#packages[@]} Debian packages present"
    exit 0
fi

say "deps: missing packages: ${missing[*]}"
if is_root; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    say "deps: not root and no password-less sudo; as root run:"
    printf '  apt-get update && apt-get install -y --no-install-recommends %s\n' "${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
say "deps: apt-get update"
"${sudo[@]}" apt-get update -q >&2
say "deps: apt-get install ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
say "deps: installed ${missing[*]}"
