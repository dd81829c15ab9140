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

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/pg.h"
#include "tf/time.h"

/*
 * One statement reads silver once for the whole execution:
 *
 * h   the UTC hours [$3, $4) the window touched, per ticker, from all
 *     silver bars in them: open of the first bar, close of the last,
 *     high/low extremes, volume summed (NULL when no bar has one), pv =
 *     sum(p * volume) where p is the bar's VWAP or, when it has none, its
 *     typical price (h + l + c) / 3 (bars without a volume do not count),
 *     trades summed (NULL when no bar has a count), the bars, the first and
 *     last bar's start; and, for the checks, the bars in the window [$6,
 *     $7) and (when $10) the sum of their closes.
 * o   the same per hour for the hours of the touched trading days outside
 *     [$3, $4) ($9: [{ticker, s, e}]), not written anywhere.
 * up_h  h upserted into gold.bars_hourly, VWAP = pv / volume (NULL when
 *     the volume sums to nothing).
 * up_d  every touched trading day ($8: [{ticker, market, day, s, e}]) from
 *     its hours: a trading day is a union of whole UTC hours in every
 *     market, so open is its first hour's open, close its last hour's
 *     close, volume, pv, trades and bars are sums of the hours' and VWAP
 *     is sum(pv) / sum(volume), the same quantities as over its bars.
 *
 * Floating-point sums are taken in time order (bars within an hour, hours
 * within a day), so that the same bars always give the same bits whatever
 * order silver returns them in. The answer is one row per ticker of $1:
 * bars in the hours, bars in the window, the window's average close, then
 * the hourly and daily rows written.
 */
#define HOUR_COLS                                                                                  \
    " b.ticker, date_trunc('hour', b.ts) AS bucket,"                                               \
    " (array_agg(b.open ORDER BY b.ts))[1] AS open, max(b.high) AS high, min(b.low) AS low,"       \
    " (array_agg(b.close ORDER BY b.ts DESC))[1] AS close, sum(b.volume ORDER BY b.ts) AS volume," \
    " sum(coalesce(b.vwap, (b.high + b.low + b.close) / 3) * b.volume ORDER BY b.ts) AS pv,"       \
    " sum(b.trades) AS trades, count(*) AS n, min(b.ts) AS first_bar, max(b.ts) AS last_bar"

#define ROLLUP_SET                                                                                 \
    " open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,"     \
    " volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trades = EXCLUDED.trades,"                   \
    " bar_count = EXCLUDED.bar_count, execution_id = EXCLUDED.execution_id,"                       \
    " updated_at = EXCLUDED.updated_at"

static const char rollup_sql[] =
    "WITH h AS MATERIALIZED (SELECT" HOUR_COLS ","
    "  count(*) FILTER (WHERE b.ts >= $6::timestamptz AND b.ts < $7::timestamptz) AS n_win,"
    "  sum(b.close ORDER BY b.ts) FILTER (WHERE $10::boolean"
    "   AND b.ts >= $6::timestamptz AND b.ts < $7::timestamptz) AS close_win"
    " FROM silver.bars b"
    " WHERE b.ticker = ANY($1::text[]) AND b.timespan = $2"
    "  AND b.ts >= $3::timestamptz AND b.ts < $4::timestamptz"
    " GROUP BY b.ticker, date_trunc('hour', b.ts)),"
    " o AS (SELECT" HOUR_COLS
    " FROM jsonb_to_recordset($9::jsonb) AS x(ticker text, s timestamptz, e timestamptz)"
    " JOIN silver.bars b ON b.ticker = x.ticker AND b.timespan = $2"
    "  AND b.ts >= x.s AND b.ts < x.e"
    " GROUP BY b.ticker, date_trunc('hour', b.ts)),"
    " hh AS (SELECT ticker, bucket, open, high, low, close, volume, pv, trades, n, first_bar,"
    "  last_bar FROM h UNION ALL SELECT ticker, bucket, open, high, low, close, volume, pv,"
    "  trades, n, first_bar, last_bar FROM o),"
    " up_h AS (INSERT INTO gold.bars_hourly AS g (ticker, source_timespan, bucket, open, high,"
    "  low, close, volume, vwap, trades, bar_count, execution_id, updated_at)"
    " SELECT h.ticker, $2, h.bucket, h.open, h.high, h.low, h.close, h.volume,"
    "  h.pv / nullif(h.volume, 0), h.trades, h.n, $5::uuid, now() FROM h"
    " ON CONFLICT (ticker, source_timespan, bucket) DO UPDATE SET" ROLLUP_SET " RETURNING 1),"
    " d AS (SELECT * FROM jsonb_to_recordset($8::jsonb)"
    "  AS d(ticker text, market text, day date, s timestamptz, e timestamptz)),"
    " up_d AS (INSERT INTO gold.bars_daily AS g (ticker, source_timespan, trading_day, market,"
    "  first_bar, last_bar, open, high, low, close, volume, vwap, trades, bar_count,"
    "  execution_id, updated_at)"
    " SELECT d.ticker, $2, d.day, d.market, min(hh.first_bar), max(hh.last_bar),"
    "  (array_agg(hh.open ORDER BY hh.bucket))[1], max(hh.high), min(hh.low),"
    "  (array_agg(hh.close ORDER BY hh.bucket DESC))[1], sum(hh.volume ORDER BY hh.bucket),"
    "  sum(hh.pv ORDER BY hh.bucket) / nullif(sum(hh.volume ORDER BY hh.bucket), 0),"
    "  sum(hh.trades), sum(hh.n), $5::uuid, now()"
    " FROM d JOIN hh ON hh.ticker = d.ticker AND hh.bucket >= d.s AND hh.bucket < d.e"
    " GROUP BY d.ticker, d.day, d.market"
    " ON CONFLICT (ticker, source_timespan, trading_day) DO UPDATE SET"
    "  market = EXCLUDED.market, first_bar = EXCLUDED.first_bar,"
    "  last_bar = EXCLUDED.last_bar," ROLLUP_SET " RETURNING 1)"
    " SELECT t.ticker, coalesce(sum(h.n), 0), coalesce(sum(h.n_win), 0),"
    "  sum(h.close_win ORDER BY h.bucket) / nullif(sum(h.n_win), 0),"
    "  (SELECT count(*) FROM up_h), (SELECT count(*) FROM up_d)"
    " FROM unnest($1::text[]) AS t(ticker) LEFT JOIN h ON h.ticker = t.ticker"
    " GROUP BY t.ticker";

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

