/*
 * polygon.c - Polygon.io aggregates: one request per page, next_url
 * followed with the key added again, each page landed in bronze exactly
 * as received. Success is HTTP 200 with status OK or DELAYED; 429, 5xx,
 * transport errors and truncated bodies are retried with backoff.
 *
 * The API key goes into the URL sent and nowhere else: log lines, errors
 * and objects name the request by its path without the query.
 */
#include "extract.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "tf/buf.h"
#include "tf/json.h"
#include "tf/time.h"

#define MAX_TRIES       5
#define MAX_PAGE_BYTES  (256u * 1024 * 1024)
#define MAX_RETRY_AFTER 120

struct page {
    struct tf_buf body;
    long status;
    long retry_after; /* seconds, from a Retry-After header; -1 when none */
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct page *pg = ud;

    if (tf_buf_append(&pg->body, data, size * n) != TF_OK)
        return 0; /* over the cap: curl reports a write error */
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct page *pg = ud;
    size_t len = size * n;

    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char *end = NULL;
        long v = strtol(data + 12, &end, 10);
        if (end != data + 12 && v >= 0)
            pg->retry_after = v > MAX_RETRY_AFTER ? MAX_RETRY_AFTER : v;
    }
    return len;
}

/* Sleeps up to ms, in short steps so that a drain or a lost lease ends it. */
static enum tf_rc pause_ms(const struct tf_run *run, long ms)
{
    for (long slept = 0; slept < ms; slept += 100) {
        struct timespec ts = {0, 100 * 1000000L};
        enum tf_rc rc = tf_run_check(run);

        if (rc != TF_OK)
            return rc;
        nanosleep(&ts, NULL);
    }
    return TF_OK;
}

/* libcurl's progress callback: abort the transfer when the run must stop. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return tf_run_check(ud) != TF_OK;
}

/* Exponential backoff with full jitter: 0..(250 ms * 2^try). */
static long backoff_ms(int try)
{
    unsigned int r = 0;
    long cap = 250L << (try < 6 ? try : 6);

    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (unsigned int)try * 7919u;
    return (long)(r % (unsigned long)cap) + 50;
}

/* The path of a URL without scheme, host and query, for logs and errors. */
static void url_path(const char *url, char *out, size_t outlen)
{
    const char *p = strstr(url, "://");
    size_t n;

    p = p ? strchr(p + 3, '/') : url;
    if (!p)
        p = "/";
    n = strcspn(p, "?");
    snprintf(out, outlen, "%.*s", (int)n, p);
}

/* Polygon's error text: "error" or "message", whichever the body has. */
static const char *body_error(const cJSON *root)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");

    if (!cJSON_IsString(e))
        e = cJSON_GetObjectItemCaseSensitive(root, "message");
    return cJSON_IsString(e) ? e->valuestring : NULL;
}

/*
 * GETs url (key included) into pg, retrying what is worth retrying.
 * Returns TF_OK with a parsed body (*root) that reports success.
 */
static enum tf_rc fetch_page(struct tf_run *run, CURL *curl, const char *url, const char *what,
                             struct page *pg, cJSON **root)
{
    char reason[256] = "";

