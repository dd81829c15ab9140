/*
 * main.c - the transform stage: for each bronze page that extract landed,
 * check its checksum, parse the bars, and upsert them into silver.bars in
 * one lease-fenced transaction, so a page read twice or an overlapping
 * window never leaves a bar twice. Triggered by tickflow.bronze.v1 events
 * or by a POST with the execution id; publishes on tickflow.silver.v1.
 *
 * Each provider's pages have a parser of their own (polygon_page,
 * twelvedata_page) that turns one page into the same struct bar array,
 * times in UTC epoch milliseconds; what follows is shared: bars outside
 * the run's window are rejected, the rest sorted by time, a time seen twice
 * keeps the copy that came later in the page.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tf/buf.h"
#include "tf/gz.h"
#include "tf/json.h"
#include "tf/pg.h"
#include "tf/svc.h"
#include "tf/time.h"
#include "tf/tz.h"

#define MAX_OBJECT_BYTES (512u * 1024 * 1024)

struct bar {
    long long t; /* start, UTC epoch milliseconds */
    size_t seq;  /* position in the page: among equal times the later wins */
    double o, h, l, c, v, vw;
    long long n;
    int has_v; /* volume is NULL without it (Twelve Data forex and crypto) */
    int has_vw;
    int has_n;
};

/* What a provider's parser made of one page. */
struct page {
    struct bar *bars; /* owned: the bars in page order, seq set, window not yet checked */
    size_t n;
    long long seen; /* items in the page */
    long long bad;  /* items that were not bars */
};

/*
 * A provider's page parser: fills *pg from a page of ticker. A page it
 * cannot read at all (an error answer, another ticker's page, times it
 * cannot place) fails the run with run->error set; single bad items are
 * only counted in pg->bad.
 */
struct page_parser {
    const char *provider;
    enum tf_rc (*parse)(struct tf_run *run, const char *ticker, const cJSON *root, struct page *pg);
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

/* Room for count bars in pg; fails the run when memory is short. */
static enum tf_rc page_alloc(struct tf_run *run, struct page *pg, int count)
{
    if (count <= 0)
        return TF_OK;
    pg->bars = calloc((size_t)count, sizeof(*pg->bars));
    if (!pg->bars) {
        tf_run_fail(run, "out of memory for a page of %d bars", count);
        return TF_ERR_NOMEM;
    }
    return TF_OK;
}

/* Reads one Polygon result; 0 when a required field is missing or not finite. */
static int polygon_bar(const cJSON *item, struct bar *b)
{
    double t = 0, n = 0;

    memset(b, 0, sizeof(*b));
    if (!get_num(item, "t", &t) || !get_num(item, "o", &b->o) || !get_num(item, "h", &b->h) ||
        !get_num(item, "l", &b->l) || !get_num(item, "c", &b->c) || !get_num(item, "v", &b->v))
        return 0;
    b->t = (long long)t;
    b->has_v = 1;
    b->has_vw = get_num(item, "vw", &b->vw);
    b->has_n = get_num(item, "n", &n);
    b->n = (long long)n;
    return 1;
}

/* A Polygon aggregates page: {"ticker", "results": [{"t" (ms), "o", ..., "v", "vw"?, "n"?}]}. */
static enum tf_rc polygon_page(struct tf_run *run, const char *ticker, const cJSON *root,
                               struct page *pg)
{
    const char *echoed = tf_json_str(root, "ticker");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    const cJSON *item;
    enum tf_rc rc;

