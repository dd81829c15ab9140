/*
 * test_e2e_faults.c - extract against a misbehaving vendor: marketsim's
 * faults on demand (/_sim/faults), each with its documented outcome.
 *
 *   - 429 (with Retry-After), 500, 503, a reset connection, a truncated or
 *     malformed body once, an answer slower than the request timeout: retried
 *     (a slow one within it is simply waited for), and the run ends with
 *     the same bronze bars and silver rows as a clean run;
 *   - a body that stays malformed: the ticker ends after 5 tries with a
 *     clear error; an error body on HTTP 200: no retry, the vendor's words;
 *   - bars that only appear on a later re-read: the overlapping re-run adds
 *     them, and no bar is ever stored twice;
 *   - SIGTERM during a slow extraction: the stage is handed back (PENDING)
 *     and finishes after a restart.
 */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "../../services/marketsim/gen.h"
#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/gz.h"
#include "tf/lake.h"
#include "tf/time.h"

#define API_KEY "faults-Key-9a31c7"
#define SEED    13

static struct h_stack stack;

static void faults(const char *rules)
{
    CHECK_EQ_INT(h_sim_faults(stack.procs[H_MARKETSIM].port, rules), 200);
}

static void add_job_tickers(const char *name, const char *tickers, int page_limit)
{
    char sql[512];
    PGresult *res;

    snprintf(sql, sizeof(sql),
             "INSERT INTO tickflow.job_config (job_name, provider, tickers, page_limit,"
             " updated_by) VALUES ('%s', 'polygon', '%s', %d, 'e2e')",
             name, tickers, page_limit); /* the test's own constants, not input */
    res = PQexec(stack.db, sql);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "job %s: %s", name, PQresultErrorMessage(res));
    PQclear(res);
}

static void add_job(const char *name, int page_limit)
{
    add_job_tickers(name, "{AAPL}", page_limit);
}

/* POSTs an execution of job over [ws, we) to extract; wait 0 returns at once. */
static cJSON *extract(const char *job, const char *ws, const char *we, int wait, char *id,
                      long *status)
{
    char body[512];
    struct h_resp r;
    cJSON *rec = NULL;

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"%s\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\",\"wait_seconds\":%d}",
             id, job, ws, we, wait);
    *status = 0;
    if (h_http("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &r) == 0) {
        *status = r.status;
        rec = cJSON_Parse(r.body);
    }
    h_resp_free(&r);
    return rec;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));

    return s ? s : "";
}

static long audit_field(const char *id, const char *field)
{
    char path[128];
    struct h_resp r;
    long v = -1;

    snprintf(path, sizeof(path), "/v1/executions/%s/audit", id);
    h_http("GET", stack.procs[H_EXTRACT].port, path, NULL, NULL, &r);
    {
        cJSON *root = cJSON_Parse(r.body);
        cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "attempts"), 0);
        cJSON *it = cJSON_GetObjectItem(first, field);
        if (cJSON_IsNumber(it))
            v = (long)it->valuedouble;
        cJSON_Delete(root);
    }
    h_resp_free(&r);
    return v;
}

/*
 * All bars of an extract record's bronze pages, in order (their objects
 * come in order of uri: ticker, then page), as one JSON array (new).
 */
static cJSON *bronze_bars(const cJSON *rec)
{
    cJSON *all = cJSON_CreateArray();
    cJSON *objects = h_get_objects(stack.procs[H_EXTRACT].port, jstr(rec, "execution_id"), 2);
    const cJSON *o;

    CHECK(objects && cJSON_GetArraySize(objects) ==
                         h_jnum(cJSON_GetObjectItem(rec, "objects_summary"), "count"),
          "the record's objects, page by page");
    cJSON_ArrayForEach(o, objects)
    {
        const char *uri = jstr(o, "uri");
        struct tf_buf packed, plain;
        cJSON *page, *bar;

        tf_buf_init(&packed, 64u << 20);
        tf_buf_init(&plain, 256u << 20);
        CHECK(h_lake_read(&stack, uri, &packed) >= 0, "read bronze %s", uri);
        CHECK(packed.len > 0 &&
                  tf_unpack(jstr(o, "encoding"), packed.data, packed.len, &plain) == TF_OK,
              "bronze page %s inflates", uri);
        page = cJSON_ParseWithLength(plain.data ? plain.data : "", plain.len);
        cJSON_ArrayForEach(bar, cJSON_GetObjectItem(page, "results"))
        {
            cJSON_AddItemToArray(all, cJSON_Duplicate(bar, 1));
        }
        cJSON_Delete(page);
        tf_buf_cleanup(&packed);
        tf_buf_cleanup(&plain);
    }
    cJSON_Delete(objects);
    return all;
}

