/*
 * test_int_alert.c - alert delivery against real listeners on 127.0.0.1,
 * all started (and stopped) by this test:
 *
 *   - a webhook endpoint (libmicrohttpd in this process) that records each
 *     request and answers 200, 500, 404 or a redirect by path;
 *   - a listener that accepts connections and never answers (timeouts);
 *   - a port nobody listens on (connection refused);
 *   - two SMTP servers (tests/integration/smtp_sink.py), one that refuses
 *     a recipient, one that refuses every message, each storing what it got.
 *
 * Also the configuration rows (tf_alert_cfg_keys) through tf_cfg_load with a
 * fake environment, the _FILE variant and the redacted configuration log.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "aggregate/alert.h"
#include "tf/cfg.h"

#define HOOK_TOKEN "T0A1B2/B3C4D5/Xq9SecretHookToken"
#define SMTP_PASS  "pa55-w0rd-never-shown"
#define EXEC_ID    "5b0e7a52-3c1e-4f4e-9a77-0d8c2f1e6a01"
#define MAX_REQS   64

/* --- the webhook endpoint ---------------------------------------------- */

struct hook_req {
    char method[16];
    char path[256];
    char ctype[128];
    char *body;
    size_t len;
};

static struct {
    pthread_mutex_t mu;
    struct hook_req reqs[MAX_REQS];
    int n;
    int port;
} hook = {PTHREAD_MUTEX_INITIALIZER, {{{0}, {0}, {0}, NULL, 0}}, 0, 0};

struct conn_state {
    char *body;
    size_t len;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text,
                             const char *location)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (location)
        MHD_add_response_header(resp, "Location", location);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    struct conn_state *st = *req_cls;
    const char *ctype;
    char text[512], loc[300];

    (void)cls;
    (void)version;
    if (!st) {
        st = calloc(1, sizeof(*st));
        *req_cls = st;
        return st ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        char *grown = realloc(st->body, st->len + *upload_size + 1);

        if (!grown)
            return MHD_NO;
        st->body = grown;
        memcpy(st->body + st->len, upload, *upload_size);
        st->len += *upload_size;
        st->body[st->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    pthread_mutex_lock(&hook.mu);
    if (hook.n < MAX_REQS) {
        struct hook_req *r = &hook.reqs[hook.n++];

        snprintf(r->method, sizeof(r->method), "%s", method);
        snprintf(r->path, sizeof(r->path), "%s", url);
        snprintf(r->ctype, sizeof(r->ctype), "%s", ctype ? ctype : "");
        r->body = st->body;
        r->len = st->len;
        st->body = NULL;
    }
    pthread_mutex_unlock(&hook.mu);
    if (strncmp(url, "/services/", 10) == 0)
        return reply(conn, 200, "ok", NULL);
    if (strncmp(url, "/fail/", 6) == 0)
        return reply(conn, 500, "no_service", NULL);
    if (strncmp(url, "/redirect/", 10) == 0) {
        snprintf(loc, sizeof(loc), "http://localhost:%d/services/elsewhere", hook.port);
        return reply(conn, 302, "moved", loc);
    }
    /* An unknown hook: the answer quotes the path and any token argument. */
    {
        const char *tok = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
        snprintf(text, sizeof(text), "invalid_token: no hook at %s%s%s", url, tok ? "?token=" : "",
                 tok ? tok : "");
    }
    return reply(conn, 404, text, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *st = *req_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (st) {
        free(st->body);
        free(st);
    }
    *req_cls = NULL;
}

static int hook_count(void)
{
    int n;

    pthread_mutex_lock(&hook.mu);
    n = hook.n;
    pthread_mutex_unlock(&hook.mu);
    return n;
}

/* --- listeners that never answer, and ports that refuse ------------------ */

/* A socket that listens on 127.0.0.1 and never accepts: connections complete, nothing answers. */
static int silent_listener(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* --- the SMTP servers ------------------------------------------------------ */

struct sink {
    pid_t pid;
    int port;
    int sessions; /* sessions read so far */
    char dir[64];
};

/* Starts smtp_sink.py with its own folder; 0 when it printed its port. */
static int sink_start(struct sink *s, const char *opt1, const char *opt2)
{
    const char *script = "tests/integration/smtp_sink.py";
    int fds[2];
    char line[32];
    ssize_t got = 0;
    struct pollfd pfd;

    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/tf_alert_smtp_XXXXXX");
    if (!mkdtemp(s->dir) || access(script, R_OK) != 0 || pipe(fds) != 0)
        return -1;
    s->pid = fork();
    if (s->pid == 0) {
        const char *argv[6] = {"python3", script, s->dir, opt1, opt2, NULL};

        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlives the test */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    /* The port, up to its newline (the pipe may deliver it in pieces). */
    while (s->pid > 0 && (size_t)got < sizeof(line) - 1 && !memchr(line, '\n', (size_t)got) &&
           poll(&pfd, 1, h_timeout(15) * 1000) == 1) {
        ssize_t n = read(fds[0], line + got, sizeof(line) - 1 - (size_t)got);

        if (n <= 0)
            break;
        got += n;
    }
    close(fds[0]);
    if (got <= 0 || !memchr(line, '\n', (size_t)got))
        return -1;
    line[got] = '\0';
    s->port = (int)strtol(line, NULL, 10);
    return s->port > 0 ? 0 : -1;
}

/* Stops the sink and removes its folder; returns 1 when it was gone afterwards. */
static int sink_stop(struct sink *s)
{
    char path[128];
    int status = 0;

    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, &status, 0);
    }
    for (int i = 1; i <= s->sessions + 8; i++) {
        snprintf(path, sizeof(path), "%s/session-%04d.json", s->dir, i);
        unlink(path);
    }
    rmdir(s->dir);
    return s->pid > 0 && kill(s->pid, 0) != 0 && errno == ESRCH;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *data = NULL;
    long n;

    if (!fp)
        return NULL;
    n = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (n >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
        data = malloc((size_t)n + 1);
        if (data && fread(data, 1, (size_t)n, fp) != (size_t)n) {
            free(data);
            data = NULL;
        }
        if (data)
            data[n] = '\0';
    }
    fclose(fp);
    return data;
}

/* Waits for the sink's next session record (a new object), NULL after wait_ms. */
static cJSON *sink_next(struct sink *s, int wait_ms)
{
    char path[128];
    char *text = NULL;
    cJSON *root = NULL;

    snprintf(path, sizeof(path), "%s/session-%04d.json", s->dir, s->sessions + 1);
    for (int waited = 0; waited <= wait_ms; waited += 20) {
        if (access(path, R_OK) == 0)
            break;
        h_sleep_ms(20);
    }
    text = slurp(path);
    if (!text)
        return NULL;
    s->sessions++;
    root = cJSON_Parse(text);
    free(text);
    return root;
}

/* The n-th message of a session: data (borrowed) and its envelope. */
static cJSON *session_msg(const cJSON *sess, int n)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(sess, "messages"), n);
}

