/*
 * tf/tz.h - IANA time zones ("America/New_York") read from the system's
 * TZif files (RFC 8536), to turn exchange-local wall-clock times into UTC.
 *
 * Nothing here touches libc's process-global time-zone state (setenv("TZ"),
 * tzset, mktime, localtime are not thread-safe), so every function may be
 * called from any thread. Instants are int64 seconds since the epoch; a
 * "local" time is the wall-clock reading counted as if it were UTC, i.e.
 * tf_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss, which is
 * what tf_time_parse("2024-03-08 09:30:00") returns.
 */
#ifndef TF_TZ_H
#define TF_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "tf/rc.h"

/** The longest zone name tf_tz_get() accepts. */
#define TF_TZ_NAME_MAX 64

/** A loaded zone: its transition table and its POSIX TZ footer rule. Opaque. */
struct tf_tz;

/**
 * Finds the zone called name, loading "<root>/<name>" on first use, where
 * root is $TZDIR or /usr/share/zoneinfo. TZDIR is read once, at the first
 * call that loads a file (set it before threads start).
 *
 * The name is checked before the file system is touched: 1..TF_TZ_NAME_MAX
 * characters, segments of [A-Za-z0-9_+-] separated by single '/', no
 * leading or trailing '/' (so "." and ".." cannot occur). "UTC" and
 * "Etc/UTC" are built in and need no file.
 *
 * Zones are cached process-wide behind a mutex; *out is borrowed and stays
 * valid until tf_tz_cleanup(). Returns TF_OK; TF_ERR_INVALID for a bad
 * name, a name too long for the root, or a file that is not valid TZif
 * (leap-second "right/" zones included); TF_ERR_NOT_FOUND when no regular
 * file has that name; TF_ERR_IO when it cannot be read; TF_ERR_NOMEM.
 * *out is NULL on every error, and failures are not cached.
 */
enum tf_rc tf_tz_get(const char *name, const struct tf_tz **out) TF_MUSTCHECK;

/**
 * Returns the UTC offset in seconds (east positive: -18000 for EST) in force
 * at the UTC instant utc_sec. Uses the file's 64-bit transitions, type 0
 * before the first one, and the footer's POSIX TZ rule (or the last type
 * when there is none) from the last one on. Defined for every int64 value.
 */
int tf_tz_offset(const struct tf_tz *tz, int64_t utc_sec);

/**
 * Converts the local wall-clock time local_sec (see the top of this file)
 * to the UTC instant *utc_sec.
 *
 * In a DST gap (a local time that never happens, "2024-03-10 02:30" in New
 * York) returns TF_ERR_INVALID and leaves *utc_sec alone. In an overlap (a
 * local time that happens twice, "2024-11-03 01:30" in New York) chooses
 * the EARLIER instant, the first occurrence (05:30Z, still EDT). Returns
 * TF_ERR_INVALID also when local_sec is within a day of the int64 range.
 */
enum tf_rc tf_tz_local_to_utc(const struct tf_tz *tz, int64_t local_sec,
                              int64_t *utc_sec) TF_MUSTCHECK;

/**
 * Frees every zone tf_tz_get() cached and forgets TZDIR; pointers it handed
 * out become invalid. Call once at exit, after the threads that use zones
 * have stopped. Later tf_tz_get() calls start a new cache.
 */
void tf_tz_cleanup(void);

/**
 * Parses a TZif image of len bytes (versions 1 to 4; the footer rule
 * forms are STD offset [DST [offset] [,start[/time],end[/time]]] with
 * Jn, n and Mm.w.d dates). On TF_OK *out is a new zone outside the cache;
 * free it with tf_tz_free(). Returns TF_ERR_INVALID for anything malformed
 * or unsupported (leap-second records), TF_ERR_NOMEM; *out is NULL then.
 * For tests and fuzzing; services use tf_tz_get().
 */
enum tf_rc tf_tz_parse(const void *data, size_t len, struct tf_tz **out) TF_MUSTCHECK;

/**
 * Reads the TZif file at path (at most 256 KiB) and parses it as
 * tf_tz_parse() does; *out is new, free it with tf_tz_free(). Returns
 * TF_ERR_NOT_FOUND when path is missing or not a regular file, TF_ERR_IO
 * when it cannot be read, otherwise as tf_tz_parse().
 */
enum tf_rc tf_tz_load_file(const char *path, struct tf_tz **out) TF_MUSTCHECK;

/** Frees a zone from tf_tz_parse() or tf_tz_load_file(); NULL is fine. Never a cached one. */
void tf_tz_free(struct tf_tz *tz);

#endif
