/*
 * test_calendar.c - the trading calendar without any I/O: every NYSE
 * holiday and early close of 2022-2027 against hand-written lists of the
 * published calendars, the observed-date edge cases, session times on both
 * sides of the DST switches, minutes in session for each market, expected
 * bar counts (exact window edges, a brute-force cross-check over many
 * windows), trading days, and tickers to markets (the same answer as
 * marketsim's generator).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "marketsim/gen.h"
#include "../harness/check.h"
#include "tf/calendar.h"
#include "tf/time.h"

#define MIN  60LL
#define HOUR 3600LL
#define DAY  86400LL

static int64_t utc(int y, int m, int d, int hh, int mm)
{
    return tf_days_from_civil(y, m, d) * DAY + hh * HOUR + mm * MIN;
}

static int64_t ny(int y, int m, int d, int hh, int mm)
{
    return tf_time_us_eastern_to_utc(y, m, d, hh, mm);
}

/* A date as m * 100 + d. */
struct year_list {
    int year;
    int holidays[12];    /* weekdays closed, ascending, 0-terminated */
    int early_closes[4]; /* 13:00 closes, ascending, 0-terminated */
};

/*
 * The NYSE's published holiday and early-close calendars. One-off closures
 * (2025-01-09, the national day of mourning for President Carter) are not
 * listed: the calendar does not know them (tf/calendar.h).
 */
static const struct year_list nyse[] = {
    {2022,
     {117, 221, 415, 530, 620, 704, 905, 1124, 1226, 0}, /* no Dec 31, 2021 for New Year 2022 */
     {1125, 0}},
    {2023, {102, 116, 220, 407, 529, 619, 704, 904, 1123, 1225, 0}, {703, 1124, 0}},
    {2024, {101, 115, 219, 329, 527, 619, 704, 902, 1128, 1225, 0}, {703, 1129, 1224, 0}},
    {2025, {101, 120, 217, 418, 526, 619, 704, 901, 1127, 1225, 0}, {703, 1128, 1224, 0}},
    {2026, {101, 119, 216, 403, 525, 619, 703, 907, 1126, 1225, 0}, {1127, 1224, 0}},
    {2027, {101, 118, 215, 326, 531, 618, 705, 906, 1125, 1224, 0}, {1126, 0}},
};

static size_t list_len(const int *l)
{
    size_t n = 0;

    while (l[n])
        n++;
    return n;
}

/* Every weekday of each year: closed exactly on the listed days, 13:00 exactly on the others. */
static void test_nyse_years(void)
{
    for (size_t k = 0; k < sizeof(nyse) / sizeof(nyse[0]); k++) {
        const struct year_list *yl = &nyse[k];
        int closed[16], early[8];
        size_t nc = 0, ne = 0, open_days = 0;
        int y = yl->year;

        for (int64_t days = tf_days_from_civil(y, 1, 1); days < tf_days_from_civil(y + 1, 1, 1);
             days++) {
            int64_t o = 0, c = 0;
            int yy, m, d, wd = tf_weekday(days);
            int is_open;

            tf_civil_from_days(days, &yy, &m, &d);
            is_open = tf_cal_us_session(yy, m, d, &o, &c);
            if (wd == 0 || wd == 6) {
                CHECK(!is_open, "%d-%02d-%02d is a weekend day but open", yy, m, d);
                continue;
            }
            if (!is_open) {
                if (nc < 16)
                    closed[nc] = m * 100 + d;
                nc++;
                continue;
            }
            open_days++;
            CHECK_EQ_INT(o, ny(yy, m, d, 9, 30));
            if (c == ny(yy, m, d, 13, 0)) {
                if (ne < 8)
                    early[ne] = m * 100 + d;
                ne++;
            } else {
                CHECK_EQ_INT(c, ny(yy, m, d, 16, 0));
            }
        }
        CHECK(nc == list_len(yl->holidays), "%d: %zu weekday closures, want %zu", y, nc,
              list_len(yl->holidays));
        for (size_t i = 0; i < nc && i < list_len(yl->holidays); i++)
            CHECK(closed[i] == yl->holidays[i], "%d: closure %zu is %04d, want %04d", y, i,
                  closed[i], yl->holidays[i]);
        CHECK(ne == list_len(yl->early_closes), "%d: %zu early closes, want %zu", y, ne,
              list_len(yl->early_closes));
        for (size_t i = 0; i < ne && i < list_len(yl->early_closes); i++)
            CHECK(early[i] == yl->early_closes[i], "%d: early close %zu is %04d, want %04d", y, i,
                  early[i], yl->early_closes[i]);
        /* And the year's bar count follows: 390 a day, 210 on early closes. */
        CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "minute", utc(y, 1, 1, 0, 0),
                                          utc(y + 1, 1, 1, 0, 0)),
                     (long long)(open_days - ne) * 390 + (long long)ne * 210);
        CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "day", ny(y, 1, 1, 0, 0),
                                          ny(y + 1, 1, 1, 0, 0)),
                     open_days);
    }
    /* Trading days a year, as published: 251 (2022), 250 (2023), 252 (2024), 250 (2025, with
     * the mourning day; 251 here), 251 (2026). */
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "day", ny(2022, 1, 1, 0, 0),
                                      ny(2023, 1, 1, 0, 0)),
                 251);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "day", ny(2023, 1, 1, 0, 0),
                                      ny(2024, 1, 1, 0, 0)),
                 250);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "day", ny(2024, 1, 1, 0, 0),
                                      ny(2025, 1, 1, 0, 0)),
                 252);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "day", ny(2025, 1, 1, 0, 0),
                                      ny(2026, 1, 1, 0, 0)),
                 251);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "day", ny(2026, 1, 1, 0, 0),
                                      ny(2027, 1, 1, 0, 0)),
                 251);
}

