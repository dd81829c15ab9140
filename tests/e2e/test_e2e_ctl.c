/*
 * test_e2e_ctl.c - tickflowctl end to end: the binary from TF_BIN_DIR
 * against the native services on the real PostgreSQL and Kafka, with the
 * API token on:
 *
 *   - --help on every command; every class of failure has its exit code
 *     and one line on stderr: bad input (usage, bad dates, a 4xx), unknown
 *     ids (404), an unreachable service (a closed port, one that never
 *     answers: no hang), a run that failed;
 *   - jobs list|get|put, with the token from the environment or a file,
 *     and a 401 without it;
 *   - run --wait piped: plain lines, one per change, the counts the
 *     database holds; status, executions, quality and gaps with --json
 *     checked against the database; replay --wait; the live lines on a
 *     terminal are redrawn;
 *   - a backfill interrupted with SIGINT mid-way goes on, backfill watch
 *     follows it to the end, and the same backfill command again creates
 *     no execution twice.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/buf.h"

#define API_KEY   "ctl-Key-5d21a0"
#define TOKEN     "ctl-token-8f3e1c"
#define SEED      11
#define DEMO      "demo_us_equities"
#define FAIL_JOB  "e2e_ctl_fail"
#define BF_JOB    "e2e_ctl_bf"
#define NO_SUCH   "0b9e7f52-3c1d-4e0a-9d7b-5a6c1e2f3a4b"
#define OUT_LIMIT (4u << 20)

static struct h_stack stack;
static char ctl_bin[700];
static char ctl_log[700];

/* A tickflowctl process: its output so far, and how it ended. */
struct ctl_proc {
    pid_t pid;
    int fd_out, fd_err;
    struct tf_buf out, err;
    int code; /* exit code; -1 while it runs or when it was killed */
};

/*
 * Starts tickflowctl with args (NULL-terminated); env holds changes to the
 * environment ("NAME=value" sets, "NAME" removes; NULL-terminated, may be
 * NULL). With tty, stdout is a pseudo-terminal. Returns 0 when it started.
 */
static int ctl_spawn(struct ctl_proc *p, const char *const *args, const char *const *env, int tty)
{
    int out[2] = {-1, -1}, err[2];
    const char *argv[32];
    int n = 0;

    memset(p, 0, sizeof(*p));
    p->code = -1;
    tf_buf_init(&p->out, OUT_LIMIT);
    tf_buf_init(&p->err, OUT_LIMIT);
    argv[n++] = ctl_bin;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (tty) {
        out[0] = posix_openpt(O_RDWR | O_NOCTTY);
        if (out[0] < 0 || grantpt(out[0]) != 0 || unlockpt(out[0]) != 0)
            return -1;
        out[1] = open(ptsname(out[0]), O_RDWR | O_NOCTTY);
    } else if (pipe(out) != 0) {
        return -1;
    }
    if (out[1] < 0 || pipe(err) != 0)
        return -1;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]);
        close(err[0]);
        for (int i = 0; env && env[i]; i++) {
            if (strchr(env[i], '='))
                putenv((char *)env[i]);
            else
                unsetenv(env[i]);
        }
        execv(ctl_bin, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    p->fd_out = out[0];
    p->fd_err = err[0];
    return p->pid > 0 ? 0 : -1;
}

/* Reads what the process wrote for up to ms; returns 1 once both outputs are closed. */
static int ctl_pump(struct ctl_proc *p, int ms)
{
    struct pollfd fds[2] = {{p->fd_out, POLLIN, 0}, {p->fd_err, POLLIN, 0}};
    struct tf_buf *bufs[2] = {&p->out, &p->err};
    char chunk[4096];

    if (p->fd_out < 0 && p->fd_err < 0)
        return 1;
    if (poll(fds, 2, ms) <= 0)
        return 0;
    for (int i = 0; i < 2; i++) {
        ssize_t n;
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = read(fds[i].fd, chunk, sizeof(chunk));
        if (n > 0) {
            if (tf_buf_append(bufs[i], chunk, (size_t)n) != TF_OK)
                n = 0;
        }
        if (n <= 0) { /* EOF (a pty answers EIO once the child is gone) */
            close(fds[i].fd);
            if (i == 0)
                p->fd_out = -1;
            else
                p->fd_err = -1;
        }
    }
    return p->fd_out < 0 && p->fd_err < 0;
}

