/*
 * test_common.c - the common library without I/O beyond a temporary
 * folder: configuration, time, UUIDs, routing, buffers, result codes and
 * the lake's write-once objects.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tf/buf.h"
#include "tf/cfg.h"
#include "tf/exec.h"
#include "tf/gz.h"
#include "tf/http.h"
#include "extract/job.h"
#include "tf/jscan.h"
#include "tf/lake.h"
#include "tf/time.h"

struct fake_env {
    const char *const *pairs; /* name, value, name, value, ..., NULL */
};

static const char *fake_lookup(const char *name, void *ud)
{
    const struct fake_env *env = ud;

    for (int i = 0; env->pairs[i]; i += 2) {
        if (strcmp(env->pairs[i], name) == 0)
            return env->pairs[i + 1];
    }
    return NULL;
}

struct demo_cfg {
    char *dsn;
    char *token;
    long port;
    char *name;
};

static const struct tf_cfg_key demo_keys[] = {
    {"T_DSN", TF_CFG_STR, offsetof(struct demo_cfg, dsn), NULL, TF_CFG_REQUIRED | TF_CFG_SECRET, 0,
     0},
    {"T_NAME", TF_CFG_STR, offsetof(struct demo_cfg, name), "fallback", 0, 0, 0},
    {"T_PORT", TF_CFG_INT, offsetof(struct demo_cfg, port), "8080", 0, 0, 65535},
    {"T_TOKEN", TF_CFG_STR, offsetof(struct demo_cfg, token), NULL, TF_CFG_SECRET, 0, 0},
};

static void test_cfg(void)
{
    struct demo_cfg cfg;
    char err[1024];
    char path[] = "/tmp/tf_unit_secretXXXXXX";
    int fd;

    {
        const char *pairs[] = {"T_DSN", "postgresql://u@h/db", "T_PORT", "9090", NULL};
        struct fake_env env = {pairs};
        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(demo_keys, 4, fake_lookup, &env, &cfg, err, sizeof(err)) == TF_OK,
              "valid config: %s", err);
        CHECK_STR(cfg.dsn, "postgresql://u@h/db");
        CHECK_STR(cfg.name, "fallback");
        CHECK_EQ_INT(cfg.port, 9090);
        CHECK(cfg.token == NULL, "unset optional secret stays NULL");
        tf_cfg_cleanup(demo_keys, 4, &cfg);
    }
    {
        /* Every bad key is reported at once. */
        const char *pairs[] = {"T_PORT", "80x", NULL};
        struct fake_env env = {pairs};
        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(demo_keys, 4, fake_lookup, &env, &cfg, err, sizeof(err)) ==
                  TF_ERR_INVALID,
              "bad config fails");
        CHECK(strstr(err, "T_DSN: required") != NULL, "missing key reported: %s", err);
        CHECK(strstr(err, "T_PORT: expected an integer in 0..65535") != NULL,
              "bad int reported: %s", err);
        tf_cfg_cleanup(demo_keys, 4, &cfg);
    }
    {
        const char *pairs[] = {"T_DSN", "x", "T_PORT", "70000", NULL};
        struct fake_env env = {pairs};
        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(demo_keys, 4, fake_lookup, &env, &cfg, err, sizeof(err)) ==
                  TF_ERR_INVALID,
              "port out of range fails");
        tf_cfg_cleanup(demo_keys, 4, &cfg);
    }
    /* Secrets from _FILE, trailing newline dropped; both set is an error. */
    fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "s3cr3t-token\n", 13) == 13, "secret file written");
    close(fd);
    {
        const char *pairs[] = {"T_DSN", "x", "T_TOKEN_FILE", path, NULL};
        struct fake_env env = {pairs};
        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(demo_keys, 4, fake_lookup, &env, &cfg, err, sizeof(err)) == TF_OK,
              "secret from file: %s", err);
        CHECK_STR(cfg.token, "s3cr3t-token");
        tf_cfg_cleanup(demo_keys, 4, &cfg);
    }
    {
        const char *pairs[] = {"T_DSN", "x", "T_TOKEN", "a", "T_TOKEN_FILE", path, NULL};
        struct fake_env env = {pairs};
        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(demo_keys, 4, fake_lookup, &env, &cfg, err, sizeof(err)) ==
                  TF_ERR_INVALID,
              "both secret forms refused");
        CHECK(strstr(err, "not both") != NULL, "reason given: %s", err);
        CHECK(strstr(err, "s3cr3t") == NULL, "the secret is not in the message");
        tf_cfg_cleanup(demo_keys, 4, &cfg);
    }
    {
        const char *pairs[] = {"T_DSN", "x", "T_TOKEN_FILE", "/nonexistent/tf-secret", NULL};
        struct fake_env env = {pairs};
        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(demo_keys, 4, fake_lookup, &env, &cfg, err, sizeof(err)) ==
                  TF_ERR_INVALID,
              "missing secret file refused");
        CHECK(strstr(err, "T_TOKEN_FILE") != NULL, "file key named: %s", err);
        tf_cfg_cleanup(demo_keys, 4, &cfg);
    }
    /* An empty secret file counts as unset: the default (none here) applies. */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    {
        const char *pairs[] = {"T_DSN", "x", "T_TOKEN_FILE", path, NULL};
        struct fake_env env = {pairs};
        memset(&cfg, 0, sizeof(cfg));
        CHECK(tf_cfg_load(demo_keys, 4, fake_lookup, &env, &cfg, err, sizeof(err)) == TF_OK,
              "empty secret file: %s", err);
        CHECK(cfg.token == NULL, "empty secret file leaves the secret unset");
        tf_cfg_cleanup(demo_keys, 4, &cfg);
    }
    unlink(path);
}

