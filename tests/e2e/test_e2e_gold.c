/*
 * test_e2e_gold.c - gold in depth, on the native services with the real
 * PostgreSQL and Kafka: hourly and daily rollups and their derived columns
 * (return, log return, 20-period moving average, realised volatility)
 * checked against values computed here, in C, from the silver rows.
 *
 *   - US equities over six weeks (a holiday, the March DST switch), run as
 *     two executions in reverse order: the later window first, then the
 *     earlier one, whose derived columns must flow into the 20 buckets
 *     after it;
 *   - crypto and forex at 5-minute bars over a weekend and the DST switch:
 *     trading days by UTC date for crypto, rolling at 17:00 New York for
 *     forex;
 *   - a new execution over a window already done leaves gold identical.
 *
 * Expected trading days come from this file's own rule (New York time from
 * tf/time.h), not from the calendar the service uses.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/marketsim/gen.h"
#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/time.h"

#define SEED    11
#define API_KEY "gold-Key-5d2a90"

static struct h_stack stack;

enum market { EQ, CRYPTO, FX };

/* One silver bar as read back. */
struct bar {
    int64_t ts;
    double o, h, l, c;
    double v, vw; /* NAN when NULL */
    long long n;  /* -1 when NULL */
};

/* One expected bucket. */
struct bucket {
    char key[32]; /* hour "YYYY-MM-DDTHH:00:00Z" or day "YYYY-MM-DD" */
    int64_t first, last;
    double o, h, l, c, vol, pv, pvol; /* pv / pvol: VWAP numerator, denominator */
    int has_vol;
    long long trades;
    int has_trades;
    long count;
    double ret, lr, ma20, vol20; /* NAN when NULL */
};

/* The trading day of a bar, by this test's own rule. */
static void trading_day(enum market m, int64_t ts, char out[11])
{
    int64_t t = ts;

    if (m == FX)
        t += 7 * 3600;
    if (m != CRYPTO)
        t += tf_time_us_eastern_offset(t);
    tf_time_format_date(t, out, 11);
}

static int post_and_wait(const char *job, const char *ws, const char *we, char id[TF_UUID_LEN + 1])
{
    char body[512];
    struct h_resp r;
    cJSON *rec;
    int ok;

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"%s\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\"}",
             id, job, ws, we);
    if (h_http("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &r) != 0 ||
        r.status != 202) {
        CHECK(0, "POST %s %s..%s: %ld", job, ws, we, r.status);
        h_resp_free(&r);
        return -1;
    }
    h_resp_free(&r);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, h_timeout(300));
    ok = rec && h_jstr(rec, "status") && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0;
    CHECK(ok, "%s %s..%s: aggregate %s (%s)", job, ws, we, rec ? h_jstr(rec, "status") : "timeout",
          rec && h_jstr(rec, "error") ? h_jstr(rec, "error") : "");
    cJSON_Delete(rec);
    return ok ? 0 : -1;
}

/* Reads every silver bar of ticker and span, ascending. */
static size_t read_silver(const char *ticker, const char *span, struct bar **out)
{
    const char *params[2] = {ticker, span};
    PGresult *res = PQexecParams(stack.db,
                                 "SELECT extract(epoch FROM ts)::bigint, open, high, low, close,"
                                 " volume, vwap, trades FROM silver.bars"
                                 " WHERE ticker = $1 AND timespan = $2 ORDER BY ts",
                                 2, NULL, params, NULL, NULL, 0);
    size_t n = (size_t)PQntuples(res);
    struct bar *b = calloc(n + 1, sizeof(*b));

    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        b[i].ts = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        b[i].o = strtod(PQgetvalue(res, r, 1), NULL);
        b[i].h = strtod(PQgetvalue(res, r, 2), NULL);
        b[i].l = strtod(PQgetvalue(res, r, 3), NULL);
        b[i].c = strtod(PQgetvalue(res, r, 4), NULL);
        b[i].v = PQgetisnull(res, r, 5) ? NAN : strtod(PQgetvalue(res, r, 5), NULL);
        b[i].vw = PQgetisnull(res, r, 6) ? NAN : strtod(PQgetvalue(res, r, 6), NULL);
        b[i].n = PQgetisnull(res, r, 7) ? -1 : strtoll(PQgetvalue(res, r, 7), NULL, 10);
    }
    PQclear(res);
    *out = b;
    return n;
}

