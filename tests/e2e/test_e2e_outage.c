/*
 * test_e2e_outage.c - servers going away cost retries, not data.
 *
 * The stack runs as in the pipeline test; then the real Kafka broker and
 * the real PostgreSQL server are stopped and started again under it with
 * the project's own tests/env scripts:
 *
 *   - Kafka down: extract still lands bronze and records SUCCESS; its
 *     event fails to go out, waits in the record (the outbox) and is
 *     re-published by the sweeper once the broker is back; transform and
 *     aggregate then finish the execution.
 *   - PostgreSQL down: a POST gets a clear 503 and leaves nothing; readiness
 *     says which dependency is missing; once the server is back the same
 *     POST runs the execution once, with every bar once. An upstream event
 *     that arrives meanwhile waits in its partition (no dead letter) and is
 *     handled when the server is back.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../services/marketsim/gen.h"
#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/kafka.h"
#include "tf/time.h"

#define API_KEY "outage-Key-51f0aa"
#define SEED    11
#define JOB     "outage_job"

static struct h_stack stack;

/* Runs tests/env/<script> <action>, output to the stack's env.log. */
static int env_script(const char *script, const char *action)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "bash tests/env/%s %s >> '%s/env.log' 2>&1", script, action,
             stack.dir);
    return system(cmd);
}

static char *field(const char *json, const char *key)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *it = cJSON_GetObjectItem(root, key);
    char *out = NULL;

    if (cJSON_IsString(it))
        out = strdup(it->valuestring);
    else if (cJSON_IsObject(it))
        out = cJSON_PrintUnformatted(it);
    cJSON_Delete(root);
    return out;
}

/* Polls the aggregate stage until it is final; returns its status (new string). */
static char *wait_aggregate(const char *id, int seconds)
{
    char path[128];

    snprintf(path, sizeof(path), "/v1/executions/%s", id);
    for (int i = 0; i < h_timeout(seconds) * 5 && h_stack_alive(&stack); i++) {
        struct h_resp r;
        char *status = NULL;

        if (h_http("GET", stack.procs[H_AGGREGATE].port, path, NULL, NULL, &r) == 0 &&
            r.status == 200)
            status = field(r.body, "status");
        h_resp_free(&r);
        if (status && (strcmp(status, "SUCCESS") == 0 || strcmp(status, "FAILED") == 0))
            return status;
        free(status);
        h_sleep_ms(200);
    }
    return NULL;
}

/*
 * Sends a request and checks the answer's status and, when key is given,
 * that the answer's member key (text, or an object as JSON) contains want.
 */
static void expect(const char *method, int port, const char *path, const char *body, long status,
                   const char *key, const char *want)
{
    struct h_resp r;
    char *got = NULL;

    h_http(method, port, path, body, NULL, &r);
    CHECK(r.status == status, "%s %s: status %ld, want %ld", method, path, r.status, status);
    if (key) {
        got = field(r.body, key);
        CHECK(got && strstr(got, want), "%s %s: %s is %s, want %s", method, path, key,
              got ? got : "(none)", want);
    }
    free(got);
    h_resp_free(&r);
}

/* A new execution id and the POST body for JOB over [ws, we). */
static void new_execution(const char *ws, const char *we, int wait, char id[TF_UUID_LEN + 1],
                          char *body, size_t len)
{
    tf_uuid_new(id);
    snprintf(body, len,
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\",\"wait_seconds\":%d}",
             id, ws, we, wait);
}

static long long silver_rows(int64_t ws, int64_t we)
{
    char a[32], b[32];
    const char *params[2] = {a, b};

    tf_time_format(ws, a, sizeof(a));
    tf_time_format(we, b, sizeof(b));
    return h_pg_ll(stack.db,
                   "SELECT count(*) FROM silver.bars WHERE ticker = 'AAPL'"
                   " AND timespan = '1minute' AND ts >= $1 AND ts < $2",
                   2, params);
}

