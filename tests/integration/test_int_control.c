/*
 * test_int_control.c - the control plane against the real PostgreSQL and
 * Kafka: migrations applied by many processes at once, compare-and-set
 * claims, lease fencing of a stale owner, retries of failed stages, the
 * pool's bound, and a Kafka round trip with headers and committed offsets.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/kafka.h"
#include "tf/pg.h"
#include "tf/time.h"

#define RACERS 8

static char dsn[1024];
static char dbname[64];

struct racer {
    pthread_t thr;
    int index;
    enum tf_rc rc;
    int wins;
    const char (*ids)[TF_UUID_LEN + 1];
    int nids;
};

static void *migrate_racer(void *arg)
{
    struct racer *r = arg;
    char err[512];
    PGconn *conn = tf_pg_connect(dsn, err, sizeof(err));

    r->rc = conn ? tf_pg_migrate(conn, err, sizeof(err)) : TF_ERR_DB;
    if (r->rc != TF_OK)
        fprintf(stderr, "racer %d: %s\n", r->index, err);
    PQfinish(conn);
    return NULL;
}

static void test_concurrent_migrations(PGconn *db)
{
    struct racer racers[RACERS];

    memset(racers, 0, sizeof(racers));
    for (int i = 0; i < RACERS; i++) {
        racers[i].index = i;
        pthread_create(&racers[i].thr, NULL, migrate_racer, &racers[i]);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(racers[i].thr, NULL);
        CHECK(racers[i].rc == TF_OK, "racer %d migrated: %s", i, tf_rc_str(racers[i].rc));
    }
    CHECK_EQ_INT(h_pg_ll(db, "SELECT count(*) FROM tickflow.schema_migrations", 0, NULL),
                 tf_pg_schema_version());
    CHECK_EQ_INT(h_pg_ll(db, "SELECT max(version) FROM tickflow.schema_migrations", 0, NULL),
                 tf_pg_schema_version());
    /* No migration seeds a job (the demo adds its own). */
    CHECK_EQ_INT(h_pg_ll(db, "SELECT count(*) FROM tickflow.job_config", 0, NULL), 0);
}

static void new_record(PGconn *conn, char id[TF_UUID_LEN + 1], int max_attempts)
{
    cJSON *tickers = cJSON_CreateStringArray((const char *[]){"AAPL", "C:EURUSD"}, 2);
    struct tf_exec_plan plan;
    int created = 0;

    tf_uuid_new(id);
    memset(&plan, 0, sizeof(plan));
    snprintf(plan.execution_id, sizeof(plan.execution_id), "%s", id);
    plan.stage = "extract";
    snprintf(plan.job_name, sizeof(plan.job_name), "demo_us_equities");
    plan.trigger = "http";
    plan.window_start = 1709562600;
    plan.window_end = 1709585999;
    plan.tickers = tickers;
    plan.max_attempts = max_attempts;
    CHECK(tf_exec_insert(conn, &plan, &created) == TF_OK && created, "record created");
    CHECK(tf_exec_insert(conn, &plan, &created) == TF_OK && !created, "second insert finds it");
    cJSON_Delete(tickers);
}

static void *claim_racer(void *arg)
{
    struct racer *r = arg;
    char err[512], worker[32];
    PGconn *conn = tf_pg_connect(dsn, err, sizeof(err));

    snprintf(worker, sizeof(worker), "racer-%d", r->index);
    for (int i = 0; conn && i < r->nids; i++) {
        int attempt = 0;
        if (tf_exec_claim(conn, r->ids[i], "extract", worker, &attempt) == TF_OK)
            r->wins++;
    }
    PQfinish(conn);
    return NULL;
}

/* Many workers claim the same stages at once: each stage has one owner. */
static void test_claims_are_exclusive(PGconn *db)
{
    enum { N = 25 };
    static char ids[N][TF_UUID_LEN + 1];
    struct racer racers[RACERS];
    int wins = 0;

    for (int i = 0; i < N; i++)
        new_record(db, ids[i], 3);
    memset(racers, 0, sizeof(racers));
    for (int i = 0; i < RACERS; i++) {
        racers[i].index = i;
        racers[i].ids = (const char(*)[TF_UUID_LEN + 1]) ids;
        racers[i].nids = N;
        pthread_create(&racers[i].thr, NULL, claim_racer, &racers[i]);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(racers[i].thr, NULL);
        wins += racers[i].wins;
    }
    CHECK_EQ_INT(wins, N);
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE status = 'RUNNING'"
                         " AND attempt = 1",
                         0, NULL),
                 N);
}

