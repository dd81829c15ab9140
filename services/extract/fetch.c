/*
 * fetch.c - the provider-independent part of an extraction: worker threads
 * take tickers in turn, extract_get() asks and retries, extract_judge()
 * reads an answer, extract_land() lands it in bronze. The API key is only
 * ever in the URL handed to libcurl. docs/ARCHITECTURE.md (Extraction).
 */
#include "extract.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "tf/gz.h"
#include "tf/jscan.h"
#include "tf/json.h"
#include "tf/pg.h"
#include "tf/time.h"

#define MAX_TRIES       5
#define MAX_PAGE_BYTES  (256u * 1024 * 1024)
#define MAX_RETRY_AFTER 120
#define MAX_REQUEST_IDS 1000
#define MAX_WORKERS     64

struct extract_fetch {
    struct tf_run *run;
    const struct extract_job *job;
    const struct extract_provider *provider;
    const char **tickers;
    int ntickers;
    atomic_int next;
    struct tf_lake_batch *bronze; /* the attempt's pages, made durable together */

    char bucket[64]; /* the provider key's request budget */
    long per_minute;
    pthread_mutex_t conn_mu; /* run->conn is shared by the workers for the budget */
    int stock;               /* requests taken from the budget, not yet made (conn_mu) */
    long long quota_wait_ms;

    pthread_mutex_t mu; /* guards everything below and run->objects */
    long requests, retries, pages, transport_errors;
    long long bars, raw_bytes, stored_bytes;
    long by_status[6]; /* 1xx .. 5xx by hundreds; [0] unused */
    cJSON *request_ids;
    int nrequest_ids;
    cJSON *outcomes; /* {"AAPL": {"pages": 1, "bars": 390, "error": null}} */
    int failed;
    char first_error[512];
    enum tf_rc stop; /* TF_ERR_LEASE or TF_ERR_DRAINING once seen */
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct extract_worker *w = ud;

    if (tf_buf_append(&w->body, data, size * n) != TF_OK)
        return 0; /* over the cap: curl reports a write error */
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct extract_worker *w = ud;
    size_t len = size * n;

    /* Only gzip is asked for; any other coding is left undecoded and
     * fails the JSON checks like a damaged body. */
    if (len > 17 && strncasecmp(data, "Content-Encoding:", 17) == 0) {
        const char *v = data + 17;
        while (*v == ' ' || *v == '\t')
            v++;
        w->gzipped = strncasecmp(v, "gzip", 4) == 0;
    }
    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char *end = NULL;
        long v = strtol(data + 12, &end, 10);
        if (end != data + 12 && v >= 0)
            w->retry_after = v > MAX_RETRY_AFTER ? MAX_RETRY_AFTER : v;
    }
    return len;
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

/* Exponential backoff with full jitter: 50 ms + 0..(250 ms * 2^try). */
static long backoff_ms(int try)
{
    unsigned int r = 0;
    long cap = 250L << (try < 6 ? try : 6);

    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (unsigned int)try * 7919u;
    return (long)(r % (unsigned long)cap) + 50;
}

static void count_answer(struct extract_fetch *f, CURLcode cc, long status)
{
    pthread_mutex_lock(&f->mu);
    f->requests++;
    if (cc != CURLE_OK)
        f->transport_errors++;
    else if (status >= 100 && status < 600)
        f->by_status[status / 100]++;
    pthread_mutex_unlock(&f->mu);
}

/*
 * The top-level members of an answer as a small JSON object, arrays and
 * objects as their element counts; NULL when the answer is not a well-formed
 * JSON object. No bar is converted: transform does that once.
 */
