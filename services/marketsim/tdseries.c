/*
 * tdseries.c - Twelve Data's time_series without I/O (API in tdseries.h).
 *
 * Owns no state. Bars come from the generator's minute bars, a UTC day at
 * a time from the newest day of the window backwards, so a request costs
 * in proportion to the bars it returns (outputsize caps it), not to its
 * window. Every bar of every interval lies inside one UTC day (an equity
 * session is 13:30Z-21:00Z at most; crypto and forex bars count from 00:00
 * UTC and every interval divides a day), so a day rolls up on its own.
 */
#include "tdseries.h"

#include "tf/json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gen_internal.h"
#include "tf/time.h"

#define MS_PER_MINUTE 60000LL
#define MS_PER_DAY    86400000LL
#define SYMBOL_MAX    32

/* clang-format off */
static const struct marketsim_td_interval intervals[] = {
    {"1min", 1},   {"5min", 5}, {"15min", 15}, {"30min", 30}, {"45min", 45},
    {"1h",   60},  {"2h",  120}, {"4h",   240}, {"1day", 1440},
};

/* Names as Twelve Data's meta spells them (currency_base, currency_quote). */
static const struct {
    const char *code;
    const char *name;
} currency_names[] = {
    {"USD", "US Dollar"},         {"EUR", "Euro"},               {"GBP", "British Pound"},
    {"JPY", "Japanese Yen"},      {"CHF", "Swiss Franc"},        {"CAD", "Canadian Dollar"},
    {"AUD", "Australian Dollar"}, {"NZD", "New Zealand Dollar"}, {"SEK", "Swedish Krona"},
    {"NOK", "Norwegian Krone"},   {"DKK", "Danish Krone"},       {"CNY", "Chinese Yuan Renminbi"},
    {"HKD", "Hong Kong Dollar"},  {"SGD", "Singapore Dollar"},   {"MXN", "Mexican Peso"},
    {"ZAR", "South African Rand"},{"TRY", "Turkish Lira"},       {"INR", "Indian Rupee"},
    {"BTC", "Bitcoin"},           {"ETH", "Ethereum"},           {"SOL", "Solana"},
    {"XRP", "XRP"},               {"DOGE", "Dogecoin"},          {"LTC", "Litecoin"},
    {"USDT", "Tether USDt"},      {"USDC", "USD Coin"},
};
/* clang-format on */

const struct marketsim_td_interval *marketsim_td_interval_get(const char *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
        if (strcasecmp(s, intervals[i].name) == 0)
            return &intervals[i];
    }
    return NULL;
}

enum marketsim_td_symbol_rc marketsim_td_symbol_parse(const char *raw,
                                                      struct marketsim_td_symbol *out)
{
    size_t n = raw ? strlen(raw) : 0;
    const char *slash;
    const char *colon;
    size_t base_len = 0;

    memset(out, 0, sizeof(*out));
    if (n == 0)
        return MARKETSIM_TD_SYMBOL_MISSING;
    if (strchr(raw, ','))
        return MARKETSIM_TD_SYMBOL_BATCH;
    if (n > SYMBOL_MAX)
        return MARKETSIM_TD_SYMBOL_UNKNOWN;
    slash = strchr(raw, '/');
    colon = strchr(raw, ':');
    if (slash && colon)
        return MARKETSIM_TD_SYMBOL_UNKNOWN;
    if (slash) {
        base_len = (size_t)(slash - raw);
        if (base_len == 0 || base_len >= sizeof(out->base) || n - base_len - 1 == 0 ||
            n - base_len - 1 >= sizeof(out->quote))
            return MARKETSIM_TD_SYMBOL_UNKNOWN;
    }
    /* "SYMBOL:EXCHANGE"; a one-letter prefix is Polygon's ("X:BTCUSD"), not Twelve Data's. */
    if (colon && ((size_t)(colon - raw) < 2 || n - (size_t)(colon - raw) - 1 < 2 ||
                  n - (size_t)(colon - raw) - 1 >= sizeof(out->exchange)))
        return MARKETSIM_TD_SYMBOL_UNKNOWN;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        int sep = raw + i == slash || raw + i == colon;
        int ok = isalnum(c) || sep || (!slash && (!colon || raw + i < colon) && c == '.');

