/*
 * extract.h - declarations shared by the extract service's files.
 */
#ifndef EXTRACT_H
#define EXTRACT_H

#include <cjson/cJSON.h>

#include "tf/svc.h"

/* What extract needs of a job_config row. */
struct extract_job {
    char provider[32];
    char dataset[32];
    long multiplier;
    char timespan[16];
    int adjusted;
    long page_limit;
};

/** The job_config row of name as JSON (new object). TF_ERR_NOT_FOUND when absent. */
enum tf_rc extract_job_get(PGconn *conn, const char *name, cJSON **out);

/** Routes of jobs.c: /v1/jobs, /v1/jobs/{job}, /v1/jobs/{job}/gaps. 1 when answered. */
int extract_jobs_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn);

/** Routes of backfill.c: /v1/backfills, /v1/backfills/{id}. 1 when answered. */
int extract_backfills_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn);

/** The backfill scheduler: releases the next days of every backfill (sweeper tick). */
void extract_tick(struct tf_svc *svc, PGconn *conn);

/**
 * Fetches every ticker of the run from Polygon's aggregates endpoint,
 * writes each page as received to the bronze lake and appends one object
 * per page to run->objects. Returns TF_OK, or an error with run->error.
 */
enum tf_rc extract_polygon(struct tf_run *run, const struct extract_job *job);

#endif
