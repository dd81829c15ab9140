/*
 * test_windows.c - the window an extraction covers, without a database:
 * a window the POST names (taken as given, refused when empty, reversed,
 * past the next bar or longer than 31 days) and the window of a run that
 * names none (a first run covers the job's interval, D-1 for a daily job;
 * later runs start at the last good window's end less the overlap; both
 * truncated to the bar on the UTC epoch; a job far behind catches up 31
 * days at a time; a job with no complete bar since its last window is up
 * to date).
 */
#include <stdio.h>
#include <string.h>

#include "extract/extract.h"
#include "check.h"

#define MIN  60LL
#define HOUR 3600LL
#define DAY  86400LL

/* 2024-03-08T21:00:00Z, a Friday. */
#define NOW 1709931600LL

static void test_given(void)
{
    static const struct {
        const char *ws, *we;
        int64_t bar;
        enum tf_rc rc;
        int64_t start, end;
        const char *err;
    } cases[] = {
        {"2024-03-04T14:30:00Z", "2024-03-04T21:00:00Z", MIN, TF_OK, 1709562600, 1709586000, ""},
        /* As given: not moved onto the bar. */
        {"2024-03-04T14:30:17Z", "2024-03-04T14:31:00Z", 5 * MIN, TF_OK, 1709562617, 1709562660,
         ""},
        {"2024-03-04T20:00:00+05:30", "2024-03-04T22:00:00+05:30", MIN, TF_OK, 1709562600,
         1709569800, ""},
        {"2024-03-04", "2024-03-05", DAY, TF_OK, 1709510400, 1709596800, ""},
        /* Empty or reversed. */
        {"2024-03-04T14:30:00Z", "2024-03-04T14:30:00Z", MIN, TF_ERR_INVALID, 0, 0,
         "window_end must be after window_start"},
        {"2024-03-05T00:00:00Z", "2024-03-04T00:00:00Z", MIN, TF_ERR_INVALID, 0, 0,
         "window_end must be after window_start"},
        /* Up to one bar past now (a bar still forming), not further. */
        {"2024-03-08T20:00:00Z", "2024-03-08T21:01:00Z", MIN, TF_OK, 1709928000, NOW + MIN, ""},
        {"2024-03-08T20:00:00Z", "2024-03-08T21:01:01Z", MIN, TF_ERR_INVALID, 0, 0,
         "window_end is in the future"},
        {"2024-03-08T00:00:00Z", "2024-03-09T21:00:00Z", DAY, TF_OK, 1709856000, NOW + DAY, ""},
        {"2024-03-08T00:00:00Z", "2024-03-09T21:00:01Z", DAY, TF_ERR_INVALID, 0, 0,
         "window_end is in the future"},
        /* At most 31 days. */
        {"2024-02-01T00:00:00Z", "2024-03-03T00:00:00Z", MIN, TF_OK, 1706745600, 1709424000, ""},
        {"2024-02-01T00:00:00Z", "2024-03-03T00:00:01Z", MIN, TF_ERR_INVALID, 0, 0,
         "a window may cover at most 31 days; split it into several executions"},
        /* Reversed and too long: the order of the checks shows. */
        {"2024-03-08T00:00:00Z", "2023-01-01T00:00:00Z", MIN, TF_ERR_INVALID, 0, 0,
         "window_end must be after window_start"},
        {"2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z", MIN, TF_ERR_INVALID, 0, 0,
         "window_end is in the future"},
        /* Unreadable (the API's body check refuses these first). */
        {"yesterday", "2024-03-04T00:00:00Z", MIN, TF_ERR_INVALID, 0, 0,
         "window_start and window_end must be ISO-8601 times"},
        {"2024-03-04T00:00:00Z", "2024-13-01T00:00:00Z", MIN, TF_ERR_INVALID, 0, 0,
         "window_start and window_end must be ISO-8601 times"},
    };

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        int64_t start = -1, end = -1;
        char err[256] = "";
        enum tf_rc rc = extract_window_given(cases[i].ws, cases[i].we, cases[i].bar, NOW, &start,
                                             &end, err, sizeof(err));

        CHECK(rc == cases[i].rc, "given %zu (%s .. %s): %s, want %s", i, cases[i].ws, cases[i].we,
              tf_rc_str(rc), tf_rc_str(cases[i].rc));
        CHECK(strcmp(err, cases[i].err) == 0, "given %zu: err \"%s\", want \"%s\"", i, err,
              cases[i].err);
        if (cases[i].rc == TF_OK && rc == TF_OK) {
            CHECK(start == cases[i].start, "given %zu: start %lld, want %lld", i, (long long)start,
                  (long long)cases[i].start);
            CHECK(end == cases[i].end, "given %zu: end %lld, want %lld", i, (long long)end,
                  (long long)cases[i].end);
        }
    }
}

