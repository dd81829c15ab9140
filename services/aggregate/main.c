/*
 * main.c - the aggregate stage: recompute the hourly OHLCV rollups of
 * every hour the execution's window touched, from all silver bars in those
 * hours, and upsert them into gold.bars_hourly in one lease-fenced
 * transaction. Triggered by tickflow.silver.v1 events or by a POST with the
 * execution id; publishes on tickflow.gold.v1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/pg.h"
#include "tf/svc.h"
#include "tf/time.h"

/*
 * open = first bar's open, close = last bar's close, high/low extremes,
 * volume and trades summed, VWAP = sum(vwap * volume) / sum(volume) over
 * the bars that have a VWAP. Whole hours: [hour(start), hour(end - 1) + 1h).
 */
static const char rollup_sql[] =
    "WITH job AS (SELECT multiplier::text || timespan AS span FROM tickflow.job_config"
    "  WHERE job_name = $1),"
    " up AS ("
    "  INSERT INTO gold.bars_hourly AS g (ticker, source_timespan, bucket, open, high, low,"
    "   close, volume, vwap, trades, bar_count, execution_id, updated_at)"
    "  SELECT b.ticker, b.timespan, date_trunc('hour', b.ts),"
    "   (array_agg(b.open ORDER BY b.ts))[1], max(b.high), min(b.low),"
    "   (array_agg(b.close ORDER BY b.ts DESC))[1], sum(b.volume),"
    "   sum(b.vwap * b.volume) FILTER (WHERE b.vwap IS NOT NULL)"
    "    / nullif(sum(b.volume) FILTER (WHERE b.vwap IS NOT NULL), 0),"
    "   sum(b.trades), count(*), $5::uuid, now()"
    "  FROM silver.bars b, job"
    "  WHERE b.ticker = ANY($2::text[]) AND b.timespan = job.span"
    "   AND b.ts >= date_trunc('hour', $3::timestamptz)"
    "   AND b.ts < date_trunc('hour', $4::timestamptz - interval '1 microsecond')"
    "              + interval '1 hour'"
    "  GROUP BY b.ticker, b.timespan, date_trunc('hour', b.ts)"
    "  ON CONFLICT (ticker, source_timespan, bucket) DO UPDATE SET open = EXCLUDED.open,"
    "   high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,"
    "   volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trades = EXCLUDED.trades,"
    "   bar_count = EXCLUDED.bar_count, execution_id = EXCLUDED.execution_id,"
    "   updated_at = EXCLUDED.updated_at"
    "  RETURNING bar_count)"
    " SELECT count(*), coalesce(sum(bar_count), 0) FROM up";

static enum tf_rc aggregate_run(struct tf_run *run)
{
    struct tf_buf tickers;
    char ws[32], we[32];
    const char *params[5];
    PGresult *res = NULL;
    enum tf_rc rc;

    /* One writer per ticker at a time: the rollup reads silver after the
     * lock, so the last writer always computes from the newest rows. */
    rc = tf_pg_lock_keys(run->conn, "tickflow.gold",
                         cJSON_GetObjectItemCaseSensitive(run->record, "tickers"));
    if (rc != TF_OK) {
        tf_run_fail(run, "cannot lock the tickers' gold rows");
        return rc;
    }
    tf_buf_init(&tickers, 1024 * 1024);
    rc = tf_pg_text_array(cJSON_GetObjectItemCaseSensitive(run->record, "tickers"), &tickers);
    if (rc != TF_OK) {
        tf_run_fail(run, "ticker list too long");
        goto out;
    }
    tf_time_format(run->window_start, ws, sizeof(ws));
    tf_time_format(run->window_end, we, sizeof(we));
    params[0] = run->job_name;
    params[1] = tickers.data;
    params[2] = ws;
    params[3] = we;
    params[4] = run->execution_id;
    res = tf_pg_exec(run->conn, rollup_sql, 5, params);
    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "hourly rollup failed: sqlstate %s", tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
        goto out;
    }
    run->records_out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    run->records_in = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "uri", "postgres:gold.bars_hourly");
        cJSON_AddNumberToObject(o, "records", (double)run->records_out);
        cJSON_AddItemToArray(run->objects, o);
    }
out:
    PQclear(res);
    tf_buf_cleanup(&tickers);
    return rc;
}

static const struct tf_stage_def aggregate_stage = {
    .name = "aggregate",
    .upstream = "transform",
    .consume_topic = "tickflow.silver.v1",
    .produce_topic = "tickflow.gold.v1",
    .fenced = 1,
    .default_port = 8083,
    .run = aggregate_run,
    .plan = NULL,
    .route = NULL,
};

static const struct tf_cfg_key aggregate_keys[] = {TF_SVC_KEYS("8083")};

int main(void)
{
    return tf_svc_main(&aggregate_stage, aggregate_keys, TF_ARRAY_LEN(aggregate_keys));
}
