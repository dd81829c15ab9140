/*
 * gen.c - marketsim's deterministic bar generator (API in gen.h): no state,
 * every number from a hash of (seed, instrument, day); days built whole and
 * clipped to the session and the window. README.md (How it works).
 */
#include "gen.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gen_internal.h"
#include "tf/calendar.h"
#include "tf/hash.h"
#include "tf/time.h"

#define SESSION_MINUTES 390
#define DAY_MINUTES     1440
#define MS_PER_MINUTE   60000LL
#define MS_PER_HOUR     3600000LL
#define MS_PER_DAY      86400000LL
#define TWO_PI          6.283185307179586

/* Per-ticker constants, a function of the (canonical) name only. */
struct ticker_params {
    uint64_t hash;      /* FNV-1a of the name */
    double base_price;  /* equities: 20.00 .. 500.00 */
    double vol;         /* per-minute log-return standard deviation */
    double base_volume; /* per mid-session minute: shares, forex ticks or crypto coins */
    double phase;       /* of the slow multi-month price cycle */
    int sparse;
    /* Crypto and forex only (equities keep their constants in gen_day()). */
    enum ms_asset asset;
    double cycle;       /* amplitude of the slow cycle, in log price */
    double day_noise;   /* standard deviation of the daily open's noise */
    double drift_sd;    /* standard deviation of the day's per-minute drift */
    double floor_price; /* no price goes below this */
};

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t mix64(uint64_t x)
{
    return splitmix64(&x);
}

