/*
 * svc.c - the stage runtime: start-up, HTTP API, worker pool, Kafka
 * consumer, sweeper and drain. See tf/svc.h for the contract.
 */
#include "tf/svc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf/json.h"
#include "tf/kafka.h"
#include "tf/pg.h"
#include "tf/time.h"

#define QUEUE_CAP       4096
#define POOL_WAIT_MS    5000
#define MAX_WAIT_SEC    3600
#define LIST_MAX        1000
#define DLQ_AFTER_TRIES 8

struct tf_svc {
    const struct tf_stage_def *def;
    const struct tf_cfg_key *keys;
    size_t nkeys;
    struct tf_svc_cfg cfg;
    struct tf_pg_pool *pool;
    struct tf_kafka *kafka;
    struct tf_kafka_consumer *consumer;
    struct tf_lake *lake;
    struct tf_http_server *http;
    char topic_in[160];
    char topic_out[160];
    char topic_dlq[160];
    char worker_id[160];
    atomic_int stopping;

    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    char (*queue)[TF_UUID_LEN + 1];
    int qhead;
    int qlen;

    pthread_t *workers;
    int nworkers;
    pthread_t consumer_thr;
    int consumer_started;
    pthread_t sweeper_thr;
    int sweeper_started;

    atomic_llong m_success;
    atomic_llong m_failed;
    atomic_llong m_published;
    atomic_llong m_consumed;
    atomic_llong m_dlq;
};

const struct tf_svc_cfg *tf_svc_cfg(const struct tf_svc *svc)
{
    return &svc->cfg;
}

struct tf_lake *tf_svc_lake(const struct tf_svc *svc)
{
    return svc->lake;
}

int tf_svc_stopping(const struct tf_svc *svc)
{
    return atomic_load(&((struct tf_svc *)svc)->stopping);
}

void tf_run_fail(struct tf_run *run, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(run->error, sizeof(run->error), fmt, ap);
    va_end(ap);
}

enum tf_rc tf_run_heartbeat(struct tf_run *run)
{
    return tf_exec_heartbeat(run->conn, run->execution_id, run->svc->def->name, run->attempt);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the work queue of HTTP-triggered and swept runs ---- */

static void enqueue(struct tf_svc *svc, const char *id)
{
    pthread_mutex_lock(&svc->qmu);
    if (svc->qlen < QUEUE_CAP) { /* when full, the sweeper finds the PENDING row later */
        snprintf(svc->queue[(svc->qhead + svc->qlen) % QUEUE_CAP], TF_UUID_LEN + 1, "%s", id);
        svc->qlen++;
        pthread_cond_signal(&svc->qcv);
    }
    pthread_mutex_unlock(&svc->qmu);
}

static int dequeue(struct tf_svc *svc, char out[TF_UUID_LEN + 1])
{
    int got = 0;

    pthread_mutex_lock(&svc->qmu);
    while (svc->qlen == 0 && !atomic_load(&svc->stopping))
        pthread_cond_wait(&svc->qcv, &svc->qmu);
    if (svc->qlen > 0 && !atomic_load(&svc->stopping)) {
        memcpy(out, svc->queue[svc->qhead], TF_UUID_LEN + 1);
        svc->qhead = (svc->qhead + 1) % QUEUE_CAP;
        svc->qlen--;
        got = 1;
    }
    pthread_mutex_unlock(&svc->qmu);
    return got;
}

static int queue_depth(struct tf_svc *svc)
{
    int n;

    pthread_mutex_lock(&svc->qmu);
    n = svc->qlen;
    pthread_mutex_unlock(&svc->qmu);
    return n;
}

/* ---- running a stage ---- */

/* Publishes the stage event of a finished record and marks it published. */
static enum tf_rc publish(struct tf_svc *svc, PGconn *conn, const char *id,
                          const struct tf_logctx *log)
{
    char *event = NULL;
    cJSON *parsed = NULL;
    const char *job;
    char err[256];
    enum tf_rc rc;

    rc = tf_exec_event(conn, id, svc->def->name, &event);
    if (rc != TF_OK)
        return rc;
    parsed = cJSON_Parse(event);
    job = parsed ? tf_json_str(parsed, "job_name") : NULL;
    rc = tf_kafka_produce(svc->kafka, svc->topic_out, job, event, strlen(event), id, NULL,
                          (int)svc->cfg.kafka_delivery_timeout_ms, err, sizeof(err));
    if (rc == TF_OK) {
        atomic_fetch_add(&svc->m_published, 1);
        rc = tf_exec_mark_published(conn, id, svc->def->name);
        tf_log_info(log, "event published topic=%s", svc->topic_out);
    } else {
        tf_log_warn(log, "event not published yet (the sweeper retries): %s", err);
    }
    cJSON_Delete(parsed);
    free(event);
    return rc;
}

static int64_t record_time(const cJSON *rec, const char *key)
{
    const char *s = tf_json_str(rec, key);
    int64_t t = 0;

    if (!s || tf_time_parse(s, &t) != TF_OK)
        return 0;
    return t;
}

/*
 * Claims and runs the stage of execution id. Returns TF_OK when the stage
 * is settled (run here, or owned or finished elsewhere); an error when the
 * database failed and the caller may retry.
 */
static enum tf_rc execute(struct tf_svc *svc, PGconn *conn, const char *id)
{
    const struct tf_stage_def *def = svc->def;
    struct tf_run run;
    cJSON *record = NULL;
    cJSON *upstream = NULL;
    struct tf_exec_result result;
    enum tf_rc rc;
    enum tf_rc frc;
    int in_txn = 0;
    int64_t started = tf_time_mono_ms();

