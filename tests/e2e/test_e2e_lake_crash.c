/*
 * test_e2e_lake_crash.c - transform killed (SIGKILL) in the middle of a
 * silver upload to the bucket lake, native binaries on the real
 * PostgreSQL, Kafka and S3 server (TF_TEST_LAKE=s3; tests/run.sh runs it
 * as e2e-s3-test_e2e_lake_crash).
 *
 * A first run lands one day's silver file (part of the day). A second run
 * over the whole day must replace it; transform writes the bucket through
 * a fault proxy (tests/env/s3_faults.py --stall-put) that lets half of that
 * file's PUT reach the server and then holds it. transform is killed there,
 * after its silver commit (the record is SUCCESS), before its file:
 *
 *   - the previous file is still the object under its name, byte for byte
 *     (its recorded sha256 and size), and reads back as Parquet;
 *   - no other silver object appeared (no partial, no temporary), and no
 *     upload is left unfinished in the bucket;
 *   - the file is owed (one row in tickflow.lake_pending) and not listed on
 *     the record.
 *
 * transform restarted (heartbeat timeout 5 s) converges: its sweeper
 * writes the owed file, which holds the whole day (records equal silver's
 * rows of the day, sha256 and size as listed on the second run's record),
 * nothing stays owed, gold is done, and silver has no duplicate bar.
 */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"

#define API_KEY "lakecrash-Secret-Key-41b7"
#define JOB     "e2e_lake_crash"
#define SEED    29
#define DAY     "2024-03-04"

static struct h_stack stack;

/* Starts a run of JOB over [start, end] on DAY; its id into id. 0 when accepted. */
static int start_run(const char *start, const char *end, char id[TF_UUID_LEN + 1])
{
    char body[512];
    long status;

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":\"" DAY
             "T%s\",\"window_end\":\"" DAY "T%s\"}",
             id, start, end);
    cJSON_Delete(
        h_call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &status));
    CHECK_EQ_INT(status, 202);
    return status == 202 ? 0 : -1;
}

/* transform's one lake file of id: its uri, sha256, bytes and records. 0 when there is one. */
struct file {
    char uri[1024], sha[65];
    long long bytes, records;
};

static int one_file(const char *id, struct file *f)
{
    cJSON *objs = h_get_objects(stack.procs[H_TRANSFORM].port, id, 10);
    const cJSON *o = cJSON_GetArrayItem(objs, 0);
    int ok = cJSON_GetArraySize(objs) == 1 && h_jstr(o, "uri") && h_jstr(o, "sha256");

    CHECK(ok, "transform recorded one lake file for %s", id);
    if (ok) {
        snprintf(f->uri, sizeof(f->uri), "%s", h_jstr(o, "uri"));
        snprintf(f->sha, sizeof(f->sha), "%s", h_jstr(o, "sha256"));
        f->bytes = (long long)h_jnum(o, "bytes");
        f->records = (long long)h_jnum(o, "records");
        CHECK_STR(h_jstr(o, "date"), DAY);
    }
    cJSON_Delete(objs);
    return ok ? 0 : -1;
}

/* The object under f's name is f, byte for byte. */
static void check_object_is(const struct file *f, const char *what)
{
    char sha[65];

    CHECK_EQ_INT(h_lake_sha256(&stack, f->uri, sha), f->bytes);
    CHECK(strcmp(sha, f->sha) == 0, "%s: %s holds sha256 %s, want %s", what, f->uri, sha, f->sha);
}

static long long silver_day_rows(void)
{
    return h_pg_ll(stack.db,
                   "SELECT count(*) FROM silver.bars WHERE ts >= '" DAY "T00:00:00Z'"
                   " AND ts < timestamptz '" DAY "T00:00:00Z' + interval '1 day'",
                   0, NULL);
}

/* Rows of tickflow.lake_pending (files owed) of execution id. */
static long long owed(const char *id)
{
    const char *params[1] = {id};

    return h_pg_ll(stack.db, "SELECT count(*) FROM tickflow.lake_pending WHERE execution_id = $1",
                   1, params);
}

