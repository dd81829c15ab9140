/*
 * test_console_days.c - the console calendar's verdict on a UTC day
 * (extract_day_state): the minutes each market is open (an equity
 * session, an early close, a holiday, a weekend, crypto's whole day,
 * forex's Sunday evening and Friday close), and which of them the
 * covered ranges hold (windows off the minute, ranges across midnight,
 * many ranges), plus the console's file types.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "extract/console.h"
#include "tf/calendar.h"
#include "tf/time.h"

#define US     EXTRACT_MARKET_BIT(TF_MARKET_US_EQUITY)
#define CRYPTO EXTRACT_MARKET_BIT(TF_MARKET_CRYPTO)
#define FOREX  EXTRACT_MARKET_BIT(TF_MARKET_FOREX)

static int64_t t_of(const char *iso)
{
    int64_t t = 0;

    CHECK(tf_time_parse(iso, &t) == TF_OK, "parse %s", iso);
    return t;
}

static int64_t day_of(const char *date)
{
    return t_of(date) / 86400;
}

/* The state of date for markets, with its minutes, against ranges (pairs of ISO times). */
static enum extract_day_state state(const char *date, unsigned markets, const char *const *ranges,
                                    size_t n, int *open, int *covered)
{
    int64_t cover[16];

    for (size_t i = 0; i < 2 * n; i++)
        cover[i] = t_of(ranges[i]);
    return extract_day_state(day_of(date), markets, cover, n, INT64_MAX, open, covered);
}

/* Today is judged on the minutes that have happened; a day to come is closed. */
static void test_until_now(void)
{
    unsigned us = EXTRACT_MARKET_BIT(TF_MARKET_US_EQUITY);
    int64_t day = day_of("2024-03-04"); /* Monday: 14:30-21:00 UTC */
    int64_t whole[2] = {t_of("2024-03-04T00:00:00Z"), t_of("2024-03-05T00:00:00Z")};
    int64_t first_half_hour[2] = {t_of("2024-03-04T14:30:00Z"), t_of("2024-03-04T15:00:00Z")};
    int open = -1, covered = -1;

    /* An hour into the session: 60 minutes have been open. */
    CHECK_EQ_INT(
        extract_day_state(day, us, whole, 1, t_of("2024-03-04T15:30:00Z"), &open, &covered),
        EXTRACT_DAY_COVERED);
    CHECK_EQ_INT(open, 60);
    CHECK_EQ_INT(covered, 60);
    CHECK_EQ_INT(extract_day_state(day, us, first_half_hour, 1, t_of("2024-03-04T15:30:00Z"), &open,
                                   &covered),
                 EXTRACT_DAY_PARTIAL);
    CHECK_EQ_INT(covered, 30);
    CHECK_EQ_INT(extract_day_state(day, us, NULL, 0, t_of("2024-03-04T15:30:00Z"), &open, &covered),
                 EXTRACT_DAY_GAP);
    /* Before the open, and a day to come: nothing has been open yet. */
    CHECK_EQ_INT(extract_day_state(day, us, NULL, 0, t_of("2024-03-04T14:00:00Z"), &open, &covered),
                 EXTRACT_DAY_CLOSED);
    CHECK_EQ_INT(open, 0);
    CHECK_EQ_INT(extract_day_state(day, us, NULL, 0, t_of("2024-03-01T12:00:00Z"), NULL, NULL),
                 EXTRACT_DAY_CLOSED);
    /* The minute that starts at until has not happened; the one before has. */
    CHECK_EQ_INT(extract_day_state(day, us, NULL, 0, t_of("2024-03-04T14:31:00Z"), &open, NULL),
                 EXTRACT_DAY_GAP);
    CHECK_EQ_INT(open, 1);
}

