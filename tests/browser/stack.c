/*
 * stack.c - the running stack the browser tests look at (test_console.py
 * starts it): marketsim and the three services on free ports with a
 * database and topic prefix of their own (h_stack_start), and in it:
 *
 *   - job "console" (Polygon, AAPL and MSFT, 1-minute bars, two DQ rules of
 *     severity warn) over the last four trading days before today, T0..T3:
 *     a backfill of T0..T1 (real extractions from marketsim), T2 left out
 *     on purpose (a gap), and T3 run from bronze pages made here from
 *     marketsim's generator with one bar whose high is below its low, so
 *     that transform rejects it under that rule;
 *   - job "console_bulk": 10,000 finished executions (three stages each,
 *     one in 50 with a failed transform), all older than the runs above,
 *     inserted with SQL, for the runs page's render time.
 *
 * Then it writes what a page must show, read back from the database and
 * the API (never computed here), as JSON to argv[1], prints "ready" and
 * reads commands on stdin: "stop extract" stops that service (the console
 * then has no API) and answers "stopped extract <exit status>"; end of
 * input, "quit" or SIGTERM stops everything and drops the database. The
 * exit status is 0 when every service stopped cleanly.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../services/marketsim/gen.h"
#include "harness.h"
#include "tf/calendar.h"
#include "tf/exec.h"
#include "tf/time.h"

#define API_KEY  "browser-Key-5c2e90"
#define SEED     29
#define JOB      "console"
#define BULK_JOB "console_bulk"
#define BULK_N   10000
#define DAY_S    86400

static struct h_stack stack;
static volatile sig_atomic_t stop_asked;
static int extract_stopped; /* its exit status when "stop extract" stopped it */

static void on_signal(int sig)
{
    (void)sig;
    stop_asked = 1;
}

/* Sends a request to a service of the stack; NULL (said on stderr) unless the status is want. */
static cJSON *call_want(int svc, const char *method, const char *path, const char *body, long want)
{
    long status = 0;
    cJSON *ans = h_call(method, stack.procs[svc].port, path, body, NULL, &status);

    if (status != want) {
        char *text = ans ? cJSON_PrintUnformatted(ans) : NULL;
        fprintf(stderr, "stack: %s %s answered %ld, want %ld: %s\n", method, path, status, want,
                text ? text : "(no JSON)");
        cJSON_free(text);
        cJSON_Delete(ans);
        return NULL;
    }
    return ans;
}

/* The date (YYYY-MM-DD) of day number d since the epoch. */
static void day_str(int64_t d, char out[16])
{
    tf_time_format_date(d * DAY_S, out, 16);
}

static int trading_day(int64_t d)
{
    int y, m, dd;

    tf_civil_from_days(d, &y, &m, &dd);
    return tf_cal_us_session(y, m, dd, NULL, NULL);
}

/* The last four trading days before today (UTC), oldest first. */
static void pick_days(int64_t t[4])
{
    int64_t d = tf_floor_div(tf_time_now(), DAY_S) - 1;

    for (int k = 3; k >= 0; d--) {
        if (trading_day(d))
            t[k--] = d;
    }
}

/* POSTs a backfill of JOB over [from, to] and waits until it succeeded; its id into id. */
static int run_backfill(const char *from, const char *to, char id[TF_UUID_LEN + 1])
{
    char body[256], path[96];
    cJSON *ans;
    int ok = 0;

    snprintf(body, sizeof(body),
             "{\"job_name\":\"" JOB "\",\"from\":\"%s\",\"to\":\"%s\",\"concurrency\":2}", from,
             to);
    ans = call_want(H_EXTRACT, "POST", "/v1/backfills", body, 202);
    if (!ans || !h_jstr(ans, "backfill_id")) {
        cJSON_Delete(ans);
        return -1;
    }
    snprintf(id, TF_UUID_LEN + 1, "%s", h_jstr(ans, "backfill_id"));
    cJSON_Delete(ans);
    snprintf(path, sizeof(path), "/v1/backfills/%s", id);
    for (int i = 0; i < h_timeout(120) * 5 && h_stack_alive(&stack) && !ok; i++) {
        const char *status;
        ans = call_want(H_EXTRACT, "GET", path, NULL, 200);
        status = h_jstr(ans, "status");
        if (status && strcmp(status, "FAILED") == 0) {
            char *text = cJSON_PrintUnformatted(ans);
            fprintf(stderr, "stack: backfill %s failed: %s\n", id, text);
            cJSON_free(text);
            cJSON_Delete(ans);
            return -1;
        }
        ok = status && strcmp(status, "SUCCESS") == 0;
        cJSON_Delete(ans);
        if (!ok)
            h_sleep_ms(200);
    }
    if (!ok)
        fprintf(stderr, "stack: backfill %s did not succeed in time\n", id);
    return ok ? 0 : -1;
}

