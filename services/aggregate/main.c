/*
 * main.c - the aggregate stage: the rollups of the buckets an execution's
 * window touched (rollup.c), completeness and DQ rules (checks.c), in one
 * lease-fenced transaction; a failed "fail" check fails the stage after
 * the commit. docs/ARCHITECTURE.md (Gold).
 */
#include "aggregate.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/json.h"
#include "tf/pg.h"
#include "tf/time.h"

static void add_object(struct tf_run *run, const char *uri, long long records)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "uri", uri);
    cJSON_AddNumberToObject(o, "records", (double)records);
    cJSON_AddItemToArray(run->objects, o);
}

/* Reads the job's bar size and rules; *rules is a new JSON array. */
static enum tf_rc load_job(struct agg_ctx *ctx, cJSON **rules)
{
    struct tf_run *run = ctx->run;
    const char *params[1] = {run->job_name};
    PGresult *res = tf_pg_exec(run->conn,
                               "SELECT multiplier, timespan, dq_rules::text"
                               " FROM tickflow.job_config WHERE job_name = $1",
                               1, params);
    enum tf_rc rc = TF_OK;

    *rules = NULL;
    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "cannot read job %s: sqlstate %s", run->job_name, tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
    } else if (PQntuples(res) != 1) {
        tf_run_fail(run, "job %s does not exist", run->job_name);
        rc = TF_ERR_NOT_FOUND;
    } else {
        ctx->multiplier = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(ctx->timespan, sizeof(ctx->timespan), "%s", PQgetvalue(res, 0, 1));
        snprintf(ctx->span, sizeof(ctx->span), "%ld%s", ctx->multiplier, ctx->timespan);
        ctx->bar_s = tf_timespan_seconds(ctx->timespan, ctx->multiplier);
        if (ctx->bar_s <= 0)
            ctx->bar_s = 60;
        *rules = cJSON_Parse(PQgetvalue(res, 0, 2));
        if (!*rules) {
            tf_run_fail(run, "out of memory");
            rc = TF_ERR_NOMEM;
        }
    }
    PQclear(res);
    return rc;
}

/*
 * Makes the writes so far durable under the lease, so that a failed
 * check's stage can be recorded FAILED without losing gold and the
 * results: the row is still locked by the fence until this commit, and
 * the runtime's FAILED move that follows is itself guarded by the attempt.
 */
static enum tf_rc commit_early(struct tf_run *run)
{
    enum tf_rc rc = tf_exec_heartbeat(run->conn, run->execution_id, "aggregate", run->attempt);

    if (rc == TF_OK)
        rc = tf_pg_cmd(run->conn, "COMMIT");
    /* The runtime rolls back what it thinks is still open. */
    if (rc == TF_OK)
        rc = tf_pg_cmd(run->conn, "BEGIN");
    return rc;
}

/*
 * Gold's monthly partitions around the window, made on a connection of
 * their own before the run's transaction touches gold: making one locks
 * its parent table, and that lock must not be held until the run commits
 * (every other aggregate would wait on it). Two days either side cover the
 * trading days the window touches; the rollups still make any that are
 * missing.
 */
static enum tf_rc make_partitions(struct tf_run *run)
{
    static const char *const tables[] = {"bars_hourly", "bars_daily"};
    char from[16], to[16];
    const char *params[3] = {NULL, from, to};
    PGconn *side = tf_svc_conn_get(run->svc);
    enum tf_rc rc = TF_OK;

    if (!side)
        return TF_OK;
    tf_time_format_date(run->window_start - 2 * 86400, from, sizeof(from));
    tf_time_format_date(run->window_end + 2 * 86400, to, sizeof(to));
    for (size_t i = 0; i < TF_ARRAY_LEN(tables) && rc == TF_OK; i++) {
        PGresult *res;
        params[0] = tables[i];
        res = tf_pg_exec_retry(side, "SELECT gold.ensure_partitions($1, $2::date, $3::date)", 3,
                               params, 5);
        if (!tf_pg_ok(res)) {
            tf_run_fail(run, "cannot make gold's monthly partitions: sqlstate %s",
                        tf_pg_sqlstate(res));
            rc = TF_ERR_DB;
        }
        PQclear(res);
    }
    tf_svc_conn_put(run->svc, side);
    return rc;
}

static enum tf_rc aggregate_run(struct tf_run *run)
{
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(run->record, "tickers");
    const cJSON *it;
    struct agg_ctx ctx;
    struct tf_buf tickers;
    struct agg_dq_outcome dq;
    cJSON *rules = NULL;
    enum tf_rc rc;

    memset(&ctx, 0, sizeof(ctx));
    memset(&dq, 0, sizeof(dq));
    ctx.run = run;
    tf_buf_init(&tickers, 1024 * 1024);
    ctx.ticker_array = &tickers;

