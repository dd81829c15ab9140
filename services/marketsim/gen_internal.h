/*
 * gen_internal.h - what gen.c shares with the rest of marketsim beyond the
 * fixed gen.h API: the bucket arithmetic that ms_gen_rollup() uses, so that
 * the server pages on exactly the boundaries the rollup builds bars on.
 */
#ifndef MARKETSIM_GEN_INTERNAL_H
#define MARKETSIM_GEN_INTERNAL_H

#include <stdint.h>

#include "gen.h"

/** First and last epoch milliseconds for which the generator makes bars. */
#define MS_GEN_MIN_MS 0LL
#define MS_GEN_MAX_MS 7289567999999LL /* 2200-12-31T23:59:59.999Z */

/** The largest multiplier ms_gen_bucket() and ms_gen_rollup() accept (no overflow below). */
#define MS_GEN_MAX_MULTIPLIER 1000000L

/**
 * The multiplier x timespan bucket holding the instant t_ms, with the same
 * alignment as ms_gen_rollup(): minute and hour buckets on the epoch in
 * UTC, day buckets at midnight America/New_York (multi-day buckets counted
 * from 1970-01-01). Sets [*start, *end) in epoch ms and returns 1, or
 * returns 0 for an unknown timespan or a multiplier outside 1..MS_GEN_MAX_MULTIPLIER.
 */
int ms_gen_bucket(int64_t t_ms, long multiplier, const char *timespan, int64_t *start,
                  int64_t *end);

/**
 * Folds bar b, which comes later, into the bar cur that spans it: the
 * high, the low, the close, the volume and the trades (cur->vw is the
 * caller's to compute).
 */
void ms_gen_merge(struct ms_bar *cur, const struct ms_bar *b);

/** The UTC instant, in epoch ms, of 00:00 America/New_York on day number days. */
int64_t ms_gen_ny_midnight_ms(int64_t days);

/** The New York calendar day number (days since 1970-01-01) of the instant t_ms. */
int64_t ms_gen_ny_day(int64_t t_ms);

/**
 * The start of ticker's last 1-minute bar in [from_ms, to_ms], looking back
 * at most 14 days from to_ms (any session has a bar in that span). Returns
 * 1 with it in *out, 0 when there is none (or out of memory).
 */
int ms_gen_last_minute(uint64_t seed, const char *ticker, int64_t from_ms, int64_t to_ms,
                       int64_t *out);

#endif