static size_t generated_for(const char *ticker, const char *ws, const char *we)
{
    int64_t a = 0, b = 0;
    struct ms_bar *bars = NULL;
    size_t n;

    CHECK(tf_time_parse(ws, &a) == TF_OK && tf_time_parse(we, &b) == TF_OK, "parse");
    n = ms_gen_minute_bars(SEED, ticker, a * 1000, b * 1000 - 1, &bars);
    free(bars);
    return n;
}

static size_t generated(const char *ws, const char *we)
{
    return generated_for("AAPL", ws, we);
}

static long long silver_count(const char *ws, const char *we)
{
    const char *params[2] = {ws, we};

    return h_pg_ll(stack.db,
                   "SELECT count(*) FROM silver.bars WHERE ticker = 'AAPL'"
                   " AND timespan = '1minute' AND ts >= $1 AND ts < $2",
                   2, params);
}

/* Faults that cost retries only: the outcome equals a clean run's. */
static void test_retried_faults(void)
{
    static const struct {
        const char *rules;
        long retries;
    } cases[] = {
        {"{\"rules\":[{\"fault\":\"429\",\"times\":2,\"retry_after\":1}]}", 2},
        {"{\"rules\":[{\"fault\":\"500\",\"times\":1},{\"fault\":\"503\",\"times\":1}]}", 2},
        {"{\"rules\":[{\"fault\":\"reset\",\"times\":1}]}", 1},
        {"{\"rules\":[{\"fault\":\"truncate\",\"times\":1}]}", 1},
        {"{\"rules\":[{\"fault\":\"malformed\",\"times\":1}]}", 1},
        {"{\"rules\":[{\"fault\":\"slow\",\"times\":1,\"delay_ms\":1500}]}", 0},
        /* Slower than the request timeout (3 s here): a timeout, retried. */
        {"{\"rules\":[{\"fault\":\"slow\",\"times\":1,\"delay_ms\":5000}]}", 1},
    };
    const char *ws = "2024-03-05T14:30:00Z", *we = "2024-03-05T21:00:00Z";
    char id[TF_UUID_LEN + 1];
    long status;
    cJSON *clean, *clean_bars;

    faults(NULL);
    clean = extract("e2e_faults", ws, we, 60, id, &status);
    CHECK_STR(jstr(clean, "status"), "SUCCESS");
    clean_bars = bronze_bars(clean);
    CHECK_EQ_INT(cJSON_GetArraySize(clean_bars), generated(ws, we));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *rec, *bars;

        faults(cases[i].rules);
        rec = extract("e2e_faults", ws, we, 90, id, &status);
        CHECK(strcmp(jstr(rec, "status"), "SUCCESS") == 0, "case %zu: %s %s", i,
              jstr(rec, "status"), jstr(rec, "error"));
        CHECK(audit_field(id, "retries") == cases[i].retries, "case %zu: %ld retries, want %ld", i,
              audit_field(id, "retries"), cases[i].retries);
        bars = bronze_bars(rec);
        CHECK(cJSON_Compare(bars, clean_bars, 1), "case %zu: the same bars as the clean run", i);
        cJSON_Delete(bars);
        cJSON_Delete(rec);
    }
    faults(NULL);
    /* Each bar once in silver, after eight runs of the same window. */
    for (int i = 0; i < h_timeout(30) * 10; i++) {
        if (h_pg_ll(stack.db,
                    "SELECT count(*) FROM tickflow.job_execution WHERE job_name = 'e2e_faults'"
                    " AND stage = 'transform' AND status = 'SUCCESS'",
                    0, NULL) >= 8)
            break;
        h_sleep_ms(100);
    }
    CHECK_EQ_INT(silver_count(ws, we), generated(ws, we));
    cJSON_Delete(clean_bars);
    cJSON_Delete(clean);
}

/* Faults that end the ticker: a clear error, no key in it. */
static void test_failing_faults(void)
{
    const char *ws = "2024-03-06T14:30:00Z", *we = "2024-03-06T21:00:00Z";
    char id[TF_UUID_LEN + 1];
    long status;
    cJSON *rec;

    faults("{\"rules\":[{\"fault\":\"malformed\",\"times\":-1}]}");
    rec = extract("e2e_faults", ws, we, 90, id, &status);
    CHECK_STR(jstr(rec, "status"), "FAILED");
    CHECK(strstr(jstr(rec, "error"), "not JSON") && strstr(jstr(rec, "error"), "after 5 tries"),
          "malformed for good: %s", jstr(rec, "error"));
    CHECK_EQ_INT(audit_field(id, "retries"), 4);
    CHECK(!strstr(jstr(rec, "error"), API_KEY), "no key in the error");
    cJSON_Delete(rec);

    faults("{\"rules\":[{\"fault\":\"error200\",\"times\":1}]}");
    rec = extract("e2e_faults", ws, we, 90, id, &status);
    CHECK_STR(jstr(rec, "status"), "FAILED");
    CHECK(strstr(jstr(rec, "error"), "NOT_AUTHORIZED") &&
              strstr(jstr(rec, "error"), "not entitled"),
          "the vendor's words: %s", jstr(rec, "error"));
    CHECK_EQ_INT(audit_field(id, "retries"), 0);
    cJSON_Delete(rec);
    faults(NULL);
}