static void test_next(void)
{
    static const struct {
        const char *what;
        int64_t bar;
        long overlap, interval;
        int64_t last, now;
        enum tf_rc rc;
        int64_t start, end;
        const char *err;
    } cases[] = {
        {"first run of an hourly-interval minute job", MIN, 300, 3600, 0, NOW + 30, TF_OK,
         NOW - HOUR, NOW, ""},
        {"first run of a daily job: D-1 in UTC", DAY, 0, 86400, 0, NOW, TF_OK, 1709769600,
         1709856000, ""},
        {"daily job at 00:00:00Z exactly: yesterday", DAY, 0, 86400, 0, 1709856000, TF_OK,
         1709769600, 1709856000, ""},
        {"daily job one second before midnight: the day before yesterday", DAY, 0, 86400, 0,
         1709855999, TF_OK, 1709683200, 1709769600, ""},
        {"the next run: from the last end less the overlap", MIN, 300, 3600, NOW - HOUR, NOW + 59,
         TF_OK, NOW - HOUR - 300, NOW, ""},
        {"the overlap truncated down to the bar", 5 * MIN, 90, 3600, NOW, NOW + 400, TF_OK,
         NOW - 300, NOW + 300, ""},
        {"now truncated to a 7-minute bar on the epoch", 7 * MIN, 0, 3600, 0, NOW, TF_OK,
         1709927520, 1709931300, ""},
        {"a job 40 days behind catches up 31 days", HOUR, 600, 3600, NOW - 40 * DAY, NOW, TF_OK,
         1706472000, 1709150400, ""},
        {"31 days cut on a bar that does not divide it", 7 * HOUR, 0, 3600, NOW - 40 * DAY, NOW,
         TF_OK, 1706468400, 1709139600, ""},
        {"nothing new: no bar has ended since the last window", MIN, 300, 3600, NOW, NOW + 59,
         TF_ERR_CONFLICT, 0, 0, "job j is up to date: no complete bar after 2024-03-08T21:00:00Z"},
        {"a last window past now", MIN, 0, 3600, NOW + HOUR, NOW, TF_ERR_CONFLICT, 0, 0,
         "job j is up to date: no complete bar after 2024-03-08T22:00:00Z"},
        {"a first run with no interval", MIN, 0, 0, 0, NOW, TF_ERR_CONFLICT, 0, 0,
         "job j is up to date: no complete bar after 1970-01-01T00:00:00Z"},
        {"a daily job run again the same day", DAY, 0, 86400, 1709856000, NOW, TF_ERR_CONFLICT, 0,
         0, "job j is up to date: no complete bar after 2024-03-08T00:00:00Z"},
    };

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        int64_t start = -1, end = -1;
        char err[256] = "";
        enum tf_rc rc =
            extract_window_next("j", cases[i].bar, cases[i].overlap, cases[i].interval,
                                cases[i].last, cases[i].now, &start, &end, err, sizeof(err));

        CHECK(rc == cases[i].rc, "%s: %s, want %s (%s)", cases[i].what, tf_rc_str(rc),
              tf_rc_str(cases[i].rc), err);
        CHECK(strcmp(err, cases[i].err) == 0, "%s: err \"%s\", want \"%s\"", cases[i].what, err,
              cases[i].err);
        if (cases[i].rc == TF_OK && rc == TF_OK) {
            CHECK(start == cases[i].start && end == cases[i].end,
                  "%s: [%lld, %lld), want [%lld, %lld)", cases[i].what, (long long)start,
                  (long long)end, (long long)cases[i].start, (long long)cases[i].end);
            CHECK(start % cases[i].bar == 0 && end % cases[i].bar == 0, "%s: on the bar",
                  cases[i].what);
            CHECK(end - start <= EXTRACT_MAX_WINDOW_SECONDS, "%s: at most 31 days", cases[i].what);
        }
    }
}

/* Runs that follow each other tile time: each starts where the last ended, less the overlap. */
static void test_successive_runs(void)
{
    int64_t last = 0, now = NOW;
    int runs = 0, up_to_date = 0;

    for (int step = 0; step < 50; step++, now += 37) {
        int64_t start = 0, end = 0;
        char err[256] = "";
        enum tf_rc rc =
            extract_window_next("j", MIN, 120, 3600, last, now, &start, &end, err, sizeof(err));

        if (rc == TF_ERR_CONFLICT) {
            up_to_date++;
            continue;
        }
        CHECK(rc == TF_OK, "step %d: %s", step, err);
        if (last > 0)
            CHECK(start == last - 120, "step %d: starts %lld, last ended %lld", step,
                  (long long)start, (long long)last);
        CHECK(end == now - now % MIN, "step %d: ends on the last whole minute", step);
        last = end;
        runs++;
    }
    /* 50 steps of 37 s cover 1813 s: minute ends are crossed 31 times, and the first run. */
    CHECK_EQ_INT(runs, 31);
    CHECK_EQ_INT(up_to_date, 19);
}

int main(void)
{
    test_given();
    test_next();
    test_successive_runs();
    return check_summary();
}