static int session_has_command(const cJSON *sess, const char *verb)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(sess, "commands"))
    {
        if (cJSON_IsString(c) && strcmp(c->valuestring, verb) == 0)
            return 1;
    }
    return 0;
}

/* --- helpers --------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct tf_alert sample_alert(void)
{
    struct tf_alert a;

    a.job_name = "demo_us_equities";
    a.execution_id = EXEC_ID;
    a.check = "avg_close";
    a.severity = "fail";
    a.value = 97.1;
    a.threshold = "[100, 200]";
    a.message = "average close 97.1 below 100";
    return a;
}

static void cfg_init(struct tf_alert_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->timeout_ms = h_timeout(10) * 1000;
}

/* The header block of a message (a new string), up to the blank line. */
static char *mail_headers(const char *data)
{
    const char *end = strstr(data, "\r\n\r\n");
    size_t n = end ? (size_t)(end - data) + 2 : strlen(data);
    char *h = malloc(n + 1);

    if (h) {
        memcpy(h, data, n);
        h[n] = '\0';
    }
    return h;
}

/* 1 when every LF of s follows a CR. */
static int crlf_only(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\n' && (p == s || p[-1] != '\r'))
            return 0;
        if (*p == '\r' && p[1] != '\n')
            return 0;
    }
    return 1;
}

/* Decodes a Subject made of RFC 2047 B words into out; returns 0 on success. */
static int decode_subject(const char *headers, char *out, size_t outlen)
{
    const char *p = strstr(headers, "\r\nSubject:");
    size_t used = 0;

    if (!p)
        return -1;
    p += 10;
    for (;;) {
        const char *w = strstr(p, "=?UTF-8?B?"), *e;
        unsigned char dec[128];
        char enc[128];
        int n;
        size_t elen, pad = 0;

        if (!w || (w != p + 1 && strncmp(p, "\r\n ", 3) != 0))
            break;
        e = strstr(w + 10, "?=");
        if (!e || (size_t)(e - (w + 10)) >= sizeof(enc))
            return -1;
        elen = (size_t)(e - (w + 10));
        memcpy(enc, w + 10, elen);
        enc[elen] = '\0';
        n = EVP_DecodeBlock(dec, (const unsigned char *)enc, (int)elen);
        if (n < 0)
            return -1;
        while (elen > 0 && enc[elen - 1] == '=') {
            elen--;
            pad++;
        }
        n -= (int)pad;
        if (used + (size_t)n >= outlen)
            return -1;
        memcpy(out + used, dec, (size_t)n);
        used += (size_t)n;
        p = e + 2;
        if (strncmp(p, "\r\n ", 3) != 0)
            break;
        p += 2; /* onto the folding space */
    }
    out[used] = '\0';
    return used > 0 ? 0 : -1;
}

/* --- configuration ----------------------------------------------------------- */

struct fake_env {
    const char *const *pairs; /* name, value, ..., NULL */
};

static const char *fake_lookup(const char *name, void *ud)
{
    const struct fake_env *env = ud;

    for (int i = 0; env->pairs[i]; i += 2) {
        if (strcmp(env->pairs[i], name) == 0)
            return env->pairs[i + 1];
    }
    return NULL;
}

struct svc_cfg {
    char *dsn;
    long port;
    struct tf_alert_cfg alert;
};

/* The service's own rows, then the alert rows. */
static size_t svc_keys(struct tf_cfg_key *keys, size_t max)
{
    static const struct tf_cfg_key own[] = {
        {"T_DSN", TF_CFG_STR, offsetof(struct svc_cfg, dsn), NULL, TF_CFG_SECRET, 0, 0},
        {"T_PORT", TF_CFG_INT, offsetof(struct svc_cfg, port), "8083", 0, 1, 65535},
    };
    size_t n = TF_ARRAY_LEN(own);

    memcpy(keys, own, sizeof(own));
    return n + tf_alert_cfg_keys(keys + n, max - n, offsetof(struct svc_cfg, alert));
}

/* Runs tf_cfg_log with stdout sent to a file; returns what it printed (a new string). */
static char *captured_cfg_log(const struct tf_cfg_key *keys, size_t n, const void *cfg)
{
    char path[] = "/tmp/tf_alert_logXXXXXX";
    int fd = mkstemp(path), saved;
    char *text = NULL;

    if (fd < 0)
        return NULL;
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    tf_cfg_log(keys, n, cfg);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fd);
    text = slurp(path);
    unlink(path);
    return text;
}