static void expect_session(int y, int m, int d, int open_h, int open_m, int close_h)
{
    int64_t o = -1, c = -1;

    CHECK(tf_cal_us_session(y, m, d, &o, &c) == 1, "%d-%02d-%02d should be open", y, m, d);
    CHECK(o == utc(y, m, d, open_h, open_m) && c == utc(y, m, d, close_h, 0),
          "%d-%02d-%02d session %lld..%lld, want %02d:%02dZ..%02d:00Z", y, m, d, (long long)o,
          (long long)c, open_h, open_m, close_h);
}

static void expect_closed(int y, int m, int d)
{
    int64_t o = 7, c = 7;

    CHECK(tf_cal_us_session(y, m, d, &o, &c) == 0, "%d-%02d-%02d should be closed", y, m, d);
    CHECK(o == 7 && c == 7, "%d-%02d-%02d: a closed day must leave the outputs alone", y, m, d);
}

static void test_edges(void)
{
    /* Observed dates. */
    expect_session(2021, 12, 31, 14, 30, 21); /* New Year 2022 on a Saturday: open */
    expect_closed(2021, 12, 24);              /* Christmas 2021 on a Saturday */
    expect_session(2021, 6, 18, 13, 30, 20);  /* before Juneteenth was an NYSE holiday */
    expect_closed(2022, 6, 20);               /* Juneteenth on a Sunday */
    expect_closed(2022, 12, 26);              /* Christmas on a Sunday */
    expect_session(2022, 12, 23, 14, 30, 21); /* ... and no early close the Friday before */
    expect_closed(2023, 1, 2);                /* New Year on a Sunday */
    expect_closed(2026, 7, 3);                /* Independence Day on a Saturday */
    expect_session(2026, 7, 2, 13, 30, 20);   /* ... the Thursday before is a full day */
    expect_closed(2027, 6, 18);               /* Juneteenth on a Saturday */
    expect_closed(2027, 12, 24);              /* Christmas on a Saturday */
    expect_session(2027, 12, 31, 14, 30, 21); /* New Year 2028 on a Saturday: not observed */
    expect_closed(2028, 1, 1);                /* ... and the Saturday itself is closed */
    expect_session(2028, 1, 3, 14, 30, 21);
    /* The demo's default day (tools/demo.sh) is a full winter session: 14:30Z-21:00Z. */
    expect_session(2024, 3, 4, 14, 30, 21);
    /* One-off closures are out of scope: 2025-01-09 reads as an ordinary day. */
    expect_session(2025, 1, 9, 14, 30, 21);

    /* Early closes at 13:00 New York, in summer (17:00Z) and winter (18:00Z). */
    expect_session(2024, 7, 3, 13, 30, 17);
    expect_session(2024, 11, 29, 14, 30, 18);
    expect_session(2024, 12, 24, 14, 30, 18);

    /* DST: 14:30-21:00Z in winter, 13:30-20:00Z in summer, on both sides of each switch
     * (2024-03-10 and 2024-11-03, 2025-03-09 and 2025-11-02). */
    expect_session(2024, 3, 8, 14, 30, 21);
    expect_session(2024, 3, 11, 13, 30, 20);
    expect_session(2024, 11, 1, 13, 30, 20);
    expect_session(2024, 11, 4, 14, 30, 21);
    expect_session(2025, 3, 7, 14, 30, 21);
    expect_session(2025, 3, 10, 13, 30, 20);
    expect_session(2025, 10, 31, 13, 30, 20);
    expect_session(2025, 11, 3, 14, 30, 21);
    expect_closed(2024, 3, 10); /* the Sundays themselves */
    expect_closed(2024, 11, 3);

    /* Dates that do not exist, and NULL outputs. */
    expect_closed(2024, 2, 30);
    expect_closed(2023, 2, 29);
    expect_closed(2024, 13, 1);
    expect_closed(2024, 0, 10);
    expect_closed(10000, 1, 3);
    expect_session(2024, 2, 29, 14, 30, 21);
    CHECK_EQ_INT(tf_cal_us_session(2024, 3, 4, NULL, NULL), 1);
    CHECK_EQ_INT(tf_cal_us_session(2024, 3, 29, NULL, NULL), 0);
}

