/*
 * gen.c - marketsim's deterministic bar generator (API in gen.h).
 *
 * Owns no state: every number comes from a 64-bit integer hash of (seed,
 * ticker, trading day), stretched with splitmix64, so any window of any
 * size sees the same bar for a given minute. A trading day is always built
 * whole (390 minutes, 09:30-15:59 New York time, Monday to Friday, no
 * holiday calendar) and then clipped to the window asked for. Floating
 * point is plain IEEE double through <math.h>; prices and VWAP are rounded
 * to 4 decimals, so "%.15g" prints them in a form that parses back to the
 * same double.
 */
#include "gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen_internal.h"
#include "tf/time.h"

#define SESSION_MINUTES 390
#define MS_PER_MINUTE   60000LL
#define MS_PER_HOUR     3600000LL
#define MS_PER_DAY      86400000LL
#define TWO_PI          6.283185307179586

enum span { SPAN_MINUTE, SPAN_HOUR, SPAN_DAY };

/* Per-ticker constants, a function of the name only. */
struct ticker_params {
    uint64_t hash;      /* FNV-1a of the name */
    double base_price;  /* 20.00 .. 500.00 */
    double vol;         /* per-minute log-return standard deviation */
    double base_volume; /* typical shares per mid-session minute */
    double phase;       /* of the slow multi-month price cycle */
    int sparse;
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

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
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

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int ms_gen_is_sparse(const char *ticker)
{
    static const char *const dense[] = {"AAPL", "MSFT", "AMZN"};

    if (!ticker)
        return 0;
    if (has_suffix(ticker, ".SPARSE"))
        return 1;
    for (size_t i = 0; i < sizeof(dense) / sizeof(dense[0]); i++) {
        if (strcmp(ticker, dense[i]) == 0)
            return 0;
    }
    return mix64(fnv1a(ticker) ^ 0x5350415253450000ULL) % 4 == 0;
}

static void ticker_params_init(struct ticker_params *tp, const char *ticker)
{
    tp->hash = fnv1a(ticker);
    tp->base_price = 20.0 + (double)(mix64(tp->hash ^ 1) % 48001) / 100.0;
    tp->vol = 0.0006 + 0.0008 * (double)(mix64(tp->hash ^ 2) % 1001) / 1000.0;
    tp->base_volume = 2000.0 + (double)(mix64(tp->hash ^ 3) % 18001);
    tp->phase = TWO_PI * (double)(mix64(tp->hash ^ 4) % 3600) / 3600.0;
    tp->sparse = ms_gen_is_sparse(ticker);
}

/*
 * Builds the session of New York day number `days` (a weekday) into
 * bars[SESSION_MINUTES]; returns how many bars it kept (all 390 unless the
 * ticker is sparse). The walk runs through skipped minutes too, so a bar
 * after a gap opens at the close of the minute that had no trades.
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
        double c, h, l, hi, lo, vw, v, profile, trade_size;
        int drop;

        /* Exactly six draws per minute keep the stream aligned. */
        c = round4(o * exp(drift + tp->vol * gauss(&st)));
        if (c < 0.01)
            c = 0.01;
        hi = o > c ? o : c;
        lo = o < c ? o : c;
        h = round4(hi * (1.0 + 0.6 * tp->vol * fabs(gauss(&st))));
        l = round4(lo * (1.0 - 0.6 * tp->vol * fabs(gauss(&st))));
        if (h < hi)
            h = hi;
        if (l > lo)
            l = lo;
        if (l < 0.0001)
            l = 0.0001;
        vw = round4(l + (h - l) * (0.25 + 0.5 * uniform(&st)));
        if (vw < l)
            vw = l;
        if (vw > h)
            vw = h;
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
        b->t_ms = t0 + (int64_t)i * MS_PER_MINUTE;
        b->o = o;
        b->h = h;
        b->l = l;
        b->c = c;
        b->v = v;
        b->vw = vw;
        b->n = (long long)(v / trade_size) + 1;
        kept++;
    }
    return kept;
}

