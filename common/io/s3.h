/*
 * s3.h - a small client of the S3 API (AWS S3 and the stores that speak
 * it: Cloud Storage's XML API with HMAC keys, SeaweedFS, Ceph), for the
 * lake's bucket backend (lake_s3.c). Internal to common/io.
 *
 * Requests are signed with AWS Signature V4 by libcurl
 * (CURLOPT_AWS_SIGV4); the client sends x-amz-content-sha256 itself,
 * sorts and encodes the query and encodes keys (RFC 3986), which libcurl
 * 7.88 leaves to its caller. Connections are kept in a pool of handles
 * that any thread may take. A request is retried with a doubling backoff
 * when the store is throttling (429, 503 SlowDown), fails (5xx) or the
 * connection breaks; nothing it says ever holds a credential.
 */
#ifndef TF_S3_H
#define TF_S3_H

#include <stddef.h>

#include "tf/buf.h"
#include "tf/rc.h"

struct s3_opts {
    char endpoint[512]; /* scheme://host[:port], no trailing '/' */
    char region[64];
    int path_style; /* 1: endpoint/bucket/key; 0: bucket.host/key */
    char bucket[256];
    char access_key[256];
    char secret_key[256];
    char session_token[4096]; /* "" for none */
    long timeout_ms;          /* of one request */
    int max_attempts;         /* of one request, retries included */
};

/* What one request answered. */
struct s3_resp {
    long status;        /* HTTP status, 0 when no answer came */
    struct tf_buf body; /* the answer's body (initialised by s3_call) */
    char etag[128];
    char sha256[65]; /* x-amz-meta-sha256, "" when absent */
    char code[64];   /* the error's <Code>, "" when none */
};

struct s3;

enum tf_rc s3_new(const struct s3_opts *opts, struct s3 **out) TF_MUSTCHECK;

/** NULL-safe. */
void s3_free(struct s3 *s);

/**
 * One request: method on key (raw; "" for the bucket itself) with query
 * (its parameters already sorted and encoded, each as name=value; NULL
 * for none), extra headers ("Name: value", NULL-terminated list, may be
 * NULL) and body. r->body is initialised here; the caller cleans it up
 * with s3_resp_cleanup whatever the result. TF_OK whenever an answer came
 * (look at r->status); TF_ERR_IO when none did after every attempt, with
 * err set.
 */
enum tf_rc s3_call(struct s3 *s, const char *method, const char *key, const char *query,
                   const char *const *headers, const void *body, size_t len, struct s3_resp *r,
                   char *err, size_t errlen) TF_MUSTCHECK;

void s3_resp_cleanup(struct s3_resp *r);

/** Appends s percent-encoded for a query value or a key (keep_slash) to out. */
enum tf_rc s3_encode(struct tf_buf *out, const char *s, int keep_slash) TF_MUSTCHECK;

/** The text of the first <tag>...</tag> in xml into out ("" when absent). */
void s3_xml_value(const char *xml, const char *tag, char *out, size_t outlen);

#endif