static void test_minute_open(void)
{
    /* Equity: [open, close) only. */
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 3, 4, 14, 29)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 3, 4, 14, 30)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 3, 4, 20, 59)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 3, 4, 21, 0)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 3, 11, 13, 30)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 3, 11, 20, 0)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 7, 4, 15, 0)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 7, 3, 16, 59)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 7, 3, 17, 0)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2024, 3, 9, 15, 0)), 0);
    /* Crypto: always, weekends and holidays too. */
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_CRYPTO, utc(2024, 3, 9, 3, 17)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_CRYPTO, utc(2024, 12, 25, 0, 0)), 1);
    /* Forex: Sunday 17:00 to Friday 17:00 New York, EST then EDT. */
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 3, 21, 59)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 3, 22, 0)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 6, 4, 0)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 8, 21, 59)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 8, 22, 0)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 9, 12, 0)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 10, 20, 59)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 10, 21, 0)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 15, 20, 59)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 3, 15, 21, 0)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_FOREX, utc(2024, 12, 25, 12, 0)), 1);
    /* Not a market. */
    CHECK_EQ_INT(tf_cal_minute_open((enum tf_market)7, utc(2024, 3, 4, 15, 0)), 0);
}

static long long eq(long mult, const char *span, int64_t from, int64_t to)
{
    return tf_cal_expected_bars(TF_MARKET_US_EQUITY, mult, span, from, to);
}

