/*
 * test_e2e_jobs.c - managing jobs and running backfills over HTTP, on the
 * native services with the real PostgreSQL and Kafka:
 *
 *   - PUT/GET /v1/jobs/{job}: every kind of bad configuration gets a 4xx
 *     with a clear message and changes nothing; a good one is created, then
 *     replaced.
 *   - POST /v1/backfills: 7 days make 7 executions, never more than the
 *     asked concurrency at once, all completed through gold; the gaps query
 *     then finds exactly the windows deliberately left out.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/lake.h"

#define API_KEY "jobs-Key-0c8e21"
#define SEED    5
#define JOB     "e2e_jobs"

static struct h_stack stack;

static long long jobs_rows(void)
{
    return h_pg_ll(stack.db, "SELECT count(*) FROM tickflow.job_config", 0, NULL);
}

static long long exec_rows(void)
{
    return h_pg_ll(stack.db, "SELECT count(*) FROM tickflow.job_execution", 0, NULL);
}

/* Sends a request to extract; returns the parsed answer (caller deletes). */
static cJSON *call(const char *method, const char *path, const char *body, long *status)
{
    return h_call(method, stack.procs[H_EXTRACT].port, path, body, "X-Tickflow-Actor: e2e", status);
}

static const char *error_message(const cJSON *ans)
{
    const char *m =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "error"), "message"));

    return m ? m : "";
}

static void test_bad_jobs(void)
{
    static const struct {
        const char *path;
        const char *body;
        long status;
        const char *says;
    } cases[] = {
        {"/v1/jobs/" JOB, "{\"provider\":\"yahoo\",\"tickers\":[\"AAPL\"]}", 400, "provider"},
        {"/v1/jobs/" JOB, "{\"provider\":\"polygon\",\"tickers\":[\"aapl\"]}", 400, "upper-case"},
        {"/v1/jobs/" JOB, "{\"provider\":\"polygon\",\"tickers\":[]}", 400, "tickers"},
        {"/v1/jobs/" JOB, "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\",\"AAPL\"]}", 400,
         "twice"},
        {"/v1/jobs/" JOB, "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"],\"tickerz\":1}", 400,
         "unknown field"},
        {"/v1/jobs/" JOB,
         "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"],\"interval_seconds\":600,"
         "\"overlap_seconds\":600}",
         400, "overlap"},
        {"/v1/jobs/" JOB,
         "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"],\"timespan\":\"day\","
         "\"interval_seconds\":3600}",
         400, "shorter than one bar"},
        {"/v1/jobs/" JOB, "{\"provider\":\"twelvedata\",\"tickers\":[\"AAPL\"],\"multiplier\":7}",
         400, "Twelve Data serves"},
        {"/v1/jobs/" JOB, "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"],\"page_limit\":0}", 400,
         "page_limit"},
        {"/v1/jobs/" JOB, "{\"provider\":\"polygon\",\"tickers\":\"AAPL\"}", 400, "tickers"},
        {"/v1/jobs/" JOB, "not json", 400, "JSON"},
        {"/v1/jobs/Bad-Name", "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"]}", 400, "job name"},
        {"/v1/jobs/..", "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"]}", 400, "job name"},
        {"/v1/jobs/a;DROP", "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"]}", 400, "job name"},
        {"/v1/jobs/../../etc", "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"]}", 404, ""},
    };
    long long before = jobs_rows();
    long status;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *ans = call("PUT", cases[i].path, cases[i].body, &status);
        CHECK(status == cases[i].status && strstr(error_message(ans), cases[i].says),
              "case %zu: %ld \"%s\", want %ld mentioning \"%s\"", i, status, error_message(ans),
              cases[i].status, cases[i].says);
        cJSON_Delete(ans);
    }
    CHECK_EQ_INT(jobs_rows(), before);
    cJSON_Delete(call("GET", "/v1/jobs/" JOB, NULL, &status));
    CHECK_EQ_INT(status, 404);
    cJSON_Delete(call("DELETE", "/v1/jobs/" JOB, NULL, &status));
    CHECK_EQ_INT(status, 405);
}

