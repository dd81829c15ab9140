/*
 * bench_load.c - transform's silver load against its limit, in one run.
 *
 * About a million one-minute bars (695 tickers x one 24-hour day) as gzip
 * bronze pages, one per ticker, recorded as a finished extract. The limit
 * is psql's \copy of the same rows into the same silver.bars (partitioned,
 * with its indexes); transform does that plus reading, inflating and
 * checking every page, the rules, COPY into its staging table, the
 * DISTINCT ON upsert and the Parquet file of the day; then aggregate rolls
 * the day up into hourly and daily gold with derived columns and
 * completeness. The services' peak RSS is their VmHWM. Ends with
 *   bench load: bars_per_s=<n> copy_bars_per_s=<n> ratio=<r> peak_rss_mb=<n>
 * where bars_per_s is through both stages: from the POST to transform until
 * aggregate's record is final (the line before splits the two). Three
 * rounds, the \copy and the pipeline taking turns, each from empty silver
 * and gold tables; the figures are the medians.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tf/buf.h"
#include "tf/exec.h"
#include "tf/gz.h"
#include "tf/lake.h"
#include "tf/time.h"

#define TICKERS 695
#define MINUTES 1440
#define API_KEY "bench-key"
#define JOB     "bench_load"
#define DAY_MS  1709510400000LL /* 2024-03-04T00:00:00Z */
#define ROUNDS  3

static struct h_stack stack;

