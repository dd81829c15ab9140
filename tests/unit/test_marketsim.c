/*
 * test_marketsim.c - marketsim's bar generator without any I/O: determinism,
 * the session calendar and DST, OHLC invariants, rounding, sparse tickers
 * and rollups; asset classes by ticker syntax, one instrument under both
 * providers' spellings, the 24/7 crypto and Sunday-to-Friday forex
 * sessions, and a golden digest that pins the equity bars.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "marketsim/gen.h"
#include "marketsim/gen_internal.h"
#include "../harness/check.h"
#include "tf/calendar.h"
#include "tf/time.h"

#define SEED       42
#define ONE_MIN_MS 60000LL

static int64_t ny_ms(int y, int m, int d, int hh, int mm)
{
    return tf_time_us_eastern_to_utc(y, m, d, hh, mm) * 1000;
}

static int64_t utc_ms(int y, int m, int d, int hh, int mm)
{
    return (tf_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60) * 1000;
}

static int same_bar(const struct ms_bar *a, const struct ms_bar *b)
{
    return a->t_ms == b->t_ms && a->o == b->o && a->h == b->h && a->l == b->l && a->c == b->c &&
           a->v == b->v && a->vw == b->vw && a->n == b->n;
}

static int is_round4(double x)
{
    return x == round(x * 1e4) / 1e4;
}

/* All 390 minutes of a New York trading day. */
static size_t day_bars(const char *ticker, int y, int m, int d, struct ms_bar **out)
{
    return ms_gen_minute_bars(SEED, ticker, ny_ms(y, m, d, 0, 0), ny_ms(y, m, d + 1, 0, 0) - 1,
                              out);
}

static void test_determinism(void)
{
    struct ms_bar *a = NULL, *b = NULL, *hour = NULL, *other = NULL;
    size_t na, nb, nh, no;
    size_t first = 0;
    int same = 1;

    na = day_bars("AAPL", 2024, 3, 12, &a);
    nb = day_bars("AAPL", 2024, 3, 12, &b);
    CHECK_EQ_INT(na, 390);
    CHECK_EQ_INT(na, nb);
    for (size_t i = 0; i < na && i < nb; i++)
        same &= same_bar(&a[i], &b[i]);
    CHECK(same, "two identical calls give different bars");

    /* 10:00-10:59 NY alone equals the matching slice of the whole day. */
    nh = ms_gen_minute_bars(SEED, "AAPL", ny_ms(2024, 3, 12, 10, 0), ny_ms(2024, 3, 12, 10, 59),
                            &hour);
    CHECK_EQ_INT(nh, 60);
    while (first < na && a[first].t_ms < ny_ms(2024, 3, 12, 10, 0))
        first++;
    CHECK_EQ_INT(first, 30);
    same = 1;
    for (size_t i = 0; i < nh && first + i < na; i++)
        same &= same_bar(&hour[i], &a[first + i]);
    CHECK(same, "the 10:00 hour differs from the same minutes of the whole day");

    /* Another seed gives another walk. */
    no = ms_gen_minute_bars(SEED + 1, "AAPL", ny_ms(2024, 3, 12, 0, 0),
                            ny_ms(2024, 3, 13, 0, 0) - 1, &other);
    CHECK_EQ_INT(no, 390);
    CHECK(no == na && !same_bar(&other[0], &a[0]), "seed 43 gives the same first bar as seed 42");

    free(a);
    free(b);
    free(hour);
    free(other);
}

static void test_calendar(void)
{
    struct ms_bar *bars = NULL;
    size_t n;

    n = day_bars("AAPL", 2024, 3, 9, &bars); /* a Saturday */
    CHECK_EQ_INT(n, 0);
    CHECK(bars == NULL, "no bars must leave *out NULL");
    n = day_bars("AAPL", 2024, 3, 10, &bars); /* a Sunday */
    CHECK_EQ_INT(n, 0);

    /* Friday before the DST change: 09:30 EST is 14:30Z; Monday after: 13:30Z. */
    n = day_bars("AAPL", 2024, 3, 8, &bars);
    CHECK_EQ_INT(n, 390);
    if (n == 390) {
        CHECK_EQ_INT(bars[0].t_ms, utc_ms(2024, 3, 8, 14, 30));
        CHECK_EQ_INT(bars[389].t_ms, utc_ms(2024, 3, 8, 20, 59));
    }
    free(bars);
    bars = NULL;
    n = day_bars("AAPL", 2024, 3, 11, &bars);
    CHECK_EQ_INT(n, 390);
    if (n == 390) {
        CHECK_EQ_INT(bars[0].t_ms, utc_ms(2024, 3, 11, 13, 30));
        CHECK_EQ_INT(bars[389].t_ms, utc_ms(2024, 3, 11, 19, 59));
        size_t gaps = 0;
        for (size_t i = 1; i < n; i++)
            gaps += bars[i].t_ms != bars[i - 1].t_ms + ONE_MIN_MS;
        CHECK(gaps == 0, "%zu bars are not a minute after the previous one", gaps);
    }
    free(bars);
    bars = NULL;

    /* A whole week (Sunday to Saturday, UTC) has five sessions. */
    n = ms_gen_minute_bars(SEED, "MSFT", utc_ms(2024, 3, 10, 0, 0), utc_ms(2024, 3, 17, 0, 0),
                           &bars);
    CHECK_EQ_INT(n, 5 * 390);
    free(bars);
    bars = NULL;

    /* Inclusive bounds, and from > to is empty. */
    n = ms_gen_minute_bars(SEED, "AAPL", utc_ms(2024, 3, 11, 13, 30), utc_ms(2024, 3, 11, 13, 30),
                           &bars);
    CHECK_EQ_INT(n, 1);
    free(bars);
    bars = NULL;
    n = ms_gen_minute_bars(SEED, "AAPL", utc_ms(2024, 3, 12, 0, 0), utc_ms(2024, 3, 11, 0, 0),
                           &bars);
    CHECK_EQ_INT(n, 0);
    CHECK(bars == NULL, "from > to must leave *out NULL");
}