size_t ms_gen_minute_bars(uint64_t seed, const char *ticker, int64_t from_ms, int64_t to_ms,
                          struct ms_bar **out)
{
    struct ticker_params tp;
    struct ms_bar *bars = NULL; /* owned: handed to *out */
    struct ms_bar *day = NULL;  /* owned: freed at out */
    size_t n = 0;
    size_t cap = 0;

    *out = NULL;
    if (from_ms < MS_GEN_MIN_MS)
        from_ms = MS_GEN_MIN_MS;
    if (to_ms > MS_GEN_MAX_MS)
        to_ms = MS_GEN_MAX_MS;
    if (!ticker || !*ticker || from_ms > to_ms)
        return 0;
    ticker_params_init(&tp, ticker);
    /* The whole session lies inside one UTC day (13:30Z-21:00Z at most). */
    for (int64_t days = floor_div(from_ms, MS_PER_DAY); days <= floor_div(to_ms, MS_PER_DAY);
         days++) {
        int wd = tf_weekday(days);
        int64_t first, last;
        size_t kept;
        int y, m, d;

        if (wd == 0 || wd == 6)
            continue;
        tf_civil_from_days(days, &y, &m, &d);
        first = tf_time_us_eastern_to_utc(y, m, d, 9, 30) * 1000;
        last = first + (SESSION_MINUTES - 1) * MS_PER_MINUTE;
        if (last < from_ms || first > to_ms)
            continue;
        if (!day) {
            day = malloc(SESSION_MINUTES * sizeof(*day));
            if (!day)
                goto fail;
        }
        kept = gen_day(seed, &tp, days, day);
        for (size_t i = 0; i < kept; i++) {
            if (day[i].t_ms < from_ms || day[i].t_ms > to_ms)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : SESSION_MINUTES;
                struct ms_bar *grown = realloc(bars, ncap * sizeof(*bars));

                if (!grown)
                    goto fail;
                bars = grown;
                cap = ncap;
            }
            bars[n++] = day[i];
        }
    }
    free(day);
    if (n == 0) {
        free(bars);
        return 0;
    }
    *out = bars;
    return n;
fail:
    free(day);
    free(bars);
    return 0;
}

int64_t ms_gen_ny_midnight_ms(int64_t days)
{
    int y, m, d;

    tf_civil_from_days(days, &y, &m, &d);
    return tf_time_us_eastern_to_utc(y, m, d, 0, 0) * 1000;
}

int64_t ms_gen_ny_day(int64_t t_ms)
{
    int64_t sec = floor_div(t_ms, 1000);

    return floor_div(sec + tf_time_us_eastern_offset(sec), 86400);
}

static int span_parse(const char *timespan, enum span *out)
{
    if (!timespan)
        return 0;
    if (strcmp(timespan, "minute") == 0)
        *out = SPAN_MINUTE;
    else if (strcmp(timespan, "hour") == 0)
        *out = SPAN_HOUR;
    else if (strcmp(timespan, "day") == 0)
        *out = SPAN_DAY;
    else
        return 0;
    return 1;
}

int ms_gen_bucket(int64_t t_ms, long multiplier, const char *timespan, int64_t *start, int64_t *end)
{
    enum span span;
    int64_t size, first;

    if (multiplier < 1 || multiplier > MS_GEN_MAX_MULTIPLIER || !span_parse(timespan, &span))
        return 0;
    if (span == SPAN_DAY) {
        first = floor_div(ms_gen_ny_day(t_ms), multiplier) * multiplier;
        *start = ms_gen_ny_midnight_ms(first);
        *end = ms_gen_ny_midnight_ms(first + multiplier);
        return 1;
    }
    size = (span == SPAN_MINUTE ? MS_PER_MINUTE : MS_PER_HOUR) * multiplier;
    *start = floor_div(t_ms, size) * size;
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
    enum span span;

    *out = NULL;
    if (!in || n == 0 || multiplier < 1 || multiplier > MS_GEN_MAX_MULTIPLIER ||
        !span_parse(timespan, &span))
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
        if (b->h > cur->h)
            cur->h = b->h;
        if (b->l < cur->l)
            cur->l = b->l;
        cur->c = b->c;
        cur->v += b->v;
        cur->n += b->n;
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
