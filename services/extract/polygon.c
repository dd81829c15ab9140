/*
 * polygon.c - Polygon.io (Massive) aggregates as an extract provider.
 *
 * GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}
 * with from/to in epoch milliseconds (both inclusive, so to = end - 1 ms),
 * sort=asc and the job's limit; next_url is followed with the key added
 * again (Polygon leaves it out) onto our own base URL. Success is HTTP 200
 * with status OK or DELAYED; results may be absent (no bars).
 */
#include "extract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/json.h"

/* Polygon's error text: "error" or "message", whichever the body has. */
static const char *body_error(const cJSON *root)
{
    const char *e = tf_json_str(root, "error");

    if (!e)
        e = tf_json_str(root, "message");
    return e ? e : "no error message";
}

static enum extract_verdict judge(long status, const cJSON *root, long long *bars, char *why,
                                  size_t whylen)
{
    const char *st = tf_json_str(root, "status");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");

    if (status == 429 || status >= 500) {
        snprintf(why, whylen, "HTTP %ld%s%s", status, root ? ": " : "",
                 root ? body_error(root) : "");
        return EXTRACT_PAGE_RETRY;
    }
    if (!root) {
        snprintf(why, whylen, "HTTP %ld with a body that is not JSON (cut short?)", status);
        return status == 200 ? EXTRACT_PAGE_RETRY : EXTRACT_PAGE_FAIL;
    }
    if (status != 200) {
        snprintf(why, whylen, "HTTP %ld: %s", status, body_error(root));
        return EXTRACT_PAGE_FAIL;
    }
    if (!st || (strcmp(st, "OK") != 0 && strcmp(st, "DELAYED") != 0)) {
        snprintf(why, whylen, "status %s: %s", st ? st : "(none)", body_error(root));
        return EXTRACT_PAGE_FAIL;
    }
    /* Shallow answers give results as its element count. */
    if (results && !cJSON_IsNumber(results) && !cJSON_IsNull(results)) {
        snprintf(why, whylen, "results is not a list");
        return EXTRACT_PAGE_FAIL;
    }
    *bars = tf_json_num_long(results, 0);
    return EXTRACT_PAGE_OK;
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

/* base + the path and query of next_url + the key, in url. */
static enum tf_rc next_page_url(const struct extract_worker *w, const char *next, const char *key_q,
                                struct tf_buf *url)
{
    const char *p = strstr(next, "://");

    p = p ? strchr(p + 3, '/') : next;
    if (!p || *p != '/')
        return TF_ERR_UPSTREAM;
    tf_buf_reset(url);
    return tf_buf_printf(url, "%s%s%s%s", w->base, p, strchr(p, '?') ? "&" : "?", key_q);
}

static enum tf_rc fetch_ticker(struct extract_worker *w, const char *ticker, char *err,
                               size_t errlen)
{
    const struct tf_run *run = w->run;
    struct tf_buf url;
    char *key_q = NULL;
    char *esc = NULL;
    enum tf_rc rc;
    int pageno = 1;

    if (!w->api_key || !*w->api_key) {
        snprintf(err, errlen, "POLYGON_API_KEY is not set");
        return TF_ERR_INVALID;
    }
    tf_buf_init(&url, 16384);
    esc = curl_easy_escape(w->curl, w->api_key, 0);
    rc = esc ? tf_buf_printf(&url, "apiKey=%s", esc) : TF_ERR_NOMEM;
    key_q = rc == TF_OK ? tf_buf_take(&url) : NULL;
    curl_free(esc);
    if (!key_q) {
        snprintf(err, errlen, "out of memory");
        tf_buf_cleanup(&url);
        return TF_ERR_NOMEM;
    }
    rc = tf_buf_printf(&url,
                       "%s/v2/aggs/ticker/%s/range/%ld/%s/%lld/%lld?adjusted=%s&sort=asc"
                       "&limit=%ld&%s",
                       w->base, ticker, w->job->multiplier, w->job->timespan,
                       (long long)run->window_start * 1000, (long long)run->window_end * 1000 - 1,
                       w->job->adjusted ? "true" : "false", w->job->page_limit, key_q);
    while (rc == TF_OK) {
        cJSON *root = NULL;
        const char *next;
        char path[512], what[600];
        long long bars = 0;

        url_path(url.data, path, sizeof(path));
        snprintf(what, sizeof(what), "GET %s page %d", path, pageno);
        rc = extract_get(w, url.data, what, &root, &bars, err, errlen);
        if (rc != TF_OK)
            break;
        rc = extract_land(w, ticker, pageno, bars, root, err, errlen);
        next = tf_json_str(root, "next_url");
        if (rc == TF_OK && next) {
            rc = next_page_url(w, next, key_q, &url);
            if (rc != TF_OK)
                snprintf(err, errlen, "%s: next_url has no path", what);
        }
        cJSON_Delete(root);
        if (rc != TF_OK || !next)
            break;
        pageno++;
    }
    free(key_q);
    tf_buf_cleanup(&url);
    return rc;
}

const struct extract_provider extract_polygon = {
    .name = "polygon",
    .shallow = 1,
    .request_template = "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from_ms}/"
                        "{to_ms}?adjusted={adjusted}&sort=asc&limit={page_limit}&apiKey=***",
    .judge = judge,
    .ticker = fetch_ticker,
};