/* Waits up to seconds for the process to end (then kills it); returns its exit code. */
static int ctl_finish(struct ctl_proc *p, int seconds)
{
    double deadline = h_now_s() + h_timeout(seconds);
    int status = 0;
    FILE *log;

    while (!ctl_pump(p, 100) && h_now_s() < deadline)
        ;
    if (waitpid(p->pid, &status, WNOHANG) == 0) {
        while (h_now_s() < deadline && waitpid(p->pid, &status, WNOHANG) == 0)
            h_sleep_ms(20);
        if (waitpid(p->pid, &status, WNOHANG) == 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            check_fail(__FILE__, __LINE__, "tickflowctl still ran after %d s: killed", seconds);
            status = -1;
        }
    }
    ctl_pump(p, 0);
    if (p->fd_out >= 0)
        close(p->fd_out);
    if (p->fd_err >= 0)
        close(p->fd_err);
    p->fd_out = p->fd_err = -1;
    p->code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    /* NUL-terminated for the checks; stderr kept in a log the suite scans. */
    if (tf_buf_append(&p->out, "", 1) != TF_OK || tf_buf_append(&p->err, "", 1) != TF_OK)
        p->code = -1;
    log = fopen(ctl_log, "a");
    if (log) {
        fputs(p->err.data, log);
        fclose(log);
    }
    return p->code;
}

static void ctl_cleanup(struct ctl_proc *p)
{
    tf_buf_cleanup(&p->out);
    tf_buf_cleanup(&p->err);
}

/* Runs tickflowctl to its end (30 s at most); its output in *p (ctl_cleanup it). */
static int ctl_env(struct ctl_proc *p, const char *const *env, const char *const *args)
{
    if (ctl_spawn(p, args, env, 0) != 0) {
        check_fail(__FILE__, __LINE__, "cannot start %s", ctl_bin);
        return -1;
    }
    return ctl_finish(p, 30);
}

#define CTL(p, ...) ctl_env((p), NULL, (const char *const[]){__VA_ARGS__, NULL})

/* stdout parsed as one JSON document (caller deletes), NULL (a failed check) when it is not. */
static cJSON *ctl_json(const struct ctl_proc *p)
{
    cJSON *doc = cJSON_Parse(p->out.data);

    CHECK(doc != NULL, "stdout is not one JSON document: %.300s", p->out.data);
    return doc;
}

/* Lines of s that start with prefix. */
static int count_lines(const char *s, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);

    for (const char *line = s; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        n += strncmp(line, prefix, len) == 0;
    return n;
}

/* The last line of s that starts with prefix, as a new string (free it); NULL when none. */
static char *last_line(const char *s, const char *prefix)
{
    const char *found = NULL;
    size_t len = strlen(prefix);

    for (const char *line = s; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, prefix, len) == 0)
            found = line;
    return found ? strndup(found, strcspn(found, "\n")) : NULL;
}

static long long db_ll(const char *sql, const char *a, const char *b)
{
    const char *params[2] = {a, b};

    return h_pg_ll(stack.db, sql, b ? 2 : a ? 1 : 0, params);
}

/* The one line tickflowctl wrote on stderr holds needle. */
static void check_one_error_line(const struct ctl_proc *p, const char *needle)
{
    const char *nl = strchr(p->err.data, '\n');

    CHECK(strncmp(p->err.data, "tickflowctl: ", 13) == 0 && nl && nl[1] == '\0',
          "stderr is not one \"tickflowctl: \" line: \"%s\"", p->err.data);
    CHECK(strstr(p->err.data, needle) != NULL, "stderr \"%s\" does not say \"%s\"", p->err.data,
          needle);
}

static void test_help(void)
{
    static const char *const cmds[] = {"run",  "backfill", "status",  "executions",
                                       "jobs", "gaps",     "quality", "replay"};
    struct ctl_proc p;

    CHECK_EQ_INT(CTL(&p, "--help"), 0);
    CHECK(strstr(p.out.data, "exit codes:") &&
              strstr(p.out.data, "  4    a service is unreachable"),
          "tickflowctl --help lists no exit codes: %.200s", p.out.data);
    ctl_cleanup(&p);
    for (size_t i = 0; i < TF_ARRAY_LEN(cmds); i++) {
        char want[64];
        snprintf(want, sizeof(want), "usage: tickflowctl %s", cmds[i]);
        CHECK_EQ_INT(CTL(&p, cmds[i], "--help"), 0);
        CHECK(strncmp(p.out.data, want, strlen(want)) == 0, "%s --help: \"%.80s\"", cmds[i],
              p.out.data);
        ctl_cleanup(&p);
    }
    CHECK_EQ_INT(CTL(&p, "jobs", "--help"), 0);
    CHECK(strstr(p.out.data, "no DELETE") != NULL, "jobs --help does not say there is no delete");
    ctl_cleanup(&p);
    /* No command: the help on stderr, exit 2. */
    CHECK_EQ_INT(CTL(&p, "--json"), 2);
    CHECK(strstr(p.err.data, "usage: tickflowctl") != NULL, "no usage on stderr");
    ctl_cleanup(&p);
}

