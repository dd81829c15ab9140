/*
 * exec.c - job_execution rows: insert, read, claim, heartbeat, fence,
 * finish and the stage event, each one parameterised statement.
 */
#include "tf/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "tf/pg.h"
#include "tf/time.h"

int tf_uuid_valid(const char *s)
{
    size_t i;

    if (!s || strlen(s) != TF_UUID_LEN)
        return 0;
    for (i = 0; i < TF_UUID_LEN; i++) {
        int is_dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (is_dash) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

void tf_uuid_new(char out[TF_UUID_LEN + 1])
{
    uuid_t u;

    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

/* clang-format off */
#define TS(col)  "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define TSS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define RECORD_JSON                                                                            \
    "json_build_object('execution_id', execution_id, 'stage', stage, 'job_name', job_name,"    \
    " 'status', status, 'attempt', attempt, 'max_attempts', max_attempts, 'trigger', trigger," \
    " 'window_start', " TSS("window_start") ", 'window_end', " TSS("window_end") ","           \
    " 'tickers', tickers, 'objects', objects, 'records_in', records_in,"                       \
    " 'records_out', records_out, 'records_rejected', records_rejected, 'error', error,"       \
    " 'worker_id', worker_id, 'detail', detail, 'heartbeat_at', " TS("heartbeat_at") ","       \
    " 'started_at', " TS("started_at") ", 'finished_at', " TS("finished_at") ","               \
    " 'created_at', " TS("created_at") ", 'updated_at', " TS("updated_at") ")::text"
/* clang-format on */

/* Runs sql and returns the result, or NULL (cleared) unless it is ok. */
static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params)
{
    PGresult *res = tf_pg_exec(conn, sql, n, params);

    if (!tf_pg_ok(res)) {
        PQclear(res);
        return NULL;
    }
    return res;
}

enum tf_rc tf_exec_insert(PGconn *conn, const struct tf_exec_plan *plan, int *created)
{
    char ws[32], we[32], attempts[16];
    struct tf_buf tickers;
    const char *params[8];
    PGresult *res = NULL;

    tf_buf_init(&tickers, 1024 * 1024);
    if (tf_pg_text_array(plan->tickers, &tickers) != TF_OK) {
        tf_buf_cleanup(&tickers);
        return TF_ERR_TOO_LARGE;
    }
    tf_time_format(plan->window_start, ws, sizeof(ws));
    tf_time_format(plan->window_end, we, sizeof(we));
    snprintf(attempts, sizeof(attempts), "%d", plan->max_attempts > 0 ? plan->max_attempts : 3);
    params[0] = plan->execution_id;
    params[1] = plan->stage;
    params[2] = plan->job_name;
    params[3] = plan->trigger ? plan->trigger : "http";
    params[4] = ws;
    params[5] = we;
    params[6] = tickers.data;
    params[7] = attempts;
    res = run(conn,
              "INSERT INTO tickflow.job_execution (execution_id, stage, job_name, trigger,"
              " window_start, window_end, tickers, max_attempts)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
              " ON CONFLICT (execution_id, stage) DO NOTHING",
              8, params);
    tf_buf_cleanup(&tickers);
    if (!res)
        return TF_ERR_DB;
    *created = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return TF_OK;
}

static enum tf_rc parse_json(PGresult *res, int row, cJSON **out)
{
    *out = cJSON_Parse(PQgetvalue(res, row, 0));
    return *out ? TF_OK : TF_ERR_NOMEM;
}

enum tf_rc tf_exec_get(PGconn *conn, const char *id, const char *stage, cJSON **out)
{
    const char *params[2] = {id, stage};

    return tf_pg_json_row(conn,
                          "SELECT " RECORD_JSON " FROM tickflow.job_execution"
                          " WHERE execution_id = $1 AND stage = $2",
                          2, params, out);
}

enum tf_rc tf_exec_list(PGconn *conn, const char *stage, const char *job, const char *status,
                        int limit, cJSON **out)
{
    char lim[16];
    const char *params[4] = {stage, job, status, lim};
    PGresult *res = NULL;
    cJSON *arr = NULL;

    snprintf(lim, sizeof(lim), "%d", limit);
    res = run(conn,
              "SELECT " RECORD_JSON " FROM tickflow.job_execution"
              " WHERE stage = $1 AND ($2::text IS NULL OR job_name = $2)"
              " AND ($3::text IS NULL OR status = $3)"
              " ORDER BY created_at DESC, execution_id LIMIT $4",
              4, params);
    if (!res)
        return TF_ERR_DB;
    arr = cJSON_CreateArray();
    for (int i = 0; arr && i < PQntuples(res); i++) {
        cJSON *item = NULL;
        if (parse_json(res, i, &item) == TF_OK)
            cJSON_AddItemToArray(arr, item);
    }
    PQclear(res);
    *out = arr;
    return arr ? TF_OK : TF_ERR_NOMEM;
}

enum tf_rc tf_exec_claim(PGconn *conn, const char *id, const char *stage, const char *worker,
                         int *attempt)
{
    const char *params[3] = {id, stage, worker};
    PGresult *res = run(conn,
                        "UPDATE tickflow.job_execution SET status = 'RUNNING',"
                        " attempt = attempt + 1, worker_id = $3, error = NULL, detail = NULL,"
                        " started_at = now(), heartbeat_at = now(), updated_at = now()"
                        " WHERE execution_id = $1 AND stage = $2 AND (status = 'PENDING'"
                        " OR (status = 'ZOMBIE' AND attempt < max_attempts))"
                        " RETURNING attempt",
                        3, params);
    enum tf_rc rc = TF_ERR_CONFLICT;

    if (!res)
        return TF_ERR_DB;
    if (PQntuples(res) == 1) {
        *attempt = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
        rc = TF_OK;
    }
    PQclear(res);
    return rc;
}

enum tf_rc tf_exec_requeue(PGconn *conn, const char *id, const char *stage)
{
    const char *params[2] = {id, stage};
    PGresult *res = run(conn,
                        "UPDATE tickflow.job_execution SET status = 'PENDING',"
                        " event_published_at = NULL, updated_at = now()"
                        " WHERE execution_id = $1 AND stage = $2 AND status = 'FAILED'"
                        " AND attempt < max_attempts",
                        2, params);
    enum tf_rc rc;

    if (!res)
        return TF_ERR_DB;
    rc = strcmp(PQcmdTuples(res), "1") == 0 ? TF_OK : TF_ERR_CONFLICT;
    PQclear(res);
    return rc;
}

/* Runs a lease-guarded statement with ($1 id, $2 stage, $3 attempt). */
static enum tf_rc leased(PGconn *conn, const char *sql, const char *id, const char *stage,
                         int attempt)
{
    char att[16];
    const char *params[3] = {id, stage, att};
    PGresult *res = NULL;
    enum tf_rc rc;

    snprintf(att, sizeof(att), "%d", attempt);
    res = run(conn, sql, 3, params);
    if (!res)
        return TF_ERR_DB;
    rc = PQntuples(res) == 1 || strcmp(PQcmdTuples(res), "1") == 0 ? TF_OK : TF_ERR_LEASE;
    PQclear(res);
    return rc;
}

enum tf_rc tf_exec_release(PGconn *conn, const char *id, const char *stage, int attempt)
{
    return leased(conn,
                  "UPDATE tickflow.job_execution SET status = 'PENDING', attempt = attempt - 1,"
                  " worker_id = NULL, updated_at = now()"
                  " WHERE execution_id = $1 AND stage = $2 AND attempt = $3"
                  " AND status = 'RUNNING'",
                  id, stage, attempt);
}

enum tf_rc tf_exec_heartbeat(PGconn *conn, const char *id, const char *stage, int attempt)
{
    return leased(conn,
                  "UPDATE tickflow.job_execution SET heartbeat_at = now()"
                  " WHERE execution_id = $1 AND stage = $2 AND attempt = $3"
                  " AND status = 'RUNNING'",
                  id, stage, attempt);
}

enum tf_rc tf_exec_fence(PGconn *conn, const char *id, const char *stage, int attempt)
{
    return leased(conn,
                  "SELECT 1 FROM tickflow.job_execution"
                  " WHERE execution_id = $1 AND stage = $2 AND attempt = $3"
                  " AND status = 'RUNNING' FOR UPDATE",
                  id, stage, attempt);
}

enum tf_rc tf_exec_finish(PGconn *conn, const char *id, const char *stage, int attempt,
                          const struct tf_exec_result *r)
{
    char att[16], in[24], out[24], rej[24];
    char *objects = r->objects ? cJSON_PrintUnformatted(r->objects) : NULL;
    const char *params[9];
    PGresult *res = NULL;
    enum tf_rc rc;

    snprintf(att, sizeof(att), "%d", attempt);
    snprintf(in, sizeof(in), "%lld", r->records_in);
    snprintf(out, sizeof(out), "%lld", r->records_out);
    snprintf(rej, sizeof(rej), "%lld", r->records_rejected);
    params[0] = id;
    params[1] = stage;
    params[2] = att;
    params[3] = r->status;
    params[4] = objects ? objects : "[]";
    params[5] = in;
    params[6] = out;
    params[7] = rej;
    params[8] = r->error;
    res = run(conn,
              "UPDATE tickflow.job_execution SET status = $4, objects = $5::jsonb, detail = NULL,"
              " records_in = $6, records_out = $7, records_rejected = $8, error = $9,"
              /* Wall-clock time: a fenced stage finishes inside a transaction
               * that began when it did, where now() is that beginning. */
              " finished_at = clock_timestamp(), heartbeat_at = clock_timestamp(),"
              " updated_at = clock_timestamp()"
              " WHERE execution_id = $1 AND stage = $2 AND attempt = $3"
              " AND status = 'RUNNING'",
              9, params);
    cJSON_free(objects);
    if (!res)
        return TF_ERR_DB;
    rc = strcmp(PQcmdTuples(res), "1") == 0 ? TF_OK : TF_ERR_LEASE;
    PQclear(res);
    return rc;
}

/* clang-format off */
#define EVENT_JSON                                                                             \
    "json_build_object('schema', 'tickflow.stage_event', 'version', 1,"                        \
    " 'execution_id', execution_id, 'job_name', job_name, 'stage', stage,"                     \
    " 'status', status, 'attempt', attempt,"                                                   \
    " 'window', json_build_object('start', " TSS("window_start") ","                           \
    "                             'end', " TSS("window_end") "),"                              \
    " 'tickers', tickers, 'objects', objects,"                                                 \
    " 'records', json_build_object('in', records_in, 'out', records_out,"                      \
    "                              'rejected', records_rejected),"                             \
    " 'error', error, 'produced_at', " TS("clock_timestamp()") ")::text"
/* clang-format on */

enum tf_rc tf_exec_event(PGconn *conn, const char *id, const char *stage, char **out)
{
    const char *params[2] = {id, stage};
    PGresult *res = run(conn,
                        "SELECT " EVENT_JSON " FROM tickflow.job_execution"
                        " WHERE execution_id = $1 AND stage = $2"
                        " AND status IN ('SUCCESS', 'FAILED')",
                        2, params);
    enum tf_rc rc = TF_ERR_NOT_FOUND;

    *out = NULL;
    if (!res)
        return TF_ERR_DB;
    if (PQntuples(res) == 1) {
        *out = strdup(PQgetvalue(res, 0, 0));
        rc = *out ? TF_OK : TF_ERR_NOMEM;
    }
    PQclear(res);
    return rc;
}

enum tf_rc tf_exec_mark_published(PGconn *conn, const char *id, const char *stage, int attempt,
                                  const char *status)
{
    char att[16];
    const char *params[4] = {id, stage, att, status};
    PGresult *res = NULL;

    snprintf(att, sizeof(att), "%d", attempt);
    res = run(conn,
              "UPDATE tickflow.job_execution SET event_published_at = now()"
              " WHERE execution_id = $1 AND stage = $2 AND attempt = $3 AND status = $4",
              4, params);

    if (!res)
        return TF_ERR_DB;
    PQclear(res);
    return TF_OK;
}
