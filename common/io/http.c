/*
 * http.c - libmicrohttpd daemon, per-request state, bodies, replies.
 *
 * Thread per connection: a handler may block (a client that asked to wait
 * for an execution's outcome) without holding up other requests.
 *
 * What a client may not do: send a body over the cap (413 once the body is
 * read, up to DRAIN_FACTOR times the cap, so the client reads the answer
 * instead of a reset), take longer than read_timeout_s to send its request
 * (408 when its headers came late; when its body does, the connection is
 * closed, as libmicrohttpd answers nothing before the body is in; a slow
 * client holds only its own connection's thread, never a worker or a
 * database connection), hold more than client_connections
 * connections or send more than client_rate requests a second (429 with
 * Retry-After).
 */
#include "tf/http.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "tf/buf.h"
#include "tf/time.h"

#define MAX_RESP_HEADERS 8
#define DRAIN_FACTOR     64 /* a body up to 64 times the cap is read before the 413 */
#define READ_TIMEOUT_S   30
#define IDLE_TIMEOUT_S   120 /* a connection that sends nothing at all is closed */
/* A connection's buffer for its request line and headers: room for a query
 * parameter at its documented longest, percent-encoded (else a 414 comes
 * from libmicrohttpd before the API could answer 400). */
#define CONN_MEMORY  (256 * 1024)
#define CLIENT_CONNS 128
#define MAX_CLIENTS  4096 /* addresses tracked at once; beyond, a new one is not limited */

/* One client address: its open connections and its request bucket. */
struct client {
    unsigned char addr[16];
    int used;
    long conns;
    double tokens;
    int64_t bucket_ms; /* when tokens was last refilled */
    int64_t last_ms;   /* its last connection or request */
};

struct tf_http_server {
    struct MHD_Daemon *daemon;
    struct tf_http_opts opts;
    char *token;
    pthread_mutex_t mu; /* guards clients */
    struct client *clients;
    size_t nclients; /* slots in use or once used (a prefix of the array) */
};

struct tf_http_req {
    struct tf_http_server *srv;
    struct MHD_Connection *conn;
    const char *method; /* borrowed from MHD for the request's life */
    const char *path;
    struct tf_buf body;
    size_t received; /* body bytes read, kept or not */
    int too_large;
    int early_done; /* answered before the body was read */
    int drop;       /* close without answering */
    int64_t started_ms;
    struct tf_logctx log;
    int status;
    struct MHD_Response *resp;
    int nheaders;
    char *hname[MAX_RESP_HEADERS];
    char *hvalue[MAX_RESP_HEADERS];
};

static int sane_request_id(const char *s)
{
    size_t n = 0;

    if (!s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return n > 0;
}

static void new_request_id(char *out, size_t outlen)
{
    unsigned char raw[8];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        memset(raw, 0, sizeof(raw));
    snprintf(out, outlen, "%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3],
             raw[4], raw[5], raw[6], raw[7]);
}

/* libmicrohttpd's own complaints (a client gone mid-answer), as log lines. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    tf_log_warn(NULL, "http: %s", msg);
}

/* The 16-byte key of a socket address (IPv4 mapped into IPv6); 0 if none. */
static int addr_key(const struct sockaddr *sa, unsigned char out[16])
{
    memset(out, 0, 16);
    if (sa && sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 1;
    }
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 1;
    }
    return 0;
}

/* The client of key (under srv->mu): found, or a free slot taken; NULL when full. */
static struct client *client_of(struct tf_http_server *srv, const unsigned char key[16])
{
    struct client *free_slot = NULL;
    int64_t now = tf_time_mono_ms();

    for (size_t i = 0; i < srv->nclients; i++) {
        struct client *c = &srv->clients[i];
        if (c->used && memcmp(c->addr, key, 16) == 0)
            return c;
        /* A slot with no connection whose bucket has refilled is free again. */
        if (c->used && c->conns == 0 && now - c->last_ms > 60000)
            c->used = 0;
        if (!c->used && !free_slot)
            free_slot = c;
    }
    if (!free_slot && srv->nclients < MAX_CLIENTS)
        free_slot = &srv->clients[srv->nclients++];
    if (free_slot) {
        memset(free_slot, 0, sizeof(*free_slot));
        memcpy(free_slot->addr, key, 16);
        free_slot->used = 1;
        free_slot->tokens = (double)srv->opts.client_rate * 2;
        free_slot->bucket_ms = free_slot->last_ms = now;
    }
    return free_slot;
}

