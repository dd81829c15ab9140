/*
 * marketsim.h - what marketsim's main.c, aggs.c and twelvedata.c share
 * (service-private).
 */
#ifndef MARKETSIM_H
#define MARKETSIM_H

#include <stdatomic.h>
#include <stdint.h>

#include "faults.h"
#include "tf/buf.h"
#include "tf/http.h"

#define MARKETSIM_POLYGON    "polygon"
#define MARKETSIM_TWELVEDATA "twelvedata"

/* Read-only once the daemon runs, except port (set right after binding); ctl locks itself. */
struct marketsim_app {
    uint64_t seed;
    int gzip;                  /* 1: gzip answers for clients that accept it */
    const char *api_key;       /* NULL: any non-empty key is accepted */
    const char *public_url;    /* base of next_url without a trailing '/'; NULL: http://<Host> */
    atomic_int port;           /* bound port, for next_url when a request has no Host */
    struct marketsim_ctl *ctl; /* fault rules and request counts */
};

/* One data request (Polygon aggregates or Twelve Data time_series) being answered. */
struct marketsim_call {
    struct tf_http_req *req;
    struct marketsim_app *app;
    const char *provider;         /* MARKETSIM_POLYGON or MARKETSIM_TWELVEDATA */
    char rid[33];                 /* Polygon's request_id for this answer */
    struct marketsim_fault fault; /* drawn for this request; kind NONE when none */
};

/** A Polygon-style request_id: 32 lowercase hex digits, a hash of the request (out >= 33). */
void marketsim_request_id(struct tf_http_req *req, char *out, size_t outlen);

/** 1 when got equals the configured key want (constant time in want's length). */
int marketsim_key_matches(const char *want, const char *got);

/**
 * Answers a data request with body (taken: freed with free()) and the
 * status of rc (tf_rc_http_status(): TF_OK is 200, also for a vendor's
 * error sent with 200; TF_ERR_RATE_LIMITED 429, ...). A truncate fault
 * drawn for the call cuts the body to its first half here, so the client
 * gets a complete HTTP response whose Content-Length matches the cut body.
 */
void marketsim_reply(struct marketsim_call *call, enum tf_rc rc, const char *content_type,
                     char *body, size_t len);

/**
 * Answers the JSON body in buf (taken) as marketsim_reply() does, or, when
 * building it failed (built is not TF_OK), 500 with no body.
 */
void marketsim_reply_json(struct marketsim_call *call, enum tf_rc outcome, enum tf_rc built,
                          struct tf_buf *buf);

/**
 * Answers {"status":<st>,"request_id":<rid>,<field>:<msg>}, Polygon's error
 * shape (field is "error" or "message"), with rc's status as for
 * marketsim_reply(), and logs the reply once.
 */
void marketsim_reply_status(struct marketsim_call *call, enum tf_rc rc, const char *st,
                            const char *field, const char *msg);

/**
 * Polygon's key check: ?apiKey= or "Authorization: Bearer". Returns 1 when
 * the request may go on, or answers 401 and returns 0.
 */
int marketsim_polygon_auth(struct marketsim_call *call);

/**
 * Serves GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}; caps holds
 * the five path segments in that order. Always answers.
 */
void marketsim_handle_aggs(struct marketsim_call *call, char caps[][128]);

/**
 * Answers Twelve Data's error body {"code":code,"message":msg,"status":"error"}
 * (code is the body's own number) with rc's status as for marketsim_reply():
 * TF_OK (200) for Twelve Data's historical errors.
 */
void marketsim_td_reply_error(struct marketsim_call *call, enum tf_rc rc, int code,
                              const char *msg);

/**
 * Twelve Data's key check: ?apikey= or "Authorization: apikey <key>".
 * Returns 1 when the request may go on, or answers code 401 and returns 0.
 */
int marketsim_td_auth(struct marketsim_call *call);

/** Serves GET /time_series. Always answers. */
void marketsim_handle_time_series(struct marketsim_call *call);

#endif
