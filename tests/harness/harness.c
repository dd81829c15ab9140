/*
 * harness.c - processes, HTTP and PostgreSQL helpers for tests.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tf/buf.h"
#include "tf/gz.h"
#include "tf/exec.h"
#include "tf/kafka.h"
#include "tf/lake.h"

int h_timeout(int seconds)
{
    const char *m = getenv("TF_TEST_TIMEOUT_MULT");
    long mult = m ? strtol(m, NULL, 10) : 1;

    return seconds * (int)(mult > 0 ? mult : 1);
}

int h_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

const char *h_jstr(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

double h_jnum(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

int h_start(struct h_proc *p, const char *name, const char *binary, int port, const char *logdir,
            const char *const *env)
{
    char portenv[64];

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log, sizeof(p->log), "%s/%s.log", logdir, name);
    snprintf(portenv, sizeof(portenv), "TICKFLOW_HTTP_PORT=%d", port);
    p->port = port;
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        putenv(portenv);
        putenv("TICKFLOW_HTTP_ADDR=127.0.0.1");
        execl(binary, binary, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < h_timeout(60) * 10; i++) {
        struct h_resp r;
        int status;

        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            fprintf(stderr, "%s exited during start-up; see %s\n", name, p->log);
            p->pid = 0;
            return -1;
        }
        if (h_http("GET", port, "/healthz", NULL, NULL, &r) == 0 && r.status == 200) {
            h_resp_free(&r);
            return 0;
        }
        h_resp_free(&r);
        h_sleep_ms(100);
    }
    fprintf(stderr, "%s did not become healthy; see %s\n", name, p->log);
    return -1;
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int h_alive(struct h_proc *p)
{
    if (p->exited)
        return 0;
    if (p->pid > 0 && waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
        p->exited = 1;
        return 0;
    }
    return p->pid > 0;
}

int h_stack_alive(struct h_stack *st)
{
    static int told;

    for (int i = 0; i < H_NPROCS; i++) {
        if (!h_alive(&st->procs[i])) {
            if (!told++)
                printf("%s is not running (exit %d); see %s\n", st->procs[i].name,
                       decode_status(st->procs[i].status), st->procs[i].log);
            return 0;
        }
    }
    return 1;
}

int h_stop(struct h_proc *p)
{
    int status = 0;

    if (p->exited)
        return decode_status(p->status);
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    for (int i = 0; i < h_timeout(30) * 10; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return decode_status(status);
        }
        h_sleep_ms(100);
    }
    if (getenv("TF_HANG_BT")) {
        /* Where a service that did not drain is stuck: every thread's stack, before the kill. */
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "gdb -p %ld -batch -ex 'thread apply all bt' >> '%s' 2>&1",
                 (long)p->pid, getenv("TF_HANG_BT"));
        if (system(cmd) != 0)
            fprintf(stderr, "gdb could not attach to %ld\n", (long)p->pid);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
    return -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    return tf_buf_append(ud, data, size * n) == TF_OK ? size * n : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct h_resp *r = ud;
    size_t len = size * n;

    static const struct {
        const char *name;
        size_t off;
        size_t size;
    } wanted[] = {
        {"Location:", offsetof(struct h_resp, location), sizeof(r->location)},
        {"X-Request-Id:", offsetof(struct h_resp, request_id), sizeof(r->request_id)},
    };

    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        size_t nl = strlen(wanted[i].name);
        char *dst = (char *)r + wanted[i].off;
        size_t skip = nl;

        if (len <= nl || strncasecmp(data, wanted[i].name, nl) != 0)
            continue;
        while (skip < len && data[skip] == ' ')
            skip++;
        snprintf(dst, wanted[i].size, "%.*s", (int)(len - skip), data + skip);
        dst[strcspn(dst, "\r\n")] = '\0';
    }
    return len;
}

int h_http(const char *method, int port, const char *path, const char *body, const char *header,
           struct h_resp *resp)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct tf_buf buf;
    size_t urlen = strlen(path) + 32;
    char *url = malloc(urlen);
    CURLcode cc;

    memset(resp, 0, sizeof(*resp));
    if (!curl || !url) {
        curl_easy_cleanup(curl);
        free(url);
        return -1;
    }
    tf_buf_init(&buf, 64u * 1024 * 1024);
    snprintf(url, urlen, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L); /* send "/../" as written */
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)h_timeout(120));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    for (const char *h = header; h && *h;) {
        size_t n = strcspn(h, "\n");
        char one[512];
        snprintf(one, sizeof(one), "%.*s", (int)n, h);
        hdrs = curl_slist_append(hdrs, one);
        h += n + (h[n] == '\n');
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    cc = curl_easy_perform(curl);
    if (cc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    free(url);
    resp->body = buf.data ? tf_buf_take(&buf) : strdup("");
    tf_buf_cleanup(&buf);
    return cc == CURLE_OK ? 0 : -1;
}

void h_resp_free(struct h_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
}

char *h_pg_value(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    char *out = NULL;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        out = strdup(PQgetvalue(res, 0, 0));
    else if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "query failed: %s", PQresultErrorMessage(res));
    PQclear(res);
    return out;
}