    memset(&run, 0, sizeof(run));
    run.svc = svc;
    run.conn = conn;
    snprintf(run.execution_id, sizeof(run.execution_id), "%s", id);
    tf_logctx_set_exec(&run.log, id);

    rc = tf_exec_claim(conn, id, def->name, svc->worker_id, &run.attempt);
    if (rc == TF_ERR_CONFLICT)
        return TF_OK;
    if (rc != TF_OK)
        return rc;
    tf_log_info(&run.log, "stage claimed stage=%s attempt=%d", def->name, run.attempt);

    rc = tf_exec_get(conn, id, def->name, &record);
    if (rc == TF_OK && def->upstream)
        rc = tf_exec_get(conn, id, def->upstream, &upstream);
    if (rc != TF_OK) {
        tf_run_fail(&run, "cannot read the execution records: %s", tf_rc_str(rc));
        goto finish_failed;
    }
    run.record = record;
    run.upstream = upstream;
    snprintf(run.job_name, sizeof(run.job_name), "%s", tf_json_str(record, "job_name"));
    run.window_start = record_time(record, "window_start");
    run.window_end = record_time(record, "window_end");
    run.objects = cJSON_CreateArray();
    if (!run.objects) {
        rc = TF_ERR_NOMEM;
        tf_run_fail(&run, "out of memory");
        goto finish_failed;
    }
    if (def->fenced) {
        rc = tf_pg_cmd(conn, "BEGIN");
        if (rc == TF_OK) {
            in_txn = 1;
            rc = tf_exec_fence(conn, id, def->name, run.attempt);
        }
        if (rc != TF_OK) {
            tf_run_fail(&run, "cannot open the fenced transaction: %s", tf_rc_str(rc));
            goto finish_failed;
        }
    }
    rc = def->run(&run);
    if (rc == TF_OK) {
        result = (struct tf_exec_result){"SUCCESS",       run.objects,          run.records_in,
                                         run.records_out, run.records_rejected, NULL};
        rc = tf_exec_finish(conn, id, def->name, run.attempt, &result);
        if (rc == TF_OK && in_txn) {
            rc = tf_pg_cmd(conn, "COMMIT");
            in_txn = 0;
        }
        if (rc == TF_OK) {
            atomic_fetch_add(&svc->m_success, 1);
            tf_log_info(&run.log,
                        "stage succeeded stage=%s attempt=%d in=%lld out=%lld rejected=%lld "
                        "ms=%lld",
                        def->name, run.attempt, run.records_in, run.records_out,
                        run.records_rejected, (long long)(tf_time_mono_ms() - started));
            goto publish;
        }
        tf_run_fail(&run, "cannot commit the outcome: %s", tf_rc_str(rc));
    }
finish_failed:
    if (in_txn) {
        if (tf_pg_cmd(conn, "ROLLBACK") != TF_OK)
            tf_log_warn(&run.log, "rollback failed");
        in_txn = 0;
    }
    if (rc == TF_ERR_LEASE) {
        tf_log_warn(&run.log, "lease lost stage=%s attempt=%d: results discarded", def->name,
                    run.attempt);
        goto out;
    }
    if (!run.error[0])
        tf_run_fail(&run, "%s", tf_rc_str(rc));
    result = (struct tf_exec_result){"FAILED",        run.objects,          run.records_in,
                                     run.records_out, run.records_rejected, run.error};
    frc = tf_exec_finish(conn, id, def->name, run.attempt, &result);
    if (frc != TF_OK) {
        /* The row stays RUNNING; the sweeper retries it once its heartbeat is stale. */
        tf_log_error(&run.log, "stage failed and could not be recorded: %s (%s)", run.error,
                     tf_rc_str(frc));
        rc = frc;
        goto out;
    }
    atomic_fetch_add(&svc->m_failed, 1);
    tf_log_error(&run.log, "stage failed stage=%s attempt=%d: %s", def->name, run.attempt,
                 run.error);
publish:
    rc = TF_OK;
    if (publish(svc, conn, id, &run.log) == TF_ERR_DB)
        rc = TF_ERR_DB;
out:
    cJSON_Delete(run.objects);
    cJSON_Delete(record);
    cJSON_Delete(upstream);
    return rc;
}

static PGconn *get_conn(struct tf_svc *svc, const struct tf_logctx *log)
{
    char err[256];
    PGconn *conn = tf_pg_pool_get(svc->pool, POOL_WAIT_MS, err, sizeof(err));

    if (!conn)
        tf_log_warn(log, "database unavailable: %s", err);
    return conn;
}

static void *worker_main(void *arg)
{
    struct tf_svc *svc = arg;
    char id[TF_UUID_LEN + 1];

    while (dequeue(svc, id)) {
        struct tf_logctx log = {{0}, {0}};
        PGconn *conn;

        tf_logctx_set_exec(&log, id);
        conn = get_conn(svc, &log);
        if (!conn)
            continue; /* the row stays PENDING; the sweeper brings it back */
        if (execute(svc, conn, id) != TF_OK)
            tf_log_warn(&log, "run interrupted by a database error; it will be retried");
        tf_pg_pool_put(svc->pool, conn);
    }
    return NULL;
}

/* ---- plans: what a new record starts with ---- */

static enum tf_rc upstream_plan(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                                struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen)
{
    const char *up_stage = svc->def->upstream;
    const char *job = tf_json_str(body, "job_name");
    cJSON *up = NULL;
    enum tf_rc rc;
    const char *status;
    const cJSON *att;