static void test_good_job(void)
{
    long status;
    cJSON *ans;
    int listed = 0;
    const cJSON *it;

    ans = call("PUT", "/v1/jobs/" JOB,
               "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"],\"interval_seconds\":86400,"
               "\"overlap_seconds\":0}",
               &status);
    CHECK_EQ_INT(status, 201);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ans, "timespan")), "minute");
    CHECK_EQ_INT(cJSON_GetObjectItem(ans, "page_limit")->valueint, 50000);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ans, "updated_by")), "e2e");
    cJSON_Delete(ans);
    ans = call("PUT", "/v1/jobs/" JOB,
               "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\",\"X:BTCUSD\"],"
               "\"interval_seconds\":86400,\"overlap_seconds\":0,\"rate_limit_per_minute\":600}",
               &status);
    CHECK_EQ_INT(status, 200);
    cJSON_Delete(ans);
    ans = call("GET", "/v1/jobs/" JOB, NULL, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "tickers")), 2);
    CHECK_EQ_INT(cJSON_GetObjectItem(ans, "rate_limit_per_minute")->valueint, 600);
    cJSON_Delete(ans);
    /* The backfills below use one ticker. */
    cJSON_Delete(call("PUT", "/v1/jobs/" JOB,
                      "{\"provider\":\"polygon\",\"tickers\":[\"MSFT\"],"
                      "\"interval_seconds\":86400,\"overlap_seconds\":0}",
                      &status));
    CHECK_EQ_INT(status, 200);
    ans = call("GET", "/v1/jobs", NULL, &status);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ans, "jobs"))
    {
        listed += strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(it, "job_name")), JOB) == 0;
    }
    CHECK_EQ_INT(listed, 1);
    cJSON_Delete(ans);
}

static void test_bad_backfills(void)
{
    static const struct {
        const char *body;
        long status;
    } cases[] = {
        {"{\"job_name\":\"" JOB "\",\"from\":\"2024-03-10\",\"to\":\"2024-03-04\"}", 400},
        {"{\"job_name\":\"" JOB "\",\"from\":\"2022-01-01\",\"to\":\"2023-06-01\"}", 400},
        {"{\"job_name\":\"" JOB "\",\"from\":\"2024-03-04\",\"to\":\"2099-01-01\"}", 400},
        {"{\"job_name\":\"" JOB "\",\"from\":\"yesterday\",\"to\":\"2024-03-04\"}", 400},
        {"{\"job_name\":\"" JOB "\",\"from\":\"2024-03-04\",\"to\":\"2024-03-05\","
         "\"concurrency\":0}",
         400},
        {"{\"job_name\":\"no_such_job\",\"from\":\"2024-03-04\",\"to\":\"2024-03-05\"}", 404},
        {"{\"from\":\"2024-03-04\",\"to\":\"2024-03-05\"}", 400},
        {"[]", 400},
    };
    long long before = exec_rows();
    long status;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *ans = call("POST", "/v1/backfills", cases[i].body, &status);
        CHECK(status == cases[i].status && error_message(ans)[0],
              "backfill case %zu: %ld \"%s\", want %ld", i, status, error_message(ans),
              cases[i].status);
        cJSON_Delete(ans);
    }
    /* A year-long minute window is refused for a single execution too. */
    {
        char body[256], id[TF_UUID_LEN + 1];
        tf_uuid_new(id);
        snprintf(body, sizeof(body),
                 "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":"
                 "\"2023-01-01T00:00:00Z\",\"window_end\":\"2024-01-01T00:00:00Z\"}",
                 id);
        cJSON_Delete(call("POST", "/v1/executions", body, &status));
        CHECK_EQ_INT(status, 400);
    }
    CHECK_EQ_INT(exec_rows(), before);
    cJSON_Delete(call("GET", "/v1/backfills/1b4e28ba-2fa1-4d2c-8e8e-6f1f3c0e9a11", NULL, &status));
    CHECK_EQ_INT(status, 404);
}

/* Polls a backfill until every day went through gold (or it failed). */
static cJSON *wait_backfill(const char *id, int days, int seconds)
{
    char path[96];
    long status;

    snprintf(path, sizeof(path), "/v1/backfills/%s", id);
    for (int i = 0; i < h_timeout(seconds) * 5 && h_stack_alive(&stack); i++) {
        cJSON *bf = call("GET", path, NULL, &status);
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(bf, "status"));
        const cJSON *done = cJSON_GetObjectItem(bf, "completed");
        if (st && (strcmp(st, "FAILED") == 0 ||
                   (strcmp(st, "SUCCESS") == 0 && cJSON_IsNumber(done) && done->valueint == days)))
            return bf;
        cJSON_Delete(bf);
        h_sleep_ms(200);
    }
    return NULL;
}

static char *run_backfill(const char *from, const char *to, int concurrency, int days)
{
    char body[256];
    long status;
    cJSON *ans, *bf;
    char *id = NULL;

    snprintf(body, sizeof(body),
             "{\"job_name\":\"" JOB "\",\"from\":\"%s\",\"to\":\"%s\",\"concurrency\":%d}", from,
             to, concurrency);
    ans = call("POST", "/v1/backfills", body, &status);
    CHECK_EQ_INT(status, 202);
    CHECK_EQ_INT(cJSON_GetObjectItem(ans, "days") ? cJSON_GetObjectItem(ans, "days")->valueint : -1,
                 days);
    if (cJSON_GetStringValue(cJSON_GetObjectItem(ans, "backfill_id")))
        id = strdup(cJSON_GetStringValue(cJSON_GetObjectItem(ans, "backfill_id")));
    cJSON_Delete(ans);
    if (!id)
        return NULL;
    bf = wait_backfill(id, days, 180);
    CHECK(bf && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(bf, "status")), "SUCCESS") == 0,
          "backfill %s..%s finished through gold", from, to);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(bf, "executions")), days);
    cJSON_Delete(bf);
    return id;
}