static void test_cfg(void)
{
    struct tf_cfg_key keys[16], few[3];
    struct svc_cfg cfg;
    char err[1024], path[] = "/tmp/tf_alert_hookXXXXXX";
    char *log = NULL;
    size_t n;
    int fd;

    CHECK_EQ_INT(tf_alert_cfg_keys(keys, 16, 0), TF_ALERT_CFG_NKEYS);
    CHECK_EQ_INT(tf_alert_cfg_keys(few, 3, 0), 3);
    CHECK_STR(few[0].name, "TICKFLOW_ALERT_MAIL_FROM");
    n = tf_alert_cfg_keys(keys, 16, 100);
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(keys[i - 1].name, keys[i].name) < 0, "rows in alphabetical order at %zu", i);
    CHECK_EQ_INT(keys[6].offset, 100 + offsetof(struct tf_alert_cfg, webhook_url));
    CHECK(keys[6].flags & TF_CFG_SECRET, "the webhook URL is a secret");
    CHECK(keys[2].flags & TF_CFG_SECRET, "the SMTP password is a secret");

    /* The webhook URL from its _FILE variant; defaults for the rest. */
    fd = mkstemp(path);
    {
        const char *line = "https://hooks.example.com/services/" HOOK_TOKEN "\n";

        CHECK(fd >= 0 && write(fd, line, strlen(line)) == (ssize_t)strlen(line),
              "secret file written");
    }
    close(fd);
    n = svc_keys(keys, TF_ARRAY_LEN(keys));
    CHECK_EQ_INT(n, 2 + TF_ALERT_CFG_NKEYS);
    {
        const char *pairs[] = {"T_DSN",
                               "postgresql://u:dbpw@h/db",
                               "TICKFLOW_ALERT_WEBHOOK_URL_FILE",
                               path,
                               "TICKFLOW_ALERT_SMTP_URL",
                               "smtp://mail.example.com:25",
                               "TICKFLOW_ALERT_SMTP_USER",
                               "alerts",
                               "TICKFLOW_ALERT_SMTP_PASSWORD",
                               SMTP_PASS,
                               "TICKFLOW_ALERT_MAIL_TO",
                               "ops@example.com,dev@example.com",
                               NULL};
        struct fake_env env = {pairs};

        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(keys, n, fake_lookup, &env, &cfg, err, sizeof(err)) == TF_OK,
              "alert config loads: %s", err);
        CHECK_STR(cfg.alert.webhook_url, "https://hooks.example.com/services/" HOOK_TOKEN);
        CHECK_STR(cfg.alert.smtp_url, "smtp://mail.example.com:25");
        CHECK_STR(cfg.alert.smtp_user, "alerts");
        CHECK_STR(cfg.alert.smtp_password, SMTP_PASS);
        CHECK_STR(cfg.alert.mail_from, "tickflow@localhost");
        CHECK_STR(cfg.alert.mail_to, "ops@example.com,dev@example.com");
        CHECK_EQ_INT(cfg.alert.timeout_ms, 10000);
        CHECK_EQ_INT(cfg.port, 8083);
        CHECK_EQ_INT(tf_alert_channels(&cfg.alert), TF_ALERT_WEBHOOK | TF_ALERT_MAIL);

        log = captured_cfg_log(keys, n, &cfg);
        CHECK(log && strstr(log, "TICKFLOW_ALERT_WEBHOOK_URL=(set)"), "webhook URL shown as (set)");
        CHECK(log && strstr(log, "TICKFLOW_ALERT_SMTP_PASSWORD=(set)"), "password shown as (set)");
        CHECK(log && strstr(log, "TICKFLOW_ALERT_SMTP_URL=smtp://mail.example.com:25"),
              "SMTP URL shown");
        CHECK(log && strstr(log, "TICKFLOW_ALERT_MAIL_FROM=tickflow@localhost"), "default shown");
        CHECK(log && strstr(log, "TICKFLOW_ALERT_TIMEOUT_MS=10000"), "timeout shown");
        CHECK(log && !strstr(log, "SecretHookToken") && !strstr(log, "hooks.example.com"),
              "the webhook URL is not in the log");
        CHECK(log && !strstr(log, SMTP_PASS), "the password is not in the log");
        free(log);
        tf_cfg_cleanup(keys, n, &cfg);
    }
    /* Both forms of a secret, and timeouts out of range or not numbers, all reported at once. */
    {
        const char *pairs[] = {"TICKFLOW_ALERT_WEBHOOK_URL",
                               "https://hooks.example.com/services/x",
                               "TICKFLOW_ALERT_WEBHOOK_URL_FILE",
                               path,
                               "TICKFLOW_ALERT_TIMEOUT_MS",
                               "5",
                               NULL};
        struct fake_env env = {pairs};

        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(keys, n, fake_lookup, &env, &cfg, err, sizeof(err)) == TF_ERR_INVALID,
              "bad alert config refused");
        CHECK(strstr(err, "TICKFLOW_ALERT_WEBHOOK_URL: set it or its _FILE variant, not both"),
              "both forms named: %s", err);
        CHECK(strstr(err, "TICKFLOW_ALERT_TIMEOUT_MS: expected an integer in 100..600000"),
              "timeout bound named: %s", err);
        CHECK(!strstr(err, "SecretHookToken"), "the token is not in the report");
        tf_cfg_cleanup(keys, n, &cfg);
    }
    {
        const char *pairs[] = {"TICKFLOW_ALERT_TIMEOUT_MS", "10s", NULL};
        struct fake_env env = {pairs};

        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(keys, n, fake_lookup, &env, &cfg, err, sizeof(err)) == TF_ERR_INVALID,
              "a timeout that is not a number refused");
        CHECK_EQ_INT(tf_alert_channels(&cfg.alert), 0);
        tf_cfg_cleanup(keys, n, &cfg);
    }
    unlink(path);

    /* Channels: mail needs a URL and a recipient. */
    {
        struct tf_alert_cfg c;

        memset(&c, 0, sizeof(c));
        CHECK_EQ_INT(tf_alert_channels(&c), 0);
        CHECK_EQ_INT(tf_alert_channels(NULL), 0);
        c.smtp_url = "smtp://127.0.0.1:25";
        CHECK_EQ_INT(tf_alert_channels(&c), 0);
        c.mail_to = " , ";
        CHECK_EQ_INT(tf_alert_channels(&c), 0);
        c.mail_to = "a@b.c";
        CHECK_EQ_INT(tf_alert_channels(&c), TF_ALERT_MAIL);
        c.webhook_url = "";
        CHECK_EQ_INT(tf_alert_channels(&c), TF_ALERT_MAIL);
        c.webhook_url = "http://127.0.0.1/x";
        CHECK_EQ_INT(tf_alert_channels(&c), TF_ALERT_WEBHOOK | TF_ALERT_MAIL);
    }
}