    rc = tf_exec_get(conn, plan->execution_id, up_stage, &up);
    if (rc == TF_ERR_NOT_FOUND) {
        snprintf(err, errlen, "execution %s has no %s stage", plan->execution_id, up_stage);
        return rc;
    }
    if (rc != TF_OK) {
        snprintf(err, errlen, "cannot read the %s stage", up_stage);
        return rc;
    }
    status = tf_json_str(up, "status");
    if (!status || strcmp(status, "SUCCESS") != 0) {
        snprintf(err, errlen, "the %s stage of execution %s is %s; %s needs it to be SUCCESS",
                 up_stage, plan->execution_id, status ? status : "unknown", svc->def->name);
        cJSON_Delete(up);
        return TF_ERR_CONFLICT;
    }
    if (job && strcmp(job, tf_json_str(up, "job_name")) != 0) {
        snprintf(err, errlen, "execution %s belongs to job %s, not %s", plan->execution_id,
                 tf_json_str(up, "job_name"), job);
        cJSON_Delete(up);
        return TF_ERR_CONFLICT;
    }
    snprintf(plan->job_name, sizeof(plan->job_name), "%s", tf_json_str(up, "job_name"));
    plan->window_start = record_time(up, "window_start");
    plan->window_end = record_time(up, "window_end");
    plan->tickers = cJSON_GetObjectItemCaseSensitive(up, "tickers");
    att = cJSON_GetObjectItemCaseSensitive(up, "max_attempts");
    plan->max_attempts = cJSON_IsNumber(att) ? att->valueint : 3;
    *owned = up;
    return TF_OK;
}

static enum tf_rc make_plan(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                            struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen)
{
    if (svc->def->plan)
        return svc->def->plan(svc, conn, body, plan, owned, err, errlen);
    return upstream_plan(svc, conn, body, plan, owned, err, errlen);
}

/* ---- Kafka: upstream events in ---- */

static void dead_letter(struct tf_svc *svc, const rd_kafka_message_t *msg, const char *reason)
{
    char err[256];
    char id[64] = "";

    tf_kafka_header(msg, "execution_id", id, sizeof(id));
    atomic_fetch_add(&svc->m_dlq, 1);
    tf_log_warn(NULL, "dead-letter topic=%s partition=%d offset=%lld exec=%s reason=%s",
                rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset, id,
                reason);
    if (tf_kafka_produce(svc->kafka, svc->topic_dlq, NULL, msg->payload ? msg->payload : "",
                         msg->len, id[0] ? id : NULL, reason,
                         (int)svc->cfg.kafka_delivery_timeout_ms, err, sizeof(err)) != TF_OK)
        tf_log_error(NULL, "dead-letter publish failed: %s", err);
}

/*
 * Handles one upstream event. TF_OK: settled (commit). TF_ERR_INVALID:
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
    const char *id, *stage, *status, *schema;
    enum tf_rc rc = TF_ERR_INVALID;
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
    status = tf_json_str(ev, "status");
    if (!schema || strcmp(schema, "tickflow.stage_event") != 0 || !tf_uuid_valid(id) || !stage ||
        !status) {
        snprintf(reason, rlen, "not a tickflow.stage_event with execution_id, stage, status");
        goto out;
    }
    if (strcmp(stage, def->upstream) != 0) {
        snprintf(reason, rlen, "event of stage %s on the %s topic", stage, def->upstream);
        goto out;
    }
    tf_logctx_set_exec(&log, id);
    if (strcmp(status, "SUCCESS") != 0) {
        tf_log_info(&log, "upstream %s ended %s: nothing to do", stage, status);
        rc = TF_OK;
        goto out;
    }
    conn = get_conn(svc, &log);
    if (!conn) {
        rc = TF_ERR_DB;
        goto out;
    }
    rc = tf_exec_get(conn, id, def->name, &existing);
    if (rc == TF_OK) {
        /* Known: run it if nobody has (a POST may have queued it), else settled. */
        rc = execute(svc, conn, id);
        goto out;
    }
    if (rc != TF_ERR_NOT_FOUND)
        goto out;
    memset(&plan, 0, sizeof(plan));
    snprintf(plan.execution_id, sizeof(plan.execution_id), "%s", id);
    plan.stage = def->name;
    plan.trigger = "kafka";
    rc = make_plan(svc, conn, ev, &plan, &owned, err, sizeof(err));
    if (rc == TF_ERR_NOT_FOUND || rc == TF_ERR_CONFLICT || rc == TF_ERR_INVALID) {
        snprintf(reason, rlen, "%s", err);
        rc = TF_ERR_INVALID;
        goto out;
    }
    if (rc != TF_OK)
        goto out;
    rc = tf_exec_insert(conn, &plan, &created);
    if (rc == TF_OK)
        rc = execute(svc, conn, id);
out:
    if (conn)
        tf_pg_pool_put(svc->pool, conn);
    cJSON_Delete(owned);
    cJSON_Delete(existing);
    cJSON_Delete(ev);
    return rc;
}

