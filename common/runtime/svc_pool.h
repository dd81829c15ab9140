/*
 * svc_pool.h - what a running stage service shares between its threads:
 * its PostgreSQL connections, the work queue, the table of the runs in
 * flight and their heartbeats (svc_pool.c). It calls nothing else of the
 * runtime; svc.c, svc_run.c and svc_http.c call it.
 *
 * Connections, sized so that no accepted configuration waits on another
 * holder (TICKFLOW_WORKERS = W):
 *   runs     W + 2: one per worker, the Kafka consumer (which runs stages
 *            too) and the sweeper, each holding one at a time;
 *   side     (W + 1) x SVC_SIDE_CONNS: tf_svc_conn_get/try for the W + 1
 *            threads that run stages, each holding at most SVC_SIDE_CONNS;
 *   beat     1: the heartbeat thread's own, so heartbeats never queue
 *            behind runs;
 *   api      TICKFLOW_API_CONNECTIONS, handed out in arrival order.
 */
#ifndef TF_SVC_POOL_H
#define TF_SVC_POOL_H

#include <stdatomic.h>

#include "tf/exec.h"
#include "tf/log.h"
#include "tf/pg.h"
#include "tf/rc.h"

struct tf_svc;

/* How long a thread waits for a connection before it gives up (logged). */
#define SVC_POOL_WAIT_MS 5000

/* The side connections a run holds at most at once (tf_svc_conn_get/try). */
#define SVC_SIDE_CONNS 2

/** One run of this process in the table of runs in flight. */
struct tf_run_beat {
    char id[TF_UUID_LEN + 1]; /* "" when the slot is free (under the table's lock) */
    int attempt;              /* the lease the heartbeat keeps */
    int beat;                 /* kept alive by the heartbeat thread (unfenced runs) */
    atomic_int lost;          /* the heartbeat found the lease gone */
};

/**
 * Makes the pools, the queue and the run table for cfg's workers and
 * starts the heartbeat thread. TF_ERR_NOMEM; svc_pool_cleanup() undoes
 * whatever was made.
 */
enum tf_rc svc_pool_init(struct tf_svc *svc) TF_MUSTCHECK;

/** Stops the heartbeat thread (after every run has ended) and frees what init made. */
void svc_pool_cleanup(struct tf_svc *svc);

/** A connection of the runs' pool, or NULL (logged) when PostgreSQL cannot be reached. */
PGconn *svc_get_conn(struct tf_svc *svc, const struct tf_logctx *log);

/** Gives back a connection of svc_get_conn(). NULL-safe. */
void svc_put_conn(struct tf_svc *svc, PGconn *conn);

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

/** Takes the next queued execution id; 0 once the service stops. */
int svc_dequeue(struct tf_svc *svc, char out[TF_UUID_LEN + 1]);

/** Wakes every thread waiting on the queue (the service is stopping). */
void svc_queue_wake(struct tf_svc *svc);

/** Runs waiting for a worker. */
int svc_queue_depth(struct tf_svc *svc);

/**
 * Notes that this process runs execution id's stage until svc_run_done():
 * its slot in the table of runs in flight (never full: one per thread that
 * runs stages). NULL only if more threads run stages than were counted.
 */
struct tf_run_beat *svc_run_begin(struct tf_svc *svc, const char *id);

/** Frees the slot (NULL-safe) and wakes the HTTP clients waiting for an outcome. */
void svc_run_done(struct tf_svc *svc, struct tf_run_beat *slot);

/** 1 while this process runs execution id's stage (its follow-up included). */
int svc_run_busy(struct tf_svc *svc, const char *id);

/** The heartbeat thread keeps attempt's lease of the slot's run alive from now on. */
void svc_beat_start(struct tf_svc *svc, struct tf_run_beat *slot, int attempt);

/** Stops heartbeats of the slot's run; returns 1 when they found the lease lost. */
int svc_beat_stop(struct tf_svc *svc, struct tf_run_beat *slot);

#endif
