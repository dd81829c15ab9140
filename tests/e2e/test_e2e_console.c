/*
 * test_e2e_console.c - the web console and the JSON it reads, on the
 * native services with the real PostgreSQL and Kafka, with the API token
 * on (reads need none). After real runs of demo_us_equities (a whole
 * session, part of one, a one-day backfill) and a hand-made extract whose
 * page transform rejects bars of, every answer is checked against the
 * database:
 *
 *   - /v1/runs: every execution newest first, its three stages' status and
 *     counts, pages by cursor that add up to the whole list, the job and
 *     status filters, 400 for each bad argument;
 *   - /v1/runs/{id}: each stage as that stage's service shows it; 404/400;
 *   - /v1/runs/{id}/rejects: rejected bars by rule with the first three;
 *   - /v1/runs/{id}/quality: the same document as aggregate's own route;
 *   - /v1/jobs/{job}/bars: gold rows hourly and daily, the 5000-bar cap;
 *   - /v1/jobs/{job}/days: covered, partial, gap and closed days;
 *   - GET /v1/backfills?job_name=: the job's backfills with progress;
 *   - /ui/: the page as HTML, every file it names served, nothing from
 *     another host; the new paths in /openapi.json.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "harness.h"
#include "tf/buf.h"
#include "tf/exec.h"
#include "tf/time.h"

#define API_KEY "console-Key-4a19"
#define TOKEN   "console-Token-7c2e0b"
#define AUTH    "Authorization: Bearer " TOKEN
#define SEED    11
#define JOB     "demo_us_equities"

static struct h_stack stack;
static char run_a[TF_UUID_LEN + 1]; /* 2024-03-05, the whole session */
static char run_c[TF_UUID_LEN + 1]; /* 2024-03-08, 14:30 to 16:00 */
static char run_r[TF_UUID_LEN + 1]; /* hand-made 2024-03-04, bars rejected */
static char run_f[TF_UUID_LEN + 1]; /* a hand-made extract that FAILED */
static char backfill[TF_UUID_LEN + 1];

static cJSON *get(const char *path, long *status)
{
    return h_call("GET", stack.procs[H_EXTRACT].port, path, NULL, NULL, status);
}

static long get_status(const char *path)
{
    long status = 0;

    cJSON_Delete(get(path, &status));
    return status;
}

static const char *error_message(const cJSON *ans)
{
    const char *m =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "error"), "message"));

    return m ? m : "";
}

static long long q_ll(const char *sql, const char *p1, const char *p2)
{
    const char *params[2] = {p1, p2};

    return h_pg_ll(stack.db, sql, p2 ? 2 : p1 ? 1 : 0, params);
}

static double q_dbl(const char *sql, const char *p1)
{
    const char *params[1] = {p1};
    char *v = h_pg_value(stack.db, sql, 1, params);
    double d = v ? strtod(v, NULL) : -1;

    free(v);
    return d;
}

/* ---- the runs ---- */

/* POSTs an extract of [ws, we) and waits for aggregate; 0 when every stage succeeded. */
static int real_run(const char *ws, const char *we, char id[TF_UUID_LEN + 1])
{
    char body[300];
    long status = 0;
    cJSON *ans, *rec;
    int ok;

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\",\"wait_seconds\":60}",
             id, ws, we);
    ans = h_call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, AUTH, &status);
    CHECK(status == 200 && h_jstr(ans, "status") && strcmp(h_jstr(ans, "status"), "SUCCESS") == 0,
          "extract of %s: %ld %s", ws, status, h_jstr(ans, "status"));
    cJSON_Delete(ans);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 120);
    ok = rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0;
    CHECK(ok, "aggregate of %s succeeded", ws);
    cJSON_Delete(rec);
    return ok ? 0 : -1;
}

/* A Polygon result item at 2024-03-04 14:30 + minute. */
static int item(char *out, size_t len, int minute, double o, double h, double l, double c, double v)
{
    return snprintf(
        out, len, "%s{\"t\":%lld,\"o\":%g,\"h\":%g,\"l\":%g,\"c\":%g,\"v\":%g,\"vw\":%g,\"n\":3}",
        minute ? "," : "", (1709562600LL + minute * 60LL) * 1000, o, h, l, c, v, (h + l) / 2);
}

/*
 * A hand-made extract of 2024-03-04 whose one AAPL page has 2 good bars, 4
 * with a negative volume and 1 whose high is below its low; transform is
 * asked to run it, aggregate follows by the event.
 */