static void *consumer_main(void *arg)
{
    struct tf_svc *svc = arg;

    while (!atomic_load(&svc->stopping)) {
        rd_kafka_message_t *msg = tf_kafka_consumer_poll(svc->consumer, 500);
        char reason[512] = "";
        enum tf_rc rc = TF_ERR_DB;
        int tries = 0;

        if (!msg)
            continue;
        atomic_fetch_add(&svc->m_consumed, 1);
        while (!atomic_load(&svc->stopping)) {
            rc = consume_one(svc, msg, reason, sizeof(reason));
            if (rc == TF_OK || rc == TF_ERR_INVALID)
                break;
            if (++tries >= DLQ_AFTER_TRIES) {
                snprintf(reason, sizeof(reason), "still failing after %d tries: %s", tries,
                         tf_rc_str(rc));
                rc = TF_ERR_INVALID;
                break;
            }
            sleep_ms(tries < 5 ? 500 << tries : 15000);
        }
        if (rc == TF_ERR_INVALID)
            dead_letter(svc, msg, reason);
        /* On a drain mid-retry the offset stays uncommitted: another consumer redelivers it. */
        if (rc == TF_OK || rc == TF_ERR_INVALID)
            (void)tf_kafka_commit(svc->consumer, msg);
        rd_kafka_message_destroy(msg);
    }
    return NULL;
}

/* ---- the sweeper: zombies, orphans, unpublished events ---- */

/* Runs a query with ($1 stage, [$2]) and calls fn on each execution_id in column 0. */
static void sweep_each(struct tf_svc *svc, PGconn *conn, const char *sql, const char *p2,
                       void (*fn)(struct tf_svc *, PGconn *, const char *))
{
    const char *params[2] = {svc->def->name, p2};
    PGresult *res = tf_pg_exec(conn, sql, p2 ? 2 : 1, params);

    if (!tf_pg_ok(res)) {
        tf_log_warn(NULL, "sweep failed: %s", PQresultErrorMessage(res));
        PQclear(res);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++)
        fn(svc, conn, PQgetvalue(res, i, 0));
    PQclear(res);
}

static void sweep_enqueue(struct tf_svc *svc, PGconn *conn, const char *id)
{
    (void)conn;
    enqueue(svc, id);
}

static void sweep_publish(struct tf_svc *svc, PGconn *conn, const char *id)
{
    struct tf_logctx log = {{0}, {0}};

    tf_logctx_set_exec(&log, id);
    (void)publish(svc, conn, id, &log);
}

static void sweep_zombie(struct tf_svc *svc, PGconn *conn, const char *id)
{
    struct tf_logctx log = {{0}, {0}};

    tf_logctx_set_exec(&log, id);
    tf_log_warn(&log, "heartbeat lost: stage %s is now ZOMBIE", svc->def->name);
    enqueue(svc, id);
    (void)conn;
}

static void sweep(struct tf_svc *svc, PGconn *conn)
{
    char timeout[24];

    snprintf(timeout, sizeof(timeout), "%ld", svc->cfg.heartbeat_timeout);
    sweep_each(svc, conn,
               "UPDATE tickflow.job_execution SET status = 'ZOMBIE', updated_at = now()"
               " WHERE stage = $1 AND status = 'RUNNING'"
               " AND heartbeat_at < now() - $2::int * interval '1 second'"
               " RETURNING execution_id",
               timeout, sweep_zombie);
    sweep_each(svc, conn,
               "UPDATE tickflow.job_execution SET status = 'FAILED', finished_at = now(),"
               " updated_at = now(), error = 'heartbeat lost on the last allowed attempt'"
               " WHERE stage = $1 AND status = 'ZOMBIE' AND attempt >= max_attempts"
               " RETURNING execution_id",
               NULL, sweep_publish);
    sweep_each(svc, conn,
               "SELECT execution_id FROM tickflow.job_execution"
               " WHERE stage = $1 AND (status = 'ZOMBIE' OR (status = 'PENDING'"
               " AND updated_at < now() - interval '30 seconds'))"
               " ORDER BY updated_at LIMIT 100",
               NULL, sweep_enqueue);
    sweep_each(svc, conn,
               "SELECT execution_id FROM tickflow.job_execution"
               " WHERE stage = $1 AND status IN ('SUCCESS', 'FAILED')"
               " AND event_published_at IS NULL"
               " AND finished_at < now() - interval '10 seconds'"
               " ORDER BY finished_at LIMIT 100",
               NULL, sweep_publish);
}

static void *sweeper_main(void *arg)
{
    struct tf_svc *svc = arg;

    while (!atomic_load(&svc->stopping)) {
        PGconn *conn = get_conn(svc, NULL);

        if (conn) {
            sweep(svc, conn);
            tf_pg_pool_put(svc->pool, conn);
        }
        for (int i = 0; i < 20 && !atomic_load(&svc->stopping); i++)
            sleep_ms(100);
    }
    return NULL;
}

/* ---- HTTP ---- */

static void reply_record(struct tf_http_req *req, int status, const cJSON *record)
{
    char loc[96];

    snprintf(loc, sizeof(loc), "/v1/executions/%s", tf_json_str(record, "execution_id"));
    tf_http_set_header(req, "Location", loc);
    tf_http_reply_json(req, status, record);
}

static int is_final(const cJSON *record)
{
    const char *st = tf_json_str(record, "status");

    return st && (strcmp(st, "SUCCESS") == 0 || strcmp(st, "FAILED") == 0);
}

