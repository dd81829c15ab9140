/*
 * calendar.c - trading calendars (API in tf/calendar.h).
 *
 * Owns the NYSE holiday and early-close rules, computed per year from the
 * date arithmetic of tf/time.h (no table, no file), the session rules of
 * the three markets, and the count of expected bars in a window. That count
 * walks the session intervals that meet the window (one per trading day for
 * equities, one per week for forex, one for crypto) and, inside each, the
 * buckets they touch, so its cost is the number of buckets, not of minutes.
 */
#include "tf/calendar.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tf/time.h"

#define SEC_PER_MIN  60
#define SEC_PER_HOUR 3600
#define SEC_PER_DAY  86400
#define MAX_MULT     1000000L
/* The instants the calendar works in: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define MIN_SEC (-62135596800LL)
#define MAX_SEC 253402300799LL

/* ---- markets ---------------------------------------------------------- */

/* 1 when s (of length n) names, in any case, a crypto base that marks "BASE/QUOTE" as crypto. */
static int is_crypto_base(const char *s, size_t n)
{
    static const char *const bases[] = {"BTC", "ETH", "SOL", "XRP", "DOGE", "LTC"};

    for (size_t i = 0; i < TF_ARRAY_LEN(bases); i++) {
        if (strlen(bases[i]) == n && strncasecmp(s, bases[i], n) == 0)
            return 1;
    }
    return 0;
}

enum tf_market tf_market_of(const char *ticker)
{
    const char *slash;

    if (!ticker)
        return TF_MARKET_US_EQUITY;
    if (strncmp(ticker, "X:", 2) == 0)
        return TF_MARKET_CRYPTO;
    if (strncmp(ticker, "C:", 2) == 0)
        return TF_MARKET_FOREX;
    slash = strchr(ticker, '/');
    if (!slash)
        return TF_MARKET_US_EQUITY;
    return is_crypto_base(ticker, (size_t)(slash - ticker)) ? TF_MARKET_CRYPTO : TF_MARKET_FOREX;
}

const char *tf_market_name(enum tf_market m)
{
    switch (m) {
    case TF_MARKET_US_EQUITY:
        return "us_equity";
    case TF_MARKET_CRYPTO:
        return "crypto";
    case TF_MARKET_FOREX:
        return "forex";
    }
    return "unknown";
}

/* ---- the NYSE calendar ------------------------------------------------ */

/* Day number of the n-th (1-based) given weekday (0 = Sunday) of a month. */
static int64_t nth_weekday(int y, int m, int wd, int n)
{
    int64_t first = tf_days_from_civil(y, m, 1);

    return first + (wd - tf_weekday(first) + 7) % 7 + 7 * (n - 1);
}

/* Day number of the last given weekday of a month. */
static int64_t last_weekday(int y, int m, int wd)
{
    int64_t last = tf_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) - 1;

    return last - (tf_weekday(last) - wd + 7) % 7;
}

/* Day number of Easter Sunday: the Gregorian computus (the "anonymous" algorithm). */
static int64_t easter(int y)
{
    int a = y % 19, b = y / 100, c = y % 100;
    int d = b / 4, e = b % 4;
    int f = (b + 8) / 25;
    int g = (b - f + 1) / 3;
    int h = (19 * a + b - d - g + 15) % 30;
    int i = c / 4, k = c % 4;
    int l = (32 + 2 * e + 2 * i - h - k) % 7;
    int mm = (a + 11 * h + 22 * l) / 451;
    int month = (h + l - 7 * mm + 114) / 31;
    int day = (h + l - 7 * mm + 114) % 31 + 1;

    return tf_days_from_civil(y, month, day);
}

/* A fixed-date holiday moved off the weekend: Saturday to Friday, Sunday to Monday. */
static int64_t observed(int64_t days)
{
    switch (tf_weekday(days)) {
    case 6:
        return days - 1;
    case 0:
        return days + 1;
    default:
        return days;
    }
}