    *root = NULL;
    for (int try = 1; try <= MAX_TRIES; try++) {
        CURLcode cc;
        const char *status;

        tf_buf_reset(&pg->body);
        pg->status = 0;
        pg->retry_after = -1;
        curl_easy_setopt(curl, CURLOPT_URL, url);
        cc = curl_easy_perform(curl);
        if (cc == CURLE_OK)
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &pg->status);
        if (cc == CURLE_ABORTED_BY_CALLBACK)
            return tf_run_check(run);
        if (cc != CURLE_OK) {
            snprintf(reason, sizeof(reason), "%s", curl_easy_strerror(cc));
        } else if (pg->status == 429 || pg->status >= 500) {
            snprintf(reason, sizeof(reason), "HTTP %ld", pg->status);
        } else {
            *root = cJSON_ParseWithLength(pg->body.data ? pg->body.data : "", pg->body.len);
            if (!*root && pg->status == 200) {
                snprintf(reason, sizeof(reason), "HTTP 200 with a body that is not JSON");
            } else if (pg->status != 200) {
                const char *msg = *root ? body_error(*root) : NULL;
                tf_run_fail(run, "%s: HTTP %ld: %s", what, pg->status,
                            msg ? msg : "no error message");
                cJSON_Delete(*root);
                *root = NULL;
                return TF_ERR_UPSTREAM;
            } else {
                status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*root, "status"));
                if (status && (strcmp(status, "OK") == 0 || strcmp(status, "DELAYED") == 0))
                    return TF_OK;
                tf_run_fail(run, "%s: status %s: %s", what, status ? status : "(none)",
                            body_error(*root) ? body_error(*root) : "no error message");
                cJSON_Delete(*root);
                *root = NULL;
                return TF_ERR_UPSTREAM;
            }
        }
        if (try < MAX_TRIES) {
            long wait = pg->retry_after >= 0 ? pg->retry_after * 1000 : backoff_ms(try);
            tf_log_warn(&run->log, "%s: %s; retry %d/%d in %ld ms", what, reason, try,
                        MAX_TRIES - 1, wait);
            enum tf_rc prc = pause_ms(run, wait);
            if (prc != TF_OK)
                return prc;
        }
    }
    tf_run_fail(run, "%s: %s after %d tries", what, reason, MAX_TRIES);
    return TF_ERR_UPSTREAM;
}

