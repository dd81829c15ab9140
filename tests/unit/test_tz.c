/*
 * test_tz.c - the TZif reader: known instants in New York, London, Kolkata
 * and Sydney, the footer rule far in the future, local-to-UTC across DST
 * gaps and overlaps, name validation, TZDIR, malformed files, threads, and
 * a cross-check against glibc's localtime_r (setenv("TZ") is fine here: the
 * test is single-threaded when it does that).
 *
 * Needs the tzdata package (/usr/share/zoneinfo) and a temporary folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tf/time.h"
#include "tf/tz.h"

#define ZONEINFO "/usr/share/zoneinfo"

static char tmp_root[] = "/tmp/tf_unit_tzXXXXXX";

/* A test time, "2024-03-10T07:00:00Z" or local "2024-03-10 02:30:00", as tf_time_parse reads it
 * (the extract service's path); years it refuses (before 1970, after 2200) are read here. */
static int64_t sec_of(const char *iso)
{
    int64_t sec = 0;
    int y, mo, d, h, mi, s;

    if (tf_time_parse(iso, &sec) == TF_OK)
        return sec;
    if (sscanf(iso, "%d-%d-%d%*c%d:%d:%d", &y, &mo, &d, &h, &mi, &s) == 6)
        return tf_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    check_fail(__FILE__, __LINE__, "test time %s does not parse", iso);
    return 0;
}

static const struct tf_tz *zone(const char *name)
{
    const struct tf_tz *tz = NULL;
    enum tf_rc rc = tf_tz_get(name, &tz);

    CHECK(rc == TF_OK && tz != NULL, "tf_tz_get(%s): %s", name, tf_rc_str(rc));
    return tz;
}

static void fmt(int64_t sec, char *out, size_t outlen)
{
    tf_time_format(sec, out, outlen);
}

static void expect_offset(const char *name, const char *iso, int want)
{
    const struct tf_tz *tz = zone(name);
    int got;

    if (!tz)
        return;
    got = tf_tz_offset(tz, sec_of(iso));
    CHECK(got == want, "%s at %s: offset %d, want %d", name, iso, got, want);
}

/* want_utc NULL: a gap, TF_ERR_INVALID with *utc_sec untouched. */
static void expect_local(const char *name, const char *local, const char *want_utc)
{
    const struct tf_tz *tz = zone(name);
    int64_t utc = 12345, want = want_utc ? sec_of(want_utc) : 12345;
    enum tf_rc rc;
    char got[32];

    if (!tz)
        return;
    rc = tf_tz_local_to_utc(tz, sec_of(local), &utc);
    fmt(utc, got, sizeof(got));
    CHECK(rc == (want_utc ? TF_OK : TF_ERR_INVALID) && utc == want, "%s local %s: %s %s, want %s",
          name, local, tf_rc_str(rc), got, want_utc ? want_utc : "invalid");
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f)
        return 0;
    ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Reads a whole (small) file into buf; returns its length, 0 on failure. */
static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f)
        return 0;
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n < cap ? n : 0;
}

/* ---- synthetic TZif images ------------------------------------------------------------------ */

struct tzif_spec {
    char version; /* '\0' (version 1: no 64-bit data, no footer), '2', '3' */
    const int64_t *times;
    const uint8_t *idx;
    uint32_t timecnt;
    const int32_t *utoff;
    uint32_t typecnt;
    uint32_t leapcnt;   /* leap records are written as zeros */
    const char *footer; /* the POSIX TZ string, without the newlines */
};

struct out {
    unsigned char *p;
    size_t len, cap;
};

static void put(struct out *o, const void *data, size_t n)
{
    if (n > 0 && o->len + n <= o->cap)
        memcpy(o->p + o->len, data, n);
    o->len += n;
}

static void put_be(struct out *o, uint64_t v, int bytes)
{
    unsigned char b[8];

    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    put(o, b, (size_t)bytes);
}

static void put_tzif_block(struct out *o, const struct tzif_spec *s, int tsize)
{
    unsigned char zero[16] = {0};

    put(o, "TZif", 4);
    put(o, &s->version, 1);
    put(o, zero, 15);
    put_be(o, 0, 4); /* isutcnt */
    put_be(o, 0, 4); /* isstdcnt */
    put_be(o, s->leapcnt, 4);
    put_be(o, s->timecnt, 4);
    put_be(o, s->typecnt, 4);
    put_be(o, 4, 4); /* charcnt */
    for (uint32_t i = 0; i < s->timecnt; i++)
        put_be(o, (uint64_t)s->times[i], tsize);
    put(o, s->idx, s->timecnt);
    for (uint32_t i = 0; i < s->typecnt; i++) {
        put_be(o, (uint32_t)s->utoff[i], 4);
        put(o, zero, 2); /* isdst 0, abbreviation 0 */
    }
    put(o, "ABC", 4);
    for (uint32_t i = 0; i < s->leapcnt; i++)
        put(o, zero, (size_t)tsize + 4);
}

static size_t build_tzif(const struct tzif_spec *s, unsigned char *buf, size_t cap)
{
    struct out o = {buf, 0, cap};

    put_tzif_block(&o, s, 4);
    if (s->version != '\0') {
        put_tzif_block(&o, s, 8);
        put(&o, "\n", 1);
        put(&o, s->footer, strlen(s->footer));
        put(&o, "\n", 1);
    }
    return o.len <= cap ? o.len : 0;
}

/* A version 2 image with no transitions, one type and the footer rule. */
static enum tf_rc parse_footer(const char *footer, struct tf_tz **out)
{
    static const int32_t utoff[] = {0};
    struct tzif_spec s = {'2', NULL, NULL, 0, utoff, 1, 0, footer};
    unsigned char buf[512];
    size_t len = build_tzif(&s, buf, sizeof(buf));

