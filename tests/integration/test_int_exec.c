/*
 * test_int_exec.c - the execution state machine (tf/exec.h) against the
 * real PostgreSQL: every legal move, with the row read back after each
 * (status, attempt, which timestamps are set), and every move refused from
 * each state it does not apply to, with a stale or future lease, and with
 * no attempt left, the row left exactly as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/pg.h"

#define JOB "int_exec_job"

static PGconn *db;

/* The parts of a row the moves change, as one line:
 * status|attempt|max_attempts|heartbeat|started|finished|published|worker|error|detail|upstream
 * where the timestamps are t (set) or f (NULL). */
static char *state(const char *id, const char *stage)
{
    const char *params[2] = {id, stage};

    return h_pg_value(db,
                      "SELECT concat_ws('|', status, attempt, max_attempts,"
                      " heartbeat_at IS NOT NULL, started_at IS NOT NULL,"
                      " finished_at IS NOT NULL, event_published_at IS NOT NULL,"
                      " coalesce(worker_id, '-'), coalesce(error, '-'), coalesce(detail, '-'),"
                      " coalesce(upstream_attempt::text, '-'))"
                      " FROM tickflow.job_execution WHERE execution_id = $1 AND stage = $2",
                      2, params);
}

/* The whole row as text, to see that a refused move changed nothing. */
static char *whole(const char *id, const char *stage)
{
    const char *params[2] = {id, stage};

    return h_pg_value(db,
                      "SELECT row_to_json(e)::text FROM tickflow.job_execution e"
                      " WHERE execution_id = $1 AND stage = $2",
                      2, params);
}

#define CHECK_STATE(id, stage, want)                                                               \
    do {                                                                                           \
        char *got_ = state(id, stage);                                                             \
        CHECK(got_ &&strcmp(got_, want) == 0, "state %s != %s", got_ ? got_ : "(none)", want);     \
        free(got_);                                                                                \
    } while (0)

static void sql(const char *text, const char *id, const char *stage)
{
    const char *params[2] = {id, stage};

    CHECK(h_sql(db, text, stage ? 2 : 1, params) == 0, "sql: %s", text);
}

static void new_record(char id[TF_UUID_LEN + 1], const char *stage, int max_attempts)
{
    cJSON *tickers = cJSON_CreateStringArray((const char *[]){"AAPL"}, 1);
    struct tf_exec_plan plan;
    int created = 0;

    tf_uuid_new(id);
    memset(&plan, 0, sizeof(plan));
    snprintf(plan.execution_id, sizeof(plan.execution_id), "%s", id);
    plan.stage = stage;
    snprintf(plan.job_name, sizeof(plan.job_name), JOB);
    plan.trigger = "http";
    plan.window_start = 1709562600;
    plan.window_end = 1709585999;
    plan.tickers = tickers;
    plan.max_attempts = max_attempts;
    CHECK(tf_exec_insert(db, &plan, &created) == TF_OK && created, "insert");
    cJSON_Delete(tickers);
}

/* Makes the heartbeat of a RUNNING row an hour old and sweeps it to ZOMBIE. */
static void make_zombie(const char *id, const char *stage)
{
    struct tf_exec_ids ids = {NULL, 0};
    int found = 0;

    sql("UPDATE tickflow.job_execution SET heartbeat_at = now() - interval '1 hour'"
        " WHERE execution_id = $1 AND stage = $2",
        id, stage);
    CHECK(tf_exec_zombie_stale(db, stage, 60, &ids) == TF_OK, "zombie sweep");
    for (int i = 0; i < ids.n; i++)
        found += strcmp(ids.id[i], id) == 0;
    CHECK_EQ_INT(found, 1);
    tf_exec_ids_cleanup(&ids);
}