/* Bars that only appear on a later re-read: the overlapping re-run adds them. */
static void test_late_bars(void)
{
    const char *ws = "2024-03-07T14:30:00Z", *we = "2024-03-07T21:00:00Z";
    char id[TF_UUID_LEN + 1];
    long status;
    cJSON *rec;
    size_t n = generated(ws, we);

    faults("{\"rules\":[{\"fault\":\"late\",\"times\":1,\"late_minutes\":5}]}");
    rec = extract("e2e_late", ws, we, 60, id, &status);
    CHECK_STR(jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(cJSON_GetObjectItem(rec, "records_out")->valueint, n - 5);
    cJSON_Delete(rec);
    faults(NULL);
    rec = extract("e2e_late", ws, we, 60, id, &status);
    CHECK_EQ_INT(cJSON_GetObjectItem(rec, "records_out")->valueint, n);
    cJSON_Delete(rec);
    for (int i = 0; i < h_timeout(30) * 10 && silver_count(ws, we) < (long long)n; i++)
        h_sleep_ms(100);
    CHECK_EQ_INT(silver_count(ws, we), n);
}

/*
 * Stops extract in the middle of execution id (SIGTERM: the stage must be
 * handed back), clears the faults, restarts it, and asks again as an
 * orchestrator would; returns the final record (caller deletes).
 */
static cJSON *stop_and_resume(const char *id, const char *job)
{
    const char *params[1] = {id};
    char body[256];
    long status;
    cJSON *rec;

    CHECK_EQ_INT(h_stop(&stack.procs[H_EXTRACT]), 0);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND stage = 'extract' AND status = 'PENDING' AND attempt = 0",
                         1, params),
                 1);
    faults(NULL);
    CHECK_EQ_INT(h_stack_restart(&stack, H_EXTRACT), 0);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"%s\",\"wait_seconds\":60}", id, job);
    rec = h_call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &status);
    CHECK_EQ_INT(status, 200);
    return rec;
}

/* SIGTERM in the middle of a slow extraction: handed back, then finished. */
static void test_drain(void)
{
    const char *ws = "2024-03-08T14:30:00Z", *we = "2024-03-08T21:00:00Z";
    char id[TF_UUID_LEN + 1], path[96];
    long status;
    int running = 0;
    cJSON *rec;

    faults("{\"rules\":[{\"fault\":\"slow\",\"times\":-1,\"delay_ms\":3000}]}");
    cJSON_Delete(extract("e2e_faults", ws, we, 0, id, &status));
    CHECK_EQ_INT(status, 202);
    snprintf(path, sizeof(path), "/v1/executions/%s", id);
    for (int i = 0; i < h_timeout(10) * 10 && !running; i++) {
        struct h_resp r;
        h_http("GET", stack.procs[H_EXTRACT].port, path, NULL, NULL, &r);
        running = strstr(r.body, "\"RUNNING\"") != NULL;
        h_resp_free(&r);
        h_sleep_ms(100);
    }
    CHECK(running, "the extraction is under way");
    rec = stop_and_resume(id, "e2e_faults");
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 1);
    cJSON_Delete(rec);
}

/*
 * SIGTERM after one ticker's pages were written and while another's are
 * slow: the stage runs again as the same attempt, and what the first run
 * wrote (never recorded) does not stand in its way.
 */
static void test_drain_after_pages(void)
{
    const char *ws = "2024-03-11T13:30:00Z", *we = "2024-03-11T20:00:00Z";
    char id[TF_UUID_LEN + 1], page4[128];
    long status;
    int landed = 0;

    faults("{\"rules\":[{\"ticker\":\"MSFT\",\"fault\":\"slow\",\"times\":-1,"
           "\"delay_ms\":3000}]}");
    cJSON_Delete(extract("e2e_drain", ws, we, 0, id, &status));
    CHECK_EQ_INT(status, 202);
    snprintf(page4, sizeof(page4), "exec=%s/attempt=1/AAPL.page-0004.json", id);
    for (int i = 0; i < h_timeout(10) * 10 && !landed; i++) {
        landed = h_lake_paths_containing(&stack, page4) == 1;
        h_sleep_ms(100);
    }
    CHECK(landed, "AAPL's four pages landed while MSFT's are slow");
    {
        cJSON *rec = stop_and_resume(id, "e2e_drain");
        CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
        CHECK_EQ_INT(h_jnum(rec, "attempt"), 1);
        CHECK_EQ_INT(h_jnum(rec, "records_out"), generated(ws, we) + generated_for("MSFT", ws, we));
        /* Every recorded object is the file under its name, byte for byte. */
        {
            cJSON *bars = bronze_bars(rec);
            CHECK_EQ_INT(cJSON_GetArraySize(bars),
                         generated(ws, we) + generated_for("MSFT", ws, we));
            cJSON_Delete(bars);
        }
        CHECK_EQ_INT(h_lake_paths_containing(&stack, page4), 1);
        cJSON_Delete(rec);
    }
    {
        cJSON *rec = h_wait_stage(&stack, stack.procs[H_TRANSFORM].port, id, 60);
        CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0,
              "transform read the resumed attempt's pages (sha256 checked): %s",
              rec ? h_jstr(rec, "error") : "timed out");
        cJSON_Delete(rec);
    }
}

