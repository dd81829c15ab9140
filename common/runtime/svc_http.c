/*
 * svc_http.c - the stage API every service serves: POST and GET
 * /v1/executions, GET /v1/executions/{id} (the record, its objects
 * summed) and /v1/executions/{id}/objects (the objects, a page at a
 * time), /healthz, /readyz, /metrics, /openapi.json, then the stage's own
 * routes. See tf/svc.h and the README for the contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_internal.h"
#include "tf/json.h"
#include "tf/openapi.h"
#include "tf/time.h"

#define MAX_WAIT_SEC 3600
#define LIST_MAX     1000
/* A page of objects when the client names no limit. */
#define OBJECTS_PAGE 100
/* The longest cursor (an object's uri: a lake path) a client may send. */
#define AFTER_MAX 4096
/* A record as the API shows it: its tickers are the only list left in it. */
#define VIEW_MAX (16u << 20)

/*
 * This stage's record of id as the API shows it (tf_exec_view), parsed: a
 * new object, NULL unless TF_OK. TF_ERR_NOT_FOUND when there is none.
 */
static enum tf_rc read_record(PGconn *conn, const char *id, const char *stage, cJSON **out)
{
    struct tf_buf view;
    enum tf_rc rc;

    *out = NULL;
    tf_buf_init(&view, VIEW_MAX);
    rc = tf_exec_view(conn, id, stage, &view);
    if (rc == TF_OK) {
        *out = cJSON_ParseWithLength(view.data, view.len);
        rc = *out ? TF_OK : TF_ERR_NOMEM;
    }
    tf_buf_cleanup(&view);
    return rc;
}

static void reply_record(struct tf_http_req *req, int status, const cJSON *record)
{
    char loc[96];

    snprintf(loc, sizeof(loc), "/v1/executions/%s", tf_json_str(record, "execution_id"));
    tf_http_set_header(req, "Location", loc);
    tf_http_reply_json(req, status, record);
}

static int is_final(const cJSON *record)
{
    return tf_exec_status_final(tf_exec_record_status(record));
}

/* Replaces *record with the newest copy (kept when it cannot be read). */
static void reread(struct tf_svc *svc, const char *id, cJSON **record)
{
    PGconn *conn = svc_api_conn_get(svc, NULL);
    cJSON *fresh = NULL;

    if (!conn)
        return;
    if (read_record(conn, id, svc->def->name, &fresh) == TF_OK) {
        cJSON_Delete(*record);
        *record = fresh;
    }
    svc_api_conn_put(svc, conn);
}

/*
 * Waits up to seconds for the record to finish; *record is replaced with the
 * newest copy. A run of this process has finished when its follow-up has
 * too (transform's lake files), so the answer counts everything it wrote.
 * Holds a connection only while it reads.
 */
static void wait_final(struct tf_svc *svc, const char *id, int seconds, cJSON **record)
{
    int64_t deadline = tf_time_mono_ms() + (int64_t)seconds * 1000;
    /* Asked before each read: a run found idle has written its record whole. */
    int busy = svc_run_busy(svc, id);

    reread(svc, id, record);
    while ((!is_final(*record) || busy) && tf_time_mono_ms() < deadline &&
           !atomic_load(&svc->stopping)) {
        struct timespec until;
        unsigned long seq;

        /* Woken when a run of this process ends; a run elsewhere (another
         * replica, the Kafka chain) is seen by reading again within 250 ms. */
        pthread_mutex_lock(&svc->done_mu);
        seq = svc->done_seq;
        tf_time_deadline(&until, 250);
        while (svc->done_seq == seq &&
               pthread_cond_timedwait(&svc->done_cv, &svc->done_mu, &until) == 0)
            ;
        pthread_mutex_unlock(&svc->done_mu);
        busy = svc_run_busy(svc, id);
        reread(svc, id, record);
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
        if (want &&
            (tf_time_parse(want, &t) != TF_OK || t != svc_record_time(record, windows[i]))) {
            snprintf(err, errlen, "execution %s exists with %s %s, not %s",
                     tf_json_str(record, "execution_id"), windows[i],
                     tf_json_str(record, windows[i]), want);
            return 1;
        }
    }
    return 0;
}

enum tf_rc tf_svc_check_execution_body(const cJSON *body, int id_required, char *err, size_t errlen)
{
    static const char *const strings[] = {"job_name", "window_start", "window_end"};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "execution_id");
    const cJSON *wait = cJSON_GetObjectItemCaseSensitive(body, "wait_seconds");
    const cJSON *replay = cJSON_GetObjectItemCaseSensitive(body, "replay");

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
        if (it && i == 0 && !tf_job_name_valid(it->valuestring)) {
            snprintf(err, errlen, "job_name is 1 to 63 of a-z, 0-9 and _, starting with a letter");
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
    if (replay && !cJSON_IsBool(replay)) {
        snprintf(err, errlen, "replay must be true or false");
        return TF_ERR_INVALID;
    }
    return TF_OK;
}