/* A record of stage brought to st by legal moves; *attempt is its attempt. */
static void record_in(enum tf_exec_status st, const char *stage, int max_attempts,
                      char id[TF_UUID_LEN + 1], int *attempt)
{
    struct tf_exec_result res = {NULL, 1, 1, 0, NULL};

    *attempt = 0;
    new_record(id, stage, max_attempts);
    if (st == TF_EXEC_PENDING)
        return;
    CHECK(tf_exec_claim(db, id, stage, "w", attempt) == TF_OK, "claim to reach %s",
          tf_exec_status_str(st));
    if (st == TF_EXEC_SUCCESS)
        CHECK(tf_exec_finish(db, id, stage, *attempt, &res) == TF_OK, "finish");
    if (st == TF_EXEC_FAILED) {
        res.error = "made to fail";
        CHECK(tf_exec_fail(db, id, stage, *attempt, &res) == TF_OK, "fail");
    }
    if (st == TF_EXEC_ZOMBIE)
        make_zombie(id, stage);
}

/* ---- legal moves ---- */

static void test_statuses(void)
{
    for (int st = TF_EXEC_PENDING; st < TF_EXEC_NO_STATUS; st++)
        CHECK_EQ_INT(tf_exec_status_parse(tf_exec_status_str((enum tf_exec_status)st)), st);
    CHECK_STR(tf_exec_status_str(TF_EXEC_ZOMBIE), "ZOMBIE");
    CHECK_EQ_INT(tf_exec_status_parse("running"), TF_EXEC_NO_STATUS);
    CHECK_EQ_INT(tf_exec_status_parse(NULL), TF_EXEC_NO_STATUS);
    CHECK_EQ_INT(tf_exec_status_parse("SUCCESS "), TF_EXEC_NO_STATUS);
    CHECK_STR(tf_exec_status_str(TF_EXEC_NO_STATUS), "");
    CHECK(tf_exec_status_final(TF_EXEC_SUCCESS) && tf_exec_status_final(TF_EXEC_FAILED) &&
              !tf_exec_status_final(TF_EXEC_RUNNING) && !tf_exec_status_final(TF_EXEC_ZOMBIE) &&
              !tf_exec_status_final(TF_EXEC_PENDING),
          "final statuses");
}

/* PENDING -> RUNNING -> SUCCESS -> (replay) PENDING -> RUNNING -> FAILED -> (retry) PENDING
 * -> RUNNING -> (drain) PENDING -> RUNNING -> ZOMBIE -> RUNNING -> ZOMBIE -> FAILED. */