/*
 * Waits up to seconds for the record to finish; *record is replaced with the
 * newest copy. Gives the connection back while sleeping.
 */
static void wait_final(struct tf_svc *svc, const char *id, int seconds, cJSON **record)
{
    int64_t deadline = tf_time_mono_ms() + (int64_t)seconds * 1000;

    while (!is_final(*record) && tf_time_mono_ms() < deadline && !atomic_load(&svc->stopping)) {
        PGconn *conn;
        cJSON *fresh = NULL;

        sleep_ms(100);
        conn = get_conn(svc, NULL);
        if (!conn)
            continue;
        if (tf_exec_get(conn, id, svc->def->name, &fresh) == TF_OK) {
            cJSON_Delete(*record);
            *record = fresh;
        }
        tf_pg_pool_put(svc->pool, conn);
    }
}

/* Does a repeated POST for a known execution ask for something else? */
static int conflicts(const cJSON *body, const cJSON *record, char *err, size_t errlen)
{
    static const char *const windows[] = {"window_start", "window_end"};
    const char *job = tf_json_str(body, "job_name");

    if (job && strcmp(job, tf_json_str(record, "job_name")) != 0) {
        snprintf(err, errlen, "execution %s exists for job %s, not %s",
                 tf_json_str(record, "execution_id"), tf_json_str(record, "job_name"), job);
        return 1;
    }
    for (size_t i = 0; i < TF_ARRAY_LEN(windows); i++) {
        const char *want = tf_json_str(body, windows[i]);
        int64_t t = 0;
        if (want && (tf_time_parse(want, &t) != TF_OK || t != record_time(record, windows[i]))) {
            snprintf(err, errlen, "execution %s exists with %s %s, not %s",
                     tf_json_str(record, "execution_id"), windows[i],
                     tf_json_str(record, windows[i]), want);
            return 1;
        }
    }
    return 0;
}

/* Checks the shape of a POST /v1/executions body; err gets the first problem. */
static enum tf_rc check_body(const cJSON *body, int id_required, char *err, size_t errlen)
{
    static const char *const strings[] = {"job_name", "window_start", "window_end"};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "execution_id");
    const cJSON *wait = cJSON_GetObjectItemCaseSensitive(body, "wait_seconds");

    if (!cJSON_IsObject(body)) {
        snprintf(err, errlen, "the body must be a JSON object");
        return TF_ERR_INVALID;
    }
    if (!id && id_required) {
        snprintf(err, errlen, "execution_id is required");
        return TF_ERR_INVALID;
    }
    if (id && (!cJSON_IsString(id) || !tf_uuid_valid(id->valuestring))) {
        snprintf(err, errlen,
                 "execution_id must be a UUID such as "
                 "5b0e4a52-3c1d-4f8e-9a7b-2d6c8e1f0a93");
        return TF_ERR_INVALID;
    }
    for (size_t i = 0; i < TF_ARRAY_LEN(strings); i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, strings[i]);
        int64_t t;
        if (it && !cJSON_IsString(it)) {
            snprintf(err, errlen, "%s must be a string", strings[i]);
            return TF_ERR_INVALID;
        }
        if (it && i > 0 && tf_time_parse(it->valuestring, &t) != TF_OK) {
            snprintf(err, errlen, "%s must be an ISO-8601 time such as 2024-03-04T14:30:00Z",
                     strings[i]);
            return TF_ERR_INVALID;
        }
    }
    if (wait && (!cJSON_IsNumber(wait) || wait->valuedouble < 0 ||
                 wait->valuedouble > MAX_WAIT_SEC || wait->valuedouble != (int)wait->valuedouble)) {
        snprintf(err, errlen, "wait_seconds must be a whole number from 0 to %d", MAX_WAIT_SEC);
        return TF_ERR_INVALID;
    }
    return TF_OK;
}

