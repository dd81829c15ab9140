/*
 * svc_metrics.c - histograms and route names for /metrics (svc_metrics.h).
 */
#include "svc_metrics.h"

#include <string.h>

/* Upper bounds in microseconds: 1 ms to 5 minutes, for requests and runs alike. */
static const int64_t bounds_us[SVC_HIST_BUCKETS] = {
    1000,    5000,    10000,   50000,    100000,   250000,    500000,
    1000000, 2500000, 5000000, 10000000, 60000000, 300000000,
};

void svc_hist_observe(struct svc_hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    for (int i = 0; i < SVC_HIST_BUCKETS; i++)
        if (us <= bounds_us[i])
            atomic_fetch_add(&h->le[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, us);
}

enum tf_rc svc_hist_write(struct tf_buf *out, const char *name, const char *labels,
                          const struct svc_hist *h)
{
    enum tf_rc rc = TF_OK;

    for (int i = 0; i < SVC_HIST_BUCKETS && rc == TF_OK; i++)
        rc = tf_buf_printf(out, "%s_bucket{%s,le=\"%g\"} %lld\n", name, labels,
                           (double)bounds_us[i] / 1e6, (long long)atomic_load(&h->le[i]));
    if (rc == TF_OK)
        rc = tf_buf_printf(
            out, "%s_bucket{%s,le=\"+Inf\"} %lld\n%s_sum{%s} %.6f\n%s_count{%s} %lld\n", name,
            labels, (long long)atomic_load(&h->count), name, labels,
            (double)atomic_load(&h->sum_us) / 1e6, name, labels, (long long)atomic_load(&h->count));
    return rc;
}

static const char *const route_names[SVC_NROUTES] = {
    [SVC_R_HEALTHZ] = "/healthz",
    [SVC_R_READYZ] = "/readyz",
    [SVC_R_METRICS] = "/metrics",
    [SVC_R_OPENAPI] = "/openapi.json",
    [SVC_R_UI] = "/ui",
    [SVC_R_EXECUTIONS] = "/v1/executions",
    [SVC_R_EXECUTION] = "/v1/executions/{id}",
    [SVC_R_EXECUTION_SUB] = "/v1/executions/{id}/{view}",
    [SVC_R_JOBS] = "/v1/jobs",
    [SVC_R_JOB] = "/v1/jobs/{job}",
    [SVC_R_JOB_SUB] = "/v1/jobs/{job}/{view}",
    [SVC_R_BACKFILLS] = "/v1/backfills",
    [SVC_R_BACKFILL] = "/v1/backfills/{id}",
    [SVC_R_RUNS] = "/v1/runs",
    [SVC_R_RUN] = "/v1/runs/{id}",
    [SVC_R_RUN_SUB] = "/v1/runs/{id}/{view}",
    [SVC_R_OTHER] = "other",
};

const char *svc_route_name(enum svc_route r)
{
    return r >= 0 && r < SVC_NROUTES ? route_names[r] : "other";
}

/* The number of '/'-separated segments after prefix in path, 0 for none, -1 if not under it. */
static int segments_after(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    int segs = 0;

    if (strncmp(path, prefix, n) != 0 || (path[n] && path[n] != '/'))
        return -1;
    for (const char *p = path + n; *p; p++)
        if (*p == '/' && p[1])
            segs++;
    return segs;
}

enum svc_route svc_route_of(const char *path)
{
    static const struct {
        const char *prefix;
        enum svc_route base;
        int has_sub; /* base + 1 is {id}, base + 2 is {id}/{view} */
    } coll[] = {
        {"/v1/executions", SVC_R_EXECUTIONS, 1},
        {"/v1/jobs", SVC_R_JOBS, 1},
        {"/v1/backfills", SVC_R_BACKFILLS, 0},
        {"/v1/runs", SVC_R_RUNS, 1},
    };

    if (!path)
        return SVC_R_OTHER;
    for (enum svc_route r = SVC_R_HEALTHZ; r <= SVC_R_OPENAPI; r++)
        if (strcmp(path, route_names[r]) == 0)
            return r;
    if (segments_after(path, "/ui") >= 0)
        return SVC_R_UI;
    for (size_t i = 0; i < sizeof(coll) / sizeof(coll[0]); i++) {
        int segs = segments_after(path, coll[i].prefix);

        if (segs == 0)
            return coll[i].base;
        if (segs == 1)
            return (enum svc_route)(coll[i].base + 1);
        if (segs == 2 && coll[i].has_sub)
            return (enum svc_route)(coll[i].base + 2);
    }
    return SVC_R_OTHER;
}