static void test_legal_path(void)
{
    char id[TF_UUID_LEN + 1];
    cJSON *objects = cJSON_CreateArray();
    cJSON *more = cJSON_CreateArray();
    struct tf_exec_result ok = {objects, 10, 9, 1, NULL};
    struct tf_exec_result failed = {NULL, 3, 0, 0, "provider said no"};
    struct tf_exec_ids ids = {NULL, 0};
    enum tf_exec_status st = TF_EXEC_NO_STATUS;
    int attempt = 0, consumed = 0;
    char *before = NULL, *after = NULL;
    cJSON *rec = NULL;

    /* Objects are added by uri: "a" again replaces the one listed. */
    cJSON_AddItemToArray(objects, cJSON_Parse("{\"uri\":\"a\",\"bytes\":1}"));
    cJSON_AddItemToArray(more, cJSON_Parse("{\"uri\":\"a\",\"bytes\":2}"));
    cJSON_AddItemToArray(more, cJSON_Parse("{\"uri\":\"b\",\"bytes\":3}"));
    new_record(id, "extract", 3);
    CHECK_STATE(id, "extract", "PENDING|0|3|f|f|f|f|-|-|-|-");

    CHECK(tf_exec_claim(db, id, "extract", "w1", &attempt) == TF_OK && attempt == 1, "claim");
    CHECK_STATE(id, "extract", "RUNNING|1|3|t|t|f|f|w1|-|-|-");

    /* A heartbeat moves heartbeat_at, and only that. */
    sql("UPDATE tickflow.job_execution SET heartbeat_at = '2000-01-01Z'"
        " WHERE execution_id = $1 AND stage = $2",
        id, "extract");
    CHECK(tf_exec_heartbeat(db, id, "extract", 1) == TF_OK, "heartbeat");
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND heartbeat_at > now() - interval '1 minute'",
                         1, (const char *[]){id}),
                 1);
    CHECK(tf_exec_set_detail(db, id, "extract", 1, "waiting for the budget") == TF_OK, "detail");
    CHECK(tf_exec_note_upstream(db, id, "extract", 1, 4) == TF_OK, "note upstream");
    CHECK_STATE(id, "extract", "RUNNING|1|3|t|t|f|f|w1|-|waiting for the budget|4");
    CHECK(tf_exec_consumed(db, id, "extract", &st, &consumed) == TF_OK && st == TF_EXEC_RUNNING &&
              consumed == 4,
          "consumed: %d", consumed);
    CHECK(tf_pg_cmd(db, "BEGIN") == TF_OK, "begin");
    CHECK(tf_exec_fence(db, id, "extract", 1) == TF_OK, "fence");
    CHECK(tf_pg_cmd(db, "ROLLBACK") == TF_OK, "rollback");

    CHECK(tf_exec_finish(db, id, "extract", 1, &ok) == TF_OK, "finish");
    CHECK_STATE(id, "extract", "SUCCESS|1|3|t|t|t|f|w1|-|-|4");
    CHECK(tf_exec_get(db, id, "extract", &rec) == TF_OK, "get");
    CHECK_EQ_INT(cJSON_GetObjectItem(rec, "records_in")->valueint, 10);
    CHECK_EQ_INT(cJSON_GetObjectItem(rec, "records_out")->valueint, 9);
    CHECK_EQ_INT(cJSON_GetObjectItem(rec, "records_rejected")->valueint, 1);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(rec, "objects")), 1);
    CHECK_EQ_INT(tf_exec_record_status(rec), TF_EXEC_SUCCESS);
    cJSON_Delete(rec);
    rec = NULL;
    CHECK(tf_exec_add_objects(db, id, "extract", 1, more) == TF_OK, "objects added");
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT jsonb_array_length(objects) FROM tickflow.job_execution"
                         " WHERE execution_id = $1 AND stage = 'extract'",
                         1, (const char *[]){id}),
                 2);
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT sum((o->>'bytes')::int) FROM tickflow.job_execution,"
                         " jsonb_array_elements(objects) o"
                         " WHERE execution_id = $1 AND stage = 'extract'",
                         1, (const char *[]){id}),
                 5);
    CHECK(tf_exec_mark_published(db, id, "extract", 1, TF_EXEC_SUCCESS) == TF_OK, "published");
    CHECK_STATE(id, "extract", "SUCCESS|1|3|t|t|t|t|w1|-|-|4");
    /* Marking an outcome the record no longer has changes nothing. */
    before = whole(id, "extract");
    CHECK(tf_exec_mark_published(db, id, "extract", 1, TF_EXEC_FAILED) == TF_OK, "other outcome");
    CHECK(tf_exec_mark_published(db, id, "extract", 2, TF_EXEC_SUCCESS) == TF_OK, "other attempt");
    after = whole(id, "extract");
    CHECK(before && after && strcmp(before, after) == 0, "mark of another outcome: unchanged");
    free(before);
    free(after);

    /* A replay of the upstream's attempt 4 changes nothing, attempt 5 re-opens. */
    before = whole(id, "extract");
    CHECK(tf_exec_reopen(db, id, "extract", 4) == TF_ERR_CONFLICT, "same upstream attempt");
    after = whole(id, "extract");
    CHECK(before && after && strcmp(before, after) == 0, "refused reopen: unchanged");
    free(before);
    free(after);
    CHECK(tf_exec_reopen(db, id, "extract", 5) == TF_OK, "reopen on a newer upstream");
    CHECK_STATE(id, "extract", "PENDING|1|3|t|t|t|f|w1|-|-|4");

    CHECK(tf_exec_claim(db, id, "extract", "w2", &attempt) == TF_OK && attempt == 2, "claim 2");
    CHECK_STATE(id, "extract", "RUNNING|2|3|t|t|t|f|w2|-|-|4");
    CHECK(tf_exec_fail(db, id, "extract", 2, &failed) == TF_OK, "fail");
    CHECK_STATE(id, "extract", "FAILED|2|3|t|t|t|f|w2|provider said no|-|4");
    CHECK(tf_exec_requeue(db, id, "extract") == TF_OK, "retry");
    CHECK_STATE(id, "extract", "PENDING|2|3|t|t|t|f|w2|provider said no|-|4");

    /* Drain: handed back, the next claim gets the same attempt. */
    CHECK(tf_exec_claim(db, id, "extract", "w3", &attempt) == TF_OK && attempt == 3, "claim 3");
    CHECK_STATE(id, "extract", "RUNNING|3|3|t|t|t|f|w3|-|-|4");
    CHECK(tf_exec_release(db, id, "extract", 3) == TF_OK, "release");
    CHECK_STATE(id, "extract", "PENDING|2|3|t|t|t|f|-|-|-|4");
    CHECK(tf_exec_claim(db, id, "extract", "w4", &attempt) == TF_OK && attempt == 3,
          "claim 3 again");

    /* A replay allows one more attempt than it has used. */
    CHECK(tf_exec_finish(db, id, "extract", 3, &ok) == TF_OK, "finish 3");
    CHECK(tf_exec_reopen(db, id, "extract", 0) == TF_OK, "replay");
    CHECK_STATE(id, "extract", "PENDING|3|4|t|t|t|f|w4|-|-|4");
    CHECK(tf_exec_claim(db, id, "extract", "w5", &attempt) == TF_OK && attempt == 4, "claim 4");

    /* Heartbeat lost on the last attempt: ZOMBIE, then FAILED. */
    make_zombie(id, "extract");
    /* finished_at stays from the earlier outcome: a claim does not clear it. */
    CHECK_STATE(id, "extract", "ZOMBIE|4|4|t|t|t|f|w5|-|-|4");
    CHECK(tf_exec_zombie_exhausted(db, "extract", &ids) == TF_OK && ids.n >= 1, "exhausted");
    tf_exec_ids_cleanup(&ids);
    CHECK_STATE(id, "extract",
                "FAILED|4|4|t|t|t|f|w5|heartbeat lost on the last allowed attempt|-|4");
    CHECK(tf_exec_requeue(db, id, "extract") == TF_ERR_CONFLICT, "no attempt left to retry");

    cJSON_Delete(objects);
    cJSON_Delete(more);
}