static void test_redact(void)
{
    static const struct {
        const char *dsn;
        const char *want;
    } cases[] = {
        {"postgresql://bob:hunter2@db:5432/tickflow",
         "user=bob password=*** dbname=tickflow host=db port=5432"},
        {"postgresql://bob@db/tickflow?password=hunter2",
         "user=bob password=*** dbname=tickflow host=db"},
        {"host=db user=bob password=hunter2 dbname=x", "user=bob password=*** dbname=x host=db"},
        {"host=db password = hunter2", "password=*** host=db"},
        {"host=db password='hunter 2' user=x", "user=x password=*** host=db"},
        {"host=db sslpassword=hunter2", "host=db sslpassword=***"},
        {"postgresql://bob@db/tickflow", "user=bob dbname=tickflow host=db"},
        {"password=hunter2 = =", "(a connection string libpq cannot parse)"},
    };
    char out[256];

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        tf_cfg_redact_dsn(cases[i].dsn, out, sizeof(out));
        CHECK(strcmp(out, cases[i].want) == 0, "redact %s: %s", cases[i].dsn, out);
        CHECK(strstr(out, "hunter") == NULL, "no password in %s", out);
    }
    /* A short buffer truncates at a pair boundary, never mid-secret. */
    tf_cfg_redact_dsn("postgresql://bob:hunter2@db:5432/tickflow", out, 20);
    CHECK_STR(out, "user=bob");
    tf_cfg_redact_dsn("postgresql://bob:hunter2@db:5432/tickflow", out, 22);
    CHECK_STR(out, "user=bob password=***");
}