static void test_expected_bars(void)
{
    int64_t d0 = ny(2024, 3, 4, 0, 0), d1 = ny(2024, 3, 5, 0, 0);

    /* A full equity day. */
    CHECK_EQ_INT(eq(1, "minute", d0, d1), 390);
    CHECK_EQ_INT(eq(5, "minute", d0, d1), 78);
    CHECK_EQ_INT(eq(1, "hour", d0, d1), 7); /* 14:00Z..20:00Z */
    CHECK_EQ_INT(eq(1, "day", d0, d1), 1);
    CHECK_EQ_INT(eq(30, "minute", d0, d1), 13);
    CHECK_EQ_INT(eq(1, "hour", ny(2024, 3, 11, 0, 0), ny(2024, 3, 12, 0, 0)), 7); /* summer */
    /* An early close, and a holiday. */
    CHECK_EQ_INT(eq(1, "minute", ny(2024, 7, 3, 0, 0), ny(2024, 7, 4, 0, 0)), 210);
    CHECK_EQ_INT(eq(5, "minute", ny(2024, 7, 3, 0, 0), ny(2024, 7, 4, 0, 0)), 42);
    CHECK_EQ_INT(eq(1, "hour", ny(2024, 11, 29, 0, 0), ny(2024, 11, 30, 0, 0)), 4);
    CHECK_EQ_INT(eq(1, "day", ny(2024, 7, 3, 0, 0), ny(2024, 7, 4, 0, 0)), 1);
    CHECK_EQ_INT(eq(1, "minute", ny(2024, 7, 4, 0, 0), ny(2024, 7, 5, 0, 0)), 0);
    CHECK_EQ_INT(eq(1, "hour", ny(2024, 7, 4, 0, 0), ny(2024, 7, 5, 0, 0)), 0);
    CHECK_EQ_INT(eq(1, "day", ny(2024, 7, 4, 0, 0), ny(2024, 7, 5, 0, 0)), 0);
    /* Weeks: five full days; Independence Day week (two full, one half, a holiday, one full). */
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 3, 3, 0, 0), utc(2024, 3, 10, 0, 0)), 1950);
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 6, 30, 0, 0), utc(2024, 7, 7, 0, 0)), 3 * 390 + 210);
    CHECK_EQ_INT(eq(1, "day", utc(2024, 6, 30, 0, 0), utc(2024, 7, 7, 0, 0)), 4);

    /* Window edges: [from, to) exactly, by bar start. */
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 3, 4, 14, 30), utc(2024, 3, 4, 21, 0)), 390);
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 3, 4, 14, 30), utc(2024, 3, 4, 20, 59)), 389);
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 3, 4, 14, 31), utc(2024, 3, 4, 21, 0)), 389);
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 3, 4, 14, 30), utc(2024, 3, 4, 14, 31)), 1);
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 3, 4, 14, 30) + 1, utc(2024, 3, 4, 14, 32)), 1);
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 3, 4, 14, 30), utc(2024, 3, 4, 14, 30)), 0);
    CHECK_EQ_INT(eq(1, "minute", utc(2024, 3, 4, 15, 0), utc(2024, 3, 4, 14, 0)), 0);
    CHECK_EQ_INT(eq(5, "minute", utc(2024, 3, 4, 14, 32), utc(2024, 3, 4, 21, 0)), 77);
    /* A bucket counts by its start even when its session minutes lie past the window. */
    CHECK_EQ_INT(eq(1, "hour", utc(2024, 3, 4, 14, 0), utc(2024, 3, 4, 14, 1)), 1);
    CHECK_EQ_INT(eq(1, "hour", utc(2024, 3, 4, 14, 30), utc(2024, 3, 4, 21, 0)), 6);
    CHECK_EQ_INT(eq(1, "hour", utc(2024, 3, 4, 21, 0), utc(2024, 3, 4, 22, 0)), 0);
    CHECK_EQ_INT(eq(1, "day", utc(2024, 3, 4, 14, 30), utc(2024, 3, 4, 21, 0)), 0);
    CHECK_EQ_INT(eq(1, "day", d0, d0 + 1), 1);
    /* Two-day buckets, counted in New York days from 1970-01-01 (2024-03-04 is day 19786):
     * Mar 4-5, 6-7, 8-9 and 10-11 each meet a session; the last starts on a Sunday. */
    CHECK_EQ_INT(eq(2, "day", ny(2024, 3, 4, 0, 0), ny(2024, 3, 11, 0, 0)), 4);
    CHECK_EQ_INT(eq(2, "day", ny(2024, 3, 4, 0, 0), ny(2024, 3, 10, 0, 0)), 3);
    CHECK_EQ_INT(eq(2, "day", ny(2024, 3, 4, 0, 0) + 1, ny(2024, 3, 11, 0, 0)), 3);

    /* Crypto and forex weeks. */
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_CRYPTO, 1, "minute", utc(2024, 3, 4, 0, 0),
                                      utc(2024, 3, 11, 0, 0)),
                 10080);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_CRYPTO, 1, "hour", utc(2024, 3, 4, 0, 0),
                                      utc(2024, 3, 11, 0, 0)),
                 168);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_CRYPTO, 1, "day", ny(2024, 3, 4, 0, 0),
                                      ny(2024, 3, 11, 0, 0)),
                 7);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_CRYPTO, 15, "minute", utc(2024, 3, 4, 0, 7),
                                      utc(2024, 3, 4, 1, 0)),
                 3);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_FOREX, 1, "minute", ny(2024, 3, 3, 17, 0),
                                      ny(2024, 3, 8, 17, 0)),
                 7200);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_FOREX, 1, "minute", utc(2024, 3, 2, 0, 0),
                                      utc(2024, 3, 9, 0, 0)),
                 7200);
    /* Weeks across both DST switches are still 7200 minutes (the clocks change on Sunday 02:00,
     * before the 17:00 open). */
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_FOREX, 1, "minute", ny(2024, 3, 10, 17, 0),
                                      ny(2024, 3, 15, 17, 0)),
                 7200);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_FOREX, 1, "minute", utc(2024, 10, 26, 0, 0),
                                      utc(2024, 11, 9, 0, 0)),
                 14400);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_FOREX, 1, "minute", ny(2024, 3, 3, 17, 0) + 60,
                                      ny(2024, 3, 8, 17, 0) - 60),
                 7198);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_FOREX, 1, "hour", utc(2024, 3, 2, 0, 0),
                                      utc(2024, 3, 9, 0, 0)),
                 120);
    /* Day buckets at New York midnight: Sunday evening makes a Sunday bar, so six a week. */
    CHECK_EQ_INT(
        tf_cal_expected_bars(TF_MARKET_FOREX, 1, "day", ny(2024, 3, 2, 0, 0), ny(2024, 3, 9, 0, 0)),
        6);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_FOREX, 1, "minute", utc(2024, 3, 9, 0, 0),
                                      utc(2024, 3, 10, 0, 0)),
                 0);
    /* Forex knows no holidays. */
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_FOREX, 1, "minute", utc(2024, 12, 25, 0, 0),
                                      utc(2024, 12, 26, 0, 0)),
                 1440);

    /* Refused input. */
    CHECK_EQ_INT(eq(1, "week", d0, d1), -1);
    CHECK_EQ_INT(eq(1, NULL, d0, d1), -1);
    CHECK_EQ_INT(eq(0, "minute", d0, d1), -1);
    CHECK_EQ_INT(eq(1000001, "minute", d0, d1), -1);
    CHECK_EQ_INT(tf_cal_expected_bars((enum tf_market)9, 1, "minute", d0, d1), -1);
    /* Extreme windows are clamped to years 1..9999, not overflowed: 1000000-day buckets start
     * on New York days 0, 1000000 and 2000000; 1000000-hour buckets on multiples of 3.6e9 s
     * from -17 to 70, each with sessions. */
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_CRYPTO, 1000000, "day", INT64_MIN, INT64_MAX), 3);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1000000, "hour", INT64_MIN, INT64_MAX),
                 88);
}