/* A ZOMBIE with attempts left is claimed again with the next attempt. */
static void test_zombie_reclaimed(void)
{
    char id[TF_UUID_LEN + 1];
    int attempt = 0;

    record_in(TF_EXEC_ZOMBIE, "extract", 2, id, &attempt);
    CHECK_STATE(id, "extract", "ZOMBIE|1|2|t|t|f|f|w|-|-|-");
    CHECK(tf_exec_claim(db, id, "extract", "w2", &attempt) == TF_OK && attempt == 2, "reclaim");
    CHECK_STATE(id, "extract", "RUNNING|2|2|t|t|f|f|w2|-|-|-");
    CHECK(tf_exec_heartbeat(db, id, "extract", 1) == TF_ERR_LEASE, "the zombie's lease is gone");
}

/* ---- refused moves: the row stays as it was ---- */

enum move {
    M_CLAIM,
    M_HEARTBEAT,
    M_FENCE,
    M_NOTE,
    M_DETAIL,
    M_FINISH,
    M_FAIL,
    M_RELEASE,
    M_REOPEN,
    M_REQUEUE,
    M_OBJECTS,
    M_NMOVES
};

static const char *const move_names[M_NMOVES] = {
    "claim", "heartbeat", "fence",  "note_upstream", "set_detail",  "finish",
    "fail",  "release",   "reopen", "requeue",       "add_objects",
};

static enum tf_rc do_move(enum move m, const char *id, int attempt)
{
    struct tf_exec_result res = {NULL, 0, 0, 0, "no"};
    cJSON *objects = NULL;
    enum tf_rc rc = TF_ERR_INVALID;
    int got = 0;

