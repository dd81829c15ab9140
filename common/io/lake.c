/*
 * lake.c - atomic, write-once objects under a root folder; a bucket lake's
 * calls go to lake_s3.c.
 */
#include "tf/lake.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lake_s3.h"
#include "tf/log.h"

struct tf_lake {
    char root[PATH_MAX];
    struct lake_s3 *s3; /* a bucket lake; NULL for a folder */
};

/* mkdir -p for the folders of path (not the last component). */
static int mkdirs_for(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

enum tf_rc tf_lake_open(const char *uri, const struct tf_lake_s3_cfg *s3, struct tf_lake **out,
                        char *err, size_t errlen)
{
    struct tf_lake *lake = calloc(1, sizeof(*lake));
    char path[PATH_MAX];

    if (!lake)
        return TF_ERR_NOMEM;
    if (strncmp(uri, "s3://", 5) == 0) {
        enum tf_rc rc = lake_s3_open(uri, s3, &lake->s3, err, errlen);

        if (rc != TF_OK) {
            free(lake);
            return rc;
        }
        *out = lake;
        return TF_OK;
    }
    if (strncmp(uri, "file://", 7) == 0)
        uri += 7;
    if (strlen(uri) + 2 >= sizeof(path)) {
        snprintf(err, errlen, "lake path too long");
        free(lake);
        return TF_ERR_INVALID;
    }
    snprintf(path, sizeof(path), "%s/", uri);
    if (mkdirs_for(path) != 0 || !realpath(uri, lake->root)) {
        snprintf(err, errlen, "cannot create lake folder %s: %s", uri, strerror(errno));
        free(lake);
        return TF_ERR_IO;
    }
    *out = lake;
    return TF_OK;
}

void tf_lake_free(struct tf_lake *lake)
{
    if (lake)
        lake_s3_free(lake->s3);
    free(lake);
}

static int key_ok(const char *key)
{
    if (!*key || key[0] == '/' || strlen(key) > 512)
        return 0;
    for (const char *p = key; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += n;
        if (*p == '/')
            p++;
    }
    return 1;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    char *slash;
    int fd;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static enum tf_rc lake_write(struct tf_lake *lake, const char *key, const void *data, size_t len,
                             int replace, struct tf_lake_obj *obj, char *err, size_t errlen);

enum tf_rc tf_lake_put(struct tf_lake *lake, const char *key, const void *data, size_t len,
                       struct tf_lake_obj *obj, char *err, size_t errlen)
{
    return lake_write(lake, key, data, len, 0, obj, err, errlen);
}

enum tf_rc tf_lake_replace(struct tf_lake *lake, const char *key, const void *data, size_t len,
                           struct tf_lake_obj *obj, char *err, size_t errlen)
{
    return lake_write(lake, key, data, len, 1, obj, err, errlen);
}

/* The path of a lake folder; TF_ERR_INVALID for a bad or too long one. */
static enum tf_rc folder_path(const struct tf_lake *lake, const char *folder, char path[PATH_MAX],
                              char *err, size_t errlen)
{
    if (!key_ok(folder)) {
        snprintf(err, errlen, "bad lake folder");
        return TF_ERR_INVALID;
    }
    if ((size_t)snprintf(path, PATH_MAX, "%s/%s", lake->root, folder) >= PATH_MAX) {
        snprintf(err, errlen, "lake folder too long");
        return TF_ERR_INVALID;
    }
    return TF_OK;
}

enum tf_rc tf_lake_sync(struct tf_lake *lake, const char *folder, char *err, size_t errlen)
{
    char path[PATH_MAX];
    enum tf_rc rc = folder_path(lake, folder, path, err, errlen);
    int fd, r;

    if (rc != TF_OK || lake->s3) /* a bucket's objects are durable once written */
        return rc;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", folder, strerror(errno));
        return TF_ERR_IO;
    }
    r = fsync(fd);
    close(fd);
    if (r != 0) {
        snprintf(err, errlen, "fsync %s: %s", folder, strerror(errno));
        return TF_ERR_IO;
    }
    return TF_OK;
}

enum tf_rc tf_lake_clear(struct tf_lake *lake, const char *folder, char *err, size_t errlen)
{
    char path[PATH_MAX];
    enum tf_rc rc = folder_path(lake, folder, path, err, errlen);
    struct dirent *de;
    int removed = 0;
    DIR *dir;

    if (rc != TF_OK)
        return rc;
    if (lake->s3)
        return lake_s3_clear(lake->s3, folder, err, errlen);
    dir = opendir(path);
    if (!dir) {
        if (errno == ENOENT)
            return TF_OK;
        snprintf(err, errlen, "open %s: %s", folder, strerror(errno));
        return TF_ERR_IO;
    }
    while ((de = readdir(dir)) != NULL) {
        struct stat st;
        if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlinkat(dirfd(dir), de->d_name, 0) != 0) {
            snprintf(err, errlen, "remove %s/%s: %s", folder, de->d_name, strerror(errno));
            closedir(dir);
            return TF_ERR_IO;
        }
        removed++;
    }
    closedir(dir);
    return removed ? tf_lake_sync(lake, folder, err, errlen) : TF_OK;
}

