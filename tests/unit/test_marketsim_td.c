/*
 * test_marketsim_td.c - marketsim's Twelve Data time_series without I/O:
 * symbols, intervals, dates and time zones, 5-decimal price strings that
 * read back as the generator's doubles, bar alignment, outputsize and
 * order, and the JSON bodies. tdseries.c is compiled in here (the Makefile
 * links only gen.c into unit tests).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "marketsim/tdseries.c"
#include "../harness/check.h"

#define SEED 42

static int64_t ny_ms(int y, int m, int d, int hh, int mm)
{
    return tf_time_us_eastern_to_utc(y, m, d, hh, mm) * 1000;
}

static int64_t utc_ms(int y, int m, int d, int hh, int mm)
{
    return (tf_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60) * 1000;
}

/* A query for symbol and interval over [start, end), everything known. */
static struct marketsim_td_query query(const char *symbol, const char *interval, int64_t start,
                                       int64_t end, long outputsize)
{
    struct marketsim_td_query q;

    memset(&q, 0, sizeof(q));
    if (marketsim_td_symbol_parse(symbol, &q.sym) != MARKETSIM_TD_SYMBOL_OK)
        fprintf(stderr, "bad test symbol %s\n", symbol);
    q.iv = marketsim_td_interval_get(interval);
    q.zone = marketsim_td_exchange_zone(q.sym.asset);
    q.start_ms = start;
    q.end_ms = end;
    q.known_ms = INT64_MAX;
    q.outputsize = outputsize;
    return q;
}

static void test_intervals_and_symbols(void)
{
    struct marketsim_td_symbol sym;

    CHECK(marketsim_td_interval_get("1min") && marketsim_td_interval_get("1min")->minutes == 1,
          "1min");
    CHECK(marketsim_td_interval_get("45min") && marketsim_td_interval_get("45min")->minutes == 45,
          "45min");
    CHECK(marketsim_td_interval_get("1DAY") && marketsim_td_interval_get("1day")->minutes == 1440,
          "1day");
    CHECK(!marketsim_td_interval_get("0.99min") && !marketsim_td_interval_get("1week") &&
              !marketsim_td_interval_get(NULL),
          "unsupported intervals must be refused");

    CHECK_EQ_INT(marketsim_td_symbol_parse("aapl", &sym), MARKETSIM_TD_SYMBOL_OK);
    CHECK(strcmp(sym.symbol, "AAPL") == 0 && strcmp(sym.canon, "AAPL") == 0 &&
              sym.asset == MS_ASSET_EQUITY,
          "aapl -> %s %s %d", sym.symbol, sym.canon, (int)sym.asset);
    CHECK_EQ_INT(marketsim_td_symbol_parse("eur/usd", &sym), MARKETSIM_TD_SYMBOL_OK);
    CHECK(strcmp(sym.symbol, "EUR/USD") == 0 && strcmp(sym.canon, "C:EURUSD") == 0 &&
              strcmp(sym.base, "EUR") == 0 && strcmp(sym.quote, "USD") == 0 &&
              sym.asset == MS_ASSET_FOREX,
          "eur/usd -> %s %s %s %s", sym.symbol, sym.canon, sym.base, sym.quote);
    CHECK_EQ_INT(marketsim_td_symbol_parse("BTC/USD", &sym), MARKETSIM_TD_SYMBOL_OK);
    CHECK(strcmp(sym.canon, "X:BTCUSD") == 0 && sym.asset == MS_ASSET_CRYPTO, "BTC/USD -> %s",
          sym.canon);
    CHECK_EQ_INT(marketsim_td_symbol_parse("BRK.B", &sym), MARKETSIM_TD_SYMBOL_OK);
    CHECK_EQ_INT(marketsim_td_symbol_parse("sbin:nse", &sym), MARKETSIM_TD_SYMBOL_OK);
    CHECK(strcmp(sym.canon, "SBIN:NSE") == 0 && strcmp(sym.exchange, "NSE") == 0 &&
              sym.asset == MS_ASSET_EQUITY,
          "sbin:nse -> %s %s %d", sym.canon, sym.exchange, (int)sym.asset);
    CHECK_EQ_INT(marketsim_td_symbol_parse("", &sym), MARKETSIM_TD_SYMBOL_MISSING);
    CHECK_EQ_INT(marketsim_td_symbol_parse(NULL, &sym), MARKETSIM_TD_SYMBOL_MISSING);
    CHECK_EQ_INT(marketsim_td_symbol_parse("AAPL,MSFT", &sym), MARKETSIM_TD_SYMBOL_BATCH);
    CHECK_EQ_INT(marketsim_td_symbol_parse("ZZX", &sym), MARKETSIM_TD_SYMBOL_UNKNOWN);
    CHECK_EQ_INT(marketsim_td_symbol_parse("X:BTCUSD", &sym), MARKETSIM_TD_SYMBOL_UNKNOWN);
    CHECK_EQ_INT(marketsim_td_symbol_parse("EUR/", &sym), MARKETSIM_TD_SYMBOL_UNKNOWN);
    CHECK_EQ_INT(marketsim_td_symbol_parse("A/B/C", &sym), MARKETSIM_TD_SYMBOL_UNKNOWN);
    CHECK_EQ_INT(marketsim_td_symbol_parse("A\"B", &sym), MARKETSIM_TD_SYMBOL_UNKNOWN);
    CHECK_EQ_INT(marketsim_td_symbol_parse("C:EURUSD", &sym), MARKETSIM_TD_SYMBOL_UNKNOWN);
    CHECK_EQ_INT(marketsim_td_symbol_parse("SBIN:", &sym), MARKETSIM_TD_SYMBOL_UNKNOWN);
    CHECK_EQ_INT(marketsim_td_symbol_parse("EUR/USD:FX", &sym), MARKETSIM_TD_SYMBOL_UNKNOWN);
}

