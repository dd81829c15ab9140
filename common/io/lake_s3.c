/*
 * lake_s3.c - the lake in an S3-compatible bucket (lake_s3.h).
 *
 * An object is a key under the lake's prefix, with its sha256 in the
 * x-amz-meta-sha256 header. S3 makes an object visible only once its
 * upload completed, and replaces one whole, so the guarantees of the
 * folder backend hold as follows:
 *
 *   - write-once: PUT with If-None-Match: *; a 412 means the key exists,
 *     and its recorded sha256 tells a retry of the same bytes (fine) from
 *     other bytes (a conflict);
 *   - replace: a plain PUT; readers see the old object or the new;
 *   - objects over MULTIPART_MIN go up in parts of PART_SIZE; an upload
 *     that fails is aborted, so no part outlives it; one whose writer died
 *     is aborted by the next opening of the lake once it is older than
 *     abandoned_after_s (no live writer takes that long over one object);
 *   - a read checks the sha256 the caller recorded.
 */
#include "lake_s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"
#include "tf/log.h"
#include "tf/time.h"

#define PART_SIZE         ((size_t)8 << 20)
#define MULTIPART_MIN     ((size_t)16 << 20)
#define KEY_MAX           1024
#define ABANDONED_AFTER_S 3600

struct lake_s3 {
    struct s3 *s3;
    char bucket[256];
    char prefix[512]; /* "" or "a/b" (no leading or trailing '/') */
};

/* The object key of a lake key. */
static int object_key(const struct lake_s3 *l, const char *key, char out[KEY_MAX])
{
    int n = l->prefix[0] ? snprintf(out, KEY_MAX, "%s/%s", l->prefix, key)
                         : snprintf(out, KEY_MAX, "%s", key);

    return n > 0 && n < KEY_MAX;
}

static void abort_upload(struct lake_s3 *l, const char *okey, const char *id);

/* Says what an error answer means, naming the bucket, never a credential. */
static void answer_error(const struct lake_s3 *l, const char *what, const char *key,
                         const struct s3_resp *r, char *err, size_t errlen)
{
    const char *hint = "";

    if (strcmp(r->code, "InvalidAccessKeyId") == 0 || strcmp(r->code, "SignatureDoesNotMatch") == 0)
        hint = ": the store refused the lake's access key or secret"
               " (TICKFLOW_LAKE_S3_ACCESS_KEY_ID, TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY)";
    else if (strcmp(r->code, "AccessDenied") == 0)
        hint = ": the lake's access key may not do this in the bucket";
    else if (strcmp(r->code, "NoSuchBucket") == 0)
        hint = ": no such bucket";
    snprintf(err, errlen, "s3 %s s3://%s/%s: HTTP %ld %s%s", what, l->bucket, key, r->status,
             r->code[0] ? r->code : "", hint);
}

/*
 * Aborts the multipart uploads under the prefix begun over age seconds ago
 * (ListMultipartUploads, first page: a backlog goes a page per opening).
 * Best effort: a store without the call, or a failure, is only logged.
 */
static void abort_abandoned(struct lake_s3 *l, long age)
{
    char query[700], err[256];
    struct tf_buf enc;
    struct s3_resp r;
    int64_t now = tf_time_now();
    int aborted = 0;

    tf_buf_init(&enc, 600);
    if (s3_encode(&enc, l->prefix, 0) != TF_OK) {
        tf_buf_cleanup(&enc);
        return;
    }
    snprintf(query, sizeof(query), "prefix=%s%s&uploads=", enc.data ? enc.data : "",
             l->prefix[0] ? "%2F" : "");
    tf_buf_cleanup(&enc);
    if (s3_call(l->s3, "GET", "", query, NULL, NULL, 0, &r, err, sizeof(err)) != TF_OK ||
        r.status != 200) {
        tf_log_warn(NULL, "lake: uploads under s3://%s/%s not listed: %s", l->bucket, l->prefix,
                    r.status ? "refused" : err);
        s3_resp_cleanup(&r);
        return;
    }
    for (const char *p = r.body.data ? strstr(r.body.data, "<Upload>") : NULL; p;
         p = strstr(p + 1, "<Upload>")) {
        char key[KEY_MAX], id[512], when[64];
        int64_t at;
        char *dot;

        s3_xml_value(p, "Key", key, sizeof(key));
        s3_xml_value(p, "UploadId", id, sizeof(id));
        s3_xml_value(p, "Initiated", when, sizeof(when));
        if ((dot = strchr(when, '.')) != NULL) /* fractions: read to the second */
            snprintf(dot, sizeof(when) - (size_t)(dot - when), "Z");
        if (key[0] && id[0] && tf_time_parse(when, &at) == TF_OK && now - at >= age) {
            abort_upload(l, key, id);
            aborted++;
        }
    }
    s3_resp_cleanup(&r);
    if (aborted)
        tf_log_info(NULL, "lake: aborted %d upload(s) under s3://%s/%s left unfinished over %ld s",
                    aborted, l->bucket, l->prefix, age);
}