static void test_bad_input(void)
{
    static const struct {
        const char *args[10];
        const char *says;
    } cases[] = {
        {{"bogus"}, "unknown command bogus"},
        {{"run", DEMO, "--from", "2024-13-01", "--to", "2024-03-05"}, "--from 2024-13-01"},
        {{"run", DEMO, "--from", "2024-03-04"}, "go together"},
        {{"run", DEMO, "--from", "2024-03-05T00:00:00Z", "--to", "2024-03-04T00:00:00Z"},
         "400"}, /* the API's refusal */
        {{"backfill", DEMO, "--from", "2099-01-01", "--to", "2099-01-02"}, "400"},
        {{"backfill", DEMO, "--from", "2024-03-04T10:00:00Z", "--to", "2024-03-05"}, "day such as"},
        {{"backfill", DEMO, "--from", "2024-03-05", "--to", "2024-03-04"}, "to must not be before"},
        {{"backfill", DEMO, "--from", "2024-03-04", "--to", "2024-03-05", "--concurrency", "99"},
         "--concurrency"},
        {{"backfill", "watch", "nope"}, "not a backfill id"},
        {{"gaps", DEMO, "--from", "yesterday", "--to", "2024-03-05"}, "--from yesterday"},
        {{"gaps", DEMO, "--from", "2024-03-04"}, "--to is required"},
        {{"status", "not-a-uuid"}, "not an execution id"},
        {{"status", NO_SUCH, "--concurrency", "2"}, "status takes no --concurrency"},
        {{"executions", "--status", "DONE"}, "--status"},
        {{"executions", "--limit", "0"}, "--limit"},
        {{"jobs", "delete", DEMO}, "no DELETE"},
        {{"jobs", "put", DEMO}, "usage"},
        {{"replay", NO_SUCH, "--stage", "extract"}, "extract is not replayed"},
        {{"quality", NO_SUCH, "--wait"}, "unknown option --wait"},
        {{"--timeout", "0", "jobs", "list"}, "--timeout"},
        {{"--extract", "localhost:8081", "jobs", "list"}, "http://"},
        {{"--token-file", "/nonexistent/token", "jobs", "list"}, "token file"},
    };

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        struct ctl_proc p;
        int code = ctl_env(&p, NULL, cases[i].args);

        CHECK(code == 2, "case %zu (%s %s): exit %d, want 2; stderr %s", i, cases[i].args[0],
              cases[i].args[1] ? cases[i].args[1] : "", code, p.err.data);
        check_one_error_line(&p, cases[i].says);
        CHECK(p.out.len <= 1, "case %zu wrote on stdout: %s", i, p.out.data);
        ctl_cleanup(&p);
    }
}

