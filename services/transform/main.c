/*
 * main.c - the transform stage: for each bronze page that extract landed,
 * check its checksum, parse the bars, apply the rules (pages.c), and load
 * the good ones into silver.bars in one lease-fenced transaction; the
 * others go to the quarantine, silver.rejected_bars, with their rule.
 * Triggered by tickflow.bronze.v1 events or by a POST with the execution id
 * (with "replay": true, a finished run is rebuilt from the same bronze);
 * publishes on tickflow.silver.v1. After the commit, the Parquet files of
 * the lake partitions the run touched are rewritten (lake.c).
 *
 * The load streams: one page at a time is read, checked and sent with COPY
 * into a staging table of the transaction (its rejects straight into the
 * quarantine), so memory is bounded by a page, not the execution. One
 * INSERT ... SELECT DISTINCT ON then upserts the staged bars: within the
 * execution a later page wins over an earlier one (then a later item in
 * the page); across executions the bar fetched last from the vendor wins
 * (silver.bars.fetched_at is the extract's finish), so a retry or a replay
 * leaves silver as it was, and a later correction replaces the old value.
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
#include "tf/time.h"
#include "transform.h"

#define MAX_OBJECT_BYTES (512u * 1024 * 1024)
#define MAX_COPY_BYTES   (1024u * 1024 * 1024)
/* Reject rows get a time only inside years 1900..9999 (PostgreSQL's range is wider). */
#define TS_MIN_MS (-2208988800000LL)
#define TS_MAX_MS 253402300800000LL

static const char stage_sql[] =
    "CREATE TEMP TABLE transform_stage (ticker text NOT NULL, timespan text NOT NULL,"
    " provider text NOT NULL, t bigint NOT NULL, o float8 NOT NULL, h float8 NOT NULL,"
    " l float8 NOT NULL, c float8 NOT NULL, v float8, vw float8, n bigint, ord bigint NOT NULL)"
    " ON COMMIT DROP";

static const char copy_stage_sql[] =
    "COPY pg_temp.transform_stage (ticker, timespan, provider, t, o, h, l, c, v, vw, n, ord)"
    " FROM STDIN";

static const char copy_reject_sql[] =
    "COPY silver.rejected_bars (execution_id, attempt, job_name, ticker, timespan, ts, rule, raw,"
    " object_uri, page, item) FROM STDIN";

/* The lake partitions the load changes: its own bars, and any whose provider it replaces. */
static const char touched_sql[] =
    "SELECT DISTINCT provider, timespan,"
    " to_char((timestamptz 'epoch' + t * interval '1 millisecond') AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD') FROM pg_temp.transform_stage"
    " UNION"
    " SELECT DISTINCT b.provider, b.timespan, to_char(b.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    " FROM silver.bars b JOIN pg_temp.transform_stage s ON s.ticker = b.ticker"
    " AND s.timespan = b.timespan AND b.ts = timestamptz 'epoch' + s.t * interval '1 millisecond'"
    " WHERE b.ts >= $1::timestamptz AND b.ts < $2::timestamptz AND b.provider <> s.provider"
    " AND b.fetched_at <= coalesce($3::timestamptz, now())"
    " ORDER BY 1, 2, 3";

static const char upsert_sql[] =
    "WITH src AS (SELECT DISTINCT ON (ticker, timespan, t) ticker, timespan, provider, t, o, h,"
    "  l, c, v, vw, n FROM pg_temp.transform_stage ORDER BY ticker, timespan, t, ord DESC),"
    " up AS (INSERT INTO silver.bars AS s (ticker, timespan, ts, open, high, low, close,"
    "  volume, vwap, trades, execution_id, ingested_at, provider, fetched_at)"
    "  SELECT ticker, timespan, timestamptz 'epoch' + t * interval '1 millisecond', o, h, l, c,"
    "  v, vw, n, $1::uuid, now(), provider, coalesce($2::timestamptz, now()) FROM src"
    "  ON CONFLICT (ticker, timespan, ts) DO UPDATE SET open = EXCLUDED.open,"
    "  high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,"
    "  volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trades = EXCLUDED.trades,"
    "  execution_id = EXCLUDED.execution_id, ingested_at = EXCLUDED.ingested_at,"
    "  provider = EXCLUDED.provider, fetched_at = EXCLUDED.fetched_at"
    "  WHERE s.fetched_at <= EXCLUDED.fetched_at RETURNING 1)"
    " SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM up)";