    return tf_tz_parse(buf, len, out);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_names(void)
{
    static const char *bad[] = {
        "../etc/passwd",
        "/etc/localtime",
        "America/../../x",
        "America/./New_York",
        "",
        "America//New_York",
        "America/New_York/",
        "America/New York",
        "America/New_York\n",
        "Europe/London;rm",
        "..",
        ".",
        "a/b\\c",
        "Asia/Kolkata.",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 65 */
    };
    const struct tf_tz *sentinel = zone("UTC"), *tz = sentinel;
    enum tf_rc rc;

    for (size_t i = 0; i < TF_ARRAY_LEN(bad); i++) {
        tz = sentinel; /* must come back NULL */
        rc = tf_tz_get(bad[i], &tz);
        CHECK(rc == TF_ERR_INVALID && tz == NULL, "bad name \"%s\": %s", bad[i], tf_rc_str(rc));
    }
    tz = sentinel;
    rc = tf_tz_get(NULL, &tz);
    CHECK(rc == TF_ERR_INVALID && tz == NULL, "NULL name: %s", tf_rc_str(rc));
    {
        char longname[1024];

        memset(longname, 'A', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        rc = tf_tz_get(longname, &tz);
        CHECK(rc == TF_ERR_INVALID, "very long name: %s", tf_rc_str(rc));
        memset(longname, 'A', TF_TZ_NAME_MAX);
        longname[TF_TZ_NAME_MAX] = '\0';
        rc = tf_tz_get(longname, &tz);
        CHECK(rc == TF_ERR_NOT_FOUND, "64-character name is valid, just absent: %s", tf_rc_str(rc));
    }
    tz = sentinel;
    rc = tf_tz_get("Nowhere/Atlantis", &tz);
    CHECK(rc == TF_ERR_NOT_FOUND && tz == NULL, "Nowhere/Atlantis: %s", tf_rc_str(rc));
    rc = tf_tz_get("America", &tz);
    CHECK(rc == TF_ERR_NOT_FOUND, "a directory is not a zone: %s", tf_rc_str(rc));
    rc = tf_tz_get("zone1970", &tz); /* zone1970.tab exists; the name without '.' does not */
    CHECK(rc == TF_ERR_NOT_FOUND, "zone1970: %s", tf_rc_str(rc));
    CHECK(zone("Etc/GMT+5") != NULL && tf_tz_offset(zone("Etc/GMT+5"), 0) == -5 * 3600,
          "Etc/GMT+5 is UTC-5 (the name's sign is POSIX's)");
    {
        const struct tf_tz *a = zone("America/New_York"), *b = zone("America/New_York");

        CHECK(a != NULL && a == b, "a zone is loaded once and cached");
    }
}

static void test_utc(void)
{
    const struct tf_tz *utc = zone("UTC"), *etc = zone("Etc/UTC");
    int64_t out = 0;
    enum tf_rc rc;

    if (!utc || !etc)
        return;
    CHECK_EQ_INT(tf_tz_offset(utc, 0), 0);
    CHECK_EQ_INT(tf_tz_offset(utc, INT64_MAX), 0);
    CHECK_EQ_INT(tf_tz_offset(etc, INT64_MIN), 0);
    rc = tf_tz_local_to_utc(utc, sec_of("2024-03-10T02:30:00Z"), &out);
    CHECK(rc == TF_OK && out == sec_of("2024-03-10T02:30:00Z"), "UTC local time is UTC");
    rc = tf_tz_local_to_utc(utc, INT64_MAX, &out);
    CHECK(rc == TF_ERR_INVALID, "local time at the int64 edge: %s", tf_rc_str(rc));
    rc = tf_tz_local_to_utc(utc, INT64_MIN + 3600, &out);
    CHECK(rc == TF_ERR_INVALID, "local time at the int64 low edge: %s", tf_rc_str(rc));
}

static void test_known_instants(void)
{
    const int est = -5 * 3600, edt = -4 * 3600;

    /* New York: 2024 DST from 07:00Z on March 10 to 06:00Z on November 3. */
    expect_offset("America/New_York", "2024-03-10T06:59:59Z", est);
    expect_offset("America/New_York", "2024-03-10T07:00:00Z", edt);
    expect_offset("America/New_York", "2024-11-03T05:59:59Z", edt);
    expect_offset("America/New_York", "2024-11-03T06:00:00Z", est);
    /* Past the file's last transition (2037): the footer rule EST5EDT,M3.2.0,M11.1.0. */
    expect_offset("America/New_York", "2090-07-01T12:00:00Z", edt);
    expect_offset("America/New_York", "2090-01-15T12:00:00Z", est);
    expect_offset("America/New_York", "2090-03-12T06:59:59Z", est); /* second Sunday: 12th */
    expect_offset("America/New_York", "2090-03-12T07:00:00Z", edt);
    expect_offset("America/New_York", "2090-11-05T05:59:59Z", edt); /* first Sunday: 5th */
    expect_offset("America/New_York", "2090-11-05T06:00:00Z", est);
    expect_offset("America/New_York", "2400-07-01T00:00:00Z", edt);
    expect_offset("America/New_York", "9999-12-31T00:00:00Z", est);
    /* History: 1970 DST ran April 26 - October 25; 1974 had year-round DST in January. */
    expect_offset("America/New_York", "1970-07-01T12:00:00Z", edt);
    expect_offset("America/New_York", "1970-01-15T12:00:00Z", est);
    expect_offset("America/New_York", "1974-01-15T12:00:00Z", edt);
    expect_offset("America/New_York", "1850-01-01T00:00:00Z", -17762); /* LMT -4:56:02 */

    /* London: BST from 01:00Z on March 31 to 01:00Z on October 27, 2024. */
    expect_offset("Europe/London", "2024-03-31T00:59:59Z", 0);
    expect_offset("Europe/London", "2024-03-31T01:00:00Z", 3600);
    expect_offset("Europe/London", "2024-10-27T00:59:59Z", 3600);
    expect_offset("Europe/London", "2024-10-27T01:00:00Z", 0);
    expect_offset("Europe/London", "2080-08-01T00:00:00Z", 3600);
    expect_offset("Europe/London", "1970-01-15T00:00:00Z", 3600); /* British Standard Time */

    /* Kolkata: +5:30 all year, now and in the footer's future. */
    expect_offset("Asia/Kolkata", "2024-01-15T00:00:00Z", 19800);
    expect_offset("Asia/Kolkata", "2024-07-15T00:00:00Z", 19800);
    expect_offset("Asia/Kolkata", "1990-07-15T00:00:00Z", 19800);
    expect_offset("Asia/Kolkata", "2090-07-15T00:00:00Z", 19800);

    /* Sydney, southern hemisphere: AEDT ends 03:00 local on April 7 (16:00Z on the 6th),
     * starts 02:00 local on October 6 (16:00Z on the 5th). */
    expect_offset("Australia/Sydney", "2024-04-06T15:59:59Z", 11 * 3600);
    expect_offset("Australia/Sydney", "2024-04-06T16:00:00Z", 10 * 3600);
    expect_offset("Australia/Sydney", "2024-10-05T15:59:59Z", 10 * 3600);
    expect_offset("Australia/Sydney", "2024-10-05T16:00:00Z", 11 * 3600);
    expect_offset("Australia/Sydney", "2090-01-15T00:00:00Z", 11 * 3600);
    expect_offset("Australia/Sydney", "2090-07-15T00:00:00Z", 10 * 3600);
}

static void test_local_to_utc(void)
{
    /* The spec's two cases: the gap and the overlap. */
    expect_local("America/New_York", "2024-03-10 02:30:00", NULL);
    expect_local("America/New_York", "2024-11-03 01:30:00", "2024-11-03T05:30:00Z");
    /* Around them. */
    expect_local("America/New_York", "2024-03-10 01:59:59", "2024-03-10T06:59:59Z");
    expect_local("America/New_York", "2024-03-10 02:00:00", NULL);
    expect_local("America/New_York", "2024-03-10 02:59:59", NULL);
    expect_local("America/New_York", "2024-03-10 03:00:00", "2024-03-10T07:00:00Z");
    expect_local("America/New_York", "2024-11-03 00:59:59", "2024-11-03T04:59:59Z");
    expect_local("America/New_York", "2024-11-03 01:00:00", "2024-11-03T05:00:00Z");
    expect_local("America/New_York", "2024-11-03 01:59:59", "2024-11-03T05:59:59Z");
    expect_local("America/New_York", "2024-11-03 02:00:00", "2024-11-03T07:00:00Z");
    /* The extract service's case: a market open. */
    expect_local("America/New_York", "2024-03-08 09:30:00", "2024-03-08T14:30:00Z");
    expect_local("America/New_York", "2024-03-11 09:30:00", "2024-03-11T13:30:00Z");
    expect_local("Europe/London", "2024-07-01 08:00:00", "2024-07-01T07:00:00Z");
    expect_local("Asia/Kolkata", "2024-03-08 09:15:00", "2024-03-08T03:45:00Z");
    expect_local("Australia/Sydney", "2024-03-08 10:00:00", "2024-03-07T23:00:00Z");
    /* Far future, through the footer rule. */
    expect_local("America/New_York", "2090-03-12 02:30:00", NULL);
    expect_local("America/New_York", "2090-11-05 01:30:00", "2090-11-05T05:30:00Z");
    /* London and Sydney gaps and overlaps. */
    expect_local("Europe/London", "2024-03-31 01:30:00", NULL);
    expect_local("Europe/London", "2024-10-27 01:30:00", "2024-10-27T00:30:00Z");
    expect_local("Australia/Sydney", "2024-10-06 02:30:00", NULL);
    expect_local("Australia/Sydney", "2024-04-07 02:30:00", "2024-04-06T15:30:00Z");
}

/*
 * Every 15 minutes of a year, both ways: a UTC instant's local time must map
 * back to it (or, in an overlap, to the earlier instant with the same local
 * time), and a local time must map to an instant showing it, or be a gap.
 */
static void round_trip(const char *name, int year, int want_overlaps, int want_gaps)
{
    const struct tf_tz *tz = zone(name);
    int64_t from = tf_days_from_civil(year, 1, 1) * 86400;
    int64_t to = tf_days_from_civil(year + 1, 1, 1) * 86400;
    int bad = 0, overlaps = 0, gaps = 0;
    int64_t first_bad = 0;

    if (!tz)
        return;
    for (int64_t u = from; u < to; u += 900) {
        int64_t local = u + tf_tz_offset(tz, u), back = 0;
        enum tf_rc rc = tf_tz_local_to_utc(tz, local, &back);

        if (rc == TF_OK && back == u)
            continue;
        if (rc == TF_OK && back < u && back + tf_tz_offset(tz, back) == local) {
            overlaps++;
            continue;
        }
        if (!bad++)
            first_bad = u;
    }
    for (int64_t local = from; local < to; local += 900) {
        int64_t back = 0;
        enum tf_rc rc = tf_tz_local_to_utc(tz, local, &back);

        if (rc == TF_ERR_INVALID) {
            gaps++;
            continue;
        }
        if (rc == TF_OK && back + tf_tz_offset(tz, back) == local)
            continue;
        if (!bad++)
            first_bad = local;
    }
    CHECK(bad == 0 && overlaps == want_overlaps && gaps == want_gaps,
          "%s %d round trip: %d bad (first %lld), %d overlaps (want %d), %d gaps (want %d)", name,
          year, bad, (long long)first_bad, overlaps, want_overlaps, gaps, want_gaps);
}

static void test_round_trips(void)
{
    round_trip("America/New_York", 2024, 4, 4);
    round_trip("America/New_York", 2090, 4, 4);
    round_trip("America/New_York", 1970, 4, 4);
    round_trip("Australia/Sydney", 2024, 4, 4);
    round_trip("Australia/Sydney", 2090, 4, 4);
    round_trip("Europe/London", 2024, 4, 4);
    round_trip("Asia/Kolkata", 2024, 0, 0);
    round_trip("UTC", 2024, 0, 0);
}

/*
 * tf/time.h's New York clock is the zone database's, before 2007 too, and
 * NYSE sessions land where they did: the opening bell at 09:30 New York on
 * dates whose UTC time is known independently of the 2007 rule (under it,
 * every one of these but the last would be an hour off).
 */
static void test_us_eastern(void)
{
    static const struct {
        int y, m, d;
        const char *open; /* 09:30 New York, in UTC */
        const char *why;
    } opens[] = {
        {2005, 3, 15, "2005-03-15T14:30:00Z", "EST: DST began on April 3, 2005"},
        {2006, 3, 13, "2006-03-13T14:30:00Z", "EST: DST began on April 2, 2006"},
        {2006, 4, 3, "2006-04-03T13:30:00Z", "EDT since April 2, 2006"},
        {2006, 10, 30, "2006-10-30T14:30:00Z", "EST: DST ended on October 29, 2006"},
        {1987, 4, 3, "1987-04-03T14:30:00Z", "EST: DST began on April 5, 1987"},
        {1987, 4, 6, "1987-04-06T13:30:00Z", "EDT since April 5, 1987"},
        {1974, 1, 7, "1974-01-07T13:30:00Z", "the 1974 emergency DST from January 6"},
        {2007, 3, 12, "2007-03-12T13:30:00Z", "EDT since March 11, 2007, the new rule"},
    };
    const struct tf_tz *tz = zone("America/New_York");
    int64_t end = sec_of("2100-01-01T00:00:00Z");
    int bad = 0;

    CHECK(tf_time_us_eastern_from_zoneinfo(), "New York's clock comes from the zone database");
    if (!tz)
        return;
    for (int64_t t = sec_of("1900-01-01T00:00:00Z"); t < end; t += 3 * 3600 + 17) {
        bad += tf_tz_offset(tz, t) != tf_time_us_eastern_offset(t);
    }
    CHECK(bad == 0, "New York vs tf_time_us_eastern_offset: %d differ", bad);
    for (size_t i = 0; i < sizeof(opens) / sizeof(opens[0]); i++) {
        int64_t t = tf_time_us_eastern_to_utc(opens[i].y, opens[i].m, opens[i].d, 9, 30);
        char got[32];

        tf_time_format(t, got, sizeof(got));
        CHECK(strcmp(got, opens[i].open) == 0, "09:30 New York on %04d-%02d-%02d (%s): %s, want %s",
              opens[i].y, opens[i].m, opens[i].d, opens[i].why, got, opens[i].open);
    }
    /* The autumn's repeated hour gives the earlier instant; the spring's
     * skipped hour reads as daylight time (02:30 is 06:30Z, as 03:30 EDT is 07:30Z). */
    CHECK_EQ_INT(tf_time_us_eastern_to_utc(2024, 11, 3, 1, 30), sec_of("2024-11-03T05:30:00Z"));
    CHECK_EQ_INT(tf_time_us_eastern_to_utc(2024, 3, 10, 2, 30), sec_of("2024-03-10T06:30:00Z"));
}

/* Footer forms parsed from synthetic files, and their errors. */
static void test_footer_rules(void)
{
    static const char *bad[] = {
        "EST",                           /* no offset */
        "ES5",                           /* name too short */
        "EST25",                         /* offset past 24 h */
        "EST5:60",                       /* minutes */
        "<>5",                           /* empty quoted name */
        "<EST5",                         /* unterminated */
        "EST5EDT,M13.1.0,M11.1.0",       /* month */
        "EST5EDT,M3.6.0,M11.1.0",        /* week */
        "EST5EDT,M3.2.7,M11.1.0",        /* weekday */
        "EST5EDT,M3.2.0",                /* no end */
        "EST5EDT,M3.2.0,",               /* empty end */
        "EST5EDT,M3.2.0/168,M11.1.0",    /* time past 167 h */
        "EST5EDT,J0,J300",               /* Jn from 1 */
        "EST5EDT,J366,J300",             /* Jn to 365 */
        "EST5EDT,366,1",                 /* n to 365 */
        "EST5EDT,M3.2.0,M11.1.0 ",       /* trailing */
        "EST5EDT,M3.2.0,M11.1.0,M1.1.0", /* three dates */
        "EST5EDT4,M3.2.0/2:3:4:5,M11.1.0",
        "EST5EDT,M3.2.0/1234,M11.1.0",
    };
    struct tf_tz *tz = NULL;
    enum tf_rc rc;

    for (size_t i = 0; i < TF_ARRAY_LEN(bad); i++) {
        rc = parse_footer(bad[i], &tz);
        CHECK(rc == TF_ERR_INVALID && tz == NULL, "footer \"%s\": %s", bad[i], tf_rc_str(rc));
        tf_tz_free(tz);
        tz = NULL;
    }

    /* DST with no dates: the US rule, as glibc and tzcode. */
    rc = parse_footer("XST5XDT", &tz);
    CHECK(rc == TF_OK, "XST5XDT: %s", tf_rc_str(rc));
    if (tz) {
        CHECK_EQ_INT(tf_tz_offset(tz, sec_of("2024-03-10T06:59:59Z")), -5 * 3600);
        CHECK_EQ_INT(tf_tz_offset(tz, sec_of("2024-03-10T07:00:00Z")), -4 * 3600);
        CHECK_EQ_INT(tf_tz_offset(tz, sec_of("2024-11-03T06:00:00Z")), -5 * 3600);
    }
    tf_tz_free(tz);
    tz = NULL;

    /* An explicit DST offset, seconds in times, Jn and n dates. */
    rc = parse_footer("<-0330>3:30<-0200>2,J60/1:30:15,300/-1", &tz);
    CHECK(rc == TF_OK, "Jn and n footer: %s", tf_rc_str(rc));
    if (tz) {
        /* J60 is March 1 every year; the change is at 01:30:15 local standard time. */
        CHECK_EQ_INT(tf_tz_offset(tz, sec_of("2024-03-01T05:00:14Z")), -12600);
        CHECK_EQ_INT(tf_tz_offset(tz, sec_of("2024-03-01T05:00:15Z")), -7200);
        /* n = 300 counts Feb 29: day 300 of 2024 is October 27; -1 is 23:00 the day before. */
        CHECK_EQ_INT(tf_tz_offset(tz, sec_of("2024-10-27T00:59:59Z")), -7200);
        CHECK_EQ_INT(tf_tz_offset(tz, sec_of("2024-10-27T01:00:00Z")), -12600);
    }
    tf_tz_free(tz);
    tz = NULL;

    /* All-year DST, as tzdata writes it: DST through New Year. */
    rc = parse_footer("EST5EDT,0/0,J365/25", &tz);
    CHECK(rc == TF_OK, "all-year DST footer: %s", tf_rc_str(rc));
    if (tz) {
        int64_t end = sec_of("2026-06-01T00:00:00Z");
        int not_edt = 0;

        for (int64_t t = sec_of("2023-06-01T00:00:00Z"); t < end; t += 3607)
            not_edt += tf_tz_offset(tz, t) != -4 * 3600;
        CHECK(not_edt == 0, "all-year DST: %d instants not EDT", not_edt);
    }
    tf_tz_free(tz);
    tz = NULL;

    /* Far instants are defined and agree with the 400-year cycle. */
    rc = parse_footer("EST5EDT,M3.2.0,M11.1.0", &tz);
    CHECK(rc == TF_OK, "US footer: %s", tf_rc_str(rc));
    if (tz) {
        int64_t cycle = INT64_C(146097) * 86400, t = sec_of("2024-07-01T00:00:00Z");
        int64_t u = 0;

        CHECK_EQ_INT(tf_tz_offset(tz, t + 1000000 * cycle), -4 * 3600);
        CHECK_EQ_INT(tf_tz_offset(tz, t - 1000000 * cycle), -4 * 3600);
        CHECK_EQ_INT(tf_tz_offset(tz, INT64_MAX), tf_tz_offset(tz, INT64_MAX % cycle));
        CHECK_EQ_INT(tf_tz_offset(tz, INT64_MIN), tf_tz_offset(tz, INT64_MIN % cycle));
        CHECK(tf_tz_local_to_utc(tz, INT64_MAX - 3 * 86400, &u) == TF_OK &&
                  u - (INT64_MAX - 3 * 86400) == -tf_tz_offset(tz, u),
              "local time near INT64_MAX converts");
    }
    tf_tz_free(tz);
}

/* Synthetic tables: type 0 before the first transition, the last type after it. */
static void test_tables(void)
{
    static const int64_t times[] = {0, 1000000};
    static const uint8_t idx[] = {1, 0};
    static const int32_t utoff[] = {-18000, -14400};
    struct tzif_spec s = {'\0', times, idx, 2, utoff, 2, 0, NULL};
    unsigned char buf[1024];
    struct tf_tz *tz = NULL;
    enum tf_rc rc;
    size_t len;

    len = build_tzif(&s, buf, sizeof(buf));
    rc = tf_tz_parse(buf, len, &tz);
    CHECK(rc == TF_OK, "version 1 file: %s", tf_rc_str(rc));
    if (tz) {
        CHECK_EQ_INT(tf_tz_offset(tz, -1), -18000);
        CHECK_EQ_INT(tf_tz_offset(tz, 0), -14400);
        CHECK_EQ_INT(tf_tz_offset(tz, 999999), -14400);
        CHECK_EQ_INT(tf_tz_offset(tz, 1000000), -18000);
        CHECK_EQ_INT(tf_tz_offset(tz, INT64_MAX), -18000);
    }
    tf_tz_free(tz);
    tz = NULL;

    /* The same as version 3 with a footer that takes over at the last transition. */
    s.version = '3';
    s.footer = "<-03>3";
    len = build_tzif(&s, buf, sizeof(buf));
    rc = tf_tz_parse(buf, len, &tz);
    CHECK(rc == TF_OK, "version 3 file: %s", tf_rc_str(rc));
    if (tz) {
        CHECK_EQ_INT(tf_tz_offset(tz, 999999), -14400);
        CHECK_EQ_INT(tf_tz_offset(tz, 1000000), -10800);
    }
    tf_tz_free(tz);
    tz = NULL;

    /* Malformed tables. */
    {
        static const int64_t unsorted[] = {1000000, 0};
        static const uint8_t bad_idx[] = {0, 2};
        static const int32_t bad_off[] = {0, 100000};
        const struct {
            const char *what;
            struct tzif_spec spec;
        } cases[] = {
            {"unsorted transitions", {'2', unsorted, idx, 2, utoff, 2, 0, ""}},
            {"equal transitions", {'2', (const int64_t[]){5, 5}, idx, 2, utoff, 2, 0, ""}},
            {"type index out of range", {'2', times, bad_idx, 2, utoff, 2, 0, ""}},
            {"offset of 27 h", {'2', times, idx, 2, bad_off, 2, 0, ""}},
            {"no types", {'2', NULL, NULL, 0, utoff, 0, 0, ""}},
            {"leap seconds", {'2', times, idx, 2, utoff, 2, 1, ""}},
            {"version 1 with 'right/' leap seconds", {'\0', times, idx, 2, utoff, 2, 1, NULL}},
            {"unknown version", {'1', times, idx, 2, utoff, 2, 0, ""}},
        };

        for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
            len = build_tzif(&cases[i].spec, buf, sizeof(buf));
            rc = tf_tz_parse(buf, len, &tz);
            CHECK(rc == TF_ERR_INVALID && tz == NULL, "%s: %s", cases[i].what, tf_rc_str(rc));
            tf_tz_free(tz);
            tz = NULL;
        }
    }
    /* Counts far past the bytes there: refused before allocating. */
    {
        s.version = '2';
        s.footer = "";
        len = build_tzif(&s, buf, sizeof(buf));
        buf[32] = buf[33] = buf[34] = buf[35] = 0xff; /* v1 timecnt = 4294967295 */
        rc = tf_tz_parse(buf, len, &tz);
        CHECK(rc == TF_ERR_INVALID, "huge v1 count: %s", tf_rc_str(rc));
        tf_tz_free(tz);
        tz = NULL;
        len = build_tzif(&s, buf, sizeof(buf));
        /* The second header starts after the 44-byte header and 2*5 + 2*6 + 4 bytes. */
        buf[44 + 26 + 36] = 0x7f; /* v2 typecnt */
        rc = tf_tz_parse(buf, len, &tz);
        CHECK(rc == TF_ERR_INVALID, "huge v2 type count: %s", tf_rc_str(rc));
        tf_tz_free(tz);
        tz = NULL;
        len = build_tzif(&s, buf, sizeof(buf));
        buf[len - 1] = 'x'; /* the footer's closing newline */
        rc = tf_tz_parse(buf, len, &tz);
        CHECK(rc == TF_ERR_INVALID, "unterminated footer: %s", tf_rc_str(rc));
        tf_tz_free(tz);
        tz = NULL;
    }
}

/* Every proper prefix of a real file is refused; random damage never crashes. */
static void test_damaged_files(void)
{
    static unsigned char orig[65536], buf[65536];
    size_t len = read_file(ZONEINFO "/America/New_York", orig, sizeof(orig));
    struct tf_tz *tz = NULL;
    int accepted = 0, odd = 0, parsed = 0;
    uint32_t seed = 12345;
    enum tf_rc rc;

    CHECK(len > 1000, "read the New York file (%zu bytes)", len);
    if (len == 0)
        return;
    rc = tf_tz_parse(orig, len, &tz);
    CHECK(rc == TF_OK, "the whole file parses: %s", tf_rc_str(rc));
    tf_tz_free(tz);
    tz = NULL;
    for (size_t n = 0; n < len; n++) {
        memcpy(buf, orig, n); /* a copy of exactly n bytes, so ASan sees any overread */
        rc = tf_tz_parse(buf, n, &tz);
        accepted += rc != TF_ERR_INVALID;
        tf_tz_free(tz);
        tz = NULL;
    }
    CHECK(accepted == 0, "%d of %zu truncations accepted", accepted, len);

    for (int round = 0; round < 3000; round++) {
        unsigned char *copy;
        int flips;

        memcpy(buf, orig, len);
        seed = seed * 1103515245u + 12345u;
        flips = 1 + (int)(seed >> 16) % 4;
        for (int f = 0; f < flips; f++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % len] ^= (unsigned char)(1u << ((seed >> 4) % 8));
        }
        copy = malloc(len);
        if (!copy)
            break;
        memcpy(copy, buf, len);
        rc = tf_tz_parse(copy, len, &tz);
        if (rc == TF_OK) {
            parsed++;
            for (int64_t t = -4000000000LL; t < 5000000000LL; t += 99999937) {
                int off = tf_tz_offset(tz, t);
                int64_t u = 0;

                odd += off < -89999 || off > 93599;
                if (tf_tz_local_to_utc(tz, t, &u) == TF_OK)
                    odd += u + tf_tz_offset(tz, u) != t;
            }
        } else {
            odd += rc != TF_ERR_INVALID;
        }
        tf_tz_free(tz);
        tz = NULL;
        free(copy);
    }
    CHECK(odd == 0, "damaged files: %d odd results (%d of 3000 still parsed)", odd, parsed);
}

