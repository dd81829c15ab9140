/*
 * svc_internal.h - the state of a running stage service (struct tf_svc),
 * shared by the runtime's files, which call one way:
 *
 *   svc.c (start-up, Kafka consumer, sweeper, drain)
 *     -> svc_http.c (the API) -> svc_run.c (one run) -> svc_pool.c (shared resources)
 *
 * svc.c also calls svc_run.c and svc_pool.c, svc_http.c also svc_pool.c;
 * nothing calls back up. Each file's functions are in its own header.
 */
#ifndef TF_SVC_INTERNAL_H
#define TF_SVC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "svc_metrics.h"
#include "svc_pool.h"
#include "svc_run.h"
#include "tf/kafka.h"
#include "tf/pg.h"
#include "tf/svc.h"

/* The runtime's settings (svc.c's table). */
#define SVC_NKEYS 23

struct svc_api_waiter;

struct tf_svc {
    const struct tf_stage_def *def;
    struct tf_cfg_key keys[SVC_NKEYS]; /* the runtime's table, HTTP port default set */
    char port_default[8];
    struct tf_svc_cfg cfg;
    /* The pools of svc_pool.h (sizes there). */
    struct tf_pg_pool *pool;      /* runs, the consumer and the sweeper */
    struct tf_pg_pool *side_pool; /* tf_svc_conn_get/try */
    struct tf_pg_pool *beat_pool; /* the heartbeat thread's connection */
    /* The HTTP API's own TICKFLOW_API_CONNECTIONS: at most that many requests
     * use the database at once, the others queue in arrival order. */
    struct tf_pg_pool *api_pool;
    struct tf_kafka_opts kafka_opts; /* TLS, SASL, properties: every client's */
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
    struct svc_http_metrics m_http;
    struct svc_hist m_stage_seconds; /* runs that ended SUCCESS or FAILED */
    atomic_llong m_records_in;
    atomic_llong m_records_out;
    atomic_llong m_records_rejected;
    atomic_llong m_heartbeats;  /* leases renewed */
    atomic_llong m_leases_lost; /* runs of this process that found their lease gone */
    atomic_llong m_takeovers;   /* dead runs this process's sweeper took back */

    /* The API's connections: how many are free, and who waits, first first. */
    pthread_mutex_t api_mu;
    int api_free;
    struct svc_api_waiter *api_head;
    struct svc_api_waiter *api_tail;

    /* Runs finishing in this process wake clients waiting for an outcome. */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    unsigned long done_seq;
    /* The runs in flight in this process, follow-up included (under done_mu):
     * one slot per thread that runs stages (workers + the consumer). */
    struct tf_run_beat *slots;
    int nslots;

    /* The heartbeat thread (svc_pool.c). */
    pthread_mutex_t beat_mu;
    pthread_cond_t beat_cv;
    int beat_stop; /* under beat_mu */
    pthread_t beat_thr;
    int beat_started;
};

/** The HTTP handler of the service (ud is the struct tf_svc). */
void svc_http_handle(struct tf_http_req *req, void *ud);

#endif
