/*
 * tf/quality.h - the read of what aggregate's checks found about an
 * execution (gold.completeness, gold.dq_results), for the services that
 * show it: aggregate's GET /v1/executions/{id}/quality and extract's
 * console (GET /v1/runs/{id}/quality). Reads gold tables only.
 */
#ifndef TF_QUALITY_H
#define TF_QUALITY_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tf/rc.h"

/**
 * The quality of execution id (a UUID) as a new object (cJSON_Delete):
 *   {"execution_id", "completeness": [{ticker, market, source_timespan,
 *    window_start, window_end, expected, actual, ratio}, ...] by ticker,
 *    "checks": [{rule_no, check, ticker, severity, value, threshold,
 *    passed, message, checked_at, alert: {state, attempts, channels,
 *    last_error}}, ...] by rule and ticker}
 * Both lists are empty when the execution has no results (yet); *found is
 * 0 then, 1 otherwise. TF_ERR_DB when the read fails.
 */
enum tf_rc tf_quality_get(PGconn *conn, const char *id, cJSON **out, int *found) TF_MUSTCHECK;

#endif