enum tf_rc lake_s3_open(const char *uri, const struct tf_lake_s3_cfg *cfg, struct lake_s3 **out,
                        char *err, size_t errlen)
{
    struct lake_s3 *l;
    struct s3_opts *o;
    struct s3_resp r;
    const char *b = uri + 5, *slash;
    char query[640];
    struct tf_buf enc;
    enum tf_rc rc;

    if (strncmp(uri, "s3://", 5) != 0 || !*b || *b == '/') {
        snprintf(err, errlen, "a bucket lake is s3://bucket[/prefix]");
        return TF_ERR_INVALID;
    }
    if (!cfg || !cfg->access_key_id || !*cfg->access_key_id || !cfg->secret_access_key ||
        !*cfg->secret_access_key) {
        snprintf(err, errlen,
                 "an s3:// lake needs TICKFLOW_LAKE_S3_ACCESS_KEY_ID and"
                 " TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY (or their _FILE variants)");
        return TF_ERR_INVALID;
    }
    l = calloc(1, sizeof(*l));
    o = calloc(1, sizeof(*o));
    if (!l || !o) {
        free(l);
        free(o);
        return TF_ERR_NOMEM;
    }
    slash = strchr(b, '/');
    snprintf(l->bucket, sizeof(l->bucket), "%.*s", (int)(slash ? slash - b : (long)strlen(b)), b);
    if (slash) {
        snprintf(l->prefix, sizeof(l->prefix), "%s", slash + 1);
        while (l->prefix[0] && l->prefix[strlen(l->prefix) - 1] == '/')
            l->prefix[strlen(l->prefix) - 1] = '\0';
    }
    snprintf(o->region, sizeof(o->region), "%s",
             cfg->region && *cfg->region ? cfg->region : "us-east-1");
    if (cfg->endpoint && *cfg->endpoint)
        snprintf(o->endpoint, sizeof(o->endpoint), "%s", cfg->endpoint);
    else
        snprintf(o->endpoint, sizeof(o->endpoint), "https://s3.%s.amazonaws.com", o->region);
    while (o->endpoint[0] && o->endpoint[strlen(o->endpoint) - 1] == '/')
        o->endpoint[strlen(o->endpoint) - 1] = '\0';
    /* Virtual-host addressing on AWS, path style elsewhere, unless told. */
    o->path_style = cfg->addressing && *cfg->addressing
                        ? strcmp(cfg->addressing, "path") == 0
                        : !(cfg->endpoint == NULL || !*cfg->endpoint);
    snprintf(o->bucket, sizeof(o->bucket), "%s", l->bucket);
    snprintf(o->access_key, sizeof(o->access_key), "%s", cfg->access_key_id);
    snprintf(o->secret_key, sizeof(o->secret_key), "%s", cfg->secret_access_key);
    if (cfg->session_token)
        snprintf(o->session_token, sizeof(o->session_token), "%s", cfg->session_token);
    o->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    o->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 8;
    rc = s3_new(o, &l->s3);
    memset(o, 0, sizeof(*o));
    free(o);
    if (rc != TF_OK) {
        free(l);
        return rc;
    }
    /* One listing now: a wrong key or bucket stops the service at start. */
    tf_buf_init(&enc, sizeof(query));
    rc = s3_encode(&enc, l->prefix, 0);
    snprintf(query, sizeof(query), "list-type=2&max-keys=1&prefix=%s", enc.data ? enc.data : "");
    tf_buf_cleanup(&enc);
    if (rc == TF_OK)
        rc = s3_call(l->s3, "GET", "", query, NULL, NULL, 0, &r, err, errlen);
    if (rc == TF_OK && r.status != 200) {
        answer_error(l, "list", l->prefix, &r, err, errlen);
        rc = TF_ERR_IO;
    }
    s3_resp_cleanup(&r);
    if (rc != TF_OK) {
        lake_s3_free(l);
        return rc;
    }
    if (cfg->abandoned_after_s >= 0)
        abort_abandoned(l, cfg->abandoned_after_s ? cfg->abandoned_after_s : ABANDONED_AFTER_S);
    *out = l;
    return TF_OK;
}

