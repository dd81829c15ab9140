/*
 * rollup.c - gold.bars_hourly and gold.bars_daily: the OHLCV rollups of
 * every bucket an execution's window touched, recomputed from all silver
 * bars in those buckets and upserted, then the derived columns (returns,
 * 20-period moving average, realised volatility) of those buckets and of
 * the 20 buckets after them, which depend on them, read with the 20
 * buckets before them as context. Everything runs in the run's fenced
 * transaction.
 *
 * Hourly buckets are UTC hours. Daily buckets are trading days as
 * tf_cal_trading_day() names them (New York date for US equities, UTC date
 * for crypto, the forex day rolling at 17:00 New York): the UTC range of
 * each touched day is found here, from the calendar, and handed to SQL.
 */
#include "aggregate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/pg.h"
#include "tf/time.h"

/*
 * Per bucket: open of the first bar, close of the last, high/low extremes,
 * volume summed (NULL when no bar has one), VWAP = sum(p * volume) /
 * sum(volume) where p is the bar's VWAP or, when it has none, its typical
 * price (h + l + c) / 3 (bars without a volume do not count; NULL when the
 * volume sums to nothing), trades summed (NULL when no bar has a count).
 * Floating-point sums are taken in time order, so that the same bars
 * always give the same bits whatever order silver returns them in.
 */
#define ROLLUP_COLS                                                                                \
    " (array_agg(b.open ORDER BY b.ts))[1], max(b.high), min(b.low),"                              \
    " (array_agg(b.close ORDER BY b.ts DESC))[1], sum(b.volume ORDER BY b.ts),"                    \
    " sum(coalesce(b.vwap, (b.high + b.low + b.close) / 3) * b.volume ORDER BY b.ts)"              \
    "  / nullif(sum(b.volume ORDER BY b.ts), 0),"                                                  \
    " sum(b.trades), count(*)"

#define ROLLUP_SET                                                                                 \
    " open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,"     \
    " volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trades = EXCLUDED.trades,"                   \
    " bar_count = EXCLUDED.bar_count, execution_id = EXCLUDED.execution_id,"                       \
    " updated_at = EXCLUDED.updated_at"

/* Whole hours: [hour(start), hour(end - 1) + 1h). */
static const char hourly_sql[] =
    "WITH up AS ("
    " INSERT INTO gold.bars_hourly AS g (ticker, source_timespan, bucket, open, high, low,"
    "  close, volume, vwap, trades, bar_count, execution_id, updated_at)"
    " SELECT b.ticker, b.timespan, date_trunc('hour', b.ts)," ROLLUP_COLS ", $5::uuid, now()"
    " FROM silver.bars b"
    " WHERE b.ticker = ANY($1::text[]) AND b.timespan = $2"
    "  AND b.ts >= $3::timestamptz AND b.ts < $4::timestamptz"
    " GROUP BY b.ticker, b.timespan, date_trunc('hour', b.ts)"
    " ON CONFLICT (ticker, source_timespan, bucket) DO UPDATE SET" ROLLUP_SET
    " RETURNING bar_count)"
    " SELECT count(*), coalesce(sum(bar_count), 0) FROM up";

/* $1: [{ticker, market, day, s, e}], one per ticker and touched trading day. */
static const char daily_sql[] =
    "WITH d AS (SELECT * FROM jsonb_to_recordset($1::jsonb)"
    "  AS d(ticker text, market text, day date, s timestamptz, e timestamptz)),"
    " up AS ("
    " INSERT INTO gold.bars_daily AS g (ticker, source_timespan, trading_day, market,"
    "  first_bar, last_bar, open, high, low, close, volume, vwap, trades, bar_count,"
    "  execution_id, updated_at)"
    " SELECT d.ticker, $2, d.day, d.market, min(b.ts), max(b.ts)," ROLLUP_COLS ", $3::uuid, now()"
    " FROM d JOIN silver.bars b ON b.ticker = d.ticker AND b.timespan = $2"
    "  AND b.ts >= d.s AND b.ts < d.e"
    " GROUP BY d.ticker, d.day, d.market"
    " ON CONFLICT (ticker, source_timespan, trading_day) DO UPDATE SET"
    "  market = EXCLUDED.market, first_bar = EXCLUDED.first_bar,"
    "  last_bar = EXCLUDED.last_bar," ROLLUP_SET " RETURNING 1)"
    " SELECT count(*) FROM up";

