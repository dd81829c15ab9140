/*
 * eastern.c - New York's clock (tf/eastern.h): its history read from the
 * zone database through tz.c; the rule of 2007 only on a machine without
 * one.
 */
#include "tf/eastern.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "tf/time.h"
#include "tf/tz.h"

/* Day number of the n-th (1-based) Sunday of a month. */
static int64_t nth_sunday(int y, int m, int n)
{
    int64_t first = tf_days_from_civil(y, m, 1);
    int w = tf_weekday(first);

    return first + (7 - w) % 7 + 7 * (n - 1);
}

/* The rule in force since 2007, for a machine without a zone database only. */
static int rule_2007_offset(int64_t utc_sec)
{
    int64_t days = tf_floor_div(utc_sec, 86400);
    int y, m, d;

    tf_civil_from_days(days, &y, &m, &d);
    /* DST: second Sunday of March 02:00 EST (07:00Z) to first Sunday of
     * November 02:00 EDT (06:00Z). */
    int64_t start = nth_sunday(y, 3, 2) * 86400 + 7 * 3600;
    int64_t end = nth_sunday(y, 11, 1) * 86400 + 6 * 3600;

    return (utc_sec >= start && utc_sec < end) ? -4 * 3600 : -5 * 3600;
}

/*
 * New York from the zone database ($TZDIR or /usr/share/zoneinfo), loaded
 * once and kept for the life of the process, outside tf_tz_get()'s cache so
 * that tf_tz_cleanup() cannot take it away. NULL without a zone database.
 */
static struct tf_tz *ny_zone;
static pthread_once_t ny_once = PTHREAD_ONCE_INIT;

static void ny_load(void)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/America/New_York",
                     dir && *dir ? dir : "/usr/share/zoneinfo");

    if (n <= 0 || (size_t)n >= sizeof(path) || tf_tz_load_file(path, &ny_zone) != TF_OK)
        ny_zone = NULL;
}

static const struct tf_tz *ny(void)
{
    pthread_once(&ny_once, ny_load);
    return ny_zone;
}

int tf_time_us_eastern_from_zoneinfo(void)
{
    return ny() != NULL;
}

int tf_time_us_eastern_offset(int64_t utc_sec)
{
    const struct tf_tz *z = ny();

    return z ? tf_tz_offset(z, utc_sec) : rule_2007_offset(utc_sec);
}

int64_t tf_time_us_eastern_to_utc(int y, int m, int d, int hh, int mm)
{
    int64_t local = tf_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60;
    const struct tf_tz *z = ny();
    int64_t utc = 0;

    if (z && tf_tz_local_to_utc(z, local, &utc) == TF_OK)
        return utc;
    /* A time the spring change skips (or no zone database): guess with
     * standard time, then take the offset in force at that instant (in the
     * gap, daylight time). */
    return local - tf_time_us_eastern_offset(local + 5 * 3600);
}