static void test_invariants(void)
{
    static const char *const tickers[] = {"AAPL", "MSFT", "AMZN", "GOOG", "BRK.B", "T"};
    int bad_ohlc = 0, bad_round = 0, bad_v = 0, bad_print = 0, bad_open = 0;
    size_t total = 0;

    for (size_t k = 0; k < sizeof(tickers) / sizeof(tickers[0]); k++) {
        struct ms_bar *bars = NULL;
        size_t n = ms_gen_minute_bars(SEED, tickers[k], utc_ms(2024, 1, 1, 0, 0),
                                      utc_ms(2024, 1, 31, 0, 0), &bars);

        total += n;
        for (size_t i = 0; i < n; i++) {
            const struct ms_bar *b = &bars[i];
            double vals[] = {b->o, b->h, b->l, b->c, b->vw};
            char txt[64];

            if (!(b->h >= b->o && b->h >= b->c && b->l <= b->o && b->l <= b->c && b->l > 0 &&
                  b->vw >= b->l && b->vw <= b->h && b->o >= 1.0 && b->o <= 1000.0)) {
                if (bad_ohlc++ < 3)
                    CHECK(0, "%s bar %zu breaks OHLC: o=%g h=%g l=%g c=%g vw=%g", tickers[k], i,
                          b->o, b->h, b->l, b->c, b->vw);
            }
            for (size_t j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
                if (!is_round4(vals[j]) && bad_round++ < 3)
                    CHECK(0, "%s bar %zu value %.17g has more than 4 decimals", tickers[k], i,
                          vals[j]);
                snprintf(txt, sizeof(txt), "%.15g", vals[j]);
                if (strtod(txt, NULL) != vals[j] && bad_print++ < 3)
                    CHECK(0, "%.17g does not survive %%.15g (%s)", vals[j], txt);
            }
            if (!(b->v == floor(b->v) && b->v >= 1000 && b->v <= 200000 && b->n > 0)) {
                if (bad_v++ < 3)
                    CHECK(0, "%s bar %zu: v=%.17g n=%lld", tickers[k], i, b->v, b->n);
            }
            if (i > 0 && bars[i].t_ms - bars[i - 1].t_ms == ONE_MIN_MS && b->o != bars[i - 1].c &&
                bad_open++ < 3)
                CHECK(0, "%s bar %zu opens at %.17g, not the previous close %.17g", tickers[k], i,
                      b->o, bars[i - 1].c);
        }
        free(bars);
    }
    CHECK(total > 5 * 21 * 300, "only %zu bars in January", total);
    CHECK_EQ_INT(bad_ohlc, 0);
    CHECK_EQ_INT(bad_round, 0);
    CHECK_EQ_INT(bad_print, 0);
    CHECK_EQ_INT(bad_v, 0);
    CHECK_EQ_INT(bad_open, 0);
}