static int rejecting_run(void)
{
    static const struct h_page pg = {"polygon", NULL, "AAPL", "1minute", "gzip", 1};
    char page[4096], body[200];
    size_t off;
    cJSON *obj, *objects, *ans, *rec;
    char *text;
    long status = 0;
    int ok;

    off = (size_t)snprintf(page, sizeof(page), "{\"ticker\":\"AAPL\",\"results\":[");
    off += (size_t)item(page + off, sizeof(page) - off, 0, 170, 171, 169, 170.5, 100);
    off += (size_t)item(page + off, sizeof(page) - off, 1, 170.5, 172, 170, 171, 200);
    for (int m = 2; m < 6; m++)
        off += (size_t)item(page + off, sizeof(page) - off, m, 171, 172, 170, 171.5, -m);
    off += (size_t)item(page + off, sizeof(page) - off, 6, 171, 169, 172, 171, 50);
    snprintf(page + off, sizeof(page) - off, "]}");
    obj = h_lake_bronze_page(&stack, "handmade/rejects-1.json.gz", page, strlen(page), &pg);
    objects = cJSON_CreateArray();
    cJSON_AddItemToArray(objects, obj);
    text = cJSON_PrintUnformatted(objects);
    tf_uuid_new(run_r);
    ok = obj && text && h_add_finished(stack.db, run_r, "extract", JOB, text) == 0;
    CHECK(ok, "hand-made extract recorded");
    cJSON_free(text);
    cJSON_Delete(objects);
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"wait_seconds\":60}", run_r);
    ans = h_call("POST", stack.procs[H_TRANSFORM].port, "/v1/executions", body, AUTH, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(h_jnum(ans, "records_rejected"), 5);
    cJSON_Delete(ans);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, run_r, 120);
    ok = ok && rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0;
    CHECK(ok, "aggregate of the hand-made run succeeded");
    cJSON_Delete(rec);
    return ok ? 0 : -1;
}

/* A one-day backfill of 2024-03-07, waited for through gold. */
static int backfill_day(void)
{
    char path[96];
    long status = 0;
    cJSON *ans = h_call("POST", stack.procs[H_EXTRACT].port, "/v1/backfills",
                        "{\"job_name\":\"" JOB "\",\"from\":\"2024-03-07\",\"to\":\"2024-03-07\"}",
                        AUTH, &status);
    int done = 0;

    CHECK_EQ_INT(status, 202);
    snprintf(backfill, sizeof(backfill), "%s",
             h_jstr(ans, "backfill_id") ? h_jstr(ans, "backfill_id") : "");
    cJSON_Delete(ans);
    snprintf(path, sizeof(path), "/v1/backfills/%s", backfill);
    for (int i = 0; i < h_timeout(120) * 5 && !done && h_stack_alive(&stack); i++) {
        ans = get(path, &status);
        done = h_jstr(ans, "status") && strcmp(h_jstr(ans, "status"), "RUNNING") != 0;
        CHECK(!done || strcmp(h_jstr(ans, "status"), "SUCCESS") == 0, "backfill ended %s",
              h_jstr(ans, "status"));
        cJSON_Delete(ans);
        if (!done)
            h_sleep_ms(200);
    }
    CHECK(done, "the backfill finished");
    return done ? 0 : -1;
}

static void test_auth(void)
{
    long status = 0;
    cJSON *ans = h_call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", "{}", NULL, &status);

    /* The token is on: a POST without it is refused, reads need none. */
    CHECK_EQ_INT(status, 401);
    cJSON_Delete(ans);
    CHECK_EQ_INT(get_status("/v1/runs"), 200);
    CHECK_EQ_INT(get_status("/ui/"), 200);
}

/* The runs of a page. */
static const cJSON *runs_of(const cJSON *page)
{
    return cJSON_GetObjectItem(page, "runs");
}

/* Appends the ids of a page's runs to ids, comma-separated. */
static void append_ids(const cJSON *page, struct tf_buf *ids)
{
    const cJSON *r;

    cJSON_ArrayForEach(r, runs_of(page))
    {
        CHECK(tf_buf_printf(ids, "%s%s", ids->len ? "," : "", h_jstr(r, "execution_id")) == TF_OK,
              "ids");
    }
}

/* Every run's id, newest first, as the database orders them. */
static void check_order(const struct tf_buf *ids)
{
    char *order = h_pg_value(stack.db,
                             "SELECT string_agg(execution_id::text, ',' ORDER BY created_at DESC,"
                             " window_start DESC, execution_id DESC) FROM tickflow.job_execution"
                             " WHERE stage = 'extract'",
                             0, NULL);

    CHECK_STR(ids->data, order);
    free(order);
}

static const cJSON *find_run(const cJSON *page, const char *id)
{
    const cJSON *r;

    cJSON_ArrayForEach(r, runs_of(page))
    {
        if (h_jstr(r, "execution_id") && strcmp(h_jstr(r, "execution_id"), id) == 0)
            return r;
    }
    return NULL;
}

