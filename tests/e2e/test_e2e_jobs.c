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
 *   - GET /v1/backfills/{id}: RUNNING, with each stage's days counted, while
 *     transform is down and while aggregate is held; SUCCESS only once every
 *     day reached gold; FAILED once failed days (an extract, an aggregate)
 *     leave nothing running, and RUNNING again when they are retried.
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

/* What schemathesis found (tests/contract): the answers now match the documents. */
static void test_contract_answers(void)
{
    static const struct {
        int proc;
        const char *method, *path, *body;
        long status;
    } cases[] = {
        /* A method the route does not serve is a 405 before the name is read. */
        {H_EXTRACT, "TRACE", "/v1/jobs/Bad-Name", NULL, 405},
        {H_EXTRACT, "DELETE", "/v1/jobs/0", NULL, 405},
        {H_EXTRACT, "POST", "/v1/jobs/0/gaps", "{}", 405},
        {H_EXTRACT, "GET", "/v1/jobs/0", NULL, 400},
        /* job_name is a job's name wherever it is given. */
        {H_EXTRACT, "GET", "/v1/executions?job_name=", NULL, 400},
        {H_TRANSFORM, "GET", "/v1/executions?job_name=Bad-Name", NULL, 400},
        {H_AGGREGATE, "GET", "/v1/executions?job_name=" JOB, NULL, 200},
        {H_EXTRACT, "POST", "/v1/executions", "{\"job_name\":\"\"}", 400},
        {H_TRANSFORM, "POST", "/v1/executions",
         "{\"execution_id\":\"0b7c2f4e-8a1d-4c55-9e3b-6d2a1f0c9e77\",\"job_name\":\"A\"}", 400},
        /* A fraction of a second is an RFC 3339 time: read (no extract stage here: 404). */
        {H_TRANSFORM, "POST", "/v1/executions",
         "{\"execution_id\":\"0b7c2f4e-8a1d-4c55-9e3b-6d2a1f0c9e77\","
         "\"window_start\":\"2024-03-04T10:00:00.123456Z\",\"window_end\":\"2024-03-04t11:00:"
         "00z\"}",
         404},
        /* A cursor's numbers fit a bigint: 19 digits are refused before SQL sees them. */
        {H_EXTRACT, "GET",
         "/v1/runs?before=9999999999999999999.1.0b7c2f4e-8a1d-4c55-9e3b-6d2a1f0c9e77", NULL, 400},
        {H_EXTRACT, "GET",
         "/v1/runs?before=999999999999999999.1.0b7c2f4e-8a1d-4c55-9e3b-6d2a1f0c9e77", NULL, 200},
    };
    static const char *const stages[] = {"extract", "transform"};
    long status;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *ans = h_call(cases[i].method, stack.procs[cases[i].proc].port, cases[i].path,
                            cases[i].body, NULL, &status);
        CHECK(status == cases[i].status, "%s %s on %s: %ld, want %ld (%s)", cases[i].method,
              cases[i].path, stack.procs[cases[i].proc].name, status, cases[i].status,
              error_message(ans));
        cJSON_Delete(ans);
    }
    /* The POST's body as each stage takes it, and the token of mutating calls. */
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        int proc = i == 0 ? H_EXTRACT : H_TRANSFORM;
        cJSON *doc = h_call("GET", stack.procs[proc].port, "/openapi.json", NULL, NULL, &status);
        cJSON *post = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "paths"), "/v1/executions"), "post");
        cJSON *body = cJSON_GetObjectItem(post, "requestBody");
        cJSON *schema = cJSON_GetObjectItem(
            cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(body, "content"), "application/json"),
                "schema"),
            "required");
        char *req = cJSON_PrintUnformatted(schema);

        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(body, "required")), "%s: the body is required",
              stages[i]);
        CHECK(req && strcmp(req, i == 0 ? "[\"job_name\"]" : "[\"execution_id\"]") == 0,
              "%s: the body requires %s", stages[i], req ? req : "nothing");
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(post, "responses"), "401") &&
                  cJSON_GetObjectItem(post, "security"),
              "%s: the POST asks for the bearer token", stages[i]);
        cJSON_free(req);
        cJSON_Delete(doc);
    }
}

