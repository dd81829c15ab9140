/*
 * schedule.c - the built-in schedule: each tick of the runtime (twice a
 * second), every replica of extract looks for jobs whose next tick is due.
 *
 * tickflow.job_schedule holds one row per scheduled job: its spec, the
 * next tick and what the last one did. A replica takes due rows with
 * SELECT ... FOR UPDATE SKIP LOCKED and, in the same transaction, inserts
 * the execution and moves next_at past now; a second replica skips the
 * locked rows and then finds them not due, so each tick starts at most one
 * execution however many replicas run. Ticks missed while no replica ran
 * are one tick: the execution's incremental window reaches back to the end
 * of the job's last successful one (at most 31 days). A job whose last
 * scheduled execution is still in flight is not taken: its due tick waits
 * and starts in the first round after that execution ends, in one window
 * with every tick that went by meanwhile.
 */
#include "schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"
#include "tf/exec.h"
#include "tf/json.h"
#include "tf/log.h"
#include "tf/pg.h"
#include "tf/time.h"

/* Missed ticks counted at most, for the outcome's wording. */
#define MISSED_COUNT_MAX 100000

/* clang-format off */
static const char take_due[] =
    "SELECT s.job_name, s.spec::text, extract(epoch FROM s.next_at)::bigint,"
    " c.timespan, c.multiplier"
    " FROM tickflow.job_schedule s JOIN tickflow.job_config c USING (job_name)"
    " WHERE c.enabled AND s.next_at <= to_timestamp($1)"
    " AND NOT EXISTS (SELECT 1 FROM tickflow.job_execution e"
    "                 WHERE e.execution_id = s.last_execution_id"
    "                 AND e.status IN ('PENDING', 'RUNNING', 'ZOMBIE'))"
    " ORDER BY s.next_at LIMIT 64" /* a round's share; the rest wait half a second */
    " FOR UPDATE OF s SKIP LOCKED";

static const char record_tick[] =
    "UPDATE tickflow.job_schedule SET next_at = to_timestamp($2::bigint),"
    " last_at = to_timestamp($3::bigint), last_fired_at = now(), last_outcome = $4,"
    " last_execution_id = coalesce($5::uuid, last_execution_id), updated_at = now()"
    " WHERE job_name = $1";
/* clang-format on */

/* Ticks after due up to now, besides due itself. */
static long missed_ticks(const struct extract_schedule *s, int64_t due, int64_t now)
{
    long n = 0;

    if (s->every_seconds > 0)
        return (long)((now - due) / s->every_seconds);
    for (int64_t t = extract_schedule_next(s, due); t > 0 && t <= now && n < MISSED_COUNT_MAX;
         t = extract_schedule_next(s, t))
        n++;
    return n;
}

/*
 * Starts an execution of job on its incremental window, in the caller's
 * transaction. TF_OK with id set; TF_ERR_DB when the database failed;
 * another code (up to date, disabled, gone) with outcome saying why.
 */
static enum tf_rc start_one(PGconn *conn, const char *job, char id[TF_UUID_LEN + 1], char *outcome,
                            size_t outlen)
{
    struct tf_exec_plan plan;
    cJSON *body = cJSON_CreateObject();
    cJSON *owned = NULL;
    char err[512] = "";
    int created = 0;
    enum tf_rc rc;

    memset(&plan, 0, sizeof(plan));
    if (!body || !cJSON_AddStringToObject(body, "job_name", job)) {
        cJSON_Delete(body);
        return TF_ERR_NOMEM;
    }
    rc = extract_plan(NULL, conn, body, &plan, &owned, err, sizeof(err));
    if (rc == TF_OK) {
        tf_uuid_new(plan.execution_id);
        plan.stage = "extract";
        plan.trigger = "schedule";
        rc = tf_exec_insert(conn, &plan, &created);
        if (rc == TF_OK && !created)
            rc = TF_ERR_DB; /* a new uuid cannot exist; treat as a failed round */
        if (rc == TF_OK)
            snprintf(id, TF_UUID_LEN + 1, "%s", plan.execution_id);
    } else if (rc != TF_ERR_DB) {
        snprintf(outcome, outlen, "skipped: %s", err);
    }
    cJSON_Delete(owned);
    cJSON_Delete(body);
    return rc;
}