static void test_runs_list(void)
{
    static const char *const stages[] = {"extract", "transform", "aggregate"};
    long status = 0;
    cJSON *page = get("/v1/runs", &status);
    const cJSON *a, *r;
    struct tf_buf ids;

    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(
        cJSON_GetArraySize(runs_of(page)),
        q_ll("SELECT count(*) FROM tickflow.job_execution WHERE stage = 'extract'", NULL, NULL));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(page, "cursor")), "one page holds them all");
    CHECK_EQ_INT(h_jnum(page, "limit"), 50);
    /* Newest first, as the database orders them. */
    tf_buf_init(&ids, 1 << 20);
    append_ids(page, &ids);
    check_order(&ids);
    tf_buf_cleanup(&ids);

    a = find_run(page, run_a);
    CHECK(a != NULL, "run A is listed");
    CHECK_STR(h_jstr(a, "status"), "SUCCESS");
    CHECK_STR(h_jstr(a, "job_name"), JOB);
    CHECK_STR(h_jstr(a, "window_start"), "2024-03-05T14:30:00Z");
    CHECK_STR(h_jstr(a, "window_end"), "2024-03-05T21:00:00Z");
    for (size_t s = 0; s < TF_ARRAY_LEN(stages); s++) {
        const cJSON *st = cJSON_GetObjectItem(cJSON_GetObjectItem(a, "stages"), stages[s]);
        static const char *const counts[] = {"records_in", "records_out", "records_rejected"};

        CHECK_STR(h_jstr(st, "status"), "SUCCESS");
        CHECK_EQ_INT(h_jnum(st, "attempt"), 1);
        CHECK(h_jstr(st, "started_at") && h_jstr(st, "finished_at"), "%s has its times", stages[s]);
        for (size_t c = 0; c < TF_ARRAY_LEN(counts); c++) {
            char sql[200];
            snprintf(sql, sizeof(sql),
                     "SELECT %s FROM tickflow.job_execution WHERE execution_id = $1 AND stage = $2",
                     counts[c]);
            CHECK_EQ_INT(h_jnum(st, counts[c]), q_ll(sql, run_a, stages[s]));
        }
    }
    CHECK(h_jnum(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "stages"), "transform"),
                 "records_out") == 1170,
          "a session of three tickers is 1170 bars");
    /* The failed extract: FAILED, its later stages null. */
    r = find_run(page, run_f);
    CHECK_STR(h_jstr(r, "status"), "FAILED");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "stages"), "transform")),
          "a stage not created is null");
    CHECK_STR(h_jstr(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "stages"), "extract"), "error"),
              "vendor said no");
    cJSON_Delete(page);
}

static void test_runs_pages(void)
{
    long total = (long)q_ll("SELECT count(*) FROM tickflow.job_execution WHERE stage = 'extract'",
                            NULL, NULL);
    char path[512];
    struct tf_buf ids;
    long status = 0;
    int pages = 0;

    tf_buf_init(&ids, 1 << 20);
    snprintf(path, sizeof(path), "/v1/runs?limit=2");
    for (;;) {
        cJSON *page = get(path, &status);
        const char *next = h_jstr(page, "next");

        CHECK_EQ_INT(status, 200);
        pages++;
        append_ids(page, &ids);
        CHECK(next ? cJSON_GetArraySize(runs_of(page)) == 2 : 1, "a full page before the next");
        if (!next || pages > 20) {
            cJSON_Delete(page);
            break;
        }
        CHECK(strncmp(next, "/v1/runs?limit=2&before=", 24) == 0, "next %s", next);
        snprintf(path, sizeof(path), "%s", next);
        cJSON_Delete(page);
    }
    CHECK_EQ_INT(pages, (total + 1) / 2);
    check_order(&ids);
    tf_buf_cleanup(&ids);
}

