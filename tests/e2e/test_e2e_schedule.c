/*
 * test_e2e_schedule.c - the built-in schedule on the running stack with two
 * extract replicas on one database:
 *
 *   - bad schedules (a cron field out of range, six fields, every_seconds
 *     below the bar or above 31 days, a zone that does not exist, an
 *     unknown member) get a 400 that says what is wrong, and change
 *     nothing: a new job is not created, an existing one keeps its
 *     schedule and its next tick;
 *   - a PUT of the same schedule keeps the next tick; another moves it;
 *   - an every-minute job and a cron job (New York time) start one
 *     execution each at the next minute, within two seconds of it, on
 *     their incremental windows, however many replicas run; a disabled
 *     job never runs;
 *   - both replicas are stopped across the next tick; when the first is
 *     back, the missed tick starts at once, one execution per job,
 *     whose window reaches back to the end of the last one less the
 *     overlap; every scheduled execution reaches gold with no duplicate
 *     silver bar;
 *   - GET /v1/jobs/{job} and tickflowctl show the schedule and its next
 *     and last ticks;
 *   - the script of the Kubernetes CronJob (deploy/k8s/components/cronjob),
 *     run here with sh against extract with the API token on, starts one
 *     execution per CronJob run however often its pod retries, and a wrong
 *     token starts none.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "harness.h"
#include "tf/time.h"

#define API_KEY "sched-Key-71d3"
#define TOKEN   "sched-token-4f0b9a"
#define AUTH    "Authorization: Bearer " TOKEN
#define OVERLAP 120

static struct h_stack st;
static struct h_proc replica_b;

static const char *job_body(const char *ticker, const char *schedule, int enabled)
{
    static char body[1024];

    snprintf(body, sizeof(body),
             "{\"provider\":\"polygon\",\"tickers\":[\"%s\"],\"multiplier\":1,"
             "\"timespan\":\"minute\",\"interval_seconds\":600,\"overlap_seconds\":%d,"
             "\"enabled\":%s%s%s}",
             ticker, OVERLAP, enabled ? "true" : "false", schedule ? ",\"schedule\":" : "",
             schedule ? schedule : "");
    return body;
}

static long put_job(const char *job, const char *body, cJSON **answer)
{
    char path[128];
    long status = 0;
    cJSON *a;

    snprintf(path, sizeof(path), "/v1/jobs/%s", job);
    a = h_call("PUT", st.procs[H_EXTRACT].port, path, body, AUTH, &status);
    if (answer)
        *answer = a;
    else
        cJSON_Delete(a);
    return status;
}

static cJSON *get_job(const char *job)
{
    char path[128];
    long status = 0;
    cJSON *a;

    snprintf(path, sizeof(path), "/v1/jobs/%s", job);
    a = h_call("GET", st.procs[H_EXTRACT].port, path, NULL, NULL, &status);
    if (status != 200) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

static const char *state_str(const cJSON *job, const char *key)
{
    return h_jstr(cJSON_GetObjectItemCaseSensitive(job, "schedule_state"), key);
}

static char *next_at(const char *job)
{
    const char *params[1] = {job};

    return h_pg_value(st.db,
                      "SELECT coalesce(next_at::text, 'none') FROM tickflow.job_schedule"
                      " WHERE job_name = $1",
                      1, params);
}

static long long scheduled(const char *job)
{
    const char *params[1] = {job};

    return h_pg_ll(st.db,
                   "SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"
                   " AND stage = 'extract' AND trigger = 'schedule'",
                   1, params);
}

static void test_refused(void)
{
    static const struct {
        const char *schedule, *says;
    } bad[] = {
        {"{\"cron\":\"61 * * * *\"}", "cron field 1 (minute): 61 is outside 0-59"},
        {"{\"cron\":\"0 * * * * *\"}", "cron has more than five fields"},
        {"{\"cron\":\"* * * * BLUE\"}", "cron field 5 (day of week): cannot read BLUE"},
        {"{\"every_seconds\":30}", "every_seconds must be a whole number from 60"},
        {"{\"every_seconds\":2678401}", "to 2678400 (31 days, the longest window)"},
        {"{\"cron\":\"*/5 * * * *\",\"zone\":\"Europe/Atlantis\"}", "no time zone Europe/Atlantis"},
        {"{\"cron\":\"*/5 * * * *\",\"timezone\":\"UTC\"}", "unknown field timezone"},
        {"{\"every_seconds\":60,\"cron\":\"* * * * *\"}", "exactly one of every_seconds and cron"},
        {"\"hourly\"", "schedule must be an object"},
    };
    char *before, *after;
    cJSON *job;

    /* A new job with a bad schedule is not created. */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *answer = NULL;
        const char *msg;

        CHECK_EQ_INT(put_job("fresh", job_body("X:BTCUSD", bad[i].schedule, 1), &answer), 400);
        msg = h_jstr(cJSON_GetObjectItemCaseSensitive(answer, "error"), "message");
        CHECK(msg && strstr(msg, bad[i].says), "%s: %s (want: %s)", bad[i].schedule,
              msg ? msg : "(no message)", bad[i].says);
        cJSON_Delete(answer);
    }
    job = get_job("fresh");
    CHECK(job == NULL, "no job was created by a refused PUT");
    cJSON_Delete(job);

    /* An existing schedule keeps its spec and next tick through a refused PUT. */
    CHECK_EQ_INT(put_job("keep", job_body("X:BTCUSD", "{\"every_seconds\":3600}", 0), NULL), 201);
    before = next_at("keep");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(put_job("keep", job_body("X:ETHUSD", bad[i].schedule, 1), NULL), 400);
    after = next_at("keep");
    CHECK(before && after && strcmp(before, after) == 0, "next tick %s, then %s",
          before ? before : "?", after ? after : "?");
    job = get_job("keep");
    CHECK(job && h_jnum(cJSON_GetObjectItemCaseSensitive(job, "schedule"), "every_seconds") == 3600,
          "the schedule is still every 3600 s");
    CHECK(job && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(job, "enabled")),
          "the job is still disabled");
    cJSON_Delete(job);
    free(before);
    free(after);
}