static void test_sparse(void)
{
    struct ms_bar *bars = NULL;
    char name[16];
    int sparse = 0;
    size_t n;

    CHECK_EQ_INT(ms_gen_is_sparse("AAPL"), 0);
    CHECK_EQ_INT(ms_gen_is_sparse("MSFT"), 0);
    CHECK_EQ_INT(ms_gen_is_sparse("AMZN"), 0);
    CHECK_EQ_INT(ms_gen_is_sparse("FOO.SPARSE"), 1);
    CHECK_EQ_INT(ms_gen_is_sparse("X.SPARSE"), 1);
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof(name), "T%d", i);
        sparse += ms_gen_is_sparse(name);
    }
    CHECK(sparse > 60 && sparse < 140, "%d of 400 tickers are sparse, want about 100", sparse);

    n = day_bars("FOO.SPARSE", 2024, 3, 12, &bars);
    CHECK(n > 250 && n < 390, "sparse ticker has %zu bars on a weekday", n);
    {
        size_t unordered = 0;
        for (size_t i = 1; i < n; i++)
            unordered += bars[i].t_ms <= bars[i - 1].t_ms;
        CHECK(unordered == 0, "%zu sparse bars are not ascending", unordered);
    }
    free(bars);
    bars = NULL;
    n = day_bars("FOO.SPARSE", 2024, 3, 13, &bars);
    CHECK(n > 250 && n < 390, "sparse ticker has %zu bars on another weekday", n);
    free(bars);
}

static void test_rollup(void)
{
    struct ms_bar *bars = NULL, *hours = NULL, *days = NULL, *same = NULL;
    size_t n, nh, nd, ns, used = 0;

    n = day_bars("AAPL", 2024, 3, 12, &bars); /* EDT: 13:30Z-19:59Z */
    nh = ms_gen_rollup(bars, n, 1, "hour", &hours);
    CHECK_EQ_INT(nh, 7); /* 13Z (30 bars), 14Z..18Z, 19Z */
    for (size_t k = 0; k < nh; k++) {
        const struct ms_bar *hb = &hours[k];
        double h = -1, l = 1e300, v = 0, pv = 0;
        long long trades = 0;
        size_t first = used;

        CHECK_EQ_INT(hb->t_ms % 3600000, 0);
        while (used < n && bars[used].t_ms < hb->t_ms + 3600000) {
            h = fmax(h, bars[used].h);
            l = fmin(l, bars[used].l);
            v += bars[used].v;
            pv += bars[used].vw * bars[used].v;
            trades += bars[used].n;
            used++;
        }
        CHECK(used > first, "hour %zu is empty", k);
        if (used == first)
            continue;
        CHECK_EQ_DBL(hb->o, bars[first].o);
        CHECK_EQ_DBL(hb->c, bars[used - 1].c);
        CHECK_EQ_DBL(hb->h, h);
        CHECK_EQ_DBL(hb->l, l);
        CHECK_EQ_DBL(hb->v, v);
        CHECK_EQ_INT(hb->n, trades);
        CHECK_EQ_DBL(hb->vw, round(pv / v * 1e4) / 1e4);
        CHECK(hb->vw >= hb->l && hb->vw <= hb->h, "hour %zu vw outside [l, h]", k);
    }
    CHECK_EQ_INT(used, n);
    if (nh == 7) {
        CHECK_EQ_INT(hours[0].t_ms, utc_ms(2024, 3, 12, 13, 0));
        CHECK_EQ_DBL(hours[0].o, bars[0].o);
    }

    /* One minute bars roll up into themselves. */
    ns = ms_gen_rollup(bars, n, 1, "minute", &same);
    CHECK_EQ_INT(ns, n);
    for (size_t i = 0; i < ns && i < n; i++) {
        if (!same_bar(&same[i], &bars[i])) {
            CHECK(0, "minute rollup changed bar %zu", i);
            break;
        }
    }

    /* A day bar starts at midnight New York time, 04:00Z in EDT. */
    nd = ms_gen_rollup(bars, n, 1, "day", &days);
    CHECK_EQ_INT(nd, 1);
    if (nd == 1) {
        CHECK_EQ_INT(days[0].t_ms, utc_ms(2024, 3, 12, 4, 0));
        CHECK_EQ_DBL(days[0].o, bars[0].o);
        CHECK_EQ_DBL(days[0].c, bars[n - 1].c);
    }
    free(hours);
    hours = NULL;
    CHECK_EQ_INT(ms_gen_rollup(bars, n, 1, "fortnight", &hours), 0);
    CHECK(hours == NULL, "an unknown timespan must leave *out NULL");
    free(bars);
    free(same);
    free(days);
}