static void test_runs_filters(void)
{
    static const char *const bad[] = {
        "/v1/runs?status=BOGUS", "/v1/runs?status=ZOMBIE",      "/v1/runs?limit=0",
        "/v1/runs?limit=201",    "/v1/runs?limit=ten",          "/v1/runs?before=yesterday",
        "/v1/runs?before=1.2.x", "/v1/runs?job_name=Bad-Name!",
    };
    long status = 0;
    cJSON *page;
    const cJSON *r;
    int n = 0;

    page = get("/v1/runs?status=FAILED", &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(cJSON_GetArraySize(runs_of(page)), 1);
    CHECK(find_run(page, run_f) != NULL, "the failed run");
    cJSON_Delete(page);
    page = get("/v1/runs?status=SUCCESS&job_name=" JOB "&limit=200", &status);
    cJSON_ArrayForEach(r, runs_of(page))
    {
        n++;
        CHECK_STR(h_jstr(r, "status"), "SUCCESS");
    }
    CHECK_EQ_INT(n, q_ll("SELECT count(*) FROM tickflow.job_execution WHERE stage = 'aggregate'"
                         " AND status = 'SUCCESS'",
                         NULL, NULL));
    CHECK_EQ_INT(n, 4);
    cJSON_Delete(page);
    CHECK_EQ_INT(get_status("/v1/runs?status=RUNNING"), 200);
    page = get("/v1/runs?job_name=no_such_job", &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(cJSON_GetArraySize(runs_of(page)), 0);
    cJSON_Delete(page);
    for (size_t i = 0; i < TF_ARRAY_LEN(bad); i++) {
        cJSON *ans = get(bad[i], &status);
        CHECK(status == 400 && *error_message(ans), "%s: %ld %s", bad[i], status,
              error_message(ans));
        cJSON_Delete(ans);
    }
}

static void test_run(void)
{
    static const char *const stages[] = {"extract", "transform", "aggregate"};
    const int ports[] = {stack.procs[H_EXTRACT].port, stack.procs[H_TRANSFORM].port,
                         stack.procs[H_AGGREGATE].port};
    char path[128];
    long status = 0;
    cJSON *run;
    const cJSON *stg;

    snprintf(path, sizeof(path), "/v1/runs/%s", run_a);
    run = get(path, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(run, "status"), "SUCCESS");
    CHECK_STR(h_jstr(run, "execution_id"), run_a);
    stg = cJSON_GetObjectItem(run, "stages");
    for (size_t s = 0; s < TF_ARRAY_LEN(stages); s++) {
        cJSON *own = h_get_record(ports[s], run_a);
        /* The very record the stage's own service shows. */
        CHECK(own && cJSON_Compare(own, cJSON_GetObjectItem(stg, stages[s]), 1),
              "%s as GET /v1/executions/{id} shows it", stages[s]);
        cJSON_Delete(own);
    }
    snprintf(path, sizeof(path), "/v1/executions/%s/objects", run_a);
    CHECK_STR(h_jstr(cJSON_GetObjectItem(run, "links"), "objects"), path);
    cJSON_Delete(run);

    /* The bronze objects, a page at a time, are all the record's. */
    {
        cJSON *all = h_get_objects(stack.procs[H_EXTRACT].port, run_a, 2);
        CHECK_EQ_INT(cJSON_GetArraySize(all),
                     q_ll("SELECT jsonb_array_length(objects) FROM tickflow.job_execution"
                          " WHERE execution_id = $1 AND stage = 'extract'",
                          run_a, NULL));
        cJSON_Delete(all);
    }
    /* A failed extract: transform and aggregate null. */
    snprintf(path, sizeof(path), "/v1/runs/%s", run_f);
    run = get(path, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(run, "status"), "FAILED");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(run, "stages"), "aggregate")),
          "no aggregate record");
    cJSON_Delete(run);
    CHECK_EQ_INT(get_status("/v1/runs/0b7e4a52-3c1d-4f8e-9a7b-2d6c8e1f0a93"), 404);
    CHECK_EQ_INT(get_status("/v1/runs/not-a-run"), 400);
    CHECK_EQ_INT(get_status("/v1/runs/0b7e4a52-3c1d-4f8e-9a7b-2d6c8e1f0a93/rejects"), 404);
    CHECK_EQ_INT(get_status("/v1/runs/0b7e4a52-3c1d-4f8e-9a7b-2d6c8e1f0a93/quality"), 404);
    CHECK_EQ_INT(get_status("/v1/runs/nope/quality"), 400);
    {
        cJSON *ans = h_call("POST", stack.procs[H_EXTRACT].port, "/v1/runs", "{}", AUTH, &status);
        CHECK_EQ_INT(status, 405);
        cJSON_Delete(ans);
    }
}

static void test_rejects(void)
{
    char path[128];
    long status = 0;
    cJSON *ans;
    const cJSON *rules, *first, *s;
    int item_no = 2;

    snprintf(path, sizeof(path), "/v1/runs/%s/rejects", run_r);
    ans = get(path, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(
        h_jnum(ans, "rejected"),
        q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1", run_r, NULL));
    CHECK_EQ_INT(h_jnum(ans, "rejected"), 5);
    rules = cJSON_GetObjectItem(ans, "rules");
    CHECK_EQ_INT(cJSON_GetArraySize(rules), 2);
    first = cJSON_GetArrayItem(rules, 0);
    CHECK_STR(h_jstr(first, "rule"), "volume_negative");
    CHECK_EQ_INT(h_jnum(first, "count"),
                 q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND rule = $2",
                      run_r, "volume_negative"));
    CHECK_EQ_INT(h_jnum(first, "count"), 4);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(first, "samples")), 3);
    /* The first three in page order, with what the quarantine keeps. */
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(first, "samples"))
    {
        CHECK_EQ_INT(h_jnum(s, "item"), item_no);
        CHECK_EQ_INT(h_jnum(cJSON_GetObjectItem(s, "raw"), "v"), -item_no);
        CHECK_STR(h_jstr(s, "ticker"), "AAPL");
        item_no++;
    }
    CHECK_STR(h_jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(first, "samples"), 0), "ts"),
              "2024-03-04T14:32:00Z");
    CHECK_STR(h_jstr(cJSON_GetArrayItem(rules, 1), "rule"), "high_below_low");
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(rules, 1), "count"), 1);
    cJSON_Delete(ans);
    /* A run with none. */
    snprintf(path, sizeof(path), "/v1/runs/%s/rejects", run_a);
    ans = get(path, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(h_jnum(ans, "rejected"), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "rules")), 0);
    cJSON_Delete(ans);
}

