/*
 * alerts.c - delivery of data-quality alerts from the outbox in
 * gold.dq_results: claimed by the tick, sent to the channels that have not
 * taken them, retried with a doubling backoff. docs/ARCHITECTURE.md (Gold).
 */
#include "aggregate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/pg.h"

#define ALERTS_PER_TICK 10

static const char claim_sql[] =
    "UPDATE gold.dq_results d SET alert_next_at = now() + $1::bigint * interval '1 millisecond'"
    " FROM (SELECT execution_id, rule_no, ticker FROM gold.dq_results"
    "  WHERE alert_state = 'pending' AND alert_next_at <= now()"
    "  ORDER BY alert_next_at LIMIT 1 FOR UPDATE SKIP LOCKED) c"
    " WHERE d.execution_id = c.execution_id AND d.rule_no = c.rule_no AND d.ticker = c.ticker"
    " RETURNING d.execution_id, d.rule_no, d.ticker, d.job_name, d.check_name, d.severity,"
    "  d.value, d.threshold, d.message, d.alert_attempts,"
    "  array_to_string(d.alert_channels, ',')";

static const char outcome_sql[] =
    "UPDATE gold.dq_results SET alert_state = $4, alert_attempts = $5::integer,"
    " alert_channels = $6::text[], alert_last_error = $7,"
    " alert_next_at = CASE WHEN $4 = 'pending'"
    "  THEN now() + $8::bigint * interval '1 millisecond' END,"
    " alert_sent_at = CASE WHEN $4 = 'sent' THEN now() END"
    " WHERE execution_id = $1::uuid AND rule_no = $2::integer AND ticker = $3"
    " AND alert_state = 'pending'";

static unsigned channels_parse(const char *s)
{
    unsigned mask = 0;

    if (strstr(s, "webhook"))
        mask |= TF_ALERT_WEBHOOK;
    if (strstr(s, "mail"))
        mask |= TF_ALERT_MAIL;
    return mask;
}

static void channels_format(unsigned mask, char *out, size_t len)
{
    snprintf(out, len, "{%s%s%s}", mask & TF_ALERT_WEBHOOK ? "webhook" : "",
             (mask & TF_ALERT_WEBHOOK) && (mask & TF_ALERT_MAIL) ? "," : "",
             mask & TF_ALERT_MAIL ? "mail" : "");
}

/* The wait before attempt n + 1 (n >= 1): retry_ms doubled per attempt, at most 10 minutes. */
static long long backoff_ms(const struct aggregate_cfg *cfg, long attempts)
{
    long long ms = cfg->alert_retry_ms;

    for (long i = 1; i < attempts && ms < 600000; i++)
        ms *= 2;
    return ms < 600000 ? ms : 600000;
}

static void deliver(const struct aggregate_cfg *cfg, PGconn *conn, PGresult *res, int row,
                    unsigned configured)
{
    struct tf_alert a;
    struct tf_logctx log;
    unsigned had = channels_parse(PQgetvalue(res, row, 10));
    unsigned got = 0;
    long attempts = strtol(PQgetvalue(res, row, 9), NULL, 10) + 1;
    const char *state;
    char err[512] = "", chans[32], att[24], wait[24];
    const char *params[8];
    PGresult *up;
    enum tf_rc rc;

    memset(&log, 0, sizeof(log));
    tf_logctx_set_exec(&log, PQgetvalue(res, row, 0));
    a.execution_id = PQgetvalue(res, row, 0);
    a.job_name = PQgetvalue(res, row, 3);
    a.check = PQgetvalue(res, row, 4);
    a.severity = PQgetvalue(res, row, 5);
    a.value = PQgetisnull(res, row, 6) ? NAN : strtod(PQgetvalue(res, row, 6), NULL);
    a.threshold = PQgetvalue(res, row, 7);
    a.message = PQgetvalue(res, row, 8);
    rc = tf_alert_send(&cfg->alert, configured & ~had, &a, &got, err, sizeof(err));
    had |= got;
    if (rc == TF_OK || (configured & ~had) == 0)
        state = "sent";
    else if (attempts >= cfg->alert_max_attempts)
        state = "failed";
    else
        state = "pending";
    channels_format(had, chans, sizeof(chans));
    snprintf(att, sizeof(att), "%ld", attempts);
    snprintf(wait, sizeof(wait), "%lld", backoff_ms(cfg, attempts));
    params[0] = a.execution_id;
    params[1] = PQgetvalue(res, row, 1);
    params[2] = PQgetvalue(res, row, 2);
    params[3] = state;
    params[4] = att;
    params[5] = chans;
    params[6] = strcmp(state, "sent") == 0 ? NULL : err;
    params[7] = wait;
    up = tf_pg_exec(conn, outcome_sql, 8, params);
    if (!tf_pg_ok(up))
        tf_log_warn(&log, "alert outcome not recorded (sqlstate %s): it will be sent again",
                    tf_pg_sqlstate(up));
    PQclear(up);
    if (strcmp(state, "sent") == 0)
        tf_log_info(&log, "alert sent job=%s check=%s channels=%s attempt=%ld", a.job_name, a.check,
                    chans, attempts);
    else
        tf_log_warn(&log, "alert not delivered job=%s check=%s attempt=%ld of %ld state=%s: %s",
                    a.job_name, a.check, attempts, cfg->alert_max_attempts, state, err);
}

void aggregate_alerts_tick(struct tf_svc *svc, PGconn *conn)
{
    const struct aggregate_cfg *cfg = tf_svc_stage_cfg(svc);
    unsigned configured = tf_alert_channels(&cfg->alert);
    char lease[24];
    const char *params[1] = {lease};
    PGresult *res;

    if (!configured)
        return;
    /* One alert per claim, its lease the two channels' timeouts plus slack:
     * another replica never takes an alert still being sent. */
    snprintf(lease, sizeof(lease), "%ld", 2 * cfg->alert.timeout_ms + 30000);
    for (int n = 0; n < ALERTS_PER_TICK && !tf_svc_stopping(svc); n++) {
        int got;
        res = tf_pg_exec(conn, claim_sql, 1, params);
        if (!tf_pg_ok(res)) {
            tf_log_warn(NULL, "alert outbox not read (sqlstate %s)", tf_pg_sqlstate(res));
            PQclear(res);
            return;
        }
        got = PQntuples(res);
        if (got == 1)
            deliver(cfg, conn, res, 0, configured);
        PQclear(res);
        if (got == 0)
            break;
    }
}