static void test_buckets(void)
{
    int64_t s = 0, e = 0;

    CHECK_EQ_INT(ms_gen_bucket(utc_ms(2024, 3, 12, 13, 47), 5, "minute", &s, &e), 1);
    CHECK_EQ_INT(s, utc_ms(2024, 3, 12, 13, 45));
    CHECK_EQ_INT(e, utc_ms(2024, 3, 12, 13, 50));
    CHECK_EQ_INT(ms_gen_bucket(utc_ms(2024, 3, 12, 13, 47), 1, "hour", &s, &e), 1);
    CHECK_EQ_INT(s, utc_ms(2024, 3, 12, 13, 0));
    /* 2024-03-10 is 23 hours long in New York. */
    CHECK_EQ_INT(ms_gen_bucket(utc_ms(2024, 3, 10, 12, 0), 1, "day", &s, &e), 1);
    CHECK_EQ_INT(s, utc_ms(2024, 3, 10, 5, 0));
    CHECK_EQ_INT(e, utc_ms(2024, 3, 11, 4, 0));
    /* 02:00Z is still the previous evening in New York. */
    CHECK_EQ_INT(ms_gen_ny_day(utc_ms(2024, 3, 12, 2, 0)), tf_days_from_civil(2024, 3, 11));
    CHECK_EQ_INT(ms_gen_bucket(0, 0, "minute", &s, &e), 0);
    CHECK_EQ_INT(ms_gen_bucket(0, 1, "week", &s, &e), 0);
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    h ^= v;
    return h * 1099511628211ULL;
}

static uint64_t fnv_dbl(uint64_t h, double x)
{
    uint64_t v;

    memcpy(&v, &x, sizeof(v));
    return fnv_u64(h, v);
}

/* A digest of every field of every bar. */
static uint64_t bars_digest(const struct ms_bar *b, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++) {
        h = fnv_u64(h, (uint64_t)b[i].t_ms);
        h = fnv_dbl(h, b[i].o);
        h = fnv_dbl(h, b[i].h);
        h = fnv_dbl(h, b[i].l);
        h = fnv_dbl(h, b[i].c);
        h = fnv_dbl(h, b[i].v);
        h = fnv_dbl(h, b[i].vw);
        h = fnv_u64(h, (uint64_t)b[i].n);
    }
    return h;
}

/*
 * Equity bars must never change: the e2e tests and any data already built
 * from marketsim rely on them. The digests were taken before crypto and
 * forex sessions were added, and taken again when the NYSE calendar came
 * in: March 2024 lost Good Friday (the 29th) and nothing else, so each is
 * the digest of the earlier generator's bars of March 1-28.
 */
static void test_equity_golden(void)
{
    static const struct {
        const char *ticker;
        size_t n;
        uint64_t digest;
    } golden[] = {
        {"AAPL", 7800, 0x7bd4b0973211b6d0ULL},
        {"QQQ.SPARSE", 6260, 0x234f35d4217030f9ULL},
        {"BRK.B", 7800, 0xc35c16f74a363d60ULL},
    };

    for (size_t k = 0; k < sizeof(golden) / sizeof(golden[0]); k++) {
        struct ms_bar *bars = NULL;
        size_t n = ms_gen_minute_bars(SEED, golden[k].ticker, utc_ms(2024, 3, 1, 0, 0),
                                      utc_ms(2024, 4, 1, 0, 0) - 1, &bars);

        CHECK(n == golden[k].n && bars_digest(bars, n) == golden[k].digest,
              "%s March 2024: %zu bars, digest %016llx; want %zu, %016llx", golden[k].ticker, n,
              (unsigned long long)bars_digest(bars, n), golden[k].n,
              (unsigned long long)golden[k].digest);
        free(bars);
    }
}

static void test_asset_syntax(void)
{
    static const struct {
        const char *ticker;
        enum ms_asset asset;
        const char *canon;
    } cases[] = {
        {"AAPL", MS_ASSET_EQUITY, "AAPL"},          {"BRK.B", MS_ASSET_EQUITY, "BRK.B"},
        {"X:BTCUSD", MS_ASSET_CRYPTO, "X:BTCUSD"},  {"X:FOOUSD", MS_ASSET_CRYPTO, "X:FOOUSD"},
        {"BTC/USD", MS_ASSET_CRYPTO, "X:BTCUSD"},   {"eth/btc", MS_ASSET_CRYPTO, "X:ETHBTC"},
        {"DOGE/USD", MS_ASSET_CRYPTO, "X:DOGEUSD"}, {"C:EURUSD", MS_ASSET_FOREX, "C:EURUSD"},
        {"EUR/USD", MS_ASSET_FOREX, "C:EURUSD"},    {"gbp/jpy", MS_ASSET_FOREX, "C:GBPJPY"},
        {"FOO/USD", MS_ASSET_FOREX, "C:FOOUSD"},
    };
    char out[32];
    int bad = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int ok = ms_gen_canonical(cases[i].ticker, out, sizeof(out));

        if (ms_gen_asset(cases[i].ticker) != cases[i].asset || !ok ||
            strcmp(out, cases[i].canon) != 0) {
            CHECK(0, "%s: asset %d canonical \"%s\", want %d \"%s\"", cases[i].ticker,
                  (int)ms_gen_asset(cases[i].ticker), out, (int)cases[i].asset, cases[i].canon);
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(ms_gen_asset(NULL), MS_ASSET_EQUITY);
    CHECK_EQ_INT(ms_gen_canonical("", out, sizeof(out)), 0);
    CHECK_EQ_INT(ms_gen_canonical("BTC/USD", out, 8), 0); /* "X:BTCUSD" needs 9 bytes */
    CHECK_STR(out, "");
    CHECK_EQ_INT(ms_gen_canonical("BTC/USD", out, 9), 1);
}

/* 1 when bars a and b hold the very same bars. */
static int same_bars(const struct ms_bar *a, size_t na, const struct ms_bar *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        if (!same_bar(&a[i], &b[i]))
            return 0;
    }
    return 1;
}

