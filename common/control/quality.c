/*
 * quality.c - reads an execution's completeness per ticker and its
 * data-quality results with their alerts' delivery state from gold, in
 * one statement (tf/quality.h).
 */
#include "tf/quality.h"

#include "tf/pg.h"

/* clang-format off */
#define UTC_TIME(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
static const char quality_sql[] =
    "SELECT json_build_object('execution_id', $1::text,"
    " 'completeness', coalesce((SELECT json_agg(json_build_object('ticker', ticker,"
    "  'market', market, 'source_timespan', source_timespan,"
    "  'window_start', " UTC_TIME("window_start") ", 'window_end', " UTC_TIME("window_end") ","
    "  'expected', expected, 'actual', actual, 'ratio', ratio) ORDER BY ticker)"
    "  FROM gold.completeness WHERE execution_id = $1::uuid), '[]'),"
    " 'checks', coalesce((SELECT json_agg(json_build_object('rule_no', rule_no,"
    "  'check', check_name, 'ticker', ticker, 'severity', severity, 'value', value,"
    "  'threshold', threshold, 'passed', passed, 'message', message,"
    "  'checked_at', " UTC_TIME("checked_at") ","
    "  'alert', json_build_object('state', alert_state, 'attempts', alert_attempts,"
    "   'channels', alert_channels, 'last_error', alert_last_error))"
    "  ORDER BY rule_no, ticker) FROM gold.dq_results WHERE execution_id = $1::uuid), '[]')"
    ")::text";
/* clang-format on */

enum tf_rc tf_quality_get(PGconn *conn, const char *id, cJSON **out, int *found)
{
    const char *params[1] = {id};
    enum tf_rc rc = tf_pg_json_row(conn, quality_sql, 1, params, out);

    *found = 0;
    if (rc != TF_OK)
        return rc == TF_ERR_NOT_FOUND ? TF_ERR_DB : rc; /* the statement always has a row */
    *found = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(*out, "completeness")) > 0 ||
             cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(*out, "checks")) > 0;
    return TF_OK;
}