static void post_execution(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    const struct tf_stage_def *def = svc->def;
    size_t len = 0;
    const char *text = tf_http_body(req, &len);
    const char *end = NULL;
    cJSON *body = NULL;
    cJSON *record = NULL;
    cJSON *owned = NULL;
    struct tf_exec_plan plan;
    char err[512];
    enum tf_rc rc;
    int wait = 0;
    int created = 0;
    int status = 202;

    /* The body is NUL-terminated; cJSON wants the NUL inside the length to
     * check that nothing follows the value. */
    body = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (!body) {
        tf_http_reply_error(req, 400, "invalid_json", "the request body is not valid JSON");
        goto out;
    }
    rc = check_body(body, def->upstream != NULL, err, sizeof(err));
    if (rc != TF_OK) {
        tf_http_reply_error(req, 400, "invalid_argument", "%s", err);
        goto out;
    }
    memset(&plan, 0, sizeof(plan));
    plan.stage = def->name;
    plan.trigger = "http";
    if (tf_json_str(body, "execution_id")) {
        snprintf(plan.execution_id, sizeof(plan.execution_id), "%s",
                 tf_json_str(body, "execution_id"));
        for (char *p = plan.execution_id; *p; p++)
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
    } else {
        tf_uuid_new(plan.execution_id);
    }
    tf_logctx_set_exec(tf_http_logctx(req), plan.execution_id);
    if (cJSON_GetObjectItemCaseSensitive(body, "wait_seconds"))
        wait = cJSON_GetObjectItemCaseSensitive(body, "wait_seconds")->valueint;

    rc = tf_exec_get(conn, plan.execution_id, def->name, &record);
    if (rc == TF_ERR_NOT_FOUND) {
        rc = make_plan(svc, conn, body, &plan, &owned, err, sizeof(err));
        if (rc != TF_OK) {
            tf_http_reply_rc(req, rc, err);
            goto out;
        }
        rc = tf_exec_insert(conn, &plan, &created);
        if (rc == TF_OK)
            rc = tf_exec_get(conn, plan.execution_id, def->name, &record);
    }
    if (rc != TF_OK) {
        tf_http_reply_rc(req, rc, "cannot read or create the execution record");
        goto out;
    }
    if (!created) {
        if (conflicts(body, record, err, sizeof(err))) {
            tf_http_reply_error(req, 409, "conflict", "%s", err);
            goto out;
        }
        status = 200;
        /* An orchestrator retrying a failed stage: run it again while attempts are left. */
        if (strcmp(tf_json_str(record, "status"), "FAILED") == 0 &&
            tf_exec_requeue(conn, plan.execution_id, def->name) == TF_OK) {
            cJSON_Delete(record);
            record = NULL;
            if (tf_exec_get(conn, plan.execution_id, def->name, &record) != TF_OK) {
                tf_http_reply_rc(req, TF_ERR_DB, "cannot read the execution record");
                goto out;
            }
            tf_log_info(tf_http_logctx(req), "failed stage %s queued again", def->name);
            enqueue(svc, plan.execution_id);
            status = 202;
        }
    } else {
        tf_log_info(tf_http_logctx(req), "execution accepted stage=%s job=%s", def->name,
                    plan.job_name);
        enqueue(svc, plan.execution_id);
    }
    if (wait > 0) {
        wait_final(svc, plan.execution_id, wait, &record);
        status = is_final(record) ? 200 : 202;
    }
    reply_record(req, status, record);
out:
    cJSON_Delete(owned);
    cJSON_Delete(record);
    cJSON_Delete(body);
}

static void get_execution(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn, const char *id)
{
    cJSON *record = NULL;
    enum tf_rc rc;

    if (!tf_uuid_valid(id)) {
        tf_http_reply_error(req, 400, "invalid_argument", "execution_id must be a UUID");
        return;
    }
    rc = tf_exec_get(conn, id, svc->def->name, &record);
    if (rc == TF_ERR_NOT_FOUND) {
        tf_http_reply_error(req, 404, "not_found", "execution %s has no %s stage", id,
                            svc->def->name);
        return;
    }
    if (rc != TF_OK) {
        tf_http_reply_rc(req, rc, "cannot read the execution record");
        return;
    }
    tf_http_reply_json(req, 200, record);
    cJSON_Delete(record);
}

static void list_executions(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    static const char *const statuses[] = {"PENDING", "RUNNING", "SUCCESS", "FAILED", "ZOMBIE"};
    const char *job = tf_http_query(req, "job_name");
    const char *status = tf_http_query(req, "status");
    const char *lim = tf_http_query(req, "limit");
    cJSON *list = NULL;
    cJSON *root = NULL;
    long limit = 100;
    int known = status == NULL;

    for (size_t i = 0; status && i < TF_ARRAY_LEN(statuses); i++)
        known |= strcmp(status, statuses[i]) == 0;
    if (!known) {
        tf_http_reply_error(req, 400, "invalid_argument",
                            "status must be PENDING, RUNNING, SUCCESS, FAILED or ZOMBIE");
        return;
    }
    if (lim) {
        char *endp = NULL;
        limit = strtol(lim, &endp, 10);
        if (endp == lim || *endp || limit < 1 || limit > LIST_MAX) {
            tf_http_reply_error(req, 400, "invalid_argument", "limit must be 1..%d", LIST_MAX);
            return;
        }
    }
    if (tf_exec_list(conn, svc->def->name, job, status, (int)limit, &list) != TF_OK) {
        tf_http_reply_rc(req, TF_ERR_DB, "cannot list executions");
        return;
    }
    root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "executions", list);
    tf_http_reply_json(req, 200, root);
    cJSON_Delete(root);
}

static void get_ready(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    int pg_ok = 0;
    int kafka_ok = tf_kafka_ping(svc->kafka, 2000) == TF_OK;
    cJSON *root = cJSON_CreateObject();

    if (conn) {
        PGresult *res = PQexec(conn, "SELECT 1");
        pg_ok = tf_pg_ok(res);
        PQclear(res);
    }
    cJSON_AddStringToObject(root, "status", pg_ok && kafka_ok ? "ok" : "unavailable");
    cJSON_AddStringToObject(root, "postgres", pg_ok ? "ok" : "unreachable");
    cJSON_AddStringToObject(root, "kafka", kafka_ok ? "ok" : "unreachable");
    tf_http_reply_json(req, pg_ok && kafka_ok ? 200 : 503, root);
    cJSON_Delete(root);
}