/* --- webhook ------------------------------------------------------------------- */

static const cJSON *tfobj(const cJSON *root)
{
    return cJSON_GetObjectItem(root, "tickflow");
}

static void test_webhook_ok(void)
{
    struct tf_alert_cfg cfg;
    struct tf_alert a = sample_alert();
    char url[300], err[1024];
    unsigned delivered = 99;
    cJSON *root = NULL;
    const cJSON *blocks;
    const char *text;
    int before = hook_count();

    cfg_init(&cfg);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/services/%s", hook.port, HOOK_TOKEN);
    cfg.webhook_url = url;
    /* Characters JSON and Slack both care about, a line break, UTF-8. */
    a.check = "avg_close \"quoted\" \\ back & <tag>";
    a.message = "average close 97.1 below 100\nsecond line, d\xc3\xa9j\xc3\xa0 vu \xe2\x82\xac";
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK | TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) ==
              TF_OK,
          "webhook send: %s", err);
    CHECK_EQ_INT(delivered, TF_ALERT_WEBHOOK);
    CHECK_STR(err, "");
    CHECK_EQ_INT(hook_count(), before + 1);
    if (hook_count() != before + 1)
        return;
    CHECK_STR(hook.reqs[before].method, "POST");
    CHECK_STR(hook.reqs[before].path, "/services/" HOOK_TOKEN);
    CHECK_STR(hook.reqs[before].ctype, "application/json");
    root = cJSON_ParseWithLength(hook.reqs[before].body, hook.reqs[before].len);
    CHECK(root != NULL, "the body is JSON: %s", hook.reqs[before].body);
    CHECK_STR(h_jstr(tfobj(root), "job_name"), "demo_us_equities");
    CHECK_STR(h_jstr(tfobj(root), "execution_id"), EXEC_ID);
    CHECK_STR(h_jstr(tfobj(root), "check"), "avg_close \"quoted\" \\ back & <tag>");
    CHECK_STR(h_jstr(tfobj(root), "severity"), "fail");
    CHECK_EQ_DBL(h_jnum(tfobj(root), "value"), 97.1);
    CHECK_STR(h_jstr(tfobj(root), "threshold"), "[100, 200]");
    CHECK_STR(h_jstr(tfobj(root), "message"),
              "average close 97.1 below 100 second line, d\xc3\xa9j\xc3\xa0 vu \xe2\x82\xac");
    text = h_jstr(root, "text");
    CHECK_STR(text,
              "[tickflow] FAIL demo_us_equities/avg_close \"quoted\" \\ back &amp; &lt;tag&gt;: "
              "average close 97.1 below 100 second line, d\xc3\xa9j\xc3\xa0 vu \xe2\x82\xac "
              "(value 97.1, threshold [100, 200], execution " EXEC_ID ")");
    blocks = cJSON_GetObjectItem(root, "blocks");
    CHECK_EQ_INT(cJSON_GetArraySize(blocks), 3);
    CHECK_STR(h_jstr(cJSON_GetArrayItem(blocks, 0), "type"), "header");
    CHECK_STR(h_jstr(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 0), "text"), "text"),
              "[tickflow] FAIL demo_us_equities avg_close \"quoted\" \\ back & <tag>");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 2), "fields")),
                 6);
    CHECK_STR(
        h_jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 2), "fields"), 3),
               "text"),
        "Value: 97.1");
    cJSON_Delete(root);

    /* No value (NaN) is null; invalid UTF-8 becomes U+FFFD; still JSON. */
    a = sample_alert();
    a.value = NAN;
    a.threshold = NULL;
    a.message = "bad \xff byte \xc3";
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) == TF_OK,
          "webhook send without value: %s", err);
    CHECK_EQ_INT(hook_count(), before + 2);
    if (hook_count() != before + 2)
        return;
    root = cJSON_ParseWithLength(hook.reqs[before + 1].body, hook.reqs[before + 1].len);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(tfobj(root), "value")), "NaN is sent as null");
    CHECK_STR(h_jstr(tfobj(root), "threshold"), "none");
    CHECK_STR(h_jstr(tfobj(root), "message"), "bad \xef\xbf\xbd byte \xef\xbf\xbd");
    CHECK(h_jstr(root, "text") && strstr(h_jstr(root, "text"), "(value none, threshold none"),
          "summary says none: %s", h_jstr(root, "text"));
    cJSON_Delete(root);

    /* A huge message is cut on a character boundary, marked with "...". */
    {
        char big[5000];

        for (size_t i = 0; i + 2 < sizeof(big); i += 2)
            memcpy(big + i, "\xc3\xa9", 2);
        big[sizeof(big) - 2] = '\0';
        a = sample_alert();
        a.message = big;
        CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) == TF_OK,
              "webhook send, big message: %s", err);
        root = cJSON_ParseWithLength(hook.reqs[before + 2].body, hook.reqs[before + 2].len);
        text = h_jstr(tfobj(root), "message");
        CHECK(text && strlen(text) <= 900 && strlen(text) >= 890, "message capped: %zu",
              text ? strlen(text) : 0);
        CHECK(text && strcmp(text + strlen(text) - 3, "...") == 0 &&
                  strncmp(text + strlen(text) - 5, "\xc3\xa9", 2) == 0,
              "cut after a whole character");
        cJSON_Delete(root);
    }
}