static void test_dates(void)
{
    int64_t t = 0;
    char out[32];

    /* Exchange time for stocks: 09:30 EDT is 13:30Z, 09:30 EST 14:30Z. */
    CHECK_EQ_INT(marketsim_td_parse_date("2024-03-12 09:30:00", MARKETSIM_TD_NEW_YORK, &t), 1);
    CHECK_EQ_INT(t, utc_ms(2024, 3, 12, 13, 30));
    CHECK_EQ_INT(marketsim_td_parse_date("2024-03-08T09:30:00", MARKETSIM_TD_NEW_YORK, &t), 1);
    CHECK_EQ_INT(t, utc_ms(2024, 3, 8, 14, 30));
    CHECK_EQ_INT(marketsim_td_parse_date("2024-03-12", MARKETSIM_TD_NEW_YORK, &t), 1);
    CHECK_EQ_INT(t, utc_ms(2024, 3, 12, 4, 0));
    CHECK_EQ_INT(marketsim_td_parse_date("2024-03-12 09:30", MARKETSIM_TD_UTC, &t), 1);
    CHECK_EQ_INT(t, utc_ms(2024, 3, 12, 9, 30));
    CHECK_EQ_INT(marketsim_td_parse_date("2024-03-12 09:30:59", MARKETSIM_TD_UTC, &t), 1);
    CHECK_EQ_INT(t, utc_ms(2024, 3, 12, 9, 30) + 59000);
    CHECK(!marketsim_td_parse_date("2024-02-30", MARKETSIM_TD_UTC, &t) &&
              !marketsim_td_parse_date("2024-03-12Z", MARKETSIM_TD_UTC, &t) &&
              !marketsim_td_parse_date("2024-03-12 24:00:00", MARKETSIM_TD_UTC, &t) &&
              !marketsim_td_parse_date("12/03/2024", MARKETSIM_TD_UTC, &t) &&
              !marketsim_td_parse_date("", MARKETSIM_TD_UTC, &t),
          "malformed dates must be refused");

    marketsim_td_format_datetime(utc_ms(2024, 3, 12, 13, 30), MARKETSIM_TD_NEW_YORK, 0, out,
                                 sizeof(out));
    CHECK_STR(out, "2024-03-12 09:30:00");
    marketsim_td_format_datetime(utc_ms(2024, 3, 12, 13, 30), MARKETSIM_TD_UTC, 0, out,
                                 sizeof(out));
    CHECK_STR(out, "2024-03-12 13:30:00");
    /* 02:00Z is still the previous evening in New York. */
    marketsim_td_format_datetime(utc_ms(2024, 3, 12, 2, 0), MARKETSIM_TD_NEW_YORK, 1, out,
                                 sizeof(out));
    CHECK_STR(out, "2024-03-11");
}

