/*
 * main.c - the transform stage: for each bronze page that extract landed,
 * check its checksum, parse the bars, and upsert them into silver.bars in
 * one lease-fenced transaction, so a page read twice or an overlapping
 * window never leaves a bar twice. Triggered by tickflow.bronze.v1 events
 * or by a POST with the execution id; publishes on tickflow.silver.v1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/buf.h"
#include "tf/gz.h"
#include "tf/json.h"
#include "tf/pg.h"
#include "tf/svc.h"

#define MAX_OBJECT_BYTES (512u * 1024 * 1024)

struct bar {
    long long t;
    size_t seq; /* position in the page: among equal times the later wins */
    double o, h, l, c, v, vw;
    long long n;
    int has_vw;
    int has_n;
};

/* Columns of one page, as PostgreSQL array literals. */
struct columns {
    struct tf_buf t, o, h, l, c, v, vw, n;
};

static const char upsert_sql[] =
    "INSERT INTO silver.bars AS s (ticker, timespan, ts, open, high, low, close, volume,"
    " vwap, trades, execution_id, ingested_at)"
    " SELECT $1, $2, timestamptz 'epoch' + u.t * interval '1 millisecond', u.o, u.h, u.l, u.c,"
    " u.v, u.vw, u.n, $3::uuid, now()"
    " FROM unnest($4::bigint[], $5::float8[], $6::float8[], $7::float8[], $8::float8[],"
    " $9::float8[], $10::float8[], $11::bigint[]) AS u(t, o, h, l, c, v, vw, n)"
    " ON CONFLICT (ticker, timespan, ts) DO UPDATE SET open = EXCLUDED.open,"
    " high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,"
    " volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trades = EXCLUDED.trades,"
    " execution_id = EXCLUDED.execution_id, ingested_at = EXCLUDED.ingested_at";

static int get_num(const cJSON *bar, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(bar, key);

    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return 0;
    *out = it->valuedouble;
    return 1;
}

/* Reads one Polygon result; 0 when a required field is missing or not finite. */
static int parse_bar(const cJSON *item, struct bar *b)
{
    double t = 0, n = 0;

    memset(b, 0, sizeof(*b));
    if (!get_num(item, "t", &t) || !get_num(item, "o", &b->o) || !get_num(item, "h", &b->h) ||
        !get_num(item, "l", &b->l) || !get_num(item, "c", &b->c) || !get_num(item, "v", &b->v))
        return 0;
    b->t = (long long)t;
    b->has_vw = get_num(item, "vw", &b->vw);
    b->has_n = get_num(item, "n", &n);
    b->n = (long long)n;
    return 1;
}

static int cmp_bar(const void *a, const void *b)
{
    const struct bar *x = a;
    const struct bar *y = b;

    if (x->t != y->t)
        return (x->t > y->t) - (x->t < y->t);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static void columns_init(struct columns *c)
{
    struct tf_buf *all[] = {&c->t, &c->o, &c->h, &c->l, &c->c, &c->v, &c->vw, &c->n};

    for (size_t i = 0; i < TF_ARRAY_LEN(all); i++)
        tf_buf_init(all[i], MAX_OBJECT_BYTES);
}

static void columns_cleanup(struct columns *c)
{
    struct tf_buf *all[] = {&c->t, &c->o, &c->h, &c->l, &c->c, &c->v, &c->vw, &c->n};

    for (size_t i = 0; i < TF_ARRAY_LEN(all); i++)
        tf_buf_cleanup(all[i]);
}

/* Writes bars[0..n) as array literals; %.17g keeps every double exact. */
static enum tf_rc columns_fill(struct columns *c, const struct bar *bars, size_t n)
{
    struct tf_buf *all[] = {&c->t, &c->o, &c->h, &c->l, &c->c, &c->v, &c->vw, &c->n};
    enum tf_rc rc = TF_OK;

    for (size_t i = 0; i < TF_ARRAY_LEN(all) && rc == TF_OK; i++) {
        tf_buf_reset(all[i]);
        rc = tf_buf_puts(all[i], "{");
    }
    for (size_t i = 0; i < n && rc == TF_OK; i++) {
        const struct bar *b = &bars[i];
        const char *sep = i ? "," : "";

        rc = tf_buf_printf(&c->t, "%s%lld", sep, b->t);
        rc = rc ? rc : tf_buf_printf(&c->o, "%s%.17g", sep, b->o);
        rc = rc ? rc : tf_buf_printf(&c->h, "%s%.17g", sep, b->h);
        rc = rc ? rc : tf_buf_printf(&c->l, "%s%.17g", sep, b->l);
        rc = rc ? rc : tf_buf_printf(&c->c, "%s%.17g", sep, b->c);
        rc = rc ? rc : tf_buf_printf(&c->v, "%s%.17g", sep, b->v);
        if (rc == TF_OK)
            rc = b->has_vw ? tf_buf_printf(&c->vw, "%s%.17g", sep, b->vw)
                           : tf_buf_printf(&c->vw, "%sNULL", sep);
        if (rc == TF_OK)
            rc = b->has_n ? tf_buf_printf(&c->n, "%s%lld", sep, b->n)
                          : tf_buf_printf(&c->n, "%sNULL", sep);
    }
    for (size_t i = 0; i < TF_ARRAY_LEN(all) && rc == TF_OK; i++)
        rc = tf_buf_puts(all[i], "}");
    return rc;
}

/*
 * Parses one bronze page into bars inside the run's window, sorted and
 * deduplicated by time (the last copy of a time wins). Counts what it
 * could not use in *rejected. Returns the number of bars kept.
 */
static size_t page_bars(struct tf_run *run, const cJSON *root, struct bar **out, long long *seen,
                        long long *rejected)
{
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    int count = cJSON_IsArray(results) ? cJSON_GetArraySize(results) : 0;
    long long lo = (long long)run->window_start * 1000;
    long long hi = (long long)run->window_end * 1000;
    struct bar *bars = NULL;
    const cJSON *item;
    size_t n = 0;
    size_t k = 0;

    *out = NULL;
    if (count == 0)
        return 0;
    bars = calloc((size_t)count, sizeof(*bars));
    if (!bars)
        return 0;
    cJSON_ArrayForEach(item, results)
    {
        (*seen)++;
        if (!parse_bar(item, &bars[n]) || bars[n].t < lo || bars[n].t >= hi) {
            (*rejected)++;
            continue;
        }
        bars[n].seq = n;
        n++;
    }
    qsort(bars, n, sizeof(*bars), cmp_bar);
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && bars[k - 1].t == bars[i].t) {
            bars[k - 1] = bars[i]; /* a repeated time: keep the later copy */
            (*rejected)++;
            continue;
        }
        bars[k++] = bars[i];
    }
    *out = bars;
    return k;
}

