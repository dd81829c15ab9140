/*
 * pg.c - connection pool, query helpers and schema migrations.
 */
#include "tf/pg.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf/migrations.h"
#include "tf/time.h"

/* A sanity bound: a service's pools are sized from its settings (svc_pool.h). */
#define POOL_MAX 1024
/* A connection idle longer than this is checked before it is handed out:
 * a restarted server leaves it looking fine until the first query fails. */
#define POOL_CHECK_IDLE_MS 1000

struct pooled {
    PGconn *conn;
    int64_t idle_since_ms;
};

struct tf_pg_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *dsn;
    int size;
    int nfree;
    int nopen;
    struct pooled *free; /* size entries */
};

/* libpq's own messages end with a newline; drop it for log lines. */
static void copy_pq_error(PGconn *conn, char *err, size_t errlen)
{
    size_t n;

    snprintf(err, errlen, "%s", conn ? PQerrorMessage(conn) : "out of memory");
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

/*
 * libpq never quotes a password in a connection error, but a server or a
 * proxy might echo what it was sent: every copy of the DSN's password (and
 * sslpassword) in err becomes "***".
 */
static void mask_secrets(const char *dsn, char *err)
{
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);

    if (!opts)
        return;
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        size_t n;
        char *at;

        if ((strcmp(o->keyword, "password") != 0 && strcmp(o->keyword, "sslpassword") != 0) ||
            !o->val || (n = strlen(o->val)) < 3)
            continue;
        while ((at = strstr(err, o->val)) != NULL) {
            memmove(at + 3, at + n, strlen(at + n) + 1);
            memcpy(at, "***", 3);
        }
    }
    PQconninfoFree(opts);
}

int tf_pg_dsn_valid(const char *dsn)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &why);

    PQfreemem(why);
    if (!opts)
        return 0;
    PQconninfoFree(opts);
    return 1;
}

int tf_pg_error_permanent(const char *err)
{
    /* libpq's and the server's own words (English: the services run in the C locale). */
    static const char *const permanent[] = {
        "certificate verify failed",
        "does not match host name",
        "root certificate file",
        "could not read root certificate",
        "certificate present, but not private key",
        "server does not support SSL",
        "password authentication failed",
        "no password supplied",
        "pg_hba.conf rejects connection",
        "no pg_hba.conf entry",
        "SSL error: tlsv1 alert",
        "sslmode value",
    };

    for (size_t i = 0; i < TF_ARRAY_LEN(permanent); i++)
        if (strstr(err, permanent[i]))
            return 1;
    return 0;
}

PGconn *tf_pg_connect(const char *dsn, char *err, size_t errlen)
{
    PGconn *conn = PQconnectdb(dsn);
    PGresult *res = NULL;

    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        copy_pq_error(conn, err, errlen);
        mask_secrets(dsn, err);
        PQfinish(conn);
        return NULL;
    }
    res = PQexec(conn, "SET TIME ZONE 'UTC'; SET client_min_messages TO warning");
    if (!tf_pg_ok(res)) {
        copy_pq_error(conn, err, errlen);
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }
    PQclear(res);
    return conn;
}

struct tf_pg_pool *tf_pg_pool_new(const char *dsn, int size)
{
    struct tf_pg_pool *pool = calloc(1, sizeof(*pool));

    if (!pool)
        return NULL;
    pool->dsn = strdup(dsn);
    if (!pool->dsn) {
        free(pool);
        return NULL;
    }
    pool->size = size < 1 ? 1 : size > POOL_MAX ? POOL_MAX : size;
    pool->free = calloc((size_t)pool->size, sizeof(*pool->free));
    if (!pool->free) {
        free(pool->dsn);
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    return pool;
}

void tf_pg_pool_free(struct tf_pg_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->nfree; i++)
        PQfinish(pool->free[i].conn);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->free);
    free(pool->dsn);
    free(pool);
}

/* 1 when an idle connection's socket has something to read (or is closed). */
static int socket_readable(PGconn *conn)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};

    return p.fd >= 0 && poll(&p, 1, 0) > 0;
}