/* Counts bars that break OHLC order, 4-decimal prices or the "%.15g" round trip. */
static size_t count_bad_prices(const struct ms_bar *bars, size_t n)
{
    size_t bad = 0;

    for (size_t i = 0; i < n; i++) {
        const struct ms_bar *b = &bars[i];
        double vals[] = {b->o, b->h, b->l, b->c, b->vw};
        int ok = b->h >= b->o && b->h >= b->c && b->l <= b->o && b->l <= b->c && b->l > 0 &&
                 b->vw >= b->l && b->vw <= b->h && b->n > 0;
        char txt[64];

        for (size_t j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
            snprintf(txt, sizeof(txt), "%.15g", vals[j]);
            ok = ok && is_round4(vals[j]) && strtod(txt, NULL) == vals[j];
        }
        bad += !ok;
    }
    return bad;
}

static void test_crypto(void)
{
    struct ms_bar *day = NULL, *slice = NULL, *td = NULL, *wknd = NULL, *cross = NULL;
    size_t nd, ns, nt, nw, nc, gaps = 0, frac = 0, bad_v = 0, bad_open = 0;
    char txt[64];

    /* A whole UTC day has 1440 bars, 00:00Z to 23:59Z, weekends too. */
    nd = ms_gen_minute_bars(SEED, "X:BTCUSD", utc_ms(2024, 3, 12, 0, 0),
                            utc_ms(2024, 3, 13, 0, 0) - 1, &day);
    CHECK_EQ_INT(nd, 1440);
    if (nd == 1440) {
        CHECK_EQ_INT(day[0].t_ms, utc_ms(2024, 3, 12, 0, 0));
        CHECK_EQ_INT(day[1439].t_ms, utc_ms(2024, 3, 12, 23, 59));
    }
    nw = ms_gen_minute_bars(SEED, "X:BTCUSD", utc_ms(2024, 3, 9, 0, 0),
                            utc_ms(2024, 3, 11, 0, 0) - 1, &wknd);
    CHECK_EQ_INT(nw, 2 * 1440);
    for (size_t i = 1; i < nd; i++) {
        gaps += day[i].t_ms != day[i - 1].t_ms + ONE_MIN_MS;
        bad_open += day[i].o != day[i - 1].c;
    }
    CHECK(gaps == 0 && bad_open == 0, "%zu gaps, %zu opens off the previous close in a day", gaps,
          bad_open);
    CHECK_EQ_INT(count_bad_prices(day, nd) + count_bad_prices(wknd, nw), 0);

    /* Volume: fractional coins, 4 decimals, printed exactly by "%.15g". */
    for (size_t i = 0; i < nd; i++) {
        snprintf(txt, sizeof(txt), "%.15g", day[i].v);
        frac += day[i].v != floor(day[i].v);
        bad_v += !(day[i].v > 0 && is_round4(day[i].v) && strtod(txt, NULL) == day[i].v);
    }
    CHECK(frac > nd / 2, "only %zu of %zu crypto volumes are fractional", frac, nd);
    CHECK_EQ_INT(bad_v, 0);

    /* Any window sees the same bars: an hour alone, and Twelve Data's spelling. */
    ns = ms_gen_minute_bars(SEED, "X:BTCUSD", utc_ms(2024, 3, 12, 10, 0),
                            utc_ms(2024, 3, 12, 10, 59), &slice);
    CHECK(ns == 60 && nd == 1440 && same_bars(slice, ns, day + 600, 60),
          "the 10:00Z hour differs from the same minutes of the whole day");
    nt = ms_gen_minute_bars(SEED, "BTC/USD", utc_ms(2024, 3, 12, 0, 0),
                            utc_ms(2024, 3, 13, 0, 0) - 1, &td);
    CHECK(same_bars(td, nt, day, nd), "BTC/USD and X:BTCUSD give different bars");

    /* Across midnight UTC the walk restarts, the bars stay the same. */
    nc = ms_gen_minute_bars(SEED, "X:BTCUSD", utc_ms(2024, 3, 11, 23, 30),
                            utc_ms(2024, 3, 12, 0, 29), &cross);
    CHECK(nc == 60 && nd == 1440 && same_bars(cross + 30, 30, day, 30),
          "a window across midnight changes the bars after it");

    /* Price levels follow the instrument. */
    CHECK(nd == 1440 && day[0].o > 10000.0 && day[0].o < 200000.0, "BTC opens at %g",
          nd ? day[0].o : 0.0);
    free(day);
    free(slice);
    free(td);
    free(wknd);
    free(cross);
}