static void test_quality(void)
{
    char path[128];
    long status = 0, own_status = 0;
    cJSON *ans, *own;
    const cJSON *c;
    int n = 0;

    snprintf(path, sizeof(path), "/v1/runs/%s/quality", run_a);
    ans = get(path, &status);
    CHECK_EQ_INT(status, 200);
    snprintf(path, sizeof(path), "/v1/executions/%s/quality", run_a);
    own = h_call("GET", stack.procs[H_AGGREGATE].port, path, NULL, NULL, &own_status);
    CHECK_EQ_INT(own_status, 200);
    CHECK(own && cJSON_Compare(ans, own, 1), "the console shows what aggregate shows");
    cJSON_Delete(own);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "completeness")), 3);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ans, "completeness"))
    {
        CHECK_EQ_INT(h_jnum(c, "expected"), 390);
        CHECK_EQ_INT(h_jnum(c, "actual"),
                     q_ll("SELECT actual FROM gold.completeness WHERE execution_id = $1"
                          " AND ticker = $2",
                          run_a, h_jstr(c, "ticker")));
    }
    /* Two rules for three tickers; the impossible range fails (warn), with no alert channel. */
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "checks")), 6);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ans, "checks"))
    {
        int avg = strcmp(h_jstr(c, "check"), "avg_close_between") == 0;
        CHECK(cJSON_IsBool(cJSON_GetObjectItem(c, "passed")) &&
                  cJSON_IsTrue(cJSON_GetObjectItem(c, "passed")) == !avg,
              "%s %s", h_jstr(c, "check"), h_jstr(c, "ticker"));
        CHECK_STR(h_jstr(cJSON_GetObjectItem(c, "alert"), "state"), "none");
        n += avg;
    }
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(n, q_ll("SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND NOT passed",
                         run_a, NULL));
    cJSON_Delete(ans);
    /* A run aggregate has not reached: 200 with empty lists. */
    snprintf(path, sizeof(path), "/v1/runs/%s/quality", run_f);
    ans = get(path, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "completeness")), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "checks")), 0);
    cJSON_Delete(ans);
    /* aggregate's own route still answers 404 for it. */
    snprintf(path, sizeof(path), "/v1/executions/%s/quality", run_f);
    own = h_call("GET", stack.procs[H_AGGREGATE].port, path, NULL, NULL, &own_status);
    CHECK_EQ_INT(own_status, 404);
    cJSON_Delete(own);
}

static void test_bars(void)
{
    static const char *const bad[] = {
        "ticker=AAPL&interval=minute&from=2024-03-05&to=2024-03-06",
        "ticker=AAPL&interval=hour&from=2024-13-01&to=2024-03-06",
        "ticker=AAPL&interval=hour&from=2024-03-06&to=2024-03-06",
        "ticker=AAPL&interval=hour&from=2024-03-06",
        "ticker=AAPL&interval=hour&from=2024-01-01&to=2024-12-31",
        "ticker=TSLA&interval=hour&from=2024-03-05&to=2024-03-06",
        "interval=hour&from=2024-03-05&to=2024-03-06",
    };
    long status = 0;
    cJSON *ans;
    const cJSON *bars;
    char path[256];

    ans = get("/v1/jobs/" JOB "/bars?ticker=AAPL&interval=hour&from=2024-03-05&to=2024-03-06",
              &status);
    CHECK_EQ_INT(status, 200);
    bars = cJSON_GetObjectItem(ans, "bars");
    CHECK_EQ_INT(cJSON_GetArraySize(bars),
                 q_ll("SELECT count(*) FROM gold.bars_hourly WHERE ticker = 'AAPL'"
                      " AND source_timespan = '1minute' AND bucket >= '2024-03-05'"
                      " AND bucket < '2024-03-06'",
                      NULL, NULL));
    CHECK_EQ_INT(cJSON_GetArraySize(bars), 7);
    CHECK_EQ_INT(h_jnum(ans, "count"), 7);
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(bars, 0), "time"), 1709647200); /* 14:00Z */
    CHECK_EQ_DBL(h_jnum(cJSON_GetArrayItem(bars, 0), "open"),
                 q_dbl("SELECT open FROM gold.bars_hourly WHERE ticker = 'AAPL'"
                       " AND bucket = $1::timestamptz",
                       "2024-03-05T14:00:00Z"));
    CHECK_EQ_DBL(h_jnum(cJSON_GetArrayItem(bars, 6), "volume"),
                 q_dbl("SELECT volume FROM gold.bars_hourly WHERE ticker = 'AAPL'"
                       " AND bucket = $1::timestamptz",
                       "2024-03-05T20:00:00Z"));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(bars, 0), "ma20")),
          "ma20 is null before 20 hours");
    cJSON_Delete(ans);

    ans = get("/v1/jobs/" JOB "/bars?ticker=MSFT&interval=day&from=2024-03-01&to=2024-04-01",
              &status);
    CHECK_EQ_INT(status, 200);
    bars = cJSON_GetObjectItem(ans, "bars");
    CHECK_EQ_INT(cJSON_GetArraySize(bars),
                 q_ll("SELECT count(*) FROM gold.bars_daily WHERE ticker = 'MSFT'"
                      " AND trading_day >= '2024-03-01' AND trading_day < '2024-04-01'",
                      NULL, NULL));
    CHECK_EQ_INT(cJSON_GetArraySize(bars), 3); /* 03-05, 03-07, 03-08 (the hand-made run is AAPL) */
    CHECK_STR(h_jstr(cJSON_GetArrayItem(bars, 0), "time"), "2024-03-05");
    CHECK_EQ_DBL(h_jnum(cJSON_GetArrayItem(bars, 0), "close"),
                 q_dbl("SELECT close FROM gold.bars_daily WHERE ticker = 'MSFT'"
                       " AND trading_day = $1::date",
                       "2024-03-05"));
    cJSON_Delete(ans);
    /* A year of days is fine, of hours too many. */
    CHECK_EQ_INT(get_status("/v1/jobs/" JOB "/bars?ticker=AAPL&interval=day&from=2024-01-01"
                            "&to=2024-12-31"),
                 200);
    for (size_t i = 0; i < TF_ARRAY_LEN(bad); i++) {
        snprintf(path, sizeof(path), "/v1/jobs/" JOB "/bars?%s", bad[i]);
        ans = get(path, &status);
        CHECK(status == 400 && *error_message(ans), "%s: %ld %s", bad[i], status,
              error_message(ans));
        if (i == 4)
            CHECK(strstr(error_message(ans), "at most 5000") != NULL, "%s", error_message(ans));
        cJSON_Delete(ans);
    }
    CHECK_EQ_INT(get_status("/v1/jobs/no_such_job/bars?ticker=AAPL&from=2024-03-05&to=2024-03-06"),
                 404);
    CHECK_EQ_INT(get_status("/v1/jobs/Bad-Job/bars?ticker=AAPL&from=2024-03-05&to=2024-03-06"),
                 400);
}