/* A stale owner that wakes up after its lease moved on can write nothing. */
static void test_lease_fencing(PGconn *db)
{
    char id[TF_UUID_LEN + 1];
    const char *params[1] = {id};
    int first = 0, second = 0;
    cJSON *objects = cJSON_CreateArray();
    struct tf_exec_result ok = {objects, 10, 9, 1, NULL};
    cJSON *rec = NULL;

    new_record(db, id, 3);
    CHECK(tf_exec_claim(db, id, "extract", "old", &first) == TF_OK && first == 1, "first claim");
    CHECK(tf_exec_claim(db, id, "extract", "other", &second) == TF_ERR_CONFLICT,
          "a RUNNING stage cannot be claimed");
    /* The sweeper declares the silent owner a zombie; a new owner takes over. */
    PQclear(PQexecParams(db,
                         "UPDATE tickflow.job_execution SET status = 'ZOMBIE'"
                         " WHERE execution_id = $1",
                         1, NULL, params, NULL, NULL, 0));
    CHECK(tf_exec_claim(db, id, "extract", "new", &second) == TF_OK && second == 2,
          "zombie reclaimed with attempt 2");
    CHECK(tf_exec_heartbeat(db, id, "extract", first) == TF_ERR_LEASE, "stale heartbeat");
    CHECK(tf_pg_cmd(db, "BEGIN") == TF_OK, "begin");
    CHECK(tf_exec_fence(db, id, "extract", first) == TF_ERR_LEASE, "stale fence");
    CHECK(tf_pg_cmd(db, "ROLLBACK") == TF_OK, "rollback");
    CHECK(tf_exec_finish(db, id, "extract", first, &ok) == TF_ERR_LEASE, "stale finish");
    CHECK(tf_exec_heartbeat(db, id, "extract", second) == TF_OK, "owner heartbeat");
    CHECK(tf_exec_finish(db, id, "extract", second, &ok) == TF_OK, "owner finish");
    CHECK(tf_exec_finish(db, id, "extract", second, &ok) == TF_ERR_LEASE, "finish only once");
    CHECK(tf_exec_get(db, id, "extract", &rec) == TF_OK, "get");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(rec, "status")), "SUCCESS");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(rec, "worker_id")), "new");
    CHECK_EQ_INT(cJSON_GetObjectItem(rec, "records_out")->valueint, 9);
    CHECK_EQ_INT(cJSON_GetObjectItem(rec, "records_rejected")->valueint, 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(rec, "window_start")),
              "2024-03-04T14:30:00Z");
    cJSON_Delete(rec);
    cJSON_Delete(objects);
}

/* A failed stage runs again while attempts are left, then stays FAILED. */
static void test_requeue(PGconn *db)
{
    char id[TF_UUID_LEN + 1];
    struct tf_exec_result failed = {NULL, 0, 0, 0, "provider said no"};
    char *event = NULL;
    int attempt = 0;

    new_record(db, id, 2);
    CHECK(tf_exec_requeue(db, id, "extract") == TF_ERR_CONFLICT, "PENDING is not requeued");
    CHECK(tf_exec_claim(db, id, "extract", "w", &attempt) == TF_OK, "claim 1");
    CHECK(tf_exec_fail(db, id, "extract", attempt, &failed) == TF_OK, "fail 1");
    CHECK(tf_exec_event(db, id, "extract", &event) == TF_OK && strstr(event, "provider said no"),
          "the event carries the error");
    free(event);
    CHECK(tf_exec_requeue(db, id, "extract") == TF_OK, "requeue after attempt 1 of 2");
    CHECK(tf_exec_claim(db, id, "extract", "w", &attempt) == TF_OK && attempt == 2, "claim 2");
    CHECK(tf_exec_fail(db, id, "extract", attempt, &failed) == TF_OK, "fail 2");
    CHECK(tf_exec_requeue(db, id, "extract") == TF_ERR_CONFLICT, "no attempt left");
}