/* What one run keeps from page to page. */
struct load {
    struct tf_run *run;
    const cJSON *tickers; /* the job's */
    struct tf_buf raw, plain;
    struct tf_buf good, bad; /* COPY text of a page's good bars and rejects */
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

/* Appends a double (%.17g: exact) or \N, then sep. */
static enum tf_rc copy_dbl(struct tf_buf *out, int has, double v, char sep)
{
    return has ? tf_buf_printf(out, "%.17g%c", v, sep) : tf_buf_printf(out, "\\N%c", sep);
}

/* Sends rows (COPY text) with the COPY statement sql. */
static enum tf_rc copy_in(struct tf_run *run, const char *sql, const struct tf_buf *rows)
{
    PGresult *res = PQexec(run->conn, sql);
    enum tf_rc rc = TF_OK;
    int ok;

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        tf_run_fail(run, "COPY refused: sqlstate %s", tf_pg_sqlstate(res));
        PQclear(res);
        return TF_ERR_DB;
    }
    PQclear(res);
    ok = 1;
    for (size_t off = 0; ok && off < rows->len;) {
        size_t n = rows->len - off > (1u << 20) ? (1u << 20) : rows->len - off;
        ok = PQputCopyData(run->conn, rows->data + off, (int)n) == 1;
        off += n;
    }
    if (PQputCopyEnd(run->conn, ok ? NULL : "client gave up") != 1)
        ok = 0;
    while ((res = PQgetResult(run->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == TF_OK) {
            tf_run_fail(run, "COPY failed: sqlstate %s", tf_pg_sqlstate(res));
            rc = TF_ERR_DB;
        }
        PQclear(res);
    }
    if (!ok && rc == TF_OK) {
        tf_run_fail(run, "COPY failed: the connection broke");
        rc = TF_ERR_DB;
    }
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

/* The COPY row of a good bar. */
static enum tf_rc good_row(struct tf_buf *out, const struct page *pg, const char *span,
                           const char *provider, const struct bar *b, long long ord)
{
    enum tf_rc rc = copy_str(out, pg->ticker);

    rc = rc ? rc : tf_buf_puts(out, "\t");
    rc = rc ? rc : copy_str(out, span);
    rc = rc ? rc : tf_buf_puts(out, "\t");
    rc = rc ? rc : copy_str(out, provider);
    rc = rc ? rc
            : tf_buf_printf(out, "\t%lld\t%.17g\t%.17g\t%.17g\t%.17g\t", b->t, b->o, b->h, b->l,
                            b->c);
    rc = rc ? rc : copy_dbl(out, b->has_v, b->v, '\t');
    rc = rc ? rc : copy_dbl(out, b->has_vw, b->vw, '\t');
    if (rc == TF_OK)
        rc = b->has_n ? tf_buf_printf(out, "%lld\t", b->n) : tf_buf_puts(out, "\\N\t");
    return rc ? rc : tf_buf_printf(out, "%lld\n", ord);
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
    int known;

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
    tf_buf_reset(&ld->good);
    tf_buf_reset(&ld->bad);
    for (size_t i = 0; i < pg.n && rc == TF_OK; i++) {
        const struct bar *b = &pg.bars[i];

        if (b->rule)
            rc = bad_row(ld, &pg, span, uri, pageno, b);
        else
            rc = good_row(&ld->good, &pg, span, provider, b,
                          ((long long)index << 32) | (long long)b->item);
    }
    if (rc != TF_OK) {
        tf_run_fail(run, "page of %s too large to load", ticker);
        goto out;
    }
    if (ld->good.len)
        rc = copy_in(run, copy_stage_sql, &ld->good);
    if (rc == TF_OK && ld->bad.len)
        rc = copy_in(run, copy_reject_sql, &ld->bad);
    run->records_in += (long long)pg.n;
    run->records_rejected += (long long)(pg.n - good);
out:
    transform_page_cleanup(&pg);
    cJSON_Delete(root);
    return rc;
}

/*
 * Makes the monthly partitions the window needs, committed on a connection
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
    PGresult *res = tf_pg_exec(side ? side : run->conn, sql, 2, params);
    enum tf_rc rc = TF_OK;

    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "cannot make silver's monthly partitions: sqlstate %s",
                    tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
    }
    PQclear(res);
    tf_svc_conn_put(run->svc, side);
    return rc;
}

/* Upserts the staged bars and notes the lake partitions they touch in run->state. */
static enum tf_rc upsert(struct tf_run *run, const char *ws, const char *we, const char *fetched)
{
    const char *tparams[3] = {ws, we, fetched};
    const char *uparams[2] = {run->execution_id, fetched};
    PGresult *res = NULL;
    enum tf_rc rc;

    rc = run_sql(run, touched_sql, 3, tparams, "listing the touched lake partitions", &res);
    if (rc != TF_OK)
        return rc;
    run->state = cJSON_CreateArray();
    for (int i = 0; run->state && i < PQntuples(res); i++) {
        cJSON *p = cJSON_CreateObject();

        cJSON_AddStringToObject(p, "provider", PQgetvalue(res, i, 0));
        cJSON_AddStringToObject(p, "timespan", PQgetvalue(res, i, 1));
        cJSON_AddStringToObject(p, "date", PQgetvalue(res, i, 2));
        cJSON_AddItemToArray(run->state, p);
    }
    PQclear(res);
    res = NULL;
    rc = run_sql(run, upsert_sql, 2, uparams, "upsert into silver.bars", &res);
    if (rc != TF_OK)
        return rc;
    run->records_out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    tf_log_info(&run->log, "silver bars loaded=%lld changed=%lld", run->records_out,
                strtoll(PQgetvalue(res, 0, 1), NULL, 10));
    PQclear(res);
    return TF_OK;
}

static enum tf_rc transform_run(struct tf_run *run)
{
    const cJSON *objects = cJSON_GetObjectItemCaseSensitive(run->upstream, "objects");
    const char *fetched = tf_json_str(run->upstream, "finished_at");
    const char *id_param[1] = {run->execution_id};
    const cJSON *obj;
    struct load ld;
    char ws[32], we[32];
    enum tf_rc rc = TF_OK;
    int index = 0;

    memset(&ld, 0, sizeof(ld));
    ld.run = run;
    ld.tickers = cJSON_GetObjectItemCaseSensitive(run->record, "tickers");
    snprintf(ld.attempt, sizeof(ld.attempt), "%d", run->attempt);
    tf_time_format(run->window_start, ws, sizeof(ws));
    tf_time_format(run->window_end, we, sizeof(we));
    rc = ensure_partitions(run, ws, we);
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
    if (rc != TF_OK)
        return rc;
    tf_buf_init(&ld.raw, MAX_OBJECT_BYTES);
    tf_buf_init(&ld.plain, MAX_OBJECT_BYTES);
    tf_buf_init(&ld.good, MAX_COPY_BYTES);
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
        rc = upsert(run, ws, we, fetched);
    tf_buf_cleanup(&ld.raw);
    tf_buf_cleanup(&ld.plain);
    tf_buf_cleanup(&ld.good);
    tf_buf_cleanup(&ld.bad);
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
    .after_commit = transform_lake,
};

static const struct tf_cfg_key transform_keys[] = {TF_SVC_KEYS("8082")};

int main(void)
{
    return tf_svc_main(&transform_stage, transform_keys, TF_ARRAY_LEN(transform_keys));
}
