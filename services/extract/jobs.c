/*
 * jobs.c - job configuration over HTTP (PUT/GET /v1/jobs/{job}, GET
 * /v1/jobs) and the window ledger's question "which windows of this job
 * have no successful execution?" (GET /v1/jobs/{job}/gaps).
 *
 * A PUT replaces the whole configuration: fields left out take their
 * defaults. Every field is checked before anything is written, and a field
 * tickflow does not know is refused (a typo must not pass silently).
 */
#include "extract.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/buf.h"
#include "tf/dq.h"
#include "job.h"
#include "schedule.h"
#include "tf/json.h"
#include "tf/pg.h"
#include "tf/time.h"

#define MAX_TICKERS   5000
#define MAX_GAP_RANGE (366LL * 86400)

/* clang-format off */
#define JOB_JSON                                                                               \
    "json_build_object('job_name', job_name, 'provider', provider, 'dataset', dataset,"        \
    " 'tickers', tickers, 'multiplier', multiplier, 'timespan', timespan,"                     \
    " 'adjusted', adjusted, 'page_limit', page_limit,"                                         \
    " 'interval_seconds', interval_seconds, 'overlap_seconds', overlap_seconds,"               \
    " 'max_attempts', max_attempts, 'enabled', enabled,"                                       \
    " 'rate_limit_per_minute', rate_limit_per_minute, 'dq_rules', dq_rules,"                   \
    " 'updated_by', updated_by,"                                                               \
    " 'created_at', to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                    \
    " 'updated_at', to_char(updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                    \
    " 'schedule', (SELECT s.spec FROM tickflow.job_schedule s"                                 \
    "              WHERE s.job_name = job_config.job_name),"                                   \
    " 'schedule_state', (SELECT json_build_object("                                            \
    "   'next_at', to_char(s.next_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                      \
    "   'last_at', to_char(s.last_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                      \
    "   'last_fired_at', to_char(s.last_fired_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"        \
    "   'last_outcome', s.last_outcome, 'last_execution_id', s.last_execution_id,"            \
    "   'waiting', EXISTS (SELECT 1 FROM tickflow.job_execution e"                             \
    "     WHERE e.execution_id = s.last_execution_id"                                          \
    "     AND e.status IN ('PENDING', 'RUNNING', 'ZOMBIE')))"                                   \
    "   FROM tickflow.job_schedule s WHERE s.job_name = job_config.job_name))::text"
/* clang-format on */

enum tf_rc extract_job_get(PGconn *conn, const char *name, cJSON **out)
{
    const char *params[1] = {name};

    return tf_pg_json_row(conn, "SELECT " JOB_JSON " FROM tickflow.job_config WHERE job_name = $1",
                          1, params, out);
}

/* A whole number member within [lo, hi], or def when absent. */
static enum tf_rc int_field(const cJSON *body, const char *key, long lo, long hi, long def,
                            long *out, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, key);

    *out = def;
    if (!it)
        return TF_OK;
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
        it->valuedouble < (double)lo || it->valuedouble > (double)hi) {
        snprintf(err, errlen, "%s must be a whole number from %ld to %ld", key, lo, hi);
        return TF_ERR_INVALID;
    }
    *out = (long)it->valuedouble;
    return TF_OK;
}

static enum tf_rc bool_field(const cJSON *body, const char *key, int def, int *out, char *err,
                             size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, key);

    *out = def;
    if (!it)
        return TF_OK;
    if (!cJSON_IsBool(it)) {
        snprintf(err, errlen, "%s must be true or false", key);
        return TF_ERR_INVALID;
    }
    *out = cJSON_IsTrue(it);
    return TF_OK;
}

struct job_input {
    const char *provider;
    const cJSON *tickers;
    const char *timespan;
    long multiplier, page_limit, interval, overlap, attempts, rate;
    int adjusted, enabled, has_rate;
    const cJSON *dq_rules; /* NULL: none */
    const cJSON *schedule; /* NULL: none (JSON null counts as none) */
    struct extract_schedule sched;
};

/* Checks a PUT body; in->... point into body. */
static enum tf_rc check_job(const cJSON *body, struct job_input *in, char *err, size_t errlen);

enum tf_rc extract_job_check(const cJSON *body, char *err, size_t errlen)
{
    struct job_input in;

    memset(&in, 0, sizeof(in));
    return check_job(body, &in, err, errlen);
}