static void test_webhook_errors(void)
{
    struct tf_alert_cfg cfg;
    struct tf_alert a = sample_alert();
    char url[300], err[1024];
    unsigned delivered = 99;
    long long t0, took;
    int before, port, fd;

    cfg_init(&cfg);
    cfg.webhook_url = url;

    /* 500: the channel and the status, not the token. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/fail/%s", hook.port, HOOK_TOKEN);
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) ==
              TF_ERR_UPSTREAM,
          "500 fails");
    CHECK_EQ_INT(delivered, 0);
    {
        char want[200];

        snprintf(want, sizeof(want), "webhook: HTTP 500 from http://127.0.0.1:%d: no_service",
                 hook.port);
        CHECK_STR(err, want);
    }
    CHECK(!strstr(err, "Secret") && !strstr(err, "/fail"), "no path in: %s", err);

    /* An answer that quotes the URL has the token taken out. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nohook/%s", hook.port, HOOK_TOKEN);
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) ==
              TF_ERR_UPSTREAM,
          "404 fails");
    CHECK(strstr(err, "webhook: HTTP 404") && strstr(err, "invalid_token: no hook at ***"),
          "404 reported, token masked: %s", err);
    CHECK(!strstr(err, "SecretHookToken") && !strstr(err, "T0A1B2"), "no token in: %s", err);
    /* A token in the query is taken out as well. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nohook/q?token=SecretQueryTok9", hook.port);
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) ==
              TF_ERR_UPSTREAM,
          "404 fails");
    CHECK(strstr(err, "webhook: HTTP 404") != NULL, "404 reported: %s", err);
    CHECK(!strstr(err, "SecretQueryTok9"), "no query token in: %s", err);

    /* A redirect is not followed (not even to the same server). */
    before = hook_count();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/redirect/%s", hook.port, HOOK_TOKEN);
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) ==
              TF_ERR_UPSTREAM,
          "302 fails");
    CHECK(strstr(err, "webhook: HTTP 302") && strstr(err, "redirects are not followed"),
          "redirect reported: %s", err);
    CHECK_EQ_INT(hook_count(), before + 1);

    /* Only http and https. */
    snprintf(url, sizeof(url), "file:///etc/passwd");
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) == TF_ERR_INVALID,
          "file:// refused");
    CHECK_STR(err, "webhook: TICKFLOW_ALERT_WEBHOOK_URL is not an http(s) URL with a host");
    snprintf(url, sizeof(url), "ftp://127.0.0.1:%d/services/%s", hook.port, HOOK_TOKEN);
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) == TF_ERR_INVALID,
          "ftp:// refused");
    CHECK(!strstr(err, "Secret"), "no token in: %s", err);

    /* Connection refused: fast. */
    port = h_free_port();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/services/%s", port, HOOK_TOKEN);
    t0 = now_ms();
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) ==
              TF_ERR_UPSTREAM,
          "refused fails");
    took = now_ms() - t0;
    CHECK(took < h_timeout(3) * 1000, "refused within 3 s: %lld ms", took);
    CHECK(strstr(err, "webhook: Couldn't connect to server") && strstr(err, "Failed to connect"),
          "refusal reported: %s", err);
    CHECK(!strstr(err, "Secret"), "no token in: %s", err);

    /* Nobody answers: the timeout holds. */
    fd = silent_listener(&port);
    CHECK(fd >= 0, "silent listener");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/services/%s", port, HOOK_TOKEN);
    cfg.timeout_ms = 500;
    t0 = now_ms();
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) ==
              TF_ERR_UPSTREAM,
          "silent endpoint fails");
    took = now_ms() - t0;
    CHECK(took >= 450 && took < 500 + h_timeout(2) * 1000, "timed out after 500 ms: %lld ms", took);
    CHECK(strstr(err, "webhook: Timeout was reached"), "timeout reported: %s", err);
    CHECK(!strstr(err, "Secret"), "no token in: %s", err);
    if (fd >= 0)
        close(fd);

    /* An alert without its identity is refused before anything is sent. */
    before = hook_count();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/services/%s", hook.port, HOOK_TOKEN);
    a.execution_id = NULL;
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) == TF_ERR_INVALID,
          "alert without execution id refused");
    CHECK_EQ_INT(hook_count(), before);
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, NULL, &delivered, err, sizeof(err)) ==
              TF_ERR_INVALID,
          "no alert refused");
}

struct par_arg {
    const struct tf_alert_cfg *cfg;
    enum tf_rc rc;
};

static void *par_send(void *p)
{
    struct par_arg *arg = p;
    struct tf_alert a = sample_alert();
    char err[256];

    arg->rc = tf_alert_send(arg->cfg, TF_ALERT_WEBHOOK, &a, NULL, err, sizeof(err));
    return NULL;
}

