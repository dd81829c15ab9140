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

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

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
        sleep_ms(200);
    }
    return NULL;
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

static void test_kafka_outage(void)
{
    const char *ws_s = "2024-03-06T14:30:00Z", *we_s = "2024-03-06T21:00:00Z";
    char id[TF_UUID_LEN + 1], body[512];
    const char *params[1] = {id};
    int64_t ws = 0, we = 0;
    struct h_resp r;
    char *status = NULL, *kafka = NULL;

    CHECK(tf_time_parse(ws_s, &ws) == TF_OK && tf_time_parse(we_s, &we) == TF_OK, "parse");
    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\",\"wait_seconds\":60}",
             id, ws_s, we_s);

    CHECK_EQ_INT(env_script("kafka.sh", "down"), 0);
    h_http("GET", stack.procs[H_EXTRACT].port, "/readyz", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    kafka = field(r.body, "kafka");
    CHECK_STR(kafka, "unreachable");
    free(kafka);
    h_resp_free(&r);

    /* extract needs no broker to land bronze and record its outcome. */
    h_http("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    status = field(r.body, "status");
    CHECK_STR(status, "SUCCESS");
    free(status);
    h_resp_free(&r);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND stage = 'extract' AND event_published_at IS NULL",
                         1, params),
                 1);

    for (int i = 0; i < h_timeout(20) * 5; i++) {
        if (h_file_contains(stack.procs[H_EXTRACT].log, "the sweeper retries"))
            break;
        sleep_ms(200);
    }
    CHECK(h_file_contains(stack.procs[H_EXTRACT].log, "event not published yet"),
          "the bronze event failed while the broker was down");
    CHECK_EQ_INT(env_script("kafka.sh", "up"), 0);
    status = wait_aggregate(id, 150);
    CHECK(status && strcmp(status, "SUCCESS") == 0, "aggregate after the broker came back: %s",
          status ? status : "timeout");
    free(status);
    CHECK_EQ_INT(silver_rows(ws, we), generated(ws, we));
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND status = 'SUCCESS' AND attempt = 1",
                         1, params),
                 3);
    /* Every stage's event went out in the end. */
    for (int i = 0; i < h_timeout(30) * 5; i++) {
        if (h_pg_ll(stack.db,
                    "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                    " AND event_published_at IS NOT NULL",
                    1, params) == 3)
            break;
        sleep_ms(200);
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
    char *status = NULL, *pg = NULL, *err = NULL;

    CHECK(tf_time_parse(ws_s, &ws) == TF_OK && tf_time_parse(we_s, &we) == TF_OK, "parse");
    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\"}",
             id, ws_s, we_s);

    CHECK_EQ_INT(env_script("pg.sh", "down"), 0);
    h_http("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    err = field(r.body, "error");
    CHECK(err && strstr(err, "database_unavailable"), "clear error: %s", err ? err : "-");
    free(err);
    h_resp_free(&r);
    h_http("GET", stack.procs[H_TRANSFORM].port, "/readyz", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    pg = field(r.body, "postgres");
    CHECK_STR(pg, "unreachable");
    free(pg);
    h_resp_free(&r);
    h_http("GET", stack.procs[H_TRANSFORM].port, "/healthz", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
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
    status = wait_aggregate(id, 120);
    CHECK(status && strcmp(status, "SUCCESS") == 0, "aggregate after PostgreSQL came back: %s",
          status ? status : "timeout");
    free(status);
    CHECK_EQ_INT(silver_rows(ws, we), generated(ws, we));
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND status = 'SUCCESS' AND attempt = 1",
                         1, params),
                 3);
}

/* Reads one counter sample ("name{...} value") of a service's /metrics. */
static long long metric(int port, const char *name)
{
    struct h_resp r;
    char sample[128];
    long long v = -1;
    const char *at = NULL;

    snprintf(sample, sizeof(sample), "\n%s{", name);
    if (h_http("GET", port, "/metrics", NULL, NULL, &r) == 0)
        at = strstr(r.body, sample);
    if (at)
        v = strtoll(strchr(at + 1, ' ') + 1, NULL, 10);
    h_resp_free(&r);
    return v;
}

/*
 * An upstream event that arrives while PostgreSQL is down waits in its
 * partition (no offset commit, no dead letter) and is handled once the
 * server is back.
 */
static void test_event_during_db_outage(void)
{
    char id[TF_UUID_LEN + 1], src[TF_UUID_LEN + 1], topic[128], err[256];
    const char *params[2] = {id, src};
    char *from = h_pg_value(stack.db,
                            "SELECT execution_id FROM tickflow.job_execution WHERE stage ="
                            " 'extract' AND status = 'SUCCESS' LIMIT 1",
                            0, NULL);
    struct tf_kafka *kafka = NULL;
    char *event = NULL, *status = NULL;
    long long consumed = metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total");
    PGresult *res;

    CHECK(from != NULL, "a finished extract to copy");
    if (!from)
        return;
    snprintf(src, sizeof(src), "%s", from);
    free(from);
    tf_uuid_new(id);
    /* A finished extract whose event this test sends by hand. */
    res = PQexecParams(stack.db,
                       "INSERT INTO tickflow.job_execution (execution_id, stage, job_name,"
                       " status, attempt, window_start, window_end, tickers, objects,"
                       " records_in, records_out, started_at, finished_at, event_published_at)"
                       " SELECT $1, stage, job_name, 'SUCCESS', 1, window_start, window_end,"
                       " tickers, objects, records_in, records_out, now(), now(), now()"
                       " FROM tickflow.job_execution WHERE execution_id = $2"
                       " AND stage = 'extract'",
                       2, NULL, params, NULL, NULL, 0);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "record: %s", PQresultErrorMessage(res));
    PQclear(res);
    CHECK(tf_exec_event(stack.db, id, "extract", &event) == TF_OK, "its event");

    CHECK_EQ_INT(env_script("pg.sh", "down"), 0);
    snprintf(topic, sizeof(topic), "%stickflow.bronze.v1", stack.prefix);
    CHECK(tf_kafka_producer_new(getenv("TICKFLOW_KAFKA_BROKERS"), "outage", 10000, &kafka, err,
                                sizeof(err)) == TF_OK,
          "producer: %s", err);
    CHECK(kafka && event &&
              tf_kafka_produce(kafka, topic, JOB, event, strlen(event), id, NULL, 10000, err,
                               sizeof(err)) == TF_OK,
          "event sent: %s", err);
    tf_kafka_producer_free(kafka);
    free(event);
    for (int i = 0; i < h_timeout(20) * 10; i++) {
        if (metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total") > consumed)
            break;
        sleep_ms(100);
    }
    CHECK(metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total") > consumed,
          "transform has the event while PostgreSQL is down");
    sleep_ms(3000); /* several retries' worth */
    CHECK_EQ_INT(metric(stack.procs[H_TRANSFORM].port, "tickflow_dead_letters_total"), 0);

    CHECK_EQ_INT(env_script("pg.sh", "up"), 0);
    PQreset(stack.db);
    status = wait_aggregate(id, 120);
    CHECK(status && strcmp(status, "SUCCESS") == 0, "handled once PostgreSQL was back: %s",
          status ? status : "timeout");
    free(status);
    CHECK_EQ_INT(metric(stack.procs[H_TRANSFORM].port, "tickflow_dead_letters_total"), 0);
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