    switch (m) {
    case M_CLAIM:
        rc = tf_exec_claim(db, id, "extract", "thief", &got);
        break;
    case M_HEARTBEAT:
        rc = tf_exec_heartbeat(db, id, "extract", attempt);
        break;
    case M_FENCE:
        rc = tf_pg_cmd(db, "BEGIN");
        if (rc == TF_OK)
            rc = tf_exec_fence(db, id, "extract", attempt);
        if (tf_pg_cmd(db, "ROLLBACK") != TF_OK)
            rc = TF_ERR_DB;
        break;
    case M_NOTE:
        rc = tf_exec_note_upstream(db, id, "extract", attempt, 9);
        break;
    case M_DETAIL:
        rc = tf_exec_set_detail(db, id, "extract", attempt, "stale");
        break;
    case M_FINISH:
        rc = tf_exec_finish(db, id, "extract", attempt, &res);
        break;
    case M_FAIL:
        rc = tf_exec_fail(db, id, "extract", attempt, &res);
        break;
    case M_RELEASE:
        rc = tf_exec_release(db, id, "extract", attempt);
        break;
    case M_REOPEN:
        rc = tf_exec_reopen(db, id, "extract", 0);
        break;
    case M_REQUEUE:
        rc = tf_exec_requeue(db, id, "extract");
        break;
    case M_OBJECTS:
        objects = cJSON_CreateArray();
        rc = tf_exec_add_objects(db, id, "extract", attempt, objects);
        cJSON_Delete(objects);
        break;
    case M_NMOVES:
        break;
    }
    return rc;
}

/* The outcome a refused move must give: leased moves TF_ERR_LEASE, others TF_ERR_CONFLICT. */
static enum tf_rc refusal(enum move m)
{
    return m == M_CLAIM || m == M_REOPEN || m == M_REQUEUE || m == M_OBJECTS ? TF_ERR_CONFLICT
                                                                             : TF_ERR_LEASE;
}

/* Tries move m on a fresh record in st (max_attempts) with attempt + delta: refused, unchanged. */
static void check_refused(enum move m, enum tf_exec_status st, int max_attempts, int delta)
{
    char id[TF_UUID_LEN + 1];
    char *before = NULL, *after = NULL;
    int attempt = 0;
    enum tf_rc rc;

    record_in(st, "extract", max_attempts, id, &attempt);
    before = whole(id, "extract");
    rc = do_move(m, id, attempt + delta);
    after = whole(id, "extract");
    CHECK(rc == refusal(m), "%s from %s (attempts %d, lease %+d): %s, want %s", move_names[m],
          tf_exec_status_str(st), max_attempts, delta, tf_rc_str(rc), tf_rc_str(refusal(m)));
    CHECK(before && after && strcmp(before, after) == 0, "%s from %s (lease %+d) changed the row",
          move_names[m], tf_exec_status_str(st), delta);
    free(before);
    free(after);
}

static void test_refused_by_state(void)
{
    /* Where each move applies; everywhere else it is refused. */
    static const struct {
        enum move m;
        unsigned applies; /* 1 << status */
    } rules[] = {
        {M_CLAIM, 1u << TF_EXEC_PENDING | 1u << TF_EXEC_ZOMBIE},
        {M_HEARTBEAT, 1u << TF_EXEC_RUNNING},
        {M_FENCE, 1u << TF_EXEC_RUNNING},
        {M_NOTE, 1u << TF_EXEC_RUNNING},
        {M_DETAIL, 1u << TF_EXEC_RUNNING},
        {M_FINISH, 1u << TF_EXEC_RUNNING},
        {M_FAIL, 1u << TF_EXEC_RUNNING},
        {M_RELEASE, 1u << TF_EXEC_RUNNING},
        {M_REOPEN, 1u << TF_EXEC_SUCCESS | 1u << TF_EXEC_FAILED},
        {M_REQUEUE, 1u << TF_EXEC_FAILED},
        {M_OBJECTS, 1u << TF_EXEC_SUCCESS},
    };

    for (size_t r = 0; r < TF_ARRAY_LEN(rules); r++)
        for (int st = TF_EXEC_PENDING; st < TF_EXEC_NO_STATUS; st++)
            if (!(rules[r].applies & (1u << st)))
                check_refused(rules[r].m, (enum tf_exec_status)st, 3, 0);
}