void lake_s3_free(struct lake_s3 *l)
{
    if (!l)
        return;
    s3_free(l->s3);
    free(l);
}

/* The recorded sha256 of the object at okey: fine when it is want. */
static enum tf_rc same_object(struct lake_s3 *l, const char *okey, const char *want, char *err,
                              size_t errlen)
{
    struct s3_resp r;
    enum tf_rc rc = s3_call(l->s3, "HEAD", okey, NULL, NULL, NULL, 0, &r, err, errlen);

    if (rc == TF_OK && r.status != 200) {
        answer_error(l, "HEAD", okey, &r, err, errlen);
        rc = TF_ERR_IO;
    } else if (rc == TF_OK && strcmp(r.sha256, want) != 0) {
        snprintf(err, errlen, "s3://%s/%s exists with other content", l->bucket, okey);
        rc = TF_ERR_CONFLICT;
    }
    s3_resp_cleanup(&r);
    return rc;
}

static enum tf_rc put_parts(struct lake_s3 *l, const char *okey, const void *data, size_t len,
                            const char *const *init_headers, int replace, char *err, size_t errlen);

enum tf_rc lake_s3_write(struct lake_s3 *l, const char *key, const void *data, size_t len,
                         int replace, struct tf_lake_obj *obj, int *created, char *err,
                         size_t errlen)
{
    char okey[KEY_MAX], meta[96];
    const char *headers[3] = {meta, replace ? NULL : "If-None-Match: *", NULL};
    struct s3_resp r;
    enum tf_rc rc;

    *created = 0;
    if (!object_key(l, key, okey)) {
        snprintf(err, errlen, "lake key too long");
        return TF_ERR_INVALID;
    }
    if ((size_t)snprintf(obj->uri, sizeof(obj->uri), "s3://%s/%s", l->bucket, okey) >=
        sizeof(obj->uri)) {
        snprintf(err, errlen, "lake key too long");
        return TF_ERR_INVALID;
    }
    tf_sha256_hex(data, len, obj->sha256);
    obj->bytes = (long long)len;
    snprintf(meta, sizeof(meta), "x-amz-meta-sha256: %s", obj->sha256);
    if (len >= MULTIPART_MIN) {
        rc = put_parts(l, okey, data, len, headers, replace, err, errlen);
        if (rc == TF_OK)
            *created = 1;
        else if (rc == TF_ERR_CONFLICT) /* the key exists: the same bytes? */
            rc = same_object(l, okey, obj->sha256, err, errlen);
        return rc;
    }
    rc = s3_call(l->s3, "PUT", okey, NULL, headers, data, len, &r, err, errlen);
    if (rc == TF_OK && r.status == 200) {
        *created = 1;
    } else if (rc == TF_OK && r.status == 412 && !replace) {
        rc = same_object(l, okey, obj->sha256, err, errlen);
    } else if (rc == TF_OK) {
        answer_error(l, "PUT", okey, &r, err, errlen);
        rc = TF_ERR_IO;
    }
    s3_resp_cleanup(&r);
    return rc;
}

/* Aborts upload id of okey (best effort: the store's lifecycle rule is the backstop). */
static void abort_upload(struct lake_s3 *l, const char *okey, const char *id)
{
    char query[600], err[256];
    struct tf_buf enc;
    struct s3_resp r;

    tf_buf_init(&enc, 512);
    if (s3_encode(&enc, id, 0) == TF_OK) {
        snprintf(query, sizeof(query), "uploadId=%s", enc.data);
        if (s3_call(l->s3, "DELETE", okey, query, NULL, NULL, 0, &r, err, sizeof(err)) != TF_OK)
            tf_log_warn(NULL, "lake: upload of s3://%s/%s not aborted: %s", l->bucket, okey, err);
        s3_resp_cleanup(&r);
    }
    tf_buf_cleanup(&enc);
}

