/*
 * main.c - the extract stage: a POST names a job; extract works out the
 * window, pulls every ticker's bars from the job's provider and lands the
 * raw pages in the bronze lake; the stage event goes to tickflow.bronze.v1.
 */
#include "extract.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/json.h"
#include "tf/pg.h"
#include "tf/time.h"

/* End of the job's last successful extract window, or 0 when none. */
static enum tf_rc last_window_end(PGconn *conn, const char *job, int64_t *out)
{
    const char *params[1] = {job};
    PGresult *res = tf_pg_exec(conn,
                               "SELECT coalesce(extract(epoch FROM max(window_end)), 0)::bigint"
                               " FROM tickflow.job_execution WHERE job_name = $1"
                               " AND stage = 'extract' AND status = 'SUCCESS'",
                               1, params);
    enum tf_rc rc = TF_ERR_DB;

    if (tf_pg_ok(res)) {
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        rc = TF_OK;
    }
    PQclear(res);
    return rc;
}

static enum tf_rc extract_plan(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                               struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen)
{
    const char *name = tf_json_str(body, "job_name");
    const char *ws = tf_json_str(body, "window_start");
    const char *we = tf_json_str(body, "window_end");
    cJSON *job = NULL;
    const cJSON *enabled;
    int64_t bar;
    enum tf_rc rc;

    (void)svc;
    if (!name) {
        snprintf(err, errlen, "job_name is required");
        return TF_ERR_INVALID;
    }
    if (!ws != !we) {
        snprintf(err, errlen, "give both window_start and window_end, or neither");
        return TF_ERR_INVALID;
    }
    rc = extract_job_get(conn, name, &job);
    if (rc == TF_ERR_NOT_FOUND) {
        snprintf(err, errlen, "unknown job %s", name);
        return rc;
    }
    if (rc != TF_OK) {
        snprintf(err, errlen, "cannot read job %s", name);
        return rc;
    }
    *owned = job;
    enabled = cJSON_GetObjectItemCaseSensitive(job, "enabled");
    if (cJSON_IsFalse(enabled)) {
        snprintf(err, errlen, "job %s is disabled", name);
        return TF_ERR_CONFLICT;
    }
    bar = tf_timespan_seconds(tf_json_str(job, "timespan"), tf_json_long(job, "multiplier", 0));
    if (bar <= 0) {
        snprintf(err, errlen, "job %s has an unknown timespan", name);
        return TF_ERR_CONFLICT;
    }
    if (ws) {
        /* check_body has parsed both already. */
        rc = extract_window_given(ws, we, bar, tf_time_now(), &plan->window_start,
                                  &plan->window_end, err, errlen);
        if (rc != TF_OK)
            return rc;
    } else {
        int64_t last = 0;
        int64_t now = tf_time_now();

        rc = last_window_end(conn, name, &last);
        if (rc != TF_OK) {
            snprintf(err, errlen, "cannot read the job's last window");
            return rc;
        }
        rc = extract_window_next(name, bar, tf_json_long(job, "overlap_seconds", 0),
                                 tf_json_long(job, "interval_seconds", 0), last, now,
                                 &plan->window_start, &plan->window_end, err, errlen);
        if (rc != TF_OK)
            return rc;
    }
    snprintf(plan->job_name, sizeof(plan->job_name), "%s", name);
    plan->tickers = cJSON_GetObjectItemCaseSensitive(job, "tickers");
    plan->max_attempts = (int)tf_json_long(job, "max_attempts", 0);
    return TF_OK;
}

static enum tf_rc extract_run(struct tf_run *run)
{
    const struct extract_cfg *ecfg = tf_svc_stage_cfg(run->svc);
    struct extract_job job;
    cJSON *cfg = NULL;
    enum tf_rc rc;

