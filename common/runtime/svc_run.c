/*
 * svc_run.c - one run of a stage: claim, heartbeat, the stage's work, the
 * guarded outcome, the event. See tf/svc.h for the contract.
 *
 * Leases: an unfenced stage (extract) is kept alive by the service's
 * heartbeat thread on its own connection (svc_pool.c), so a run that waits on a slow or
 * rate-limited vendor is never mistaken for a dead one; a fenced stage (transform, aggregate) holds
 * its row locked for the whole transaction, which the sweeper skips. A run that sees the process
 * draining hands its stage back (PENDING) for another worker.
 */
#include "svc_run.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_internal.h"
#include "tf/json.h"
#include "tf/time.h"

void tf_run_fail(struct tf_run *run, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(run->error, sizeof(run->error), fmt, ap);
    va_end(ap);
}

enum tf_rc tf_run_check(const struct tf_run *run)
{
    if (run->beat && atomic_load(&run->beat->lost))
        return TF_ERR_LEASE;
    if (tf_svc_stopping(run->svc))
        return TF_ERR_DRAINING;
    return TF_OK;
}

enum tf_rc svc_publish(struct tf_svc *svc, PGconn *conn, const char *id,
                       const struct tf_logctx *log)
{
    char *event = NULL;
    cJSON *parsed = NULL;
    const char *job;
    char err[256];
    enum tf_rc rc;

    rc = tf_exec_event(conn, id, svc->def->name, &event);
    if (rc != TF_OK)
        return rc;
    parsed = cJSON_Parse(event);
    job = tf_json_str(parsed, "job_name");
    rc = tf_kafka_produce(svc->kafka, svc->topic_out, job, event, strlen(event), id, NULL,
                          (int)svc->cfg.kafka_delivery_timeout_ms, err, sizeof(err));
    if (rc == TF_OK) {
        atomic_fetch_add(&svc->m_published, 1);
        /* Only the attempt and outcome that went out count as published. */
        rc = tf_exec_mark_published(conn, id, svc->def->name,
                                    (int)tf_json_long(parsed, "attempt", 0),
                                    tf_exec_record_status(parsed));
        tf_log_info(log, "event published topic=%s", svc->topic_out);
    } else {
        tf_log_warn(log, "event not published yet (the sweeper retries): %s", err);
    }
    cJSON_Delete(parsed);
    free(event);
    return rc;
}

int64_t svc_record_time(const cJSON *rec, const char *key)
{
    const char *s = tf_json_str(rec, key);
    int64_t t = 0;

    if (!s || tf_time_parse(s, &t) != TF_OK)
        return 0;
    return t;
}

/* Reads the records the run needs and prepares its outputs. */
static enum tf_rc prepare(struct tf_run *run, cJSON **record, cJSON **upstream)
{
    const struct tf_stage_def *def = run->svc->def;
    enum tf_rc rc;

    rc = tf_exec_get(run->conn, run->execution_id, def->name, record);
    if (rc == TF_OK && def->upstream)
        rc = tf_exec_get(run->conn, run->execution_id, def->upstream, upstream);
    if (rc != TF_OK) {
        tf_run_fail(run, "cannot read the execution records: %s", tf_rc_str(rc));
        return rc;
    }
    run->record = *record;
    run->upstream = *upstream;
    /* Only a finished upstream attempt is what the run reads; while a
     * replay of it runs, none is noted, so that replay's event runs this
     * stage again. */
    run->upstream_attempt = tf_exec_record_status(*upstream) == TF_EXEC_SUCCESS
                                ? (int)tf_json_long(*upstream, "attempt", 0)
                                : 0;
    snprintf(run->job_name, sizeof(run->job_name), "%s", tf_json_str(*record, "job_name"));
    run->window_start = svc_record_time(*record, "window_start");
    run->window_end = svc_record_time(*record, "window_end");
    run->objects = cJSON_CreateArray();
    if (!run->objects) {
        tf_run_fail(run, "out of memory");
        return TF_ERR_NOMEM;
    }
    return TF_OK;
}

/*
 * Records which upstream attempt the run consumed, in the transaction of
 * its outcome for a fenced stage: an event of a newer one runs it again.
 */
static enum tf_rc note_upstream(struct tf_run *run)
{
    if (!run->upstream)
        return TF_OK;
    return tf_exec_note_upstream(run->conn, run->execution_id, run->svc->def->name, run->attempt,
                                 run->upstream_attempt);
}

/*
 * The stage's after_commit step, then its objects added to the record (only
 * while the record is still this attempt's SUCCESS).
 */
static void after_commit(struct tf_run *run)
{
    const struct tf_stage_def *def = run->svc->def;
    enum tf_rc rc;

    if (!def->after_commit)
        return;
    rc = def->after_commit(run);
    if (rc != TF_OK)
        tf_log_error(&run->log, "stage %s committed, but its follow-up failed: %s (%s)", def->name,
                     run->error[0] ? run->error : "no detail", tf_rc_str(rc));
    rc = tf_exec_add_objects(run->conn, run->execution_id, def->name, run->attempt, run->objects);
    if (rc != TF_OK && rc != TF_ERR_CONFLICT)
        tf_log_warn(&run->log, "cannot add the objects to the record: %s", tf_rc_str(rc));
}

