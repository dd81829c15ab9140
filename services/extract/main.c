/*
 * main.c - the extract stage: a POST names a job; extract works out the
 * window, pulls every ticker's bars from the job's provider and lands the
 * raw pages in the bronze lake; the stage event goes to tickflow.bronze.v1.
 */
#include "extract.h"
#include "console.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/json.h"
#include "tf/openapi.h"

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
           extract_audit_route(svc, req, conn) || extract_console_route(svc, req, conn);
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
#define OK(what)          "\"200\":{\"description\":\"" what "\"}"
#define ERR(code)         "\"" code "\":{\"description\":\"error object\"}"
#define JSON_BODY(schema) OA_BEARER OA_BODY(schema)
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
/* A ticker of either provider (tf_ticker_check; which ones a provider takes is its own). */
#define TICKER_PATTERN                                                                             \
    "^([A-Z][A-Z0-9.]{0,11}|[CX]:[A-Z0-9]{4,16}|[A-Z0-9]{2,10}/[A-Z0-9]{2,10}"                     \
    "|[A-Z][A-Z0-9.]{0,11}:[A-Z0-9]{2,10})$"
/* A cursor of /v1/runs (console.c): microseconds, microseconds and a UUID, dot-separated. */
#define RUNS_CURSOR                                                                                \
    "^[0-9]{1,18}[.][0-9]{1,18}[.][0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"     \
    "-[0-9a-fA-F]{12}$"
/* The console's routes (console.c, console_days.c). */
#define RUN_STATUS_SCHEMA                                                                          \
    "{\"type\":\"string\",\"enum\":[\"PENDING\",\"RUNNING\",\"SUCCESS\",\"FAILED\"],"             \
    "\"description\":\"RUNNING while a stage runs (or is a ZOMBIE to retry), PENDING while one"    \
    " waits or between two stages, FAILED once one failed, SUCCESS once aggregate succeeded\"}"
#define STAGE_BRIEF_SCHEMA                                                                         \
    "{\"type\":\"object\",\"nullable\":true,\"description\":\"null until the stage is created\","  \
    "\"properties\":{\"status\":" JSON_STR ",\"attempt\":" JSON_COUNT ",\"max_attempts\":"         \
    JSON_COUNT ",\"started_at\":" OA_TIME_NULL ",\"finished_at\":" OA_TIME_NULL ","                 \
    "\"records_in\":" JSON_COUNT ",\"records_out\":" JSON_COUNT ",\"records_rejected\":"            \
    JSON_COUNT ",\"error\":" OA_STR_NULL "}}"
#define RUN_HEAD_PROPS                                                                             \
    "\"execution_id\":" JSON_UUID ",\"job_name\":" JSON_STR ",\"status\":" RUN_STATUS_SCHEMA ","     \
    "\"window_start\":" JSON_TIME ",\"window_end\":" JSON_TIME ",\"created_at\":" JSON_TIME ","      \
    "\"backfill_id\":{\"type\":\"string\",\"format\":\"uuid\",\"nullable\":true}"
#define STAGE_RECORD_REF                                                                           \
    "{\"allOf\":[{\"$ref\":\"#/components/schemas/ExecutionRecord\"}],\"nullable\":true}"
#define TEXT_REPLY(what, type)                                                                     \
    "\"200\":{\"description\":\"" what "\",\"content\":{\"" type "\":{}}}"