static cJSON *shallow_root(const char *text, size_t len)
{
    struct tf_jmember m[48];
    int n = tf_jscan_object(text, len, m, 48);
    cJSON *root;

    if (n < 0)
        return NULL;
    root = cJSON_CreateObject();
    for (int i = 0; root && i < n && i < 48; i++) {
        char key[128];
        char *val = NULL;
        cJSON *item = NULL;

        if (m[i].keylen >= sizeof(key))
            continue;
        memcpy(key, m[i].key, m[i].keylen);
        key[m[i].keylen] = '\0';
        switch (m[i].type) {
        case TF_J_STRING:
            val = malloc(m[i].vallen + 1);
            if (val && tf_jscan_string(&m[i], val, m[i].vallen + 1) >= 0)
                item = cJSON_CreateString(val);
            free(val);
            break;
        case TF_J_NUMBER: {
            char num[64];
            snprintf(num, sizeof(num), "%.*s", (int)m[i].vallen, m[i].val);
            item = cJSON_CreateNumber(strtod(num, NULL));
            break;
        }
        case TF_J_TRUE:
        case TF_J_FALSE:
            item = cJSON_CreateBool(m[i].type == TF_J_TRUE);
            break;
        case TF_J_NULL:
            item = cJSON_CreateNull();
            break;
        case TF_J_ARRAY:
        case TF_J_OBJECT:
            item = cJSON_CreateNumber((double)m[i].count);
            break;
        }
        if (item)
            cJSON_AddItemToObject(root, key, item);
    }
    return root;
}

enum extract_verdict extract_judge(const struct extract_provider *provider, long status,
                                   const char *text, size_t len, cJSON **root, long long *bars,
                                   char *why, size_t whylen)
{
    *root = provider->shallow ? shallow_root(text, len) : cJSON_ParseWithLength(text, len);
    return provider->judge(status, *root, bars, why, whylen);
}

/* Shows on the stage record what the run waits for (NULL clears it). */
static void set_detail(struct extract_fetch *f, const char *detail)
{
    /* Only while the run holds its lease; a lost one is found by tf_run_check. */
    enum tf_rc rc =
        tf_exec_set_detail(f->run->conn, f->run->execution_id, "extract", f->run->attempt, detail);

    (void)rc;
}

/*
 * Waits until the provider key's budget allows one more request. A run
 * whose budget is spent waits, visibly (the record's detail), instead of
 * failing.
 */
static enum tf_rc quota_wait(struct extract_worker *w, char *err, size_t errlen)
{
    struct extract_fetch *f = w->fetch;
    int shown = 0;

    for (;;) {
        enum tf_rc rc = tf_run_check(w->run);
        long wait;

        if (rc != TF_OK)
            return rc;
        pthread_mutex_lock(&f->conn_mu);
        if (f->stock > 0) {
            f->stock--;
            pthread_mutex_unlock(&f->conn_mu);
            return TF_OK;
        }
        /* A large budget is taken a few requests at a time (at most half a
         * second's worth), a free tier's one at a time. */
        {
            int want = (int)(f->per_minute / 120), granted = 0;
            if (want > 32)
                want = 32;
            wait = extract_quota_take(w->run->conn, f->bucket, f->per_minute, want, &granted);
            if (wait == 0 && granted > 1)
                f->stock += granted - 1;
        }
        if (wait >= 500 && !shown) {
            char detail[160];
            snprintf(detail, sizeof(detail),
                     "waiting for the %s request budget (%ld a minute): next request in %ld ms",
                     f->provider->name, f->per_minute, wait);
            set_detail(f, detail);
            shown = 1;
        } else if (wait == 0 && shown) {
            set_detail(f, NULL);
        }
        pthread_mutex_unlock(&f->conn_mu);
        if (wait == 0)
            return TF_OK;
        if (wait < 0) {
            snprintf(err, errlen, "cannot reach the request budget in PostgreSQL");
            return TF_ERR_DB;
        }
        if (wait > 5000)
            wait = 5000; /* ask again soon: a drain or other replicas may change things */
        pthread_mutex_lock(&f->mu);
        f->quota_wait_ms += wait;
        pthread_mutex_unlock(&f->mu);
        rc = pause_ms(w->run, wait);
        if (rc != TF_OK)
            return rc;
    }
}