/* A finished run (SUCCESS or FAILED) in the service's metrics. */
static void count_run(struct tf_svc *svc, const struct tf_run *run, int64_t started_ms)
{
    svc_hist_observe(&svc->m_stage_seconds, (tf_time_mono_ms() - started_ms) * 1000);
    atomic_fetch_add(&svc->m_records_in, run->records_in);
    atomic_fetch_add(&svc->m_records_out, run->records_out);
    atomic_fetch_add(&svc->m_records_rejected, run->records_rejected);
}

/* Runs the stage's work; for a fenced stage inside its lease-guarded transaction. */
static enum tf_rc work(struct tf_run *run, struct tf_run_beat *slot, int *in_txn)
{
    const struct tf_stage_def *def = run->svc->def;
    struct tf_exec_result result;
    enum tf_rc rc = TF_OK;

    if (def->fenced) {
        rc = tf_pg_cmd(run->conn, "BEGIN");
        if (rc == TF_OK) {
            *in_txn = 1;
            rc = tf_exec_fence(run->conn, run->execution_id, def->name, run->attempt);
        }
        if (rc != TF_OK) {
            tf_run_fail(run, "cannot open the fenced transaction: %s", tf_rc_str(rc));
            return rc;
        }
    } else if (slot) {
        svc_beat_start(run->svc, slot, run->attempt);
        run->beat = slot;
    }
    rc = def->run(run);
    if (run->beat && svc_beat_stop(run->svc, run->beat) && rc == TF_OK)
        rc = TF_ERR_LEASE;
    run->beat = NULL;
    if (rc != TF_OK)
        return rc;
    result = (struct tf_exec_result){run->objects, run->records_in, run->records_out,
                                     run->records_rejected, NULL};
    rc = note_upstream(run);
    if (rc == TF_OK)
        rc = tf_exec_finish(run->conn, run->execution_id, def->name, run->attempt, &result);
    if (rc == TF_OK && *in_txn) {
        rc = tf_pg_cmd(run->conn, "COMMIT");
        *in_txn = 0;
    }
    if (rc != TF_OK && rc != TF_ERR_LEASE)
        tf_run_fail(run, "cannot commit the outcome: %s", tf_rc_str(rc));
    return rc;
}

enum tf_rc svc_execute(struct tf_svc *svc, PGconn *conn, const char *id)
{
    const struct tf_stage_def *def = svc->def;
    struct tf_run run;
    cJSON *record = NULL;
    cJSON *upstream = NULL;
    struct tf_exec_result result;
    struct tf_run_beat *slot = NULL;
    enum tf_rc rc;
    enum tf_rc frc;
    int in_txn = 0;
    int64_t started = tf_time_mono_ms();

    memset(&run, 0, sizeof(run));
    run.svc = svc;
    run.conn = conn;
    snprintf(run.execution_id, sizeof(run.execution_id), "%s", id);
    tf_logctx_set_exec(&run.log, id);

    rc = tf_exec_claim(conn, id, def->name, svc->worker_id, &run.attempt);
    if (rc == TF_ERR_CONFLICT)
        return TF_OK;
    if (rc != TF_OK)
        return rc;
    slot = svc_run_begin(svc, id);
    tf_log_info(&run.log, "stage claimed stage=%s attempt=%d", def->name, run.attempt);

    rc = prepare(&run, &record, &upstream);
    if (rc == TF_OK)
        rc = work(&run, slot, &in_txn);
    if (in_txn && tf_pg_cmd(conn, "ROLLBACK") != TF_OK)
        tf_log_warn(&run.log, "rollback failed");
    if (rc == TF_OK) {
        after_commit(&run);
        atomic_fetch_add(&svc->m_success, 1);
        count_run(svc, &run, started);
        tf_log_info(&run.log,
                    "stage succeeded stage=%s attempt=%d in=%lld out=%lld rejected=%lld ms=%lld",
                    def->name, run.attempt, run.records_in, run.records_out, run.records_rejected,
                    (long long)(tf_time_mono_ms() - started));
        goto publish;
    }
    if (rc == TF_ERR_LEASE) {
        atomic_fetch_add(&svc->m_leases_lost, 1);
        tf_log_warn(&run.log, "lease lost stage=%s attempt=%d: results discarded", def->name,
                    run.attempt);
        goto out;
    }
    if (rc == TF_ERR_DRAINING) {
        frc = tf_exec_release(conn, id, def->name, run.attempt);
        atomic_fetch_add(&svc->m_released, 1);
        tf_log_warn(&run.log, "draining: stage %s handed back (%s)", def->name, tf_rc_str(frc));
        rc = TF_OK;
        goto out;
    }
    if (!run.error[0])
        tf_run_fail(&run, "%s", tf_rc_str(rc));
    result = (struct tf_exec_result){run.objects, run.records_in, run.records_out,
                                     run.records_rejected, run.error};
    /* A failed run consumed its upstream too: a redelivered event of the
     * same upstream attempt must not run it again past its attempt limit. */
    if (note_upstream(&run) == TF_ERR_DB)
        tf_log_warn(&run.log, "upstream attempt not noted");
    frc = tf_exec_fail(conn, id, def->name, run.attempt, &result);
    if (frc != TF_OK) {
        /* The row stays RUNNING; the sweeper retries it once its heartbeat is stale. */
        tf_log_error(&run.log, "stage failed and could not be recorded: %s (%s)", run.error,
                     tf_rc_str(frc));
        rc = frc;
        goto out;
    }
    atomic_fetch_add(&svc->m_failed, 1);
    count_run(svc, &run, started);
    tf_log_error(&run.log, "stage failed stage=%s attempt=%d: %s", def->name, run.attempt,
                 run.error);
publish:
    rc = TF_OK;
    if (svc_publish(svc, conn, id, &run.log) == TF_ERR_DB)
        rc = TF_ERR_DB;
out:
    svc_run_done(svc, slot);
    if (run.carry_free)
        run.carry_free(run.carry);
    cJSON_Delete(run.objects);
    cJSON_Delete(run.state);
    cJSON_Delete(record);
    cJSON_Delete(upstream);
    return rc;
}