/* Rolls bars up by key (hourly when daily_market < 0, else trading days). */
static size_t rollup(const struct bar *b, size_t n, int daily_market, struct bucket **out)
{
    struct bucket *k = calloc(n + 1, sizeof(*k));
    size_t nk = 0;

    for (size_t i = 0; i < n; i++) {
        char key[32];
        struct bucket *cur;
        if (daily_market < 0)
            tf_time_format(b[i].ts - b[i].ts % 3600, key, sizeof(key));
        else
            trading_day((enum market)daily_market, b[i].ts, key);
        if (nk == 0 || strcmp(k[nk - 1].key, key) != 0) {
            cur = &k[nk++];
            snprintf(cur->key, sizeof(cur->key), "%s", key);
            cur->first = b[i].ts;
            cur->o = b[i].o;
            cur->h = b[i].h;
            cur->l = b[i].l;
        }
        cur = &k[nk - 1];
        cur->last = b[i].ts;
        cur->h = b[i].h > cur->h ? b[i].h : cur->h;
        cur->l = b[i].l < cur->l ? b[i].l : cur->l;
        cur->c = b[i].c;
        cur->count++;
        if (!isnan(b[i].v)) {
            double p = isnan(b[i].vw) ? (b[i].h + b[i].l + b[i].c) / 3 : b[i].vw;
            cur->has_vol = 1;
            cur->vol += b[i].v;
            cur->pv += p * b[i].v;
            cur->pvol += b[i].v;
        }
        if (b[i].n >= 0) {
            cur->has_trades = 1;
            cur->trades += b[i].n;
        }
    }
    /* Derived columns over the whole history. */
    for (size_t i = 0; i < nk; i++) {
        k[i].ret = k[i].lr = k[i].ma20 = k[i].vol20 = NAN;
        if (i >= 1) {
            k[i].ret = k[i].c / k[i - 1].c - 1;
            k[i].lr = log(k[i].c / k[i - 1].c);
        }
        if (i >= 19) {
            double s = 0;
            for (size_t j = i - 19; j <= i; j++)
                s += k[j].c;
            k[i].ma20 = s / 20;
        }
        if (i >= 20) {
            double mean = 0, ss = 0;
            for (size_t j = i - 19; j <= i; j++)
                mean += k[j].lr;
            mean /= 20;
            for (size_t j = i - 19; j <= i; j++)
                ss += (k[j].lr - mean) * (k[j].lr - mean);
            k[i].vol20 = sqrt(ss / 19);
        }
    }
    *out = k;
    return nk;
}

/* a and b agree: both NULL, or within a relative 1e-9 (1e-15 absolute near 0). */
static int near(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-9 * fabs(b) + 1e-15;
}

static double colv(PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? NAN : strtod(PQgetvalue(res, r, c), NULL);
}

/*
 * Compares every gold row of ticker in table with the expected buckets.
 * Returns how many rows have each derived column set (for the caller's
 * "exercised with values" checks) in filled[4].
 */
