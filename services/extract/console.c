/*
 * console.c - the web console extract serves at /ui/ (its files compiled
 * in) and the read-only JSON it asks for: the latest runs with their three
 * stages (/v1/runs, a page at a time), one run (/v1/runs/{id}), its
 * rejected bars by rule, its quality, and a job's gold bars for the chart
 * (/v1/jobs/{job}/bars). GETs need no token, so the console works with
 * TICKFLOW_API_TOKEN set. A run is an execution: its extract record and
 * the transform and aggregate records of the same id.
 */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"
#include "job.h"
#include "tf/json.h"
#include "tf/pg.h"
#include "tf/quality.h"
#include "tf/time.h"

#define RUNS_PAGE      50
#define RUNS_MAX       200
#define BARS_MAX       5000
#define REJECT_SAMPLES 3
/* A run as the API shows it: three stage records (their tickers the only lists). */
#define RUN_MAX (64u << 20)
#define STR_(x) #x
#define STR(x)  STR_(x)

const char *extract_ui_content_type(const char *path)
{
    static const struct {
        const char *suffix, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
    };
    size_t n = strlen(path);

    for (size_t i = 0; i < TF_ARRAY_LEN(types); i++) {
        size_t k = strlen(types[i].suffix);
        if (n >= k && strcmp(path + n - k, types[i].suffix) == 0)
            return types[i].type;
    }
    return "text/plain; charset=utf-8";
}

/* GET /ui/<name> ("" and "/ui" are the page itself). */
static void serve_asset(struct tf_http_req *req, const char *name)
{
    char *copy;

    if (*name == '\0')
        name = "index.html";
    for (size_t i = 0; i < extract_ui_nassets; i++) {
        const struct extract_asset *a = &extract_ui_assets[i];

        if (strcmp(a->path, name) != 0)
            continue;
        copy = malloc(a->len ? a->len : 1);
        if (!copy) {
            tf_http_reply_rc(req, TF_ERR_NOMEM, "out of memory");
            return;
        }
        memcpy(copy, a->data, a->len);
        /* Nothing but this server's own files and API: the page works offline. */
        tf_http_set_header(req, "Content-Security-Policy",
                           "default-src 'self'; style-src 'self' 'unsafe-inline';"
                           " img-src 'self' data:; frame-ancestors 'none'");
        tf_http_set_header(req, "X-Content-Type-Options", "nosniff");
        tf_http_set_header(req, "Cache-Control", "no-cache");
        tf_http_reply_take(req, TF_HTTP_OK, extract_ui_content_type(a->path), copy, a->len);
        return;
    }
    tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "no console file %s", name);
}

/* clang-format off */
#define TSMS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define TSS(col)  "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The execution's three records: e (extract, always there), t and a. */
#define RUN_FROM                                                                               \
    " FROM tickflow.job_execution e"                                                           \
    " LEFT JOIN tickflow.job_execution t ON t.execution_id = e.execution_id"                   \
    "  AND t.stage = 'transform'"                                                              \
    " LEFT JOIN tickflow.job_execution a ON a.execution_id = e.execution_id"                   \
    "  AND a.stage = 'aggregate'"

/*
 * A run's status from its stages: RUNNING while one runs (or is a ZOMBIE
 * waiting to be retried), PENDING while one waits, FAILED once one failed,
 * SUCCESS once aggregate succeeded, and PENDING between two stages (one
 * succeeded, the next is not created yet).
 */
#define RUN_STATUS                                                                             \
    "CASE WHEN 'RUNNING' IN (e.status, t.status, a.status)"                                    \
    "  OR 'ZOMBIE' IN (e.status, t.status, a.status) THEN 'RUNNING'"                           \
    " WHEN 'PENDING' IN (e.status, t.status, a.status) THEN 'PENDING'"                         \
    " WHEN 'FAILED' IN (e.status, t.status, a.status) THEN 'FAILED'"                           \
    " WHEN a.status = 'SUCCESS' THEN 'SUCCESS' ELSE 'PENDING' END"