static void test_jobs(void)
{
    char file[800], tokfile[800];
    struct ctl_proc p;
    cJSON *doc;
    FILE *f;
    const cJSON *job;
    int seen = 0;

    CHECK_EQ_INT(CTL(&p, "jobs", "list", "--json"), 0);
    doc = ctl_json(&p);
    cJSON_ArrayForEach(job, cJSON_GetObjectItem(doc, "jobs")) seen +=
        h_jstr(job, "job_name") && strcmp(h_jstr(job, "job_name"), DEMO) == 0;
    CHECK_EQ_INT(seen, 1);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "jobs")),
                 db_ll("SELECT count(*) FROM tickflow.job_config", NULL, NULL));
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "jobs", "list"), 0);
    CHECK(count_lines(p.out.data, DEMO " ") == 1, "jobs list: %s", p.out.data);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "jobs", "get", DEMO, "--json"), 0);
    doc = ctl_json(&p);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "tickers")),
                 db_ll("SELECT cardinality(tickers) FROM tickflow.job_config WHERE job_name = $1",
                       DEMO, NULL));
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "jobs", "get", "no_such_job"), 3);
    check_one_error_line(&p, "404");
    ctl_cleanup(&p);

    /* put: created, then replaced; a bad file or configuration is exit 2. */
    snprintf(file, sizeof(file), "%s/bf_job.json", stack.dir);
    f = fopen(file, "w");
    fputs("{\"provider\":\"polygon\",\"tickers\":[\"MSFT\"],\"interval_seconds\":86400,"
          "\"overlap_seconds\":0}\n",
          f ? f : stderr);
    if (f)
        fclose(f);
    CHECK_EQ_INT(CTL(&p, "jobs", "put", BF_JOB, file), 0);
    CHECK(strstr(p.out.data, "job " BF_JOB " created") != NULL, "put: %s", p.out.data);
    ctl_cleanup(&p);
    CHECK_EQ_INT(db_ll("SELECT count(*) FROM tickflow.job_config WHERE job_name = $1"
                       " AND tickers = '{MSFT}'",
                       BF_JOB, NULL),
                 1);
    CHECK_EQ_INT(CTL(&p, "jobs", "put", BF_JOB, file, "--json"), 0);
    doc = ctl_json(&p);
    CHECK_STR(h_jstr(doc, "job_name"), BF_JOB);
    CHECK_STR(h_jstr(doc, "updated_by"), "tickflowctl");
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "jobs", "put", BF_JOB, ctl_log), 2);
    check_one_error_line(&p, "not a JSON object");
    ctl_cleanup(&p);

    /* Without the token a PUT is refused (401: exit 2); from a file it goes. */
    CHECK_EQ_INT(ctl_env(&p, (const char *const[]){"TICKFLOW_API_TOKEN", NULL},
                         (const char *const[]){"jobs", "put", BF_JOB, file, NULL}),
                 2);
    check_one_error_line(&p, "401");
    CHECK(strstr(p.err.data, "TICKFLOW_API_TOKEN") != NULL, "no hint at the token: %s", p.err.data);
    ctl_cleanup(&p);
    snprintf(tokfile, sizeof(tokfile), "%s/token", stack.dir);
    f = fopen(tokfile, "w");
    fputs(TOKEN "\n", f ? f : stderr);
    if (f)
        fclose(f);
    CHECK_EQ_INT(
        ctl_env(&p, (const char *const[]){"TICKFLOW_API_TOKEN", NULL},
                (const char *const[]){"--token-file", tokfile, "jobs", "put", BF_JOB, file, NULL}),
        0);
    CHECK(strstr(p.out.data, "replaced") != NULL, "put with --token-file: %s", p.out.data);
    ctl_cleanup(&p);
    {
        char env_file[900];
        snprintf(env_file, sizeof(env_file), "TICKFLOW_API_TOKEN_FILE=%s", tokfile);
        CHECK_EQ_INT(ctl_env(&p, (const char *const[]){"TICKFLOW_API_TOKEN", env_file, NULL},
                             (const char *const[]){"jobs", "put", BF_JOB, file, NULL}),
                     0);
        ctl_cleanup(&p);
    }
    f = fopen(file, "w");
    fputs("{\"provider\":\"yahoo\",\"tickers\":[\"MSFT\"]}", f ? f : stderr);
    if (f)
        fclose(f);
    CHECK_EQ_INT(CTL(&p, "jobs", "put", BF_JOB, file), 2);
    check_one_error_line(&p, "provider");
    ctl_cleanup(&p);
    CHECK_EQ_INT(db_ll("SELECT count(*) FROM tickflow.job_config WHERE job_name = $1"
                       " AND provider = 'polygon'",
                       BF_JOB, NULL),
                 1);
}

/* The records_in and records_out a "<stage>  SUCCESS  in N  out M" line shows. */
static void check_stage_line(const char *out, const char *id, const char *stage)
{
    char prefix[32];
    char *line;
    long long in = -1, got_out = -1;

    snprintf(prefix, sizeof(prefix), "%-9s  SUCCESS", stage);
    line = last_line(out, prefix);
    CHECK(line != NULL, "no \"%s\" line in: %s", prefix, out);
    if (line)
        CHECK(sscanf(line + strlen(prefix), "  in %lld  out %lld", &in, &got_out) == 2,
              "line \"%s\"", line);
    CHECK_EQ_INT(in, db_ll("SELECT records_in FROM tickflow.job_execution WHERE execution_id = "
                           "$1 AND stage = $2",
                           id, stage));
    CHECK_EQ_INT(got_out, db_ll("SELECT records_out FROM tickflow.job_execution WHERE "
                                "execution_id = $1 AND stage = $2",
                                id, stage));
    free(line);
}

/* The execution id of "execution <id> ..." on the first line of out into id. */
static int first_id(const char *out, char id[37])
{
    return sscanf(out, "execution %36s", id) == 1 && strlen(id) == 36;
}

static void check_plain(const char *out)
{
    CHECK(!strchr(out, '\r') && !strchr(out, '\033'), "piped output has \\r or escapes: %s", out);
}