static void compare(const char *ticker, const char *span, int daily, const struct bucket *k,
                    size_t nk, long filled[4])
{
    const char *params[2] = {ticker, span};
    PGresult *res = PQexecParams(
        stack.db,
        daily ? "SELECT to_char(trading_day, 'YYYY-MM-DD'), open, high, low, close, volume, vwap,"
                " trades, bar_count, ret, log_ret, ma20, vol20,"
                " extract(epoch FROM first_bar)::bigint, extract(epoch FROM last_bar)::bigint"
                " FROM gold.bars_daily WHERE ticker = $1 AND source_timespan = $2"
                " ORDER BY trading_day"
              : "SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                " open, high, low, close, volume, vwap, trades, bar_count, ret, log_ret, ma20,"
                " vol20, 0, 0 FROM gold.bars_hourly WHERE ticker = $1 AND source_timespan = $2"
                " ORDER BY bucket",
        2, NULL, params, NULL, NULL, 0);
    int rows = PQntuples(res);
    size_t bad = 0;

    memset(filled, 0, 4 * sizeof(long));
    CHECK(rows == (int)nk, "%s %s %s: %d gold rows, want %zu", ticker, span,
          daily ? "daily" : "hourly", rows, nk);
    for (int r = 0; r < rows && r < (int)nk; r++) {
        const struct bucket *e = &k[r];
        double vwap = e->has_vol && e->pvol != 0 ? e->pv / e->pvol : NAN;
        int ok = strcmp(PQgetvalue(res, r, 0), e->key) == 0 && colv(res, r, 1) == e->o &&
                 colv(res, r, 2) == e->h && colv(res, r, 3) == e->l && colv(res, r, 4) == e->c &&
                 near(colv(res, r, 5), e->has_vol ? e->vol : NAN) && near(colv(res, r, 6), vwap) &&
                 (e->has_trades ? strtoll(PQgetvalue(res, r, 7), NULL, 10) == e->trades
                                : PQgetisnull(res, r, 7)) &&
                 strtol(PQgetvalue(res, r, 8), NULL, 10) == e->count &&
                 near(colv(res, r, 9), e->ret) && near(colv(res, r, 10), e->lr) &&
                 near(colv(res, r, 11), e->ma20) && near(colv(res, r, 12), e->vol20);
        if (daily)
            ok = ok && strtoll(PQgetvalue(res, r, 13), NULL, 10) == e->first &&
                 strtoll(PQgetvalue(res, r, 14), NULL, 10) == e->last;
        if (!ok && bad++ < 3)
            CHECK(0,
                  "%s %s row %d (%s, want %s): o=%s c=%s v=%s vwap=%s n=%s ret=%s lr=%s ma=%s "
                  "vol=%s; want c=%.17g vwap=%.17g ret=%.17g ma=%.17g vol=%.17g",
                  ticker, daily ? "daily" : "hourly", r, PQgetvalue(res, r, 0), e->key,
                  PQgetvalue(res, r, 1), PQgetvalue(res, r, 4), PQgetvalue(res, r, 5),
                  PQgetvalue(res, r, 6), PQgetvalue(res, r, 8), PQgetvalue(res, r, 9),
                  PQgetvalue(res, r, 10), PQgetvalue(res, r, 11), PQgetvalue(res, r, 12), e->c,
                  vwap, e->ret, e->ma20, e->vol20);
        for (int c = 0; c < 4; c++)
            filled[c] += !PQgetisnull(res, r, 9 + c);
    }
    CHECK(bad == 0, "%s %s %s: %zu of %d rows differ from the silver rollup", ticker, span,
          daily ? "daily" : "hourly", bad, rows);
    PQclear(res);
}

/* Checks hourly and daily gold of ticker against its silver; returns the daily rows. */
static size_t check_ticker(const char *ticker, const char *span, enum market m, long filled_h[4],
                           long filled_d[4])
{
    struct bar *b = NULL;
    struct bucket *hours = NULL, *days = NULL;
    size_t n = read_silver(ticker, span, &b);
    size_t nh = rollup(b, n, -1, &hours);
    size_t nd = rollup(b, n, (int)m, &days);

    CHECK(n > 0, "%s: silver bars", ticker);
    compare(ticker, span, 0, hours, nh, filled_h);
    compare(ticker, span, 1, days, nd, filled_d);
    free(b);
    free(hours);
    free(days);
    return nd;
}

