/*
 * test_e2e_metrics.c - each stage's /metrics after real runs, against the
 * runs' own records in PostgreSQL: runs by outcome, the run-duration
 * histogram (count, sum within the test's wall time, buckets rising to
 * +Inf), records in/out/rejected equal to the records' sums, executions by
 * status from the database, requests by route and status class (the
 * test's own calls counted exactly), and transform's consumer lag back to
 * zero once the bronze events are consumed.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"

#define API_KEY "metrics-Key-71c3"
#define SEED    31
#define JOB     "e2e_metrics"
#define RUNS    2

static struct h_stack stack;

/* The /metrics page of port (new string, or NULL). */
static char *scrape(int port)
{
    struct h_resp r;
    char *page = NULL;

    if (h_http("GET", port, "/metrics", NULL, NULL, &r) == 0 && r.status == 200) {
        page = r.body;
        r.body = NULL;
    }
    h_resp_free(&r);
    return page;
}

/* The value of the sample "name{labels}" in page; -1 when absent. */
static double sample(const char *page, const char *name_labels)
{
    char needle[512];
    const char *at;

    snprintf(needle, sizeof(needle), "\n%s ", name_labels);
    at = page ? strstr(page, needle) : NULL;
    return at ? strtod(at + strlen(needle), NULL) : -1;
}

static long long db_sum(const char *stage, const char *column)
{
    char sql[256];
    const char *params[1] = {stage};

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(%s), 0) FROM tickflow.job_execution WHERE stage = $1"
             " AND status IN ('SUCCESS', 'FAILED')",
             column); /* the test's own column names */
    return h_pg_ll(stack.db, sql, 1, params);
}

/* The histogram name{stage=...}: buckets never fall, +Inf equals the count. */
static void check_histogram(const char *page, const char *name, const char *labels, double count)
{
    static const char *const les[] = {"0.001", "0.005", "0.01", "0.05", "0.1", "0.25", "0.5",
                                      "1",     "2.5",   "5",    "10",   "60",  "300",  "+Inf"};
    char key[512];
    double prev = 0;

    for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
        double v;

        snprintf(key, sizeof(key), "%s_bucket{%s,le=\"%s\"}", name, labels, les[i]);
        v = sample(page, key);
        CHECK(v >= prev, "%s: %g after %g", key, v, prev);
        prev = v;
    }
    CHECK(prev == count, "%s{%s} +Inf %g, count %g", name, labels, prev, count);
    snprintf(key, sizeof(key), "%s_count{%s}", name, labels);
    CHECK(sample(page, key) == count, "%s = %g", key, sample(page, key));
}

