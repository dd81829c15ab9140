/*
 * test_int_http.c - the HTTP layer in-process: a daemon on a free port,
 * driven by libcurl. Bearer tokens on mutating calls, the body cap (by
 * Content-Length and by bytes actually sent), request ids, JSON errors
 * (status and code from the result code alone, a finer code kept, an
 * error reply without an error and an outcome answered as 500).
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    curl_global_cleanup();
    return check_summary();
}