static void test_time(void)
{
    int64_t t = 0;
    char buf[32];
    int y, m, d;

    CHECK(tf_time_parse("2024-03-04T14:30:00Z", &t) == TF_OK, "parse Z");
    CHECK_EQ_INT(t, 1709562600);
    CHECK(tf_time_parse("2024-03-04 09:30:00-05:00", &t) == TF_OK, "parse offset");
    CHECK_EQ_INT(t, 1709562600);
    CHECK(tf_time_parse("2024-03-04", &t) == TF_OK, "parse date");
    CHECK_EQ_INT(t, 1709510400);
    CHECK(tf_time_parse("2024-02-30", &t) == TF_ERR_INVALID, "Feb 30 refused");
    CHECK(tf_time_parse("2024-03-04T25:00:00Z", &t) == TF_ERR_INVALID, "hour 25 refused");
    /* RFC 3339 date-times (the API's "format": "date-time"): fractions of a
     * second of any length are read and truncated, lower-case t and z,
     * offsets to +-23:59. */
    CHECK(tf_time_parse("2024-03-04T10:00:00.000Z", &t) == TF_OK, "zero fraction accepted");
    CHECK_EQ_INT(t, 1709546400);
    CHECK(tf_time_parse("2024-03-04T10:00:00.5Z", &t) == TF_OK, "fraction accepted");
    CHECK_EQ_INT(t, 1709546400);
    CHECK(tf_time_parse("2024-03-04T10:00:59.999999999Z", &t) == TF_OK, "nine digits accepted");
    CHECK_EQ_INT(t, 1709546459);
    CHECK(tf_time_parse("2024-03-04T10:00:00.250+01:00", &t) == TF_OK, "fraction and offset");
    CHECK_EQ_INT(t, 1709542800);
    CHECK(tf_time_parse("2024-03-04t10:00:00.1z", &t) == TF_OK, "lower-case t and z");
    CHECK_EQ_INT(t, 1709546400);
    CHECK(tf_time_parse("2024-03-04T10:00:00+23:59", &t) == TF_OK, "offset +23:59");
    CHECK_EQ_INT(t, 1709546400 - 23 * 3600 - 59 * 60);
    CHECK(tf_time_parse("2024-03-04T10:00:00-23:59", &t) == TF_OK, "offset -23:59");
    CHECK_EQ_INT(t, 1709546400 + 23 * 3600 + 59 * 60);
    CHECK(tf_time_parse("2024-03-04T10:00:00+24:00", &t) == TF_ERR_INVALID, "offset 24 refused");
    CHECK(tf_time_parse("2024-03-04T10:00:00.Z", &t) == TF_ERR_INVALID, "empty fraction refused");
    CHECK(tf_time_parse("2024-03-04T10:00:00.5x", &t) == TF_ERR_INVALID, "fraction then junk");
    CHECK(tf_time_parse("2024-03-04T10:00.5Z", &t) == TF_ERR_INVALID, "fraction needs seconds");
    CHECK(tf_time_parse("yesterday", &t) == TF_ERR_INVALID, "words refused");
    CHECK(tf_time_parse("2024-03-04T10:00:00Zjunk", &t) == TF_ERR_INVALID, "trailing refused");
    tf_time_format(1709562600, buf, sizeof(buf));
    CHECK_STR(buf, "2024-03-04T14:30:00Z");
    tf_civil_from_days(tf_days_from_civil(2000, 2, 29), &y, &m, &d);
    CHECK(y == 2000 && m == 2 && d == 29, "civil round trip");
    CHECK_EQ_INT(tf_weekday(tf_days_from_civil(2024, 3, 4)), 1);
    /* DST: 2024-03-10 07:00Z starts EDT, 2024-11-03 06:00Z ends it. */
    CHECK_EQ_INT(tf_time_us_eastern_offset(1710053999), -5 * 3600);
    CHECK_EQ_INT(tf_time_us_eastern_offset(1710054000), -4 * 3600);
    CHECK_EQ_INT(tf_time_us_eastern_offset(1730613599), -4 * 3600);
    CHECK_EQ_INT(tf_time_us_eastern_offset(1730613600), -5 * 3600);
    CHECK_EQ_INT(tf_time_us_eastern_to_utc(2024, 3, 8, 9, 30), 1709908200);
    CHECK_EQ_INT(tf_time_us_eastern_to_utc(2024, 3, 11, 9, 30), 1710163800);
    CHECK_EQ_INT(tf_timespan_seconds("minute", 5), 300);
    CHECK_EQ_INT(tf_timespan_seconds("fortnight", 1), 0);
}

static void test_uuid(void)
{
    char id[TF_UUID_LEN + 1];

    CHECK(tf_uuid_valid("5b0e4a52-3c1d-4f8e-9a7b-2d6c8e1f0a93"), "lower case");
    CHECK(tf_uuid_valid("5B0E4A52-3C1D-4F8E-9A7B-2D6C8E1F0A93"), "upper case");
    CHECK(!tf_uuid_valid("5b0e4a52-3c1d-4f8e-9a7b-2d6c8e1f0a9"), "short");
    CHECK(!tf_uuid_valid("5b0e4a52x3c1d-4f8e-9a7b-2d6c8e1f0a93"), "bad dash");
    CHECK(!tf_uuid_valid("5b0e4a52-3c1d-4f8e-9a7b-2d6c8e1f0a9g"), "bad digit");
    CHECK(!tf_uuid_valid(NULL), "NULL");
    tf_uuid_new(id);
    CHECK(tf_uuid_valid(id) && id[14] == '4', "new v4 id %s", id);
}