long long h_pg_ll(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    char *v = h_pg_value(conn, sql, nparams, params);
    long long out = v ? strtoll(v, NULL, 10) : LLONG_MIN;

    free(v);
    return out;
}

/* A connection string for base_dsn with another database name. */
static int dsn_with_db(const char *base_dsn, const char *db, char *out, size_t outlen)
{
    PQconninfoOption *opts = PQconninfoParse(base_dsn, NULL);
    size_t used = 0;

    if (!opts)
        return -1;
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *val = strcmp(o->keyword, "dbname") == 0 ? db : o->val;
        if (!val || !*val)
            continue;
        used += (size_t)snprintf(out + used, used < outlen ? outlen - used : 0, "%s%s='%s'",
                                 used ? " " : "", o->keyword, val);
    }
    if (!strstr(out, "dbname="))
        used += (size_t)snprintf(out + used, used < outlen ? outlen - used : 0, " dbname='%s'", db);
    PQconninfoFree(opts);
    return used < outlen ? 0 : -1;
}

static int admin_exec(const char *base_dsn, const char *sql)
{
    PGconn *conn = PQconnectdb(base_dsn);
    PGresult *res = NULL;
    int ok = 0;

    if (PQstatus(conn) == CONNECTION_OK) {
        res = PQexec(conn, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
    } else {
        fprintf(stderr, "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
    }
    PQfinish(conn);
    return ok ? 0 : -1;
}

int h_pg_create_db(const char *base_dsn, const char *name, char *out, size_t outlen)
{
    char sql[256];

    /* name is made by the test itself ([a-z0-9_]): an identifier, not input. */
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    h_pg_drop_db(base_dsn, name);
    if (admin_exec(base_dsn, sql) != 0)
        return -1;
    return dsn_with_db(base_dsn, name, out, outlen);
}

void h_pg_drop_db(const char *base_dsn, const char *name)
{
    char sql[256];
    PGconn *conn = PQconnectdb(base_dsn);

    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, "SET client_min_messages TO warning");
        PQclear(res);
        res = PQexec(conn, sql);
        PQclear(res);
    }
    PQfinish(conn);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

double h_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

int h_file_count(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    struct tf_buf buf;
    char chunk[65536];
    size_t n, len = strlen(needle);
    int found = 0;

    if (!fp)
        return 0;
    tf_buf_init(&buf, 1024u * 1024 * 1024);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (tf_buf_append(&buf, chunk, n) != TF_OK)
            break;
    }
    fclose(fp);
    for (const char *at = buf.data; at && len;) {
        at = memmem(at, buf.len - (size_t)(at - buf.data), needle, len);
        if (at) {
            found++;
            at += len;
        }
    }
    tf_buf_cleanup(&buf);
    return found;
}

int h_file_contains(const char *path, const char *needle)
{
    return h_file_count(path, needle) > 0;
}

static const char *walk_needle;
static int walk_count;

static int on_walk(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (strstr(path, walk_needle))
        walk_count++;
    return 0;
}

int h_tree_paths_containing(const char *dir, const char *needle)
{
    walk_needle = needle;
    walk_count = 0;
    nftw(dir, on_walk, 16, FTW_PHYS);
    return walk_count;
}

int h_lake_is_s3(void)
{
    const char *m = getenv("TF_TEST_LAKE");

    return m && strcmp(m, "s3") == 0;
}

/*
 * Picks the stack's lake (TF_TEST_LAKE: "folder", the default, or "s3")
 * and opens st->lake on it. 0 on success; -1 said on stderr.
 */
