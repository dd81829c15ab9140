/*
 * tf/exec.h - the execution record: one row of tickflow.job_execution per
 * (execution_id, stage), and its state machine. This module is the only
 * writer of those rows; every move is a compare-and-set that answers
 * TF_ERR_LEASE (lease gone) or TF_ERR_CONFLICT (wrong state) and leaves
 * the row alone when it does not apply. docs/ARCHITECTURE.md draws it.
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

/** 1 for a job's name, [a-z][a-z0-9_]{0,62}: safe as a path segment, a Kafka key and in SQL. */
int tf_job_name_valid(const char *name);

/** Writes a new random (v4) UUID, lower case, into out[37]. */
void tf_uuid_new(char out[TF_UUID_LEN + 1]);

/** A stage record's status. */
enum tf_exec_status {
    TF_EXEC_PENDING,
    TF_EXEC_RUNNING,
    TF_EXEC_SUCCESS,
    TF_EXEC_FAILED,
    TF_EXEC_ZOMBIE,
    TF_EXEC_NO_STATUS, /* not a status (NULL or unknown text) */
};

/** The status as the database and the API spell it ("RUNNING"); "" for TF_EXEC_NO_STATUS. */
const char *tf_exec_status_str(enum tf_exec_status st);

/** The status spelled s (exact, upper case); TF_EXEC_NO_STATUS when s is NULL or none. */
enum tf_exec_status tf_exec_status_parse(const char *s);

/** The "status" member of a record or event; TF_EXEC_NO_STATUS when absent or unknown. */
enum tf_exec_status tf_exec_record_status(const cJSON *record);

/** 1 for SUCCESS and FAILED: the stage has an outcome. */
int tf_exec_status_final(enum tf_exec_status st);

/** What a new stage record starts with. */
struct tf_exec_plan {
    char execution_id[TF_UUID_LEN + 1];
    const char *stage;
    char job_name[64];
    const char *trigger; /* "http", "kafka", "sweep" or "schedule" */
    int64_t window_start;
    int64_t window_end;
    const cJSON *tickers; /* array of strings, borrowed */
    int max_attempts;
};

/** What a finished run reports (tf_exec_finish, tf_exec_fail). */
struct tf_exec_result {
    const cJSON *objects; /* NULL: none */
    long long records_in;
    long long records_out;
    long long records_rejected;
    const char *error; /* why it failed; NULL on success */
};

/** Execution ids that a bulk move touched (tf_exec_ids_cleanup frees them). */
struct tf_exec_ids {
    char (*id)[TF_UUID_LEN + 1];
    int n;
};

void tf_exec_ids_cleanup(struct tf_exec_ids *ids);

/** A time window [start, end) in epoch seconds. */
struct tf_exec_window {
    int64_t start;
    int64_t end;
};

/** Inserts the PENDING record; *created is 0 when the row already existed. */
enum tf_rc tf_exec_insert(PGconn *conn, const struct tf_exec_plan *plan, int *created) TF_MUSTCHECK;

/**
 * Inserts one PENDING extract record per window for backfill_id (a row of
 * tickflow.backfill, of job_name), each with a new execution id and the
 * job's tickers and attempt limit, not released yet (tf_exec_release_days).
 * A day's execution id is derived from the backfill id and the day's start,
 * so the same backfill always names its days alike.
 * Meant to run in the transaction that creates the backfill. TF_ERR_DB.
 */
enum tf_rc tf_exec_insert_days(PGconn *conn, const char *backfill_id, const char *job_name,
                               const struct tf_exec_window *days, int ndays) TF_MUSTCHECK;

/**
 * The backfill gate: releases the next unreleased days of every backfill
 * in window order, so that at most its concurrency are in flight (released
 * and PENDING, RUNNING or ZOMBIE). The released ids go to *out (cleared
 * first; tf_exec_ids_cleanup). The caller serialises schedulers (a lock in
 * its transaction) and queues the ids once that commits. TF_ERR_DB.
 */
enum tf_rc tf_exec_release_days(PGconn *conn, struct tf_exec_ids *out) TF_MUSTCHECK;

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
 * The status of a record and the upstream attempt it consumed (1 when none
 * was noted). TF_ERR_NOT_FOUND when there is no record.
 */
enum tf_rc tf_exec_consumed(PGconn *conn, const char *id, const char *stage,
                            enum tf_exec_status *status, int *upstream_attempt) TF_MUSTCHECK;

/* ---- the moves ---- */

/**
 * PENDING (or ZOMBIE with attempts left) -> RUNNING, attempt + 1, worker
 * noted, error and detail cleared, started and heartbeat now.
 * TF_ERR_CONFLICT when the stage is not claimable (someone else has it, it
 * is finished, or it has no attempt left); *attempt is the attempt now
 * owned (the lease).
 */
enum tf_rc tf_exec_claim(PGconn *conn, const char *id, const char *stage, const char *worker,
                         int *attempt) TF_MUSTCHECK;

/** Refreshes heartbeat_at of the lease holder; TF_ERR_LEASE when the lease is gone. */
enum tf_rc tf_exec_heartbeat(PGconn *conn, const char *id, const char *stage,
                             int attempt) TF_MUSTCHECK;

/**
 * Inside a transaction: locks the row if attempt still owns it, so writes
 * made in the same transaction commit only under the lease. TF_ERR_LEASE
 * otherwise.
 */
enum tf_rc tf_exec_fence(PGconn *conn, const char *id, const char *stage, int attempt) TF_MUSTCHECK;

