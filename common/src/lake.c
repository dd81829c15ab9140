/*
 * lake.c - atomic, write-once objects under a root folder.
 */
#include "tf/lake.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tf_lake {
    char root[PATH_MAX];
};

void tf_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

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

enum tf_rc tf_lake_open(const char *uri, struct tf_lake **out, char *err, size_t errlen)
{
    struct tf_lake *lake = calloc(1, sizeof(*lake));
    char path[PATH_MAX];

    if (!lake)
        return TF_ERR_NOMEM;
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

#define LAKE_REPLACE 0x1u /* rename over an existing object (else link: never overwrite) */
#define LAKE_NOSYNC  0x2u /* leave the folder's fsync to tf_lake_sync() */

static enum tf_rc lake_write(struct tf_lake *lake, const char *key, const void *data, size_t len,
                             unsigned flags, struct tf_lake_obj *obj, char *err, size_t errlen);

enum tf_rc tf_lake_put(struct tf_lake *lake, const char *key, const void *data, size_t len,
                       struct tf_lake_obj *obj, char *err, size_t errlen)
{
    return lake_write(lake, key, data, len, 0, obj, err, errlen);
}

enum tf_rc tf_lake_put_nosync(struct tf_lake *lake, const char *key, const void *data, size_t len,
                              struct tf_lake_obj *obj, char *err, size_t errlen)
{
    return lake_write(lake, key, data, len, LAKE_NOSYNC, obj, err, errlen);
}

enum tf_rc tf_lake_replace(struct tf_lake *lake, const char *key, const void *data, size_t len,
                           struct tf_lake_obj *obj, char *err, size_t errlen)
{
    return lake_write(lake, key, data, len, LAKE_REPLACE, obj, err, errlen);
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

    if (rc != TF_OK)
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

static enum tf_rc lake_write(struct tf_lake *lake, const char *key, const void *data, size_t len,
                             unsigned flags, struct tf_lake_obj *obj, char *err, size_t errlen)
{
    char path[PATH_MAX];
    char tmp[PATH_MAX + 16];
    enum tf_rc rc = TF_ERR_IO;
    int fd = -1;

    if (!key_ok(key)) {
        snprintf(err, errlen, "bad lake key");
        return TF_ERR_INVALID;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", lake->root, key) >= sizeof(obj->uri) - 8) {
        snprintf(err, errlen, "lake key too long");
        return TF_ERR_INVALID;
    }
    /* A unique temporary name: writers in other threads or pods never share it. */
    snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    tf_sha256_hex(data, len, obj->sha256);
    obj->bytes = (long long)len;
    if ((size_t)snprintf(obj->uri, sizeof(obj->uri), "file://%s", path) >= sizeof(obj->uri))
        return TF_ERR_INVALID;
    /* Folders are made only when missing: the common case has them. */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (mkdirs_for(path) != 0) {
            snprintf(err, errlen, "mkdir for %s: %s", key, strerror(errno));
            return TF_ERR_IO;
        }
        snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
        fd = mkostemp(tmp, O_CLOEXEC);
    }
    if (fd >= 0)
        fchmod(fd, 0644);
    if (fd < 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "write %s: %s", key, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (flags & LAKE_REPLACE) {
        if (rename(tmp, path) != 0) {
            snprintf(err, errlen, "rename %s: %s", key, strerror(errno));
            goto out;
        }
    } else if (link(tmp, path) != 0) {
        if (errno != EEXIST) {
            snprintf(err, errlen, "link %s: %s", key, strerror(errno));
            goto out;
        }
        /* Written before (a retried attempt): fine if the bytes are the same. */
        struct tf_buf old;
        tf_buf_init(&old, len + 1);
        rc = tf_lake_get(lake, obj->uri, obj->sha256, &old, err, errlen);
        tf_buf_cleanup(&old);
        if (rc != TF_OK) {
            snprintf(err, errlen, "%s exists with other content", key);
            rc = TF_ERR_CONFLICT;
        }
        goto out;
    }
    if (!(flags & LAKE_NOSYNC))
        fsync_dir_of(path);
    rc = TF_OK;
out:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

enum tf_rc tf_lake_get(struct tf_lake *lake, const char *uri, const char *want_sha256,
                       struct tf_buf *out, char *err, size_t errlen)
{
    size_t rootlen = strlen(lake->root);
    const char *path = uri;
    char buf[65536];
    enum tf_rc rc;
    FILE *fp;

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