/* The lease holder's moves with an attempt that is not the lease. */
static void test_refused_by_lease(void)
{
    static const enum move leased[] = {M_HEARTBEAT, M_FENCE, M_NOTE,   M_DETAIL,
                                       M_FINISH,    M_FAIL,  M_RELEASE};

    for (size_t i = 0; i < TF_ARRAY_LEN(leased); i++) {
        check_refused(leased[i], TF_EXEC_RUNNING, 3, -1);
        check_refused(leased[i], TF_EXEC_RUNNING, 3, +1);
    }
    check_refused(M_OBJECTS, TF_EXEC_SUCCESS, 3, -1);
    check_refused(M_OBJECTS, TF_EXEC_SUCCESS, 3, +1);
}

/* No attempt left: a ZOMBIE is not claimed, a FAILED stage not retried. */
static void test_refused_exhausted(void)
{
    check_refused(M_CLAIM, TF_EXEC_ZOMBIE, 1, 0);
    check_refused(M_REQUEUE, TF_EXEC_FAILED, 1, 0);
}

/* ---- the sweeper's bulk moves (on aggregate records, cleared first) ---- */

static int has_id(const struct tf_exec_ids *ids, const char *id)
{
    for (int i = 0; i < ids->n; i++)
        if (strcmp(ids->id[i], id) == 0)
            return 1;
    return 0;
}