/* TZDIR: bad files and special files through tf_tz_get, read once, reset by cleanup. */
static void test_tzdir(void)
{
    static const unsigned char garbage[] = "TZif2\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    static unsigned char ny[65536];
    size_t ny_len = read_file(ZONEINFO "/America/New_York", ny, sizeof(ny));
    char path[PATH_MAX];
    const struct tf_tz *tz = NULL;
    struct tf_tz *owned = NULL;
    enum tf_rc rc;

    snprintf(path, sizeof(path), "%s/Bad", tmp_root);
    CHECK(mkdir(path, 0700) == 0, "mkdir %s", path);
    snprintf(path, sizeof(path), "%s/Bad/Truncated", tmp_root);
    CHECK(ny_len > 100 && write_file(path, ny, 100), "write %s", path);
    snprintf(path, sizeof(path), "%s/Bad/Garbage", tmp_root);
    CHECK(write_file(path, garbage, sizeof(garbage) - 1), "write %s", path);
    snprintf(path, sizeof(path), "%s/Bad/Text", tmp_root);
    CHECK(write_file(path, "not a zone\n", 11), "write %s", path);
    snprintf(path, sizeof(path), "%s/Bad/Empty", tmp_root);
    CHECK(write_file(path, "", 0), "write %s", path);
    snprintf(path, sizeof(path), "%s/Bad/Fifo", tmp_root);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo %s", path);
    snprintf(path, sizeof(path), "%s/America", tmp_root);
    CHECK(symlink(ZONEINFO "/America", path) == 0, "symlink %s", path);

    setenv("TZDIR", tmp_root, 1);
    rc = tf_tz_get("Bad/Truncated", &tz);
    CHECK(rc == TF_ERR_INVALID && tz == NULL, "truncated file: %s", tf_rc_str(rc));
    rc = tf_tz_get("Bad/Garbage", &tz);
    CHECK(rc == TF_ERR_INVALID, "garbage file: %s", tf_rc_str(rc));
    rc = tf_tz_get("Bad/Text", &tz);
    CHECK(rc == TF_ERR_INVALID, "text file: %s", tf_rc_str(rc));
    rc = tf_tz_get("Bad/Empty", &tz);
    CHECK(rc == TF_ERR_INVALID, "empty file: %s", tf_rc_str(rc));
    rc = tf_tz_get("Bad/Fifo", &tz);
    CHECK(rc == TF_ERR_NOT_FOUND, "a FIFO is not a zone (and does not block): %s", tf_rc_str(rc));
    rc = tf_tz_get("Bad", &tz);
    CHECK(rc == TF_ERR_NOT_FOUND, "a directory is not a zone: %s", tf_rc_str(rc));
    rc = tf_tz_get("Europe/London", &tz);
    CHECK(rc == TF_ERR_NOT_FOUND, "only TZDIR is searched: %s", tf_rc_str(rc));
    CHECK(zone("America/Chicago") != NULL, "a zone through TZDIR");
    CHECK(zone("UTC") != NULL && zone("Etc/UTC") != NULL, "UTC without a file");

    /* Read once: unsetting TZDIR changes nothing until tf_tz_cleanup(). */
    unsetenv("TZDIR");
    rc = tf_tz_get("Bad/Text", &tz);
    CHECK(rc == TF_ERR_INVALID, "TZDIR is remembered: %s", tf_rc_str(rc));
    tf_tz_cleanup();
    rc = tf_tz_get("Bad/Text", &tz);
    CHECK(rc == TF_ERR_NOT_FOUND, "after cleanup the default root: %s", tf_rc_str(rc));
    CHECK(zone("Europe/London") != NULL, "after cleanup zones load again");

    snprintf(path, sizeof(path), "%s/Bad/Truncated", tmp_root);
    rc = tf_tz_load_file(path, &owned);
    CHECK(rc == TF_ERR_INVALID && owned == NULL, "tf_tz_load_file truncated: %s", tf_rc_str(rc));
    snprintf(path, sizeof(path), "%s/Bad/Missing", tmp_root);
    rc = tf_tz_load_file(path, &owned);
    CHECK(rc == TF_ERR_NOT_FOUND, "tf_tz_load_file missing: %s", tf_rc_str(rc));
    rc = tf_tz_load_file(ZONEINFO "/Asia/Kolkata", &owned);
    CHECK(rc == TF_OK && owned && tf_tz_offset(owned, 0) == 19800, "tf_tz_load_file: %s",
          tf_rc_str(rc));
    tf_tz_free(owned);

    static const char *names[] = {"Bad/Truncated", "Bad/Garbage", "Bad/Text", "Bad/Empty",
                                  "Bad/Fifo"};
    for (size_t i = 0; i < TF_ARRAY_LEN(names); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmp_root, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/America", tmp_root);
    unlink(path);
    snprintf(path, sizeof(path), "%s/Bad", tmp_root);
    rmdir(path);
}

/* ---- against glibc -------------------------------------------------------------------------- */

static long sys_offset(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!localtime_r(&tt, &tm))
        return LONG_MIN;
    return tm.tm_gmtoff;
}