/*
 * Derived columns of TBL keyed by K (type KT). $1: [{ticker, k0, k1}]: the
 * touched buckets of each ticker are [k0, k1). Rows from the 20th bucket
 * before k0 to the 20th bucket from k1 are read; those from k0 on are
 * written. Returns are against the previous row of the same ticker and
 * source timespan; ma20 and vol20 stay NULL until their window is full.
 */
#define DERIVED_SQL(TBL, K, KT)                                                                    \
    "WITH t AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(ticker text, k0 " KT ", k1 " KT   \
    ")),"                                                                                          \
    " r AS (SELECT t.ticker, t.k0, t.k1,"                                                          \
    "  coalesce((SELECT min(x." K ") FROM (SELECT g." K " FROM " TBL " g"                          \
    "   WHERE g.ticker = t.ticker AND g.source_timespan = $2 AND g." K " < t.k0"                   \
    "   ORDER BY g." K " DESC LIMIT 20) x), t.k0) AS lo,"                                          \
    "  (SELECT max(y." K ") FROM (SELECT g." K " FROM " TBL " g"                                   \
    "   WHERE g.ticker = t.ticker AND g.source_timespan = $2 AND g." K " >= t.k1"                  \
    "   ORDER BY g." K " LIMIT 20) y) AS hi"                                                       \
    "  FROM t),"                                                                                   \
    " s AS (SELECT g.ticker, g." K " AS k, r.k0, g.close, lag(g.close) OVER w AS prev"             \
    "  FROM " TBL " g JOIN r ON g.ticker = r.ticker"                                               \
    "  WHERE g.source_timespan = $2 AND g." K " >= r.lo"                                           \
    "   AND (g." K " < r.k1 OR g." K " <= r.hi)"                                                   \
    "  WINDOW w AS (PARTITION BY g.ticker ORDER BY g." K ")),"                                     \
    " l AS (SELECT s.*,"                                                                           \
    "  CASE WHEN s.prev > 0 AND s.close > 0 THEN s.close / s.prev - 1 END AS ret,"                 \
    "  CASE WHEN s.prev > 0 AND s.close > 0 THEN ln(s.close / s.prev) END AS lr FROM s),"          \
    " m AS (SELECT l.*,"                                                                           \
    "  CASE WHEN count(l.close) OVER w = 20 THEN avg(l.close) OVER w END AS ma20,"                 \
    "  CASE WHEN count(l.lr) OVER w = 20 THEN stddev_samp(l.lr) OVER w END AS vol20"               \
    "  FROM l WINDOW w AS (PARTITION BY l.ticker ORDER BY l.k"                                     \
    "   ROWS BETWEEN 19 PRECEDING AND CURRENT ROW)),"                                              \
    " up AS (UPDATE " TBL " g SET ret = m.ret, log_ret = m.lr, ma20 = m.ma20, vol20 = m.vol20"     \
    "  FROM m WHERE g.ticker = m.ticker AND g.source_timespan = $2 AND g." K " = m.k"              \
    "   AND m.k >= m.k0 RETURNING 1)"                                                              \
    " SELECT count(*) FROM up"

static const char hourly_derived_sql[] = DERIVED_SQL("gold.bars_hourly", "bucket", "timestamptz");
static const char daily_derived_sql[] = DERIVED_SQL("gold.bars_daily", "trading_day", "date");

/* One touched trading day of a market and its UTC range. */
struct day_range {
    char day[11];
    int64_t s, e;
};

/*
 * The trading days of market m that [ws, we) touches, with their UTC
 * ranges, as tf_cal_trading_day() names them. Every market's day starts
 * on a whole UTC hour, so the hours around the window are walked and the
 * runs of one name are the days. *out is a new array (free()).
 */
