/*
 * extract.h - declarations shared by the extract service's files.
 *
 * An extraction runs a provider over the job's tickers on a few worker
 * threads (fetch.c); the provider (polygon.c) builds its requests, tells a
 * good answer from an error and follows its paging, through extract_get()
 * and extract_land().
 */
#ifndef EXTRACT_H
#define EXTRACT_H

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "tf/buf.h"
#include "tf/gz.h"
#include "tf/svc.h"

/* extract's own settings (the runtime loads them from main.c's table). */
struct extract_cfg {
    long concurrency;                /* TICKFLOW_EXTRACT_CONCURRENCY */
    long timeout_ms;                 /* TICKFLOW_EXTRACT_TIMEOUT_MS */
    long polygon_rate_per_minute;    /* TICKFLOW_POLYGON_RATE_PER_MINUTE */
    long twelvedata_rate_per_minute; /* TICKFLOW_TWELVEDATA_RATE_PER_MINUTE */
    char *polygon_base;
    char *polygon_key;
    char *twelvedata_base;
    char *twelvedata_key;
};

/* What extract needs of a job_config row. */
struct extract_job {
    char provider[32];
    char dataset[32];
    long multiplier;
    char timespan[16];
    int adjusted;
    long page_limit;
    long rate_per_minute; /* the request budget of the provider key */
};

/* How a provider judged one answer. */
enum extract_verdict {
    EXTRACT_PAGE_OK,    /* data (possibly no bars) */
    EXTRACT_PAGE_RETRY, /* worth asking again (throttled, truncated, server trouble) */
    EXTRACT_PAGE_FAIL,  /* an error answer: this ticker ends with it */
};

struct extract_fetch;

/* One worker thread of an extraction: its HTTP handle and buffers. */
struct extract_worker {
    struct extract_fetch *fetch;
    struct tf_run *run;
    const struct extract_job *job;
    const char *api_key;
    CURL *curl;
    struct curl_slist *headers;
    struct tf_buf body;        /* the last answer, as received */
    struct tf_buf text;        /* its JSON, when it came gzip-encoded */
    const struct tf_buf *json; /* body or text: the answer's JSON */
    int gzipped;               /* the answer had Content-Encoding: gzip */
    struct tf_buf packed;      /* an identity answer, compressed for the lake */
    struct tf_zstd *zstd;      /* this worker's compressor */
    long status;
    long retry_after;  /* seconds, -1 when the answer had none */
    long ticker_pages; /* of the ticker being fetched */
    long long ticker_bars;
    char base[512]; /* provider base URL without a trailing '/' */
};

struct extract_provider {
    const char *name;
    /**
     * 1 when judge() and the provider read only top-level members: the
     * answer is then checked by a scanner instead of parsed, and arrays and
     * objects appear in root as numbers, their element counts.
     */
    int shallow;
    /** The request's path and query as audited: placeholders, the key as "***". */
    const char *request_template;
    /**
     * Judges an answer (root may be NULL when the body is not JSON); sets
     * *bars for a good one and a reason (no secrets) for the others.
     */
    enum extract_verdict (*judge)(long status, const cJSON *root, long long *bars, char *why,
                                  size_t whylen);
    /** Fetches and lands every page of one ticker. */
    enum tf_rc (*ticker)(struct extract_worker *w, const char *ticker, char *err, size_t errlen);
};

extern const struct extract_provider extract_polygon;
extern const struct extract_provider extract_twelvedata;

/**
 * Judges one answer of provider as extract_get() does: the body (text, len:
 * the JSON, after any gzip) is read into *root (scanned when the provider
 * is shallow, parsed otherwise; NULL when it is not a JSON object) and
 * handed to provider->judge with status. *root is the caller's to delete
 * whatever the verdict; *bars is set for EXTRACT_PAGE_OK, why for the
 * others. No I/O.
 */
enum extract_verdict extract_judge(const struct extract_provider *provider, long status,
                                   const char *text, size_t len, cJSON **root, long long *bars,
                                   char *why, size_t whylen);

/**
 * Runs provider over the run's tickers, at most `concurrency` at a time,
 * and records what happened in the run's objects and the audit table.
 * A ticker that fails does not stop the others; the run fails if any did.
 */
enum tf_rc extract_fetch_run(struct tf_run *run, const struct extract_job *job,
                             const struct extract_provider *provider, const char *base_url,
                             const char *api_key, long concurrency);

/**
 * Takes up to want requests from the provider key's budget (a token bucket
 * in PostgreSQL shared by every replica). Returns 0 with *granted >= 1 when
 * requests may go, the milliseconds to wait before asking again, or -1 when
 * the database could not be asked. conn is used by one thread at a time.
 */