    /* One writer per ticker at a time: the rollups read silver after the
     * lock, so the last writer always computes from the newest rows. */
    rc = make_partitions(run);
    if (rc != TF_OK)
        goto out;
    rc = tf_pg_lock_keys(run->conn, "tickflow.gold", names);
    if (rc != TF_OK) {
        tf_run_fail(run, "cannot lock the tickers' gold rows");
        goto out;
    }
    rc = tf_pg_text_array(names, &tickers);
    if (rc != TF_OK) {
        tf_run_fail(run, "ticker list too long");
        goto out;
    }
    ctx.tickers = calloc((size_t)cJSON_GetArraySize(names) + 1, sizeof(*ctx.tickers));
    if (!ctx.tickers) {
        tf_run_fail(run, "out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    cJSON_ArrayForEach(it, names)
    {
        if (!cJSON_IsString(it))
            continue;
        ctx.tickers[ctx.ntickers].name = it->valuestring;
        ctx.tickers[ctx.ntickers].market = tf_market_of(it->valuestring);
        ctx.ntickers++;
    }
    rc = load_job(&ctx, &rules);
    if (rc == TF_OK) {
        ctx.need_avg_close = aggregate_rules_need_avg_close(rules);
        rc = aggregate_rollups(&ctx);
    }
    if (rc == TF_OK)
        rc = aggregate_checks(&ctx, rules, &dq);
    if (rc != TF_OK)
        goto out;

    run->records_in = ctx.bars_in;
    run->records_out = ctx.hourly_rows;
    add_object(run, "postgres:gold.bars_hourly", ctx.hourly_rows);
    add_object(run, "postgres:gold.bars_daily", ctx.daily_rows);
    add_object(run, "postgres:gold.completeness", (long long)ctx.ntickers);
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "uri", "postgres:gold.dq_results");
        cJSON_AddNumberToObject(o, "records", (double)dq.results);
        cJSON_AddNumberToObject(o, "failed", (double)dq.failed);
        cJSON_AddItemToObject(o, "warnings", dq.warnings);
        dq.warnings = NULL;
        cJSON_AddItemToArray(run->objects, o);
    }
    tf_log_info(&run->log, "gold hourly=%lld daily=%lld bars=%lld checks=%ld failed=%ld",
                ctx.hourly_rows, ctx.daily_rows, ctx.bars_in, dq.results, dq.failed);
    if (dq.failed_fail > 0) {
        rc = commit_early(run);
        if (rc != TF_OK) {
            tf_run_fail(run, "cannot commit gold before failing on a check: %s", tf_rc_str(rc));
            goto out;
        }
        tf_run_fail(run, "data-quality check failed: %s%s", dq.first_fail,
                    dq.failed_fail > 1 ? " (and more, see gold.dq_results)" : "");
        rc = TF_CHECK_FAILED;
    }
out:
    cJSON_Delete(dq.warnings);
    cJSON_Delete(rules);
    free(ctx.tickers);
    tf_buf_cleanup(&tickers);
    return rc;
}

/* aggregate's own route, for /openapi.json. */
static const char aggregate_openapi[] =
    "\"/v1/executions/{execution_id}/quality\":{\"get\":{\"summary\":"
    "\"Completeness per ticker and data-quality results (with alert state) of an execution\","
    "\"parameters\":[{\"name\":\"execution_id\",\"in\":\"path\",\"required\":true,"
    "\"schema\":{\"type\":\"string\",\"format\":\"uuid\"}}],"
    "\"responses\":{\"200\":{\"description\":\"completeness and checks\"},"
    "\"400\":{\"description\":\"error object: not a UUID\"},"
    "\"404\":{\"description\":\"error object\"}}}}";

static struct aggregate_cfg aggregate_cfg;

#define AGGREGATE_KEY(n, t, f, d, fl, lo, hi)                                                      \
    TF_CFG_KEY(struct aggregate_cfg, n, t, f, d, fl, lo, hi)

static const struct tf_cfg_key own_keys[] = {
    AGGREGATE_KEY("TICKFLOW_ALERT_MAX_ATTEMPTS", TF_CFG_INT, alert_max_attempts, "8", 0, 1, 100),
    AGGREGATE_KEY("TICKFLOW_ALERT_RETRY_MS", TF_CFG_INT, alert_retry_ms, "2000", 0, 100, 3600000),
};

/* The alert channels' keys (alert.c) and aggregate's own, filled in main(). */
static struct tf_cfg_key aggregate_keys[TF_ALERT_CFG_NKEYS + TF_ARRAY_LEN(own_keys)];

/* Not const: main() sets nkeys once the alert keys are in. */
static struct tf_stage_def aggregate_stage = {
    .name = "aggregate",
    .upstream = "transform",
    .consume_topic = "tickflow.silver.v1",
    .produce_topic = "tickflow.gold.v1",
    .fenced = 1,
    .default_port = 8083,
    .run = aggregate_run,
    .plan = NULL,
    .tick = aggregate_alerts_tick,
    .route = aggregate_quality_route,
    .openapi_paths = aggregate_openapi,
    .keys = aggregate_keys,
    .cfg = &aggregate_cfg,
};

int main(void)
{
    size_t n;
    int code;

    n = tf_alert_cfg_keys(aggregate_keys, TF_ALERT_CFG_NKEYS,
                          offsetof(struct aggregate_cfg, alert));
    memcpy(&aggregate_keys[n], own_keys, sizeof(own_keys));
    aggregate_stage.nkeys = n + TF_ARRAY_LEN(own_keys);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    code = tf_svc_main(&aggregate_stage);
    curl_global_cleanup();
    return code;
}