static void test_forex(void)
{
    struct ms_bar *w1 = NULL, *w2 = NULL, *sat = NULL, *td = NULL;
    size_t n1, n2, ns, nt, bad_v = 0;

    /* EST week: Sunday 2024-03-03 17:00 EST (22:00Z) to Friday 2024-03-08 17:00 (22:00Z). */
    n1 = ms_gen_minute_bars(SEED, "C:EURUSD", utc_ms(2024, 3, 2, 0, 0), utc_ms(2024, 3, 9, 0, 0),
                            &w1);
    CHECK_EQ_INT(n1, 5 * 1440);
    if (n1 == 5 * 1440) {
        CHECK_EQ_INT(w1[0].t_ms, utc_ms(2024, 3, 3, 22, 0));
        CHECK_EQ_INT(w1[n1 - 1].t_ms, utc_ms(2024, 3, 8, 21, 59));
    }
    /* The week DST starts (Sunday 2024-03-10): 17:00 EDT is 21:00Z. */
    n2 = ms_gen_minute_bars(SEED, "C:EURUSD", utc_ms(2024, 3, 9, 0, 0), utc_ms(2024, 3, 16, 0, 0),
                            &w2);
    CHECK_EQ_INT(n2, 5 * 1440);
    if (n2 == 5 * 1440) {
        CHECK_EQ_INT(w2[0].t_ms, utc_ms(2024, 3, 10, 21, 0));
        CHECK_EQ_INT(w2[n2 - 1].t_ms, utc_ms(2024, 3, 15, 20, 59));
    }
    ns = ms_gen_minute_bars(SEED, "C:EURUSD", utc_ms(2024, 3, 9, 0, 0),
                            utc_ms(2024, 3, 10, 0, 0) - 1, &sat);
    CHECK_EQ_INT(ns, 0);

    /* Polygon's forex volume is the tick count: v == n, whole and positive. */
    for (size_t i = 0; i < n1; i++)
        bad_v += !(w1[i].v == (double)w1[i].n && w1[i].n >= 1);
    CHECK_EQ_INT(bad_v, 0);
    CHECK_EQ_INT(count_bad_prices(w1, n1) + count_bad_prices(w2, n2), 0);
    CHECK(n1 > 0 && w1[0].o > 0.9 && w1[0].o < 1.3, "EUR/USD opens at %g", n1 ? w1[0].o : 0.0);

    nt = ms_gen_minute_bars(SEED, "EUR/USD", utc_ms(2024, 3, 2, 0, 0), utc_ms(2024, 3, 9, 0, 0),
                            &td);
    CHECK(same_bars(td, nt, w1, n1), "EUR/USD and C:EURUSD give different bars");
    free(w1);
    free(w2);
    free(sat);
    free(td);
}

static void test_24h_sparse(void)
{
    struct ms_bar *bars = NULL;
    int64_t last = 0;
    size_t n;

    CHECK_EQ_INT(ms_gen_is_sparse("X:BTCUSD"), 0);
    CHECK_EQ_INT(ms_gen_is_sparse("DOGE/USD"), 0);
    CHECK_EQ_INT(ms_gen_is_sparse("C:EURUSD"), 0);
    CHECK_EQ_INT(ms_gen_is_sparse("GBP/JPY"), 0);
    CHECK_EQ_INT(ms_gen_is_sparse("X:FOOUSD.SPARSE"), 1);
    CHECK_EQ_INT(ms_gen_is_sparse("C:EURUSD"), ms_gen_is_sparse("EUR/USD"));
    n = ms_gen_minute_bars(SEED, "X:FOOUSD.SPARSE", utc_ms(2024, 3, 12, 0, 0),
                           utc_ms(2024, 3, 13, 0, 0) - 1, &bars);
    CHECK(n > 1000 && n < 1400, "a sparse crypto day has %zu bars", n);
    free(bars);

    /* The last bar of a window, looking back over a closed weekend. */
    CHECK_EQ_INT(ms_gen_last_minute(SEED, "AAPL", 0, utc_ms(2024, 3, 10, 12, 0), &last), 1);
    CHECK_EQ_INT(last, utc_ms(2024, 3, 8, 20, 59));
    CHECK_EQ_INT(ms_gen_last_minute(SEED, "C:EURUSD", 0, utc_ms(2024, 3, 9, 12, 0), &last), 1);
    CHECK_EQ_INT(last, utc_ms(2024, 3, 8, 21, 59));
    CHECK_EQ_INT(ms_gen_last_minute(SEED, "AAPL", utc_ms(2024, 3, 9, 0, 0),
                                    utc_ms(2024, 3, 10, 12, 0), &last),
                 0);
}