PGconn *tf_pg_pool_get(struct tf_pg_pool *pool, int wait_ms, char *err, size_t errlen)
{
    struct timespec deadline;
    PGconn *conn = NULL;
    int open_new = 0;
    int64_t idle_ms = 0;

    tf_time_deadline(&deadline, wait_ms);
    pthread_mutex_lock(&pool->mu);
    while (pool->nfree == 0 && pool->nopen >= pool->size) {
        if (pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline) == ETIMEDOUT)
            break;
    }
    if (pool->nfree > 0) {
        pool->nfree--;
        conn = pool->free[pool->nfree].conn;
        idle_ms = tf_time_mono_ms() - pool->free[pool->nfree].idle_since_ms;
    } else if (pool->nopen < pool->size) {
        pool->nopen++;
        open_new = 1;
    }
    pthread_mutex_unlock(&pool->mu);

    if (!conn && !open_new) {
        snprintf(err, errlen, "no free database connection within %d ms", wait_ms);
        return NULL;
    }
    /* A connection idle for a while, or one the server wrote to while it
     * sat in the pool (a restart, a failover or an administrator ends its
     * session with a message and closes it), is checked before use. */
    if (conn && PQstatus(conn) == CONNECTION_OK &&
        (idle_ms > POOL_CHECK_IDLE_MS || socket_readable(conn))) {
        PGresult *res = PQexec(conn, "SELECT 1");
        int alive = tf_pg_ok(res);
        PQclear(res);
        if (!alive) { /* reconnect below, with the session settings */
            PQfinish(conn);
            conn = NULL;
        }
    }
    if (conn && PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        conn = NULL;
    }
    if (!conn) {
        conn = tf_pg_connect(pool->dsn, err, errlen);
        if (!conn) {
            pthread_mutex_lock(&pool->mu);
            pool->nopen--;
            pthread_cond_signal(&pool->cv);
            pthread_mutex_unlock(&pool->mu);
        }
    }
    return conn;
}

void tf_pg_pool_put(struct tf_pg_pool *pool, PGconn *conn)
{
    if (!conn)
        return;
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(conn, "ROLLBACK");
        PQclear(res);
    }
    pthread_mutex_lock(&pool->mu);
    if (PQstatus(conn) == CONNECTION_OK && pool->nfree < pool->size) {
        pool->free[pool->nfree].conn = conn;
        pool->free[pool->nfree].idle_since_ms = tf_time_mono_ms();
        pool->nfree++;
        conn = NULL;
    } else {
        pool->nopen--;
    }
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    PQfinish(conn);
}

PGresult *tf_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

PGresult *tf_pg_exec_retry(PGconn *conn, const char *sql, int nparams, const char *const *params,
                           int tries)
{
    PGresult *res = tf_pg_exec(conn, sql, nparams, params);

    for (int t = 1; t < tries && !tf_pg_ok(res); t++) {
        const char *st = tf_pg_sqlstate(res);
        struct timespec pause = {0, 50000000L * t};
        if (strcmp(st, "40P01") != 0 && strcmp(st, "40001") != 0)
            break;
        PQclear(res);
        nanosleep(&pause, NULL);
        res = tf_pg_exec(conn, sql, nparams, params);
    }
    return res;
}

int tf_pg_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);

    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

const char *tf_pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return s ? s : "";
}

uint64_t tf_pg_be_u64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

double tf_pg_be_f64(const unsigned char *p)
{
    uint64_t bits = tf_pg_be_u64(p);
    double d;

    memcpy(&d, &bits, sizeof(d));
    return d;
}

static int32_t be_i32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

/*
 * Splits one binary COPY message into its fields; 1 for a row, 0 for the
 * trailer, 2 for a header alone, -1 for something else. The first message
 * starts with the file header.
 */
static int copy_split(const unsigned char *p, size_t n, int first, int nfields,
                      struct tf_pg_field *f)
{
    static const unsigned char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    const unsigned char *end = p + n;

    if (first) {
        if (n < 19 || memcmp(p, sig, sizeof(sig)) != 0)
            return -1;
        p += 15;
        if (be_i32(p) < 0 || (size_t)(end - p) < 4 + (size_t)be_i32(p))
            return -1;
        p += 4 + (size_t)be_i32(p); /* the header extension */
        if (p == end)
            return 2; /* the header in a message of its own */
    }
    if (end - p < 2)
        return -1;
    if (p[0] == 0xff && p[1] == 0xff)
        return 0;
    if ((p[0] << 8 | p[1]) != nfields)
        return -1;
    p += 2;
    for (int i = 0; i < nfields; i++) {
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
    return p == end ? 1 : -1;
}

enum tf_rc tf_pg_copy_out(PGconn *conn, const char *sql, int nfields,
                          enum tf_rc (*row)(void *arg, const struct tf_pg_field *f), void *arg,
                          char sqlstate[6])
{
    struct tf_pg_field f[TF_PG_COPY_MAX_FIELDS];
    PGresult *res = NULL;
    enum tf_rc rc = TF_OK;
    char *msg = NULL;
    int n, first = 1, done = 0;

    sqlstate[0] = '\0';
    if (nfields < 1 || nfields > TF_PG_COPY_MAX_FIELDS)
        return TF_ERR_INVALID;
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        snprintf(sqlstate, 6, "%s", tf_pg_sqlstate(res));
        PQclear(res);
        return TF_ERR_DB;
    }
    PQclear(res);
    while ((n = PQgetCopyData(conn, &msg, 0)) > 0) {
        int got = done ? -1 : copy_split((const unsigned char *)msg, (size_t)n, first, nfields, f);

        first = 0;
        if (got == 1 && rc == TF_OK)
            rc = row(arg, f);
        else if (got == 0)
            done = 1;
        else if (got < 0 && rc == TF_OK)
            rc = TF_ERR_INVALID;
        PQfreemem(msg);
        msg = NULL;
    }
    /* The COPY's own outcome, read whatever happened above. */
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == TF_OK) {
            snprintf(sqlstate, 6, "%s", tf_pg_sqlstate(res));
            rc = TF_ERR_DB;
        }
        PQclear(res);
    }
    if (n == -2 && rc == TF_OK)
        rc = TF_ERR_DB;
    if (rc == TF_OK && !done)
        rc = TF_ERR_INVALID;
    return rc;
}