/* Makes JOB the one-ticker (MSFT) daily job the backfills use, with dq_rules (JSON) or none. */
static void put_backfill_job(const char *dq_rules)
{
    char body[512];
    long status;

    snprintf(body, sizeof(body),
             "{\"provider\":\"polygon\",\"tickers\":[\"MSFT\"],\"interval_seconds\":86400,"
             "\"overlap_seconds\":0,\"dq_rules\":%s}",
             dq_rules ? dq_rules : "[]");
    cJSON_Delete(call("PUT", "/v1/jobs/" JOB, body, &status));
    CHECK_EQ_INT(status, 200);
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
    put_backfill_job(NULL);
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

/*
 * A backfill answer in one line: "STATUS extract=p/r/s/f/k transform=...
 * aggregate=... completed=N", each stage's days pending, running,
 * succeeded, failed and skipped ("nan" for a missing number).
 */
static void bf_summary(const cJSON *bf, char *out, size_t len)
{
    static const char *const stages[] = {"extract", "transform", "aggregate"};
    static const char *const states[] = {"pending", "running", "succeeded", "failed", "skipped"};
    const char *st = h_jstr(bf, "status");
    int n = snprintf(out, len, "%s", st ? st : "(no status)");

    for (size_t i = 0; i < 3 && n > 0 && (size_t)n < len; i++) {
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(bf, stages[i]);
        n += snprintf(out + n, len - (size_t)n, " %s=", stages[i]);
        for (size_t j = 0; j < 5 && (size_t)n < len; j++)
            n +=
                snprintf(out + n, len - (size_t)n, "%s%g", j ? "/" : "", h_jnum(counts, states[j]));
    }
    if (n > 0 && (size_t)n < len)
        snprintf(out + n, len - (size_t)n, " completed=%g", h_jnum(bf, "completed"));
}

/*
 * Polls backfill id until its summary (bf_summary) is want, for up to
 * seconds, and checks that it got there. Every answer before must read
 * RUNNING: a backfill never ends while a stage of a day is still to run.
 * Returns the last answer (caller deletes; NULL when none came).
 */
static cJSON *await_backfill(const char *id, const char *want, int seconds)
{
    char path[96], got[256] = "(no answer)";
    cJSON *bf = NULL;
    long status;

    snprintf(path, sizeof(path), "/v1/backfills/%s", id);
    /* Not h_stack_alive: the tests stop transform on purpose. */
    for (int i = 0; i < h_timeout(seconds) * 5 && h_alive(&stack.procs[H_EXTRACT]); i++) {
        cJSON_Delete(bf);
        bf = call("GET", path, NULL, &status);
        bf_summary(bf, got, sizeof(got));
        if (strcmp(got, want) == 0)
            break;
        if (!h_jstr(bf, "status") || strcmp(h_jstr(bf, "status"), "RUNNING") != 0)
            break;
        h_sleep_ms(200);
    }
    CHECK(strcmp(got, want) == 0, "backfill %s: \"%s\", want \"%s\"", id, got, want);
    return bf;
}

/* Checks day i of a backfill answer: its stages' statuses, NULL for a stage not created. */
static void check_day(const cJSON *bf, int i, const char *extract, const char *transform,
                      const char *aggregate)
{
    static const char *const stages[] = {"extract", "transform", "aggregate"};
    const char *want[] = {extract, transform, aggregate};
    const cJSON *day = cJSON_GetArrayItem(cJSON_GetObjectItem(bf, "executions"), i);

    for (size_t k = 0; k < 3; k++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(day, stages[k]);
        const char *got = cJSON_IsString(it) ? it->valuestring : "absent";
        if (cJSON_IsNull(it))
            got = "null";
        CHECK(strcmp(got, want[k] ? want[k] : "null") == 0, "day %d %s: %s, want %s", i, stages[k],
              got, want[k] ? want[k] : "null");
    }
}

/* A string member of day i of a backfill answer, as a new string (free it); NULL when none. */
static char *day_field(const cJSON *bf, int i, const char *key)
{
    const char *s = h_jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(bf, "executions"), i), key);

    return s ? strdup(s) : NULL;
}

