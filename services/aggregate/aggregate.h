/*
 * aggregate.h - what the aggregate service's files share (service-private).
 *
 * main.c    configuration, the stage definition, one run from start to end
 * rollup.c  hourly and daily rollups with their derived columns
 * checks.c  completeness against the trading calendar, data-quality rules,
 *           GET /v1/executions/{id}/quality
 * alerts.c  delivery of failed checks' alerts, retried from the outbox
 */
#ifndef AGGREGATE_H
#define AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "alert.h"
#include "tf/buf.h"
#include "tf/calendar.h"
#include "tf/dq.h"
#include "tf/rc.h"
#include "tf/svc.h"

/* aggregate's own settings (the runtime loads them from main.c's table). */
struct aggregate_cfg {
    struct tf_alert_cfg alert;
    long alert_max_attempts; /* TICKFLOW_ALERT_MAX_ATTEMPTS */
    long alert_retry_ms;     /* TICKFLOW_ALERT_RETRY_MS: first backoff, doubled per attempt */
};

/* One ticker of the execution. */
struct agg_ticker {
    const char *name; /* borrowed from the record */
    enum tf_market market;
    long long expected; /* bars the calendar expects in the window */
    long long actual;   /* bars silver holds in the window */
    double avg_close;   /* their average close (NAN without bars or when not needed) */
};

/* What a run works on. */
struct agg_ctx {
    struct tf_run *run;
    char span[32]; /* source timespan, e.g. "1minute" */
    long multiplier;
    char timespan[16]; /* "minute", "hour", "day" */
    int64_t bar_s;     /* one bar in seconds */
    struct agg_ticker *tickers;
    size_t ntickers;
    struct tf_buf *ticker_array; /* the names as a PostgreSQL text[] literal */
    int need_avg_close;          /* a rule checks the average close: the rollups measure it */
    long long hourly_rows, daily_rows, bars_in;
};

/**
 * Upserts the hourly and daily rollups of every bucket the window touched
 * and recomputes the derived columns of those buckets and the 20 after
 * them; on the way counts each ticker's bars in the window (actual) and,
 * when need_avg_close is set, their average close. Errors set run->error.
 */
enum tf_rc aggregate_rollups(struct agg_ctx *ctx) TF_MUSTCHECK;

/** The start of the UTC hour a bar starting at ts_us (epoch microseconds) is rolled into. */
int64_t aggregate_hour_bucket(int64_t ts_us);

/**
 * The hourly buckets [*h0, *h1) (epoch seconds) that the window [ws, we)
 * touches: from ws's hour to the hour after we's last second (ws < we,
 * both after 1970).
 */
void aggregate_window_hours(int64_t ws, int64_t we, int64_t *h0, int64_t *h1);

/** One trading day of a market and its UTC range [s, e), epoch seconds. */
struct agg_day_range {
    char day[11]; /* "YYYY-MM-DD", as tf_cal_trading_day() names it */
    int64_t s, e;
};

/**
 * The daily buckets of market m that the window [ws, we) touches, in time
 * order: every trading day (tf_cal_trading_day(), weekends included) with
 * an hour in the window, and its UTC range, a run of whole UTC hours (23
 * or 25 on New York's clock changes). *out is a new array of *n (free()).
 * TF_ERR_NOMEM.
 */
enum tf_rc aggregate_day_ranges(enum tf_market m, int64_t ws, int64_t we,
                                struct agg_day_range **out, size_t *n) TF_MUSTCHECK;

/**
 * Counts the bars the calendar expects per ticker and stores them with
 * the actual ones (aggregate_rollups() counted them) in gold.completeness.
 * Errors set run->error.
 */
enum tf_rc aggregate_completeness(struct agg_ctx *ctx) TF_MUSTCHECK;

/** What the data-quality rules found. */
struct agg_dq_outcome {
    long results;     /* rows written */
    long failed;      /* of them, not passed */
    long failed_fail; /* of them, severity fail */
    char first_fail[512];
    cJSON *warnings; /* array of strings (owned by the caller once set) */
};

/**
 * Evaluates the job's dq_rules (rules, a JSON array) over the execution's
 * window and writes gold.dq_results, queueing an alert for each failed
 * check when a channel is configured. Errors set run->error.
 */
enum tf_rc aggregate_checks(struct agg_ctx *ctx, const cJSON *rules,
                            struct agg_dq_outcome *out) TF_MUSTCHECK;

/** 1 when one of the rules (the job's dq_rules) is avg_close_between. */
int aggregate_rules_need_avg_close(const cJSON *rules);

/** GET /v1/executions/{id}/quality; returns 1 when it answered. */
int aggregate_quality_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn);

/** The runtime's tick: delivers the alerts that are due. */
void aggregate_alerts_tick(struct tf_svc *svc, PGconn *conn);

#endif
