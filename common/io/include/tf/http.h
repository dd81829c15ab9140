/*
 * tf/http.h - the HTTP server every tickflow service runs (libmicrohttpd):
 * one struct tf_http_req per request, its body capped, bearer tokens on
 * mutating methods. Successes name TF_HTTP_OK/_CREATED/_ACCEPTED; errors
 * take their status from an enum tf_rc (tf_http_reply_rc*), never a number.
 */
#ifndef TF_HTTP_H
#define TF_HTTP_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tf/log.h"
#include "tf/rc.h"

#define TF_HTTP_MAX_BODY (1024 * 1024)

/* The success statuses a reply names. */
#define TF_HTTP_OK       200
#define TF_HTTP_CREATED  201
#define TF_HTTP_ACCEPTED 202

struct tf_http_req;
struct tf_http_server;

typedef void (*tf_http_handler_fn)(struct tf_http_req *req, void *ud);

struct tf_http_opts {
    const char *addr;  /* IPv4 address to bind, NULL or "" for all */
    long port;         /* 0 picks a free port: see tf_http_port() */
    const char *token; /* bearer token for mutating calls, NULL for none */
    size_t max_body;   /* 0 means TF_HTTP_MAX_BODY */
    /* A request (line, headers, body) must arrive within this many seconds
     * of its request line, else 408 (late headers) or the connection closes
     * (a late body). A connection silent for 120 s closes. 0: 30. */
    long read_timeout_s;
    /* Open connections per client address; a request on one more answers
     * 429 with Retry-After and closes. 0: 128; below 0: no cap. */
    long client_connections;
    /* Requests per second per client address (a burst of two seconds'
     * worth); over it 429 with Retry-After. /healthz, /readyz and /metrics
     * are never limited. 0: no limit. */
    long client_rate;
    tf_http_handler_fn handler;
    void *ud;
};

/** Starts the daemon. On failure returns TF_ERR_IO with the reason in err. */
enum tf_rc tf_http_start(const struct tf_http_opts *opts, struct tf_http_server **out, char *err,
                         size_t errlen) TF_MUSTCHECK;

/** The port the daemon is bound to. */
int tf_http_port(const struct tf_http_server *srv);

/** Stops accepting, finishes requests in flight, frees the server. NULL-safe. */
void tf_http_stop(struct tf_http_server *srv);

const char *tf_http_method(const struct tf_http_req *req);
const char *tf_http_path(const struct tf_http_req *req);
/** A query-string argument, or NULL. */
const char *tf_http_query(const struct tf_http_req *req, const char *key);
/** The status of the answer given so far (0 before one). */
int tf_http_status(const struct tf_http_req *req);
/** A request header, or NULL. */
const char *tf_http_header(const struct tf_http_req *req, const char *name);
/** The request body (NUL-terminated) and its length. */
const char *tf_http_body(const struct tf_http_req *req, size_t *len);
/** The log context of the request (request id set; exec empty until set). */
struct tf_logctx *tf_http_logctx(struct tf_http_req *req);

/**
 * Answers 405 for a resource that takes only the methods in allow
 * ("GET, POST"), which the Allow header lists (RFC 9110).
 */
void tf_http_reply_method(struct tf_http_req *req, const char *allow);

/** Adds a response header (copied). */
void tf_http_set_header(struct tf_http_req *req, const char *name, const char *value);

/**
 * Answers with body (taken: freed with free()). status is a TF_HTTP_* name,
 * or tf_rc_http_status(rc) for a body that is not tickflow's error shape
 * (a vendor's error, a readiness report).
 */
void tf_http_reply_take(struct tf_http_req *req, int status, const char *content_type, char *body,
                        size_t len);

/** Answers with json printed compactly (json is borrowed); status as for tf_http_reply_take(). */
void tf_http_reply_json(struct tf_http_req *req, int status, const cJSON *json);

/**
 * Answers the error rc stands for: status tf_rc_http_status(rc), body
 * {"error":{"code":tf_rc_str(rc),"message":msg}}, logged once (as an error
 * from 500 up). An rc of TF_OK is a defect and answers as TF_ERR_INTERNAL.
 */
void tf_http_reply_rc(struct tf_http_req *req, enum tf_rc rc, const char *msg);

/** As tf_http_reply_rc(), the message formatted. */
void tf_http_reply_rcf(struct tf_http_req *req, enum tf_rc rc, const char *fmt, ...)
    TF_PRINTF(3, 4);

/**
 * As tf_http_reply_rcf() with a finer code in the body than rc's name
 * ("invalid_json" for a TF_ERR_INVALID); the status is still rc's.
 */
void tf_http_reply_rc_code(struct tf_http_req *req, enum tf_rc rc, const char *code,
                           const char *fmt, ...) TF_PRINTF(4, 5);

/** Closes the connection without any answer (for simulating a server that resets). */
void tf_http_drop(struct tf_http_req *req);

/**
 * Matches path against a pattern whose "*" stands for one non-empty segment;
 * copies up to ncap segments into caps (each capsize bytes). Returns 1 on a
 * match, 0 otherwise (also when a segment is too long).
 */
int tf_http_match(const char *path, const char *pattern, char caps[][128], int ncap);

#endif