/*
 * A replay may only rebuild a stage from an upstream stage that succeeded;
 * checked before anything is written. Replies and returns non-zero when
 * the request is refused.
 */
static int refuse_replay(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn, const char *id)
{
    const char *up_stage = svc->def->upstream;
    cJSON *up = NULL;
    const char *status;
    enum tf_rc rc;

    if (!up_stage) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "%s has no upstream stage to replay from; replay transform or "
                          "aggregate",
                          svc->def->name);
        return 1;
    }
    rc = read_record(conn, id, up_stage, &up);
    if (rc == TF_ERR_NOT_FOUND) {
        tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "execution %s has no %s stage to replay from", id,
                          up_stage);
        return 1;
    }
    if (rc != TF_OK) {
        tf_http_reply_rc(req, rc, "cannot read the upstream record");
        return 1;
    }
    status = tf_json_str(up, "status");
    if (tf_exec_record_status(up) != TF_EXEC_SUCCESS) {
        tf_http_reply_rcf(req, TF_ERR_CONFLICT,
                          "the %s stage of execution %s is %s; a replay needs it to be SUCCESS",
                          up_stage, id, status ? status : "unknown");
        cJSON_Delete(up);
        return 1;
    }
    cJSON_Delete(up);
    return 0;
}

/*
 * POST /v1/executions. Takes *connp from the caller and gives it back to
 * the pool before waiting for an outcome, so that waiting clients never
 * hold connections the workers need.
 */
static void post_execution(struct tf_svc *svc, struct tf_http_req *req, PGconn **connp)
{
    PGconn *conn = *connp;
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
    int status = TF_HTTP_ACCEPTED;
    int replay = 0;

    /* The body is NUL-terminated; cJSON wants the NUL inside the length to
     * check that nothing follows the value. */
    body = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (!body) {
        tf_http_reply_rc_code(req, TF_ERR_INVALID, "invalid_json",
                              "the request body is not valid JSON");
        goto out;
    }
    rc = tf_svc_check_execution_body(body, def->upstream != NULL, err, sizeof(err));
    if (rc != TF_OK) {
        tf_http_reply_rc(req, TF_ERR_INVALID, err);
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
    replay = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "replay"));
    if (replay && refuse_replay(svc, req, conn, plan.execution_id))
        goto out;

    rc = read_record(conn, plan.execution_id, def->name, &record);
    if (rc == TF_ERR_NOT_FOUND) {
        rc = svc_make_plan(svc, conn, body, &plan, &owned, err, sizeof(err));
        if (rc != TF_OK) {
            tf_http_reply_rc(req, rc, err);
            goto out;
        }
        rc = tf_exec_insert(conn, &plan, &created);
        if (rc == TF_OK)
            rc = read_record(conn, plan.execution_id, def->name, &record);
    }
    if (rc != TF_OK) {
        tf_http_reply_rc(req, rc, "cannot read or create the execution record");
        goto out;
    }
    if (!created) {
        if (conflicts(body, record, err, sizeof(err))) {
            tf_http_reply_rc(req, TF_ERR_CONFLICT, err);
            goto out;
        }
        status = TF_HTTP_OK;
        /* A replay: the finished stage is rebuilt from its upstream as a new attempt. */
        if (replay && tf_exec_record_status(record) == TF_EXEC_RUNNING) {
            tf_http_reply_rcf(req, TF_ERR_CONFLICT,
                              "the %s stage of execution %s is running; replay it once it "
                              "has finished",
                              def->name, plan.execution_id);
            goto out;
        }
        if (replay && svc_rerun(svc, conn, plan.execution_id, 0) == TF_OK) {
            cJSON_Delete(record);
            record = NULL;
            if (read_record(conn, plan.execution_id, def->name, &record) != TF_OK) {
                tf_http_reply_rc(req, TF_ERR_DB, "cannot read the execution record");
                goto out;
            }
            tf_log_info(tf_http_logctx(req), "replay of stage %s queued", def->name);
            status = TF_HTTP_ACCEPTED;
        }
        /* Waiting (handed back on a drain, or a dead worker's, or a replay): queue
         * it here too; the claim decides who runs it. */
        if (tf_exec_record_status(record) == TF_EXEC_PENDING ||
            tf_exec_record_status(record) == TF_EXEC_ZOMBIE)
            tf_svc_enqueue(svc, plan.execution_id);
        /* An orchestrator retrying a failed stage: run it again while attempts are left. */
        if (tf_exec_record_status(record) == TF_EXEC_FAILED &&
            tf_exec_requeue(conn, plan.execution_id, def->name) == TF_OK) {
            cJSON_Delete(record);
            record = NULL;
            if (read_record(conn, plan.execution_id, def->name, &record) != TF_OK) {
                tf_http_reply_rc(req, TF_ERR_DB, "cannot read the execution record");
                goto out;
            }
            tf_log_info(tf_http_logctx(req), "failed stage %s queued again", def->name);
            tf_svc_enqueue(svc, plan.execution_id);
            status = TF_HTTP_ACCEPTED;
        }
    } else {
        tf_log_info(tf_http_logctx(req), "execution accepted stage=%s job=%s", def->name,
                    plan.job_name);
        tf_svc_enqueue(svc, plan.execution_id);
    }
    if (wait > 0) {
        svc_api_conn_put(svc, conn);
        *connp = NULL;
        wait_final(svc, plan.execution_id, wait, &record);
        status = is_final(record) ? TF_HTTP_OK : TF_HTTP_ACCEPTED;
    }
    reply_record(req, status, record);
