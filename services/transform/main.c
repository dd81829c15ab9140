/*
 * main.c - the transform stage: each bronze page that extract landed is
 * checked (sha256), parsed and judged (pages.c), its good bars streamed
 * into silver.bars by binary COPY and its rejects into the quarantine, in
 * one lease-fenced transaction; then the lake's Parquet files (lake.c).
 * docs/ARCHITECTURE.md (Transform's load) says how bars are applied.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/buf.h"
#include "tf/gz.h"
#include "tf/json.h"
#include "tf/pg.h"
#include "tf/svc.h"
#include "tf/time.h"
#include "transform.h"

#define MAX_OBJECT_BYTES (512u * 1024 * 1024)
#define MAX_COPY_BYTES   (1024u * 1024 * 1024)
/* Rejects are gathered across pages and sent past this size (or at the end). */
#define REJECTS_FLUSH_BYTES (4u * 1024 * 1024)
/* Reject rows get a time only inside years 1900..9999 (PostgreSQL's range is wider). */
#define TS_MIN_MS (-2208988800000LL)
#define TS_MAX_MS 253402300800000LL

static const char stage_sql[] =
    "CREATE TEMP TABLE transform_stage (ticker text NOT NULL, timespan text NOT NULL,"
    " ts timestamptz NOT NULL, open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL,"
    " close float8 NOT NULL, volume float8, vwap float8, trades bigint, execution_id uuid NOT NULL,"
    " provider text NOT NULL, fetched_at timestamptz NOT NULL, ord bigint NOT NULL)"
    " ON COMMIT DROP";

#define BAR_COLUMNS                                                                                \
    "ticker, timespan, ts, open, high, low, close, volume, vwap, trades, execution_id, provider,"  \
    " fetched_at"

/* New bars go straight into silver; bars it already has are staged for the update. */
static const char copy_silver_sql[] =
    "COPY silver.bars (" BAR_COLUMNS ") FROM STDIN (FORMAT binary)";
static const char copy_stage_sql[] =
    "COPY pg_temp.transform_stage (" BAR_COLUMNS ", ord) FROM STDIN (FORMAT binary)";

static const char copy_reject_sql[] =
    "COPY silver.rejected_bars (execution_id, attempt, job_name, ticker, timespan, ts, rule, raw,"
    " object_uri, page, item) FROM STDIN";

/* The times silver already holds in a page's range. */
static const char existing_sql[] =
    "SELECT (extract(epoch FROM ts) * 1000)::bigint FROM silver.bars WHERE ticker = $1"
    " AND timespan = $2 AND ts >= timestamptz 'epoch' + $3::bigint * interval '1 millisecond'"
    " AND ts <= timestamptz 'epoch' + $4::bigint * interval '1 millisecond' ORDER BY ts";

/*
 * The staged bars replace the stored ones fetched no later (within the
 * execution, the one from the latest page); a row that would not change is
 * left alone (a replay writes nothing, and silver's rows keep their place,
 * so whatever reads them in storage order reads the same). Also lists the
 * lake partitions of bars whose provider changes (their old dataset loses
 * them). Every staged bar lies in the window ($1, $2: outside_window keeps
 * the others out), which keeps the other days' partitions out of the plan.
 */
static const char update_sql[] =
    "WITH src AS (SELECT DISTINCT ON (ticker, timespan, ts) * FROM pg_temp.transform_stage"
    "  ORDER BY ticker, timespan, ts, ord DESC),"
    " old AS (SELECT DISTINCT b.provider, b.timespan,"
    "  to_char(b.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS date FROM silver.bars b"
    "  JOIN src ON src.ticker = b.ticker AND src.timespan = b.timespan AND src.ts = b.ts"
    "  WHERE b.provider <> src.provider AND b.fetched_at <= src.fetched_at"
    "  AND b.ts >= $1::timestamptz AND b.ts < $2::timestamptz),"
    " up AS (UPDATE silver.bars s SET open = src.open, high = src.high, low = src.low,"
    "  close = src.close, volume = src.volume, vwap = src.vwap, trades = src.trades,"
    "  execution_id = src.execution_id, ingested_at = now(), provider = src.provider,"
    "  fetched_at = src.fetched_at FROM src WHERE s.ticker = src.ticker"
    "  AND s.timespan = src.timespan AND s.ts = src.ts AND s.fetched_at <= src.fetched_at"
    "  AND s.ts >= $1::timestamptz AND s.ts < $2::timestamptz"
    "  AND (s.open, s.high, s.low, s.close, s.volume, s.vwap, s.trades, s.execution_id,"
    "  s.provider, s.fetched_at) IS DISTINCT FROM (src.open, src.high, src.low, src.close,"
    "  src.volume, src.vwap, src.trades, src.execution_id, src.provider, src.fetched_at)"
    "  RETURNING 1)"
    " SELECT (SELECT count(*) FROM up), (SELECT coalesce(json_agg(old), '[]') FROM old)::text";