enum tf_rc extract_get(struct extract_worker *w, const char *url, const char *what, cJSON **root,
                       long long *bars, char *err, size_t errlen)
{
    struct extract_fetch *f = w->fetch;
    char why[512] = "";

    *root = NULL;
    *bars = 0;
    for (int try = 1; try <= MAX_TRIES; try++) {
        enum tf_rc rc = tf_run_check(w->run);
        enum extract_verdict verdict;
        CURLcode cc;
        long wait;

        if (rc != TF_OK)
            return rc;
        rc = quota_wait(w, err, errlen);
        if (rc != TF_OK)
            return rc;
        tf_buf_reset(&w->body);
        w->status = 0;
        w->retry_after = -1;
        w->gzipped = 0;
        w->json = &w->body;
        curl_easy_setopt(w->curl, CURLOPT_URL, url);
        cc = curl_easy_perform(w->curl);
        if (cc == CURLE_OK)
            curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
        count_answer(f, cc, w->status);
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
            rc = tf_run_check(w->run);
            return rc != TF_OK ? rc : TF_ERR_DRAINING;
        }
        if (cc == CURLE_OK && w->gzipped) {
            /* The body is kept as it came; its JSON is read from a copy. */
            tf_buf_reset(&w->text);
            if (tf_gunzip(w->body.data ? w->body.data : "", w->body.len, &w->text) != TF_OK)
                cc = CURLE_BAD_CONTENT_ENCODING;
            w->json = &w->text;
        }
        if (cc != CURLE_OK) {
            snprintf(why, sizeof(why), "%s", curl_easy_strerror(cc));
        } else {
            const char *json = w->json->data ? w->json->data : "";
            verdict = extract_judge(f->provider, w->status, json, w->json->len, root, bars, why,
                                    sizeof(why));
            if (verdict == EXTRACT_PAGE_OK)
                return TF_OK;
            cJSON_Delete(*root);
            *root = NULL;
            if (verdict == EXTRACT_PAGE_FAIL) {
                snprintf(err, errlen, "%s: %s", what, why);
                return TF_ERR_UPSTREAM;
            }
        }
        if (try == MAX_TRIES)
            break;
        wait = w->retry_after >= 0 ? w->retry_after * 1000 : backoff_ms(try);
        pthread_mutex_lock(&f->mu);
        f->retries++;
        pthread_mutex_unlock(&f->mu);
        tf_log_warn(&w->run->log, "%s: %s; retry %d/%d in %ld ms", what, why, try, MAX_TRIES - 1,
                    wait);
        rc = pause_ms(w->run, wait);
        if (rc != TF_OK)
            return rc;
    }
    snprintf(err, errlen, "%s: %s after %d tries", what, why, MAX_TRIES);
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

/* The attempt's bronze folder: every page of the attempt lands in it. */
static void attempt_folder(const struct extract_fetch *f, char *out, size_t outlen)
{
    const struct tf_run *run = f->run;
    char date[16];

    tf_time_format_date(run->window_start, date, sizeof(date));
    snprintf(out, outlen, "bronze/%s/%s/date=%s/job=%s/exec=%s/attempt=%d", f->provider->name,
             f->job->dataset, date, run->job_name, run->execution_id, run->attempt);
}