static void test_metrics(void)
{
    static const char *const stages[] = {"extract", "transform", "aggregate"};
    char id[RUNS][TF_UUID_LEN + 1], body[512], key[256], path[128];
    double t0 = h_now_s(), wall;
    long status;

    for (int i = 0; i < RUNS; i++) {
        cJSON *rec;

        tf_uuid_new(id[i]);
        snprintf(body, sizeof(body),
                 "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":"
                 "\"2024-03-0%dT14:30:00Z\",\"window_end\":\"2024-03-0%dT21:00:00Z\"}",
                 id[i], 4 + i, 4 + i);
        cJSON_Delete(
            h_call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &status));
        CHECK_EQ_INT(status, 202);
        rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id[i], 120);
        CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "run %d: %s", i,
              rec ? h_jstr(rec, "status") : "timeout");
        cJSON_Delete(rec);
    }
    wall = h_now_s() - t0;

    for (int s = 0; s < 3; s++) {
        int port = stack.procs[H_EXTRACT + s].port;
        const char *st = stages[s];
        char labels[64], *page;
        double before;

        snprintf(labels, sizeof(labels), "stage=\"%s\"", st);
        /* The test's own reads: three of a record, one of a route that is not there. */
        page = scrape(port);
        snprintf(key, sizeof(key),
                 "tickflow_http_requests_total{stage=\"%s\",route=\"/v1/executions/{id}\","
                 "code=\"2xx\"}",
                 st);
        before = sample(page, key);
        free(page);
        snprintf(path, sizeof(path), "/v1/executions/%s", id[0]);
        for (int i = 0; i < 3; i++)
            cJSON_Delete(h_call("GET", port, path, NULL, NULL, &status));
        cJSON_Delete(h_call("GET", port, "/v1/nothing-here", NULL, NULL, &status));
        CHECK_EQ_INT(status, 404);

        page = scrape(port);
        CHECK(page != NULL, "%s: /metrics answers", st);
        snprintf(key, sizeof(key), "tickflow_stage_runs_total{%s,status=\"SUCCESS\"}", labels);
        CHECK(sample(page, key) == RUNS, "%s = %g", key, sample(page, key));
        check_histogram(page, "tickflow_stage_duration_seconds", labels, RUNS);
        snprintf(key, sizeof(key), "tickflow_stage_duration_seconds_sum{%s}", labels);
        CHECK(sample(page, key) > 0 && sample(page, key) <= wall,
              "%s = %g, within the test's %.1f s", key, sample(page, key), wall);
        snprintf(key, sizeof(key), "tickflow_records_total{%s,kind=\"in\"}", labels);
        CHECK(sample(page, key) == (double)db_sum(st, "records_in"), "%s = %g, records say %lld",
              key, sample(page, key), db_sum(st, "records_in"));
        snprintf(key, sizeof(key), "tickflow_records_total{%s,kind=\"out\"}", labels);
        CHECK(sample(page, key) == (double)db_sum(st, "records_out") && sample(page, key) > 0,
              "%s = %g, records say %lld", key, sample(page, key), db_sum(st, "records_out"));
        snprintf(key, sizeof(key), "tickflow_records_total{%s,kind=\"rejected\"}", labels);
        CHECK(sample(page, key) == (double)db_sum(st, "records_rejected"),
              "%s = %g, records say %lld", key, sample(page, key), db_sum(st, "records_rejected"));
        snprintf(key, sizeof(key), "tickflow_executions{%s,status=\"SUCCESS\"}", labels);
        CHECK(sample(page, key) == RUNS, "%s = %g", key, sample(page, key));
        snprintf(key, sizeof(key), "tickflow_executions{%s,status=\"FAILED\"}", labels);
        CHECK(sample(page, key) == 0, "%s = %g", key, sample(page, key));
        snprintf(key, sizeof(key),
                 "tickflow_http_requests_total{stage=\"%s\",route=\"/v1/executions/{id}\","
                 "code=\"2xx\"}",
                 st);
        CHECK(sample(page, key) == (before < 0 ? 0 : before) + 3, "%s = %g, was %g", key,
              sample(page, key), before);
        snprintf(key, sizeof(key),
                 "tickflow_http_requests_total{stage=\"%s\",route=\"other\",code=\"4xx\"}", st);
        CHECK(sample(page, key) >= 1, "%s = %g", key, sample(page, key));
        snprintf(key, sizeof(key), "stage=\"%s\",route=\"/v1/executions/{id}\"", st);
        {
            char count_key[512];
            snprintf(count_key, sizeof(count_key),
                     "tickflow_http_request_duration_seconds_count{%s}", key);
            check_histogram(page, "tickflow_http_request_duration_seconds", key,
                            sample(page, count_key));
            CHECK(sample(page, count_key) >= 3, "%s = %g", count_key, sample(page, count_key));
        }
        for (const char *name = "tickflow_lease_renewals_total"; name;
             name = strcmp(name, "tickflow_lease_renewals_total") == 0 ? "tickflow_takeovers_total"
                                                                       : NULL) {
            snprintf(key, sizeof(key), "%s{%s}", name, labels);
            CHECK(sample(page, key) >= 0, "%s is there", key);
        }
        free(page);
    }

    /* transform consumed every bronze event: its lag is zero on each partition it reads. */
    {
        int zero = 0, parts = 0;

        for (int i = 0; i < h_timeout(30) * 10 && !zero; i++) {
            char *page = scrape(stack.procs[H_TRANSFORM].port);
            const char *p = page;
            double total = 0;

            parts = 0;
            while (p && (p = strstr(p, "\ntickflow_kafka_consumer_lag{")) != NULL) {
                p++;
                total += strtod(strchr(p, ' ') + 1, NULL);
                parts++;
            }
            zero = parts > 0 && total == 0;
            free(page);
            if (!zero)
                h_sleep_ms(100);
        }
        CHECK(zero, "transform's consumer lag is 0 on its %d partitions", parts);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "metrics", API_KEY, SEED, NULL) == 0 &&
        h_add_job_tickers(stack.db, JOB, "M", 3) == 0)
        test_metrics();
    else
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