/* Adds {"ticker", ka: a, kb: b} to arr. */
static void add_range(cJSON *arr, const char *ticker, const char *ka, int64_t a, const char *kb,
                      int64_t b, int dates)
{
    cJSON *o = cJSON_CreateObject();
    char sa[32], sb[32];

    if (dates) {
        tf_time_format_date(a, sa, sizeof(sa));
        tf_time_format_date(b, sb, sizeof(sb));
    } else {
        tf_time_format(a, sa, sizeof(sa));
        tf_time_format(b, sb, sizeof(sb));
    }
    cJSON_AddStringToObject(o, "ticker", ticker);
    cJSON_AddStringToObject(o, ka, sa);
    cJSON_AddStringToObject(o, kb, sb);
    cJSON_AddItemToArray(arr, o);
}

/* The midnight UTC of a YYYY-MM-DD label (0 when unreadable). */
static int64_t day_start(const char *day)
{
    char date[32];
    int64_t t = 0;

    snprintf(date, sizeof(date), "%sT00:00:00Z", day);
    if (tf_time_parse(date, &t) != TF_OK)
        t = 0;
    return t;
}

/* Reads the rollup statement's answer: one row per ticker. */
static void read_answer(struct agg_ctx *ctx, PGresult *res)
{
    ctx->hourly_rows = ctx->daily_rows = ctx->bars_in = 0;
    for (size_t i = 0; i < ctx->ntickers; i++) {
        ctx->tickers[i].actual = 0;
        ctx->tickers[i].avg_close = NAN;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *name = PQgetvalue(res, r, 0);
        ctx->bars_in += strtoll(PQgetvalue(res, r, 1), NULL, 10);
        ctx->hourly_rows = strtoll(PQgetvalue(res, r, 4), NULL, 10);
        ctx->daily_rows = strtoll(PQgetvalue(res, r, 5), NULL, 10);
        for (size_t i = 0; i < ctx->ntickers; i++) {
            if (strcmp(ctx->tickers[i].name, name) != 0)
                continue;
            ctx->tickers[i].actual = strtoll(PQgetvalue(res, r, 2), NULL, 10);
            if (!PQgetisnull(res, r, 3))
                ctx->tickers[i].avg_close = strtod(PQgetvalue(res, r, 3), NULL);
        }
    }
}

enum tf_rc aggregate_rollups(struct agg_ctx *ctx)
{
    static const enum tf_market markets[] = {TF_MARKET_US_EQUITY, TF_MARKET_CRYPTO,
                                             TF_MARKET_FOREX};
    struct tf_run *run = ctx->run;
    int64_t h0 = run->window_start - run->window_start % 3600;
    int64_t h1 = (run->window_end - 1) - (run->window_end - 1) % 3600 + 3600;
    struct day_range *days[3] = {NULL, NULL, NULL};
    size_t ndays[3] = {0, 0, 0};
    cJSON *rows = cJSON_CreateArray(), *outside = cJSON_CreateArray();
    cJSON *htouched = cJSON_CreateArray(), *dtouched = cJSON_CreateArray();
    char *rows_json = NULL, *outside_json = NULL, *htouched_json = NULL, *dtouched_json = NULL;
    char s0[32], s1[32], ws[32], we[32];
    const char *params[10];
    int64_t lo = INT64_MAX, hi = INT64_MIN, t0, t1, t2;
    PGresult *res = NULL;
    enum tf_rc rc = TF_OK;