static void kill_transform(void)
{
    struct h_proc *p = &stack.procs[H_TRANSFORM];

    CHECK(p->pid > 0 && kill(p->pid, SIGKILL) == 0, "transform killed");
    if (p->pid > 0)
        waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

static void test_kill_mid_upload(void)
{
    char first[TF_UUID_LEN + 1], second[TF_UUID_LEN + 1], endpoint[96];
    struct file before, after;
    struct h_s3_proxy proxy = {0, 0};
    cJSON *rec;
    double killed;

    /* The first run: part of the day, its file in the bucket. */
    if (start_run("14:30:00Z", "16:00:00Z", first) != 0)
        return;
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, first, 120);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "the first run: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    if (one_file(first, &before) != 0)
        return;
    CHECK_EQ_INT(before.records, silver_day_rows());
    check_object_is(&before, "after the first run");
    CHECK_EQ_INT(h_lake_paths_containing(&stack, "/silver/"), 1);

    /* transform again, writing through the proxy, which stalls silver PUTs. */
    if (h_s3_proxy_start(&proxy, "--stall-put /silver/") != 0) {
        CHECK(0, "the fault proxy started");
        return;
    }
    snprintf(endpoint, sizeof(endpoint), "TICKFLOW_LAKE_S3_ENDPOINT=http://127.0.0.1:%d",
             proxy.port);
    CHECK_EQ_INT(h_stop(&stack.procs[H_TRANSFORM]), 0);
    CHECK_EQ_INT(h_stack_setenv(&stack, endpoint, "TICKFLOW_LAKE_S3_ENDPOINT"), 0);
    CHECK_EQ_INT(
        h_stack_setenv(&stack, "TICKFLOW_HEARTBEAT_TIMEOUT=5", "TICKFLOW_HEARTBEAT_TIMEOUT"), 0);
    CHECK_EQ_INT(h_stack_restart(&stack, H_TRANSFORM), 0);

    /* The second run covers the whole day: its file replaces the first's. */
    if (start_run("14:30:00Z", "21:00:00Z", second) != 0) {
        h_s3_proxy_stop(&proxy);
        return;
    }
    for (int i = 0; i < h_timeout(120) * 20 && h_s3_proxy_stat(&proxy, "stalled") < 1 &&
                    h_alive(&stack.procs[H_TRANSFORM]);
         i++)
        h_sleep_ms(50);
    CHECK(h_s3_proxy_stat(&proxy, "stalled") >= 1, "the silver upload reached the proxy");
    kill_transform();
    killed = h_now_s();
    h_s3_proxy_stop(&proxy); /* the upstream connection drops mid-body */

    /* The previous file is whole under its name; nothing else appeared. */
    check_object_is(&before, "after the kill");
    {
        struct tf_buf b;

        tf_buf_init(&b, 64u << 20);
        CHECK(h_lake_read(&stack, before.uri, &b) == before.bytes && b.len > 8 &&
                  memcmp(b.data, "PAR1", 4) == 0 && memcmp(b.data + b.len - 4, "PAR1", 4) == 0,
              "the previous file reads back as Parquet");
        tf_buf_cleanup(&b);
    }
    CHECK_EQ_INT(h_lake_paths_containing(&stack, "/silver/"), 1);
    CHECK_EQ_INT(h_lake_uploads(&stack), 0);
    {
        /* transform is down: its record as the database holds it. */
        const char *idp[1] = {second};
        char *st = h_pg_value(stack.db,
                              "SELECT status || ' ' || coalesce(jsonb_array_length(objects), 0)"
                              " FROM tickflow.job_execution WHERE execution_id = $1"
                              " AND stage = 'transform'",
                              1, idp);

        CHECK_STR(st, "SUCCESS 0"); /* silver was committed, no file listed */
        free(st);
    }
    CHECK_EQ_INT(owed(second), 1);

    /* transform again, straight to the bucket: the file is written, the run converges. */
    CHECK_EQ_INT(h_stack_setenv(&stack, NULL, "TICKFLOW_LAKE_S3_ENDPOINT"), 0);
    CHECK_EQ_INT(h_stack_restart(&stack, H_TRANSFORM), 0);
    for (int i = 0; i < h_timeout(60) * 10 && owed(second) != 0; i++)
        h_sleep_ms(100);
    CHECK_EQ_INT(owed(second), 0);
    printf("# the owed file was written %.1f s after the kill\n", h_now_s() - killed);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, second, 120);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "the second run reached gold: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    rec = h_get_record(stack.procs[H_TRANSFORM].port, second);
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 1); /* the commit stood: only the file was owed */
    cJSON_Delete(rec);
    if (one_file(second, &after) != 0)
        return;
    CHECK_STR(after.uri, before.uri);
    CHECK(strcmp(after.sha, before.sha) != 0, "the file was replaced");
    CHECK(after.records > before.records, "the whole day: %lld records, the part %lld",
          after.records, before.records);
    CHECK_EQ_INT(after.records, silver_day_rows());
    check_object_is(&after, "after the restart");
    CHECK_EQ_INT(h_lake_paths_containing(&stack, "/silver/"), 1);
    CHECK_EQ_INT(h_lake_uploads(&stack), 0);
    CHECK_EQ_INT(
        h_pg_ll(stack.db,
                "SELECT count(*) - count(DISTINCT (ticker, timespan, ts)) FROM silver.bars", 0,
                NULL),
        0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!h_lake_is_s3()) {
        CHECK(0, "the lake must be a bucket: TF_TEST_LAKE=s3 (tests/run.sh runs this test so)");
        return check_summary();
    }
    if (h_stack_start(&stack, "lakecrash", API_KEY, SEED, NULL) == 0 &&
        h_add_job_tickers(stack.db, JOB, "AAPL", 1) == 0)
        test_kill_mid_upload();
    else
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
