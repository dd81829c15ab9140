/*
 * checks.c - what aggregate measures about an execution's window, per
 * ticker: completeness against the trading calendar (gold.completeness)
 * and the job's data-quality rules (gold.dq_results, see tf/dq.h for the
 * rule format). Results are written in the run's fenced transaction; a
 * failed check that has somewhere to go is queued as a pending alert in
 * the same row (the outbox), delivered by alerts.c after the commit.
 */
#include "aggregate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/pg.h"
#include "tf/quality.h"
#include "tf/time.h"

static const char completeness_sql[] =
    "WITH up AS (INSERT INTO gold.completeness AS c (execution_id, job_name, ticker, market,"
    "  source_timespan, window_start, window_end, expected, actual, ratio, computed_at)"
    " SELECT $2::uuid, $3, r.ticker, r.market, $4, $5::timestamptz, $6::timestamptz,"
    "  r.expected, r.actual, r.actual::double precision / nullif(r.expected, 0), now()"
    " FROM jsonb_to_recordset($1::jsonb)"
    "  AS r(ticker text, market text, expected bigint, actual bigint)"
    " ON CONFLICT (execution_id, ticker) DO UPDATE SET job_name = EXCLUDED.job_name,"
    "  market = EXCLUDED.market, source_timespan = EXCLUDED.source_timespan,"
    "  window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,"
    "  expected = EXCLUDED.expected, actual = EXCLUDED.actual, ratio = EXCLUDED.ratio,"
    "  computed_at = EXCLUDED.computed_at RETURNING 1)"
    " SELECT count(*) FROM up";

/*
 * A rerun of the execution replaces the measurements; an alert already
 * sent or on its way stays as it is, unless the check now passes, when a
 * pending alert is dropped.
 */
static const char results_sql[] =
    "WITH up AS (INSERT INTO gold.dq_results AS d (execution_id, rule_no, ticker, job_name,"
    "  check_name, severity, value, threshold, threshold_min, threshold_max, passed, message,"
    "  checked_at, alert_state, alert_next_at)"
    " SELECT $2::uuid, r.rule_no, r.ticker, $3, r.check_name, r.severity, r.value, r.threshold,"
    "  r.threshold_min, r.threshold_max, r.passed, r.message, now(),"
    "  CASE WHEN r.passed OR NOT $4::boolean THEN 'none' ELSE 'pending' END,"
    "  CASE WHEN r.passed OR NOT $4::boolean THEN NULL ELSE now() END"
    " FROM jsonb_to_recordset($1::jsonb) AS r(rule_no integer, ticker text, check_name text,"
    "  severity text, value double precision, threshold text, threshold_min double precision,"
    "  threshold_max double precision, passed boolean, message text)"
    " ON CONFLICT (execution_id, rule_no, ticker) DO UPDATE SET job_name = EXCLUDED.job_name,"
    "  check_name = EXCLUDED.check_name, severity = EXCLUDED.severity, value = EXCLUDED.value,"
    "  threshold = EXCLUDED.threshold, threshold_min = EXCLUDED.threshold_min,"
    "  threshold_max = EXCLUDED.threshold_max, passed = EXCLUDED.passed,"
    "  message = EXCLUDED.message, checked_at = EXCLUDED.checked_at,"
    "  alert_state = CASE WHEN d.alert_state = 'sent' THEN 'sent'"
    "   WHEN d.alert_state = 'pending' AND NOT EXCLUDED.passed THEN 'pending'"
    "   ELSE EXCLUDED.alert_state END,"
    "  alert_next_at = CASE WHEN d.alert_state = 'sent' THEN d.alert_next_at"
    "   WHEN d.alert_state = 'pending' AND NOT EXCLUDED.passed THEN d.alert_next_at"
    "   ELSE EXCLUDED.alert_next_at END,"
    "  alert_attempts = CASE WHEN d.alert_state IN ('sent', 'pending') AND NOT EXCLUDED.passed"
    "   THEN d.alert_attempts ELSE 0 END"
    " RETURNING 1)"
    " SELECT count(*) FROM up";

/* Per ticker statistics read for the checks. */
struct tstats {
    long long bars;
    double avg_close; /* NAN without bars */
    int64_t *ts;      /* bar starts, ascending; loaded on demand */
    size_t nts;
    int ts_loaded;
};

/* Minutes in [from, to) the market is open (to <= from: 0). */
static long long open_minutes(enum tf_market m, int64_t from, int64_t to)
{
    long long n = 0;

    if (to <= from)
        return 0;
    from -= ((from % 60) + 60) % 60;
    if (m == TF_MARKET_CRYPTO)
        return (to - from + 59) / 60;
    for (int64_t t = from; t < to; t += 60)
        n += tf_cal_minute_open(m, t);
    return n;
}