/*
 * Compares tf_tz_offset with localtime_r's tm_gmtoff on a grid, and at the
 * exact second of every change either side sees between grid points (found
 * by bisection). Returns the number of instants that differ.
 */
static int cross_check(const struct tf_tz *tz, const char *tz_env, int64_t from, int64_t to,
                       int64_t step, int64_t *first_bad, int *changes)
{
    long sys_lo = 0;
    int bad = 0, ours_lo = 0;

    setenv("TZ", tz_env, 1);
    tzset();
    for (int64_t t = from; t <= to; t += step) {
        long sys = sys_offset(t);
        int ours = tf_tz_offset(tz, t);

        if (t > from && (sys_lo != sys || ours_lo != ours)) {
            int64_t lo = t - step, hi = t;

            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;

                if (sys_offset(mid) == sys_lo && tf_tz_offset(tz, mid) == ours_lo)
                    lo = mid;
                else
                    hi = mid;
            }
            (*changes)++;
            if (sys_offset(hi) != tf_tz_offset(tz, hi) && !bad++)
                *first_bad = hi;
        }
        if (sys != ours && !bad++)
            *first_bad = t;
        sys_lo = sys;
        ours_lo = ours;
    }
    unsetenv("TZ");
    tzset();
    return bad;
}

static void check_against_glibc(const char *name, const char *tz_env, const struct tf_tz *tz,
                                int64_t from, int64_t to, int64_t step)
{
    int64_t first_bad = 0;
    int changes = 0, bad;
    char when[32];

    if (!tz)
        return;
    bad = cross_check(tz, tz_env, from, to, step, &first_bad, &changes);
    fmt(first_bad, when, sizeof(when));
    setenv("TZ", tz_env, 1);
    tzset();
    CHECK(bad == 0, "%s vs glibc: %d differ (%d changes), first at %s: ours %d, glibc %ld", name,
          bad, changes, when, tf_tz_offset(tz, first_bad), sys_offset(first_bad));
    unsetenv("TZ");
    tzset();
}

