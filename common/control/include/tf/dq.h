/*
 * tf/dq.h - a job's data-quality rules (job_config.dq_rules): their format,
 * checked strictly by extract's PUT /v1/jobs and read by aggregate, which
 * evaluates them after each execution. The checks and their members are
 * listed in docs/ARCHITECTURE.md (DQ rules) and the README.
 */
#ifndef TF_DQ_H
#define TF_DQ_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tf/rc.h"

#define TF_DQ_MAX_RULES 64

enum tf_dq_check {
    TF_DQ_AVG_CLOSE_BETWEEN = 0,
    TF_DQ_MIN_COMPLETENESS,
    TF_DQ_MAX_GAP_MINUTES,
    TF_DQ_FRESHNESS_MINUTES,
};

struct tf_dq_rule {
    enum tf_dq_check check;
    char ticker[64]; /* "" for every ticker of the execution */
    double min, max; /* avg_close_between */
    double value;    /* the other checks */
    int fail;        /* 1: severity "fail", 0: "warn" */
};

/** "avg_close_between", ... (a static string). */
const char *tf_dq_check_name(enum tf_dq_check check);

/**
 * Checks a dq_rules array and fills out[0..*n). tickers (a JSON array of
 * strings, may be NULL) are the job's: a rule's ticker must be one of them.
 * TF_ERR_INVALID with a message naming the rule ("dq_rules[2]: ...") when
 * anything is wrong; nothing is allocated.
 */
enum tf_rc tf_dq_rules_parse(const cJSON *rules, const cJSON *tickers, struct tf_dq_rule *out,
                             size_t max, size_t *n, char *err, size_t errlen) TF_MUSTCHECK;

#endif