static enum tf_rc upsert(struct tf_run *run, const char *ticker, const char *timespan,
                         struct columns *c)
{
    const char *params[11] = {ticker,    timespan,   run->execution_id, c->t.data,
                              c->o.data, c->h.data,  c->l.data,         c->c.data,
                              c->v.data, c->vw.data, c->n.data};
    PGresult *res = tf_pg_exec(run->conn, upsert_sql, 11, params);
    enum tf_rc rc = TF_OK;

    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "upsert into silver.bars failed: sqlstate %s", tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
    }
    PQclear(res);
    return rc;
}

static enum tf_rc transform_run(struct tf_run *run)
{
    const cJSON *objects = cJSON_GetObjectItemCaseSensitive(run->upstream, "objects");
    const cJSON *obj;
    struct tf_buf raw, plain;
    struct columns cols;
    enum tf_rc rc = TF_OK;
    char err[512];

    /* One writer per ticker at a time, so overlapping executions apply in order. */
    rc = tf_pg_lock_keys(run->conn, "tickflow.silver",
                         cJSON_GetObjectItemCaseSensitive(run->record, "tickers"));
    if (rc != TF_OK) {
        tf_run_fail(run, "cannot lock the tickers' silver rows");
        return rc;
    }
    tf_buf_init(&raw, MAX_OBJECT_BYTES);
    tf_buf_init(&plain, MAX_OBJECT_BYTES);
    columns_init(&cols);
    cJSON_ArrayForEach(obj, objects)
    {
        const char *uri = tf_json_str(obj, "uri");
        const char *sha = tf_json_str(obj, "sha256");
        const char *ticker = tf_json_str(obj, "ticker");
        const char *span = tf_json_str(obj, "timespan");
        const char *encoding = tf_json_str(obj, "encoding");
        const struct tf_buf *page;
        const char *echoed;
        cJSON *root = NULL;
        struct bar *bars = NULL;
        size_t n;

        if (!uri || !sha || !ticker || !span) {
            tf_run_fail(run, "an extract object lacks uri, sha256, ticker or timespan");
            rc = TF_ERR_INVALID;
            break;
        }
        rc = tf_lake_get(tf_svc_lake(run->svc), uri, sha, &raw, err, sizeof(err));
        if (rc != TF_OK) {
            tf_run_fail(run, "bronze object: %s", err);
            break;
        }
        page = &raw;
        if (encoding && strcmp(encoding, "gzip") == 0) {
            tf_buf_reset(&plain);
            rc = tf_gunzip(raw.data, raw.len, &plain);
            if (rc != TF_OK) {
                tf_run_fail(run, "bronze object for %s does not inflate: %s", ticker,
                            tf_rc_str(rc));
                break;
            }
            page = &plain;
        }
        root = cJSON_ParseWithLength(page->data ? page->data : "", page->len);
        if (!root) {
            tf_run_fail(run, "bronze object for %s is not JSON", ticker);
            rc = TF_ERR_INVALID;
            break;
        }
        echoed = tf_json_str(root, "ticker");
        if (echoed && strcmp(echoed, ticker) != 0) {
            tf_run_fail(run, "bronze page for %s names ticker %s", ticker, echoed);
            cJSON_Delete(root);
            rc = TF_ERR_INVALID;
            break;
        }
        n = page_bars(run, root, &bars, &run->records_in, &run->records_rejected);
        cJSON_Delete(root);
        if (n > 0) {
            rc = columns_fill(&cols, bars, n);
            if (rc == TF_OK)
                rc = upsert(run, ticker, span, &cols);
            else
                tf_run_fail(run, "page too large");
        }
        free(bars);
        if (rc != TF_OK)
            break;
        run->records_out += (long long)n;
    }
    columns_cleanup(&cols);
    tf_buf_cleanup(&raw);
    tf_buf_cleanup(&plain);
    return rc;
}

static const struct tf_stage_def transform_stage = {
    .name = "transform",
    .upstream = "extract",
    .consume_topic = "tickflow.bronze.v1",
    .produce_topic = "tickflow.silver.v1",
    .fenced = 1,
    .default_port = 8082,
    .run = transform_run,
    .plan = NULL,
    .route = NULL,
};

static const struct tf_cfg_key transform_keys[] = {TF_SVC_KEYS("8082")};

int main(void)
{
    return tf_svc_main(&transform_stage, transform_keys, TF_ARRAY_LEN(transform_keys));
}