/* The exchanges' zones and the footer rules' odd corners, 1900..2100 every ~6 hours. */
static void test_glibc_zones(void)
{
    static const char *zones[] = {
        "America/New_York",    "Europe/London",     "Asia/Kolkata",        "Australia/Sydney",
        "America/Chicago",     "Europe/Berlin",     "Asia/Tokyo",          "Asia/Hong_Kong",
        "Asia/Shanghai",       "Europe/Moscow",     "America/Toronto",     "America/Sao_Paulo",
        "Europe/Dublin",       "Africa/Casablanca", "America/Santiago",    "America/Nuuk",
        "Asia/Jerusalem",      "Antarctica/Troll",  "America/St_Johns",    "Pacific/Chatham",
        "Asia/Tehran",         "Pacific/Apia",      "Asia/Gaza",           "Pacific/Kiritimati",
        "Africa/Johannesburg", "Asia/Singapore",    "America/Los_Angeles", "Pacific/Auckland",
    };
    int64_t from = sec_of("1900-01-01T00:00:00Z"), to = sec_of("2100-01-01T00:00:00Z");

    for (size_t i = 0; i < TF_ARRAY_LEN(zones); i++)
        check_against_glibc(zones[i], zones[i], zone(zones[i]), from, to, 6 * 3600 + 7 * 60 + 13);
}

