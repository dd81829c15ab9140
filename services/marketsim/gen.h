/*
 * gen.h - marketsim's deterministic bar generator.
 *
 * Bars are a seeded random walk per (instrument, day): the walk restarts
 * each day from an open price that is itself a function of (seed,
 * instrument, day), so any minute's bar is the same whatever window asked
 * for it. The ticker's syntax picks the asset class (ms_gen_asset()), and
 * the trading calendar (tf/calendar.h) its session:
 *
 *   - US equities (the default, e.g. "AAPL"): the NYSE regular session,
 *     09:30-16:00 America/New_York, Monday to Friday, no bars on NYSE
 *     holidays, 09:30-13:00 on early-close days (the first 210 minutes of
 *     that day's walk, which is built as a full day's); the walk restarts
 *     each New York trading day. Volume is a whole number.
 *   - Crypto (Polygon "X:BTCUSD", Twelve Data "BTC/USD"): every minute,
 *     24/7. Volume is fractional (4 decimals, in units of the base coin).
 *   - Forex (Polygon "C:EURUSD", Twelve Data "EUR/USD"): continuous from
 *     Sunday 17:00 to Friday 17:00 America/New_York. Volume is the tick
 *     count, so v == n, as Polygon reports it.
 *
 * For crypto and forex the walk restarts at every 00:00 UTC, and a bar
 * depends only on (seed, instrument, UTC day, minute). Both providers'
 * spellings of one instrument name the same bars: the generator hashes the
 * canonical (Polygon) name, see ms_gen_canonical(). Prices and VWAP carry 4
 * decimals; a "sparse" ticker (a function of its name) skips some minutes.
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
