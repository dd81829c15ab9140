/*
 * svc_pool.c - a running service's shared resources: its connection pools
 * (sized in svc_pool.h), the work queue, and the table of runs in flight,
 * whose unfenced leases one heartbeat thread keeps alive on a connection of
 * its own. Calls nothing else of the runtime.
 */
#include "svc_pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "svc_internal.h"
#include "tf/time.h"

#define QUEUE_CAP 4096

/* ---- the public accessors of tf/svc.h that touch shared state ---- */

PGconn *tf_svc_conn_get(struct tf_svc *svc)
{
    char err[256];
    PGconn *conn = tf_pg_pool_get(svc->side_pool, SVC_POOL_WAIT_MS, err, sizeof(err));

    if (!conn)
        tf_log_warn(NULL, "no side connection: %s", err);
    return conn;
}

PGconn *tf_svc_conn_try(struct tf_svc *svc)
{
    char err[256];

    return tf_pg_pool_get(svc->side_pool, 0, err, sizeof(err));
}

void tf_svc_conn_put(struct tf_svc *svc, PGconn *conn)
{
    tf_pg_pool_put(svc->side_pool, conn);
}

int tf_svc_stopping(const struct tf_svc *svc)
{
    return atomic_load(&((struct tf_svc *)svc)->stopping);
}

/* ---- connections ---- */

PGconn *svc_get_conn(struct tf_svc *svc, const struct tf_logctx *log)
{
    char err[256];
    PGconn *conn = tf_pg_pool_get(svc->pool, SVC_POOL_WAIT_MS, err, sizeof(err));

    if (!conn)
        tf_log_warn(log, "database unavailable: %s", err);
    return conn;
}

void svc_put_conn(struct tf_svc *svc, PGconn *conn)
{
    tf_pg_pool_put(svc->pool, conn);
}

/* The API's connections, handed out in arrival order. */
struct svc_api_waiter {
    pthread_cond_t cv;
    int granted; /* a free connection was handed to this waiter (under api_mu) */
    struct svc_api_waiter *next;
};

/* Takes one of the API's connections in turn; 1 when it has one. */
static int api_take_turn(struct tf_svc *svc)
{
    struct svc_api_waiter me = {.granted = 0, .next = NULL};
    struct timespec deadline;
    int timed_out = 0;

    pthread_mutex_lock(&svc->api_mu);
    if (svc->api_free > 0 && !svc->api_head) {
        svc->api_free--;
        pthread_mutex_unlock(&svc->api_mu);
        return 1;
    }
    pthread_cond_init(&me.cv, NULL);
    if (svc->api_tail)
        svc->api_tail->next = &me;
    else
        svc->api_head = &me;
    svc->api_tail = &me;
    tf_time_deadline(&deadline, SVC_POOL_WAIT_MS);
    while (!me.granted && !timed_out)
        timed_out = pthread_cond_timedwait(&me.cv, &svc->api_mu, &deadline) == ETIMEDOUT;
    if (!me.granted) { /* still in the line: leave it */
        struct svc_api_waiter **p = &svc->api_head;
        struct svc_api_waiter *prev = NULL;
        while (*p != &me) {
            prev = *p;
            p = &(*p)->next;
        }
        *p = me.next;
        if (svc->api_tail == &me)
            svc->api_tail = prev;
    }
    pthread_mutex_unlock(&svc->api_mu);
    pthread_cond_destroy(&me.cv);
    return me.granted;
}

/* Hands a free API connection to the first in line, or puts it back. */
static void api_end_turn(struct tf_svc *svc)
{
    struct svc_api_waiter *w;

    pthread_mutex_lock(&svc->api_mu);
    w = svc->api_head;
    if (w) {
        svc->api_head = w->next;
        if (!svc->api_head)
            svc->api_tail = NULL;
        w->granted = 1;
        pthread_cond_signal(&w->cv);
    } else {
        svc->api_free++;
    }
    pthread_mutex_unlock(&svc->api_mu);
}

PGconn *svc_api_conn_get(struct tf_svc *svc, const struct tf_logctx *log)
{
    char err[256];
    PGconn *conn = NULL;

    if (!api_take_turn(svc)) {
        tf_log_warn(log, "no database connection for the API within %d ms", SVC_POOL_WAIT_MS);
        return NULL;
    }
    /* One of the pool's connections is free: holders never outnumber it. */
    conn = tf_pg_pool_get(svc->api_pool, SVC_POOL_WAIT_MS, err, sizeof(err));
    if (!conn) {
        tf_log_warn(log, "database unavailable: %s", err);
        api_end_turn(svc);
    }
    return conn;
}