static void test_open_minutes(void)
{
    int open = -1, covered = -1;

    /* A Tuesday: 09:30-16:00 New York is 14:30-21:00 UTC in winter. */
    CHECK_EQ_INT(state("2024-03-05", US, NULL, 0, &open, &covered), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(open, 390);
    CHECK_EQ_INT(covered, 0);
    /* A Saturday, Independence Day, and the early close the day before. */
    CHECK_EQ_INT(state("2024-03-09", US, NULL, 0, &open, NULL), EXTRACT_DAY_CLOSED);
    CHECK_EQ_INT(open, 0);
    CHECK_EQ_INT(state("2024-07-04", US, NULL, 0, &open, NULL), EXTRACT_DAY_CLOSED);
    CHECK_EQ_INT(state("2024-07-03", US, NULL, 0, &open, NULL), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(open, 210);
    /* Crypto never closes; with equities the union is still the whole day. */
    CHECK_EQ_INT(state("2024-03-09", CRYPTO, NULL, 0, &open, NULL), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(open, 1440);
    CHECK_EQ_INT(state("2024-03-05", CRYPTO | US, NULL, 0, &open, NULL), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(open, 1440);
    /* Forex opens Sunday 17:00 New York (22:00 UTC in winter, 21:00 in summer),
     * closes Friday 17:00, and is shut on Saturday. */
    CHECK_EQ_INT(state("2024-03-03", FOREX, NULL, 0, &open, NULL), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(open, 120);
    CHECK_EQ_INT(state("2024-06-02", FOREX, NULL, 0, &open, NULL), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(open, 180);
    CHECK_EQ_INT(state("2024-03-08", FOREX, NULL, 0, &open, NULL), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(open, 22 * 60);
    CHECK_EQ_INT(state("2024-03-09", FOREX, NULL, 0, &open, NULL), EXTRACT_DAY_CLOSED);
    /* No market at all: closed. */
    CHECK_EQ_INT(state("2024-03-05", 0, NULL, 0, &open, NULL), EXTRACT_DAY_CLOSED);
}

static void test_coverage(void)
{
    static const char *const session[] = {"2024-03-05T14:30:00Z", "2024-03-05T21:00:00Z"};
    static const char *const morning[] = {"2024-03-05T14:30:00Z", "2024-03-05T16:00:00Z"};
    /* Three days in one range, and a window that starts 30 s past a minute. */
    static const char *const across[] = {"2024-03-04T00:00:00Z", "2024-03-07T00:00:00Z"};
    static const char *const off_minute[] = {"2024-03-05T14:30:30Z", "2024-03-05T14:40:00Z"};
    /* Two ranges in the day, a third before it and a fourth after. */
    static const char *const several[] = {"2024-03-04T14:30:00Z", "2024-03-04T21:00:00Z",
                                          "2024-03-05T14:00:00Z", "2024-03-05T15:00:00Z",
                                          "2024-03-05T20:00:00Z", "2024-03-05T20:10:00Z",
                                          "2024-03-06T14:30:00Z", "2024-03-06T21:00:00Z"};
    /* Outside the session: nothing it covers counts. */
    static const char *const night[] = {"2024-03-05T00:00:00Z", "2024-03-05T14:30:00Z"};
    int open = 0, covered = 0;

    CHECK_EQ_INT(state("2024-03-05", US, session, 1, &open, &covered), EXTRACT_DAY_COVERED);
    CHECK_EQ_INT(covered, 390);
    CHECK_EQ_INT(state("2024-03-05", US, morning, 1, &open, &covered), EXTRACT_DAY_PARTIAL);
    CHECK_EQ_INT(covered, 90);
    CHECK_EQ_INT(state("2024-03-05", US, across, 1, &open, &covered), EXTRACT_DAY_COVERED);
    CHECK_EQ_INT(state("2024-03-07", US, across, 1, &open, &covered), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(state("2024-03-05", US, off_minute, 1, &open, &covered), EXTRACT_DAY_PARTIAL);
    CHECK_EQ_INT(covered, 9); /* 14:31 to 14:39 */
    CHECK_EQ_INT(state("2024-03-05", US, several, 4, &open, &covered), EXTRACT_DAY_PARTIAL);
    CHECK_EQ_INT(covered, 30 + 10);
    CHECK_EQ_INT(state("2024-03-04", US, several, 4, &open, &covered), EXTRACT_DAY_COVERED);
    CHECK_EQ_INT(state("2024-03-06", US, several, 4, &open, &covered), EXTRACT_DAY_COVERED);
    CHECK_EQ_INT(state("2024-03-07", US, several, 4, &open, &covered), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(state("2024-03-05", US, night, 1, &open, &covered), EXTRACT_DAY_GAP);
    CHECK_EQ_INT(covered, 0);
    /* A closed day stays closed however much is covered. */
    CHECK_EQ_INT(state("2024-03-09", US, across, 1, &open, &covered), EXTRACT_DAY_CLOSED);
    CHECK_STR(extract_day_state_name(EXTRACT_DAY_PARTIAL), "partial");
    CHECK_STR(extract_day_state_name(EXTRACT_DAY_COVERED), "covered");
}

static void test_content_types(void)
{
    int index = 0, js = 0;

    CHECK_STR(extract_ui_content_type("index.html"), "text/html; charset=utf-8");
    CHECK_STR(extract_ui_content_type("vendor/lightweight-charts.js"),
              "text/javascript; charset=utf-8");
    CHECK_STR(extract_ui_content_type("app.css"), "text/css; charset=utf-8");
    CHECK_STR(extract_ui_content_type("vendor/LICENSE"), "text/plain; charset=utf-8");
    /* The compiled-in files: the page and the library, whole. */
    for (size_t i = 0; i < extract_ui_nassets; i++) {
        const struct extract_asset *a = &extract_ui_assets[i];
        index += strcmp(a->path, "index.html") == 0 && memcmp(a->data, "<!doctype html>", 15) == 0;
        js += strcmp(a->path, "vendor/lightweight-charts.js") == 0 && a->len > 100000 &&
              a->data[a->len] == '\0';
    }
    CHECK_EQ_INT(index, 1);
    CHECK_EQ_INT(js, 1);
}

int main(void)
{
    test_open_minutes();
    test_until_now();
    test_coverage();
    test_content_types();
    return check_summary();
}