static size_t generated(int64_t ws, int64_t we)
{
    struct ms_bar *bars = NULL;
    size_t n = ms_gen_minute_bars(SEED, "AAPL", ws * 1000, we * 1000 - 1, &bars);

    free(bars);
    return n;
}

/*
 * The execution went through gold once (each stage SUCCESS on its first
 * attempt) and silver holds every generated bar of [ws, we) once.
 */
static void expect_completed(const char *id, int64_t ws, int64_t we, const char *after, int seconds)
{
    const char *params[1] = {id};
    char *status = wait_aggregate(id, seconds);

    CHECK(status && strcmp(status, "SUCCESS") == 0, "aggregate after %s: %s", after,
          status ? status : "timeout");
    free(status);
    CHECK_EQ_INT(silver_rows(ws, we), generated(ws, we));
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND status = 'SUCCESS' AND attempt = 1",
                         1, params),
                 3);
}

static void test_kafka_outage(void)
{
    const char *ws_s = "2024-03-06T14:30:00Z", *we_s = "2024-03-06T21:00:00Z";
    char id[TF_UUID_LEN + 1], body[512];
    const char *params[1] = {id};
    int64_t ws = 0, we = 0;

    CHECK(tf_time_parse(ws_s, &ws) == TF_OK && tf_time_parse(we_s, &we) == TF_OK, "parse");
    new_execution(ws_s, we_s, 60, id, body, sizeof(body));

    CHECK_EQ_INT(env_script("kafka.sh", "down"), 0);
    expect("GET", stack.procs[H_EXTRACT].port, "/readyz", NULL, 503, "kafka", "unreachable");
    /* extract needs no broker to land bronze and record its outcome. */
    expect("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, 200, "status", "SUCCESS");
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND stage = 'extract' AND event_published_at IS NULL",
                         1, params),
                 1);

    for (int i = 0; i < h_timeout(20) * 5; i++) {
        if (h_file_contains(stack.procs[H_EXTRACT].log, "the sweeper retries"))
            break;
        h_sleep_ms(200);
    }
    CHECK(h_file_contains(stack.procs[H_EXTRACT].log, "event not published yet"),
          "the bronze event failed while the broker was down");
    CHECK_EQ_INT(env_script("kafka.sh", "up"), 0);
    expect_completed(id, ws, we, "the broker came back", 150);
    /* Every stage's event went out in the end. */
    for (int i = 0; i < h_timeout(30) * 5; i++) {
        if (h_pg_ll(stack.db,
                    "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                    " AND event_published_at IS NOT NULL",
                    1, params) == 3)
            break;
        h_sleep_ms(200);
    }
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND event_published_at IS NOT NULL",
                         1, params),
                 3);
}

static void test_postgres_outage(void)
{
    const char *ws_s = "2024-03-07T14:30:00Z", *we_s = "2024-03-07T21:00:00Z";
    char id[TF_UUID_LEN + 1], body[512];
    const char *params[1] = {id};
    int64_t ws = 0, we = 0;
    struct h_resp r;

    CHECK(tf_time_parse(ws_s, &ws) == TF_OK && tf_time_parse(we_s, &we) == TF_OK, "parse");
    new_execution(ws_s, we_s, 0, id, body, sizeof(body));

    CHECK_EQ_INT(env_script("pg.sh", "down"), 0);
    expect("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, 503, "error",
           "database_unavailable");
    expect("GET", stack.procs[H_TRANSFORM].port, "/readyz", NULL, 503, "postgres", "unreachable");
    expect("GET", stack.procs[H_TRANSFORM].port, "/healthz", NULL, 200, NULL, NULL);
    /* The console's page needs no database: it loads and says what is wrong. */
    h_http("GET", stack.procs[H_EXTRACT].port, "/ui/", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "<html"), "the console's page while PostgreSQL is down");
    h_resp_free(&r);

    CHECK_EQ_INT(env_script("pg.sh", "up"), 0);
    PQreset(stack.db);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1", 1,
                         params),
                 0);
    /* The orchestrator retries the same POST: it runs once, now. */
    h_http("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &r);
    CHECK_EQ_INT(r.status, 202);
    h_resp_free(&r);
    expect_completed(id, ws, we, "PostgreSQL came back", 120);
}