/* A deterministic walk: the same bars every run. */
static double next_unit(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/*
 * Writes every ticker's page (gzip) into the lake and the same rows as COPY
 * text into copy_path; returns the extract's objects (new) or NULL.
 */
static cJSON *make_pages(const char *copy_path, long long *bars)
{
    char dir[700], path[900];
    cJSON *objects = cJSON_CreateArray();
    FILE *copy = fopen(copy_path, "w");
    struct tf_buf page;

    snprintf(dir, sizeof(dir), "%s/lake/bench", stack.dir);
    mkdir(dir, 0755);
    tf_buf_init(&page, 64u << 20);
    *bars = 0;
    for (int k = 0; copy && k < TICKERS; k++) {
        char ticker[16];
        unsigned long long s = 0x9e3779b97f4a7c15ULL ^ (unsigned long long)k;
        double price = 20 + 400 * next_unit(&s);
        enum tf_rc rc;
        cJSON *o;

        snprintf(ticker, sizeof(ticker), "B%04d", k);
        tf_buf_reset(&page);
        rc = tf_buf_printf(&page, "{\"ticker\":\"%s\",\"resultsCount\":%d,\"results\":[", ticker,
                           MINUTES);
        for (int m = 0; m < MINUTES && rc == TF_OK; m++) {
            long long t = DAY_MS + m * 60000LL;
            double op = price, c = price * (1 + (next_unit(&s) - 0.5) * 0.004);
            double h = fmax(op, c) * (1 + next_unit(&s) * 0.001);
            double l = fmin(op, c) * (1 - next_unit(&s) * 0.001);
            double v = floor(100 + next_unit(&s) * 10000), vw = (h + l + c) / 3;
            int n = 1 + (int)(next_unit(&s) * 200);
            char ts[32];

            price = c;
            rc = tf_buf_printf(&page,
                               "%s{\"v\":%.17g,\"vw\":%.17g,\"o\":%.17g,\"c\":%.17g,\"h\":%.17g,"
                               "\"l\":%.17g,\"t\":%lld,\"n\":%d}",
                               m ? "," : "", v, vw, op, c, h, l, t, n);
            tf_time_format(t / 1000, ts, sizeof(ts));
            fprintf(copy,
                    "%s\t1minute\t%s\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%d\t"
                    "00000000-0000-4000-8000-000000000000\n",
                    ticker, ts, op, h, l, c, v, vw, n);
        }
        rc = rc ? rc : tf_buf_puts(&page, "],\"status\":\"OK\"}");
        snprintf(path, sizeof(path), "%s/%s.json.gz", dir, ticker);
        {
            const struct h_page pg = {"polygon", NULL, ticker, "1minute", "gzip", 1};
            o = rc == TF_OK ? h_bronze_page(path, page.data, page.len, &pg) : NULL;
        }
        if (!o) {
            fprintf(stderr, "cannot write %s\n", path);
            cJSON_Delete(objects);
            objects = NULL;
            break;
        }
        cJSON_AddItemToArray(objects, o);
        *bars += MINUTES;
    }
    if (copy)
        fclose(copy);
    tf_buf_cleanup(&page);
    return objects;
}

/*
 * Flushes what earlier rounds left in the WAL before a side is timed, so
 * that no side pays for another's checkpoint (needs a superuser; a no-op
 * otherwise).
 */
static void settle(void)
{
    static int warned;
    PGresult *res = PQexec(stack.db, "CHECKPOINT");

    if (PQresultStatus(res) != PGRES_COMMAND_OK && !warned++)
        printf("bench load: no CHECKPOINT between sides (%s): rounds may differ more\n",
               PQresultErrorField(res, PG_DIAG_SQLSTATE));
    PQclear(res);
}

/* The limit: psql's \copy of the rows into silver.bars. Returns seconds, < 0 on failure. */
static double copy_limit(const char *copy_path)
{
    char cmd[4096];
    double t0;
    int status;

    if (h_sql(stack.db, "SELECT silver.ensure_bars_partitions('2024-03-04', '2024-03-05')", 0,
              NULL))
        return -1;
    snprintf(cmd, sizeof(cmd),
             "psql -X -q -v ON_ERROR_STOP=1 '%s' -c \"\\copy silver.bars (ticker, timespan, ts,"
             " open, high, low, close, volume, vwap, trades, execution_id) FROM '%s'\"",
             stack.dsn, copy_path);
    settle();
    t0 = h_now_s();
    status = system(cmd);
    t0 = h_now_s() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    if (h_sql(stack.db, "TRUNCATE silver.bars", 0, NULL) ||
        h_sql(stack.db, "VACUUM ANALYZE silver.bars", 0, NULL))
        return -1;
    return t0;
}

/* Polls until sql (with id) answers a row; returns 0, or -1 after a long wait. */
static int wait_row(const char *sql, const char *id)
{
    const char *params[1] = {id};

    for (int i = 0; i < h_timeout(1200) * 50; i++) {
        char *v = h_pg_value(stack.db, sql, 1, params);
        if (v) {
            free(v);
            return 0;
        }
        h_sleep_ms(20);
    }
    return -1;
}

/*
 * One round of the pipeline: a new extract record over the same pages, the
 * POST to transform, and the wait for silver's event and gold's record.
 * Checks what landed, then empties silver and gold for the next round.
 * Returns 0 with the two stages' seconds, -1 on failure.
 */
static int pipeline_round(const char *objects, long long bars, double *t_silver, double *t_gold)
{
    char id[TF_UUID_LEN + 1], body[128];
    const char *params[2] = {id, objects};
    double t0;
    struct h_resp r;

    tf_uuid_new(id);
    if (h_sql(stack.db,
              "INSERT INTO tickflow.job_execution (execution_id, stage, job_name,"
              " status, attempt, window_start, window_end, tickers, objects,"
              " worker_id, started_at, finished_at, event_published_at)"
              " SELECT $1, 'extract', job_name, 'SUCCESS', 1, '2024-03-04',"
              " '2024-03-05', tickers, $2::jsonb, 'bench', now(), now(), now()"
              " FROM tickflow.job_config WHERE job_name = '" JOB "'",
              2, params))
        return -1;
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\"}", id);
    settle();
    t0 = h_now_s();
    if (h_http("POST", stack.procs[H_TRANSFORM].port, "/v1/executions", body, NULL, &r) != 0 ||
        r.status != 202) {
        fprintf(stderr, "POST transform: %ld %s\n", r.status, r.body ? r.body : "");
        h_resp_free(&r);
        return -1;
    }
    h_resp_free(&r);
    if (wait_row("SELECT status FROM tickflow.job_execution WHERE execution_id = $1"
                 " AND stage = 'transform' AND (event_published_at IS NOT NULL"
                 " OR status = 'FAILED')",
                 id) != 0)
        return -1;
    *t_silver = h_now_s() - t0;
    if (wait_row("SELECT status FROM tickflow.job_execution WHERE execution_id = $1"
                 " AND stage = 'aggregate' AND status IN ('SUCCESS', 'FAILED')",
                 id) != 0)
        return -1;
    *t_gold = h_now_s() - t0 - *t_silver;
    {
        long long out = h_pg_ll(stack.db,
                                "SELECT records_out FROM tickflow.job_execution WHERE"
                                " execution_id = $1 AND stage = 'transform' AND status = 'SUCCESS'",
                                1, params);
        long long rows = h_pg_ll(stack.db, "SELECT count(*) FROM silver.bars", 0, NULL);
        long long hours = h_pg_ll(
            stack.db, "SELECT count(*) FROM gold.bars_hourly WHERE execution_id = $1", 1, params);
        char *agg = h_pg_value(stack.db,
                               "SELECT status FROM tickflow.job_execution WHERE execution_id = $1"
                               " AND stage = 'aggregate'",
                               1, params);
        int ok =
            out == bars && rows == bars && hours == bars / 60 && agg && strcmp(agg, "SUCCESS") == 0;

        if (!ok)
            fprintf(stderr,
                    "bench load: transform stored %lld (silver %lld) of %lld bars, aggregate %s"
                    " with %lld hours\n",
                    out, rows, bars, agg ? agg : "-", hours);
        free(agg);
        if (!ok)
            return -1;
    }
    /* The next round starts from empty tables again, as the limit does. */
    return h_sql(stack.db,
                 "TRUNCATE silver.bars, gold.bars_hourly, gold.bars_daily, gold.completeness", 0,
                 NULL) ||
                   h_sql(stack.db, "VACUUM ANALYZE silver.bars", 0, NULL)
               ? -1
               : 0;
}

