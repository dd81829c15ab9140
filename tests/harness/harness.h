/*
 * harness.h - what the integration and end-to-end tests share: native
 * service processes with their own environment and log file, an HTTP
 * client on libcurl, and a few PostgreSQL helpers. Tests talk to the real
 * PostgreSQL and Kafka that tests/env/ starts (TICKFLOW_PG_DSN,
 * TICKFLOW_KAFKA_BROKERS); a missing one fails the test, never skips it.
 */
#ifndef TF_HARNESS_H
#define TF_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tf/buf.h"
#include "tf/lake.h"
#include "tf/rc.h"

struct h_proc {
    pid_t pid;
    int exited; /* reaped by h_alive; status keeps its wait status */
    int status;
    int port;
    char name[32];
    char log[512];
};

enum { H_MARKETSIM, H_EXTRACT, H_TRANSFORM, H_AGGREGATE, H_NPROCS };

/* marketsim and the three stages on a database and topic prefix of their own. */
struct h_stack {
    struct h_proc procs[H_NPROCS];
    char dir[512];  /* logs and the lake */
    char dsn[1024]; /* the stack's own database */
    char dbname[64];
    char prefix[64];         /* TICKFLOW_KAFKA_TOPIC_PREFIX */
    PGconn *db;              /* a connection for the test's own queries */
    const char *env[24];     /* what the services were started with */
    char bin[H_NPROCS][600]; /* their binaries */
    char lake_uri[600];      /* TICKFLOW_LAKE_URI: <dir>/lake or s3://bucket/<tag>-<pid> */
    char lake_base[1100];    /* what its objects' URIs start with, before "/<key>" */
    struct tf_lake *lake;    /* the tests' own handle on that lake */
};

/**
 * Creates a database and a topic prefix named after tag and the process,
 * starts marketsim (seed, requiring api_key) and the three stages pointed
 * at it for both providers (Polygon and Twelve Data, the same key), with extra_env ("NAME=value"
 * list, NULL-terminated, may be NULL) on top, and connects st->db. Returns 0 when all four are
 * healthy.
 *
 * The lake is the folder <dir>/lake, or with TF_TEST_LAKE=s3 the prefix
 * <tag>-<pid> of bucket TICKFLOW_LAKE_S3_BUCKET, reached with the other
 * TICKFLOW_LAKE_S3_* settings, which the services inherit (tests/env/seaweedfs.sh
 * writes them to .run/s3.env). st->lake is opened on it before the services start.
 */
int h_stack_start(struct h_stack *st, const char *tag, const char *api_key, int seed,
                  const char *const *extra_env);

/** Starts service i of the stack again (after h_stop) with the same settings. */
int h_stack_restart(struct h_stack *st, int i);

/**
 * Sets name=value (static strings, value NULL: removes name) in the
 * settings services are started with, for the next h_stack_restart.
 * Returns 0, or -1 when there is no room.
 */
int h_stack_setenv(struct h_stack *st, const char *name_eq_value, const char *name);

/**
 * Stops the services with SIGTERM, closes st->db and drops the database.
 * Returns how many services did not exit cleanly (0 under ASan means no leak).
 */
int h_stack_stop(struct h_stack *st);

/** Sleeps ms milliseconds. */
void h_sleep_ms(int ms);

/** A string member of a JSON object, or NULL. */
const char *h_jstr(const cJSON *obj, const char *key);

/** A number member of a JSON object, or NaN. */
double h_jnum(const cJSON *obj, const char *key);

/**
 * Reads every message of <prefix><topic> with a fresh consumer group until
 * the topic is quiet, counting in *with_needle those whose value or
 * headers contain needle. Returns the number of messages read.
 */
long h_topic_scan(const char *prefix, const char *topic, const char *needle, long *with_needle);

/**
 * Waits up to seconds until stage's consumer group (<prefix>tickflow-<stage>) has committed
 * every message <prefix><topic> holds now: each event on it was settled (handled, or
 * dead-lettered) and whatever it ran has finished. 0 when it has, -1 (said on stderr) when not.
 */
int h_wait_consumed(const char *prefix, const char *topic, const char *stage, int seconds);

/* What h_topic_each calls for each message (librdkafka's rd_kafka_message_t). */
struct rd_kafka_message_s;
typedef void (*h_message_fn)(void *arg, const struct rd_kafka_message_s *msg);

/**
 * Reads the messages of <prefix><topic> with a fresh consumer group, calling
 * fn on each, until count were read (count >= 0) or the topic is quiet.
 * Returns how many were read, -1 when no consumer could be made.
 */
long h_topic_each(const char *prefix, const char *topic, long count, h_message_fn fn, void *arg);

/**
 * How many messages <prefix><topic> holds (the partitions' end offsets less
 * their starts; tests/harness/wait.c), -1 when it cannot be asked.
 */
long h_topic_size(const char *prefix, const char *topic);

/**
 * Deletes every topic whose name starts with prefix (non-empty), so that the
 * broker the tests share does not pile up partitions run after run; how many
 * it asked to delete, -1 when the broker could not be asked or refused.
 */
