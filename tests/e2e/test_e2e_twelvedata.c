/*
 * test_e2e_twelvedata.c - Twelve Data jobs through the whole pipeline,
 * native binaries on the real PostgreSQL and Kafka: extract asks
 * marketsim's /time_series (exchange-local dates, paging by date window),
 * transform turns the exchange-local datetimes into UTC bars, aggregate
 * rolls them up, chained by Kafka.
 *
 * Expected values come from marketsim's generator, linked here: silver must
 * hold exactly the generated minute bars of the canonical instrument,
 * rolled up to the job's bar size. Then the failures: an unknown symbol, a
 * day without data, an entitlement error with HTTP 200, throttling, and the
 * key nowhere but in the requests.
 *
 * The harness points extract's Polygon and Twelve Data base URLs at the
 * same marketsim, and the faults are sent there.
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../services/marketsim/gen.h"
#include "check.h"
#include "harness.h"
#include "tf/buf.h"
#include "tf/exec.h"
#include "tf/gz.h"
#include "tf/lake.h"
#include "tf/time.h"

#define SEED     11
#define SEED_STR "11"
#define API_KEY  "td-Secret-Key-5b2e8a41"

static struct h_stack stack;

/* Sends a request and parses the JSON answer (caller deletes; NULL when none). */
static cJSON *call(const char *method, int port, const char *path, const char *body, long *status)
{
    return h_call(method, port, path, body, NULL, status);
}

/* Creates a Twelve Data job through PUT /v1/jobs (its validation included). */
static int put_job(const char *name, const char *ticker, int multiplier, const char *timespan)
{
    char path[128], body[512];
    long status;

    snprintf(path, sizeof(path), "/v1/jobs/%s", name);
    snprintf(body, sizeof(body),
             "{\"provider\":\"twelvedata\",\"tickers\":[\"%s\"],\"multiplier\":%d,"
             "\"timespan\":\"%s\",\"interval_seconds\":86400,\"overlap_seconds\":0,"
             "\"max_attempts\":3}",
             ticker, multiplier, timespan);
    cJSON_Delete(call("PUT", stack.procs[H_EXTRACT].port, path, body, &status));
    CHECK(status == 200 || status == 201, "PUT %s: %ld", path, status);
    return status == 200 || status == 201 ? 0 : -1;
}

/* Replaces marketsim's fault rules (NULL clears them). */
static void set_faults(const char *rules)
{
    CHECK_EQ_INT(h_sim_faults(stack.procs[H_MARKETSIM].port, rules), 200);
}

/* Starts an execution of job over [ws, we) at extract; its id goes to id. */
static void start_run(const char *job, const char *ws, const char *we, char id[TF_UUID_LEN + 1])
{
    char body[512];
    long status;

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"%s\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\"}",
             id, job, ws, we);
    cJSON_Delete(call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, &status));
    CHECK(status == 202, "%s %s: POST answered %ld", job, ws, status);
}

/* The execution's first audit attempt (caller deletes the returned root). */
static cJSON *get_audit(const char *id, const cJSON **attempt)
{
    char path[128];
    long status;
    cJSON *audit;

    snprintf(path, sizeof(path), "/v1/executions/%s/audit", id);
    audit = call("GET", stack.procs[H_EXTRACT].port, path, NULL, &status);
    CHECK_EQ_INT(status, 200);
    *attempt = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(audit, "attempts"), 0);
    return audit;
}

static double col(PGresult *res, int row, int c)
{
    return strtod(PQgetvalue(res, row, c), NULL);
}

/*
 * What the pipeline must produce for ticker over [ws, we): the generator's
 * minute bars of its canonical instrument, rolled up to multiplier x
 * timespan (Twelve Data's forex and crypto bars count from 00:00 UTC, as
 * the rollup's epoch-aligned buckets do). Returns the count; *out is new.
 */