        if (!ok)
            return MARKETSIM_TD_SYMBOL_UNKNOWN;
        out->symbol[i] = (char)toupper(c);
    }
    out->symbol[n] = '\0';
    if (strncmp(out->symbol, "ZZ", 2) == 0)
        return MARKETSIM_TD_SYMBOL_UNKNOWN;
    if (slash) {
        memcpy(out->base, out->symbol, base_len);
        out->base[base_len] = '\0';
        snprintf(out->quote, sizeof(out->quote), "%s", out->symbol + base_len + 1);
    }
    if (colon)
        snprintf(out->exchange, sizeof(out->exchange), "%s", out->symbol + (colon - raw) + 1);
    out->asset = ms_gen_asset(out->symbol);
    if (!ms_gen_canonical(out->symbol, out->canon, sizeof(out->canon)))
        return MARKETSIM_TD_SYMBOL_UNKNOWN;
    return MARKETSIM_TD_SYMBOL_OK;
}

enum marketsim_td_zone marketsim_td_exchange_zone(enum ms_asset asset)
{
    return asset == MS_ASSET_EQUITY ? MARKETSIM_TD_NEW_YORK : MARKETSIM_TD_UTC;
}

int marketsim_td_parse_date(const char *s, enum marketsim_td_zone zone, int64_t *out_ms)
{
    const char *p = s;
    int y, mo, d, hh = 0, mi = 0, ss = 0;
    int y2, mo2, d2;
    int64_t days;

    if (!s || !tf_time_digits(&p, 4, &y) || *p++ != '-' || !tf_time_digits(&p, 2, &mo) ||
        *p++ != '-' || !tf_time_digits(&p, 2, &d))
        return 0;
    if (y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    days = tf_days_from_civil(y, mo, d);
    tf_civil_from_days(days, &y2, &mo2, &d2);
    if (y2 != y || mo2 != mo || d2 != d) /* 2024-02-30 */
        return 0;
    if (*p == ' ' || *p == 'T') {
        p++;
        if (!tf_time_digits(&p, 2, &hh) || *p++ != ':' || !tf_time_digits(&p, 2, &mi))
            return 0;
        if (*p == ':') {
            p++;
            if (!tf_time_digits(&p, 2, &ss))
                return 0;
        }
        if (hh > 23 || mi > 59 || ss > 59)
            return 0;
    }
    if (*p)
        return 0;
    if (zone == MARKETSIM_TD_NEW_YORK)
        *out_ms = (tf_time_us_eastern_to_utc(y, mo, d, hh, mi) + ss) * 1000;
    else
        *out_ms = (days * 86400 + hh * 3600 + mi * 60 + ss) * 1000;
    return 1;
}

void marketsim_td_format_datetime(int64_t t_ms, enum marketsim_td_zone zone, int date_only,
                                  char *out, size_t outlen)
{
    int64_t sec = tf_floor_div(t_ms, 1000);

    if (zone == MARKETSIM_TD_NEW_YORK)
        sec += tf_time_us_eastern_offset(sec);
    if (date_only)
        tf_time_format_date(sec, out, outlen);
    else
        tf_time_format_wall(sec, out, outlen);
}

void marketsim_td_format_price(double x, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.4f0", x);
}

int64_t marketsim_td_bar_start(const struct marketsim_td_query *q, int64_t t_ms)
{
    int64_t size = (int64_t)q->iv->minutes * MS_PER_MINUTE;
    int64_t origin;

    if (q->sym.asset != MS_ASSET_EQUITY) {
        origin = tf_floor_div(t_ms, MS_PER_DAY) * MS_PER_DAY;
    } else {
        int64_t day = ms_gen_ny_day(t_ms);
        int y, m, d;

        origin = ms_gen_ny_midnight_ms(day);
        if (q->iv->minutes == 1440)
            return origin;
        tf_civil_from_days(day, &y, &m, &d);
        /* Minutes before the open (never session bars) count from midnight. */
        if (t_ms >= tf_time_us_eastern_to_utc(y, m, d, 9, 30) * 1000)
            origin = tf_time_us_eastern_to_utc(y, m, d, 9, 30) * 1000;
    }
    return origin + tf_floor_div(t_ms - origin, size) * size;
}

/* Rolls the ascending minute bars of one UTC day into bars of q's interval. */
static size_t roll_day(const struct marketsim_td_query *q, const struct ms_bar *mins, size_t n,
                       struct ms_bar *out)
{
    size_t count = 0;
    struct ms_bar *cur = NULL;

    for (size_t i = 0; i < n; i++) {
        const struct ms_bar *b = &mins[i];
        int64_t start = marketsim_td_bar_start(q, b->t_ms);

        if (!cur || cur->t_ms != start) {
            cur = &out[count++];
            *cur = *b;
            cur->t_ms = start;
            cur->vw = 0.0;
            continue;
        }
        ms_gen_merge(cur, b);
    }
    return count;
}

enum tf_rc marketsim_td_series(uint64_t seed, const struct marketsim_td_query *q,
                               struct ms_bar **out, size_t *n)
{
    enum tf_rc rc = TF_OK;
    struct ms_bar *desc = NULL; /* owned: newest first, reversed into *out */
    struct ms_bar *day = NULL;  /* owned: one day's bars of the interval */
    size_t count = 0;
    size_t cap = 0;
    int64_t top = q->end_ms < q->known_ms ? q->end_ms : q->known_ms;
    int64_t first_day, last_day;

    *out = NULL;
    *n = 0;
    if (q->start_ms >= top || top <= MS_GEN_MIN_MS)
        return TF_OK;
    first_day = tf_floor_div(q->start_ms < MS_GEN_MIN_MS ? MS_GEN_MIN_MS : q->start_ms, MS_PER_DAY);
    last_day = tf_floor_div((top > MS_GEN_MAX_MS ? MS_GEN_MAX_MS : top - 1), MS_PER_DAY);
    for (int64_t d = last_day; d >= first_day && count < (size_t)q->outputsize; d--) {
        struct ms_bar *mins = NULL; /* owned: freed below */
        int64_t lo = d * MS_PER_DAY;
        int64_t hi = lo + MS_PER_DAY;
        size_t nmin, nday;

        if (hi > q->known_ms)
            hi = q->known_ms;
        nmin = ms_gen_minute_bars(seed, q->sym.canon, lo, hi - 1, &mins);
        if (nmin == 0)
            continue;
        if (!day) {
            day = malloc(1440 * sizeof(*day));
            if (!day) {
                free(mins);
                rc = TF_ERR_NOMEM;
                goto out;
            }
        }
        nday = roll_day(q, mins, nmin, day);
        free(mins);
        for (size_t i = nday; i-- > 0 && count < (size_t)q->outputsize;) {
            if (day[i].t_ms < q->start_ms || day[i].t_ms >= q->end_ms)
                continue;
            if (count == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                struct ms_bar *grown = realloc(desc, ncap * sizeof(*grown));

                if (!grown) {
                    rc = TF_ERR_NOMEM;
                    goto out;
                }
                desc = grown;
                cap = ncap;
            }
            desc[count++] = day[i];
        }
    }
    for (size_t i = 0; i < count / 2; i++) {
        struct ms_bar tmp = desc[i];

        desc[i] = desc[count - 1 - i];
        desc[count - 1 - i] = tmp;
    }
    if (count > 0) {
        *out = desc;
        *n = count;
        desc = NULL;
    }
out:
    free(desc);
    free(day);
    return rc;
}

static const char *currency_name(const char *code)
{
    for (size_t i = 0; i < sizeof(currency_names) / sizeof(currency_names[0]); i++) {
        if (strcmp(code, currency_names[i].code) == 0)
            return currency_names[i].name;
    }
    return code;
}

static enum tf_rc render_meta(struct tf_buf *buf, const struct marketsim_td_query *q)
{
    enum tf_rc rc;

    rc = tf_buf_printf(buf, "{\"meta\":{\"symbol\":\"%s\",\"interval\":\"%s\",", q->sym.symbol,
                       q->iv->name);
    if (rc != TF_OK)
        return rc;
    if (q->sym.asset == MS_ASSET_EQUITY && q->sym.exchange[0])
        return tf_buf_printf(buf,
                             "\"currency\":\"USD\",\"exchange_timezone\":\"America/New_York\","
                             "\"exchange\":\"%s\",\"mic_code\":\"%s\",\"type\":\"Common Stock\"},",
                             q->sym.exchange, q->sym.exchange);
    if (q->sym.asset == MS_ASSET_EQUITY)
        return tf_buf_puts(buf, "\"currency\":\"USD\",\"exchange_timezone\":\"America/New_York\","
                                "\"exchange\":\"NASDAQ\",\"mic_code\":\"XNAS\","
                                "\"type\":\"Common Stock\"},");
    rc = tf_buf_printf(buf, "\"currency_base\":\"%s\",\"currency_quote\":\"%s\",",
                       currency_name(q->sym.base), currency_name(q->sym.quote));
    if (rc != TF_OK)
        return rc;
    if (q->sym.asset == MS_ASSET_CRYPTO)
        return tf_buf_puts(buf, "\"exchange\":\"Coinbase Pro\",\"type\":\"Digital Currency\"},");
    return tf_buf_puts(buf, "\"type\":\"Physical Currency\"},");
}

enum tf_rc marketsim_td_render(struct tf_buf *buf, const struct marketsim_td_query *q,
                               const struct ms_bar *bars, size_t n)
{
    int date_only = q->iv->minutes == 1440;
    int volume = q->sym.asset == MS_ASSET_EQUITY;
    enum tf_rc rc;

    rc = render_meta(buf, q);
    if (rc == TF_OK)
        rc = tf_buf_puts(buf, "\"values\":[");
    for (size_t i = 0; rc == TF_OK && i < n; i++) {
        const struct ms_bar *b = &bars[q->asc ? i : n - 1 - i];
        char dt[32], o[40], h[40], l[40], c[40];

        marketsim_td_format_datetime(b->t_ms, q->zone, date_only, dt, sizeof(dt));
        marketsim_td_format_price(b->o, o, sizeof(o));
        marketsim_td_format_price(b->h, h, sizeof(h));
        marketsim_td_format_price(b->l, l, sizeof(l));
        marketsim_td_format_price(b->c, c, sizeof(c));
        rc = tf_buf_printf(buf,
                           "%s{\"datetime\":\"%s\",\"open\":\"%s\",\"high\":\"%s\",\"low\":\"%s\","
                           "\"close\":\"%s\"",
                           i ? "," : "", dt, o, h, l, c);
        if (rc == TF_OK && volume)
            rc = tf_buf_printf(buf, ",\"volume\":\"%.0f\"", b->v);
        if (rc == TF_OK)
            rc = tf_buf_puts(buf, "}");
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(buf, "],\"status\":\"ok\"}");
    return rc;
}

enum tf_rc marketsim_td_render_error(struct tf_buf *buf, int code, const char *msg)
{
    enum tf_rc rc = tf_buf_printf(buf, "{\"code\":%d,\"message\":", code);

    if (rc == TF_OK)
        rc = tf_json_append_str(buf, msg);
    if (rc == TF_OK)
        rc = tf_buf_puts(buf, ",\"status\":\"error\"}");
    return rc;
}
