/*
 * rollup.c - gold.bars_hourly and gold.bars_daily: the OHLCV rollups of
 * every bucket an execution's window touched, recomputed from silver, and
 * their derived columns. Hourly buckets are UTC hours, daily ones trading
 * days. docs/ARCHITECTURE.md (Gold).
 */
#include "aggregate.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/pg.h"
#include "tf/time.h"

/*
 * Silver is read once for the whole execution, as one binary COPY in key
 * order (ticker, then time), and rolled up into hours here, in one pass
 * with a few accumulators: the hours [h0, h1) the window touched and the
 * other hours of the trading days it touched. Per hour: open of the first
 * bar, close of the last, high/low extremes, volume summed (none when no
 * bar has one), pv = sum(p * volume) where p is the bar's VWAP or, when it
 * has none, its typical price (h + l + c) / 3 (bars without a volume do not
 * count), trades summed (none when no bar has a count), the bars, the first
 * and last bar's start; and, for the checks, the bars in the window and
 * (when a rule needs it) the sum of their closes. Sums are taken in time
 * order, so that the same bars always give the same bits.
 *
 * The hours go to a temporary table with one COPY, and one statement then
 * upserts the window's hours into gold.bars_hourly (VWAP = pv / volume,
 * NULL when the volume sums to nothing) and every touched trading day
 * ($3: [{ticker, market, day, s, e}]) into gold.bars_daily from its hours:
 * a trading day is a union of whole UTC hours in every market, so open is
 * its first hour's open, close its last hour's close, volume, pv, trades
 * and bars are sums of the hours' and VWAP is sum(pv) / sum(volume), the
 * same quantities as over its bars.
 */
/* COPY takes no parameters: the tickers and bar size travel as settings,
 * the time bounds as constants (%s, %s) that keep other days' partitions out. */
#define SILVER_READ_SQL                                                                            \
    "COPY (SELECT ticker, ts, open, high, low, close, volume, vwap, trades FROM silver.bars"       \
    " WHERE ticker = ANY (current_setting('tickflow.agg_tickers')::text[])"                        \
    " AND timespan = current_setting('tickflow.agg_span') AND ts >= %s AND ts < %s"                \
    " ORDER BY ticker, ts) TO STDOUT (FORMAT binary)"

static const char hours_sql[] =
    "CREATE TEMP TABLE agg_hours (ticker text NOT NULL, bucket_us bigint NOT NULL,"
    " open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL,"
    " volume float8, pv float8, trades bigint, n integer NOT NULL, first_us bigint NOT NULL,"
    " last_us bigint NOT NULL, inside boolean NOT NULL) ON COMMIT DROP";

#define US_TS(col) "timestamptz 'epoch' + " col " * interval '1 microsecond'"

#define ROLLUP_SET                                                                                 \
    " open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,"     \
    " volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trades = EXCLUDED.trades,"                   \
    " bar_count = EXCLUDED.bar_count, execution_id = EXCLUDED.execution_id,"                       \
    " updated_at = EXCLUDED.updated_at"