/* run --wait piped, then every read of the execution checked against the database. */
static void test_run_and_reads(char id[37])
{
    struct ctl_proc p;
    cJSON *doc;
    const cJSON *it;
    char *line;
    int n = 0, all_success = 1;

    CHECK_EQ_INT(CTL(&p, "run", DEMO, "--from", "2024-03-04T14:30:00Z", "--to",
                     "2024-03-04T21:00:00Z", "--wait"),
                 0);
    CHECK(first_id(p.out.data, id), "no id on the first line: %s", p.out.data);
    check_plain(p.out.data);
    /* A line only when something changed: never the same line twice in a row. */
    for (const char *l = p.out.data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *next = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL;
        size_t len = strcspn(l, "\n");
        CHECK(!next || strncmp(l, next, len + 1) != 0, "line printed twice: %.*s", (int)len, l);
    }
    check_stage_line(p.out.data, id, "extract");
    check_stage_line(p.out.data, id, "transform");
    check_stage_line(p.out.data, id, "aggregate");
    line = last_line(p.out.data, "execution ");
    CHECK(line && strstr(line, " SUCCESS in ") != NULL, "closing line: %s", line ? line : "none");
    free(line);
    ctl_cleanup(&p);

    /* status --json: the three records, as the database has them. */
    CHECK_EQ_INT(CTL(&p, "status", id, "--json"), 0);
    doc = ctl_json(&p);
    CHECK_STR(h_jstr(doc, "status"), "SUCCESS");
    CHECK_STR(h_jstr(doc, "execution_id"), id);
    for (int i = 0; i < 3; i++) {
        static const char *const stages[] = {"extract", "transform", "aggregate"};
        const cJSON *rec = cJSON_GetObjectItem(doc, stages[i]);
        CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
        CHECK_EQ_INT((long long)h_jnum(rec, "records_out"),
                     db_ll("SELECT records_out FROM tickflow.job_execution WHERE execution_id = "
                           "$1 AND stage = $2",
                           id, stages[i]));
    }
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "status", id), 0);
    CHECK(count_lines(p.out.data, "  ") == 3 && strstr(p.out.data, "  SUCCESS\n"), "status: %s",
          p.out.data);
    ctl_cleanup(&p);

    /* The same id again: the same execution, nothing new. */
    CHECK_EQ_INT(CTL(&p, "run", DEMO, "--id", id, "--from", "2024-03-04T14:30:00Z", "--to",
                     "2024-03-04T21:00:00Z"),
                 0);
    CHECK(strstr(p.out.data, " exists: job " DEMO) != NULL, "run again: %s", p.out.data);
    ctl_cleanup(&p);
    /* ... but with another window it is refused (409: bad input). */
    CHECK_EQ_INT(CTL(&p, "run", DEMO, "--id", id, "--from", "2024-03-05T14:30:00Z", "--to",
                     "2024-03-05T21:00:00Z"),
                 2);
    check_one_error_line(&p, "409");
    ctl_cleanup(&p);
    CHECK_EQ_INT(
        db_ll("SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1", DEMO, NULL), 3);

    /* executions: filtered by job and status, newest first, at most limit. */
    CHECK_EQ_INT(
        CTL(&p, "executions", "--job", DEMO, "--status", "SUCCESS", "--limit", "5", "--json"), 0);
    doc = ctl_json(&p);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "executions"))
    {
        n++;
        all_success &= h_jstr(it, "status") && strcmp(h_jstr(it, "status"), "SUCCESS") == 0;
    }
    CHECK_EQ_INT(n, 1);
    CHECK(all_success, "a listed execution is not SUCCESS");
    CHECK_STR(h_jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "executions"), 0), "execution_id"),
              id);
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "executions", "--stage", "aggregate", "--limit", "3"), 0);
    CHECK(count_lines(p.out.data, id) == 1, "executions: %s", p.out.data);
    ctl_cleanup(&p);

    /* quality: completeness per ticker as gold.completeness has it. */
    CHECK_EQ_INT(CTL(&p, "quality", id, "--json"), 0);
    doc = ctl_json(&p);
    n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "completeness")) n += (int)h_jnum(it, "actual");
    CHECK_EQ_INT(
        n, db_ll("SELECT sum(actual) FROM gold.completeness WHERE execution_id = $1", id, NULL));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "completeness")), 3);
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "quality", id), 0);
    CHECK(count_lines(p.out.data, "  AAPL ") == 1, "quality: %s", p.out.data);
    ctl_cleanup(&p);

    /* gaps: the two days less the 6.5 hours the run covered. */
    CHECK_EQ_INT(CTL(&p, "gaps", DEMO, "--from", "2024-03-04", "--to", "2024-03-06", "--json"), 0);
    doc = ctl_json(&p);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "gaps")), 2);
    CHECK_EQ_INT((long long)h_jnum(doc, "gap_seconds"), 2 * 86400 - 23400);
    CHECK_STR(h_jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "gaps"), 1), "start"),
              "2024-03-04T21:00:00Z");
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "gaps", DEMO, "--from", "2024-03-04", "--to", "2024-03-06"), 0);
    CHECK(strstr(p.out.data, "2 gaps through aggregate, 41h30m in all") != NULL, "gaps: %s",
          p.out.data);
    ctl_cleanup(&p);
}