/* A digest of every value column of gold for the given tickers (not who wrote it, nor when). */
static char *gold_digest(void)
{
    return h_pg_value(stack.db,
                      "SELECT md5(coalesce((SELECT string_agg(concat_ws('|', ticker,"
                      " source_timespan, bucket, open, high, low, close, volume, vwap, trades,"
                      " bar_count, ret, log_ret, ma20, vol20), ',' ORDER BY ticker,"
                      " source_timespan, bucket) FROM gold.bars_hourly), '') || '#' ||"
                      " coalesce((SELECT string_agg(concat_ws('|', ticker, source_timespan,"
                      " trading_day, market, first_bar, last_bar, open, high, low, close,"
                      " volume, vwap, trades, bar_count, ret, log_ret, ma20, vol20), ','"
                      " ORDER BY ticker, source_timespan, trading_day) FROM gold.bars_daily),"
                      " ''))",
                      0, NULL);
}

static int add_job(const char *name, const char *tickers, int multiplier)
{
    char mult[8];
    const char *params[3] = {name, tickers, mult};
    PGresult *res;
    int ok;

    snprintf(mult, sizeof(mult), "%d", multiplier);
    res = PQexecParams(stack.db,
                       "INSERT INTO tickflow.job_config (job_name, provider, tickers, multiplier,"
                       " timespan, interval_seconds, overlap_seconds, updated_by)"
                       " VALUES ($1, 'polygon', $2, $3, 'minute', 86400, 300, 'e2e')",
                       3, NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    CHECK(ok, "job %s: %s", name, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

static void test_equities(void)
{
    static const char *const eq[] = {"AAPL", "MSFT", "AMZN"};
    char later[TF_UUID_LEN + 1], earlier[TF_UUID_LEN + 1], again[TF_UUID_LEN + 1];
    long fh[4], fd[4];
    char *before = NULL, *after = NULL;

    if (add_job("gold_eq", "{AAPL,MSFT,AMZN}", 1) != 0)
        return;
    /* The later window first: its first buckets lack their history until the earlier one. */
    if (post_and_wait("gold_eq", "2024-02-26T00:00:00Z", "2024-03-16T00:00:00Z", later) != 0)
        return;
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.bars_daily WHERE ticker = 'AAPL'"
                         " AND ma20 IS NOT NULL",
                         0, NULL),
                 0);
    if (post_and_wait("gold_eq", "2024-02-05T00:00:00Z", "2024-02-26T00:00:00Z", earlier) != 0)
        return;
    for (size_t i = 0; i < 3; i++) {
        /* 29 trading days: Feb 19 (Washington's Birthday) is a holiday. */
        CHECK_EQ_INT(check_ticker(eq[i], "1minute", EQ, fh, fd), 29);
        CHECK_EQ_INT(fh[0], 29 * 7 - 1);
        CHECK_EQ_INT(fh[2], 29 * 7 - 19);
        CHECK_EQ_INT(fh[3], 29 * 7 - 20);
        CHECK_EQ_INT(fd[0], 28);
        CHECK_EQ_INT(fd[1], 28);
        CHECK_EQ_INT(fd[2], 10);
        CHECK_EQ_INT(fd[3], 9);
    }
    /* Against the generator too: silver holds its bars, holiday included. */
    {
        struct ms_bar *bars = NULL;
        int64_t ws = 0, we = 0;
        size_t n;
        CHECK(tf_time_parse("2024-02-05T00:00:00Z", &ws) == TF_OK &&
                  tf_time_parse("2024-03-16T00:00:00Z", &we) == TF_OK,
              "parse");
        n = ms_gen_minute_bars(SEED, "AAPL", ws * 1000, we * 1000 - 1, &bars);
        CHECK_EQ_INT(n, 29 * 390);
        CHECK_EQ_INT(h_pg_ll(stack.db,
                             "SELECT count(*) FROM silver.bars WHERE ticker = 'AAPL'"
                             " AND timespan = '1minute'",
                             0, NULL),
                     n);
        free(bars);
    }
    /* The DST switch: the session is 14:30-21:00 UTC on Friday 8 March, 13:30-20:00 on Monday 11.
     */
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.bars_daily WHERE ticker = 'MSFT'"
                         " AND trading_day = '2024-03-08' AND first_bar = '2024-03-08T14:30:00Z'"
                         " AND last_bar = '2024-03-08T20:59:00Z' AND bar_count = 390"
                         " AND market = 'us_equity'",
                         0, NULL),
                 1);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.bars_daily WHERE ticker = 'MSFT'"
                         " AND trading_day = '2024-03-11' AND first_bar = '2024-03-11T13:30:00Z'"
                         " AND last_bar = '2024-03-11T19:59:00Z' AND bar_count = 390",
                         0, NULL),
                 1);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.bars_daily WHERE trading_day = '2024-02-19'", 0,
                         NULL),
                 0);
    /* Partitioned by month. */
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                         " WHERE i.inhparent = 'gold.bars_daily'::regclass"
                         " AND c.relname IN ('bars_daily_p202402', 'bars_daily_p202403')",
                         0, NULL),
                 2);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.bars_hourly_p202402 WHERE ticker = 'AAPL'", 0,
                         NULL),
                 18 * 7);

    /* The earlier window again, as a new execution: gold does not change. */
    before = gold_digest();
    if (post_and_wait("gold_eq", "2024-02-05T00:00:00Z", "2024-02-26T00:00:00Z", again) == 0) {
        after = gold_digest();
        CHECK(before && after && strcmp(before, after) == 0, "gold identical after a re-run");
        CHECK_EQ_INT(h_pg_ll(stack.db,
                             "SELECT count(*) FROM gold.bars_hourly WHERE execution_id = $1", 1,
                             (const char *const[]){again}),
                     3 * 14 * 7);
    }
    free(before);
    free(after);
}

