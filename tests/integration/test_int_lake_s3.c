/*
 * test_int_lake_s3.c - the lake in a bucket of a real S3-compatible server
 * (SeaweedFS, tests/env/seaweedfs.sh; its settings in TICKFLOW_LAKE_S3_*),
 * through tf/lake.h as the services use it:
 *
 *   - an object reads back byte for byte under s3://bucket/prefix/key, its
 *     sha256 checked; a Hive-style key (date=...) works;
 *   - write-once: the same bytes again are fine, other bytes a conflict
 *     that leaves the object as it was; replace overwrites;
 *   - a 20 MiB object goes up in parts, reads back whole, and a conflicting
 *     one leaves no upload behind;
 *   - a batch freed without a commit takes its objects away, a committed
 *     one keeps them; clear removes a folder's objects, not its sub-folders';
 *   - a wrong secret, an unknown bucket and a read-only key fail with an
 *     error that names the bucket and holds no credential;
 *   - through a fault proxy (tests/env/s3_faults.py): 503 SlowDown and
 *     connections reset before or after the store took a PUT cost retries,
 *     not data; a store that keeps throttling fails the put clearly;
 *   - the server restarted in the middle of a 25 MiB upload in parts: the
 *     upload completes once it is back, whole;
 *   - a writer killed in the middle of an upload in parts leaves no object,
 *     and its unfinished upload is aborted by the next opening of the lake
 *     once older than abandoned_after_s, not before, never with -1.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/buf.h"
#include "tf/lake.h"

static char prefix[128];

static struct tf_lake_s3_cfg cfg_from_env(void)
{
    struct tf_lake_s3_cfg c = {0};

    c.endpoint = getenv("TICKFLOW_LAKE_S3_ENDPOINT");
    c.region = getenv("TICKFLOW_LAKE_S3_REGION");
    c.addressing = getenv("TICKFLOW_LAKE_S3_ADDRESSING");
    c.access_key_id = getenv("TICKFLOW_LAKE_S3_ACCESS_KEY_ID");
    c.secret_access_key = getenv("TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY");
    c.max_attempts = 3;
    return c;
}

static char *fill(size_t n, unsigned seed)
{
    char *p = malloc(n);

    for (size_t i = 0; p && i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(seed >> 16);
    }
    return p;
}

/* 1 when the object at uri reads back as data. */
static int reads_back(struct tf_lake *lake, const char *uri, const void *data, size_t len)
{
    struct tf_buf got;
    char err[512], sha[65];
    int ok;

    tf_buf_init(&got, (size_t)1 << 30);
    tf_sha256_hex(data, len, sha);
    ok = tf_lake_get(lake, uri, sha, &got, err, sizeof(err)) == TF_OK && got.len == len &&
         memcmp(got.data, data, len) == 0;
    if (!ok)
        fprintf(stderr, "# %s: %s\n", uri, err);
    tf_buf_cleanup(&got);
    return ok;
}

static int exists(struct tf_lake *lake, const char *uri)
{
    struct tf_buf got;
    char err[512];
    enum tf_rc rc;

    tf_buf_init(&got, (size_t)1 << 30);
    rc = tf_lake_get(lake, uri, NULL, &got, err, sizeof(err));
    tf_buf_cleanup(&got);
    return rc == TF_OK ? 1 : rc == TF_ERR_NOT_FOUND ? 0 : -1;
}

