/*
 * lake.c - silver's copy in the lake: one Parquet file per (dataset, UTC
 * date), rebuilt whole from silver.bars after each commit that touched it.
 *
 * A dataset is <provider>_<timespan> ("polygon_1minute"), its file
 * silver/<dataset>/date=YYYY-MM-DD/bars.parquet: every ticker's bars of that
 * provider and bar size that start on that date, ORDER BY ticker, ts. The
 * columns are ticker, timespan (STRING), ts (TIMESTAMP_US, UTC), open, high,
 * low, close (DOUBLE), volume, vwap (DOUBLE, optional), trades (INT64,
 * optional), execution_id (STRING): nothing about when the file was made,
 * so the same silver rows always give the same bytes (a replay rewrites an
 * identical file). A file is rebuilt under an advisory lock on its (dataset,
 * date) and replaced atomically: two transforms never interleave, and the
 * one that writes last read silver after every commit before it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/json.h"
#include "tf/lake.h"
#include "tf/parquet.h"
#include "tf/pg.h"
#include "tf/time.h"
#include "transform.h"

#define FETCH_ROWS     "20000"
#define MAX_FILE_BYTES (2048u * 1024 * 1024)
#define POOL_SEARCH    256
#define LAKE_WORK_MEM  "128MB"

/* The rows of one partition, column by column. */
struct cols {
    size_t n, cap;
    const char **ticker, **span, **exec;
    int64_t *ts, *trades;
    double *o, *h, *l, *c, *v, *vw;
    unsigned char *has_v, *has_vw, *has_n;
    char **pool; /* owned: every distinct string above */
    size_t npool, pool_cap;
};

static void cols_cleanup(struct cols *k)
{
    for (size_t i = 0; i < k->npool; i++)
        free(k->pool[i]);
    free(k->pool);
    free(k->ticker);
    free(k->span);
    free(k->exec);
    free(k->ts);
    free(k->trades);
    free(k->o);
    free(k->h);
    free(k->l);
    free(k->c);
    free(k->v);
    free(k->vw);
    free(k->has_v);
    free(k->has_vw);
    free(k->has_n);
    memset(k, 0, sizeof(*k));
}

#define GROW(field, cap)                                                                           \
    do {                                                                                           \
        void *p_ = realloc((field), (cap) * sizeof(*(field)));                                     \
        if (!p_)                                                                                   \
            return TF_ERR_NOMEM;                                                                   \
        (field) = p_;                                                                              \
    } while (0)

static enum tf_rc cols_grow(struct cols *k)
{
    size_t cap = k->cap ? k->cap * 2 : 4096;

    GROW(k->ticker, cap);
    GROW(k->span, cap);
    GROW(k->exec, cap);
    GROW(k->ts, cap);
    GROW(k->trades, cap);
    GROW(k->o, cap);
    GROW(k->h, cap);
    GROW(k->l, cap);
    GROW(k->c, cap);
    GROW(k->v, cap);
    GROW(k->vw, cap);
    GROW(k->has_v, cap);
    GROW(k->has_vw, cap);
    GROW(k->has_n, cap);
    k->cap = cap;
    return TF_OK;
}

/*
 * One copy of s for the whole partition: the previous row's value, or one
 * of the last strings kept, or a new one.
 */
static const char *intern(struct cols *k, const char *prev, const char *s)
{
    char *copy;

    if (prev && strcmp(prev, s) == 0)
        return prev;
    for (size_t i = k->npool, seen = 0; i > 0 && seen < POOL_SEARCH; i--, seen++) {
        if (strcmp(k->pool[i - 1], s) == 0)
            return k->pool[i - 1];
    }
    if (k->npool == k->pool_cap) {
        size_t cap = k->pool_cap ? k->pool_cap * 2 : 64;
        char **p = realloc(k->pool, cap * sizeof(*p));
        if (!p)
            return NULL;
        k->pool = p;
        k->pool_cap = cap;
    }
    copy = strdup(s);
    if (!copy)
        return NULL;
    k->pool[k->npool++] = copy;
    return copy;
}

/* PostgreSQL's binary timestamps count microseconds from 2000-01-01. */
#define PG_EPOCH_US 946684800000000LL

