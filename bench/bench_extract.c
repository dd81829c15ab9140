/*
 * bench_extract.c - extract's throughput against its limit, in one run.
 *
 * 500 tickers x one trading day of 1-minute bars from marketsim. The limit
 * is curl downloading the same 500 pages (the same URLs, gzip-encoded as
 * the providers send them, decoded by curl) at the same concurrency;
 * extract does that plus a validating scan, sha256, an fsync'd write-once
 * lake object per page, its records and its audit. BENCH_TRANSFER=identity
 * measures uncompressed transfer instead (extract then compresses with
 * zstd itself). Three rounds, the two sides alternating; the medians are
 * reported, ending with
 *   bench extract: bars_per_s=<n> limit_bars_per_s=<n> ratio=<r>
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tf/exec.h"
#include "tf/time.h"

#define TICKERS     500
#define CONCURRENCY 8
#define ROUNDS      3
#define API_KEY     "bench-key"
#define WS          "2024-03-04T14:30:00Z"
#define WE          "2024-03-04T21:00:00Z"

/* 1 unless BENCH_TRANSFER=identity: pages travel gzip-encoded, as the
 * providers send them to a client that asks. */
static int gzip_transfer(void)
{
    const char *t = getenv("BENCH_TRANSFER");

    return !t || strcmp(t, "identity") != 0;
}

/* curl fetching the same pages as extract, CONCURRENCY at a time. */
static double curl_round(const char *config)
{
    char cmd[1024];
    double t0 = h_now_s();

    snprintf(cmd, sizeof(cmd), "curl -s %s--parallel --parallel-max %d -K '%s'",
             gzip_transfer() ? "--compressed " : "", CONCURRENCY, config);
    if (system(cmd) != 0)
        fprintf(stderr, "curl failed\n");
    return h_now_s() - t0;
}

/* One extraction of the whole job; returns seconds, sets bars and raw bytes. */
static double extract_round(struct h_proc *extract, long long *bars, double *mb)
{
    char id[TF_UUID_LEN + 1], body[512], path[128];
    struct h_resp r;
    cJSON *rec;
    double t0;

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"bench\",\"window_start\":\"" WS "\","
             "\"window_end\":\"" WE "\",\"wait_seconds\":900}",
             id);
    t0 = h_now_s();
    h_http("POST", extract->port, "/v1/executions", body, NULL, &r);
    t0 = h_now_s() - t0;
    rec = cJSON_Parse(r.body);
    if (!rec || strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(rec, "status")), "SUCCESS")) {
        fprintf(stderr, "extract did not succeed: %s\n", r.body);
        exit(1);
    }
    *bars = (long long)cJSON_GetObjectItem(rec, "records_out")->valuedouble;
    cJSON_Delete(rec);
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/executions/%s/audit", id);
    h_http("GET", extract->port, path, NULL, NULL, &r);
    rec = cJSON_Parse(r.body);
    *mb = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(rec, "attempts"), 0),
                              "raw_bytes")
              ->valuedouble /
          1e6;
    cJSON_Delete(rec);
    h_resp_free(&r);
    return t0;
}