/*
 * Sessions follow the trading calendar. The digests pin 2022-2026 whole:
 * they were taken from the generator as it was before the calendar, keeping
 * only the minutes that tf_cal_minute_open() calls open, so ordinary days
 * are unchanged, holidays are gone and an early close is the first 210
 * minutes of that day's walk; forex and crypto were already in session.
 */
static void test_trading_calendar(void)
{
    static const struct {
        const char *ticker;
        size_t n;
        uint64_t digest;
    } golden[] = {
        {"AAPL", 487470, 0x073c8ca72379fc72ULL},      {"QQQ.SPARSE", 390044, 0xddc38f155d7105b5ULL},
        {"BRK.B", 487470, 0x7870d45c67fab392ULL},     {"C:EURUSD", 1877880, 0x291de2ebb0ca2a40ULL},
        {"X:BTCUSD", 2629440, 0x0e3186d8f3cf4261ULL},
    };
    struct ms_bar *bars = NULL;
    size_t n;

    for (size_t k = 0; k < sizeof(golden) / sizeof(golden[0]); k++) {
        n = ms_gen_minute_bars(SEED, golden[k].ticker, utc_ms(2022, 1, 1, 0, 0),
                               utc_ms(2027, 1, 1, 0, 0) - 1, &bars);
        CHECK(n == golden[k].n && bars_digest(bars, n) == golden[k].digest,
              "%s 2022-2026: %zu bars, digest %016llx; want %zu, %016llx", golden[k].ticker, n,
              (unsigned long long)bars_digest(bars, n), golden[k].n,
              (unsigned long long)golden[k].digest);
        free(bars);
        bars = NULL;
    }

    /* Holidays: Independence Day, Good Friday, an observed Juneteenth. */
    CHECK_EQ_INT(day_bars("AAPL", 2024, 7, 4, &bars), 0);
    CHECK(bars == NULL, "a holiday must leave *out NULL");
    CHECK_EQ_INT(day_bars("AAPL", 2024, 3, 29, &bars), 0);
    CHECK_EQ_INT(day_bars("MSFT", 2022, 6, 20, &bars), 0);
    /* New Year 2022 fell on a Saturday: December 31, 2021 trades in full. */
    n = day_bars("AAPL", 2021, 12, 31, &bars);
    CHECK_EQ_INT(n, 390);
    free(bars);
    bars = NULL;

    /* An early close: 09:30-12:59 EDT, the first 210 minutes of the walk. */
    n = day_bars("AAPL", 2024, 7, 3, &bars);
    CHECK_EQ_INT(n, 210);
    if (n == 210) {
        CHECK_EQ_INT(bars[0].t_ms, utc_ms(2024, 7, 3, 13, 30));
        CHECK_EQ_INT(bars[209].t_ms, utc_ms(2024, 7, 3, 16, 59));
        CHECK(bars_digest(bars, n) == 0x6342cc904cddd1bdULL, "2024-07-03 digest %016llx",
              (unsigned long long)bars_digest(bars, n));
    }
    free(bars);
    bars = NULL;
    /* ... and in winter (the day after Thanksgiving): 14:30Z to 17:59Z. */
    n = day_bars("AAPL", 2024, 11, 29, &bars);
    CHECK_EQ_INT(n, 210);
    if (n == 210)
        CHECK_EQ_INT(bars[209].t_ms, utc_ms(2024, 11, 29, 17, 59));
    free(bars);
    bars = NULL;
    /* A window reaching past an early close gets nothing after 13:00. */
    n = ms_gen_minute_bars(SEED, "AAPL", ny_ms(2024, 12, 24, 12, 58), ny_ms(2024, 12, 24, 15, 0),
                           &bars);
    CHECK_EQ_INT(n, 2);
    free(bars);
    bars = NULL;

    /* The generator and the calendar agree on every dense instrument's bar count. */
    {
        static const char *const dense[] = {"AAPL", "C:EURUSD", "X:BTCUSD", "EUR/USD"};
        int64_t from = utc_ms(2024, 6, 1, 0, 0), to = utc_ms(2025, 1, 1, 0, 0);

        for (size_t k = 0; k < sizeof(dense) / sizeof(dense[0]); k++) {
            struct ms_bar *hours = NULL;
            size_t nh;

            n = ms_gen_minute_bars(SEED, dense[k], from, to - 1, &bars);
            CHECK(
                n > 0 && (long long)n == tf_cal_expected_bars(tf_market_of(dense[k]), 1, "minute",
                                                              from / 1000, to / 1000),
                "%s: %zu minute bars, calendar expects %lld", dense[k], n,
                tf_cal_expected_bars(tf_market_of(dense[k]), 1, "minute", from / 1000, to / 1000));
            nh = ms_gen_rollup(bars, n, 1, "hour", &hours);
            CHECK_EQ_INT(nh, tf_cal_expected_bars(tf_market_of(dense[k]), 1, "hour", from / 1000,
                                                  to / 1000));
            free(hours);
            hours = NULL;
            /* Whole New York days for day bars. */
            free(bars);
            bars = NULL;
            n = ms_gen_minute_bars(SEED, dense[k], ny_ms(2024, 6, 1, 0, 0),
                                   ny_ms(2025, 1, 1, 0, 0) - 1, &bars);
            nh = ms_gen_rollup(bars, n, 1, "day", &hours);
            CHECK_EQ_INT(nh, tf_cal_expected_bars(tf_market_of(dense[k]), 1, "day",
                                                  ny_ms(2024, 6, 1, 0, 0) / 1000,
                                                  ny_ms(2025, 1, 1, 0, 0) / 1000));
            free(hours);
            free(bars);
            bars = NULL;
        }
    }
}