/* Footer rules alone (no table) against glibc's own POSIX TZ parser. */
static void test_glibc_rules(void)
{
    static const char *rules[] = {
        "XST5XDT,M3.2.0,M11.1.0",
        "XST-10XDT,M10.1.0,M4.1.0/3",
        "XST5XDT,J60/2,J300/2",
        "XST5XDT,59,299",
        "<-0330>3:30<-0200>2,J60/1:30:15,300/-1",
        "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
        "XST-2XDT,M3.4.4/26,M10.5.0",
        "XST-2XDT,M3.4.4/50,M10.4.4/50",
        "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
        "<-04>4<-03>,M9.1.6/24,M4.1.6/24",
        "XST-1GMT0,M10.5.0,M3.5.0/1",
        "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
        "<+0530>-5:30",
    };
    int64_t from = sec_of("1970-01-01T00:00:00Z"), to = sec_of("2100-01-01T00:00:00Z");

    for (size_t i = 0; i < TF_ARRAY_LEN(rules); i++) {
        struct tf_tz *tz = NULL;
        enum tf_rc rc = parse_footer(rules[i], &tz);

        CHECK(rc == TF_OK, "footer %s: %s", rules[i], tf_rc_str(rc));
        check_against_glibc(rules[i], rules[i], tz, from, to, 6 * 3600 + 7 * 60 + 13);
        tf_tz_free(tz);
    }
}