static int stack_lake_open(struct h_stack *st, const char *tag)
{
    static const char *const needed[] = {"TICKFLOW_LAKE_S3_BUCKET", "TICKFLOW_LAKE_S3_ENDPOINT",
                                         "TICKFLOW_LAKE_S3_ACCESS_KEY_ID",
                                         "TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY"};
    const char *mode = getenv("TF_TEST_LAKE");
    struct tf_lake_s3_cfg cfg = {0};
    char err[512] = "", real[PATH_MAX];

    if (mode && *mode && strcmp(mode, "s3") != 0 && strcmp(mode, "folder") != 0) {
        fprintf(stderr, "TF_TEST_LAKE is \"%s\": folder (the default) or s3\n", mode);
        return -1;
    }
    if (!h_lake_is_s3()) {
        snprintf(st->lake_uri, sizeof(st->lake_uri), "%s/lake", st->dir);
        if (tf_lake_open(st->lake_uri, NULL, &st->lake, err, sizeof(err)) != TF_OK ||
            !realpath(st->lake_uri, real) ||
            (size_t)snprintf(st->lake_base, sizeof(st->lake_base), "file://%s", real) >=
                sizeof(st->lake_base)) {
            fprintf(stderr, "lake %s: %s\n", st->lake_uri, err[0] ? err : "path too long");
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        if (!getenv(needed[i]) || !*getenv(needed[i])) {
            fprintf(stderr,
                    "TF_TEST_LAKE=s3 needs %s (and the other TICKFLOW_LAKE_S3_* settings):"
                    " bash tests/env/seaweedfs.sh up && . .run/s3.env\n",
                    needed[i]);
            return -1;
        }
    }
    snprintf(st->lake_uri, sizeof(st->lake_uri), "s3://%s/%s-%ld",
             getenv("TICKFLOW_LAKE_S3_BUCKET"), tag, (long)getpid());
    snprintf(st->lake_base, sizeof(st->lake_base), "%s", st->lake_uri);
    cfg.endpoint = getenv("TICKFLOW_LAKE_S3_ENDPOINT");
    cfg.region = getenv("TICKFLOW_LAKE_S3_REGION");
    cfg.addressing = getenv("TICKFLOW_LAKE_S3_ADDRESSING");
    cfg.access_key_id = getenv("TICKFLOW_LAKE_S3_ACCESS_KEY_ID");
    cfg.secret_access_key = getenv("TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY");
    cfg.session_token = getenv("TICKFLOW_LAKE_S3_SESSION_TOKEN");
    if (tf_lake_open(st->lake_uri, &cfg, &st->lake, err, sizeof(err)) != TF_OK) {
        fprintf(stderr, "lake %s: %s\n", st->lake_uri, err);
        return -1;
    }
    return 0;
}

int h_stack_start(struct h_stack *st, const char *tag, const char *api_key, int seed,
                  const char *const *extra_env)
{
    static const char *const names[H_NPROCS] = {"marketsim", "extract", "transform", "aggregate"};
    const char *base = getenv("TICKFLOW_PG_DSN");
    const char *bin = getenv("TF_BIN_DIR") ? getenv("TF_BIN_DIR") : "build/bin";
    const char *top = getenv("TF_TEST_DIR") ? getenv("TF_TEST_DIR") : ".run/test";
    static char envs[12][1200];
    const char **env = st->env;
    int nenv = 0;
    int ports[H_NPROCS];

    memset(st, 0, sizeof(*st));
    if (!base || !getenv("TICKFLOW_KAFKA_BROKERS")) {
        fprintf(stderr,
                "TICKFLOW_PG_DSN and TICKFLOW_KAFKA_BROKERS must be set (tests/env/up.sh)\n");
        return -1;
    }
    snprintf(st->dir, sizeof(st->dir), "%s/%s-%ld", top, tag, (long)getpid());
    mkdir(top, 0755);
    mkdir(st->dir, 0755);
    snprintf(st->dbname, sizeof(st->dbname), "tickflow_%s_%ld", tag, (long)getpid());
    snprintf(st->prefix, sizeof(st->prefix), "%s%ld.", tag, (long)getpid());
    if (stack_lake_open(st, tag) != 0 ||
        h_pg_create_db(base, st->dbname, st->dsn, sizeof(st->dsn)) != 0)
        return -1;
    for (int i = 0; i < H_NPROCS; i++)
        ports[i] = h_free_port();
    snprintf(envs[0], sizeof(envs[0]), "TICKFLOW_PG_DSN=%s", st->dsn);
    snprintf(envs[1], sizeof(envs[1]), "TICKFLOW_KAFKA_TOPIC_PREFIX=%s", st->prefix);
    snprintf(envs[2], sizeof(envs[2]), "TICKFLOW_LAKE_URI=%s", st->lake_uri);
    snprintf(envs[3], sizeof(envs[3]), "POLYGON_API_KEY=%s", api_key);
    snprintf(envs[4], sizeof(envs[4]), "TICKFLOW_POLYGON_BASE_URL=http://127.0.0.1:%d", ports[0]);
    snprintf(envs[5], sizeof(envs[5]), "TICKFLOW_MARKETSIM_SEED=%d", seed);
    snprintf(envs[6], sizeof(envs[6]), "TICKFLOW_MARKETSIM_API_KEY=%s", api_key);
    snprintf(envs[7], sizeof(envs[7]), "TICKFLOW_LOG_LEVEL=info");
    /* marketsim has no budget to protect: the free tiers' would only slow tests down. */
    snprintf(envs[8], sizeof(envs[8]), "TICKFLOW_POLYGON_RATE_PER_MINUTE=600000");
    snprintf(envs[9], sizeof(envs[9]), "TICKFLOW_TWELVEDATA_RATE_PER_MINUTE=600000");
    /* marketsim speaks both providers' APIs. */
    snprintf(envs[10], sizeof(envs[10]), "TWELVEDATA_API_KEY=%s", api_key);
    snprintf(envs[11], sizeof(envs[11]), "TICKFLOW_TWELVEDATA_BASE_URL=http://127.0.0.1:%d",
             ports[0]);
    for (int i = 0; i < 12; i++)
        env[nenv++] = envs[i];
    for (int i = 0; extra_env && extra_env[i] && nenv < 23; i++)
        env[nenv++] = extra_env[i];
    env[nenv] = NULL;
    for (int i = 0; i < H_NPROCS; i++) {
        snprintf(st->bin[i], sizeof(st->bin[i]), "%s/tickflow-%s", bin, names[i]);
        if (h_start(&st->procs[i], names[i], st->bin[i], ports[i], st->dir, env) != 0)
            return -1;
    }
    st->db = PQconnectdb(st->dsn);
    if (PQstatus(st->db) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(st->db));
        return -1;
    }
    /* The job a migration once seeded everywhere; tests that use it find it. */
    return h_add_demo_job(st->db);
}