/* marketsim's sessions before the 2007 DST rule: 2005-03-15 trades 14:30Z to 21:00Z (EST). */
static void test_session_before_2007(void)
{
    struct ms_bar *bars = NULL;
    int64_t day = tf_days_from_civil(2005, 3, 15) * 86400000LL;
    size_t n = ms_gen_minute_bars(SEED, "AAPL", day, day + 86400000LL - 1, &bars);

    CHECK_EQ_INT(n, 390);
    if (n > 0) {
        CHECK_EQ_INT(bars[0].t_ms, day + (14 * 60 + 30) * 60000LL);
        CHECK_EQ_INT(bars[n - 1].t_ms, day + (20 * 60 + 59) * 60000LL);
    }
    free(bars);
}

/* ms_fmt_g15 writes exactly what "%.15g" writes, for the generator's values and any other. */
static void check_g15(double v, int *bad)
{
    char a[64], b[64];
    size_t n = ms_fmt_g15(a, v);

    snprintf(b, sizeof(b), "%.15g", v);
    if (strcmp(a, b) != 0 || n != strlen(b)) {
        if ((*bad)++ < 5)
            CHECK(0, "ms_fmt_g15(%.17g) = %s, %%.15g = %s", v, a, b);
    }
}

static void test_fmt_g15(void)
{
    static const double edges[] = {
        0.0,  -0.0,     0.0001,   -0.0001, 0.00005,   1e-5,   0.1,
        0.3,  1.0,      9.9999,   10.0,    123.4567,  1e10,   99999999999.9999,
        1e11, 1e15,     1e16,     1e300,   -171.2345, 5e-324, 2.2250738585072014e-308,
        NAN,  INFINITY, -INFINITY};
    unsigned long long s = 0x9e3779b97f4a7c15ULL;
    int bad = 0;
    size_t n;

    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check_g15(edges[i], &bad);
    /* Every value of a day of generated bars, of several asset classes. */
    {
        static const char *const tickers[] = {"AAPL", "MSFT", "X:BTCUSD", "C:EURUSD",
                                              "ZZZZ.SPARSE"};
        int64_t from = 1709510400000LL; /* 2024-03-04 */
        for (size_t t = 0; t < sizeof(tickers) / sizeof(tickers[0]); t++) {
            struct ms_bar *bars = NULL;
            n = ms_gen_minute_bars(1, tickers[t], from, from + 86400000LL, &bars);
            CHECK(n > 0, "bars of %s", tickers[t]);
            for (size_t i = 0; i < n; i++) {
                check_g15(bars[i].o, &bad);
                check_g15(bars[i].h, &bad);
                check_g15(bars[i].l, &bad);
                check_g15(bars[i].c, &bad);
                check_g15(bars[i].v, &bad);
                check_g15(bars[i].vw, &bad);
            }
            free(bars);
        }
    }
    /* Random values of 4 decimals and random doubles of every size. */
    for (int i = 0; i < 200000; i++) {
        double x;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x = (double)(long long)((s >> 11) % 2000000000000000ULL) / 10000.0;
        check_g15(i % 2 ? x : -x, &bad);
        check_g15(round(x * 10000.0) / 10000.0 / 1000.0, &bad);
        {
            uint64_t bits = s ^ (s >> 29);
            double y;
            memcpy(&y, &bits, sizeof(y));
            check_g15(y, &bad);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    test_determinism();
    test_calendar();
    test_invariants();
    test_sparse();
    test_rollup();
    test_buckets();
    test_equity_golden();
    test_trading_calendar();
    test_asset_syntax();
    test_crypto();
    test_forex();
    test_24h_sparse();
    test_fmt_g15();
    test_session_before_2007();
    return check_summary();
}