int main(void)
{
    const char *base = getenv("TICKFLOW_PG_DSN");
    const char *bin = getenv("TF_BIN_DIR") ? getenv("TF_BIN_DIR") : "build/bin";
    static char envs[12][1200];
    const char *env[13];
    char dir[256], dsn[1024], dbname[64], config[300], binpath[600];
    struct h_proc ms, ex;
    double ext_s[ROUNDS], curl_s[ROUNDS], mb = 0;
    long long bars = 0;
    int ports[2] = {h_free_port(), h_free_port()};
    PGconn *db;
    PGresult *res;
    FILE *fp;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!base || !getenv("TICKFLOW_KAFKA_BROKERS")) {
        fprintf(stderr, "TICKFLOW_PG_DSN and TICKFLOW_KAFKA_BROKERS must be set\n");
        return 2;
    }
    mkdir(".run/bench", 0755);
    snprintf(dir, sizeof(dir), ".run/bench/extract-%ld", (long)getpid());
    mkdir(dir, 0755);
    snprintf(dbname, sizeof(dbname), "tickflow_bench_%ld", (long)getpid());
    if (h_pg_create_db(base, dbname, dsn, sizeof(dsn)) != 0)
        return 1;
    snprintf(envs[0], sizeof(envs[0]), "TICKFLOW_PG_DSN=%s", dsn);
    snprintf(envs[1], sizeof(envs[1]), "TICKFLOW_KAFKA_TOPIC_PREFIX=bench%ld.", (long)getpid());
    snprintf(envs[2], sizeof(envs[2]), "TICKFLOW_LAKE_URI=%s/lake", dir);
    snprintf(envs[3], sizeof(envs[3]), "POLYGON_API_KEY=" API_KEY);
    snprintf(envs[4], sizeof(envs[4]), "TICKFLOW_POLYGON_BASE_URL=http://127.0.0.1:%d", ports[0]);
    snprintf(envs[5], sizeof(envs[5]), "TICKFLOW_POLYGON_RATE_PER_MINUTE=1000000");
    snprintf(envs[6], sizeof(envs[6]), "TICKFLOW_EXTRACT_CONCURRENCY=%d", CONCURRENCY);
    snprintf(envs[7], sizeof(envs[7]), "TICKFLOW_LOG_LEVEL=warn");
    snprintf(envs[8], sizeof(envs[8]), "TICKFLOW_MARKETSIM_GZIP=%d", gzip_transfer());
    for (int i = 0; i < 9; i++)
        env[i] = envs[i];
    env[9] = NULL;
    printf("transfer: %s\n", gzip_transfer() ? "gzip" : "identity");
    snprintf(binpath, sizeof(binpath), "%s/tickflow-marketsim", bin);
    if (h_start(&ms, "marketsim", binpath, ports[0], dir, env) != 0)
        return 1;
    snprintf(binpath, sizeof(binpath), "%s/tickflow-extract", bin);
    if (h_start(&ex, "extract", binpath, ports[1], dir, env) != 0)
        return 1;
    db = PQconnectdb(dsn);
    res = PQexec(db, "INSERT INTO tickflow.job_config (job_name, provider, tickers, updated_by)"
                     " SELECT 'bench', 'polygon', array_agg('BN' || lpad(i::text, 4, '0')"
                     " ORDER BY i), 'bench' FROM generate_series(0, 499) AS i");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "job: %s", PQresultErrorMessage(res));
        return 1;
    }
    PQclear(res);
    /* The same requests extract makes, for curl. */
    snprintf(config, sizeof(config), "%s/curl.cfg", dir);
    fp = fopen(config, "w");
    for (int i = 0; fp && i < TICKERS; i++) {
        int64_t a = 0, b = 0;
        if (tf_time_parse(WS, &a) != TF_OK || tf_time_parse(WE, &b) != TF_OK)
            return 1;
        fprintf(fp,
                "url = \"http://127.0.0.1:%d/v2/aggs/ticker/BN%04d/range/1/minute/%lld/%lld"
                "?adjusted=true&sort=asc&limit=50000&apiKey=" API_KEY "\"\noutput = /dev/null\n",
                ports[0], i, (long long)a * 1000, (long long)b * 1000 - 1);
    }
    if (fp)
        fclose(fp);
    curl_round(config); /* warm both sides up once */
    extract_round(&ex, &bars, &mb);
    for (int r = 0; r < ROUNDS; r++) {
        curl_s[r] = curl_round(config);
        ext_s[r] = extract_round(&ex, &bars, &mb);
        printf("round %d: extract %.3f s, curl %.3f s, %lld bars, %.1f MB\n", r + 1, ext_s[r],
               curl_s[r], bars, mb);
    }
    {
        double e = h_median(ext_s, ROUNDS), c = h_median(curl_s, ROUNDS);
        printf("extract: %.0f bars/s, %.1f MB/s; curl: %.0f bars/s, %.1f MB/s (medians of %d)\n",
               (double)bars / e, mb / e, (double)bars / c, mb / c, ROUNDS);
        printf("bench extract: bars_per_s=%.0f limit_bars_per_s=%.0f ratio=%.2f\n",
               (double)bars / e, (double)bars / c, c / e);
    }
    PQfinish(db);
    h_stop(&ex);
    h_stop(&ms);
    h_pg_drop_db(base, dbname);
    return 0;
}
