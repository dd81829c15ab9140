/*
 * dq.c - the data-quality rule format (see tf/dq.h): one strict parser that
 * extract uses to refuse a bad PUT /v1/jobs and aggregate uses to read the
 * rules it evaluates, so that both always agree on what a rule means.
 */
#include "tf/dq.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const check_names[] = {"avg_close_between", "min_completeness",
                                          "max_gap_minutes", "freshness_minutes"};

const char *tf_dq_check_name(enum tf_dq_check check)
{
    if ((size_t)check >= TF_ARRAY_LEN(check_names))
        return "unknown";
    return check_names[check];
}

/* A finite number member; TF_ERR_INVALID (with err) when missing or not one. */
static enum tf_rc number(const cJSON *rule, size_t i, const char *key, double *out, char *err,
                         size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(rule, key);

    if (!it) {
        snprintf(err, errlen, "dq_rules[%zu]: %s is required", i, key);
        return TF_ERR_INVALID;
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
        snprintf(err, errlen, "dq_rules[%zu]: %s must be a number", i, key);
        return TF_ERR_INVALID;
    }
    *out = it->valuedouble;
    return TF_OK;
}

static int listed(const cJSON *tickers, const char *ticker)
{
    const cJSON *t;

    cJSON_ArrayForEach(t, tickers)
    {
        if (cJSON_IsString(t) && strcmp(t->valuestring, ticker) == 0)
            return 1;
    }
    return 0;
}

/* The members a rule of this check may have. */
static int field_known(enum tf_dq_check check, const char *key)
{
    if (strcmp(key, "check") == 0 || strcmp(key, "ticker") == 0 || strcmp(key, "severity") == 0)
        return 1;
    if (check == TF_DQ_AVG_CLOSE_BETWEEN)
        return strcmp(key, "min") == 0 || strcmp(key, "max") == 0;
    return strcmp(key, "value") == 0;
}

static enum tf_rc parse_one(const cJSON *rule, size_t i, const cJSON *tickers, struct tf_dq_rule *r,
                            char *err, size_t errlen)
{
    const cJSON *it;
    size_t c;
    enum tf_rc rc = TF_OK;

    memset(r, 0, sizeof(*r));
    if (!cJSON_IsObject(rule)) {
        snprintf(err, errlen, "dq_rules[%zu] must be an object", i);
        return TF_ERR_INVALID;
    }
    it = cJSON_GetObjectItemCaseSensitive(rule, "check");
    if (!cJSON_IsString(it)) {
        snprintf(err, errlen,
                 "dq_rules[%zu]: check is required (one of avg_close_between,"
                 " min_completeness, max_gap_minutes, freshness_minutes)",
                 i);
        return TF_ERR_INVALID;
    }
    for (c = 0; c < TF_ARRAY_LEN(check_names); c++) {
        if (strcmp(it->valuestring, check_names[c]) == 0)
            break;
    }
    if (c == TF_ARRAY_LEN(check_names)) {
        snprintf(err, errlen,
                 "dq_rules[%zu]: unknown check \"%.40s\" (known: avg_close_between,"
                 " min_completeness, max_gap_minutes, freshness_minutes)",
                 i, it->valuestring);
        return TF_ERR_INVALID;
    }
    r->check = (enum tf_dq_check)c;
    cJSON_ArrayForEach(it, rule)
    {
        if (!field_known(r->check, it->string)) {
            snprintf(err, errlen, "dq_rules[%zu]: unknown field %.40s for check %s", i, it->string,
                     check_names[c]);
            return TF_ERR_INVALID;
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(rule, "ticker");
    if (it) {
        if (!cJSON_IsString(it) || !it->valuestring[0] ||
            strlen(it->valuestring) >= sizeof(r->ticker)) {
            snprintf(err, errlen, "dq_rules[%zu]: ticker must be a symbol of the job", i);
            return TF_ERR_INVALID;
        }
        if (tickers && !listed(tickers, it->valuestring)) {
            snprintf(err, errlen, "dq_rules[%zu]: ticker %.40s is not one of the job's tickers", i,
                     it->valuestring);
            return TF_ERR_INVALID;
        }
        snprintf(r->ticker, sizeof(r->ticker), "%s", it->valuestring);
    }
    it = cJSON_GetObjectItemCaseSensitive(rule, "severity");
    if (it) {
        if (!cJSON_IsString(it) ||
            (strcmp(it->valuestring, "warn") != 0 && strcmp(it->valuestring, "fail") != 0)) {
            snprintf(err, errlen, "dq_rules[%zu]: severity must be \"warn\" or \"fail\"", i);
            return TF_ERR_INVALID;
        }
        r->fail = strcmp(it->valuestring, "fail") == 0;
    }
    switch (r->check) {
    case TF_DQ_AVG_CLOSE_BETWEEN:
        rc = number(rule, i, "min", &r->min, err, errlen);
        if (rc == TF_OK)
            rc = number(rule, i, "max", &r->max, err, errlen);
        if (rc == TF_OK && r->min > r->max) {
            snprintf(err, errlen, "dq_rules[%zu]: min (%g) is greater than max (%g)", i, r->min,
                     r->max);
            rc = TF_ERR_INVALID;
        }
        break;
    case TF_DQ_MIN_COMPLETENESS:
        rc = number(rule, i, "value", &r->value, err, errlen);
        if (rc == TF_OK && (r->value < 0 || r->value > 1)) {
            snprintf(err, errlen, "dq_rules[%zu]: value must be a ratio from 0 to 1", i);
            rc = TF_ERR_INVALID;
        }
        break;
    case TF_DQ_MAX_GAP_MINUTES:
    case TF_DQ_FRESHNESS_MINUTES:
        rc = number(rule, i, "value", &r->value, err, errlen);
        if (rc == TF_OK && (r->value < 0 || r->value > 366.0 * 24 * 60)) {
            snprintf(err, errlen, "dq_rules[%zu]: value must be minutes from 0 to 527040", i);
            rc = TF_ERR_INVALID;
        }
        break;
    }
    return rc;
}

enum tf_rc tf_dq_rules_parse(const cJSON *rules, const cJSON *tickers, struct tf_dq_rule *out,
                             size_t max, size_t *n, char *err, size_t errlen)
{
    const cJSON *rule;
    size_t i = 0;
    enum tf_rc rc;

    *n = 0;
    if (!cJSON_IsArray(rules)) {
        snprintf(err, errlen, "dq_rules must be a list of rules");
        return TF_ERR_INVALID;
    }
    if ((size_t)cJSON_GetArraySize(rules) > max) {
        snprintf(err, errlen, "dq_rules holds more than %zu rules", max);
        return TF_ERR_INVALID;
    }
    cJSON_ArrayForEach(rule, rules)
    {
        rc = parse_one(rule, i, tickers, &out[i], err, errlen);
        if (rc != TF_OK)
            return rc;
        i++;
    }
    *n = i;
    return TF_OK;
}