out:
    cJSON_Delete(owned);
    cJSON_Delete(record);
    cJSON_Delete(body);
}

/* Answers 200 with the JSON text in buf (taken: buf is left empty). */
static void reply_buf(struct tf_http_req *req, struct tf_buf *buf)
{
    size_t len = buf->len;

    tf_http_reply_take(req, TF_HTTP_OK, "application/json", tf_buf_take(buf), len);
}

/* Answers the error of a failed read of execution id's record. */
static void reply_read_error(struct tf_svc *svc, struct tf_http_req *req, const char *id,
                             enum tf_rc rc)
{
    if (rc == TF_ERR_NOT_FOUND)
        tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "execution %s has no %s stage", id,
                          svc->def->name);
    else
        tf_http_reply_rc(req, rc, "cannot read the execution record");
}

/* GET /v1/executions/{id}: the record as tf_exec_view() makes it, sent as it comes. */
static void get_execution(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn, const char *id)
{
    struct tf_buf view;
    enum tf_rc rc;

    if (!tf_uuid_valid(id)) {
        tf_http_reply_rc(req, TF_ERR_INVALID, "execution_id must be a UUID");
        return;
    }
    tf_buf_init(&view, VIEW_MAX);
    rc = tf_exec_view(conn, id, svc->def->name, &view);
    if (rc == TF_OK)
        reply_buf(req, &view);
    else
        reply_read_error(svc, req, id, rc);
    tf_buf_cleanup(&view);
}

/*
 * Reads the query argument limit into *limit (left as it is when absent).
 * Returns 0 after answering 400 when it is not a whole number from 1 to
 * LIST_MAX.
 */
static int query_limit(struct tf_http_req *req, long *limit)
{
    const char *lim = tf_http_query(req, "limit");
    char *endp = NULL;

    if (!lim)
        return 1;
    *limit = strtol(lim, &endp, 10);
    if (endp == lim || *endp || *limit < 1 || *limit > LIST_MAX) {
        tf_http_reply_rcf(req, TF_ERR_INVALID, "limit must be 1..%d", LIST_MAX);
        return 0;
    }
    return 1;
}

static void list_executions(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    const char *job = tf_http_query(req, "job_name");
    const char *status = tf_http_query(req, "status");
    struct tf_buf out;
    long limit = 100;
    enum tf_rc rc;

    if (job && !tf_job_name_valid(job)) {
        tf_http_reply_rc(req, TF_ERR_INVALID,
                         "job_name is 1 to 63 of a-z, 0-9 and _, starting with a letter");
        return;
    }
    if (status && tf_exec_status_parse(status) == TF_EXEC_NO_STATUS) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "status must be PENDING, RUNNING, SUCCESS, FAILED or ZOMBIE");
        return;
    }
    if (!query_limit(req, &limit))
        return;
    tf_buf_init(&out, 16 * VIEW_MAX);
    rc = tf_buf_puts(&out, "{\"executions\":");
    if (rc == TF_OK)
        rc = tf_exec_list(conn, svc->def->name, job, status, (int)limit, &out);
    if (rc == TF_OK)
        rc = tf_buf_puts(&out, "}");
    if (rc == TF_OK)
        reply_buf(req, &out);
    else
        tf_http_reply_rc(req, rc, "cannot list executions");
    tf_buf_cleanup(&out);
}

/* Appends s to buf as a query-string value: all but unreserved bytes %-encoded. */
static enum tf_rc append_query_value(struct tf_buf *buf, const char *s)
{
    enum tf_rc rc = TF_OK;