static enum tf_rc put_parts(struct lake_s3 *l, const char *okey, const void *data, size_t len,
                            const char *const *init_headers, int replace, char *err, size_t errlen)
{
    const char *const complete_headers[2] = {replace ? NULL : "If-None-Match: *", NULL};
    const char *const meta_only[2] = {init_headers[0], NULL};
    char id[512] = "", query[700], etag[128];
    struct tf_buf enc, done;
    struct s3_resp r;
    enum tf_rc rc;
    size_t nparts = (len + PART_SIZE - 1) / PART_SIZE;

    /* The sha256 goes on the upload; the write-once test on its completion. */
    rc = s3_call(l->s3, "POST", okey, "uploads=", meta_only, NULL, 0, &r, err, errlen);
    if (rc == TF_OK && r.status == 200)
        s3_xml_value(r.body.data, "UploadId", id, sizeof(id));
    if (rc == TF_OK && !id[0]) {
        answer_error(l, "start upload of", okey, &r, err, errlen);
        rc = TF_ERR_IO;
    }
    s3_resp_cleanup(&r);
    if (rc != TF_OK)
        return rc;
    tf_buf_init(&enc, 1024);
    tf_buf_init(&done, 64 + nparts * 160);
    rc = s3_encode(&enc, id, 0);
    if (rc == TF_OK)
        rc = tf_buf_puts(&done, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < nparts && rc == TF_OK; i++) {
        size_t off = i * PART_SIZE, n = len - off < PART_SIZE ? len - off : PART_SIZE;

        /* Parameters in sorted order: libcurl signs the query as given. */
        snprintf(query, sizeof(query), "partNumber=%zu&uploadId=%s", i + 1, enc.data);
        rc = s3_call(l->s3, "PUT", okey, query, NULL, (const char *)data + off, n, &r, err, errlen);
        if (rc == TF_OK && (r.status != 200 || !r.etag[0])) {
            answer_error(l, "upload part of", okey, &r, err, errlen);
            rc = TF_ERR_IO;
        }
        snprintf(etag, sizeof(etag), "%s", r.etag);
        s3_resp_cleanup(&r);
        if (rc == TF_OK)
            rc = tf_buf_printf(&done, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>",
                               i + 1, etag);
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(&done, "</CompleteMultipartUpload>");
    if (rc == TF_OK) {
        snprintf(query, sizeof(query), "uploadId=%s", enc.data);
        rc = s3_call(l->s3, "POST", okey, query, complete_headers, done.data, done.len, &r, err,
                     errlen);
        /* A completion can answer 200 with an error in its body. */
        if (rc == TF_OK && r.status == 200 && r.body.data && strstr(r.body.data, "<Error>"))
            s3_xml_value(r.body.data, "Code", r.code, sizeof(r.code));
        if (rc == TF_OK && r.status == 412 && !replace) {
            rc = TF_ERR_CONFLICT;
        } else if (rc == TF_OK && (r.status != 200 || r.code[0])) {
            answer_error(l, "complete upload of", okey, &r, err, errlen);
            rc = TF_ERR_IO;
        }
        s3_resp_cleanup(&r);
    }
    if (rc != TF_OK)
        abort_upload(l, okey, id);
    tf_buf_cleanup(&done);
    tf_buf_cleanup(&enc);
    return rc;
}

enum tf_rc lake_s3_get(struct lake_s3 *l, const char *uri, const char *want_sha256,
                       struct tf_buf *out, char *err, size_t errlen)
{
    char base[300];
    size_t blen = (size_t)snprintf(base, sizeof(base), "s3://%s/", l->bucket);
    const char *okey = uri + blen;
    struct s3_resp r;
    enum tf_rc rc;

    if (strncmp(uri, base, blen) != 0 ||
        (l->prefix[0] &&
         (strncmp(okey, l->prefix, strlen(l->prefix)) != 0 || okey[strlen(l->prefix)] != '/')) ||
        strstr(okey, "/../")) {
        snprintf(err, errlen, "object is outside the lake");
        return TF_ERR_INVALID;
    }
    rc = s3_call(l->s3, "GET", okey, NULL, NULL, NULL, 0, &r, err, errlen);
    if (rc == TF_OK && r.status == 404) {
        snprintf(err, errlen, "s3://%s/%s: no such object", l->bucket, okey);
        rc = TF_ERR_NOT_FOUND;
    } else if (rc == TF_OK && r.status != 200) {
        answer_error(l, "GET", okey, &r, err, errlen);
        rc = TF_ERR_IO;
    }
    if (rc == TF_OK) {
        tf_buf_reset(out);
        rc = tf_buf_append(out, r.body.data ? r.body.data : "", r.body.len);
        if (rc != TF_OK)
            snprintf(err, errlen, "object too large");
    }
    s3_resp_cleanup(&r);
    if (rc == TF_OK && want_sha256) {
        char got[65];

        tf_sha256_hex(out->data ? out->data : "", out->len, got);
        if (strcmp(got, want_sha256) != 0) {
            snprintf(err, errlen, "sha256 mismatch for %s", okey);
            return TF_ERR_CONFLICT;
        }
    }
    return rc;
}

enum tf_rc lake_s3_delete(struct lake_s3 *l, const char *key, char *err, size_t errlen)
{
    struct s3_resp r;
    enum tf_rc rc = s3_call(l->s3, "DELETE", key, NULL, NULL, NULL, 0, &r, err, errlen);

    if (rc == TF_OK && r.status != 204 && r.status != 200 && r.status != 404) {
        answer_error(l, "DELETE", key, &r, err, errlen);
        rc = TF_ERR_IO;
    }
    s3_resp_cleanup(&r);
    return rc;
}

enum tf_rc lake_s3_clear(struct lake_s3 *l, const char *folder, char *err, size_t errlen)
{
    char okey[KEY_MAX], token[1024] = "";
    enum tf_rc rc = TF_OK;

    if (!object_key(l, folder, okey) || strlen(okey) + 2 >= KEY_MAX) {
        snprintf(err, errlen, "lake folder too long");
        return TF_ERR_INVALID;
    }
    {
        size_t n = strlen(okey);

        okey[n] = '/';
        okey[n + 1] = '\0';
    }
    do {
        struct tf_buf q, tok, pre;
        struct s3_resp r;
        const char *p;

        tf_buf_init(&q, 4096);
        tf_buf_init(&tok, 2048);
        tf_buf_init(&pre, 2048);
        rc = s3_encode(&tok, token, 0);
        if (rc == TF_OK)
            rc = s3_encode(&pre, okey, 0);
        /* Sorted: continuation-token, delimiter, list-type, prefix. */
        if (rc == TF_OK)
            rc = tf_buf_printf(&q, "%s%s%sdelimiter=%%2F&list-type=2&prefix=%s",
                               token[0] ? "continuation-token=" : "", token[0] ? tok.data : "",
                               token[0] ? "&" : "", pre.data);
        tf_buf_cleanup(&tok);
        tf_buf_cleanup(&pre);
        if (rc == TF_OK)
            rc = s3_call(l->s3, "GET", "", q.data, NULL, NULL, 0, &r, err, errlen);
        tf_buf_cleanup(&q);
        if (rc != TF_OK)
            return rc;
        if (r.status != 200) {
            answer_error(l, "list", okey, &r, err, errlen);
            s3_resp_cleanup(&r);
            return TF_ERR_IO;
        }
        token[0] = '\0';
        if (r.body.data && strstr(r.body.data, "<IsTruncated>true</IsTruncated>"))
            s3_xml_value(r.body.data, "NextContinuationToken", token, sizeof(token));
        for (p = r.body.data ? strstr(r.body.data, "<Contents>") : NULL; p && rc == TF_OK;
             p = strstr(p + 1, "<Contents>")) {
            char key[KEY_MAX];

            s3_xml_value(p, "Key", key, sizeof(key));
            if (key[0] && !strchr(key + strlen(okey), '/'))
                rc = lake_s3_delete(l, key, err, errlen);
        }
        s3_resp_cleanup(&r);
    } while (rc == TF_OK && token[0]);
    return rc;
}
