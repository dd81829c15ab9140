/*
 * test_int_http.c - the HTTP layer in-process: a daemon on a free port,
 * driven by libcurl. Bearer tokens on mutating calls, the body cap (by
 * Content-Length and by bytes actually sent), request ids, JSON errors
 * (status and code from the result code alone, a finer code kept, an
 * error reply without an error and an outcome answered as 500).
 *
 * What a client may not do, each on a server of its own: a 10 MB body
 * gets a JSON 413 that the client reads (not a reset); a client sending
 * headers or a body at a byte every 300 ms is answered 408 (headers) or
 * cut off (body) after the read timeout while others are served; a client over its connection cap
 * or its request rate gets 429 with Retry-After, probes excepted, and is served again later.
 */
#include <cjson/cJSON.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/http.h"

#define TOKEN "t0k3n-for-tests"

static void handler(struct tf_http_req *req, void *ud)
{
    size_t len = 0;
    const char *body = tf_http_body(req, &len);
    const char *who = tf_http_query(req, "who");
    char *copy = NULL;

    (void)ud;
    if (strcmp(tf_http_path(req), "/silent") == 0)
        return; /* no answer: the server must answer 500 */
    if (strcmp(tf_http_path(req), "/fail") == 0) {
        tf_http_reply_rc(req, TF_ERR_CONFLICT, "it clashes");
        return;
    }
    if (strcmp(tf_http_path(req), "/fail-fmt") == 0) {
        tf_http_reply_rcf(req, TF_ERR_METHOD, "use %s or %s (100%%)", "GET", "PUT");
        return;
    }
    if (strcmp(tf_http_path(req), "/fail-code") == 0) {
        tf_http_reply_rc_code(req, TF_ERR_INVALID, "invalid_json", "not JSON at byte %d", 7);
        return;
    }
    if (strcmp(tf_http_path(req), "/fail-ok") == 0) {
        tf_http_reply_rc(req, TF_OK, "an error without an error");
        return;
    }
    if (strcmp(tf_http_path(req), "/fail-outcome") == 0) {
        tf_http_reply_rc(req, TF_DEAD_LETTER, "an outcome is no answer");
        return;
    }
    if (who) {
        copy = malloc(strlen(who) + 1);
        memcpy(copy, who, strlen(who) + 1);
        tf_http_reply_take(req, TF_HTTP_OK, "text/plain", copy, strlen(copy));
        return;
    }
    copy = malloc(len + 1);
    memcpy(copy, body, len + 1);
    tf_http_reply_take(req, TF_HTTP_OK, "application/octet-stream", copy, len);
}

/* The error body's message ("(none)" when the body is not the error shape). */
static const char *error_message(const struct h_resp *r, char *out, size_t outlen)
{
    cJSON *root = cJSON_Parse(r->body);
    const char *msg =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "error"), "message"));

    snprintf(out, outlen, "%s", msg ? msg : "(none)");
    cJSON_Delete(root);
    return out;
}

static const char *error_code(const struct h_resp *r, char *out, size_t outlen)
{
    cJSON *root = cJSON_Parse(r->body);
    const char *code =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "error"), "code"));

    snprintf(out, outlen, "%s", code ? code : "(none)");
    cJSON_Delete(root);
    return out;
}