    for (; rc == TF_OK && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            rc = tf_buf_append(buf, s, 1);
        else
            rc = tf_buf_printf(buf, "%%%02X", c);
    }
    return rc;
}

/*
 * GET /v1/executions/{id}/objects?limit=&after=: the record's objects a
 * page at a time, in byte order of uri, with the link to the next page
 * ("next", null on the last): after is the uri of the last object seen.
 */
static void get_objects(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn, const char *id)
{
    const char *after = tf_http_query(req, "after");
    long limit = OBJECTS_PAGE;
    cJSON *page = NULL;
    cJSON *root = NULL;
    const cJSON *objects;
    struct tf_buf next;
    int more = 0;
    enum tf_rc rc;

    if (!query_limit(req, &limit))
        return;
    if (after && strlen(after) > AFTER_MAX) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "after must be the uri of an object (at most %d bytes)", AFTER_MAX);
        return;
    }
    rc = tf_exec_objects(conn, id, svc->def->name, after, (int)limit, &page, &more);
    if (rc != TF_OK) {
        reply_read_error(svc, req, id, rc);
        return;
    }
    objects = cJSON_GetObjectItemCaseSensitive(page, "objects");
    tf_buf_init(&next, 1u << 20);
    if (more)
        rc = tf_buf_printf(&next, "/v1/executions/%s/objects?limit=%ld&after=", id, limit);
    if (more && rc == TF_OK) {
        const cJSON *last = cJSON_GetArrayItem(objects, cJSON_GetArraySize(objects) - 1);
        const char *uri = tf_json_str(last, "uri");
        rc = append_query_value(&next, uri ? uri : "");
    }
    root = cJSON_CreateObject();
    if (rc == TF_OK && root && cJSON_AddStringToObject(root, "execution_id", id) &&
        cJSON_AddStringToObject(root, "stage", svc->def->name) &&
        cJSON_AddNumberToObject(root, "total", tf_json_long(page, "total", 0)) &&
        cJSON_AddNumberToObject(root, "limit", (double)limit)) {
        cJSON_AddItemToObject(root, "objects",
                              cJSON_DetachItemFromObjectCaseSensitive(page, "objects"));
        if (more)
            cJSON_AddStringToObject(root, "next", next.data);
        else
            cJSON_AddNullToObject(root, "next");
        tf_http_reply_json(req, TF_HTTP_OK, root);
    } else {
        tf_http_reply_rc(req, TF_ERR_NOMEM, "cannot build the page");
    }
    tf_buf_cleanup(&next);
    cJSON_Delete(root);
    cJSON_Delete(page);
}

static void get_ready(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    int pg_ok = 0;
    int kafka_ok = tf_kafka_ping(svc->kafka, 2000) == TF_OK;
    cJSON *root = cJSON_CreateObject();
    enum tf_rc rc;
    char why[512];
    const char *kafka_state = kafka_ok ? "ok" : "unreachable";

    if (conn) {
        PGresult *res = PQexec(conn, "SELECT 1");
        pg_ok = tf_pg_ok(res);
        PQclear(res);
    }
    cJSON_AddStringToObject(root, "status", pg_ok && kafka_ok ? "ok" : "unavailable");
    cJSON_AddStringToObject(root, "postgres", pg_ok ? "ok" : "unreachable");
    /* A refused handshake or login says so: the broker is there. */
    if (!kafka_ok && tf_kafka_secure_error(svc->kafka, why, sizeof(why)))
        kafka_state =
            strncmp(why, "SSL", 3) == 0 ? "ssl handshake failed" : "authentication failed";
    cJSON_AddStringToObject(root, "kafka", kafka_state);
    /* Not the error shape: the report names each dependency; 503 when one is away. */
    rc = !pg_ok ? TF_ERR_DB : !kafka_ok ? TF_ERR_KAFKA : TF_OK;
    tf_http_reply_json(req, tf_rc_http_status(rc), root);
    cJSON_Delete(root);
}

/* The stage's records by status, from the database (skipped when no connection is free). */
static enum tf_rc metrics_from_db(struct tf_svc *svc, struct tf_buf *out)
{
    PGconn *conn = tf_svc_conn_try(svc);
    const char *params[1] = {svc->def->name};
    PGresult *res;
    enum tf_rc rc = TF_OK;