long h_topics_drop(const char *prefix);

/** GET /v1/executions/{id} of the service on port (new object), NULL unless 200. */
cJSON *h_get_record(int port, const char *id);

/**
 * Every object of the stage record of id at port, read page by page from
 * GET /v1/executions/{id}/objects?limit=limit following "next" (new array).
 * NULL, said on stderr, unless every page answered 200 with at most limit
 * objects (exactly limit when a page follows), the same "total", and
 * "next": null on the last, and the pages add up to that total.
 */
cJSON *h_get_objects(int port, const char *id, int limit);

/**
 * The sha256 (hex) of the file at uri (a path or a file:// URI) into out;
 * returns its size, or -1 (out "missing") when it cannot be read.
 */
long long h_file_sha256(const char *uri, char out[65]);

/**
 * Sends a request (header: one extra "Name: value" line or NULL) and parses
 * the JSON answer (caller deletes; NULL when there is none). *status gets
 * the HTTP status, 0 when the request failed.
 */
cJSON *h_call(const char *method, int port, const char *path, const char *body, const char *header,
              long *status);

/** What a hand-made bronze object says of itself (dataset may be NULL). */
struct h_page {
    const char *provider, *dataset, *ticker, *timespan, *encoding; /* "gzip" or "zstd" */
    int page;
};

/**
 * Lands json in a file at path compressed as extract would, and returns its
 * object as extract records it (uri, bytes, sha256, encoding, provider,
 * dataset, ticker, timespan, page; caller deletes). NULL on failure.
 */
cJSON *h_bronze_page(const char *path, const char *json, size_t len, const struct h_page *pg);

/**
 * Waits up to seconds for the stage record of id at port to be SUCCESS or
 * FAILED (giving up early if a service of st died); returns it or NULL.
 */
cJSON *h_wait_stage(struct h_stack *st, int port, const char *id, int seconds);

/** Timeouts in tests are multiplied by TF_TEST_TIMEOUT_MULT (default 1). */
int h_timeout(int seconds);

/** A TCP port that was free a moment ago on 127.0.0.1. */
int h_free_port(void);

/**
 * Starts binary with the current environment plus env (a NULL-terminated
 * list of "NAME=value"), stdout and stderr to logdir/<name>.log, and waits
 * until GET /healthz on port answers 200. Returns 0 on success.
 */
int h_start(struct h_proc *p, const char *name, const char *binary, int port, const char *logdir,
            const char *const *env);

/** 1 while the process runs; 0 once it has exited (reaped, its status kept). */
int h_alive(struct h_proc *p);

/** 1 while every service of the stack runs; says which one died, once. */
int h_stack_alive(struct h_stack *st);

/** Sends SIGTERM and waits; returns the exit status (0 = clean), -1 on timeout (then kills). */
int h_stop(struct h_proc *p);

struct h_resp {
    long status;
    char *body; /* NUL-terminated, free with free() */
    char location[256];
    char request_id[80];
};

/**
 * Sends a request to http://127.0.0.1:port path with an optional body
 * (JSON) and optional extra headers (one per line). Returns 0 when an
 * answer came.
 */
int h_http(const char *method, int port, const char *path, const char *body, const char *header,
           struct h_resp *resp);

void h_resp_free(struct h_resp *resp);

/**
 * Replaces marketsim's fault rules with rules (a {"rules":[...]} body; NULL
 * clears them). Returns marketsim's HTTP status (200 when taken), 0 when
 * it could not be reached.
 */
long h_sim_faults(int marketsim_port, const char *rules);

/** One sample ("name{...} value") of a service's /metrics; -1 when absent. */
long long h_metric(int port, const char *name);

/** Sends a stage event (JSON text) for execution id to <prefix><topic>; 0 when acknowledged. */
int h_produce(const char *prefix, const char *topic, const char *id, const char *event);

/**
 * Sends the stage event of (id, stage) as recorded in the database to
 * <prefix><topic>, as a redelivery or a hand-made trigger. Returns 0 when
 * the broker acknowledged it.
 */
int h_send_event(PGconn *db, const char *prefix, const char *topic, const char *id,
                 const char *stage);

/**
 * Makes a new execution id (written to id) whose extract stage is a copy of
 * a finished one (same job, window and bronze objects) that finished a
 * minute ago, as a crashed or hand-driven worker would leave it; published
 * says whether its event counts as sent. Returns 0 on success.
 */
int h_copy_extract(PGconn *db, const char *src, int published, char id[37]);

/** The value of a one-row, one-column query as a new string (NULL on error or no row). */
char *h_pg_value(PGconn *conn, const char *sql, int nparams, const char *const *params);

/** The same as a long long (LLONG_MIN on error). */
long long h_pg_ll(PGconn *conn, const char *sql, int nparams, const char *const *params);

/**
 * Creates a new database named name on the server of base_dsn and writes
 * a connection string for it into out. Returns 0 on success.
 */
int h_pg_create_db(const char *base_dsn, const char *name, char *out, size_t outlen);

/** Drops the database (forcing other sessions off). */
void h_pg_drop_db(const char *base_dsn, const char *name);