/* Appends a Polygon result item for bar b to page. */
static enum tf_rc add_item(struct tf_buf *page, const struct ms_bar *b, int first)
{
    return tf_buf_printf(page,
                         "%s{\"v\":%.17g,\"vw\":%.17g,\"o\":%.17g,\"c\":%.17g,\"h\":%.17g,"
                         "\"l\":%.17g,\"t\":%lld,\"n\":%lld}",
                         first ? "" : ",", b->v, b->vw, b->o, b->c, b->h, b->l, (long long)b->t_ms,
                         b->n);
}

/*
 * Lands ticker's page of marketsim's bars in [ws, we) as extract would
 * (gzip); bad adds a copy of the first bar with its high below its low.
 * Appends the object to objects; returns the bars in the page, -1 on failure.
 */
static long land_page(const char *id, const char *ticker, int64_t ws, int64_t we, int bad,
                      cJSON *objects)
{
    const struct h_page pg = {"polygon", NULL, ticker, "1minute", "gzip", 1};
    struct ms_bar *bars = NULL;
    size_t n = ms_gen_minute_bars(SEED, ticker, ws * 1000, we * 1000 - 1, &bars);
    struct tf_buf page;
    char dir[700], path[900];
    long count = (long)n + (bad && n > 0);
    enum tf_rc rc;
    cJSON *o = NULL;

    if (n == 0) {
        fprintf(stderr, "stack: marketsim's generator has no bars of %s\n", ticker);
        return -1;
    }
    tf_buf_init(&page, 64u << 20);
    rc = tf_buf_printf(&page, "{\"ticker\":\"%s\",\"status\":\"OK\",\"results\":[", ticker);
    for (size_t i = 0; rc == TF_OK && i < n; i++)
        rc = add_item(&page, &bars[i], i == 0);
    if (rc == TF_OK && bad) {
        struct ms_bar b = bars[0];
        b.h = b.l - 1;
        rc = add_item(&page, &b, 0);
    }
    if (rc == TF_OK)
        rc = tf_buf_printf(&page, "],\"resultsCount\":%ld}", count);
    free(bars);
    snprintf(dir, sizeof(dir), "%s/lake/handmade", stack.dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/%s-%s.json.gz", dir, id, ticker);
    if (rc == TF_OK)
        o = h_bronze_page(path, page.data, page.len, &pg);
    tf_buf_cleanup(&page);
    if (!o) {
        fprintf(stderr, "stack: could not land %s\n", path);
        return -1;
    }
    cJSON_AddNumberToObject(o, "records", (double)count);
    cJSON_AddItemToArray(objects, o);
    return count;
}

/*
 * The run of day t from hand-made bronze: a finished extract recorded here,
 * transform started over HTTP, aggregate after it through Kafka.
 */
static int run_handmade(int64_t t, char id[TF_UUID_LEN + 1])
{
    int64_t ws = t * DAY_S, we = ws + DAY_S;
    cJSON *objects = cJSON_CreateArray(), *rec;
    char wss[32], wes[32], total[32], body[200], *text;
    const char *params[6];
    long a, m;
    int rc;

    tf_uuid_new(id);
    a = land_page(id, "AAPL", ws, we, 1, objects);
    m = land_page(id, "MSFT", ws, we, 0, objects);
    if (a < 0 || m < 0) {
        cJSON_Delete(objects);
        return -1;
    }
    tf_time_format(ws, wss, sizeof(wss));
    tf_time_format(we, wes, sizeof(wes));
    snprintf(total, sizeof(total), "%ld", a + m);
    text = cJSON_PrintUnformatted(objects);
    memcpy(params, (const char *[]){id, wss, wes, text, total, JOB}, sizeof(params));
    rc = h_sql(stack.db,
               "INSERT INTO tickflow.job_execution (execution_id, stage, job_name, status,"
               " attempt, window_start, window_end, tickers, objects, records_in, records_out,"
               " worker_id, started_at, finished_at, event_published_at)"
               " VALUES ($1, 'extract', $6, 'SUCCESS', 1, $2, $3, '{AAPL,MSFT}', $4::jsonb,"
               " $5, $5, 'handmade', now(), now(), now())",
               6, params);
    cJSON_free(text);
    cJSON_Delete(objects);
    if (rc != 0)
        return -1;
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"wait_seconds\":%d}", id,
             h_timeout(60));
    rec = call_want(H_TRANSFORM, "POST", "/v1/executions", body, 200);
    if (!rec || strcmp(h_jstr(rec, "status") ? h_jstr(rec, "status") : "", "SUCCESS") != 0) {
        fprintf(stderr, "stack: transform of %s did not succeed\n", id);
        cJSON_Delete(rec);
        return -1;
    }
    cJSON_Delete(rec);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 60);
    rc = rec && strcmp(h_jstr(rec, "status") ? h_jstr(rec, "status") : "", "SUCCESS") == 0;
    if (!rc)
        fprintf(stderr, "stack: aggregate of %s did not succeed\n", id);
    cJSON_Delete(rec);
    return rc ? 0 : -1;
}