/* What a run says of itself, before its stages. */
#define RUN_MEMBERS                                                                            \
    "'execution_id', e.execution_id, 'job_name', e.job_name, 'status', " RUN_STATUS ","        \
    " 'window_start', " TSS("e.window_start") ", 'window_end', " TSS("e.window_end") ","       \
    " 'created_at', " TSMS("e.created_at") ", 'backfill_id', e.backfill_id"

/* One stage in the list: what its timeline cell shows; NULL when not created yet. */
#define STAGE_BRIEF(s)                                                                         \
    "CASE WHEN " s ".execution_id IS NOT NULL THEN json_build_object('status', " s ".status,"  \
    " 'attempt', " s ".attempt, 'max_attempts', " s ".max_attempts,"                           \
    " 'started_at', " TSMS(s ".started_at") ", 'finished_at', " TSMS(s ".finished_at") ","     \
    " 'records_in', " s ".records_in, 'records_out', " s ".records_out,"                       \
    " 'records_rejected', " s ".records_rejected, 'error', " s ".error) END"

/* The list's key, newest first: created, then the window (a backfill's days
 * share their creation), then the id. job_execution_runs_idx and
 * job_execution_job_runs_idx (migration 11) hold it for extract rows. */
#define RUNS_ORDER " ORDER BY e.created_at DESC, e.window_start DESC, e.execution_id DESC"
#define US_TIME(p) "(timestamptz 'epoch' + " p "::bigint * interval '1 microsecond')"
#define EPOCH_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/*
 * The list, newest first: $1 the job or NULL, $2..$4 the cursor or NULLs,
 * $5 the rows to read; filter narrows it to a status. A page reads its
 * rows off the index in order, the other two stages by primary key.
 */
#define RUNS_SQL(filter)                                                                       \
    "SELECT json_build_object(" RUN_MEMBERS ", 'stages', json_build_object("                   \
    "  'extract', " STAGE_BRIEF("e") ", 'transform', " STAGE_BRIEF("t") ","                    \
    "  'aggregate', " STAGE_BRIEF("a") "))::text,"                                             \
    " " EPOCH_US("e.created_at") " || '.' || " EPOCH_US("e.window_start")                      \
    "  || '.' || e.execution_id"                                                               \
    RUN_FROM                                                                                   \
    " WHERE e.stage = 'extract' AND ($1::text IS NULL OR e.job_name = $1)"                     \
    " AND ($2::bigint IS NULL OR (e.created_at, e.window_start, e.execution_id)"               \
    "  < (" US_TIME("$2") ", " US_TIME("$3") ", $4::uuid))" filter                             \
    RUNS_ORDER " LIMIT $5"

/* The runs having a stage in one of statuses (job_execution_unsettled_idx, migration 11). */
#define HAS_STAGE_IN(statuses)                                                                 \
    " AND e.execution_id IN (SELECT x.execution_id FROM tickflow.job_execution x"              \
    "  WHERE x.status IN (" statuses "))"

/*
 * Each status filter as the planner can estimate it: RUN_STATUS compared
 * to a constant hides how many rows pass, so a status most runs have is
 * spelled out, and the rare ones start from the runs that have such a stage.
 */
static const struct {
    const char *status;
    const char *sql;
} runs_sql[] = {
    {NULL, RUNS_SQL("")},
    {"SUCCESS",
     RUNS_SQL(" AND e.status = 'SUCCESS' AND t.status = 'SUCCESS' AND a.status = 'SUCCESS'")},
    {"FAILED", RUNS_SQL(HAS_STAGE_IN("'FAILED'") " AND " RUN_STATUS " = 'FAILED'")},
    {"RUNNING", RUNS_SQL(HAS_STAGE_IN("'RUNNING', 'ZOMBIE'"))},
    {"PENDING", RUNS_SQL(" AND " RUN_STATUS " = 'PENDING'")},
};