static void test_backfill_and_gaps(void)
{
    char *id = run_backfill("2024-03-04", "2024-03-10", 2, 7);
    const char *params[1] = {id};
    long status;
    cJSON *gaps;
    const cJSON *list;

    if (!id)
        return;
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(DISTINCT window_start) FROM tickflow.job_execution"
                         " WHERE backfill_id = $1 AND stage = 'extract' AND status = 'SUCCESS'"
                         " AND window_end - window_start = interval '1 day'",
                         1, params),
                 7);
    /* Never more than 2 days in flight: the most runs alive at any run's start. */
    CHECK(h_pg_ll(stack.db,
                  "SELECT max((SELECT count(*) FROM tickflow.job_execution o"
                  "  WHERE o.backfill_id = e.backfill_id AND o.stage = 'extract'"
                  "  AND o.started_at <= e.started_at AND o.finished_at > e.started_at))"
                  " FROM tickflow.job_execution e WHERE e.backfill_id = $1"
                  " AND e.stage = 'extract'",
                  1, params) <= 2,
          "concurrency bound held");
    /* The same POST again with its id: the same backfill, no new executions. */
    {
        char body[256];
        long long before = exec_rows();
        cJSON *again;
        snprintf(body, sizeof(body),
                 "{\"backfill_id\":\"%s\",\"job_name\":\"" JOB "\",\"from\":\"2024-03-04\","
                 "\"to\":\"2024-03-10\"}",
                 id);
        again = call("POST", "/v1/backfills", body, &status);
        CHECK_EQ_INT(status, 200);
        cJSON_Delete(again);
        snprintf(body, sizeof(body),
                 "{\"backfill_id\":\"%s\",\"job_name\":\"" JOB "\",\"from\":\"2024-03-05\","
                 "\"to\":\"2024-03-10\"}",
                 id);
        cJSON_Delete(call("POST", "/v1/backfills", body, &status));
        CHECK_EQ_INT(status, 409);
        CHECK_EQ_INT(exec_rows(), before);
    }
    free(id);

    gaps = call("GET", "/v1/jobs/" JOB "/gaps?from=2024-03-01&to=2024-03-11", NULL, &status);
    CHECK_EQ_INT(status, 200);
    list = cJSON_GetObjectItem(gaps, "gaps");
    CHECK_EQ_INT(cJSON_GetArraySize(list), 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "start")),
              "2024-03-01T00:00:00Z");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "end")),
              "2024-03-04T00:00:00Z");
    cJSON_Delete(gaps);

    /* Leave 2024-03-11 and 2024-03-14 out on purpose. */
    free(run_backfill("2024-03-12", "2024-03-13", 2, 2));
    free(run_backfill("2024-03-15", "2024-03-15", 1, 1));
    gaps = call("GET", "/v1/jobs/" JOB "/gaps?from=2024-03-04&to=2024-03-16", NULL, &status);
    list = cJSON_GetObjectItem(gaps, "gaps");
    CHECK_EQ_INT(cJSON_GetArraySize(list), 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "start")),
              "2024-03-11T00:00:00Z");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "start")),
              "2024-03-14T00:00:00Z");
    CHECK_EQ_INT(cJSON_GetObjectItem(gaps, "gap_seconds")->valuedouble, 2 * 86400);
    cJSON_Delete(gaps);
    cJSON_Delete(call("GET", "/v1/jobs/" JOB "/gaps?from=2024-03-16&to=2024-03-01", NULL, &status));
    CHECK_EQ_INT(status, 400);
    cJSON_Delete(
        call("GET", "/v1/jobs/no_such_job/gaps?from=2024-03-01&to=2024-03-02", NULL, &status));
    CHECK_EQ_INT(status, 404);
}

/*
 * The provider key's request budget is spent: the run waits (its record
 * says so) instead of failing, then finishes; the audit counts the wait.
 */
