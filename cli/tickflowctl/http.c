/*
 * http.c - tickflowctl's HTTP client on libcurl: one handle for the whole
 * invocation (connections reused while watching), a time limit on every
 * request, the bearer token on mutating calls only, answers parsed as
 * JSON, and each failure mapped to its exit code with one line on stderr.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/buf.h"

/* The largest answer read (a list of 1000 records is a few MB). */
#define MAX_ANSWER (64u << 20)
#define CONNECT_MS 3000

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct tf_buf *buf = ud;

    if (tf_buf_append(buf, ptr, size * nmemb) != TF_OK)
        return 0;
    return size * nmemb;
}

/* Aborts a transfer in flight on Ctrl-C. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)ud;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return ctl_interrupted ? 1 : 0;
}

int ctl_request(struct ctl *c, enum ctl_svc svc, const char *method, const char *path,
                const char *body, struct ctl_resp *resp)
{
    struct curl_slist *headers = NULL;
    struct tf_buf buf;
    struct tf_buf url;
    struct tf_buf auth;
    int code = CTL_OK;
    CURLcode rc;

    memset(resp, 0, sizeof(*resp));
    tf_buf_init(&buf, MAX_ANSWER);
    tf_buf_init(&url, 8192);
    tf_buf_init(&auth, 8192);
    if (tf_buf_printf(&url, "%s%s", c->url[svc], path) != TF_OK) {
        snprintf(resp->err, sizeof(resp->err), "the address is too long");
        code = CTL_USAGE;
        goto out;
    }
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url.data);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     c->timeout_ms < CONNECT_MS ? c->timeout_ms : (long)CONNECT_MS);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "tickflowctl");
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    headers = curl_slist_append(headers, "Accept: application/json");
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    }
    if (c->token && strcmp(method, "GET") != 0) {
        if (tf_buf_printf(&auth, "Authorization: Bearer %s", c->token) != TF_OK) {
            snprintf(resp->err, sizeof(resp->err), "the API token is too long");
            code = CTL_USAGE;
            goto out;
        }
        headers = curl_slist_append(headers, auth.data);
    }
    headers = curl_slist_append(headers, "X-Tickflow-Actor: tickflowctl");
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    rc = curl_easy_perform(c->curl);
    resp->curl_rc = rc;
    if (rc == CURLE_ABORTED_BY_CALLBACK || ctl_interrupted) {
        code = CTL_INTERRUPTED;
        goto out;
    }
    if (rc != CURLE_OK) {
        snprintf(resp->err, sizeof(resp->err), "%s", curl_easy_strerror(rc));
        code = CTL_UNREACHABLE;
        goto out;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (buf.len)
        resp->json = cJSON_ParseWithLength(buf.data, buf.len);
out:
    curl_slist_free_all(headers);
    /* The token's copy does not outlive the request. */
    if (auth.data)
        memset(auth.data, 0, auth.len);
    tf_buf_cleanup(&auth);
    tf_buf_cleanup(&url);
    tf_buf_cleanup(&buf);
    return code;
}

void ctl_resp_cleanup(struct ctl_resp *resp)
{
    cJSON_Delete(resp->json);
    resp->json = NULL;
}

int ctl_unreachable(const struct ctl *c, enum ctl_svc svc, const struct ctl_resp *resp)
{
    if (resp->curl_rc == CURLE_OPERATION_TIMEDOUT)
        return ctl_err(CTL_UNREACHABLE,
                       "%s at %s did not answer within %.1f s (timed out; --timeout sets the "
                       "limit)",
                       ctl_svc_name[svc], c->url[svc], (double)c->timeout_ms / 1000.0);
    return ctl_err(CTL_UNREACHABLE, "cannot reach %s at %s (%s)", ctl_svc_name[svc], c->url[svc],
                   resp->err);
}

int ctl_status_exit(long status)
{
    if (status >= 200 && status < 300)
        return CTL_OK;
    if (status == 404)
        return CTL_NOT_FOUND;
    if (status >= 400 && status < 500)
        return CTL_USAGE;
    return CTL_SERVER;
}

const char *ctl_error_message(const cJSON *body)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));

    return m ? m : "";
}

int ctl_call(struct ctl *c, enum ctl_svc svc, const char *method, const char *path,
             const char *body, cJSON **out, long *status)
{
    struct ctl_resp resp;
    int code;

    *out = NULL;
    if (status)
        *status = 0;
    code = ctl_request(c, svc, method, path, body, &resp);
    if (code == CTL_INTERRUPTED)
        goto out;
    if (code != CTL_OK) {
        ctl_unreachable(c, svc, &resp);
        goto out;
    }
    if (status)
        *status = resp.status;
    code = ctl_status_exit(resp.status);
    if (code != CTL_OK) {
        const char *msg = ctl_error_message(resp.json);

        if (resp.status == 401)
            ctl_err(code, "%s: %ld: %s (set TICKFLOW_API_TOKEN or --token-file)", ctl_svc_name[svc],
                    resp.status, *msg ? msg : "unauthorized");
        else
            ctl_err(code, "%s: %ld: %s", ctl_svc_name[svc], resp.status,
                    *msg ? msg : "no message in the answer");
        goto out;
    }
    if (!resp.json) {
        code = ctl_err(CTL_SERVER, "%s at %s answered %ld without JSON: is it tickflow?",
                       ctl_svc_name[svc], c->url[svc], resp.status);
        goto out;
    }
    *out = resp.json;
    resp.json = NULL;
out:
    ctl_resp_cleanup(&resp);
    return code;
}

int ctl_read(struct ctl *c, enum ctl_svc svc, const char *path, cJSON **out)
{
    int code = ctl_call(c, svc, "GET", path, NULL, out, NULL);

    if (code != CTL_OK || !c->o.json)
        return code;
    code = ctl_print_json(*out);
    cJSON_Delete(*out);
    *out = NULL;
    return code;
}

char *ctl_escape(struct ctl *c, const char *s)
{
    return curl_easy_escape(c->curl, s, 0);
}
