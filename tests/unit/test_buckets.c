/*
 * test_buckets.c - where aggregate's rollups put a bar, without a database:
 * the UTC hour of a bar (edges exactly on the hour, before 1970), the
 * hours a window touches, and the trading days a window touches with
 * their UTC ranges per market: New York dates for US equities (23 and 25
 * hour days at the clock changes, EST in March 2005 as the zone history
 * has it), UTC dates for crypto, the forex day rolling at 17:00 New York;
 * windows that end exactly where a day ends; days tiling the window's
 * hours with no gap and no overlap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate/aggregate.h"
#include "check.h"
#include "tf/time.h"

#define H_US 3600000000LL

static void test_hour_bucket(void)
{
    /* 2024-03-04T14:00:00Z in microseconds. */
    const int64_t h = 1709560800LL * 1000000;

    CHECK_EQ_INT(aggregate_hour_bucket(h), h);
    CHECK_EQ_INT(aggregate_hour_bucket(h + 1), h);
    CHECK_EQ_INT(aggregate_hour_bucket(h + 30 * 60 * 1000000LL), h); /* 14:30 */
    CHECK_EQ_INT(aggregate_hour_bucket(h + H_US - 1), h);
    CHECK_EQ_INT(aggregate_hour_bucket(h + H_US), h + H_US);
    CHECK_EQ_INT(aggregate_hour_bucket(h - 1), h - H_US);
    /* 09:15 in Kolkata is 03:45Z: hourly buckets are UTC hours whatever the exchange. */
    CHECK_EQ_INT(aggregate_hour_bucket(1709869500LL * 1000000), 1709866800LL * 1000000);
    /* Before the epoch, still the hour that contains it. */
    CHECK_EQ_INT(aggregate_hour_bucket(0), 0);
    CHECK_EQ_INT(aggregate_hour_bucket(-1), -H_US);
    CHECK_EQ_INT(aggregate_hour_bucket(-H_US), -H_US);
    CHECK_EQ_INT(aggregate_hour_bucket(-H_US - 1), -2 * H_US);
}

static void test_window_hours(void)
{
    static const struct {
        int64_t ws, we, h0, h1;
    } cases[] = {
        /* 14:30Z .. 21:00Z: 14:00 to 20:00 inclusive. */
        {1709562600, 1709586000, 1709560800, 1709586000},
        /* An end one second past the hour takes that hour too. */
        {1709562600, 1709586001, 1709560800, 1709589600},
        /* Exactly one hour. */
        {1709560800, 1709564400, 1709560800, 1709564400},
        /* One second. */
        {1709564399, 1709564400, 1709560800, 1709564400},
        /* A whole UTC day. */
        {1709510400, 1709596800, 1709510400, 1709596800},
    };

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        int64_t h0 = -1, h1 = -1;

        aggregate_window_hours(cases[i].ws, cases[i].we, &h0, &h1);
        CHECK(h0 == cases[i].h0 && h1 == cases[i].h1,
              "window %zu: hours [%lld, %lld), want [%lld, %lld)", i, (long long)h0, (long long)h1,
              (long long)cases[i].h0, (long long)cases[i].h1);
    }
}

struct want_day {
    const char *day;
    int64_t s, e;
};

static int64_t at(const char *iso)
{
    int64_t t = 0;

    CHECK(tf_time_parse(iso, &t) == TF_OK, "time %s", iso);
    return t;
}

static void check_days(const char *what, enum tf_market m, const char *ws, const char *we,
                       const struct want_day *want, size_t nwant)
{
    struct agg_day_range *days = NULL;
    size_t n = 0;
    enum tf_rc rc = aggregate_day_ranges(m, at(ws), at(we), &days, &n);

    CHECK(rc == TF_OK, "%s: %s", what, tf_rc_str(rc));
    CHECK(n == nwant, "%s: %zu days, want %zu", what, n, nwant);
    for (size_t i = 0; i < n && i < nwant; i++) {
        CHECK(strcmp(days[i].day, want[i].day) == 0 && days[i].s == want[i].s &&
                  days[i].e == want[i].e,
              "%s: day %zu is %s [%lld, %lld), want %s [%lld, %lld)", what, i, days[i].day,
              (long long)days[i].s, (long long)days[i].e, want[i].day, (long long)want[i].s,
              (long long)want[i].e);
    }
    free(days);
}

#define DAYS(...)                                                                                  \
    (const struct want_day[]){__VA_ARGS__},                                                        \
        sizeof((const struct want_day[]){__VA_ARGS__}) / sizeof(struct want_day)