/* What one due row does; TF_ERR_DB ends the round. */
static enum tf_rc take_one(PGconn *conn, PGresult *res, int row, int64_t now,
                           struct tf_exec_ids *started)
{
    const char *job = PQgetvalue(res, row, 0);
    cJSON *spec = cJSON_Parse(PQgetvalue(res, row, 1));
    int64_t due = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    int64_t bar =
        tf_timespan_seconds(PQgetvalue(res, row, 3), strtol(PQgetvalue(res, row, 4), NULL, 10));
    struct extract_schedule s;
    char id[TF_UUID_LEN + 1] = "", outcome[640] = "", err[512] = "";
    char next_s[24], due_s[24];
    const char *params[5];
    int64_t next;
    long missed = 0;
    enum tf_rc rc = TF_OK;
    PGresult *up;

    if (extract_schedule_parse(spec, bar > 0 ? bar : 60, &s, err, sizeof(err)) != TF_OK) {
        /* Valid when it was PUT; a zone file gone since, say. Look again in an hour. */
        next = now + 3600;
        snprintf(outcome, sizeof(outcome), "error: %s", err);
    } else {
        next = extract_schedule_next(&s, now);
        missed = missed_ticks(&s, due, now);
        rc = start_one(conn, job, id, outcome, sizeof(outcome));
        if (rc == TF_ERR_DB || rc == TF_ERR_NOMEM) {
            cJSON_Delete(spec);
            return TF_ERR_DB;
        }
        if (rc == TF_OK && missed > 0)
            snprintf(outcome, sizeof(outcome),
                     "started (%ld%s missed tick%s caught up in one window)", missed,
                     missed >= MISSED_COUNT_MAX ? " or more" : "", missed == 1 ? "" : "s");
        else if (rc == TF_OK)
            snprintf(outcome, sizeof(outcome), "started");
    }
    cJSON_Delete(spec);
    snprintf(next_s, sizeof(next_s), "%lld", (long long)next);
    snprintf(due_s, sizeof(due_s), "%lld", (long long)due);
    params[0] = job;
    params[1] = next > 0 ? next_s : NULL;
    params[2] = due_s;
    params[3] = outcome;
    params[4] = id[0] ? id : NULL;
    up = tf_pg_exec(conn, record_tick, 5, params);
    if (!tf_pg_ok(up)) {
        PQclear(up);
        return TF_ERR_DB;
    }
    PQclear(up);
    if (id[0]) {
        char(*grown)[TF_UUID_LEN + 1] =
            realloc(started->id, (size_t)(started->n + 1) * sizeof(*started->id));

        if (!grown)
            return TF_ERR_DB;
        started->id = grown;
        snprintf(started->id[started->n++], TF_UUID_LEN + 1, "%s", id);
    }
    {
        char due_at[32];

        tf_time_format(due, due_at, sizeof(due_at));
        if (id[0])
            tf_log_info(NULL, "schedule: job %s, tick %s: execution %s %s", job, due_at, id,
                        outcome);
        else
            tf_log_info(NULL, "schedule: job %s, tick %s: %s", job, due_at, outcome);
    }
    return TF_OK;
}

int extract_schedule_round(PGconn *conn, int64_t now, struct tf_exec_ids *started)
{
    char now_s[24];
    const char *params[1] = {now_s};
    PGresult *res = NULL;
    int taken = -1;

    tf_exec_ids_cleanup(started);
    if (tf_pg_cmd(conn, "BEGIN") != TF_OK)
        return -1;
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    res = tf_pg_exec(conn, take_due, 1, params);
    if (!tf_pg_ok(res))
        goto out;
    for (int i = 0; i < PQntuples(res); i++)
        if (take_one(conn, res, i, now, started) != TF_OK)
            goto out;
    if (tf_pg_cmd(conn, "COMMIT") != TF_OK)
        goto out;
    taken = PQntuples(res);
out:
    PQclear(res);
    if (taken < 0) {
        if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
            PGresult *rb = PQexec(conn, "ROLLBACK");
            PQclear(rb);
        }
        tf_exec_ids_cleanup(started);
        tf_log_warn(NULL, "schedule: a round failed and changed nothing; the next one retries");
    }
    return taken;
}

void extract_tick(struct tf_svc *svc, PGconn *conn)
{
    struct tf_exec_ids started = {NULL, 0};

    extract_backfill_release(svc, conn);
    if (extract_schedule_round(conn, tf_time_now(), &started) > 0)
        for (int i = 0; i < started.n; i++)
            tf_svc_enqueue(svc, started.id[i]);
    tf_exec_ids_cleanup(&started);
}