static void test_days(void)
{
    static const char *const want[][2] = {
        {"2024-03-04", "covered"}, {"2024-03-05", "covered"}, {"2024-03-06", "gap"},
        {"2024-03-07", "covered"}, {"2024-03-08", "partial"}, {"2024-03-09", "closed"},
        {"2024-03-10", "closed"},
    };
    static const char *const bad[] = {
        "from=2024-02-30&to=2024-03-03",
        "from=2024-03-01",
        "from=2024-03-05&to=2024-03-01",
        "from=2023-01-01&to=2024-03-01",
        "from=2024-03-01&to=2024-03-05&stage=silver",
        "from=2024-03-01T10:00&to=2024-03-05",
    };
    long status = 0;
    cJSON *ans;
    const cJSON *days, *counts;
    char path[200];

    ans = get("/v1/jobs/" JOB "/days?from=2024-03-04&to=2024-03-10", &status);
    CHECK_EQ_INT(status, 200);
    days = cJSON_GetObjectItem(ans, "days");
    CHECK_EQ_INT(cJSON_GetArraySize(days), 7);
    for (int i = 0; i < 7; i++) {
        const cJSON *d = cJSON_GetArrayItem(days, i);
        CHECK_STR(h_jstr(d, "day"), want[i][0]);
        CHECK(h_jstr(d, "state") && strcmp(h_jstr(d, "state"), want[i][1]) == 0, "%s is %s, not %s",
              want[i][0], h_jstr(d, "state"), want[i][1]);
    }
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(days, 1), "open_minutes"), 390);
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(days, 1), "covered_minutes"), 390);
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(days, 4), "covered_minutes"), 90);
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(days, 5), "open_minutes"), 0);
    counts = cJSON_GetObjectItem(ans, "counts");
    CHECK_EQ_INT(h_jnum(counts, "covered"), 3);
    CHECK_EQ_INT(h_jnum(counts, "partial"), 1);
    CHECK_EQ_INT(h_jnum(counts, "gap"), 1);
    CHECK_EQ_INT(h_jnum(counts, "closed"), 2);
    CHECK_STR(h_jstr(ans, "stage"), "aggregate");
    cJSON_Delete(ans);
    /* Through extract, the failed extract of 2024-03-06 still leaves it a gap. */
    ans = get("/v1/jobs/" JOB "/days?from=2024-03-06&to=2024-03-06&stage=extract", &status);
    CHECK_STR(h_jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(ans, "days"), 0), "state"), "gap");
    cJSON_Delete(ans);
    /* Without a range: the months of the job's executions. */
    ans = get("/v1/jobs/" JOB "/days", &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(ans, "from"), "2024-03-01");
    CHECK_STR(h_jstr(ans, "to"), "2024-03-31");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "days")), 31);
    cJSON_Delete(ans);
    for (size_t i = 0; i < TF_ARRAY_LEN(bad); i++) {
        snprintf(path, sizeof(path), "/v1/jobs/" JOB "/days?%s", bad[i]);
        ans = get(path, &status);
        CHECK(status == 400 && *error_message(ans), "%s: %ld %s", bad[i], status,
              error_message(ans));
        cJSON_Delete(ans);
    }
    CHECK_EQ_INT(get_status("/v1/jobs/no_such_job/days"), 404);
}