#define CONSOLE_OPENAPI                                                                            \
    "\"/ui/\":{\"get\":{\"summary\":\"The web console (read-only; works without a token)\","       \
        "\"responses\":{" TEXT_REPLY("the page", "text/html") "}}},"                                \
    "\"/ui/{file}\":{\"get\":{\"summary\":\"The console's script, style and vendored chart"        \
        " library (vendor/lightweight-charts.js, vendor/LICENSE), compiled into extract\","        \
        "\"parameters\":[" PATH_PARAM("file", JSON_STR) "],"                                         \
        "\"responses\":{" TEXT_REPLY("the file", "text/javascript") "," ERR("404") "}}},"           \
    "\"/v1/runs\":{\"get\":{\"summary\":\"The latest runs (executions with their three stages),"  \
        " newest first, a page at a time\","                                                        \
        "\"parameters\":[" QUERY_PARAM("job_name", "false", OA_JOB_NAME) ","                           \
            QUERY_PARAM("status", "false", RUN_STATUS_SCHEMA) ","                                    \
            QUERY_PARAM("limit", "false", "{\"type\":\"integer\",\"minimum\":1,\"maximum\":200,"     \
                "\"default\":50}") ","                                                               \
            QUERY_PARAM("before", "false", "{\"type\":\"string\",\"pattern\":\"" RUNS_CURSOR "\","     \
                "\"description\":\"the cursor of the previous page\"}") "],"                                                         \
        "\"responses\":{" JSON_REPLY("200", "a page of runs", "{\"type\":\"object\",\"properties\":{" \
            "\"runs\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"         \
            RUN_HEAD_PROPS ",\"stages\":{\"type\":\"object\",\"properties\":{"                       \
            "\"extract\":" STAGE_BRIEF_SCHEMA ",\"transform\":" STAGE_BRIEF_SCHEMA ","                 \
            "\"aggregate\":" STAGE_BRIEF_SCHEMA "}}}}},\"limit\":" JSON_INT("1", "200") ","            \
            "\"cursor\":{\"type\":\"string\",\"nullable\":true,\"description\":\"before= of the next"  \
            " page; null on the last\"},\"next\":{\"type\":\"string\",\"nullable\":true,"              \
            "\"description\":\"the next page's path\"}}}") "," ERR("400") "}}},"                        \
    "\"/v1/runs/{execution_id}\":{\"get\":{\"summary\":\"A run: its three stage records as GET"     \
        " /v1/executions/{execution_id} of each stage shows them\","                                \
        "\"parameters\":[" PATH_PARAM("execution_id", JSON_UUID) "],"                                \
        "\"responses\":{" JSON_REPLY("200", "the run", "{\"type\":\"object\",\"properties\":{"       \
            RUN_HEAD_PROPS ",\"stages\":{\"type\":\"object\",\"properties\":{"                       \
            "\"extract\":" STAGE_RECORD_REF ",\"transform\":" STAGE_RECORD_REF ","                     \
            "\"aggregate\":" STAGE_RECORD_REF "}},\"links\":{\"type\":\"object\"}}}") ","             \
            ERR("400") "," ERR("404") "}}},"                                                         \
    "\"/v1/runs/{execution_id}/rejects\":{\"get\":{\"summary\":\"The run's rejected bars"          \
        " (silver.rejected_bars) by rule, the most first, with the first 3 of each\","              \
        "\"parameters\":[" PATH_PARAM("execution_id", JSON_UUID) "],"                                \
        "\"responses\":{" JSON_REPLY("200", "rejects", "{\"type\":\"object\",\"properties\":{"      \
            "\"execution_id\":" JSON_UUID ",\"rejected\":" JSON_COUNT ",\"rules\":{\"type\":\"array\"," \
            "\"items\":{\"type\":\"object\",\"properties\":{\"rule\":" JSON_STR ",\"count\":"         \
            JSON_COUNT ",\"samples\":{\"type\":\"array\",\"maxItems\":3,\"items\":{\"type\":"          \
            "\"object\",\"properties\":{\"ticker\":" JSON_STR ",\"ts\":" JSON_TIME ",\"attempt\":"      \
            JSON_COUNT ",\"object_uri\":" JSON_STR ",\"page\":" JSON_COUNT ",\"item\":" JSON_COUNT ","   \
            "\"raw\":{}}}}}}}}}") "," ERR("400") "," ERR("404") "}}},"                                    \
    "\"/v1/runs/{execution_id}/quality\":{\"get\":{\"summary\":\"Completeness per ticker and"      \
        " data-quality results with alert state, as aggregate's GET"                                \
        " /v1/executions/{execution_id}/quality shows them; empty lists until aggregate ran\","     \
        "\"parameters\":[" PATH_PARAM("execution_id", JSON_UUID) "],"                                \
        "\"responses\":{" OK("quality") "," ERR("400") "," ERR("404") "}}},"                          \
    "\"/v1/jobs/{job_name}/bars\":{\"get\":{\"summary\":\"Gold bars of one of the job's tickers"   \
        " in [from, to) for a chart (daily: trading days from from's date to the day before to's),"  \
        " at most 5000: a range that could hold more is refused\","                                 \
        "\"parameters\":[" PATH_PARAM("job_name", OA_JOB_NAME) ","                                      \
            QUERY_PARAM("ticker", "true", JSON_STR) ","                                              \
            QUERY_PARAM("interval", "false", "{\"type\":\"string\",\"enum\":[\"hour\",\"day\"],"      \
                "\"default\":\"hour\"}") ","                                                          \
            QUERY_PARAM("from", "true", JSON_TIME) "," QUERY_PARAM("to", "true", JSON_TIME) "],"      \
        "\"responses\":{" JSON_REPLY("200", "bars", "{\"type\":\"object\",\"properties\":{"         \
            "\"ticker\":" JSON_STR ",\"interval\":" JSON_STR ",\"source_timespan\":" JSON_STR ","      \
            "\"count\":" JSON_COUNT ",\"bars\":{\"type\":\"array\",\"items\":{\"type\":\"object\","   \
            "\"properties\":{\"time\":{\"description\":\"epoch seconds (hour) or YYYY-MM-DD (day)\"},"  \
            "\"open\":{\"type\":\"number\"},\"high\":{\"type\":\"number\"},\"low\":{\"type\":"       \
            "\"number\"},\"close\":{\"type\":\"number\"},\"volume\":{\"type\":\"number\","            \
            "\"nullable\":true},\"ma20\":{\"type\":\"number\",\"nullable\":true}}}}}}") ","             \
            ERR("400") "," ERR("404") "}}},"                                                         \
    "\"/v1/jobs/{job_name}/days\":{\"get\":{\"summary\":\"Each UTC day of [from, to] (both"        \
        " included; by default the months of the job's executions, at most 366 days): covered,"     \
        " partial, gap (the job's markets were open and successful windows cover all, some or"      \
        " none of it) or closed\","                                                                 \
        "\"parameters\":[" PATH_PARAM("job_name", OA_JOB_NAME) ","                                      \
            QUERY_PARAM("from", "false", JSON_DATE) "," QUERY_PARAM("to", "false", JSON_DATE) ","    \
            QUERY_PARAM("stage", "false", "{\"type\":\"string\",\"enum\":"                          \
                "[\"extract\",\"transform\",\"aggregate\"],\"default\":\"aggregate\"}") "],"          \
        "\"responses\":{" JSON_REPLY("200", "days", "{\"type\":\"object\",\"properties\":{"         \
            "\"from\":" JSON_DATE ",\"to\":" JSON_DATE ",\"markets\":{\"type\":\"array\"},"           \
            "\"counts\":{\"type\":\"object\"},\"days\":{\"type\":\"array\",\"items\":{\"type\":"    \
            "\"object\",\"properties\":{\"day\":" JSON_DATE ",\"state\":{\"type\":\"string\","       \
            "\"enum\":[\"covered\",\"partial\",\"gap\",\"closed\"]},\"open_minutes\":" JSON_COUNT ","  \
            "\"covered_minutes\":" JSON_COUNT "}}}}}") "," ERR("400") "," ERR("404") "}}}"