    if (!conn)
        return TF_OK;
    res = tf_pg_exec(conn,
                     "SELECT s.status, count(e.status) FROM unnest(ARRAY['PENDING','RUNNING',"
                     "'SUCCESS','FAILED','ZOMBIE']) AS s(status) LEFT JOIN tickflow.job_execution e"
                     " ON e.status = s.status AND e.stage = $1 GROUP BY s.status ORDER BY 1",
                     1, params);
    if (tf_pg_ok(res)) {
        rc = tf_buf_puts(out, "# HELP tickflow_executions The stage's records by status (all"
                              " replicas, from the database).\n"
                              "# TYPE tickflow_executions gauge\n");
        for (int i = 0; i < PQntuples(res) && rc == TF_OK; i++)
            rc = tf_buf_printf(out, "tickflow_executions{stage=\"%s\",status=\"%s\"} %s\n",
                               svc->def->name, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    }
    PQclear(res);
    tf_svc_conn_put(svc, conn);
    return rc;
}

/* Histograms of runs and requests, records, leases and the consumer's lag. */
static enum tf_rc metrics_more(struct tf_svc *svc, struct tf_buf *out)
{
    const char *st = svc->def->name;
    char labels[160];
    struct tf_kafka_lag lag[64];
    int nlag = tf_kafka_consumer_lag(svc->consumer, lag, 64);
    enum tf_rc rc;

    snprintf(labels, sizeof(labels), "stage=\"%s\"", st);
    rc = tf_buf_puts(out, "# HELP tickflow_stage_duration_seconds Runs of the stage that ended"
                          " SUCCESS or FAILED, claim to outcome.\n"
                          "# TYPE tickflow_stage_duration_seconds histogram\n");
    if (rc == TF_OK)
        rc = svc_hist_write(out, "tickflow_stage_duration_seconds", labels, &svc->m_stage_seconds);
    if (rc == TF_OK)
        rc = tf_buf_printf(
            out,
            "# HELP tickflow_records_total Records of the stage's finished runs.\n"
            "# TYPE tickflow_records_total counter\n"
            "tickflow_records_total{stage=\"%s\",kind=\"in\"} %lld\n"
            "tickflow_records_total{stage=\"%s\",kind=\"out\"} %lld\n"
            "tickflow_records_total{stage=\"%s\",kind=\"rejected\"} %lld\n"
            "# HELP tickflow_lease_renewals_total Heartbeats that renewed a run's lease.\n"
            "# TYPE tickflow_lease_renewals_total counter\n"
            "tickflow_lease_renewals_total{stage=\"%s\"} %lld\n"
            "# HELP tickflow_leases_lost_total Runs of this process that found their lease"
            " taken (a zombie writer, fenced off).\n"
            "# TYPE tickflow_leases_lost_total counter\n"
            "tickflow_leases_lost_total{stage=\"%s\"} %lld\n"
            "# HELP tickflow_takeovers_total Silent runs this process's sweeper took back.\n"
            "# TYPE tickflow_takeovers_total counter\n"
            "tickflow_takeovers_total{stage=\"%s\"} %lld\n"
            "# HELP tickflow_kafka_consumer_lag Messages behind the end of an assigned"
            " partition.\n"
            "# TYPE tickflow_kafka_consumer_lag gauge\n",
            st, (long long)atomic_load(&svc->m_records_in), st,
            (long long)atomic_load(&svc->m_records_out), st,
            (long long)atomic_load(&svc->m_records_rejected), st,
            (long long)atomic_load(&svc->m_heartbeats), st,
            (long long)atomic_load(&svc->m_leases_lost), st,
            (long long)atomic_load(&svc->m_takeovers));
    for (int i = 0; i < nlag && rc == TF_OK; i++)
        rc = tf_buf_printf(out, "tickflow_kafka_consumer_lag{stage=\"%s\",partition=\"%d\"} %lld\n",
                           st, lag[i].partition, lag[i].lag);
    if (rc == TF_OK)
        rc = tf_buf_puts(out, "# HELP tickflow_http_requests_total Requests answered, by route"
                              " and status class.\n"
                              "# TYPE tickflow_http_requests_total counter\n");
    for (int r = 0; r < SVC_NROUTES && rc == TF_OK; r++)
        for (int c = 0; c < 5 && rc == TF_OK; c++) {
            long long n = atomic_load(&svc->m_http.by_class[r][c]);
            if (n)
                rc = tf_buf_printf(out,
                                   "tickflow_http_requests_total{stage=\"%s\",route=\"%s\","
                                   "code=\"%dxx\"} %lld\n",
                                   st, svc_route_name((enum svc_route)r), c + 1, n);
        }
    if (rc == TF_OK)
        rc = tf_buf_puts(out, "# HELP tickflow_http_request_duration_seconds Time to answer a"
                              " request once it was read, by route.\n"
                              "# TYPE tickflow_http_request_duration_seconds histogram\n");
    for (int r = 0; r < SVC_NROUTES && rc == TF_OK; r++) {
        if (!atomic_load(&svc->m_http.seconds[r].count))
            continue;
        snprintf(labels, sizeof(labels), "stage=\"%s\",route=\"%s\"", st,
                 svc_route_name((enum svc_route)r));
        rc = svc_hist_write(out, "tickflow_http_request_duration_seconds", labels,
                            &svc->m_http.seconds[r]);
    }
    if (rc == TF_OK)
        rc = metrics_from_db(svc, out);
    return rc;
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
        (long long)atomic_load(&svc->m_dlq), st, svc_queue_depth(svc));
    if (rc == TF_OK)
        rc = metrics_more(svc, &out);
    if (rc != TF_OK) {
        tf_buf_cleanup(&out);
        tf_http_reply_rc(req, rc, "cannot format metrics");
        return;
    }
    tf_http_reply_take(req, TF_HTTP_OK, "text/plain; version=0.0.4", out.data, out.len);
}

