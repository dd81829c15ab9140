/*
 * rc.c - names and HTTP statuses of enum tf_rc.
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
    case TF_ERR_CONFLICT:
    case TF_ERR_LEASE:
        return 409;
    case TF_ERR_TOO_LARGE:
        return 413;
    case TF_ERR_UPSTREAM:
        return 502;
    case TF_ERR_DB:
    case TF_ERR_KAFKA:
    case TF_ERR_DRAINING:
        return 503;
    case TF_ERR_NOMEM:
    case TF_ERR_IO:
        return 500;
    }
    return 500;
}