int h_stack_restart(struct h_stack *st, int i)
{
    char name[32];

    snprintf(name, sizeof(name), "%s", st->procs[i].name);
    return h_start(&st->procs[i], name, st->bin[i], st->procs[i].port, st->dir, st->env);
}

int h_stack_setenv(struct h_stack *st, const char *name_eq_value, const char *name)
{
    size_t len = strlen(name), n = 0, max = sizeof(st->env) / sizeof(st->env[0]);

    while (st->env[n] && !(strncmp(st->env[n], name, len) == 0 && st->env[n][len] == '='))
        n++;
    if (!name_eq_value) {
        for (; st->env[n]; n++)
            st->env[n] = st->env[n + 1];
        return 0;
    }
    if (!st->env[n]) {
        if (n + 1 >= max)
            return -1;
        st->env[n + 1] = NULL;
    }
    st->env[n] = name_eq_value;
    return 0;
}

int h_stack_stop(struct h_stack *st)
{
    int unclean = 0;

    for (int i = H_NPROCS - 1; i >= 0; i--) {
        if (st->procs[i].pid > 0) {
            int code = h_stop(&st->procs[i]);
            if (code != 0) {
                fprintf(stdout, "%s exited with %d on SIGTERM (see %s)\n", st->procs[i].name, code,
                        st->procs[i].log);
                unclean++;
            }
        }
    }
    PQfinish(st->db);
    st->db = NULL;
    tf_lake_free(st->lake);
    st->lake = NULL;
    if (st->dbname[0])
        h_pg_drop_db(getenv("TICKFLOW_PG_DSN"), st->dbname);
    if (st->prefix[0] && h_topics_drop(st->prefix) < 0)
        fprintf(stdout, "# the topics %s* stay on the broker\n", st->prefix);
    return unclean;
}

long h_sim_faults(int marketsim_port, const char *rules)
{
    struct h_resp r;
    long status;

    h_http(rules ? "POST" : "DELETE", marketsim_port, "/_sim/faults", rules, NULL, &r);
    status = r.status;
    h_resp_free(&r);
    return status;
}

long long h_metric(int port, const char *name)
{
    struct h_resp r;
    char sample[128];
    long long v = -1;
    const char *at = NULL;

    snprintf(sample, sizeof(sample), "\n%s{", name); /* the sample, not # HELP or # TYPE */
    if (h_http("GET", port, "/metrics", NULL, NULL, &r) == 0)
        at = strstr(r.body, sample);
    if (at)
        v = strtoll(strchr(at + 1, ' ') + 1, NULL, 10);
    h_resp_free(&r);
    return v;
}

int h_produce(const char *prefix, const char *topic, const char *id, const char *event)
{
    struct tf_kafka *kafka = NULL;
    cJSON *parsed = cJSON_Parse(event);
    char full[160], err[256] = "";
    int rc = -1;

    snprintf(full, sizeof(full), "%s%s", prefix, topic);
    if (tf_kafka_producer_new(getenv("TICKFLOW_KAFKA_BROKERS"), h_kafka_opts(), "tests", 10000,
                              &kafka, err, sizeof(err)) == TF_OK &&
        tf_kafka_produce(kafka, full, cJSON_GetStringValue(cJSON_GetObjectItem(parsed, "job_name")),
                         event, strlen(event), id, NULL, 10000, err, sizeof(err)) == TF_OK)
        rc = 0;
    else
        fprintf(stderr, "send event: %s\n", err);
    tf_kafka_producer_free(kafka);
    cJSON_Delete(parsed);
    return rc;
}

int h_send_event(PGconn *db, const char *prefix, const char *topic, const char *id,
                 const char *stage)
{
    char *event = NULL;
    int rc;

    if (tf_exec_event(db, id, stage, &event) != TF_OK) {
        fprintf(stderr, "no finished %s stage for %s\n", stage, id);
        return -1;
    }
    rc = h_produce(prefix, topic, id, event);
    free(event);
    return rc;
}