/* The bucket start holding t, written independently of the calendar. */
static int64_t naive_bucket(int64_t t, long mult, const char *span)
{
    int64_t size = strcmp(span, "minute") == 0 ? MIN * mult : HOUR * mult;

    if (strcmp(span, "day") == 0) {
        int64_t days = (t + tf_time_us_eastern_offset(t)) / DAY; /* t > 0 here */
        int y, m, d;

        days -= days % mult;
        tf_civil_from_days(days, &y, &m, &d);
        return ny(y, m, d, 0, 0);
    }
    return t - t % size;
}

/* Counts by brute force: every minute from the first bucket on, asked one by one. */
static long long naive_expected(enum tf_market mk, long mult, const char *span, int64_t from,
                                int64_t to)
{
    long long count = 0;
    int64_t last = -1;
    int64_t start = naive_bucket(from, mult, span);
    int64_t stop = to + (strcmp(span, "day") == 0    ? mult * (DAY + HOUR)
                         : strcmp(span, "hour") == 0 ? mult * HOUR
                                                     : mult * MIN);

    for (int64_t t = start - start % MIN; t < stop; t += MIN) {
        int64_t b;

        if (!tf_cal_minute_open(mk, t))
            continue;
        b = naive_bucket(t, mult, span);
        if (b >= from && b < to && b != last) {
            count++;
            last = b;
        }
    }
    return count;
}