static void test_put_keeps_tick(void)
{
    char *a, *b, *c;
    cJSON *job;

    CHECK_EQ_INT(put_job("moves", job_body("X:BTCUSD", "{\"every_seconds\":86400}", 0), NULL), 201);
    a = next_at("moves");
    CHECK_EQ_INT(put_job("moves", job_body("X:BTCUSD", "{\"every_seconds\":86400}", 0), NULL), 200);
    b = next_at("moves");
    CHECK(a && b && strcmp(a, b) == 0, "the same schedule keeps its tick: %s, %s", a ? a : "?",
          b ? b : "?");
    CHECK_EQ_INT(put_job("moves", job_body("X:BTCUSD", "{\"cron\":\"0 22 * * *\"}", 0), NULL), 200);
    c = next_at("moves");
    CHECK(c && h_pg_ll(st.db, "SELECT extract(hour FROM $1::timestamptz AT TIME ZONE 'UTC')", 1,
                       (const char *const[]){c}) == 22,
          "a new schedule moves the tick to 22:00 UTC: %s", c ? c : "?");
    /* Without a schedule, the row goes. */
    CHECK_EQ_INT(put_job("moves", job_body("X:BTCUSD", NULL, 0), NULL), 200);
    CHECK_EQ_INT(h_pg_ll(st.db,
                         "SELECT count(*) FROM tickflow.job_schedule WHERE job_name = 'moves'", 0,
                         NULL),
                 0);
    job = get_job("moves");
    CHECK(job && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(job, "schedule")) &&
              cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(job, "schedule_state")),
          "GET shows schedule and schedule_state null");
    cJSON_Delete(job);
    free(a);
    free(b);
    free(c);
}

/* Waits until job has n scheduled executions (or the deadline); returns how many it has. */
static long long wait_scheduled(const char *job, long long n, int seconds)
{
    double end = h_now_s() + h_timeout(seconds);
    long long have = scheduled(job);

    while (have < n && h_now_s() < end) {
        h_sleep_ms(100);
        have = scheduled(job);
    }
    return have;
}