enum tf_rc extract_land(struct extract_worker *w, const char *ticker, int pageno, long long bars,
                        const cJSON *root, char *err, size_t errlen)
{
    struct extract_fetch *f = w->fetch;
    struct tf_run *run = w->run;
    const char *request_id = tf_json_str(root, "request_id");
    const struct tf_buf *stored = &w->packed;
    const char *encoding = "zstd", *suffix = "zst";
    struct tf_lake_obj obj;
    char folder[400], seg[64], key[512], span[32], why[256];
    cJSON *o = NULL;
    enum tf_rc rc;

    /* A gzip answer is landed as it came; an identity one is compressed. */
    if (w->gzipped) {
        stored = &w->body;
        encoding = "gzip";
        suffix = "gz";
    } else {
        tf_buf_reset(&w->packed);
        rc = tf_zstd_compress(w->zstd, w->body.data ? w->body.data : "", w->body.len, &w->packed);
        if (rc != TF_OK) {
            snprintf(err, errlen, "cannot compress page %d of %s", pageno, ticker);
            return rc;
        }
    }
    ticker_segment(ticker, seg, sizeof(seg));
    /* Each attempt writes its own objects: a vendor answers a repeated
     * request with other bytes (a new request id, late bars). One folder
     * per attempt, filled by one batch. */
    attempt_folder(f, folder, sizeof(folder));
    snprintf(key, sizeof(key), "%s/%s.page-%04d.json.%s", folder, seg, pageno, suffix);
    rc = tf_lake_batch_put(f->bronze, key, stored->data ? stored->data : "", stored->len, &obj, why,
                           sizeof(why));
    if (rc != TF_OK) {
        snprintf(err, errlen, "bronze write failed: %s", why);
        return rc;
    }
    snprintf(span, sizeof(span), "%ld%s", w->job->multiplier, w->job->timespan);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "uri", obj.uri);
    cJSON_AddNumberToObject(o, "bytes", (double)obj.bytes);
    cJSON_AddNumberToObject(o, "raw_bytes", (double)w->json->len);
    cJSON_AddNumberToObject(o, "records", (double)bars);
    cJSON_AddStringToObject(o, "sha256", obj.sha256);
    cJSON_AddStringToObject(o, "encoding", encoding);
    cJSON_AddStringToObject(o, "provider", f->provider->name);
    cJSON_AddStringToObject(o, "dataset", w->job->dataset);
    cJSON_AddStringToObject(o, "ticker", ticker);
    cJSON_AddStringToObject(o, "timespan", span);
    cJSON_AddNumberToObject(o, "page", pageno);
    cJSON_AddNumberToObject(o, "http_status", (double)w->status);
    if (request_id)
        cJSON_AddStringToObject(o, "vendor_request_id", request_id);
    pthread_mutex_lock(&f->mu);
    cJSON_AddItemToArray(run->objects, o);
    f->pages++;
    f->bars += bars;
    w->ticker_pages++;
    w->ticker_bars += bars;
    f->raw_bytes += (long long)w->json->len;
    f->stored_bytes += obj.bytes;
    if (request_id && f->nrequest_ids < MAX_REQUEST_IDS) {
        cJSON_AddItemToArray(f->request_ids, cJSON_CreateString(request_id));
        f->nrequest_ids++;
    }
    pthread_mutex_unlock(&f->mu);
    return TF_OK;
}

static void *worker_main(void *arg)
{
    struct extract_worker *w = arg;
    struct extract_fetch *f = w->fetch;

    for (;;) {
        int i = atomic_fetch_add(&f->next, 1);
        const char *ticker;
        char err[512] = "";
        enum tf_rc rc;
        cJSON *outcome;
        long pages;
        long long bars;

        if (i >= f->ntickers)
            break;
        ticker = f->tickers[i];
        w->ticker_pages = 0;
        w->ticker_bars = 0;
        rc = tf_run_check(w->run);
        if (rc == TF_OK)
            rc = f->provider->ticker(w, ticker, err, sizeof(err));
        pthread_mutex_lock(&f->mu);
        if (rc == TF_ERR_LEASE || rc == TF_ERR_DRAINING) {
            f->stop = rc;
            pthread_mutex_unlock(&f->mu);
            break;
        }
        pages = w->ticker_pages;
        bars = w->ticker_bars;
        outcome = cJSON_AddObjectToObject(f->outcomes, ticker);
        cJSON_AddNumberToObject(outcome, "pages", (double)pages);
        cJSON_AddNumberToObject(outcome, "bars", (double)bars);
        if (rc != TF_OK) {
            if (!err[0])
                snprintf(err, sizeof(err), "%s", tf_rc_str(rc));
            cJSON_AddStringToObject(outcome, "error", err);
            if (!f->failed++)
                snprintf(f->first_error, sizeof(f->first_error), "%s", err);
        } else {
            cJSON_AddNullToObject(outcome, "error");
        }
        pthread_mutex_unlock(&f->mu);
        if (rc != TF_OK)
            tf_log_warn(&w->run->log, "ticker failed ticker=%s: %s", ticker, err);
        else
            tf_log_info(&w->run->log, "ticker fetched ticker=%s pages=%ld bars=%lld", ticker, pages,
                        bars);
    }
    return NULL;
}