/* Several threads at once, each with its own transfer. */
static void test_parallel(void)
{
    struct tf_alert_cfg cfg;
    struct par_arg args[6];
    pthread_t th[6];
    char url[300];
    int before = hook_count();
    int ok = 0;

    cfg_init(&cfg);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/services/%s", hook.port, HOOK_TOKEN);
    cfg.webhook_url = url;
    for (int i = 0; i < 6; i++) {
        args[i].cfg = &cfg;
        pthread_create(&th[i], NULL, par_send, &args[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].rc == TF_OK;
    }
    CHECK_EQ_INT(ok, 6);
    CHECK_EQ_INT(hook_count(), before + 6);
}

/* --- mail ------------------------------------------------------------------------ */

static void test_mail_ok(struct sink *sink)
{
    struct tf_alert_cfg cfg;
    struct tf_alert a = sample_alert();
    char url[100], err[1024], *hdrs = NULL;
    unsigned delivered = 99;
    cJSON *sess = NULL;
    const cJSON *msg, *rcpts;
    const char *data;

    cfg_init(&cfg);
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", sink->port);
    cfg.smtp_url = url;
    cfg.mail_from = "alerts@tickflow.test";
    cfg.mail_to = " ops@example.com , dev@example.com,";
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK | TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) ==
              TF_OK,
          "mail send: %s", err);
    CHECK_EQ_INT(delivered, TF_ALERT_MAIL);
    sess = sink_next(sink, h_timeout(5) * 1000);
    CHECK(sess != NULL, "the SMTP server recorded the session");
    msg = session_msg(sess, 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(sess, "messages")), 1);
    CHECK_STR(h_jstr(msg, "mail_from"), "<alerts@tickflow.test>");
    rcpts = cJSON_GetObjectItem(msg, "rcpt_tos");
    CHECK_EQ_INT(cJSON_GetArraySize(rcpts), 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(rcpts, 0)), "<ops@example.com>");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(rcpts, 1)), "<dev@example.com>");
    CHECK(!session_has_command(sess, "AUTH"), "no AUTH without credentials");
    data = h_jstr(msg, "data");
    CHECK(data != NULL, "message data");
    if (!data) {
        cJSON_Delete(sess);
        return;
    }
    hdrs = mail_headers(data);
    CHECK(crlf_only(data), "CRLF line endings only");
    CHECK(strncmp(hdrs, "Date: ", 6) == 0, "Date first: %.40s", hdrs);
    {
        /* "Date: Tue, 05 Mar 2024 14:30:00 +0000" */
        char wd[4], mon[4];
        int d, y, hh, mm, ss, zone;

        CHECK(sscanf(hdrs, "Date: %3s, %d %3s %d %d:%d:%d %d", wd, &d, mon, &y, &hh, &mm, &ss,
                     &zone) == 8 &&
                  wd[3] == '\0' && y >= 2024 && zone == 0,
              "RFC 5322 date: %.45s", hdrs);
    }
    CHECK(strstr(hdrs, "\r\nFrom: alerts@tickflow.test\r\n"), "From: %s", hdrs);
    CHECK(strstr(hdrs, "\r\nTo: ops@example.com, dev@example.com\r\n"), "To: %s", hdrs);
    CHECK(strstr(hdrs, "\r\nSubject: [tickflow] fail demo_us_equities avg_close\r\n"),
          "Subject: %s", hdrs);
    CHECK(strstr(hdrs, "\r\nContent-Type: text/plain; charset=utf-8\r\n"), "Content-Type: %s",
          hdrs);
    {
        const char *mid = strstr(hdrs, "\r\nMessage-ID: <");
        const char *end = mid ? strstr(mid + 15, "@tickflow.test>\r\n") : NULL;

        CHECK(mid && end && end - (mid + 15) == 36, "Message-ID <uuid@tickflow.test>: %s", hdrs);
    }
    CHECK(strstr(data, "\r\n\r\n") &&
              strstr(strstr(data, "\r\n\r\n"), "\r\njob: demo_us_equities\r\n"),
          "body has the job: %s", data);
    CHECK(strstr(data, "\r\nexecution_id: " EXEC_ID "\r\n"), "body has the execution id");
    CHECK(strstr(data, "\r\ncheck: avg_close\r\n"), "body has the check");
    CHECK(strstr(data, "\r\nseverity: fail\r\n"), "body has the severity");
    CHECK(strstr(data, "\r\nvalue: 97.1\r\n"), "body has the value");
    CHECK(strstr(data, "\r\nthreshold: [100, 200]\r\n"), "body has the threshold");
    CHECK(strstr(data, "\r\nmessage: average close 97.1 below 100\r\n"), "body has the message");
    free(hdrs);
    cJSON_Delete(sess);

    /* Header injection: CR/LF in a field stay inside its line; UTF-8 Subject as encoded words. */
    a.job_name = "j\xc3\xb6"
                 "b_with_a_rather_long_name_for_two_words";
    a.check = "avg_close\r\nBcc: evil@example.com";
    a.message = "line one\r\n.\r\nRCPT TO:<evil@example.com>";
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_OK,
          "mail send with CR/LF in fields: %s", err);
    sess = sink_next(sink, h_timeout(5) * 1000);
    msg = session_msg(sess, 0);
    data = h_jstr(msg, "data");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(msg, "rcpt_tos")), 2);
    CHECK(data != NULL, "second message data");
    if (data) {
        char subject[512];

        hdrs = mail_headers(data);
        CHECK(!strstr(hdrs, "\r\nBcc:") && strncmp(hdrs, "Bcc:", 4) != 0, "no Bcc header: %s",
              hdrs);
        CHECK(strstr(hdrs, "\r\nSubject: =?UTF-8?B?"), "encoded Subject: %s", hdrs);
        CHECK(decode_subject(hdrs, subject, sizeof(subject)) == 0, "Subject decodes: %s", hdrs);
        CHECK_STR(subject, "[tickflow] fail j\xc3\xb6"
                           "b_with_a_rather_long_name_for_two_words avg_close  Bcc: "
                           "evil@example.com");
        CHECK(strstr(hdrs, "?=\r\n =?UTF-8?B?"), "Subject folded into two words: %s", hdrs);
        CHECK(strstr(data, "\r\ncheck: avg_close  Bcc: evil@example.com\r\n"), "check on one line");
        CHECK(strstr(data, "\r\nmessage: line one  .  RCPT TO:<evil@example.com>\r\n"),
              "message on one line: %s", data);
        CHECK(crlf_only(data), "CRLF line endings only");
        free(hdrs);
    }
    cJSON_Delete(sess);

    /* Many recipients: each in the envelope, the To header folded into short lines. */
    a = sample_alert();
    cfg.mail_to = "first.recipient@operations.example.com,second.recipient@operations.example.com,"
                  "third.recipient@operations.example.com,fourth.recipient@operations.example.com";
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_OK,
          "mail to four: %s", err);
    sess = sink_next(sink, h_timeout(5) * 1000);
    msg = session_msg(sess, 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(msg, "rcpt_tos")), 4);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "rcpt_tos"), 3)),
              "<fourth.recipient@operations.example.com>");
    data = h_jstr(msg, "data");
    CHECK(data && strstr(data, "\r\nTo: first.recipient@operations.example.com,\r\n"
                               " second.recipient@operations.example.com,\r\n"
                               " third.recipient@operations.example.com,\r\n"
                               " fourth.recipient@operations.example.com\r\n"),
          "To folded: %s", data ? data : "(none)");
    for (const char *l = data; l && *l;) {
        const char *e = strstr(l, "\r\n");
        size_t len = e ? (size_t)(e - l) : strlen(l);

        if (strncmp(l, "\r\n", 2) == 0 || len == 0)
            break; /* end of the header */
        CHECK(len <= 78, "header line within 78: %.*s", (int)len, l);
        l = e ? e + 2 : l + len;
    }
    cJSON_Delete(sess);
}