/* 1 when a bar [t, t + bar_s) has a minute in session. */
static int bar_in_session(enum tf_market m, int64_t t, int64_t bar_s)
{
    int64_t end = t + (bar_s < 86400 ? bar_s : 86400);

    for (int64_t u = t; u < end; u += 60) {
        if (tf_cal_minute_open(m, u))
            return 1;
    }
    return 0;
}

static enum tf_rc load_ts(struct agg_ctx *ctx, size_t i, struct tstats *st)
{
    char ws[32], we[32];
    const char *params[4] = {ctx->tickers[i].name, ctx->span, ws, we};
    PGresult *res;
    int rows;

    if (st->ts_loaded)
        return TF_OK;
    tf_time_format(ctx->run->window_start, ws, sizeof(ws));
    tf_time_format(ctx->run->window_end, we, sizeof(we));
    res = tf_pg_exec(ctx->run->conn,
                     "SELECT extract(epoch FROM ts)::bigint FROM silver.bars"
                     " WHERE ticker = $1 AND timespan = $2 AND ts >= $3::timestamptz"
                     " AND ts < $4::timestamptz ORDER BY ts",
                     4, params);
    if (!tf_pg_ok(res)) {
        tf_run_fail(ctx->run, "reading bar times failed: sqlstate %s", tf_pg_sqlstate(res));
        PQclear(res);
        return TF_ERR_DB;
    }
    rows = PQntuples(res);
    st->ts = rows ? calloc((size_t)rows, sizeof(*st->ts)) : NULL;
    if (rows && !st->ts) {
        PQclear(res);
        tf_run_fail(ctx->run, "out of memory");
        return TF_ERR_NOMEM;
    }
    for (int r = 0; r < rows; r++) {
        int64_t t = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        /* Only bars in session count for gaps and freshness. */
        if (bar_in_session(ctx->tickers[i].market, t, ctx->bar_s))
            st->ts[st->nts++] = t;
    }
    st->ts_loaded = 1;
    PQclear(res);
    return TF_OK;
}

int aggregate_rules_need_avg_close(const cJSON *rules)
{
    const cJSON *r;

    cJSON_ArrayForEach(r, rules)
    {
        const cJSON *check = cJSON_GetObjectItemCaseSensitive(r, "check");
        if (cJSON_IsString(check) &&
            strcmp(check->valuestring, tf_dq_check_name(TF_DQ_AVG_CLOSE_BETWEEN)) == 0)
            return 1;
    }
    return 0;
}

enum tf_rc aggregate_completeness(struct agg_ctx *ctx)
{
    struct tf_run *run = ctx->run;
    cJSON *rows = cJSON_CreateArray();
    char *json = NULL;
    char ws[32], we[32];
    const char *params[6];
    enum tf_rc rc;

    for (size_t i = 0; i < ctx->ntickers && rows; i++) {
        struct agg_ticker *t = &ctx->tickers[i];
        cJSON *o = cJSON_CreateObject();

        t->expected = tf_cal_expected_bars(t->market, ctx->multiplier, ctx->timespan,
                                           run->window_start, run->window_end);
        if (t->expected < 0)
            t->expected = 0;
        cJSON_AddStringToObject(o, "ticker", t->name);
        cJSON_AddStringToObject(o, "market", tf_market_name(t->market));
        cJSON_AddNumberToObject(o, "expected", (double)t->expected);
        cJSON_AddNumberToObject(o, "actual", (double)t->actual);
        cJSON_AddItemToArray(rows, o);
    }
    json = rows ? cJSON_PrintUnformatted(rows) : NULL;
    cJSON_Delete(rows);
    if (!json) {
        tf_run_fail(run, "out of memory");
        return TF_ERR_NOMEM;
    }
    tf_time_format(run->window_start, ws, sizeof(ws));
    tf_time_format(run->window_end, we, sizeof(we));
    params[0] = json;
    params[1] = run->execution_id;
    params[2] = run->job_name;
    params[3] = ctx->span;
    params[4] = ws;
    params[5] = we;
    {
        PGresult *res = tf_pg_exec(run->conn, completeness_sql, 6, params);
        rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
        if (rc != TF_OK)
            tf_run_fail(run, "writing completeness failed: sqlstate %s", tf_pg_sqlstate(res));
        PQclear(res);
    }
    cJSON_free(json);
    return rc;
}

/* One measurement of one rule for one ticker. */
struct measure {
    double value; /* NAN: nothing to measure */
    int passed;
    char threshold[64];
    double tmin, tmax; /* NAN when unbounded */
    char message[320];
};