/*
 * extract killed (SIGKILL) in the middle of a slow extraction and started
 * again under the same TICKFLOW_WORKER_ID: it takes its run back at once,
 * not after the heartbeat timeout (set to 120 s here, so that only the
 * reclaim can explain a quick takeover), and finishes it as attempt 2.
 */
static void test_restart_reclaims(void)
{
    const char *ws = "2024-03-12T14:30:00Z", *we = "2024-03-12T21:00:00Z";
    char id[TF_UUID_LEN + 1];
    const char *idp[1] = {id};
    struct h_proc *ex = &stack.procs[H_EXTRACT];
    long status;
    int running = 0;
    double restarted, taken = 0;
    cJSON *rec;

    CHECK_EQ_INT(h_stop(ex), 0);
    CHECK_EQ_INT(h_stack_setenv(&stack, "TICKFLOW_WORKER_ID=extract-0", "TICKFLOW_WORKER_ID"), 0);
    CHECK_EQ_INT(
        h_stack_setenv(&stack, "TICKFLOW_HEARTBEAT_TIMEOUT=120", "TICKFLOW_HEARTBEAT_TIMEOUT"), 0);
    CHECK_EQ_INT(h_stack_restart(&stack, H_EXTRACT), 0);
    faults("{\"rules\":[{\"fault\":\"slow\",\"times\":-1,\"delay_ms\":3000}]}");
    cJSON_Delete(extract("e2e_faults", ws, we, 0, id, &status));
    CHECK_EQ_INT(status, 202);
    for (int i = 0; i < h_timeout(10) * 10 && !running; i++) {
        running =
            h_pg_ll(stack.db,
                    "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                    " AND stage = 'extract' AND status = 'RUNNING' AND worker_id = 'extract-0'",
                    1, idp) == 1;
        if (!running)
            h_sleep_ms(100);
    }
    CHECK(running, "the extraction is under way as extract-0");
    CHECK(ex->pid > 0 && kill(ex->pid, SIGKILL) == 0, "extract killed");
    if (ex->pid > 0)
        waitpid(ex->pid, NULL, 0);
    ex->pid = 0;
    faults("{\"rules\":[]}");
    CHECK_EQ_INT(h_stack_restart(&stack, H_EXTRACT), 0);
    restarted = h_now_s();
    for (int i = 0; i < h_timeout(60) * 10 && !taken; i++) {
        if (h_pg_ll(stack.db,
                    "SELECT attempt FROM tickflow.job_execution WHERE execution_id = $1"
                    " AND stage = 'extract'",
                    1, idp) >= 2)
            taken = h_now_s() - restarted;
        else
            h_sleep_ms(100);
    }
    CHECK(taken > 0 && taken < 15, "taken back %.1f s after the restart (heartbeat timeout 120 s)",
          taken);
    rec = h_wait_stage(&stack, ex->port, id, 60);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    cJSON_Delete(rec);
    CHECK(h_file_contains(ex->log, "took back 1 run(s) of stage extract"), "the log says so");
    CHECK_EQ_INT(h_stack_setenv(&stack, NULL, "TICKFLOW_WORKER_ID"), 0);
    CHECK_EQ_INT(h_stack_setenv(&stack, NULL, "TICKFLOW_HEARTBEAT_TIMEOUT"), 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const char *const env[] = {"TICKFLOW_EXTRACT_TIMEOUT_MS=3000", NULL};

    if (h_stack_start(&stack, "faults", API_KEY, SEED, env) == 0) {
        add_job("e2e_faults", 100);
        add_job("e2e_late", 50000);
        add_job_tickers("e2e_drain", "{AAPL,MSFT}", 100);
        test_retried_faults();
        test_failing_faults();
        test_late_bars();
        test_drain();
        test_drain_after_pages();
        test_restart_reclaims();
        for (int i = 1; i < H_NPROCS; i++)
            CHECK(!h_file_contains(stack.procs[i].log, API_KEY), "no key in %s's log",
                  stack.procs[i].name);
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
