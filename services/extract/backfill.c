/*
 * backfill.c - POST /v1/backfills splits a range of days into one execution
 * per UTC day, created together (each visible in job_execution at once);
 * GET /v1/backfills/{id} reports their progress through gold. The
 * scheduler (extract_tick, run by the sweeper) releases the days in order,
 * at most `concurrency` in flight; one replica schedules at a time (an
 * advisory lock), so the bound holds however many replicas run.
 */
#include "extract.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/exec.h"
#include "job.h"
#include "tf/json.h"
#include "tf/pg.h"
#include "tf/time.h"

#define DEFAULT_CONCURRENCY 2
#define MAX_CONCURRENCY     32

/*
 * A backfill as JSON, from one statement over its days: the extract rows
 * (job_execution_backfill_idx), each day's transform and aggregate rows by
 * primary key. Each (day, stage) is in one state:
 *   pending    PENDING, or not created yet while no earlier stage of the
 *              day has FAILED (the one before is under way, or succeeded
 *              and its event is on its way);
 *   running    RUNNING or ZOMBIE (a lost worker's run, which the sweeper
 *              queues again, or marks FAILED on its last attempt);
 *   succeeded  SUCCESS;
 *   failed     FAILED, with or without attempts left: nothing retries it
 *              but an orchestrator POSTing the stage again, which makes it
 *              PENDING (and the backfill RUNNING) again;
 *   skipped    not created because an earlier stage of the day FAILED.
 * So each stage's five counts add up to `days`. The backfill is SUCCESS
 * when every stage of every day succeeded (every day reached gold), RUNNING
 * while any is pending or running, else FAILED: it has stopped with a
 * failed day. A day whose transform replay failed is failed even though
 * its earlier gold stands. after_failure is NULL, so not true, for an
 * aggregate whose transform is not created yet.
 */
/* clang-format off */
#define STATE_COUNT(stage, state)                                                              \
    "'" state "', count(*) FILTER (WHERE s.stage = '" stage "' AND s.state = '" state "')"
#define STAGE_COUNTS(stage)                                                                    \
    "json_build_object(" STATE_COUNT(stage, "pending") "," STATE_COUNT(stage, "running") ","   \
    STATE_COUNT(stage, "succeeded") "," STATE_COUNT(stage, "failed") ","                       \
    STATE_COUNT(stage, "skipped") ")"
#define BACKFILL_JSON                                                                          \
    "json_build_object('backfill_id', b.backfill_id, 'job_name', b.job_name,"                  \
    " 'from', b.range_from, 'to', b.range_to, 'days', b.range_to - b.range_from + 1,"          \
    " 'concurrency', b.concurrency, 'created_by', b.created_by,"                               \
    " 'created_at', to_char(b.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                  \
    " 'status', CASE WHEN bool_and(s.state = 'succeeded') THEN 'SUCCESS'"                      \
    "   WHEN bool_or(s.state IN ('pending', 'running')) THEN 'RUNNING' ELSE 'FAILED' END,"     \
    " 'extract', " STAGE_COUNTS("extract") ","                                                 \
    " 'transform', " STAGE_COUNTS("transform") ","                                             \
    " 'aggregate', " STAGE_COUNTS("aggregate") ","                                             \
    " 'completed', count(*) FILTER (WHERE s.stage = 'aggregate' AND s.state = 'succeeded'),"   \
    " 'executions', json_agg(json_build_object('execution_id', e.execution_id,"                \
    "   'window_start', to_char(e.window_start, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"            \
    "   'extract', e.status, 'transform', t.status, 'aggregate', a.status)"                    \
    "   ORDER BY e.window_start) FILTER (WHERE s.stage = 'extract'))::text"                    \
    " FROM tickflow.backfill b"                                                                \
    " JOIN tickflow.job_execution e ON e.backfill_id = b.backfill_id AND e.stage = 'extract'"  \
    " LEFT JOIN tickflow.job_execution t ON t.execution_id = e.execution_id"                   \
    "  AND t.stage = 'transform'"                                                              \
    " LEFT JOIN tickflow.job_execution a ON a.execution_id = e.execution_id"                   \
    "  AND a.stage = 'aggregate'"                                                              \
    " CROSS JOIN LATERAL (SELECT v.stage, CASE WHEN v.status = 'SUCCESS' THEN 'succeeded'"     \
    "   WHEN v.status = 'FAILED' THEN 'failed'"                                                \
    "   WHEN v.status IN ('RUNNING', 'ZOMBIE') THEN 'running'"                                 \
    "   WHEN v.status IS NULL AND v.after_failure THEN 'skipped' ELSE 'pending' END AS state"  \
    "  FROM (VALUES ('extract', e.status, false),"                                             \
    "   ('transform', t.status, e.status = 'FAILED'),"                                         \
    "   ('aggregate', a.status, e.status = 'FAILED' OR t.status = 'FAILED'))"                  \
    "   AS v (stage, status, after_failure)) AS s"                                             \
    " WHERE b.backfill_id = $1"                                                                \
    " GROUP BY b.backfill_id"