/* 10,000 finished executions of BULK_JOB, hourly windows from 2020-01-01, one in 50 failed. */
static int add_bulk(void)
{
    char n[16];
    const char *params[1] = {n};

    snprintf(n, sizeof(n), "%d", BULK_N);
    if (h_sql(stack.db,
              "INSERT INTO tickflow.job_config (job_name, provider, tickers, updated_by)"
              " VALUES ('" BULK_JOB "', 'polygon', '{AAPL}', 'browser')",
              0, NULL) != 0)
        return -1;
    return h_sql(stack.db,
                 "WITH e AS MATERIALIZED (SELECT i, gen_random_uuid() AS id,"
                 "  timestamptz '2020-01-01 14:00:00Z' + i * interval '1 hour' AS ws"
                 "  FROM generate_series(1, $1::int) i)"
                 " INSERT INTO tickflow.job_execution (execution_id, stage, job_name, status,"
                 "  attempt, max_attempts, window_start, window_end, tickers, records_in,"
                 "  records_out, error, worker_id, started_at, finished_at, event_published_at,"
                 "  created_at, updated_at)"
                 " SELECT e.id, s.stage, '" BULK_JOB "',"
                 "  CASE WHEN s.stage = 'transform' AND e.i % 50 = 0 THEN 'FAILED'"
                 "   ELSE 'SUCCESS' END, 1, 1, e.ws, e.ws + interval '1 hour', '{AAPL}', 60,"
                 "  CASE WHEN s.stage = 'transform' AND e.i % 50 = 0 THEN 0 ELSE 60 END,"
                 "  CASE WHEN s.stage = 'transform' AND e.i % 50 = 0"
                 "   THEN 'the bronze page could not be read' END, 'bulk',"
                 "  e.ws + interval '1 hour' + s.k * interval '1 minute',"
                 "  e.ws + interval '1 hour' + s.k * interval '2 minutes',"
                 "  e.ws + interval '1 hour' + s.k * interval '2 minutes',"
                 "  e.ws + interval '1 hour' + s.k * interval '1 minute',"
                 "  e.ws + interval '1 hour' + s.k * interval '2 minutes'"
                 " FROM e CROSS JOIN (VALUES ('extract', 1), ('transform', 2), ('aggregate', 3))"
                 "  AS s (stage, k)"
                 " WHERE NOT (s.stage = 'aggregate' AND e.i % 50 = 0)",
                 1, params) == 0 &&
                   h_sql(stack.db, "ANALYZE tickflow.job_execution", 0, NULL) == 0
               ? 0
               : -1;
}

/* The rows of a query as an array of objects keyed by column name (numbers where asked). */
static cJSON *rows(const char *sql, int nparams, const char *const *params, const char *numeric)
{
    PGresult *res = PQexecParams(stack.db, sql, nparams, NULL, params, NULL, NULL, 0);
    cJSON *out = NULL;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "stack: %s: %s", sql, PQresultErrorMessage(res));
    } else {
        out = cJSON_CreateArray();
        for (int r = 0; r < PQntuples(res); r++) {
            cJSON *o = cJSON_CreateObject();
            for (int c = 0; c < PQnfields(res); c++) {
                const char *name = PQfname(res, c), *v = PQgetvalue(res, r, c);
                if (PQgetisnull(res, r, c))
                    cJSON_AddNullToObject(o, name);
                else if (strstr(numeric, name))
                    cJSON_AddNumberToObject(o, name, strtod(v, NULL));
                else
                    cJSON_AddStringToObject(o, name, v);
            }
            cJSON_AddItemToArray(out, o);
        }
    }
    PQclear(res);
    return out;
}