static void test_match(void)
{
    char caps[2][128];

    CHECK(tf_http_match("/v1/executions/abc", "/v1/executions/*", caps, 2), "one capture");
    CHECK_STR(caps[0], "abc");
    CHECK(!tf_http_match("/v1/executions/", "/v1/executions/*", caps, 2), "empty segment");
    CHECK(!tf_http_match("/v1/executions/a/b", "/v1/executions/*", caps, 2), "extra segment");
    CHECK(tf_http_match("/v1/jobs/x/gaps", "/v1/jobs/*/gaps", caps, 2), "inner capture");
    CHECK_STR(caps[0], "x");
    CHECK(!tf_http_match("/v1/jobs", "/v1/jobs/*", caps, 2), "missing segment");
}

static void test_buf_and_rc(void)
{
    struct tf_buf b;

    tf_buf_init(&b, 8);
    CHECK(tf_buf_puts(&b, "12345") == TF_OK, "fits");
    CHECK(tf_buf_printf(&b, "%d", 678) == TF_OK, "fits exactly");
    CHECK_STR(b.data, "12345678");
    CHECK(tf_buf_puts(&b, "9") == TF_ERR_TOO_LARGE, "over the cap");
    CHECK_EQ_INT(b.len, 8);
    tf_buf_cleanup(&b);
    CHECK_EQ_INT(tf_rc_http_status(TF_ERR_CONFLICT), 409);
    CHECK_EQ_INT(tf_rc_http_status(TF_ERR_NOT_FOUND), 404);
    CHECK_EQ_INT(tf_rc_http_status(TF_ERR_INVALID), 400);
    CHECK_EQ_INT(tf_rc_http_status(TF_ERR_DB), 503);
    CHECK_STR(tf_rc_str(TF_ERR_CONFLICT), "conflict");
}