/*
 * Writes data to a new temporary file beside key's path (made unique, so
 * writers in other threads or pods never share it), fsynced when sync is
 * set; fills path, tmp and obj. The caller links or renames it into place.
 */
static enum tf_rc stage_tmp(const struct tf_lake *lake, const char *key, const void *data,
                            size_t len, int sync, char path[PATH_MAX], char tmp[PATH_MAX + 16],
                            struct tf_lake_obj *obj, char *err, size_t errlen)
{
    int fd;

    if (!key_ok(key)) {
        snprintf(err, errlen, "bad lake key");
        return TF_ERR_INVALID;
    }
    if ((size_t)snprintf(path, PATH_MAX, "%s/%s", lake->root, key) >= sizeof(obj->uri) - 8) {
        snprintf(err, errlen, "lake key too long");
        return TF_ERR_INVALID;
    }
    snprintf(tmp, PATH_MAX + 16, "%s.tmp.XXXXXX", path);
    tf_sha256_hex(data, len, obj->sha256);
    obj->bytes = (long long)len;
    snprintf(obj->uri, sizeof(obj->uri), "file://%s", path);
    /* Folders are made only when missing: the common case has them. */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (mkdirs_for(path) != 0) {
            snprintf(err, errlen, "mkdir for %s: %s", key, strerror(errno));
            return TF_ERR_IO;
        }
        snprintf(tmp, PATH_MAX + 16, "%s.tmp.XXXXXX", path);
        fd = mkostemp(tmp, O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(err, errlen, "create %s: %s", key, strerror(errno));
        return TF_ERR_IO;
    }
    if (fchmod(fd, 0644) != 0 || write_all(fd, data, len) != 0 || (sync && fsync(fd) != 0)) {
        snprintf(err, errlen, "write %s: %s", key, strerror(errno));
        close(fd);
        unlink(tmp);
        return TF_ERR_IO;
    }
    close(fd);
    return TF_OK;
}

/*
 * Puts a staged temporary file in place: renamed over path, or linked (an
 * existing object with the same bytes is fine, other bytes a conflict).
 * The temporary name is gone afterwards, whatever happened.
 */
