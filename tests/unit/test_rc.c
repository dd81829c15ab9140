/*
 * test_rc.c - the one mapping from a result to what a client sees
 * (tf/rc.h): every enum tf_rc with its HTTP status and error code, the
 * control-flow outcomes never answering as a success, and the names
 * distinct. The table below is written from the API's contract (README,
 * the OpenAPI documents), not from rc.c.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tf/http.h"
#include "tf/rc.h"

struct want {
    enum tf_rc rc;
    int status;
    const char *code;
    int outcome; /* a control-flow outcome, never an answer */
};

/* clang-format off */
static const struct want table[] = {
    { TF_OK,               200, "ok",                   0 },
    { TF_ERR_NOMEM,        500, "out_of_memory",        0 },
    { TF_ERR_INVALID,      400, "invalid_argument",     0 },
    { TF_ERR_NOT_FOUND,    404, "not_found",            0 },
    { TF_ERR_CONFLICT,     409, "conflict",             0 },
    { TF_ERR_TOO_LARGE,    413, "too_large",            0 },
    { TF_ERR_AUTH,         401, "unauthorized",         0 },
    { TF_ERR_DB,           503, "database_unavailable", 0 },
    { TF_ERR_KAFKA,        503, "kafka_unavailable",    0 },
    { TF_ERR_UPSTREAM,     502, "upstream_failed",      0 },
    { TF_ERR_IO,           500, "io_error",             0 },
    { TF_ERR_LEASE,        409, "lease_lost",           0 },
    { TF_ERR_DRAINING,     503, "draining",             0 },
    { TF_ERR_METHOD,       405, "method_not_allowed",   0 },
    { TF_ERR_RATE_LIMITED, 429, "rate_limited",         0 },
    { TF_ERR_UNAVAILABLE,  503, "unavailable",          0 },
    { TF_ERR_TIMEOUT,      408, "request_timeout",      0 },
    { TF_ERR_INTERNAL,     500, "internal",             0 },
    { TF_DEAD_LETTER,      500, "dead_letter",          1 },
    { TF_CHECK_FAILED,     500, "check_failed",         1 },
    { TF_FULL_READ,        500, "full_read",            1 },
};
/* clang-format on */

/* Every code has its row, in enum order: a code added without one fails here. */
static void test_table_complete(void)
{
    CHECK_EQ_INT(TF_ARRAY_LEN(table), (int)TF_RC_LAST + 1);
    for (size_t i = 0; i < TF_ARRAY_LEN(table); i++)
        CHECK(table[i].rc == (enum tf_rc)i, "row %zu is code %d", i, (int)table[i].rc);
}

static void test_statuses_and_codes(void)
{
    for (size_t i = 0; i < TF_ARRAY_LEN(table); i++) {
        const struct want *w = &table[i];
        int status = tf_rc_http_status(w->rc);

        CHECK(status == w->status, "%s: status %d, want %d", w->code, status, w->status);
        CHECK_STR(tf_rc_str(w->rc), w->code);
    }
}

/* Only TF_OK is a success; every error and every outcome answers 4xx or 5xx. */
static void test_no_error_succeeds(void)
{
    for (int rc = TF_OK + 1; rc <= (int)TF_RC_LAST; rc++) {
        int status = tf_rc_http_status((enum tf_rc)rc);

        CHECK(status >= 400 && status <= 599, "%s answers %d", tf_rc_str((enum tf_rc)rc), status);
    }
    for (size_t i = 0; i < TF_ARRAY_LEN(table); i++) {
        int status = tf_rc_http_status(table[i].rc);

        if (!table[i].outcome)
            continue;
        /* An outcome that reaches a reply is a defect: 500, never 2xx or a client error. */
        CHECK(status == 500, "outcome %s answers %d", table[i].code, status);
        CHECK(table[i].rc != TF_OK, "an outcome is not TF_OK");
    }
}

/* The codes clients read in error bodies are distinct (a lease lost is not a conflict). */
static void test_names_distinct(void)
{
    for (int a = TF_OK; a <= (int)TF_RC_LAST; a++) {
        for (int b = a + 1; b <= (int)TF_RC_LAST; b++)
            CHECK(strcmp(tf_rc_str((enum tf_rc)a), tf_rc_str((enum tf_rc)b)) != 0,
                  "codes %d and %d share the name %s", a, b, tf_rc_str((enum tf_rc)a));
    }
}

/* A value outside the enum (a corrupted variable) is an internal error, not a success. */
static void test_out_of_range(void)
{
    enum tf_rc bad = (enum tf_rc)((int)TF_RC_LAST + 1);

    CHECK_STR(tf_rc_str(bad), "unknown");
    CHECK_EQ_INT(tf_rc_http_status(bad), 500);
    CHECK_EQ_INT(tf_rc_http_status((enum tf_rc) - 1), 500);
}

/* The success statuses a reply names. */
static void test_success_names(void)
{
    CHECK_EQ_INT(TF_HTTP_OK, 200);
    CHECK_EQ_INT(TF_HTTP_CREATED, 201);
    CHECK_EQ_INT(TF_HTTP_ACCEPTED, 202);
    CHECK_EQ_INT(tf_rc_http_status(TF_OK), TF_HTTP_OK);
}

int main(void)
{
    test_table_complete();
    test_statuses_and_codes();
    test_no_error_succeeds();
    test_names_distinct();
    test_out_of_range();
    test_success_names();
    return check_summary();
}