/* A lake partition the run changes: (provider, bar size, UTC day). */
struct part {
    char provider[32];
    char span[32];
    long long day; /* days since the epoch */
};

/* The time range of a page of (ticker, bar size). */
struct range {
    char *key; /* owned: "ticker\tspan" */
    long long lo, hi;
};

/* What one run keeps from page to page. */
struct load {
    int streaming;    /* a COPY of new bars into silver.bars is open */
    int window_empty; /* silver held nothing of the run's tickers in its window */
    int staged;       /* bars silver held went into the staging table */
    struct range *ranges;
    size_t nranges, ranges_cap;
    struct tf_run *run;
    const cJSON *tickers; /* the job's */
    struct tf_buf raw, plain;
    struct tf_buf fresh, seen; /* binary COPY tuples of a page: new bars, known bars */
    struct tf_buf bad;         /* text COPY rows of rejects, sent now and then */
    long long *known;          /* times silver holds in the page's range (sorted) */
    size_t nknown, known_cap;
    unsigned char exec_uuid[16];
    long long fetched_us; /* the extract's finish, PostgreSQL binary time */
    struct part *parts;
    size_t nparts, parts_cap;
    long long inserted;
    char attempt[16];
};

/* Appends s to a COPY text field, escaped (backslash, tab, newline, CR). */
static enum tf_rc copy_str(struct tf_buf *out, const char *s)
{
    enum tf_rc rc = TF_OK;
    const char *run = s;

    for (const char *p = s; *p && rc == TF_OK; p++) {
        const char *esc = NULL;

        switch (*p) {
        case '\\':
            esc = "\\\\";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        default:
            continue;
        }
        rc = tf_buf_append(out, run, (size_t)(p - run));
        if (rc == TF_OK)
            rc = tf_buf_puts(out, esc);
        run = p + 1;
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(out, run);
    return rc;
}

/* Starts COPY sql on the run's connection. */
static enum tf_rc copy_begin(struct tf_run *run, const char *sql)
{
    char state[6];
    enum tf_rc rc = tf_pg_copy_begin(run->conn, sql, state);

    if (rc != TF_OK)
        tf_run_fail(run, "COPY refused: sqlstate %s", state);
    return rc;
}

/* Sends COPY data (blocks only while the server's socket buffer is full). */
static enum tf_rc copy_send(struct tf_run *run, const struct tf_buf *rows)
{
    enum tf_rc rc = tf_pg_copy_send(run->conn, rows->data, rows->len);

    if (rc != TF_OK)
        tf_run_fail(run, "COPY failed: the connection broke");
    return rc;
}

/* Ends the COPY and waits for the server's verdict. */
static enum tf_rc copy_end(struct tf_run *run)
{
    char state[6];
    enum tf_rc rc = tf_pg_copy_end(run->conn, state);

    if (rc != TF_OK && state[0])
        tf_run_fail(run, "COPY failed: sqlstate %s", state);
    else if (rc != TF_OK)
        tf_run_fail(run, "COPY failed: the connection broke");
    return rc;
}

/* Abandons a COPY in progress (the run failed; its transaction rolls back). */
static void copy_abort(struct tf_run *run)
{
    tf_pg_copy_abort(run->conn, "the transform run failed");
}

/* Sends rows (complete COPY data) with the COPY statement sql. */
static enum tf_rc copy_in(struct tf_run *run, const char *sql, const struct tf_buf *rows)
{
    char state[6];
    enum tf_rc rc = tf_pg_copy_in(run->conn, sql, rows->data, rows->len, state);

    if (rc != TF_OK)
        tf_run_fail(run, "COPY failed: %s%s", state[0] ? "sqlstate " : "the connection broke",
                    state);
    return rc;
}

/* Runs a statement of the run; fails the run with what on error. */
static enum tf_rc run_sql(struct tf_run *run, const char *sql, int n, const char *const *params,
                          const char *what, PGresult **out)
{
    PGresult *res = tf_pg_exec(run->conn, sql, n, params);

    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "%s failed: sqlstate %s", what, tf_pg_sqlstate(res));
        PQclear(res);
        return TF_ERR_DB;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return TF_OK;
}

/* 1 when ticker is one of the job's. */
static int job_ticker(const cJSON *tickers, const char *ticker)
{
    const cJSON *t;

    cJSON_ArrayForEach(t, tickers)
    {
        if (cJSON_IsString(t) && strcmp(t->valuestring, ticker) == 0)
            return 1;
    }
    return 0;
}