/* Counts a connection opening or closing against its client address. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct tf_http_server *srv = cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    unsigned char key[16];
    struct client *c;

    (void)socket_context;
    if (!srv->clients || !info || !addr_key(info->client_addr, key))
        return;
    pthread_mutex_lock(&srv->mu);
    c = client_of(srv, key);
    if (c) {
        c->conns += toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
        if (c->conns < 0)
            c->conns = 0;
        c->last_ms = tf_time_mono_ms();
    }
    pthread_mutex_unlock(&srv->mu);
}

/*
 * Whether req's client may go on: 0, or the seconds it should wait (its
 * Retry-After) with why set. Probes are never rate limited.
 */
static long client_wait(struct tf_http_server *srv, struct tf_http_req *req, const char **why)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    int probe = strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/readyz") == 0 ||
                strcmp(req->path, "/metrics") == 0;
    unsigned char key[16];
    struct client *c;
    long wait = 0;

    if (!srv->clients || !info || !addr_key(info->client_addr, key))
        return 0;
    pthread_mutex_lock(&srv->mu);
    c = client_of(srv, key);
    if (c && srv->opts.client_connections > 0 && c->conns > srv->opts.client_connections) {
        *why = "too many connections from this client";
        wait = 1;
    } else if (c && srv->opts.client_rate > 0 && !probe) {
        double rate = (double)srv->opts.client_rate;
        int64_t now = tf_time_mono_ms();

        c->tokens += rate * (double)(now - c->bucket_ms) / 1000.0;
        if (c->tokens > rate * 2)
            c->tokens = rate * 2;
        c->bucket_ms = c->last_ms = now;
        if (c->tokens >= 1.0) {
            c->tokens -= 1.0;
        } else {
            *why = "too many requests from this client";
            wait = (long)ceil((1.0 - c->tokens) / rate);
            if (wait < 1)
                wait = 1;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    return wait;
}

/* Whether req has been arriving for longer than the read timeout. */
static int read_too_slow(const struct tf_http_server *srv, const struct tf_http_req *req)
{
    return tf_time_mono_ms() - req->started_ms > srv->opts.read_timeout_s * 1000;
}

static enum MHD_Result queue(struct tf_http_req *req);

/* Answers req now and closes its connection once the answer is out. */
static enum MHD_Result answer_early(struct tf_http_req *req)
{
    tf_http_set_header(req, "Connection", "close");
    req->early_done = 1;
    return queue(req);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct tf_http_server *srv = cls;
    struct tf_http_req *req = calloc(1, sizeof(*req));

    (void)uri;
    if (!req)
        return NULL;
    req->srv = srv;
    req->conn = conn;
    req->started_ms = tf_time_mono_ms();
    tf_buf_init(&req->body, srv->opts.max_body);
    return req;
}

static void free_req(struct tf_http_req *req)
{
    tf_buf_cleanup(&req->body);
    if (req->resp)
        MHD_destroy_response(req->resp);
    for (int i = 0; i < req->nheaders; i++) {
        free(req->hname[i]);
        free(req->hvalue[i]);
    }
    free(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct tf_http_req *req = *req_cls;

    (void)cls;
    (void)conn;
    if (!req)
        return;
    if (req->method) {
        int64_t ms = tf_time_mono_ms() - req->started_ms;
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            tf_log_info(&req->log, "http %s %s status=%d ms=%lld", req->method, req->path,
                        req->status, (long long)ms);
        else
            tf_log_warn(&req->log, "http %s %s aborted code=%d ms=%lld", req->method, req->path,
                        (int)toe, (long long)ms);
    }
    free_req(req);
    *req_cls = NULL;
}

void tf_http_reply_method(struct tf_http_req *req, const char *allow)
{
    tf_http_set_header(req, "Allow", allow);
    tf_http_reply_rcf(req, TF_ERR_METHOD, "%s %s takes %s", req->method, req->path, allow);
}

int tf_http_status(const struct tf_http_req *req)
{
    return req->status;
}

const char *tf_http_method(const struct tf_http_req *req)
{
    return req->method;
}

const char *tf_http_path(const struct tf_http_req *req)
{
    return req->path;
}

const char *tf_http_query(const struct tf_http_req *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *tf_http_header(const struct tf_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *tf_http_body(const struct tf_http_req *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

struct tf_logctx *tf_http_logctx(struct tf_http_req *req)
{
    return &req->log;
}

void tf_http_set_header(struct tf_http_req *req, const char *name, const char *value)
{
    if (req->nheaders >= MAX_RESP_HEADERS)
        return;
    req->hname[req->nheaders] = strdup(name);
    req->hvalue[req->nheaders] = strdup(value);
    req->nheaders++;
}

void tf_http_reply_take(struct tf_http_req *req, int status, const char *content_type, char *body,
                        size_t len)
{
    if (req->resp) { /* answered twice: keep the first answer */
        free(body);
        return;
    }
    if (!body) {
        body = strdup("");
        len = 0;
    }
    req->resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!req->resp) {
        free(body);
        return;
    }
    req->status = status;
    MHD_add_response_header(req->resp, "Content-Type", content_type);
    MHD_add_response_header(req->resp, "X-Request-Id", req->log.req);
    for (int i = 0; i < req->nheaders; i++) {
        if (req->hname[i] && req->hvalue[i])
            MHD_add_response_header(req->resp, req->hname[i], req->hvalue[i]);
    }
}

/*
 * The one writer of error bodies: status and code from rc (code overrides
 * the code when given), {"error":{"code":...,"message":...}}, logged once.
 */
__attribute__((format(printf, 4, 0))) static void
reply_rc(struct tf_http_req *req, enum tf_rc rc, const char *code, const char *fmt, va_list ap)
{
    char msg[1024];
    cJSON *root = NULL;
    cJSON *err = NULL;
    char *text = NULL;
    int status;

    if (rc == TF_OK) /* an error reply without an error */
        rc = TF_ERR_INTERNAL;
    status = tf_rc_http_status(rc);
    if (!code)
        code = tf_rc_str(rc);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    root = cJSON_CreateObject();
    err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", msg);
    if (status >= 500)
        tf_log_error(&req->log, "reply %d %s: %s", status, code, msg);
    else
        tf_log_info(&req->log, "reply %d %s: %s", status, code, msg);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) { /* no memory for the body: the status alone */
        tf_http_reply_take(req, tf_rc_http_status(TF_ERR_NOMEM), "application/json", NULL, 0);
        return;
    }
    tf_http_reply_take(req, status, "application/json", text, strlen(text));
}

void tf_http_reply_json(struct tf_http_req *req, int status, const cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);

    if (!text) {
        tf_http_reply_rc(req, TF_ERR_NOMEM, "cannot print the response");
        return;
    }
    tf_http_reply_take(req, status, "application/json", text, strlen(text));
}

void tf_http_reply_rc(struct tf_http_req *req, enum tf_rc rc, const char *msg)
{
    tf_http_reply_rcf(req, rc, "%s", msg);
}

void tf_http_reply_rcf(struct tf_http_req *req, enum tf_rc rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    reply_rc(req, rc, NULL, fmt, ap);
    va_end(ap);
}

void tf_http_reply_rc_code(struct tf_http_req *req, enum tf_rc rc, const char *code,
                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    reply_rc(req, rc, code, fmt, ap);
    va_end(ap);
}

void tf_http_drop(struct tf_http_req *req)
{
    req->drop = 1;
}

int tf_http_match(const char *path, const char *pattern, char caps[][128], int ncap)
{
    int ncaps = 0;

    while (*pattern) {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= 128)
                return 0;
            if (ncaps < ncap) {
                memcpy(caps[ncaps], path, n);
                caps[ncaps][n] = '\0';
            }
            ncaps++;
            path += n;
            pattern++;
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    return *path == '\0';
}

static int is_mutating(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

/* Constant-time comparison of the presented token with the configured one. */
static int token_ok(const char *want, const char *auth)
{
    size_t wl = strlen(want);
    size_t al;
    unsigned char diff = 0;

    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return 0;
    auth += 7;
    al = strlen(auth);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (i < al ? auth[i] : 0));
    return diff == 0 && al == wl;
}

static enum MHD_Result queue(struct tf_http_req *req)
{
    enum MHD_Result ret;

    if (!req->resp)
        tf_http_reply_rc(req, TF_ERR_INTERNAL, "the handler gave no answer");
    if (!req->resp)
        return MHD_NO;
    ret = MHD_queue_response(req->conn, (unsigned int)req->status, req->resp);
    MHD_destroy_response(req->resp);
    req->resp = NULL;
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct tf_http_server *srv = cls;
    struct tf_http_req *req = *req_cls;

    (void)version;
    (void)conn;
    if (!req)
        return MHD_NO;
    if (!req->method) { /* first call: headers are in */
        const char *rid = tf_http_header(req, "X-Request-Id");
        const char *clen = tf_http_header(req, "Content-Length");
        unsigned long long announced = clen ? strtoull(clen, NULL, 10) : 0;
        const char *why = NULL;
        long wait;

        req->method = method;
        req->path = url;
        if (sane_request_id(rid))
            snprintf(req->log.req, sizeof(req->log.req), "%s", rid);
        else
            new_request_id(req->log.req, sizeof(req->log.req));
        if (read_too_slow(srv, req)) {
            tf_http_reply_rcf(req, TF_ERR_TIMEOUT, "the request took over %ld s to arrive",
                              srv->opts.read_timeout_s);
            return answer_early(req);
        }
        if ((wait = client_wait(srv, req, &why)) > 0) {
            char after[24];

            snprintf(after, sizeof(after), "%ld", wait);
            tf_http_set_header(req, "Retry-After", after);
            tf_http_reply_rc(req, TF_ERR_RATE_LIMITED, why);
            return answer_early(req);
        }
        if (srv->token && is_mutating(method) &&
            !token_ok(srv->token, tf_http_header(req, "Authorization"))) {
            tf_http_set_header(req, "WWW-Authenticate", "Bearer");
            tf_http_reply_rc(req, TF_ERR_AUTH, "a valid bearer token is required");
            req->early_done = 1;
            return queue(req);
        }
        /* Over the cap: read it (within reason) so that the client reads the 413. */
        if (announced > srv->opts.max_body * DRAIN_FACTOR) {
            tf_http_reply_rcf(req, TF_ERR_TOO_LARGE, "request body over %zu bytes",
                              srv->opts.max_body);
            return answer_early(req);
        }
        if (announced > srv->opts.max_body)
            req->too_large = 1;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (req->early_done)
            return MHD_YES; /* answered: the rest is dropped */
        if (read_too_slow(srv, req)) {
            /* libmicrohttpd sends nothing before the body is in: close. */
            tf_log_warn(&req->log, "http %s %s: the body took over %ld s to arrive: closed", method,
                        url, srv->opts.read_timeout_s);
            return MHD_NO;
        }
        req->received += n;
        if (req->received > srv->opts.max_body * DRAIN_FACTOR) {
            tf_http_reply_rcf(req, TF_ERR_TOO_LARGE, "request body over %zu bytes",
                              srv->opts.max_body);
            return answer_early(req);
        }
        if (!req->too_large && tf_buf_append(&req->body, upload_data, n) != TF_OK)
            req->too_large = 1;
        return MHD_YES;
    }
    if (req->early_done)
        return MHD_YES;
    if (req->too_large)
        tf_http_reply_rcf(req, TF_ERR_TOO_LARGE, "request body over %zu bytes", srv->opts.max_body);
    else
        srv->opts.handler(req, srv->opts.ud);
    if (req->drop) {
        req->status = 0;
        return MHD_NO; /* libmicrohttpd closes the connection */
    }
    return queue(req);
}

static void server_free(struct tf_http_server *srv)
{
    pthread_mutex_destroy(&srv->mu);
    free(srv->clients);
    free(srv->token);
    free(srv);
}

enum tf_rc tf_http_start(const struct tf_http_opts *opts, struct tf_http_server **out, char *err,
                         size_t errlen)
{
    struct tf_http_server *srv = calloc(1, sizeof(*srv));
    struct sockaddr_in sa;

    if (!srv)
        return TF_ERR_NOMEM;
    srv->opts = *opts;
    if (!srv->opts.max_body)
        srv->opts.max_body = TF_HTTP_MAX_BODY;
    if (srv->opts.read_timeout_s <= 0)
        srv->opts.read_timeout_s = READ_TIMEOUT_S;
    if (srv->opts.client_connections == 0)
        srv->opts.client_connections = CLIENT_CONNS;
    if (srv->opts.client_rate < 0)
        srv->opts.client_rate = 0;
    srv->clients = calloc(MAX_CLIENTS, sizeof(*srv->clients));
    if (!srv->clients) {
        free(srv);
        return TF_ERR_NOMEM;
    }
    pthread_mutex_init(&srv->mu, NULL);
    if (opts->token && *opts->token)
        srv->token = strdup(opts->token);
    srv->opts.token = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opts->port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (opts->addr && *opts->addr && inet_pton(AF_INET, opts->addr, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "bad bind address %s", opts->addr);
        server_free(srv);
        return TF_ERR_INVALID;
    }
    srv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
        (uint16_t)opts->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%ld", opts->addr ? opts->addr : "0.0.0.0",
                 opts->port);
        server_free(srv);
        return TF_ERR_IO;
    }
    *out = srv;
    return TF_OK;
}

int tf_http_port(const struct tf_http_server *srv)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);

    return info ? info->port : -1;
}

void tf_http_stop(struct tf_http_server *srv)
{
    if (!srv)
        return;
    MHD_stop_daemon(srv->daemon);
    server_free(srv);
}
