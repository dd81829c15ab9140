/*
 * tf/pg.h - PostgreSQL access on libpq: a small connection pool, text-format
 * parameterised queries only, and the versioned migrations of deploy/sql/.
 *
 * A PGconn is used by one thread at a time: take it from the pool, give it
 * back. Every session runs in UTC.
 */
#ifndef TF_PG_H
#define TF_PG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tf/buf.h"
#include "tf/rc.h"

struct tf_pg_pool;

/** Connects and sets the session time zone to UTC. Returns NULL with err set. */
PGconn *tf_pg_connect(const char *dsn, char *err, size_t errlen);

/** 1 when libpq can parse dsn (a URI or key=value pairs). */
int tf_pg_dsn_valid(const char *dsn);

/**
 * 1 when a connection error (tf_pg_connect's err) will not go away by
 * waiting: a server certificate that does not verify or does not name the
 * host, TLS the server does not offer, a refused password or pg_hba.conf
 * entry. 0 for anything else (a server still starting, refused TCP...).
 */
int tf_pg_error_permanent(const char *err);

/** A pool of up to size connections, opened lazily. Returns NULL on ENOMEM. */
struct tf_pg_pool *tf_pg_pool_new(const char *dsn, int size);

/** Closes every connection. All connections must have been given back. NULL-safe. */
void tf_pg_pool_free(struct tf_pg_pool *pool);

/**
 * Takes a working connection, waiting up to wait_ms for a free one and
 * reconnecting a broken one. Returns NULL (with err) when none can be had.
 */
PGconn *tf_pg_pool_get(struct tf_pg_pool *pool, int wait_ms, char *err, size_t errlen);

/** Gives a connection back; an aborted transaction is rolled back first. NULL-safe. */
void tf_pg_pool_put(struct tf_pg_pool *pool, PGconn *conn);

/** PQexecParams with text parameters and text results. Never NULL-checks its caller. */
PGresult *tf_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params);

/**
 * tf_pg_exec for one statement that is its own transaction (DDL such as
 * making partitions): tried again, up to tries times with a short pause,
 * while PostgreSQL breaks a deadlock or a serialization failure by failing
 * it (SQLSTATE 40P01, 40001). Returns the last result.
 */
PGresult *tf_pg_exec_retry(PGconn *conn, const char *sql, int nparams, const char *const *params,
                           int tries);

/** 1 when res is COMMAND_OK or TUPLES_OK. */
int tf_pg_ok(const PGresult *res);

/** The SQLSTATE of a failed result ("" when none). */
const char *tf_pg_sqlstate(const PGresult *res);

/* PostgreSQL's binary timestamps count microseconds from 2000-01-01. */
#define TF_PG_EPOCH_US 946684800000000LL

/** One field of a binary COPY row: its bytes and length (-1: NULL). */
struct tf_pg_field {
    const unsigned char *data;
    int32_t len;
};

/** The most fields tf_pg_copy_out() splits a row into. */
#define TF_PG_COPY_MAX_FIELDS 32

/** A big-endian 64-bit integer of the binary COPY format (int8, float8 bits, timestamptz). */
uint64_t tf_pg_be_u64(const unsigned char *p);

/** A float8 field's value. */
double tf_pg_be_f64(const unsigned char *p);

/**
 * Runs sql, a COPY (...) TO STDOUT (FORMAT binary) of nfields columns
 * (at most TF_PG_COPY_MAX_FIELDS), and calls row(arg, f) for each row
 * with its fields, valid during the call only. The first error of row()
 * is kept and returned; the COPY is read to its end either way, so the
 * connection stays usable. TF_ERR_DB when the COPY fails (its SQLSTATE
 * copied into sqlstate, "" when none), TF_ERR_INVALID for a row that is not
 * nfields fields of the binary format.
 */
enum tf_rc tf_pg_copy_out(PGconn *conn, const char *sql, int nfields,
                          enum tf_rc (*row)(void *arg, const struct tf_pg_field *f), void *arg,
                          char sqlstate[6]) TF_MUSTCHECK;

/** Starts COPY sql (FROM STDIN); TF_ERR_DB with its SQLSTATE in sqlstate when refused. */
enum tf_rc tf_pg_copy_begin(PGconn *conn, const char *sql, char sqlstate[6]) TF_MUSTCHECK;

/** Sends COPY data (blocks only while the server's socket buffer is full); TF_ERR_DB when the
 * connection broke. */
enum tf_rc tf_pg_copy_send(PGconn *conn, const void *data, size_t len) TF_MUSTCHECK;

/** Ends the COPY and waits for the server's verdict (TF_ERR_DB with sqlstate, "" when the
 * connection broke). */
enum tf_rc tf_pg_copy_end(PGconn *conn, char sqlstate[6]) TF_MUSTCHECK;

/** Abandons a COPY in progress with why (the transaction fails). */
void tf_pg_copy_abort(PGconn *conn, const char *why);

/** One whole COPY FROM STDIN: sql, then data (complete COPY data), then the verdict. */
enum tf_rc tf_pg_copy_in(PGconn *conn, const char *sql, const void *data, size_t len,
                         char sqlstate[6]) TF_MUSTCHECK;

/**
 * A time as a constant for a statement that takes no parameters (COPY):
 * 'YYYY-MM-DDTHH:MM:SSZ'::timestamptz, written by our own formatter from
 * t (seconds since the epoch), so nothing else can get in. A constant lets
 * the planner keep out the daily partitions outside it; a setting read
 * back with current_setting() would make it open and lock every one.
 */
void tf_pg_time_literal(int64_t t, char out[48]);

/** Runs a parameterless command (BEGIN, COMMIT, ROLLBACK); TF_ERR_DB on failure. */
enum tf_rc tf_pg_cmd(PGconn *conn, const char *sql) TF_MUSTCHECK;

/**
 * Runs a query whose first row's first column is JSON text and parses it
 * into *out (new object). TF_ERR_NOT_FOUND when there is no row, TF_ERR_DB
 * when the query fails.
 */
enum tf_rc tf_pg_json_row(PGconn *conn, const char *sql, int nparams, const char *const *params,
                          cJSON **out) TF_MUSTCHECK;

/**
 * Appends the strings of a JSON array to out as a PostgreSQL text[] literal
 * ({"a","b"}), to be passed as one parameter. Non-strings are skipped.
 */
enum tf_rc tf_pg_text_array(const cJSON *arr, struct tf_buf *out) TF_MUSTCHECK;

/**
 * Inside a transaction: takes a transaction-scoped advisory lock on each
 * (space, key) for the strings in keys, in sorted order so that writers
 * locking overlapping sets never deadlock. Waits for holders to commit.
 */
enum tf_rc tf_pg_lock_keys(PGconn *conn, const char *space, const cJSON *keys) TF_MUSTCHECK;

/**
 * Applies the migrations this binary carries that the database lacks, in
 * order, under an advisory lock so that services starting together apply
 * each once. TF_ERR_CONFLICT, with nothing applied and err naming it, when
 * one numbered below the database's newest is missing (it is never skipped
 * nor run out of order); TF_ERR_DB when PostgreSQL or a migration fails.
 */
enum tf_rc tf_pg_migrate(PGconn *conn, char *err, size_t errlen) TF_MUSTCHECK;

/** The highest migration version this binary carries. */
int tf_pg_schema_version(void);

#endif