int h_copy_extract(PGconn *db, const char *src, int published, char id[37])
{
    const char *params[3] = {id, src, published ? "t" : "f"};
    PGresult *res;
    int ok;

    tf_uuid_new(id);
    res = PQexecParams(db,
                       "INSERT INTO tickflow.job_execution (execution_id, stage, job_name,"
                       " status, attempt, window_start, window_end, tickers, objects,"
                       " records_in, records_out, worker_id, started_at, finished_at,"
                       " event_published_at)"
                       " SELECT $1, stage, job_name, 'SUCCESS', 1, window_start, window_end,"
                       " tickers, objects, records_in, records_out, 'copied',"
                       " now() - interval '2 minutes', now() - interval '1 minute',"
                       " CASE WHEN $3::boolean THEN now() END"
                       " FROM tickflow.job_execution WHERE execution_id = $2"
                       " AND stage = 'extract' AND status = 'SUCCESS'",
                       3, NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(res), "1") == 0;
    if (!ok)
        fprintf(stderr, "copy of extract %s: %s", src, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

cJSON *h_get_record(int port, const char *id)
{
    char path[128];
    struct h_resp r;
    cJSON *out = NULL;

    snprintf(path, sizeof(path), "/v1/executions/%s", id);
    if (h_http("GET", port, path, NULL, NULL, &r) == 0 && r.status == 200)
        out = cJSON_Parse(r.body);
    h_resp_free(&r);
    return out;
}

cJSON *h_get_objects(int port, const char *id, int limit)
{
    char path[4096];
    cJSON *all = cJSON_CreateArray();
    double total = -1;

    snprintf(path, sizeof(path), "/v1/executions/%s/objects?limit=%d", id, limit);
    for (int pages = 0; all && pages < 100000; pages++) {
        struct h_resp r;
        cJSON *page = NULL, *objects, *o;
        const char *next;
        int ok;

        if (h_http("GET", port, path, NULL, NULL, &r) == 0 && r.status == 200)
            page = cJSON_Parse(r.body);
        objects = cJSON_GetObjectItemCaseSensitive(page, "objects");
        next = h_jstr(page, "next");
        ok = cJSON_IsArray(objects) && cJSON_GetArraySize(objects) <= limit &&
             (total < 0 || total == h_jnum(page, "total")) &&
             (next ? cJSON_GetArraySize(objects) == limit
                   : cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(page, "next"))) &&
             (!next || strlen(next) < sizeof(path));
        if (!ok)
            fprintf(stderr, "GET %s: %ld %s\n", path, r.status, r.body ? r.body : "");
        h_resp_free(&r);
        total = h_jnum(page, "total");
        while (ok && (o = cJSON_DetachItemFromArray(objects, 0)) != NULL)
            cJSON_AddItemToArray(all, o);
        if (ok && next)
            snprintf(path, sizeof(path), "%s", next);
        cJSON_Delete(page);
        if (!ok) {
            cJSON_Delete(all);
            return NULL;
        }
        if (!next)
            break;
    }
    if (all && total != cJSON_GetArraySize(all)) {
        fprintf(stderr, "objects of %s: %d listed of %g\n", id, cJSON_GetArraySize(all), total);
        cJSON_Delete(all);
        all = NULL;
    }
    return all;
}

long long h_file_sha256(const char *uri, char out[65])
{
    const char *path = strncmp(uri, "file://", 7) == 0 ? uri + 7 : uri;
    FILE *f = fopen(path, "rb");
    struct tf_buf b;
    char chunk[65536];
    long long len = -1;
    size_t n;

    snprintf(out, 65, "missing");
    if (!f)
        return -1;
    tf_buf_init(&b, 1u << 30);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && tf_buf_append(&b, chunk, n) == TF_OK)
        ;
    if (!ferror(f) && feof(f)) {
        tf_sha256_hex(b.data ? b.data : "", b.len, out);
        len = (long long)b.len;
    }
    fclose(f);
    tf_buf_cleanup(&b);
    return len;
}

cJSON *h_wait_stage(struct h_stack *st, int port, const char *id, int seconds)
{
    for (int i = 0; i < h_timeout(seconds) * 10 && h_stack_alive(st); i++) {
        cJSON *rec = h_get_record(port, id);
        const char *status = h_jstr(rec, "status");

        if (status && (strcmp(status, "SUCCESS") == 0 || strcmp(status, "FAILED") == 0))
            return rec;
        cJSON_Delete(rec);
        h_sleep_ms(100);
    }
    return NULL;
}

long h_topic_each(const char *prefix, const char *topic, long count, h_message_fn fn, void *arg)
{
    struct tf_kafka_consumer *cons = NULL;
    char full[160], group[200], err[256];
    long n = 0;
    int quiet = 0;

    snprintf(full, sizeof(full), "%s%s", prefix, topic);
    snprintf(group, sizeof(group), "%sscan-%ld-%s", prefix, (long)getpid(), topic);
    if (tf_kafka_consumer_new(getenv("TICKFLOW_KAFKA_BROKERS"), h_kafka_opts(), group, full, &cons,
                              err, sizeof(err)) != TF_OK) {
        fprintf(stderr, "scan %s: %s\n", full, err);
        return -1;
    }
    /* Up to 20 s for the group to form and the first message; then read
     * until 2 s pass without one (at most 5 minutes in all). */
    for (double start = h_now_s(); quiet < 4 && (count < 0 || n < count) &&
                                   h_now_s() - start < (n ? h_timeout(300) : h_timeout(20));) {
        rd_kafka_message_t *msg = tf_kafka_consumer_poll(cons, 500);

        if (!msg) {
            quiet += n > 0;
            continue;
        }
        quiet = 0;
        n++;
        fn(arg, msg);
        rd_kafka_message_destroy(msg);
    }
    tf_kafka_consumer_free(cons);
    return n;
}

struct needle_count {
    const char *needle;
    long *hits;
};

/* Counts a message whose value or a header's value holds the needle. */
static void count_needle(void *arg, const rd_kafka_message_t *msg)
{
    const struct needle_count *nc = arg;
    rd_kafka_headers_t *hdrs = NULL;
    size_t nlen = strlen(nc->needle), len;
    const char *name;
    const void *val;
    int hit = msg->payload && memmem(msg->payload, msg->len, nc->needle, nlen) != NULL;

    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (size_t h = 0;
             rd_kafka_header_get_all(hdrs, h, &name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR; h++)
            hit |= val && memmem(val, len, nc->needle, nlen) != NULL;
    }
    *nc->hits += hit;
}