static size_t expected_bars(const char *ticker, int64_t ws, int64_t we, long multiplier,
                            const char *timespan, struct ms_bar **out)
{
    char canon[48];
    struct ms_bar *mins = NULL;
    size_t n;

    *out = NULL;
    if (!ms_gen_canonical(ticker, canon, sizeof(canon)))
        return 0;
    n = ms_gen_minute_bars(SEED, canon, ws * 1000, we * 1000 - 1, &mins);
    if (multiplier == 1 && strcmp(timespan, "minute") == 0) {
        *out = mins;
        return n;
    }
    n = ms_gen_rollup(mins, n, multiplier, timespan, out);
    free(mins);
    return n;
}

/*
 * Silver holds exactly the expected bars of ticker in [ws, we): same
 * count, every ts and OHLC the very same double, volume equal (or NULL
 * when the vendor sends none), no VWAP and no trade count.
 */
static void check_silver(const char *ticker, const char *span, int64_t ws, int64_t we,
                         const struct ms_bar *bars, size_t n, int with_volume)
{
    char wss[32], wes[32];
    const char *params[4] = {ticker, span, wss, wes};
    PGresult *res;
    size_t bad = 0;
    int rows;

    tf_time_format(ws, wss, sizeof(wss));
    tf_time_format(we, wes, sizeof(wes));
    res = PQexecParams(stack.db,
                       "SELECT (extract(epoch FROM ts) * 1000)::bigint, open, high, low, close,"
                       " volume, volume IS NULL, vwap IS NULL AND trades IS NULL"
                       " FROM silver.bars WHERE ticker = $1 AND timespan = $2"
                       " AND ts >= $3 AND ts < $4 ORDER BY ts",
                       4, NULL, params, NULL, NULL, 0);
    rows = PQntuples(res);
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK, "silver query: %s", PQresultErrorMessage(res));
    CHECK(rows == (int)n, "%s %s: %d silver rows, generated %zu", ticker, span, rows, n);
    for (int r = 0; r < rows && r < (int)n; r++) {
        const struct ms_bar *b = &bars[r];
        int vol_ok = with_volume ? strcmp(PQgetvalue(res, r, 6), "f") == 0 && col(res, r, 5) == b->v
                                 : strcmp(PQgetvalue(res, r, 6), "t") == 0;

        if (strtoll(PQgetvalue(res, r, 0), NULL, 10) != b->t_ms || col(res, r, 1) != b->o ||
            col(res, r, 2) != b->h || col(res, r, 3) != b->l || col(res, r, 4) != b->c || !vol_ok ||
            strcmp(PQgetvalue(res, r, 7), "t") != 0) {
            if (!bad)
                printf("# %s first differing row %d: ts=%s o=%s h=%s l=%s c=%s v=%s; want "
                       "ts=%lld o=%.17g h=%.17g l=%.17g c=%.17g v=%.17g\n",
                       ticker, r, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                       PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), PQgetvalue(res, r, 4),
                       PQgetvalue(res, r, 5), (long long)b->t_ms, b->o, b->h, b->l, b->c, b->v);
            bad++;
        }
    }
    CHECK(bad == 0, "%s %s: %zu of %d silver bars differ from the generator", ticker, span, bad,
          rows);
    PQclear(res);
}

/*
 * Gold holds each hour's rollup of those bars: OHLC exact, volume summed
 * (NULL when no bar has one), trades NULL (Twelve Data has none), VWAP
 * from the typical price (h + l + c) / 3 weighted by volume (Twelve Data
 * has no VWAP; NULL without volume), bar_count the silver bars of the hour.
 */
