#!/usr/bin/env bash
# Stops the test environment's Kafka and PostgreSQL (data is kept in .run/).
#
# Usage: tests/env/down.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rc=0
"$TF_ENV_DIR/seaweedfs.sh" down || rc=1
"$TF_ENV_DIR/kafka.sh" down || rc=1
"$TF_ENV_DIR/pg.sh" down || rc=1
if [ "$rc" -eq 0 ]; then say "environment down"; else say "environment down, with errors"; fi
exit "$rc"
