/*
 * console_days.c - GET /v1/jobs/{job}/days, the console's calendar of a
 * job: each UTC day is covered, partial, a gap or closed, from the
 * minutes its markets are open (tf/calendar.h) and the windows of the
 * job's successful executions (through aggregate by default).
 */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"
#include "tf/calendar.h"
#include "tf/json.h"
#include "tf/pg.h"
#include "tf/time.h"

#define DAY_MINUTES 1440
#define MAX_DAYS    366

const char *extract_day_state_name(enum extract_day_state st)
{
    switch (st) {
    case EXTRACT_DAY_CLOSED:
        return "closed";
    case EXTRACT_DAY_GAP:
        return "gap";
    case EXTRACT_DAY_PARTIAL:
        return "partial";
    case EXTRACT_DAY_COVERED:
        return "covered";
    }
    return "closed";
}

/* Marks open[] for the minutes of the UTC day starting at start that market m is open. */
static void mark_open(enum tf_market m, int64_t day, unsigned char open[DAY_MINUTES])
{
    int64_t start = day * 86400;

    if (m == TF_MARKET_CRYPTO) {
        memset(open, 1, DAY_MINUTES);
    } else if (m == TF_MARKET_US_EQUITY) {
        int64_t o = 0, c = 0;
        int y, mo, d;

        /* A New York session lies within the UTC day of the same date. */
        tf_civil_from_days(day, &y, &mo, &d);
        if (!tf_cal_us_session(y, mo, d, &o, &c))
            return;
        for (int64_t t = o; t < c; t += 60) {
            if (t >= start && t < start + 86400)
                open[(t - start) / 60] = 1;
        }
    } else {
        /* Forex opens and closes at 17:00 New York: always on a UTC hour. */
        for (int h = 0; h < 24; h++) {
            if (tf_cal_minute_open(m, start + h * 3600))
                memset(open + h * 60, 1, 60);
        }
    }
}

enum extract_day_state extract_day_state(int64_t day, unsigned markets, const int64_t *cover,
                                         size_t ncover, int64_t until, int *open_min,
                                         int *covered_min)
{
    static const enum tf_market all[] = {TF_MARKET_US_EQUITY, TF_MARKET_CRYPTO, TF_MARKET_FOREX};
    unsigned char open[DAY_MINUTES];
    int64_t start = day * 86400, end = start + 86400;
    size_t lo = 0, hi = ncover;
    int nopen = 0, ncov = 0;

    memset(open, 0, sizeof(open));
    for (size_t i = 0; i < TF_ARRAY_LEN(all); i++) {
        if (markets & EXTRACT_MARKET_BIT(all[i]))
            mark_open(all[i], day, open);
    }
    /* Minutes still to come are not open yet. */
    for (int64_t i = until > start ? (until - start + 59) / 60 : 0; i < DAY_MINUTES; i++)
        open[i] = 0;
    for (int i = 0; i < DAY_MINUTES; i++)
        nopen += open[i];
    /* The first range that ends after the day starts. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cover[2 * mid + 1] <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k < ncover && cover[2 * k] < end; k++) {
        int64_t a = cover[2 * k] > start ? cover[2 * k] : start;
        int64_t b = cover[2 * k + 1] < end ? cover[2 * k + 1] : end;
        /* The minutes that start in [a, b). */
        for (int64_t i = (a - start + 59) / 60; i < (b - start + 59) / 60 && i < DAY_MINUTES; i++)
            ncov += open[i];
    }
    if (open_min)
        *open_min = nopen;
    if (covered_min)
        *covered_min = ncov;
    if (nopen == 0)
        return EXTRACT_DAY_CLOSED;
    if (ncov == 0)
        return EXTRACT_DAY_GAP;
    return ncov == nopen ? EXTRACT_DAY_COVERED : EXTRACT_DAY_PARTIAL;
}

/* A "YYYY-MM-DD" query argument as a day number; 0 when absent or not a date. */
static int query_day(struct tf_http_req *req, const char *key, int64_t *day)
{
    const char *s = tf_http_query(req, key);
    int64_t t = 0;

    if (!s || strlen(s) != 10 || tf_time_parse(s, &t) != TF_OK)
        return 0;
    *day = tf_floor_div(t, 86400);
    return 1;
}

/*
 * The range shown when the caller names none: the months from the job's
 * first window to its last, up to today (the last 366 days of them at
 * most), or this month up to today for a job that never ran.
 */
static enum tf_rc default_range(PGconn *conn, const char *job, int64_t *from, int64_t *to)
{
    const char *params[1] = {job};
    PGresult *res = tf_pg_exec(conn,
                               "SELECT extract(epoch FROM min(window_start))::bigint,"
                               " extract(epoch FROM max(window_end))::bigint - 1"
                               " FROM tickflow.job_execution WHERE job_name = $1",
                               1, params);
    int64_t now = tf_time_now(), first = now, last = now;
    int y, m, d;

