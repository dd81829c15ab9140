/*
 * test_dq.c - the data-quality rule format (tf/dq.h): what is accepted,
 * with its defaults, and every way a rule is refused, with the message.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tf/dq.h"

static struct tf_dq_rule rules[TF_DQ_MAX_RULES];

/* Parses text against the job's tickers; returns the rc, the count and the message. */
static enum tf_rc parse(const char *text, size_t *n, char *err, size_t errlen)
{
    cJSON *arr = cJSON_Parse(text);
    cJSON *tickers = cJSON_Parse("[\"AMZN\",\"AAPL\",\"X:BTCUSD\"]");
    enum tf_rc rc;

    err[0] = '\0';
    rc = tf_dq_rules_parse(arr, tickers, rules, TF_DQ_MAX_RULES, n, err, errlen);
    cJSON_Delete(arr);
    cJSON_Delete(tickers);
    return rc;
}

static void test_good(void)
{
    char err[256];
    size_t n = 99;

    CHECK_EQ_INT(parse("[]", &n, err, sizeof(err)), TF_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(parse("[{\"check\":\"avg_close_between\",\"ticker\":\"AMZN\",\"min\":100,"
                       "\"max\":250,\"severity\":\"warn\"},"
                       "{\"check\":\"min_completeness\",\"value\":0.95,\"severity\":\"fail\"},"
                       "{\"check\":\"max_gap_minutes\",\"value\":15},"
                       "{\"check\":\"freshness_minutes\",\"value\":30,\"ticker\":\"X:BTCUSD\"},"
                       "{\"check\":\"avg_close_between\",\"min\":5,\"max\":5}]",
                       &n, err, sizeof(err)),
                 TF_OK);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(rules[0].check, TF_DQ_AVG_CLOSE_BETWEEN);
    CHECK_STR(rules[0].ticker, "AMZN");
    CHECK_EQ_DBL(rules[0].min, 100);
    CHECK_EQ_DBL(rules[0].max, 250);
    CHECK_EQ_INT(rules[0].fail, 0);
    CHECK_EQ_INT(rules[1].check, TF_DQ_MIN_COMPLETENESS);
    CHECK_EQ_DBL(rules[1].value, 0.95);
    CHECK_EQ_INT(rules[1].fail, 1);
    CHECK_STR(rules[1].ticker, "");
    CHECK_EQ_INT(rules[2].check, TF_DQ_MAX_GAP_MINUTES);
    CHECK_EQ_INT(rules[2].fail, 0); /* severity defaults to warn */
    CHECK_EQ_INT(rules[3].check, TF_DQ_FRESHNESS_MINUTES);
    CHECK_STR(rules[3].ticker, "X:BTCUSD");
    CHECK_EQ_DBL(rules[4].min, rules[4].max); /* min == max is a range of one value */
    CHECK_STR(tf_dq_check_name(TF_DQ_FRESHNESS_MINUTES), "freshness_minutes");
    CHECK_STR(tf_dq_check_name((enum tf_dq_check)42), "unknown");
}

static void test_bad(void)
{
    static const struct {
        const char *text;
        const char *says;
    } cases[] = {
        {"{}", "must be a list"},
        {"[1]", "dq_rules[0] must be an object"},
        {"[{}]", "check is required"},
        {"[{\"check\":7}]", "check is required"},
        {"[{\"check\":\"stddev_close\",\"value\":1}]", "unknown check \"stddev_close\""},
        {"[{\"check\":\"max_gap_minutes\",\"value\":15,\"min\":1}]", "unknown field min"},
        {"[{\"check\":\"avg_close_between\",\"min\":1,\"max\":2,\"value\":3}]",
         "unknown field value"},
        {"[{\"check\":\"max_gap_minutes\"}]", "value is required"},
        {"[{\"check\":\"avg_close_between\",\"max\":2}]", "min is required"},
        {"[{\"check\":\"avg_close_between\",\"min\":\"1\",\"max\":2}]", "min must be a number"},
        {"[{\"check\":\"avg_close_between\",\"min\":3,\"max\":2}]",
         "min (3) is greater than max (2)"},
        {"[{\"check\":\"min_completeness\",\"value\":-0.1}]", "ratio from 0 to 1"},
        {"[{\"check\":\"min_completeness\",\"value\":true}]", "value must be a number"},
        {"[{\"check\":\"freshness_minutes\",\"value\":-5}]", "minutes from 0"},
        {"[{\"check\":\"freshness_minutes\",\"value\":5,\"severity\":\"error\"}]",
         "severity must be"},
        {"[{\"check\":\"freshness_minutes\",\"value\":5,\"severity\":1}]", "severity must be"},
        {"[{\"check\":\"freshness_minutes\",\"value\":5,\"ticker\":\"MSFT\"}]",
         "MSFT is not one of the job's tickers"},
        {"[{\"check\":\"freshness_minutes\",\"value\":5,\"ticker\":\"\"}]", "ticker must be"},
        {"[{\"check\":\"freshness_minutes\",\"value\":5},{\"check\":\"nope\"}]", "dq_rules[1]"},
    };
    char err[256];
    size_t n = 0;

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        CHECK(parse(cases[i].text, &n, err, sizeof(err)) == TF_ERR_INVALID, "case %zu refused", i);
        CHECK(strstr(err, cases[i].says) != NULL, "case %zu: \"%s\" says \"%s\"", i, err,
              cases[i].says);
        CHECK_EQ_INT(n, 0);
    }
    /* More rules than allowed. */
    {
        char big[8192];
        size_t len = 0;
        for (int i = 0; i <= TF_DQ_MAX_RULES; i++)
            len += (size_t)snprintf(big + len, sizeof(big) - len,
                                    "%s{\"check\":\"max_gap_minutes\",\"value\":1}", i ? "," : "[");
        snprintf(big + len, sizeof(big) - len, "]");
        CHECK_EQ_INT(parse(big, &n, err, sizeof(err)), TF_ERR_INVALID);
        CHECK(strstr(err, "more than 64 rules") != NULL, "too many: %s", err);
    }
}

int main(void)
{
    test_good();
    test_bad();
    return check_summary();
}