int main(void)
{
    static const char *const env[] = {"TICKFLOW_LOG_LEVEL=info", NULL};
    char copy_path[700];
    cJSON *objects = NULL;
    char *text = NULL;
    long long bars = 0;
    double copy_s[ROUNDS], silver_s[ROUNDS], gold_s[ROUNDS], total_s[ROUNDS];
    double copy_m, silver_m, gold_m, total_m;
    long rss_t, rss_a;
    int rc = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "benchload", API_KEY, 1, env) != 0) {
        fprintf(stderr, "the stack did not start (see %s)\n", stack.dir);
        goto out;
    }
    if (h_add_job_tickers(stack.db, JOB, "B", TICKERS) != 0)
        goto out;
    snprintf(copy_path, sizeof(copy_path), "%s/bars.copy", stack.dir);
    objects = make_pages(copy_path, &bars);
    if (!objects)
        goto out;
    text = cJSON_PrintUnformatted(objects);
    if (!text)
        goto out;
    /* The two sides take turns, so that a slow spell of the machine falls on both. */
    for (int r = 0; r < ROUNDS; r++) {
        copy_s[r] = copy_limit(copy_path);
        if (copy_s[r] <= 0) {
            fprintf(stderr, "the \\copy limit failed\n");
            goto out;
        }
        if (pipeline_round(text, bars, &silver_s[r], &gold_s[r]) != 0)
            goto out;
        total_s[r] = silver_s[r] + gold_s[r];
        printf("round %d: transform %.2f s, aggregate %.2f s, \\copy %.2f s, ratio %.2f\n", r + 1,
               silver_s[r], gold_s[r], copy_s[r], copy_s[r] / total_s[r]);
    }
    rss_t = h_vm_hwm_kb(stack.procs[H_TRANSFORM].pid);
    rss_a = h_vm_hwm_kb(stack.procs[H_AGGREGATE].pid);
    copy_m = h_median(copy_s, ROUNDS);
    silver_m = h_median(silver_s, ROUNDS);
    gold_m = h_median(gold_s, ROUNDS);
    total_m = h_median(total_s, ROUNDS);
    printf("bench load: bars=%lld transform_s=%.2f aggregate_s=%.2f aggregate_bars_per_s=%.0f"
           " copy_s=%.2f transform_rss_mb=%.0f aggregate_rss_mb=%.0f (medians of %d rounds)\n",
           bars, silver_m, gold_m, (double)bars / gold_m, copy_m, rss_t / 1024.0, rss_a / 1024.0,
           ROUNDS);
    printf("bench load: transform_bars_per_s=%.0f transform_ratio=%.2f\n", (double)bars / silver_m,
           copy_m / silver_m);
    printf("bench load: bars_per_s=%.0f copy_bars_per_s=%.0f ratio=%.2f peak_rss_mb=%.0f\n",
           (double)bars / total_m, (double)bars / copy_m, copy_m / total_m,
           (rss_t > rss_a ? rss_t : rss_a) / 1024.0);
    rc = 0;
out:
    cJSON_free(text);
    cJSON_Delete(objects);
    if (h_stack_stop(&stack) != 0)
        rc = 1;
    return rc;
}