void svc_api_conn_put(struct tf_svc *svc, PGconn *conn)
{
    if (!conn)
        return;
    tf_pg_pool_put(svc->api_pool, conn);
    api_end_turn(svc);
}

/* ---- the work queue of HTTP-triggered and swept runs ---- */

void tf_svc_enqueue(struct tf_svc *svc, const char *id)
{
    pthread_mutex_lock(&svc->qmu);
    if (svc->qlen < QUEUE_CAP) { /* when full, the sweeper finds the PENDING row later */
        snprintf(svc->queue[(svc->qhead + svc->qlen) % QUEUE_CAP], TF_UUID_LEN + 1, "%s", id);
        svc->qlen++;
        pthread_cond_signal(&svc->qcv);
    }
    pthread_mutex_unlock(&svc->qmu);
}

int svc_dequeue(struct tf_svc *svc, char out[TF_UUID_LEN + 1])
{
    int got = 0;

    pthread_mutex_lock(&svc->qmu);
    while (svc->qlen == 0 && !atomic_load(&svc->stopping))
        pthread_cond_wait(&svc->qcv, &svc->qmu);
    if (svc->qlen > 0 && !atomic_load(&svc->stopping)) {
        memcpy(out, svc->queue[svc->qhead], TF_UUID_LEN + 1);
        svc->qhead = (svc->qhead + 1) % QUEUE_CAP;
        svc->qlen--;
        got = 1;
    }
    pthread_mutex_unlock(&svc->qmu);
    return got;
}

void svc_queue_wake(struct tf_svc *svc)
{
    pthread_mutex_lock(&svc->qmu);
    pthread_cond_broadcast(&svc->qcv);
    pthread_mutex_unlock(&svc->qmu);
}

int svc_queue_depth(struct tf_svc *svc)
{
    int n;

    pthread_mutex_lock(&svc->qmu);
    n = svc->qlen;
    pthread_mutex_unlock(&svc->qmu);
    return n;
}

/* ---- runs in flight and their heartbeats ---- */

struct tf_run_beat *svc_run_begin(struct tf_svc *svc, const char *id)
{
    struct tf_run_beat *slot = NULL;

    pthread_mutex_lock(&svc->done_mu);
    for (int i = 0; i < svc->nslots && !slot; i++) {
        if (!svc->slots[i].id[0]) {
            slot = &svc->slots[i];
            snprintf(slot->id, sizeof(slot->id), "%s", id);
            slot->attempt = 0;
            slot->beat = 0;
            atomic_store(&slot->lost, 0);
        }
    }
    pthread_mutex_unlock(&svc->done_mu);
    if (!slot)
        tf_log_error(NULL, "more runs in flight than the %d counted", svc->nslots);
    return slot;
}

void svc_run_done(struct tf_svc *svc, struct tf_run_beat *slot)
{
    pthread_mutex_lock(&svc->done_mu);
    if (slot) {
        slot->id[0] = '\0';
        slot->beat = 0;
    }
    svc->done_seq++;
    pthread_cond_broadcast(&svc->done_cv);
    pthread_mutex_unlock(&svc->done_mu);
}

int svc_run_busy(struct tf_svc *svc, const char *id)
{
    int busy = 0;

    pthread_mutex_lock(&svc->done_mu);
    for (int i = 0; i < svc->nslots && !busy; i++)
        busy = svc->slots[i].id[0] && strcasecmp(svc->slots[i].id, id) == 0;
    pthread_mutex_unlock(&svc->done_mu);
    return busy;
}

void svc_beat_start(struct tf_svc *svc, struct tf_run_beat *slot, int attempt)
{
    if (!slot)
        return;
    pthread_mutex_lock(&svc->done_mu);
    slot->attempt = attempt;
    atomic_store(&slot->lost, 0);
    slot->beat = 1;
    pthread_mutex_unlock(&svc->done_mu);
}

int svc_beat_stop(struct tf_svc *svc, struct tf_run_beat *slot)
{
    if (!slot)
        return 0;
    pthread_mutex_lock(&svc->done_mu);
    slot->beat = 0;
    pthread_mutex_unlock(&svc->done_mu);
    return atomic_load(&slot->lost);
}

/* A lease to keep: which slot, and what it held when copied. */
struct beat_job {
    int slot;
    int attempt;
    char id[TF_UUID_LEN + 1];
};