/* A statement failed by a deadlock is tried again; other errors are not. */
static void test_exec_retry(PGconn *db)
{
    PGresult *res;

    res = PQexec(db, "CREATE SEQUENCE retry_seq;"
                     " CREATE FUNCTION retry_flaky() RETURNS bigint LANGUAGE plpgsql AS $$"
                     " DECLARE n bigint := nextval('retry_seq'); BEGIN"
                     "  IF n < 3 THEN RAISE EXCEPTION 'made up' USING ERRCODE = '40P01'; END IF;"
                     "  RETURN n; END $$;"
                     " CREATE FUNCTION retry_broken() RETURNS bigint LANGUAGE plpgsql AS $$"
                     " BEGIN PERFORM nextval('retry_seq');"
                     "  RAISE EXCEPTION 'made up' USING ERRCODE = '22012'; END $$");
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "setup: %s", PQresultErrorMessage(res));
    PQclear(res);
    res = tf_pg_exec_retry(db, "SELECT retry_flaky()", 0, NULL, 5);
    CHECK(tf_pg_ok(res), "third try succeeds: %s", PQresultErrorMessage(res));
    if (tf_pg_ok(res))
        CHECK_STR(PQgetvalue(res, 0, 0), "3");
    PQclear(res);
    res = tf_pg_exec_retry(db, "SELECT setval('retry_seq', 1, false), retry_flaky()", 0, NULL, 2);
    CHECK_STR(tf_pg_sqlstate(res), "40P01");
    PQclear(res);
    /* Two tries of a deadlock, then one of another error: 1, 1, then 2. */
    res = tf_pg_exec_retry(db, "SELECT retry_broken()", 0, NULL, 5);
    CHECK_STR(tf_pg_sqlstate(res), "22012");
    PQclear(res);
    res = PQexec(db, "SELECT last_value FROM retry_seq");
    CHECK_STR(PQgetvalue(res, 0, 0), "2");
    PQclear(res);
}

static void test_pool_bound(void)
{
    struct tf_pg_pool *pool = tf_pg_pool_new(dsn, 2);
    char err[256] = "";
    PGconn *a = tf_pg_pool_get(pool, 1000, err, sizeof(err));
    PGconn *b = tf_pg_pool_get(pool, 1000, err, sizeof(err));
    int64_t t0 = tf_time_mono_ms();
    PGconn *c = tf_pg_pool_get(pool, 300, err, sizeof(err));
    int64_t waited = tf_time_mono_ms() - t0;

    CHECK(a && b, "two connections");
    CHECK(c == NULL && strstr(err, "no free database connection"), "third waits then fails");
    CHECK(waited >= 250, "waited %lld ms for a free connection", (long long)waited);
    tf_pg_pool_put(pool, a);
    c = tf_pg_pool_get(pool, 300, err, sizeof(err));
    CHECK(c == a, "a returned connection is reused");
    tf_pg_pool_put(pool, b);
    tf_pg_pool_put(pool, c);
    tf_pg_pool_free(pool);
}

/*
 * A connection whose server side went away while it sat in the pool (a
 * restart, a failover, an administrator) is not handed out: the next get,
 * at once, gives one that works.
 */
static void test_pool_drops_closed(PGconn *db)
{
    struct tf_pg_pool *pool = tf_pg_pool_new(dsn, 1);
    char err[256] = "", pid[24];
    const char *params[1] = {pid};
    PGconn *a = tf_pg_pool_get(pool, 1000, err, sizeof(err));
    PGconn *b;
    PGresult *res;
    struct pollfd sock = {.fd = -1, .events = POLLIN};

    CHECK(a != NULL, "a connection: %s", err);
    if (!a) {
        tf_pg_pool_free(pool);
        return;
    }
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(a));
    sock.fd = PQsocket(a);
    tf_pg_pool_put(pool, a);
    CHECK_EQ_INT(
        h_pg_ll(db, "SELECT count(*) FROM (SELECT pg_terminate_backend($1::int)) t", 1, params), 1);
    /* Until the server's goodbye (its message, then the close) reaches the pooled
     * socket, the connection looks open: what the pool checks is there. */
    CHECK(poll(&sock, 1, h_timeout(5) * 1000) == 1,
          "the pooled connection's socket says it closed");
    b = tf_pg_pool_get(pool, 1000, err, sizeof(err));
    CHECK(b != NULL, "a connection after the server closed the pooled one: %s", err);
    res = b ? PQexec(b, "SELECT 1") : NULL;
    CHECK(tf_pg_ok(res), "the connection handed out works at once");
    CHECK(b && PQbackendPID(b) != (int)strtol(pid, NULL, 10), "a new server process serves it");
    PQclear(res);
    tf_pg_pool_put(pool, b);
    tf_pg_pool_free(pool);
}

