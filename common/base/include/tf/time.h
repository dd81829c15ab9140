/*
 * tf/time.h - UTC instants as int64 seconds or milliseconds since the epoch,
 * civil dates, ISO-8601 parsing and formatting. No libc time-zone state is
 * touched (setenv("TZ") is not thread-safe); zones are tf/tz.h, and New
 * York's clock tf/eastern.h, which this header brings in for its callers.
 */
#ifndef TF_TIME_H
#define TF_TIME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tf/eastern.h"
#include "tf/rc.h"

/** Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t tf_days_from_civil(int y, int m, int d);

/** The date of a day number. */
void tf_civil_from_days(int64_t days, int *y, int *m, int *d);

/** 0 = Sunday ... 6 = Saturday. */
int tf_weekday(int64_t days);

/** a / b rounded toward minus infinity (b != 0): the day of a negative instant. */
int64_t tf_floor_div(int64_t a, int64_t b);

/**
 * Reads exactly n decimal digits at *p into *out and moves *p past them.
 * Returns 1, or 0 (nothing moved) when one of the n is not a digit.
 */
int tf_time_digits(const char **p, int n, int *out);

/**
 * Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]]" with "Z", "+HH:MM" or
 * no zone (then UTC); a space may stand for the "T". Returns epoch seconds.
 * Every RFC 3339 date-time of the years 1970 to 2200 is read (a "t" and "z"
 * in lower case, offsets to +-23:59); a fraction of a second, of any number
 * of digits, is truncated: the API's times are whole seconds.
 */
enum tf_rc tf_time_parse(const char *s, int64_t *out_sec) TF_MUSTCHECK;

/** Formats epoch seconds as "YYYY-MM-DDTHH:MM:SSZ" (out >= 21 bytes). */
void tf_time_format(int64_t sec, char *out, size_t outlen);

/**
 * Formats a wall-clock reading (epoch seconds plus a zone's offset) as
 * "YYYY-MM-DD HH:MM:SS" (out >= 20).
 */
void tf_time_format_wall(int64_t sec, char *out, size_t outlen);

/** Formats the UTC date of epoch seconds as "YYYY-MM-DD" (out >= 11). */
void tf_time_format_date(int64_t sec, char *out, size_t outlen);

/** Seconds in one bar of multiplier x timespan ("minute", "hour", "day"), 0 if unknown. */
int64_t tf_timespan_seconds(const char *timespan, long multiplier);

/** Current wall-clock time in epoch seconds. */
int64_t tf_time_now(void);

/** An absolute CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
void tf_time_deadline(struct timespec *ts, int ms);

/** Monotonic milliseconds, for timeouts. */
int64_t tf_time_mono_ms(void);

#endif