static const char run_sql[] =
    "SELECT json_build_object(" RUN_MEMBERS ")::text" RUN_FROM
    " WHERE e.execution_id = $1::uuid AND e.stage = 'extract'";

/* $1 the execution: rejected bars by rule, the most first, each with its first samples. */
static const char rejects_sql[] =
    "SELECT coalesce(json_agg(json_build_object('rule', r.rule, 'count', r.n,"
    "  'samples', s.samples) ORDER BY r.n DESC, r.rule), '[]')::text,"
    " coalesce(sum(r.n), 0)::bigint"
    " FROM (SELECT rule, count(*) AS n FROM silver.rejected_bars"
    "  WHERE execution_id = $1::uuid GROUP BY rule) AS r"
    " CROSS JOIN LATERAL (SELECT json_agg(json_build_object('ticker', x.ticker,"
    "  'ts', " TSS("x.ts") ", 'attempt', x.attempt, 'object_uri', x.object_uri,"
    "  'page', x.page, 'item', x.item, 'raw', x.raw) ORDER BY x.object_uri, x.item) AS samples"
    "  FROM (SELECT * FROM silver.rejected_bars WHERE execution_id = $1::uuid"
    "   AND rule = r.rule ORDER BY object_uri, item LIMIT " STR(REJECT_SAMPLES) ") AS x) AS s";

/* $1 ticker, $2 source timespan ("1minute"), [$3, $4) the range. */
static const char bars_hourly_sql[] =
    "SELECT coalesce(json_agg(json_build_object('time', extract(epoch FROM bucket)::bigint,"
    "  'open', open, 'high', high, 'low', low, 'close', close, 'volume', volume,"
    "  'ma20', ma20) ORDER BY bucket), '[]')::text"
    " FROM gold.bars_hourly WHERE ticker = $1 AND source_timespan = $2"
    " AND bucket >= $3::timestamptz AND bucket < $4::timestamptz";
static const char bars_daily_sql[] =
    "SELECT coalesce(json_agg(json_build_object('time', to_char(trading_day, 'YYYY-MM-DD'),"
    "  'open', open, 'high', high, 'low', low, 'close', close, 'volume', volume,"
    "  'ma20', ma20) ORDER BY trading_day), '[]')::text"
    " FROM gold.bars_daily WHERE ticker = $1 AND source_timespan = $2"
    " AND trading_day >= ($3::timestamptz AT TIME ZONE 'UTC')::date"
    " AND trading_day < ($4::timestamptz AT TIME ZONE 'UTC')::date";
/* clang-format on */