/* 1 when day number `days` of year y is an NYSE holiday (as observed). */
static int nyse_holiday(int y, int64_t days)
{
    int64_t new_year = tf_days_from_civil(y, 1, 1);
    int64_t list[10];
    size_t n = 0;

    /* New Year's Day on a Saturday is not observed on December 31. */
    if (tf_weekday(new_year) != 6)
        list[n++] = observed(new_year);
    list[n++] = nth_weekday(y, 1, 1, 3); /* Martin Luther King Jr. Day */
    list[n++] = nth_weekday(y, 2, 1, 3); /* Washington's Birthday */
    list[n++] = easter(y) - 2;           /* Good Friday */
    list[n++] = last_weekday(y, 5, 1);   /* Memorial Day */
    if (y >= 2022)                       /* Juneteenth */
        list[n++] = observed(tf_days_from_civil(y, 6, 19));
    list[n++] = observed(tf_days_from_civil(y, 7, 4));   /* Independence Day */
    list[n++] = nth_weekday(y, 9, 1, 1);                 /* Labor Day */
    list[n++] = nth_weekday(y, 11, 4, 4);                /* Thanksgiving */
    list[n++] = observed(tf_days_from_civil(y, 12, 25)); /* Christmas */
    for (size_t i = 0; i < n; i++) {
        if (list[i] == days)
            return 1;
    }
    return 0;
}

/* 1 when `days`, a weekday of year y that is not a holiday, closes at 13:00. */
static int nyse_early_close(int y, int64_t days)
{
    return days == tf_days_from_civil(y, 7, 3) || days == nth_weekday(y, 11, 4, 4) + 1 ||
           days == tf_days_from_civil(y, 12, 24);
}

int tf_cal_us_session(int year, int month, int day, int64_t *open_s, int64_t *close_s)
{
    int64_t days;
    int wd, y, m, d;

    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31)
        return 0;
    days = tf_days_from_civil(year, month, day);
    tf_civil_from_days(days, &y, &m, &d);
    if (y != year || m != month || d != day) /* February 30 and the like */
        return 0;
    wd = tf_weekday(days);
    if (wd == 0 || wd == 6 || nyse_holiday(year, days))
        return 0;
    if (open_s)
        *open_s = tf_time_us_eastern_to_utc(year, month, day, 9, 30);
    if (close_s)
        *close_s =
            tf_time_us_eastern_to_utc(year, month, day, nyse_early_close(year, days) ? 13 : 16, 0);
    return 1;
}

/* ---- sessions --------------------------------------------------------- */

/* The New York calendar day number of the instant t. */
static int64_t ny_day(int64_t t)
{
    return tf_floor_div(t + tf_time_us_eastern_offset(t), SEC_PER_DAY);
}

/* The UTC instant of hh:00 New York time on day number days. */
static int64_t ny_time(int64_t days, int hh)
{
    int y, m, d;

    tf_civil_from_days(days, &y, &m, &d);
    return tf_time_us_eastern_to_utc(y, m, d, hh, 0);
}

static int forex_open(int64_t t)
{
    int64_t local = t + tf_time_us_eastern_offset(t);
    int64_t days = tf_floor_div(local, SEC_PER_DAY);
    int64_t minute = (local - days * SEC_PER_DAY) / SEC_PER_MIN;

    switch (tf_weekday(days)) {
    case 6:
        return 0;
    case 5:
        return minute < 17 * 60;
    case 0:
        return minute >= 17 * 60;
    default:
        return 1;
    }
}

int tf_cal_minute_open(enum tf_market m, int64_t minute_s)
{
    int64_t open, close;
    int y, mo, d;

    if (minute_s < MIN_SEC || minute_s > MAX_SEC)
        return 0;
    switch (m) {
    case TF_MARKET_US_EQUITY:
        tf_civil_from_days(ny_day(minute_s), &y, &mo, &d);
        return tf_cal_us_session(y, mo, d, &open, &close) && minute_s >= open && minute_s < close;
    case TF_MARKET_CRYPTO:
        return 1;
    case TF_MARKET_FOREX:
        return forex_open(minute_s);
    }
    return 0;
}

/*
 * The first session interval [*a, *b) of market m that ends after t, and
 * starts before limit. Returns 0 when there is none before limit.
 */
