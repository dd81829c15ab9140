/*
 * svc.c - the stage runtime's driver: start-up, the workers, the Kafka
 * consumer, the sweeper and the drain. It calls svc_run.c (runs),
 * svc_http.c (the API) and svc_pool.c (shared resources); none of them
 * calls back. See tf/svc.h for the contract.
 */
#include "tf/svc.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_internal.h"
#include "tf/json.h"
#include "tf/time.h"

/* Transient failures of one event are retried with backoff up to this. */
#define RETRY_MAX_MS 15000

const struct tf_svc_cfg *tf_svc_cfg(const struct tf_svc *svc)
{
    return &svc->cfg;
}

const void *tf_svc_stage_cfg(const struct tf_svc *svc)
{
    return svc->def->cfg;
}

/* clang-format off */
#define SVC_KEY(n, t, f, d, fl, lo, hi) TF_CFG_KEY(struct tf_svc_cfg, n, t, f, d, fl, lo, hi)

/* The runtime's settings; TICKFLOW_HTTP_PORT's default is set per stage. */
static const struct tf_cfg_key svc_keys[] = {
    SVC_KEY("TICKFLOW_API_CONNECTIONS",   TF_CFG_INT, api_connections, "4", 0, 1, 32),
    SVC_KEY("TICKFLOW_API_TOKEN",         TF_CFG_STR, api_token, NULL, TF_CFG_SECRET, 0, 0),
    SVC_KEY("TICKFLOW_HEARTBEAT_TIMEOUT", TF_CFG_INT, heartbeat_timeout, "10", 0, 5, 86400),
    SVC_KEY("TICKFLOW_HTTP_ADDR",         TF_CFG_STR, addr, "0.0.0.0", 0, 0, 0),
    SVC_KEY("TICKFLOW_HTTP_CLIENT_CONNECTIONS", TF_CFG_INT, http_client_connections, "128", 0,
            1, 100000),
    SVC_KEY("TICKFLOW_HTTP_CLIENT_RATE",  TF_CFG_INT, http_client_rate, "0", 0, 0, 1000000),
    SVC_KEY("TICKFLOW_HTTP_PORT",         TF_CFG_INT, port, NULL, 0, 0, 65535),
    SVC_KEY("TICKFLOW_HTTP_READ_TIMEOUT", TF_CFG_INT, http_read_timeout, "30", 0, 1, 3600),
    SVC_KEY("TICKFLOW_KAFKA_BROKERS",     TF_CFG_STR, brokers, NULL, TF_CFG_REQUIRED, 0, 0),
    SVC_KEY("TICKFLOW_KAFKA_DELIVERY_TIMEOUT_MS", TF_CFG_INT, kafka_delivery_timeout_ms,
            "5000", 0, 1000, 600000),
    SVC_KEY("TICKFLOW_KAFKA_PARTITIONS",  TF_CFG_INT, kafka_partitions, "3", 0, 1, 1024),
    SVC_KEY("TICKFLOW_KAFKA_TOPIC_PREFIX", TF_CFG_STR, topic_prefix, "", 0, 0, 0),
    SVC_KEY("TICKFLOW_LAKE_URI",          TF_CFG_STR, lake_uri, "lake", 0, 0, 0),
    SVC_KEY("TICKFLOW_LAKE_S3_ACCESS_KEY_ID", TF_CFG_STR, lake_s3_access_key_id, NULL,
            TF_CFG_SECRET, 0, 0),
    SVC_KEY("TICKFLOW_LAKE_S3_ADDRESSING", TF_CFG_STR, lake_s3_addressing, NULL, 0, 0, 0),
    SVC_KEY("TICKFLOW_LAKE_S3_ENDPOINT",  TF_CFG_STR, lake_s3_endpoint, NULL, 0, 0, 0),
    SVC_KEY("TICKFLOW_LAKE_S3_REGION",    TF_CFG_STR, lake_s3_region, "us-east-1", 0, 0, 0),
    SVC_KEY("TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY", TF_CFG_STR, lake_s3_secret_access_key, NULL,
            TF_CFG_SECRET, 0, 0),
    SVC_KEY("TICKFLOW_LAKE_S3_SESSION_TOKEN", TF_CFG_STR, lake_s3_session_token, NULL,
            TF_CFG_SECRET, 0, 0),
    SVC_KEY("TICKFLOW_LOG_LEVEL",         TF_CFG_STR, log_level, "info", 0, 0, 0),
    SVC_KEY("TICKFLOW_PG_DSN",            TF_CFG_STR, pg_dsn, NULL,
            TF_CFG_REQUIRED | TF_CFG_SECRET, 0, 0),
    SVC_KEY("TICKFLOW_WORKERS",           TF_CFG_INT, workers, "4", 0, 1, 64),
    SVC_KEY("TICKFLOW_WORKER_ID",         TF_CFG_STR, worker_id, NULL, 0, 0, 0),
};
/* clang-format on */
_Static_assert(TF_ARRAY_LEN(svc_keys) == SVC_NKEYS, "SVC_NKEYS counts svc_keys");