static void test_sweeps(void)
{
    char fresh[TF_UUID_LEN + 1], stale[TF_UUID_LEN + 1], locked[TF_UUID_LEN + 1];
    char spare[TF_UUID_LEN + 1], waiting[TF_UUID_LEN + 1], done[TF_UUID_LEN + 1];
    struct tf_exec_ids ids = {NULL, 0};
    char dsn_err[256];
    PGconn *other = NULL;
    int a_fresh, a_stale, a_locked, a_spare, a_waiting, a_done;
    char *before = NULL, *after = NULL;

    sql("DELETE FROM tickflow.job_execution WHERE stage = $1", "aggregate", NULL);
    record_in(TF_EXEC_RUNNING, "aggregate", 3, fresh, &a_fresh);
    record_in(TF_EXEC_RUNNING, "aggregate", 3, stale, &a_stale);
    record_in(TF_EXEC_RUNNING, "aggregate", 3, locked, &a_locked);
    sql("UPDATE tickflow.job_execution SET heartbeat_at = now() - interval '1 hour'"
        " WHERE stage = $2 AND execution_id <> $1",
        fresh, "aggregate");
    /* A fenced run holds its row locked: alive, whatever its heartbeat says. */
    other = tf_pg_connect(getenv("TF_INT_EXEC_DSN"), dsn_err, sizeof(dsn_err));
    CHECK(other != NULL, "second connection: %s", dsn_err);
    CHECK(other && tf_pg_cmd(other, "BEGIN") == TF_OK &&
              tf_exec_fence(other, locked, "aggregate", a_locked) == TF_OK,
          "fenced elsewhere");
    before = whole(fresh, "aggregate");
    CHECK(tf_exec_zombie_stale(db, "aggregate", 60, &ids) == TF_OK, "zombie sweep");
    CHECK_EQ_INT(ids.n, 1);
    CHECK(has_id(&ids, stale), "the stale one");
    tf_exec_ids_cleanup(&ids);
    after = whole(fresh, "aggregate");
    CHECK(before && after && strcmp(before, after) == 0, "a fresh heartbeat is left alone");
    free(before);
    free(after);
    CHECK_STATE(stale, "aggregate", "ZOMBIE|1|3|t|t|f|f|w|-|-|-");
    CHECK_STATE(locked, "aggregate", "RUNNING|1|3|t|t|f|f|w|-|-|-");
    CHECK(other && tf_pg_cmd(other, "ROLLBACK") == TF_OK, "unlock");
    PQfinish(other);

    /* Exhausted: only the ZOMBIE with no attempt left fails. */
    record_in(TF_EXEC_ZOMBIE, "aggregate", 1, spare, &a_spare);
    CHECK(tf_exec_zombie_exhausted(db, "aggregate", &ids) == TF_OK, "exhausted sweep");
    CHECK_EQ_INT(ids.n, 1);
    CHECK(has_id(&ids, spare), "the exhausted one");
    tf_exec_ids_cleanup(&ids);
    CHECK_STATE(spare, "aggregate",
                "FAILED|1|1|t|t|t|f|w|heartbeat lost on the last allowed attempt|-|-");
    CHECK_STATE(stale, "aggregate", "ZOMBIE|1|3|t|t|f|f|w|-|-|-");

    /* Waiting rows untouched for 30 s come back once, then not for 30 s. */
    record_in(TF_EXEC_PENDING, "aggregate", 3, waiting, &a_waiting);
    sql("UPDATE tickflow.job_execution SET updated_at = now() - interval '1 minute'"
        " WHERE stage = $2 AND status IN ('PENDING', 'ZOMBIE', 'RUNNING')"
        " AND execution_id::text <> $1",
        "00000000-0000-4000-8000-000000000000", "aggregate");
    /* The fenced row, unlocked and still stale, became a ZOMBIE at the last sweep. */
    CHECK_STATE(locked, "aggregate", "ZOMBIE|1|3|t|t|f|f|w|-|-|-");
    CHECK(tf_exec_touch_waiting(db, "aggregate", 30, &ids) == TF_OK, "touch");
    CHECK_EQ_INT(ids.n, 3);
    CHECK(has_id(&ids, waiting) && has_id(&ids, stale) && has_id(&ids, locked),
          "the PENDING and the ZOMBIEs");
    CHECK(!has_id(&ids, fresh), "not the RUNNING one");
    tf_exec_ids_cleanup(&ids);
    CHECK(tf_exec_touch_waiting(db, "aggregate", 30, &ids) == TF_OK && ids.n == 0,
          "touched: not again");
    tf_exec_ids_cleanup(&ids);

    /* Unpublished outcomes older than after_s; a published one is not among them. */
    record_in(TF_EXEC_SUCCESS, "aggregate", 3, done, &a_done);
    CHECK(tf_exec_unpublished(db, "aggregate", 35, &ids) == TF_OK && ids.n == 0,
          "just finished: the worker's own to publish (%d)", ids.n);
    tf_exec_ids_cleanup(&ids);
    sql("UPDATE tickflow.job_execution SET finished_at = now() - interval '1 minute'"
        " WHERE stage = $2 AND execution_id::text <> $1",
        "00000000-0000-4000-8000-000000000000", "aggregate");
    CHECK(tf_exec_unpublished(db, "aggregate", 35, &ids) == TF_OK, "unpublished");
    CHECK(has_id(&ids, done) && has_id(&ids, spare) && ids.n == 2, "%d unpublished", ids.n);
    tf_exec_ids_cleanup(&ids);
    /* Claimed: a second sweeper does not get them, until the claim is after_s old or given
     * back (a publish that failed). */
    CHECK(tf_exec_unpublished(db, "aggregate", 35, &ids) == TF_OK && ids.n == 0,
          "claimed: %d handed out again", ids.n);
    tf_exec_ids_cleanup(&ids);
    CHECK(tf_exec_unclaim_event(db, spare, "aggregate") == TF_OK, "unclaim");
    CHECK(tf_exec_unpublished(db, "aggregate", 35, &ids) == TF_OK && ids.n == 1 &&
              has_id(&ids, spare),
          "given back: claimed again (%d)", ids.n);
    tf_exec_ids_cleanup(&ids);
    sql("UPDATE tickflow.job_execution SET event_claimed_at = now() - interval '36 seconds'"
        " WHERE stage = $2 AND execution_id::text <> $1",
        "00000000-0000-4000-8000-000000000000", "aggregate");
    CHECK(tf_exec_mark_published(db, done, "aggregate", a_done, TF_EXEC_SUCCESS) == TF_OK, "mark");
    CHECK(tf_exec_unpublished(db, "aggregate", 35, &ids) == TF_OK && ids.n == 1 &&
              has_id(&ids, spare),
          "published: gone from the list; an old claim is claimed again");
    tf_exec_ids_cleanup(&ids);
}

/* ---- backfills: the day records and their gate ---- */