static void test_us_equity_days(void)
{
    CHECK(tf_time_us_eastern_from_zoneinfo(), "New York's clock comes from the zone database");
    check_days("one session", TF_MARKET_US_EQUITY, "2024-03-04T14:30:00Z", "2024-03-04T21:00:00Z",
               DAYS({"2024-03-04", 1709528400, 1709614800}));
    /* Saturday 00:00Z is still Friday in New York; Sunday the 10th has 23 hours. */
    check_days(
        "spring forward", TF_MARKET_US_EQUITY, "2024-03-09T00:00:00Z", "2024-03-12T00:00:00Z",
        DAYS({"2024-03-08", 1709874000, 1709960400}, {"2024-03-09", 1709960400, 1710046800},
             {"2024-03-10", 1710046800, 1710129600}, {"2024-03-11", 1710129600, 1710216000}));
    check_days("fall back: a 25-hour day", TF_MARKET_US_EQUITY, "2024-11-03T00:00:00Z",
               "2024-11-04T12:00:00Z",
               DAYS({"2024-11-02", 1730520000, 1730606400}, {"2024-11-03", 1730606400, 1730696400},
                    {"2024-11-04", 1730696400, 1730782800}));
    /* 2005 kept EST until April 3: Monday the 21st began at 05:00Z, not 04:00Z. */
    check_days(
        "March 2005", TF_MARKET_US_EQUITY, "2005-03-20T12:00:00Z", "2005-03-21T12:00:00Z",
        DAYS({"2005-03-20", 1111294800, 1111381200}, {"2005-03-21", 1111381200, 1111467600}));
    /* A window that is exactly one day touches that day only. */
    check_days("exactly one day", TF_MARKET_US_EQUITY, "2024-03-05T05:00:00Z",
               "2024-03-06T05:00:00Z", DAYS({"2024-03-05", 1709614800, 1709701200}));
    check_days(
        "one second into the next day", TF_MARKET_US_EQUITY, "2024-03-05T05:00:00Z",
        "2024-03-06T05:00:01Z",
        DAYS({"2024-03-05", 1709614800, 1709701200}, {"2024-03-06", 1709701200, 1709787600}));
    check_days("the last second of the day before", TF_MARKET_US_EQUITY, "2024-03-05T04:59:59Z",
               "2024-03-05T05:00:00Z", DAYS({"2024-03-04", 1709528400, 1709614800}));
}

static void test_crypto_and_forex_days(void)
{
    check_days(
        "crypto: UTC dates", TF_MARKET_CRYPTO, "2024-03-04T23:00:00Z", "2024-03-05T01:00:00Z",
        DAYS({"2024-03-04", 1709510400, 1709596800}, {"2024-03-05", 1709596800, 1709683200}));
    check_days("crypto across New York's change: still 24 hours", TF_MARKET_CRYPTO,
               "2024-03-10T00:00:00Z", "2024-03-10T12:00:00Z",
               DAYS({"2024-03-10", 1710028800, 1710115200}));
    /* Forex rolls at 17:00 New York: 22:00Z in winter, 21:00Z in summer. */
    check_days("forex before the roll", TF_MARKET_FOREX, "2024-03-04T21:00:00Z",
               "2024-03-04T22:00:00Z", DAYS({"2024-03-04", 1709503200, 1709589600}));
    check_days(
        "forex one second past the roll", TF_MARKET_FOREX, "2024-03-04T21:00:00Z",
        "2024-03-04T22:00:01Z",
        DAYS({"2024-03-04", 1709503200, 1709589600}, {"2024-03-05", 1709589600, 1709676000}));
    check_days(
        "forex in summer", TF_MARKET_FOREX, "2024-07-01T20:00:00Z", "2024-07-01T22:00:00Z",
        DAYS({"2024-07-01", 1719781200, 1719867600}, {"2024-07-02", 1719867600, 1719954000}));
    check_days("forex across spring forward", TF_MARKET_FOREX, "2024-03-09T00:00:00Z",
               "2024-03-12T00:00:00Z",
               DAYS({"2024-03-09", 1709935200, 1710021600}, {"2024-03-10", 1710021600, 1710104400},
                    {"2024-03-11", 1710104400, 1710190800},
                    {"2024-03-12", 1710190800, 1710277200}));
}

/* Over many windows: the days are consecutive, cover every hour of the window, and name it. */
static void test_days_tile_windows(void)
{
    static const enum tf_market markets[] = {TF_MARKET_US_EQUITY, TF_MARKET_CRYPTO,
                                             TF_MARKET_FOREX};
    const int64_t base = 1104537600; /* 2005-01-01T00:00:00Z */
    long checked = 0, bad = 0;
    size_t longest = 0;

    for (size_t k = 0; k < TF_ARRAY_LEN(markets); k++) {
        for (int64_t ws = base; ws < base + 20LL * 366 * 86400; ws += 86400 * 53 + 3600 * 7 + 61) {
            int64_t we = ws + (ws % 7 + 1) * 3 * 86400 + ws % 3600;
            struct agg_day_range *days = NULL;
            size_t n = 0;

            if (aggregate_day_ranges(markets[k], ws, we, &days, &n) != TF_OK || n == 0) {
                bad++;
                free(days);
                continue;
            }
            longest = n > longest ? n : longest;
            bad +=
                !(days[0].s <= ws && days[0].e > ws && days[n - 1].s < we && days[n - 1].e >= we);
            for (size_t i = 0; i < n; i++) {
                char label[11];

                bad += days[i].s % 3600 != 0 || days[i].e % 3600 != 0;
                bad += days[i].e - days[i].s < 23 * 3600 || days[i].e - days[i].s > 25 * 3600;
                bad += i > 0 && days[i].s != days[i - 1].e;
                tf_cal_trading_day(markets[k], days[i].s, label);
                bad += strcmp(label, days[i].day) != 0;
                tf_cal_trading_day(markets[k], days[i].e - 1, label);
                bad += strcmp(label, days[i].day) != 0;
                checked++;
            }
            free(days);
        }
    }
    CHECK(checked > 5000, "%ld days checked", checked);
    CHECK(longest == 23, "the longest window touched %zu days", longest);
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    test_hour_bucket();
    test_window_hours();
    test_us_equity_days();
    test_crypto_and_forex_days();
    test_days_tile_windows();
    return check_summary();
}