long h_topic_scan(const char *prefix, const char *topic, const char *needle, long *with_needle)
{
    struct needle_count nc = {needle, with_needle};

    return h_topic_each(prefix, topic, -1, count_needle, &nc);
}

cJSON *h_call(const char *method, int port, const char *path, const char *body, const char *header,
              long *status)
{
    struct h_resp r;
    cJSON *out = NULL;

    *status = 0;
    if (h_http(method, port, path, body, header, &r) == 0) {
        *status = r.status;
        out = cJSON_Parse(r.body);
    }
    h_resp_free(&r);
    return out;
}

/* json packed as pg->encoding says (gzip or zstd) into packed. */
static enum tf_rc bronze_pack(const char *json, size_t len, const struct h_page *pg,
                              struct tf_buf *packed)
{
    enum tf_rc rc;

    if (strcmp(pg->encoding, "zstd") == 0) {
        struct tf_zstd *z = tf_zstd_new(1);
        rc = z ? tf_zstd_compress(z, json, len, packed) : TF_ERR_NOMEM;
        tf_zstd_free(z);
    } else {
        rc = tf_gzip(json, len, packed);
    }
    return rc;
}

/* The object extract would record for a page of packed bytes at uri. */
static cJSON *bronze_obj(const char *uri, const struct tf_buf *packed, const struct h_page *pg)
{
    cJSON *o = cJSON_CreateObject();
    char sha[65];

    tf_sha256_hex(packed->data ? packed->data : "", packed->len, sha);
    cJSON_AddStringToObject(o, "uri", uri);
    cJSON_AddNumberToObject(o, "bytes", (double)packed->len);
    cJSON_AddStringToObject(o, "sha256", sha);
    cJSON_AddStringToObject(o, "encoding", pg->encoding);
    cJSON_AddStringToObject(o, "provider", pg->provider);
    if (pg->dataset)
        cJSON_AddStringToObject(o, "dataset", pg->dataset);
    cJSON_AddStringToObject(o, "ticker", pg->ticker);
    cJSON_AddStringToObject(o, "timespan", pg->timespan);
    cJSON_AddNumberToObject(o, "page", pg->page);
    return o;
}

cJSON *h_bronze_page(const char *path, const char *json, size_t len, const struct h_page *pg)
{
    char real[PATH_MAX], uri[PATH_MAX + 8];
    struct tf_buf packed;
    cJSON *o = NULL;
    FILE *f;
    int ok;

    tf_buf_init(&packed, 64u << 20);
    f = bronze_pack(json, len, pg, &packed) == TF_OK ? fopen(path, "wb") : NULL;
    ok = f && fwrite(packed.data, 1, packed.len, f) == packed.len;
    if (f)
        ok = fclose(f) == 0 && ok;
    if (ok && realpath(path, real)) {
        snprintf(uri, sizeof(uri), "file://%s", real);
        o = bronze_obj(uri, &packed, pg);
    }
    tf_buf_cleanup(&packed);
    return o;
}

cJSON *h_lake_bronze_page(struct h_stack *st, const char *key, const char *json, size_t len,
                          const struct h_page *pg)
{
    struct tf_lake_obj obj;
    struct tf_buf packed;
    char err[512] = "";
    cJSON *o = NULL;
    enum tf_rc rc;

    tf_buf_init(&packed, 64u << 20);
    rc = bronze_pack(json, len, pg, &packed);
    if (rc == TF_OK && st->lake)
        rc = tf_lake_put(st->lake, key, packed.data, packed.len, &obj, err, sizeof(err));
    if (rc == TF_OK && st->lake)
        o = bronze_obj(obj.uri, &packed, pg);
    else
        fprintf(stderr, "hand-made page %s: %s\n", key, st->lake ? err : "no lake");
    tf_buf_cleanup(&packed);
    return o;
}

void h_lake_uri(const struct h_stack *st, const char *key, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", st->lake_base, key);
}

long long h_lake_read(struct h_stack *st, const char *uri, struct tf_buf *out)
{
    char err[512] = "", path[PATH_MAX + 8];
    const char *at = uri;

    /* A recorded file URI may name the lake by another spelling of its folder. */
    if (strncmp(uri, "s3://", 5) != 0) {
        char real[PATH_MAX];
        if (strncmp(at, "file://", 7) == 0)
            at += 7;
        if (realpath(at, real)) {
            snprintf(path, sizeof(path), "file://%s", real);
            at = path;
        }
    }
    if (!st->lake) {
        fprintf(stderr, "read %s: the stack has no lake\n", uri);
        return -1;
    }
    if (tf_lake_get(st->lake, at, NULL, out, err, sizeof(err)) != TF_OK) {
        fprintf(stderr, "read %s: %s\n", uri, err);
        return -1;
    }
    return (long long)out->len;
}

long long h_lake_sha256(struct h_stack *st, const char *uri, char out[65])
{
    struct tf_buf b;
    long long len;

    snprintf(out, 65, "missing");
    tf_buf_init(&b, 1u << 30);
    len = h_lake_read(st, uri, &b);
    if (len >= 0)
        tf_sha256_hex(b.data ? b.data : "", b.len, out);
    tf_buf_cleanup(&b);
    return len;
}

static cJSON *list_files;