static void get_metrics(struct tf_svc *svc, struct tf_http_req *req)
{
    struct tf_buf out;
    const char *st = svc->def->name;
    enum tf_rc rc;

    tf_buf_init(&out, 64 * 1024);
    rc = tf_buf_printf(
        &out,
        "# HELP tickflow_stage_runs_total Stage runs finished by this process.\n"
        "# TYPE tickflow_stage_runs_total counter\n"
        "tickflow_stage_runs_total{stage=\"%s\",status=\"SUCCESS\"} %lld\n"
        "tickflow_stage_runs_total{stage=\"%s\",status=\"FAILED\"} %lld\n"
        "# HELP tickflow_events_published_total Stage events written to Kafka.\n"
        "# TYPE tickflow_events_published_total counter\n"
        "tickflow_events_published_total{stage=\"%s\"} %lld\n"
        "# HELP tickflow_events_consumed_total Upstream events read from Kafka.\n"
        "# TYPE tickflow_events_consumed_total counter\n"
        "tickflow_events_consumed_total{stage=\"%s\"} %lld\n"
        "# HELP tickflow_dead_letters_total Events sent to the dead-letter topic.\n"
        "# TYPE tickflow_dead_letters_total counter\n"
        "tickflow_dead_letters_total{stage=\"%s\"} %lld\n"
        "# HELP tickflow_queue_depth Runs waiting for a worker.\n"
        "# TYPE tickflow_queue_depth gauge\n"
        "tickflow_queue_depth{stage=\"%s\"} %d\n",
        st, (long long)atomic_load(&svc->m_success), st, (long long)atomic_load(&svc->m_failed), st,
        (long long)atomic_load(&svc->m_published), st, (long long)atomic_load(&svc->m_consumed), st,
        (long long)atomic_load(&svc->m_dlq), st, queue_depth(svc));
    if (rc != TF_OK) {
        tf_buf_cleanup(&out);
        tf_http_reply_rc(req, rc, "cannot format metrics");
        return;
    }
    tf_http_reply_take(req, 200, "text/plain; version=0.0.4", out.data, out.len);
}

static const char openapi_doc[] =
    "{\"openapi\":\"3.0.3\",\"info\":{\"title\":\"tickflow stage API\",\"version\":\"1\"},"
    "\"paths\":{"
    "\"/v1/executions\":{\"post\":{\"summary\":\"Start (or find) this stage of an execution\","
    "\"requestBody\":{\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\","
    "\"properties\":{\"execution_id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"job_name\":{\"type\":\"string\"},\"window_start\":{\"type\":\"string\","
    "\"format\":\"date-time\"},\"window_end\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"wait_seconds\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":3600}}}}}},"
    "\"responses\":{\"200\":{\"description\":\"existing or finished record\"},"
    "\"202\":{\"description\":\"accepted\"},\"400\":{\"description\":\"bad request\"},"
    "\"404\":{\"description\":\"unknown job or upstream stage\"},"
    "\"409\":{\"description\":\"conflicting request for a known execution\"}}},"
    "\"get\":{\"summary\":\"List this stage's records\",\"parameters\":["
    "{\"name\":\"job_name\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"status\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"limit\",\"in\":\"query\",\"schema\":{\"type\":\"integer\"}}],"
    "\"responses\":{\"200\":{\"description\":\"records\"}}}},"
    "\"/v1/executions/{execution_id}\":{\"get\":{\"summary\":\"This stage's record\","
    "\"parameters\":[{\"name\":\"execution_id\",\"in\":\"path\",\"required\":true,"
    "\"schema\":{\"type\":\"string\",\"format\":\"uuid\"}}],"
    "\"responses\":{\"200\":{\"description\":\"record\"},\"404\":{\"description\":\"none\"}}}},"
    "\"/healthz\":{\"get\":{\"responses\":{\"200\":{\"description\":\"alive\"}}}},"
    "\"/readyz\":{\"get\":{\"responses\":{\"200\":{\"description\":\"ready\"},"
    "\"503\":{\"description\":\"a dependency is unreachable\"}}}},"
    "\"/metrics\":{\"get\":{\"responses\":{\"200\":{\"description\":\"Prometheus text\"}}}}}}";

static void handle(struct tf_http_req *req, void *ud)
{
    struct tf_svc *svc = ud;
    const char *method = tf_http_method(req);
    const char *path = tf_http_path(req);
    char caps[1][128];
    PGconn *conn = NULL;
    int is_get = strcmp(method, "GET") == 0;

    if (is_get && strcmp(path, "/healthz") == 0) {
        tf_http_reply_take(req, 200, "application/json", strdup("{\"status\":\"ok\"}"), 15);
        return;
    }
    if (is_get && strcmp(path, "/metrics") == 0) {
        get_metrics(svc, req);
        return;
    }
    if (is_get && strcmp(path, "/openapi.json") == 0) {
        tf_http_reply_take(req, 200, "application/json", strdup(openapi_doc),
                           sizeof(openapi_doc) - 1);
        return;
    }
    conn = get_conn(svc, tf_http_logctx(req));
    if (is_get && strcmp(path, "/readyz") == 0) {
        get_ready(svc, req, conn);
        goto out;
    }
    if (!conn) {
        tf_http_reply_error(req, 503, "database_unavailable", "PostgreSQL is unreachable");
        goto out;
    }
    if (strcmp(path, "/v1/executions") == 0) {
        if (strcmp(method, "POST") == 0)
            post_execution(svc, req, conn);
        else if (is_get)
            list_executions(svc, req, conn);
        else
            tf_http_reply_error(req, 405, "method_not_allowed", "use GET or POST");
        goto out;
    }
    if (tf_http_match(path, "/v1/executions/*", caps, 1)) {
        if (is_get)
            get_execution(svc, req, conn, caps[0]);
        else
            tf_http_reply_error(req, 405, "method_not_allowed", "use GET");
        goto out;
    }
    if (svc->def->route && svc->def->route(svc, req, conn))
        goto out;
    tf_http_reply_error(req, 404, "not_found", "no route for %s %s", method, path);
out:
    tf_pg_pool_put(svc->pool, conn);
}