/* A whole number query argument within [lo, hi] into *out (left alone when absent); 0 if bad. */
static int query_long(struct tf_http_req *req, const char *key, long lo, long hi, long *out)
{
    const char *s = tf_http_query(req, key);
    char *end = NULL;
    long v;

    if (!s)
        return 1;
    v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* Digits only, 1 to 19 of them, copied to out. */
static int digits_field(const char *s, size_t n, char out[24])
{
    if (n == 0 || n > 18) /* a bigint's microseconds, with room: 18 digits */
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

/* A cursor of /v1/runs, "<created us>.<window start us>.<uuid>", into its three parts. */
static int cursor_parse(const char *s, char created[24], char window[24], char id[40])
{
    const char *dot1 = strchr(s, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;

    if (!dot2 || !digits_field(s, (size_t)(dot1 - s), created) ||
        !digits_field(dot1 + 1, (size_t)(dot2 - dot1 - 1), window) || !tf_uuid_valid(dot2 + 1))
        return 0;
    snprintf(id, 40, "%s", dot2 + 1);
    return 1;
}

static enum tf_rc append_query(struct tf_buf *out, const char *key, const char *value)
{
    return value ? tf_buf_printf(out, "&%s=%s", key, value) : TF_OK;
}

/* GET /v1/runs?job_name=&status=&limit=&before=: the latest runs, newest first. */
static void list_runs(struct tf_http_req *req, PGconn *conn)
{
    const char *job = tf_http_query(req, "job_name");
    const char *status = tf_http_query(req, "status");
    const char *before = tf_http_query(req, "before");
    char created[24], window[24], id[40], nread[24];
    const char *params[5] = {job, NULL, NULL, NULL, nread};
    const char *sql = NULL;
    long limit = RUNS_PAGE;
    PGresult *res = NULL;
    struct tf_buf out;
    enum tf_rc rc = TF_OK;
    int rows, shown;

    if (job && !tf_job_name_valid(job)) {
        tf_http_reply_rc(req, TF_ERR_INVALID, "job_name is not a job name");
        return;
    }
    for (size_t i = 0; i < TF_ARRAY_LEN(runs_sql) && !sql; i++) {
        if (!status ? !runs_sql[i].status
                    : runs_sql[i].status && strcmp(status, runs_sql[i].status) == 0)
            sql = runs_sql[i].sql;
    }
    if (!sql) {
        tf_http_reply_rc(req, TF_ERR_INVALID,
                         "status must be PENDING, RUNNING, SUCCESS or FAILED (a run's status)");
        return;
    }
    if (!query_long(req, "limit", 1, RUNS_MAX, &limit)) {
        tf_http_reply_rcf(req, TF_ERR_INVALID, "limit must be a whole number from 1 to %d",
                          RUNS_MAX);
        return;
    }
    if (before) {
        if (!cursor_parse(before, created, window, id)) {
            tf_http_reply_rc(req, TF_ERR_INVALID,
                             "before must be the cursor of a page of runs (its \"cursor\")");
            return;
        }
        params[1] = created;
        params[2] = window;
        params[3] = id;
    }
    /* One row more than asked says whether a page follows. */
    snprintf(nread, sizeof(nread), "%ld", limit + 1);
    res = tf_pg_exec(conn, sql, 5, params);
    if (!tf_pg_ok(res)) {
        tf_http_reply_rcf(req, TF_ERR_DB, "cannot list runs (sqlstate %s)", tf_pg_sqlstate(res));
        PQclear(res);
        return;
    }
    rows = PQntuples(res);
    shown = rows > limit ? (int)limit : rows;
    tf_buf_init(&out, RUN_MAX);
    rc = tf_buf_puts(&out, "{\"runs\":[");
    for (int r = 0; r < shown && rc == TF_OK; r++) {
        rc = r ? tf_buf_puts(&out, ",") : TF_OK;
        if (rc == TF_OK)
            rc = tf_buf_puts(&out, PQgetvalue(res, r, 0));
    }
    if (rc == TF_OK)
        rc = tf_buf_printf(&out, "],\"limit\":%ld,\"cursor\":", limit);
    if (rc == TF_OK && rows > limit) {
        /* The cursor holds digits, dots and a UUID: nothing to escape. */
        const char *cur = PQgetvalue(res, shown - 1, 1);
        rc = tf_buf_printf(&out, "\"%s\",\"next\":\"/v1/runs?limit=%ld&before=%s", cur, limit, cur);
        if (rc == TF_OK)
            rc = append_query(&out, "job_name", job);
        if (rc == TF_OK)
            rc = append_query(&out, "status", status);
        if (rc == TF_OK)
            rc = tf_buf_puts(&out, "\"}");
    } else if (rc == TF_OK) {
        rc = tf_buf_puts(&out, "null,\"next\":null}");
    }
    if (rc == TF_OK) {
        size_t len = out.len;
        tf_http_reply_take(req, TF_HTTP_OK, "application/json", tf_buf_take(&out), len);
    } else {
        tf_http_reply_rc(req, rc, "cannot build the list of runs");
    }
    tf_buf_cleanup(&out);
    PQclear(res);
}

/* 0 when the execution has a record, TF_ERR_NOT_FOUND when none, TF_ERR_DB. */
static enum tf_rc run_known(PGconn *conn, const char *id)
{
    const char *params[1] = {id};
    PGresult *res = tf_pg_exec(conn,
                               "SELECT 1 FROM tickflow.job_execution WHERE execution_id = $1::uuid"
                               " LIMIT 1",
                               1, params);
    enum tf_rc rc = !tf_pg_ok(res) ? TF_ERR_DB : PQntuples(res) ? TF_OK : TF_ERR_NOT_FOUND;

    PQclear(res);
    return rc;
}

static void reply_unknown_run(struct tf_http_req *req, enum tf_rc rc, const char *id)
{
    if (rc == TF_ERR_NOT_FOUND)
        tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "no run %s", id);
    else
        tf_http_reply_rc(req, rc, "cannot read the run");
}

/*
 * GET /v1/runs/{id}: the run and its three stage records as GET
 * /v1/executions/{id} of each stage shows them (null for a stage not
 * created yet).
 */
static void get_run(struct tf_http_req *req, PGconn *conn, const char *id)
{
    static const char *const stages[] = {"extract", "transform", "aggregate"};
    const char *params[1] = {id};
    PGresult *res = tf_pg_exec(conn, run_sql, 1, params);
    struct tf_buf out, view;
    enum tf_rc rc;

    if (!tf_pg_ok(res) || PQntuples(res) == 0) {
        reply_unknown_run(req, tf_pg_ok(res) ? TF_ERR_NOT_FOUND : TF_ERR_DB, id);
        PQclear(res);
        return;
    }
    tf_buf_init(&out, RUN_MAX);
    tf_buf_init(&view, RUN_MAX);
    /* json_build_object's text ends with the object's closing brace. */
    rc = tf_buf_append(&out, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0) - 1);
    if (rc == TF_OK)
        rc = tf_buf_puts(&out, ", \"stages\": {");
    for (size_t i = 0; i < TF_ARRAY_LEN(stages) && rc == TF_OK; i++) {
        enum tf_rc got;

        tf_buf_reset(&view);
        got = tf_exec_view(conn, id, stages[i], &view);
        rc = tf_buf_printf(&out, "%s\"%s\": ", i ? ", " : "", stages[i]);
        if (rc == TF_OK && got == TF_OK)
            rc = tf_buf_append(&out, view.data, view.len);
        else if (rc == TF_OK && got == TF_ERR_NOT_FOUND)
            rc = tf_buf_puts(&out, "null");
        else if (rc == TF_OK)
            rc = got;
    }
    if (rc == TF_OK)
        rc = tf_buf_printf(&out,
                           "}, \"links\": {\"objects\": \"/v1/executions/%s/objects\","
                           " \"audit\": \"/v1/executions/%s/audit\","
                           " \"rejects\": \"/v1/runs/%s/rejects\","
                           " \"quality\": \"/v1/runs/%s/quality\"}}",
                           id, id, id, id);
    if (rc == TF_OK) {
        size_t len = out.len;
        tf_http_reply_take(req, TF_HTTP_OK, "application/json", tf_buf_take(&out), len);
    } else {
        tf_http_reply_rc(req, rc, "cannot read the run's records");
    }
    tf_buf_cleanup(&view);
    tf_buf_cleanup(&out);
    PQclear(res);
}

/* GET /v1/runs/{id}/rejects: the execution's rejected bars by rule, with samples. */
static void get_rejects(struct tf_http_req *req, PGconn *conn, const char *id)
{
    const char *params[1] = {id};
    enum tf_rc rc = run_known(conn, id);
    PGresult *res = NULL;
    cJSON *root = NULL;
    cJSON *rules = NULL;

    if (rc != TF_OK) {
        reply_unknown_run(req, rc, id);
        return;
    }
    res = tf_pg_exec(conn, rejects_sql, 1, params);
    if (!tf_pg_ok(res)) {
        tf_http_reply_rcf(req, TF_ERR_DB, "cannot read the rejected bars (sqlstate %s)",
                          tf_pg_sqlstate(res));
        PQclear(res);
        return;
    }
    rules = cJSON_Parse(PQgetvalue(res, 0, 0));
    root = cJSON_CreateObject();
    if (rules && root && cJSON_AddStringToObject(root, "execution_id", id) &&
        cJSON_AddNumberToObject(root, "rejected", strtod(PQgetvalue(res, 0, 1), NULL))) {
        cJSON_AddItemToObject(root, "rules", rules);
        rules = NULL;
        tf_http_reply_json(req, TF_HTTP_OK, root);
    } else {
        tf_http_reply_rc(req, TF_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(rules);
    cJSON_Delete(root);
    PQclear(res);
}

/*
 * GET /v1/runs/{id}/quality: what aggregate's checks found (tf/quality.h);
 * empty lists while the run has not reached them.
 */
static void get_quality(struct tf_http_req *req, PGconn *conn, const char *id)
{
    cJSON *root = NULL;
    int found = 0;
    enum tf_rc rc = tf_quality_get(conn, id, &root, &found);

    if (rc == TF_OK && !found)
        rc = run_known(conn, id);
    if (rc == TF_OK)
        tf_http_reply_json(req, TF_HTTP_OK, root);
    else
        reply_unknown_run(req, rc, id);
    cJSON_Delete(root);
}

/* 1 when ticker is one of the job's. */
static int job_has_ticker(const cJSON *job, const char *ticker)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(job, "tickers"))
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, ticker) == 0)
            return 1;
    }
    return 0;
}