static void check_gold(const char *ticker, const char *span, const struct ms_bar *bars, size_t n,
                       int with_volume)
{
    struct ms_bar *hours = NULL;
    size_t nh = ms_gen_rollup(bars, n, 1, "hour", &hours);
    size_t bad = 0;

    for (size_t h = 0; h < nh; h++) {
        char bucket[32];
        const char *params[3] = {ticker, span, bucket};
        long long count = 0;
        double v_sum = 0, pv_sum = 0;
        PGresult *res;

        tf_time_format(hours[h].t_ms / 1000, bucket, sizeof(bucket));
        for (size_t k = 0; k < n; k++) {
            if (bars[k].t_ms / 3600000 == hours[h].t_ms / 3600000) {
                v_sum += bars[k].v;
                pv_sum += (bars[k].h + bars[k].l + bars[k].c) / 3 * bars[k].v;
                count++;
            }
        }
        res = PQexecParams(stack.db,
                           "SELECT open, high, low, close, volume, volume IS NULL,"
                           " trades IS NULL, bar_count, vwap"
                           " FROM gold.bars_hourly WHERE ticker = $1"
                           " AND source_timespan = $2 AND bucket = $3",
                           3, NULL, params, NULL, NULL, 0);
        if (PQntuples(res) != 1) {
            bad++;
        } else if (col(res, 0, 0) != hours[h].o || col(res, 0, 1) != hours[h].h ||
                   col(res, 0, 2) != hours[h].l || col(res, 0, 3) != hours[h].c ||
                   (with_volume ? col(res, 0, 4) != v_sum
                                : strcmp(PQgetvalue(res, 0, 5), "t") != 0) ||
                   strcmp(PQgetvalue(res, 0, 6), "t") != 0 ||
                   strtoll(PQgetvalue(res, 0, 7), NULL, 10) != count ||
                   (with_volume ? fabs(col(res, 0, 8) - pv_sum / v_sum) > 1e-9 * (pv_sum / v_sum)
                                : !PQgetisnull(res, 0, 8))) {
            bad++;
        }
        PQclear(res);
    }
    CHECK(bad == 0 && nh > 0, "%s %s: %zu of %zu hourly rollups differ", ticker, span, bad, nh);
    free(hours);
}

/*
 * Runs job over [ws, we) through the three stages and checks every stage's
 * counts, silver and gold against the generator. pages: the bronze pages
 * extract must have written (the date-window chunks). Returns the execution
 * id in id.
 */
static void run_and_check(const char *job, const char *ticker, long multiplier,
                          const char *timespan, const char *ws_s, const char *we_s, int pages,
                          int with_volume, char id[TF_UUID_LEN + 1])
{
    int64_t ws = 0, we = 0;
    struct ms_bar *bars = NULL;
    size_t n;
    char span[32];
    cJSON *rec, *audit;
    const cJSON *a = NULL, *o;

    CHECK(tf_time_parse(ws_s, &ws) == TF_OK && tf_time_parse(we_s, &we) == TF_OK, "parse");
    snprintf(span, sizeof(span), "%ld%s", multiplier, timespan);
    n = expected_bars(ticker, ws, we, multiplier, timespan, &bars);
    CHECK(n > 0, "%s: the generator has bars in %s..%s", ticker, ws_s, we_s);
    start_run(job, ws_s, we_s, id);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 120);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "%s %s: aggregate %s", ticker, ws_s,
          rec ? h_jstr(rec, "status") : "timed out");
    cJSON_Delete(rec);

    /* Extract asked for exactly the window: every bar it got is one silver keeps. */
    rec = h_get_record(stack.procs[H_EXTRACT].port, id);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), n);
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(rec, "objects_summary"), "count"), pages);
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(rec, "objects_summary"), "records"), n);
    cJSON_Delete(rec);
    rec = h_get_objects(stack.procs[H_EXTRACT].port, id, 1);
    CHECK_EQ_INT(cJSON_GetArraySize(rec), pages);
    cJSON_ArrayForEach(o, rec)
    {
        CHECK_STR(h_jstr(o, "provider"), "twelvedata");
        CHECK_STR(h_jstr(o, "timespan"), span);
        /* This marketsim answers uncompressed: extract compresses with zstd. */
        CHECK_STR(h_jstr(o, "encoding"), "zstd");
        CHECK(strstr(h_jstr(o, "uri"), ".json.zst") != NULL, "zstd object name %s",
              h_jstr(o, "uri"));
    }
    cJSON_Delete(rec);
    rec = h_get_record(stack.procs[H_TRANSFORM].port, id);
    CHECK_EQ_INT(h_jnum(rec, "records_in"), n);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), n);
    CHECK_EQ_INT(h_jnum(rec, "records_rejected"), 0);
    cJSON_Delete(rec);
    audit = get_audit(id, &a);
    CHECK_EQ_INT(h_jnum(a, "pages"), pages);
    CHECK_EQ_INT(h_jnum(a, "requests"), pages);
    CHECK_EQ_INT(h_jnum(a, "retries"), 0);
    CHECK_EQ_INT(h_jnum(a, "bars"), n);
    CHECK(h_jstr(a, "request_template") && strstr(h_jstr(a, "request_template"), "/time_series?") &&
              strstr(h_jstr(a, "request_template"), "apikey=***"),
          "the template names the path and masks the key: %s",
          h_jstr(a, "request_template") ? h_jstr(a, "request_template") : "-");
    cJSON_Delete(audit);

    check_silver(ticker, span, ws, we, bars, n, with_volume);
    check_gold(ticker, span, bars, n, with_volume);
    free(bars);
}

