/*
 * job.c - syntax of providers, tickers and bar sizes (job names: tf_job_name_valid, exec.c).
 */
#include "job.h"

#include <stdio.h>
#include <string.h>

int tf_provider_known(const char *provider)
{
    return provider && (strcmp(provider, "polygon") == 0 || strcmp(provider, "twelvedata") == 0);
}

/* Counts leading characters of s in [A-Z0-9] (and '.' when dots). */
static size_t span_upper(const char *s, int dots)
{
    size_t n = 0;

    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') || (dots && s[n] == '.'))
        n++;
    return n;
}

/* An exchange ticker: a capital letter first, then [A-Z0-9.], 1..12 in all. */
static int stock_symbol(const char *s, size_t len)
{
    return len >= 1 && len <= 12 && s[0] >= 'A' && s[0] <= 'Z' && span_upper(s, 1) >= len;
}

enum tf_rc tf_ticker_check(const char *provider, const char *ticker, char *err, size_t errlen)
{
    size_t len = ticker ? strlen(ticker) : 0;

    if (len == 0 || len > 32) {
        snprintf(err, errlen, "a ticker must have 1 to 32 characters");
        return TF_ERR_INVALID;
    }
    if (strcmp(provider, "polygon") == 0) {
        if ((ticker[0] == 'C' || ticker[0] == 'X') && ticker[1] == ':') {
            size_t n = span_upper(ticker + 2, 0);
            if (n >= 4 && n <= 16 && ticker[2 + n] == '\0')
                return TF_OK;
            snprintf(err, errlen, "ticker %.32s: forex and crypto are C:EURUSD and X:BTCUSD",
                     ticker);
            return TF_ERR_INVALID;
        }
        if (strchr(ticker, ':')) {
            snprintf(err, errlen, "ticker %.32s: only stocks, C: forex and X: crypto are supported",
                     ticker);
            return TF_ERR_INVALID;
        }
        if (stock_symbol(ticker, len))
            return TF_OK;
        snprintf(err, errlen,
                 "ticker %.32s: use Polygon's upper-case symbol, such as AAPL or BRK.A", ticker);
        return TF_ERR_INVALID;
    }
    if (strcmp(provider, "twelvedata") == 0) {
        const char *slash = strchr(ticker, '/');
        const char *colon = strchr(ticker, ':');

        if (slash) {
            size_t a = span_upper(ticker, 0);
            size_t b = span_upper(slash + 1, 0);
            if (ticker + a == slash && a >= 2 && a <= 10 && b >= 2 && b <= 10 &&
                slash[1 + b] == '\0')
                return TF_OK;
        } else if (colon) {
            size_t x = span_upper(colon + 1, 0);
            if (stock_symbol(ticker, (size_t)(colon - ticker)) && x >= 2 && x <= 10 &&
                colon[1 + x] == '\0')
                return TF_OK;
        } else if (stock_symbol(ticker, len)) {
            return TF_OK;
        }
        snprintf(err, errlen,
                 "ticker %.32s: use Twelve Data's symbol, such as AAPL, SBIN:NSE or EUR/USD",
                 ticker);
        return TF_ERR_INVALID;
    }
    snprintf(err, errlen, "unknown provider");
    return TF_ERR_INVALID;
}

enum tf_rc tf_bar_check(const char *provider, long multiplier, const char *timespan, char *err,
                        size_t errlen)
{
    static const struct {
        const char *timespan;
        long multiplier;
    } twelvedata[] = {{"minute", 1}, {"minute", 5}, {"minute", 15}, {"minute", 30}, {"minute", 45},
                      {"hour", 1},   {"hour", 2},   {"hour", 4},    {"day", 1}};
    int span_ok = timespan && (strcmp(timespan, "minute") == 0 || strcmp(timespan, "hour") == 0 ||
                               strcmp(timespan, "day") == 0);

    if (!span_ok) {
        snprintf(err, errlen, "timespan must be minute, hour or day");
        return TF_ERR_INVALID;
    }
    if (multiplier < 1 || multiplier > 1440) {
        snprintf(err, errlen, "multiplier must be 1 to 1440");
        return TF_ERR_INVALID;
    }
    if (strcmp(provider, "twelvedata") == 0) {
        for (size_t i = 0; i < TF_ARRAY_LEN(twelvedata); i++) {
            if (twelvedata[i].multiplier == multiplier &&
                strcmp(twelvedata[i].timespan, timespan) == 0)
                return TF_OK;
        }
        snprintf(err, errlen,
                 "Twelve Data serves 1, 5, 15, 30 or 45 minute, 1, 2 or 4 hour and 1 day bars");
        return TF_ERR_INVALID;
    }
    return TF_OK;
}