static enum tf_rc day_ranges(enum tf_market m, int64_t ws, int64_t we, struct day_range **out,
                             size_t *n)
{
    int64_t t0 = ws - ws % 3600 - 48 * 3600;
    int64_t t1 = we + 48 * 3600;
    size_t cap = (size_t)((we - ws) / 86400) + 8;
    struct day_range *days = calloc(cap, sizeof(*days));
    char cur[11], label[11];
    int64_t run_start = t0;

    *out = NULL;
    *n = 0;
    if (!days)
        return TF_ERR_NOMEM;
    tf_cal_trading_day(m, t0, cur);
    for (int64_t t = t0 + 3600; t <= t1; t += 3600) {
        tf_cal_trading_day(m, t, label);
        if (strcmp(label, cur) == 0)
            continue;
        /* A complete day [run_start, t) named cur. */
        if (run_start > t0 && run_start < we && t > ws) {
            if (*n == cap) {
                struct day_range *more = realloc(days, 2 * cap * sizeof(*days));
                if (!more) {
                    free(days);
                    return TF_ERR_NOMEM;
                }
                days = more;
                cap *= 2;
            }
            memcpy(days[*n].day, cur, sizeof(cur));
            days[*n].s = run_start;
            days[*n].e = t;
            (*n)++;
        }
        memcpy(cur, label, sizeof(cur));
        run_start = t;
    }
    *out = days;
    return TF_OK;
}