static void test_prices(void)
{
    struct ms_bar *bars = NULL;
    const char *tickers[] = {"AAPL", "C:EURUSD", "X:BTCUSD", "X:DOGEUSD", "C:USDJPY"};
    size_t total = 0, bad = 0, bad_shape = 0;
    char out[40];

    marketsim_td_format_price(148.735, out, sizeof(out));
    CHECK_STR(out, "148.73500");
    marketsim_td_format_price(1.0749, out, sizeof(out));
    CHECK_STR(out, "1.07490");
    marketsim_td_format_price(43575.8189, out, sizeof(out));
    CHECK_STR(out, "43575.81890");

    /* Every generated price reads back as the very same double. */
    for (size_t k = 0; k < sizeof(tickers) / sizeof(tickers[0]); k++) {
        size_t n = ms_gen_minute_bars(SEED, tickers[k], utc_ms(2024, 3, 4, 0, 0),
                                      utc_ms(2024, 3, 9, 0, 0), &bars);

        for (size_t i = 0; i < n; i++) {
            double vals[] = {bars[i].o, bars[i].h, bars[i].l, bars[i].c};

            for (size_t j = 0; j < 4; j++) {
                const char *dot;

                marketsim_td_format_price(vals[j], out, sizeof(out));
                dot = strchr(out, '.');
                bad += strtod(out, NULL) != vals[j];
                bad_shape += !dot || strlen(dot + 1) != 5 || out[strlen(out) - 1] != '0';
            }
        }
        total += n;
        free(bars);
        bars = NULL;
    }
    CHECK(total > 20000, "only %zu bars", total);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(bad_shape, 0);
}

static void test_bar_start(void)
{
    struct marketsim_td_query q = query("AAPL", "1h", 0, 0, 1);

    /* Equity hours count from the 09:30 open. */
    CHECK_EQ_INT(marketsim_td_bar_start(&q, ny_ms(2024, 3, 12, 9, 30)), ny_ms(2024, 3, 12, 9, 30));
    CHECK_EQ_INT(marketsim_td_bar_start(&q, ny_ms(2024, 3, 12, 10, 29)), ny_ms(2024, 3, 12, 9, 30));
    CHECK_EQ_INT(marketsim_td_bar_start(&q, ny_ms(2024, 3, 12, 15, 59)),
                 ny_ms(2024, 3, 12, 15, 30));
    q.iv = marketsim_td_interval_get("45min");
    CHECK_EQ_INT(marketsim_td_bar_start(&q, ny_ms(2024, 3, 12, 10, 20)),
                 ny_ms(2024, 3, 12, 10, 15));
    q.iv = marketsim_td_interval_get("1day");
    CHECK_EQ_INT(marketsim_td_bar_start(&q, ny_ms(2024, 3, 12, 15, 59)), ny_ms(2024, 3, 12, 0, 0));

    /* Crypto and forex count from 00:00 UTC. */
    q = query("BTC/USD", "4h", 0, 0, 1);
    CHECK_EQ_INT(marketsim_td_bar_start(&q, utc_ms(2024, 3, 12, 7, 59)), utc_ms(2024, 3, 12, 4, 0));
    q.iv = marketsim_td_interval_get("1day");
    CHECK_EQ_INT(marketsim_td_bar_start(&q, utc_ms(2024, 3, 12, 23, 59)),
                 utc_ms(2024, 3, 12, 0, 0));
}

