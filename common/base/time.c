/*
 * time.c - calendar arithmetic (days from civil, after H. Hinnant's
 * public-domain algorithm) and ISO-8601. New York's clock is eastern.c.
 */
#include "tf/time.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t tf_days_from_civil(int y, int m, int d)
{
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

void tf_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int tf_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 ? 28 + leap : dim[m - 1];
}

int64_t tf_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int tf_time_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

enum tf_rc tf_time_parse(const char *s, int64_t *out_sec)
{
    const char *p = s;
    int y, mo, d, hh = 0, mi = 0, ss = 0;
    int64_t off = 0;

    if (!tf_time_digits(&p, 4, &y) || *p++ != '-' || !tf_time_digits(&p, 2, &mo) || *p++ != '-' ||
        !tf_time_digits(&p, 2, &d))
        return TF_ERR_INVALID;
    if (y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return TF_ERR_INVALID;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!tf_time_digits(&p, 2, &hh) || *p++ != ':' || !tf_time_digits(&p, 2, &mi))
            return TF_ERR_INVALID;
        if (*p == ':') {
            p++;
            if (!tf_time_digits(&p, 2, &ss))
                return TF_ERR_INVALID;
            if (*p == '.') { /* RFC 3339's time-secfrac: read, then truncated */
                p++;
                if (!isdigit((unsigned char)*p))
                    return TF_ERR_INVALID;
                while (isdigit((unsigned char)*p))
                    p++;
            }
        }
        if (hh > 23 || mi > 59 || ss > 59)
            return TF_ERR_INVALID;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om;
            p++;
            if (!tf_time_digits(&p, 2, &oh))
                return TF_ERR_INVALID;
            if (*p == ':')
                p++;
            if (!tf_time_digits(&p, 2, &om) || oh > 23 || om > 59)
                return TF_ERR_INVALID;
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p)
        return TF_ERR_INVALID;
    *out_sec = tf_days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off;
    return TF_OK;
}

/* "YYYY-MM-DD<sep>HH:MM:SS<zone>" of epoch seconds. */
static void format_datetime(int64_t sec, char sep, const char *zone, char *out, size_t outlen)
{
    int64_t days = tf_floor_div(sec, 86400);
    int64_t rem = sec - days * 86400;
    int y, m, d;

    tf_civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%04d-%02d-%02d%c%02d:%02d:%02d%s", y, m, d, sep, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), zone);
}

void tf_time_format(int64_t sec, char *out, size_t outlen)
{
    format_datetime(sec, 'T', "Z", out, outlen);
}

void tf_time_format_wall(int64_t sec, char *out, size_t outlen)
{
    format_datetime(sec, ' ', "", out, outlen);
}

void tf_time_format_date(int64_t sec, char *out, size_t outlen)
{
    int64_t days = tf_floor_div(sec, 86400);
    int y, m, d;

    tf_civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%04d-%02d-%02d", y, m, d);
}

int64_t tf_timespan_seconds(const char *timespan, long multiplier)
{
    static const struct {
        const char *name;
        int64_t sec;
    } spans[] = {{"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400}, {"week", 604800}};

    for (size_t i = 0; i < TF_ARRAY_LEN(spans); i++) {
        if (strcmp(timespan, spans[i].name) == 0)
            return spans[i].sec * multiplier;
    }
    return 0;
}

int64_t tf_time_now(void)
{
    return (int64_t)time(NULL);
}

void tf_time_deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int64_t tf_time_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