static void test_objects(struct tf_lake *lake, const char *bucket)
{
    struct tf_lake_obj obj, again;
    char err[512], want[1100], sha[65];
    const char *a = "{\"a\":1}", *b = "{\"a\":2}";

    CHECK(tf_lake_put(lake, "bronze/p/x.json", a, strlen(a), &obj, err, sizeof(err)) == TF_OK,
          "put: %s", err);
    snprintf(want, sizeof(want), "s3://%s/%s/bronze/p/x.json", bucket, prefix);
    CHECK_STR(obj.uri, want);
    CHECK_EQ_INT(obj.bytes, (long long)strlen(a));
    tf_sha256_hex(a, strlen(a), sha);
    CHECK_STR(obj.sha256, sha);
    CHECK(reads_back(lake, obj.uri, a, strlen(a)), "reads back");
    {
        struct tf_buf got;

        tf_buf_init(&got, 1 << 20);
        CHECK(tf_lake_get(lake, obj.uri,
                          "0000000000000000000000000000000000000000000000000000000000000000", &got,
                          err, sizeof(err)) == TF_ERR_CONFLICT,
              "a wrong sha256 is a conflict");
        CHECK(tf_lake_get(lake, "s3://elsewhere/x", NULL, &got, err, sizeof(err)) == TF_ERR_INVALID,
              "an object outside the lake is refused");
        tf_buf_cleanup(&got);
    }
    /* Write-once. */
    CHECK(tf_lake_put(lake, "bronze/p/x.json", a, strlen(a), &again, err, sizeof(err)) == TF_OK,
          "the same bytes again: %s", err);
    CHECK(tf_lake_put(lake, "bronze/p/x.json", b, strlen(b), &again, err, sizeof(err)) ==
              TF_ERR_CONFLICT,
          "other bytes: a conflict");
    CHECK(strstr(err, "exists with other content") != NULL, "says so: %s", err);
    CHECK(reads_back(lake, obj.uri, a, strlen(a)), "the object is as it was");
    /* Replace. */
    CHECK(tf_lake_replace(lake, "silver/d/date=2024-03-04/bars.parquet", a, strlen(a), &obj, err,
                          sizeof(err)) == TF_OK,
          "replace (new): %s", err);
    CHECK(tf_lake_replace(lake, "silver/d/date=2024-03-04/bars.parquet", b, strlen(b), &obj, err,
                          sizeof(err)) == TF_OK,
          "replace: %s", err);
    CHECK(strstr(obj.uri, "/silver/d/date=2024-03-04/bars.parquet") != NULL, "uri %s", obj.uri);
    CHECK(reads_back(lake, obj.uri, b, strlen(b)), "replaced");
    CHECK(tf_lake_put(lake, "../x", a, 1, &obj, err, sizeof(err)) == TF_ERR_INVALID, "bad key");
    CHECK(tf_lake_sync(lake, "bronze/p", err, sizeof(err)) == TF_OK, "sync is a no-op");
}

static void test_parts(struct tf_lake *lake)
{
    size_t n = (size_t)20 << 20;
    char *big = fill(n, 7), *other = fill(n, 8);
    struct tf_lake_obj obj;
    char err[512];

    CHECK(tf_lake_put(lake, "bronze/big/obj.bin", big, n, &obj, err, sizeof(err)) == TF_OK,
          "20 MiB in parts: %s", err);
    CHECK(reads_back(lake, obj.uri, big, n), "20 MiB read back whole");
    CHECK(tf_lake_put(lake, "bronze/big/obj.bin", big, n, &obj, err, sizeof(err)) == TF_OK,
          "the same 20 MiB again: %s", err);
    CHECK(tf_lake_put(lake, "bronze/big/obj.bin", other, n, &obj, err, sizeof(err)) ==
              TF_ERR_CONFLICT,
          "other 20 MiB: a conflict (%s)", err);
    CHECK(reads_back(lake, obj.uri, big, n), "the first 20 MiB stay");
    CHECK(tf_lake_replace(lake, "bronze/big/obj.bin", other, n, &obj, err, sizeof(err)) == TF_OK,
          "replace 20 MiB: %s", err);
    CHECK(reads_back(lake, obj.uri, other, n), "replaced in parts");
    free(big);
    free(other);
}

static void test_batch_and_clear(struct tf_lake *lake)
{
    struct tf_lake_obj objs[3];
    struct tf_lake_batch *b;
    char err[512], key[64];

    b = tf_lake_batch_new(lake);
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "bronze/gone/p%d.json", i);
        CHECK(tf_lake_batch_put(b, key, key, strlen(key), &objs[i], err, sizeof(err)) == TF_OK,
              "batch put: %s", err);
    }
    tf_lake_batch_free(b);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(exists(lake, objs[i].uri), 0);

    b = tf_lake_batch_new(lake);
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "bronze/kept/p%d.json", i);
        CHECK(tf_lake_batch_put(b, key, key, strlen(key), &objs[i], err, sizeof(err)) == TF_OK,
              "batch put: %s", err);
    }
    CHECK(tf_lake_batch_commit(b, err, sizeof(err)) == TF_OK, "commit: %s", err);
    tf_lake_batch_free(b);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(exists(lake, objs[i].uri), 1);

    /* clear: the folder's own objects, not a sub-folder's. */
    {
        struct tf_lake_obj deep;

        CHECK(tf_lake_put(lake, "bronze/kept/sub/deep.json", "d", 1, &deep, err, sizeof(err)) ==
                  TF_OK,
              "put deep: %s", err);
        CHECK(tf_lake_clear(lake, "bronze/kept", err, sizeof(err)) == TF_OK, "clear: %s", err);
        for (int i = 0; i < 3; i++)
            CHECK_EQ_INT(exists(lake, objs[i].uri), 0);
        CHECK_EQ_INT(exists(lake, deep.uri), 1);
        CHECK(tf_lake_clear(lake, "bronze/none", err, sizeof(err)) == TF_OK,
              "clearing an empty folder: %s", err);
    }
}