static void test_series(void)
{
    struct marketsim_td_query q;
    struct ms_bar *bars = NULL, *mins = NULL, *hours = NULL;
    size_t n = 0, nm, same = 0;
    double h = 0, l = 1e300, v = 0;

    /* 1min equals the generator's minute bars, end exclusive. */
    q = query("AAPL", "1min", ny_ms(2024, 3, 12, 9, 30), ny_ms(2024, 3, 12, 10, 0), 5000);
    CHECK_EQ_INT(marketsim_td_series(SEED, &q, &bars, &n), TF_OK);
    nm = ms_gen_minute_bars(SEED, "AAPL", ny_ms(2024, 3, 12, 9, 30), ny_ms(2024, 3, 12, 10, 0) - 1,
                            &mins);
    CHECK_EQ_INT(n, 30);
    for (size_t i = 0; i < n && i < nm; i++)
        same += bars[i].t_ms == mins[i].t_ms && bars[i].o == mins[i].o && bars[i].c == mins[i].c &&
                bars[i].v == mins[i].v;
    CHECK_EQ_INT(same, 30);
    free(bars);
    bars = NULL;

    /* The 09:30 hour bar of the whole day: open of 09:30, close of 10:29, extremes, sum. */
    q = query("AAPL", "1h", ny_ms(2024, 3, 12, 0, 0), ny_ms(2024, 3, 13, 0, 0), 5000);
    CHECK_EQ_INT(marketsim_td_series(SEED, &q, &hours, &n), TF_OK);
    CHECK_EQ_INT(n, 7); /* 09:30 ... 15:30 */
    free(mins);
    nm = ms_gen_minute_bars(SEED, "AAPL", ny_ms(2024, 3, 12, 9, 30), ny_ms(2024, 3, 12, 10, 29),
                            &mins);
    for (size_t i = 0; i < nm; i++) {
        h = fmax(h, mins[i].h);
        l = fmin(l, mins[i].l);
        v += mins[i].v;
    }
    CHECK(n == 7 && nm == 60 && hours[0].t_ms == ny_ms(2024, 3, 12, 9, 30) &&
              hours[0].o == mins[0].o && hours[0].c == mins[59].c && hours[0].h == h &&
              hours[0].l == l && hours[0].v == v,
          "the 09:30 hour bar is not the roll-up of its 60 minutes");
    free(hours);
    free(mins);

    /* More bars than outputsize: the newest are kept. */
    q = query("AAPL", "5min", ny_ms(2024, 3, 11, 0, 0), ny_ms(2024, 3, 13, 0, 0), 10);
    CHECK_EQ_INT(marketsim_td_series(SEED, &q, &bars, &n), TF_OK);
    CHECK(n == 10 && bars[0].t_ms == ny_ms(2024, 3, 12, 15, 10) &&
              bars[9].t_ms == ny_ms(2024, 3, 12, 15, 55),
          "outputsize=10 kept %zu bars from %lld", n, n ? (long long)bars[0].t_ms : 0LL);
    free(bars);
    bars = NULL;

    /* A weekend has no equity bars; a known_ms cut hides the last minutes. */
    q = query("AAPL", "1min", ny_ms(2024, 3, 9, 0, 0), ny_ms(2024, 3, 11, 0, 0), 5000);
    CHECK_EQ_INT(marketsim_td_series(SEED, &q, &bars, &n), TF_OK);
    CHECK(n == 0 && bars == NULL, "a weekend gave %zu bars", n);
    q = query("AAPL", "1min", ny_ms(2024, 3, 12, 15, 50), ny_ms(2024, 3, 12, 16, 0), 5000);
    q.known_ms = ny_ms(2024, 3, 12, 15, 55);
    CHECK_EQ_INT(marketsim_td_series(SEED, &q, &bars, &n), TF_OK);
    CHECK(n == 5 && bars[4].t_ms == ny_ms(2024, 3, 12, 15, 54), "known_ms left %zu bars", n);
    free(bars);
    bars = NULL;

    /* The NYSE calendar: nothing on a holiday; an early close ends with a half-hour 12:30 bar,
     * and its day bar closes at the 12:59 minute's close. */
    q = query("AAPL", "1day", ny_ms(2024, 7, 3, 0, 0), ny_ms(2024, 7, 6, 0, 0), 5000);
    CHECK_EQ_INT(marketsim_td_series(SEED, &q, &bars, &n), TF_OK);
    nm = ms_gen_minute_bars(SEED, "AAPL", ny_ms(2024, 7, 3, 0, 0), ny_ms(2024, 7, 4, 0, 0) - 1,
                            &mins);
    CHECK(n == 2 && nm == 210 && bars[0].t_ms == ny_ms(2024, 7, 3, 0, 0) &&
              bars[0].c == mins[209].c && bars[1].t_ms == ny_ms(2024, 7, 5, 0, 0),
          "Independence Day week: %zu day bars, %zu minutes on July 3", n, nm);
    free(bars);
    bars = NULL;
    q = query("AAPL", "1h", ny_ms(2024, 7, 3, 0, 0), ny_ms(2024, 7, 5, 0, 0), 5000);
    CHECK_EQ_INT(marketsim_td_series(SEED, &q, &hours, &n), TF_OK);
    CHECK(n == 4 && hours[0].t_ms == ny_ms(2024, 7, 3, 9, 30) &&
              hours[3].t_ms == ny_ms(2024, 7, 3, 12, 30) && nm == 210 && hours[3].c == mins[209].c,
          "July 3-4 hours: %zu bars", n);
    free(hours);
    hours = NULL;
    free(mins);
    mins = NULL;

    /* Forex 1day bars are UTC days, including the Sunday evening session. */
    q = query("EUR/USD", "1day", utc_ms(2024, 3, 8, 0, 0), utc_ms(2024, 3, 12, 0, 0), 5000);
    CHECK_EQ_INT(marketsim_td_series(SEED, &q, &bars, &n), TF_OK);
    CHECK(n == 3 && bars[0].t_ms == utc_ms(2024, 3, 8, 0, 0) &&
              bars[1].t_ms == utc_ms(2024, 3, 10, 0, 0) &&
              bars[2].t_ms == utc_ms(2024, 3, 11, 0, 0),
          "EUR/USD days: %zu bars", n);
    free(bars);
}