static void test_backfills(void)
{
    long status = 0;
    cJSON *ans = get("/v1/backfills?job_name=" JOB, &status);
    const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItem(ans, "backfills"), 0);

    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "backfills")), 1);
    CHECK_STR(h_jstr(b, "backfill_id"), backfill);
    CHECK_STR(h_jstr(b, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(b, "days"), 1);
    CHECK_EQ_INT(h_jnum(b, "completed"), 1);
    CHECK(cJSON_GetObjectItem(b, "executions") == NULL, "the list leaves the executions out");
    cJSON_Delete(ans);
    CHECK_EQ_INT(get_status("/v1/backfills"), 400);
    CHECK_EQ_INT(get_status("/v1/backfills?job_name=" JOB "&limit=0"), 400);
    CHECK_EQ_INT(get_status("/v1/backfills?job_name=no_such_job"), 404);
}

/* ---- the page ---- */

struct raw {
    long status;
    char ctype[128];
    char csp[256];
    struct tf_buf body;
};

static size_t raw_body(char *p, size_t size, size_t n, void *ud)
{
    struct raw *r = ud;

    return tf_buf_append(&r->body, p, size * n) == TF_OK ? size * n : 0;
}

static size_t raw_header(char *p, size_t size, size_t n, void *ud)
{
    struct raw *r = ud;
    size_t len = size * n;

    if (len > 25 && strncasecmp(p, "Content-Security-Policy:", 24) == 0)
        snprintf(r->csp, sizeof(r->csp), "%.*s", (int)(len - 25), p + 25);
    return len;
}

/* GETs path from extract with its headers (r->body: tf_buf_cleanup). */
static void raw_get(const char *path, struct raw *r)
{
    CURL *curl = curl_easy_init();
    char url[512];
    const char *ct = NULL;

    memset(r, 0, sizeof(*r));
    tf_buf_init(&r->body, 8u << 20);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", stack.procs[H_EXTRACT].port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, raw_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, raw_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
    }
    if (tf_buf_puts(&r->body, "") != TF_OK || !r->body.data)
        r->status = 0;
    curl_easy_cleanup(curl);
}

/* 1 when text names no other host: no "http://" or "https://" at all. */
static int no_url(const char *text)
{
    return !strstr(text, "http://") && !strstr(text, "https://");
}

/*
 * The library's own URLs are not requests: its licence header, the SVG
 * namespace and the TradingView attribution link (an <a href>).
 */
static int vendor_urls_known(const char *text)
{
    static const char *const allowed[] = {
        "http://www.w3.org/2000/svg",
        "https://www.apache.org/licenses/LICENSE-2.0",
        "https://www.tradingview.com/?utm_medium=lwc-link",
    };
    int n = 0;

    for (const char *p = strstr(text, "://"); p; p = strstr(p + 3, "://")) {
        int ok = 0;
        for (size_t i = 0; i < TF_ARRAY_LEN(allowed) && !ok; i++) {
            size_t pre = (size_t)(strchr(allowed[i], ':') - allowed[i]);
            ok = p - text >= (long)pre && strncmp(p - pre, allowed[i], strlen(allowed[i])) == 0;
        }
        if (!ok && ((p - text >= 4 && strncmp(p - 4, "http", 4) == 0) ||
                    (p - text >= 5 && strncmp(p - 5, "https", 5) == 0))) {
            fprintf(stderr, "unexpected URL in the chart library: %.60s\n", p - 5);
            return 0;
        }
        n++;
    }
    return n > 0;
}

/* Every path a quoted attribute or string names that starts with prefix, served 200. */
static int check_refs(const char *text, const char *attr, int *count)
{
    size_t alen = strlen(attr);
    int ok = 1;

    for (const char *p = strstr(text, attr); p; p = strstr(p + alen, attr)) {
        char ref[256];
        size_t n = strcspn(p + alen, "\"'");
        struct raw r;

        snprintf(ref, sizeof(ref), "%.*s", (int)n, p + alen);
        if (ref[0] == '#')
            continue;
        if (ref[0] != '/') {
            CHECK(0, "%s names %s, not a path of this server", attr, ref);
            ok = 0;
            continue;
        }
        raw_get(ref, &r);
        CHECK(r.status == 200 && r.body.len > 0, "%s%s: %ld", attr, ref, r.status);
        if (n > 3 && strcmp(ref + n - 3, ".js") == 0)
            CHECK(strncmp(r.ctype, "text/javascript", 15) == 0, "%s is %s", ref, r.ctype);
        if (n > 4 && strcmp(ref + n - 4, ".css") == 0)
            CHECK(strncmp(r.ctype, "text/css", 8) == 0, "%s is %s", ref, r.ctype);
        ok = ok && r.status == 200;
        (*count)++;
        tf_buf_cleanup(&r.body);
    }
    return ok;
}