    rc = extract_job_get(run->conn, run->job_name, &cfg);
    if (rc != TF_OK) {
        tf_run_fail(run, "cannot read job %s: %s", run->job_name, tf_rc_str(rc));
        return rc;
    }
    memset(&job, 0, sizeof(job));
    snprintf(job.provider, sizeof(job.provider), "%s", tf_json_str(cfg, "provider"));
    snprintf(job.dataset, sizeof(job.dataset), "%s", tf_json_str(cfg, "dataset"));
    snprintf(job.timespan, sizeof(job.timespan), "%s", tf_json_str(cfg, "timespan"));
    job.multiplier = tf_json_long(cfg, "multiplier", 0);
    job.page_limit = tf_json_long(cfg, "page_limit", 0);
    job.adjusted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "adjusted"));
    job.rate_per_minute = tf_json_long(cfg, "rate_limit_per_minute", 0);
    cJSON_Delete(cfg);

    if (job.rate_per_minute <= 0)
        job.rate_per_minute = strcmp(job.provider, "polygon") == 0
                                  ? ecfg->polygon_rate_per_minute
                                  : ecfg->twelvedata_rate_per_minute;
    if (strcmp(job.provider, "polygon") == 0)
        return extract_fetch_run(run, &job, &extract_polygon, ecfg->polygon_base, ecfg->polygon_key,
                                 ecfg->concurrency);
    if (strcmp(job.provider, "twelvedata") == 0)
        return extract_fetch_run(run, &job, &extract_twelvedata, ecfg->twelvedata_base,
                                 ecfg->twelvedata_key, ecfg->concurrency);
    tf_run_fail(run, "provider %s is not supported by this build", job.provider);
    return TF_ERR_INVALID;
}

static int extract_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    return extract_jobs_route(svc, req, conn) || extract_backfills_route(svc, req, conn) ||
           extract_audit_route(svc, req, conn);
}

/* extract's own routes, for /openapi.json. */
#define JSON_STR         "{\"type\":\"string\"}"
#define JSON_DATE        "{\"type\":\"string\",\"format\":\"date\"}"
#define JSON_TIME        "{\"type\":\"string\",\"format\":\"date-time\"}"
#define JSON_UUID        "{\"type\":\"string\",\"format\":\"uuid\"}"
#define JSON_INT(lo, hi) "{\"type\":\"integer\",\"minimum\":" lo ",\"maximum\":" hi "}"
#define PATH_PARAM(name, schema)                                                                   \
    "{\"name\":\"" name "\",\"in\":\"path\",\"required\":true,\"schema\":" schema "}"
#define QUERY_PARAM(name, req, schema)                                                             \
    "{\"name\":\"" name "\",\"in\":\"query\",\"required\":" req ",\"schema\":" schema "}"
#define OK(what)  "\"200\":{\"description\":\"" what "\"}"
#define ERR(code) "\"" code "\":{\"description\":\"error object\"}"
#define JSON_BODY(schema)                                                                          \
    "\"requestBody\":{\"content\":{\"application/json\":{\"schema\":" schema "}}},"
#define JSON_REPLY(code, what, schema)                                                             \
    "\"" code "\":{\"description\":\"" what                                                        \
    "\",\"content\":{\"application/json\":{\"schema\":" schema "}}}"
#define JSON_COUNT "{\"type\":\"integer\",\"minimum\":0}"
#define JSON_STAGE_STATUS                                                                          \
    "{\"type\":\"string\",\"nullable\":true,"                                                      \
    "\"enum\":[\"PENDING\",\"RUNNING\",\"SUCCESS\",\"FAILED\",\"ZOMBIE\",null]}"
/* One stage of a backfill's days by state (backfill.c says how each is counted). */
#define BACKFILL_COUNTS(stage)                                                                     \
    "{\"type\":\"object\",\"description\":\"the days by the state of their " stage " stage;"       \
    " a stage not created yet is pending, or skipped when an earlier stage of its day"             \
    " FAILED; the five add up to days\",\"properties\":{\"pending\":" JSON_COUNT                   \
    ",\"running\":" JSON_COUNT ",\"succeeded\":" JSON_COUNT ",\"failed\":" JSON_COUNT              \
    ",\"skipped\":" JSON_COUNT "}}"