/*
 * GET /v1/jobs/{job}/bars?ticker=&interval=hour|day&from=&to=: gold bars
 * of one of the job's tickers in [from, to) for the chart (daily: the
 * trading days from from's UTC date to the day before to's), at most
 * BARS_MAX of them: a range that could hold more is refused.
 */
static void get_bars(struct tf_http_req *req, PGconn *conn, const char *name)
{
    const char *ticker = tf_http_query(req, "ticker");
    const char *interval = tf_http_query(req, "interval");
    const char *from_q = tf_http_query(req, "from");
    const char *to_q = tf_http_query(req, "to");
    char from_s[32], to_s[32], span[48];
    const char *params[4] = {ticker, span, from_s, to_s};
    int64_t from = 0, to = 0, step;
    PGresult *res = NULL;
    cJSON *job = NULL;
    cJSON *root = NULL;
    cJSON *bars = NULL;
    enum tf_rc rc;

    interval = interval ? interval : "hour";
    if (strcmp(interval, "hour") != 0 && strcmp(interval, "day") != 0) {
        tf_http_reply_rc(req, TF_ERR_INVALID, "interval must be hour or day");
        return;
    }
    step = strcmp(interval, "hour") == 0 ? 3600 : 86400;
    if (!from_q || !to_q || tf_time_parse(from_q, &from) != TF_OK ||
        tf_time_parse(to_q, &to) != TF_OK || to <= from) {
        tf_http_reply_rc(req, TF_ERR_INVALID,
                         "from and to must be dates or ISO-8601 times such as 2024-03-04,"
                         " from before to (to excluded)");
        return;
    }
    if ((to - from + step - 1) / step > BARS_MAX) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "a chart shows at most %d bars: %s bars from %s to %s are too many;"
                          " narrow the range",
                          BARS_MAX, interval, from_q, to_q);
        return;
    }
    if (!ticker) {
        tf_http_reply_rc(req, TF_ERR_INVALID, "ticker is required");
        return;
    }
    rc = extract_job_get(conn, name, &job);
    if (rc != TF_OK) {
        if (rc == TF_ERR_NOT_FOUND)
            tf_http_reply_rcf(req, rc, "unknown job %s", name);
        else
            tf_http_reply_rc(req, rc, "cannot read the job");
        goto out;
    }
    if (!job_has_ticker(job, ticker)) {
        tf_http_reply_rcf(req, TF_ERR_INVALID, "%.64s is not a ticker of job %s", ticker, name);
        goto out;
    }
    snprintf(span, sizeof(span), "%ld%s", tf_json_long(job, "multiplier", 1),
             tf_json_str(job, "timespan") ? tf_json_str(job, "timespan") : "minute");
    tf_time_format(from, from_s, sizeof(from_s));
    tf_time_format(to, to_s, sizeof(to_s));
    res = tf_pg_exec(conn, step == 3600 ? bars_hourly_sql : bars_daily_sql, 4, params);
    if (!tf_pg_ok(res)) {
        tf_http_reply_rcf(req, TF_ERR_DB, "cannot read gold bars (sqlstate %s)",
                          tf_pg_sqlstate(res));
        goto out;
    }
    bars = cJSON_Parse(PQgetvalue(res, 0, 0));
    root = cJSON_CreateObject();
    if (!bars || !root) {
        tf_http_reply_rc(req, TF_ERR_NOMEM, "out of memory");
        goto out;
    }
    cJSON_AddStringToObject(root, "job_name", name);
    cJSON_AddStringToObject(root, "ticker", ticker);
    cJSON_AddStringToObject(root, "interval", interval);
    cJSON_AddStringToObject(root, "source_timespan", span);
    cJSON_AddStringToObject(root, "from", from_s);
    cJSON_AddStringToObject(root, "to", to_s);
    cJSON_AddNumberToObject(root, "count", cJSON_GetArraySize(bars));
    cJSON_AddItemToObject(root, "bars", bars);
    bars = NULL;
    tf_http_reply_json(req, TF_HTTP_OK, root);