static void measure_rule(struct agg_ctx *ctx, const struct tf_dq_rule *rule, size_t i,
                         struct tstats *st, struct measure *m)
{
    struct agg_ticker *t = &ctx->tickers[i];
    const char *name = t->name;

    m->value = NAN;
    m->passed = 1;
    m->tmin = m->tmax = NAN;
    switch (rule->check) {
    case TF_DQ_AVG_CLOSE_BETWEEN:
        snprintf(m->threshold, sizeof(m->threshold), "[%g, %g]", rule->min, rule->max);
        m->tmin = rule->min;
        m->tmax = rule->max;
        m->value = st->avg_close;
        if (isnan(m->value)) {
            snprintf(m->message, sizeof(m->message), "%s: no bars in the window, not evaluated",
                     name);
            break;
        }
        m->passed = m->value >= rule->min && m->value <= rule->max;
        snprintf(m->message, sizeof(m->message), "%s: average close %.6g %s [%g, %g]", name,
                 m->value, m->passed ? "within" : "outside", rule->min, rule->max);
        break;
    case TF_DQ_MIN_COMPLETENESS:
        snprintf(m->threshold, sizeof(m->threshold), ">= %g", rule->value);
        m->tmin = rule->value;
        if (t->expected <= 0) {
            snprintf(m->message, sizeof(m->message),
                     "%s: the calendar expects no bar in the window, not evaluated", name);
            break;
        }
        m->value = (double)t->actual / (double)t->expected;
        m->passed = m->value >= rule->value;
        snprintf(m->message, sizeof(m->message), "%s: completeness %.4f (%lld of %lld bars) %s %g",
                 name, m->value, t->actual, t->expected, m->passed ? "at least" : "below",
                 rule->value);
        break;
    case TF_DQ_MAX_GAP_MINUTES: {
        long long worst = -1;
        snprintf(m->threshold, sizeof(m->threshold), "<= %g", rule->value);
        m->tmax = rule->value;
        for (size_t k = 1; k < st->nts; k++) {
            long long g = open_minutes(t->market, st->ts[k - 1], st->ts[k]);
            worst = g > worst ? g : worst;
        }
        if (worst < 0) {
            snprintf(m->message, sizeof(m->message),
                     "%s: fewer than two bars in session, not evaluated", name);
            break;
        }
        m->value = (double)worst;
        m->passed = m->value <= rule->value;
        snprintf(m->message, sizeof(m->message),
                 "%s: largest gap between bars %lld market minutes %s %g", name, worst,
                 m->passed ? "within" : "over", rule->value);
        break;
    }
    case TF_DQ_FRESHNESS_MINUTES: {
        int64_t we = ctx->run->window_end;
        int64_t from = ctx->run->window_start;
        if (st->nts > 0)
            from = st->ts[st->nts - 1] + ctx->bar_s;
        snprintf(m->threshold, sizeof(m->threshold), "<= %g", rule->value);
        m->tmax = rule->value;
        m->value = (double)open_minutes(t->market, from < we ? from : we, we);
        m->passed = m->value <= rule->value;
        snprintf(m->message, sizeof(m->message),
                 "%s: %s %.0f market minutes before the window end (limit %g)", name,
                 st->nts ? "newest bar ends" : "no bar; the window opened", m->value, rule->value);
        break;
    }
    }
}

static void add_num(cJSON *o, const char *key, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, v);
}

enum tf_rc aggregate_checks(struct agg_ctx *ctx, const cJSON *rules, struct agg_dq_outcome *out)
{
    struct tf_run *run = ctx->run;
    struct tf_dq_rule *parsed = NULL;
    struct tstats *stats = NULL;
    size_t nrules = 0;
    cJSON *rows = NULL;
    char *json = NULL;
    char err[512];
    unsigned channels =
        tf_alert_channels(&((const struct aggregate_cfg *)tf_svc_stage_cfg(ctx->run->svc))->alert);
    enum tf_rc rc = TF_OK;
    int64_t t0;

