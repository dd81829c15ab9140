/*
 * s3.c - the S3 API client of the lake's bucket backend (s3.h).
 */
#include "s3.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tf/lake.h"

#define POOL_MAX    16
#define BACKOFF_MS  250
#define BACKOFF_MAX 8000
#define BODY_MAX    ((size_t)1 << 31)

struct s3 {
    struct s3_opts o;
    char sigv4[128]; /* "aws:amz:<region>:s3" */
    char host[512];  /* scheme://[bucket.]host[:port] */
    pthread_mutex_t mu;
    CURL *pool[POOL_MAX];
    int npool;
};

enum tf_rc s3_new(const struct s3_opts *opts, struct s3 **out)
{
    struct s3 *s = calloc(1, sizeof(*s));
    const char *rest;

    if (!s)
        return TF_ERR_NOMEM;
    s->o = *opts;
    if (s->o.max_attempts < 1)
        s->o.max_attempts = 1;
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", s->o.region);
    rest = strstr(s->o.endpoint, "://");
    if (s->o.path_style || !rest)
        snprintf(s->host, sizeof(s->host), "%s", s->o.endpoint);
    else
        snprintf(s->host, sizeof(s->host), "%.*s%s.%s", (int)(rest + 3 - s->o.endpoint),
                 s->o.endpoint, s->o.bucket, rest + 3);
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return TF_OK;
}

void s3_free(struct s3 *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->npool; i++)
        curl_easy_cleanup(s->pool[i]);
    pthread_mutex_destroy(&s->mu);
    /* The keys do not outlive the client in freed memory. */
    memset(&s->o, 0, sizeof(s->o));
    free(s);
}

static CURL *take_handle(struct s3 *s)
{
    CURL *c = NULL;

    pthread_mutex_lock(&s->mu);
    if (s->npool > 0)
        c = s->pool[--s->npool];
    pthread_mutex_unlock(&s->mu);
    if (c)
        curl_easy_reset(c); /* keeps its connections */
    else
        c = curl_easy_init();
    return c;
}