/* clang-format off */
#define BACKFILL_SCHEMA                                                                            \
    "{\"type\":\"object\",\"properties\":{"                                                        \
    "\"backfill_id\":" JSON_UUID ",\"job_name\":" JSON_STR ",\"from\":" JSON_DATE ","              \
    "\"to\":" JSON_DATE ",\"days\":" JSON_COUNT ",\"concurrency\":" JSON_INT("1", "32") ","        \
    "\"created_by\":" JSON_STR ",\"created_at\":" JSON_TIME ","                                    \
    "\"status\":{\"type\":\"string\",\"enum\":[\"RUNNING\",\"SUCCESS\",\"FAILED\"],"               \
        "\"description\":\"SUCCESS once every stage of every day succeeded (every day reached"     \
        " gold); RUNNING while a stage of a day is pending or running; FAILED when none is and"    \
        " a day failed (a failed stage POSTed again while attempts are left makes it RUNNING"      \
        " again)\"},"                                                                              \
    "\"extract\":" BACKFILL_COUNTS("extract") ",\"transform\":" BACKFILL_COUNTS("transform") ","   \
    "\"aggregate\":" BACKFILL_COUNTS("aggregate") ","                                              \
    "\"completed\":{\"type\":\"integer\",\"minimum\":0,"                                           \
        "\"description\":\"days whose aggregate stage succeeded\"},"                               \
    "\"executions\":{\"type\":\"array\",\"description\":\"one per day, in order\","                \
        "\"items\":{\"type\":\"object\",\"properties\":{\"execution_id\":" JSON_UUID ","           \
        "\"window_start\":" JSON_TIME ",\"extract\":" JSON_STAGE_STATUS ","                        \
        "\"transform\":" JSON_STAGE_STATUS ",\"aggregate\":" JSON_STAGE_STATUS "}}}}}"
/* The same object, as POST /v1/backfills answers it. */
#define BACKFILL_REF                                                                               \
    "{\"$ref\":\"#/paths/~1v1~1backfills~1%7Bbackfill_id%7D/get/responses/200/content/"            \
    "application~1json/schema\"}"
static const char extract_openapi[] =
    "\"/v1/jobs\":{\"get\":{\"summary\":\"List job configurations\","
        "\"responses\":{" OK("jobs") "}}},"
    "\"/v1/jobs/{job_name}\":{"
        "\"get\":{\"summary\":\"A job's configuration\","
            "\"parameters\":[" PATH_PARAM("job_name", JSON_STR) "],"
            "\"responses\":{" OK("job") "," ERR("404") "}},"
        "\"put\":{\"summary\":\"Create or replace a job (validated; unknown fields refused)\","
            "\"parameters\":[" PATH_PARAM("job_name", JSON_STR) "],"
            JSON_BODY("{\"type\":\"object\",\"additionalProperties\":false,"
                "\"required\":[\"provider\",\"tickers\"],\"properties\":{"
                "\"provider\":{\"type\":\"string\",\"enum\":[\"polygon\",\"twelvedata\"]},"
                "\"tickers\":{\"type\":\"array\",\"items\":" JSON_STR "},"
                "\"multiplier\":" JSON_INT("1", "1440") ","
                "\"timespan\":{\"type\":\"string\",\"enum\":[\"minute\",\"hour\",\"day\"]},"
                "\"adjusted\":{\"type\":\"boolean\"},"
                "\"page_limit\":" JSON_INT("1", "50000") ","
                "\"interval_seconds\":{\"type\":\"integer\",\"minimum\":1},"
                "\"overlap_seconds\":{\"type\":\"integer\",\"minimum\":0},"
                "\"max_attempts\":" JSON_INT("1", "20") ","
                "\"enabled\":{\"type\":\"boolean\"},"
                "\"rate_limit_per_minute\":{\"type\":\"integer\",\"nullable\":true},"
                "\"dq_rules\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}}}")
            "\"responses\":{" OK("the stored job") ",\"201\":{\"description\":\"created\"},"
                ERR("400") "}}},"
    "\"/v1/jobs/{job_name}/gaps\":{\"get\":{\"summary\":\"Windows with no successful execution\","
        "\"parameters\":[" PATH_PARAM("job_name", JSON_STR) ","
            QUERY_PARAM("from", "true", JSON_TIME) "," QUERY_PARAM("to", "true", JSON_TIME) ","
            QUERY_PARAM("stage", "false", "{\"type\":\"string\",\"enum\":"
                "[\"extract\",\"transform\",\"aggregate\"]}") "],"
        "\"responses\":{" OK("gaps") "," ERR("400") "," ERR("404") "}}},"
    "\"/v1/backfills\":{\"post\":{\"summary\":\"One execution per day of [from, to]\","
        JSON_BODY("{\"type\":\"object\",\"required\":[\"job_name\",\"from\",\"to\"],"
            "\"properties\":{\"job_name\":" JSON_STR ",\"from\":" JSON_DATE ",\"to\":" JSON_DATE ","
            "\"concurrency\":" JSON_INT("1", "32") ",\"backfill_id\":" JSON_UUID "}}")
        "\"responses\":{" JSON_REPLY("202", "the new backfill", BACKFILL_REF) ","
            JSON_REPLY("200", "the backfill of this backfill_id, asked for again", BACKFILL_REF)
            "," ERR("400") "," ERR("404") "," ERR("409") "}}},"
    "\"/v1/backfills/{backfill_id}\":{\"get\":{\"summary\":\"A backfill's progress through gold\","
        "\"parameters\":[" PATH_PARAM("backfill_id", JSON_UUID) "],"
        "\"responses\":{" JSON_REPLY("200", "the backfill", BACKFILL_SCHEMA) "," ERR("404") "}}},"
    "\"/v1/executions/{execution_id}/audit\":{\"get\":{"
        "\"summary\":\"The vendor requests of each attempt\","
        "\"parameters\":[" PATH_PARAM("execution_id", JSON_UUID) "],"
        "\"responses\":{" OK("audit") "," ERR("404") "}}}";