/* what (an SQL expression) of the k-th (0-based) scheduled execution of job, as text. */
static char *kth(const char *job, int k, const char *what)
{
    char kth_s[16], sql[512];
    const char *params[2] = {job, kth_s};

    snprintf(kth_s, sizeof(kth_s), "%d", k);
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM tickflow.job_execution WHERE job_name = $1 AND stage = 'extract'"
             " AND trigger = 'schedule' ORDER BY created_at OFFSET $2::int LIMIT 1",
             what);
    return h_pg_value(st.db, sql, 2, params);
}

/* Seconds from the minute it falls in until the k-th scheduled execution of job was made. */
static double lateness(const char *job, int k, long long *tick)
{
    char *v = kth(job, k, "extract(epoch FROM created_at)::numeric(20,3)");
    double late;

    if (!v)
        return NAN;
    late = atof(v);
    free(v);
    *tick = (long long)floor(late / 60) * 60;
    return late - (double)*tick;
}

/* window_start and window_end (epoch) of the k-th scheduled execution of job. */
static int window_of(const char *job, int k, long long *ws, long long *we)
{
    char *v = kth(job, k,
                  "extract(epoch FROM window_start)::bigint || ' ' ||"
                  " extract(epoch FROM window_end)::bigint");
    int n = v ? sscanf(v, "%lld %lld", ws, we) : 0;

    free(v);
    return n == 2 ? 0 : -1;
}

static int start_replica_b(void)
{
    char name[16] = "extract-b";

    return h_start(&replica_b, name, st.bin[H_EXTRACT], replica_b.port, st.dir, st.env);
}

/* The stack's sessions waiting for a lock on tickflow.job_schedule. */
#define SCHEDULE_WAITERS                                                                           \
    " FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname ="                  \
    " current_database() AND l.relation = 'tickflow.job_schedule'::regclass AND NOT l.granted"

/*
 * Waits up to seconds until n schedulers (one session each) have each had a
 * round that read the schedule after this call began: holds
 * tickflow.job_schedule in EXCLUSIVE mode (reads go on; a round's SELECT ...
 * FOR UPDATE waits) until n sessions wait for it, lets them go, and waits
 * until each has ended its round's transaction. Returns 0 when it saw that.
 */
static int schedulers_had_a_round(int n, int seconds)
{
    PGconn *holder = PQconnectdb(st.dsn);
    double end = h_now_s() + h_timeout(seconds);
    char *pids = NULL, *let_go = NULL;
    long long done = -1;
    PGresult *res = PQexec(holder, "BEGIN; LOCK TABLE tickflow.job_schedule IN EXCLUSIVE MODE");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    PQclear(res);
    while (ok && h_pg_ll(st.db, "SELECT count(*)" SCHEDULE_WAITERS, 0, NULL) < n && h_now_s() < end)
        h_sleep_ms(50);
    if (ok) {
        pids = h_pg_value(st.db, "SELECT array_agg(l.pid)::text" SCHEDULE_WAITERS, 0, NULL);
        let_go = h_pg_value(holder, "SELECT clock_timestamp()::text", 0, NULL);
    }
    res = PQexec(holder, "COMMIT");
    PQclear(res);
    PQfinish(holder);
    if (pids && let_go) {
        const char *params[2] = {pids, let_go};

        /* Idle (out of a transaction) since they were let go: their rounds ended. */
        while ((done = h_pg_ll(st.db,
                               "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
                               " AND state = 'idle' AND state_change > $2::timestamptz",
                               2, params)) < n &&
               h_now_s() < end)
            h_sleep_ms(50);
    }
    if (done < n)
        printf("# schedulers waiting for the schedule: %s; rounds ended: %lld of %d\n",
               pids ? pids : "(none)", done, n);
    free(pids);
    free(let_go);
    return done >= n ? 0 : -1;
}

