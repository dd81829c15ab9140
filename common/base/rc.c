/*
 * rc.c - names and HTTP statuses of enum tf_rc: the one mapping from a
 * result to what a client sees.
 */
#include "tf/rc.h"

const char *tf_rc_str(enum tf_rc rc)
{
    switch (rc) {
    case TF_OK:
        return "ok";
    case TF_ERR_NOMEM:
        return "out_of_memory";
    case TF_ERR_INVALID:
        return "invalid_argument";
    case TF_ERR_NOT_FOUND:
        return "not_found";
    case TF_ERR_CONFLICT:
        return "conflict";
    case TF_ERR_TOO_LARGE:
        return "too_large";
    case TF_ERR_AUTH:
        return "unauthorized";
    case TF_ERR_DB:
        return "database_unavailable";
    case TF_ERR_KAFKA:
        return "kafka_unavailable";
    case TF_ERR_UPSTREAM:
        return "upstream_failed";
    case TF_ERR_IO:
        return "io_error";
    case TF_ERR_LEASE:
        return "lease_lost";
    case TF_ERR_DRAINING:
        return "draining";
    case TF_ERR_METHOD:
        return "method_not_allowed";
    case TF_ERR_RATE_LIMITED:
        return "rate_limited";
    case TF_ERR_UNAVAILABLE:
        return "unavailable";
    case TF_ERR_TIMEOUT:
        return "request_timeout";
    case TF_ERR_INTERNAL:
        return "internal";
    case TF_DEAD_LETTER:
        return "dead_letter";
    case TF_CHECK_FAILED:
        return "check_failed";
    case TF_FULL_READ:
        return "full_read";
    }
    return "unknown";
}

int tf_rc_http_status(enum tf_rc rc)
{
    switch (rc) {
    case TF_OK:
        return 200;
    case TF_ERR_INVALID:
        return 400;
    case TF_ERR_AUTH:
        return 401;
    case TF_ERR_NOT_FOUND:
        return 404;
    case TF_ERR_METHOD:
        return 405;
    case TF_ERR_TIMEOUT:
        return 408;
    case TF_ERR_CONFLICT:
    case TF_ERR_LEASE:
        return 409;
    case TF_ERR_TOO_LARGE:
        return 413;
    case TF_ERR_RATE_LIMITED:
        return 429;
    case TF_ERR_UPSTREAM:
        return 502;
    case TF_ERR_DB:
    case TF_ERR_KAFKA:
    case TF_ERR_DRAINING:
    case TF_ERR_UNAVAILABLE:
        return 503;
    case TF_ERR_NOMEM:
    case TF_ERR_IO:
    case TF_ERR_INTERNAL:
        return 500;
    case TF_DEAD_LETTER: /* outcomes never reach a client: a defect if one does */
    case TF_CHECK_FAILED:
    case TF_FULL_READ:
        return 500;
    }
    return 500;
}