static void test_kafka_round_trip(void)
{
    const char *brokers = getenv("TICKFLOW_KAFKA_BROKERS");
    struct tf_kafka *kafka = NULL;
    struct tf_kafka_consumer *cons = NULL;
    char topic[96], group[96], err[256];
    const char *topics[1] = {topic};
    int got = 0;

    snprintf(topic, sizeof(topic), "int%ld.roundtrip", (long)getpid());
    snprintf(group, sizeof(group), "int%ld.group", (long)getpid());
    CHECK(tf_kafka_producer_new(brokers, h_kafka_opts(), "int", 10000, &kafka, err, sizeof(err)) ==
              TF_OK,
          "%s", err);
    if (!kafka)
        return;
    CHECK(tf_kafka_ensure_topics(kafka, topics, 1, 2, 1, err, sizeof(err)) == TF_OK, "%s", err);
    CHECK(tf_kafka_ensure_topics(kafka, topics, 1, 2, 1, err, sizeof(err)) == TF_OK,
          "existing topic is fine: %s", err);
    CHECK(tf_kafka_ping(kafka, 5000) == TF_OK, "ping");
    for (int i = 0; i < 3; i++) {
        char value[32];
        snprintf(value, sizeof(value), "{\"n\":%d}", i);
        CHECK(tf_kafka_produce(kafka, topic, "job-a", value, strlen(value),
                               "11111111-2222-4333-8444-555555555555", i == 2 ? "why" : NULL, 10000,
                               err, sizeof(err)) == TF_OK,
              "produce %d: %s", i, err);
    }
    tf_kafka_producer_free(kafka);
    CHECK(tf_kafka_consumer_new(brokers, h_kafka_opts(), group, topic, &cons, err, sizeof(err)) ==
              TF_OK,
          "%s", err);
    for (int i = 0; i < h_timeout(30) * 2 && got < 3; i++) {
        rd_kafka_message_t *msg = tf_kafka_consumer_poll(cons, 500);
        char id[64] = "", reason[16] = "";
        char want[32];
        if (!msg)
            continue;
        snprintf(want, sizeof(want), "{\"n\":%d}", got);
        /* One key: one partition, so the order is the order produced. */
        CHECK(msg->len == strlen(want) && memcmp(msg->payload, want, msg->len) == 0,
              "message %d in order", got);
        CHECK(tf_kafka_header(msg, "execution_id", id, sizeof(id)) &&
                  strcmp(id, "11111111-2222-4333-8444-555555555555") == 0,
              "execution_id header");
        CHECK(tf_kafka_header(msg, "reason", reason, sizeof(reason)) == (got == 2),
              "reason header only where given");
        CHECK(tf_kafka_commit(cons, msg) == TF_OK, "commit");
        rd_kafka_message_destroy(msg);
        got++;
    }
    CHECK_EQ_INT(got, 3);
    tf_kafka_consumer_free(cons);
    snprintf(topic, sizeof(topic), "int%ld.", (long)getpid());
    CHECK_EQ_INT(h_topics_drop(topic), 1);
    /* The group resumes after its committed offset: nothing is delivered again. */
    cons = NULL;
    CHECK(tf_kafka_consumer_new(brokers, h_kafka_opts(), group, topic, &cons, err, sizeof(err)) ==
              TF_OK,
          "%s", err);
    got = 0;
    for (int i = 0; i < 12; i++) {
        rd_kafka_message_t *msg = tf_kafka_consumer_poll(cons, 500);
        if (msg) {
            got++;
            rd_kafka_message_destroy(msg);
        }
    }
    CHECK_EQ_INT(got, 0);
    tf_kafka_consumer_free(cons);
}

int main(void)
{
    const char *base = getenv("TICKFLOW_PG_DSN");
    PGconn *db = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!base || !getenv("TICKFLOW_KAFKA_BROKERS")) {
        CHECK(0, "TICKFLOW_PG_DSN and TICKFLOW_KAFKA_BROKERS must be set (tests/env/up.sh)");
        return check_summary();
    }
    snprintf(dbname, sizeof(dbname), "tickflow_int_%ld", (long)getpid());
    if (h_pg_create_db(base, dbname, dsn, sizeof(dsn)) != 0) {
        CHECK(0, "cannot create database %s", dbname);
        return check_summary();
    }
    db = PQconnectdb(dsn);
    CHECK(PQstatus(db) == CONNECTION_OK, "connect");
    test_concurrent_migrations(db);
    CHECK_EQ_INT(h_add_demo_job(db), 0);
    test_claims_are_exclusive(db);
    test_lease_fencing(db);
    test_requeue(db);
    test_exec_retry(db);
    test_pool_bound();
    test_pool_drops_closed(db);
    test_kafka_round_trip();
    PQfinish(db);
    h_pg_drop_db(base, dbname);
    return check_summary();
}
