/*
 * test_backfill_days.c - extract's split of a backfill range into one UTC
 * day window per day (extract_backfill_days), which the day records are
 * made from: one day, across months and years, the leap day, the days New
 * York and London change their clocks (still 24 h in UTC), a range given
 * backwards, and the longest range allowed.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "extract/extract.h"
#include "tf/time.h"

/* Days since 1970-01-01 of "YYYY-MM-DD". */
static int64_t day_of(const char *date)
{
    int64_t t = 0;

    CHECK(tf_time_parse(date, &t) == TF_OK, "parse %s", date);
    return t / 86400;
}

/* Checks window i of days: from date's midnight UTC to the next date's. */
static void check_window(const struct tf_exec_window *days, int i, const char *start,
                         const char *end)
{
    char s[32], e[32];

    tf_time_format(days[i].start, s, sizeof(s));
    tf_time_format(days[i].end, e, sizeof(e));
    CHECK(strcmp(s, start) == 0, "day %d starts %s, not %s", i, s, start);
    CHECK(strcmp(e, end) == 0, "day %d ends %s, not %s", i, e, end);
    CHECK_EQ_INT(days[i].end - days[i].start, 86400);
}

/* Every window follows the one before without a gap or an overlap. */
static void check_contiguous(const struct tf_exec_window *days, int n)
{
    int gaps = 0;

    for (int i = 1; i < n; i++)
        gaps += days[i].start != days[i - 1].end;
    CHECK_EQ_INT(gaps, 0);
}

static void test_one_day(void)
{
    struct tf_exec_window days[4];
    int64_t d = day_of("2024-03-04");

    CHECK_EQ_INT(extract_backfill_days(d, d, days, 4), 1);
    check_window(days, 0, "2024-03-04T00:00:00Z", "2024-03-05T00:00:00Z");
}

static void test_across_months_and_years(void)
{
    struct tf_exec_window days[8];
    int n = extract_backfill_days(day_of("2023-12-30"), day_of("2024-01-02"), days, 8);

    CHECK_EQ_INT(n, 4);
    check_window(days, 0, "2023-12-30T00:00:00Z", "2023-12-31T00:00:00Z");
    check_window(days, 1, "2023-12-31T00:00:00Z", "2024-01-01T00:00:00Z");
    check_window(days, 3, "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z");
    check_contiguous(days, n);
    n = extract_backfill_days(day_of("2024-04-29"), day_of("2024-05-02"), days, 8);
    CHECK_EQ_INT(n, 4);
    check_window(days, 1, "2024-04-30T00:00:00Z", "2024-05-01T00:00:00Z");
    check_window(days, 2, "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z");
}

static void test_leap_day(void)
{
    struct tf_exec_window days[8];
    int n = extract_backfill_days(day_of("2024-02-28"), day_of("2024-03-01"), days, 8);

    CHECK_EQ_INT(n, 3);
    check_window(days, 1, "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z");
    check_window(days, 2, "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z");
    /* No 29 February in 2023: two days. */
    n = extract_backfill_days(day_of("2023-02-28"), day_of("2023-03-01"), days, 8);
    CHECK_EQ_INT(n, 2);
    check_window(days, 0, "2023-02-28T00:00:00Z", "2023-03-01T00:00:00Z");
    /* 2000 was a leap year (divisible by 400). */
    n = extract_backfill_days(day_of("2000-02-28"), day_of("2000-03-01"), days, 8);
    CHECK_EQ_INT(n, 3);
    check_window(days, 1, "2000-02-29T00:00:00Z", "2000-03-01T00:00:00Z");
}

/* New York: 2024-03-10 (23 h locally) and 2024-11-03 (25 h); London 2024-03-31. */
static void test_dst_days(void)
{
    static const char *const dates[] = {"2024-03-10", "2024-11-03", "2024-03-31", "2024-10-27"};
    struct tf_exec_window days[4];

    for (size_t i = 0; i < TF_ARRAY_LEN(dates); i++) {
        char start[32], end[32];
        int64_t d = day_of(dates[i]);
        CHECK_EQ_INT(extract_backfill_days(d - 1, d + 1, days, 4), 3);
        snprintf(start, sizeof(start), "%sT00:00:00Z", dates[i]);
        tf_time_format(days[2].start, end, sizeof(end));
        check_window(days, 1, start, end);
        check_contiguous(days, 3);
    }
}

static void test_refused(void)
{
    struct tf_exec_window days[4];
    int64_t d = day_of("2024-03-04");

    CHECK_EQ_INT(extract_backfill_days(d, d - 1, days, 4), -1);
    CHECK_EQ_INT(extract_backfill_days(d + 10, d, days, 4), -1);
    /* More days than the caller has room for. */
    CHECK_EQ_INT(extract_backfill_days(d, d + 4, days, 4), -1);
    CHECK_EQ_INT(extract_backfill_days(d, d + 3, days, 4), 4);
}

static void test_max_range(void)
{
    static struct tf_exec_window days[EXTRACT_BACKFILL_MAX_DAYS + 1];
    int64_t from = day_of("2024-01-01");
    int n = extract_backfill_days(from, from + EXTRACT_BACKFILL_MAX_DAYS - 1, days,
                                  EXTRACT_BACKFILL_MAX_DAYS + 1);

    /* 2024 is a leap year: its 366 days exactly. */
    CHECK_EQ_INT(EXTRACT_BACKFILL_MAX_DAYS, 366);
    CHECK_EQ_INT(n, 366);
    check_window(days, 0, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z");
    check_window(days, 59, "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z");
    check_window(days, 365, "2024-12-31T00:00:00Z", "2025-01-01T00:00:00Z");
    check_contiguous(days, n);
    /* One day more is refused, even with room for it. */
    CHECK_EQ_INT(extract_backfill_days(from, from + EXTRACT_BACKFILL_MAX_DAYS, days,
                                       EXTRACT_BACKFILL_MAX_DAYS + 1),
                 -1);
}

int main(void)
{
    test_one_day();
    test_across_months_and_years();
    test_leap_day();
    test_dst_days();
    test_refused();
    test_max_range();
    return check_summary();
}