static const char rollup_sql[] = "WITH hh AS MATERIALIZED (SELECT ticker, " US_TS(
    "bucket_us") " AS bucket, open, high, low,"
                 "  close, volume, pv, trades, n, " US_TS(
                     "first_us") " AS first_bar,"
                                 "  " US_TS(
                                     "last_us") " AS last_bar, inside FROM pg_temp.agg_hours),"
                                                " up_h AS (INSERT INTO gold.bars_hourly AS g "
                                                "(ticker, source_timespan, bucket, open, high,"
                                                "  low, close, volume, vwap, trades, bar_count, "
                                                "execution_id, updated_at)"
                                                " SELECT hh.ticker, $1, hh.bucket, hh.open, "
                                                "hh.high, hh.low, hh.close, hh.volume,"
                                                "  hh.pv / nullif(hh.volume, 0), hh.trades, hh.n, "
                                                "$2::uuid, now() FROM hh WHERE hh.inside"
                                                " ON CONFLICT (ticker, source_timespan, bucket) DO "
                                                "UPDATE SET" ROLLUP_SET " RETURNING 1),"
                                                " d AS (SELECT * FROM jsonb_to_recordset($3::jsonb)"
                                                "  AS d(ticker text, market text, day date, s "
                                                "timestamptz, e timestamptz)),"
                                                " up_d AS (INSERT INTO gold.bars_daily AS g "
                                                "(ticker, source_timespan, trading_day, market,"
                                                "  first_bar, last_bar, open, high, low, close, "
                                                "volume, vwap, trades, bar_count,"
                                                "  execution_id, updated_at)"
                                                " SELECT d.ticker, $1, d.day, d.market, "
                                                "min(hh.first_bar), max(hh.last_bar),"
                                                "  (array_agg(hh.open ORDER BY hh.bucket))[1], "
                                                "max(hh.high), min(hh.low),"
                                                "  (array_agg(hh.close ORDER BY hh.bucket "
                                                "DESC))[1], sum(hh.volume ORDER BY hh.bucket),"
                                                "  sum(hh.pv ORDER BY hh.bucket) / "
                                                "nullif(sum(hh.volume ORDER BY hh.bucket), 0),"
                                                "  sum(hh.trades), sum(hh.n), $2::uuid, now()"
                                                " FROM d JOIN hh ON hh.ticker = d.ticker AND "
                                                "hh.bucket >= d.s AND hh.bucket < d.e"
                                                " GROUP BY d.ticker, d.day, d.market"
                                                " ON CONFLICT (ticker, source_timespan, "
                                                "trading_day) DO UPDATE SET"
                                                "  market = EXCLUDED.market, first_bar = "
                                                "EXCLUDED.first_bar,"
                                                "  last_bar = EXCLUDED.last_bar," ROLLUP_SET
                                                " RETURNING 1)"
                                                " SELECT (SELECT count(*) FROM up_h), (SELECT "
                                                "count(*) FROM up_d)";

/* One hour of one ticker as it is summed up. */
struct hour {
    int64_t bucket, first, last; /* microseconds since the epoch */
    double open, high, low, close, volume, pv, close_win;
    long long trades, n, n_win;
    int has_volume, has_pv, has_trades, has_close_win, inside;
};

/* The read of silver: where each ticker's hours count, and what they sum to. */
struct hours_read {
    struct agg_ctx *ctx;
    const size_t *order;   /* ticker indexes by name (strcmp order) */
    int64_t h0, h1;        /* the window's hours, microseconds */
    int64_t ws, we;        /* the window, microseconds */
    const int64_t *day_lo; /* per ticker: its touched trading days, [lo, hi) */
    const int64_t *day_hi;
    unsigned char *seen; /* per ticker: its rows came (they must come together) */
    double *close_sum;   /* per ticker: the window's closes, hour sums in time order */
    unsigned char *has_close_sum;
    long long *bars, *n_win;
    size_t tk; /* the current ticker (ntickers: none yet) */
    int64_t last_ts;
    struct hour cur;     /* cur.n == 0: none open */
    struct tf_buf *rows; /* COPY text of the finished hours */
};

/* The ticker named by f (its index), or ntickers when none is. */
static size_t ticker_of(const struct hours_read *hr, const struct tf_pg_field *f)
{
    size_t lo = 0, hi = hr->ctx->ntickers;
    size_t len = f->len > 0 ? (size_t)f->len : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *name = hr->ctx->tickers[hr->order[mid]].name;
        int c = strncmp(name, (const char *)f->data, len);

        if (c == 0 && name[len] != '\0')
            c = 1;
        if (c == 0)
            return hr->order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return hr->ctx->ntickers;
}

static enum tf_rc put_num(struct tf_buf *b, int has, double v)
{
    return has ? tf_buf_printf(b, "\t%.17g", v) : tf_buf_puts(b, "\t\\N");
}

