/*
 * test_int_secure.c - secured connections to the real broker and database
 * (tests/env/kafka.sh's SASL_SSL and SSL listeners, tests/env/pg.sh's TLS,
 * certificates and passwords made at test time by tests/env/certs.sh):
 *
 *   - settings: a bad protocol, mechanism, file or pass-through property is
 *     an error naming its key, never quoting a secret; _FILE secrets work;
 *   - the library: an event produced over SASL_SSL with SCRAM-SHA-256,
 *     SCRAM-SHA-512 and PLAIN, and over SSL with a client certificate
 *     (encrypted key), all read back;
 *   - the services: a whole execution (extract -> transform -> aggregate)
 *     with every service on SASL_SSL SCRAM-SHA-256 (password from a _FILE)
 *     and on PostgreSQL with sslmode=verify-full (pg_stat_ssl says ssl);
 *   - refusals at start-up: a wrong Kafka password, an untrusted broker
 *     certificate, a missing client certificate, a wrong PostgreSQL root
 *     certificate, host name or password each stop the service with exit 1
 *     and one clear error within a deadline; /readyz never answers 200;
 *   - no log of any of these holds a password.
 */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/kafka.h"

#define WINDOW "\"window_start\":\"2024-03-04T14:30:00Z\",\"window_end\":\"2024-03-04T21:00:00Z\""

static char certs[512];
static char dir[600];
static const char *sasl_brokers, *ssl_brokers;
static const char *scram_user, *scram_pw, *plain_user, *plain_pw, *key_pw, *pg_user, *pg_pw;

static const char *need(const char *name)
{
    const char *v = getenv(name);

    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run tests/env/up.sh and . .run/env.sh\n", name);
        return NULL;
    }
    return v;
}

/* The test PostgreSQL's port, from TICKFLOW_PG_DSN (tests/env/pg.sh's TF_PG_PORT). */
static const char *pg_port(void)
{
    static char port[16] = "5432";
    PQconninfoOption *opts = PQconninfoParse(getenv("TICKFLOW_PG_DSN"), NULL);

    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "port") == 0 && o->val && *o->val)
            snprintf(port, sizeof(port), "%s", o->val);
    PQconninfoFree(opts);
    return port;
}

static void cert(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s/%s", certs, name);
}

/* ---- settings ---- */