/* What the run page of execution id must show, as the database has it. */
static cJSON *run_facts(const char *id, const char *day, const char *kind)
{
    const char *params[1] = {id};
    cJSON *run = cJSON_CreateObject();

    cJSON_AddStringToObject(run, "execution_id", id);
    cJSON_AddStringToObject(run, "day", day);
    cJSON_AddStringToObject(run, "kind", kind);
    cJSON_AddItemToObject(run, "stages",
                          rows("SELECT stage, status, records_in, records_out, records_rejected,"
                               " jsonb_array_length(objects) AS objects FROM tickflow.job_execution"
                               " WHERE execution_id = $1 ORDER BY array_position("
                               "  ARRAY['extract', 'transform', 'aggregate'], stage)",
                               1, params, "records_in records_out records_rejected objects"));
    cJSON_AddItemToObject(run, "rejects",
                          rows("SELECT rule, count(*) AS count FROM silver.rejected_bars"
                               " WHERE execution_id = $1 GROUP BY rule ORDER BY rule",
                               1, params, "count"));
    cJSON_AddItemToObject(run, "completeness",
                          rows("SELECT ticker, expected, actual FROM gold.completeness"
                               " WHERE execution_id = $1 ORDER BY ticker",
                               1, params, "expected actual"));
    cJSON_AddItemToObject(run, "dq",
                          rows("SELECT check_name, ticker, passed::text, alert_state"
                               " FROM gold.dq_results WHERE execution_id = $1"
                               " ORDER BY rule_no, ticker",
                               1, params, ""));
    return run;
}

/* Writes the facts the pages must show to path (through a temporary file). */
static int write_facts(const char *path, const int64_t t[4], const char *real_id,
                       const char *rej_id, const char *backfill_id)
{
    char d[4][16], from[16], to[16], tmp[1100], gpath[160];
    const char *params[2] = {from, to};
    cJSON *f = cJSON_CreateObject(), *ports = cJSON_CreateObject(), *days, *chart, *gaps;
    static const char *const names[H_NPROCS] = {"marketsim", "extract", "transform", "aggregate"};
    char *text;
    FILE *fp;
    int ok;

    for (int i = 0; i < 4; i++)
        day_str(t[i], d[i]);
    for (int i = 0; i < H_NPROCS; i++)
        cJSON_AddNumberToObject(ports, names[i], stack.procs[i].port);
    cJSON_AddItemToObject(f, "ports", ports);
    cJSON_AddStringToObject(f, "dir", stack.dir);
    cJSON_AddStringToObject(f, "job", JOB);
    cJSON_AddStringToObject(f, "bulk_job", BULK_JOB);
    cJSON_AddStringToObject(f, "backfill_id", backfill_id);
    cJSON_AddNumberToObject(f, "backfill_days",
                            (double)h_pg_ll(stack.db,
                                            "SELECT count(*) FROM tickflow.job_execution"
                                            " WHERE backfill_id = $1 AND stage = 'extract'",
                                            1, (const char *[]){backfill_id}));
    cJSON_AddItemToObject(f, "tickers",
                          cJSON_CreateStringArray((const char *[]){"AAPL", "MSFT"}, 2));
    cJSON_AddNumberToObject(f, "executions",
                            (double)h_pg_ll(stack.db,
                                            "SELECT count(DISTINCT execution_id)"
                                            " FROM tickflow.job_execution",
                                            0, NULL));
    cJSON_AddNumberToObject(
        f, "bulk_failed",
        (double)h_pg_ll(stack.db,
                        "SELECT count(DISTINCT execution_id)"
                        " FROM tickflow.job_execution WHERE job_name = '" BULK_JOB
                        "' AND status = 'FAILED'",
                        0, NULL));
    {
        cJSON *runs = cJSON_CreateArray();
        cJSON_AddItemToArray(runs, run_facts(real_id, d[0], "marketsim"));
        cJSON_AddItemToArray(runs, run_facts(rej_id, d[3], "handmade"));
        cJSON_AddItemToObject(f, "runs", runs);
    }
    /* Every day of T0..T3 by what the calendar and the runs above make of it. */
    days = cJSON_CreateObject();
    for (int64_t x = t[0]; x <= t[3]; x++) {
        char s[16];
        day_str(x, s);
        cJSON_AddStringToObject(days, s,
                                !trading_day(x) ? "closed"
                                : x == t[2]     ? "gap"
                                                : "covered");
    }
    cJSON_AddItemToObject(f, "days", days);
    cJSON_AddStringToObject(f, "gap_day", d[2]);
    /* The API's own account of the gaps between T0 and the end of T3. */
    day_str(t[0], from);
    day_str(t[3] + 1, to);
    snprintf(gpath, sizeof(gpath), "/v1/jobs/" JOB "/gaps?from=%s&to=%s", from, to);
    gaps = call_want(H_EXTRACT, "GET", gpath, NULL, 200);
    cJSON_AddItemToObject(f, "gaps", gaps ? gaps : cJSON_CreateNull());
    /*
     * The chart's range holds a day with no gold at each end, so the gold
     * rows in it are the same whether the page reads "to" as inclusive or not.
     */
    day_str(t[0] - 1, from);
    day_str(t[3] + 1, to);
    chart = cJSON_CreateObject();
    cJSON_AddStringToObject(chart, "ticker", "AAPL");
    cJSON_AddStringToObject(chart, "from", from);
    cJSON_AddStringToObject(chart, "to", to);
    cJSON_AddNumberToObject(chart, "daily",
                            (double)h_pg_ll(stack.db,
                                            "SELECT count(*) FROM gold.bars_daily"
                                            " WHERE ticker = 'AAPL' AND source_timespan = '1minute'"
                                            " AND trading_day BETWEEN $1 AND $2",
                                            2, params));
    cJSON_AddNumberToObject(chart, "hourly",
                            (double)h_pg_ll(stack.db,
                                            "SELECT count(*) FROM gold.bars_hourly"
                                            " WHERE ticker = 'AAPL' AND source_timespan = '1minute'"
                                            " AND bucket >= $1::date::timestamp AT TIME ZONE 'UTC'"
                                            " AND bucket < ($2::date + 1)::timestamp"
                                            "  AT TIME ZONE 'UTC'",
                                            2, params));
    cJSON_AddItemToObject(f, "chart", chart);

    text = cJSON_Print(f);
    cJSON_Delete(f);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fp = fopen(tmp, "w");
    ok = fp && text && fputs(text, fp) >= 0;
    if (fp)
        ok = fclose(fp) == 0 && ok;
    cJSON_free(text);
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "stack: could not write %s\n", path);
        return -1;
    }
    return 0;
}