static enum tf_rc publish(struct tf_lake *lake, const char *path, const char *tmp, int replace,
                          const struct tf_lake_obj *obj, int *created, char *err, size_t errlen)
{
    enum tf_rc rc = TF_OK;

    *created = 0;
    if (replace) {
        if (rename(tmp, path) == 0) {
            *created = 1;
            return TF_OK;
        }
        snprintf(err, errlen, "rename %s: %s", path, strerror(errno));
        rc = TF_ERR_IO;
    } else if (link(tmp, path) == 0) {
        *created = 1;
    } else {
        if (errno != EEXIST) {
            snprintf(err, errlen, "link %s: %s", path, strerror(errno));
            rc = TF_ERR_IO;
        } else {
            /* Written before (a retried attempt): fine if the bytes are the same. */
            struct tf_buf old;
            tf_buf_init(&old, (size_t)obj->bytes + 1);
            rc = tf_lake_get(lake, obj->uri, obj->sha256, &old, err, errlen);
            tf_buf_cleanup(&old);
            if (rc != TF_OK) {
                snprintf(err, errlen, "%s exists with other content",
                         path + strlen(lake->root) + 1);
                rc = TF_ERR_CONFLICT;
            }
        }
    }
    unlink(tmp);
    return rc;
}

static enum tf_rc lake_write(struct tf_lake *lake, const char *key, const void *data, size_t len,
                             int replace, struct tf_lake_obj *obj, char *err, size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16];
    enum tf_rc rc;
    int created;

    if (lake->s3) {
        if (!key_ok(key)) {
            snprintf(err, errlen, "bad lake key");
            return TF_ERR_INVALID;
        }
        return lake_s3_write(lake->s3, key, data, len, replace, obj, &created, err, errlen);
    }
    rc = stage_tmp(lake, key, data, len, 1, path, tmp, obj, err, errlen);

    if (rc == TF_OK)
        rc = publish(lake, path, tmp, replace, obj, &created, err, errlen);
    if (rc == TF_OK)
        fsync_dir_of(path);
    return rc;
}

/* One object of a batch: staged, not yet in place. */
struct batch_item {
    char *path;
    char *tmp;
    int created; /* linked by the commit (not there before it) */
    struct tf_lake_obj obj;
};

struct tf_lake_batch {
    struct tf_lake *lake;
    int committed; /* a bucket batch: its objects stay when freed */
    pthread_mutex_t mu;
    struct batch_item *items;
    size_t n, cap;
};

struct tf_lake_batch *tf_lake_batch_new(struct tf_lake *lake)
{
    struct tf_lake_batch *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    b->lake = lake;
    pthread_mutex_init(&b->mu, NULL);
    return b;
}

enum tf_rc tf_lake_batch_put(struct tf_lake_batch *b, const char *key, const void *data, size_t len,
                             struct tf_lake_obj *obj, char *err, size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16];
    enum tf_rc rc;
    struct batch_item *it;
    int created = 0;

    if (b->lake->s3) {
        /* A bucket has no staging: the object goes up now, and one this
         * batch made is deleted again if the batch is never committed. */
        if (!key_ok(key)) {
            snprintf(err, errlen, "bad lake key");
            return TF_ERR_INVALID;
        }
        rc = lake_s3_write(b->lake->s3, key, data, len, 0, obj, &created, err, errlen);
        if (rc != TF_OK)
            return rc;
        snprintf(path, sizeof(path), "%s", obj->uri + 5 + strcspn(obj->uri + 5, "/") + 1);
        tmp[0] = '\0';
    } else {
        rc = stage_tmp(b->lake, key, data, len, 0, path, tmp, obj, err, errlen);
        if (rc != TF_OK)
            return rc;
    }
    pthread_mutex_lock(&b->mu);
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct batch_item *items = realloc(b->items, cap * sizeof(*items));
        if (!items) {
            pthread_mutex_unlock(&b->mu);
            unlink(tmp);
            return TF_ERR_NOMEM;
        }
        b->items = items;
        b->cap = cap;
    }
    it = &b->items[b->n];
    it->path = strdup(path);
    it->tmp = tmp[0] ? strdup(tmp) : NULL;
    it->created = created;
    it->obj = *obj;
    if (!it->path || (tmp[0] && !it->tmp)) {
        free(it->path);
        free(it->tmp);
        pthread_mutex_unlock(&b->mu);
        unlink(tmp);
        return TF_ERR_NOMEM;
    }
    b->n++;
    pthread_mutex_unlock(&b->mu);
    return TF_OK;
}

