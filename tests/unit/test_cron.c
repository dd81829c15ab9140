/*
 * test_cron.c - the built-in schedule without a database: cron expressions
 * read (and refused with a message that names the field), the next tick in
 * UTC and in zones across daylight-saving changes, the classic day rule,
 * names and shorthands, and the checks PUT /v1/jobs makes of a schedule.
 * Expected instants come from Python's zoneinfo, not from this code.
 */
#include <stdio.h>
#include <string.h>

#include "extract/schedule.h"
#include "check.h"
#include "tf/tz.h"

static const struct tf_tz *zone(const char *name)
{
    const struct tf_tz *tz = NULL;

    if (!name)
        return NULL;
    CHECK(tf_tz_get(name, &tz) == TF_OK, "zone %s loads", name);
    return tz;
}

static void test_next(void)
{
    static const struct {
        const char *expr, *zone;
        int64_t after, want;
    } cases[] = {
        /* 2024-03-08T21:05Z -> 21:20Z; strictly after: 21:20Z -> 21:40Z. */
        {"*/20 * * * *", NULL, 1709931900, 1709932800},
        {"*/20 * * * *", NULL, 1709932800, 1709934000},
        {"*/20 * * * *", "UTC", 1709932799, 1709932800},
        /* Friday 09:30 New York (EST) -> Monday 09:30, EDT by then: 13:30Z. */
        {"30 9 * * 1-5", "America/New_York", 1709908200, 1710163800},
        /* 02:30 does not occur in New York on 2024-03-10: the next is the 11th. */
        {"30 2 * * *", "America/New_York", 1709985600, 1710138600},
        /* 01:30 occurs twice on 2024-11-03: 05:30Z (EDT), then 06:30Z (EST). */
        {"30 1 * * *", "America/New_York", 1730606400, 1730611800},
        {"30 1 * * *", "America/New_York", 1730611800, 1730615400},
        /* +05:30. */
        {"0 9 * * *", "Asia/Kolkata", 1709856000, 1709868600},
        /* Only on 29 February: 2028. */
        {"0 0 29 2 *", NULL, 1735689600, 1835395200},
        /* Both day fields restricted: either matches (Monday the 11th before the 1st). */
        {"0 0 1 * MON", NULL, 1709856000, 1710115200},
        {"0 12 13 * 5", NULL, 1725148800, 1725624000},
        /* Day of week '*': the day of month alone decides. */
        {"*/2 * 1 * *", NULL, 1709856000, 1711929600},
        {"*/2 * 1 * *", NULL, 1711929600, 1711929720},
        /* Shorthands, Sunday as 7, names in either case, a start with a step. */
        {"@weekly", NULL, 1709856000, 1710028800},
        {"0 9 * * 7", NULL, 1709856000, 1710061200},
        {"15 10 * JAN,jul SUN", NULL, 1709856000, 1720347300},
        {"5/15 * * * *", NULL, 1709931960, 1709932800},
        {"0 0 31 2 *", NULL, 1709856000, -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct extract_cron c;
        char err[256] = "";

        if (extract_cron_parse(cases[i].expr, &c, err, sizeof(err)) != TF_OK) {
            CHECK(0, "%s parses: %s", cases[i].expr, err);
            continue;
        }
        CHECK(extract_cron_next(&c, zone(cases[i].zone), cases[i].after) == cases[i].want,
              "%s in %s after %lld: %lld, want %lld", cases[i].expr,
              cases[i].zone ? cases[i].zone : "UTC", (long long)cases[i].after,
              (long long)extract_cron_next(&c, zone(cases[i].zone), cases[i].after),
              (long long)cases[i].want);
    }
}

static void test_refused(void)
{
    static const struct {
        const char *expr, *says;
    } cases[] = {
        {"61 * * * *", "cron field 1 (minute): 61 is outside 0-59"},
        {"* 24 * * *", "cron field 2 (hour): 24 is outside 0-23"},
        {"* * 0 * *", "cron field 3 (day of month): 0 is outside 1-31"},
        {"* * * 13 *", "cron field 4 (month): 13 is outside 1-12"},
        {"* * * * 8", "cron field 5 (day of week): 8 is outside 0-7"},
        {"* * * *", "cron has 4 fields; it needs five"},
        {"0 * * * * 2030", "more than five fields"},
        {"*/0 * * * *", "the step in */0 must be 1 to 59"},
        {"5-2 * * * *", "the range 5-2 runs backwards"},
        {"a * * * *", "cron field 1 (minute): cannot read a"},
        {"1,,2 * * * *", "cannot read 1,,2"},
        {"* * * FOO *", "cron field 4 (month): cannot read FOO"},
        {"@reboot", "unknown shorthand @reboot"},
        {"", "five-field expression"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct extract_cron c;
        char err[256] = "";

        CHECK(extract_cron_parse(cases[i].expr, &c, err, sizeof(err)) == TF_ERR_INVALID,
              "'%s' is refused", cases[i].expr);
        CHECK(strstr(err, cases[i].says) != NULL, "'%s': %s (want: %s)", cases[i].expr, err,
              cases[i].says);
    }
}

static void test_schedule(void)
{
    static const struct {
        const char *spec;
        int64_t bar;
        const char *says; /* NULL: accepted */
    } cases[] = {
        {"{\"every_seconds\": 60}", 60, NULL},
        {"{\"every_seconds\": 2678400}", 60, NULL},
        {"{\"cron\": \"*/20 * * * *\"}", 60, NULL},
        {"{\"cron\": \"0 18 * * MON-FRI\", \"zone\": \"America/New_York\"}", 86400, NULL},
        {"{\"every_seconds\": 30}", 60, "from 60 (one bar of the job) to 2678400"},
        {"{\"every_seconds\": 3599}", 3600, "from 3600 (one bar of the job)"},
        {"{\"every_seconds\": 2678401}", 60, "2678400 (31 days, the longest window)"},
        {"{\"every_seconds\": 60.5}", 60, "must be a whole number"},
        /* Far past long's range (found by fuzz_body): refused, no undefined cast. */
        {"{\"every_seconds\": 6666666666666666666666666666666666666666666666629}", 60,
         "must be a whole number"},
        {"{\"every_seconds\": -1e300}", 60, "must be a whole number"},
        {"{\"every_seconds\": \"60\"}", 60, "must be a whole number"},
        {"{\"every_seconds\": 60, \"zone\": \"UTC\"}", 60, "zone goes with cron"},
        {"{\"every_seconds\": 60, \"cron\": \"* * * * *\"}", 60, "exactly one of"},
        {"{}", 60, "exactly one of"},
        {"{\"cron\": \"* * * * *\", \"tz\": \"UTC\"}", 60, "unknown field tz"},
        {"{\"cron\": \"* * * * *\", \"zone\": \"Mars/Olympus_Mons\"}", 60,
         "no time zone Mars/Olympus_Mons"},
        {"{\"cron\": \"* * * * *\", \"zone\": \"../etc/passwd\"}", 60, "no time zone"},
        {"{\"cron\": \"* * * * *\", \"zone\": 5}", 60, "zone must be a string"},
        {"{\"cron\": 5}", 60, "cron must be a string"},
        {"{\"cron\": \"0 0 30 2 *\"}", 60, "never fires"},
        {"{\"cron\": \"* * * *\"}", 60, "it needs five"},
        {"[]", 60, "schedule must be an object"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *spec = cJSON_Parse(cases[i].spec);
        struct extract_schedule s;
        char err[256] = "";
        enum tf_rc rc = extract_schedule_parse(spec, cases[i].bar, &s, err, sizeof(err));

        if (!cases[i].says) {
            CHECK(rc == TF_OK, "%s is accepted: %s", cases[i].spec, err);
        } else {
            CHECK(rc == TF_ERR_INVALID, "%s is refused", cases[i].spec);
            CHECK(strstr(err, cases[i].says) != NULL, "%s: %s (want: %s)", cases[i].spec, err,
                  cases[i].says);
        }
        cJSON_Delete(spec);
    }
}

static void test_every(void)
{
    struct extract_schedule s;
    cJSON *spec = cJSON_Parse("{\"every_seconds\": 300}");
    char err[256] = "";

    CHECK(extract_schedule_parse(spec, 60, &s, err, sizeof(err)) == TF_OK, "parses: %s", err);
    /* Ticks on the multiples of 300 s since the epoch, strictly after. */
    CHECK(extract_schedule_next(&s, 1709931930) == 1709932200, "21:05:30 -> 21:10:00");
    CHECK(extract_schedule_next(&s, 1709932200) == 1709932500, "21:10:00 -> 21:15:00");
    CHECK(extract_schedule_next(&s, 1709932199) == 1709932200, "21:09:59 -> 21:10:00");
    cJSON_Delete(spec);
    spec = cJSON_Parse("{\"cron\": \"@hourly\"}");
    CHECK(extract_schedule_parse(spec, 60, &s, err, sizeof(err)) == TF_OK, "parses: %s", err);
    CHECK(extract_schedule_next(&s, 1709931930) == 1709935200, "@hourly: 21:05:30 -> 22:00");
    cJSON_Delete(spec);
}

int main(void)
{
    test_next();
    test_refused();
    test_schedule();
    test_every();
    tf_tz_cleanup();
    return check_summary();
}
