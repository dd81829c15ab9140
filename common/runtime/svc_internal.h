/*
 * svc_internal.h - state and functions shared by the stage runtime's files:
 * svc.c (start-up, drain, work queue, Kafka consumer, sweeper), svc_run.c
 * (claiming, running, heartbeats, publishing) and svc_http.c (the API).
 */
#ifndef TF_SVC_INTERNAL_H
#define TF_SVC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "tf/kafka.h"
#include "tf/pg.h"
#include "tf/svc.h"

#define SVC_POOL_WAIT_MS 5000

/* The runtime's settings (svc.c's table). */
#define SVC_NKEYS 14

/* TICKFLOW_WORKERS's upper bound. */
#define SVC_MAX_WORKERS 64

struct svc_api_waiter;

struct tf_svc {
    const struct tf_stage_def *def;
    struct tf_cfg_key keys[SVC_NKEYS]; /* the runtime's table, HTTP port default set */
    char port_default[8];
    struct tf_svc_cfg cfg;
    struct tf_pg_pool *pool; /* runs, the consumer and the sweeper */
    /* The HTTP API's own TICKFLOW_API_CONNECTIONS: at most that many requests
     * use the database at once, the others queue in arrival order. */
    struct tf_pg_pool *api_pool;
    struct tf_kafka *kafka;
    struct tf_kafka_consumer *consumer;
    struct tf_lake *lake;
    struct tf_http_server *http;
    char topic_in[160];
    char topic_out[160];
    char topic_dlq[160];
    char worker_id[160];
    atomic_int stopping;

    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    char (*queue)[TF_UUID_LEN + 1];
    int qhead;
    int qlen;

    pthread_t *workers;
    int nworkers;
    pthread_t consumer_thr;
    int consumer_started;
    pthread_t sweeper_thr;
    int sweeper_started;

    atomic_llong m_success;
    atomic_llong m_failed;
    atomic_llong m_published;
    atomic_llong m_consumed;
    atomic_llong m_dlq;
    atomic_llong m_released;

    /* The API's connections: how many are free, and who waits, first first. */
    pthread_mutex_t api_mu;
    int api_free;
    struct svc_api_waiter *api_head;
    struct svc_api_waiter *api_tail;

    /* Runs finishing in this process wake clients waiting for an outcome. */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    unsigned long done_seq;
    /* The executions this process is running, follow-up included (under done_mu). */
    char busy[SVC_MAX_WORKERS][TF_UUID_LEN + 1];
};

/** Notes that this process runs execution id's stage until svc_run_done(). */
void svc_run_begin(struct tf_svc *svc, const char *id);

/** Wakes the HTTP clients waiting for an outcome (a run of this process ended). */
void svc_run_done(struct tf_svc *svc, const char *id);

/** 1 while this process runs execution id's stage (its follow-up included). */
int svc_run_busy(struct tf_svc *svc, const char *id);

/** Runs waiting for a worker. */
int svc_queue_depth(struct tf_svc *svc);

/** A pooled connection, or NULL (logged) when PostgreSQL cannot be reached. */
PGconn *svc_get_conn(struct tf_svc *svc, const struct tf_logctx *log);

/**
 * A connection of the API's pool for an HTTP request. Requests get them in
 * the order they asked (no request overtakes one that waits), so a burst
 * of reads spreads its waiting evenly; the runs' pool is not touched.
 * NULL (logged) after SVC_POOL_WAIT_MS, or when PostgreSQL cannot be
 * reached. Give it back with svc_api_conn_put().
 */
PGconn *svc_api_conn_get(struct tf_svc *svc, const struct tf_logctx *log);

/** Gives back a connection of svc_api_conn_get() to the next in line. NULL-safe. */
void svc_api_conn_put(struct tf_svc *svc, PGconn *conn);

void svc_sleep_ms(int ms);

/**
 * Claims and runs the stage of execution id. Returns TF_OK when the stage
 * is settled (run here, or owned or finished elsewhere); an error when the
 * database failed and the caller may retry.
 */
enum tf_rc svc_execute(struct tf_svc *svc, PGconn *conn, const char *id);

/** Publishes the stage event of a finished record and marks it published. */
enum tf_rc svc_publish(struct tf_svc *svc, PGconn *conn, const char *id,
                       const struct tf_logctx *log);

/**
 * Makes a finished (SUCCESS or FAILED) stage of execution id runnable again
 * (PENDING, with one more attempt allowed and its event unsent): a replay.
 * TF_ERR_CONFLICT when the stage is not finished (running or waiting), or
 * when older_than (0: always) is set and the upstream attempt the stage
 * consumed is not older than it.
 */
enum tf_rc svc_rerun(struct tf_svc *svc, PGconn *conn, const char *id, int older_than) TF_MUSTCHECK;

/**
 * For an upstream event of attempt up_attempt: when the stage's finished
 * record consumed an older upstream attempt, makes it runnable again
 * (svc_rerun). TF_OK when there is nothing to wait for; TF_ERR_CONFLICT when the stage is still
 * running on an older upstream attempt (the event is tried again later); TF_ERR_DB.
 */
enum tf_rc svc_rerun_if_newer(struct tf_svc *svc, PGconn *conn, const char *id, int up_attempt,
                              const struct tf_logctx *log) TF_MUSTCHECK;

/** Builds a new record from a body (the stage's plan, or the upstream stage's record). */
enum tf_rc svc_make_plan(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                         struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen);

/** An ISO-8601 member of a record as epoch seconds (0 when absent). */
int64_t svc_record_time(const cJSON *rec, const char *key);

/** The HTTP handler of the service (ud is the struct tf_svc). */
void svc_http_handle(struct tf_http_req *req, void *ud);

#endif
