/*
 * tf/eastern.h - the US Eastern market clock (America/New_York), from the
 * zone database's history, so sessions of any year land where they did.
 */
#ifndef TF_EASTERN_H
#define TF_EASTERN_H

#include <stdint.h>

/**
 * Offset of America/New_York from UTC, in seconds, at a UTC instant, from
 * the zone database's history (the rules of 1967, 1974, 1987, 2007, ...).
 * On a machine without a zone database, the rule in force since 2007.
 */
int tf_time_us_eastern_offset(int64_t utc_sec);

/**
 * UTC instant of a New York wall-clock time on a date (the earlier one in
 * the autumn's repeated hour; a time the spring change skips is read as
 * daylight time, the offset in force just after it).
 */
int64_t tf_time_us_eastern_to_utc(int y, int m, int d, int hh, int mm);

/** 1 when New York's clock comes from the zone database, 0 when from the built-in rule. */
int tf_time_us_eastern_from_zoneinfo(void);

#endif