enum tf_rc tf_pg_copy_begin(PGconn *conn, const char *sql, char sqlstate[6])
{
    PGresult *res = PQexec(conn, sql);
    enum tf_rc rc = PQresultStatus(res) == PGRES_COPY_IN ? TF_OK : TF_ERR_DB;

    snprintf(sqlstate, 6, "%s", rc == TF_OK ? "" : tf_pg_sqlstate(res));
    PQclear(res);
    return rc;
}

enum tf_rc tf_pg_copy_send(PGconn *conn, const void *data, size_t len)
{
    const char *p = data;

    for (size_t off = 0; off < len;) {
        size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
        if (PQputCopyData(conn, p + off, (int)n) != 1)
            return TF_ERR_DB;
        off += n;
    }
    return TF_OK;
}

enum tf_rc tf_pg_copy_end(PGconn *conn, char sqlstate[6])
{
    enum tf_rc rc = TF_OK;
    PGresult *res;

    sqlstate[0] = '\0';
    if (PQputCopyEnd(conn, NULL) != 1)
        rc = TF_ERR_DB;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == TF_OK) {
            snprintf(sqlstate, 6, "%s", tf_pg_sqlstate(res));
            rc = TF_ERR_DB;
        }
        PQclear(res);
    }
    return rc;
}

void tf_pg_copy_abort(PGconn *conn, const char *why)
{
    PGresult *res;

    (void)PQputCopyEnd(conn, why);
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
}

enum tf_rc tf_pg_copy_in(PGconn *conn, const char *sql, const void *data, size_t len,
                         char sqlstate[6])
{
    enum tf_rc rc = tf_pg_copy_begin(conn, sql, sqlstate);

    if (rc != TF_OK)
        return rc;
    rc = tf_pg_copy_send(conn, data, len);
    if (rc != TF_OK) {
        tf_pg_copy_abort(conn, "sending COPY data failed");
        return rc;
    }
    return tf_pg_copy_end(conn, sqlstate);
}

void tf_pg_time_literal(int64_t t, char out[48])
{
    char ts[32];

    tf_time_format(t, ts, sizeof(ts));
    snprintf(out, 48, "'%s'::timestamptz", ts);
}

enum tf_rc tf_pg_cmd(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    enum tf_rc rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;

    PQclear(res);
    return rc;
}

enum tf_rc tf_pg_json_row(PGconn *conn, const char *sql, int nparams, const char *const *params,
                          cJSON **out)
{
    PGresult *res = tf_pg_exec(conn, sql, nparams, params);
    enum tf_rc rc = TF_ERR_DB;

    *out = NULL;
    if (tf_pg_ok(res)) {
        if (PQntuples(res) == 0) {
            rc = TF_ERR_NOT_FOUND;
        } else {
            *out = cJSON_Parse(PQgetvalue(res, 0, 0));
            rc = *out ? TF_OK : TF_ERR_NOMEM;
        }
    }
    PQclear(res);
    return rc;
}

enum tf_rc tf_pg_text_array(const cJSON *arr, struct tf_buf *out)
{
    const cJSON *it;
    enum tf_rc rc = tf_buf_puts(out, "{");
    int first = 1;

    cJSON_ArrayForEach(it, arr)
    {
        const char *s = cJSON_GetStringValue(it);
        if (!s || rc != TF_OK)
            continue;
        rc = tf_buf_puts(out, first ? "\"" : ",\"");
        first = 0;
        for (; *s && rc == TF_OK; s++) {
            if (*s == '"' || *s == '\\')
                rc = tf_buf_append(out, "\\", 1);
            if (rc == TF_OK)
                rc = tf_buf_append(out, s, 1);
        }
        if (rc == TF_OK)
            rc = tf_buf_puts(out, "\"");
    }
    return rc == TF_OK ? tf_buf_puts(out, "}") : rc;
}

enum tf_rc tf_pg_lock_keys(PGconn *conn, const char *space, const cJSON *keys)
{
    struct tf_buf arr;
    const char *params[2];
    PGresult *res = NULL;
    enum tf_rc rc;

