/*
 * tf/calendar.h - trading calendars: when a market is in session (US
 * equities on the NYSE's computed holidays and early closes, crypto always,
 * forex Sunday to Friday 17:00 New York), and how many bars a window
 * should hold. Instants are epoch seconds (UTC); nothing here allocates or
 * keeps state. docs/ARCHITECTURE.md (Trading calendars) lists the rules.
 */
#ifndef TF_CALENDAR_H
#define TF_CALENDAR_H

#include <stdint.h>

/** The markets the calendar knows. */
enum tf_market { TF_MARKET_US_EQUITY = 0, TF_MARKET_CRYPTO, TF_MARKET_FOREX };

/**
 * The market of a ticker from its syntax alone, by the same rules as
 * marketsim's ms_gen_asset():
 *   - "X:..." or "BASE/QUOTE" whose BASE is BTC, ETH, SOL, XRP, DOGE or LTC
 *     (any case): TF_MARKET_CRYPTO;
 *   - "C:..." or any other symbol with a '/': TF_MARKET_FOREX;
 *   - anything else, NULL included: TF_MARKET_US_EQUITY.
 */
enum tf_market tf_market_of(const char *ticker);

/** "us_equity", "crypto" or "forex" (a static string); "unknown" for any other value. */
const char *tf_market_name(enum tf_market m);

/** Bar sizes, as Polygon names them. */
enum tf_span { TF_SPAN_MINUTE = 0, TF_SPAN_HOUR, TF_SPAN_DAY };

/** 1 and *out set for "minute", "hour" or "day"; 0 for anything else (NULL too). */
int tf_span_parse(const char *timespan, enum tf_span *out);

/**
 * Returns 1 when the US equity market is open on the New York calendar date
 * year-month-day, and sets *open_s and *close_s (either may be NULL) to the
 * session's open and close in epoch seconds (UTC): 09:30 to 16:00
 * America/New_York, 09:30 to 13:00 on early-close days. Returns 0, leaving
 * both alone, on weekends, NYSE holidays, and for a date that does not exist
 * (month 13, February 30) or lies outside years 1..9999.
 */
int tf_cal_us_session(int year, int month, int day, int64_t *open_s, int64_t *close_s);

/**
 * Returns 1 when the minute starting at minute_s (epoch seconds, normally a
 * multiple of 60) is in session for market m: US equity when open_s <=
 * minute_s < close_s of its New York date's session; crypto always; forex
 * from Sunday 17:00 (included) to Friday 17:00 (excluded) New York time.
 * Returns 0 otherwise, and for an unknown market.
 */
int tf_cal_minute_open(enum tf_market m, int64_t minute_s);

/**
 * The number of multiplier x timespan bars of market m whose start lies in
 * [from_s, to_s), that is, the bars a complete source would send for that
 * window. Bars are aligned as Polygon aligns them: "minute" and "hour"
 * buckets on the epoch in UTC; "day" buckets at 00:00 America/New_York,
 * multi-day buckets counted in New York days from 1970-01-01 (marketsim's
 * ms_gen_bucket()). A bucket counts when at least one of its minutes is in
 * session (tf_cal_minute_open()), even a minute past to_s.
 *
 * Examples: a full equity day is 390 one-minute, 78 five-minute, 7 one-hour
 * (UTC hours touching 09:30-16:00 New York) and 1 day bar; an early close
 * 210 one-minute bars; a holiday 0; a week of crypto 10080 and of forex 7200
 * one-minute bars.
 *
 * Returns 0 when to_s <= from_s, and -1 for an unknown market or timespan or
 * a multiplier outside 1..1000000. Times before year 1 or from year 10000
 * on are clamped to that range. The work grows with the number of buckets
 * in the window (a 31-day window of 1-minute crypto bars is 44640 steps).
 */
long long tf_cal_expected_bars(enum tf_market m, long multiplier, const char *timespan,
                               int64_t from_s, int64_t to_s);

/**
 * Writes to out the trading day that a bar starting at ts belongs to, as
 * "YYYY-MM-DD": US equity, the New York date of ts; crypto, the UTC date;
 * forex, the New York date of ts + 7 hours (the forex day rolls at 17:00
 * New York, so Sunday 17:00 opens Monday's trading day). An unknown market
 * is treated as US equity.
 */
void tf_cal_trading_day(enum tf_market m, int64_t ts, char out[11]);

#endif
