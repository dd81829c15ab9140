/*
 * faults.h - marketsim's test controls: faults on demand and request counts.
 *
 * A rule set (replaced whole by POST /_sim/faults) says which data requests
 * get which fault; request statistics count every data request by provider
 * and by ticker. Both live in one struct marketsim_ctl, safe to use from
 * every connection thread at once. No HTTP here: main.c routes the control
 * API onto these functions, and the unit tests call them directly.
 */
#ifndef MARKETSIM_FAULTS_H
#define MARKETSIM_FAULTS_H

#include <stddef.h>

#include "tf/buf.h"
#include "tf/rc.h"

#define MARKETSIM_MAX_RULES     64
#define MARKETSIM_DEFAULT_RETRY 1L    /* seconds, for 429's Retry-After */
#define MARKETSIM_DEFAULT_DELAY 2000L /* ms, for slow */
#define MARKETSIM_DEFAULT_LATE  5L    /* minutes, for late */
#define MARKETSIM_MAX_DELAY     60000L
#define MARKETSIM_MAX_RETRY     3600L
#define MARKETSIM_MAX_LATE      10080L /* a week of minutes */

enum marketsim_fault_kind {
    MARKETSIM_FAULT_NONE = 0,
    MARKETSIM_FAULT_429,       /* HTTP 429, Retry-After, the provider's 429 body */
    MARKETSIM_FAULT_500,       /* HTTP 500, a short plain-text body */
    MARKETSIM_FAULT_503,       /* HTTP 503, a short HTML body */
    MARKETSIM_FAULT_SLOW,      /* the normal answer after delay_ms */
    MARKETSIM_FAULT_TRUNCATE,  /* the normal answer's first half, as a whole response */
    MARKETSIM_FAULT_MALFORMED, /* HTTP 200, a body that is not JSON */
    MARKETSIM_FAULT_ERROR200,  /* HTTP 200, the provider's "not entitled" error body */
    MARKETSIM_FAULT_LATE,      /* the normal answer without the window's last minutes */
    MARKETSIM_FAULT_RESET,     /* the connection closed without an answer */
};

/* A fault as one request draws it. */
struct marketsim_fault {
    enum marketsim_fault_kind kind;
    long retry_after; /* seconds; 429 always, 503 when retry_after_set */
    int retry_after_set;
    long delay_ms;     /* slow */
    long late_minutes; /* late */
};

/* One rule as POST /_sim/faults gives it. */
struct marketsim_fault_rule {
    char provider[16]; /* "polygon", "twelvedata" or "*" */
    char ticker[64];   /* as given, or "*" */
    char canon[64];    /* ticker's canonical name (ms_gen_canonical()), "*" for any */
    struct marketsim_fault fault;
    long times;     /* as given: N >= 0, or -1 for forever */
    long remaining; /* counts left (-1: forever) */
    long hits;      /* requests served this fault */
};

struct marketsim_ctl;

/** A new, empty control state (no rules, zero counts), or NULL out of memory. Free with _free. */
struct marketsim_ctl *marketsim_ctl_new(void);

/** Frees the control state. NULL-safe. */
void marketsim_ctl_free(struct marketsim_ctl *ctl);

/** The name of a fault kind as the control API spells it ("429", "slow", ...). */
const char *marketsim_fault_name(enum marketsim_fault_kind kind);

/**
 * Parses a POST /_sim/faults body (len bytes, NUL-terminated, as
 * tf_http_body() gives it), {"rules":[{...}, ...]}, into rules[]
 * (room for MARKETSIM_MAX_RULES). Keys of a rule: "fault" (required: a name
 * of marketsim_fault_name(), or the number 429, 500 or 503), "provider"
 * ("polygon", "twelvedata" or "*", default "*"), "ticker" (default "*"),
 * "times" (-1 for forever or 0..1e9, default 1), "retry_after" (0..3600 s,
 * default 1), "delay_ms" (0..60000, default 2000), "late_minutes"
 * (1..10080, default 5). Unknown keys are refused, so a typo cannot pass
 * silently. Returns TF_OK with *n set, or TF_ERR_INVALID with the reason in
 * err.
 */
enum tf_rc marketsim_faults_parse(const char *body, size_t len, struct marketsim_fault_rule *rules,
                                  size_t *n, char *err, size_t errlen) TF_MUSTCHECK;

/** Replaces the rule set with rules[0..n) (copied). */
void marketsim_faults_replace(struct marketsim_ctl *ctl, const struct marketsim_fault_rule *rules,
                              size_t n);

/**
 * Draws the fault of one data request: the first rule whose provider and
 * ticker match and that has counts left gives up one count (none for
 * times = -1) and its fault goes to *out. A ticker matches when the rule's
 * is "*" or names the same instrument (canonical names equal, so "EUR/USD"
 * matches "C:EURUSD"). Returns 1 with *out set, 0 (out->kind NONE) when no
 * rule matches.
 */
int marketsim_faults_take(struct marketsim_ctl *ctl, const char *provider, const char *ticker,
                          struct marketsim_fault *out);

/** Appends {"rules":[...]} with each rule's settings, remaining counts and hits. */
enum tf_rc marketsim_faults_render(struct marketsim_ctl *ctl, struct tf_buf *buf) TF_MUSTCHECK;

/** Counts one data request (ticker as requested; NULL or "" counts no ticker). */
void marketsim_stats_count(struct marketsim_ctl *ctl, const char *provider, const char *ticker);

/**
 * Appends {"requests":N,"by_provider":{"polygon":N,"twelvedata":N},
 * "by_ticker":{...},"faults_served":N}; tickers in order of first request.
 */
enum tf_rc marketsim_stats_render(struct marketsim_ctl *ctl, struct tf_buf *buf) TF_MUSTCHECK;

/** Sets every count back to zero. */
void marketsim_stats_reset(struct marketsim_ctl *ctl);

#endif