/* clang-format on */

static enum tf_rc backfill_get(PGconn *conn, const char *id, cJSON **out)
{
    const char *params[1] = {id};

    return tf_pg_json_row(conn, "SELECT " BACKFILL_JSON, 1, params, out);
}

/* A "YYYY-MM-DD" member as a day number; 0 when it is not a plain date. */
static int day_field(const cJSON *body, const char *key, int64_t *day)
{
    const char *s = tf_json_str(body, key);
    int64_t t = 0;

    if (!s || strlen(s) != 10 || tf_time_parse(s, &t) != TF_OK)
        return 0;
    *day = t / 86400;
    return 1;
}

int extract_backfill_days(int64_t from_day, int64_t to_day, struct tf_exec_window *days, int max)
{
    int n;

    if (to_day < from_day || to_day - from_day >= EXTRACT_BACKFILL_MAX_DAYS)
        return -1;
    n = (int)(to_day - from_day + 1);
    if (n > max)
        return -1;
    /* UTC has no daylight saving: every day is 86400 s, the leap day too. */
    for (int i = 0; i < n; i++) {
        days[i].start = (from_day + i) * 86400;
        days[i].end = days[i].start + 86400;
    }
    return n;
}

static void reply_backfill(struct tf_http_req *req, PGconn *conn, const char *id, int status)
{
    cJSON *bf = NULL;
    char loc[80];

    if (backfill_get(conn, id, &bf) != TF_OK) {
        tf_http_reply_rc(req, TF_ERR_DB, "cannot read the backfill");
        return;
    }
    snprintf(loc, sizeof(loc), "/v1/backfills/%s", id);
    tf_http_set_header(req, "Location", loc);
    tf_http_reply_json(req, status, bf);
    cJSON_Delete(bf);
}

/* Does a repeated POST with the same backfill_id ask for something else? */
static int same_backfill(PGconn *conn, const char *id, const char *job, const char *from,
                         const char *to, int *exists)
{
    const char *params[4] = {id, job, from, to};
    PGresult *res = tf_pg_exec(conn,
                               "SELECT job_name = $2 AND range_from = $3::date"
                               " AND range_to = $4::date FROM tickflow.backfill"
                               " WHERE backfill_id = $1",
                               4, params);
    int same = 0;

    *exists = tf_pg_ok(res) && PQntuples(res) == 1;
    if (*exists)
        same = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return same;
}