static void test_refusals(const char *bucket)
{
    struct tf_lake_s3_cfg c = cfg_from_env();
    struct tf_lake *lake = NULL;
    char uri[256], err[1024];
    const char *key_id = c.access_key_id;

    snprintf(uri, sizeof(uri), "s3://%s/%s", bucket, prefix);
    c.secret_access_key = "not-the-secret-0123456789";
    CHECK(tf_lake_open(uri, &c, &lake, err, sizeof(err)) == TF_ERR_IO, "a wrong secret: %s", err);
    CHECK(strstr(err, bucket) && strstr(err, "refused the lake's access key"),
          "the error names the bucket and the cause: %s", err);
    CHECK(!strstr(err, key_id) && !strstr(err, "not-the-secret"), "and no credential: %s", err);

    c = cfg_from_env();
    CHECK(tf_lake_open("s3://no-such-bucket-tf/x", &c, &lake, err, sizeof(err)) == TF_ERR_IO,
          "an unknown bucket: %s", err);
    CHECK(strstr(err, "no-such-bucket-tf") && strstr(err, "no such bucket"), "says so: %s", err);

    c = cfg_from_env();
    c.access_key_id = NULL;
    CHECK(tf_lake_open(uri, &c, &lake, err, sizeof(err)) == TF_ERR_INVALID, "no key: %s", err);
    CHECK(strstr(err, "TICKFLOW_LAKE_S3_ACCESS_KEY_ID") != NULL, "names the setting: %s", err);

    c = cfg_from_env();
    c.access_key_id = getenv("TICKFLOW_TEST_S3_READONLY_ACCESS_KEY_ID");
    c.secret_access_key = getenv("TICKFLOW_TEST_S3_READONLY_SECRET_ACCESS_KEY");
    if (c.access_key_id && c.secret_access_key &&
        tf_lake_open(uri, &c, &lake, err, sizeof(err)) == TF_OK) {
        struct tf_lake_obj obj;

        CHECK(tf_lake_put(lake, "bronze/ro/x.json", "x", 1, &obj, err, sizeof(err)) == TF_ERR_IO,
              "a read-only key cannot put");
        CHECK(strstr(err, "may not do this") && strstr(err, bucket) &&
                  !strstr(err, c.access_key_id),
              "says so: %s", err);
        tf_lake_free(lake);
    } else {
        CHECK(0, "the read-only key opens the lake: %s", err);
    }
}

/* The lake at uri, reached through the proxy. */
static struct tf_lake *lake_via(const struct h_s3_proxy *p, const char *uri, int attempts)
{
    struct tf_lake_s3_cfg c = cfg_from_env();
    struct tf_lake *lake = NULL;
    char endpoint[64], err[1024];

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", p->port);
    c.endpoint = endpoint;
    c.max_attempts = attempts;
    c.abandoned_after_s = -1; /* the proxy sees only the test's own requests */
    CHECK(tf_lake_open(uri, &c, &lake, err, sizeof(err)) == TF_OK, "open through the proxy: %s",
          err);
    return lake;
}