static void test_settings(void)
{
    struct tf_kafka_opts opts;
    char err[1024], pwfile[700];
    FILE *fp;
    enum tf_rc rc;

    {
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_TLS", NULL};
        rc = tf_kafka_opts_load(&opts, envp, err, sizeof(err));
        CHECK(rc == TF_ERR_INVALID && strstr(err, "TICKFLOW_KAFKA_SECURITY_PROTOCOL"),
              "bad protocol named: %s", err);
        tf_kafka_opts_cleanup(&opts);
    }
    {
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                        "TICKFLOW_KAFKA_SASL_MECHANISM=SCRAM-SHA-1",
                        "TICKFLOW_KAFKA_SASL_USERNAME=u", "TICKFLOW_KAFKA_SASL_PASSWORD=Pw-0ab1c2",
                        NULL};
        rc = tf_kafka_opts_load(&opts, envp, err, sizeof(err));
        CHECK(rc == TF_ERR_INVALID && strstr(err, "TICKFLOW_KAFKA_SASL_MECHANISM") &&
                  !strstr(err, "Pw-0ab1c2"),
              "bad mechanism named, password not quoted: %s", err);
        tf_kafka_opts_cleanup(&opts);
    }
    {
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                        "TICKFLOW_KAFKA_SASL_MECHANISM=PLAIN", "TICKFLOW_KAFKA_SASL_USERNAME=u",
                        NULL};
        rc = tf_kafka_opts_load(&opts, envp, err, sizeof(err));
        CHECK(rc == TF_ERR_INVALID && strstr(err, "TICKFLOW_KAFKA_SASL_PASSWORD"),
              "a missing password is named: %s", err);
        tf_kafka_opts_cleanup(&opts);
    }
    {
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SSL",
                        "TICKFLOW_KAFKA_SSL_CA_FILE=/nonexistent/ca.pem", NULL};
        rc = tf_kafka_opts_load(&opts, envp, err, sizeof(err));
        CHECK(rc == TF_ERR_INVALID && strstr(err, "TICKFLOW_KAFKA_SSL_CA_FILE") &&
                  strstr(err, "/nonexistent/ca.pem"),
              "an unreadable CA file is named: %s", err);
        tf_kafka_opts_cleanup(&opts);
    }
    {
        char *envp[] = {"TICKFLOW_KAFKA_PROP_NO_SUCH_THING=1",
                        "TICKFLOW_KAFKA_PROP_ENABLE_IDEMPOTENCE=false", NULL};
        rc = tf_kafka_opts_load(&opts, envp, err, sizeof(err));
        CHECK(rc == TF_ERR_INVALID && strstr(err, "TICKFLOW_KAFKA_PROP_ENABLE_IDEMPOTENCE"),
              "a property tickflow sets is refused: %s", err);
        tf_kafka_opts_cleanup(&opts);
    }
    {
        char *envp[] = {"TICKFLOW_KAFKA_PROP_NO_SUCH_THING=1", NULL};
        rc = tf_kafka_opts_load(&opts, envp, err, sizeof(err));
        CHECK(rc == TF_ERR_INVALID && strstr(err, "TICKFLOW_KAFKA_PROP_NO_SUCH_THING") &&
                  strstr(err, "no.such.thing"),
              "an unknown property is named: %s", err);
        tf_kafka_opts_cleanup(&opts);
    }
    {
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                        "TICKFLOW_KAFKA_SASL_MECHANISM=PLAIN",
                        "TICKFLOW_KAFKA_SASL_USERNAME=u",
                        "TICKFLOW_KAFKA_SASL_PASSWORD=x",
                        "TICKFLOW_KAFKA_PROP_SSL_KEYSTORE_PASSWORD=Sec-9f8e7d",
                        "TICKFLOW_KAFKA_PROP_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM=bogus",
                        NULL};
        rc = tf_kafka_opts_load(&opts, envp, err, sizeof(err));
        CHECK(rc == TF_ERR_INVALID &&
                  strstr(err, "TICKFLOW_KAFKA_PROP_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM") &&
                  !strstr(err, "Sec-9f8e7d"),
              "a bad property value is named: %s", err);
        tf_kafka_opts_cleanup(&opts);
    }
    /* A secret from its _FILE; the pass-through property reaches librdkafka. */
    snprintf(pwfile, sizeof(pwfile), "%s/kafka-password", dir);
    fp = fopen(pwfile, "w");
    if (fp) {
        fprintf(fp, "from-a-file\n");
        fclose(fp);
    }
    {
        char fileenv[800];
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
                        "TICKFLOW_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
                        "TICKFLOW_KAFKA_SASL_USERNAME=u",
                        fileenv,
                        "TICKFLOW_KAFKA_PROP_SOCKET_KEEPALIVE_ENABLE=true",
                        NULL};
        snprintf(fileenv, sizeof(fileenv), "TICKFLOW_KAFKA_SASL_PASSWORD_FILE=%s", pwfile);
        rc = tf_kafka_opts_load(&opts, envp, err, sizeof(err));
        CHECK(rc == TF_OK, "good settings load: %s", err);
        CHECK(opts.sasl_password && strcmp(opts.sasl_password, "from-a-file") == 0,
              "the password comes from its _FILE");
        CHECK(opts.nprops == 1 && strcmp(opts.props[0].name, "socket.keepalive.enable") == 0,
              "TICKFLOW_KAFKA_PROP_SOCKET_KEEPALIVE_ENABLE is socket.keepalive.enable");
        tf_kafka_opts_cleanup(&opts);
    }
}

/* ---- the library, each mechanism ---- */

/* Loads opts from a NULL-terminated "NAME=value" list; 0 on success. */
static int opts_from(struct tf_kafka_opts *opts, char **envp)
{
    char err[1024];

    if (tf_kafka_opts_load(opts, envp, err, sizeof(err)) != TF_OK) {
        CHECK(0, "settings: %s", err);
        tf_kafka_opts_cleanup(opts);
        return -1;
    }
    return 0;
}