/* Uniform in (0, 1), never 0 or 1. */
static double uniform(uint64_t *state)
{
    return ((double)(splitmix64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal (Box-Muller); always draws two numbers. */
static double gauss(uint64_t *state)
{
    double u1 = uniform(state);
    double u2 = uniform(state);

    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

static double round4(double x)
{
    return round(x * 10000.0) / 10000.0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Crypto bases that mark "BASE/QUOTE" as crypto, with a typical USD price. */
static const struct {
    const char *code;
    double usd;
} crypto_bases[] = {{"BTC", 42000.0}, {"ETH", 2500.0}, {"SOL", 100.0},
                    {"XRP", 0.55},    {"DOGE", 0.09},  {"LTC", 75.0}};

/* Currencies with a typical USD value; the first ten are the G10. */
static const struct {
    const char *code;
    double usd;
} currencies[] = {{"USD", 1.0},   {"EUR", 1.08},  {"GBP", 1.27},  {"JPY", 0.0067}, {"CHF", 1.13},
                  {"CAD", 0.74},  {"AUD", 0.66},  {"NZD", 0.61},  {"SEK", 0.095},  {"NOK", 0.094},
                  {"DKK", 0.145}, {"CNY", 0.14},  {"HKD", 0.128}, {"SGD", 0.74},   {"MXN", 0.058},
                  {"ZAR", 0.054}, {"TRY", 0.031}, {"INR", 0.012}, {"USDT", 1.0},   {"USDC", 1.0}};
#define G10_COUNT 10

/* The index of the crypto base that s (of length n) names exactly, or -1. */
static int crypto_base_index(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(crypto_bases) / sizeof(crypto_bases[0]); i++) {
        if (strlen(crypto_bases[i].code) == n && strncasecmp(s, crypto_bases[i].code, n) == 0)
            return (int)i;
    }
    return -1;
}

/* The index of the currency that s (of length n) names exactly, or -1. */
static int currency_index(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(currencies) / sizeof(currencies[0]); i++) {
        if (strlen(currencies[i].code) == n && strncmp(s, currencies[i].code, n) == 0)
            return (int)i;
    }
    return -1;
}

enum ms_asset ms_gen_asset(const char *ticker)
{
    switch (tf_market_of(ticker)) {
    case TF_MARKET_CRYPTO:
        return MS_ASSET_CRYPTO;
    case TF_MARKET_FOREX:
        return MS_ASSET_FOREX;
    default:
        return MS_ASSET_EQUITY;
    }
}

int ms_gen_canonical(const char *ticker, char *out, size_t outlen)
{
    size_t n = ticker ? strlen(ticker) : 0;
    size_t o = 0;

    if (outlen > 0)
        out[0] = '\0';
    if (n == 0 || outlen == 0)
        return 0;
    if (strchr(ticker, '/') == NULL || strncmp(ticker, "X:", 2) == 0 ||
        strncmp(ticker, "C:", 2) == 0) {
        if (n >= outlen)
            return 0;
        memcpy(out, ticker, n + 1);
        return 1;
    }
    if (n + 2 > outlen) /* "X:" added, '/' dropped, NUL */
        return 0;
    out[o++] = ms_gen_asset(ticker) == MS_ASSET_CRYPTO ? 'X' : 'C';
    out[o++] = ':';
    for (const char *p = ticker; *p; p++) {
        if (*p != '/')
            out[o++] = (char)toupper((unsigned char)*p);
    }
    out[o] = '\0';
    return 1;
}

/*
 * Splits a canonical "X:..." or "C:..." name into its base and quote codes
 * (*base_len and *quote points into name). Crypto names split after a
 * listed base, else before a known quote currency; forex names after three
 * letters. Returns 0 when no split is found.
 */
static int split_pair(const char *name, const char **base, size_t *base_len, const char **quote)
{
    const char *p = name + 2;
    size_t n = strlen(p);

    *base = p;
    if (name[0] == 'C') {
        if (n < 4)
            return 0;
        *base_len = 3;
        *quote = p + 3;
        return 1;
    }
    for (size_t i = 0; i < sizeof(crypto_bases) / sizeof(crypto_bases[0]); i++) {
        size_t m = strlen(crypto_bases[i].code);

        if (n > m && strncmp(p, crypto_bases[i].code, m) == 0) {
            *base_len = m;
            *quote = p + m;
            return 1;
        }
    }
    for (size_t m = 3; m <= 4 && m < n; m++) {
        if (currency_index(p + n - m, m) >= 0 || crypto_base_index(p + n - m, m) >= 0) {
            *base_len = n - m;
            *quote = p + n - m;
            return 1;
        }
    }
    return 0;
}

/* A typical USD value of a crypto or currency code, 0 if unknown. */
static double usd_value(const char *code, size_t n)
{
    int i = crypto_base_index(code, n);

    if (i >= 0)
        return crypto_bases[i].usd;
    i = currency_index(code, n);
    return i >= 0 ? currencies[i].usd : 0.0;
}

/* 1 for the instruments that are never sparse: listed crypto bases, G10 pairs. */
static int is_major_pair(const char *canon)
{
    const char *base, *quote;
    size_t bl;
    int bi, qi;

    if (!split_pair(canon, &base, &bl, &quote))
        return 0;
    if (canon[0] == 'X')
        return crypto_base_index(base, bl) >= 0;
    bi = currency_index(base, bl);
    qi = currency_index(quote, strlen(quote));
    return bi >= 0 && bi < G10_COUNT && qi >= 0 && qi < G10_COUNT;
}

int ms_gen_is_sparse(const char *ticker)
{
    static const char *const dense[] = {"AAPL", "MSFT", "AMZN"};
    char canon[128];

    if (!ticker)
        return 0;
    if (ms_gen_asset(ticker) != MS_ASSET_EQUITY && ms_gen_canonical(ticker, canon, sizeof(canon))) {
        if (has_suffix(canon, ".SPARSE"))
            return 1;
        if (is_major_pair(canon))
            return 0;
        ticker = canon;
    }
    if (has_suffix(ticker, ".SPARSE"))
        return 1;
    for (size_t i = 0; i < sizeof(dense) / sizeof(dense[0]); i++) {
        if (strcmp(ticker, dense[i]) == 0)
            return 0;
    }
    return mix64(tf_fnv1a64_str(TF_FNV1A64_INIT, ticker) ^ 0x5350415253450000ULL) % 4 == 0;
}

static void ticker_params_init(struct ticker_params *tp, const char *ticker)
{
    tp->hash = tf_fnv1a64_str(TF_FNV1A64_INIT, ticker);
    tp->base_price = 20.0 + (double)(mix64(tp->hash ^ 1) % 48001) / 100.0;
    tp->vol = 0.0006 + 0.0008 * (double)(mix64(tp->hash ^ 2) % 1001) / 1000.0;
    tp->base_volume = 2000.0 + (double)(mix64(tp->hash ^ 3) % 18001);
    tp->phase = TWO_PI * (double)(mix64(tp->hash ^ 4) % 3600) / 3600.0;
    tp->sparse = ms_gen_is_sparse(ticker);
}

/* Constants of a crypto or forex instrument, from its canonical name. */
static void ticker_params_24h(struct ticker_params *tp, const char *canon, enum ms_asset asset)
{
    const char *base, *quote;
    size_t base_len;
    double price = 0.0;
    double base_usd = 0.0;

    memset(tp, 0, sizeof(*tp));
    tp->hash = tf_fnv1a64_str(TF_FNV1A64_INIT, canon);
    tp->asset = asset;
    if (split_pair(canon, &base, &base_len, &quote)) {
        double q = usd_value(quote, strlen(quote));

        base_usd = usd_value(base, base_len);
        if (base_usd > 0.0 && q > 0.0)
            price = base_usd / q;
    }
    if (price <= 0.0) /* an unknown pair: a price from the name */
        price = asset == MS_ASSET_FOREX ? 0.5 + (double)(mix64(tp->hash ^ 1) % 15001) / 10000.0
                                        : 1.0 + (double)(mix64(tp->hash ^ 1) % 99901) / 100.0;
    if (base_usd <= 0.0)
        base_usd = price;
    /* +-5% around the typical level, so that related pairs differ. */
    tp->base_price = price * (0.95 + 0.1 * (double)(mix64(tp->hash ^ 5) % 1001) / 1000.0);
    tp->phase = TWO_PI * (double)(mix64(tp->hash ^ 4) % 3600) / 3600.0;
    if (asset == MS_ASSET_FOREX) {
        tp->vol = 0.00006 + 0.00008 * (double)(mix64(tp->hash ^ 2) % 1001) / 1000.0;
        tp->base_volume = 20.0 + (double)(mix64(tp->hash ^ 3) % 81); /* ticks */
        tp->cycle = 0.04;
        tp->day_noise = 0.002;
        tp->drift_sd = 0.000002;
    } else {
        tp->vol = 0.0008 + 0.0012 * (double)(mix64(tp->hash ^ 2) % 1001) / 1000.0;
        /* 0.2 to 2 million USD a minute, in coins. */
        tp->base_volume = (200000.0 + (double)(mix64(tp->hash ^ 3) % 1800001)) / base_usd;
        tp->cycle = 0.3;
        tp->day_noise = 0.02;
        tp->drift_sd = 0.00002;
    }
    tp->floor_price = round4(tp->base_price * 0.05);
    if (tp->floor_price < 0.0001)
        tp->floor_price = 0.0001;
    tp->sparse = ms_gen_is_sparse(canon);
}

/*
 * One minute of the walk from open o: close, high, low and VWAP, from four
 * of the minute's draws in a fixed order (close, high, low, VWAP), with the
 * close kept at or above floor.
 */
static void price_step(uint64_t *st, const struct ticker_params *tp, double o, double drift,
                       double floor, double *c, double *h, double *l, double *vw)
{
    double hi, lo;

    *c = round4(o * exp(drift + tp->vol * gauss(st)));
    if (*c < floor)
        *c = floor;
    hi = o > *c ? o : *c;
    lo = o < *c ? o : *c;
    *h = round4(hi * (1.0 + 0.6 * tp->vol * fabs(gauss(st))));
    *l = round4(lo * (1.0 - 0.6 * tp->vol * fabs(gauss(st))));
    if (*h < hi)
        *h = hi;
    if (*l > lo)
        *l = lo;
    if (*l < 0.0001)
        *l = 0.0001;
    *vw = round4(*l + (*h - *l) * (0.25 + 0.5 * uniform(st)));
    if (*vw < *l)
        *vw = *l;
    if (*vw > *h)
        *vw = *h;
}

/*
 * Builds UTC day number `days` of a crypto or forex instrument into
 * bars[DAY_MINUTES]; returns how many bars it kept: the minutes in session
 * (all of them for crypto) that a sparse instrument does not skip. The walk
 * runs through every minute of the day, so a bar depends only on (seed,
 * instrument, day, minute).
 */
static size_t gen_day_24h(uint64_t seed, const struct ticker_params *tp, int64_t days,
                          struct ms_bar *bars)
{
    uint64_t st = mix64(mix64(seed ^ 0x6d61726b657473ULL) ^ tp->hash);
    uint64_t skip;
    double drift, open, prev;
    int64_t t0 = days * MS_PER_DAY;
    enum tf_market market = tp->asset == MS_ASSET_FOREX ? TF_MARKET_FOREX : TF_MARKET_CRYPTO;
    int forex = tp->asset == MS_ASSET_FOREX;
    size_t kept = 0;

    st = mix64(st ^ mix64((uint64_t)days) ^ 0x3234682f37646179ULL);
    skip = mix64(st ^ 0xd1b54a32d192ed03ULL);
    open = tp->base_price * exp(tp->cycle * sin(TWO_PI * (double)days / 180.0 + tp->phase) +
                                tp->day_noise * gauss(&st));
    open = round4(open < tp->floor_price ? tp->floor_price : open);
    drift = tp->drift_sd * gauss(&st);
    prev = open;
    for (int i = 0; i < DAY_MINUTES; i++) {
        struct ms_bar *b = &bars[kept];
        int64_t t = t0 + (int64_t)i * MS_PER_MINUTE;
        double hour = (double)i / 60.0;
        double o = prev;
        double c, h, l, vw, v, profile, g, u;
        long long trades;
        int drop;

        /* Exactly six draws per minute keep the stream aligned. */
        price_step(&st, tp, o, drift, tp->floor_price, &c, &h, &l, &vw);
        g = gauss(&st);
        u = uniform(&st);
        if (forex) {
            /* Busiest while London and New York overlap (about 13:30Z). */
            profile = 0.4 + 1.6 * exp(-(hour - 13.5) * (hour - 13.5) / 18.0);
            v = floor(tp->base_volume * profile * exp(0.4 * g));
            if (v < 1.0)
                v = 1.0;
            if (v > 20000.0)
                v = 20000.0;
            trades = (long long)v; /* Polygon's forex volume is the tick count */
        } else {
            profile = 1.0 + 0.4 * sin(TWO_PI * (hour - 9.0) / 24.0);
            v = round4(tp->base_volume * profile * exp(0.5 * g));
            if (v < 0.0001)
                v = 0.0001;
            trades = (long long)(v / (tp->base_volume / 150.0 * (0.5 + u))) + 1;
        }
        drop = tp->sparse && splitmix64(&skip) % 5 == 0;
        prev = c;
        if (drop || !tf_cal_minute_open(market, tf_floor_div(t, 1000)))
            continue;
        *b = (struct ms_bar){
            .t_ms = t, .o = o, .h = h, .l = l, .c = c, .v = v, .vw = vw, .n = trades};
        kept++;
    }
    return kept;
}

/*
 * Builds the full-day walk of New York day number `days` (a trading day)
 * into bars[SESSION_MINUTES], 09:30 to 15:59; returns how many bars it kept
 * (all 390 unless the ticker is sparse). The walk runs through skipped
 * minutes too, so a bar after a gap opens at the close of the minute that
 * had no trades. An early close keeps the bars before 13:00 (the caller
 * clips them), so the first 210 minutes are those of a full day's walk.
 */
static size_t gen_day(uint64_t seed, const struct ticker_params *tp, int64_t days,
                      struct ms_bar *bars)
{
    uint64_t st = mix64(mix64(seed ^ 0x6d61726b657473ULL) ^ tp->hash);
    uint64_t skip;
    double drift, open, prev;
    int64_t t0;
    size_t kept = 0;
    int y, m, d;

    st = mix64(st ^ mix64((uint64_t)days));
    skip = mix64(st ^ 0xd1b54a32d192ed03ULL);

    /* The day's open: a slow cycle of +-25% around the ticker's base price,
     * plus a little day-to-day noise; a small drift for the session. */
    open = tp->base_price *
           exp(0.25 * sin(TWO_PI * (double)days / 180.0 + tp->phase) + 0.02 * gauss(&st));
    open = round4(open < 1.0 ? 1.0 : open);
    drift = 0.00002 * gauss(&st);

    tf_civil_from_days(days, &y, &m, &d);
    t0 = tf_time_us_eastern_to_utc(y, m, d, 9, 30) * 1000;
    prev = open;
    for (int i = 0; i < SESSION_MINUTES; i++) {
        struct ms_bar *b = &bars[kept];
        double o = prev;
        double c, h, l, vw, v, profile, trade_size;
        long long trades;
        int64_t t;
        int drop;

        /* Exactly six draws per minute keep the stream aligned. */
        price_step(&st, tp, o, drift, 0.01, &c, &h, &l, &vw);
        /* U-shaped volume: heavier after the open and before the close. */
        profile = 1.0 + 2.5 * exp(-(double)i / 25.0) +
                  2.0 * exp(-(double)(SESSION_MINUTES - 1 - i) / 25.0);
        v = floor(tp->base_volume * profile * exp(0.4 * gauss(&st)));
        if (v < 1000.0)
            v = 1000.0;
        if (v > 200000.0)
            v = 200000.0;
        trade_size = 40.0 + 120.0 * uniform(&st);
        drop = tp->sparse && splitmix64(&skip) % 5 == 0;
        prev = c;
        if (drop)
            continue;
        trades = (long long)(v / trade_size) + 1;
        t = t0 + (int64_t)i * MS_PER_MINUTE;
        *b = (struct ms_bar){
            .t_ms = t, .o = o, .h = h, .l = l, .c = c, .v = v, .vw = vw, .n = trades};
        kept++;
    }
    return kept;
}

/* Appends the bars of day[0..kept) that lie in [from_ms, to_ms]. Returns 0 out of memory. */
static int push_clipped(struct ms_bar **bars, size_t *n, size_t *cap, const struct ms_bar *day,
                        size_t kept, int64_t from_ms, int64_t to_ms, size_t first_cap)
{
    for (size_t i = 0; i < kept; i++) {
        if (day[i].t_ms < from_ms || day[i].t_ms > to_ms)
            continue;
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : first_cap;
            struct ms_bar *grown = realloc(*bars, ncap * sizeof(**bars));

            if (!grown)
                return 0;
            *bars = grown;
            *cap = ncap;
        }
        (*bars)[(*n)++] = day[i];
    }
    return 1;
}

/*
 * Frees the day buffer and gives the bars to the caller (NULL and 0 when
 * there are none, or when ok is 0: an allocation failed on the way).
 */
static size_t hand_over(struct ms_bar *day, struct ms_bar *bars, size_t n, int ok,
                        struct ms_bar **out)
{
    free(day);
    if (!ok || n == 0) {
        free(bars);
        return 0;
    }
    *out = bars;
    return n;
}

/* ms_gen_minute_bars() for crypto and forex: UTC days of 1440 minutes. */
static size_t minute_bars_24h(uint64_t seed, const char *ticker, enum ms_asset asset,
                              int64_t from_ms, int64_t to_ms, struct ms_bar **out)
{
    struct ticker_params tp;
    struct ms_bar *bars = NULL; /* owned: handed to *out */
    struct ms_bar *day = NULL;  /* owned: freed before returning */
    char canon[128];
    size_t n = 0;
    size_t cap = 0;

    if (!ms_gen_canonical(ticker, canon, sizeof(canon)))
        return 0;
    ticker_params_24h(&tp, canon, asset);
    for (int64_t days = tf_floor_div(from_ms, MS_PER_DAY); days <= tf_floor_div(to_ms, MS_PER_DAY);
         days++) {
        size_t kept;

        if (asset == MS_ASSET_FOREX && tf_weekday(days) == 6)
            continue; /* a UTC Saturday lies wholly inside the weekend close */
        if (!day) {
            day = malloc(DAY_MINUTES * sizeof(*day));
            if (!day)
                goto fail;
        }
        kept = gen_day_24h(seed, &tp, days, day);
        if (!push_clipped(&bars, &n, &cap, day, kept, from_ms, to_ms, DAY_MINUTES))
            goto fail;
    }
    return hand_over(day, bars, n, 1, out);
fail:
    return hand_over(day, bars, n, 0, out);
}

size_t ms_gen_minute_bars(uint64_t seed, const char *ticker, int64_t from_ms, int64_t to_ms,
                          struct ms_bar **out)
{
    struct ticker_params tp;
    struct ms_bar *bars = NULL; /* owned: handed to *out */
    struct ms_bar *day = NULL;  /* owned: freed at out */
    enum ms_asset asset = ms_gen_asset(ticker);
    size_t n = 0;
    size_t cap = 0;

    *out = NULL;
    if (from_ms < MS_GEN_MIN_MS)
        from_ms = MS_GEN_MIN_MS;
    if (to_ms > MS_GEN_MAX_MS)
        to_ms = MS_GEN_MAX_MS;
    if (!ticker || !*ticker || from_ms > to_ms)
        return 0;
    if (asset != MS_ASSET_EQUITY)
        return minute_bars_24h(seed, ticker, asset, from_ms, to_ms, out);
    ticker_params_init(&tp, ticker);
    /* A session lies inside one UTC day (13:30Z-21:00Z at most), whose date
     * is its New York date. */
    for (int64_t days = tf_floor_div(from_ms, MS_PER_DAY); days <= tf_floor_div(to_ms, MS_PER_DAY);
         days++) {
        int64_t open_s, close_s, first, last;
        size_t kept;
        int y, m, d;

        tf_civil_from_days(days, &y, &m, &d);
        if (!tf_cal_us_session(y, m, d, &open_s, &close_s))
            continue; /* a weekend or an NYSE holiday */
        first = open_s * 1000;
        last = close_s * 1000 - MS_PER_MINUTE; /* 15:59, or 12:59 on an early close */
        if (last < from_ms || first > to_ms)
            continue;
        if (!day) {
            day = malloc(SESSION_MINUTES * sizeof(*day));
            if (!day)
                goto fail;
        }
        kept = gen_day(seed, &tp, days, day);
        if (!push_clipped(&bars, &n, &cap, day, kept, from_ms, to_ms < last ? to_ms : last,
                          SESSION_MINUTES))
            goto fail;
    }
    return hand_over(day, bars, n, 1, out);
fail:
    return hand_over(day, bars, n, 0, out);
}

int ms_gen_last_minute(uint64_t seed, const char *ticker, int64_t from_ms, int64_t to_ms,
                       int64_t *out)
{
    int64_t last_day = tf_floor_div(to_ms, MS_PER_DAY);

    for (int64_t d = last_day; d >= last_day - 14 && d >= tf_floor_div(from_ms, MS_PER_DAY); d--) {
        struct ms_bar *bars = NULL;
        int64_t lo = d * MS_PER_DAY;
        int64_t hi = lo + MS_PER_DAY - 1;
        size_t n = ms_gen_minute_bars(seed, ticker, lo < from_ms ? from_ms : lo,
                                      hi > to_ms ? to_ms : hi, &bars);

        if (n > 0) {
            *out = bars[n - 1].t_ms;
            free(bars);
            return 1;
        }
    }
    return 0;
}

void ms_gen_merge(struct ms_bar *cur, const struct ms_bar *b)
{
    if (b->h > cur->h)
        cur->h = b->h;
    if (b->l < cur->l)
        cur->l = b->l;
    cur->c = b->c;
    cur->v += b->v;
    cur->n += b->n;
}

int64_t ms_gen_ny_midnight_ms(int64_t days)
{
    int y, m, d;

    tf_civil_from_days(days, &y, &m, &d);
    return tf_time_us_eastern_to_utc(y, m, d, 0, 0) * 1000;
}

int64_t ms_gen_ny_day(int64_t t_ms)
{
    int64_t sec = tf_floor_div(t_ms, 1000);

    return tf_floor_div(sec + tf_time_us_eastern_offset(sec), 86400);
}

int ms_gen_bucket(int64_t t_ms, long multiplier, const char *timespan, int64_t *start, int64_t *end)
{
    enum tf_span span;
    int64_t size, first;

    if (multiplier < 1 || multiplier > MS_GEN_MAX_MULTIPLIER || !tf_span_parse(timespan, &span))
        return 0;
    if (span == TF_SPAN_DAY) {
        first = tf_floor_div(ms_gen_ny_day(t_ms), multiplier) * multiplier;
        *start = ms_gen_ny_midnight_ms(first);
        *end = ms_gen_ny_midnight_ms(first + multiplier);
        return 1;
    }
    size = (span == TF_SPAN_MINUTE ? MS_PER_MINUTE : MS_PER_HOUR) * multiplier;
    *start = tf_floor_div(t_ms, size) * size;
    *end = *start + size;
    return 1;
}

size_t ms_gen_rollup(const struct ms_bar *in, size_t n, long multiplier, const char *timespan,
                     struct ms_bar **out)
{
    struct ms_bar *bars = NULL; /* owned: handed to *out */
    struct ms_bar *cur = NULL;
    double pv = 0.0; /* sum of vw * v in the current bucket */
    int64_t cur_end = 0;
    size_t count = 0;
    enum tf_span span;

    *out = NULL;
    if (!in || n == 0 || multiplier < 1 || multiplier > MS_GEN_MAX_MULTIPLIER ||
        !tf_span_parse(timespan, &span))
        return 0;
    bars = malloc(n * sizeof(*bars));
    if (!bars)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct ms_bar *b = &in[i];
        int64_t start, end;

        if (!cur || b->t_ms >= cur_end || b->t_ms < cur->t_ms) {
            if (cur)
                cur->vw = cur->v > 0 ? round4(pv / cur->v) : round4((cur->h + cur->l) / 2.0);
            ms_gen_bucket(b->t_ms, multiplier, timespan, &start, &end);
            cur = &bars[count++];
            *cur = *b;
            cur->t_ms = start;
            cur_end = end;
            pv = b->vw * b->v;
            continue;
        }
        ms_gen_merge(cur, b);
        pv += b->vw * b->v;
    }
    cur->vw = cur->v > 0 ? round4(pv / cur->v) : round4((cur->h + cur->l) / 2.0);
    for (size_t i = 0; i < count; i++) {
        if (bars[i].vw < bars[i].l)
            bars[i].vw = bars[i].l;
        if (bars[i].vw > bars[i].h)
            bars[i].vw = bars[i].h;
    }
    if (count < n) {
        struct ms_bar *shrunk = realloc(bars, count * sizeof(*bars));

        if (shrunk)
            bars = shrunk;
    }
    *out = bars;
    return count;
}

size_t ms_fmt_g15(char *out, double v)
{
    double scaled = v * 10000.0;
    long long k, ip, fp;
    char digits[24];
    size_t n = 0, len = 0;
    int d;

    /*
     * v is the double nearest to the decimal k / 10^4 (one correctly
     * rounded division); with at most 15 significant digits such a decimal
     * is what "%.15g" prints back, in fixed notation for 10^-4 <= |v| <
     * 10^15, trailing zeros dropped.
     */
    if (!(fabs(scaled) < 1e15) || v == 0)
        return (size_t)snprintf(out, 32, "%.15g", v);
    k = llround(scaled);
    if ((double)k / 10000.0 != v)
        return (size_t)snprintf(out, 32, "%.15g", v);
    if (k < 0) {
        out[len++] = '-';
        k = -k;
    }
    ip = k / 10000;
    fp = k % 10000;
    do {
        digits[n++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip > 0);
    while (n > 0)
        out[len++] = digits[--n];
    if (fp > 0) {
        out[len++] = '.';
        for (d = 1000; fp > 0; d /= 10) {
            out[len++] = (char)('0' + fp / d);
            fp %= d;
        }
    }
    out[len] = '\0';
    return len;
}