static void test_lake(void)
{
    char root[] = "/tmp/tf_unit_lakeXXXXXX";
    struct tf_lake *lake = NULL;
    struct tf_lake_obj obj, again;
    struct tf_buf got;
    char err[256];

    CHECK(mkdtemp(root) != NULL, "temp dir");
    CHECK(tf_lake_open(root, NULL, &lake, err, sizeof(err)) == TF_OK, "open: %s", err);
    CHECK(tf_lake_put(lake, "bronze/a/b.json", "{\"x\":1}", 7, &obj, err, sizeof(err)) == TF_OK,
          "put: %s", err);
    CHECK_STR(obj.sha256, "5041bf1f713df204784353e82f6a4a535931cb64f1f4b4a5aeaffcb720918b22");
    CHECK_EQ_INT(obj.bytes, 7);
    CHECK(strncmp(obj.uri, "file:///", 8) == 0, "file uri %s", obj.uri);
    /* The same bytes again: fine. Other bytes: refused, the first object kept. */
    CHECK(tf_lake_put(lake, "bronze/a/b.json", "{\"x\":1}", 7, &again, err, sizeof(err)) == TF_OK,
          "idempotent put");
    CHECK(tf_lake_put(lake, "bronze/a/b.json", "{\"x\":2}", 7, &again, err, sizeof(err)) ==
              TF_ERR_CONFLICT,
          "no overwrite");
    tf_buf_init(&got, 1024);
    CHECK(tf_lake_get(lake, obj.uri, obj.sha256, &got, err, sizeof(err)) == TF_OK, "get: %s", err);
    CHECK_STR(got.data, "{\"x\":1}");
    CHECK(tf_lake_get(lake, obj.uri, again.sha256, &got, err, sizeof(err)) == TF_ERR_CONFLICT,
          "checksum mismatch detected");
    CHECK(tf_lake_get(lake, "file:///etc/passwd", NULL, &got, err, sizeof(err)) == TF_ERR_INVALID,
          "outside the lake refused");
    /* Replace: a rebuilt object takes the key whole; nothing else is left beside it. */
    CHECK(tf_lake_replace(lake, "silver/d/date=2024-01-02/part.parquet", "one", 3, &obj, err,
                          sizeof(err)) == TF_OK,
          "replace new: %s", err);
    CHECK(tf_lake_replace(lake, "silver/d/date=2024-01-02/part.parquet", "second", 6, &again, err,
                          sizeof(err)) == TF_OK,
          "replace existing: %s", err);
    CHECK(tf_lake_get(lake, again.uri, again.sha256, &got, err, sizeof(err)) == TF_OK, "get: %s",
          err);
    CHECK_STR(got.data, "second");
    {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s/silver/d/date=2024-01-02' | wc -l) -eq 1",
                 root);
        CHECK(system(cmd) == 0, "no temporary file left beside the replaced object");
    }
    /* A batch: nothing under its names until the commit; a freed batch leaves nothing. */
    {
        struct tf_lake_batch *b = tf_lake_batch_new(lake), *gone = tf_lake_batch_new(lake);
        struct tf_lake_obj o1, o2;
        char cmd[400];
        CHECK(b && gone, "batches");
        CHECK(tf_lake_batch_put(b, "bronze/x/p1.json", "a", 1, &o1, err, sizeof(err)) == TF_OK,
              "batch put: %s", err);
        CHECK(tf_lake_batch_put(b, "bronze/x/sub/p2.json", "bb", 2, &o2, err, sizeof(err)) == TF_OK,
              "batch put in a sub-folder: %s", err);
        CHECK(tf_lake_batch_put(gone, "bronze/y/p.json", "c", 1, &obj, err, sizeof(err)) == TF_OK,
              "put of a batch never committed");
        CHECK(tf_lake_batch_put(b, "../x", "a", 1, &obj, err, sizeof(err)) == TF_ERR_INVALID,
              "bad key refused");
        snprintf(cmd, sizeof(cmd), "test ! -e '%s/bronze/x/p1.json'", root);
        CHECK(system(cmd) == 0, "no name before the commit");
        CHECK(tf_lake_batch_commit(b, err, sizeof(err)) == TF_OK, "commit: %s", err);
        CHECK_EQ_INT(o2.bytes, 2);
        CHECK(tf_lake_get(lake, o2.uri, o2.sha256, &got, err, sizeof(err)) == TF_OK, "get: %s",
              err);
        CHECK_STR(got.data, "bb");
        tf_lake_batch_free(b);
        tf_lake_batch_free(gone);
        snprintf(cmd, sizeof(cmd),
                 "test -f '%s/bronze/x/p1.json' && test ! -e '%s/bronze/y/p.json' &&"
                 " test $(find '%s/bronze' -name '*.tmp.*' | wc -l) -eq 0",
                 root, root, root);
        CHECK(system(cmd) == 0, "committed objects in place, no temporary file anywhere");
        /* A second batch with other bytes under a committed name: a conflict,
         * and the batch's new object is taken back with it. */
        b = tf_lake_batch_new(lake);
        CHECK(tf_lake_batch_put(b, "bronze/x/new.json", "n", 1, &o2, err, sizeof(err)) == TF_OK,
              "staged");
        CHECK(tf_lake_batch_put(b, "bronze/x/p1.json", "z", 1, &o1, err, sizeof(err)) == TF_OK,
              "staged");
        CHECK(tf_lake_batch_commit(b, err, sizeof(err)) == TF_ERR_CONFLICT, "write-once kept");
        tf_lake_batch_free(b);
        snprintf(cmd, sizeof(cmd),
                 "test ! -e '%s/bronze/x/new.json' && test \"$(cat '%s/bronze/x/p1.json')\" = a",
                 root, root);
        CHECK(system(cmd) == 0, "a failed commit leaves no new name, the old object intact");
    }
    /* clear: the folder's objects go, its sub-folders stay. */
    CHECK(tf_lake_sync(lake, "bronze/x", err, sizeof(err)) == TF_OK, "sync: %s", err);
    CHECK(tf_lake_sync(lake, "bronze/none", err, sizeof(err)) == TF_ERR_IO, "sync of nothing");
    CHECK(tf_lake_clear(lake, "bronze/x", err, sizeof(err)) == TF_OK, "clear: %s", err);
    CHECK(tf_lake_clear(lake, "bronze/none", err, sizeof(err)) == TF_OK, "clear of nothing");
    CHECK(tf_lake_clear(lake, "../x", err, sizeof(err)) == TF_ERR_INVALID, "clear outside");
    {
        char cmd[300];
        snprintf(cmd, sizeof(cmd),
                 "test ! -e '%s/bronze/x/p1.json' && test -f '%s/bronze/x/sub/p2.json'", root,
                 root);
        CHECK(system(cmd) == 0, "cleared the folder's object, kept the sub-folder's");
    }
    tf_buf_cleanup(&got);
    CHECK(tf_lake_put(lake, "../escape.json", "x", 1, &obj, err, sizeof(err)) == TF_ERR_INVALID,
          "traversal refused");
    CHECK(tf_lake_put(lake, "/abs.json", "x", 1, &obj, err, sizeof(err)) == TF_ERR_INVALID,
          "absolute refused");
    CHECK(tf_lake_put(lake, "a/./b", "x", 1, &obj, err, sizeof(err)) == TF_ERR_INVALID,
          "dot segment refused");
    tf_lake_free(lake);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        CHECK(system(cmd) == 0, "cleanup");
    }
}

