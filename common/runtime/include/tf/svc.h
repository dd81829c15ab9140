/*
 * tf/svc.h - the runtime every stage service shares: a stage describes
 * itself in a struct tf_stage_def and tf_svc_main() supplies the rest (the
 * API, triggers, workers, consumer, leases, sweeper, drain, replays).
 * docs/ARCHITECTURE.md (the stage runtime) says how.
 */
#ifndef TF_SVC_H
#define TF_SVC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tf/cfg.h"
#include "tf/exec.h"
#include "tf/http.h"
#include "tf/lake.h"
#include "tf/log.h"
#include "tf/rc.h"

/*
 * Settings common to every stage service, read by the runtime
 * (TICKFLOW_HTTP_PORT defaults to the stage's default_port). A stage's own
 * settings are in its own struct, named by tf_stage_def's keys and cfg.
 */
struct tf_svc_cfg {
    char *addr;
    long api_connections;
    char *api_token;
    char *brokers;
    long heartbeat_timeout;
    long http_client_connections;
    long http_client_rate;
    long http_read_timeout;
    long kafka_delivery_timeout_ms;
    long kafka_partitions;
    char *lake_uri;
    char *lake_s3_access_key_id;
    char *lake_s3_addressing;
    char *lake_s3_endpoint;
    char *lake_s3_region;
    char *lake_s3_secret_access_key;
    char *lake_s3_session_token;
    char *log_level;
    char *pg_dsn;
    long port;
    char *topic_prefix;
    long workers;
    char *worker_id;
};

struct tf_svc;

/** One claimed run of a stage, handed to the stage's run function. */
struct tf_run {
    struct tf_svc *svc;
    PGconn *conn; /* in the fenced transaction when the stage is fenced */
    struct tf_logctx log;
    char execution_id[TF_UUID_LEN + 1];
    char job_name[64];
    int attempt;
    int64_t window_start;
    int64_t window_end;
    const cJSON *record;   /* this stage's record */
    const cJSON *upstream; /* the previous stage's record, NULL for extract */
    cJSON *objects;        /* output: what the run wrote (array, owned by the runtime) */
    long long records_in;
    long long records_out;
    long long records_rejected;
    char error[1024];         /* output: why the run failed (no secrets) */
    struct tf_run_beat *beat; /* the runtime's heartbeat of an unfenced run */
    int upstream_attempt;     /* the attempt of the upstream record the run reads (0: none) */
    cJSON *state; /* the stage's own notes from run to after_commit (owned by the runtime) */
    void *carry;  /* the stage's own data from run to after_commit, or NULL */
    void (*carry_free)(void *carry); /* called by the runtime when the run is over */
};

struct tf_stage_def {
    const char *name;          /* "extract" */
    const char *upstream;      /* stage whose events trigger this one, NULL for none */
    const char *consume_topic; /* without the prefix; NULL for none */
    const char *produce_topic; /* without the prefix */
    int fenced;                /* run inside one lease-fenced transaction */
    int default_port;
    /** Does the work; fills run's outputs. TF_OK, or an error or TF_CHECK_FAILED with run->error.
     */
    enum tf_rc (*run)(struct tf_run *run);
    /**
     * Builds a new record from a POST body (NULL: the runtime copies job,
     * window and tickers from the upstream stage's SUCCESS record). Anything
     * *owned points to is freed after the insert. Errors carry a message.
     */
    enum tf_rc (*plan)(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                       struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen);
    /**
     * Called by the sweeper's thread every half second with a connection,
     * for work the stage schedules itself (extract: backfill days and
     * scheduled jobs). NULL for none.
     */
    void (*tick)(struct tf_svc *svc, PGconn *conn);
    /**
     * Routes that need no database (files compiled into the binary), tried
     * before a connection is taken, so they answer while PostgreSQL is
     * away; returns 1 when it answered. NULL for none.
     */
    int (*static_route)(struct tf_svc *svc, struct tf_http_req *req);
    /** Extra routes; returns 1 when it answered. NULL for none. */
    int (*route)(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn);
    /**
     * Those routes for /openapi.json: OpenAPI path members without the
     * braces around them ("\"/v1/jobs\":{...},..."). NULL for none.
     */
    const char *openapi_paths;
    /**
     * Called after a successful run's outcome is committed, outside any
     * transaction, before the event goes out (transform: the Parquet lake,
     * rebuilt from committed silver). Objects it appends to run->objects
     * are added to the record. An error is logged and leaves the record
     * SUCCESS: the stage must owe what it writes durably in its commit and
     * write it later (transform: tickflow.lake_pending, written by its tick).
     * NULL for none.
     */
    enum tf_rc (*after_commit)(struct tf_run *run);
    /**
     * The stage's own settings: a key table filling the struct at cfg,
     * loaded, checked, logged and freed by the runtime with its own
     * (TF_CFG_KEY). NULL and 0 for none.
     */
    const struct tf_cfg_key *keys;
    size_t nkeys;
    void *cfg;
};