/** 1 when file contains needle. */
int h_file_contains(const char *path, const char *needle);

/** Seconds on the monotonic clock (for timing). */
double h_now_s(void);

/** A process's peak resident memory (VmHWM) in KiB, -1 when unknown. */
long h_vm_hwm_kb(pid_t pid);

/** Runs sql on db; 0 when it succeeded, -1 (the error printed) when not. */
int h_sql(PGconn *db, const char *sql, int nparams, const char *const *params);

/**
 * Adds job (Polygon, 1-minute bars) with ntickers tickers, prefix and a
 * four-digit number (T0000, T0001, ...). 0 on success.
 */
int h_add_job_tickers(PGconn *db, const char *job, const char *prefix, int ntickers);

/**
 * Adds the demo job, demo_us_equities (Polygon, AAPL, MSFT and AMZN, 1-minute
 * bars, a day's interval, 5 minutes' overlap), as tools/demo.sh makes it;
 * every stack has it (h_stack_start). 0 on success, also when it is there.
 */
int h_add_demo_job(PGconn *db);

/**
 * Records stage of execution id, of job, as finished (SUCCESS, attempt 1,
 * 2024-03-04 14:30 to 21:00, the job's tickers, its event counted as sent)
 * with objects (a JSON array). 0 on success.
 */
int h_add_finished(PGconn *db, const char *id, const char *stage, const char *job,
                   const char *objects);

/**
 * CHECKPOINT, so that what earlier work left in the WAL is flushed before a
 * benchmark's side is timed (a no-op unless the role is a superuser).
 */
void h_pg_checkpoint(PGconn *db);

/** The median of v[0..n) (sorts v in place). */
double h_median(double *v, int n);

/** How many times needle occurs in file (0 when it cannot be read). */
int h_file_count(const char *path, const char *needle);

/** Counts the files under dir whose path contains needle (recursive). */
int h_tree_paths_containing(const char *dir, const char *needle);

/* The stack's lake, whichever backend holds it (folder or bucket). */

/** 1 when TF_TEST_LAKE=s3 (the stacks' lakes are in a bucket), 0 for folders. */
int h_lake_is_s3(void);

/** The URI the stack's lake gives the object at key (file:///... or s3://...) into out. */
void h_lake_uri(const struct h_stack *st, const char *key, char *out, size_t outlen);

/**
 * Reads the object at uri (as recorded: file://, a path, or s3://) through
 * st->lake into out (initialised by the caller). Returns its size, or -1
 * (the reason on stderr) when it cannot be read.
 */
long long h_lake_read(struct h_stack *st, const char *uri, struct tf_buf *out);

/**
 * The sha256 (hex) of the object at uri into out; returns its size, or -1
 * (out "missing") when it cannot be read. h_file_sha256 for any lake.
 */
long long h_lake_sha256(struct h_stack *st, const char *uri, char out[65]);

/**
 * The URIs of every object in the stack's lake (new array of strings):
 * the files under a folder, the keys under the bucket prefix. NULL, said on
 * stderr, when the listing failed.
 */
cJSON *h_lake_list(struct h_stack *st);

/** The bucket's uploads under the stack's prefix begun and not finished (0 for a folder; -1 on
 * failure). */
int h_lake_uploads(struct h_stack *st);

/*
 * A fault proxy (tests/env/s3_faults.py) in front of the test S3 server
 * (TICKFLOW_LAKE_S3_ENDPOINT): faults is its options, e.g. "--slowdown 3".
 */
struct h_s3_proxy {
    pid_t pid;
    int port;
};

/** Starts the proxy and waits until it answers; 0, or -1 said on stderr. */
int h_s3_proxy_start(struct h_s3_proxy *p, const char *faults);

/** One count of the proxy's /_faults/stats ("requests", "slowdown", "stalled"...); -1 when unknown.
 */
long h_s3_proxy_stat(const struct h_s3_proxy *p, const char *what);

/** Stops the proxy (NULL-safe on one never started). */
void h_s3_proxy_stop(struct h_s3_proxy *p);

/**
 * Counts the lake's paths containing needle: in a folder every file and
 * folder under it (h_tree_paths_containing on <dir>/lake), in a bucket
 * every object URI. -1 when the bucket could not be listed.
 */
int h_lake_paths_containing(struct h_stack *st, const char *needle);

/**
 * h_bronze_page into the stack's lake: packs json as extract would and
 * puts it under key with tf_lake_put; the object carries the URI the lake
 * gave it. NULL on failure (said on stderr).
 */
cJSON *h_lake_bronze_page(struct h_stack *st, const char *key, const char *json, size_t len,
                          const struct h_page *pg);

struct tf_kafka_opts;

/**
 * The Kafka connection settings of the environment (TICKFLOW_KAFKA_SECURITY_PROTOCOL,
 * ..._SASL_*, ..._SSL_*, ..._PROP_*), read once, for the tests' own clients; NULL (said on
 * stderr) when they are wrong. Process-wide, never freed.
 */
const struct tf_kafka_opts *h_kafka_opts(void);

#endif