static enum tf_rc check_job(const cJSON *body, struct job_input *in, char *err, size_t errlen)
{
    static const char *const known[] = {"provider",
                                        "tickers",
                                        "multiplier",
                                        "timespan",
                                        "adjusted",
                                        "page_limit",
                                        "interval_seconds",
                                        "overlap_seconds",
                                        "max_attempts",
                                        "enabled",
                                        "rate_limit_per_minute",
                                        "schedule"};
    const cJSON *it;
    const cJSON *rate;
    enum tf_rc rc;
    int64_t bar;

    if (!cJSON_IsObject(body)) {
        snprintf(err, errlen, "the body must be a JSON object");
        return TF_ERR_INVALID;
    }
    cJSON_ArrayForEach(it, body)
    {
        int ok = strcmp(it->string, "dq_rules") == 0;
        for (size_t i = 0; i < TF_ARRAY_LEN(known) && !ok; i++)
            ok = strcmp(it->string, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown field %.64s", it->string);
            return TF_ERR_INVALID;
        }
    }
    in->provider = tf_json_str(body, "provider");
    if (!tf_provider_known(in->provider)) {
        snprintf(err, errlen, "provider must be polygon or twelvedata");
        return TF_ERR_INVALID;
    }
    in->tickers = cJSON_GetObjectItemCaseSensitive(body, "tickers");
    if (!cJSON_IsArray(in->tickers) || cJSON_GetArraySize(in->tickers) < 1 ||
        cJSON_GetArraySize(in->tickers) > MAX_TICKERS) {
        snprintf(err, errlen, "tickers must be a list of 1 to %d symbols", MAX_TICKERS);
        return TF_ERR_INVALID;
    }
    cJSON_ArrayForEach(it, in->tickers)
    {
        const cJSON *other;

        if (!cJSON_IsString(it)) {
            snprintf(err, errlen, "tickers must be strings");
            return TF_ERR_INVALID;
        }
        rc = tf_ticker_check(in->provider, it->valuestring, err, errlen);
        if (rc != TF_OK)
            return rc;
        for (other = it->next; other; other = other->next) {
            if (cJSON_IsString(other) && strcmp(other->valuestring, it->valuestring) == 0) {
                snprintf(err, errlen, "ticker %.32s is listed twice", it->valuestring);
                return TF_ERR_INVALID;
            }
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(body, "timespan");
    if (it && !cJSON_IsString(it)) {
        snprintf(err, errlen, "timespan must be minute, hour or day");
        return TF_ERR_INVALID;
    }
    in->timespan = it ? it->valuestring : "minute";
    rc = int_field(body, "multiplier", 1, 1440, 1, &in->multiplier, err, errlen);
    if (rc == TF_OK)
        rc = tf_bar_check(in->provider, in->multiplier, in->timespan, err, errlen);
    if (rc == TF_OK)
        rc = int_field(body, "page_limit", 1, 50000, 50000, &in->page_limit, err, errlen);
    if (rc == TF_OK)
        rc = int_field(body, "interval_seconds", 60, 31 * 86400, 3600, &in->interval, err, errlen);
    if (rc == TF_OK)
        rc = int_field(body, "overlap_seconds", 0, 31 * 86400, 300, &in->overlap, err, errlen);
    if (rc == TF_OK)
        rc = int_field(body, "max_attempts", 1, 20, 3, &in->attempts, err, errlen);
    if (rc == TF_OK)
        rc = bool_field(body, "adjusted", 1, &in->adjusted, err, errlen);
    if (rc == TF_OK)
        rc = bool_field(body, "enabled", 1, &in->enabled, err, errlen);
    if (rc != TF_OK)
        return rc;
    rate = cJSON_GetObjectItemCaseSensitive(body, "rate_limit_per_minute");
    in->has_rate = rate && !cJSON_IsNull(rate);
    if (in->has_rate) {
        rc = int_field(body, "rate_limit_per_minute", 1, 100000, 0, &in->rate, err, errlen);
        if (rc != TF_OK)
            return rc;
    }
    /* Data-quality rules (tf/dq.h): checked strictly, tickers against the job's. */
    in->dq_rules = cJSON_GetObjectItemCaseSensitive(body, "dq_rules");
    if (in->dq_rules) {
        size_t nrules = 0;
        struct tf_dq_rule *scratch = calloc(TF_DQ_MAX_RULES, sizeof(*scratch));

        if (!scratch)
            return TF_ERR_NOMEM;
        rc = tf_dq_rules_parse(in->dq_rules, in->tickers, scratch, TF_DQ_MAX_RULES, &nrules, err,
                               errlen);
        free(scratch);
        if (rc != TF_OK)
            return rc;
    }
    bar = tf_timespan_seconds(in->timespan, in->multiplier);
    if (in->interval < bar) {
        snprintf(err, errlen, "interval_seconds (%ld) is shorter than one bar (%lld s)",
                 in->interval, (long long)bar);
        return TF_ERR_INVALID;
    }
    if (in->overlap >= in->interval) {
        snprintf(err, errlen, "overlap_seconds must be less than interval_seconds");
        return TF_ERR_INVALID;
    }
    in->schedule = cJSON_GetObjectItemCaseSensitive(body, "schedule");
    if (cJSON_IsNull(in->schedule))
        in->schedule = NULL;
    if (in->schedule)
        return extract_schedule_parse(in->schedule, bar, &in->sched, err, errlen);
    return TF_OK;
}

/*
 * Writes the job's schedule with its next tick, or drops it when the job
 * has none; in the PUT's transaction. A spec that did not change keeps its
 * next tick, so a PUT of the same job (a deploy tool applying it again)
 * never pushes a due tick back.
 */
static enum tf_rc save_schedule(PGconn *conn, const char *name, const struct job_input *in)
{
    static const char upsert[] =
        "INSERT INTO tickflow.job_schedule AS s (job_name, spec, next_at)"
        " VALUES ($1, $2::jsonb, to_timestamp($3::bigint))"
        " ON CONFLICT (job_name) DO UPDATE SET"
        " next_at = CASE WHEN s.spec = EXCLUDED.spec THEN s.next_at ELSE EXCLUDED.next_at END,"
        " spec = EXCLUDED.spec, updated_at = now()";
    const char *params[3] = {name, NULL, NULL};
    char next_s[24];
    char *spec;
    PGresult *res;
    int64_t next;
    int ok;

    if (!in->schedule) {
        res = tf_pg_exec(conn, "DELETE FROM tickflow.job_schedule WHERE job_name = $1", 1, params);
        ok = tf_pg_ok(res);
        PQclear(res);
        return ok ? TF_OK : TF_ERR_DB;
    }
    spec = cJSON_PrintUnformatted(in->schedule);
    if (!spec)
        return TF_ERR_NOMEM;
    next = extract_schedule_next(&in->sched, tf_time_now());
    snprintf(next_s, sizeof(next_s), "%lld", (long long)next);
    params[1] = spec;
    params[2] = next > 0 ? next_s : NULL;
    res = tf_pg_exec(conn, upsert, 3, params);
    ok = tf_pg_ok(res);
    PQclear(res);
    cJSON_free(spec);
    return ok ? TF_OK : TF_ERR_DB;
}

static void put_job(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn, const char *name)
{
    static const char upsert[] =
        "INSERT INTO tickflow.job_config AS j (job_name, provider, dataset, tickers,"
        " multiplier, timespan, adjusted, page_limit, interval_seconds, overlap_seconds,"
        " max_attempts, enabled, rate_limit_per_minute, updated_by, dq_rules)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb)"
        " ON CONFLICT (job_name) DO UPDATE SET provider = EXCLUDED.provider,"
        " dataset = EXCLUDED.dataset, tickers = EXCLUDED.tickers,"
        " multiplier = EXCLUDED.multiplier, timespan = EXCLUDED.timespan,"
        " adjusted = EXCLUDED.adjusted, page_limit = EXCLUDED.page_limit,"
        " interval_seconds = EXCLUDED.interval_seconds,"
        " overlap_seconds = EXCLUDED.overlap_seconds, max_attempts = EXCLUDED.max_attempts,"
        " enabled = EXCLUDED.enabled, rate_limit_per_minute = EXCLUDED.rate_limit_per_minute,"
        " updated_by = EXCLUDED.updated_by, dq_rules = EXCLUDED.dq_rules, updated_at = now()"
        " RETURNING (xmax = 0)";
    size_t len = 0;
    const char *text = tf_http_body(req, &len);
    const char *actor = tf_http_header(req, "X-Tickflow-Actor");
    cJSON *body = NULL;
    cJSON *job = NULL;
    struct job_input in;
    struct tf_buf tickers;
    char nums[6][24], err[512];
    char *rules = NULL; /* owned: cJSON_free at out */
    const char *params[15];
    PGresult *res = NULL;
    int created = 0;

    (void)svc;
    tf_buf_init(&tickers, 1024 * 1024);
    body = cJSON_ParseWithLength(text, len);
    if (!body) {
        tf_http_reply_rc_code(req, TF_ERR_INVALID, "invalid_json",
                              "the request body is not valid JSON");
        goto out;
    }
    memset(&in, 0, sizeof(in));
    if (check_job(body, &in, err, sizeof(err)) != TF_OK) {
        tf_http_reply_rc(req, TF_ERR_INVALID, err);
        goto out;
    }
    if (tf_pg_text_array(in.tickers, &tickers) != TF_OK) {
        tf_http_reply_rc(req, TF_ERR_TOO_LARGE, "ticker list too long");
        goto out;
    }
    snprintf(nums[0], sizeof(nums[0]), "%ld", in.multiplier);
    snprintf(nums[1], sizeof(nums[1]), "%ld", in.page_limit);
    snprintf(nums[2], sizeof(nums[2]), "%ld", in.interval);
    snprintf(nums[3], sizeof(nums[3]), "%ld", in.overlap);
    snprintf(nums[4], sizeof(nums[4]), "%ld", in.attempts);
    snprintf(nums[5], sizeof(nums[5]), "%ld", in.rate);
    params[0] = name;
    params[1] = in.provider;
    params[2] = strcmp(in.provider, "polygon") == 0 ? "aggs" : "time_series";
    params[3] = tickers.data;
    params[4] = nums[0];
    params[5] = in.timespan;
    params[6] = in.adjusted ? "t" : "f";
    params[7] = nums[1];
    params[8] = nums[2];
    params[9] = nums[3];
    params[10] = nums[4];
    params[11] = in.enabled ? "t" : "f";
    params[12] = in.has_rate ? nums[5] : NULL;
    params[13] = actor && strlen(actor) <= 64 ? actor : "api";
    rules = in.dq_rules ? cJSON_PrintUnformatted(in.dq_rules) : NULL;
    params[14] = rules ? rules : "[]";
    if (tf_pg_cmd(conn, "BEGIN") != TF_OK) {
        tf_http_reply_rcf(req, TF_ERR_DB, "cannot save job %s", name);
        goto out;
    }
    res = tf_pg_exec(conn, upsert, 15, params);
    if (!tf_pg_ok(res)) {
        tf_http_reply_rcf(req, TF_ERR_DB, "cannot save job %s (sqlstate %s)", name,
                          tf_pg_sqlstate(res));
        goto out;
    }
    created = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (save_schedule(conn, name, &in) != TF_OK || tf_pg_cmd(conn, "COMMIT") != TF_OK) {
        tf_http_reply_rcf(req, TF_ERR_DB, "cannot save the schedule of job %s", name);
        goto out;
    }
    if (extract_job_get(conn, name, &job) != TF_OK) {
        tf_http_reply_rc(req, TF_ERR_DB, "cannot read the saved job");
        goto out;
    }
    tf_log_info(tf_http_logctx(req), "job %s %s by %s", name, created ? "created" : "replaced",
                params[13]);
    tf_http_reply_json(req, created ? TF_HTTP_CREATED : TF_HTTP_OK, job);
out:
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *rb = PQexec(conn, "ROLLBACK");
        PQclear(rb);
    }
    PQclear(res);
    cJSON_free(rules);
    tf_buf_cleanup(&tickers);
    cJSON_Delete(job);
    cJSON_Delete(body);
}

static void get_job(struct tf_http_req *req, PGconn *conn, const char *name)
{
    cJSON *job = NULL;
    enum tf_rc rc = extract_job_get(conn, name, &job);

    if (rc == TF_ERR_NOT_FOUND)
        tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "unknown job %s", name);
    else if (rc != TF_OK)
        tf_http_reply_rc(req, rc, "cannot read the job");
    else
        tf_http_reply_json(req, TF_HTTP_OK, job);
    cJSON_Delete(job);
}