/* Runs a one-row query and reads its first column as a count. */
static enum tf_rc exec_count(struct agg_ctx *ctx, const char *what, const char *sql, int n,
                             const char *const *params, long long *count)
{
    PGresult *res = tf_pg_exec(ctx->run->conn, sql, n, params);
    enum tf_rc rc = TF_OK;

    if (!tf_pg_ok(res) || PQntuples(res) != 1) {
        tf_run_fail(ctx->run, "%s failed: sqlstate %s", what, tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
    } else if (count) {
        *count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return rc;
}

static enum tf_rc ensure_partitions(struct agg_ctx *ctx, const char *table, int64_t from,
                                    int64_t to)
{
    char a[16], b[16];
    const char *params[3] = {table, a, b};

    tf_time_format_date(from, a, sizeof(a));
    tf_time_format_date(to, b, sizeof(b));
    return exec_count(ctx, "creating gold partitions",
                      "SELECT gold.ensure_partitions($1, $2::date, $3::date)", 3, params, NULL);
}

/* Prints a JSON array (new string, cJSON_free) or NULL. */
static char *print_take(cJSON *arr)
{
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;

    cJSON_Delete(arr);
    return s;
}

static enum tf_rc hourly(struct agg_ctx *ctx)
{
    struct tf_run *run = ctx->run;
    int64_t h0 = run->window_start - run->window_start % 3600;
    int64_t h1 = (run->window_end - 1) - (run->window_end - 1) % 3600 + 3600;
    char s0[32], s1[32];
    const char *params[5];
    PGresult *res = NULL;
    cJSON *ranges = cJSON_CreateArray();
    char *json = NULL;
    enum tf_rc rc;

    tf_time_format(h0, s0, sizeof(s0));
    tf_time_format(h1, s1, sizeof(s1));
    rc = ensure_partitions(ctx, "bars_hourly", h0, h1 - 1);
    if (rc != TF_OK)
        goto out;
    params[0] = ctx->ticker_array->data;
    params[1] = ctx->span;
    params[2] = s0;
    params[3] = s1;
    params[4] = run->execution_id;
    res = tf_pg_exec(run->conn, hourly_sql, 5, params);
    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "hourly rollup failed: sqlstate %s", tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
        goto out;
    }
    ctx->hourly_rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    ctx->bars_in = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    for (size_t i = 0; i < ctx->ntickers && ranges; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ticker", ctx->tickers[i].name);
        cJSON_AddStringToObject(o, "k0", s0);
        cJSON_AddStringToObject(o, "k1", s1);
        cJSON_AddItemToArray(ranges, o);
    }
    json = print_take(ranges);
    ranges = NULL;
    if (!json) {
        tf_run_fail(run, "out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    params[0] = json;
    rc = exec_count(ctx, "hourly derived columns", hourly_derived_sql, 2, params, NULL);
out:
    cJSON_free(json);
    PQclear(res);
    return rc;
}

static enum tf_rc daily(struct agg_ctx *ctx)
{
    static const enum tf_market markets[] = {TF_MARKET_US_EQUITY, TF_MARKET_CRYPTO,
                                             TF_MARKET_FOREX};
    struct tf_run *run = ctx->run;
    struct day_range *days[3] = {NULL, NULL, NULL};
    size_t ndays[3] = {0, 0, 0};
    cJSON *rows = cJSON_CreateArray(), *touched = cJSON_CreateArray();
    char *rows_json = NULL, *touched_json = NULL;
    const char *params[3];
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    enum tf_rc rc = TF_OK;

    if (!rows || !touched) {
        rc = TF_ERR_NOMEM;
        goto nomem;
    }
    for (size_t k = 0; k < 3; k++) {
        int used = 0;
        for (size_t i = 0; i < ctx->ntickers && !used; i++)
            used = ctx->tickers[i].market == markets[k];
        if (!used)
            continue;
        rc = day_ranges(markets[k], run->window_start, run->window_end, &days[k], &ndays[k]);
        if (rc != TF_OK)
            goto nomem;
        for (size_t d = 0; d < ndays[k]; d++) {
            int64_t day = 0;
            char date[32];
            snprintf(date, sizeof(date), "%sT00:00:00Z", days[k][d].day);
            if (tf_time_parse(date, &day) == TF_OK) {
                lo = day < lo ? day : lo;
                hi = day > hi ? day : hi;
            }
        }
    }
    for (size_t i = 0; i < ctx->ntickers; i++) {
        size_t k = (size_t)ctx->tickers[i].market;
        struct day_range *dr = k < 3 ? days[k] : NULL;
        size_t nd = k < 3 ? ndays[k] : 0;
        char s[32], e[32], k1[32];
        cJSON *o;

        for (size_t d = 0; d < nd; d++) {
            tf_time_format(dr[d].s, s, sizeof(s));
            tf_time_format(dr[d].e, e, sizeof(e));
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "ticker", ctx->tickers[i].name);
            cJSON_AddStringToObject(o, "market", tf_market_name(ctx->tickers[i].market));
            cJSON_AddStringToObject(o, "day", dr[d].day);
            cJSON_AddStringToObject(o, "s", s);
            cJSON_AddStringToObject(o, "e", e);
            cJSON_AddItemToArray(rows, o);
        }
        if (nd == 0)
            continue;
        /* The day after the last touched one, as the exclusive end. */
        {
            int64_t last = 0;
            char date[32];
            snprintf(date, sizeof(date), "%sT00:00:00Z", dr[nd - 1].day);
            if (tf_time_parse(date, &last) != TF_OK)
                last = 0;
            tf_time_format_date(last + 86400, k1, sizeof(k1));
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ticker", ctx->tickers[i].name);
        cJSON_AddStringToObject(o, "k0", dr[0].day);
        cJSON_AddStringToObject(o, "k1", k1);
        cJSON_AddItemToArray(touched, o);
    }
    rows_json = print_take(rows);
    touched_json = print_take(touched);
    rows = touched = NULL;
    if (!rows_json || !touched_json) {
        rc = TF_ERR_NOMEM;
        goto nomem;
    }
    if (lo <= hi) {
        rc = ensure_partitions(ctx, "bars_daily", lo, hi);
        if (rc != TF_OK)
            goto out;
    }
    params[0] = rows_json;
    params[1] = ctx->span;
    params[2] = run->execution_id;
    rc = exec_count(ctx, "daily rollup", daily_sql, 3, params, &ctx->daily_rows);
    if (rc != TF_OK)
        goto out;
    params[0] = touched_json;
    rc = exec_count(ctx, "daily derived columns", daily_derived_sql, 2, params, NULL);
    goto out;
nomem:
    tf_run_fail(run, "out of memory");
out:
    cJSON_Delete(rows);
    cJSON_Delete(touched);
    cJSON_free(rows_json);
    cJSON_free(touched_json);
    for (size_t k = 0; k < 3; k++)
        free(days[k]);
    return rc;
}

enum tf_rc aggregate_rollups(struct agg_ctx *ctx)
{
    enum tf_rc rc = hourly(ctx);

    if (rc == TF_OK)
        rc = daily(ctx);
    return rc;
}