/* Ends the open hour: its row for the table, its share of the ticker's counts. */
static enum tf_rc hour_close(struct hours_read *hr)
{
    const struct hour *h = &hr->cur;
    struct tf_buf *b = hr->rows;
    enum tf_rc rc;

    if (h->n == 0)
        return TF_OK;
    if (h->inside) {
        hr->bars[hr->tk] += h->n;
        hr->n_win[hr->tk] += h->n_win;
        if (h->has_close_win) {
            hr->close_sum[hr->tk] =
                hr->has_close_sum[hr->tk] ? hr->close_sum[hr->tk] + h->close_win : h->close_win;
            hr->has_close_sum[hr->tk] = 1;
        }
    }
    /* Ticker names are safe in COPY text (the job's syntax rules). */
    rc = tf_buf_printf(b, "%s\t%lld\t%.17g\t%.17g\t%.17g\t%.17g", hr->ctx->tickers[hr->tk].name,
                       (long long)h->bucket, h->open, h->high, h->low, h->close);
    rc = rc ? rc : put_num(b, h->has_volume, h->volume);
    rc = rc ? rc : put_num(b, h->has_pv, h->pv);
    rc =
        rc ? rc : (h->has_trades ? tf_buf_printf(b, "\t%lld", h->trades) : tf_buf_puts(b, "\t\\N"));
    rc = rc ? rc
            : tf_buf_printf(b, "\t%lld\t%lld\t%lld\t%s\n", h->n, (long long)h->first,
                            (long long)h->last, h->inside ? "t" : "f");
    hr->cur.n = 0;
    return rc;
}

static double f64(const struct tf_pg_field *f)
{
    return tf_pg_be_f64(f->data);
}

/* One silver bar (ticker, ts, open, high, low, close, volume, vwap, trades). */
static enum tf_rc hour_row(void *arg, const struct tf_pg_field *f)
{
    struct hours_read *hr = arg;
    struct hour *h = &hr->cur;
    int64_t ts, bucket;
    int inside, has_v;
    double o, hi, lo, c;
    size_t tk;
    enum tf_rc rc;

    for (int i = 1; i < 6; i++) {
        if (f[i].len != 8)
            return TF_ERR_INVALID;
    }
    if ((f[6].len != 8 && f[6].len != -1) || (f[7].len != 8 && f[7].len != -1) ||
        (f[8].len != 8 && f[8].len != -1))
        return TF_ERR_INVALID;
    ts = (int64_t)tf_pg_be_u64(f[1].data) + TF_PG_EPOCH_US;
    if (hr->tk == hr->ctx->ntickers || (size_t)f[0].len != strlen(hr->ctx->tickers[hr->tk].name) ||
        memcmp(f[0].data, hr->ctx->tickers[hr->tk].name, (size_t)f[0].len) != 0) {
        rc = hour_close(hr);
        if (rc != TF_OK)
            return rc;
        tk = ticker_of(hr, &f[0]);
        /* Each ticker's rows come together, in time order (the ORDER BY). */
        if (tk == hr->ctx->ntickers || hr->seen[tk])
            return TF_ERR_INVALID;
        hr->seen[tk] = 1;
        hr->tk = tk;
    } else if (ts <= hr->last_ts) {
        return TF_ERR_INVALID;
    }
    hr->last_ts = ts;
    bucket = aggregate_hour_bucket(ts);
    inside = bucket >= hr->h0 && bucket < hr->h1;
    if (!inside && !(bucket >= hr->day_lo[hr->tk] && bucket < hr->day_hi[hr->tk]))
        return TF_OK; /* read for another market's days */
    if (h->n > 0 && h->bucket != bucket) {
        rc = hour_close(hr);
        if (rc != TF_OK)
            return rc;
    }
    o = f64(&f[2]);
    hi = f64(&f[3]);
    lo = f64(&f[4]);
    c = f64(&f[5]);
    has_v = f[6].len == 8;
    if (h->n == 0) {
        memset(h, 0, sizeof(*h));
        h->bucket = bucket;
        h->inside = inside;
        h->first = ts;
        h->open = o;
        h->high = hi;
        h->low = lo;
    }
    h->high = hi > h->high ? hi : h->high;
    h->low = lo < h->low ? lo : h->low;
    h->close = c;
    h->last = ts;
    h->n++;
    if (has_v) {
        double v = f64(&f[6]);
        double p = f[7].len == 8 ? f64(&f[7]) : (hi + lo + c) / 3;

        h->volume = h->has_volume ? h->volume + v : v;
        h->pv = h->has_pv ? h->pv + p * v : p * v;
        h->has_volume = h->has_pv = 1;
    }
    if (f[8].len == 8) {
        /* Past a bigint the column could not hold it either. */
        if (__builtin_add_overflow(h->trades, (long long)tf_pg_be_u64(f[8].data), &h->trades))
            return TF_ERR_TOO_LARGE;
        h->has_trades = 1;
    }
    if (ts >= hr->ws && ts < hr->we) {
        h->n_win++;
        if (hr->ctx->need_avg_close) {
            h->close_win = h->has_close_win ? h->close_win + c : c;
            h->has_close_win = 1;
        }
    }
    return TF_OK;
}