static void list_jobs(struct tf_http_req *req, PGconn *conn)
{
    PGresult *res = tf_pg_exec(conn,
                               "SELECT coalesce(json_agg(j ORDER BY j->>'job_name'), '[]')::text"
                               " FROM (SELECT " JOB_JSON "::json AS j FROM tickflow.job_config)"
                               " AS s",
                               0, NULL);
    cJSON *root = NULL;

    if (!tf_pg_ok(res)) {
        tf_http_reply_rc(req, TF_ERR_DB, "cannot list jobs");
        PQclear(res);
        return;
    }
    root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "jobs", cJSON_Parse(PQgetvalue(res, 0, 0)));
    tf_http_reply_json(req, TF_HTTP_OK, root);
    cJSON_Delete(root);
    PQclear(res);
}

/* A query parameter as a time; date-only values are UTC midnight. */
static int query_time(struct tf_http_req *req, const char *key, int64_t *out)
{
    const char *v = tf_http_query(req, key);

    return v && tf_time_parse(v, out) == TF_OK;
}

int extract_query_stage(struct tf_http_req *req, const char **stage)
{
    static const char *const stages[] = {"extract", "transform", "aggregate"};
    const char *s = tf_http_query(req, "stage");

    *stage = s ? s : "aggregate";
    for (size_t i = 0; i < TF_ARRAY_LEN(stages); i++) {
        if (strcmp(*stage, stages[i]) == 0)
            return 1;
    }
    tf_http_reply_rc(req, TF_ERR_INVALID, "stage must be extract, transform or aggregate");
    return 0;
}