/* POSTs a backfill of JOB; returns its id (caller frees), NULL when it was refused. */
static char *start_backfill(const char *from, const char *to, int concurrency, int days)
{
    char body[256];
    long status;
    cJSON *ans;
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
    return id;
}

/* A backfill run through gold: every stage of each of its days succeeded. */
static char *run_backfill(const char *from, const char *to, int concurrency, int days)
{
    char *id = start_backfill(from, to, concurrency, days);
    char want[256];
    cJSON *bf;

    if (!id)
        return NULL;
    snprintf(want, sizeof(want),
             "SUCCESS extract=0/0/%d/0/0 transform=0/0/%d/0/0 aggregate=0/0/%d/0/0 completed=%d",
             days, days, days, days);
    bf = await_backfill(id, want, 180);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(bf, "executions")), days);
    for (int i = 0; i < days; i++)
        check_day(bf, i, "SUCCESS", "SUCCESS", "SUCCESS");
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
 * Holds (hold 1) or lets go of the lock aggregate takes on MSFT's gold for
 * its transaction (tf_pg_lock_keys "tickflow.gold"), as a session lock on
 * the test's own connection: meanwhile an aggregate run of MSFT stays
 * RUNNING. aggregate consumes its events one at a time, so a second day's
 * event waits too, with no aggregate record yet.
 */
static void hold_gold(int hold)
{
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         hold ? "SELECT 1 FROM pg_advisory_lock(hashtext('tickflow.gold'),"
                                " hashtext('MSFT'))"
                              : "SELECT pg_advisory_unlock(hashtext('tickflow.gold'),"
                                " hashtext('MSFT'))::int",
                         0, NULL),
                 1);
}

/*
 * A backfill is SUCCESS only once every day reached gold: while transform
 * is down (no transform record yet) and then while aggregate is held, it
 * reads RUNNING with each stage's days counted where they are.
 */
static void test_backfill_waits_for_gold(void)
{
    char *id;
    cJSON *bf;

    CHECK_EQ_INT(h_stop(&stack.procs[H_TRANSFORM]), 0);
    hold_gold(1);
    id = start_backfill("2024-04-01", "2024-04-02", 2, 2);
    if (!id) {
        hold_gold(0);
        CHECK_EQ_INT(h_stack_restart(&stack, H_TRANSFORM), 0);
        return;
    }
    /* Every extract done, nothing downstream yet: pending, not finished. */
    bf = await_backfill(
        id, "RUNNING extract=0/0/2/0/0 transform=2/0/0/0/0 aggregate=2/0/0/0/0 completed=0", 60);
    check_day(bf, 0, "SUCCESS", NULL, NULL);
    check_day(bf, 1, "SUCCESS", NULL, NULL);
    cJSON_Delete(bf);

    /* Silver done; one aggregate runs (held), the other day's waits behind it. */
    CHECK_EQ_INT(h_stack_restart(&stack, H_TRANSFORM), 0);
    bf = await_backfill(
        id, "RUNNING extract=0/0/2/0/0 transform=0/0/2/0/0 aggregate=1/1/0/0/0 completed=0", 60);
    {
        /* Which day's event aggregate took first is up to Kafka. */
        char *first = day_field(bf, 0, "aggregate");
        int held = first && strcmp(first, "RUNNING") == 0 ? 0 : 1;
        check_day(bf, held, "SUCCESS", "SUCCESS", "RUNNING");
        check_day(bf, 1 - held, "SUCCESS", "SUCCESS", NULL);
        free(first);
    }
    cJSON_Delete(bf);

    hold_gold(0);
    bf = await_backfill(
        id, "SUCCESS extract=0/0/2/0/0 transform=0/0/2/0/0 aggregate=0/0/2/0/0 completed=2", 60);
    check_day(bf, 0, "SUCCESS", "SUCCESS", "SUCCESS");
    check_day(bf, 1, "SUCCESS", "SUCCESS", "SUCCESS");
    cJSON_Delete(bf);
    free(id);
}