/* A raw connection to 127.0.0.1:port that has sent text; -1 on failure. */
static int raw_open(int port, const char *text)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        send(fd, text, strlen(text), MSG_NOSIGNAL) != (ssize_t)strlen(text)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Reads what fd answers within ms (until the server closes) into out. */
static size_t raw_read(int fd, char *out, size_t outlen, int ms)
{
    size_t n = 0;
    double until = h_now_s() + ms / 1000.0;

    while (n + 1 < outlen && h_now_s() < until) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t got;

        if (poll(&p, 1, 50) <= 0)
            continue;
        got = recv(fd, out + n, outlen - 1 - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    out[n] = '\0';
    return n;
}

static struct tf_http_server *start_server(long read_timeout, long conns, long rate, int *port)
{
    struct tf_http_opts opts;
    struct tf_http_server *srv = NULL;
    char err[256];

    memset(&opts, 0, sizeof(opts));
    opts.addr = "127.0.0.1";
    opts.token = TOKEN;
    opts.handler = handler;
    opts.read_timeout_s = read_timeout;
    opts.client_connections = conns;
    opts.client_rate = rate;
    CHECK(tf_http_start(&opts, &srv, err, sizeof(err)) == TF_OK, "start: %s", err);
    *port = srv ? tf_http_port(srv) : 0;
    return srv;
}

/* A 10 MB body, over the default 1 MiB cap: the client sends it all and reads a JSON 413. */
static void test_big_body(void)
{
    int port;
    struct tf_http_server *srv = start_server(0, 0, 0, &port);
    size_t n = (size_t)10 << 20;
    char *big = malloc(n + 1), code[64];
    struct h_resp r;

    if (!srv || !big) {
        free(big);
        tf_http_stop(srv);
        return;
    }
    memset(big, 'x', n);
    big[n] = '\0';
    CHECK_EQ_INT(h_http("POST", port, "/echo", big, "Authorization: Bearer " TOKEN, &r), 0);
    CHECK_EQ_INT(r.status, 413);
    CHECK_STR(error_code(&r, code, sizeof(code)), "too_large");
    h_resp_free(&r);
    /* The server still serves. */
    h_http("GET", port, "/echo?who=after", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    h_resp_free(&r);
    free(big);
    tf_http_stop(srv);
}

/* Whether fd was closed by the server within ms (nothing to read but the end). */
static int raw_closed(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c;

    return poll(&p, 1, ms) > 0 && recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/*
 * A read timeout of 1 s. Headers at a byte every 300 ms: 408 once they are
 * in. A body at a byte every 300 ms: the connection is closed. Meanwhile
 * another client is served at once.
 */
static void test_slow_client(void)
{
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN
                               "\r\nContent-Length: 100\r\n";
    int port;
    struct tf_http_server *srv = start_server(1, 0, 0, &port);
    char buf[4096];
    double t0, closed = 0;
    int fd, served = 0;

    if (!srv)
        return;
    /* Slow headers: the last line comes after 1.5 s, the answer is 408. */
    fd = raw_open(port, head);
    for (int i = 0; fd >= 0 && i < 5; i++) {
        h_sleep_ms(300); /* the pace of the slow client itself */
        CHECK(send(fd, i < 4 ? "X" : "-Y: 1\r\n\r\n", i < 4 ? 1 : 9, MSG_NOSIGNAL) > 0,
              "header byte %d sent", i);
    }
    raw_read(fd, buf, sizeof(buf), 3000);
    CHECK(strncmp(buf, "HTTP/1.1 408", 12) == 0, "late headers answered 408: %.40s", buf);
    CHECK(strstr(buf, "\"request_timeout\"") != NULL, "a JSON error: %.200s", buf);
    if (fd >= 0)
        close(fd);

    /* A slow body: cut off after the timeout, while another client is served. */
    t0 = h_now_s();
    fd = raw_open(port, "POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN
                        "\r\nContent-Length: 100\r\n\r\n");
    for (int i = 0; fd >= 0 && i < 40 && !closed; i++) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) != 1 || raw_closed(fd, 300)) {
            closed = h_now_s() - t0;
            break;
        }
        if (i == 1) {
            struct h_resp r;

            h_http("GET", port, "/echo?who=other", NULL, NULL, &r);
            served = r.status == 200;
            h_resp_free(&r);
        }
    }
    CHECK(served, "another client was served while the slow one sent");
    CHECK(closed >= 1.0 && closed < 4.0, "the slow body cut off after %.1f s (timeout 1 s)",
          closed);
    if (fd >= 0)
        close(fd);
    tf_http_stop(srv);
}

/* Whether port serves a GET again within 10 s (a refusal goes away). */
static int served_again(int port)
{
    int ok = 0;

    for (int i = 0; i < h_timeout(10) * 10 && !ok; i++) {
        struct h_resp r;

        h_http("GET", port, "/echo?who=later", NULL, NULL, &r);
        ok = r.status == 200;
        h_resp_free(&r);
        if (!ok)
            h_sleep_ms(100);
    }
    return ok;
}

/* Two connections held open; a third gets 429 with Retry-After, then is served once they go. */
static void test_connection_cap(void)
{
    int port, held[2], fd;
    struct tf_http_server *srv = start_server(0, 2, 0, &port);
    char buf[4096];

    if (!srv)
        return;
    for (int i = 0; i < 2; i++)
        held[i] = raw_open(port, "GET /echo?who=held HTTP/1.1\r\n");
    fd = raw_open(port, "GET /echo?who=third HTTP/1.1\r\nHost: t\r\n\r\n");
    raw_read(fd, buf, sizeof(buf), 3000);
    CHECK(strncmp(buf, "HTTP/1.1 429", 12) == 0, "the third connection: %.40s", buf);
    CHECK(strstr(buf, "Retry-After: 1\r\n") != NULL, "with Retry-After: %.300s", buf);
    CHECK(strstr(buf, "\"rate_limited\"") != NULL, "a JSON error");
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < 2; i++)
        if (held[i] >= 0)
            close(held[i]);
    CHECK(served_again(port), "served again once the held connections closed");
    tf_http_stop(srv);
}

/* 5 requests a second (a burst of 10): the 12th in a row is refused; probes never are. */
static void test_rate(void)
{
    int port, ok = 0, limited = 0, probes = 0;
    struct tf_http_server *srv = start_server(0, 0, 5, &port);

    if (!srv)
        return;
    for (int i = 0; i < 12; i++) {
        struct h_resp r;

        h_http("GET", port, "/echo?who=burst", NULL, NULL, &r);
        ok += r.status == 200;
        limited += r.status == 429;
        h_resp_free(&r);
    }
    CHECK(ok >= 10 && ok <= 11 && limited == 12 - ok, "%d served, %d refused of 12", ok, limited);
    for (int i = 0; i < 20; i++) {
        struct h_resp r;

        h_http("GET", port, "/healthz", NULL, NULL, &r);
        probes += r.status == 200;
        h_resp_free(&r);
    }
    CHECK_EQ_INT(probes, 20);
    CHECK(served_again(port), "served again once the bucket refilled");
    tf_http_stop(srv);
}