/* Refreshes every kept lease once, on the thread's own connection. */
static void beat_round(struct tf_svc *svc, struct beat_job *jobs)
{
    PGconn *conn = NULL;
    char err[256];
    int n = 0;

    pthread_mutex_lock(&svc->done_mu);
    for (int i = 0; i < svc->nslots; i++) {
        struct tf_run_beat *s = &svc->slots[i];
        if (s->id[0] && s->beat && !atomic_load(&s->lost)) {
            jobs[n].slot = i;
            jobs[n].attempt = s->attempt;
            memcpy(jobs[n].id, s->id, sizeof(jobs[n].id));
            n++;
        }
    }
    pthread_mutex_unlock(&svc->done_mu);
    if (n == 0)
        return;
    conn = tf_pg_pool_get(svc->beat_pool, SVC_POOL_WAIT_MS, err, sizeof(err));
    if (!conn) {
        tf_log_warn(NULL, "heartbeats skipped: %s", err);
        return;
    }
    for (int i = 0; i < n; i++) {
        enum tf_rc hrc = tf_exec_heartbeat(conn, jobs[i].id, svc->def->name, jobs[i].attempt);

        if (hrc == TF_OK)
            atomic_fetch_add(&svc->m_heartbeats, 1);
        if (hrc != TF_ERR_LEASE)
            continue;
        /* Lost, if the slot still holds that lease. */
        pthread_mutex_lock(&svc->done_mu);
        if (strcmp(svc->slots[jobs[i].slot].id, jobs[i].id) == 0 &&
            svc->slots[jobs[i].slot].attempt == jobs[i].attempt)
            atomic_store(&svc->slots[jobs[i].slot].lost, 1);
        pthread_mutex_unlock(&svc->done_mu);
    }
    tf_pg_pool_put(svc->beat_pool, conn);
}

static void *beat_main(void *arg)
{
    struct tf_svc *svc = arg;
    long every_ms = svc->cfg.heartbeat_timeout * 1000 / 4;
    struct beat_job *jobs = calloc((size_t)svc->nslots, sizeof(*jobs));

    if (every_ms < 500)
        every_ms = 500;
    pthread_mutex_lock(&svc->beat_mu);
    while (!svc->beat_stop) {
        struct timespec deadline;

        tf_time_deadline(&deadline, (int)every_ms);
        if (pthread_cond_timedwait(&svc->beat_cv, &svc->beat_mu, &deadline) != ETIMEDOUT)
            continue;
        pthread_mutex_unlock(&svc->beat_mu);
        if (jobs)
            beat_round(svc, jobs);
        else
            tf_log_error(NULL, "heartbeats: out of memory");
        pthread_mutex_lock(&svc->beat_mu);
    }
    pthread_mutex_unlock(&svc->beat_mu);
    free(jobs);
    return NULL;
}

/* ---- set-up and clean-up ---- */

enum tf_rc svc_pool_init(struct tf_svc *svc)
{
    int workers = (int)svc->cfg.workers;

    /* Every thread that runs stages: the workers and the Kafka consumer. */
    svc->nslots = workers + 1;
    svc->slots = calloc((size_t)svc->nslots, sizeof(*svc->slots));
    svc->queue = calloc(QUEUE_CAP, sizeof(*svc->queue));
    svc->pool = tf_pg_pool_new(svc->cfg.pg_dsn, workers + 2);
    svc->side_pool = tf_pg_pool_new(svc->cfg.pg_dsn, svc->nslots * SVC_SIDE_CONNS);
    svc->beat_pool = tf_pg_pool_new(svc->cfg.pg_dsn, 1);
    svc->api_pool = tf_pg_pool_new(svc->cfg.pg_dsn, (int)svc->cfg.api_connections);
    svc->api_free = (int)svc->cfg.api_connections;
    if (!svc->slots || !svc->queue || !svc->pool || !svc->side_pool || !svc->beat_pool ||
        !svc->api_pool)
        return TF_ERR_NOMEM;
    if (pthread_create(&svc->beat_thr, NULL, beat_main, svc) != 0)
        return TF_ERR_NOMEM;
    svc->beat_started = 1;
    return TF_OK;
}

void svc_pool_cleanup(struct tf_svc *svc)
{
    if (svc->beat_started) {
        pthread_mutex_lock(&svc->beat_mu);
        svc->beat_stop = 1;
        pthread_cond_signal(&svc->beat_cv);
        pthread_mutex_unlock(&svc->beat_mu);
        pthread_join(svc->beat_thr, NULL);
        svc->beat_started = 0;
    }
    tf_pg_pool_free(svc->pool);
    tf_pg_pool_free(svc->side_pool);
    tf_pg_pool_free(svc->beat_pool);
    tf_pg_pool_free(svc->api_pool);
    free(svc->queue);
    free(svc->slots);
    svc->pool = svc->side_pool = svc->beat_pool = svc->api_pool = NULL;
    svc->queue = NULL;
    svc->slots = NULL;
    svc->nslots = 0;
}