/* A job's built-in schedule (schedule.h); null or absent: none. */
#define SCHEDULE_SCHEMA                                                                            \
    "{\"nullable\":true,\"description\":\"extract starts an execution on the job's incremental"     \
    " window at each tick, one replica per tick; ticks missed while no replica ran count as"     \
    " one\",\"oneOf\":[{\"type\":\"object\",\"additionalProperties\":false,"                      \
    "\"required\":[\"every_seconds\"],\"properties\":{\"every_seconds\":{\"type\":\"integer\","   \
    "\"minimum\":60,\"maximum\":2678400,\"description\":\"ticks at the multiples of it since the"  \
    " epoch; at least one bar of the job\"}}},{\"type\":\"object\",\"additionalProperties\":false,"  \
    "\"required\":[\"cron\"],\"properties\":{\"cron\":{\"type\":\"string\",\"description\":"       \
    "\"minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly,"       \
    " @yearly\"},\"zone\":{\"type\":\"string\",\"default\":\"UTC\",\"description\":"               \
    "\"an IANA time zone for the cron's fields\"}}}]}"
static const char extract_openapi[] =
    "\"/v1/jobs\":{\"get\":{\"summary\":\"List job configurations\","
        "\"responses\":{" OK("jobs") "}}},"
    "\"/v1/jobs/{job_name}\":{"
        "\"get\":{\"summary\":\"A job's configuration\","
            "\"parameters\":[" PATH_PARAM("job_name", OA_JOB_NAME) "],"
            "\"responses\":{" OK("job") "," ERR("400") "," ERR("404") "}},"
        "\"put\":{\"summary\":\"Create or replace a job (validated; unknown fields refused)\","
            "\"parameters\":[" PATH_PARAM("job_name", OA_JOB_NAME) "],"
            JSON_BODY("{\"type\":\"object\",\"additionalProperties\":false,"
                "\"required\":[\"provider\",\"tickers\"],\"properties\":{"
                "\"provider\":{\"type\":\"string\",\"enum\":[\"polygon\",\"twelvedata\"]},"
                "\"tickers\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":5000,\"uniqueItems\":true,"
                    "\"items\":{\"type\":\"string\",\"pattern\":\"" TICKER_PATTERN "\"},"
                    "\"description\":\"the provider's symbols: Polygon's AAPL, BRK.A, C:EURUSD"
                    " (forex), X:BTCUSD (crypto); Twelve Data's AAPL, SBIN:NSE, EUR/USD\"},"
                "\"multiplier\":" JSON_INT("1", "1440") ","
                "\"timespan\":{\"type\":\"string\",\"enum\":[\"minute\",\"hour\",\"day\"]},"
                "\"adjusted\":{\"type\":\"boolean\"},"
                "\"page_limit\":" JSON_INT("1", "50000") ","
                "\"interval_seconds\":{\"type\":\"integer\",\"minimum\":60,\"maximum\":2678400,"
                    "\"description\":\"at least one bar\"},"
                "\"overlap_seconds\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":2678400,"
                    "\"description\":\"less than interval_seconds\"},"
                "\"max_attempts\":" JSON_INT("1", "20") ","
                "\"enabled\":{\"type\":\"boolean\"},"
                "\"rate_limit_per_minute\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000,"
                    "\"nullable\":true},"
                "\"dq_rules\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"
                "\"schedule\":" SCHEDULE_SCHEMA "}}")
            "\"responses\":{" OK("the stored job") ",\"201\":{\"description\":\"created\"},"
                ERR("400") "," OA_UNAUTHORIZED "}}},"
    "\"/v1/jobs/{job_name}/gaps\":{\"get\":{\"summary\":\"Windows with no successful execution\","
        "\"parameters\":[" PATH_PARAM("job_name", OA_JOB_NAME) ","
            QUERY_PARAM("from", "true", JSON_TIME) "," QUERY_PARAM("to", "true", JSON_TIME) ","
            QUERY_PARAM("stage", "false", "{\"type\":\"string\",\"enum\":"
                "[\"extract\",\"transform\",\"aggregate\"]}") "],"
        "\"responses\":{" OK("gaps") "," ERR("400") "," ERR("404") "}}},"
    "\"/v1/backfills\":{\"get\":{\"summary\":\"A job's backfills with their progress, newest"
        " first (each as GET /v1/backfills/{backfill_id} without executions)\","
        "\"parameters\":[" QUERY_PARAM("job_name", "true", OA_JOB_NAME) ","
            QUERY_PARAM("limit", "false", JSON_INT("1", "100")) "],"
        "\"responses\":{" JSON_REPLY("200", "backfills", "{\"type\":\"object\",\"properties\":"
            "{\"backfills\":{\"type\":\"array\",\"items\":" BACKFILL_REF "}}}") ","
            ERR("400") "," ERR("404") "}},"
    "\"post\":{\"summary\":\"One execution per day of [from, to]\","
        JSON_BODY("{\"type\":\"object\",\"required\":[\"job_name\",\"from\",\"to\"],"
            "\"properties\":{\"job_name\":" OA_JOB_NAME ",\"from\":" JSON_DATE ",\"to\":" JSON_DATE ","
            "\"concurrency\":" JSON_INT("1", "32") ",\"backfill_id\":" JSON_UUID "},"
            "\"description\":\"whole past days: from <= to < today (UTC), at most"
            " " OA_NUM(EXTRACT_BACKFILL_MAX_DAYS) " of them\"}")
        "\"responses\":{" JSON_REPLY("202", "the new backfill", BACKFILL_REF) ","
            JSON_REPLY("200", "the backfill of this backfill_id, asked for again", BACKFILL_REF)
            "," ERR("400") "," OA_UNAUTHORIZED "," ERR("404") "," ERR("409") "}}},"
    "\"/v1/backfills/{backfill_id}\":{\"get\":{\"summary\":\"A backfill's progress through gold\","
        "\"parameters\":[" PATH_PARAM("backfill_id", JSON_UUID) "],"
        "\"responses\":{" JSON_REPLY("200", "the backfill", BACKFILL_SCHEMA) "," ERR("400") ","
            ERR("404") "}}},"
    "\"/v1/executions/{execution_id}/audit\":{\"get\":{"
        "\"summary\":\"The vendor requests of each attempt\","
        "\"parameters\":[" PATH_PARAM("execution_id", JSON_UUID) "],"
        "\"responses\":{" OK("audit") "," ERR("400") "," ERR("404") "}}},"
    CONSOLE_OPENAPI;
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
    .static_route = extract_ui_route,
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