/* A big-endian 8-byte field of a binary result. */
static uint64_t be64(const PGresult *res, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static double f64(const PGresult *res, int row, int col, unsigned char *has)
{
    uint64_t bits;
    double v;

    if (PQgetisnull(res, row, col)) {
        if (has)
            *has = 0;
        return 0;
    }
    if (has)
        *has = 1;
    bits = be64(res, row, col);
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* Appends a binary FETCH result's rows. */
static enum tf_rc cols_add(struct cols *k, const PGresult *res)
{
    for (int r = 0; r < PQntuples(res); r++) {
        size_t i = k->n;

        if (i == k->cap && cols_grow(k) != TF_OK)
            return TF_ERR_NOMEM;
        k->ticker[i] = intern(k, i ? k->ticker[i - 1] : NULL, PQgetvalue(res, r, 0));
        k->span[i] = intern(k, i ? k->span[i - 1] : NULL, PQgetvalue(res, r, 1));
        k->exec[i] = intern(k, i ? k->exec[i - 1] : NULL, PQgetvalue(res, r, 10));
        if (!k->ticker[i] || !k->span[i] || !k->exec[i])
            return TF_ERR_NOMEM;
        k->ts[i] = (int64_t)be64(res, r, 2) + PG_EPOCH_US;
        k->o[i] = f64(res, r, 3, NULL);
        k->h[i] = f64(res, r, 4, NULL);
        k->l[i] = f64(res, r, 5, NULL);
        k->c[i] = f64(res, r, 6, NULL);
        k->v[i] = f64(res, r, 7, &k->has_v[i]);
        k->vw[i] = f64(res, r, 8, &k->has_vw[i]);
        k->has_n[i] = !PQgetisnull(res, r, 9);
        k->trades[i] = k->has_n[i] ? (int64_t)be64(res, r, 9) : 0;
        k->n++;
    }
    return TF_OK;
}

/* Reads one partition's rows from silver (inside the caller's transaction). */
static enum tf_rc read_rows(struct tf_run *run, const char *provider, const char *span,
                            const char *date, struct cols *k)
{
    const char *params[3] = {provider, span, date};
    PGresult *res = tf_pg_exec(
        run->conn,
        "DECLARE lake_rows NO SCROLL CURSOR FOR SELECT ticker, timespan, ts, open, high, low,"
        " close, volume, vwap, trades, execution_id::text FROM silver.bars"
        " WHERE provider = $1 AND timespan = $2"
        " AND ts >= $3::timestamptz AND ts < $3::timestamptz + interval '1 day'"
        " ORDER BY ticker, ts",
        3, params);
    enum tf_rc rc = TF_OK;

    if (!tf_pg_ok(res)) {
        tf_run_fail(run, "reading silver for the lake failed: sqlstate %s", tf_pg_sqlstate(res));
        PQclear(res);
        return TF_ERR_DB;
    }
    PQclear(res);
    for (;;) {
        /* Binary results: no number printed by the server and read back here. */
        res = PQexecParams(run->conn, "FETCH " FETCH_ROWS " FROM lake_rows", 0, NULL, NULL, NULL,
                           NULL, 1);
        if (!tf_pg_ok(res)) {
            tf_run_fail(run, "reading silver for the lake failed: sqlstate %s",
                        tf_pg_sqlstate(res));
            rc = TF_ERR_DB;
        } else if (PQntuples(res) > 0) {
            rc = cols_add(k, res);
            if (rc != TF_OK)
                tf_run_fail(run, "out of memory reading a lake partition");
        }
        if (rc != TF_OK || PQntuples(res) == 0) {
            PQclear(res);
            break;
        }
        PQclear(res);
    }
    return rc;
}

/* Encodes the rows as Parquet into out. */
static enum tf_rc encode(struct tf_run *run, const struct cols *k, struct tf_buf *out)
{
    const struct tf_pq_column cols[] = {
        {"ticker", TF_PQ_STRING, 0, k->ticker, NULL},
        {"timespan", TF_PQ_STRING, 0, k->span, NULL},
        {"ts", TF_PQ_TIMESTAMP_US, 0, k->ts, NULL},
        {"open", TF_PQ_DOUBLE, 0, k->o, NULL},
        {"high", TF_PQ_DOUBLE, 0, k->h, NULL},
        {"low", TF_PQ_DOUBLE, 0, k->l, NULL},
        {"close", TF_PQ_DOUBLE, 0, k->c, NULL},
        {"volume", TF_PQ_DOUBLE, 1, k->v, k->has_v},
        {"vwap", TF_PQ_DOUBLE, 1, k->vw, k->has_vw},
        {"trades", TF_PQ_INT64, 1, k->trades, k->has_n},
        {"execution_id", TF_PQ_STRING, 0, k->exec, NULL},
    };
    char err[256];
    enum tf_rc rc = tf_pq_write(cols, TF_ARRAY_LEN(cols), k->n, 0, out, err, sizeof(err));

    if (rc != TF_OK)
        tf_run_fail(run, "Parquet encoding failed: %s", err);
    return rc;
}

/* Rewrites one (dataset, date) file and lists it in run->objects. */
static enum tf_rc rewrite(struct tf_run *run, const char *provider, const char *span,
                          const char *date)
{
    char dataset[160], key[400], err[512];
    const char *lock_params[2] = {dataset, date};
    struct tf_lake_obj lo;
    struct cols k;
    struct tf_buf file;
    enum tf_rc rc;
    cJSON *o;
    int64_t started = tf_time_mono_ms(), read_ms = started;

    snprintf(dataset, sizeof(dataset), "%s_%s", provider, span);
    snprintf(key, sizeof(key), "silver/%s/date=%s/bars.parquet", dataset, date);
    memset(&k, 0, sizeof(k));
    tf_buf_init(&file, MAX_FILE_BYTES);
    rc = tf_pg_cmd(run->conn, "BEGIN");
    if (rc != TF_OK) {
        tf_run_fail(run, "cannot open the lake transaction");
        goto out;
    }
    {
        PGresult *res = tf_pg_exec(run->conn,
                                   "SELECT pg_advisory_xact_lock(hashtext('tickflow.lake'),"
                                   " hashtext($1 || '/' || $2))",
                                   2, lock_params);
        rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
        if (rc != TF_OK)
            tf_run_fail(run, "cannot lock lake partition %s: sqlstate %s", key,
                        tf_pg_sqlstate(res));
        PQclear(res);
    }
    /* A day of a busy dataset is a million rows to sort: in memory, not on disk. */
    if (rc == TF_OK)
        rc = tf_pg_cmd(run->conn, "SET LOCAL work_mem = '" LAKE_WORK_MEM "'");
    if (rc == TF_OK)
        rc = read_rows(run, provider, span, date, &k);
    read_ms = tf_time_mono_ms();
    if (rc == TF_OK)
        rc = encode(run, &k, &file);
    if (rc == TF_OK) {
        rc =
            tf_lake_replace(tf_svc_lake(run->svc), key, file.data, file.len, &lo, err, sizeof(err));
        if (rc != TF_OK)
            tf_run_fail(run, "lake partition %s: %s", key, err);
    }
    /* Commit or not, the transaction only held the lock and the cursor. */
    if (tf_pg_cmd(run->conn, rc == TF_OK ? "COMMIT" : "ROLLBACK") != TF_OK && rc == TF_OK) {
        tf_run_fail(run, "cannot release lake partition %s", key);
        rc = TF_ERR_DB;
    }
    if (rc != TF_OK)
        goto out;
    tf_log_info(&run->log, "lake file written key=%s rows=%zu bytes=%lld read_ms=%lld ms=%lld", key,
                k.n, lo.bytes, (long long)(read_ms - started),
                (long long)(tf_time_mono_ms() - started));
    o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "uri", lo.uri);
        cJSON_AddNumberToObject(o, "bytes", (double)lo.bytes);
        cJSON_AddNumberToObject(o, "records", (double)k.n);
        cJSON_AddStringToObject(o, "sha256", lo.sha256);
        cJSON_AddStringToObject(o, "format", "parquet");
        cJSON_AddStringToObject(o, "dataset", dataset);
        cJSON_AddStringToObject(o, "date", date);
        cJSON_AddItemToArray(run->objects, o);
    }
out:
    tf_buf_cleanup(&file);
    cols_cleanup(&k);
    return rc;
}

enum tf_rc transform_lake(struct tf_run *run)
{
    const cJSON *p;
    enum tf_rc rc = TF_OK;

    cJSON_ArrayForEach(p, run->state)
    {
        enum tf_rc one = rewrite(run, tf_json_str(p, "provider"), tf_json_str(p, "timespan"),
                                 tf_json_str(p, "date"));
        if (one != TF_OK && rc == TF_OK)
            rc = one; /* the first error is kept; the other partitions are still written */
    }
    return rc;
}