/* US equity minutes in winter (EST, UTC-5) over a week: two date-window pages. */
static void test_stock_winter(void)
{
    char id[TF_UUID_LEN + 1];
    int64_t first = 0;
    const char *params[1] = {"AAPL"};

    /* Monday 00:00 to Saturday 00:00 New York: 5 sessions of 390 minutes,
     * cut into chunks of 5000 minutes, the edge at 11:20 EST on Thursday. */
    run_and_check("td_aapl", "AAPL", 1, "minute", "2024-01-08T05:00:00Z", "2024-01-13T05:00:00Z", 2,
                  1, id);
    CHECK(tf_time_parse("2024-01-08T14:30:00Z", &first) == TF_OK, "parse");
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT extract(epoch FROM min(ts))::bigint FROM silver.bars"
                         " WHERE ticker = $1 AND ts < '2024-01-09'",
                         1, params),
                 first);
}

/* The same in summer (EDT, UTC-4): the session opens at 13:30Z; a window cut mid-session. */
static void test_stock_summer(void)
{
    char id[TF_UUID_LEN + 1];
    int64_t first = 0;
    const char *params[1] = {"AAPL"};

    run_and_check("td_aapl", "AAPL", 1, "minute", "2024-07-09T13:00:00Z", "2024-07-09T17:00:00Z", 1,
                  1, id);
    CHECK(tf_time_parse("2024-07-09T13:30:00Z", &first) == TF_OK, "parse");
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT extract(epoch FROM min(ts))::bigint FROM silver.bars"
                         " WHERE ticker = $1 AND ts >= '2024-07-01'",
                         1, params),
                 first);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM silver.bars WHERE ticker = $1"
                         " AND ts >= '2024-07-01'",
                         1, params),
                 210);
}

/* Forex: 15-minute bars over a weekday, dates in UTC, no volume. */
static void test_forex(void)
{
    char id[TF_UUID_LEN + 1];

    run_and_check("td_eurusd", "EUR/USD", 15, "minute", "2024-03-06T00:00:00Z",
                  "2024-03-07T00:00:00Z", 1, 0, id);
}

/* Crypto: hourly bars over a Saturday (24/7), no volume. */
static void test_crypto(void)
{
    char id[TF_UUID_LEN + 1];

    run_and_check("td_btcusd", "BTC/USD", 1, "hour", "2024-03-09T00:00:00Z", "2024-03-10T00:00:00Z",
                  1, 0, id);
}

/*
 * An exchange suffix: tickflow assumes NSE dates are Kolkata's, marketsim
 * says New York in meta. The datetimes follow meta (the bars are right),
 * and extract says the window's edges may be off.
 */
static void test_exchange_zone_from_meta(void)
{
    char id[TF_UUID_LEN + 1];

    run_and_check("td_sbin", "SBIN:NSE", 1, "minute", "2024-01-09T00:00:00Z",
                  "2024-01-10T00:00:00Z", 1, 1, id);
    CHECK(h_file_contains(stack.procs[H_EXTRACT].log,
                          "names the exchange time zone America/New_York"),
          "extract warns that meta's zone is not the one assumed");
}