static enum tf_rc worker_init(struct extract_worker *w, struct extract_fetch *f, const char *base,
                              const char *key)
{
    char rid[100];
    size_t blen;

    memset(w, 0, sizeof(*w));
    w->fetch = f;
    w->run = f->run;
    w->job = f->job;
    w->api_key = key;
    tf_buf_init(&w->body, MAX_PAGE_BYTES);
    tf_buf_init(&w->text, MAX_PAGE_BYTES);
    w->json = &w->body;
    tf_buf_init(&w->packed, MAX_PAGE_BYTES + MAX_PAGE_BYTES / 64 + 1024);
    snprintf(w->base, sizeof(w->base), "%s", base);
    blen = strlen(w->base);
    while (blen > 0 && w->base[blen - 1] == '/')
        w->base[--blen] = '\0';
    w->zstd = tf_zstd_new(1);
    w->curl = curl_easy_init();
    if (!w->curl || !w->zstd)
        return TF_ERR_NOMEM;
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", f->run->execution_id);
    w->headers = curl_slist_append(NULL, rid);
    /* Asked for by hand, and not decoded by libcurl: a gzip answer is
     * landed in bronze byte for byte, and only read through a copy. */
    w->headers = curl_slist_append(w->headers, "Accept-Encoding: gzip");
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(w->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(w->curl, CURLOPT_HEADERDATA, w);
    curl_easy_setopt(w->curl, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(w->curl, CURLOPT_USERAGENT, "tickflow-extract/1");
    curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS,
                     ((const struct extract_cfg *)tf_svc_stage_cfg(f->run->svc))->timeout_ms);
    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(w->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(w->curl, CURLOPT_XFERINFODATA, f->run);
    curl_easy_setopt(w->curl, CURLOPT_NOPROGRESS, 0L);
    return TF_OK;
}

static void worker_cleanup(struct extract_worker *w)
{
    curl_slist_free_all(w->headers);
    curl_easy_cleanup(w->curl);
    tf_zstd_free(w->zstd);
    tf_buf_cleanup(&w->body);
    tf_buf_cleanup(&w->text);
    tf_buf_cleanup(&w->packed);
}

/* Writes the attempt's audit record (a drained attempt that runs again overwrites it). */
static void write_audit(struct extract_fetch *f, const char *base, int64_t started)
{
    static const char sql[] =
        "INSERT INTO tickflow.extract_audit (execution_id, attempt, job_name, provider,"
        " request_template, requests, retries, pages, bars, raw_bytes, stored_bytes,"
        " http_statuses, vendor_request_ids, tickers, started_at, quota_wait_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
        " to_timestamp($15), $16)"
        " ON CONFLICT (execution_id, attempt) DO UPDATE SET requests = EXCLUDED.requests,"
        " retries = EXCLUDED.retries, pages = EXCLUDED.pages, bars = EXCLUDED.bars,"
        " raw_bytes = EXCLUDED.raw_bytes, stored_bytes = EXCLUDED.stored_bytes,"
        " http_statuses = EXCLUDED.http_statuses,"
        " vendor_request_ids = EXCLUDED.vendor_request_ids, tickers = EXCLUDED.tickers,"
        " started_at = EXCLUDED.started_at, quota_wait_ms = EXCLUDED.quota_wait_ms,"
        " finished_at = now()";
    struct tf_run *run = f->run;
    char nums[9][24], tmpl[700];
    char *statuses = NULL, *ids = NULL, *outcomes = NULL;
    cJSON *st = cJSON_CreateObject();
    const char *params[16];
    PGresult *res;

    static const char *const classes[6] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};

    for (int i = 1; i < 6; i++) {
        if (f->by_status[i])
            cJSON_AddNumberToObject(st, classes[i], (double)f->by_status[i]);
    }
    cJSON_AddNumberToObject(st, "transport_errors", (double)f->transport_errors);
    statuses = cJSON_PrintUnformatted(st);
    ids = cJSON_PrintUnformatted(f->request_ids);
    outcomes = cJSON_PrintUnformatted(f->outcomes);
    snprintf(tmpl, sizeof(tmpl), "GET %s%s", base, f->provider->request_template);
    snprintf(nums[0], sizeof(nums[0]), "%d", run->attempt);
    snprintf(nums[1], sizeof(nums[1]), "%ld", f->requests);
    snprintf(nums[2], sizeof(nums[2]), "%ld", f->retries);
    snprintf(nums[3], sizeof(nums[3]), "%ld", f->pages);
    snprintf(nums[4], sizeof(nums[4]), "%lld", f->bars);
    snprintf(nums[5], sizeof(nums[5]), "%lld", f->raw_bytes);
    snprintf(nums[6], sizeof(nums[6]), "%lld", f->stored_bytes);
    snprintf(nums[7], sizeof(nums[7]), "%lld", (long long)started);
    snprintf(nums[8], sizeof(nums[8]), "%lld", f->quota_wait_ms);
    params[0] = run->execution_id;
    params[1] = nums[0];
    params[2] = run->job_name;
    params[3] = f->provider->name;
    params[4] = tmpl;
    params[5] = nums[1];
    params[6] = nums[2];
    params[7] = nums[3];
    params[8] = nums[4];
    params[9] = nums[5];
    params[10] = nums[6];
    params[11] = statuses ? statuses : "{}";
    params[12] = ids ? ids : "[]";
    params[13] = outcomes ? outcomes : "{}";
    params[14] = nums[7];
    params[15] = nums[8];
    res = tf_pg_exec(run->conn, sql, 16, params);
    if (!tf_pg_ok(res))
        tf_log_warn(&run->log, "audit record not written: sqlstate %s", tf_pg_sqlstate(res));
    PQclear(res);
    cJSON_free(statuses);
    cJSON_free(ids);
    cJSON_free(outcomes);
    cJSON_Delete(st);
}

enum tf_rc extract_fetch_run(struct tf_run *run, const struct extract_job *job,
                             const struct extract_provider *provider, const char *base_url,
                             const char *api_key, long concurrency)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(run->record, "tickers");
    struct extract_fetch f;
    struct extract_worker *workers = NULL;
    pthread_t *threads = NULL;
    int nworkers = 0, started = 0;
    int64_t t0 = tf_time_now();
    enum tf_rc rc = TF_OK;
    const cJSON *t;

    memset(&f, 0, sizeof(f));
    f.run = run;
    f.job = job;
    f.provider = provider;
    f.per_minute = job->rate_per_minute > 0 ? job->rate_per_minute : 1;
    {
        char digest[65];
        tf_sha256_hex(api_key ? api_key : "", api_key ? strlen(api_key) : 0, digest);
        snprintf(f.bucket, sizeof(f.bucket), "%s:%.16s", provider->name, digest);
    }
    pthread_mutex_init(&f.mu, NULL);
    pthread_mutex_init(&f.conn_mu, NULL);
    f.request_ids = cJSON_CreateArray();
    f.outcomes = cJSON_CreateObject();
    f.tickers = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*f.tickers));
    f.bronze = tf_lake_batch_new(tf_svc_lake(run->svc));
    if (!f.request_ids || !f.outcomes || !f.tickers || !f.bronze) {
        tf_run_fail(run, "out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    cJSON_ArrayForEach(t, list)
    {
        if (cJSON_IsString(t))
            f.tickers[f.ntickers++] = t->valuestring;
    }
    nworkers = (int)(concurrency < f.ntickers ? concurrency : f.ntickers);
    if (nworkers < 1)
        nworkers = 1;
    if (nworkers > MAX_WORKERS)
        nworkers = MAX_WORKERS;
    workers = calloc((size_t)nworkers, sizeof(*workers));
    threads = calloc((size_t)nworkers, sizeof(*threads));
    if (!workers || !threads) {
        tf_run_fail(run, "out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    {
        /* A stage handed back on SIGTERM runs again as the same attempt:
         * the pages its first run landed were never recorded, and would
         * stand in the way of this run's (other request ids, later bars). */
        char folder[400], why[256];
        attempt_folder(&f, folder, sizeof(folder));
        if (tf_lake_clear(tf_svc_lake(run->svc), folder, why, sizeof(why)) != TF_OK) {
            tf_run_fail(run, "bronze folder not cleared: %s", why);
            rc = TF_ERR_IO;
            goto out;
        }
    }
    for (int i = 0; i < nworkers; i++) {
        if (worker_init(&workers[i], &f, base_url, api_key) != TF_OK ||
            pthread_create(&threads[i], NULL, worker_main, &workers[i]) != 0) {
            worker_cleanup(&workers[i]);
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        worker_cleanup(&workers[i]);
    }
    run->records_in = f.bars;
    run->records_out = f.bars;
    if (f.stop == TF_OK) {
        /* The pages become durable and take their names before the record
         * that lists them commits; a drained run leaves none behind. */
        char why[256];
        if (tf_lake_batch_commit(f.bronze, why, sizeof(why)) != TF_OK) {
            tf_run_fail(run, "bronze not written: %s", why);
            rc = TF_ERR_IO;
            goto out;
        }
    }
    if (f.stop == TF_OK && started > 0)
        write_audit(&f, workers[0].base, t0);
    if (started == 0) {
        tf_run_fail(run, "cannot start a fetch worker");
        rc = TF_ERR_NOMEM;
    } else if (f.stop != TF_OK) {
        rc = f.stop;
    } else if (f.failed) {
        tf_run_fail(run, "%d of %d tickers failed; the first: %s", f.failed, f.ntickers,
                    f.first_error);
        rc = TF_ERR_UPSTREAM;
    }
out:
    free(threads);
    free(workers);
    free(f.tickers);
    tf_lake_batch_free(f.bronze);
    cJSON_Delete(f.request_ids);
    cJSON_Delete(f.outcomes);
    pthread_mutex_destroy(&f.mu);
    pthread_mutex_destroy(&f.conn_mu);
    return rc;
}

int extract_audit_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    char caps[1][128];
    const char *params[1];
    int matched;
    PGresult *res = NULL;
    cJSON *root = NULL;

    (void)svc;
    matched = tf_svc_execution_route(req, "/v1/executions/*/audit", caps[0]);
    if (matched <= 0)
        return matched < 0; /* another path, or an error already answered */
    params[0] = caps[0];
    res = tf_pg_exec(
        conn,
        "SELECT coalesce(json_agg(json_build_object('attempt', attempt, 'job_name', job_name,"
        " 'provider', provider, 'request_template', request_template, 'requests', requests,"
        " 'retries', retries, 'pages', pages, 'bars', bars, 'raw_bytes', raw_bytes,"
        " 'stored_bytes', stored_bytes, 'quota_wait_ms', quota_wait_ms,"
        " 'http_statuses', http_statuses,"
        " 'vendor_request_ids', vendor_request_ids, 'tickers', tickers,"
        " 'started_at', to_char(started_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " 'finished_at', to_char(finished_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
        " ORDER BY attempt), '[]')::text, count(*)"
        " FROM tickflow.extract_audit WHERE execution_id = $1",
        1, params);
    if (!tf_pg_ok(res)) {
        tf_http_reply_rc(req, TF_ERR_DB, "cannot read the audit");
    } else if (strcmp(PQgetvalue(res, 0, 1), "0") == 0) {
        tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "no audit for execution %s", caps[0]);
    } else {
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "execution_id", caps[0]);
        cJSON_AddItemToObject(root, "attempts", cJSON_Parse(PQgetvalue(res, 0, 0)));
        tf_http_reply_json(req, TF_HTTP_OK, root);
    }
    cJSON_Delete(root);
    PQclear(res);
    return 1;
}