    tf_buf_init(&arr, 1024 * 1024);
    rc = tf_pg_text_array(keys, &arr);
    if (rc != TF_OK) {
        tf_buf_cleanup(&arr);
        return rc;
    }
    params[0] = space;
    params[1] = arr.data;
    res = tf_pg_exec(conn,
                     "SELECT count(pg_advisory_xact_lock(hashtext($1), hashtext(k)))"
                     " FROM (SELECT DISTINCT k FROM unnest($2::text[]) AS k ORDER BY k) AS s",
                     2, params);
    rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
    PQclear(res);
    tf_buf_cleanup(&arr);
    return rc;
}

int tf_pg_schema_version(void)
{
    return tf_migrations[tf_migrations_count - 1].version;
}

/* Any constant: the key of the advisory lock that serialises migrations. */
#define MIGRATION_LOCK_KEY "7346391044"

/* 1 when version is among the one-column rows of applied. */
static int migration_applied(const PGresult *applied, int version)
{
    for (int i = 0; i < PQntuples(applied); i++) {
        if (strtol(PQgetvalue(applied, i, 0), NULL, 10) == version)
            return 1;
    }
    return 0;
}

enum tf_rc tf_pg_migrate(PGconn *conn, char *err, size_t errlen)
{
    enum tf_rc rc = TF_ERR_DB;
    PGresult *res = NULL;
    PGresult *applied = NULL;
    int have = 0;

    res = PQexec(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")");
    if (!tf_pg_ok(res)) {
        copy_pq_error(conn, err, errlen);
        PQclear(res);
        return TF_ERR_DB;
    }
    PQclear(res);
    res = PQexec(conn, "CREATE SCHEMA IF NOT EXISTS tickflow;"
                       "CREATE TABLE IF NOT EXISTS tickflow.schema_migrations ("
                       " version int PRIMARY KEY, name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())");
    if (!tf_pg_ok(res))
        goto fail;
    PQclear(res);
    applied = PQexec(conn, "SELECT version FROM tickflow.schema_migrations ORDER BY version");
    if (!tf_pg_ok(applied)) {
        res = applied;
        applied = NULL;
        goto fail;
    }
    if (PQntuples(applied) > 0)
        have = (int)strtol(PQgetvalue(applied, PQntuples(applied) - 1, 0), NULL, 10);
    /*
     * A migration numbered below the newest applied one, yet missing, was
     * written for a schema the database has moved past: running it now
     * could do something else than it says, and skipping it leaves the
     * schema short. Refuse, before anything is applied.
     */
    for (size_t i = 0; i < tf_migrations_count; i++) {
        const struct tf_migration *m = &tf_migrations[i];

        if (m->version < have && !migration_applied(applied, m->version)) {
            snprintf(err, errlen,
                     "migration %d (%s) was never applied, but the database is at version %d:"
                     " migrations run in order only; apply deploy/sql/%04d_%s.sql by hand and"
                     " record it in tickflow.schema_migrations",
                     m->version, m->name, have, m->version, m->name);
            rc = TF_ERR_CONFLICT;
            goto unlock;
        }
    }
    for (size_t i = 0; i < tf_migrations_count; i++) {
        const struct tf_migration *m = &tf_migrations[i];
        char version[16];
        const char *params[2] = {version, m->name};
        ExecStatusType st;

        if (m->version <= have)
            continue;
        snprintf(version, sizeof(version), "%d", m->version);
        if (tf_pg_cmd(conn, "BEGIN") != TF_OK)
            goto fail;
        res = PQexec(conn, m->sql);
        st = PQresultStatus(res);
        /* A retired migration holds only a comment: an empty query. */
        if (!tf_pg_ok(res) && st != PGRES_EMPTY_QUERY) {
            snprintf(err, errlen, "migration %d %s: %s", m->version, m->name,
                     PQresultErrorMessage(res));
            PQclear(res);
            res = PQexec(conn, "ROLLBACK");
            PQclear(res);
            res = NULL;
            goto unlock;
        }
        PQclear(res);
        res = tf_pg_exec(conn,
                         "INSERT INTO tickflow.schema_migrations (version, name) "
                         "VALUES ($1, $2)",
                         2, params);
        if (!tf_pg_ok(res))
            goto fail;
        PQclear(res);
        res = NULL;
        if (tf_pg_cmd(conn, "COMMIT") != TF_OK)
            goto fail;
    }
    rc = TF_OK;
    goto unlock;
fail:
    copy_pq_error(conn, err, errlen);
    PQclear(res);
    res = NULL;
    if (PQtransactionStatus(conn) == PQTRANS_INERROR) {
        res = PQexec(conn, "ROLLBACK");
        PQclear(res);
        res = NULL;
    }
unlock:
    PQclear(applied);
    res = PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")");
    PQclear(res);
    return rc;
}
