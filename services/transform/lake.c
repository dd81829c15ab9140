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

/* Big-endian integers of PostgreSQL's binary COPY format. */
static uint64_t be_u64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int32_t be_i32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

/* One field of a binary COPY row: data and length (-1: NULL). */
struct field {
    const unsigned char *data;
    int32_t len;
};

#define NFIELDS 11

/*
 * Splits one binary COPY row into its fields; 1 for a row, 0 for the
 * trailer, 2 for a header alone, -1 for something else. The first message
 * starts with the file header.
 */
static int split_row(const unsigned char *p, size_t n, int first, struct field f[NFIELDS])
{
    static const unsigned char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    const unsigned char *end = p + n;

    if (first) {
        if (n < 19 || memcmp(p, sig, sizeof(sig)) != 0)
            return -1;
        p += 15;
        p += 4 + (size_t)be_i32(p); /* the header extension */
        if (p == end)
            return 2; /* the header in a message of its own */
    }
    if (end - p < 2)
        return -1;
    if (p[0] == 0xff && p[1] == 0xff)
        return 0;
    if ((p[0] << 8 | p[1]) != NFIELDS)
        return -1;
    p += 2;
    for (int i = 0; i < NFIELDS; i++) {
        if (end - p < 4)
            return -1;
        f[i].len = be_i32(p);
        f[i].data = p + 4;
        p += 4;
        if (f[i].len > 0) {
            if (end - p < f[i].len)
                return -1;
            p += f[i].len;
        }
    }
    return 1;
}

/* A text field as a C string in buf (cut to its size). */
static const char *text_of(const struct field *f, char *buf, size_t size)
{
    size_t n = f->len > 0 ? (size_t)f->len : 0;

    if (n >= size)
        n = size - 1;
    memcpy(buf, f->data, n);
    buf[n] = '\0';
    return buf;
}

/* A uuid field in its usual text form. */
static const char *uuid_of(const struct field *f, char buf[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (int i = 0; i < 16 && f->len == 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[o++] = '-';
        buf[o++] = hex[f->data[i] >> 4];
        buf[o++] = hex[f->data[i] & 15];
    }
    buf[o] = '\0';
    return buf;
}

static double f64_of(const struct field *f, unsigned char *has)
{
    uint64_t bits;
    double v = 0;

    if (has)
        *has = f->len == 8;
    if (f->len != 8)
        return 0;
    bits = be_u64(f->data);
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* Appends one row's fields. */
static enum tf_rc cols_add(struct cols *k, const struct field *f)
{
    size_t i = k->n;
    char ticker[128], span[64], exec[37];

    if (i == k->cap && cols_grow(k) != TF_OK)
        return TF_ERR_NOMEM;
    if (f[2].len != 8 || f[0].len < 0 || f[1].len < 0)
        return TF_ERR_INVALID;
    k->ticker[i] = intern(k, i ? k->ticker[i - 1] : NULL, text_of(&f[0], ticker, sizeof(ticker)));
    k->span[i] = intern(k, i ? k->span[i - 1] : NULL, text_of(&f[1], span, sizeof(span)));
    k->exec[i] = intern(k, i ? k->exec[i - 1] : NULL, uuid_of(&f[10], exec));
    if (!k->ticker[i] || !k->span[i] || !k->exec[i])
        return TF_ERR_NOMEM;
    k->ts[i] = (int64_t)be_u64(f[2].data) + PG_EPOCH_US;
    k->o[i] = f64_of(&f[3], NULL);
    k->h[i] = f64_of(&f[4], NULL);
    k->l[i] = f64_of(&f[5], NULL);
    k->c[i] = f64_of(&f[6], NULL);
    k->v[i] = f64_of(&f[7], &k->has_v[i]);
    k->vw[i] = f64_of(&f[8], &k->has_vw[i]);
    k->has_n[i] = f[9].len == 8;
    k->trades[i] = k->has_n[i] ? (int64_t)be_u64(f[9].data) : 0;
    k->n++;
    return TF_OK;
}

/*
 * Reads one partition's rows from silver (inside the caller's transaction)
 * as one binary COPY: no number printed by the server and read back here.
 * COPY takes no parameters, so the partition's names travel as
 * transaction-local settings set by a parameterised statement.
 */
static enum tf_rc read_rows(struct tf_run *run, const char *provider, const char *span,
                            const char *date, struct cols *k)
{
    const char *params[3] = {provider, span, date};
    PGresult *res = tf_pg_exec(run->conn,
                               "SELECT set_config('tickflow.lake_provider', $1, true),"
                               " set_config('tickflow.lake_timespan', $2, true),"
                               " set_config('tickflow.lake_date', $3, true)",
                               3, params);
    enum tf_rc rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
    char *row = NULL;
    int n, first = 1, done = 0;

    if (rc == TF_OK) {
        PQclear(res);
        res = PQexec(run->conn,
                     "COPY (SELECT ticker, timespan, ts, open, high, low, close, volume, vwap,"
                     " trades, execution_id FROM silver.bars"
                     " WHERE provider = current_setting('tickflow.lake_provider')"
                     " AND timespan = current_setting('tickflow.lake_timespan')"
                     " AND ts >= current_setting('tickflow.lake_date')::timestamptz"
                     " AND ts < current_setting('tickflow.lake_date')::timestamptz"
                     " + interval '1 day'"
                     " ORDER BY ticker, ts) TO STDOUT (FORMAT binary)");
        rc = PQresultStatus(res) == PGRES_COPY_OUT ? TF_OK : TF_ERR_DB;
    }
    if (rc != TF_OK) {
        tf_run_fail(run, "reading silver for the lake failed: sqlstate %s", tf_pg_sqlstate(res));
        PQclear(res);
        return rc;
    }
    PQclear(res);
    while ((n = PQgetCopyData(run->conn, &row, 0)) > 0) {
        struct field f[NFIELDS];
        int got = done ? -1 : split_row((const unsigned char *)row, (size_t)n, first, f);
        first = 0;
        if (got == 1 && rc == TF_OK)
            rc = cols_add(k, f);
        else if (got == 0)
            done = 1;
        else if (got < 0 && rc == TF_OK)
            rc = TF_ERR_INVALID;
        PQfreemem(row);
        row = NULL;
    }
    /* The COPY's own outcome, read whatever happened above. */
    while ((res = PQgetResult(run->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == TF_OK)
            rc = TF_ERR_DB;
        PQclear(res);
    }
    if (n == -2 && rc == TF_OK)
        rc = TF_ERR_DB;
    if (rc == TF_OK && !done)
        rc = TF_ERR_INVALID;
    if (rc != TF_OK)
        tf_run_fail(run, "reading silver for the lake failed: %s",
                    rc == TF_ERR_NOMEM ? "out of memory" : tf_rc_str(rc));
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
