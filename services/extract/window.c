/*
 * window.c - the window an extraction covers, from what the POST gives and
 * what the job says (no I/O), and the plan of a new extract record, which
 * reads the job and its last window (a POST and the schedule both make one).
 */
#include "extract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/json.h"
#include "tf/pg.h"
#include "tf/time.h"

enum tf_rc extract_window_given(const char *ws, const char *we, int64_t bar, int64_t now,
                                int64_t *start, int64_t *end, char *err, size_t errlen)
{
    if (tf_time_parse(ws, start) != TF_OK || tf_time_parse(we, end) != TF_OK) {
        snprintf(err, errlen, "window_start and window_end must be ISO-8601 times");
        return TF_ERR_INVALID;
    }
    if (*end <= *start) {
        snprintf(err, errlen, "window_end must be after window_start");
        return TF_ERR_INVALID;
    }
    if (*end > now + bar) {
        snprintf(err, errlen, "window_end is in the future");
        return TF_ERR_INVALID;
    }
    if (*end - *start > EXTRACT_MAX_WINDOW_SECONDS) {
        snprintf(err, errlen,
                 "a window may cover at most 31 days; split it into several executions");
        return TF_ERR_INVALID;
    }
    return TF_OK;
}

enum tf_rc extract_window_next(const char *job, int64_t bar, long overlap_s, long interval_s,
                               int64_t last, int64_t now, int64_t *start, int64_t *end, char *err,
                               size_t errlen)
{
    /* From the end of the last good window less the overlap (late bars),
     * to now truncated to the bar; a job far behind catches up 31 days
     * at a time. */
    *end = now - now % bar;
    *start = last > 0 ? last - overlap_s : *end - interval_s;
    *start -= *start % bar;
    if (*end - *start > EXTRACT_MAX_WINDOW_SECONDS) {
        *end = *start + EXTRACT_MAX_WINDOW_SECONDS;
        *end -= *end % bar;
    }
    if (*end <= last || *end <= *start) {
        char at[32];

        tf_time_format(last, at, sizeof(at));
        snprintf(err, errlen, "job %s is up to date: no complete bar after %s", job, at);
        return TF_ERR_CONFLICT;
    }
    return TF_OK;
}

/* End of the job's last successful extract window, or 0 when none. */
static enum tf_rc last_window_end(PGconn *conn, const char *job, int64_t *out)
{
    const char *params[1] = {job};
    PGresult *res = tf_pg_exec(conn,
                               "SELECT coalesce(extract(epoch FROM max(window_end)), 0)::bigint"
                               " FROM tickflow.job_execution WHERE job_name = $1"
                               " AND stage = 'extract' AND status = 'SUCCESS'",
                               1, params);
    enum tf_rc rc = TF_ERR_DB;

    if (tf_pg_ok(res)) {
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        rc = TF_OK;
    }
    PQclear(res);
    return rc;
}

enum tf_rc extract_plan(struct tf_svc *svc, PGconn *conn, const cJSON *body,
                        struct tf_exec_plan *plan, cJSON **owned, char *err, size_t errlen)
{
    const char *name = tf_json_str(body, "job_name");
    const char *ws = tf_json_str(body, "window_start");
    const char *we = tf_json_str(body, "window_end");
    cJSON *job = NULL;
    const cJSON *enabled;
    int64_t bar;
    enum tf_rc rc;

    (void)svc;
    if (!name) {
        snprintf(err, errlen, "job_name is required");
        return TF_ERR_INVALID;
    }
    if (!ws != !we) {
        snprintf(err, errlen, "give both window_start and window_end, or neither");
        return TF_ERR_INVALID;
    }
    rc = extract_job_get(conn, name, &job);
    if (rc == TF_ERR_NOT_FOUND) {
        snprintf(err, errlen, "unknown job %s", name);
        return rc;
    }
    if (rc != TF_OK) {
        snprintf(err, errlen, "cannot read job %s", name);
        return rc;
    }
    *owned = job;
    enabled = cJSON_GetObjectItemCaseSensitive(job, "enabled");
    if (cJSON_IsFalse(enabled)) {
        snprintf(err, errlen, "job %s is disabled", name);
        return TF_ERR_CONFLICT;
    }
    bar = tf_timespan_seconds(tf_json_str(job, "timespan"), tf_json_long(job, "multiplier", 0));
    if (bar <= 0) {
        snprintf(err, errlen, "job %s has an unknown timespan", name);
        return TF_ERR_CONFLICT;
    }
    if (ws) {
        /* tf_svc_check_execution_body has parsed both already. */
        rc = extract_window_given(ws, we, bar, tf_time_now(), &plan->window_start,
                                  &plan->window_end, err, errlen);
        if (rc != TF_OK)
            return rc;
    } else {
        int64_t last = 0;
        int64_t now = tf_time_now();

        rc = last_window_end(conn, name, &last);
        if (rc != TF_OK) {
            snprintf(err, errlen, "cannot read the job's last window");
            return rc;
        }
        rc = extract_window_next(name, bar, tf_json_long(job, "overlap_seconds", 0),
                                 tf_json_long(job, "interval_seconds", 0), last, now,
                                 &plan->window_start, &plan->window_end, err, errlen);
        if (rc != TF_OK)
            return rc;
    }
    snprintf(plan->job_name, sizeof(plan->job_name), "%s", name);
    plan->tickers = cJSON_GetObjectItemCaseSensitive(job, "tickers");
    plan->max_attempts = (int)tf_json_long(job, "max_attempts", 0);
    return TF_OK;
}
