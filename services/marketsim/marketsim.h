/*
 * marketsim.h - what marketsim's main.c and aggs.c share (service-private).
 */
#ifndef MARKETSIM_H
#define MARKETSIM_H

#include <stdatomic.h>
#include <stdint.h>

#include "tf/buf.h"
#include "tf/http.h"

/* Read-only once the daemon runs, except port (set right after binding). */
struct marketsim_app {
    uint64_t seed;
    const char *api_key;    /* NULL: any non-empty key is accepted */
    const char *public_url; /* base of next_url without a trailing '/'; NULL: http://<Host> */
    atomic_int port;        /* bound port, for next_url when a request has no Host */
};

/** A Polygon-style request_id: 32 lowercase hex digits, a hash of the request (out >= 33). */
void marketsim_request_id(struct tf_http_req *req, char *out, size_t outlen);

/** Appends s to buf as a JSON string, quotes included. */
enum tf_rc marketsim_json_str(struct tf_buf *buf, const char *s) TF_MUSTCHECK;

/**
 * Answers {"status":<st>,"request_id":<rid>,<field>:<msg>}, Polygon's error
 * shape (field is "error" or "message"), and logs the reply once.
 */
void marketsim_reply_status(struct tf_http_req *req, int status, const char *rid, const char *st,
                            const char *field, const char *msg);

/**
 * Serves GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}; caps holds
 * the five path segments in that order. Always answers.
 */
void marketsim_handle_aggs(struct tf_http_req *req, struct marketsim_app *app, char caps[][128],
                           const char *rid);

#endif