/* Every zone in zone1970.tab, 1970..2100, coarser (every ~2 days plus every change). */
static void test_glibc_all_zones(void)
{
    FILE *f = fopen(ZONEINFO "/zone1970.tab", "r");
    char line[512], first[128] = "";
    int64_t from = sec_of("1970-01-01T00:00:00Z"), to = sec_of("2100-01-01T00:00:00Z");
    int zones = 0, bad_zones = 0;

    CHECK(f != NULL, "open zone1970.tab");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *name, *end;
        const struct tf_tz *tz = NULL;
        int64_t first_bad = 0;
        int changes = 0;

        if (line[0] == '#')
            continue;
        name = strchr(line, '\t');
        name = name ? strchr(name + 1, '\t') : NULL;
        if (!name)
            continue;
        name++;
        end = name + strcspn(name, "\t\n");
        *end = '\0';
        zones++;
        if (tf_tz_get(name, &tz) != TF_OK ||
            cross_check(tz, name, from, to, 2 * 86400 + 3 * 3600 + 11, &first_bad, &changes)) {
            if (!bad_zones++)
                snprintf(first, sizeof(first), "%s", name);
        }
    }
    fclose(f);
    CHECK(zones > 250 && bad_zones == 0, "%d zones vs glibc: %d differ (first %s)", zones,
          bad_zones, first);
}