/*
 * Loads the runtime's settings, then the stage's, and reports every bad
 * key of both at once. 2 on a configuration error, else 0.
 */
static int svc_load_cfg(struct tf_svc *svc)
{
    const struct tf_stage_def *def = svc->def;
    char err[2048] = "", stage_err[1024] = "", kafka_err[1024] = "";
    enum tf_log_level level = TF_LOG_INFO;
    enum tf_rc rc, stage_rc = TF_OK, kafka_rc;

    snprintf(svc->port_default, sizeof(svc->port_default), "%d", def->default_port);
    memcpy(svc->keys, svc_keys, sizeof(svc_keys));
    for (size_t i = 0; i < TF_ARRAY_LEN(svc_keys); i++)
        if (strcmp(svc->keys[i].name, "TICKFLOW_HTTP_PORT") == 0)
            svc->keys[i].def = svc->port_default;
    rc = tf_cfg_load(svc->keys, TF_ARRAY_LEN(svc_keys), tf_cfg_getenv, NULL, &svc->cfg, err,
                     sizeof(err));
    if (def->nkeys)
        stage_rc = tf_cfg_load(def->keys, def->nkeys, tf_cfg_getenv, NULL, def->cfg, stage_err,
                               sizeof(stage_err));
    kafka_rc = tf_kafka_opts_load(&svc->kafka_opts, NULL, kafka_err, sizeof(kafka_err));
    if (rc != TF_OK || stage_rc != TF_OK || kafka_rc != TF_OK) {
        fprintf(stderr, "%s: configuration errors:\n%s%s%s%s%s\n", def->name, err,
                *err && *stage_err ? "\n" : "", stage_err,
                (*err || *stage_err) && *kafka_err ? "\n" : "", kafka_err);
        return 2;
    }
    if (!tf_pg_dsn_valid(svc->cfg.pg_dsn)) {
        /* libpq's reason may quote the string, password included: not shown. */
        fprintf(stderr,
                "%s: TICKFLOW_PG_DSN: not a connection string libpq can parse (the reason is"
                " not shown: it may quote the password)\n",
                def->name);
        return 2;
    }
    if (svc->cfg.lake_s3_addressing && strcmp(svc->cfg.lake_s3_addressing, "path") != 0 &&
        strcmp(svc->cfg.lake_s3_addressing, "virtual") != 0) {
        fprintf(stderr, "%s: TICKFLOW_LAKE_S3_ADDRESSING must be path or virtual\n", def->name);
        return 2;
    }
    if (tf_log_level_parse(svc->cfg.log_level, &level) != TF_OK) {
        fprintf(stderr, "%s: TICKFLOW_LOG_LEVEL must be debug, info, warn or error\n", def->name);
        return 2;
    }
    tf_log_init(def->name, level);
    tf_cfg_log(svc->keys, TF_ARRAY_LEN(svc_keys), &svc->cfg);
    tf_kafka_opts_log(&svc->kafka_opts);
    if (def->nkeys)
        tf_cfg_log(def->keys, def->nkeys, def->cfg);
    return 0;
}