static void test_gzip(void)
{
    struct tf_buf raw, packed, back, small;
    char text[20000];

    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + (i * 7 % 26));
    tf_buf_init(&raw, 1 << 20);
    tf_buf_init(&packed, 1 << 20);
    tf_buf_init(&back, 1 << 20);
    tf_buf_init(&small, 1000);
    CHECK(tf_gzip(text, sizeof(text), &packed) == TF_OK, "gzip");
    CHECK(packed.len > 18 && packed.len < sizeof(text) / 4, "compressed %zu bytes to %zu",
          sizeof(text), packed.len);
    CHECK((unsigned char)packed.data[0] == 0x1f && (unsigned char)packed.data[1] == 0x8b,
          "gzip magic");
    CHECK(tf_gunzip(packed.data, packed.len, &back) == TF_OK, "gunzip");
    CHECK(back.len == sizeof(text) && memcmp(back.data, text, sizeof(text)) == 0, "round trip");
    /* A small stream that inflates past the cap is refused, not followed. */
    CHECK(tf_gunzip(packed.data, packed.len, &small) == TF_ERR_TOO_LARGE, "bounded inflate");
    tf_buf_reset(&back);
    CHECK(tf_gunzip(packed.data, packed.len / 2, &back) == TF_ERR_INVALID, "truncated");
    tf_buf_reset(&back);
    CHECK(tf_gunzip("not gzip at all", 15, &back) == TF_ERR_INVALID, "garbage");
    tf_buf_cleanup(&raw);
    tf_buf_cleanup(&packed);
    tf_buf_cleanup(&back);
    tf_buf_cleanup(&small);
}