/*
 * An upstream event that arrives while PostgreSQL is down waits in its
 * partition (no offset commit, no dead letter) and is handled once the
 * server is back.
 */
static void test_event_during_db_outage(void)
{
    char id[TF_UUID_LEN + 1], src[TF_UUID_LEN + 1];
    char *from = h_pg_value(stack.db,
                            "SELECT execution_id FROM tickflow.job_execution WHERE stage ="
                            " 'extract' AND status = 'SUCCESS' LIMIT 1",
                            0, NULL);
    char *event = NULL, *status = NULL;
    long long consumed = h_metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total");
    int unsettled = h_file_count(stack.procs[H_TRANSFORM].log, "not settled (");

    CHECK(from != NULL, "a finished extract to copy");
    if (!from)
        return;
    snprintf(src, sizeof(src), "%s", from);
    free(from);
    /* A finished extract whose event this test sends by hand. */
    CHECK(h_copy_extract(stack.db, src, 1, id) == 0, "record copied");
    CHECK(tf_exec_event(stack.db, id, "extract", &event) == TF_OK, "its event");
    CHECK_EQ_INT(env_script("pg.sh", "down"), 0);
    CHECK(event && h_produce(stack.prefix, "tickflow.bronze.v1", id, event) == 0, "event sent");
    free(event);
    for (int i = 0; i < h_timeout(20) * 10; i++) {
        if (h_metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total") > consumed)
            break;
        h_sleep_ms(100);
    }
    CHECK(h_metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total") > consumed,
          "transform has the event while PostgreSQL is down");
    /* Three tries of it failed (each says so in the log), none dead-lettered it. */
    for (double end = h_now_s() + h_timeout(30);
         h_file_count(stack.procs[H_TRANSFORM].log, "not settled (") < unsettled + 3 &&
         h_now_s() < end;)
        h_sleep_ms(100);
    CHECK(h_file_count(stack.procs[H_TRANSFORM].log, "not settled (") >= unsettled + 3,
          "transform tried the event 3 times while PostgreSQL was down");
    CHECK_EQ_INT(h_metric(stack.procs[H_TRANSFORM].port, "tickflow_dead_letters_total"), 0);

    CHECK_EQ_INT(env_script("pg.sh", "up"), 0);
    PQreset(stack.db);
    status = wait_aggregate(id, 120);
    CHECK(status && strcmp(status, "SUCCESS") == 0, "handled once PostgreSQL was back: %s",
          status ? status : "timeout");
    free(status);
    CHECK_EQ_INT(h_metric(stack.procs[H_TRANSFORM].port, "tickflow_dead_letters_total"), 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Deliveries give up after 2 s, so an outage outlasts librdkafka's own
     * retries and only the sweeper's re-publish from the record can recover. */
    static const char *const env[] = {"TICKFLOW_KAFKA_DELIVERY_TIMEOUT_MS=2000", NULL};

    if (h_stack_start(&stack, "outage", API_KEY, SEED, env) == 0) {
        PGresult *res = PQexec(stack.db, "INSERT INTO tickflow.job_config (job_name, provider,"
                                         " tickers, updated_by) VALUES ('" JOB "', 'polygon',"
                                         " '{AAPL}', 'e2e')");
        CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "job insert");
        PQclear(res);
        test_kafka_outage();
        test_postgres_outage();
        test_event_during_db_outage();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    /* Whatever happened above, leave both servers running for the next suite. */
    env_script("up.sh", "");
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