/* Binary COPY: big-endian integers and doubles, fields as length + bytes. */
static enum tf_rc put_be(struct tf_buf *out, uint64_t v, int bytes)
{
    unsigned char b[8];

    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return tf_buf_append(out, b, (size_t)bytes);
}

static enum tf_rc put_i64(struct tf_buf *out, long long v)
{
    enum tf_rc rc = put_be(out, 8, 4);

    return rc ? rc : put_be(out, (uint64_t)v, 8);
}

static enum tf_rc put_f64(struct tf_buf *out, int has, double v)
{
    uint64_t bits;
    enum tf_rc rc;

    if (!has)
        return put_be(out, 0xffffffffu, 4); /* NULL */
    memcpy(&bits, &v, sizeof(bits));
    rc = put_be(out, 8, 4);
    return rc ? rc : put_be(out, bits, 8);
}

static enum tf_rc put_bytes(struct tf_buf *out, const void *p, size_t n)
{
    enum tf_rc rc = put_be(out, (uint64_t)n, 4);

    return rc ? rc : tf_buf_append(out, p, n);
}

/* The binary COPY header: signature, flags, no extension. */
static const unsigned char copy_header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n',
                                              0,   0,   0,   0,   0,   0,   0,    0,    0};

/* The binary COPY tuple of a good bar (BAR_COLUMNS, then ord when with_ord). */
static enum tf_rc good_row(struct load *ld, struct tf_buf *out, const struct page *pg,
                           const char *span, const char *provider, const struct bar *b,
                           int with_ord, long long ord)
{
    enum tf_rc rc = put_be(out, with_ord ? 14 : 13, 2);

    rc = rc ? rc : put_bytes(out, pg->ticker, strlen(pg->ticker));
    rc = rc ? rc : put_bytes(out, span, strlen(span));
    rc = rc ? rc : put_i64(out, b->t * 1000 - TF_PG_EPOCH_US);
    rc = rc ? rc : put_f64(out, 1, b->o);
    rc = rc ? rc : put_f64(out, 1, b->h);
    rc = rc ? rc : put_f64(out, 1, b->l);
    rc = rc ? rc : put_f64(out, 1, b->c);
    rc = rc ? rc : put_f64(out, b->has_v, b->v);
    rc = rc ? rc : put_f64(out, b->has_vw, b->vw);
    if (rc == TF_OK)
        rc = b->has_n ? put_i64(out, b->n) : put_be(out, 0xffffffffu, 4);
    rc = rc ? rc : put_bytes(out, ld->exec_uuid, sizeof(ld->exec_uuid));
    rc = rc ? rc : put_bytes(out, provider, strlen(provider));
    rc = rc ? rc : put_i64(out, ld->fetched_us);
    if (rc == TF_OK && with_ord)
        rc = put_i64(out, ord);
    return rc;
}

/*
 * The stream of new bars into silver.bars: one binary COPY kept open from
 * page to page, so the server inserts one page while the next is parsed.
 * It is closed whenever the connection is needed for something else.
 */
static enum tf_rc stream_open(struct load *ld)
{
    enum tf_rc rc;

    if (ld->streaming)
        return TF_OK;
    rc = copy_begin(ld->run, copy_silver_sql);
    if (rc == TF_OK &&
        PQputCopyData(ld->run->conn, (const char *)copy_header, (int)sizeof(copy_header)) != 1) {
        tf_run_fail(ld->run, "COPY failed: the connection broke");
        (void)copy_end(ld->run);
        rc = TF_ERR_DB;
    }
    if (rc == TF_OK)
        ld->streaming = 1;
    return rc;
}

static enum tf_rc stream_close(struct load *ld)
{
    static const char trailer[2] = {'\xff', '\xff'};

    if (!ld->streaming)
        return TF_OK;
    ld->streaming = 0;
    if (PQputCopyData(ld->run->conn, trailer, 2) != 1) {
        tf_run_fail(ld->run, "COPY failed: the connection broke");
        (void)copy_end(ld->run);
        return TF_ERR_DB;
    }
    return copy_end(ld->run);
}

/* Sends the quarantine rows gathered so far. */
static enum tf_rc flush_rejects(struct load *ld)
{
    enum tf_rc rc;

    if (!ld->bad.len)
        return TF_OK;
    rc = stream_close(ld);
    if (rc == TF_OK)
        rc = copy_in(ld->run, copy_reject_sql, &ld->bad);
    tf_buf_reset(&ld->bad);
    return rc;
}

/*
 * 1 when an earlier page of the run covered part of [lo, hi] for the same
 * ticker and bar size; notes this page's range either way.
 */