static void test_crypto_forex(void)
{
    char id[TF_UUID_LEN + 1];
    long fh[4], fd[4];

    if (add_job("gold_fx", "{X:BTCUSD,C:EURUSD}", 5) != 0)
        return;
    /* Friday to Tuesday over the US DST switch (Sunday 10 March). */
    if (post_and_wait("gold_fx", "2024-03-08T00:00:00Z", "2024-03-12T00:00:00Z", id) != 0)
        return;
    /* Crypto: four UTC days of 288 five-minute bars. */
    CHECK_EQ_INT(check_ticker("X:BTCUSD", "5minute", CRYPTO, fh, fd), 4);
    CHECK_EQ_INT(fh[2], 96 - 19);
    CHECK_EQ_INT(fh[3], 96 - 20);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.bars_daily WHERE ticker = 'X:BTCUSD'"
                         " AND bar_count = 288 AND market = 'crypto'"
                         " AND first_bar = trading_day::timestamp AT TIME ZONE 'UTC'",
                         0, NULL),
                 4);
    /*
     * Forex: Friday's day ends at 17:00 New York (22:00 UTC in winter); the
     * week reopens Sunday 17:00 New York, 21:00 UTC after the switch, as
     * Monday's trading day; Monday's day ends 21:00 UTC and Tuesday's
     * starts.
     */
    CHECK_EQ_INT(check_ticker("C:EURUSD", "5minute", FX, fh, fd), 3);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.bars_daily WHERE ticker = 'C:EURUSD'"
                         " AND market = 'forex' AND ((trading_day = '2024-03-08'"
                         "  AND first_bar = '2024-03-08T00:00:00Z'"
                         "  AND last_bar = '2024-03-08T21:55:00Z')"
                         " OR (trading_day = '2024-03-11' AND first_bar = '2024-03-10T21:00:00Z'"
                         "  AND last_bar = '2024-03-11T20:55:00Z' AND bar_count = 288)"
                         " OR (trading_day = '2024-03-12' AND first_bar = '2024-03-11T21:00:00Z'"
                         "  AND last_bar = '2024-03-11T23:55:00Z' AND bar_count = 36))",
                         0, NULL),
                 3);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "gold", API_KEY, SEED, NULL) == 0) {
        test_equities();
        test_crypto_forex();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