static void get_gaps(struct tf_http_req *req, PGconn *conn, const char *name)
{
    const char *stage = NULL;
    char from_s[32], to_s[32];
    const char *params[4];
    int64_t from = 0, to = 0;
    PGresult *res = NULL;
    cJSON *job = NULL;
    cJSON *root = NULL;
    enum tf_rc rc;

    if (!query_time(req, "from", &from) || !query_time(req, "to", &to) || to <= from ||
        to - from > MAX_GAP_RANGE) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "from and to must be ISO-8601 times, from before to, at most 366 "
                          "days apart");
        return;
    }
    if (!extract_query_stage(req, &stage))
        return;
    rc = extract_job_get(conn, name, &job);
    cJSON_Delete(job);
    if (rc != TF_OK) {
        tf_http_reply_rcf(req, rc, "unknown job %s", name);
        return;
    }
    tf_time_format(from, from_s, sizeof(from_s));
    tf_time_format(to, to_s, sizeof(to_s));
    params[0] = name;
    params[1] = from_s;
    params[2] = to_s;
    params[3] = stage;
    /* What [from, to) has that the job's successful windows do not cover. */
    res = tf_pg_exec(
        conn,
        "SELECT coalesce(json_agg(json_build_object("
        "  'start', to_char(lower(g), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        "  'end', to_char(upper(g), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) ORDER BY lower(g)),"
        "  '[]')::text,"
        " coalesce(sum(extract(epoch FROM upper(g) - lower(g))), 0)::bigint"
        " FROM unnest(tstzmultirange(tstzrange($2::timestamptz, $3::timestamptz))"
        "  - coalesce((SELECT range_agg(tstzrange(window_start, window_end))"
        "   FROM tickflow.job_execution WHERE job_name = $1 AND stage = $4"
        "   AND status = 'SUCCESS' AND window_end > $2::timestamptz"
        "   AND window_start < $3::timestamptz), '{}'::tstzmultirange)) AS g",
        4, params);
    if (!tf_pg_ok(res)) {
        tf_http_reply_rcf(req, TF_ERR_DB, "cannot compute gaps (sqlstate %s)", tf_pg_sqlstate(res));
        PQclear(res);
        return;
    }
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "job_name", name);
    cJSON_AddStringToObject(root, "stage", stage);
    cJSON_AddStringToObject(root, "from", from_s);
    cJSON_AddStringToObject(root, "to", to_s);
    cJSON_AddItemToObject(root, "gaps", cJSON_Parse(PQgetvalue(res, 0, 0)));
    cJSON_AddNumberToObject(root, "gap_seconds", strtod(PQgetvalue(res, 0, 1), NULL));
    tf_http_reply_json(req, TF_HTTP_OK, root);
    cJSON_Delete(root);
    PQclear(res);
}