/* Many windows across holidays, early closes, weekends and DST switches, odd edges and sizes. */
static void test_cross_check(void)
{
    static const struct {
        long mult;
        const char *span;
    } sizes[] = {{1, "minute"}, {5, "minute"}, {7, "minute"}, {90, "minute"},
                 {1, "hour"},   {4, "hour"},   {1, "day"},    {3, "day"}};
    static const enum tf_market markets[] = {TF_MARKET_US_EQUITY, TF_MARKET_FOREX,
                                             TF_MARKET_CRYPTO};
    uint64_t st = 12345;
    int windows = 0, mismatches = 0;

    for (int i = 0; i < 150; i++) {
        int64_t base = utc(2024, 1, 1, 0, 0);
        int64_t from, to;
        long long want, got;

        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        from = base + (int64_t)((st >> 20) % (366 * DAY));
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        to = from + (int64_t)((st >> 20) % (6 * DAY));
        if (i % 3 == 0) { /* whole minutes half of the time */
            from -= from % MIN;
            to -= to % MIN;
        }
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            enum tf_market mk = markets[(size_t)i % 3];

            got = tf_cal_expected_bars(mk, sizes[k].mult, sizes[k].span, from, to);
            want = naive_expected(mk, sizes[k].mult, sizes[k].span, from, to);
            windows++;
            if (got != want) {
                mismatches++;
                if (mismatches <= 5)
                    CHECK(0, "%s %ld %s [%lld, %lld): %lld, brute force %lld", tf_market_name(mk),
                          sizes[k].mult, sizes[k].span, (long long)from, (long long)to, got, want);
            }
        }
    }
    CHECK(mismatches == 0, "%d of %d windows differ from the brute-force count", mismatches,
          windows);
}

static void expect_day(enum tf_market m, int64_t ts, const char *want)
{
    char out[11];

    memset(out, 'x', sizeof(out));
    tf_cal_trading_day(m, ts, out);
    CHECK(strcmp(out, want) == 0, "%s day of %lld: \"%.11s\", want \"%s\"", tf_market_name(m),
          (long long)ts, out, want);
}

static void test_trading_day(void)
{
    /* Equity: the New York date, in winter (UTC-5) and summer (UTC-4). */
    expect_day(TF_MARKET_US_EQUITY, utc(2024, 3, 4, 23, 59), "2024-03-04");
    expect_day(TF_MARKET_US_EQUITY, utc(2024, 3, 5, 0, 0), "2024-03-04");
    expect_day(TF_MARKET_US_EQUITY, utc(2024, 3, 5, 4, 59), "2024-03-04");
    expect_day(TF_MARKET_US_EQUITY, utc(2024, 3, 5, 5, 0), "2024-03-05");
    expect_day(TF_MARKET_US_EQUITY, utc(2024, 7, 9, 3, 59), "2024-07-08");
    expect_day(TF_MARKET_US_EQUITY, utc(2024, 7, 9, 4, 0), "2024-07-09");
    /* Crypto: the UTC date. */
    expect_day(TF_MARKET_CRYPTO, utc(2024, 3, 4, 23, 59), "2024-03-04");
    expect_day(TF_MARKET_CRYPTO, utc(2024, 3, 5, 0, 0), "2024-03-05");
    expect_day(TF_MARKET_CRYPTO, utc(2024, 12, 31, 23, 59), "2024-12-31");
    expect_day(TF_MARKET_CRYPTO, utc(2025, 1, 1, 0, 0), "2025-01-01");
    /* Forex: rolls at 17:00 New York. */
    expect_day(TF_MARKET_FOREX, ny(2024, 3, 3, 16, 59), "2024-03-03");
    expect_day(TF_MARKET_FOREX, ny(2024, 3, 3, 17, 0), "2024-03-04"); /* Sunday opens Monday */
    expect_day(TF_MARKET_FOREX, utc(2024, 3, 4, 23, 59), "2024-03-05");
    expect_day(TF_MARKET_FOREX, utc(2024, 3, 5, 0, 0), "2024-03-05");
    expect_day(TF_MARKET_FOREX, ny(2024, 3, 8, 16, 59), "2024-03-08");
    expect_day(TF_MARKET_FOREX, utc(2024, 7, 8, 20, 59), "2024-07-08"); /* 16:59 EDT */
    expect_day(TF_MARKET_FOREX, utc(2024, 7, 8, 21, 0), "2024-07-09");  /* 17:00 EDT */
    expect_day(TF_MARKET_FOREX, utc(2024, 12, 31, 22, 0), "2025-01-01");
}