/* The stage API (macros: tf/openapi.h); stage routes are added to "paths". */
#define OA_COUNT        "{\"type\":\"integer\",\"minimum\":0}"
#define OA_STATUS       OA_ENUM("\"PENDING\",\"RUNNING\",\"SUCCESS\",\"FAILED\",\"ZOMBIE\"")
#define OA_EXECUTION_ID OA_PATH_PARAM("execution_id", OA_UUID)
/* clang-format off */
static const char openapi_head[] =
    "{\"openapi\":\"3.0.3\",\"info\":{\"title\":\"tickflow stage API\",\"version\":\"1\"},"
    "\"components\":{\"schemas\":{"
    "\"ExecutionRecord\":{\"type\":\"object\",\"description\":\"This stage's record of an"
        " execution. Its size does not grow with the run: the objects the stage wrote are"
        " counted in objects_summary and listed by GET objects_summary.href.\","
        "\"properties\":{\"execution_id\":" OA_UUID ","
        "\"stage\":" OA_ENUM("\"extract\",\"transform\",\"aggregate\"") ","
        "\"job_name\":" OA_STR ",\"status\":" OA_STATUS ","
        "\"attempt\":" OA_COUNT ",\"max_attempts\":" OA_COUNT ","
        "\"trigger\":" OA_ENUM("\"http\",\"kafka\",\"sweep\",\"schedule\"") ","
        "\"window_start\":" OA_TIME ",\"window_end\":" OA_TIME ","
        "\"tickers\":{\"type\":\"array\",\"items\":" OA_STR "},"
        "\"records_in\":" OA_COUNT ",\"records_out\":" OA_COUNT ","
        "\"records_rejected\":" OA_COUNT ","
        "\"error\":" OA_STR_NULL ",\"worker_id\":" OA_STR_NULL ",\"detail\":" OA_STR_NULL ","
        "\"heartbeat_at\":" OA_TIME_NULL ",\"started_at\":" OA_TIME_NULL ","
        "\"finished_at\":" OA_TIME_NULL ",\"created_at\":" OA_TIME ","
        "\"updated_at\":" OA_TIME ",\"objects_summary\":" OA_REF("ObjectsSummary") "}},"
    "\"ObjectsSummary\":{\"type\":\"object\",\"description\":\"The objects the stage's last"
        " finished attempt wrote (bronze pages, Parquet files, gold tables)\","
        "\"properties\":{\"count\":" OA_COUNT ","
        "\"bytes\":{\"type\":\"integer\",\"minimum\":0,"
            "\"description\":\"the sum of their bytes (objects without a size count 0)\"},"
        "\"records\":{\"type\":\"integer\",\"minimum\":0,"
            "\"description\":\"the sum of their records\"},"
        "\"href\":{\"type\":\"string\",\"description\":\"the objects themselves: "
            "/v1/executions/{execution_id}/objects\"}}},"
    "\"ObjectsPage\":{\"type\":\"object\",\"properties\":{"
        "\"execution_id\":" OA_UUID ",\"stage\":" OA_STR ","
        "\"total\":{\"type\":\"integer\",\"minimum\":0,"
            "\"description\":\"objects in the record, on every page\"},"
        "\"limit\":" OA_INT("1", OA_NUM(LIST_MAX)) ","
        "\"objects\":{\"type\":\"array\",\"description\":\"in byte order of uri\","
            "\"items\":{\"type\":\"object\",\"properties\":{\"uri\":" OA_STR ","
            "\"bytes\":" OA_COUNT ",\"records\":" OA_COUNT ",\"sha256\":" OA_STR "},"
            "\"additionalProperties\":true}},"
        "\"next\":{\"type\":\"string\",\"nullable\":true,\"description\":\"the next page's"
            " path, null on the last page\"}}},"
    "\"Error\":{\"type\":\"object\",\"properties\":{\"error\":{\"type\":\"object\","
        "\"properties\":{\"code\":" OA_STR ",\"message\":" OA_STR "}}}}},"
    OA_BEARER_SCHEME "},"
    "\"paths\":{"
    "\"/v1/executions\":{"
        "\"post\":{\"summary\":\"Start (or find) this stage of an execution\","
            OA_BEARER;