static int on_list(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    char uri[PATH_MAX + 8];

    (void)sb;
    (void)ftw;
    if (flag == FTW_F) {
        snprintf(uri, sizeof(uri), "file://%s", path);
        cJSON_AddItemToArray(list_files, cJSON_CreateString(uri));
    }
    return 0;
}

/* The text of XML element content s (len bytes) with the five entities undone, into out. */
static void xml_text(const char *s, size_t len, char *out, size_t outlen)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < outlen;) {
        size_t k = 0;
        for (; k < sizeof(ents) / sizeof(ents[0]); k++) {
            size_t n = strlen(ents[k].ent);
            if (i + n <= len && strncmp(s + i, ents[k].ent, n) == 0) {
                out[o++] = ents[k].c;
                i += n;
                break;
            }
        }
        if (k == sizeof(ents) / sizeof(ents[0]))
            out[o++] = s[i++];
    }
    out[o] = '\0';
}

/*
 * ListObjectsV2 of the stack's prefix (or, with uploads, ListMultipartUploads:
 * the uploads begun and neither completed nor aborted), signed by libcurl
 * (SigV4; a bodiless GET whose query is sorted and encoded here), every key
 * as an s3:// URI appended to uris. 0 on success.
 */
static int s3_list(const struct h_stack *st, cJSON *uris, int uploads)
{
    const char *endpoint = getenv("TICKFLOW_LAKE_S3_ENDPOINT");
    const char *region = getenv("TICKFLOW_LAKE_S3_REGION");
    const char *addressing = getenv("TICKFLOW_LAKE_S3_ADDRESSING");
    const char *bucket = getenv("TICKFLOW_LAKE_S3_BUCKET");
    const char *b = st->lake_uri + 5, *pfx = strchr(b, '/');
    char token[1024] = "", prefix[600], sigv4[128];
    CURL *curl = curl_easy_init();
    int rc = 0;

    if (!curl || !pfx || !endpoint || !bucket)
        return -1;
    snprintf(prefix, sizeof(prefix), "%s/", pfx + 1);
    snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", region && *region ? region : "us-east-1");
    do {
        char *epfx = curl_easy_escape(curl, prefix, 0);
        char *etok = curl_easy_escape(curl, token, 0);
        const char *scheme_end = strstr(endpoint, "://");
        struct tf_buf url, body;
        long status = 0;
        CURLcode cc;

        tf_buf_init(&url, 8192);
        tf_buf_init(&body, 256u << 20);
        /* Path style unless told virtual (bucket.host). Query sorted by name. */
        if (addressing && strcmp(addressing, "virtual") == 0 && scheme_end)
            rc = tf_buf_printf(&url, "%.*s%s.%s/?", (int)(scheme_end + 3 - endpoint), endpoint,
                               bucket, scheme_end + 3) != TF_OK;
        else
            rc = tf_buf_printf(&url, "%s/%s?", endpoint, bucket) != TF_OK;
        if (!rc && token[0])
            rc = tf_buf_printf(&url, "continuation-token=%s&", etok) != TF_OK;
        if (!rc)
            rc = tf_buf_printf(&url, uploads ? "prefix=%s&uploads=" : "list-type=2&prefix=%s",
                               epfx) != TF_OK;
        curl_free(epfx);
        curl_free(etok);
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url.data);
        curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(curl, CURLOPT_USERNAME, getenv("TICKFLOW_LAKE_S3_ACCESS_KEY_ID"));
        curl_easy_setopt(curl, CURLOPT_PASSWORD, getenv("TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY"));
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
        cc = rc ? CURLE_OUT_OF_MEMORY : curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        token[0] = '\0';
        if (cc != CURLE_OK || status != 200) {
            fprintf(stderr, "list s3://%s/%s: %s, HTTP %ld\n", bucket, prefix,
                    curl_easy_strerror(cc), status);
            rc = -1;
        } else {
            const char *p = body.data ? body.data : "";
            char key[1024], uri[1400];

            while ((p = strstr(p, "<Key>")) != NULL) {
                const char *end = strstr(p, "</Key>");
                if (!end)
                    break;
                xml_text(p + 5, (size_t)(end - p - 5), key, sizeof(key));
                snprintf(uri, sizeof(uri), "s3://%s/%s", bucket, key);
                cJSON_AddItemToArray(uris, cJSON_CreateString(uri));
                p = end;
            }
            if (!uploads && strstr(body.data ? body.data : "", "<IsTruncated>true</IsTruncated>")) {
                const char *t = strstr(body.data, "<NextContinuationToken>");
                const char *e = t ? strstr(t, "</NextContinuationToken>") : NULL;
                if (t && e)
                    xml_text(t + 23, (size_t)(e - t - 23), token, sizeof(token));
                else
                    rc = -1;
            }
        }
        tf_buf_cleanup(&url);
        tf_buf_cleanup(&body);
    } while (rc == 0 && token[0]);
    curl_easy_cleanup(curl);
    return rc;
}

cJSON *h_lake_list(struct h_stack *st)
{
    cJSON *uris = cJSON_CreateArray();

    if (strncmp(st->lake_uri, "s3://", 5) == 0) {
        if (s3_list(st, uris, 0) != 0) {
            cJSON_Delete(uris);
            return NULL;
        }
        return uris;
    }
    list_files = uris;
    if (nftw(st->lake_base + 7, on_list, 16, FTW_PHYS) != 0) {
        fprintf(stderr, "list %s: %s\n", st->lake_base + 7, strerror(errno));
        cJSON_Delete(uris);
        uris = NULL;
    }
    list_files = NULL;
    return uris;
}