/* Produces one event to topic over brokers with opts; 0 when the broker acknowledged it. */
static int produce_with(const char *what, const char *brokers, const struct tf_kafka_opts *opts,
                        const char *topic)
{
    struct tf_kafka *kafka = NULL;
    char err[512] = "";
    const char *names[1] = {topic};
    enum tf_rc rc;

    rc = tf_kafka_producer_new(brokers, opts, "secure-test", 10000, &kafka, err, sizeof(err));
    if (rc == TF_OK)
        rc = tf_kafka_ensure_topics(kafka, names, 1, 1, 1, err, sizeof(err));
    if (rc == TF_OK)
        rc = tf_kafka_produce(kafka, topic, "k", what, strlen(what), NULL, NULL, 15000, err,
                              sizeof(err));
    CHECK(rc == TF_OK, "%s: event produced (%s)", what, err);
    tf_kafka_producer_free(kafka);
    return rc == TF_OK ? 0 : -1;
}

static void test_mechanisms(void)
{
    char topic[128], group[128], ca[600], ccert[600], ckey[600];
    char e_ca[700], e_user[200], e_pw[200], e_plain_user[200], e_plain_pw[200];
    char e_cert[700], e_key[700], e_keypw[200];
    struct tf_kafka_opts opts;
    struct tf_kafka_consumer *cons = NULL;
    const char *want[4] = {"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN", "mTLS"};
    int seen[4] = {0, 0, 0, 0}, got = 0;
    char err[512] = "";
    double t0;

    snprintf(topic, sizeof(topic), "secure%ld.mechanisms", (long)getpid());
    snprintf(group, sizeof(group), "secure%ld.group", (long)getpid());
    cert(ca, sizeof(ca), "ca.pem");
    cert(ccert, sizeof(ccert), "client.pem");
    cert(ckey, sizeof(ckey), "client-enc.key");
    snprintf(e_ca, sizeof(e_ca), "TICKFLOW_KAFKA_SSL_CA_FILE=%s", ca);
    snprintf(e_user, sizeof(e_user), "TICKFLOW_KAFKA_SASL_USERNAME=%s", scram_user);
    snprintf(e_pw, sizeof(e_pw), "TICKFLOW_KAFKA_SASL_PASSWORD=%s", scram_pw);
    snprintf(e_plain_user, sizeof(e_plain_user), "TICKFLOW_KAFKA_SASL_USERNAME=%s", plain_user);
    snprintf(e_plain_pw, sizeof(e_plain_pw), "TICKFLOW_KAFKA_SASL_PASSWORD=%s", plain_pw);
    snprintf(e_cert, sizeof(e_cert), "TICKFLOW_KAFKA_SSL_CERT_FILE=%s", ccert);
    snprintf(e_key, sizeof(e_key), "TICKFLOW_KAFKA_SSL_KEY_FILE=%s", ckey);
    snprintf(e_keypw, sizeof(e_keypw), "TICKFLOW_KAFKA_SSL_KEY_PASSWORD=%s", key_pw);

    for (int m = 0; m < 2; m++) {
        char mech[64];
        char *envp[] = {
            "TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL", mech, e_user, e_pw, e_ca, NULL};

        snprintf(mech, sizeof(mech), "TICKFLOW_KAFKA_SASL_MECHANISM=%s", want[m]);
        if (opts_from(&opts, envp) == 0) {
            produce_with(want[m], sasl_brokers, &opts, topic);
            tf_kafka_opts_cleanup(&opts);
        }
    }
    {
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                        "TICKFLOW_KAFKA_SASL_MECHANISM=PLAIN",
                        e_plain_user,
                        e_plain_pw,
                        e_ca,
                        NULL};
        if (opts_from(&opts, envp) == 0) {
            produce_with("PLAIN", sasl_brokers, &opts, topic);
            tf_kafka_opts_cleanup(&opts);
        }
    }
    {
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SSL", e_ca, e_cert, e_key, e_keypw, NULL};
        if (opts_from(&opts, envp) == 0) {
            produce_with("mTLS", ssl_brokers, &opts, topic);
            tf_kafka_opts_cleanup(&opts);
        }
    }
    /* Read back over SASL_SSL with SCRAM-SHA-512: every one arrived. */
    {
        char *envp[] = {"TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                        "TICKFLOW_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
                        e_user,
                        e_pw,
                        e_ca,
                        NULL};
        if (opts_from(&opts, envp) != 0)
            return;
        CHECK(tf_kafka_consumer_new(sasl_brokers, &opts, group, topic, &cons, err, sizeof(err)) ==
                  TF_OK,
              "consumer over SASL_SSL: %s", err);
        tf_kafka_opts_cleanup(&opts);
    }
    t0 = h_now_s();
    while (cons && got < 4 && h_now_s() - t0 < h_timeout(30)) {
        rd_kafka_message_t *msg = tf_kafka_consumer_poll(cons, 250);

        if (!msg)
            continue;
        for (int i = 0; i < 4; i++)
            if (msg->len == strlen(want[i]) && memcmp(msg->payload, want[i], msg->len) == 0 &&
                !seen[i]) {
                seen[i] = 1;
                got++;
            }
        rd_kafka_message_destroy(msg);
    }
    tf_kafka_consumer_free(cons);
    for (int i = 0; i < 4; i++)
        CHECK(seen[i], "the event sent with %s was read back", want[i]);
    snprintf(topic, sizeof(topic), "secure%ld.", (long)getpid());
    CHECK_EQ_INT(h_topics_drop(topic), 1);
}

