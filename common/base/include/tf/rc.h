/*
 * tf/rc.h - the one result code every tickflow function returns.
 *
 * Lower layers return a code (and at most an errbuf with the reason); the
 * HTTP layer maps the code to a status once (tf_rc_http_status(), used by
 * the tf_http_reply_rc* calls), where the error is logged. The errors say
 * what went wrong; the outcomes at the end say what a caller should do
 * next, and no client ever sees one.
 */
#ifndef TF_RC_H
#define TF_RC_H

enum tf_rc {
    TF_OK = 0,
    TF_ERR_NOMEM,        /* 500 */
    TF_ERR_INVALID,      /* bad input from a caller: 400 */
    TF_ERR_NOT_FOUND,    /* 404 */
    TF_ERR_CONFLICT,     /* state does not allow it: 409 */
    TF_ERR_TOO_LARGE,    /* 413 */
    TF_ERR_AUTH,         /* 401 */
    TF_ERR_DB,           /* PostgreSQL failed: 503 */
    TF_ERR_KAFKA,        /* Kafka failed: 503 */
    TF_ERR_UPSTREAM,     /* a market-data API failed: 502 */
    TF_ERR_IO,           /* local file system: 500 */
    TF_ERR_LEASE,        /* the stage's lease moved to another owner: 409 */
    TF_ERR_DRAINING,     /* the process is shutting down, work handed back: 503 */
    TF_ERR_METHOD,       /* the resource does not take the request's method: 405 */
    TF_ERR_RATE_LIMITED, /* too many requests (marketsim's providers): 429 */
    TF_ERR_UNAVAILABLE,  /* the server cannot answer for now (marketsim's providers): 503 */
    TF_ERR_TIMEOUT,      /* the client took too long to send its request: 408 */
    TF_ERR_INTERNAL,     /* a defect: a handler gave no answer: 500 */

    /* Outcomes: a caller branches on them; one that reaches a reply is a
     * defect and answers 500. */
    TF_DEAD_LETTER,  /* an event no retry can handle: dead-letter it, then commit */
    TF_CHECK_FAILED, /* a data-quality check of severity fail failed: the run fails, gold stays */
    TF_FULL_READ,    /* the bars kept from the load no longer match silver: read it whole */
};

/** The last value of enum tf_rc (for tests that walk every code). */
#define TF_RC_LAST TF_FULL_READ

/** Returns a short static name for rc ("conflict"), the code of its error body. */
const char *tf_rc_str(enum tf_rc rc);

/**
 * Returns the HTTP status that rc maps to (TF_ERR_CONFLICT -> 409; TF_OK ->
 * 200). The only place a status is chosen for a result: every error reply
 * and every reply shaped like a vendor's error takes its status from here.
 */
int tf_rc_http_status(enum tf_rc rc);

#ifdef __GNUC__
#define TF_MUSTCHECK    __attribute__((warn_unused_result))
#define TF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TF_MUSTCHECK
#define TF_PRINTF(a, b)
#endif

#define TF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
