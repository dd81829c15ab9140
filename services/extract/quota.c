/*
 * quota.c - one request budget per provider key, shared by every replica:
 * a token bucket row in PostgreSQL holding up to a minute's worth of
 * requests and refilling continuously. Each take is one guarded UPDATE, so
 * replicas never overdraw it; a caller that finds it empty learns how long
 * to wait, and waits instead of failing.
 */
#include "extract.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/pg.h"

long extract_quota_take(PGconn *conn, const char *bucket, long per_minute, int want, int *granted)
{
    char rate[24], n[16];
    const char *params[3] = {bucket, rate, n};
    PGresult *res;
    double avail;

    *granted = 0;
    snprintf(rate, sizeof(rate), "%ld", per_minute);
    snprintf(n, sizeof(n), "%d", want < 1 ? 1 : want);
    /* Up to `want` whole tokens from what has refilled since the last take. */
    res = tf_pg_exec(conn,
                     "WITH s AS (SELECT least($2::float8, tokens + extract(epoch FROM"
                     "  clock_timestamp() - updated_at) * $2::float8 / 60) AS avail"
                     "  FROM tickflow.rate_bucket WHERE bucket = $1 FOR UPDATE)"
                     " UPDATE tickflow.rate_bucket b SET tokens = s.avail"
                     "  - least($3::int, floor(s.avail)), per_minute = $2::int,"
                     "  updated_at = clock_timestamp()"
                     " FROM s WHERE b.bucket = $1 AND s.avail >= 1"
                     " RETURNING least($3::int, floor(s.avail))::int",
                     3, params);
    if (!tf_pg_ok(res)) {
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 1) {
        *granted = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return 0;
    }
    PQclear(res);
    /* Empty, or never used: a new bucket starts full. */
    res = tf_pg_exec(conn,
                     "INSERT INTO tickflow.rate_bucket (bucket, tokens, per_minute, updated_at)"
                     " VALUES ($1, $2::float8, $2::int, clock_timestamp())"
                     " ON CONFLICT (bucket) DO NOTHING",
                     2, params);
    PQclear(res);
    res = tf_pg_exec(conn,
                     "SELECT least($2::float8, tokens + extract(epoch FROM clock_timestamp()"
                     " - updated_at) * $2::float8 / 60) FROM tickflow.rate_bucket"
                     " WHERE bucket = $1",
                     2, params);
    if (!tf_pg_ok(res) || PQntuples(res) != 1) {
        PQclear(res);
        return -1;
    }
    avail = strtod(PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    if (avail >= 1)
        return 1; /* refilled meanwhile: ask again at once */
    return (long)ceil((1 - avail) * 60000.0 / (double)per_minute);
}