static void test_ticks(void)
{
    static const char *const jobs[2] = {"every_minute", "cron_new_york"};
    long long tick1 = 0, tick2, t = 0, ws = 0, we = 0, ws2 = 0, we2 = 0;
    double restarted;
    cJSON *job;

    /* Not in the last seconds of a minute, so that both jobs wait for the same tick. */
    while (tf_time_now() % 60 >= 55)
        h_sleep_ms(200);
    CHECK_EQ_INT(put_job(jobs[0], job_body("X:BTCUSD", "{\"every_seconds\":60}", 1), NULL), 201);
    CHECK_EQ_INT(
        put_job(jobs[1],
                job_body("X:ETHUSD", "{\"cron\":\"* * * * *\",\"zone\":\"America/New_York\"}", 1),
                NULL),
        201);
    CHECK_EQ_INT(put_job("switched_off", job_body("X:SOLUSD", "{\"every_seconds\":60}", 0), NULL),
                 201);

    /* The next minute: one execution each, within two seconds of it. */
    for (int j = 0; j < 2; j++) {
        double late;

        CHECK_EQ_INT(wait_scheduled(jobs[j], 1, 75), 1);
        late = lateness(jobs[j], 0, &t);
        CHECK(late >= 0 && late <= 2.0, "%s started %.3f s after its tick", jobs[j], late);
        if (j == 0)
            tick1 = t;
        CHECK(t == tick1, "both jobs took the same tick (%lld, %lld)", tick1, t);
        CHECK(window_of(jobs[j], 0, &ws, &we) == 0 && we == tick1 && ws == tick1 - 600,
              "%s: the first window is the job's interval up to the tick: %lld-%lld", jobs[j], ws,
              we);
    }
    job = get_job(jobs[0]);
    CHECK(job && h_jnum(cJSON_GetObjectItemCaseSensitive(job, "schedule"), "every_seconds") == 60,
          "GET shows the schedule");
    {
        char want_last[32], want_next[32];

        tf_time_format(tick1, want_last, sizeof(want_last));
        tf_time_format(tick1 + 60, want_next, sizeof(want_next));
        CHECK(job && state_str(job, "last_at") && strcmp(state_str(job, "last_at"), want_last) == 0,
              "last_at %s, want %s", job ? state_str(job, "last_at") : "?", want_last);
        CHECK(job && state_str(job, "next_at") && strcmp(state_str(job, "next_at"), want_next) == 0,
              "next_at %s, want %s", job ? state_str(job, "next_at") : "?", want_next);
        CHECK(job && state_str(job, "last_outcome") &&
                  strcmp(state_str(job, "last_outcome"), "started") == 0,
              "last_outcome %s", job ? state_str(job, "last_outcome") : "?");
    }
    cJSON_Delete(job);

    /* Each first run's extract done (a run in flight would hold the next tick back). */
    for (int j = 0; j < 2; j++) {
        char *id = kth(jobs[j], 0, "execution_id::text");
        cJSON *rec = id ? h_wait_stage(&st, st.procs[H_EXTRACT].port, id, 30) : NULL;

        CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "%s: first extract %s", jobs[j],
              rec ? h_jstr(rec, "status") : "(none)");
        cJSON_Delete(rec);
        free(id);
    }

    /* Both replicas down across the next tick, up again after it. */
    CHECK_EQ_INT(h_stop(&st.procs[H_EXTRACT]), 0);
    CHECK_EQ_INT(h_stop(&replica_b), 0);
    tick2 = tick1 + 60;
    CHECK((double)tf_time_now() < (double)tick2, "stopped before the next tick");
    while (tf_time_now() < tick2 + 1)
        h_sleep_ms(100);
    CHECK_EQ_INT(scheduled(jobs[0]), 1);
    CHECK_EQ_INT(h_stack_restart(&st, H_EXTRACT), 0);
    restarted = h_now_s();
    for (int j = 0; j < 2; j++) {
        CHECK_EQ_INT(wait_scheduled(jobs[j], 2, 10), 2);
        CHECK(h_now_s() - restarted < 2.0,
              "%s: the missed tick started %.1f s after the first replica was back", jobs[j],
              h_now_s() - restarted);
        CHECK(window_of(jobs[j], 0, &ws, &we) == 0 && window_of(jobs[j], 1, &ws2, &we2) == 0,
              "%s: two windows", jobs[j]);
        CHECK(ws2 == we - OVERLAP && we2 >= tick2,
              "%s: caught up in one window %lld-%lld (want %lld-)", jobs[j], ws2, we2,
              we - OVERLAP);
    }
    /* The second replica back too: nothing more until the tick after, though both
     * replicas' schedulers have looked since. */
    CHECK_EQ_INT(start_replica_b(), 0);
    CHECK(schedulers_had_a_round(2, 30) == 0, "both replicas' schedulers had a round");
    CHECK((double)tf_time_now() < (double)tick2 + 60, "before the tick after");
    CHECK_EQ_INT(scheduled(jobs[0]), 2);
    CHECK_EQ_INT(scheduled(jobs[1]), 2);
    CHECK_EQ_INT(scheduled("switched_off"), 0);
    CHECK_EQ_INT(h_pg_ll(st.db,
                         "SELECT count(*) FROM (SELECT job_name, date_trunc('minute', created_at)"
                         " FROM tickflow.job_execution WHERE stage = 'extract' AND trigger ="
                         " 'schedule' GROUP BY 1, 2 HAVING count(*) > 1) d",
                         0, NULL),
                 0);
    CHECK_EQ_INT(h_file_count(st.procs[H_EXTRACT].log, "schedule: job every_minute, tick") +
                     h_file_count(replica_b.log, "schedule: job every_minute, tick"),
                 2);
    /* tickflowctl shows the schedule and the next tick. */
    {
        const char *bin = getenv("TF_BIN_DIR") ? getenv("TF_BIN_DIR") : "build/bin";
        char cmd[1024], line[512], want[64];
        int seen = 0;
        FILE *p;

        tf_time_format(tick2 + 60, want, sizeof(want));
        snprintf(cmd, sizeof(cmd), "%s/tickflowctl --extract http://127.0.0.1:%d jobs list", bin,
                 st.procs[H_EXTRACT].port);
        p = popen(cmd, "r");
        while (p && fgets(line, sizeof(line), p))
            seen += strncmp(line, "every_minute ", 13) == 0 && strstr(line, " every 60s ") &&
                    strstr(line, want);
        CHECK(p && pclose(p) == 0, "tickflowctl jobs list");
        CHECK_EQ_INT(seen, 1);
    }
    job = get_job("switched_off");
    CHECK(job && state_str(job, "next_at") && !state_str(job, "last_at"),
          "a disabled job has a next tick and no last one");
    cJSON_Delete(job);

    /* Every scheduled execution reaches gold, with each bar once in silver. */
    {
        PGresult *res = PQexec(st.db, "SELECT execution_id FROM tickflow.job_execution"
                                      " WHERE stage = 'extract' AND trigger = 'schedule'");

        CHECK_EQ_INT(PQntuples(res), 4);
        for (int i = 0; i < PQntuples(res); i++) {
            cJSON *rec = h_wait_stage(&st, st.procs[H_AGGREGATE].port, PQgetvalue(res, i, 0), 60);

            CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "%s: aggregate %s",
                  PQgetvalue(res, i, 0), rec ? h_jstr(rec, "status") : "(none)");
            cJSON_Delete(rec);
        }
        PQclear(res);
    }
    CHECK_EQ_INT(
        h_pg_ll(st.db, "SELECT count(*) - count(DISTINCT (ticker, timespan, ts)) FROM silver.bars",
                0, NULL),
        0);
    {
        char lo[24], hi[24];

        snprintf(lo, sizeof(lo), "%lld", tick1 - 600);
        snprintf(hi, sizeof(hi), "%lld", we2);
        CHECK_EQ_INT(
            h_pg_ll(st.db,
                    "SELECT count(*) FROM silver.bars WHERE ticker = 'X:BTCUSD'"
                    " AND ts >= to_timestamp($1::bigint) AND ts < to_timestamp($2::bigint)",
                    2, (const char *const[]){lo, hi}),
            (we2 - (tick1 - 600)) / 60);
    }
}