/* A Saturday for a stock: Twelve Data's "no data" error is an empty window, not a failure. */
static void test_no_data_day(void)
{
    char id[TF_UUID_LEN + 1];
    const char *params[1] = {id};
    cJSON *rec;

    start_run("td_aapl", "2024-01-13T05:00:00Z", "2024-01-14T05:00:00Z", id);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 60);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "a day without bars: %s",
          rec ? h_jstr(rec, "status") : "timed out");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 0);
    cJSON_Delete(rec);
    rec = h_get_record(stack.procs[H_EXTRACT].port, id);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 0);
    CHECK(h_jstr(rec, "error") == NULL, "no error on the record");
    cJSON_Delete(rec);
    rec = h_get_record(stack.procs[H_TRANSFORM].port, id);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_in"), 0);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 0);
    cJSON_Delete(rec);
    CHECK_EQ_INT(
        h_pg_ll(stack.db, "SELECT count(*) FROM silver.bars WHERE execution_id = $1", 1, params),
        0);
}

/* Waits for the extract stage and checks it FAILED with all of needles in its error. */
static void expect_extract_failure(const char *id, const char *what, const char *const *needles)
{
    cJSON *rec = h_wait_stage(&stack, stack.procs[H_EXTRACT].port, id, 60);
    const char *err = rec ? h_jstr(rec, "error") : NULL;
    const char *params[1] = {id};
    int published = 0;

    CHECK(rec && strcmp(h_jstr(rec, "status"), "FAILED") == 0, "%s: extract %s", what,
          rec ? h_jstr(rec, "status") : "timed out");
    for (int i = 0; needles[i]; i++)
        CHECK(err && strstr(err, needles[i]), "%s: the error names \"%s\": %s", what, needles[i],
              err ? err : "-");
    CHECK(!err || !strstr(err, API_KEY), "%s: no key in the error", what);
    cJSON_Delete(rec);
    /* The failure's event out, and transform past it: it had its chance to run. */
    for (double end = h_now_s() + h_timeout(30); !published && h_now_s() < end;) {
        published = h_pg_ll(stack.db,
                            "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                            " AND stage = 'extract' AND event_published_at IS NOT NULL",
                            1, params) == 1;
        if (!published)
            h_sleep_ms(100);
    }
    CHECK(published, "%s: extract's event published", what);
    CHECK(h_wait_consumed(stack.prefix, "tickflow.bronze.v1", "transform", 30) == 0,
          "%s: transform settled extract's event", what);
    rec = h_get_record(stack.procs[H_TRANSFORM].port, id);
    CHECK(rec == NULL, "%s: nothing downstream ran", what);
    cJSON_Delete(rec);
}

/* An unknown symbol: Twelve Data's code 404 ends the ticker with its message. */
static void test_unknown_symbol(void)
{
    static const char *const needles[] = {"code 404", "**symbol** ZZZZ not found",
                                          "/time_series?symbol=ZZZZ", "apikey=***", NULL};
    char id[TF_UUID_LEN + 1];

    start_run("td_unknown", "2024-01-09T14:30:00Z", "2024-01-09T15:30:00Z", id);
    expect_extract_failure(id, "unknown symbol", needles);
}

/* An entitlement error with HTTP 200: no retry, the vendor's message on the record. */
static void test_error200(void)
{
    static const char *const needles[] = {
        "code 403", "available exclusively with pro or enterprise plans", NULL};
    char id[TF_UUID_LEN + 1];
    const cJSON *a = NULL;
    cJSON *audit;

    set_faults("{\"rules\":[{\"provider\":\"twelvedata\",\"ticker\":\"AAPL\","
               "\"fault\":\"error200\",\"times\":1}]}");
    start_run("td_aapl", "2024-01-10T14:30:00Z", "2024-01-10T15:30:00Z", id);
    expect_extract_failure(id, "error200", needles);
    audit = get_audit(id, &a);
    CHECK_EQ_INT(h_jnum(a, "requests"), 1);
    CHECK_EQ_INT(h_jnum(a, "retries"), 0);
    cJSON_Delete(audit);
    set_faults(NULL);
}

