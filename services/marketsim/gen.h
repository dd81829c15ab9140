/*
 * gen.h - marketsim's deterministic bar generator.
 *
 * Bars are a seeded random walk per (ticker, trading day): the walk restarts
 * each session from an open price that is itself a function of (seed,
 * ticker, day), so any minute's bar is the same whatever window asked for
 * it. Sessions are the US regular session, 09:30-16:00 America/New_York,
 * Monday to Friday. Prices and VWAP carry 4 decimals, volume is a whole
 * number; a "sparse" ticker (a function of its name) skips some minutes.
 *
 * The e2e tests link this file to compute what the pipeline must produce.
 */
#ifndef MARKETSIM_GEN_H
#define MARKETSIM_GEN_H

#include <stddef.h>
#include <stdint.h>

struct ms_bar {
    int64_t t_ms; /* start of the bar, epoch milliseconds */
    double o, h, l, c;
    double v;    /* volume */
    double vw;   /* volume-weighted average price */
    long long n; /* number of trades */
};

/**
 * 1-minute bars of ticker whose start lies in [from_ms, to_ms] (both
 * inclusive, Polygon's semantics), ascending. Returns the count and a new
 * array in *out (free with free(); NULL when the count is 0).
 */
size_t ms_gen_minute_bars(uint64_t seed, const char *ticker, int64_t from_ms, int64_t to_ms,
                          struct ms_bar **out);

/**
 * Rolls ascending 1-minute bars up into multiplier x timespan bars
 * ("minute", "hour", "day"; minute and hour buckets are aligned to the
 * epoch in UTC, day buckets start at midnight America/New_York), as Polygon
 * builds custom bars: open of the first, close of the last, high/low
 * extremes, volume and trade sums, volume-weighted VWAP. Returns the count
 * and a new array in *out.
 */
size_t ms_gen_rollup(const struct ms_bar *in, size_t n, long multiplier, const char *timespan,
                     struct ms_bar **out);

/** 1 for tickers the generator makes sparse (some minutes have no bar). */
int ms_gen_is_sparse(const char *ticker);

#endif