static void test_faults(const char *uri, const char *bucket)
{
    struct tf_lake_obj obj;
    struct tf_lake *lake;
    struct h_s3_proxy p;
    char err[1024];
    const char *a = "{\"fault\":1}";

    /* Throttled three times: three retries, one object. */
    CHECK_EQ_INT(h_s3_proxy_start(&p, "--slowdown 3"), 0);
    lake = lake_via(&p, uri, 8);
    /* (the open's listing took one of the three) */
    CHECK(lake && tf_lake_put(lake, "bronze/f/slow.json", a, strlen(a), &obj, err, sizeof(err)) ==
                      TF_OK,
          "put through 503 SlowDown: %s", err);
    CHECK_EQ_INT(h_s3_proxy_stat(&p, "slowdown"), 3);
    CHECK(lake && reads_back(lake, obj.uri, a, strlen(a)), "the object is whole");
    tf_lake_free(lake);
    h_s3_proxy_stop(&p);

    /* Connections reset before the store saw the PUT, then after it took one. */
    CHECK_EQ_INT(h_s3_proxy_start(&p, "--reset-before 2 --reset-after 1"), 0);
    lake = lake_via(&p, uri, 8);
    CHECK(lake && tf_lake_put(lake, "bronze/f/reset.json", a, strlen(a), &obj, err, sizeof(err)) ==
                      TF_OK,
          "put through resets: %s", err);
    CHECK_EQ_INT(h_s3_proxy_stat(&p, "reset_before"), 2);
    CHECK_EQ_INT(h_s3_proxy_stat(&p, "reset_after"), 1);
    CHECK(lake && reads_back(lake, obj.uri, a, strlen(a)), "the object is whole");
    tf_lake_free(lake);
    h_s3_proxy_stop(&p);

    /* A store that keeps throttling: the lake does not open, saying why. */
    CHECK_EQ_INT(h_s3_proxy_start(&p, "--slowdown 1000"), 0);
    {
        char endpoint[64];
        struct tf_lake_s3_cfg c = cfg_from_env();

        snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", p.port);
        c.endpoint = endpoint;
        c.max_attempts = 3;
        lake = NULL;
        CHECK(tf_lake_open(uri, &c, &lake, err, sizeof(err)) == TF_ERR_IO,
              "a store that keeps throttling: %s", err);
        CHECK(strstr(err, "HTTP 503 SlowDown") && strstr(err, bucket), "says so: %s", err);
        CHECK_EQ_INT(h_s3_proxy_stat(&p, "slowdown"), 3);
    }
    tf_lake_free(lake);
    h_s3_proxy_stop(&p);
}

struct upload {
    struct tf_lake *lake;
    const char *data;
    size_t len;
    enum tf_rc rc;
    struct tf_lake_obj obj;
    char err[1024];
};

static void *upload_main(void *arg)
{
    struct upload *u = arg;

    u->rc = tf_lake_put(u->lake, "bronze/restart/big.bin", u->data, u->len, &u->obj, u->err,
                        sizeof(u->err));
    return NULL;
}

static void test_restart(const char *uri)
{
    size_t n = (size_t)25 << 20;
    char *big = fill(n, 11);
    struct upload u = {0};
    struct h_s3_proxy p = {0, 0};
    pthread_t t;
    int restarted;

    CHECK_EQ_INT(h_s3_proxy_start(&p, "--put-delay-ms 1500"), 0);
    u.lake = lake_via(&p, uri, 12);
    u.data = big;
    u.len = n;
    if (!u.lake) {
        h_s3_proxy_stop(&p);
        free(big);
        return;
    }
    pthread_create(&t, NULL, upload_main, &u);
    /* The upload has begun: the proxy holds its first part (the 3rd request). */
    for (int i = 0; i < h_timeout(30) * 20 && h_s3_proxy_stat(&p, "requests") < 3; i++)
        h_sleep_ms(50);
    CHECK(h_s3_proxy_stat(&p, "requests") >= 3, "the upload reached its first part");
    restarted = system("bash tests/env/seaweedfs.sh down >/dev/null 2>&1 &&"
                       " bash tests/env/seaweedfs.sh up >/dev/null 2>&1");
    CHECK(restarted == 0, "the server stopped and started again");
    pthread_join(t, NULL);
    CHECK(u.rc == TF_OK, "the upload completed after the restart: %s", u.err);
    CHECK(reads_back(u.lake, u.obj.uri, big, n), "25 MiB whole after the restart");
    /* Listing, start, 4 parts and completion are 7 requests: more means retries. */
    CHECK(h_s3_proxy_stat(&p, "requests") > 7, "the restart cost retries: %ld requests",
          h_s3_proxy_stat(&p, "requests"));
    tf_lake_free(u.lake);
    h_s3_proxy_stop(&p);
    free(big);
}