/* ---- the services ---- */

/* The services' logs under dir hold none of the secrets. */
static void check_no_secret(const char *log, const char *what)
{
    const char *secrets[] = {scram_pw, plain_pw, key_pw, pg_pw, "Wrong-Pw-5d1c"};

    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        CHECK(!h_file_contains(log, secrets[i]), "%s: no password in %s", what, log);
}

static void test_pipeline(void)
{
    static struct h_stack st;
    static char e_dsn[1200], e_brokers[300], e_user[200], e_pwfile[800], e_ca[700];
    char pwfile[700], ca[600], dbname[64], body[300], id[TF_UUID_LEN + 1];
    const char *env[] = {e_dsn,
                         e_brokers,
                         "TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                         "TICKFLOW_KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
                         e_user,
                         e_pwfile,
                         e_ca,
                         NULL};
    const char *names[] = {"extract", "transform", "aggregate"};
    cJSON *ans, *rec;
    long status = 0;
    FILE *fp;
    int started;

    cert(ca, sizeof(ca), "ca.pem");
    snprintf(pwfile, sizeof(pwfile), "%s/scram-password", dir);
    fp = fopen(pwfile, "w");
    if (fp) {
        fprintf(fp, "%s\n", scram_pw);
        fclose(fp);
    }
    /* h_stack_start names the database tickflow_<tag>_<pid>; the services reach it as
     * tickflow_tls over TLS, checking the server's certificate and name. */
    snprintf(dbname, sizeof(dbname), "tickflow_secure_%ld", (long)getpid());
    snprintf(e_dsn, sizeof(e_dsn),
             "TICKFLOW_PG_DSN=postgresql://%s:%s@localhost:%s/%s?sslmode=verify-full"
             "&sslrootcert=%s",
             pg_user, pg_pw, pg_port(), dbname, ca);
    snprintf(e_brokers, sizeof(e_brokers), "TICKFLOW_KAFKA_BROKERS=%s", sasl_brokers);
    snprintf(e_user, sizeof(e_user), "TICKFLOW_KAFKA_SASL_USERNAME=%s", scram_user);
    snprintf(e_pwfile, sizeof(e_pwfile), "TICKFLOW_KAFKA_SASL_PASSWORD_FILE=%s", pwfile);
    snprintf(e_ca, sizeof(e_ca), "TICKFLOW_KAFKA_SSL_CA_FILE=%s", ca);

    started = h_stack_start(&st, "secure", "secure-Key-1", 7, env) == 0;
    CHECK(started, "the stack starts on SASL_SSL SCRAM-SHA-256 and PostgreSQL verify-full (%s)",
          st.dir);
    if (started) {
        for (int i = H_EXTRACT; i <= H_AGGREGATE; i++) {
            ans = h_call("GET", st.procs[i].port, "/readyz", NULL, NULL, &status);
            CHECK(status == 200, "%s /readyz: %ld", names[i - H_EXTRACT], status);
            cJSON_Delete(ans);
        }
        tf_uuid_new(id);
        snprintf(body, sizeof(body),
                 "{\"execution_id\":\"%s\",\"job_name\":\"demo_us_equities\"," WINDOW "}", id);
        ans = h_call("POST", st.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &status);
        CHECK(status == 202 || status == 200, "POST extract: %ld", status);
        cJSON_Delete(ans);
        /* aggregate runs only on transform's event, transform only on extract's. */
        rec = h_wait_stage(&st, st.procs[H_AGGREGATE].port, id, 60);
        CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0,
              "the execution went through both topics to aggregate: %s",
              rec ? h_jstr(rec, "status") : "(none)");
        cJSON_Delete(rec);
        {
            const char *params[1] = {pg_user};
            long long tls = h_pg_ll(st.db,
                                    "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a"
                                    " USING (pid) WHERE a.usename = $1 AND s.ssl",
                                    1, params);
            long long plain = h_pg_ll(st.db,
                                      "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a"
                                      " USING (pid) WHERE a.usename = $1 AND NOT s.ssl",
                                      1, params);
            CHECK(tls > 0 && plain == 0,
                  "pg_stat_ssl: the services' sessions use TLS (%lld with, %lld without)", tls,
                  plain);
        }
    }
    CHECK_EQ_INT(h_stack_stop(&st), 0);
    for (int i = H_EXTRACT; i <= H_AGGREGATE; i++)
        check_no_secret(st.procs[i].log, names[i - H_EXTRACT]);
}

