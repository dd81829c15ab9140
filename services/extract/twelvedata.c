/*
 * twelvedata.c - Twelve Data's time_series as an extract provider: a
 * window cut into chunks of at most 5000 bars, each chunk's edges in the
 * exchange's zone; errors read from the body whatever the HTTP status.
 * docs/ARCHITECTURE.md (Extraction) says why.
 */
#include "extract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/json.h"
#include "tf/time.h"
#include "tf/tz.h"

/* The most bars one time_series answer holds. */
#define OUTPUTSIZE 5000

/* The start of Twelve Data's message for an empty window (code 400). */
#define NO_DATA "No data is available on the specified dates"

/* clang-format off */
static const struct {
    const char *timespan;
    long multiplier;
    const char *name;
} intervals[] = {
    {"minute", 1, "1min"}, {"minute", 5, "5min"}, {"minute", 15, "15min"},
    {"minute", 30, "30min"}, {"minute", 45, "45min"},
    {"hour", 1, "1h"}, {"hour", 2, "2h"}, {"hour", 4, "4h"},
    {"day", 1, "1day"},
};

/* Exchange suffixes ("SBIN:NSE") whose zone is not New York's. */
static const struct {
    const char *exchange;
    const char *zone;
} exchange_zones[] = {
    {"NSE",  "Asia/Kolkata"},   {"BSE",  "Asia/Kolkata"},
    {"LSE",  "Europe/London"},  {"XETR", "Europe/Berlin"},
    {"TSX",  "America/Toronto"}, {"ASX", "Australia/Sydney"},
    {"HKEX", "Asia/Hong_Kong"}, {"JPX",  "Asia/Tokyo"},
};
/* clang-format on */

/* Twelve Data's name of the job's bar size, or NULL when it has none. */
static const char *interval_name(const struct extract_job *job)
{
    for (size_t i = 0; i < TF_ARRAY_LEN(intervals); i++) {
        if (intervals[i].multiplier == job->multiplier &&
            strcmp(intervals[i].timespan, job->timespan) == 0)
            return intervals[i].name;
    }
    return NULL;
}

/* The zone Twelve Data is assumed to read a symbol's start and end dates in. */
static const char *assumed_zone(const char *ticker)
{
    const char *colon = strchr(ticker, ':');

    if (strchr(ticker, '/'))
        return "UTC";
    for (size_t i = 0; colon && i < TF_ARRAY_LEN(exchange_zones); i++) {
        if (strcmp(colon + 1, exchange_zones[i].exchange) == 0)
            return exchange_zones[i].zone;
    }
    return "America/New_York";
}

/* The wall-clock reading of the instant utc in tz, "YYYY-MM-DD HH:MM:SS" (out >= 20). */
static void local_datetime(const struct tf_tz *tz, int64_t utc, char *out, size_t outlen)
{
    tf_time_format_wall(utc + tf_tz_offset(tz, utc), out, outlen);
}

static enum extract_verdict judge(long status, const cJSON *root, long long *bars, char *why,
                                  size_t whylen)
{
    const char *st = tf_json_str(root, "status");
    const char *msg = tf_json_str(root, "message");
    const cJSON *code_item = cJSON_GetObjectItemCaseSensitive(root, "code");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(root, "values");
    long code = tf_json_num_long(code_item, 0);

    if (!root) {
        snprintf(why, whylen, "HTTP %ld with a body that is not JSON%s", status,
                 status == 200 ? " (cut short?)" : "");
        return status == 200 || status == 429 || status >= 500 ? EXTRACT_PAGE_RETRY
                                                               : EXTRACT_PAGE_FAIL;
    }
    if ((st && strcmp(st, "error") == 0) || (cJSON_IsNumber(code_item) && !values)) {
        if (status != 200)
            snprintf(why, whylen, "HTTP %ld, code %ld: %s", status, code,
                     msg ? msg : "no error message");
        else
            snprintf(why, whylen, "code %ld: %s", code, msg ? msg : "no error message");
        if (code == 429 || status == 429 || code >= 500 || status >= 500)
            return EXTRACT_PAGE_RETRY;
        if (code == 400 && msg && strncmp(msg, NO_DATA, strlen(NO_DATA)) == 0) {
            *bars = 0; /* an empty window, not a failure */
            return EXTRACT_PAGE_OK;
        }
        return EXTRACT_PAGE_FAIL;
    }
    if (status == 429 || status >= 500) {
        snprintf(why, whylen, "HTTP %ld", status);
        return EXTRACT_PAGE_RETRY;
    }
    if (status != 200) {
        snprintf(why, whylen, "HTTP %ld with no error in the body", status);
        return EXTRACT_PAGE_FAIL;
    }
    if (!st || strcmp(st, "ok") != 0) {
        snprintf(why, whylen, "status %.40s: not a time_series answer", st ? st : "(none)");
        return EXTRACT_PAGE_FAIL;
    }
    if (!cJSON_IsArray(values)) {
        snprintf(why, whylen, "values is not a list");
        return EXTRACT_PAGE_FAIL;
    }
    *bars = cJSON_GetArraySize(values);
    return EXTRACT_PAGE_OK;
}

/*
 * Checks that the zone of a good answer's datetimes is one tickflow can
 * load, and says once per ticker when it is not the zone the request's
 * dates were written in.
 */