    memset(out, 0, sizeof(*out));
    out->warnings = cJSON_CreateArray();
    stats = calloc(ctx->ntickers ? ctx->ntickers : 1, sizeof(*stats));
    parsed = calloc(TF_DQ_MAX_RULES, sizeof(*parsed));
    rows = cJSON_CreateArray();
    if (!stats || !parsed || !rows || !out->warnings) {
        tf_run_fail(run, "out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    /* The rollups counted the bars and measured the average close. */
    for (size_t i = 0; i < ctx->ntickers; i++) {
        stats[i].bars = ctx->tickers[i].actual;
        stats[i].avg_close = ctx->tickers[i].avg_close;
    }
    t0 = tf_time_mono_ms();
    rc = aggregate_completeness(ctx);
    if (rc != TF_OK)
        goto out;
    tf_log_info(&run->log, "completeness ms=%lld", (long long)(tf_time_mono_ms() - t0));
    /* The job's tickers are not passed: a rule for a ticker outside this
     * execution simply measures nothing. */
    if (tf_dq_rules_parse(rules, NULL, parsed, TF_DQ_MAX_RULES, &nrules, err, sizeof(err)) !=
        TF_OK) {
        tf_run_fail(run, "the job's dq_rules are invalid: %s", err);
        rc = TF_ERR_INVALID;
        goto out;
    }
    for (size_t r = 0; r < nrules; r++) {
        const struct tf_dq_rule *rule = &parsed[r];
        for (size_t i = 0; i < ctx->ntickers; i++) {
            struct measure m;
            cJSON *o;

            if (rule->ticker[0] && strcmp(rule->ticker, ctx->tickers[i].name) != 0)
                continue;
            if (rule->check == TF_DQ_MAX_GAP_MINUTES || rule->check == TF_DQ_FRESHNESS_MINUTES) {
                rc = load_ts(ctx, i, &stats[i]);
                if (rc != TF_OK)
                    goto out;
            }
            memset(&m, 0, sizeof(m));
            measure_rule(ctx, rule, i, &stats[i], &m);
            o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "rule_no", (double)r);
            cJSON_AddStringToObject(o, "ticker", ctx->tickers[i].name);
            cJSON_AddStringToObject(o, "check_name", tf_dq_check_name(rule->check));
            cJSON_AddStringToObject(o, "severity", rule->fail ? "fail" : "warn");
            add_num(o, "value", m.value);
            cJSON_AddStringToObject(o, "threshold", m.threshold);
            add_num(o, "threshold_min", m.tmin);
            add_num(o, "threshold_max", m.tmax);
            cJSON_AddBoolToObject(o, "passed", m.passed);
            cJSON_AddStringToObject(o, "message", m.message);
            cJSON_AddItemToArray(rows, o);
            out->results++;
            if (m.passed)
                continue;
            out->failed++;
            tf_log_warn(&run->log, "data-quality check %s failed (%s): %s",
                        tf_dq_check_name(rule->check), rule->fail ? "fail" : "warn", m.message);
            if (rule->fail) {
                if (out->failed_fail++ == 0)
                    snprintf(out->first_fail, sizeof(out->first_fail), "%s: %s (threshold %s)",
                             tf_dq_check_name(rule->check), m.message, m.threshold);
            } else if (cJSON_GetArraySize(out->warnings) < 20) {
                char w[512];
                snprintf(w, sizeof(w), "%s: %s (threshold %s)", tf_dq_check_name(rule->check),
                         m.message, m.threshold);
                cJSON_AddItemToArray(out->warnings, cJSON_CreateString(w));
            }
        }
    }
    if (out->results == 0)
        goto out;
    json = cJSON_PrintUnformatted(rows);
    if (!json) {
        tf_run_fail(run, "out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    {
        const char *params[4] = {json, run->execution_id, run->job_name, channels ? "t" : "f"};
        PGresult *res = tf_pg_exec(run->conn, results_sql, 4, params);
        if (!tf_pg_ok(res)) {
            tf_run_fail(run, "writing data-quality results failed: sqlstate %s",
                        tf_pg_sqlstate(res));
            rc = TF_ERR_DB;
        }
        PQclear(res);
    }
out:
    if (stats) {
        for (size_t i = 0; i < ctx->ntickers; i++)
            free(stats[i].ts);
    }
    free(stats);
    free(parsed);
    cJSON_Delete(rows);
    cJSON_free(json);
    return rc;
}

/*
 * GET /v1/executions/{id}/quality: what the checks of an execution found,
 * for people and orchestrators: completeness per ticker and every rule's
 * result with its alert's delivery state. 404 when the execution has
 * neither.
 */
int aggregate_quality_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn)
{
    char caps[1][128];
    int matched;
    int found = 0;
    cJSON *root = NULL;
    enum tf_rc rc;

    (void)svc;
    matched = tf_svc_execution_route(req, "/v1/executions/*/quality", caps[0]);
    if (matched <= 0)
        return matched < 0; /* another path, or an error already answered */
    rc = tf_quality_get(conn, caps[0], &root, &found);
    if (rc != TF_OK)
        tf_http_reply_rc(req, rc, "cannot read the quality results");
    else if (!found)
        tf_http_reply_rcf(req, TF_ERR_NOT_FOUND, "no quality results for execution %s", caps[0]);
    else
        tf_http_reply_json(req, TF_HTTP_OK, root);
    cJSON_Delete(root);
    return 1;
}