int h_lake_uploads(struct h_stack *st)
{
    cJSON *uris;
    int n;

    if (strncmp(st->lake_uri, "s3://", 5) != 0)
        return 0;
    uris = cJSON_CreateArray();
    n = s3_list(st, uris, 1) == 0 ? cJSON_GetArraySize(uris) : -1;
    cJSON_Delete(uris);
    return n;
}

int h_s3_proxy_start(struct h_s3_proxy *p, const char *faults)
{
    char cmd[1024];

    p->port = h_free_port();
    snprintf(cmd, sizeof(cmd),
             "exec python3 tests/env/s3_faults.py --port %d --upstream %s %s >/dev/null", p->port,
             getenv("TICKFLOW_LAKE_S3_ENDPOINT") ? getenv("TICKFLOW_LAKE_S3_ENDPOINT") : "",
             faults);
    p->pid = fork();
    if (p->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; p->pid > 0 && i < h_timeout(10) * 10; i++) {
        struct h_resp r;
        int up = h_http("GET", p->port, "/_faults/stats", NULL, NULL, &r) == 0 && r.status == 200;

        h_resp_free(&r);
        if (up)
            return 0;
        h_sleep_ms(100);
    }
    fprintf(stderr, "the fault proxy (tests/env/s3_faults.py %s) did not start\n", faults);
    h_s3_proxy_stop(p);
    return -1;
}

long h_s3_proxy_stat(const struct h_s3_proxy *p, const char *what)
{
    long status = 0;
    cJSON *st = h_call("GET", p->port, "/_faults/stats", NULL, NULL, &status);
    long n = cJSON_IsNumber(cJSON_GetObjectItem(st, what)) ? (long)h_jnum(st, what) : -1;

    cJSON_Delete(st);
    return n;
}

void h_s3_proxy_stop(struct h_s3_proxy *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        waitpid(p->pid, NULL, 0);
    }
    p->pid = 0;
}

int h_lake_paths_containing(struct h_stack *st, const char *needle)
{
    cJSON *uris;
    const cJSON *u;
    int n = 0;

    if (strncmp(st->lake_uri, "s3://", 5) != 0)
        return h_tree_paths_containing(st->lake_uri, needle);
    uris = h_lake_list(st);
    if (!uris)
        return -1;
    cJSON_ArrayForEach(u, uris)
    {
        if (cJSON_IsString(u) && strstr(u->valuestring, needle))
            n++;
    }
    cJSON_Delete(uris);
    return n;
}

double h_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long h_vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    }
    if (f)
        fclose(f);
    return kb;
}

int h_sql(PGconn *db, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

int h_add_job_tickers(PGconn *db, const char *job, const char *prefix, int ntickers)
{
    struct tf_buf list;
    const char *params[2] = {job, NULL};
    enum tf_rc rc = TF_OK;
    int out = -1;

    tf_buf_init(&list, 64u << 20);
    for (int k = 0; k < ntickers && rc == TF_OK; k++) {
        rc = tf_buf_puts(&list, k ? "," : "{");
        if (rc == TF_OK)
            rc = tf_buf_printf(&list, "%s%04d", prefix, k);
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(&list, ntickers ? "}" : "{}");
    params[1] = list.data;
    if (rc == TF_OK)
        out = h_sql(db,
                    "INSERT INTO tickflow.job_config (job_name, provider, tickers, multiplier,"
                    " timespan, updated_by) VALUES ($1, 'polygon', $2, 1, 'minute', 'test')",
                    2, params);
    tf_buf_cleanup(&list);
    return out;
}

int h_add_demo_job(PGconn *db)
{
    return h_sql(db,
                 "INSERT INTO tickflow.job_config (job_name, provider, tickers, multiplier,"
                 " timespan, interval_seconds, overlap_seconds, updated_by) VALUES"
                 " ('demo_us_equities', 'polygon', ARRAY['AAPL', 'MSFT', 'AMZN'], 1, 'minute',"
                 " 86400, 300, 'test') ON CONFLICT (job_name) DO NOTHING",
                 0, NULL);
}

int h_add_finished(PGconn *db, const char *id, const char *stage, const char *job,
                   const char *objects)
{
    const char *params[4] = {id, stage, job, objects};

    return h_sql(db,
                 "INSERT INTO tickflow.job_execution (execution_id, stage, job_name, status,"
                 " attempt, window_start, window_end, tickers, objects, worker_id, started_at,"
                 " finished_at, event_published_at)"
                 " SELECT $1, $2, job_name, 'SUCCESS', 1, '2024-03-04T14:30:00Z',"
                 " '2024-03-04T21:00:00Z', tickers, $4::jsonb, 'test', now(), now(), now()"
                 " FROM tickflow.job_config WHERE job_name = $3",
                 4, params);
}

void h_pg_checkpoint(PGconn *db)
{
    PGresult *res = PQexec(db, "CHECKPOINT");

    PQclear(res);
}
