/*
 * exec.c - the one writer of job_execution rows: their statuses, every move
 * of the state machine (tf/exec.h) as one guarded, parameterised statement,
 * the other fields a run writes, the backfill's day rows and their gate,
 * and the stage event; the API's view of a record (its objects summed, the
 * sums kept per row version) and its objects a page at a time.
 */
#include "tf/exec.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "tf/hash.h"
#include "tf/pg.h"
#include "tf/time.h"

int tf_job_name_valid(const char *name)
{
    size_t n = 0;

    if (!name || !(name[0] >= 'a' && name[0] <= 'z'))
        return 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= 63 || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

int tf_uuid_valid(const char *s)
{
    size_t i;

    if (!s || strlen(s) != TF_UUID_LEN)
        return 0;
    for (i = 0; i < TF_UUID_LEN; i++) {
        int is_dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (is_dash) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

void tf_uuid_new(char out[TF_UUID_LEN + 1])
{
    uuid_t u;

    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

/* clang-format off */
#define TS(col)  "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define TSS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The members of a record, less its objects: RECORD_JSON for the runtime
 * (objects whole), VIEW_JSON for the API (objects_summary added in C). */
#define RECORD_MEMBERS(objects)                                                                \
    "json_build_object('execution_id', execution_id, 'stage', stage, 'job_name', job_name,"    \
    " 'status', status, 'attempt', attempt, 'max_attempts', max_attempts, 'trigger', trigger," \
    " 'window_start', " TSS("window_start") ", 'window_end', " TSS("window_end") ","           \
    " 'tickers', tickers," objects " 'records_in', records_in,"                                \
    " 'records_out', records_out, 'records_rejected', records_rejected, 'error', error,"       \
    " 'worker_id', worker_id, 'detail', detail, 'heartbeat_at', " TS("heartbeat_at") ","       \
    " 'started_at', " TS("started_at") ", 'finished_at', " TS("finished_at") ","               \
    " 'created_at', " TS("created_at") ", 'updated_at', " TS("updated_at") ")::text"
#define RECORD_JSON RECORD_MEMBERS(" 'objects', objects,")
#define VIEW_JSON   RECORD_MEMBERS("")

/* A row version's key: its execution and stage, and the transaction that wrote it. */
#define ROW_KEY "execution_id::text || '/' || stage || '/' || xmin::text"

/* "<count> <bytes> <records>" of the row's objects (bytes and records that
 * are not numbers count as 0). Costs a read of the whole list. */
#define NUM(member) "CASE jsonb_typeof(o->'" member "') WHEN 'number'"                          \
                    " THEN (o->'" member "')::numeric END"
#define OBJECTS_SUMMARY                                                                        \
    "(SELECT count(*) || ' ' || coalesce(sum(" NUM("bytes") "), 0)::bigint || ' '"             \
    " || coalesce(sum(" NUM("records") "), 0)::bigint FROM jsonb_array_elements(objects) AS o)"

/* The API's columns: the row key, then the record less its objects and
 * the summary of its objects unless the key is one of $known (text[]). */
#define KNOWN(known) ROW_KEY " = ANY(" known "::text[])"
#define VIEW_COLUMNS(known)                                                                    \
    ROW_KEY ", CASE WHEN " KNOWN(known) " THEN NULL ELSE " VIEW_JSON " END,"                   \
    " CASE WHEN " KNOWN(known) " THEN NULL ELSE " OBJECTS_SUMMARY " END"
/* clang-format on */

/* Runs sql and returns the result, or NULL (cleared) unless it is ok. */
static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params)
{
    PGresult *res = tf_pg_exec(conn, sql, n, params);

    if (!tf_pg_ok(res)) {
        PQclear(res);
        return NULL;
    }
    return res;
}

enum tf_rc tf_exec_insert(PGconn *conn, const struct tf_exec_plan *plan, int *created)
{
    char ws[32], we[32], attempts[16];
    struct tf_buf tickers;
    const char *params[8];
    PGresult *res = NULL;

    tf_buf_init(&tickers, 1024 * 1024);
    if (tf_pg_text_array(plan->tickers, &tickers) != TF_OK) {
        tf_buf_cleanup(&tickers);
        return TF_ERR_TOO_LARGE;
    }
    tf_time_format(plan->window_start, ws, sizeof(ws));
    tf_time_format(plan->window_end, we, sizeof(we));
    snprintf(attempts, sizeof(attempts), "%d", plan->max_attempts > 0 ? plan->max_attempts : 3);
    params[0] = plan->execution_id;
    params[1] = plan->stage;
    params[2] = plan->job_name;
    params[3] = plan->trigger ? plan->trigger : "http";
    params[4] = ws;
    params[5] = we;
    params[6] = tickers.data;
    params[7] = attempts;
    res = run(conn,
              "INSERT INTO tickflow.job_execution (execution_id, stage, job_name, trigger,"
              " window_start, window_end, tickers, max_attempts)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
              " ON CONFLICT (execution_id, stage) DO NOTHING",
              8, params);
    tf_buf_cleanup(&tickers);
    if (!res)
        return TF_ERR_DB;
    *created = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return TF_OK;
}

enum tf_rc tf_exec_get(PGconn *conn, const char *id, const char *stage, cJSON **out)
{
    const char *params[2] = {id, stage};

    return tf_pg_json_row(conn,
                          "SELECT " RECORD_JSON " FROM tickflow.job_execution"
                          " WHERE execution_id = $1 AND stage = $2",
                          2, params, out);
}

/* ---- the API's view: the record with a summary of its objects ---- */

/*
 * The API's statements are prepared once per connection: parsing and
 * planning them cost PostgreSQL several times what running them does.
 * Which connections have which is noted here (the pool's connections are
 * long-lived); a connection that reuses a closed one's address is found
 * out by PostgreSQL (26000: not prepared) and prepared then.
 */
enum hot_stmt { HOT_KEY, HOT_VIEW, HOT_LIST_KEYS, HOT_LIST, HOT_OBJECTS, HOT_N };

/* clang-format off */
#define ONE_ROW " FROM tickflow.job_execution WHERE execution_id = $1 AND stage = $2"
#define LIST_WHERE                                                                             \
    " FROM tickflow.job_execution WHERE stage = $1 AND ($2::text IS NULL OR job_name = $2)"    \
    " AND ($3::text IS NULL OR status = $3) ORDER BY created_at DESC, execution_id LIMIT $4"

static const struct {
    const char *name;
    const char *sql;
    int nparams;
} hot[HOT_N] = {
    [HOT_KEY] = {"tf_exec_key", "SELECT " ROW_KEY ONE_ROW, 2},
    [HOT_VIEW] = {"tf_exec_view", "SELECT " ROW_KEY ", " VIEW_JSON ", " OBJECTS_SUMMARY ONE_ROW, 2},
    [HOT_LIST_KEYS] = {"tf_exec_list_keys", "SELECT " ROW_KEY LIST_WHERE, 4},
    [HOT_LIST] = {"tf_exec_list", "SELECT " VIEW_COLUMNS("$5") LIST_WHERE, 5},
    [HOT_OBJECTS] = {"tf_exec_objects",
                     "SELECT json_build_object('total', jsonb_array_length(objects),"
                     " 'objects', coalesce((SELECT json_agg(p.o ORDER BY p.uri)"
                     "  FROM (SELECT o, o->>'uri' COLLATE \"C\" AS uri"
                     "   FROM jsonb_array_elements(objects) AS o"
                     "   WHERE $3::bytea IS NULL OR convert_to(o->>'uri', 'UTF8') > $3::bytea"
                     "   ORDER BY 2 LIMIT $4) AS p), '[]'))::text" ONE_ROW, 4},
};
/* clang-format on */

#define PREPARED_CONNS 64

static struct {
    const PGconn *conn;
    unsigned mask; /* 1 << hot_stmt for each prepared */
} prepared[PREPARED_CONNS];
static unsigned prepared_next; /* the entry a new connection takes */
static pthread_mutex_t prepared_mu = PTHREAD_MUTEX_INITIALIZER;

/* The statements noted as prepared on conn; note sets them (or'ed) first. */
static unsigned prepared_mask(const PGconn *conn, unsigned note)
{
    unsigned mask = 0;
    int i = 0;

    pthread_mutex_lock(&prepared_mu);
    while (i < PREPARED_CONNS && prepared[i].conn != conn)
        i++;
    if (i == PREPARED_CONNS && note) {
        i = (int)(prepared_next++ % PREPARED_CONNS);
        prepared[i].conn = conn;
        prepared[i].mask = 0;
    }
    if (i < PREPARED_CONNS) {
        prepared[i].mask |= note;
        mask = prepared[i].mask;
    }
    pthread_mutex_unlock(&prepared_mu);
    return mask;
}

/* Prepares statement st on conn; 1 on success (also when it was already). */
static int prepare_hot(PGconn *conn, enum hot_stmt st)
{
    PGresult *res = PQprepare(conn, hot[st].name, hot[st].sql, hot[st].nparams, NULL);
    int ok = tf_pg_ok(res) || strcmp(tf_pg_sqlstate(res), "42P05") == 0;

    PQclear(res);
    if (ok)
        (void)prepared_mask(conn, 1u << st);
    return ok;
}

/*
 * Runs statement st like run(): prepared, except inside a transaction (a
 * failed EXECUTE would abort it), where it is parsed and planned as usual.
 */
static PGresult *run_hot(PGconn *conn, enum hot_stmt st, const char *const *params)
{
    PGresult *res = NULL;

    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return run(conn, hot[st].sql, hot[st].nparams, params);
    if (!(prepared_mask(conn, 0) & (1u << st)) && !prepare_hot(conn, st))
        return NULL;
    res = PQexecPrepared(conn, hot[st].name, hot[st].nparams, params, NULL, NULL, 0);
    if (strcmp(tf_pg_sqlstate(res), "26000") == 0 && prepare_hot(conn, st)) {
        PQclear(res);
        res = PQexecPrepared(conn, hot[st].name, hot[st].nparams, params, NULL, NULL, 0);
    }
    if (!tf_pg_ok(res)) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/*
 * The views this process has made, by row version. A view is a function
 * of the row alone, and every write of a row makes a new version with a
 * new key (the writing transaction, xmin): while the key PostgreSQL
 * reports is the one kept, the kept view is the record, and the read
 * costs PostgreSQL an index lookup instead of building the record and
 * summing its objects (0.6 ms for 500: the list is read whole). A
 * transaction id comes back only after 2^32 others (wraparound), so a view
 * is trusted for VIEW_TTL_MS at most, far less than any database needs.
 */
#define VIEW_SLOTS     1024
#define VIEW_BYTES     (16u << 20)  /* all views kept */
#define VIEW_MAX_BYTES (256u << 10) /* one view kept */
#define VIEW_TTL_MS    (10 * 60 * 1000)
#define ROW_KEY_LEN    (TF_UUID_LEN + 1 + 16 + 1 + 11)

struct view {
    char key[ROW_KEY_LEN + 1]; /* "<execution_id>/<stage>/<xmin>", "" when free */
    char *text;                /* the record as the API shows it (malloc) */
    size_t len;
    int64_t made_ms;
};

static struct view views[VIEW_SLOTS];
static size_t views_bytes;
static pthread_mutex_t views_mu = PTHREAD_MUTEX_INITIALIZER;

/* The slot of a row, whatever its version: a hash of its key up to the xmin (FNV-1a). */
static struct view *view_slot(const char *key)
{
    const char *end = strrchr(key, '/');
    uint32_t h = tf_fnv1a32(TF_FNV1A32_INIT, key, end ? (size_t)(end - key) : 0);

    return &views[h % VIEW_SLOTS];
}

/*
 * Copies into *copy (text malloc'd) the kept view whose key is key, or,
 * with a key ending in '/' ("<execution_id>/<stage>/"), the kept view of
 * that row whatever its version. 0 when none (or out of memory).
 */
static int view_find(const char *key, struct view *copy)
{
    const struct view *v = view_slot(key);
    size_t n = strlen(key);
    int found;

    pthread_mutex_lock(&views_mu);
    found = n > 0 && v->text &&
            (key[n - 1] == '/' ? strncmp(v->key, key, n) : strcmp(v->key, key)) == 0 &&
            tf_time_mono_ms() - v->made_ms < VIEW_TTL_MS;
    if (found) {
        *copy = *v;
        copy->text = malloc(v->len + 1);
        found = copy->text != NULL;
        if (found)
            memcpy(copy->text, v->text, v->len + 1);
    }
    pthread_mutex_unlock(&views_mu);
    return found;
}

/* Keeps text as the view of row version key, within the bytes allowed. */
static void view_keep(const char *key, const char *text, size_t len)
{
    struct view *v = view_slot(key);
    char *copy = NULL;

    if (strlen(key) > ROW_KEY_LEN || len > VIEW_MAX_BYTES)
        return;
    copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&views_mu);
    if (views_bytes - v->len + len <= VIEW_BYTES) {
        views_bytes = views_bytes - v->len + len;
        free(v->text);
        snprintf(v->key, sizeof(v->key), "%s", key);
        v->text = copy;
        v->len = len;
        v->made_ms = tf_time_mono_ms();
        copy = NULL;
    }
    pthread_mutex_unlock(&views_mu);
    free(copy);
}

/*
 * The views a statement need not make: copies of kept ones, taken before
 * it runs (the shared slots may change meanwhile), and their keys as the
 * text[] literal it compares with.
 */
struct known {
    struct view *views;
    int n;
    struct tf_buf keys;
};

static enum tf_rc known_init(struct known *k, int max)
{
    k->n = 0;
    tf_buf_init(&k->keys, (size_t)max * (ROW_KEY_LEN + 3) + 3);
    k->views = calloc((size_t)(max > 0 ? max : 1), sizeof(*k->views));
    return k->views ? tf_buf_puts(&k->keys, "{") : TF_ERR_NOMEM;
}

/* Adds the kept view of key (see view_find), if there is one. */
static enum tf_rc known_add(struct known *k, const char *key)
{
    struct view *v = &k->views[k->n];

    if (!view_find(key, v))
        return TF_OK;
    k->n++;
    return tf_buf_printf(&k->keys, "%s\"%s\"", k->n > 1 ? "," : "", v->key);
}

/* The text[] literal of the keys, once they are all added; NULL when out of memory. */
static const char *known_keys(struct known *k)
{
    return tf_buf_puts(&k->keys, "}") == TF_OK ? k->keys.data : NULL;
}

static void known_cleanup(struct known *k)
{
    for (int i = 0; i < k->n; i++)
        free(k->views[i].text);
    free(k->views);
    tf_buf_cleanup(&k->keys);
}

/*
 * Appends row i of a VIEW_COLUMNS result to out: the view the statement
 * made (the record less its objects, then "objects_summary"), kept for the
 * next read, or the known one it was spared.
 */
static enum tf_rc append_view(PGresult *res, int i, const struct known *k, struct tf_buf *out)
{
    const char *key = PQgetvalue(res, i, 0);
    const char *json = PQgetvalue(res, i, 1);
    size_t len = strlen(json), start = out->len;
    struct tf_exec_summary sum;
    char id[TF_UUID_LEN + 1];
    enum tf_rc rc;
    int j;

    if (PQgetisnull(res, i, 1)) {
        /* Spared, so known: usually at the same place, the rows in the same order. */
        j = i < k->n && strcmp(k->views[i].key, key) == 0 ? i : 0;
        while (j < k->n && strcmp(k->views[j].key, key) != 0)
            j++;
        return j < k->n ? tf_buf_append(out, k->views[j].text, k->views[j].len) : TF_ERR_DB;
    }
    if (sscanf(PQgetvalue(res, i, 2), "%lld %lld %lld", &sum.count, &sum.bytes, &sum.records) != 3)
        return TF_ERR_DB;
    snprintf(id, sizeof(id), "%s", key);
    /* json_build_object's text ends with the object's closing brace. */
    if (len < 2 || json[len - 1] != '}')
        return TF_ERR_DB;
    rc = tf_buf_append(out, json, len - 1);
    if (rc == TF_OK)
        rc = tf_buf_printf(out,
                           ",\"objects_summary\":{\"count\":%lld,\"bytes\":%lld,\"records\":%lld,"
                           "\"href\":\"/v1/executions/%s/objects\"}}",
                           sum.count, sum.bytes, sum.records, id);
    if (rc == TF_OK)
        view_keep(key, out->data + start, out->len - start);
    return rc;
}

enum tf_rc tf_exec_view(PGconn *conn, const char *id, const char *stage, struct tf_buf *out)
{
    char row[ROW_KEY_LEN + 1];
    const char *params[2] = {id, stage};
    struct known k;
    PGresult *res = NULL;
    enum tf_rc rc;
    int kept = 0;

    /* The row's kept view, if any, is the record while its version is current. */
    snprintf(row, sizeof(row), "%s/%s/", id, stage);
    for (char *p = row; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    rc = known_init(&k, 1);
    if (rc == TF_OK)
        rc = known_add(&k, row);
    if (rc == TF_OK && k.n == 1) {
        res = run_hot(conn, HOT_KEY, params);
        if (!res)
            rc = TF_ERR_DB;
        else if (PQntuples(res) == 0)
            rc = TF_ERR_NOT_FOUND;
        else
            kept = strcmp(PQgetvalue(res, 0, 0), k.views[0].key) == 0;
        PQclear(res);
        res = NULL;
        if (kept)
            rc = tf_buf_append(out, k.views[0].text, k.views[0].len);
    }
    if (rc == TF_OK && !kept) {
        res = run_hot(conn, HOT_VIEW, params);
        rc = !res                  ? TF_ERR_DB
             : PQntuples(res) == 1 ? append_view(res, 0, &k, out)
                                   : TF_ERR_NOT_FOUND;
    }
    PQclear(res);
    known_cleanup(&k);
    return rc;
}

enum tf_rc tf_exec_list(PGconn *conn, const char *stage, const char *job, const char *status,
                        int limit, struct tf_buf *out)
{
    char lim[16];
    const char *params[5] = {stage, job, status, lim, NULL};
    struct known k;
    PGresult *res = NULL;
    enum tf_rc rc;

    snprintf(lim, sizeof(lim), "%d", limit);
    rc = known_init(&k, limit);
    /* First the versions listed, to spare the views kept; a row written in
     * between is another version, whose view the list then makes. */
    if (rc == TF_OK) {
        res = run_hot(conn, HOT_LIST_KEYS, params);
        rc = res ? TF_OK : TF_ERR_DB;
    }
    for (int i = 0; rc == TF_OK && i < PQntuples(res) && i < limit; i++)
        rc = known_add(&k, PQgetvalue(res, i, 0));
    PQclear(res);
    res = NULL;
    params[4] = rc == TF_OK ? known_keys(&k) : NULL;
    if (params[4]) {
        res = run_hot(conn, HOT_LIST, params);
        rc = res ? tf_buf_puts(out, "[") : TF_ERR_DB;
    } else if (rc == TF_OK) {
        rc = TF_ERR_NOMEM;
    }
    for (int i = 0; rc == TF_OK && i < PQntuples(res); i++) {
        if (i > 0)
            rc = tf_buf_puts(out, ",");
        if (rc == TF_OK)
            rc = append_view(res, i, &k, out);
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(out, "]");
    PQclear(res);
    known_cleanup(&k);
    return rc;
}

enum tf_rc tf_exec_objects(PGconn *conn, const char *id, const char *stage, const char *after,
                           int limit, cJSON **out, int *more)
{
    char lim[16];
    const char *params[4] = {id, stage, NULL, lim};
    char *cursor = NULL; /* after as a bytea literal: any bytes are a place in byte order */
    PGresult *res = NULL;
    cJSON *objects;
    enum tf_rc rc = TF_ERR_NOT_FOUND;

    *out = NULL;
    if (after) {
        size_t n = strlen(after);
        cursor = malloc(2 * n + 3);
        if (!cursor)
            return TF_ERR_NOMEM;
        memcpy(cursor, "\\x", 2);
        for (size_t i = 0; i < n; i++)
            snprintf(cursor + 2 + 2 * i, 3, "%02x", (unsigned char)after[i]);
        cursor[2 + 2 * n] = '\0';
        params[2] = cursor;
    }
    /* One more than the page, to know whether another follows. */
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    res = run_hot(conn, HOT_OBJECTS, params);
    free(cursor);
    if (!res)
        return TF_ERR_DB;
    if (PQntuples(res) == 1) {
        *out = cJSON_Parse(PQgetvalue(res, 0, 0));
        rc = *out ? TF_OK : TF_ERR_NOMEM;
    }
    PQclear(res);
    if (rc != TF_OK)
        return rc;
    objects = cJSON_GetObjectItemCaseSensitive(*out, "objects");
    *more = cJSON_GetArraySize(objects) > limit;
    if (*more)
        cJSON_DeleteItemFromArray(objects, limit);
    return TF_OK;
}

/* ---- statuses ---- */

static const char *const status_names[] = {
    [TF_EXEC_PENDING] = "PENDING", [TF_EXEC_RUNNING] = "RUNNING", [TF_EXEC_SUCCESS] = "SUCCESS",
    [TF_EXEC_FAILED] = "FAILED",   [TF_EXEC_ZOMBIE] = "ZOMBIE",
};

const char *tf_exec_status_str(enum tf_exec_status st)
{
    return (unsigned)st < TF_ARRAY_LEN(status_names) ? status_names[st] : "";
}

enum tf_exec_status tf_exec_status_parse(const char *s)
{
    for (size_t i = 0; s && i < TF_ARRAY_LEN(status_names); i++)
        if (strcmp(s, status_names[i]) == 0)
            return (enum tf_exec_status)i;
    return TF_EXEC_NO_STATUS;
}

enum tf_exec_status tf_exec_record_status(const cJSON *record)
{
    return tf_exec_status_parse(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "status")));
}

int tf_exec_status_final(enum tf_exec_status st)
{
    return st == TF_EXEC_SUCCESS || st == TF_EXEC_FAILED;
}

void tf_exec_ids_cleanup(struct tf_exec_ids *ids)
{
    free(ids->id);
    ids->id = NULL;
    ids->n = 0;
}

/* Copies column 0 of every row of res into *out. */
static enum tf_rc take_ids(PGresult *res, struct tf_exec_ids *out)
{
    int n = PQntuples(res);

    if (n == 0)
        return TF_OK;
    out->id = calloc((size_t)n, sizeof(*out->id));
    if (!out->id)
        return TF_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        snprintf(out->id[i], sizeof(out->id[i]), "%s", PQgetvalue(res, i, 0));
    out->n = n;
    return TF_OK;
}

/*
 * Runs a statement that returns one row when it applies: that row (*rc
 * TF_OK), else NULL with *rc TF_ERR_DB or none (no row).
 */
static PGresult *one_row(PGconn *conn, const char *sql, int n, const char *const *params,
                         enum tf_rc none, enum tf_rc *rc)
{
    PGresult *res = run(conn, sql, n, params);

    *rc = !res ? TF_ERR_DB : PQntuples(res) == 1 ? TF_OK : none;
    if (*rc != TF_OK) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Runs a statement returning execution ids in column 0 into *out. */
static enum tf_rc run_ids(PGconn *conn, const char *sql, int n, const char *const *params,
                          struct tf_exec_ids *out)
{
    PGresult *res = NULL;
    enum tf_rc rc;

    out->id = NULL;
    out->n = 0;
    res = run(conn, sql, n, params);
    if (!res)
        return TF_ERR_DB;
    rc = take_ids(res, out);
    PQclear(res);
    return rc;
}

/* run_ids() of a statement whose one parameter is the stage. */
static enum tf_rc stage_ids(PGconn *conn, const char *stage, const char *sql,
                            struct tf_exec_ids *out)
{
    const char *params[1] = {stage};

    return run_ids(conn, sql, 1, params, out);
}

/* run_ids() of a statement whose parameters are the stage and a number of seconds. */
static enum tf_rc stage_secs_ids(PGconn *conn, const char *stage, long secs, const char *sql,
                                 struct tf_exec_ids *out)
{
    char n[24];
    const char *params[2] = {stage, n};

    snprintf(n, sizeof(n), "%ld", secs);
    return run_ids(conn, sql, 2, params, out);
}

/*
 * Runs a compare-and-set on one row: TF_OK when it applied (a row changed
 * or was returned), refused when the row was not in the state it expects.
 */
static enum tf_rc cas(PGconn *conn, const char *sql, int n, const char *const *params,
                      enum tf_rc refused)
{
    PGresult *res = run(conn, sql, n, params);
    enum tf_rc rc;

    if (!res)
        return TF_ERR_DB;
    rc = PQntuples(res) == 1 || strcmp(PQcmdTuples(res), "1") == 0 ? TF_OK : refused;
    PQclear(res);
    return rc;
}

/* clang-format off */
/* The lease: the row is RUNNING with the holder's attempt. */
#define LEASE_WHERE                                                                            \
    " WHERE execution_id = $1 AND stage = $2 AND attempt = $3 AND status = 'RUNNING'"
/* An UPDATE that applies only under the lease ($1 id, $2 stage, $3 attempt). */
#define LEASED_UPDATE(set) "UPDATE tickflow.job_execution SET " set LEASE_WHERE
/* clang-format on */

#define LEASED_EXTRA_MAX 6

/*
 * The one lease-guarded statement runner: sql (LEASED_UPDATE or a SELECT
 * with LEASE_WHERE) with ($1 id, $2 stage, $3 attempt) and then the nextra
 * parameters of extra. TF_ERR_LEASE when the lease is gone.
 */
static enum tf_rc leased(PGconn *conn, const char *sql, const char *id, const char *stage,
                         int attempt, int nextra, const char *const *extra)
{
    char att[16];
    const char *params[3 + LEASED_EXTRA_MAX] = {id, stage, att};

    if (nextra > LEASED_EXTRA_MAX)
        return TF_ERR_INVALID;
    snprintf(att, sizeof(att), "%d", attempt);
    for (int i = 0; i < nextra; i++)
        params[3 + i] = extra[i];
    return cas(conn, sql, 3 + nextra, params, TF_ERR_LEASE);
}

/* ---- the moves ---- */

enum tf_rc tf_exec_claim(PGconn *conn, const char *id, const char *stage, const char *worker,
                         int *attempt)
{
    const char *params[3] = {id, stage, worker};
    enum tf_rc rc;
    PGresult *res = one_row(conn,
                            "UPDATE tickflow.job_execution SET status = 'RUNNING',"
                            " attempt = attempt + 1, worker_id = $3, error = NULL, detail = NULL,"
                            " started_at = now(), heartbeat_at = now(), updated_at = now()"
                            " WHERE execution_id = $1 AND stage = $2 AND (status = 'PENDING'"
                            " OR (status = 'ZOMBIE' AND attempt < max_attempts))"
                            " RETURNING attempt",
                            3, params, TF_ERR_CONFLICT, &rc);

    if (res)
        *attempt = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return rc;
}

enum tf_rc tf_exec_heartbeat(PGconn *conn, const char *id, const char *stage, int attempt)
{
    return leased(conn, LEASED_UPDATE("heartbeat_at = now()"), id, stage, attempt, 0, NULL);
}

enum tf_rc tf_exec_fence(PGconn *conn, const char *id, const char *stage, int attempt)
{
    return leased(conn, "SELECT 1 FROM tickflow.job_execution" LEASE_WHERE " FOR UPDATE", id, stage,
                  attempt, 0, NULL);
}

enum tf_rc tf_exec_note_upstream(PGconn *conn, const char *id, const char *stage, int attempt,
                                 int upstream_attempt)
{
    char up[16];
    const char *extra[1] = {up};

    snprintf(up, sizeof(up), "%d", upstream_attempt);
    return leased(conn, LEASED_UPDATE("upstream_attempt = $4"), id, stage, attempt, 1, extra);
}

enum tf_rc tf_exec_set_detail(PGconn *conn, const char *id, const char *stage, int attempt,
                              const char *detail)
{
    const char *extra[1] = {detail};

    return leased(conn, LEASED_UPDATE("detail = $4"), id, stage, attempt, 1, extra);
}

/* RUNNING -> status for the lease holder, with the run's report. */
static enum tf_rc settle(PGconn *conn, const char *id, const char *stage, int attempt,
                         enum tf_exec_status status, const struct tf_exec_result *r)
{
    char in[24], out[24], rej[24];
    char *objects = r->objects ? cJSON_PrintUnformatted(r->objects) : NULL;
    const char *extra[6];
    enum tf_rc rc;

    if (r->objects && !objects)
        return TF_ERR_NOMEM;
    snprintf(in, sizeof(in), "%lld", r->records_in);
    snprintf(out, sizeof(out), "%lld", r->records_out);
    snprintf(rej, sizeof(rej), "%lld", r->records_rejected);
    extra[0] = tf_exec_status_str(status);
    extra[1] = objects ? objects : "[]";
    extra[2] = in;
    extra[3] = out;
    extra[4] = rej;
    extra[5] = r->error;
    rc = leased(conn,
                LEASED_UPDATE("status = $4, objects = $5::jsonb, detail = NULL,"
                              " records_in = $6, records_out = $7, records_rejected = $8,"
                              " error = $9,"
                              /* Wall-clock time: a fenced stage finishes inside a
                               * transaction that began when it did, where now() is that
                               * beginning. */
                              " finished_at = clock_timestamp(), heartbeat_at = clock_timestamp(),"
                              " updated_at = clock_timestamp()"),
                id, stage, attempt, 6, extra);
    cJSON_free(objects);
    return rc;
}

enum tf_rc tf_exec_finish(PGconn *conn, const char *id, const char *stage, int attempt,
                          const struct tf_exec_result *res)
{
    return settle(conn, id, stage, attempt, TF_EXEC_SUCCESS, res);
}

enum tf_rc tf_exec_fail(PGconn *conn, const char *id, const char *stage, int attempt,
                        const struct tf_exec_result *res)
{
    return settle(conn, id, stage, attempt, TF_EXEC_FAILED, res);
}

enum tf_rc tf_exec_release(PGconn *conn, const char *id, const char *stage, int attempt)
{
    return leased(conn,
                  LEASED_UPDATE("status = 'PENDING', attempt = attempt - 1, worker_id = NULL,"
                                " updated_at = now()"),
                  id, stage, attempt, 0, NULL);
}

enum tf_rc tf_exec_zombie_stale(PGconn *conn, const char *stage, long timeout_s,
                                struct tf_exec_ids *out)
{
    return stage_secs_ids(conn, stage, timeout_s,
                          /* A fenced run's row is locked by its live transaction: skip it. */
                          "UPDATE tickflow.job_execution SET status = 'ZOMBIE', updated_at = now()"
                          " WHERE (execution_id, stage) IN (SELECT execution_id, stage"
                          "  FROM tickflow.job_execution WHERE stage = $1 AND status = 'RUNNING'"
                          "  AND heartbeat_at < now() - $2::int * interval '1 second'"
                          "  FOR UPDATE SKIP LOCKED)"
                          " AND status = 'RUNNING'"
                          " RETURNING execution_id",
                          out);
}

enum tf_rc tf_exec_zombie_worker(PGconn *conn, const char *stage, const char *worker_id,
                                 struct tf_exec_ids *out)
{
    const char *params[2] = {stage, worker_id};

    return run_ids(conn,
                   "UPDATE tickflow.job_execution SET status = 'ZOMBIE', updated_at = now()"
                   " WHERE (execution_id, stage) IN (SELECT execution_id, stage"
                   "  FROM tickflow.job_execution WHERE stage = $1 AND status = 'RUNNING'"
                   "  AND worker_id = $2 FOR UPDATE SKIP LOCKED)"
                   " AND status = 'RUNNING'"
                   " RETURNING execution_id",
                   2, params, out);
}

enum tf_rc tf_exec_zombie_exhausted(PGconn *conn, const char *stage, struct tf_exec_ids *out)
{
    return stage_ids(conn, stage,
                     "UPDATE tickflow.job_execution SET status = 'FAILED', finished_at = now(),"
                     " updated_at = now(), error = 'heartbeat lost on the last allowed attempt'"
                     " WHERE stage = $1 AND status = 'ZOMBIE' AND attempt >= max_attempts"
                     " RETURNING execution_id",
                     out);
}

enum tf_rc tf_exec_reopen(PGconn *conn, const char *id, const char *stage, int upstream_newer_than)
{
    char up[16];
    const char *params[3] = {id, stage, up};

    snprintf(up, sizeof(up), "%d", upstream_newer_than);
    return cas(conn,
               "UPDATE tickflow.job_execution SET status = 'PENDING',"
               " max_attempts = greatest(max_attempts, attempt + 1),"
               " event_published_at = NULL, updated_at = now()"
               " WHERE execution_id = $1 AND stage = $2"
               " AND status IN ('SUCCESS', 'FAILED')"
               " AND ($3::int = 0 OR coalesce(upstream_attempt, 1) < $3::int)",
               3, params, TF_ERR_CONFLICT);
}

enum tf_rc tf_exec_requeue(PGconn *conn, const char *id, const char *stage)
{
    const char *params[2] = {id, stage};

    return cas(conn,
               "UPDATE tickflow.job_execution SET status = 'PENDING',"
               " event_published_at = NULL, updated_at = now()"
               " WHERE execution_id = $1 AND stage = $2"
               " AND status = 'FAILED' AND attempt < max_attempts",
               2, params, TF_ERR_CONFLICT);
}

enum tf_rc tf_exec_add_objects(PGconn *conn, const char *id, const char *stage, int attempt,
                               const cJSON *objects)
{
    char att[16];
    char *text = cJSON_PrintUnformatted(objects);
    const char *params[4] = {id, stage, att, text};
    enum tf_rc rc;

    if (!text)
        return TF_ERR_NOMEM;
    snprintf(att, sizeof(att), "%d", attempt);
    rc = cas(conn,
             /* The follow-up is part of the stage's time. An object already
              * listed under the same uri is replaced. */
             "UPDATE tickflow.job_execution SET objects = coalesce((SELECT jsonb_agg(o)"
             "  FROM jsonb_array_elements(objects) o WHERE NOT EXISTS (SELECT 1"
             "  FROM jsonb_array_elements($4::jsonb) n WHERE n->>'uri' = o->>'uri')),"
             "  '[]'::jsonb) || $4::jsonb,"
             " finished_at = clock_timestamp(), updated_at = clock_timestamp()"
             " WHERE execution_id = $1 AND stage = $2 AND attempt = $3"
             " AND status = 'SUCCESS'",
             4, params, TF_ERR_CONFLICT);
    cJSON_free(text);
    return rc;
}

enum tf_rc tf_exec_touch_waiting(PGconn *conn, const char *stage, long after_s,
                                 struct tf_exec_ids *out)
{
    return stage_secs_ids(conn, stage, after_s,
                          /* Touching updated_at keeps each one out of the queue for after_s. */
                          "UPDATE tickflow.job_execution SET updated_at = now()"
                          " WHERE (execution_id, stage) IN (SELECT execution_id, stage"
                          "  FROM tickflow.job_execution WHERE stage = $1"
                          "  AND status IN ('PENDING', 'ZOMBIE')"
                          "  AND (backfill_id IS NULL OR released_at IS NOT NULL)"
                          "  AND updated_at < now() - $2::int * interval '1 second'"
                          "  ORDER BY updated_at LIMIT 100 FOR UPDATE SKIP LOCKED)"
                          " RETURNING execution_id",
                          out);
}

enum tf_rc tf_exec_unpublished(PGconn *conn, const char *stage, long after_s,
                               struct tf_exec_ids *out)
{
    return stage_secs_ids(conn, stage, after_s,
                          /* The claim keeps every other sweeper off it for after_s. */
                          "UPDATE tickflow.job_execution SET event_claimed_at = now()"
                          " WHERE (execution_id, stage) IN (SELECT execution_id, stage"
                          "  FROM tickflow.job_execution WHERE stage = $1"
                          "  AND status IN ('SUCCESS', 'FAILED') AND event_published_at IS NULL"
                          "  AND finished_at < now() - $2::int * interval '1 second'"
                          "  AND (event_claimed_at IS NULL"
                          "       OR event_claimed_at < now() - $2::int * interval '1 second')"
                          "  ORDER BY finished_at LIMIT 100 FOR UPDATE SKIP LOCKED)"
                          " RETURNING execution_id",
                          out);
}

enum tf_rc tf_exec_unclaim_event(PGconn *conn, const char *id, const char *stage)
{
    const char *params[2] = {id, stage};

    return cas(conn,
               "UPDATE tickflow.job_execution SET event_claimed_at = NULL"
               " WHERE execution_id = $1 AND stage = $2",
               2, params, TF_OK);
}

enum tf_rc tf_exec_consumed(PGconn *conn, const char *id, const char *stage,
                            enum tf_exec_status *status, int *upstream_attempt)
{
    const char *params[2] = {id, stage};
    enum tf_rc rc;
    PGresult *res = one_row(conn,
                            "SELECT status, coalesce(upstream_attempt, 1)"
                            " FROM tickflow.job_execution WHERE execution_id = $1 AND stage = $2",
                            2, params, TF_ERR_NOT_FOUND, &rc);

    if (res) {
        *status = tf_exec_status_parse(PQgetvalue(res, 0, 0));
        *upstream_attempt = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return rc;
}

/* ---- backfills: one extract record per day, released in order ---- */

enum tf_rc tf_exec_insert_days(PGconn *conn, const char *backfill_id, const char *job_name,
                               const struct tf_exec_window *days, int ndays)
{
    struct tf_buf starts, ends;
    const char *params[4];
    PGresult *res = NULL;
    enum tf_rc rc = TF_OK;

    /* Each day is a timestamp literal of at most 24 characters. */
    tf_buf_init(&starts, (size_t)(ndays > 0 ? ndays : 1) * 32 + 8);
    tf_buf_init(&ends, (size_t)(ndays > 0 ? ndays : 1) * 32 + 8);
    rc = tf_buf_puts(&starts, "{");
    if (rc == TF_OK)
        rc = tf_buf_puts(&ends, "{");
    for (int i = 0; rc == TF_OK && i < ndays; i++) {
        char ws[32], we[32];
        tf_time_format(days[i].start, ws, sizeof(ws));
        tf_time_format(days[i].end, we, sizeof(we));
        rc = tf_buf_printf(&starts, "%s%s", i ? "," : "", ws);
        if (rc == TF_OK)
            rc = tf_buf_printf(&ends, "%s%s", i ? "," : "", we);
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(&starts, "}");
    if (rc == TF_OK)
        rc = tf_buf_puts(&ends, "}");
    if (rc == TF_OK) {
        params[0] = backfill_id;
        params[1] = job_name;
        params[2] = starts.data;
        params[3] = ends.data;
        res = run(conn,
                  "INSERT INTO tickflow.job_execution (execution_id, stage, job_name, trigger,"
                  " window_start, window_end, tickers, max_attempts, backfill_id)"
                  /* A day's id is a function of (backfill, day): md5 as a UUID. */
                  " SELECT md5($1 || '/' || extract(epoch FROM d.ws)::bigint)::uuid,"
                  "  'extract', j.job_name, 'http', d.ws, d.we,"
                  "  j.tickers, j.max_attempts, $1::uuid"
                  " FROM tickflow.job_config j,"
                  "  unnest($3::timestamptz[], $4::timestamptz[]) AS d (ws, we)"
                  " WHERE j.job_name = $2",
                  4, params);
        if (!res)
            rc = TF_ERR_DB;
        else if (strtol(PQcmdTuples(res), NULL, 10) != ndays)
            rc = TF_ERR_NOT_FOUND; /* no such job */
        PQclear(res);
    }
    tf_buf_cleanup(&starts);
    tf_buf_cleanup(&ends);
    return rc;
}

enum tf_rc tf_exec_release_days(PGconn *conn, struct tf_exec_ids *out)
{
    return run_ids(
        conn,
        "WITH inflight AS (SELECT backfill_id, count(*) AS n FROM tickflow.job_execution"
        "  WHERE backfill_id IS NOT NULL AND stage = 'extract' AND released_at IS NOT NULL"
        "  AND status IN ('PENDING', 'RUNNING', 'ZOMBIE') GROUP BY backfill_id),"
        " next AS (SELECT e.execution_id, row_number() OVER (PARTITION BY e.backfill_id"
        "   ORDER BY e.window_start) AS rn, b.concurrency - coalesce(i.n, 0) AS room"
        "  FROM tickflow.job_execution e JOIN tickflow.backfill b USING (backfill_id)"
        "  LEFT JOIN inflight i USING (backfill_id)"
        "  WHERE e.stage = 'extract' AND e.released_at IS NULL)"
        " UPDATE tickflow.job_execution e SET released_at = now(), updated_at = now()"
        " FROM next WHERE e.execution_id = next.execution_id AND e.stage = 'extract'"
        " AND next.rn <= next.room RETURNING e.execution_id",
        0, NULL, out);
}

/* clang-format off */
#define EVENT_JSON                                                                             \
    "json_build_object('schema', 'tickflow.stage_event', 'version', 1,"                        \
    " 'execution_id', execution_id, 'job_name', job_name, 'stage', stage,"                     \
    " 'status', status, 'attempt', attempt,"                                                   \
    " 'window', json_build_object('start', " TSS("window_start") ","                           \
    "                             'end', " TSS("window_end") "),"                              \
    " 'tickers', tickers, 'objects', objects,"                                                 \
    " 'records', json_build_object('in', records_in, 'out', records_out,"                      \
    "                              'rejected', records_rejected),"                             \
    " 'error', error, 'produced_at', " TS("clock_timestamp()") ")::text"
/* clang-format on */

enum tf_rc tf_exec_event(PGconn *conn, const char *id, const char *stage, char **out)
{
    const char *params[2] = {id, stage};
    PGresult *res = run(conn,
                        "SELECT " EVENT_JSON " FROM tickflow.job_execution"
                        " WHERE execution_id = $1 AND stage = $2"
                        " AND status IN ('SUCCESS', 'FAILED')",
                        2, params);
    enum tf_rc rc = TF_ERR_NOT_FOUND;

    *out = NULL;
    if (!res)
        return TF_ERR_DB;
    if (PQntuples(res) == 1) {
        *out = strdup(PQgetvalue(res, 0, 0));
        rc = *out ? TF_OK : TF_ERR_NOMEM;
    }
    PQclear(res);
    return rc;
}

enum tf_rc tf_exec_mark_published(PGconn *conn, const char *id, const char *stage, int attempt,
                                  enum tf_exec_status status)
{
    char att[16];
    const char *params[4] = {id, stage, att, tf_exec_status_str(status)};
    enum tf_rc rc;

    snprintf(att, sizeof(att), "%d", attempt);
    rc = cas(conn,
             "UPDATE tickflow.job_execution SET event_published_at = now()"
             " WHERE execution_id = $1 AND stage = $2 AND attempt = $3 AND status = $4",
             4, params, TF_ERR_CONFLICT);

    /* A record that moved on is left alone: nothing to mark. */
    return rc == TF_ERR_CONFLICT ? TF_OK : rc;
}