/* ---- refusals at start-up ---- */

/*
 * Starts transform with env on top of base (database, lake), and expects it
 * to exit 1 within a deadline with needle in its log, /readyz never 200.
 */
static void expect_refusal(const char *what, const char *base_dsn, const char *const *env,
                           const char *needle)
{
    char log[800], lake[800], e_dsn[1200], e_lake[900], e_port[64];
    int port = h_free_port(), status = 0, exited = 0, ready = 0;
    pid_t pid;
    double t0 = h_now_s(), took;

    snprintf(log, sizeof(log), "%s/refusal-%s.log", dir, what);
    snprintf(lake, sizeof(lake), "%s/lake", dir);
    snprintf(e_dsn, sizeof(e_dsn), "TICKFLOW_PG_DSN=%s", base_dsn);
    snprintf(e_lake, sizeof(e_lake), "TICKFLOW_LAKE_URI=%s", lake);
    snprintf(e_port, sizeof(e_port), "TICKFLOW_HTTP_PORT=%d", port);
    pid = fork();
    if (pid == 0) {
        char bin[700];
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        putenv(e_dsn);
        putenv(e_lake);
        putenv(e_port);
        putenv("TICKFLOW_HTTP_ADDR=127.0.0.1");
        putenv("TICKFLOW_KAFKA_TOPIC_PREFIX=secure-refusal.");
        for (int i = 0; env[i]; i++)
            putenv((char *)env[i]);
        snprintf(bin, sizeof(bin), "%s/tickflow-transform",
                 getenv("TF_BIN_DIR") ? getenv("TF_BIN_DIR") : "build/bin");
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0, "%s: fork", what);
    if (pid <= 0)
        return;
    while (!exited && h_now_s() - t0 < h_timeout(25)) {
        struct h_resp r;

        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            break;
        }
        if (h_http("GET", port, "/readyz", NULL, NULL, &r) == 0 && r.status == 200)
            ready = 1;
        h_resp_free(&r);
        h_sleep_ms(100);
    }
    took = h_now_s() - t0;
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    CHECK(exited && WIFEXITED(status) && WEXITSTATUS(status) == 1,
          "%s: the service stops with exit 1 (exited %d, status %d, after %.1f s)", what, exited,
          WIFEXITED(status) ? WEXITSTATUS(status) : -1, took);
    CHECK(!ready, "%s: /readyz never answered 200", what);
    CHECK(h_file_contains(log, needle), "%s: the log says \"%s\" (%s)", what, needle, log);
    CHECK(h_file_contains(log, "start-up failed"), "%s: the log says start-up failed", what);
    check_no_secret(log, what);
}