out:
    cJSON_Delete(bars);
    cJSON_Delete(root);
    cJSON_Delete(job);
    PQclear(res);
}

int extract_ui_route(struct tf_svc *svc, struct tf_http_req *req)
{
    const char *path = tf_http_path(req);

    (void)svc;
    if (strcmp(path, "/ui") != 0 && strncmp(path, "/ui/", 4) != 0)
        return 0;
    if (strcmp(tf_http_method(req), "GET") == 0)
        serve_asset(req, path[3] ? path + 4 : "");
    else
        tf_http_reply_method(req, "GET");
    return 1;
}

int extract_console_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    const char *path = tf_http_path(req);
    int is_get = strcmp(tf_http_method(req), "GET") == 0;
    char caps[2][128];
    char id[128];
    int matched;

    (void)svc;
    if (strcmp(path, "/v1/runs") == 0) {
        if (is_get)
            list_runs(req, conn);
        else
            tf_http_reply_method(req, "GET");
        return 1;
    }
    matched = tf_svc_execution_route(req, "/v1/runs/*", id);
    if (matched == 1)
        get_run(req, conn, id);
    if (matched == 0) {
        matched = tf_svc_execution_route(req, "/v1/runs/*/rejects", id);
        if (matched == 1)
            get_rejects(req, conn, id);
    }
    if (matched == 0) {
        matched = tf_svc_execution_route(req, "/v1/runs/*/quality", id);
        if (matched == 1)
            get_quality(req, conn, id);
    }
    if (matched != 0)
        return 1;
    if (tf_http_match(path, "/v1/jobs/*/bars", caps, 1) ||
        tf_http_match(path, "/v1/jobs/*/days", caps, 1)) {
        int bars = path[strlen(path) - 4] == 'b';

        if (!is_get)
            tf_http_reply_method(req, "GET");
        else if (!tf_job_name_valid(caps[0]))
            tf_http_reply_rc(req, TF_ERR_INVALID, "bad job name");
        else if (bars)
            get_bars(req, conn, caps[0]);
        else
            extract_console_days(req, conn, caps[0]);
        return 1;
    }
    return 0;
}