/* Renders q's bars and parses the body back; NULL if anything failed. */
static cJSON *render_parse(const struct marketsim_td_query *q)
{
    struct ms_bar *bars = NULL;
    struct tf_buf buf;
    cJSON *root = NULL;
    size_t n = 0;

    tf_buf_init(&buf, 1 << 24);
    if (marketsim_td_series(SEED, q, &bars, &n) == TF_OK &&
        marketsim_td_render(&buf, q, bars, n) == TF_OK)
        root = cJSON_Parse(buf.data);
    tf_buf_cleanup(&buf);
    free(bars);
    return root;
}

/* 1 when every value is a string and volume is there exactly when want_volume. */
static int values_are_strings(const cJSON *values, int want_volume)
{
    static const char *const keys[] = {"datetime", "open", "high", "low", "close"};
    const cJSON *v;

    cJSON_ArrayForEach(v, values)
    {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, keys[i])))
                return 0;
        }
        if (want_volume != cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "volume")))
            return 0;
        if (!want_volume && cJSON_GetObjectItemCaseSensitive(v, "volume"))
            return 0;
    }
    return 1;
}

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void test_render(void)
{
    struct marketsim_td_query q;
    struct tf_buf buf;
    const cJSON *meta, *values;
    cJSON *root;

    /* Stocks: the documented meta, newest first, volume, exchange time. */
    q = query("AAPL", "1min", ny_ms(2024, 3, 12, 15, 57), ny_ms(2024, 3, 12, 16, 0), 5000);
    root = render_parse(&q);
    CHECK(root != NULL, "the stock body is not JSON");
    meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    values = cJSON_GetObjectItemCaseSensitive(root, "values");
    CHECK_STR(str_at(root, "status"), "ok");
    CHECK_STR(str_at(meta, "symbol"), "AAPL");
    CHECK_STR(str_at(meta, "interval"), "1min");
    CHECK_STR(str_at(meta, "currency"), "USD");
    CHECK_STR(str_at(meta, "exchange_timezone"), "America/New_York");
    CHECK_STR(str_at(meta, "exchange"), "NASDAQ");
    CHECK_STR(str_at(meta, "mic_code"), "XNAS");
    CHECK_STR(str_at(meta, "type"), "Common Stock");
    CHECK_EQ_INT(cJSON_GetArraySize(values), 3);
    CHECK_STR(str_at(cJSON_GetArrayItem(values, 0), "datetime"), "2024-03-12 15:59:00");
    CHECK_STR(str_at(cJSON_GetArrayItem(values, 2), "datetime"), "2024-03-12 15:57:00");
    CHECK(values_are_strings(values, 1), "stock values must be strings, with volume");
    cJSON_Delete(root);

    /* order=asc and timezone=UTC. */
    q.asc = 1;
    q.zone = MARKETSIM_TD_UTC;
    root = render_parse(&q);
    values = cJSON_GetObjectItemCaseSensitive(root, "values");
    CHECK_STR(str_at(cJSON_GetArrayItem(values, 0), "datetime"), "2024-03-12 19:57:00");
    cJSON_Delete(root);

    /* Forex: currency names, no exchange fields, no volume. */
    q = query("EUR/USD", "1day", utc_ms(2024, 3, 11, 0, 0), utc_ms(2024, 3, 12, 0, 0), 5000);
    root = render_parse(&q);
    meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    values = cJSON_GetObjectItemCaseSensitive(root, "values");
    CHECK_STR(str_at(meta, "currency_base"), "Euro");
    CHECK_STR(str_at(meta, "currency_quote"), "US Dollar");
    CHECK_STR(str_at(meta, "type"), "Physical Currency");
    CHECK(!cJSON_GetObjectItemCaseSensitive(meta, "exchange_timezone") &&
              !cJSON_GetObjectItemCaseSensitive(meta, "exchange") &&
              !cJSON_GetObjectItemCaseSensitive(meta, "currency"),
          "forex meta has exchange fields");
    CHECK_STR(str_at(cJSON_GetArrayItem(values, 0), "datetime"), "2024-03-11");
    CHECK(values_are_strings(values, 0), "forex values must be strings, without volume");
    cJSON_Delete(root);

    /* Crypto: adds the exchange, no volume. */
    q = query("BTC/USD", "1h", utc_ms(2024, 3, 9, 0, 0), utc_ms(2024, 3, 9, 2, 0), 5000);
    root = render_parse(&q);
    meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    CHECK_STR(str_at(meta, "currency_base"), "Bitcoin");
    CHECK_STR(str_at(meta, "exchange"), "Coinbase Pro");
    CHECK_STR(str_at(meta, "type"), "Digital Currency");
    values = cJSON_GetObjectItemCaseSensitive(root, "values");
    CHECK_EQ_INT(cJSON_GetArraySize(values), 2);
    CHECK(values_are_strings(values, 0), "crypto values must be strings, without volume");
    cJSON_Delete(root);

    /* Errors: Twelve Data's envelope, the message escaped. */
    tf_buf_init(&buf, 4096);
    CHECK_EQ_INT(marketsim_td_render_error(&buf, 400, "Invalid **interval** provided: \"x\""),
                 TF_OK);
    CHECK_STR(buf.data, "{\"code\":400,\"message\":\"Invalid **interval** provided: \\\"x\\\"\","
                        "\"status\":\"error\"}");
    tf_buf_cleanup(&buf);
}

int main(void)
{
    test_intervals_and_symbols();
    test_dates();
    test_prices();
    test_bar_start();
    test_series();
    test_render();
    return check_summary();
}