static void give_handle(struct s3 *s, CURL *c)
{
    pthread_mutex_lock(&s->mu);
    if (s->npool < POOL_MAX) {
        s->pool[s->npool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (c)
        curl_easy_cleanup(c);
}

enum tf_rc s3_encode(struct tf_buf *out, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    enum tf_rc rc = TF_OK;

    for (const unsigned char *p = (const unsigned char *)s; *p && rc == TF_OK; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/')) {
            rc = tf_buf_append(out, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = tf_buf_append(out, esc, 3);
        }
    }
    return rc;
}

void s3_xml_value(const char *xml, const char *tag, char *out, size_t outlen)
{
    char open[80], close[80];
    const char *a, *b;

    out[0] = '\0';
    if (!xml)
        return;
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    a = strstr(xml, open);
    if (!a)
        return;
    a += strlen(open);
    b = strstr(a, close);
    if (!b)
        return;
    snprintf(out, outlen, "%.*s", (int)(b - a), a);
}

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    struct s3_resp *r = arg;

    return tf_buf_append(&r->body, ptr, size * n) == TF_OK ? size * n : 0;
}

/* Copies a header's value (trimmed, quotes kept) into out when line is name. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);

    if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    line += nlen + 1;
    len -= nlen + 1;
    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
        len--;
    snprintf(out, outlen, "%.*s", (int)len, line);
}

static size_t on_header(char *ptr, size_t size, size_t n, void *arg)
{
    struct s3_resp *r = arg;

    header_value(ptr, size * n, "etag", r->etag, sizeof(r->etag));
    header_value(ptr, size * n, "x-amz-meta-sha256", r->sha256, sizeof(r->sha256));
    return size * n;
}

/* 1 when the answer (or the lack of one) is worth asking again. */
static int retryable(CURLcode cc, long status)
{
    if (cc != CURLE_OK)
        return cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT ||
               cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING ||
               cc == CURLE_PARTIAL_FILE || cc == CURLE_COULDNT_RESOLVE_HOST;
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static enum tf_rc build_url(const struct s3 *s, const char *key, const char *query,
                            struct tf_buf *url)
{
    enum tf_rc rc = tf_buf_puts(url, s->host);

    if (rc == TF_OK && s->o.path_style)
        rc = tf_buf_printf(url, "/%s", s->o.bucket);
    /* The bucket itself is /bucket in path style (no '/' after it), / else. */
    if (rc == TF_OK && (*key || !s->o.path_style))
        rc = tf_buf_puts(url, "/");
    if (rc == TF_OK)
        rc = s3_encode(url, key, 1);
    if (rc == TF_OK && query && *query)
        rc = tf_buf_printf(url, "?%s", query);
    return rc;
}

enum tf_rc s3_call(struct s3 *s, const char *method, const char *key, const char *query,
                   const char *const *headers, const void *body, size_t len, struct s3_resp *r,
                   char *err, size_t errlen)
{
    char sha[65], hdr[160];
    struct curl_slist *list = NULL;
    struct tf_buf url;
    CURLcode cc = CURLE_OK;
    enum tf_rc rc;
    long backoff = BACKOFF_MS;
    CURL *c;

    memset(r, 0, sizeof(*r));
    tf_buf_init(&r->body, BODY_MAX);
    tf_buf_init(&url, 16384);
    rc = build_url(s, key, query, &url);
    if (rc != TF_OK) {
        tf_buf_cleanup(&url);
        snprintf(err, errlen, "s3 %s: the request's address is too long", method);
        return TF_ERR_INVALID;
    }
    /* libcurl 7.88 hashes the body into the signature but does not send the
     * hash, which S3 requires: the header carries it and curl signs it. */
    tf_sha256_hex(body ? body : "", body ? len : 0, sha);
    snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", sha);
    list = curl_slist_append(list, hdr);
    if (body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0)
        list = curl_slist_append(list, "Content-Type: application/octet-stream");
    if (s->o.session_token[0]) {
        struct tf_buf tok;

        tf_buf_init(&tok, sizeof(s->o.session_token) + 32);
        if (tf_buf_printf(&tok, "x-amz-security-token: %s", s->o.session_token) == TF_OK)
            list = curl_slist_append(list, tok.data);
        tf_buf_cleanup(&tok);
    }
    for (int i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    c = take_handle(s);
    if (!c || !list) {
        curl_slist_free_all(list);
        if (c)
            give_handle(s, c);
        tf_buf_cleanup(&url);
        return TF_ERR_NOMEM;
    }
    for (int attempt = 1; attempt <= s->o.max_attempts; attempt++) {
        tf_buf_reset(&r->body);
        r->status = 0;
        r->etag[0] = r->sha256[0] = r->code[0] = '\0';
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url.data);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
        curl_easy_setopt(c, CURLOPT_USERNAME, s->o.access_key);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->o.secret_key);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->o.timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        if (strcmp(method, "HEAD") == 0)
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        if (body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
        }
        cc = curl_easy_perform(c);
        if (cc == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->status >= 300 && r->body.data)
            s3_xml_value(r->body.data, "Code", r->code, sizeof(r->code));
        if (!retryable(cc, r->status) || attempt == s->o.max_attempts)
            break;
        sleep_ms(backoff + rand() % (backoff / 2 + 1));
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
    give_handle(s, c);
    curl_slist_free_all(list);
    tf_buf_cleanup(&url);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "s3 %s in bucket %s: %s (after %d attempts)", method, s->o.bucket,
                 curl_easy_strerror(cc), s->o.max_attempts);
        return TF_ERR_IO;
    }
    return TF_OK;
}

void s3_resp_cleanup(struct s3_resp *r)
{
    tf_buf_cleanup(&r->body);
}