/* POSTs {"execution_id": id} to a stage: an orchestrator's retry of a failed stage. */
static void retry_stage(int proc, const char *id)
{
    char body[96];
    long status;

    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\"}", id);
    cJSON_Delete(h_call("POST", stack.procs[proc].port, "/v1/executions", body, NULL, &status));
    CHECK(status == 202, "%s retry of %s queued (%ld)", stack.procs[proc].name, id, status);
}

/*
 * A backfill whose days failed (one day's extract, the other's aggregate
 * after extract and transform succeeded, both with attempts left) reads
 * RUNNING until nothing moves, then FAILED with the days that never ran
 * counted as skipped. Retried stages make it RUNNING again, then SUCCESS.
 */
static void test_backfill_failed(void)
{
    const char *params[1];
    char *id, *day0 = NULL, *day1 = NULL;
    cJSON *bf;

    /* No close is that high: every aggregate run fails. */
    put_backfill_job("[{\"check\":\"avg_close_between\",\"min\":1000000,\"max\":2000000,"
                     "\"severity\":\"fail\"}]");
    /* The first request for MSFT, the first day's (concurrency 1), gets an error body. */
    CHECK_EQ_INT(
        h_sim_faults(stack.procs[H_MARKETSIM].port,
                     "{\"rules\":[{\"ticker\":\"MSFT\",\"fault\":\"error200\",\"times\":1}]}"),
        200);
    id = start_backfill("2024-04-08", "2024-04-09", 1, 2);
    if (!id)
        return;
    bf = await_backfill(
        id, "FAILED extract=0/0/1/1/0 transform=0/0/1/0/1 aggregate=0/0/0/1/1 completed=0", 120);
    check_day(bf, 0, "FAILED", NULL, NULL);
    check_day(bf, 1, "SUCCESS", "SUCCESS", "FAILED");
    day0 = day_field(bf, 0, "execution_id");
    day1 = day_field(bf, 1, "execution_id");
    cJSON_Delete(bf);
    /* Both failed stages had attempts left: FAILED does not wait for retries nobody makes. */
    params[0] = id;
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution e"
                         " JOIN tickflow.job_execution x USING (execution_id)"
                         " WHERE e.backfill_id = $1 AND e.stage = 'extract'"
                         " AND x.status = 'FAILED' AND x.attempt < x.max_attempts",
                         1, params),
                 2);

    /* Fixed; the orchestrator retries both failed stages. */
    put_backfill_job(NULL);
    hold_gold(1);
    if (day0 && day1) {
        retry_stage(H_EXTRACT, day0);
        retry_stage(H_AGGREGATE, day1);
        bf = await_backfill(
            id, "RUNNING extract=0/0/2/0/0 transform=0/0/2/0/0 aggregate=0/2/0/0/0 completed=0",
            60);
        check_day(bf, 0, "SUCCESS", "SUCCESS", "RUNNING");
        check_day(bf, 1, "SUCCESS", "SUCCESS", "RUNNING");
        cJSON_Delete(bf);
    }
    hold_gold(0);
    cJSON_Delete(await_backfill(
        id, "SUCCESS extract=0/0/2/0/0 transform=0/0/2/0/0 aggregate=0/0/2/0/0 completed=2", 60));
    free(day0);
    free(day1);
    free(id);
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
    static const int nexpected[] = {20, 6, 7};

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
        /* The stage API's six paths, extract's six and its console's eight, aggregate's quality
         * report. */
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
        test_contract_answers();
        test_good_job();
        test_bad_backfills();
        test_backfill_and_gaps();
        test_backfill_waits_for_gold();
        test_backfill_failed();
        test_quota_wait();
        test_openapi();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