/* Runs the CronJob's script (args[0] of its container) with env; its exit status. */
static int run_trigger(const char *script, const char *env)
{
    char cmd[2048];
    int status;

    snprintf(cmd, sizeof(cmd), "env %s sh %s >>%s/trigger.log 2>&1", env, script, st.dir);
    status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cronjob(void)
{
    char script[700], token[700], bad[700], cmd[2048], env[2048];
    FILE *f;
    const char *job = "cron_triggered";
    char *id;

    snprintf(script, sizeof(script), "%s/trigger.sh", st.dir);
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import sys, yaml\n"
             "for d in yaml.safe_load_all(open(sys.argv[1])):\n"
             "    if d and d[\"kind\"] == \"CronJob\":\n"
             "        print(d[\"spec\"][\"jobTemplate\"][\"spec\"][\"template\"][\"spec\"]"
             "[\"containers\"][0][\"args\"][0])' deploy/k8s/components/cronjob/cronjob.yaml > %s",
             script);
    CHECK(system(cmd) == 0, "the CronJob's script read from its manifest");
    snprintf(token, sizeof(token), "%s/api-token", st.dir);
    snprintf(bad, sizeof(bad), "%s/wrong-token", st.dir);
    f = fopen(token, "w");
    if (f) {
        fputs(TOKEN, f);
        fclose(f);
    }
    f = fopen(bad, "w");
    if (f) {
        fputs("not-the-token", f);
        fclose(f);
    }
    CHECK_EQ_INT(put_job(job, job_body("X:BTCUSD", NULL, 1), NULL), 201);

    /* One CronJob run whose pod ran twice (a retry): one execution. */
    snprintf(env, sizeof(env),
             "PIPELINE_JOB=%s EXTRACT_URL=http://127.0.0.1:%d TOKEN_FILE=%s"
             " RUN_NAME=trigger-29412345 RUN_NAMESPACE=tickflow",
             job, st.procs[H_EXTRACT].port, token);
    CHECK_EQ_INT(run_trigger(script, env), 0);
    CHECK_EQ_INT(run_trigger(script, env), 0);
    CHECK_EQ_INT(h_pg_ll(st.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"
                         " AND stage = 'extract'",
                         1, (const char *const[]){job}),
                 1);
    id = h_pg_value(st.db, "SELECT execution_id FROM tickflow.job_execution WHERE job_name = $1", 1,
                    (const char *const[]){job});
    CHECK(id && h_file_contains(st.procs[H_EXTRACT].log, id) &&
              h_file_count(st.procs[H_EXTRACT].log, TOKEN) == 0,
          "extract logged the execution %s and never the token", id ? id : "?");
    if (id) {
        cJSON *rec = h_wait_stage(&st, st.procs[H_AGGREGATE].port, id, 60);

        CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "the triggered run: %s",
              rec ? h_jstr(rec, "status") : "(none)");
        cJSON_Delete(rec);
    }
    free(id);
    {
        char logpath[700];

        snprintf(logpath, sizeof(logpath), "%s/trigger.log", st.dir);
        CHECK_EQ_INT(h_file_count(logpath, TOKEN), 0);
    }

    /* A wrong token: the script fails and starts nothing. */
    snprintf(env, sizeof(env),
             "PIPELINE_JOB=%s EXTRACT_URL=http://127.0.0.1:%d TOKEN_FILE=%s"
             " RUN_NAME=trigger-29412346 RUN_NAMESPACE=tickflow",
             job, st.procs[H_EXTRACT].port, bad);
    CHECK(run_trigger(script, env) != 0, "a wrong token fails the CronJob's run");
    CHECK_EQ_INT(h_pg_ll(st.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"
                         " AND stage = 'extract'",
                         1, (const char *const[]){job}),
                 1);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const char *const env[] = {"TICKFLOW_API_TOKEN=" TOKEN, NULL};

    if (h_stack_start(&st, "sched", API_KEY, 41, env) != 0) {
        CHECK(0, "the stack did not start (see %s)", st.dir);
        return check_summary();
    }
    replica_b.port = h_free_port();
    CHECK_EQ_INT(start_replica_b(), 0);
    test_refused();
    test_put_keeps_tick();
    test_ticks();
    test_cronjob();
    h_stop(&replica_b);
    CHECK_EQ_INT(h_stack_stop(&st), 0);
    return check_summary();
}