/* ---- replays: a finished stage run again ---- */

enum tf_rc svc_rerun(struct tf_svc *svc, PGconn *conn, const char *id, int older_than)
{
    return tf_exec_reopen(conn, id, svc->def->name, older_than);
}

enum tf_rc svc_rerun_if_newer(struct tf_svc *svc, PGconn *conn, const char *id, int up_attempt,
                              const struct tf_logctx *log)
{
    enum tf_exec_status status = TF_EXEC_NO_STATUS;
    int consumed = 0;
    enum tf_rc rc = tf_exec_consumed(conn, id, svc->def->name, &status, &consumed);

    if (rc == TF_ERR_NOT_FOUND)
        return TF_OK;
    if (rc != TF_OK)
        return rc;
    if (up_attempt <= consumed)
        return TF_OK;
    if (tf_exec_status_final(status)) {
        rc = svc_rerun(svc, conn, id, up_attempt);
        if (rc == TF_OK)
            tf_log_info(log, "upstream attempt %d is newer than the %d consumed: %s runs again",
                        up_attempt, consumed, svc->def->name);
        else if (rc == TF_ERR_CONFLICT)
            rc = TF_OK; /* moved on meanwhile: the claim decides */
        return rc;
    }
    /* A run may be reading the older upstream: ask again later. */
    return status == TF_EXEC_RUNNING ? TF_ERR_CONFLICT : TF_OK;
}

/* ---- plans: what a new record starts with ---- */

static enum tf_rc upstream_plan(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                                struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen)
{
    const char *up_stage = svc->def->upstream;
    const char *job = tf_json_str(body, "job_name");
    cJSON *up = NULL;
    enum tf_rc rc;
    const cJSON *att;

    rc = tf_exec_get(conn, plan->execution_id, up_stage, &up);
    if (rc == TF_ERR_NOT_FOUND) {
        snprintf(err, errlen, "execution %s has no %s stage", plan->execution_id, up_stage);
        return rc;
    }
    if (rc != TF_OK) {
        snprintf(err, errlen, "cannot read the %s stage", up_stage);
        return rc;
    }
    if (tf_exec_record_status(up) != TF_EXEC_SUCCESS) {
        const char *status = tf_json_str(up, "status");
        snprintf(err, errlen, "the %s stage of execution %s is %s; %s needs it to be SUCCESS",
                 up_stage, plan->execution_id, status ? status : "unknown", svc->def->name);
        cJSON_Delete(up);
        return TF_ERR_CONFLICT;
    }
    if (job && strcmp(job, tf_json_str(up, "job_name")) != 0) {
        snprintf(err, errlen, "execution %s belongs to job %s, not %s", plan->execution_id,
                 tf_json_str(up, "job_name"), job);
        cJSON_Delete(up);
        return TF_ERR_CONFLICT;
    }
    snprintf(plan->job_name, sizeof(plan->job_name), "%s", tf_json_str(up, "job_name"));
    plan->window_start = svc_record_time(up, "window_start");
    plan->window_end = svc_record_time(up, "window_end");
    plan->tickers = cJSON_GetObjectItemCaseSensitive(up, "tickers");
    att = cJSON_GetObjectItemCaseSensitive(up, "max_attempts");
    plan->max_attempts = cJSON_IsNumber(att) ? att->valueint : 3;
    *owned = up;
    return TF_OK;
}

enum tf_rc svc_make_plan(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                         struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen)
{
    if (svc->def->plan)
        return svc->def->plan(svc, conn, body, plan, owned, err, errlen);
    return upstream_plan(svc, conn, body, plan, owned, err, errlen);
}
