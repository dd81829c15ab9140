/*
 * cron.c - five-field cron expressions and the schedule of a job: what
 * PUT /v1/jobs accepts, and when the next tick is. No I/O but the zone
 * database (tf/tz.h).
 */
#include "schedule.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tf/time.h"

#define CRON_MAX_LEN 256

static const char *const field_names[5] = {"minute", "hour", "day of month", "month",
                                           "day of week"};
static const int field_lo[5] = {0, 0, 1, 1, 0};
static const int field_hi[5] = {59, 23, 31, 12, 7};

static const char *const month_names[12] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[7] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct {
    const char *name;
    const char *fields;
} shorthands[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

/* Reads a number or (months, weekdays) a name at *p; -1 when there is neither. */
static int read_value(const char **p, int field)
{
    const char *s = *p;
    int v = 0;

    if (isdigit((unsigned char)*s)) {
        int digits = 0;

        while (isdigit((unsigned char)*s) && digits < 4) {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        if (isdigit((unsigned char)*s))
            return -1;
        *p = s;
        return v;
    }
    if (field == 3 || field == 4) {
        const char *const *names = field == 3 ? month_names : day_names;
        int n = field == 3 ? 12 : 7;

        for (int i = 0; i < n; i++) {
            if (strncasecmp(s, names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
                *p = s + 3;
                return field == 3 ? i + 1 : i;
            }
        }
    }
    return -1;
}

/* Parses one field (text of len bytes) into the bits of *bits. */
static enum tf_rc parse_field(const char *text, size_t len, int field, uint64_t *bits, int *any,
                              char *err, size_t errlen)
{
    char buf[CRON_MAX_LEN + 1];
    const int lo = field_lo[field], hi = field_hi[field];
    const char *name = field_names[field];
    char *save = NULL;

    memcpy(buf, text, len);
    buf[len] = '\0';
    if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,"))
        goto bad;
    *bits = 0;
    *any = strcmp(buf, "*") == 0 || strncmp(buf, "*/", 2) == 0;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        const char *p = item;
        int a, b, step = 1;

        if (*p == '*') {
            a = lo;
            b = field == 4 ? 6 : hi;
            p++;
        } else {
            a = read_value(&p, field);
            if (a < 0)
                goto bad;
            b = a;
            if (*p == '-') {
                p++;
                b = read_value(&p, field);
                if (b < 0)
                    goto bad;
            }
            if (a < lo || a > hi || b < lo || b > hi) {
                snprintf(err, errlen, "cron field %d (%s): %.32s is outside %d-%d", field + 1, name,
                         item, lo, hi);
                return TF_ERR_INVALID;
            }
            if (b < a) {
                snprintf(err, errlen, "cron field %d (%s): the range %.32s runs backwards",
                         field + 1, name, item);
                return TF_ERR_INVALID;
            }
        }
        if (*p == '/') {
            p++;
            step = read_value(&p, -1);
            if (step < 1 || step > hi) {
                snprintf(err, errlen, "cron field %d (%s): the step in %.32s must be 1 to %d",
                         field + 1, name, item, hi);
                return TF_ERR_INVALID;
            }
            if (a == b && item[0] != '*')
                b = field == 4 ? 6 : hi; /* "5/15": from 5 to the end */
        }
        if (*p != '\0')
            goto bad;
        for (int v = a; v <= b; v += step)
            *bits |= 1ULL << (field == 4 && v == 7 ? 0 : v);
    }
    if (*bits == 0)
        goto bad;
    return TF_OK;
bad:
    snprintf(err, errlen,
             "cron field %d (%s): cannot read %.*s (use *, a number, a range a-b, a list a,b"
             " and /step)",
             field + 1, name, (int)(len > 32 ? 32 : len), text);
    return TF_ERR_INVALID;
}

enum tf_rc extract_cron_parse(const char *expr, struct extract_cron *out, char *err, size_t errlen)
{
    const char *start[6], *p;
    size_t len[5];
    int n = 0;
    uint64_t bits[5];
    int any[5];

    memset(out, 0, sizeof(*out));
    if (!expr || !*expr || strlen(expr) > CRON_MAX_LEN) {
        snprintf(err, errlen, "cron must be a five-field expression of at most %d characters",
                 CRON_MAX_LEN);
        return TF_ERR_INVALID;
    }
    if (expr[0] == '@') {
        for (size_t i = 0; i < TF_ARRAY_LEN(shorthands); i++)
            if (strcmp(expr, shorthands[i].name) == 0)
                return extract_cron_parse(shorthands[i].fields, out, err, errlen);
        snprintf(err, errlen,
                 "cron: unknown shorthand %.32s (@hourly, @daily, @weekly, @monthly, @yearly)",
                 expr);
        return TF_ERR_INVALID;
    }
    for (p = expr; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n == 5) {
            snprintf(err, errlen,
                     "cron has more than five fields (minute hour day-of-month month"
                     " day-of-week; seconds and years are not supported)");
            return TF_ERR_INVALID;
        }
        start[n] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        len[n] = (size_t)(p - start[n]);
        n++;
    }
    if (n != 5) {
        snprintf(err, errlen,
                 "cron has %d field%s; it needs five: minute hour day-of-month month day-of-week",
                 n, n == 1 ? "" : "s");
        return TF_ERR_INVALID;
    }
    for (int f = 0; f < 5; f++) {
        enum tf_rc rc = parse_field(start[f], len[f], f, &bits[f], &any[f], err, errlen);

        if (rc != TF_OK)
            return rc;
    }
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->mday = (uint32_t)bits[2];
    out->month = (uint32_t)bits[3];
    out->wday = (uint32_t)bits[4];
    out->mday_any = any[2];
    out->wday_any = any[4];
    return TF_OK;
}

static int day_matches(const struct extract_cron *c, int64_t day)
{
    int y, m, d;
    int mday_ok, wday_ok;

    tf_civil_from_days(day, &y, &m, &d);
    if (!(c->month >> m & 1))
        return 0;
    mday_ok = (int)(c->mday >> d & 1);
    wday_ok = (int)(c->wday >> tf_weekday(day) & 1);
    if (!c->mday_any && !c->wday_any)
        return mday_ok || wday_ok;
    return mday_ok && wday_ok;
}

int64_t extract_cron_next(const struct extract_cron *c, const struct tf_tz *tz, int64_t after)
{
    /* Walks UTC minutes, reading each on the zone's clock; a local day or
     * hour that cannot match is skipped whole. */
    int64_t t = tf_floor_div(after, 60) * 60 + 60;
    const int64_t end = after + (int64_t)EXTRACT_CRON_HORIZON_DAYS * 86400;

    while (t <= end) {
        int64_t local = t + (tz ? tf_tz_offset(tz, t) : 0);
        int64_t day = tf_floor_div(local, 86400);
        int64_t sec = local - day * 86400;
        int hour = (int)(sec / 3600), minute = (int)(sec % 3600 / 60);

        if (!day_matches(c, day)) {
            t += 86400 - sec;
            continue;
        }
        if (!(c->hour >> hour & 1)) {
            t += 3600 - sec % 3600;
            continue;
        }
        if (c->minute >> minute & 1)
            return t;
        t += 60 - sec % 60;
    }
    return -1;
}

enum tf_rc extract_schedule_parse(const cJSON *spec, int64_t bar, struct extract_schedule *out,
                                  char *err, size_t errlen)
{
    const cJSON *every, *cron, *zone, *it;
    enum tf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(spec)) {
        snprintf(err, errlen,
                 "schedule must be an object: {\"every_seconds\": N} or {\"cron\": \"...\","
                 " \"zone\": \"...\"}");
        return TF_ERR_INVALID;
    }
    cJSON_ArrayForEach(it, spec)
    {
        if (strcmp(it->string, "every_seconds") != 0 && strcmp(it->string, "cron") != 0 &&
            strcmp(it->string, "zone") != 0) {
            snprintf(err, errlen, "schedule: unknown field %.64s (every_seconds, cron, zone)",
                     it->string);
            return TF_ERR_INVALID;
        }
    }
    every = cJSON_GetObjectItemCaseSensitive(spec, "every_seconds");
    cron = cJSON_GetObjectItemCaseSensitive(spec, "cron");
    zone = cJSON_GetObjectItemCaseSensitive(spec, "zone");
    if (!every == !cron) {
        snprintf(err, errlen, "schedule needs exactly one of every_seconds and cron");
        return TF_ERR_INVALID;
    }
    if (every) {
        double v = every->valuedouble;

        if (zone) {
            snprintf(err, errlen, "schedule: zone goes with cron, not with every_seconds");
            return TF_ERR_INVALID;
        }
        /* The range first: a number past long's makes the cast undefined. */
        if (!cJSON_IsNumber(every) || v < (double)bar || v > (double)EXTRACT_SCHEDULE_MAX_SECONDS ||
            v != (double)(long)v) {
            snprintf(err, errlen,
                     "schedule.every_seconds must be a whole number from %lld (one bar of the"
                     " job) to %ld (31 days, the longest window)",
                     (long long)bar, EXTRACT_SCHEDULE_MAX_SECONDS);
            return TF_ERR_INVALID;
        }
        out->every_seconds = (long)v;
        return TF_OK;
    }
    if (!cJSON_IsString(cron)) {
        snprintf(err, errlen, "schedule.cron must be a string such as \"*/20 * * * *\"");
        return TF_ERR_INVALID;
    }
    rc = extract_cron_parse(cron->valuestring, &out->cron, err, errlen);
    if (rc != TF_OK)
        return rc;
    if (zone) {
        if (!cJSON_IsString(zone)) {
            snprintf(err, errlen, "schedule.zone must be a string such as \"America/New_York\"");
            return TF_ERR_INVALID;
        }
        rc = tf_tz_get(zone->valuestring, &out->tz);
        if (rc != TF_OK) {
            snprintf(err, errlen,
                     "schedule.zone: no time zone %.64s in the zone database (an IANA name"
                     " such as America/New_York or UTC)",
                     zone->valuestring);
            return TF_ERR_INVALID;
        }
    }
    if (extract_cron_next(&out->cron, out->tz, tf_time_now()) < 0) {
        snprintf(err, errlen, "schedule.cron %.64s never fires (no such date in five years)",
                 cron->valuestring);
        return TF_ERR_INVALID;
    }
    return TF_OK;
}

int64_t extract_schedule_next(const struct extract_schedule *s, int64_t after)
{
    if (s->every_seconds > 0)
        return tf_floor_div(after, s->every_seconds) * s->every_seconds + s->every_seconds;
    return extract_cron_next(&s->cron, s->tz, after);
}