/* The POST's body: extract starts executions of a job (and makes the id when none is given);
 * a later stage takes one whose upstream stage succeeded, and may replay it. */
#define POST_COMMON                                                                                \
    "\"window_start\":" OA_TIME ",\"window_end\":" OA_TIME ",\"wait_seconds\":" OA_INT("0", "3600")
static const char openapi_post_first[] =
    OA_BODY("{\"type\":\"object\",\"required\":[\"job_name\"],\"properties\":{"
        "\"execution_id\":" OA_UUID ",\"job_name\":" OA_JOB_NAME "," POST_COMMON "},"
        "\"description\":\"window_start and window_end come together (none: the job's next"
        " incremental window); window_end is after window_start, at most 31 days after it and not"
        " in the future\"}");
static const char openapi_post_later[] =
    OA_BODY("{\"type\":\"object\",\"required\":[\"execution_id\"],\"properties\":{"
        "\"execution_id\":" OA_UUID ",\"job_name\":" OA_JOB_NAME "," POST_COMMON ","
        "\"replay\":{\"type\":\"boolean\",\"description\":\"rebuild this stage from the "
        "upstream stage's output as a new attempt, even when it succeeded\"}},"
        "\"description\":\"job_name, window_start and window_end, when given, must be the"
        " execution's\"}");
static const char openapi_tail[] =
            "\"responses\":{"
                OA_JSON("200", "existing or finished record", OA_REF("ExecutionRecord")) ","
                OA_JSON("202", "accepted", OA_REF("ExecutionRecord")) ","
                OA_JSON("400", "bad request", OA_REF("Error")) "," OA_UNAUTHORIZED ","
                OA_JSON("404", "unknown job or upstream stage", OA_REF("Error")) ","
                OA_JSON("409", "conflicting request for a known execution", OA_REF("Error"))
            "}},"
        "\"get\":{\"summary\":\"List this stage's records, newest first\",\"parameters\":["
            OA_QUERY_PARAM("job_name", "false", OA_JOB_NAME) ","
            OA_QUERY_PARAM("status", "false", OA_STATUS) ","
            OA_QUERY_PARAM("limit", "false", OA_INT("1", OA_NUM(LIST_MAX))) "],"
            "\"responses\":{"
                OA_JSON("200", "records", "{\"type\":\"object\",\"properties\":{\"executions\":"
                    "{\"type\":\"array\",\"items\":" OA_REF("ExecutionRecord") "}}}") ","
                OA_JSON("400", "bad job_name, status or limit", OA_REF("Error")) "}}},"
    "\"/v1/executions/{execution_id}\":{\"get\":{\"summary\":\"This stage's record\","
        "\"parameters\":[" OA_EXECUTION_ID "],"
        "\"responses\":{" OA_JSON("200", "record", OA_REF("ExecutionRecord")) ","
            OA_JSON("400", "not a UUID", OA_REF("Error")) ","
            OA_JSON("404", "no such execution at this stage", OA_REF("Error")) "}}},"
    "\"/v1/executions/{execution_id}/objects\":{\"get\":{"
        "\"summary\":\"The objects of this stage's record, a page at a time in byte order of"
            " uri; follow next until it is null\","
        "\"parameters\":[" OA_EXECUTION_ID ","
            OA_QUERY_PARAM("limit", "false", "{\"type\":\"integer\",\"minimum\":1,"
                "\"maximum\":" OA_NUM(LIST_MAX) ",\"default\":" OA_NUM(OBJECTS_PAGE) "}") ","
            OA_QUERY_PARAM("after", "false", "{\"type\":\"string\","
                "\"maxLength\":" OA_NUM(AFTER_MAX) ",\"description\":\"the uri of the last"
                " object seen: the page starts after it\"}")
        "],"
        "\"responses\":{" OA_JSON("200", "a page", OA_REF("ObjectsPage")) ","
            OA_JSON("400", "not a UUID, limit not 1.." OA_NUM(LIST_MAX) ", after too long",
                OA_REF("Error")) ","
            OA_JSON("404", "no such execution at this stage", OA_REF("Error")) "}}},"
    "\"/healthz\":{\"get\":{\"responses\":{" OA_OK("alive") "}}},"
    "\"/readyz\":{\"get\":{\"responses\":{" OA_OK("ready") ","
        "\"503\":{\"description\":\"a dependency is unreachable\"}}}},"
    "\"/metrics\":{\"get\":{\"responses\":{" OA_OK("Prometheus text") "}}}}}";
/* clang-format on */