static int setup(const char *facts)
{
    char body[512], bf_id[TF_UUID_LEN + 1], rej_id[TF_UUID_LEN + 1], d0[16], d1[16];
    const char *params[2] = {bf_id, d0};
    char *real_id;
    int64_t t[4];
    cJSON *ans;
    int rc;

    snprintf(body, sizeof(body),
             "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\",\"MSFT\"],"
             "\"interval_seconds\":86400,\"overlap_seconds\":0,\"dq_rules\":["
             "{\"check\":\"min_completeness\",\"value\":0.95,\"severity\":\"warn\"},"
             "{\"check\":\"max_gap_minutes\",\"value\":15,\"severity\":\"warn\"}]}");
    ans = call_want(H_EXTRACT, "PUT", "/v1/jobs/" JOB, body, 201);
    if (!ans)
        return -1;
    cJSON_Delete(ans);
    pick_days(t);
    day_str(t[0], d0);
    day_str(t[1], d1);
    if (run_backfill(d0, d1, bf_id) != 0 || run_handmade(t[3], rej_id) != 0 || add_bulk() != 0)
        return -1;
    real_id = h_pg_value(stack.db,
                         "SELECT execution_id::text FROM tickflow.job_execution"
                         " WHERE backfill_id = $1 AND stage = 'extract'"
                         " AND window_start = $2::date",
                         2, params);
    if (!real_id) {
        fprintf(stderr, "stack: no execution of backfill %s for %s\n", bf_id, d0);
        return -1;
    }
    rc = write_facts(facts, t, real_id, rej_id, bf_id);
    free(real_id);
    return rc;
}

/* Serves "stop extract" until end of input, "quit" or a signal. */
static void serve(void)
{
    char line[128];

    while (!stop_asked && fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "quit") == 0)
            break;
        if (strcmp(line, "stop extract") == 0) {
            extract_stopped = h_stop(&stack.procs[H_EXTRACT]);
            printf("stopped extract %d\n", extract_stopped);
        } else {
            printf("unknown command: %s\n", line);
        }
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    int unclean, ok;

    if (argc != 2) {
        fprintf(stderr, "usage: %s FACTS.json\n", argv[0]);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: the read on stdin returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    ok = h_stack_start(&stack, "browser", API_KEY, SEED, NULL) == 0 && setup(argv[1]) == 0;
    if (ok) {
        printf("ready\n");
        fflush(stdout);
        serve();
    } else {
        printf("failed: the stack could not be set up (see above%s%s)\n",
               stack.dir[0] ? " and the logs in " : "", stack.dir);
        fflush(stdout);
    }
    unclean = h_stack_stop(&stack) + (extract_stopped != 0);
    if (unclean)
        printf("failed: %d service(s) did not stop cleanly\n", unclean);
    return ok && unclean == 0 ? 0 : 1;
}