static int overlaps(struct load *ld, const char *ticker, const char *span, long long lo,
                    long long hi)
{
    char key[200];
    struct range *r;
    int hit = 0;

    snprintf(key, sizeof(key), "%s\t%s", ticker, span);
    for (size_t i = 0; i < ld->nranges && !hit; i++) {
        r = &ld->ranges[i];
        hit = r->lo <= hi && lo <= r->hi && strcmp(r->key, key) == 0;
    }
    if (ld->nranges == ld->ranges_cap) {
        size_t cap = ld->ranges_cap ? ld->ranges_cap * 2 : 64;
        r = realloc(ld->ranges, cap * sizeof(*r));
        if (!r)
            return 1; /* the careful path needs no memory */
        ld->ranges = r;
        ld->ranges_cap = cap;
    }
    r = &ld->ranges[ld->nranges];
    r->key = strdup(key);
    if (!r->key)
        return 1;
    r->lo = lo;
    r->hi = hi;
    ld->nranges++;
    return hit;
}

/* Notes the lake partition of a bar. */
static enum tf_rc note_part(struct load *ld, const char *provider, const char *span, long long t_ms)
{
    long long day = tf_floor_div(t_ms, 86400000);
    struct part *p;

    for (size_t i = ld->nparts; i > 0; i--) {
        p = &ld->parts[i - 1];
        if (p->day == day && strcmp(p->span, span) == 0 && strcmp(p->provider, provider) == 0)
            return TF_OK;
    }
    if (ld->nparts == ld->parts_cap) {
        size_t cap = ld->parts_cap ? ld->parts_cap * 2 : 16;
        p = realloc(ld->parts, cap * sizeof(*p));
        if (!p)
            return TF_ERR_NOMEM;
        ld->parts = p;
        ld->parts_cap = cap;
    }
    p = &ld->parts[ld->nparts++];
    snprintf(p->provider, sizeof(p->provider), "%s", provider);
    snprintf(p->span, sizeof(p->span), "%s", span);
    p->day = day;
    return TF_OK;
}