enum tf_rc tf_lake_batch_commit(struct tf_lake_batch *b, char *err, size_t errlen)
{
    enum tf_rc rc = TF_OK;
    int fd;

    if (b->n == 0)
        return TF_OK;
    if (b->lake->s3) { /* every object is up already */
        b->committed = 1;
        return TF_OK;
    }
    /* One flush of the file system makes every staged byte durable before
     * any name points at it: the cost of one fsync, not one per object. */
    fd = open(b->lake->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0) {
        snprintf(err, errlen, "flushing the lake: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return TF_ERR_IO;
    }
    close(fd);
    for (size_t i = 0; i < b->n; i++) {
        struct batch_item *it = &b->items[i];
        if (rc == TF_OK)
            rc = publish(b->lake, it->path, it->tmp, 0, &it->obj, &it->created, err, errlen);
        else
            unlink(it->tmp);
        free(it->tmp);
        it->tmp = NULL;
    }
    /* All or nothing: a failed commit takes back the names it made. */
    for (size_t i = 0; rc != TF_OK && i < b->n; i++) {
        if (b->items[i].created)
            unlink(b->items[i].path);
    }
    /* Then the names: each folder once (a batch mostly fills one). */
    for (size_t i = 0; rc == TF_OK && i < b->n; i++) {
        const char *slash = strrchr(b->items[i].path, '/');
        size_t dirlen = (size_t)(slash - b->items[i].path);
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strncmp(b->items[j].path, b->items[i].path, dirlen + 1) == 0 &&
                   !strchr(b->items[j].path + dirlen + 1, '/');
        if (!seen)
            fsync_dir_of(b->items[i].path);
    }
    return rc;
}

void tf_lake_batch_free(struct tf_lake_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        char err[256];

        if (b->items[i].tmp) /* never committed: nothing of it stays */
            unlink(b->items[i].tmp);
        if (b->lake->s3 && !b->committed && b->items[i].created &&
            lake_s3_delete(b->lake->s3, b->items[i].path, err, sizeof(err)) != TF_OK)
            tf_log_warn(NULL, "lake: an uncommitted object stays: %s", err);
        free(b->items[i].tmp);
        free(b->items[i].path);
    }
    free(b->items);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

enum tf_rc tf_lake_get(struct tf_lake *lake, const char *uri, const char *want_sha256,
                       struct tf_buf *out, char *err, size_t errlen)
{
    size_t rootlen = strlen(lake->root);
    const char *path = uri;
    char buf[65536];
    enum tf_rc rc;
    FILE *fp;

    if (lake->s3)
        return lake_s3_get(lake->s3, uri, want_sha256, out, err, errlen);
    if (strncmp(path, "file://", 7) == 0)
        path += 7;
    if (strncmp(path, lake->root, rootlen) != 0 || path[rootlen] != '/' || strstr(path, "/../")) {
        snprintf(err, errlen, "object is outside the lake");
        return TF_ERR_INVALID;
    }
    fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "open %s: %s", path + rootlen + 1, strerror(errno));
        return errno == ENOENT ? TF_ERR_NOT_FOUND : TF_ERR_IO;
    }
    tf_buf_reset(out);
    for (;;) {
        size_t n = fread(buf, 1, sizeof(buf), fp);
        if (n == 0)
            break;
        rc = tf_buf_append(out, buf, n);
        if (rc != TF_OK) {
            fclose(fp);
            snprintf(err, errlen, "object too large");
            return rc;
        }
    }
    if (ferror(fp)) {
        fclose(fp);
        snprintf(err, errlen, "read %s failed", path + rootlen + 1);
        return TF_ERR_IO;
    }
    fclose(fp);
    if (want_sha256) {
        char got[65];
        tf_sha256_hex(out->data ? out->data : "", out->len, got);
        if (strcmp(got, want_sha256) != 0) {
            snprintf(err, errlen, "sha256 mismatch for %s", path + rootlen + 1);
            return TF_ERR_CONFLICT;
        }
    }
    return TF_OK;
}