static void test_backfill_days(void)
{
    const char *bf = "6f1c2a52-0d4e-4c43-9a55-0b7a3a0c1d99";
    struct tf_exec_window days[3] = {
        {1709510400, 1709596800}, {1709596800, 1709683200}, {1709683200, 1709769600}};
    struct tf_exec_ids ids = {NULL, 0};
    const char *params[1] = {bf};
    char *first = NULL;
    int attempt = 0;

    CHECK(h_sql(db,
                "INSERT INTO tickflow.backfill (backfill_id, job_name, range_from, range_to,"
                " concurrency) VALUES ($1, '" JOB "', '2024-03-04', '2024-03-06', 2)",
                1, params) == 0,
          "backfill row");
    CHECK(tf_exec_insert_days(db, bf, JOB, days, 3) == TF_OK, "insert days");
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE backfill_id = $1"
                         " AND stage = 'extract' AND status = 'PENDING' AND attempt = 0"
                         " AND released_at IS NULL AND window_end - window_start = '1 day'"
                         " AND tickers = '{AAPL}' AND max_attempts = 3",
                         1, params),
                 3);
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT extract(epoch FROM min(window_start))::bigint"
                         " FROM tickflow.job_execution WHERE backfill_id = $1",
                         1, params),
                 1709510400);
    /* The days' ids are a function of the backfill and the day. */
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE backfill_id = $1"
                         " AND execution_id = md5($1 || '/' || extract(epoch FROM window_start)"
                         "::bigint)::uuid",
                         1, params),
                 3);
    CHECK(tf_exec_insert_days(db, bf, "no_such_job", days, 3) == TF_ERR_NOT_FOUND,
          "an unknown job inserts nothing");

    /* Concurrency 2: the first two days in order, then none while they run. */
    CHECK(tf_exec_release_days(db, &ids) == TF_OK && ids.n == 2, "two released");
    first = h_pg_value(db,
                       "SELECT execution_id::text FROM tickflow.job_execution"
                       " WHERE backfill_id = $1 ORDER BY window_start LIMIT 1",
                       1, params);
    CHECK(first && has_id(&ids, first), "the first day is among them");
    tf_exec_ids_cleanup(&ids);
    CHECK(tf_exec_release_days(db, &ids) == TF_OK && ids.n == 0, "none while two are in flight");
    tf_exec_ids_cleanup(&ids);
    CHECK(first && tf_exec_claim(db, first, "extract", "w", &attempt) == TF_OK, "claim day 1");
    CHECK(tf_exec_release_days(db, &ids) == TF_OK && ids.n == 0, "running still counts");
    tf_exec_ids_cleanup(&ids);
    CHECK(first && tf_exec_finish(db, first, "extract", attempt,
                                  &(struct tf_exec_result){NULL, 0, 0, 0, NULL}) == TF_OK,
          "finish day 1");
    CHECK(tf_exec_release_days(db, &ids) == TF_OK && ids.n == 1, "the third day released");
    tf_exec_ids_cleanup(&ids);
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE backfill_id = $1"
                         " AND released_at IS NOT NULL",
                         1, params),
                 3);
    free(first);
}

int main(void)
{
    const char *base = getenv("TICKFLOW_PG_DSN");
    char dsn[1024], dbname[64], err[512];

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!base) {
        CHECK(0, "TICKFLOW_PG_DSN must be set (tests/env/up.sh)");
        return check_summary();
    }
    snprintf(dbname, sizeof(dbname), "tickflow_exec_%ld", (long)getpid());
    if (h_pg_create_db(base, dbname, dsn, sizeof(dsn)) != 0) {
        CHECK(0, "cannot create database %s", dbname);
        return check_summary();
    }
    setenv("TF_INT_EXEC_DSN", dsn, 1);
    db = PQconnectdb(dsn);
    CHECK(PQstatus(db) == CONNECTION_OK, "connect");
    CHECK(tf_pg_migrate(db, err, sizeof(err)) == TF_OK, "migrate: %s", err);
    CHECK(h_sql(db,
                "INSERT INTO tickflow.job_config (job_name, provider, tickers)"
                " VALUES ('" JOB "', 'polygon', '{AAPL}')",
                0, NULL) == 0,
          "job");
    test_statuses();
    test_legal_path();
    test_zombie_reclaimed();
    test_refused_by_state();
    test_refused_by_lease();
    test_refused_exhausted();
    test_sweeps();
    test_backfill_days();
    PQfinish(db);
    h_pg_drop_db(base, dbname);
    return check_summary();
}