static void test_replay(const char *id)
{
    struct ctl_proc p;
    cJSON *doc;
    char *line;
    long long attempt;

    CHECK_EQ_INT(CTL(&p, "replay", id, "--wait"), 0);
    check_plain(p.out.data);
    CHECK(count_lines(p.out.data, "extract") == 0, "replay shows extract: %s", p.out.data);
    line = last_line(p.out.data, "execution ");
    CHECK(line && strstr(line, " SUCCESS") != NULL, "replay's closing line: %s", p.out.data);
    free(line);
    ctl_cleanup(&p);
    CHECK_EQ_INT(db_ll("SELECT attempt FROM tickflow.job_execution WHERE execution_id = $1"
                       " AND stage = 'transform' AND status = 'SUCCESS'",
                       id, NULL),
                 2);
    /* aggregate ran again after it: watching waited for it. */
    CHECK_EQ_INT(db_ll("SELECT count(*) FROM tickflow.job_execution a JOIN"
                       " tickflow.job_execution t USING (execution_id) WHERE a.execution_id = $1"
                       " AND a.stage = 'aggregate' AND t.stage = 'transform'"
                       " AND a.status = 'SUCCESS' AND a.finished_at >= t.finished_at",
                       id, NULL),
                 1);
    attempt = db_ll("SELECT attempt FROM tickflow.job_execution WHERE execution_id = $1"
                    " AND stage = 'aggregate'",
                    id, NULL);
    CHECK_EQ_INT(CTL(&p, "replay", id, "--stage", "aggregate", "--json"), 0);
    doc = ctl_json(&p);
    CHECK_STR(h_jstr(doc, "stage"), "aggregate");
    CHECK_STR(h_jstr(doc, "execution_id"), id);
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    /* On a terminal the stage lines are redrawn in place, until the replay has run. */
    {
        const char *args[] = {"status", id, "--wait", NULL};
        if (ctl_spawn(&p, args, NULL, 1) == 0) {
            CHECK_EQ_INT(ctl_finish(&p, 30), 0);
            CHECK(strstr(p.out.data, "\r") && strstr(p.out.data, "\033[K"),
                  "no redrawn line on a terminal: %s", p.out.data);
        }
        ctl_cleanup(&p);
    }
    CHECK_EQ_INT(db_ll("SELECT attempt FROM tickflow.job_execution WHERE execution_id = $1"
                       " AND stage = 'aggregate' AND status = 'SUCCESS'",
                       id, NULL),
                 attempt + 1);
}

static void test_failed_run(void)
{
    char file[800], id[37] = "";
    struct ctl_proc p;
    cJSON *doc;
    char *line;
    FILE *f;

    snprintf(file, sizeof(file), "%s/fail_job.json", stack.dir);
    f = fopen(file, "w");
    /* No close is that high: aggregate fails the run. */
    fputs("{\"provider\":\"polygon\",\"tickers\":[\"AAPL\"],\"interval_seconds\":86400,"
          "\"overlap_seconds\":0,\"dq_rules\":[{\"check\":\"avg_close_between\","
          "\"min\":1000000,\"max\":2000000,\"severity\":\"fail\"}]}",
          f ? f : stderr);
    if (f)
        fclose(f);
    CHECK_EQ_INT(CTL(&p, "jobs", "put", FAIL_JOB, file), 0);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "run", FAIL_JOB, "--from", "2024-03-05", "--to", "2024-03-06", "--wait"),
                 1);
    CHECK(first_id(p.out.data, id), "no id: %s", p.out.data);
    line = last_line(p.out.data, "execution ");
    CHECK(line && strstr(line, "FAILED at aggregate") && strstr(line, "avg_close_between"),
          "closing line of a failed run: %s", p.out.data);
    free(line);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "status", id, "--json"), 1);
    doc = ctl_json(&p);
    CHECK_STR(h_jstr(doc, "status"), "FAILED");
    CHECK_STR(h_jstr(cJSON_GetObjectItem(doc, "aggregate"), "status"), "FAILED");
    CHECK_STR(h_jstr(cJSON_GetObjectItem(doc, "transform"), "status"), "SUCCESS");
    CHECK_EQ_INT(db_ll("SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                       " AND stage = 'aggregate' AND status = 'FAILED'",
                       id, NULL),
                 1);
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "status", id), 1);
    CHECK(strstr(p.out.data, "    error: ") != NULL, "status shows no error: %s", p.out.data);
    ctl_cleanup(&p);
}

