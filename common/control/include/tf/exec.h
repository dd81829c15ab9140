/*
 * tf/exec.h - the execution record: one row of tickflow.job_execution per
 * (execution_id, stage), moved PENDING -> RUNNING -> SUCCESS | FAILED by
 * guarded UPDATEs (compare and set), so two workers never both own a stage.
 *
 * The owner of a RUNNING stage holds it by attempt number (its lease):
 * heartbeats, fenced writes and the final move only succeed while the row
 * is still RUNNING with that attempt.
 */
#ifndef TF_EXEC_H
#define TF_EXEC_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tf/buf.h"
#include "tf/rc.h"

#define TF_UUID_LEN 36

/** 1 when s is a canonical UUID (8-4-4-4-12 hex digits). */
int tf_uuid_valid(const char *s);

/** Writes a new random (v4) UUID, lower case, into out[37]. */
void tf_uuid_new(char out[TF_UUID_LEN + 1]);

/** What a new stage record starts with. */
struct tf_exec_plan {
    char execution_id[TF_UUID_LEN + 1];
    const char *stage;
    char job_name[64];
    const char *trigger; /* "http", "kafka" or "sweep" */
    int64_t window_start;
    int64_t window_end;
    const cJSON *tickers; /* array of strings, borrowed */
    int max_attempts;
};

/** What a finished run reports. */
struct tf_exec_result {
    const char *status; /* "SUCCESS" or "FAILED" */
    const cJSON *objects;
    long long records_in;
    long long records_out;
    long long records_rejected;
    const char *error; /* NULL on success */
};

/** Inserts the PENDING record; *created is 0 when the row already existed. */
enum tf_rc tf_exec_insert(PGconn *conn, const struct tf_exec_plan *plan, int *created) TF_MUSTCHECK;

/**
 * The whole record as JSON, every object it lists included, for the
 * runtime and the stages (new object: cJSON_Delete). TF_ERR_NOT_FOUND when
 * absent. The API shows tf_exec_view() instead.
 */
enum tf_rc tf_exec_get(PGconn *conn, const char *id, const char *stage, cJSON **out) TF_MUSTCHECK;

/** What the API says of a record's objects instead of listing them. */
struct tf_exec_summary {
    long long count;   /* objects */
    long long bytes;   /* the sum of their "bytes" (0 for those without) */
    long long records; /* the sum of their "records" */
};

/**
 * Appends the record as the API shows it to out: the members of
 * tf_exec_get() but "objects", and at the end
 *   "objects_summary": {"count", "bytes", "records", "href"}
 * where href is the path of the objects themselves (tf_exec_objects()).
 * Its size does not grow with the objects. TF_ERR_NOT_FOUND when absent;
 * out may hold part of the record after an error.
 */
enum tf_rc tf_exec_view(PGconn *conn, const char *id, const char *stage,
                        struct tf_buf *out) TF_MUSTCHECK;

/**
 * Appends a JSON array of records of a stage as tf_exec_view() shows
 * them, newest first; job and status may be NULL.
 */
enum tf_rc tf_exec_list(PGconn *conn, const char *stage, const char *job, const char *status,
                        int limit, struct tf_buf *out) TF_MUSTCHECK;

/**
 * One page of a record's objects, in byte order of their "uri" (unique
 * within a record): the first limit whose uri sorts after the bytes of
 * after (any string; NULL for the first page). *out is a new object
 *   {"total": <objects in the record>, "objects": [...]}
 * and *more is 1 when objects follow the page. TF_ERR_NOT_FOUND when
 * there is no record.
 */
enum tf_rc tf_exec_objects(PGconn *conn, const char *id, const char *stage, const char *after,
                           int limit, cJSON **out, int *more) TF_MUSTCHECK;

/**
 * PENDING (or ZOMBIE with attempts left) -> RUNNING, attempt + 1.
 * TF_ERR_CONFLICT when the stage is not claimable (someone else has it, or
 * it is finished); *attempt is the attempt now owned.
 */
enum tf_rc tf_exec_claim(PGconn *conn, const char *id, const char *stage, const char *worker,
                         int *attempt) TF_MUSTCHECK;

/** Refreshes heartbeat_at; TF_ERR_LEASE when the lease is gone. */
enum tf_rc tf_exec_heartbeat(PGconn *conn, const char *id, const char *stage,
                             int attempt) TF_MUSTCHECK;

/**
 * Inside a transaction: locks the row if attempt still owns it, so writes
 * made in the same transaction commit only under the lease. TF_ERR_LEASE
 * otherwise.
 */
enum tf_rc tf_exec_fence(PGconn *conn, const char *id, const char *stage, int attempt) TF_MUSTCHECK;

/**
 * FAILED -> PENDING when attempts are left (an orchestrator's retry).
 * TF_ERR_CONFLICT when the stage is not FAILED or has no attempt left.
 */
enum tf_rc tf_exec_requeue(PGconn *conn, const char *id, const char *stage) TF_MUSTCHECK;

/** RUNNING -> SUCCESS | FAILED for the lease holder; TF_ERR_LEASE otherwise. */
enum tf_rc tf_exec_finish(PGconn *conn, const char *id, const char *stage, int attempt,
                          const struct tf_exec_result *res) TF_MUSTCHECK;

/**
 * RUNNING -> PENDING for the lease holder that is shutting down: the next
 * claim gets the same attempt number again. TF_ERR_LEASE otherwise.
 */
enum tf_rc tf_exec_release(PGconn *conn, const char *id, const char *stage,
                           int attempt) TF_MUSTCHECK;

/** The stage event JSON of a finished record (new string: free()). */
enum tf_rc tf_exec_event(PGconn *conn, const char *id, const char *stage, char **out) TF_MUSTCHECK;

/**
 * Records that the event of this attempt and outcome went out; a record
 * that has moved on since (retried, finished again) is left alone.
 */
enum tf_rc tf_exec_mark_published(PGconn *conn, const char *id, const char *stage, int attempt,
                                  const char *status) TF_MUSTCHECK;

#endif