    if (!tf_pg_ok(res)) {
        PQclear(res);
        return TF_ERR_DB;
    }
    if (!PQgetisnull(res, 0, 0)) {
        first = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        last = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    tf_civil_from_days(tf_floor_div(first, 86400), &y, &m, &d);
    *from = tf_days_from_civil(y, m, 1);
    tf_civil_from_days(tf_floor_div(last, 86400), &y, &m, &d);
    *to = (m == 12 ? tf_days_from_civil(y + 1, 1, 1) : tf_days_from_civil(y, m + 1, 1)) - 1;
    if (*to > tf_floor_div(now, 86400))
        *to = tf_floor_div(now, 86400);
    if (*to - *from >= MAX_DAYS)
        *from = *to - (MAX_DAYS - 1);
    return TF_OK;
}

/* The job's successful windows of stage within [from, to) as sorted disjoint ranges. */
static enum tf_rc covered_ranges(PGconn *conn, const char *job, const char *stage, int64_t from,
                                 int64_t to, int64_t **cover, size_t *ncover)
{
    char from_s[32], to_s[32];
    const char *params[4] = {job, from_s, to_s, stage};
    PGresult *res;
    int rows;

    tf_time_format(from, from_s, sizeof(from_s));
    tf_time_format(to, to_s, sizeof(to_s));
    res = tf_pg_exec(
        conn,
        "SELECT extract(epoch FROM lower(g))::bigint, extract(epoch FROM upper(g))::bigint"
        " FROM unnest(coalesce((SELECT range_agg(tstzrange(window_start, window_end))"
        "  FROM tickflow.job_execution WHERE job_name = $1 AND stage = $4"
        "  AND status = 'SUCCESS' AND window_end > $2::timestamptz"
        "  AND window_start < $3::timestamptz), '{}'::tstzmultirange)) AS g"
        " ORDER BY lower(g)",
        4, params);
    if (!tf_pg_ok(res)) {
        PQclear(res);
        return TF_ERR_DB;
    }
    rows = PQntuples(res);
    *cover = calloc((size_t)rows * 2 + 2, sizeof(**cover));
    if (!*cover) {
        PQclear(res);
        return TF_ERR_NOMEM;
    }
    for (int r = 0; r < rows; r++) {
        (*cover)[2 * r] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        (*cover)[2 * r + 1] = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    }
    *ncover = (size_t)rows;
    PQclear(res);
    return TF_OK;
}

void extract_console_days(struct tf_http_req *req, PGconn *conn, const char *job)
{
    const char *stage = NULL;
    int64_t now = tf_time_now();
    int have_from = tf_http_query(req, "from") != NULL;
    int have_to = tf_http_query(req, "to") != NULL;
    int64_t from = 0, to = 0;
    int64_t *cover = NULL;
    size_t ncover = 0;
    unsigned markets = 0;
    int counts[4] = {0, 0, 0, 0};
    cJSON *cfg = NULL;
    cJSON *root = NULL;
    cJSON *days, *list;
    const cJSON *it;
    char date[16];
    enum tf_rc rc;

    if (!extract_query_stage(req, &stage))
        return;
    if (have_from != have_to ||
        (have_from && (!query_day(req, "from", &from) || !query_day(req, "to", &to) || to < from ||
                       to - from >= MAX_DAYS))) {
        tf_http_reply_rcf(req, TF_ERR_INVALID,
                          "from and to are days such as 2024-03-04 (both included, at most %d "
                          "days), given together or not at all",
                          MAX_DAYS);
        return;
    }
    rc = extract_job_get(conn, job, &cfg);
    if (rc != TF_OK) {
        tf_http_reply_rcf(req, rc, rc == TF_ERR_NOT_FOUND ? "unknown job %s" : "cannot read job %s",
                          job);
        return;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "tickers"))
    {
        if (cJSON_IsString(it))
            markets |= EXTRACT_MARKET_BIT(tf_market_of(it->valuestring));
    }
    rc = have_from ? TF_OK : default_range(conn, job, &from, &to);
    if (rc == TF_OK)
        rc = covered_ranges(conn, job, stage, from * 86400, (to + 1) * 86400, &cover, &ncover);
    if (rc != TF_OK) {
        tf_http_reply_rc(req, rc, "cannot read the job's executions");
        goto out;
    }
    root = cJSON_CreateObject();
    if (!root) {
        tf_http_reply_rc(req, TF_ERR_NOMEM, "out of memory");
        goto out;
    }
    cJSON_AddStringToObject(root, "job_name", job);
    cJSON_AddStringToObject(root, "stage", stage);
    tf_time_format_date(from * 86400, date, sizeof(date));
    cJSON_AddStringToObject(root, "from", date);
    tf_time_format_date(to * 86400, date, sizeof(date));
    cJSON_AddStringToObject(root, "to", date);
    list = cJSON_AddArrayToObject(root, "markets");
    for (unsigned m = TF_MARKET_US_EQUITY; m <= TF_MARKET_FOREX; m++) {
        if (markets & EXTRACT_MARKET_BIT(m))
            cJSON_AddItemToArray(list, cJSON_CreateString(tf_market_name((enum tf_market)m)));
    }
    days = cJSON_AddArrayToObject(root, "days");
    for (int64_t day = from; day <= to && days; day++) {
        int open_min = 0, covered_min = 0;
        enum extract_day_state st =
            extract_day_state(day, markets, cover, ncover, now, &open_min, &covered_min);
        cJSON *o = cJSON_CreateObject();

        counts[st]++;
        tf_time_format_date(day * 86400, date, sizeof(date));
        cJSON_AddStringToObject(o, "day", date);
        cJSON_AddStringToObject(o, "state", extract_day_state_name(st));
        cJSON_AddNumberToObject(o, "open_minutes", open_min);
        cJSON_AddNumberToObject(o, "covered_minutes", covered_min);
        cJSON_AddItemToArray(days, o);
    }
    list = cJSON_AddObjectToObject(root, "counts");
    for (int st = EXTRACT_DAY_CLOSED; st <= EXTRACT_DAY_COVERED; st++)
        cJSON_AddNumberToObject(list, extract_day_state_name((enum extract_day_state)st),
                                counts[st]);
    tf_http_reply_json(req, TF_HTTP_OK, root);
out:
    free(cover);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
}