static void test_mail_errors(struct sink *sink, struct sink *refusing)
{
    struct tf_alert_cfg cfg;
    struct tf_alert a = sample_alert();
    char url[200], err[1024];
    unsigned delivered = 99;
    cJSON *sess = NULL;
    long long t0, took;
    int port, fd;

    cfg_init(&cfg);
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", sink->port);
    cfg.smtp_url = url;
    cfg.mail_to = "ops@example.com, nobody@example.com";

    /* A refused recipient fails the channel with the server's code. */
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_UPSTREAM,
          "refused recipient fails");
    CHECK_EQ_INT(delivered, 0);
    CHECK(strncmp(err, "mail: ", 6) == 0 && strstr(err, "550"), "550 reported: %s", err);
    sess = sink_next(sink, h_timeout(5) * 1000);
    CHECK(sess != NULL, "session recorded");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(sess, "messages")), 0);
    cJSON_Delete(sess);

    /* A refused message. */
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", refusing->port);
    cfg.mail_to = "ops@example.com";
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_UPSTREAM,
          "refused message fails");
    CHECK(strncmp(err, "mail: ", 6) == 0 && strstr(err, "SMTP 554"), "554 reported: %s", err);
    cJSON_Delete(sink_next(refusing, h_timeout(5) * 1000));

    /* Credentials over smtp:// need STARTTLS, which this server does not offer: no AUTH sent. */
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", sink->port);
    cfg.smtp_user = "alerts";
    cfg.smtp_password = SMTP_PASS;
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_UPSTREAM,
          "credentials without TLS refused");
    CHECK(strncmp(err, "mail: Requested SSL level failed", 32) == 0 &&
              strstr(err, "credentials are only sent over TLS") && !strstr(err, SMTP_PASS),
          "reported: %s", err);
    sess = sink_next(sink, h_timeout(5) * 1000);
    CHECK(sess != NULL, "session recorded");
    CHECK(session_has_command(sess, "EHLO") && !session_has_command(sess, "AUTH") &&
              !session_has_command(sess, "MAIL"),
          "stopped after EHLO, no AUTH");
    cJSON_Delete(sess);
    cfg.smtp_user = NULL;
    cfg.smtp_password = NULL;

    /* A password in the URL is refused before connecting, and not repeated. */
    snprintf(url, sizeof(url), "smtp://alerts:%s@127.0.0.1:%d", SMTP_PASS, sink->port);
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_INVALID,
          "password in URL refused");
    CHECK(strstr(err, "must not carry a password") && !strstr(err, SMTP_PASS), "reported: %s", err);

    /* Only smtp and smtps. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", sink->port);
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_INVALID,
          "http:// for mail refused");
    CHECK_STR(err, "mail: TICKFLOW_ALERT_SMTP_URL is not an smtp(s) URL with a host");

    /* Recipients and sender that are not plain addresses. */
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", sink->port);
    cfg.mail_to = "ops@example.com, evil@example.com\r\nRCPT TO:<x@y.z>";
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_INVALID,
          "bad recipient refused");
    CHECK_STR(err, "mail: entry 2 of TICKFLOW_ALERT_MAIL_TO is not a plain address");
    cfg.mail_to = "ops@example.com";
    cfg.mail_from = "Tick Flow <tf@example.com>";
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_INVALID,
          "bad sender refused");
    CHECK_STR(err, "mail: TICKFLOW_ALERT_MAIL_FROM is not a plain address");
    cfg.mail_from = NULL;

    /* Refused connection and a server that never greets. */
    port = h_free_port();
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
    t0 = now_ms();
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_UPSTREAM,
          "refused SMTP fails");
    took = now_ms() - t0;
    CHECK(took < h_timeout(3) * 1000, "refused within 3 s: %lld ms", took);
    CHECK(strstr(err, "mail: Couldn't connect to server"), "reported: %s", err);
    fd = silent_listener(&port);
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
    cfg.timeout_ms = 500;
    t0 = now_ms();
    CHECK(tf_alert_send(&cfg, TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) == TF_ERR_UPSTREAM,
          "silent SMTP fails");
    took = now_ms() - t0;
    CHECK(took >= 450 && took < 500 + h_timeout(2) * 1000, "timed out after 500 ms: %lld ms", took);
    CHECK(strstr(err, "mail: Timeout was reached"), "reported: %s", err);
    if (fd >= 0)
        close(fd);
}