/* Throttled twice (HTTP 429, Retry-After: 1): the run waits, retries and succeeds. */
static void test_throttled(void)
{
    char id[TF_UUID_LEN + 1];
    const cJSON *a = NULL;
    cJSON *audit;

    set_faults("{\"rules\":[{\"provider\":\"twelvedata\",\"ticker\":\"AAPL\","
               "\"fault\":\"429\",\"times\":2,\"retry_after\":1}]}");
    {
        int64_t ws = 0, we = 0;
        struct ms_bar *bars = NULL;
        size_t n;
        cJSON *rec;

        CHECK(tf_time_parse("2024-01-11T14:30:00Z", &ws) == TF_OK &&
                  tf_time_parse("2024-01-11T15:30:00Z", &we) == TF_OK,
              "parse");
        n = expected_bars("AAPL", ws, we, 1, "minute", &bars);
        CHECK_EQ_INT(n, 60);
        start_run("td_aapl", "2024-01-11T14:30:00Z", "2024-01-11T15:30:00Z", id);
        rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 60);
        CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "throttled run: %s",
              rec ? h_jstr(rec, "status") : "timed out");
        cJSON_Delete(rec);
        check_silver("AAPL", "1minute", ws, we, bars, n, 1);
        free(bars);
    }
    audit = get_audit(id, &a);
    CHECK_EQ_INT(h_jnum(a, "retries"), 2);
    CHECK_EQ_INT(h_jnum(a, "requests"), 3);
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(a, "http_statuses"), "4xx"), 2);
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(a, "http_statuses"), "2xx"), 1);
    cJSON_Delete(audit);
    set_faults(NULL);
}

/*
 * Lands a hand-made page (gzip) in the lake as extract would, and appends
 * its object to objects. Returns 0 on success.
 */
static int land_page(const char *id, int pageno, const char *json, cJSON *objects)
{
    const struct h_page pg = {"twelvedata", "time_series", "TDPAGE", "1minute", "gzip", pageno};
    char key[200];
    cJSON *o;

    snprintf(key, sizeof(key), "handmade/%s-page-%04d.json.gz", id, pageno);
    o = h_lake_bronze_page(&stack, key, json, strlen(json), &pg);
    CHECK(o != NULL, "hand-made page %d landed", pageno);
    if (!o)
        return -1;
    cJSON_AddItemToArray(objects, o);
    return 0;
}

/*
 * Records a finished extract of job td_aapl for ticker TDPAGE over [ws, we)
 * whose objects are the given hand-made pages, then runs transform on it
 * over HTTP and returns transform's final record (caller deletes).
 */
static cJSON *transform_pages(const char *ws, const char *we, const char *const *pages)
{
    char id[TF_UUID_LEN + 1], body[160];
    cJSON *objects = cJSON_CreateArray();
    char *text = NULL;
    const char *params[4];
    PGresult *res;
    long status;
    cJSON *rec;

    tf_uuid_new(id);
    for (int i = 0; pages[i]; i++)
        land_page(id, i + 1, pages[i], objects);
    text = cJSON_PrintUnformatted(objects);
    params[0] = id;
    params[1] = ws;
    params[2] = we;
    params[3] = text;
    res = PQexecParams(stack.db,
                       "INSERT INTO tickflow.job_execution (execution_id, stage, job_name,"
                       " status, attempt, window_start, window_end, tickers, objects,"
                       " worker_id, started_at, finished_at, event_published_at)"
                       " VALUES ($1, 'extract', 'td_aapl', 'SUCCESS', 1, $2, $3, '{TDPAGE}',"
                       " $4::jsonb, 'handmade', now(), now(), now())",
                       4, NULL, params, NULL, NULL, 0);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "hand-made extract: %s",
          PQresultErrorMessage(res));
    PQclear(res);
    cJSON_free(text);
    cJSON_Delete(objects);
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"wait_seconds\":60}", id);
    rec = call("POST", stack.procs[H_TRANSFORM].port, "/v1/executions", body, &status);
    CHECK_EQ_INT(status, 200);
    return rec;
}

/*
 * transform's rules on a page as Twelve Data sends it by default: newest
 * first, a repeated datetime (the later copy wins), bars outside the
 * window, numbers that are not decimal strings, a datetime in the DST gap
 * (2024-03-10 02:30 never happens in New York), no volume or a null one;
 * and the vendor's "no data" body as a second page.
 */