/**
 * Loads the runtime's and the stage's settings from the environment, starts
 * the service, runs until SIGINT or SIGTERM, drains and returns the exit
 * code (2: bad configuration).
 */
int tf_svc_main(const struct tf_stage_def *def);

/**
 * For a stage's read-only route on one execution, pattern such as
 * "/v1/executions/ * /audit" (without the spaces): 0 when the path is
 * another one (nothing answered), -1 when it answered an error (not GET,
 * not a UUID), 1 with the execution id in id when the call is good.
 */
int tf_svc_execution_route(struct tf_http_req *req, const char *pattern, char id[128]);

/** The runtime's settings. */
const struct tf_svc_cfg *tf_svc_cfg(const struct tf_svc *svc);

/** The stage's own settings (its tf_stage_def's cfg). */
const void *tf_svc_stage_cfg(const struct tf_svc *svc);

/** The lake the service writes to and reads from. */
struct tf_lake *tf_svc_lake(const struct tf_svc *svc);

/**
 * Checks the shape of a POST /v1/executions body as the API does (an
 * execution_id required when id_required); err gets the first problem.
 */
enum tf_rc tf_svc_check_execution_body(const cJSON *body, int id_required, char *err,
                                       size_t errlen) TF_MUSTCHECK;

/** Queues a run of execution id's stage for the workers (the claim decides who runs it). */
void tf_svc_enqueue(struct tf_svc *svc, const char *id);

/**
 * A side connection for work that must commit on its own, or read beside
 * the run's transaction; a run holds at most two at once, which the pool
 * is sized for (waits up to a few seconds; NULL when none). Give it back
 * with tf_svc_conn_put().
 */
PGconn *tf_svc_conn_get(struct tf_svc *svc);

/** The same without waiting: a free (or new) connection, else NULL at once. */
PGconn *tf_svc_conn_try(struct tf_svc *svc);

/** Gives back a connection from tf_svc_conn_get() or tf_svc_conn_try(). NULL-safe. */
void tf_svc_conn_put(struct tf_svc *svc, PGconn *conn);

/** The worker id this process writes on the records it owns. */
const char *tf_svc_worker_id(const struct tf_svc *svc);

/** 1 once a drain has started: long runs should stop at a safe point. */
int tf_svc_stopping(const struct tf_svc *svc);

/**
 * Whether a long run should go on: TF_OK, TF_ERR_LEASE when its lease was
 * lost (stop, write nothing more), TF_ERR_DRAINING when the process is
 * shutting down (stop at a safe point and return it: the stage is handed
 * back). Costs no I/O: the runtime heartbeats unfenced runs by itself.
 */
enum tf_rc tf_run_check(const struct tf_run *run) TF_MUSTCHECK;

/** Sets run->error from a format. */
void tf_run_fail(struct tf_run *run, const char *fmt, ...) TF_PRINTF(2, 3);

#endif