static void test_zstd(void)
{
    struct tf_zstd *z = tf_zstd_new(1);
    struct tf_buf packed, back, small, two;
    char text[200000];

    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + (i * 7 % 26) + (i % 1000 == 0));
    tf_buf_init(&packed, 1 << 20);
    tf_buf_init(&back, 1 << 20);
    tf_buf_init(&small, 1000);
    tf_buf_init(&two, 1 << 20);
    CHECK(z != NULL, "compressor");
    CHECK(tf_zstd_compress(z, text, sizeof(text), &packed) == TF_OK, "zstd");
    CHECK(packed.len > 8 && packed.len < sizeof(text) / 8, "compressed %zu bytes to %zu",
          sizeof(text), packed.len);
    CHECK(memcmp(packed.data, "\x28\xb5\x2f\xfd", 4) == 0, "zstd frame magic");
    CHECK(tf_zstd_decompress(packed.data, packed.len, &back) == TF_OK, "unzstd");
    CHECK(back.len == sizeof(text) && memcmp(back.data, text, sizeof(text)) == 0, "round trip");
    /* The same compressor again, then two frames back to back: both come out. */
    CHECK(tf_buf_append(&two, packed.data, packed.len) == TF_OK, "copy");
    CHECK(tf_zstd_compress(z, "tail", 4, &two) == TF_OK, "second frame");
    tf_buf_reset(&back);
    CHECK(tf_zstd_decompress(two.data, two.len, &back) == TF_OK, "two frames");
    CHECK_EQ_INT(back.len, sizeof(text) + 4);
    CHECK(memcmp(back.data + sizeof(text), "tail", 4) == 0, "second frame's bytes");
    CHECK(tf_zstd_decompress(packed.data, packed.len, &small) == TF_ERR_TOO_LARGE,
          "bounded expansion");
    tf_buf_reset(&back);
    CHECK(tf_zstd_decompress(packed.data, packed.len - 6, &back) == TF_ERR_INVALID, "truncated");
    tf_buf_reset(&back);
    packed.data[packed.len - 1] ^= 0x55; /* the content checksum */
    CHECK(tf_zstd_decompress(packed.data, packed.len, &back) == TF_ERR_INVALID, "bad checksum");
    tf_buf_reset(&back);
    CHECK(tf_zstd_decompress("not zstd at all", 15, &back) == TF_ERR_INVALID, "garbage");
    tf_buf_reset(&back);
    CHECK(tf_zstd_decompress("", 0, &back) == TF_ERR_INVALID, "empty input");
    tf_zstd_free(z);
    tf_zstd_free(NULL);
    tf_buf_cleanup(&packed);
    tf_buf_cleanup(&back);
    tf_buf_cleanup(&small);
    tf_buf_cleanup(&two);
}

static void test_jscan(void)
{
    static const char page[] =
        "{\"ticker\":\"AAPL\",\"queryCount\":2,\"adjusted\":true,\"results\":[{\"v\":1e3,"
        "\"o\":-1.5,\"t\":0},{\"v\":2,\"o\":3.25E-2,\"t\":1}],\"status\":\"OK\","
        "\"next_url\":\"http:\\/\\/h\\/v2?cursor=a\\u0041\",\"request_id\":null,"
        "\"meta\":{\"a\":[1,[2,{}]],\"b\":\"\\\"q\\\"\"}}";
    static const char *const bad[] = {
        "",
        "[]",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{a:1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":tru}",
        "{\"a\":\"x}",
        "{\"a\":[1,]}",
        "{\"a\":1} x",
        "{\"a\":\"\\q\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":-}",
    };
    struct tf_jmember m[8];
    char out[128];
    int n = tf_jscan_object(page, sizeof(page) - 1, m, 8);
    size_t prefixes_accepted = 0, bad_accepted = 0;
    char deep[200];

    CHECK_EQ_INT(n, 8);
    CHECK_EQ_INT(tf_jscan_find(m, n, "results")->type, TF_J_ARRAY);
    CHECK_EQ_INT(tf_jscan_find(m, n, "results")->count, 2);
    CHECK_EQ_INT(tf_jscan_find(m, n, "meta")->count, 2);
    CHECK_EQ_INT(tf_jscan_find(m, n, "request_id")->type, TF_J_NULL);
    CHECK(tf_jscan_string(tf_jscan_find(m, n, "next_url"), out, sizeof(out)) > 0, "string");
    CHECK_STR(out, "http://h/v2?cursor=aA");
    CHECK(tf_jscan_string(tf_jscan_find(m, n, "status"), out, sizeof(out)) == 2, "status");
    CHECK_STR(out, "OK");
    CHECK(tf_jscan_find(m, n, "missing") == NULL, "absent key");
    CHECK_EQ_INT(tf_jscan_string(tf_jscan_find(m, n, "queryCount"), out, sizeof(out)), -1);
    /* A page cut anywhere is not a page. */
    for (size_t len = 0; len < sizeof(page) - 1; len++)
        prefixes_accepted += tf_jscan_object(page, len, m, 8) >= 0;
    CHECK_EQ_INT(prefixes_accepted, 0);
    for (size_t i = 0; i < TF_ARRAY_LEN(bad); i++) {
        if (tf_jscan_object(bad[i], strlen(bad[i]), m, 8) >= 0) {
            bad_accepted++;
            printf("accepted bad JSON: %s\n", bad[i]);
        }
    }
    CHECK_EQ_INT(bad_accepted, 0);
    CHECK_EQ_INT(tf_jscan_object(" { } ", 5, m, 8), 0);
    /* Nesting is bounded. */
    memset(deep, '[', sizeof(deep));
    memcpy(deep, "{\"a\":", 5);
    CHECK_EQ_INT(tf_jscan_object(deep, sizeof(deep), m, 8), -1);
}