    if (echoed && strcmp(echoed, ticker) != 0) {
        tf_run_fail(run, "bronze page for %s names ticker %s", ticker, echoed);
        return TF_ERR_INVALID;
    }
    rc = page_alloc(run, pg, cJSON_IsArray(results) ? cJSON_GetArraySize(results) : 0);
    if (rc != TF_OK || !pg->bars)
        return rc;
    cJSON_ArrayForEach(item, results)
    {
        pg->seen++;
        if (!polygon_bar(item, &pg->bars[pg->n])) {
            pg->bad++;
            continue;
        }
        pg->bars[pg->n].seq = pg->n;
        pg->n++;
    }
    return TF_OK;
}

/*
 * A Twelve Data number: a JSON string in decimal notation (what the vendor
 * sends) or a JSON number; finite. strtod() reads it under the C locale
 * (decimal point '.'): the services never call setlocale(). The character
 * check keeps out what strtod() would also take: blanks, hex, inf and nan.
 */
static int td_num(const cJSON *obj, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *s;
    char *end = NULL;
    double v;

    if (cJSON_IsNumber(it)) {
        if (!isfinite(it->valuedouble))
            return 0;
        *out = it->valuedouble;
        return 1;
    }
    if (!cJSON_IsString(it))
        return 0;
    s = it->valuestring;
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return 0;
    v = strtod(s, &end);
    if (end == s || *end || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

/*
 * Reads one Twelve Data value: datetime ("YYYY-MM-DD HH:MM:SS", or
 * "YYYY-MM-DD" for daily bars) is wall-clock time in tz; 0 when a required
 * field is missing or bad, or the time never happens in tz (a DST gap). A
 * time that happens twice (the hour after a fall-back) is taken as the
 * first; volume is optional (absent or null: NULL in silver); Twelve Data
 * has no VWAP or trade count.
 */
static int twelvedata_bar(const cJSON *item, const struct tf_tz *tz, struct bar *b)
{
    const char *dt = tf_json_str(item, "datetime");
    const cJSON *volume = cJSON_GetObjectItemCaseSensitive(item, "volume");
    size_t len = dt ? strlen(dt) : 0;
    int64_t local = 0, utc = 0;

    memset(b, 0, sizeof(*b));
    if (!(len == 10 || (len == 19 && dt[10] == ' ')) || tf_time_parse(dt, &local) != TF_OK ||
        tf_tz_local_to_utc(tz, local, &utc) != TF_OK)
        return 0;
    if (!td_num(item, "open", &b->o) || !td_num(item, "high", &b->h) ||
        !td_num(item, "low", &b->l) || !td_num(item, "close", &b->c))
        return 0;
    if (volume && !cJSON_IsNull(volume)) {
        if (!td_num(item, "volume", &b->v))
            return 0;
        b->has_v = 1;
    }
    b->t = (long long)utc * 1000;
    return 1;
}

/* 1 when meta.symbol names ticker ("SBIN" is how Twelve Data echoes "SBIN:NSE"). */
static int same_symbol(const char *echoed, const char *ticker)
{
    size_t n = strlen(echoed);

    if (strcasecmp(echoed, ticker) == 0)
        return 1;
    return n > 0 && strncasecmp(echoed, ticker, n) == 0 && ticker[n] == ':';
}

/*
 * A Twelve Data time_series page: {"meta": {"symbol", "exchange_timezone"?},
 * "values": [{"datetime", "open", ..., "volume"?}], "status": "ok"}, in any
 * order (newest first by default). The datetimes are in
 * meta.exchange_timezone, UTC when it is absent (forex, crypto). The
 * vendor's "no data" error is an empty page; any other error fails the run.
 */
static enum tf_rc twelvedata_page(struct tf_run *run, const char *ticker, const cJSON *root,
                                  struct page *pg)
{
    const char *status = tf_json_str(root, "status");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(root, "values");
    const char *symbol = tf_json_str(meta, "symbol");
    const char *zone = tf_json_str(meta, "exchange_timezone");
    const struct tf_tz *tz = NULL;
    const cJSON *item;
    enum tf_rc rc;

    if (status && strcmp(status, "error") == 0) {
        const char *msg = tf_json_str(root, "message");

        if (tf_json_long(root, "code", 0) == 400 && msg &&
            strncmp(msg, "No data is available", 20) == 0)
            return TF_OK;
        tf_run_fail(run, "bronze page for %s holds Twelve Data error %ld: %.200s", ticker,
                    tf_json_long(root, "code", 0), msg ? msg : "no message");
        return TF_ERR_INVALID;
    }
    if (!cJSON_IsArray(values)) {
        tf_run_fail(run, "bronze page for %s has no values list", ticker);
        return TF_ERR_INVALID;
    }
    if (symbol && !same_symbol(symbol, ticker)) {
        tf_run_fail(run, "bronze page for %s names symbol %.40s", ticker, symbol);
        return TF_ERR_INVALID;
    }
    rc = tf_tz_get(zone ? zone : "UTC", &tz);
    if (rc != TF_OK) {
        tf_run_fail(run, "bronze page for %s: exchange_timezone %.64s: %s", ticker,
                    zone ? zone : "UTC", tf_rc_str(rc));
        return rc;
    }
    rc = page_alloc(run, pg, cJSON_GetArraySize(values));
    if (rc != TF_OK || !pg->bars)
        return rc;
    cJSON_ArrayForEach(item, values)
    {
        pg->seen++;
        if (!twelvedata_bar(item, tz, &pg->bars[pg->n])) {
            pg->bad++;
            continue;
        }
        pg->bars[pg->n].seq = pg->n;
        pg->n++;
    }
    return TF_OK;
}

static const struct page_parser parsers[] = {
    {"polygon", polygon_page},
    {"twelvedata", twelvedata_page},
};

/* The parser of provider's pages, NULL for a provider this build cannot read. */
static const struct page_parser *parser_get(const char *provider)
{
    for (size_t i = 0; i < TF_ARRAY_LEN(parsers); i++) {
        if (strcmp(parsers[i].provider, provider) == 0)
            return &parsers[i];
    }
    return NULL;
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
        if (rc == TF_OK)
            rc = b->has_v ? tf_buf_printf(&c->v, "%s%.17g", sep, b->v)
                          : tf_buf_printf(&c->v, "%sNULL", sep);
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
 * Keeps the bars of bars[0..n) inside the run's window, sorted by time with
 * one bar per time (the one later in the page wins); counts the others in
 * *rejected. Returns how many are kept, at the front of bars.
 */
static size_t window_bars(const struct tf_run *run, struct bar *bars, size_t n, long long *rejected)
{
    long long lo = (long long)run->window_start * 1000;
    long long hi = (long long)run->window_end * 1000;
    size_t m = 0;
    size_t k = 0;

    if (n == 0)
        return 0; /* bars may be NULL, which qsort() must not see */
    for (size_t i = 0; i < n; i++) {
        if (bars[i].t < lo || bars[i].t >= hi) {
            (*rejected)++;
            continue;
        }
        bars[m++] = bars[i];
    }
    qsort(bars, m, sizeof(*bars), cmp_bar);
    for (size_t i = 0; i < m; i++) {
        if (k > 0 && bars[k - 1].t == bars[i].t) {
            bars[k - 1] = bars[i]; /* a repeated time: keep the later copy */
            (*rejected)++;
            continue;
        }
        bars[k++] = bars[i];
    }
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
        const char *provider = tf_json_str(obj, "provider");
        const struct page_parser *parser;
        const struct tf_buf *page;
        cJSON *root = NULL;
        struct page pg;
        size_t n;

        if (!uri || !sha || !ticker || !span) {
            tf_run_fail(run, "an extract object lacks uri, sha256, ticker or timespan");
            rc = TF_ERR_INVALID;
            break;
        }
        /* Objects written before providers were named are Polygon's. */
        parser = parser_get(provider ? provider : "polygon");
        if (!parser) {
            tf_run_fail(run,
                        "bronze object for %s comes from provider %.32s, which this build "
                        "cannot read",
                        ticker, provider);
            rc = TF_ERR_INVALID;
            break;
        }
        rc = tf_lake_get(tf_svc_lake(run->svc), uri, sha, &raw, err, sizeof(err));
        if (rc != TF_OK) {
            tf_run_fail(run, "bronze object: %s", err);
            break;
        }
        page = &raw;
        if (encoding && strcmp(encoding, "identity") != 0) {
            tf_buf_reset(&plain);
            rc = tf_unpack(encoding, raw.data, raw.len, &plain);
            if (rc != TF_OK) {
                tf_run_fail(run, "bronze object for %s (%s) does not decompress: %s", ticker,
                            encoding, tf_rc_str(rc));
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
        memset(&pg, 0, sizeof(pg));
        rc = parser->parse(run, ticker, root, &pg);
        cJSON_Delete(root);
        run->records_in += pg.seen;
        run->records_rejected += pg.bad;
        n = rc == TF_OK ? window_bars(run, pg.bars, pg.n, &run->records_rejected) : 0;
        if (n > 0) {
            rc = columns_fill(&cols, pg.bars, n);
            if (rc == TF_OK)
                rc = upsert(run, ticker, span, &cols);
            else
                tf_run_fail(run, "page too large");
        }
        free(pg.bars);
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