static void test_not_found(void)
{
    static const struct {
        const char *args[8];
        const char *says;
    } cases[] = {
        {{"status", NO_SUCH}, "no execution " NO_SUCH},
        {{"status", NO_SUCH, "--wait"}, "no execution " NO_SUCH},
        {{"quality", NO_SUCH, "--json"}, "404"},
        {{"replay", NO_SUCH}, "404"},
        {{"backfill", "watch", NO_SUCH}, "no backfill"},
        {{"run", "no_such_job"}, "404"},
        {{"backfill", "no_such_job", "--from", "2024-03-04", "--to", "2024-03-05"}, "404"},
        {{"gaps", "no_such_job", "--from", "2024-03-04", "--to", "2024-03-05"}, "404"},
    };

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        struct ctl_proc p;
        int code = ctl_env(&p, NULL, cases[i].args);

        CHECK(code == 3, "case %zu (%s): exit %d, want 3; stderr %s", i, cases[i].args[0], code,
              p.err.data);
        check_one_error_line(&p, cases[i].says);
        ctl_cleanup(&p);
    }
}

static void test_unreachable(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    char closed[64], silent[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct ctl_proc p;
    double t0;

    snprintf(closed, sizeof(closed), "http://127.0.0.1:%d", h_free_port());
    /* A port that takes connections and never answers. */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 16) == 0 &&
              getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
          "cannot listen: %s", strerror(errno));
    snprintf(silent, sizeof(silent), "http://127.0.0.1:%d", ntohs(sa.sin_port));

    CHECK_EQ_INT(CTL(&p, "--extract", closed, "jobs", "list"), 4);
    check_one_error_line(&p, "cannot reach extract at http://127.0.0.1:");
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "quality", NO_SUCH, "--aggregate", closed), 4);
    check_one_error_line(&p, "cannot reach aggregate");
    ctl_cleanup(&p);
    CHECK_EQ_INT(CTL(&p, "status", NO_SUCH, "--wait", "--transform", closed), 4);
    check_one_error_line(&p, "cannot reach transform");
    ctl_cleanup(&p);
    {
        char env[96];
        snprintf(env, sizeof(env), "TICKFLOW_EXTRACT_URL=%s", closed);
        CHECK_EQ_INT(ctl_env(&p, (const char *const[]){env, NULL},
                             (const char *const[]){"backfill", "watch", NO_SUCH, NULL}),
                     4);
        ctl_cleanup(&p);
    }
    t0 = h_now_s();
    CHECK_EQ_INT(CTL(&p, "--timeout", "1", "--extract", silent, "jobs", "list"), 4);
    CHECK(h_now_s() - t0 < 5, "a silent service held tickflowctl %.1f s", h_now_s() - t0);
    check_one_error_line(&p, "timed out");
    ctl_cleanup(&p);
    if (fd >= 0)
        close(fd);
}

static long long bf_rows(const char *sql)
{
    return db_ll(sql, BF_JOB, NULL);
}

/*
 * A backfill interrupted mid-way goes on; backfill watch follows it to the
 * end; the same command again finds it and creates nothing.
 */