static void test_job_rules(void)
{
    static const struct {
        const char *provider;
        const char *ticker;
        int ok;
    } tickers[] = {
        {"polygon", "AAPL", 1},
        {"polygon", "BRK.A", 1},
        {"polygon", "C:EURUSD", 1},
        {"polygon", "X:BTCUSD", 1},
        {"polygon", "aapl", 0},
        {"polygon", "I:NDX", 0},
        {"polygon", "O:SPY25", 0},
        {"polygon", "C:EU", 0},
        {"polygon", "AA PL", 0},
        {"polygon", "../x", 0},
        {"polygon", "", 0},
        {"polygon", "EUR/USD", 0},
        {"twelvedata", "AAPL", 1},
        {"twelvedata", "SBIN:NSE", 1},
        {"twelvedata", "EUR/USD", 1},
        {"twelvedata", "BTC/USD", 1},
        {"twelvedata", "EUR/", 0},
        {"twelvedata", "/USD", 0},
        {"twelvedata", "a/b", 0},
        {"twelvedata", "SBIN:", 0},
        {"twelvedata", "AAPL:nse", 0},
        {"alphavantage", "AAPL", 0},
    };
    char err[256];
    size_t wrong = 0;

    for (size_t i = 0; i < TF_ARRAY_LEN(tickers); i++) {
        int ok = tf_ticker_check(tickers[i].provider, tickers[i].ticker, err, sizeof(err)) == TF_OK;
        if (ok != tickers[i].ok) {
            wrong++;
            printf("ticker %s %s: %s\n", tickers[i].provider, tickers[i].ticker,
                   ok ? "accepted" : err);
        }
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(tf_ticker_check("polygon", "aapl", err, sizeof(err)) == TF_ERR_INVALID &&
              strstr(err, "upper-case"),
          "reason given: %s", err);
    CHECK(tf_job_name_valid("demo_us_equities"), "plain name");
    CHECK(!tf_job_name_valid("../etc"), "traversal");
    CHECK(!tf_job_name_valid("Demo"), "capitals");
    CHECK(!tf_job_name_valid("a-b"), "dash");
    CHECK(!tf_job_name_valid("9lives"), "digit first");
    CHECK(!tf_job_name_valid(""), "empty");
    CHECK(!tf_job_name_valid("a234567890123456789012345678901234567890123456789012345678901234"),
          "64 characters");
    CHECK(tf_provider_known("polygon") && tf_provider_known("twelvedata") &&
              !tf_provider_known("yahoo") && !tf_provider_known(NULL),
          "providers");
    CHECK(tf_bar_check("polygon", 7, "minute", err, sizeof(err)) == TF_OK, "polygon 7 minute");
    CHECK(tf_bar_check("twelvedata", 7, "minute", err, sizeof(err)) == TF_ERR_INVALID,
          "twelvedata has no 7 minute bars");
    CHECK(tf_bar_check("twelvedata", 45, "minute", err, sizeof(err)) == TF_OK, "45 minute");
    CHECK(tf_bar_check("polygon", 1, "fortnight", err, sizeof(err)) == TF_ERR_INVALID, "span");
    CHECK(tf_bar_check("polygon", 0, "minute", err, sizeof(err)) == TF_ERR_INVALID, "zero");
}

int main(void)
{
    test_cfg();
    test_redact();
    test_time();
    test_uuid();
    test_match();
    test_buf_and_rc();
    test_lake();
    test_job_rules();
    test_gzip();
    test_zstd();
    test_jscan();
    return check_summary();
}