int main(void)
{
    struct tf_http_server *srv = NULL;
    struct tf_http_opts opts;
    struct h_resp r;
    char err[256], code[64], msg[256];
    char *big = NULL;
    int port;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    memset(&opts, 0, sizeof(opts));
    opts.addr = "127.0.0.1";
    opts.port = 0;
    opts.token = TOKEN;
    opts.max_body = 1024;
    opts.handler = handler;
    CHECK(tf_http_start(&opts, &srv, err, sizeof(err)) == TF_OK, "start: %s", err);
    if (!srv)
        return check_summary();
    port = tf_http_port(srv);
    CHECK(port > 0, "bound to port %d", port);

    /* Reads need no token; writes do. */
    h_http("GET", port, "/echo?who=alice", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "alice");
    h_resp_free(&r);
    h_http("POST", port, "/echo", "{\"a\":1}", NULL, &r);
    CHECK_EQ_INT(r.status, 401);
    CHECK_STR(error_code(&r, code, sizeof(code)), "unauthorized");
    CHECK(strstr(r.body, TOKEN) == NULL, "the token is not echoed");
    h_resp_free(&r);
    h_http("POST", port, "/echo", "{\"a\":1}", "Authorization: Bearer wrong", &r);
    CHECK_EQ_INT(r.status, 401);
    h_resp_free(&r);
    h_http("POST", port, "/echo", "{\"a\":1}", "Authorization: Bearer " TOKEN "x", &r);
    CHECK_EQ_INT(r.status, 401);
    h_resp_free(&r);
    h_http("POST", port, "/echo", "{\"a\":1}", "Authorization: Bearer " TOKEN, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "{\"a\":1}");
    h_resp_free(&r);

    /* Over the cap: refused whether or not the size is announced. */
    big = malloc(4096);
    memset(big, 'x', 4095);
    big[4095] = '\0';
    h_http("POST", port, "/echo", big, "Authorization: Bearer " TOKEN, &r);
    CHECK_EQ_INT(r.status, 413);
    CHECK_STR(error_code(&r, code, sizeof(code)), "too_large");
    h_resp_free(&r);
    h_http("PUT", port, "/echo", big, "Authorization: Bearer " TOKEN "\nTransfer-Encoding: chunked",
           &r);
    CHECK_EQ_INT(r.status, 413);
    h_resp_free(&r);
    h_http("PUT", port, "/echo", "{\"b\":2}",
           "Authorization: Bearer " TOKEN "\nTransfer-Encoding: chunked", &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "{\"b\":2}");
    h_resp_free(&r);
    free(big);

    /* Request ids: a sane one is echoed, anything else replaced. */
    h_http("GET", port, "/echo?who=x", NULL, "X-Request-Id: abc-123", &r);
    CHECK_STR(r.request_id, "abc-123");
    h_resp_free(&r);
    h_http("GET", port, "/echo?who=x", NULL, "X-Request-Id: bad id;drop", &r);
    CHECK(strlen(r.request_id) == 16 && strcmp(r.request_id, "bad id;drop") != 0,
          "replaced request id %s", r.request_id);
    h_resp_free(&r);

    /* A handler that says nothing gets a 500; an error code maps to its status. */
    h_http("GET", port, "/silent", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 500);
    CHECK_STR(error_code(&r, code, sizeof(code)), "internal");
    h_resp_free(&r);
    h_http("GET", port, "/fail", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 409);
    CHECK_STR(error_code(&r, code, sizeof(code)), "conflict");
    CHECK_STR(error_message(&r, msg, sizeof(msg)), "it clashes");
    h_resp_free(&r);
    h_http("GET", port, "/fail-fmt", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 405);
    CHECK_STR(error_code(&r, code, sizeof(code)), "method_not_allowed");
    CHECK_STR(error_message(&r, msg, sizeof(msg)), "use GET or PUT (100%)");
    h_resp_free(&r);
    /* A finer code keeps the status of its result code. */
    h_http("GET", port, "/fail-code", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 400);
    CHECK_STR(error_code(&r, code, sizeof(code)), "invalid_json");
    CHECK_STR(error_message(&r, msg, sizeof(msg)), "not JSON at byte 7");
    h_resp_free(&r);
    /* Neither TF_OK nor an outcome ever answers an error reply as a success. */
    h_http("GET", port, "/fail-ok", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 500);
    CHECK_STR(error_code(&r, code, sizeof(code)), "internal");
    h_resp_free(&r);
    h_http("GET", port, "/fail-outcome", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 500);
    CHECK_STR(error_code(&r, code, sizeof(code)), "dead_letter");
    h_resp_free(&r);

    tf_http_stop(srv);
    test_big_body();
    test_slow_client();
    test_connection_cap();
    test_rate();
    curl_global_cleanup();
    return check_summary();
}