static void test_page(void)
{
    static const char *const own[] = {"/ui/", "/ui/app.js", "/ui/app.css"};
    struct raw page, r;
    int refs = 0;

    raw_get("/ui/", &page);
    CHECK_EQ_INT(page.status, 200);
    CHECK_STR(page.ctype, "text/html; charset=utf-8");
    CHECK(strstr(page.body.data, "<!doctype html>") != NULL, "an HTML page");
    CHECK(strstr(page.csp, "default-src 'self'") != NULL, "CSP keeps it to this server: %s",
          page.csp);
    CHECK(check_refs(page.body.data, "src=\"", &refs), "scripts served");
    CHECK(check_refs(page.body.data, "href=\"", &refs), "links and styles served");
    CHECK(refs >= 4, "%d files named by the page", refs);
    /* The chart library the script loads when a job page opens. */
    raw_get("/ui/app.js", &r);
    CHECK(strstr(r.body.data, "'/ui/vendor/lightweight-charts.js'") != NULL,
          "the script names the library");
    tf_buf_cleanup(&r.body);
    raw_get("/ui/vendor/lightweight-charts.js", &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body.len > 100000 && strstr(r.body.data, "Lightweight Charts") != NULL,
          "the vendored library (%zu bytes)", r.body.len);
    CHECK(vendor_urls_known(r.body.data), "the library's URLs are its licence and links only");
    tf_buf_cleanup(&r.body);
    raw_get("/ui/vendor/LICENSE", &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body.data, "Apache License") != NULL, "the library's licence");
    tf_buf_cleanup(&r.body);
    for (size_t i = 0; i < TF_ARRAY_LEN(own); i++) {
        raw_get(own[i], &r);
        CHECK(r.status == 200 && no_url(r.body.data), "%s asks no other host", own[i]);
        tf_buf_cleanup(&r.body);
    }
    raw_get("/ui", &r);
    CHECK(r.status == 200 && r.body.len == page.body.len, "/ui is the page too");
    tf_buf_cleanup(&r.body);
    raw_get("/ui/no-such-file.js", &r);
    CHECK_EQ_INT(r.status, 404);
    tf_buf_cleanup(&r.body);
    tf_buf_cleanup(&page.body);
}

static void test_openapi(void)
{
    static const char *const paths[] = {
        "/ui/",
        "/ui/{file}",
        "/v1/runs",
        "/v1/runs/{execution_id}",
        "/v1/runs/{execution_id}/rejects",
        "/v1/runs/{execution_id}/quality",
        "/v1/jobs/{job_name}/bars",
        "/v1/jobs/{job_name}/days",
    };
    long status = 0;
    cJSON *doc = get("/openapi.json", &status);
    const cJSON *p = cJSON_GetObjectItem(doc, "paths");

    CHECK_EQ_INT(status, 200);
    for (size_t i = 0; i < TF_ARRAY_LEN(paths); i++)
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(p, paths[i]), "get") != NULL, "%s", paths[i]);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "/v1/backfills"), "get") &&
              cJSON_GetObjectItem(cJSON_GetObjectItem(p, "/v1/backfills"), "post"),
          "GET and POST /v1/backfills");
    cJSON_Delete(doc);
}

static int setup(void)
{
    static const char *const env[] = {"TICKFLOW_API_TOKEN=" TOKEN, NULL};
    const char *params[1];
    long status = 0;
    cJSON *ans;

    if (h_stack_start(&stack, "console", API_KEY, SEED, env) != 0)
        return -1;
    /* Two rules: one that holds, one no close can meet (a warning, no channel). */
    ans = h_call("PUT", stack.procs[H_EXTRACT].port, "/v1/jobs/" JOB,
                 "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\",\"MSFT\",\"AMZN\"],"
                 "\"interval_seconds\":86400,\"dq_rules\":["
                 "{\"check\":\"min_completeness\",\"value\":0.5},"
                 "{\"check\":\"avg_close_between\",\"min\":0,\"max\":1}]}",
                 AUTH, &status);
    CHECK_EQ_INT(status, 200);
    cJSON_Delete(ans);
    if (real_run("2024-03-05T14:30:00Z", "2024-03-05T21:00:00Z", run_a) != 0 ||
        real_run("2024-03-08T14:30:00Z", "2024-03-08T16:00:00Z", run_c) != 0 ||
        backfill_day() != 0 || rejecting_run() != 0)
        return -1;
    /* An extract of 2024-03-06 that failed, made last. */
    tf_uuid_new(run_f);
    params[0] = run_f;
    return h_sql(stack.db,
                 "INSERT INTO tickflow.job_execution (execution_id, stage, job_name, status,"
                 " attempt, window_start, window_end, tickers, error, started_at, finished_at,"
                 " event_published_at) VALUES ($1, 'extract', '" JOB "', 'FAILED', 3,"
                 " '2024-03-06T14:30:00Z', '2024-03-06T21:00:00Z', '{AAPL}', 'vendor said no',"
                 " now(), now(), now())",
                 1, params);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (setup() == 0) {
        test_auth();
        test_runs_list();
        test_runs_pages();
        test_runs_filters();
        test_run();
        test_rejects();
        test_quality();
        test_bars();
        test_days();
        test_backfills();
        test_page();
        test_openapi();
    } else {
        CHECK(0, "the stack and its runs");
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    curl_global_cleanup();
    return check_summary();
}
