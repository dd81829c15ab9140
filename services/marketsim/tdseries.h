/*
 * tdseries.h - Twelve Data's time_series, computed and printed without any
 * I/O: symbols, intervals, dates in a time zone, the bars of a window and
 * the JSON bodies (success and error). twelvedata.c puts it on HTTP; the
 * unit tests call it directly.
 */
#ifndef MARKETSIM_TDSERIES_H
#define MARKETSIM_TDSERIES_H

#include <stddef.h>
#include <stdint.h>

#include "gen.h"
#include "tf/buf.h"
#include "tf/rc.h"

#define MARKETSIM_TD_OUTPUTSIZE_MAX     5000L
#define MARKETSIM_TD_OUTPUTSIZE_DEFAULT 30L /* when neither start_date nor end_date is given */

/* The intervals marketsim serves, in Twelve Data's error message order. */
#define MARKETSIM_TD_INTERVALS "1min, 5min, 15min, 30min, 45min, 1h, 2h, 4h, 1day"

enum marketsim_td_zone { MARKETSIM_TD_UTC = 0, MARKETSIM_TD_NEW_YORK };

struct marketsim_td_interval {
    const char *name; /* "1min" ... "1day" */
    int minutes;      /* 1440 for 1day */
};

enum marketsim_td_symbol_rc {
    MARKETSIM_TD_SYMBOL_OK = 0,
    MARKETSIM_TD_SYMBOL_MISSING, /* absent or empty */
    MARKETSIM_TD_SYMBOL_BATCH,   /* a comma-separated list */
    MARKETSIM_TD_SYMBOL_UNKNOWN, /* not a symbol marketsim serves: code 404 */
};

struct marketsim_td_symbol {
    char symbol[40]; /* as echoed in meta: the request's, uppercased ("EUR/USD", "AAPL") */
    char canon[48];  /* the generator's name ("C:EURUSD", "AAPL") */
    enum ms_asset asset;
    char base[12]; /* pairs only */
    char quote[12];
    char exchange[12]; /* "SYMBOL:EXCHANGE" only */
};

/* One time_series request, resolved. */
struct marketsim_td_query {
    struct marketsim_td_symbol sym;
    const struct marketsim_td_interval *iv;
    enum marketsim_td_zone zone; /* of the dates asked for and of the datetimes printed */
    int64_t start_ms;            /* first bar start, inclusive (MS_GEN_MIN_MS: none given) */
    int64_t end_ms;              /* bar starts before this, exclusive */
    int64_t known_ms;            /* minutes from here on are not known yet (now, a late cut) */
    long outputsize;             /* 1..5000 */
    int asc;                     /* order=asc */
};

/** The interval named s (case-insensitive), or NULL. */
const struct marketsim_td_interval *marketsim_td_interval_get(const char *s);

/**
 * Checks and resolves a time_series symbol, any case, up to 32 characters:
 * an equity "AAPL" (letters, digits and '.'), optionally with its venue,
 * "SBIN:NSE" (a separate instrument, still on the US equity calendar), or a
 * pair "BASE/QUOTE" (letters and digits). Names starting "ZZ" and Polygon's
 * one-letter prefixed tickers ("X:BTCUSD") are unknown. Fills *out on
 * MARKETSIM_TD_SYMBOL_OK.
 */
enum marketsim_td_symbol_rc marketsim_td_symbol_parse(const char *raw,
                                                      struct marketsim_td_symbol *out);

/** The exchange's time zone of an asset: New York for equities, UTC for forex and crypto. */
enum marketsim_td_zone marketsim_td_exchange_zone(enum ms_asset asset);

/**
 * Parses a start_date/end_date: "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]" or the
 * same with a 'T', read as wall-clock time in zone (a date alone is its
 * midnight). Returns 1 with epoch milliseconds in *out_ms, 0 if malformed.
 */
int marketsim_td_parse_date(const char *s, enum marketsim_td_zone zone, int64_t *out_ms);

/**
 * Formats the instant t_ms as wall-clock time in zone: "YYYY-MM-DD HH:MM:SS",
 * or "YYYY-MM-DD" when date_only (out >= 20 bytes).
 */
void marketsim_td_format_datetime(int64_t t_ms, enum marketsim_td_zone zone, int date_only,
                                  char *out, size_t outlen);

/**
 * Formats a generator price (4 decimals) with Twelve Data's 5: the 4-decimal
 * value and one more "0" ("148.73500"), which strtod() reads back as the
 * very same double (out >= 32 bytes).
 */
void marketsim_td_format_price(double x, char *out, size_t outlen);

/**
 * The start of the bar of q's interval holding the minute t_ms: equities'
 * intraday bars count from the session open (09:30 New York: a 1h bar starts
 * at 09:30, 10:30, ...), crypto and forex bars from 00:00 UTC; 1day bars
 * start at midnight of the exchange's day (New York for equities, UTC for
 * crypto and forex).
 */
int64_t marketsim_td_bar_start(const struct marketsim_td_query *q, int64_t t_ms);

/**
 * The bars of q: those whose start lies in [start_ms, end_ms), each built
 * from its known minutes (before known_ms): open of the first, close of the
 * last, high and low extremes, volume summed. When more than outputsize
 * bars qualify, the newest outputsize are kept, as Twelve Data does.
 * Returns TF_OK with the count in *n and a new ascending array in *out
 * (free with free(); NULL when *n is 0), or TF_ERR_NOMEM.
 */
enum tf_rc marketsim_td_series(uint64_t seed, const struct marketsim_td_query *q,
                               struct ms_bar **out, size_t *n) TF_MUSTCHECK;

/**
 * Appends the success body, {"meta":{...},"values":[...],"status":"ok"},
 * with bars[0..n) (ascending) printed in q->asc order. Every number is a
 * string; equities carry volume, forex and crypto do not.
 */
enum tf_rc marketsim_td_render(struct tf_buf *buf, const struct marketsim_td_query *q,
                               const struct ms_bar *bars, size_t n) TF_MUSTCHECK;

/** Appends {"code":code,"message":msg,"status":"error"}. */
enum tf_rc marketsim_td_render_error(struct tf_buf *buf, int code, const char *msg) TF_MUSTCHECK;

#endif
