/*
 * svc_http.c - the stage API every service serves: POST and GET
 * /v1/executions, /healthz, /readyz, /metrics, /openapi.json, then the
 * stage's own routes. See tf/svc.h and the README for the contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_internal.h"
#include "tf/json.h"
#include "tf/time.h"

#define MAX_WAIT_SEC 3600
#define LIST_MAX     1000

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
 * newest copy. A run of this process has finished when its follow-up has
 * too (transform's lake files), so the answer lists everything it wrote.
 * Holds a connection only while it reads.
 */
/* Replaces *record with the newest copy (kept when it cannot be read). */
static void reread(struct tf_svc *svc, const char *id, cJSON **record)
{
    PGconn *conn = svc_get_conn(svc, NULL);
    cJSON *fresh = NULL;

    if (!conn)
        return;
    if (tf_exec_get(conn, id, svc->def->name, &fresh) == TF_OK) {
        cJSON_Delete(*record);
        *record = fresh;
    }
    tf_pg_pool_put(svc->pool, conn);
}

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

/* Checks the shape of a POST /v1/executions body; err gets the first problem. */
static enum tf_rc check_body(const cJSON *body, int id_required, char *err, size_t errlen)
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
        tf_http_reply_error(req, 400, "invalid_argument",
                            "%s has no upstream stage to replay from; replay transform or "
                            "aggregate",
                            svc->def->name);
        return 1;
    }
    rc = tf_exec_get(conn, id, up_stage, &up);
    if (rc == TF_ERR_NOT_FOUND) {
        tf_http_reply_error(req, 404, "not_found", "execution %s has no %s stage to replay from",
                            id, up_stage);
        return 1;
    }
    if (rc != TF_OK) {
        tf_http_reply_rc(req, rc, "cannot read the upstream record");
        return 1;
    }
    status = tf_json_str(up, "status");
    if (!status || strcmp(status, "SUCCESS") != 0) {
        tf_http_reply_error(req, 409, "conflict",
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
    int status = 202;
    int replay = 0;

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
    replay = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "replay"));
    if (replay && refuse_replay(svc, req, conn, plan.execution_id))
        goto out;

    rc = tf_exec_get(conn, plan.execution_id, def->name, &record);
    if (rc == TF_ERR_NOT_FOUND) {
        rc = svc_make_plan(svc, conn, body, &plan, &owned, err, sizeof(err));
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
        /* A replay: the finished stage is rebuilt from its upstream as a new attempt. */
        if (replay && strcmp(tf_json_str(record, "status"), "RUNNING") == 0) {
            tf_http_reply_error(req, 409, "conflict",
                                "the %s stage of execution %s is running; replay it once it "
                                "has finished",
                                def->name, plan.execution_id);
            goto out;
        }
        if (replay && svc_rerun(svc, conn, plan.execution_id, 0) == TF_OK) {
            cJSON_Delete(record);
            record = NULL;
            if (tf_exec_get(conn, plan.execution_id, def->name, &record) != TF_OK) {
                tf_http_reply_rc(req, TF_ERR_DB, "cannot read the execution record");
                goto out;
            }
            tf_log_info(tf_http_logctx(req), "replay of stage %s queued", def->name);
            status = 202;
        }
        /* Waiting (handed back on a drain, or a dead worker's, or a replay): queue
         * it here too; the claim decides who runs it. */
        if (strcmp(tf_json_str(record, "status"), "PENDING") == 0 ||
            strcmp(tf_json_str(record, "status"), "ZOMBIE") == 0)
            tf_svc_enqueue(svc, plan.execution_id);
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
            tf_svc_enqueue(svc, plan.execution_id);
            status = 202;
        }
    } else {
        tf_log_info(tf_http_logctx(req), "execution accepted stage=%s job=%s", def->name,
                    plan.job_name);
        tf_svc_enqueue(svc, plan.execution_id);
    }
    if (wait > 0) {
        tf_pg_pool_put(svc->pool, conn);
        *connp = NULL;
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
        (long long)atomic_load(&svc->m_dlq), st, svc_queue_depth(svc));
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
    "\"wait_seconds\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":3600},"
    "\"replay\":{\"type\":\"boolean\",\"description\":\"rebuild this stage from the "
    "upstream stage's output as a new attempt, even when it succeeded\"}}}}}},"
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

int tf_svc_execution_route(struct tf_http_req *req, const char *pattern, char id[128])
{
    char caps[1][128];

    if (!tf_http_match(tf_http_path(req), pattern, caps, 1))
        return 0;
    if (strcmp(tf_http_method(req), "GET") != 0) {
        tf_http_reply_error(req, 405, "method_not_allowed", "use GET");
        return -1;
    }
    if (!tf_uuid_valid(caps[0])) {
        tf_http_reply_error(req, 400, "invalid_argument", "execution_id must be a UUID");
        return -1;
    }
    memcpy(id, caps[0], sizeof(caps[0]));
    return 1;
}

/* The stage API's document, with the stage's own routes when it has some. */
static void reply_openapi(const struct tf_svc *svc, struct tf_http_req *req)
{
    const char *extra = svc->def->openapi_paths;
    struct tf_buf doc;
    size_t len;

    tf_buf_init(&doc, 1u << 20);
    /* openapi_doc ends with the braces of "paths" and of the document. */
    if (tf_buf_append(&doc, openapi_doc, sizeof(openapi_doc) - 3) != TF_OK ||
        (extra && *extra &&
         (tf_buf_puts(&doc, ",") != TF_OK || tf_buf_puts(&doc, extra) != TF_OK)) ||
        tf_buf_puts(&doc, "}}") != TF_OK) {
        tf_buf_cleanup(&doc);
        tf_http_reply_rc(req, TF_ERR_NOMEM, "cannot build the document");
        return;
    }
    len = doc.len;
    tf_http_reply_take(req, 200, "application/json", tf_buf_take(&doc), len);
}

void svc_http_handle(struct tf_http_req *req, void *ud)
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
        reply_openapi(svc, req);
        return;
    }
    conn = svc_get_conn(svc, tf_http_logctx(req));
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
            post_execution(svc, req, &conn);
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
