/*
 * lake_s3.h - the lake's bucket backend (lake_s3.c), behind tf/lake.h:
 * lake.c hands an s3:// lake's calls here. Internal to common/io.
 */
#ifndef TF_LAKE_S3_H
#define TF_LAKE_S3_H

#include <stddef.h>

#include "tf/buf.h"
#include "tf/lake.h"
#include "tf/rc.h"

struct lake_s3;

/** Opens s3://bucket[/prefix] with cfg and checks that the bucket answers to its keys. */
enum tf_rc lake_s3_open(const char *uri, const struct tf_lake_s3_cfg *cfg, struct lake_s3 **out,
                        char *err, size_t errlen) TF_MUSTCHECK;

void lake_s3_free(struct lake_s3 *l);

/**
 * Puts data under key: replace overwrites (a reader sees the old object or
 * the new, whole), else write-once (a key holding the same bytes is fine,
 * *created 0; other bytes TF_ERR_CONFLICT). Large objects go up in parts;
 * an upload that fails is aborted, so no partial object is ever visible.
 */
enum tf_rc lake_s3_write(struct lake_s3 *l, const char *key, const void *data, size_t len,
                         int replace, struct tf_lake_obj *obj, int *created, char *err,
                         size_t errlen) TF_MUSTCHECK;

enum tf_rc lake_s3_get(struct lake_s3 *l, const char *uri, const char *want_sha256,
                       struct tf_buf *out, char *err, size_t errlen) TF_MUSTCHECK;

/** Deletes the objects directly under folder (not deeper). */
enum tf_rc lake_s3_clear(struct lake_s3 *l, const char *folder, char *err,
                         size_t errlen) TF_MUSTCHECK;

/** Deletes the object at key (a missing one is fine). */
enum tf_rc lake_s3_delete(struct lake_s3 *l, const char *key, char *err,
                          size_t errlen) TF_MUSTCHECK;

#endif
