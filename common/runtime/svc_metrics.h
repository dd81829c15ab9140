/*
 * svc_metrics.h - what a stage service counts for /metrics: histograms of
 * request and run durations, and the page in Prometheus's text format.
 * Internal to common/runtime.
 */
#ifndef TF_SVC_METRICS_H
#define TF_SVC_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "tf/buf.h"
#include "tf/rc.h"

#define SVC_HIST_BUCKETS 13

/* A histogram: counts per upper bound (svc_metrics.c's buckets), the +Inf count and the sum. */
struct svc_hist {
    atomic_llong le[SVC_HIST_BUCKETS];
    atomic_llong count;
    atomic_llong sum_us;
};

/* The routes requests are counted under (a path's template; every other path is "other"). */
enum svc_route {
    SVC_R_HEALTHZ,
    SVC_R_READYZ,
    SVC_R_METRICS,
    SVC_R_OPENAPI,
    SVC_R_UI,
    SVC_R_EXECUTIONS,
    SVC_R_EXECUTION,
    SVC_R_EXECUTION_SUB,
    SVC_R_JOBS,
    SVC_R_JOB,
    SVC_R_JOB_SUB,
    SVC_R_BACKFILLS,
    SVC_R_BACKFILL,
    SVC_R_RUNS,
    SVC_R_RUN,
    SVC_R_RUN_SUB,
    SVC_R_OTHER,
    SVC_NROUTES
};

/* Requests of a route by status class (1xx..5xx), and their handling time. */
struct svc_http_metrics {
    struct svc_hist seconds[SVC_NROUTES];
    atomic_llong by_class[SVC_NROUTES][5];
};

void svc_hist_observe(struct svc_hist *h, int64_t us);

/** The route of a request path. */
enum svc_route svc_route_of(const char *path);

/** The label of a route ("/v1/executions/{id}"). */
const char *svc_route_name(enum svc_route r);

/** Appends histogram h as metric name with labels ("stage=\"transform\""). */
enum tf_rc svc_hist_write(struct tf_buf *out, const char *name, const char *labels,
                          const struct svc_hist *h) TF_MUSTCHECK;

#endif
