/*
 * test_e2e_workers.c - the largest configuration a stage accepts:
 * TICKFLOW_WORKERS=64 with more runs than workers at once, each longer
 * than the heartbeat timeout (marketsim answers slowly). Every run must
 * succeed on its first attempt: no worker waits for a connection, no
 * heartbeat is starved (none becomes a ZOMBIE), and 64 run at the same time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"

#define API_KEY "workers-Key-5d20e8"
#define SEED    29
#define WORKERS 64
#define RUNS    80
#define JOB     "e2e_workers"

static struct h_stack stack;

static void faults(const char *rules)
{
    CHECK_EQ_INT(h_sim_faults(stack.procs[H_MARKETSIM].port, rules), 200);
}

static long long extract_count(const char *where)
{
    char sql[256];

    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM tickflow.job_execution WHERE stage = 'extract' AND job_name = '" JOB
        "' AND %s",
        where); /* the test's own constants */
    return h_pg_ll(stack.db, sql, 0, NULL);
}

static void test_more_runs_than_workers(void)
{
    long long done = 0;
    int accepted = 0;

    /* 7 s per answer: longer than the 5 s heartbeat timeout. */
    faults("{\"rules\":[{\"fault\":\"slow\",\"times\":-1,\"delay_ms\":7000}]}");
    for (int i = 0; i < RUNS; i++) {
        char id[TF_UUID_LEN + 1], body[256];
        struct h_resp r;
        tf_uuid_new(id);
        snprintf(
            body, sizeof(body),
            "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\","
            "\"window_start\":\"2024-03-04T14:30:00Z\",\"window_end\":\"2024-03-04T21:00:00Z\"}",
            id);
        if (h_http("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &r) == 0 &&
            r.status == 202)
            accepted++;
        h_resp_free(&r);
    }
    CHECK_EQ_INT(accepted, RUNS);
    for (int s = 0; s < h_timeout(120) * 2 && done < RUNS && h_stack_alive(&stack); s++) {
        h_sleep_ms(500);
        done = extract_count("status IN ('SUCCESS', 'FAILED')");
    }
    faults(NULL);
    CHECK_EQ_INT(extract_count("status = 'SUCCESS'"), RUNS);
    /* First attempts only: no lease was lost, no run was retried. */
    CHECK_EQ_INT(extract_count("attempt = 1"), RUNS);
    CHECK_EQ_INT(h_file_count(stack.procs[H_EXTRACT].log, "heartbeat lost"), 0);
    CHECK_EQ_INT(h_file_count(stack.procs[H_EXTRACT].log, "database unavailable"), 0);
    CHECK_EQ_INT(h_file_count(stack.procs[H_EXTRACT].log, "more runs in flight"), 0);
    /* Heartbeats kept the leases of runs longer than the timeout: each
     * record's last heartbeat is its finish, after a run of 7 s or more. */
    CHECK_EQ_INT(extract_count("finished_at - started_at >= interval '7 seconds'"), RUNS);
    /* Every worker ran at once: the most runs under way at any start. */
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT max((SELECT count(*) FROM tickflow.job_execution b"
                         "  WHERE b.stage = 'extract' AND b.job_name = a.job_name"
                         "  AND b.started_at <= a.started_at AND b.finished_at > a.started_at))"
                         " FROM tickflow.job_execution a"
                         " WHERE a.stage = 'extract' AND a.job_name = '" JOB "'",
                         0, NULL),
                 WORKERS);
}

int main(void)
{
    static const char *const env[] = {"TICKFLOW_WORKERS=64", "TICKFLOW_HEARTBEAT_TIMEOUT=5",
                                      "TICKFLOW_EXTRACT_TIMEOUT_MS=30000", NULL};

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "workers", API_KEY, SEED, env) == 0) {
        CHECK(h_sql(stack.db,
                    "INSERT INTO tickflow.job_config (job_name, provider, tickers, updated_by)"
                    " VALUES ('" JOB "', 'polygon', '{AAPL}', 'e2e')",
                    0, NULL) == 0,
              "job");
        test_more_runs_than_workers();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