static void test_backfill(void)
{
    const char *args[] = {"backfill",   BF_JOB,          "--from", "2024-03-04", "--to",
                          "2024-03-08", "--concurrency", "1",      NULL};
    char id[37] = "", again[128];
    struct ctl_proc p;
    cJSON *doc;
    char *line;
    double deadline;

    /* Each day's page comes 600 ms late, so five days take a few seconds. */
    CHECK_EQ_INT(h_sim_faults(stack.procs[H_MARKETSIM].port,
                              "{\"rules\":[{\"ticker\":\"MSFT\",\"fault\":\"slow\","
                              "\"delay_ms\":600,\"times\":-1}]}"),
                 200);
    if (ctl_spawn(&p, args, NULL, 0) != 0) {
        check_fail(__FILE__, __LINE__, "cannot start tickflowctl");
        return;
    }
    /* Until the first day is in gold, then Ctrl-C. */
    deadline = h_now_s() + h_timeout(30);
    while (h_now_s() < deadline && !ctl_pump(&p, 100)) {
        if (tf_buf_append(&p.out, "", 1) == TF_OK) {
            p.out.len--;
            if (strstr(p.out.data, " 1/5 days in gold") ||
                strstr(p.out.data, " 2/5 days in gold") || strstr(p.out.data, " 3/5 days in gold"))
                break;
        }
    }
    kill(p.pid, SIGINT);
    CHECK_EQ_INT(ctl_finish(&p, 10), 130);
    sscanf(p.out.data, "backfill %36s started", id);
    CHECK(strlen(id) == 36, "no backfill id: %s", p.out.data);
    snprintf(again, sizeof(again), "tickflowctl backfill watch %s", id);
    CHECK(strstr(p.err.data, again) != NULL, "no way back after Ctrl-C: %s", p.err.data);
    CHECK(strstr(p.out.data, "[####") != NULL, "no progress bar: %s", p.out.data);
    check_plain(p.out.data);
    ctl_cleanup(&p);
    CHECK(bf_rows("SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"
                  " AND stage = 'aggregate' AND status = 'SUCCESS'") < 5,
          "the backfill ended before the interrupt");

    /* It went on; watch follows it to the end. */
    {
        const char *watch[] = {"backfill", "watch", id, NULL};
        CHECK_EQ_INT(ctl_env(&p, NULL, watch), 0);
    }
    line = last_line(p.out.data, "backfill ");
    CHECK(line && strstr(line, "SUCCESS: 5 of 5 days in gold"), "watch: %s", p.out.data);
    free(line);
    CHECK(count_lines(p.out.data, "[") >= 2, "watch showed no progress: %s", p.out.data);
    check_plain(p.out.data);
    ctl_cleanup(&p);
    CHECK_EQ_INT(h_sim_faults(stack.procs[H_MARKETSIM].port, NULL), 200);
    {
        const char *watch[] = {"backfill", "watch", id, "--json", NULL};
        CHECK_EQ_INT(ctl_env(&p, NULL, watch), 0);
    }
    doc = ctl_json(&p);
    CHECK_STR(h_jstr(doc, "status"), "SUCCESS");
    CHECK_EQ_INT((long long)h_jnum(doc, "completed"), 5);
    CHECK_EQ_INT((long long)h_jnum(cJSON_GetObjectItem(doc, "transform"), "succeeded"), 5);
    cJSON_Delete(doc);
    ctl_cleanup(&p);

    /* The same command again: the same backfill, no execution twice. */
    CHECK_EQ_INT(ctl_env(&p, NULL, args), 0);
    CHECK(strncmp(p.out.data + 9, id, 36) == 0 && strstr(p.out.data, " exists "),
          "the same backfill again: %s", p.out.data);
    ctl_cleanup(&p);
    CHECK_EQ_INT(bf_rows("SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"), 15);
    CHECK_EQ_INT(bf_rows("SELECT count(DISTINCT (window_start, stage)) FROM"
                         " tickflow.job_execution WHERE job_name = $1"),
                 15);
    CHECK_EQ_INT(bf_rows("SELECT count(*) FROM tickflow.backfill WHERE job_name = $1"), 1);
    {
        const char *detach[] = {"backfill",   BF_JOB,     "--from", "2024-03-04", "--to",
                                "2024-03-08", "--detach", "--json", NULL};
        CHECK_EQ_INT(ctl_env(&p, NULL, detach), 0);
    }
    doc = ctl_json(&p);
    CHECK_STR(h_jstr(doc, "backfill_id"), id);
    cJSON_Delete(doc);
    ctl_cleanup(&p);
    CHECK_EQ_INT(bf_rows("SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"), 15);
}

int main(void)
{
    const char *bin = getenv("TF_BIN_DIR") ? getenv("TF_BIN_DIR") : "build/bin";
    static const char *const extra[] = {"TICKFLOW_API_TOKEN=" TOKEN, NULL};
    static char urls[3][96];
    char id[37] = "";
    double t0 = h_now_s();

    snprintf(ctl_bin, sizeof(ctl_bin), "%s/tickflowctl", bin);
    if (access(ctl_bin, X_OK) != 0) {
        check_fail(__FILE__, __LINE__, "no %s (make all builds it)", ctl_bin);
        return check_summary();
    }
    if (h_stack_start(&stack, "ctl", API_KEY, SEED, extra) != 0) {
        check_fail(__FILE__, __LINE__, "stack did not start");
        h_stack_stop(&stack);
        return check_summary();
    }
    snprintf(ctl_log, sizeof(ctl_log), "%s/tickflowctl.log", stack.dir);
    snprintf(urls[0], sizeof(urls[0]), "TICKFLOW_EXTRACT_URL=http://127.0.0.1:%d",
             stack.procs[H_EXTRACT].port);
    snprintf(urls[1], sizeof(urls[1]), "TICKFLOW_TRANSFORM_URL=http://127.0.0.1:%d",
             stack.procs[H_TRANSFORM].port);
    snprintf(urls[2], sizeof(urls[2]), "TICKFLOW_AGGREGATE_URL=http://127.0.0.1:%d",
             stack.procs[H_AGGREGATE].port);
    for (int i = 0; i < 3; i++)
        putenv(urls[i]);
    setenv("TICKFLOW_API_TOKEN", TOKEN, 1);
    unsetenv("TICKFLOW_API_TOKEN_FILE");

    test_help();
    test_bad_input();
    test_jobs();
    test_run_and_reads(id);
    if (strlen(id) == 36)
        test_replay(id);
    test_failed_run();
    test_not_found();
    test_unreachable();
    test_backfill();
    printf("tickflowctl end to end in %.1f s\n", h_now_s() - t0);
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