/* Replaces characters that do not belong in a path segment. */
static void ticker_segment(const char *ticker, char *out, size_t outlen)
{
    size_t i = 0;

    for (; ticker[i] && i + 1 < outlen; i++) {
        char c = ticker[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
}

static enum tf_rc land_page(struct tf_run *run, const struct extract_job *job, const char *ticker,
                            int pageno, const struct page *pg, const cJSON *root, long long *bars)
{
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    const char *request_id = tf_json_str(root, "request_id");
    struct tf_lake_obj obj;
    char date[16], seg[64], key[512], span[32], err[256];
    cJSON *o = NULL;
    enum tf_rc rc;

    *bars = cJSON_IsArray(results) ? cJSON_GetArraySize(results) : 0;
    tf_time_format_date(run->window_start, date, sizeof(date));
    ticker_segment(ticker, seg, sizeof(seg));
    /* Each attempt writes its own objects: a vendor answers a repeated
     * request with other bytes (a new request_id, late bars). */
    snprintf(key, sizeof(key),
             "bronze/polygon/%s/date=%s/job=%s/exec=%s/attempt=%d/ticker=%s/page-%04d.json",
             job->dataset, date, run->job_name, run->execution_id, run->attempt, seg, pageno);
    rc = tf_lake_put(tf_svc_lake(run->svc), key, pg->body.data ? pg->body.data : "", pg->body.len,
                     &obj, err, sizeof(err));
    if (rc != TF_OK) {
        tf_run_fail(run, "bronze write failed: %s", err);
        return rc;
    }
    snprintf(span, sizeof(span), "%ld%s", job->multiplier, job->timespan);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "uri", obj.uri);
    cJSON_AddNumberToObject(o, "bytes", (double)obj.bytes);
    cJSON_AddNumberToObject(o, "records", (double)*bars);
    cJSON_AddStringToObject(o, "sha256", obj.sha256);
    cJSON_AddStringToObject(o, "provider", "polygon");
    cJSON_AddStringToObject(o, "dataset", job->dataset);
    cJSON_AddStringToObject(o, "ticker", ticker);
    cJSON_AddStringToObject(o, "timespan", span);
    cJSON_AddNumberToObject(o, "page", pageno);
    cJSON_AddNumberToObject(o, "http_status", (double)pg->status);
    if (request_id)
        cJSON_AddStringToObject(o, "vendor_request_id", request_id);
    cJSON_AddItemToArray(run->objects, o);
    return TF_OK;
}

/* base + the path and query of next_url + the key, in buf. */
static enum tf_rc next_page_url(const char *base, const char *next, const char *key_q,
                                struct tf_buf *buf)
{
    const char *p = strstr(next, "://");
    enum tf_rc rc;

    p = p ? strchr(p + 3, '/') : next;
    if (!p || *p != '/')
        return TF_ERR_UPSTREAM;
    tf_buf_reset(buf);
    rc = tf_buf_printf(buf, "%s%s%s%s", base, p, strchr(p, '?') ? "&" : "?", key_q);
    return rc;
}

enum tf_rc extract_polygon(struct tf_run *run, const struct extract_job *job)
{
    const struct tf_svc_cfg *cfg = tf_svc_cfg(run->svc);
    const cJSON *tickers = cJSON_GetObjectItemCaseSensitive(run->record, "tickers");
    const cJSON *t;
    struct page pg;
    struct tf_buf url;
    char *key_q = NULL;
    char base[512];
    enum tf_rc rc = TF_OK;
    CURL *curl = NULL;
    size_t blen;
    struct curl_slist *hdrs = NULL;
    char rid[100];

    if (!cfg->polygon_key || !*cfg->polygon_key) {
        tf_run_fail(run, "POLYGON_API_KEY is not set");
        return TF_ERR_INVALID;
    }
    snprintf(base, sizeof(base), "%s", cfg->polygon_base);
    blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        base[--blen] = '\0';
    curl = curl_easy_init();
    tf_buf_init(&pg.body, MAX_PAGE_BYTES);
    tf_buf_init(&url, 8192);
    if (!curl) {
        tf_run_fail(run, "cannot create an HTTP client");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    {
        char *esc = curl_easy_escape(curl, cfg->polygon_key, 0);
        size_t n = esc ? strlen(esc) + 8 : 0;
        key_q = esc ? malloc(n + 1) : NULL;
        if (key_q)
            snprintf(key_q, n + 1, "apiKey=%s", esc);
        curl_free(esc);
    }
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", run->execution_id);
    hdrs = curl_slist_append(hdrs, rid);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &pg);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &pg);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "tickflow-extract/1");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, run);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);

    cJSON_ArrayForEach(t, tickers)
    {
        const char *ticker = cJSON_GetStringValue(t);
        long long ticker_bars = 0;
        int pageno = 1;

        if (!ticker)
            continue;
        tf_buf_reset(&url);
        rc = tf_buf_printf(&url,
                           "%s/v2/aggs/ticker/%s/range/%ld/%s/%lld/%lld?adjusted=%s"
                           "&sort=asc&limit=%ld&%s",
                           base, ticker, job->multiplier, job->timespan,
                           (long long)run->window_start * 1000,
                           (long long)run->window_end * 1000 - 1, job->adjusted ? "true" : "false",
                           job->page_limit, key_q);
        while (rc == TF_OK) {
            cJSON *root = NULL;
            const char *next;
            char path[512], what[600];
            long long bars = 0;

            url_path(url.data, path, sizeof(path));
            snprintf(what, sizeof(what), "GET %s page %d", path, pageno);
            rc = fetch_page(run, curl, url.data, what, &pg, &root);
            if (rc != TF_OK)
                break;
            rc = land_page(run, job, ticker, pageno, &pg, root, &bars);
            next = tf_json_str(root, "next_url");
            if (rc == TF_OK && next)
                rc = next_page_url(base, next, key_q, &url);
            cJSON_Delete(root);
            ticker_bars += bars;
            if (rc != TF_OK || !next)
                break;
            pageno++;
            rc = tf_run_check(run);
        }
        if (rc != TF_OK) {
            if (!run->error[0])
                tf_run_fail(run, "ticker %s: %s", ticker, tf_rc_str(rc));
            break;
        }
        run->records_in += ticker_bars;
        run->records_out += ticker_bars;
        tf_log_info(&run->log, "ticker fetched ticker=%s pages=%d bars=%lld", ticker, pageno,
                    ticker_bars);
        rc = tf_run_check(run);
        if (rc != TF_OK)
            break;
    }
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    tf_buf_cleanup(&pg.body);
    tf_buf_cleanup(&url);
    free(key_q);
    return rc;
}