/* ---- threads -------------------------------------------------------------------------------- */

static const char *thread_zones[] = {"America/New_York", "Europe/London", "Asia/Kolkata",
                                     "Australia/Sydney", "Asia/Tokyo",    "Europe/Paris"};

struct thread_arg {
    const struct tf_tz *seen[TF_ARRAY_LEN(thread_zones)];
    int errors;
};

static void *thread_main(void *ud)
{
    struct thread_arg *arg = ud;

    for (int i = 0; i < 200; i++) {
        for (size_t z = 0; z < TF_ARRAY_LEN(thread_zones); z++) {
            const struct tf_tz *tz = NULL;
            int64_t u = 0;

            if (tf_tz_get(thread_zones[z], &tz) != TF_OK) {
                arg->errors++;
                continue;
            }
            if (arg->seen[z] && arg->seen[z] != tz)
                arg->errors++;
            arg->seen[z] = tz;
            if (tf_tz_local_to_utc(tz, 1700000000 + i * 3600, &u) != TF_OK)
                arg->errors++;
        }
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[8];
    struct thread_arg args[8];
    int errors = 0, started = 0;

    tf_tz_cleanup(); /* so the threads race to load */
    memset(args, 0, sizeof(args));
    for (int i = 0; i < 8; i++)
        started += pthread_create(&th[i], NULL, thread_main, &args[i]) == 0;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < started; i++) {
        errors += args[i].errors;
        for (size_t z = 0; z < TF_ARRAY_LEN(thread_zones); z++)
            errors += args[i].seen[z] != args[0].seen[z];
    }
    CHECK(started == 8 && errors == 0, "8 threads: %d started, %d errors", started, errors);
}

int main(void)
{
    CHECK(mkdtemp(tmp_root) != NULL, "temp dir");
    unsetenv("TZDIR");
    test_tzdir(); /* first: TZDIR is read by the first tf_tz_get */
    test_names();
    test_utc();
    test_known_instants();
    test_local_to_utc();
    test_round_trips();
    test_us_eastern();
    test_footer_rules();
    test_tables();
    test_damaged_files();
    test_threads();
    test_glibc_zones();
    test_glibc_rules();
    test_glibc_all_zones();
    tf_tz_cleanup();
    rmdir(tmp_root);
    return check_summary();
}
