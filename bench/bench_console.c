/*
 * bench_console.c - the console's runs page against its 300 ms budget,
 * with 10,000 executions (x 3 stages) in the database.
 *
 * The executions are inserted finished (a few failed, a few running, one
 * job in ten another job's), then each request the runs page makes is
 * timed from this machine, 50 times in turn: the page (/ui/), its script
 * and style, GET /v1/jobs and GET /v1/runs (the newest 50). Their medians
 * add up to the server's share of rendering the page. Also timed: a
 * job's runs, each status filter (PENDING, which no index holds, reads
 * every run), 200 runs, and the 100th page by cursor. Ends with
 *   bench console: runs_ms=<median> runs_p99_ms=<n> page_ms=<sum> ratio=<page_ms / 300>
 * and exits 1 when an answer was not 200 or was not the page it should be
 * (a figure over its budget is printed as such, not failed: machines differ).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define API_KEY   "bench-key"
#define JOB       "demo_us_equities"
#define OTHER     "bench_other"
#define RUNS      10000
#define STR_(x)   #x
#define STR(x)    STR_(x)
#define ROUNDS    50
#define BUDGET_MS 300.0

static struct h_stack stack;

/* 10,000 executions, one a minute back from now, each with its three stages. */
static int fill(void)
{
    static const char sql[] =
        "WITH e AS (SELECT g, gen_random_uuid() AS id,"
        "  CASE WHEN g % 10 = 0 THEN '" OTHER "' ELSE '" JOB "' END AS job,"
        "  now() - g * interval '1 minute' AS created,"
        "  timestamptz '2020-01-01 14:30Z' + g * interval '1 day' AS ws"
        "  FROM generate_series(1, " STR(
            RUNS) ") AS g)"
                  " INSERT INTO tickflow.job_execution (execution_id, stage, job_name, status, "
                  "attempt,"
                  "  window_start, window_end, tickers, records_in, records_out, records_rejected, "
                  "error,"
                  "  worker_id, started_at, finished_at, created_at, updated_at, "
                  "event_published_at)"
                  " SELECT e.id, s.stage, e.job,"
                  "  CASE WHEN e.g % 97 = 0 AND s.n = 2 THEN 'FAILED'"
                  "   WHEN e.g < 4 AND s.n = 3 THEN 'RUNNING' ELSE 'SUCCESS' END,"
                  "  1, e.ws, e.ws + interval '390 minutes', '{AAPL,MSFT,AMZN}',"
                  "  1170, 1170 - e.g % 3, e.g % 3,"
                  "  CASE WHEN e.g % 97 = 0 AND s.n = 2 THEN 'cannot parse page 3' END, 'bench',"
                  "  e.created + s.n * interval '2 seconds', CASE WHEN NOT (e.g < 4 AND s.n = 3)"
                  "  THEN e.created + s.n * interval '2 seconds' + interval '1.5 seconds' END,"
                  "  e.created + (s.n - 1) * interval '2 seconds', now(), now()"
                  " FROM e CROSS JOIN (VALUES (1, 'extract'), (2, 'transform'), (3, 'aggregate'))"
                  "  AS s (n, stage)";

    if (h_add_job_tickers(stack.db, OTHER, "B", 3) != 0 || h_sql(stack.db, sql, 0, NULL) != 0 ||
        h_sql(stack.db, "ANALYZE tickflow.job_execution", 0, NULL) != 0)
        return -1;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/*
 * Times GET path ROUNDS times; *median and *p99 in ms. want (may be NULL)
 * must be in every answer. Returns 0 when every answer was a 200.
 */
static int time_get(const char *path, const char *want, double *median, double *p99)
{
    double ms[ROUNDS];
    int bad = 0;

    for (int i = 0; i < ROUNDS; i++) {
        struct h_resp r;
        double t0 = h_now_s();
        int rc = h_http("GET", stack.procs[H_EXTRACT].port, path, NULL, NULL, &r);

        ms[i] = (h_now_s() - t0) * 1000;
        if (rc != 0 || r.status != 200 || (want && !strstr(r.body, want))) {
            if (!bad++)
                fprintf(stderr, "GET %s: %ld %.200s\n", path, r.status, r.body ? r.body : "");
        }
        h_resp_free(&r);
    }
    qsort(ms, ROUNDS, sizeof(ms[0]), cmp_double);
    *median = ms[ROUNDS / 2];
    *p99 = ms[ROUNDS - 1 - ROUNDS / 100];
    printf("  GET %-60s median %7.2f ms  p99 %7.2f ms\n", path, *median, *p99);
    return bad ? -1 : 0;
}

/* The cursor of the 100th page of 50 runs (written to out). */
static int deep_cursor(char *out, size_t len)
{
    char path[256] = "/v1/runs?limit=50";

    for (int i = 0; i < 99; i++) {
        long status = 0;
        cJSON *page = h_call("GET", stack.procs[H_EXTRACT].port, path, NULL, NULL, &status);
        const char *next = h_jstr(page, "next");

        if (status != 200 || !next) {
            cJSON_Delete(page);
            return -1;
        }
        snprintf(path, sizeof(path), "%s", next);
        cJSON_Delete(page);
    }
    snprintf(out, len, "%s", path);
    return 0;
}

int main(void)
{
    static const char *const page[][2] = {
        {"/ui/", "<!doctype html>"},      {"/ui/app.js", "renderRuns"},
        {"/ui/app.css", "#runs-table"},   {"/v1/jobs", "\"jobs\""},
        {"/v1/runs", "\"execution_id\""},
    };
    double med, p99, runs_med = 0, runs_p99 = 0, page_ms = 0;
    char deep[256];
    int failed = 0;
    long long n;

    if (h_stack_start(&stack, "benchconsole", API_KEY, 1, NULL) != 0) {
        fprintf(stderr, "the stack did not start (see %s)\n", stack.dir);
        h_stack_stop(&stack);
        return 1;
    }
    if (fill() != 0) {
        fprintf(stderr, "cannot insert the executions\n");
        h_stack_stop(&stack);
        return 1;
    }
    n = h_pg_ll(stack.db, "SELECT count(DISTINCT execution_id) FROM tickflow.job_execution", 0,
                NULL);
    printf("bench console: %lld executions x 3 stages; each GET %d times\n", n, ROUNDS);
    printf("the runs page:\n");
    for (size_t i = 0; i < sizeof(page) / sizeof(page[0]); i++) {
        failed |= time_get(page[i][0], page[i][1], &med, &p99);
        page_ms += med;
        if (strcmp(page[i][0], "/v1/runs") == 0) {
            runs_med = med;
            runs_p99 = p99;
        }
    }
    printf("other lists:\n");
    failed |= time_get("/v1/runs?job_name=" OTHER, "\"" OTHER "\"", &med, &p99);
    failed |= time_get("/v1/runs?status=SUCCESS", "\"SUCCESS\"", &med, &p99);
    failed |= time_get("/v1/runs?status=FAILED", "\"FAILED\"", &med, &p99);
    failed |= time_get("/v1/runs?status=RUNNING", "\"RUNNING\"", &med, &p99);
    failed |= time_get("/v1/runs?status=PENDING", "\"runs\"", &med, &p99);
    failed |= time_get("/v1/runs?limit=200", "\"execution_id\"", &med, &p99);
    if (deep_cursor(deep, sizeof(deep)) == 0)
        failed |= time_get(deep, "\"execution_id\"", &med, &p99);
    else
        failed = 1;
    printf("bench console: runs_ms=%.2f runs_p99_ms=%.2f page_ms=%.2f ratio=%.3f"
           " (the server's share of the runs page against %.0f ms; %s)\n",
           runs_med, runs_p99, page_ms, page_ms / BUDGET_MS, BUDGET_MS,
           page_ms <= BUDGET_MS ? "within" : "OVER");
    if (h_stack_stop(&stack) != 0)
        failed = 1;
    return failed ? 1 : 0;
}