/* The unfinished uploads under the test's prefix (-1 when they cannot be listed). */
static int uploads_left(const char *uri)
{
    static struct h_stack st; /* only its lake_uri is read */

    snprintf(st.lake_uri, sizeof(st.lake_uri), "%s", uri);
    return h_lake_uploads(&st);
}

/* Opens the lake at uri with abandoned_after_s age, and closes it. */
static void open_with_age(const char *uri, long age)
{
    struct tf_lake_s3_cfg c = cfg_from_env();
    struct tf_lake *lake = NULL;
    char err[1024];

    c.abandoned_after_s = age;
    CHECK(tf_lake_open(uri, &c, &lake, err, sizeof(err)) == TF_OK, "open (age %ld): %s", age, err);
    tf_lake_free(lake);
}

static void test_abandoned(const char *uri)
{
    size_t n = (size_t)20 << 20;
    struct h_s3_proxy p = {0, 0};
    char key_uri[512];
    struct tf_lake *lake;
    double killed;
    pid_t child;

    if (uploads_left(uri) != 0) {
        CHECK(0, "no upload is left under %s before the test", uri);
        return;
    }
    /* A writer killed while the proxy holds its second part. */
    CHECK_EQ_INT(h_s3_proxy_start(&p, "--stall-put partNumber=2"), 0);
    child = fork();
    if (child == 0) {
        char *big = fill(n, 5);
        struct tf_lake *l = lake_via(&p, uri, 1);
        struct tf_lake_obj obj;
        char err[512];

        _exit(l && big &&
                      tf_lake_put(l, "bronze/abandoned/big.bin", big, n, &obj, err, sizeof(err)) ==
                          TF_OK
                  ? 0
                  : 1);
    }
    for (int i = 0; i < h_timeout(30) * 20 && h_s3_proxy_stat(&p, "stalled") < 1; i++)
        h_sleep_ms(50);
    CHECK_EQ_INT(h_s3_proxy_stat(&p, "stalled"), 1);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    killed = h_now_s();
    h_s3_proxy_stop(&p);

    snprintf(key_uri, sizeof(key_uri), "%s/bronze/abandoned/big.bin", uri);
    {
        struct tf_lake_s3_cfg c = cfg_from_env();
        char err[512];

        c.abandoned_after_s = -1;
        CHECK(tf_lake_open(uri, &c, &lake, err, sizeof(err)) == TF_OK, "open: %s", err);
        CHECK(exists(lake, key_uri) == 0, "no object under the killed upload's name");
        tf_lake_free(lake);
    }
    CHECK_EQ_INT(uploads_left(uri), 1);
    open_with_age(uri, -1);
    CHECK_EQ_INT(uploads_left(uri), 1);
    open_with_age(uri, 3600);
    CHECK_EQ_INT(uploads_left(uri), 1);
    /* Once the upload is 2 s old (S3 gives its start to the second), age 1 takes it. */
    while (h_now_s() - killed < 2.0)
        h_sleep_ms(100);
    open_with_age(uri, 1);
    CHECK_EQ_INT(uploads_left(uri), 0);
}

int main(void)
{
    const char *bucket = getenv("TICKFLOW_LAKE_S3_BUCKET");
    struct tf_lake_s3_cfg c = cfg_from_env();
    struct tf_lake *lake = NULL;
    char uri[256], err[1024];

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!bucket || !c.endpoint || !c.access_key_id) {
        CHECK(0, "TICKFLOW_LAKE_S3_* must be set (tests/env/seaweedfs.sh up; . .run/s3.env)");
        return check_summary();
    }
    snprintf(prefix, sizeof(prefix), "int-lake-%ld", (long)getpid());
    snprintf(uri, sizeof(uri), "s3://%s/%s", bucket, prefix);
    if (tf_lake_open(uri, &c, &lake, err, sizeof(err)) != TF_OK) {
        CHECK(0, "open %s: %s", uri, err);
        return check_summary();
    }
    test_objects(lake, bucket);
    test_parts(lake);
    test_batch_and_clear(lake);
    test_refusals(bucket);
    tf_lake_free(lake);
    test_faults(uri, bucket);
    test_abandoned(uri);
    if (!getenv("TF_TEST_S3_NO_RESTART"))
        test_restart(uri);
    return check_summary();
}