/* clang-format on */

static struct extract_cfg extract_cfg;

/* clang-format off */
#define EXTRACT_KEY(n, t, f, d, fl, lo, hi) TF_CFG_KEY(struct extract_cfg, n, t, f, d, fl, lo, hi)

static const struct tf_cfg_key extract_keys[] = {
    EXTRACT_KEY("TICKFLOW_EXTRACT_TIMEOUT_MS", TF_CFG_INT, timeout_ms, "120000", 0, 1000, 3600000),
    EXTRACT_KEY("TICKFLOW_EXTRACT_CONCURRENCY", TF_CFG_INT, concurrency, "8", 0, 1, 64),
    EXTRACT_KEY("TICKFLOW_POLYGON_RATE_PER_MINUTE", TF_CFG_INT, polygon_rate_per_minute, "5", 0,
                1, 1000000),
    EXTRACT_KEY("TICKFLOW_TWELVEDATA_RATE_PER_MINUTE", TF_CFG_INT, twelvedata_rate_per_minute,
                "8", 0, 1, 1000000),
    EXTRACT_KEY("POLYGON_API_KEY",              TF_CFG_STR, polygon_key, NULL, TF_CFG_SECRET, 0, 0),
    EXTRACT_KEY("TICKFLOW_POLYGON_BASE_URL",    TF_CFG_STR, polygon_base, "https://api.polygon.io",
                0, 0, 0),
    EXTRACT_KEY("TICKFLOW_TWELVEDATA_BASE_URL", TF_CFG_STR, twelvedata_base,
                "https://api.twelvedata.com", 0, 0, 0),
    EXTRACT_KEY("TWELVEDATA_API_KEY",           TF_CFG_STR, twelvedata_key, NULL, TF_CFG_SECRET, 0, 0),
};
/* clang-format on */

static const struct tf_stage_def extract_stage = {
    .name = "extract",
    .upstream = NULL,
    .consume_topic = NULL,
    .produce_topic = "tickflow.bronze.v1",
    .fenced = 0,
    .default_port = 8081,
    .run = extract_run,
    .plan = extract_plan,
    .tick = extract_tick,
    .route = extract_route,
    .openapi_paths = extract_openapi,
    .keys = extract_keys,
    .nkeys = TF_ARRAY_LEN(extract_keys),
    .cfg = &extract_cfg,
};

int main(void)
{
    int code;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    code = tf_svc_main(&extract_stage);
    curl_global_cleanup();
    return code;
}