/* 1 when silver already holds a bar of the page at t. */
static int is_known(const struct load *ld, long long t)
{
    size_t lo = 0, hi = ld->nknown;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ld->known[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ld->nknown && ld->known[lo] == t;
}

/* Reads the times silver holds for (ticker, span) in [lo, hi] into ld->known. */
static enum tf_rc read_known(struct load *ld, const char *ticker, const char *span, long long lo,
                             long long hi)
{
    char los[24], his[24];
    const char *params[4] = {ticker, span, los, his};
    PGresult *res = NULL;
    enum tf_rc rc;
    size_t n;

    snprintf(los, sizeof(los), "%lld", lo);
    snprintf(his, sizeof(his), "%lld", hi);
    rc = run_sql(ld->run, existing_sql, 4, params, "reading the bars silver holds", &res);
    if (rc != TF_OK)
        return rc;
    n = (size_t)PQntuples(res);
    if (n > ld->known_cap) {
        long long *k = realloc(ld->known, n * sizeof(*k));
        if (!k) {
            PQclear(res);
            tf_run_fail(ld->run, "out of memory");
            return TF_ERR_NOMEM;
        }
        ld->known = k;
        ld->known_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        ld->known[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    ld->nknown = n;
    PQclear(res);
    return TF_OK;
}

/* The COPY row of a rejected bar. */
static enum tf_rc bad_row(struct load *ld, const struct page *pg, const char *span, const char *uri,
                          int pageno, const struct bar *b)
{
    struct tf_buf *out = &ld->bad;
    char *raw = b->raw ? cJSON_PrintUnformatted(b->raw) : NULL;
    enum tf_rc rc;

    rc = tf_buf_printf(out, "%s\t%s\t", ld->run->execution_id, ld->attempt);
    rc = rc ? rc : copy_str(out, ld->run->job_name);
    rc = rc ? rc : tf_buf_puts(out, "\t");
    rc = rc ? rc : copy_str(out, pg->ticker);
    rc = rc ? rc : tf_buf_puts(out, "\t");
    rc = rc ? rc : copy_str(out, span);
    if (rc == TF_OK && b->has_t && b->t >= TS_MIN_MS && b->t < TS_MAX_MS) {
        long long sec = b->t >= 0 ? b->t / 1000 : (b->t - 999) / 1000;
        char ts[40];

        tf_time_format((int64_t)sec, ts, sizeof(ts));
        ts[strlen(ts) - 1] = '\0'; /* the Z, which follows the milliseconds */
        rc = tf_buf_printf(out, "\t%s.%03lldZ\t", ts, b->t - sec * 1000);
    } else if (rc == TF_OK) {
        rc = tf_buf_puts(out, "\t\\N\t");
    }
    rc = rc ? rc : tf_buf_printf(out, "%s\t", b->rule);
    rc = rc ? rc : copy_str(out, raw ? raw : "null");
    rc = rc ? rc : tf_buf_puts(out, "\t");
    rc = rc ? rc : copy_str(out, uri);
    rc = rc ? rc : tf_buf_printf(out, "\t%d\t%d\n", pageno, b->item);
    cJSON_free(raw);
    return rc;
}

/*
 * One bronze object: read, check, parse, apply the rules, and COPY its good
 * bars into the staging table and its rejects into the quarantine.
 */
static enum tf_rc load_object(struct load *ld, const cJSON *obj, int index)
{
    struct tf_run *run = ld->run;
    const char *uri = tf_json_str(obj, "uri");
    const char *sha = tf_json_str(obj, "sha256");
    const char *ticker = tf_json_str(obj, "ticker");
    const char *span = tf_json_str(obj, "timespan");
    const char *encoding = tf_json_str(obj, "encoding");
    /* Objects written before providers were named are Polygon's. */
    const char *provider = tf_json_str(obj, "provider") ? tf_json_str(obj, "provider") : "polygon";
    int pageno = (int)tf_json_long(obj, "page", index + 1);
    const struct page_parser *parser;
    const struct tf_buf *text;
    struct bar_size size;
    struct page pg;
    cJSON *root = NULL;
    char err[512];
    enum tf_rc rc;
    size_t good;
    long long fresh = 0;
    int known, read;

    memset(&pg, 0, sizeof(pg));
    if (!uri || !sha || !ticker || !span) {
        tf_run_fail(run, "an extract object lacks uri, sha256, ticker or timespan");
        return TF_ERR_INVALID;
    }
    parser = transform_parser(provider);
    if (!parser) {
        tf_run_fail(run,
                    "bronze object for %s comes from provider %.32s, which this build cannot "
                    "read",
                    ticker, provider);
        return TF_ERR_INVALID;
    }
    if (!transform_bar_size(span, &size)) {
        tf_run_fail(run, "bronze object for %s has bar size %.32s, which this build cannot read",
                    ticker, span);
        return TF_ERR_INVALID;
    }
    tf_buf_reset(&ld->raw);
    rc = tf_lake_get(tf_svc_lake(run->svc), uri, sha, &ld->raw, err, sizeof(err));
    if (rc != TF_OK) {
        tf_run_fail(run, "bronze object: %s", err);
        return rc;
    }
    text = &ld->raw;
    if (encoding && strcmp(encoding, "identity") != 0) {
        tf_buf_reset(&ld->plain);
        rc = tf_unpack(encoding, ld->raw.data, ld->raw.len, &ld->plain);
        if (rc != TF_OK) {
            tf_run_fail(run, "bronze object for %s (%s) does not decompress: %s", ticker, encoding,
                        tf_rc_str(rc));
            return rc;
        }
        text = &ld->plain;
    }
    /* A plain page is read straight from its text; one with a bar to
     * reject is parsed whole, for the raw items the quarantine keeps. */
    good = 0;
    read = parser->fast && parser->fast(ticker, text->data ? text->data : "", text->len, &pg);
    if (read) {
        known = strcmp(pg.ticker, ticker) == 0 && job_ticker(ld->tickers, ticker);
        good = transform_validate(&pg, known, &size, (long long)run->window_start * 1000,
                                  (long long)run->window_end * 1000);
        if (good < pg.n) {
            transform_page_cleanup(&pg);
            memset(&pg, 0, sizeof(pg));
            read = 0;
        }
    }
    if (!read) {
        root = cJSON_ParseWithLength(text->data ? text->data : "", text->len);
        if (!root) {
            tf_run_fail(run, "bronze object for %s is not JSON", ticker);
            return TF_ERR_INVALID;
        }
        err[0] = '\0';
        rc = parser->parse(ticker, root, &pg, err, sizeof(err));
        if (rc != TF_OK) {
            tf_run_fail(run, "%s", err[0] ? err : tf_rc_str(rc));
            goto out;
        }
        known = strcmp(pg.ticker, ticker) == 0 && job_ticker(ld->tickers, ticker);
        good = transform_validate(&pg, known, &size, (long long)run->window_start * 1000,
                                  (long long)run->window_end * 1000);
    }
    ld->nknown = 0;
    if (good > 0) {
        long long lo = LLONG_MAX, hi = LLONG_MIN;
        for (size_t i = 0; i < pg.n; i++) {
            if (!pg.bars[i].rule) {
                lo = pg.bars[i].t < lo ? pg.bars[i].t : lo;
                hi = pg.bars[i].t > hi ? pg.bars[i].t : hi;
            }
        }
        /* Silver may hold some of these bars: ask (the stream pauses meanwhile). */
        if (overlaps(ld, pg.ticker, span, lo, hi) || !ld->window_empty) {
            rc = stream_close(ld);
            rc = rc ? rc : read_known(ld, pg.ticker, span, lo, hi);
            if (rc != TF_OK)
                goto out;
        }
    }
    tf_buf_reset(&ld->fresh);
    tf_buf_reset(&ld->seen);
    for (size_t i = 0; i < pg.n && rc == TF_OK; i++) {
        const struct bar *b = &pg.bars[i];

        if (b->rule) {
            rc = bad_row(ld, &pg, span, uri, pageno, b);
            continue;
        }
        if (is_known(ld, b->t)) {
            if (!ld->seen.len)
                rc = tf_buf_append(&ld->seen, copy_header, sizeof(copy_header));
            if (rc == TF_OK)
                rc = good_row(ld, &ld->seen, &pg, span, provider, b, 1,
                              ((long long)index << 32) | (long long)b->item);
        } else {
            rc = good_row(ld, &ld->fresh, &pg, span, provider, b, 0, 0);
            fresh++;
        }
        if (rc == TF_OK)
            rc = note_part(ld, provider, span, b->t);
    }
    if (rc == TF_OK && ld->seen.len)
        rc = put_be(&ld->seen, 0xffff, 2);
    if (rc != TF_OK) {
        tf_run_fail(run, "page of %s too large to load", ticker);
        goto out;
    }
    if (ld->seen.len) {
        rc = stream_close(ld);
        rc = rc ? rc : copy_in(run, copy_stage_sql, &ld->seen);
        ld->staged = 1;
    }
    if (rc == TF_OK && ld->fresh.len) {
        rc = stream_open(ld);
        rc = rc ? rc : copy_send(run, &ld->fresh);
    }
    if (rc == TF_OK && ld->bad.len > REJECTS_FLUSH_BYTES)
        rc = flush_rejects(ld);
    if (rc == TF_OK)
        transform_lake_keep(run, provider, span, &pg);
    run->records_in += (long long)pg.n;
    run->records_rejected += (long long)(pg.n - good);
    run->records_out += (long long)good;
    ld->inserted += fresh;
out:
    transform_page_cleanup(&pg);
    cJSON_Delete(root);
    return rc;
}

/*
 * Makes the daily partitions the window needs, committed on a connection
 * of its own before the run touches silver (creating one waits for every
 * open transaction on silver.bars: inside the run it could wait for
 * itself); on the run's connection when no other is free.
 */
static enum tf_rc ensure_partitions(struct tf_run *run, const char *ws, const char *we)
{
    static const char sql[] = "SELECT silver.ensure_bars_partitions($1::timestamptz,"
                              " $2::timestamptz)";
    const char *params[2] = {ws, we};
    PGconn *side = tf_svc_conn_get(run->svc);
    /* Making a partition can meet a reader of the table in a deadlock
     * that PostgreSQL breaks by failing one side: that side tries again. */
    PGresult *res =
        side ? tf_pg_exec_retry(side, sql, 2, params, 5) : tf_pg_exec(run->conn, sql, 2, params);
    enum tf_rc rc = TF_OK;

    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "cannot make silver's daily partitions: sqlstate %s", tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
    }
    PQclear(res);
    tf_svc_conn_put(run->svc, side);
    return rc;
}

/* Adds a partition from the update's JSON list ({provider, timespan, date}). */
static enum tf_rc note_old_part(struct load *ld, const cJSON *p)
{
    const char *provider = tf_json_str(p, "provider");
    const char *span = tf_json_str(p, "timespan");
    const char *date = tf_json_str(p, "date");
    int64_t t = 0;

    if (!provider || !span || !date || tf_time_parse(date, &t) != TF_OK)
        return TF_ERR_INVALID;
    return note_part(ld, provider, span, (long long)t * 1000);
}

/*
 * Applies the staged bars (those silver held already) and notes every lake
 * partition the run changed in run->state.
 */
static enum tf_rc finish(struct load *ld)
{
    struct tf_run *run = ld->run;
    PGresult *res = NULL;
    cJSON *old = NULL;
    const cJSON *p;
    long long updated;
    enum tf_rc rc;

    if (ld->staged) {
        char ws[32], we[32];
        const char *params[2] = {ws, we};

        tf_time_format(run->window_start, ws, sizeof(ws));
        tf_time_format(run->window_end, we, sizeof(we));
        rc = run_sql(run, update_sql, 2, params, "updating silver.bars", &res);
        if (rc != TF_OK)
            return rc;
        updated = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        old = cJSON_Parse(PQgetvalue(res, 0, 1));
        PQclear(res);
    } else {
        updated = 0; /* nothing staged: no bar silver held came again */
        rc = TF_OK;
    }
    cJSON_ArrayForEach(p, old)
    {
        if (rc == TF_OK)
            rc = note_old_part(ld, p);
    }
    cJSON_Delete(old);
    run->state = cJSON_CreateArray();
    for (size_t i = 0; rc == TF_OK && run->state && i < ld->nparts; i++) {
        cJSON *o = cJSON_CreateObject();
        char date[16];

        tf_time_format_date((int64_t)ld->parts[i].day * 86400, date, sizeof(date));
        cJSON_AddStringToObject(o, "provider", ld->parts[i].provider);
        cJSON_AddStringToObject(o, "timespan", ld->parts[i].span);
        cJSON_AddStringToObject(o, "date", date);
        cJSON_AddItemToArray(run->state, o);
    }
    if (rc != TF_OK || !run->state) {
        tf_run_fail(run, "cannot list the lake partitions");
        return rc != TF_OK ? rc : TF_ERR_NOMEM;
    }
    /* The files are owed from this commit on: a transform that dies before
     * writing them leaves these rows to another's sweeper (lake.c). */
    if (ld->nparts > 0) {
        char *parts = cJSON_PrintUnformatted(run->state);
        const char *params[3] = {parts, run->execution_id, ld->attempt};

        rc = parts ? run_sql(run,
                             "INSERT INTO tickflow.lake_pending"
                             " (provider, timespan, day, execution_id, attempt)"
                             " SELECT x.provider, x.timespan, x.date::date, $2, $3"
                             " FROM jsonb_to_recordset($1::jsonb)"
                             " AS x(provider text, timespan text, date text)",
                             3, params, "noting the lake files owed", NULL)
                   : TF_ERR_NOMEM;
        cJSON_free(parts);
        if (rc != TF_OK)
            return rc;
    }
    tf_log_info(&run->log, "silver bars inserted=%lld updated=%lld", ld->inserted, updated);
    return TF_OK;
}

/* The extract's finish as a PostgreSQL binary time (its fetched_at), into ld. */
static enum tf_rc read_fetched(struct load *ld, const char *fetched)
{
    const char *params[1] = {fetched};
    PGresult *res = NULL;
    enum tf_rc rc;

    /* Bars are ranked by when they were fetched: an extract that has not
     * finished has no such time yet. */
    if (!fetched) {
        tf_run_fail(ld->run, "the extract stage has not finished");
        return TF_ERR_CONFLICT;
    }
    rc = run_sql(ld->run,
                 "SELECT ((extract(epoch FROM $1::timestamptz) - 946684800) * 1000000)::bigint", 1,
                 params, "reading the fetch time", &res);
    if (rc != TF_OK)
        return rc;
    ld->fetched_us = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return TF_OK;
}

/* Whether silver holds anything of the run's tickers in its window (then pages ask first). */
static enum tf_rc read_window_empty(struct load *ld, const char *ws, const char *we)
{
    struct tf_buf tickers;
    const char *params[3];
    PGresult *res = NULL;
    enum tf_rc rc;

    tf_buf_init(&tickers, 1024 * 1024);
    rc = tf_pg_text_array(ld->tickers, &tickers);
    if (rc != TF_OK) {
        tf_buf_cleanup(&tickers);
        tf_run_fail(ld->run, "ticker list too long");
        return rc;
    }
    params[0] = tickers.data;
    params[1] = ws;
    params[2] = we;
    rc = run_sql(ld->run,
                 "SELECT NOT EXISTS (SELECT 1 FROM silver.bars WHERE ticker = ANY($1::text[])"
                 " AND ts >= $2::timestamptz AND ts < $3::timestamptz)",
                 3, params, "looking for silver bars in the window", &res);
    tf_buf_cleanup(&tickers);
    if (rc != TF_OK)
        return rc;
    ld->window_empty = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return TF_OK;
}

/* The 16 bytes of a canonical UUID. */
static void uuid_bytes(const char *id, unsigned char out[16])
{
    size_t k = 0;

    for (size_t i = 0; id[i] && k < 32; i++) {
        char c = id[i];
        int v;

        if (c == '-')
            continue;
        v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        if (k % 2 == 0)
            out[k / 2] = (unsigned char)(v << 4);
        else
            out[k / 2] |= (unsigned char)v;
        k++;
    }
}

static enum tf_rc transform_run(struct tf_run *run)
{
    const cJSON *objects = cJSON_GetObjectItemCaseSensitive(run->upstream, "objects");
    const char *fetched = tf_json_str(run->upstream, "finished_at");
    const char *id_param[1] = {run->execution_id};
    const cJSON *obj;
    struct load ld;
    char ws[32], we[32], ahead[32];
    enum tf_rc rc = TF_OK;
    int index = 0;
    int64_t started = tf_time_mono_ms();

    memset(&ld, 0, sizeof(ld));
    ld.run = run;
    ld.tickers = cJSON_GetObjectItemCaseSensitive(run->record, "tickers");
    snprintf(ld.attempt, sizeof(ld.attempt), "%d", run->attempt);
    uuid_bytes(run->execution_id, ld.exec_uuid);
    tf_time_format(run->window_start, ws, sizeof(ws));
    tf_time_format(run->window_end, we, sizeof(we));
    /* The month after the window too, so that runs seldom make one (making
     * one waits for every transaction on silver.bars, and they for it). */
    tf_time_format(run->window_end + 31 * 86400, ahead, sizeof(ahead));
    rc = ensure_partitions(run, ws, ahead);
    if (rc != TF_OK)
        return rc;
    /* One writer per ticker at a time, so overlapping executions apply in order. */
    rc = tf_pg_lock_keys(run->conn, "tickflow.silver", ld.tickers);
    if (rc != TF_OK) {
        tf_run_fail(run, "cannot lock the tickers' silver rows");
        return rc;
    }
    /* This execution's earlier rejects go: a retry or a replay writes them again. */
    rc = run_sql(run, "DELETE FROM silver.rejected_bars WHERE execution_id = $1", 1, id_param,
                 "clearing the execution's rejects", NULL);
    if (rc == TF_OK)
        rc = run_sql(run, stage_sql, 0, NULL, "creating the staging table", NULL);
    if (rc == TF_OK)
        rc = read_fetched(&ld, fetched);
    if (rc == TF_OK)
        transform_lake_hold(run, fetched);
    if (rc == TF_OK)
        rc = read_window_empty(&ld, ws, we);
    if (rc != TF_OK)
        return rc;
    tf_buf_init(&ld.raw, MAX_OBJECT_BYTES);
    tf_buf_init(&ld.plain, MAX_OBJECT_BYTES);
    tf_buf_init(&ld.fresh, MAX_COPY_BYTES);
    tf_buf_init(&ld.seen, MAX_COPY_BYTES);
    tf_buf_init(&ld.bad, MAX_COPY_BYTES);
    cJSON_ArrayForEach(obj, objects)
    {
        rc = tf_run_check(run);
        if (rc == TF_OK)
            rc = load_object(&ld, obj, index++);
        if (rc != TF_OK)
            break;
    }
    if (rc == TF_OK)
        rc = stream_close(&ld);
    else if (ld.streaming)
        copy_abort(run);
    if (rc == TF_OK)
        rc = flush_rejects(&ld);
    if (rc == TF_OK) {
        int64_t loaded = tf_time_mono_ms();

        tf_log_info(&run->log, "pages loaded pages=%d in=%lld rejected=%lld ms=%lld", index,
                    run->records_in, run->records_rejected, (long long)(loaded - started));
        rc = finish(&ld);
        tf_log_info(&run->log, "update done ms=%lld", (long long)(tf_time_mono_ms() - loaded));
    }
    tf_buf_cleanup(&ld.raw);
    tf_buf_cleanup(&ld.plain);
    tf_buf_cleanup(&ld.fresh);
    tf_buf_cleanup(&ld.seen);
    tf_buf_cleanup(&ld.bad);
    free(ld.known);
    free(ld.parts);
    for (size_t i = 0; i < ld.nranges; i++)
        free(ld.ranges[i].key);
    free(ld.ranges);
    return rc;
}

static struct transform_cfg transform_cfg;

#define TRANSFORM_KEY(n, t, f, d, fl, lo, hi)                                                      \
    TF_CFG_KEY(struct transform_cfg, n, t, f, d, fl, lo, hi)

static const struct tf_cfg_key transform_keys[] = {
    TRANSFORM_KEY("TICKFLOW_TRANSFORM_LAKE_MEMORY_MB", TF_CFG_INT, lake_memory_mb, "160", 0, 0,
                  65536),
};

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
    .after_commit = transform_lake,
    .tick = transform_lake_tick,
    .keys = transform_keys,
    .nkeys = TF_ARRAY_LEN(transform_keys),
    .cfg = &transform_cfg,
};

int main(void)
{
    return tf_svc_main(&transform_stage);
}