/* Both channels: the webhook fails, mail works; a retry of what is left sends only the webhook. */
static void test_both(struct sink *sink)
{
    struct tf_alert_cfg cfg;
    struct tf_alert a = sample_alert();
    char hook_url[300], smtp_url[100], err[1024];
    unsigned delivered = 99;
    cJSON *sess = NULL;
    int before = hook_count();

    cfg_init(&cfg);
    snprintf(hook_url, sizeof(hook_url), "http://127.0.0.1:%d/fail/%s", hook.port, HOOK_TOKEN);
    snprintf(smtp_url, sizeof(smtp_url), "smtp://127.0.0.1:%d", sink->port);
    cfg.webhook_url = hook_url;
    cfg.smtp_url = smtp_url;
    cfg.mail_to = "ops@example.com,dev@example.com";
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK | TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) ==
              TF_ERR_UPSTREAM,
          "one channel failing fails the send");
    CHECK_EQ_INT(delivered, TF_ALERT_MAIL);
    CHECK(strstr(err, "webhook: HTTP 500") && !strstr(err, "mail"), "only the webhook named: %s",
          err);
    CHECK(!strstr(err, "Secret"), "no token in: %s", err);
    CHECK_EQ_INT(hook_count(), before + 1);
    sess = sink_next(sink, h_timeout(5) * 1000);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(sess, "messages")), 1);
    cJSON_Delete(sess);

    /* The retry skips what was delivered. */
    snprintf(hook_url, sizeof(hook_url), "http://127.0.0.1:%d/services/%s", hook.port, HOOK_TOKEN);
    CHECK(tf_alert_send(&cfg, (TF_ALERT_WEBHOOK | TF_ALERT_MAIL) & ~delivered, &a, &delivered, err,
                        sizeof(err)) == TF_OK,
          "retry: %s", err);
    CHECK_EQ_INT(delivered, TF_ALERT_WEBHOOK);
    CHECK_EQ_INT(hook_count(), before + 2);
    sess = sink_next(sink, 300);
    CHECK(sess == NULL, "no second mail");
    cJSON_Delete(sess);

    /* Both failing: both named. */
    snprintf(hook_url, sizeof(hook_url), "http://127.0.0.1:%d/fail/%s", hook.port, HOOK_TOKEN);
    cfg.mail_to = "nobody@example.com";
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK | TF_ALERT_MAIL, &a, &delivered, err, sizeof(err)) ==
              TF_ERR_UPSTREAM,
          "both failing");
    CHECK_EQ_INT(delivered, 0);
    CHECK(strstr(err, "webhook: HTTP 500") && strstr(err, "; mail: ") && strstr(err, "550"),
          "both named: %s", err);
    cJSON_Delete(sink_next(sink, h_timeout(5) * 1000));

    /* A channel asked for but not configured is skipped; nothing configured is nothing to do. */
    cfg.webhook_url = NULL;
    before = hook_count();
    CHECK(tf_alert_send(&cfg, TF_ALERT_WEBHOOK, &a, &delivered, err, sizeof(err)) == TF_OK,
          "unconfigured channel skipped");
    CHECK_EQ_INT(delivered, 0);
    CHECK_EQ_INT(hook_count(), before);
    CHECK(tf_alert_send(&cfg, 0, &a, &delivered, err, sizeof(err)) == TF_OK, "no channel");
    CHECK_EQ_INT(delivered, 0);
}

int main(void)
{
    struct MHD_Daemon *d = NULL;
    const union MHD_DaemonInfo *info;
    struct sink sink, refusing;
    struct sockaddr_in loopback;
    int sink_ok, refusing_ok;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_cfg();

    memset(&loopback, 0, sizeof(loopback));
    loopback.sin_family = AF_INET;
    loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&loopback, MHD_OPTION_END);
    CHECK(d != NULL, "webhook endpoint started");
    info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    hook.port = info ? info->port : 0;
    CHECK(hook.port > 0, "webhook endpoint port %d", hook.port);
    if (hook.port > 0) {
        test_webhook_ok();
        test_webhook_errors();
        test_parallel();
    }

    sink_ok = sink_start(&sink, "--reject-rcpt", "nobody@example.com") == 0;
    CHECK(sink_ok, "SMTP server started (port %d)", sink.port);
    refusing_ok = sink_start(&refusing, "--reject-data", NULL) == 0;
    CHECK(refusing_ok, "refusing SMTP server started (port %d)", refusing.port);
    if (sink_ok && refusing_ok) {
        test_mail_ok(&sink);
        test_mail_errors(&sink, &refusing);
        if (hook.port > 0)
            test_both(&sink);
    }
    CHECK(sink_stop(&sink), "SMTP server stopped");
    CHECK(sink_stop(&refusing), "refusing SMTP server stopped");

    if (d)
        MHD_stop_daemon(d);
    for (int i = 0; i < hook.n; i++)
        free(hook.reqs[i].body);
    curl_global_cleanup();
    return check_summary();
}
