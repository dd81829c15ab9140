#!/usr/bin/env bash
# The demo behind `make demo`: starts marketsim and the three stage services
# natively on the local PostgreSQL and Kafka (tests/env/up.sh), runs one
# execution of the demo job over one trading day of 1-minute bars, prints the
# three stage records and a sample of gold rows, and ends with
#   demo: execution <uuid> extract=... transform=... aggregate=... silver_rows=<n> gold_rows=<m>
# The services keep running for you to try (curl localhost:8081/v1/executions);
# `make down` stops them with PostgreSQL and Kafka.
#
# Usage: tools/demo.sh run|stop
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/.run/demo
BIN=${BIN:-$ROOT/build/bin}
JOB=demo_us_equities
DAY=${DEMO_DAY:-2024-03-04}
# The regular session of $DAY (a winter Monday: 09:30-16:00 EST).
WINDOW_START=${DEMO_WINDOW_START:-${DAY}T14:30:00Z}
WINDOW_END=${DEMO_WINDOW_END:-${DAY}T21:00:00Z}
declare -A PORT=([marketsim]=8090 [extract]=8081 [transform]=8082 [aggregate]=8083)

say() { printf 'demo: %s\n' "$*" >&2; }

stop_all() {
    local name pid
    for name in aggregate transform extract marketsim; do
        [ -f "$RUN/$name.pid" ] || continue
        pid=$(cat "$RUN/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$RUN/$name.pid"
    done
}

start() {
    local name=$1 port=${PORT[$1]}
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
        say "port $port is taken by another process; stop it first (make down)"
        exit 1
    fi
    TICKFLOW_HTTP_PORT=$port setsid "$BIN/tickflow-$name" >>"$RUN/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
            say "$name exited during start-up; its log:"
            tail -n 20 "$RUN/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    say "$name did not answer /healthz in 30 s; see $RUN/$name.log"
    exit 1
}

# sql QUERY ID [psql options]: runs QUERY with :'id' bound to ID (psql quotes it).
sql() {
    printf '%s\n' "$1" | psql "$TICKFLOW_PG_DSN" -X -q -v ON_ERROR_STOP=1 -v id="$2" "${@:3}"
}

field() { python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$1"; }

run() {
    mkdir -p "$RUN"
    # shellcheck disable=SC1091
    . "$ROOT/.run/env.sh"
    export TICKFLOW_LAKE_URI=$RUN/lake TICKFLOW_HTTP_ADDR=127.0.0.1
    export TICKFLOW_POLYGON_BASE_URL=http://127.0.0.1:${PORT[marketsim]}
    export POLYGON_API_KEY=${POLYGON_API_KEY:-marketsim-demo}
    # marketsim has no request budget to protect (real providers keep their free-tier default).
    export TICKFLOW_POLYGON_RATE_PER_MINUTE=${TICKFLOW_POLYGON_RATE_PER_MINUTE:-600000}
    stop_all
    for name in marketsim extract transform aggregate; do
        start "$name"
    done
    say "services up: extract :8081, transform :8082, aggregate :8083, marketsim :8090"

    # The demo's job is the demo's own (no migration seeds it): made, or
    # made again as it was, through the API.
    say "PUT /v1/jobs/$JOB: AAPL, MSFT and AMZN, 1-minute bars from Polygon (marketsim)"
    curl -fsS -X PUT "http://127.0.0.1:${PORT[extract]}/v1/jobs/$JOB" \
        -H 'Content-Type: application/json' \
        -d '{"provider":"polygon","tickers":["AAPL","MSFT","AMZN"],"multiplier":1,"timespan":"minute","interval_seconds":86400,"overlap_seconds":300}' \
        >/dev/null

    local id rec status extract transform aggregate silver gold expected n t
    id=$(cat /proc/sys/kernel/random/uuid)
    say "POST /v1/executions to extract: execution $id, job $JOB, $WINDOW_START .. $WINDOW_END"
    curl -fsS -X POST "http://127.0.0.1:${PORT[extract]}/v1/executions" \
        -H 'Content-Type: application/json' \
        -d "{\"execution_id\":\"$id\",\"job_name\":\"$JOB\",\"window_start\":\"$WINDOW_START\",\"window_end\":\"$WINDOW_END\",\"wait_seconds\":60}" \
        >/dev/null
    # transform and aggregate follow through Kafka; wait for the last stage.
    status=
    for _ in $(seq 1 600); do
        rec=$(curl -fsS "http://127.0.0.1:${PORT[aggregate]}/v1/executions/$id" 2>/dev/null || true)
        status=$(printf '%s' "${rec:-{\}}" | field status)
        case $status in SUCCESS|FAILED) break ;; esac
        sleep 0.1
    done
    for stage in extract transform aggregate; do
        echo "--- $stage record"
        curl -fsS "http://127.0.0.1:${PORT[$stage]}/v1/executions/$id" | python3 -m json.tool
    done
    extract=$(curl -fsS "http://127.0.0.1:${PORT[extract]}/v1/executions/$id" | field status)
    transform=$(curl -fsS "http://127.0.0.1:${PORT[transform]}/v1/executions/$id" 2>/dev/null | field status || echo MISSING)
    aggregate=${status:-MISSING}
    echo "--- gold.bars_hourly (sample)"
    sql "SELECT ticker, bucket, open, high, low, close, volume, round(vwap::numeric, 4) AS vwap, bar_count
           FROM gold.bars_hourly WHERE execution_id = :'id' ORDER BY ticker, bucket LIMIT 8" "$id"
    echo "--- gold.bars_daily and completeness"
    sql "SELECT d.ticker, d.trading_day, d.open, d.close, d.volume, round(d.vwap::numeric, 4) AS vwap,
                d.bar_count, c.expected, round(c.ratio::numeric, 4) AS completeness
           FROM gold.bars_daily d JOIN gold.completeness c
             ON c.execution_id = d.execution_id AND c.ticker = d.ticker
          WHERE d.execution_id = :'id' ORDER BY d.ticker" "$id"
    echo "--- silver Parquet files in the lake"
    find "$TICKFLOW_LAKE_URI" -path '*/silver/*' -name '*.parquet' -printf '%P %s bytes\n' 2>/dev/null | sort
    silver=$(sql "SELECT count(*) FROM silver.bars WHERE execution_id = :'id'" "$id" -tA)
    gold=$(sql "SELECT count(*) FROM gold.bars_hourly WHERE execution_id = :'id'" "$id" -tA)
    # What marketsim generates for the window, asked directly.
    expected=0
    for t in AAPL MSFT AMZN; do
        n=$(curl -fsS "http://127.0.0.1:${PORT[marketsim]}/v2/aggs/ticker/$t/range/1/minute/$(date -u -d "$WINDOW_START" +%s)000/$(( $(date -u -d "$WINDOW_END" +%s) * 1000 - 1 ))?limit=50000&apiKey=$POLYGON_API_KEY" | field resultsCount)
        expected=$((expected + n))
    done
    echo "--- marketsim generated $expected bars for the window; silver holds $silver"
    echo "demo: execution $id extract=$extract transform=$transform aggregate=$aggregate silver_rows=$silver gold_rows=$gold"
    echo "demo: the console: http://localhost:${PORT[extract]}/ui/#/runs/$id"
    echo "demo: try tickflowctl: $BIN/tickflowctl status $id   ($BIN/tickflowctl --help lists every command)"
    [ "$extract" = SUCCESS ] && [ "$transform" = SUCCESS ] && [ "$aggregate" = SUCCESS ] && [ "$silver" -eq "$expected" ]
}

case ${1:-run} in
run) run ;;
stop) stop_all ;;
*) echo "usage: $0 run|stop" >&2; exit 2 ;;
esac