static void test_refusals(void)
{
    const char *base = getenv("TICKFLOW_PG_DSN");
    char dbname[64], dsn[1024], ca[600], other[600];
    static char e_brokers[300], e_ssl_brokers[300], e_user[200], e_ca[700], e_other[700];
    static char e_pw[200], bad_dsn[3][1200];
    const char *port = pg_port();

    snprintf(dbname, sizeof(dbname), "tickflow_secref_%ld", (long)getpid());
    if (h_pg_create_db(base, dbname, dsn, sizeof(dsn)) != 0) {
        CHECK(0, "create database %s", dbname);
        return;
    }
    cert(ca, sizeof(ca), "ca.pem");
    cert(other, sizeof(other), "other-ca.pem");
    snprintf(e_brokers, sizeof(e_brokers), "TICKFLOW_KAFKA_BROKERS=%s", sasl_brokers);
    snprintf(e_ssl_brokers, sizeof(e_ssl_brokers), "TICKFLOW_KAFKA_BROKERS=%s", ssl_brokers);
    snprintf(e_user, sizeof(e_user), "TICKFLOW_KAFKA_SASL_USERNAME=%s", scram_user);
    snprintf(e_pw, sizeof(e_pw), "TICKFLOW_KAFKA_SASL_PASSWORD=%s", scram_pw);
    snprintf(e_ca, sizeof(e_ca), "TICKFLOW_KAFKA_SSL_CA_FILE=%s", ca);
    snprintf(e_other, sizeof(e_other), "TICKFLOW_KAFKA_SSL_CA_FILE=%s", other);
    {
        const char *env[] = {e_brokers,
                             "TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                             "TICKFLOW_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
                             e_user,
                             "TICKFLOW_KAFKA_SASL_PASSWORD=Wrong-Pw-5d1c",
                             e_ca,
                             NULL};
        expect_refusal("kafka-wrong-password", dsn, env,
                       "authentication failed (SASL SCRAM-SHA-512 as user");
    }
    {
        const char *env[] = {e_brokers,
                             "TICKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                             "TICKFLOW_KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
                             e_user,
                             e_pw,
                             e_other,
                             NULL};
        expect_refusal("kafka-untrusted-ca", dsn, env, "certificate verify failed");
    }
    {
        const char *env[] = {e_ssl_brokers, "TICKFLOW_KAFKA_SECURITY_PROTOCOL=SSL", e_ca, NULL};
        expect_refusal("kafka-no-client-cert", dsn, env, "SSL handshake failed");
    }
    /* PostgreSQL: the right password, a wrong root; a wrong name; a wrong password. */
    snprintf(bad_dsn[0], sizeof(bad_dsn[0]),
             "postgresql://%s:%s@localhost:%s/%s?sslmode=verify-full&sslrootcert=%s", pg_user,
             pg_pw, port, dbname, other);
    snprintf(bad_dsn[1], sizeof(bad_dsn[1]),
             "host=tickflow-wrong.invalid hostaddr=127.0.0.1 port=%s dbname=%s user=%s "
             "password=%s sslmode=verify-full sslrootcert=%s",
             port, dbname, pg_user, pg_pw, ca);
    snprintf(bad_dsn[2], sizeof(bad_dsn[2]),
             "postgresql://%s:Wrong-Pw-5d1c@localhost:%s/%s?sslmode=verify-full&sslrootcert=%s",
             pg_user, port, dbname, ca);
    {
        const char *env[] = {NULL};
        expect_refusal("pg-wrong-root", bad_dsn[0], env, "certificate verify failed");
        expect_refusal("pg-wrong-host", bad_dsn[1], env, "does not match host name");
        expect_refusal("pg-wrong-password", bad_dsn[2], env, "password authentication failed");
    }
    h_pg_drop_db(base, dbname);
}

int main(void)
{
    const char *top = getenv("TF_TEST_DIR") ? getenv("TF_TEST_DIR") : ".run/test";
    const char *c;

    if (!(c = need("TF_TEST_CERTS")) || !(sasl_brokers = need("TF_TEST_KAFKA_SASL_SSL_BROKERS")) ||
        !(ssl_brokers = need("TF_TEST_KAFKA_SSL_BROKERS")) ||
        !(scram_user = need("TF_TEST_KAFKA_SCRAM_USER")) ||
        !(scram_pw = need("TF_TEST_KAFKA_SCRAM_PASSWORD")) ||
        !(plain_user = need("TF_TEST_KAFKA_PLAIN_USER")) ||
        !(plain_pw = need("TF_TEST_KAFKA_PLAIN_PASSWORD")) ||
        !(key_pw = need("TF_TEST_CLIENT_KEY_PASSWORD")) ||
        !(pg_user = need("TF_TEST_PG_SSL_USER")) || !(pg_pw = need("TF_TEST_PG_SSL_PASSWORD")) ||
        !need("TICKFLOW_PG_DSN") || !need("TICKFLOW_KAFKA_BROKERS")) {
        CHECK(0, "the secured test environment is set (tests/env/up.sh)");
        return check_summary();
    }
    snprintf(certs, sizeof(certs), "%s", c);
    snprintf(dir, sizeof(dir), "%s/secure-%ld", top, (long)getpid());
    mkdir(top, 0755);
    mkdir(dir, 0755);

    test_settings();
    test_mechanisms();
    test_refusals();
    test_pipeline();
    return check_summary();
}
