/*
 * tf/rc.h - the one result code every tickflow function returns.
 *
 * Lower layers return a code (and at most an errbuf with the reason); the
 * HTTP layer maps the code to a status once, where the error is logged.
 */
#ifndef TF_RC_H
#define TF_RC_H

enum tf_rc {
    TF_OK = 0,
    TF_ERR_NOMEM,
    TF_ERR_INVALID,   /* bad input from a caller: 400 */
    TF_ERR_NOT_FOUND, /* 404 */
    TF_ERR_CONFLICT,  /* state does not allow it: 409 */
    TF_ERR_TOO_LARGE, /* 413 */
    TF_ERR_AUTH,      /* 401 */
    TF_ERR_DB,        /* PostgreSQL failed: 503 */
    TF_ERR_KAFKA,     /* Kafka failed: 503 */
    TF_ERR_UPSTREAM,  /* a market-data API failed: 502 */
    TF_ERR_IO,        /* local file system: 500 */
    TF_ERR_LEASE,     /* the stage's lease moved to another owner */
    TF_ERR_DRAINING,  /* the process is shutting down: work handed back */
};

/** Returns a short static name for rc ("conflict"). */
const char *tf_rc_str(enum tf_rc rc);

/** Returns the HTTP status that rc maps to (TF_ERR_CONFLICT -> 409). */
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