int tf_svc_execution_route(struct tf_http_req *req, const char *pattern, char id[128])
{
    char caps[1][128];

    if (!tf_http_match(tf_http_path(req), pattern, caps, 1))
        return 0;
    if (strcmp(tf_http_method(req), "GET") != 0) {
        tf_http_reply_method(req, "GET");
        return -1;
    }
    if (!tf_uuid_valid(caps[0])) {
        tf_http_reply_rc(req, TF_ERR_INVALID, "execution_id must be a UUID");
        return -1;
    }
    memcpy(id, caps[0], sizeof(caps[0]));
    return 1;
}

/* The stage API's document, with the stage's own routes when it has some. */
static void reply_openapi(const struct tf_svc *svc, struct tf_http_req *req)
{
    const char *extra = svc->def->openapi_paths;
    const char *post = svc->def->upstream ? openapi_post_later : openapi_post_first;
    struct tf_buf doc;
    size_t len;

    tf_buf_init(&doc, 1u << 20);
    /* openapi_tail ends with the braces of "paths" and of the document. */
    if (tf_buf_puts(&doc, openapi_head) != TF_OK || tf_buf_puts(&doc, post) != TF_OK ||
        tf_buf_append(&doc, openapi_tail, sizeof(openapi_tail) - 3) != TF_OK ||
        (extra && *extra &&
         (tf_buf_puts(&doc, ",") != TF_OK || tf_buf_puts(&doc, extra) != TF_OK)) ||
        tf_buf_puts(&doc, "}}") != TF_OK) {
        tf_buf_cleanup(&doc);
        tf_http_reply_rc(req, TF_ERR_NOMEM, "cannot build the document");
        return;
    }
    len = doc.len;
    tf_http_reply_take(req, TF_HTTP_OK, "application/json", tf_buf_take(&doc), len);
}

static void dispatch(struct tf_svc *svc, struct tf_http_req *req);

/* Every request: dispatched, then counted under its route and status class. */
void svc_http_handle(struct tf_http_req *req, void *ud)
{
    struct tf_svc *svc = ud;
    enum svc_route route = svc_route_of(tf_http_path(req));
    int64_t t0 = tf_time_mono_ms();
    int status;

    dispatch(svc, req);
    status = tf_http_status(req);
    svc_hist_observe(&svc->m_http.seconds[route], (tf_time_mono_ms() - t0) * 1000);
    if (status >= 100 && status < 600)
        atomic_fetch_add(&svc->m_http.by_class[route][status / 100 - 1], 1);
}

static void dispatch(struct tf_svc *svc, struct tf_http_req *req)
{
    const char *method = tf_http_method(req);
    const char *path = tf_http_path(req);
    char caps[1][128];
    PGconn *conn = NULL;
    int is_get = strcmp(method, "GET") == 0;
    int route;

    if (!is_get && (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
                    strcmp(path, "/metrics") == 0 || strcmp(path, "/openapi.json") == 0)) {
        tf_http_reply_method(req, "GET");
        return;
    }
    if (is_get && strcmp(path, "/healthz") == 0) {
        tf_http_reply_take(req, TF_HTTP_OK, "application/json", strdup("{\"status\":\"ok\"}"), 15);
        return;
    }
    if (is_get && strcmp(path, "/metrics") == 0) {
        get_metrics(svc, req);
        return;
    }
    if (is_get && strcmp(path, "/openapi.json") == 0) {
        reply_openapi(svc, req);
        return;
    }
    if (svc->def->static_route && svc->def->static_route(svc, req))
        return;
    conn = svc_api_conn_get(svc, tf_http_logctx(req));
    if (is_get && strcmp(path, "/readyz") == 0) {
        get_ready(svc, req, conn);
        goto out;
    }
    if (!conn) {
        tf_http_reply_rc(req, TF_ERR_DB, "PostgreSQL is unreachable");
        goto out;
    }
    if (strcmp(path, "/v1/executions") == 0) {
        if (strcmp(method, "POST") == 0)
            post_execution(svc, req, &conn);
        else if (is_get)
            list_executions(svc, req, conn);
        else
            tf_http_reply_method(req, "GET, POST");
        goto out;
    }
    if (tf_http_match(path, "/v1/executions/*", caps, 1)) {
        if (is_get)
            get_execution(svc, req, conn, caps[0]);
        else
            tf_http_reply_method(req, "GET");
        goto out;
    }
    route = tf_svc_execution_route(req, "/v1/executions/*/objects", caps[0]);
    if (route == 1)
        get_objects(svc, req, conn, caps[0]);
    if (route != 0)
        goto out;
    if (svc->def->route && svc->def->route(svc, req, conn))
        goto out;
    tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "no route for %s %s", method, path);
out:
    svc_api_conn_put(svc, conn);
}