static void post_backfill(struct tf_http_req *req, PGconn *conn)
{
    size_t len = 0;
    const char *text = tf_http_body(req, &len);
    const char *actor = tf_http_header(req, "X-Tickflow-Actor");
    cJSON *body = cJSON_ParseWithLength(text, len);
    cJSON *job = NULL;
    const char *name, *from_s, *to_s;
    int64_t from = 0, to = 0, today = tf_time_now() / 86400;
    long concurrency = DEFAULT_CONCURRENCY;
    char id[TF_UUID_LEN + 1], conc[16];
    const char *params[6];
    struct tf_exec_window days[EXTRACT_BACKFILL_MAX_DAYS];
    PGresult *res = NULL;
    const cJSON *it;
    enum tf_rc rc;
    int exists = 0;
    int ndays;

    if (!body || !cJSON_IsObject(body)) {
        tf_http_reply_rc_code(req, TF_ERR_INVALID, "invalid_json",
                              "the body must be a JSON object");
        goto out;
    }
    name = tf_json_str(body, "job_name");
    from_s = tf_json_str(body, "from");
    to_s = tf_json_str(body, "to");
    if (!name || !tf_job_name_valid(name)) {
        tf_http_reply_rc(req, TF_ERR_INVALID,
                         "job_name is required: 1 to 63 of a-z, 0-9 and _, starting with a letter");
        goto out;
    }
    if (!day_field(body, "from", &from) || !day_field(body, "to", &to)) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "from and to are days such as 2024-03-04 (both included)");
        goto out;
    }
    ndays = extract_backfill_days(from, to, days, EXTRACT_BACKFILL_MAX_DAYS);
    if (ndays < 0) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "to must not be before from, and a backfill spans at most %d days",
                          EXTRACT_BACKFILL_MAX_DAYS);
        goto out;
    }
    if (to >= today) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "a backfill covers whole past days: to must be before today (UTC)");
        goto out;
    }
    it = cJSON_GetObjectItemCaseSensitive(body, "concurrency");
    if (it) {
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
            it->valuedouble < 1 || it->valuedouble > MAX_CONCURRENCY) {
            tf_http_reply_rcf(req, TF_ERR_INVALID,
                              "concurrency must be a whole number from 1 to %d", MAX_CONCURRENCY);
            goto out;
        }
        concurrency = (long)it->valuedouble;
    }
    it = cJSON_GetObjectItemCaseSensitive(body, "backfill_id");
    if (it && (!cJSON_IsString(it) || !tf_uuid_valid(it->valuestring))) {
        tf_http_reply_rc(req, TF_ERR_INVALID, "backfill_id must be a UUID");
        goto out;
    }
    if (it) {
        snprintf(id, sizeof(id), "%s", it->valuestring);
        for (char *p = id; *p; p++)
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
    } else {
        tf_uuid_new(id);
    }
    rc = extract_job_get(conn, name, &job);
    if (rc != TF_OK) {
        tf_http_reply_rcf(req, rc, "unknown job %s", name);
        goto out;
    }
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(job, "enabled"))) {
        tf_http_reply_rcf(req, TF_ERR_CONFLICT, "job %s is disabled", name);
        goto out;
    }
    /* A repeated POST with the same backfill_id: the first one's answer. */
    if (!same_backfill(conn, id, name, from_s, to_s, &exists) && exists) {
        tf_http_reply_rcf(req, TF_ERR_CONFLICT, "backfill %s exists for another job or range", id);
        goto out;
    }
    if (exists) {
        reply_backfill(req, conn, id, TF_HTTP_OK);
        goto out;
    }
    snprintf(conc, sizeof(conc), "%ld", concurrency);
    params[0] = id;
    params[1] = name;
    params[2] = from_s;
    params[3] = to_s;
    params[4] = conc;
    params[5] = actor && strlen(actor) <= 64 ? actor : "api";
    /* The backfill and its days, all at once or not at all. */
    if (tf_pg_cmd(conn, "BEGIN") != TF_OK) {
        tf_http_reply_rc(req, TF_ERR_DB, "cannot start the backfill");
        goto out;
    }
    res = tf_pg_exec(conn,
                     "INSERT INTO tickflow.backfill (backfill_id, job_name, range_from, range_to,"
                     " concurrency, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
                     6, params);
    rc = tf_pg_ok(res) ? tf_exec_insert_days(conn, id, name, days, ndays) : TF_ERR_DB;
    if (rc != TF_OK || tf_pg_cmd(conn, "COMMIT") != TF_OK) {
        tf_http_reply_rcf(req, TF_ERR_DB, "cannot create the backfill (%s)",
                          tf_pg_ok(res) ? tf_rc_str(rc) : tf_pg_sqlstate(res));
        goto out;
    }
    tf_log_info(tf_http_logctx(req), "backfill %s job=%s days=%d concurrency=%ld", id, name, ndays,
                concurrency);
    reply_backfill(req, conn, id, TF_HTTP_ACCEPTED);
out:
    PQclear(res);
    cJSON_Delete(job);
    cJSON_Delete(body);
}

/*
 * GET /v1/backfills?job_name=&limit=: the job's backfills, newest first,
 * each as GET /v1/backfills/{id} shows it less its executions.
 */