static void test_transform_page_rules(void)
{
    static const char page[] =
        "{\"meta\":{\"symbol\":\"TDPAGE\",\"interval\":\"1min\",\"currency\":\"USD\","
        "\"exchange_timezone\":\"America/New_York\",\"exchange\":\"NASDAQ\",\"mic_code\":"
        "\"XNAS\",\"type\":\"Common Stock\"},\"values\":["
        "{\"datetime\":\"2024-03-10 05:00:00\",\"open\":\"9\",\"high\":\"9\",\"low\":\"9\","
        "\"close\":\"9\",\"volume\":\"9\"},"
        "{\"datetime\":\"2024-03-10 04:00:00\",\"open\":\"4.5\",\"high\":\"4.75\",\"low\":"
        "\"4.25\",\"close\":\"4.5\"},"
        "{\"datetime\":\"2024-03-10 03:30:00\",\"open\":\"1\",\"high\":\"1\",\"low\":\"1\","
        "\"close\":\"1\",\"volume\":\"1\"},"
        "{\"datetime\":\"2024-03-10 03:30:00\",\"open\":\"3.50000\",\"high\":\"3.75000\",\"low\":"
        "\"3.25000\",\"close\":\"3.50000\",\"volume\":\"350\"},"
        "{\"datetime\":\"2024-03-10 02:30:00\",\"open\":\"2\",\"high\":\"2\",\"low\":\"2\","
        "\"close\":\"2\",\"volume\":\"2\"},"
        "{\"datetime\":\"2024-03-10T01:50:00Z\",\"open\":\"2\",\"high\":\"2\",\"low\":\"2\","
        "\"close\":\"2\",\"volume\":\"2\"},"
        "{\"datetime\":\"2024-03-10 01:45:00\",\"open\":\"nan\",\"high\":\"2\",\"low\":\"2\","
        "\"close\":\"2\",\"volume\":\"2\"},"
        "{\"datetime\":\"2024-03-10 01:40:00\",\"open\":\"0x1p1\",\"high\":\"2\",\"low\":\"2\","
        "\"close\":\"2\",\"volume\":\"2\"},"
        "{\"datetime\":\"2024-03-10 01:35:00\",\"open\":\"2\",\"high\":\"2.5\",\"low\":\"2\","
        "\"close\":\"2.25\",\"volume\":null},"
        "{\"datetime\":\"2024-03-10 01:30:00\",\"open\":\"1.25\",\"high\":\"1.5\",\"low\":\"1e0\","
        "\"close\":\"1.5\",\"volume\":\"125.5\"}"
        "],\"status\":\"ok\"}";
    static const char no_data[] =
        "{\"code\":400,\"message\":\"No data is available on the specified dates. Try setting "
        "different start/end dates.\",\"status\":\"error\"}";
    static const char *const pages[] = {page, no_data, NULL};
    static const char *const error_pages[] = {
        "{\"code\":401,\"message\":\"**apikey** parameter is incorrect\",\"status\":\"error\"}",
        NULL};
    /* 01:30 and 01:35 EST are 06:30Z and 06:35Z; 03:30 and 04:00 EDT are 07:30Z and 08:00Z. */
    static const struct {
        const char *ts;
        double o, h, l, c, v; /* v < 0: NULL */
    } want[] = {
        {"2024-03-10T06:30:00Z", 1.25, 1.5, 1, 1.5, 125.5},
        {"2024-03-10T06:35:00Z", 2, 2.5, 2, 2.25, -1},
        {"2024-03-10T07:30:00Z", 3.5, 3.75, 3.25, 3.5, 350},
        {"2024-03-10T08:00:00Z", 4.5, 4.75, 4.25, 4.5, -1},
    };
    cJSON *rec = transform_pages("2024-03-10T06:00:00Z", "2024-03-10T09:00:00Z", pages);
    PGresult *res;

    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_in"), 10);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 4);
    CHECK_EQ_INT(h_jnum(rec, "records_rejected"), 6);
    cJSON_Delete(rec);
    res =
        PQexec(stack.db, "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                         " open, high, low, close, coalesce(volume, -1)"
                         " FROM silver.bars WHERE ticker = 'TDPAGE' ORDER BY ts");
    CHECK_EQ_INT(PQntuples(res), 4);
    for (int i = 0; i < PQntuples(res) && i < 4; i++) {
        CHECK_STR(PQgetvalue(res, i, 0), want[i].ts);
        CHECK(col(res, i, 1) == want[i].o && col(res, i, 2) == want[i].h &&
                  col(res, i, 3) == want[i].l && col(res, i, 4) == want[i].c &&
                  col(res, i, 5) == want[i].v,
              "bar %s: %s %s %s %s %s", want[i].ts, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
              PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
    }
    PQclear(res);

    /* An error body in bronze other than "no data" is not an empty page. */
    rec = transform_pages("2024-03-11T06:00:00Z", "2024-03-11T09:00:00Z", error_pages);
    CHECK_STR(h_jstr(rec, "status"), "FAILED");
    CHECK(h_jstr(rec, "error") && strstr(h_jstr(rec, "error"), "Twelve Data error 401"),
          "the error names the vendor's: %s", h_jstr(rec, "error") ? h_jstr(rec, "error") : "-");
    cJSON_Delete(rec);
}

/* Objects of the lake whose bytes, or inflated contents, hold the key; -1 when unlisted. */
static int lake_hits(void)
{
    cJSON *uris = h_lake_list(&stack);
    const cJSON *u;
    int hits = 0;

    if (!uris)
        return -1;
    cJSON_ArrayForEach(u, uris)
    {
        const char *uri = cJSON_GetStringValue(u);
        struct tf_buf raw, plain;

        tf_buf_init(&raw, 64u * 1024 * 1024);
        tf_buf_init(&plain, 256u * 1024 * 1024);
        /* A file gone since the listing (a writer's temporary) is skipped. */
        if (uri && h_lake_read(&stack, uri, &raw) > 0) {
            if (memmem(raw.data, raw.len, API_KEY, strlen(API_KEY)))
                hits++;
            if ((strstr(uri, ".gz") || strstr(uri, ".zst")) &&
                tf_unpack(strstr(uri, ".zst") ? "zstd" : "gzip", raw.data, raw.len, &plain) ==
                    TF_OK &&
                memmem(plain.data, plain.len, API_KEY, strlen(API_KEY)))
                hits++;
        }
        tf_buf_cleanup(&raw);
        tf_buf_cleanup(&plain);
    }
    cJSON_Delete(uris);
    return hits;
}

/* The key is in the requests only: not in logs, records, the audit or bronze. */
static void test_no_secret_anywhere(void)
{
    const char *params[1] = {API_KEY};

    for (int i = H_EXTRACT; i < H_NPROCS; i++)
        CHECK(!h_file_contains(stack.procs[i].log, API_KEY), "%s log holds the key",
              stack.procs[i].name);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution e"
                         " WHERE e::text LIKE '%' || $1 || '%'",
                         1, params),
                 0);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.extract_audit a"
                         " WHERE a::text LIKE '%' || $1 || '%'",
                         1, params),
                 0);
    CHECK(h_lake_paths_containing(&stack, "bronze/twelvedata/time_series/") > 0,
          "Twelve Data bronze pages exist");
    CHECK_EQ_INT(h_lake_paths_containing(&stack, API_KEY), 0);
    CHECK_EQ_INT(lake_hits(), 0);
}

static int add_jobs(void)
{
    return put_job("td_aapl", "AAPL", 1, "minute") | put_job("td_eurusd", "EUR/USD", 15, "minute") |
           put_job("td_btcusd", "BTC/USD", 1, "hour") |
           put_job("td_sbin", "SBIN:NSE", 1, "minute") | put_job("td_unknown", "ZZZZ", 1, "minute");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Without gzip transfer: bronze pages take extract's own zstd path. */
    static const char *const env[] = {"TICKFLOW_MARKETSIM_GZIP=0", NULL};

    if (h_stack_start(&stack, "twelvedata", API_KEY, SEED, env) == 0 && add_jobs() == 0) {
        test_stock_winter();
        test_stock_summer();
        test_forex();
        test_crypto();
        test_exchange_zone_from_meta();
        test_no_data_day();
        test_unknown_symbol();
        test_error200();
        test_throttled();
        test_transform_page_rules();
        test_no_secret_anywhere();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir[0] ? stack.dir : ".run/test");
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