int extract_jobs_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    const char *method = tf_http_method(req);
    const char *path = tf_http_path(req);
    int is_get = strcmp(method, "GET") == 0;
    char caps[1][128];

    if (strcmp(path, "/v1/jobs") == 0) {
        if (is_get)
            list_jobs(req, conn);
        else
            tf_http_reply_method(req, "GET");
        return 1;
    }
    /* The method first: a method the route does not serve is a 405 whatever the name. */
    if (tf_http_match(path, "/v1/jobs/*/gaps", caps, 1)) {
        if (!is_get)
            tf_http_reply_method(req, "GET");
        else if (!tf_job_name_valid(caps[0]))
            tf_http_reply_rc(req, TF_ERR_INVALID, "bad job name");
        else
            get_gaps(req, conn, caps[0]);
        return 1;
    }
    if (!tf_http_match(path, "/v1/jobs/*", caps, 1))
        return 0;
    if (!is_get && strcmp(method, "PUT") != 0)
        tf_http_reply_method(req, "GET, PUT");
    else if (!tf_job_name_valid(caps[0]))
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "a job name is 1 to 63 of a-z, 0-9 and _, starting with a letter");
    else if (is_get)
        get_job(req, conn, caps[0]);
    else
        put_job(svc, req, conn, caps[0]);
    return 1;
}