long extract_quota_take(PGconn *conn, const char *bucket, long per_minute, int want, int *granted);

/**
 * GETs url (key included), retrying what is worth retrying, and returns the
 * parsed good answer in *root (caller deletes). what names the request in
 * logs and errors and must hold no secret. TF_ERR_UPSTREAM with err set
 * when the provider answered with an error or kept failing.
 */
enum tf_rc extract_get(struct extract_worker *w, const char *url, const char *what, cJSON **root,
                       long long *bars, char *err, size_t errlen);

/**
 * Lands the last answer of w as page pageno of ticker in bronze (a gzip
 * answer byte for byte, .json.gz; any other zstd-compressed, .json.zst) and
 * records it.
 */
enum tf_rc extract_land(struct extract_worker *w, const char *ticker, int pageno, long long bars,
                        const cJSON *root, char *err, size_t errlen);

/* The longest window one execution may cover. */
#define EXTRACT_MAX_WINDOW_SECONDS (31LL * 86400)

/**
 * The window a POST names (window.c): ws and we as ISO-8601 times, taken as
 * given (not aligned to the bar). TF_ERR_INVALID with err set when either
 * cannot be read, when *end <= *start, when *end is more than one bar
 * (bar seconds) past now, or when it spans more than 31 days.
 */
enum tf_rc extract_window_given(const char *ws, const char *we, int64_t bar, int64_t now,
                                int64_t *start, int64_t *end, char *err, size_t errlen);

/**
 * The window of a run that names none (window.c): it ends at now truncated
 * to the bar and starts overlap_s before last (the end of the job's last
 * successful window; 0 when none), or interval_s before its end for a
 * job's first run, truncated to the bar; a window longer than 31 days is
 * cut to 31 days (its end truncated to the bar). TF_ERR_CONFLICT with err
 * set ("job <job> is up to date") when it would not end after last and
 * after its start. Truncation is on the epoch (bar > 0; times after 1970).
 */
enum tf_rc extract_window_next(const char *job, int64_t bar, long overlap_s, long interval_s,
                               int64_t last, int64_t now, int64_t *start, int64_t *end, char *err,
                               size_t errlen);

/**
 * The plan of a new extract record from a POST body (window.c): the job
 * (job_name, which must exist and be enabled), and the window the body
 * names or else the job's incremental window (extract_window_next from the
 * end of its last successful extract). *owned holds the job read (caller
 * deletes after the insert); svc may be NULL. Errors carry a message:
 * TF_ERR_INVALID, TF_ERR_NOT_FOUND (no such job), TF_ERR_CONFLICT (disabled,
 * or up to date), TF_ERR_DB.
 */
enum tf_rc extract_plan(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                        struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen);

/** The job_config row of name as JSON (new object). TF_ERR_NOT_FOUND when absent. */
enum tf_rc extract_job_get(PGconn *conn, const char *name, cJSON **out);

/** Checks a PUT /v1/jobs/{job} body as the route does, nothing written; err says why not. */
enum tf_rc extract_job_check(const cJSON *body, char *err, size_t errlen) TF_MUSTCHECK;

/**
 * The stage query argument of a read through a stage (gaps, the console's
 * calendar) into *stage: extract, transform or aggregate (the default).
 * Returns 0 after answering 400 for any other.
 */
int extract_query_stage(struct tf_http_req *req, const char **stage);

/** Routes of jobs.c: /v1/jobs, /v1/jobs/{job}, /v1/jobs/{job}/gaps. 1 when answered. */
int extract_jobs_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn);

/** Routes of backfill.c: /v1/backfills, /v1/backfills/{id}. 1 when answered. */
int extract_backfills_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn);

/* The longest backfill, in days. */
#define EXTRACT_BACKFILL_MAX_DAYS 366

/**
 * Splits the UTC days from_day..to_day (days since 1970-01-01, both
 * included) into one window per day, [midnight, next midnight), into
 * days[0..max). Returns how many, or -1 when to_day is before from_day,
 * the range spans more than EXTRACT_BACKFILL_MAX_DAYS days, or more than
 * max.
 */
int extract_backfill_days(int64_t from_day, int64_t to_day, struct tf_exec_window *days, int max);

/** The backfill gate: releases and queues the next days of every backfill (backfill.c). */
void extract_backfill_release(struct tf_svc *svc, PGconn *conn);

/** extract's own scheduling, each tick of the runtime: backfill days, then scheduled jobs. */
void extract_tick(struct tf_svc *svc, PGconn *conn);

/** GET /v1/executions/{id}/audit. 1 when answered. */
int extract_audit_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn);

#endif
