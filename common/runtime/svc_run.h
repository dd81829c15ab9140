/*
 * svc_run.h - one run of a stage and what starts one (svc_run.c): claim,
 * the stage's work under its lease, the outcome, the event; replays and
 * the plans of new records. Uses svc_pool.h only.
 */
#ifndef TF_SVC_RUN_H
#define TF_SVC_RUN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tf/exec.h"
#include "tf/log.h"
#include "tf/rc.h"

struct tf_svc;

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
 * (tf_exec_reopen): a replay. TF_ERR_CONFLICT when the stage is not
 * finished (running or waiting), or when older_than (0: always) is set and
 * the upstream attempt the stage consumed is not older than it.
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

#endif