static void list_backfills(struct tf_http_req *req, PGconn *conn)
{
    const char *job = tf_http_query(req, "job_name");
    const char *lim = tf_http_query(req, "limit");
    const char *params[2] = {job, lim ? lim : "20"};
    char *end = NULL;
    long limit = lim ? strtol(lim, &end, 10) : 20;
    PGresult *res = NULL;
    cJSON *cfg = NULL;
    cJSON *root = NULL;
    cJSON *list = NULL;
    enum tf_rc rc;

    if (!job || !tf_job_name_valid(job) || (lim && (*end || limit < 1 || limit > 100))) {
        tf_http_reply_rc(req, TF_ERR_INVALID, "job_name is required and limit is 1..100");
        return;
    }
    rc = extract_job_get(conn, job, &cfg);
    cJSON_Delete(cfg);
    if (rc != TF_OK) {
        tf_http_reply_rcf(req, rc, "unknown job %s", job);
        return;
    }
    res = tf_pg_exec(conn,
                     "SELECT backfill_id FROM tickflow.backfill WHERE job_name = $1"
                     " ORDER BY created_at DESC, backfill_id LIMIT $2",
                     2, params);
    root = cJSON_CreateObject();
    list = cJSON_AddArrayToObject(root, "backfills");
    rc = tf_pg_ok(res) && list ? TF_OK : TF_ERR_DB;
    for (int r = 0; rc == TF_OK && r < PQntuples(res); r++) {
        cJSON *bf = NULL;

        rc = backfill_get(conn, PQgetvalue(res, r, 0), &bf);
        cJSON_DeleteItemFromObjectCaseSensitive(bf, "executions");
        cJSON_AddItemToArray(list, bf);
    }
    if (rc == TF_OK)
        tf_http_reply_json(req, TF_HTTP_OK, root);
    else
        tf_http_reply_rc(req, TF_ERR_DB, "cannot list the backfills");
    cJSON_Delete(root);
    PQclear(res);
}

int extract_backfills_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    const char *method = tf_http_method(req);
    const char *path = tf_http_path(req);
    char caps[1][128];
    cJSON *bf = NULL;
    enum tf_rc rc;

    (void)svc;
    if (strcmp(path, "/v1/backfills") == 0) {
        if (strcmp(method, "POST") == 0)
            post_backfill(req, conn);
        else if (strcmp(method, "GET") == 0)
            list_backfills(req, conn);
        else
            tf_http_reply_method(req, "GET, POST");
        return 1;
    }
    if (!tf_http_match(path, "/v1/backfills/*", caps, 1))
        return 0;
    if (strcmp(method, "GET") != 0) {
        tf_http_reply_method(req, "GET");
        return 1;
    }
    if (!tf_uuid_valid(caps[0])) {
        tf_http_reply_rc(req, TF_ERR_INVALID, "a backfill id is a UUID");
        return 1;
    }
    rc = backfill_get(conn, caps[0], &bf);
    if (rc == TF_ERR_NOT_FOUND)
        tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "no backfill %s", caps[0]);
    else if (rc != TF_OK)
        tf_http_reply_rc(req, rc, "cannot read the backfill");
    else
        tf_http_reply_json(req, TF_HTTP_OK, bf);
    cJSON_Delete(bf);
    return 1;
}

void extract_backfill_release(struct tf_svc *svc, PGconn *conn)
{
    struct tf_exec_ids released = {NULL, 0};
    PGresult *res = NULL;

    if (tf_pg_cmd(conn, "BEGIN") != TF_OK)
        return;
    /* One scheduler at a time across replicas; the others skip this round. */
    res = tf_pg_exec(conn, "SELECT pg_try_advisory_xact_lock(hashtext('tickflow.backfill'))", 0,
                     NULL);
    if (!tf_pg_ok(res) || strcmp(PQgetvalue(res, 0, 0), "t") != 0)
        goto out;
    if (tf_exec_release_days(conn, &released) != TF_OK)
        goto out;
    if (tf_pg_cmd(conn, "COMMIT") != TF_OK)
        goto out;
    for (int i = 0; i < released.n; i++)
        tf_svc_enqueue(svc, released.id[i]);
out:
    PQclear(res);
    tf_exec_ids_cleanup(&released);
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *rb = PQexec(conn, "ROLLBACK");
        PQclear(rb);
    }
}