struct tf_lake *tf_svc_lake(const struct tf_svc *svc)
{
    return svc->lake;
}

const char *tf_svc_worker_id(const struct tf_svc *svc)
{
    return svc->worker_id;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *worker_main(void *arg)
{
    struct tf_svc *svc = arg;
    char id[TF_UUID_LEN + 1];

    while (svc_dequeue(svc, id)) {
        struct tf_logctx log = {{0}, {0}};
        PGconn *conn;

        tf_logctx_set_exec(&log, id);
        conn = svc_get_conn(svc, &log);
        if (!conn)
            continue; /* the row stays PENDING; the sweeper brings it back */
        if (svc_execute(svc, conn, id) != TF_OK)
            tf_log_warn(&log, "run interrupted by a database error; it will be retried");
        svc_put_conn(svc, conn);
    }
    return NULL;
}

/* ---- Kafka: upstream events in ---- */

/* Sends an unusable event to the dead-letter topic with its reason. */
static enum tf_rc dead_letter(struct tf_svc *svc, const rd_kafka_message_t *msg, const char *reason)
{
    char err[256];
    char id[64] = "";
    enum tf_rc rc;

    tf_kafka_header(msg, "execution_id", id, sizeof(id));
    rc = tf_kafka_produce(svc->kafka, svc->topic_dlq, NULL, msg->payload ? msg->payload : "",
                          msg->len, id[0] ? id : NULL, reason,
                          (int)svc->cfg.kafka_delivery_timeout_ms, err, sizeof(err));
    if (rc != TF_OK) {
        tf_log_error(NULL, "dead-letter publish failed: %s", err);
        return rc;
    }
    atomic_fetch_add(&svc->m_dlq, 1);
    tf_log_warn(NULL, "dead-letter topic=%s partition=%d offset=%lld exec=%s reason=%s",
                rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset, id,
                reason);
    return TF_OK;
}

/*
 * Handles one upstream event. TF_OK: settled (commit). TF_DEAD_LETTER:
 * permanently unusable, reason set (dead-letter, then commit). Otherwise a
 * transient failure: try again.
 */
static enum tf_rc consume_one(struct tf_svc *svc, const rd_kafka_message_t *msg, char *reason,
                              size_t rlen)
{
    const struct tf_stage_def *def = svc->def;
    cJSON *ev = NULL;
    cJSON *existing = NULL;
    cJSON *owned = NULL;
    PGconn *conn = NULL;
    struct tf_exec_plan plan;
    struct tf_logctx log = {{0}, {0}};
    const char *id, *stage, *schema;
    enum tf_rc rc = TF_DEAD_LETTER;
    char err[512];
    int created = 0;

    ev = cJSON_ParseWithLength(msg->payload ? msg->payload : "", msg->len);
    if (!ev || !cJSON_IsObject(ev)) {
        snprintf(reason, rlen, "value is not a JSON object");
        goto out;
    }
    schema = tf_json_str(ev, "schema");
    id = tf_json_str(ev, "execution_id");
    stage = tf_json_str(ev, "stage");
    if (!schema || strcmp(schema, "tickflow.stage_event") != 0 || !tf_uuid_valid(id) || !stage ||
        !tf_json_str(ev, "status")) {
        snprintf(reason, rlen, "not a tickflow.stage_event with execution_id, stage, status");
        goto out;
    }
    if (strcmp(stage, def->upstream) != 0) {
        snprintf(reason, rlen, "event of stage %s on the %s topic", stage, def->upstream);
        goto out;
    }
    tf_logctx_set_exec(&log, id);
    if (tf_exec_record_status(ev) != TF_EXEC_SUCCESS) {
        tf_log_info(&log, "upstream %s ended %s: nothing to do", stage, tf_json_str(ev, "status"));
        rc = TF_OK;
        goto out;
    }
    conn = svc_get_conn(svc, &log);
    if (!conn) {
        rc = TF_ERR_DB;
        goto out;
    }
    rc = tf_exec_get(conn, id, def->name, &existing);
    if (rc == TF_OK) {
        /* Known: a newer upstream attempt (a replay) runs it again once it is
         * finished; otherwise run it if nobody has (a POST may have queued
         * it), else settled. */
        rc = svc_rerun_if_newer(svc, conn, id, (int)tf_json_long(ev, "attempt", 0), &log);
        if (rc == TF_OK)
            rc = svc_execute(svc, conn, id);
        goto out;
    }
    if (rc != TF_ERR_NOT_FOUND)
        goto out;
    memset(&plan, 0, sizeof(plan));
    snprintf(plan.execution_id, sizeof(plan.execution_id), "%s", id);
    plan.stage = def->name;
    plan.trigger = "kafka";
    rc = svc_make_plan(svc, conn, ev, &plan, &owned, err, sizeof(err));
    if (rc == TF_ERR_NOT_FOUND || rc == TF_ERR_CONFLICT || rc == TF_ERR_INVALID) {
        snprintf(reason, rlen, "%s", err);
        rc = TF_DEAD_LETTER;
        goto out;
    }
    if (rc != TF_OK)
        goto out;
    rc = tf_exec_insert(conn, &plan, &created);
    if (rc == TF_OK)
        rc = svc_execute(svc, conn, id);
out:
    svc_put_conn(svc, conn);
    cJSON_Delete(owned);
    cJSON_Delete(existing);
    cJSON_Delete(ev);
    return rc;
}

/*
 * Works on one upstream event until it is settled: handled, or unusable
 * and safely on the dead-letter topic. A database or broker that is away
 * is waited for with backoff, however long it takes: the partition waits
 * and nothing is skipped. Returns TF_OK when the offset may be committed,
 * TF_ERR_DRAINING when the process stops first (the event is redelivered).
 */
static enum tf_rc settle(struct tf_svc *svc, const rd_kafka_message_t *msg)
{
    char reason[512];
    int tries = 0;

    for (;;) {
        enum tf_rc rc;
        long wait;

        if (atomic_load(&svc->stopping))
            return TF_ERR_DRAINING;
        reason[0] = '\0';
        rc = consume_one(svc, msg, reason, sizeof(reason));
        if (rc == TF_DEAD_LETTER)
            rc = dead_letter(svc, msg, reason);
        if (rc == TF_OK)
            return TF_OK;
        tries++;
        wait = 250L << (tries < 6 ? tries : 6);
        if (wait > RETRY_MAX_MS)
            wait = RETRY_MAX_MS;
        tf_log_warn(NULL, "event partition=%d offset=%lld not settled (%s): retry %d in %ld ms",
                    (int)msg->partition, (long long)msg->offset, tf_rc_str(rc), tries, wait);
        for (long slept = 0; slept < wait && !atomic_load(&svc->stopping); slept += 100)
            sleep_ms(100);
    }
}

static void *consumer_main(void *arg)
{
    struct tf_svc *svc = arg;

    while (!atomic_load(&svc->stopping)) {
        rd_kafka_message_t *msg = tf_kafka_consumer_poll(svc->consumer, 500);

        if (!msg)
            continue;
        atomic_fetch_add(&svc->m_consumed, 1);
        if (settle(svc, msg) == TF_OK)
            (void)tf_kafka_commit(svc->consumer, msg);
        rd_kafka_message_destroy(msg);
    }
    return NULL;
}

/* ---- the sweeper: zombies, orphans, unpublished events ---- */

/* The stage's tick every TICK_MS; a sweep every SWEEP_TICKS ticks (2 s). */
#define TICK_MS     500
#define SWEEP_TICKS 4

static enum tf_rc publish(struct tf_svc *svc, PGconn *conn, const char *id)
{
    struct tf_logctx log = {{0}, {0}};

    tf_logctx_set_exec(&log, id);
    return svc_publish(svc, conn, id, &log);
}

/* Logs a failed sweep statement; 1 when it succeeded. */
static int swept(enum tf_rc rc, const char *what)
{
    if (rc != TF_OK)
        tf_log_warn(NULL, "sweep failed (%s): %s", what, tf_rc_str(rc));
    return rc == TF_OK;
}

static void sweep(struct tf_svc *svc, PGconn *conn)
{
    const char *stage = svc->def->name;
    struct tf_exec_ids ids = {NULL, 0};

    if (swept(tf_exec_zombie_stale(conn, stage, svc->cfg.heartbeat_timeout, &ids), "zombies")) {
        atomic_fetch_add(&svc->m_takeovers, ids.n);
        for (int i = 0; i < ids.n; i++) {
            struct tf_logctx log = {{0}, {0}};
            tf_logctx_set_exec(&log, ids.id[i]);
            tf_log_warn(&log, "heartbeat lost: stage %s is now ZOMBIE", stage);
            tf_svc_enqueue(svc, ids.id[i]);
        }
    }
    tf_exec_ids_cleanup(&ids);
    /* Exhausted zombies are FAILED: their events go out now. */
    if (swept(tf_exec_zombie_exhausted(conn, stage, &ids), "exhausted zombies"))
        for (int i = 0; i < ids.n; i++)
            (void)publish(svc, conn, ids.id[i]);
    tf_exec_ids_cleanup(&ids);
    if (swept(tf_exec_touch_waiting(conn, stage, svc->cfg.heartbeat_timeout, &ids), "waiting"))
        for (int i = 0; i < ids.n; i++)
            tf_svc_enqueue(svc, ids.id[i]);
    tf_exec_ids_cleanup(&ids);
    /* A worker's own publish has had its delivery timeout by then. One not out goes
     * back to the pool at once, for the next sweep of any replica. */
    if (swept(tf_exec_unpublished(conn, stage, svc->cfg.kafka_delivery_timeout_ms / 1000 + 5, &ids),
              "unpublished"))
        for (int i = 0; i < ids.n; i++)
            if (publish(svc, conn, ids.id[i]) != TF_OK)
                (void)swept(tf_exec_unclaim_event(conn, ids.id[i], stage), "unclaim");
    tf_exec_ids_cleanup(&ids);
}

/*
 * A process that starts under the worker id of one that died takes back
 * at once the runs that one left RUNNING, instead of waiting out their
 * heartbeats (TICKFLOW_WORKER_ID must name one live process at a time).
 */
static void reclaim_own(struct tf_svc *svc)
{
    struct tf_exec_ids ids = {NULL, 0};
    PGconn *conn = svc_get_conn(svc, NULL);

    if (!conn)
        return;
    if (swept(tf_exec_zombie_worker(conn, svc->def->name, svc->worker_id, &ids),
              "this worker's earlier runs") &&
        ids.n > 0) {
        atomic_fetch_add(&svc->m_takeovers, ids.n);
        tf_log_warn(NULL, "took back %d run(s) of stage %s left RUNNING by the previous %s", ids.n,
                    svc->def->name, svc->worker_id);
        for (int i = 0; i < ids.n; i++)
            tf_svc_enqueue(svc, ids.id[i]);
    }
    tf_exec_ids_cleanup(&ids);
    svc_put_conn(svc, conn);
}

static void *sweeper_main(void *arg)
{
    struct tf_svc *svc = arg;

    /* Sweeps every SWEEP_TICKS rounds; the stage's tick runs every round. */
    for (unsigned round = 0; !atomic_load(&svc->stopping); round++) {
        int do_sweep = round % SWEEP_TICKS == 0;
        PGconn *conn = do_sweep || svc->def->tick ? svc_get_conn(svc, NULL) : NULL;

        if (conn) {
            if (do_sweep)
                sweep(svc, conn);
            if (svc->def->tick)
                svc->def->tick(svc, conn);
            svc_put_conn(svc, conn);
        }
        for (int i = 0; i < TICK_MS / 100 && !atomic_load(&svc->stopping); i++)
            sleep_ms(100);
    }
    return NULL;
}

/* ---- start-up and drain ---- */

static enum tf_rc start_database(struct tf_svc *svc)
{
    char err[512];
    PGconn *conn = NULL;

    /* PostgreSQL may still be starting (compose, Kubernetes): wait up to a minute. */
    for (int i = 0; i < 60 && !conn; i++) {
        conn = tf_pg_pool_get(svc->pool, SVC_POOL_WAIT_MS, err, sizeof(err));
        if (!conn && tf_pg_error_permanent(err)) {
            /* Waiting would not help: a certificate, a host name or a password. */
            tf_log_error(NULL,
                         "PostgreSQL refused the connection: %s (not retried: check"
                         " TICKFLOW_PG_DSN's sslmode, sslrootcert, host and password)",
                         err);
            return TF_ERR_DB;
        }
        if (!conn) {
            tf_log_warn(NULL, "waiting for PostgreSQL: %s", err);
            sleep_ms(1000);
        }
    }
    if (!conn)
        return TF_ERR_DB;
    if (tf_pg_migrate(conn, err, sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "migrations failed: %s", err);
        tf_pg_pool_put(svc->pool, conn);
        return TF_ERR_DB;
    }
    tf_log_info(NULL, "schema at version %d", tf_pg_schema_version());
    if (!tf_time_us_eastern_from_zoneinfo())
        tf_log_warn(NULL, "no zone database (America/New_York under $TZDIR or"
                          " /usr/share/zoneinfo; Debian's tzdata): New York's clock follows the"
                          " 2007 rule, so sessions before 2007 are an hour off around DST");
    tf_pg_pool_put(svc->pool, conn);
    return TF_OK;
}

static enum tf_rc start_kafka(struct tf_svc *svc)
{
    const char *prefix = svc->cfg.topic_prefix ? svc->cfg.topic_prefix : "";
    char topics[4][160];
    const char *names[4];
    static const char *const base[4] = {"tickflow.bronze.v1", "tickflow.silver.v1",
                                        "tickflow.gold.v1", "tickflow.dlq.v1"};
    char client[64];
    char group[200];
    char err[512];
    enum tf_rc rc = TF_ERR_KAFKA;

    for (int i = 0; i < 4; i++) {
        snprintf(topics[i], sizeof(topics[i]), "%s%s", prefix, base[i]);
        names[i] = topics[i];
    }
    snprintf(svc->topic_out, sizeof(svc->topic_out), "%s%s", prefix, svc->def->produce_topic);
    snprintf(svc->topic_dlq, sizeof(svc->topic_dlq), "%stickflow.dlq.v1", prefix);
    snprintf(client, sizeof(client), "tickflow-%s", svc->def->name);
    if (tf_kafka_producer_new(svc->cfg.brokers, &svc->kafka_opts, client,
                              (int)svc->cfg.kafka_delivery_timeout_ms, &svc->kafka, err,
                              sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "kafka producer: %s", err);
        return TF_ERR_KAFKA;
    }
    for (int i = 0; i < 30 && rc != TF_OK; i++) {
        rc = tf_kafka_ensure_topics(svc->kafka, names, 4, (int)svc->cfg.kafka_partitions, 1, err,
                                    sizeof(err));
        if (rc == TF_ERR_AUTH) {
            /* Waiting would not help: a certificate, a CA or a password. */
            tf_log_error(NULL,
                         "kafka: %s (not retried: check TICKFLOW_KAFKA_SECURITY_PROTOCOL,"
                         " _SASL_* and _SSL_*)",
                         err);
            return rc;
        }
        if (rc != TF_OK) {
            tf_log_warn(NULL, "waiting for Kafka: %s", err);
            sleep_ms(1000);
        }
    }
    if (rc != TF_OK)
        return rc;
    /* Not fatal: without it, the first event only waits for what this fetches. */
    if (tf_kafka_know_topic(svc->kafka, svc->topic_out, 10000) != TF_OK ||
        tf_kafka_know_topic(svc->kafka, svc->topic_dlq, 10000) != TF_OK)
        tf_log_warn(NULL, "kafka: no metadata yet for %s or %s", svc->topic_out, svc->topic_dlq);
    if (!svc->def->consume_topic)
        return TF_OK;
    snprintf(svc->topic_in, sizeof(svc->topic_in), "%s%s", prefix, svc->def->consume_topic);
    /* A topic just made is unknown to the broker for a moment: a consumer
     * subscribing then would only see it at its next metadata refresh,
     * seconds later, and the first event would wait for that. */
    if (tf_kafka_know_topic(svc->kafka, svc->topic_in, 10000) != TF_OK)
        tf_log_warn(NULL, "kafka: no metadata yet for %s", svc->topic_in);
    snprintf(group, sizeof(group), "%stickflow-%s", prefix, svc->def->name);
    if (tf_kafka_consumer_new(svc->cfg.brokers, &svc->kafka_opts, group, svc->topic_in,
                              &svc->consumer, err, sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "kafka consumer: %s", err);
        return TF_ERR_KAFKA;
    }
    return TF_OK;
}

static void svc_free(struct tf_svc *svc)
{
    atomic_store(&svc->stopping, 1);
    tf_http_stop(svc->http);
    svc_queue_wake(svc);
    for (int i = 0; i < svc->nworkers; i++)
        pthread_join(svc->workers[i], NULL);
    if (svc->consumer_started)
        pthread_join(svc->consumer_thr, NULL);
    if (svc->sweeper_started)
        pthread_join(svc->sweeper_thr, NULL);
    /* Every run has ended: the heartbeats, pools and queue go. */
    svc_pool_cleanup(svc);
    tf_kafka_consumer_free(svc->consumer);
    tf_kafka_producer_free(svc->kafka);
    tf_kafka_opts_cleanup(&svc->kafka_opts);
    tf_lake_free(svc->lake);
    free(svc->workers);
    pthread_mutex_destroy(&svc->qmu);
    pthread_cond_destroy(&svc->qcv);
    pthread_mutex_destroy(&svc->api_mu);
    pthread_mutex_destroy(&svc->done_mu);
    pthread_cond_destroy(&svc->done_cv);
    pthread_mutex_destroy(&svc->beat_mu);
    pthread_cond_destroy(&svc->beat_cv);
    tf_cfg_cleanup(svc->keys, TF_ARRAY_LEN(svc_keys), &svc->cfg);
    if (svc->def->nkeys)
        tf_cfg_cleanup(svc->def->keys, svc->def->nkeys, svc->def->cfg);
    free(svc);
}

static enum tf_rc svc_start(struct tf_svc *svc)
{
    struct tf_lake_s3_cfg s3 = {0};
    struct tf_http_opts opts;
    char err[512];
    char host[128] = "worker";

    if (svc->cfg.worker_id && *svc->cfg.worker_id)
        snprintf(svc->worker_id, sizeof(svc->worker_id), "%s", svc->cfg.worker_id);
    else {
        gethostname(host, sizeof(host) - 1);
        snprintf(svc->worker_id, sizeof(svc->worker_id), "%s/%s/%ld", host, svc->def->name,
                 (long)getpid());
    }
    svc->workers = calloc((size_t)svc->cfg.workers, sizeof(*svc->workers));
    if (!svc->workers || svc_pool_init(svc) != TF_OK)
        return TF_ERR_NOMEM;
    s3.endpoint = svc->cfg.lake_s3_endpoint;
    s3.region = svc->cfg.lake_s3_region;
    s3.addressing = svc->cfg.lake_s3_addressing;
    s3.access_key_id = svc->cfg.lake_s3_access_key_id;
    s3.secret_access_key = svc->cfg.lake_s3_secret_access_key;
    s3.session_token = svc->cfg.lake_s3_session_token;
    if (tf_lake_open(svc->cfg.lake_uri, &s3, &svc->lake, err, sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "lake: %s", err);
        return TF_ERR_IO;
    }
    if (start_database(svc) != TF_OK)
        return TF_ERR_DB;
    if (start_kafka(svc) != TF_OK)
        return TF_ERR_KAFKA;
    for (long i = 0; i < svc->cfg.workers; i++) {
        if (pthread_create(&svc->workers[i], NULL, worker_main, svc) != 0)
            return TF_ERR_NOMEM;
        svc->nworkers++;
    }
    if (svc->consumer) {
        if (pthread_create(&svc->consumer_thr, NULL, consumer_main, svc) != 0)
            return TF_ERR_NOMEM;
        svc->consumer_started = 1;
    }
    if (pthread_create(&svc->sweeper_thr, NULL, sweeper_main, svc) != 0)
        return TF_ERR_NOMEM;
    svc->sweeper_started = 1;
    reclaim_own(svc);
    memset(&opts, 0, sizeof(opts));
    opts.addr = svc->cfg.addr;
    opts.port = svc->cfg.port;
    opts.token = svc->cfg.api_token;
    opts.read_timeout_s = svc->cfg.http_read_timeout;
    opts.client_connections = svc->cfg.http_client_connections;
    opts.client_rate = svc->cfg.http_client_rate;
    opts.handler = svc_http_handle;
    opts.ud = svc;
    if (tf_http_start(&opts, &svc->http, err, sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "http: %s", err);
        return TF_ERR_IO;
    }
    tf_log_info(NULL, "listening port=%d stage=%s worker=%s", tf_http_port(svc->http),
                svc->def->name, svc->worker_id);
    return TF_OK;
}

int tf_svc_main(const struct tf_stage_def *def)
{
    struct tf_svc *svc = calloc(1, sizeof(*svc));
    sigset_t set;
    int sig = 0;
    int code = 0;

    if (!svc)
        return 1;
    /* A run's big buffers (a day of bars, a Parquet file) are mapped and go
     * back to the system when freed, whichever worker thread made them;
     * glibc's moving threshold would otherwise keep them in that thread's
     * arena, and each worker would hold its own high-water mark. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    svc->def = def;
    pthread_mutex_init(&svc->qmu, NULL);
    pthread_cond_init(&svc->qcv, NULL);
    pthread_mutex_init(&svc->api_mu, NULL);
    pthread_mutex_init(&svc->done_mu, NULL);
    pthread_cond_init(&svc->done_cv, NULL);
    pthread_mutex_init(&svc->beat_mu, NULL);
    pthread_cond_init(&svc->beat_cv, NULL);
    tf_log_init(def->name, TF_LOG_INFO);
    if (svc_load_cfg(svc) != 0) {
        svc_free(svc);
        return 2;
    }

    /* Signals are taken by sigwait below; every thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (svc_start(svc) != TF_OK) {
        tf_log_error(NULL, "start-up failed");
        code = 1;
    } else {
        sigwait(&set, &sig);
        tf_log_info(NULL, "signal %d: draining", sig);
    }
    svc_free(svc);
    tf_log_info(NULL, "stopped");
    return code;
}