/**
 * Notes on the lease holder's record which upstream attempt it consumed
 * (an event of a newer one runs the stage again). TF_ERR_LEASE.
 */
enum tf_rc tf_exec_note_upstream(PGconn *conn, const char *id, const char *stage, int attempt,
                                 int upstream_attempt) TF_MUSTCHECK;

/** Shows on the lease holder's record what the run waits for (NULL clears it). TF_ERR_LEASE. */
enum tf_rc tf_exec_set_detail(PGconn *conn, const char *id, const char *stage, int attempt,
                              const char *detail) TF_MUSTCHECK;

/**
 * RUNNING -> SUCCESS for the lease holder, with the run's objects and
 * counts, finished now (wall clock). TF_ERR_LEASE otherwise.
 */
enum tf_rc tf_exec_finish(PGconn *conn, const char *id, const char *stage, int attempt,
                          const struct tf_exec_result *res) TF_MUSTCHECK;

/** RUNNING -> FAILED for the lease holder, with res->error. TF_ERR_LEASE otherwise. */
enum tf_rc tf_exec_fail(PGconn *conn, const char *id, const char *stage, int attempt,
                        const struct tf_exec_result *res) TF_MUSTCHECK;

/**
 * RUNNING -> PENDING for the lease holder that is shutting down: the next
 * claim gets the same attempt number again. TF_ERR_LEASE otherwise.
 */
enum tf_rc tf_exec_release(PGconn *conn, const char *id, const char *stage,
                           int attempt) TF_MUSTCHECK;

/**
 * Marks ZOMBIE the stage's RUNNING rows owned by worker_id whose rows are
 * not locked (no live transaction): what this worker's previous process
 * left when it died. Their ids into out.
 */
enum tf_rc tf_exec_zombie_worker(PGconn *conn, const char *stage, const char *worker_id,
                                 struct tf_exec_ids *out) TF_MUSTCHECK;

/**
 * The sweeper's RUNNING -> ZOMBIE: every RUNNING record of stage whose
 * heartbeat is older than timeout_s seconds, except those a fenced run
 * holds locked (it is alive). Their ids go to *out (tf_exec_ids_cleanup).
 */
enum tf_rc tf_exec_zombie_stale(PGconn *conn, const char *stage, long timeout_s,
                                struct tf_exec_ids *out) TF_MUSTCHECK;

/**
 * The sweeper's ZOMBIE -> FAILED for the records of stage with no attempt
 * left ("heartbeat lost on the last allowed attempt"); ids to *out.
 */
enum tf_rc tf_exec_zombie_exhausted(PGconn *conn, const char *stage,
                                    struct tf_exec_ids *out) TF_MUSTCHECK;

/**
 * A replay: SUCCESS | FAILED -> PENDING, with one more attempt allowed and
 * its event unsent. With upstream_newer_than > 0, only while the upstream
 * attempt the record consumed is older than it (two events racing re-open
 * the stage once). TF_ERR_CONFLICT when it does not apply.
 */
enum tf_rc tf_exec_reopen(PGconn *conn, const char *id, const char *stage,
                          int upstream_newer_than) TF_MUSTCHECK;

/**
 * An orchestrator's retry: FAILED -> PENDING when attempts are left.
 * TF_ERR_CONFLICT when the stage is not FAILED or has no attempt left.
 */
enum tf_rc tf_exec_requeue(PGconn *conn, const char *id, const char *stage) TF_MUSTCHECK;

/**
 * Adds objects to a record that is still attempt's SUCCESS (a follow-up's
 * files; one listed already under the same uri is replaced), finished_at
 * moved to now. TF_ERR_CONFLICT when it has moved on.
 */
enum tf_rc tf_exec_add_objects(PGconn *conn, const char *id, const char *stage, int attempt,
                               const cJSON *objects) TF_MUSTCHECK;

/**
 * The sweeper's orphans: PENDING and ZOMBIE records of stage untouched for
 * after_s seconds (backfill days only once released), at most 100, oldest
 * first; each is touched, so it is not picked again for after_s. A replica
 * that died with runs in its queue leaves them PENDING: another one takes
 * them here (the sweeper passes the heartbeat timeout). Ids to *out.
 */
enum tf_rc tf_exec_touch_waiting(PGconn *conn, const char *stage, long after_s,
                                 struct tf_exec_ids *out) TF_MUSTCHECK;

/**
 * Claims finished records of stage whose event has not gone out after_s
 * seconds after they finished (at most 100, oldest first), for the caller to
 * publish; a claim keeps every other caller off a record for after_s. The
 * sweeper passes the delivery timeout and a margin, so a worker still waiting
 * on the broker publishes its own event and only a lost one goes out again.
 */
enum tf_rc tf_exec_unpublished(PGconn *conn, const char *stage, long after_s,
                               struct tf_exec_ids *out) TF_MUSTCHECK;

/** Gives back the claim of tf_exec_unpublished on a record whose event did not go out. */
enum tf_rc tf_exec_unclaim_event(PGconn *conn, const char *id, const char *stage) TF_MUSTCHECK;

/** The stage event JSON of a finished record (new string: free()). */
enum tf_rc tf_exec_event(PGconn *conn, const char *id, const char *stage, char **out) TF_MUSTCHECK;

/**
 * Records that the event of this attempt and outcome went out; a record
 * that has moved on since (retried, finished again) is left alone.
 */
enum tf_rc tf_exec_mark_published(PGconn *conn, const char *id, const char *stage, int attempt,
                                  enum tf_exec_status status) TF_MUSTCHECK;

#endif