/* ---- start-up and drain ---- */

static enum tf_rc start_database(struct tf_svc *svc)
{
    char err[512];
    PGconn *conn = NULL;

    /* PostgreSQL may still be starting (compose, Kubernetes): wait up to a minute. */
    for (int i = 0; i < 60 && !conn; i++) {
        conn = tf_pg_pool_get(svc->pool, POOL_WAIT_MS, err, sizeof(err));
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
    if (tf_kafka_producer_new(svc->cfg.brokers, client, (int)svc->cfg.kafka_delivery_timeout_ms,
                              &svc->kafka, err, sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "kafka producer: %s", err);
        return TF_ERR_KAFKA;
    }
    for (int i = 0; i < 30 && rc != TF_OK; i++) {
        rc = tf_kafka_ensure_topics(svc->kafka, names, 4, (int)svc->cfg.kafka_partitions, 1, err,
                                    sizeof(err));
        if (rc != TF_OK) {
            tf_log_warn(NULL, "waiting for Kafka: %s", err);
            sleep_ms(1000);
        }
    }
    if (rc != TF_OK)
        return rc;
    if (!svc->def->consume_topic)
        return TF_OK;
    snprintf(svc->topic_in, sizeof(svc->topic_in), "%s%s", prefix, svc->def->consume_topic);
    snprintf(group, sizeof(group), "%stickflow-%s", prefix, svc->def->name);
    if (tf_kafka_consumer_new(svc->cfg.brokers, group, svc->topic_in, &svc->consumer, err,
                              sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "kafka consumer: %s", err);
        return TF_ERR_KAFKA;
    }
    return TF_OK;
}

static void svc_free(struct tf_svc *svc)
{
    atomic_store(&svc->stopping, 1);
    tf_http_stop(svc->http);
    pthread_mutex_lock(&svc->qmu);
    pthread_cond_broadcast(&svc->qcv);
    pthread_mutex_unlock(&svc->qmu);
    for (int i = 0; i < svc->nworkers; i++)
        pthread_join(svc->workers[i], NULL);
    if (svc->consumer_started)
        pthread_join(svc->consumer_thr, NULL);
    if (svc->sweeper_started)
        pthread_join(svc->sweeper_thr, NULL);
    tf_kafka_consumer_free(svc->consumer);
    tf_kafka_producer_free(svc->kafka);
    tf_pg_pool_free(svc->pool);
    tf_lake_free(svc->lake);
    free(svc->workers);
    free(svc->queue);
    pthread_mutex_destroy(&svc->qmu);
    pthread_cond_destroy(&svc->qcv);
    tf_cfg_cleanup(svc->keys, svc->nkeys, &svc->cfg);
    free(svc);
}

static enum tf_rc svc_start(struct tf_svc *svc)
{
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
    svc->queue = calloc(QUEUE_CAP, sizeof(*svc->queue));
    svc->pool = tf_pg_pool_new(svc->cfg.pg_dsn, (int)svc->cfg.workers + 6);
    svc->workers = calloc((size_t)svc->cfg.workers, sizeof(*svc->workers));
    if (!svc->queue || !svc->pool || !svc->workers)
        return TF_ERR_NOMEM;
    if (tf_lake_open(svc->cfg.lake_uri, &svc->lake, err, sizeof(err)) != TF_OK) {
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
    memset(&opts, 0, sizeof(opts));
    opts.addr = svc->cfg.addr;
    opts.port = svc->cfg.port;
    opts.token = svc->cfg.api_token;
    opts.handler = handle;
    opts.ud = svc;
    if (tf_http_start(&opts, &svc->http, err, sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "http: %s", err);
        return TF_ERR_IO;
    }
    tf_log_info(NULL, "listening port=%d stage=%s worker=%s", tf_http_port(svc->http),
                svc->def->name, svc->worker_id);
    return TF_OK;
}

int tf_svc_main(const struct tf_stage_def *def, const struct tf_cfg_key *keys, size_t nkeys)
{
    struct tf_svc *svc = calloc(1, sizeof(*svc));
    enum tf_log_level level = TF_LOG_INFO;
    char err[2048];
    sigset_t set;
    int sig = 0;
    int code = 0;

    if (!svc)
        return 1;
    svc->def = def;
    svc->keys = keys;
    svc->nkeys = nkeys;
    pthread_mutex_init(&svc->qmu, NULL);
    pthread_cond_init(&svc->qcv, NULL);
    tf_log_init(def->name, TF_LOG_INFO);
    if (tf_cfg_load(keys, nkeys, tf_cfg_getenv, NULL, &svc->cfg, err, sizeof(err)) != TF_OK) {
        fprintf(stderr, "%s: configuration errors:\n%s\n", def->name, err);
        svc_free(svc);
        return 2;
    }
    if (tf_log_level_parse(svc->cfg.log_level, &level) != TF_OK) {
        fprintf(stderr, "%s: TICKFLOW_LOG_LEVEL must be debug, info, warn or error\n", def->name);
        svc_free(svc);
        return 2;
    }
    tf_log_init(def->name, level);
    tf_cfg_log(keys, nkeys, &svc->cfg);

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
