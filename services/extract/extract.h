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

/**
 * Fetches every ticker of the run from Polygon's aggregates endpoint,
 * writes each page as received to the bronze lake and appends one object
 * per page to run->objects. Returns TF_OK, or an error with run->error.
 */
enum tf_rc extract_polygon(struct tf_run *run, const struct extract_job *job);

#endif
