/*
 * gen.h - marketsim's deterministic bar generator: a seeded random walk per
 * (instrument, day), so any minute's bar is the same whatever window asks
 * for it; sessions from the trading calendar, the asset class from the
 * ticker's syntax. README.md (How it works, Instruments and sessions).
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

/** Asset classes; the ticker's syntax picks one (ms_gen_asset()). */
enum ms_asset { MS_ASSET_EQUITY = 0, MS_ASSET_CRYPTO, MS_ASSET_FOREX };

/**
 * The asset class of a ticker, from its syntax alone (tf_market_of(), whose
 * market it maps to one for one):
 *   - "X:..." or "BASE/QUOTE" whose BASE is BTC, ETH, SOL, XRP, DOGE or LTC
 *     (any case): MS_ASSET_CRYPTO;
 *   - "C:..." or any other symbol with a '/': MS_ASSET_FOREX;
 *   - anything else, NULL included: MS_ASSET_EQUITY.
 */
enum ms_asset ms_gen_asset(const char *ticker);

/**
 * Writes to out the canonical name of ticker, the one the generator hashes:
 * Twelve Data's "BASE/QUOTE" becomes Polygon's spelling, uppercased
 * ("BTC/USD" -> "X:BTCUSD", "eur/usd" -> "C:EURUSD"); every other ticker
 * ("AAPL", "X:BTCUSD", "C:EURUSD") is copied unchanged. Returns 1, or 0
 * (out set to "" when outlen > 0) for a NULL or empty ticker or when the
 * name does not fit in outlen bytes.
 */
int ms_gen_canonical(const char *ticker, char *out, size_t outlen);

/**
 * 1-minute bars of ticker whose start lies in [from_ms, to_ms] (both
 * inclusive, Polygon's semantics), ascending, in the ticker's session (see
 * the top of this file; "X:BTCUSD" and "BTC/USD" give the same bars).
 * Returns the count and a new array in *out (free with free(); NULL when
 * the count is 0, also when out of memory).
 */
size_t ms_gen_minute_bars(uint64_t seed, const char *ticker, int64_t from_ms, int64_t to_ms,
                          struct ms_bar **out);

/**
 * Rolls ascending 1-minute bars up into multiplier x timespan bars
 * ("minute", "hour", "day"; minute and hour buckets are aligned to the
 * epoch in UTC, day buckets start at midnight America/New_York), as Polygon
 * builds custom bars: open of the first, close of the last, high/low
 * extremes, volume and trade sums, volume-weighted VWAP. The buckets are the
 * same for every asset class (a crypto or forex day bar also starts at
 * midnight New York time). Returns the count and a new array in *out.
 */
size_t ms_gen_rollup(const struct ms_bar *in, size_t n, long multiplier, const char *timespan,
                     struct ms_bar **out);

/**
 * 1 for tickers the generator makes sparse (some minutes have no bar): names
 * ending ".SPARSE", and about one in four other names (a hash of the
 * canonical name). Never AAPL, MSFT, AMZN, the listed crypto bases, nor
 * forex pairs of two G10 currencies.
 */
int ms_gen_is_sparse(const char *ticker);

/**
 * Writes v as printf's "%.15g" writes it into out (at least 32 bytes) and
 * returns its length: directly for a value of at most 4 decimals below
 * 10^11 (every price and volume the generator makes), through snprintf()
 * for any other.
 */
size_t ms_fmt_g15(char *out, double v);

#endif