    if (!rows || !outside || !htouched || !dtouched) {
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
            int64_t day = day_start(days[k][d].day);
            lo = day < lo ? day : lo;
            hi = day > hi ? day : hi;
        }
    }
    for (size_t i = 0; i < ctx->ntickers; i++) {
        const char *name = ctx->tickers[i].name;
        size_t k = (size_t)ctx->tickers[i].market;
        struct day_range *dr = k < 3 ? days[k] : NULL;
        size_t nd = k < 3 ? ndays[k] : 0;

        add_range(htouched, name, "k0", h0, "k1", h1, 0);
        for (size_t d = 0; d < nd; d++) {
            char s[32], e[32];
            cJSON *o = cJSON_CreateObject();
            tf_time_format(dr[d].s, s, sizeof(s));
            tf_time_format(dr[d].e, e, sizeof(e));
            cJSON_AddStringToObject(o, "ticker", name);
            cJSON_AddStringToObject(o, "market", tf_market_name(ctx->tickers[i].market));
            cJSON_AddStringToObject(o, "day", dr[d].day);
            cJSON_AddStringToObject(o, "s", s);
            cJSON_AddStringToObject(o, "e", e);
            cJSON_AddItemToArray(rows, o);
        }
        if (nd == 0)
            continue;
        /* The touched days' hours the window's hours do not cover. */
        if (dr[0].s < h0)
            add_range(outside, name, "s", dr[0].s, "e", h0, 0);
        if (dr[nd - 1].e > h1)
            add_range(outside, name, "s", h1, "e", dr[nd - 1].e, 0);
        /* Up to the day after the last touched one, exclusive. */
        add_range(dtouched, name, "k0", day_start(dr[0].day), "k1",
                  day_start(dr[nd - 1].day) + 86400, 1);
    }
    rows_json = print_take(rows);
    outside_json = print_take(outside);
    htouched_json = print_take(htouched);
    dtouched_json = print_take(dtouched);
    rows = outside = htouched = dtouched = NULL;
    if (!rows_json || !outside_json || !htouched_json || !dtouched_json) {
        rc = TF_ERR_NOMEM;
        goto nomem;
    }
    rc = ensure_partitions(ctx, "bars_hourly", h0, h1 - 1);
    if (rc == TF_OK && lo <= hi)
        rc = ensure_partitions(ctx, "bars_daily", lo, hi);
    if (rc != TF_OK)
        goto out;
    tf_time_format(h0, s0, sizeof(s0));
    tf_time_format(h1, s1, sizeof(s1));
    tf_time_format(run->window_start, ws, sizeof(ws));
    tf_time_format(run->window_end, we, sizeof(we));
    params[0] = ctx->ticker_array->data;
    params[1] = ctx->span;
    params[2] = s0;
    params[3] = s1;
    params[4] = run->execution_id;
    params[5] = ws;
    params[6] = we;
    params[7] = rows_json;
    params[8] = outside_json;
    params[9] = ctx->need_avg_close ? "t" : "f";
    t0 = tf_time_mono_ms();
    res = tf_pg_exec(run->conn, rollup_sql, 10, params);
    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "rollups failed: sqlstate %s", tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
        goto out;
    }
    read_answer(ctx, res);
    t1 = tf_time_mono_ms();
    params[0] = htouched_json;
    rc = exec_count(ctx, "hourly derived columns", hourly_derived_sql, 2, params, NULL);
    if (rc != TF_OK)
        goto out;
    t2 = tf_time_mono_ms();
    params[0] = dtouched_json;
    rc = exec_count(ctx, "daily derived columns", daily_derived_sql, 2, params, NULL);
    tf_log_info(&run->log, "rollups ms=%lld hourly_derived_ms=%lld daily_derived_ms=%lld",
                (long long)(t1 - t0), (long long)(t2 - t1), (long long)(tf_time_mono_ms() - t2));
    goto out;
nomem:
    tf_run_fail(run, "out of memory");
out:
    PQclear(res);
    cJSON_Delete(rows);
    cJSON_Delete(outside);
    cJSON_Delete(htouched);
    cJSON_Delete(dtouched);
    cJSON_free(rows_json);
    cJSON_free(outside_json);
    cJSON_free(htouched_json);
    cJSON_free(dtouched_json);
    for (size_t k = 0; k < 3; k++)
        free(days[k]);
    return rc;
}