static void test_quota_wait(void)
{
    char digest[65], bucket[64], id[TF_UUID_LEN + 1], body[512], path[96];
    const char *params[1] = {bucket};
    int saw_waiting = 0;
    long status;
    cJSON *ans;
    PGresult *res;

    cJSON_Delete(call("PUT", "/v1/jobs/e2e_quota",
                      "{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"],\"page_limit\":100,"
                      "\"rate_limit_per_minute\":60}",
                      &status));
    CHECK_EQ_INT(status, 201);
    tf_sha256_hex(API_KEY, strlen(API_KEY), digest);
    snprintf(bucket, sizeof(bucket), "polygon:%.16s", digest);
    res = PQexecParams(stack.db,
                       "INSERT INTO tickflow.rate_bucket (bucket, tokens, per_minute, updated_at)"
                       " VALUES ($1, 0, 60, clock_timestamp()) ON CONFLICT (bucket) DO UPDATE"
                       " SET tokens = 0, per_minute = 60, updated_at = clock_timestamp()",
                       1, NULL, params, NULL, NULL, 0);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "bucket drained");
    PQclear(res);
    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"e2e_quota\",\"window_start\":"
             "\"2024-03-04T14:30:00Z\",\"window_end\":\"2024-03-04T21:00:00Z\"}",
             id);
    cJSON_Delete(call("POST", "/v1/executions", body, &status));
    CHECK_EQ_INT(status, 202);
    snprintf(path, sizeof(path), "/v1/executions/%s", id);
    for (int i = 0; i < h_timeout(60) * 10; i++) {
        const char *st, *detail;
        ans = call("GET", path, NULL, &status);
        st = cJSON_GetStringValue(cJSON_GetObjectItem(ans, "status"));
        detail = cJSON_GetStringValue(cJSON_GetObjectItem(ans, "detail"));
        saw_waiting |= detail && strstr(detail, "waiting for the polygon request budget") != NULL;
        if (st && (strcmp(st, "SUCCESS") == 0 || strcmp(st, "FAILED") == 0)) {
            CHECK_STR(st, "SUCCESS");
            CHECK(cJSON_IsNull(cJSON_GetObjectItem(ans, "detail")), "detail cleared at the end");
            cJSON_Delete(ans);
            break;
        }
        cJSON_Delete(ans);
        h_sleep_ms(100);
    }
    CHECK(saw_waiting, "the record showed the wait while it lasted");
    snprintf(path, sizeof(path), "/v1/executions/%s/audit", id);
    ans = call("GET", path, NULL, &status);
    {
        const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(ans, "attempts"), 0);
        CHECK_EQ_INT(
            cJSON_GetObjectItem(a, "requests") ? cJSON_GetObjectItem(a, "requests")->valueint : -1,
            4);
        CHECK(cJSON_GetObjectItem(a, "quota_wait_ms") &&
                  cJSON_GetObjectItem(a, "quota_wait_ms")->valuedouble >= 2500,
              "waited about a second per request after the first");
    }
    cJSON_Delete(ans);
}

/* /openapi.json: every stage's API, and extract's own routes only on extract. */
static void test_openapi(void)
{
    static const char *const extract_only[] = {
        "/v1/jobs",      "/v1/jobs/{job_name}",         "/v1/jobs/{job_name}/gaps",
        "/v1/backfills", "/v1/backfills/{backfill_id}", "/v1/executions/{execution_id}/audit"};
    static const int procs[] = {H_EXTRACT, H_TRANSFORM, H_AGGREGATE};
    static const int nexpected[] = {12, 6, 7};

    for (size_t p = 0; p < sizeof(procs) / sizeof(procs[0]); p++) {
        struct h_resp r;
        cJSON *doc, *paths;
        h_http("GET", stack.procs[procs[p]].port, "/openapi.json", NULL, NULL, &r);
        CHECK_EQ_INT(r.status, 200);
        doc = cJSON_Parse(r.body);
        paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
        CHECK(cJSON_IsObject(paths), "%s: a JSON document with paths", stack.procs[procs[p]].name);
        CHECK(cJSON_GetObjectItemCaseSensitive(paths, "/v1/executions") != NULL,
              "%s: /v1/executions", stack.procs[procs[p]].name);
        for (size_t i = 0; i < sizeof(extract_only) / sizeof(extract_only[0]); i++)
            CHECK((cJSON_GetObjectItemCaseSensitive(paths, extract_only[i]) != NULL) ==
                      (procs[p] == H_EXTRACT),
                  "%s: %s %s", stack.procs[procs[p]].name, extract_only[i],
                  procs[p] == H_EXTRACT ? "described" : "absent");
        /* The stage API's six paths, extract's six, aggregate's quality report. */
        CHECK_EQ_INT(cJSON_GetArraySize(paths), nexpected[p]);
        cJSON_Delete(doc);
        h_resp_free(&r);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "jobs", API_KEY, SEED, NULL) == 0) {
        test_bad_jobs();
        test_good_job();
        test_bad_backfills();
        test_backfill_and_gaps();
        test_quota_wait();
        test_openapi();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