/* Orders ticker indexes by name, for ticker_of(). */
static int by_name(const void *a, const void *b, void *tickers)
{
    const struct agg_ticker *t = tickers;

    return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

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

int64_t aggregate_hour_bucket(int64_t ts_us)
{
    return ts_us - (ts_us % 3600000000LL + 3600000000LL) % 3600000000LL;
}

void aggregate_window_hours(int64_t ws, int64_t we, int64_t *h0, int64_t *h1)
{
    *h0 = ws - ws % 3600;
    *h1 = (we - 1) - (we - 1) % 3600 + 3600;
}

/*
 * Every market's day starts on a whole UTC hour, so the hours around the
 * window are walked and the runs of one name are the days.
 */
enum tf_rc aggregate_day_ranges(enum tf_market m, int64_t ws, int64_t we,
                                struct agg_day_range **out, size_t *n)
{
    int64_t t0 = ws - ws % 3600 - 48 * 3600;
    int64_t t1 = we + 48 * 3600;
    size_t cap = (size_t)((we - ws) / 86400) + 8;
    struct agg_day_range *days = calloc(cap, sizeof(*days));
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
                struct agg_day_range *more = realloc(days, 2 * cap * sizeof(*days));
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

/* One reader of silver: a share of the tickers, on a connection of its own. */
struct hours_part {
    struct hours_read hr;
    PGconn *conn;
    int own_txn;           /* a side connection: the settings need a transaction of their own */
    struct tf_buf tickers; /* the share as a text[] literal */
    const char *f0, *f1, *span;
    char state[6];
    enum tf_rc rc;
    pthread_t thr;
};

/* Reads the part's tickers' bars into hours (COPY takes no parameters:
 * they travel as transaction-local settings). */
static void read_part(struct hours_part *p)
{
    const char *params[2] = {p->tickers.data, p->span};
    char sql[1024];
    PGresult *res;

    p->state[0] = '\0';
    p->rc = p->own_txn ? tf_pg_cmd(p->conn, "BEGIN") : TF_OK;
    if (p->rc != TF_OK)
        return;
    res = tf_pg_exec(p->conn,
                     "SELECT set_config('tickflow.agg_tickers', $1, true),"
                     " set_config('tickflow.agg_span', $2, true)",
                     2, params);
    p->rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
    if (p->rc != TF_OK)
        snprintf(p->state, sizeof(p->state), "%s", tf_pg_sqlstate(res));
    PQclear(res);
    snprintf(sql, sizeof(sql), SILVER_READ_SQL, p->f0, p->f1);
    if (p->rc == TF_OK)
        p->rc = tf_pg_copy_out(p->conn, sql, 9, hour_row, &p->hr, p->state);
    if (p->rc == TF_OK)
        p->rc = hour_close(&p->hr);
    if (p->own_txn && tf_pg_cmd(p->conn, "COMMIT") != TF_OK && p->rc == TF_OK)
        p->rc = TF_ERR_DB;
}

static void *part_main(void *arg)
{
    read_part(arg);
    return NULL;
}

/*
 * Reads silver's bars of the execution's tickers in [from, to) and sums
 * them up into hours (hr), whose rows land in pg_temp.agg_hours; sets each
 * ticker's bars in the window and their average close, and bars_in. With a
 * second connection free, half the tickers are read on it at the same
 * time (after the run's ticker locks: it sees what the run would).
 */
static enum tf_rc read_hours(struct agg_ctx *ctx, const struct hours_read *hr, int64_t from,
                             int64_t to)
{
    struct tf_run *run = ctx->run;
    struct hours_part parts[2];
    char f0[48], f1[48], state[6] = "";
    /*
     * Two readers on connections of their own, or the run's connection
     * alone: never the run's beside another, since a lock the run's
     * transaction took on silver may hold up a partition's creation that
     * the other reader's lock then queues behind, while the run waits for
     * that reader (a wait PostgreSQL cannot see).
     */
    PGconn *side[2] = {NULL, NULL};
    int nparts = 1, started = 0;
    PGresult *res;
    enum tf_rc rc = TF_OK;

    if (ctx->ntickers > 1) {
        side[0] = tf_svc_conn_try(run->svc);
        side[1] = side[0] ? tf_svc_conn_try(run->svc) : NULL;
        nparts = side[1] ? 2 : 1;
    }

    tf_pg_time_literal(from, f0);
    tf_pg_time_literal(to, f1);
    for (int k = 0; k < nparts; k++) {
        cJSON *names = cJSON_CreateArray();
        struct hours_part *p = &parts[k];

        memset(p, 0, sizeof(*p));
        p->hr = *hr;
        p->conn = side[k] ? side[k] : run->conn;
        p->own_txn = side[k] != NULL;
        p->f0 = f0;
        p->f1 = f1;
        p->span = ctx->span;
        tf_buf_init(&p->tickers, 1024 * 1024);
        for (size_t i = (size_t)k; names && i < ctx->ntickers; i += (size_t)nparts)
            cJSON_AddItemToArray(names, cJSON_CreateString(ctx->tickers[i].name));
        if (!names || tf_pg_text_array(names, &p->tickers) != TF_OK)
            rc = TF_ERR_NOMEM;
        cJSON_Delete(names);
        if (k > 0) {
            p->hr.rows = malloc(sizeof(*p->hr.rows));
            if (p->hr.rows)
                tf_buf_init(p->hr.rows, 1024u * 1024 * 1024);
            else
                rc = TF_ERR_NOMEM;
        }
    }
    if (rc == TF_OK) {
        started = nparts > 1 && pthread_create(&parts[1].thr, NULL, part_main, &parts[1]) == 0;
        read_part(&parts[0]);
        if (started)
            pthread_join(parts[1].thr, NULL);
        else if (nparts > 1)
            read_part(&parts[1]);
        for (int k = 0; k < nparts && rc == TF_OK; k++) {
            rc = parts[k].rc;
            snprintf(state, sizeof(state), "%s", parts[k].state);
        }
    }
    tf_svc_conn_put(run->svc, side[0]);
    tf_svc_conn_put(run->svc, side[1]);
    if (rc != TF_OK) {
        if (rc == TF_ERR_DB)
            tf_run_fail(run, "reading silver failed: sqlstate %s", state);
        else
            tf_run_fail(run, "reading silver failed: %s",
                        rc == TF_ERR_INVALID ? "rows out of key order or malformed"
                                             : tf_rc_str(rc));
        goto out;
    }
    ctx->bars_in = 0;
    for (size_t i = 0; i < ctx->ntickers; i++) {
        ctx->bars_in += hr->bars[i];
        ctx->tickers[i].actual = hr->n_win[i];
        ctx->tickers[i].avg_close = hr->has_close_sum[i] && hr->n_win[i] > 0
                                        ? hr->close_sum[i] / (double)hr->n_win[i]
                                        : NAN;
    }
    res = tf_pg_exec(run->conn, hours_sql, 0, NULL);
    rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
    snprintf(state, sizeof(state), "%s", tf_pg_sqlstate(res));
    PQclear(res);
    if (rc == TF_OK)
        rc = tf_pg_copy_begin(run->conn, "COPY pg_temp.agg_hours FROM STDIN", state);
    for (int k = 0; k < nparts && rc == TF_OK; k++) {
        rc = tf_pg_copy_send(run->conn, parts[k].hr.rows->data, parts[k].hr.rows->len);
        if (rc != TF_OK)
            tf_pg_copy_abort(run->conn, "staging the hours failed");
    }
    if (rc == TF_OK)
        rc = tf_pg_copy_end(run->conn, state);
    if (rc != TF_OK)
        tf_run_fail(run, "cannot stage the hours: sqlstate %s", state);
out:
    for (int k = 0; k < nparts; k++) {
        tf_buf_cleanup(&parts[k].tickers);
        if (k > 0 && parts[k].hr.rows) {
            tf_buf_cleanup(parts[k].hr.rows);
            free(parts[k].hr.rows);
        }
    }
    return rc;
}

enum tf_rc aggregate_rollups(struct agg_ctx *ctx)
{
    static const enum tf_market markets[] = {TF_MARKET_US_EQUITY, TF_MARKET_CRYPTO,
                                             TF_MARKET_FOREX};
    struct tf_run *run = ctx->run;
    int64_t h0, h1;
    struct agg_day_range *days[3] = {NULL, NULL, NULL};
    size_t ndays[3] = {0, 0, 0};
    size_t nt = ctx->ntickers ? ctx->ntickers : 1;
    cJSON *rows = cJSON_CreateArray();
    cJSON *htouched = cJSON_CreateArray(), *dtouched = cJSON_CreateArray();
    char *rows_json = NULL, *htouched_json = NULL, *dtouched_json = NULL;
    const char *params[3];
    int64_t lo = INT64_MAX, hi = INT64_MIN, from, to, t0, t1, t2;
    struct hours_read hr;
    struct tf_buf hour_rows;
    size_t *order = calloc(nt, sizeof(*order));
    int64_t *day_lo = calloc(nt, sizeof(*day_lo)), *day_hi = calloc(nt, sizeof(*day_hi));
    PGresult *res = NULL;
    enum tf_rc rc = TF_OK;

    aggregate_window_hours(run->window_start, run->window_end, &h0, &h1);
    from = h0;
    to = h1;
    memset(&hr, 0, sizeof(hr));
    tf_buf_init(&hour_rows, 1024u * 1024 * 1024);
    hr.seen = calloc(nt, 1);
    hr.has_close_sum = calloc(nt, 1);
    hr.close_sum = calloc(nt, sizeof(double));
    hr.bars = calloc(nt, sizeof(long long));
    hr.n_win = calloc(nt, sizeof(long long));
    if (!rows || !htouched || !dtouched || !order || !day_lo || !day_hi || !hr.seen ||
        !hr.has_close_sum || !hr.close_sum || !hr.bars || !hr.n_win) {
        rc = TF_ERR_NOMEM;
        goto nomem;
    }
    for (size_t k = 0; k < 3; k++) {
        int used = 0;
        for (size_t i = 0; i < ctx->ntickers && !used; i++)
            used = ctx->tickers[i].market == markets[k];
        if (!used)
            continue;
        rc = aggregate_day_ranges(markets[k], run->window_start, run->window_end, &days[k],
                                  &ndays[k]);
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
        struct agg_day_range *dr = k < 3 ? days[k] : NULL;
        size_t nd = k < 3 ? ndays[k] : 0;

        order[i] = i;
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
        /* The touched days' hours count too (for the days), read with the window's. */
        day_lo[i] = dr[0].s * 1000000;
        day_hi[i] = dr[nd - 1].e * 1000000;
        from = dr[0].s < from ? dr[0].s : from;
        to = dr[nd - 1].e > to ? dr[nd - 1].e : to;
        /* Up to the day after the last touched one, exclusive. */
        add_range(dtouched, name, "k0", day_start(dr[0].day), "k1",
                  day_start(dr[nd - 1].day) + 86400, 1);
    }
    qsort_r(order, ctx->ntickers, sizeof(*order), by_name, ctx->tickers);
    /* A job's tickers are distinct (PUT /v1/jobs refuses repeats); the
     * readers rely on it, each ticker's rows summed by one of them. */
    for (size_t i = 1; i < ctx->ntickers; i++) {
        if (strcmp(ctx->tickers[order[i - 1]].name, ctx->tickers[order[i]].name) == 0) {
            tf_run_fail(run, "ticker %s is listed twice in the execution",
                        ctx->tickers[order[i]].name);
            rc = TF_ERR_INVALID;
            goto out;
        }
    }
    rows_json = print_take(rows);
    htouched_json = print_take(htouched);
    dtouched_json = print_take(dtouched);
    rows = htouched = dtouched = NULL;
    if (!rows_json || !htouched_json || !dtouched_json) {
        rc = TF_ERR_NOMEM;
        goto nomem;
    }
    rc = ensure_partitions(ctx, "bars_hourly", h0, h1 - 1);
    if (rc == TF_OK && lo <= hi)
        rc = ensure_partitions(ctx, "bars_daily", lo, hi);
    if (rc != TF_OK)
        goto out;
    hr.ctx = ctx;
    hr.order = order;
    hr.h0 = h0 * 1000000;
    hr.h1 = h1 * 1000000;
    hr.ws = run->window_start * 1000000;
    hr.we = run->window_end * 1000000;
    hr.day_lo = day_lo;
    hr.day_hi = day_hi;
    hr.tk = ctx->ntickers;
    hr.rows = &hour_rows;
    t0 = tf_time_mono_ms();
    rc = read_hours(ctx, &hr, from, to);
    if (rc != TF_OK)
        goto out;
    params[0] = ctx->span;
    params[1] = run->execution_id;
    params[2] = rows_json;
    t1 = tf_time_mono_ms();
    res = tf_pg_exec(run->conn, rollup_sql, 3, params);
    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "rollups failed: sqlstate %s", tf_pg_sqlstate(res));
        rc = TF_ERR_DB;
        goto out;
    }
    ctx->hourly_rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    ctx->daily_rows = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    t2 = tf_time_mono_ms();
    params[0] = htouched_json;
    params[1] = ctx->span;
    rc = exec_count(ctx, "hourly derived columns", hourly_derived_sql, 2, params, NULL);
    if (rc != TF_OK)
        goto out;
    params[0] = dtouched_json;
    rc = exec_count(ctx, "daily derived columns", daily_derived_sql, 2, params, NULL);
    tf_log_info(&run->log, "rollups read_ms=%lld write_ms=%lld derived_ms=%lld hours=%lld",
                (long long)(t1 - t0), (long long)(t2 - t1), (long long)(tf_time_mono_ms() - t2),
                ctx->hourly_rows);
    goto out;
nomem:
    tf_run_fail(run, "out of memory");
out:
    PQclear(res);
    cJSON_Delete(rows);
    cJSON_Delete(htouched);
    cJSON_Delete(dtouched);
    cJSON_free(rows_json);
    cJSON_free(htouched_json);
    cJSON_free(dtouched_json);
    for (size_t k = 0; k < 3; k++)
        free(days[k]);
    free(order);
    free(day_lo);
    free(day_hi);
    free(hr.seen);
    free(hr.has_close_sum);
    free(hr.close_sum);
    free(hr.bars);
    free(hr.n_win);
    tf_buf_cleanup(&hour_rows);
    return rc;
}
