/*
 * tf/lake.h - the data lake: a local (or mounted) folder, or a prefix of
 * an S3-compatible bucket. Callers do not know which.
 *
 * Objects appear whole or not at all and are never overwritten: putting a
 * key that exists with the same bytes succeeds, with other bytes fails.
 * In a folder: temporary file, fsync, link into place, fsync of the
 * folder. In a bucket: a conditional PUT (If-None-Match), large objects in
 * parts. Each object is described by its URI (file:///... or
 * s3://bucket/...), size and sha256.
 */
#ifndef TF_LAKE_H
#define TF_LAKE_H

#include <stddef.h>

#include "tf/buf.h"
#include "tf/rc.h"

struct tf_lake;

struct tf_lake_obj {
    char uri[1024];
    long long bytes;
    long long records;
    char sha256[65];
};

/* How to reach a bucket lake; unused for a folder. NULL members take defaults. */
struct tf_lake_s3_cfg {
    const char *endpoint;   /* "https://host[:port]"; default AWS's for region */
    const char *region;     /* default "us-east-1" */
    const char *addressing; /* "path" or "virtual"; default virtual on AWS, else path */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* temporary credentials; may be NULL */
    long timeout_ms;           /* of one request; 0: 60 s */
    int max_attempts;          /* of one request, retries included; 0: 8 */
    /* Multipart uploads under the prefix begun this many seconds ago and
     * never finished (their writer died) are aborted when the lake opens;
     * 0: 3600; below 0: never. */
    long abandoned_after_s;
};

/**
 * Opens the lake at uri: "file:///abs/dir" or a path (the folder is
 * created), or "s3://bucket[/prefix]" with s3 (the bucket must exist and
 * answer to the keys: checked here). The error names the bucket, never a
 * credential.
 */
enum tf_rc tf_lake_open(const char *uri, const struct tf_lake_s3_cfg *s3, struct tf_lake **out,
                        char *err, size_t errlen) TF_MUSTCHECK;

/** NULL-safe. */
void tf_lake_free(struct tf_lake *lake);

/**
 * Writes data under key (a relative path without ".." segments) and fills
 * obj (records is left for the caller). TF_ERR_CONFLICT when key holds
 * other bytes, TF_ERR_INVALID for a bad key, TF_ERR_IO otherwise.
 */
enum tf_rc tf_lake_put(struct tf_lake *lake, const char *key, const void *data, size_t len,
                       struct tf_lake_obj *obj, char *err, size_t errlen) TF_MUSTCHECK;

/**
 * A batch of objects made durable together (one file-system flush instead
 * of an fsync per object), for a writer that lands many objects and then
 * records them. tf_lake_batch_put writes an object's bytes under a
 * temporary name and fills obj; tf_lake_batch_commit flushes, then puts
 * every object in place (write-once, as tf_lake_put) and syncs their
 * folders: no name ever points at bytes that are not on disk. Objects of a
 * batch freed without a commit leave nothing behind. Puts may come from
 * several threads at once.
 */
struct tf_lake_batch;

/** NULL when out of memory. */
struct tf_lake_batch *tf_lake_batch_new(struct tf_lake *lake);

enum tf_rc tf_lake_batch_put(struct tf_lake_batch *b, const char *key, const void *data, size_t len,
                             struct tf_lake_obj *obj, char *err, size_t errlen) TF_MUSTCHECK;

enum tf_rc tf_lake_batch_commit(struct tf_lake_batch *b, char *err, size_t errlen) TF_MUSTCHECK;

/** Removes what was not committed. NULL-safe. */
void tf_lake_batch_free(struct tf_lake_batch *b);

/** Syncs the lake folder named by folder (a key without the object's name); a bucket needs none. */
enum tf_rc tf_lake_sync(struct tf_lake *lake, const char *folder, char *err,
                        size_t errlen) TF_MUSTCHECK;

/**
 * Removes the objects directly in folder (not its sub-folders; a missing
 * folder is fine) and syncs it: for a writer that owns the folder and takes
 * up work whose earlier, unrecorded objects must not stand in its way.
 */
enum tf_rc tf_lake_clear(struct tf_lake *lake, const char *folder, char *err,
                         size_t errlen) TF_MUSTCHECK;

/**
 * Writes data under key, replacing what is there atomically (temporary
 * file, fsync, rename over, fsync of the folder): a reader sees the old
 * bytes or the new, never a mix. For objects that are rebuilt whole, such
 * as a silver Parquet partition. Errors as tf_lake_put.
 */
enum tf_rc tf_lake_replace(struct tf_lake *lake, const char *key, const void *data, size_t len,
                           struct tf_lake_obj *obj, char *err, size_t errlen) TF_MUSTCHECK;

/**
 * Reads the object at uri into out (which must be initialised) and checks
 * its sha256 when want_sha256 is not NULL (TF_ERR_CONFLICT on mismatch).
 * URIs outside the lake are refused (TF_ERR_INVALID).
 */
enum tf_rc tf_lake_get(struct tf_lake *lake, const char *uri, const char *want_sha256,
                       struct tf_buf *out, char *err, size_t errlen) TF_MUSTCHECK;

/** Hex sha256 of data into out[65]. */
void tf_sha256_hex(const void *data, size_t len, char out[65]);

#endif