static void test_markets(void)
{
    static const struct {
        const char *ticker;
        enum tf_market want;
    } cases[] = {
        {"AAPL", TF_MARKET_US_EQUITY},     {"BRK.B", TF_MARKET_US_EQUITY},
        {"SBIN:NSE", TF_MARKET_US_EQUITY}, {"", TF_MARKET_US_EQUITY},
        {"X:BTCUSD", TF_MARKET_CRYPTO},    {"X:ANYTHING", TF_MARKET_CRYPTO},
        {"BTC/USD", TF_MARKET_CRYPTO},     {"eth/eur", TF_MARKET_CRYPTO},
        {"Doge/USD", TF_MARKET_CRYPTO},    {"SOL/BTC", TF_MARKET_CRYPTO},
        {"XRP/USD", TF_MARKET_CRYPTO},     {"LTC/USD", TF_MARKET_CRYPTO},
        {"C:EURUSD", TF_MARKET_FOREX},     {"EUR/USD", TF_MARKET_FOREX},
        {"USD/BTC", TF_MARKET_FOREX},      {"BTCX/USD", TF_MARKET_FOREX},
        {"ADA/USD", TF_MARKET_FOREX},      {"/USD", TF_MARKET_FOREX},
        {"x:BTCUSD", TF_MARKET_US_EQUITY}, {"C:", TF_MARKET_FOREX},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum tf_market got = tf_market_of(cases[i].ticker);

        CHECK(got == cases[i].want, "tf_market_of(\"%s\") = %s, want %s", cases[i].ticker,
              tf_market_name(got), tf_market_name(cases[i].want));
        /* marketsim's generator classes tickers the same way. */
        CHECK((int)ms_gen_asset(cases[i].ticker) == (int)got, "ms_gen_asset(\"%s\") differs",
              cases[i].ticker);
    }
    CHECK_EQ_INT(tf_market_of(NULL), TF_MARKET_US_EQUITY);
    CHECK_STR(tf_market_name(TF_MARKET_US_EQUITY), "us_equity");
    CHECK_STR(tf_market_name(TF_MARKET_CRYPTO), "crypto");
    CHECK_STR(tf_market_name(TF_MARKET_FOREX), "forex");
    CHECK_STR(tf_market_name((enum tf_market)3), "unknown");
}

/*
 * Sessions before the 2007 DST rule, in UTC known independently of it: on
 * 2005-03-15 (EST until April 3) the NYSE opened at 14:30Z and closed at
 * 21:00Z, so 390 minutes from 14:30Z are expected and 13:30Z is closed;
 * on 2006-10-30 (EST since October 29) the same.
 */
static void test_before_2007(void)
{
    int64_t open = 0, close = 0;

    CHECK(tf_cal_us_session(2005, 3, 15, &open, &close) == 1, "2005-03-15 is a session");
    CHECK_EQ_INT(open, utc(2005, 3, 15, 14, 30));
    CHECK_EQ_INT(close, utc(2005, 3, 15, 21, 0));
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2005, 3, 15, 13, 30)), 0);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2005, 3, 15, 14, 30)), 1);
    CHECK_EQ_INT(tf_cal_minute_open(TF_MARKET_US_EQUITY, utc(2005, 3, 15, 20, 59)), 1);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "minute", utc(2005, 3, 15, 0, 0),
                                      utc(2005, 3, 16, 0, 0)),
                 390);
    CHECK_EQ_INT(tf_cal_expected_bars(TF_MARKET_US_EQUITY, 1, "minute", utc(2005, 3, 15, 13, 30),
                                      utc(2005, 3, 15, 14, 30)),
                 0);
    CHECK(tf_cal_us_session(2006, 10, 30, &open, &close) == 1, "2006-10-30 is a session");
    CHECK_EQ_INT(open, utc(2006, 10, 30, 14, 30));
    CHECK_EQ_INT(close, utc(2006, 10, 30, 21, 0));
}

int main(void)
{
    test_nyse_years();
    test_edges();
    test_minute_open();
    test_expected_bars();
    test_cross_check();
    test_trading_day();
    test_markets();
    test_before_2007();
    return check_summary();
}