static int next_session(enum tf_market m, int64_t t, int64_t limit, int64_t *a, int64_t *b)
{
    int64_t days = ny_day(t) - 1; /* an interval that began the day before may still run */

    switch (m) {
    case TF_MARKET_CRYPTO:
        *a = t;
        *b = limit;
        return t < limit;
    case TF_MARKET_FOREX:
        days -= tf_weekday(days); /* the Sunday on or before */
        for (;; days += 7) {
            *a = ny_time(days, 17);
            *b = ny_time(days + 5, 17);
            if (*a >= limit)
                return 0;
            if (*b > t)
                return 1;
        }
    case TF_MARKET_US_EQUITY:
        for (;; days++) {
            int y, mo, d;

            if (ny_time(days, 0) >= limit)
                return 0;
            tf_civil_from_days(days, &y, &mo, &d);
            if (!tf_cal_us_session(y, mo, d, a, b) || *b <= t)
                continue;
            return *a < limit;
        }
    }
    return 0;
}

int tf_span_parse(const char *timespan, enum tf_span *out)
{
    if (!timespan)
        return 0;
    if (strcmp(timespan, "minute") == 0)
        *out = TF_SPAN_MINUTE;
    else if (strcmp(timespan, "hour") == 0)
        *out = TF_SPAN_HOUR;
    else if (strcmp(timespan, "day") == 0)
        *out = TF_SPAN_DAY;
    else
        return 0;
    return 1;
}

/* The bucket [*start, *end) holding t (marketsim's ms_gen_bucket() in seconds). */
static void bucket(int64_t t, long mult, enum tf_span span, int64_t *start, int64_t *end)
{
    int64_t size;

    if (span == TF_SPAN_DAY) {
        int64_t first = tf_floor_div(ny_day(t), mult) * mult;

        *start = ny_time(first, 0);
        *end = ny_time(first + mult, 0);
        return;
    }
    size = (span == TF_SPAN_MINUTE ? SEC_PER_MIN : SEC_PER_HOUR) * (int64_t)mult;
    *start = tf_floor_div(t, size) * size;
    *end = *start + size;
}

long long tf_cal_expected_bars(enum tf_market m, long multiplier, const char *timespan,
                               int64_t from_s, int64_t to_s)
{
    enum tf_span span;
    int64_t start, end, hi, t, a, b;
    int64_t last = 0;
    int counted = 0;
    long long count = 0;

    if ((m != TF_MARKET_US_EQUITY && m != TF_MARKET_CRYPTO && m != TF_MARKET_FOREX) ||
        multiplier < 1 || multiplier > MAX_MULT || !tf_span_parse(timespan, &span))
        return -1;
    if (from_s < MIN_SEC)
        from_s = MIN_SEC;
    if (to_s > MAX_SEC)
        to_s = MAX_SEC;
    if (to_s <= from_s)
        return 0;
    /* Minutes that can belong to a counted bucket lie in [from_s, hi). */
    bucket(to_s - 1, multiplier, span, &start, &hi);
    t = from_s;
    while (t < hi && next_session(m, t, hi, &a, &b)) {
        int64_t stop = b < hi ? b : hi;
        int64_t minute = a > t ? a : t;

        /* Session minutes start on whole minutes; a window edge may not. */
        minute = tf_floor_div(minute + SEC_PER_MIN - 1, SEC_PER_MIN) * SEC_PER_MIN;
        while (minute < stop) {
            bucket(minute, multiplier, span, &start, &end);
            if (start >= from_s && start < to_s && !(counted && start == last)) {
                count++;
                last = start;
                counted = 1;
            }
            minute = end;
        }
        /* Every minute before `minute` belongs to a bucket already seen. */
        t = minute;
    }
    return count;
}

void tf_cal_trading_day(enum tf_market m, int64_t ts, char out[11])
{
    int64_t days;
    int y, mo, d;

    switch (m) {
    case TF_MARKET_CRYPTO:
        days = tf_floor_div(ts, SEC_PER_DAY);
        break;
    case TF_MARKET_FOREX:
        days = tf_floor_div(ts + tf_time_us_eastern_offset(ts) + 7 * SEC_PER_HOUR, SEC_PER_DAY);
        break;
    default:
        days = ny_day(ts);
        break;
    }
    tf_civil_from_days(days, &y, &mo, &d);
    snprintf(out, 11, "%04d-%02d-%02d", y, mo, d);
}