static enum tf_rc check_zone(struct extract_worker *w, const char *ticker, const char *assumed,
                             const cJSON *root, int *warned, const char *what, char *err,
                             size_t errlen)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    const char *zone = tf_json_str(meta, "exchange_timezone");
    const struct tf_tz *tz = NULL;

    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "values")))
        return TF_OK; /* "no data": nothing to place in time */
    if (!zone)
        zone = "UTC";
    if (tf_tz_get(zone, &tz) != TF_OK) {
        snprintf(err, errlen, "%s: unknown exchange_timezone %.64s", what, zone);
        return TF_ERR_UPSTREAM;
    }
    if (strcmp(zone, assumed) != 0 && !*warned) {
        tf_log_warn(&w->run->log,
                    "ticker=%s: Twelve Data names the exchange time zone %.64s, the request's "
                    "dates were written in %s; the window's edges may be off by the difference",
                    ticker, zone, assumed);
        *warned = 1;
    }
    return TF_OK;
}

/* The query of one chunk, without the key, into q. */
static enum tf_rc chunk_query(struct extract_worker *w, const char *esc_symbol,
                              const char *interval, const char *start, const char *end,
                              struct tf_buf *q)
{
    char *esc_start = curl_easy_escape(w->curl, start, 0);
    char *esc_end = curl_easy_escape(w->curl, end, 0);
    enum tf_rc rc = TF_ERR_NOMEM;

    tf_buf_reset(q);
    if (esc_start && esc_end)
        rc = tf_buf_printf(q,
                           "/time_series?symbol=%s&interval=%s&start_date=%s&end_date=%s"
                           "&order=asc&outputsize=%d",
                           esc_symbol, interval, esc_start, esc_end, OUTPUTSIZE);
    curl_free(esc_start);
    curl_free(esc_end);
    return rc;
}

static enum tf_rc fetch_ticker(struct extract_worker *w, const char *ticker, char *err,
                               size_t errlen)
{
    const struct tf_run *run = w->run;
    const char *interval = interval_name(w->job);
    const char *assumed = assumed_zone(ticker);
    int64_t bar = tf_timespan_seconds(w->job->timespan, w->job->multiplier);
    const struct tf_tz *tz = NULL;
    char *esc_symbol = NULL; /* owned: curl_free at out */
    char *esc_key = NULL;    /* owned: curl_free at out */
    struct tf_buf query, url;
    enum tf_rc rc;
    int warned = 0;
    int pageno = 1;

    tf_buf_init(&query, 4096);
    tf_buf_init(&url, 8192);
    if (!w->api_key || !*w->api_key) {
        snprintf(err, errlen, "TWELVEDATA_API_KEY is not set");
        rc = TF_ERR_INVALID;
        goto out;
    }
    if (!interval || bar <= 0) {
        snprintf(err, errlen, "Twelve Data has no %ld %s bars", w->job->multiplier,
                 w->job->timespan);
        rc = TF_ERR_INVALID;
        goto out;
    }
    rc = tf_tz_get(assumed, &tz);
    if (rc != TF_OK) {
        snprintf(err, errlen, "time zone %s: %s", assumed, tf_rc_str(rc));
        goto out;
    }
    esc_symbol = curl_easy_escape(w->curl, ticker, 0);
    esc_key = curl_easy_escape(w->curl, w->api_key, 0);
    if (!esc_symbol || !esc_key) {
        snprintf(err, errlen, "out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    for (int64_t from = run->window_start; rc == TF_OK && from < run->window_end; pageno++) {
        int64_t to =
            run->window_end - from > OUTPUTSIZE * bar ? from + OUTPUTSIZE * bar : run->window_end;
        char start[32], end[32], what[700];
        cJSON *root = NULL;
        long long bars = 0;

        local_datetime(tz, from, start, sizeof(start));
        local_datetime(tz, to, end, sizeof(end));
        rc = chunk_query(w, esc_symbol, interval, start, end, &query);
        tf_buf_reset(&url);
        if (rc == TF_OK)
            rc = tf_buf_printf(&url, "%s%s&apikey=%s", w->base, query.data, esc_key);
        if (rc != TF_OK) {
            snprintf(err, errlen, "out of memory");
            break;
        }
        /* For people: the values unescaped, the key masked. */
        snprintf(what, sizeof(what),
                 "GET /time_series?symbol=%s&interval=%s&start_date=%s&end_date=%s&order=asc"
                 "&outputsize=%d&apikey=*** page %d",
                 ticker, interval, start, end, OUTPUTSIZE, pageno);
        rc = extract_get(w, url.data, what, &root, &bars, err, errlen);
        if (rc != TF_OK)
            break;
        rc = check_zone(w, ticker, assumed, root, &warned, what, err, errlen);
        if (rc == TF_OK)
            rc = extract_land(w, ticker, pageno, bars, root, err, errlen);
        cJSON_Delete(root);
        from = to;
    }
out:
    curl_free(esc_symbol);
    curl_free(esc_key);
    tf_buf_cleanup(&query);
    tf_buf_cleanup(&url);
    return rc;
}

const struct extract_provider extract_twelvedata = {
    .name = "twelvedata",
    .request_template = "/time_series?symbol={ticker}&interval={interval}"
                        "&start_date={chunk_start_local}&end_date={chunk_end_local}"
                        "&order=asc&outputsize=5000&apikey=***",
    .judge = judge,
    .ticker = fetch_ticker,
};
