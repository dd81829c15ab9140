/*
 * cmd_backfill.c - backfill JOB --from D --to D starts a backfill at
 * extract under an id derived from the job and the range (so the same
 * command again finds the same backfill: POST /v1/backfills answers 200
 * with it and creates nothing), then shows a progress bar over the days
 * and stages; backfill watch ID reattaches. Ctrl-C stops the watch only.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tf/exec.h"
#include "tf/json.h"

#define POLL_MS   500
#define BAR_WIDTH 30

/*
 * The backfill id of (job, from, to): a UUID (version 8, RFC 9562) from
 * the SHA-256 of the three, so the same command names the same backfill.
 */
static int derive_id(const char *job, const char *from, const char *to, char out[TF_UUID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char text[256];
    int n = snprintf(text, sizeof(text), "tickflowctl backfill\n%s\n%s\n%s", job, from, to);

    if (n < 0 || (size_t)n >= sizeof(text) ||
        !EVP_Digest(text, (size_t)n, md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
        return 0;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x80);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    snprintf(out, TF_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0], md[1],
             md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12], md[13],
             md[14], md[15]);
    return 1;
}

static long stage_count(const cJSON *bf, const char *stage, const char *state)
{
    return tf_json_long(cJSON_GetObjectItemCaseSensitive(bf, stage), state, 0);
}

/* Stage-days that are final (succeeded, failed or skipped) and those running. */
static void units(const cJSON *bf, long *done, long *running, long *failed)
{
    *done = *running = *failed = 0;
    for (int i = 0; i < CTL_NSVC; i++) {
        *done += stage_count(bf, ctl_svc_name[i], "succeeded") +
                 stage_count(bf, ctl_svc_name[i], "failed") +
                 stage_count(bf, ctl_svc_name[i], "skipped");
        *running += stage_count(bf, ctl_svc_name[i], "running");
        *failed += stage_count(bf, ctl_svc_name[i], "failed");
    }
}

/* The bar's line: key without the ETA (what counts as a change), text with it. */
static void bar_line(const cJSON *bf, long done0, int64_t t0, char *key, char *text, size_t len)
{
    long days = tf_json_long(bf, "days", 0), total = 3 * days;
    long done, running, failed, filled;
    char bar[BAR_WIDTH + 1], eta[48] = "ETA --", counts[CTL_LINE_SIZE - 64];
    int64_t now = ctl_now_ms();

    units(bf, &done, &running, &failed);
    filled = total > 0 ? done * BAR_WIDTH / total : 0;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[BAR_WIDTH] = '\0';
    if (done >= total) {
        snprintf(eta, sizeof(eta), "done");
    } else if (done > done0 && now > t0) {
        char d[32];
        double per_unit = (double)(now - t0) / (double)(done - done0);
        ctl_fmt_duration((int64_t)(per_unit * (double)(total - done)), d, sizeof(d));
        snprintf(eta, sizeof(eta), "ETA %s", d);
    }
    snprintf(counts, sizeof(counts),
             "[%s] %ld/%ld stage-days  %ld/%ld days in gold  %ld running  %ld failed", bar, done,
             total, tf_json_long(bf, "completed", 0), days, running, failed);
    snprintf(key, len, "%s", counts);
    snprintf(text, len, "%s  %s", counts, eta);
}

/* The closing lines: the outcome and, for a failure, each failed day. */
static void print_outcome(const cJSON *bf, int64_t t0)
{
    const cJSON *day;
    char took[32];

    ctl_fmt_duration(ctl_now_ms() - t0, took, sizeof(took));
    printf("backfill %s %s: %ld of %ld days in gold (watched %s)\n", tf_json_str(bf, "backfill_id"),
           tf_json_str(bf, "status"), tf_json_long(bf, "completed", 0), tf_json_long(bf, "days", 0),
           took);
    cJSON_ArrayForEach(day, cJSON_GetObjectItemCaseSensitive(bf, "executions"))
    {
        for (int i = 0; i < CTL_NSVC; i++) {
            const char *st = tf_json_str(day, ctl_svc_name[i]);
            if (!st || strcmp(st, "FAILED") != 0)
                continue;
            printf("  %.10s  %s FAILED  tickflowctl status %s\n",
                   tf_json_str(day, "window_start") ? tf_json_str(day, "window_start") : "?",
                   ctl_svc_name[i], tf_json_str(day, "execution_id"));
            break;
        }
    }
}

static int watch(struct ctl *c, const char *id)
{
    char path[96], what[64], again[96];
    cJSON *bf = NULL;
    struct ctl_live lv;
    int64_t t0 = ctl_now_ms();
    long done0 = -1;
    int code;

    snprintf(path, sizeof(path), "/v1/backfills/%s", id);
    ctl_live_init(&lv, c->tty, 1);
    for (;;) {
        long done, running, failed;
        const char *st;

        cJSON_Delete(bf);
        code = ctl_call(c, CTL_EXTRACT, "GET", path, NULL, &bf, NULL);
        if (code != CTL_OK)
            break;
        units(bf, &done, &running, &failed);
        if (done0 < 0)
            done0 = done;
        if (!c->o.json) {
            char key[CTL_LINE_SIZE], text[CTL_LINE_SIZE];
            bar_line(bf, done0, t0, key, text, sizeof(text));
            ctl_live_set(&lv, 0, key, text);
            ctl_live_show(&lv);
        }
        st = tf_json_str(bf, "status");
        if (!st || strcmp(st, "RUNNING") != 0)
            break;
        code = ctl_sleep_ms(POLL_MS) ? CTL_INTERRUPTED : CTL_OK;
        if (code != CTL_OK)
            break;
    }
    snprintf(what, sizeof(what), "backfill %s", id);
    snprintf(again, sizeof(again), "tickflowctl backfill watch %s", id);
    if (ctl_watch_end(&lv, code, what, again) == CTL_OK) {
        const char *st = tf_json_str(bf, "status");
        if (c->o.json)
            ctl_print_json(bf);
        else
            print_outcome(bf, t0);
        code = st && strcmp(st, "SUCCESS") == 0 ? CTL_OK : CTL_FAILED;
    }
    cJSON_Delete(bf);
    return code;
}

static int start(struct ctl *c)
{
    const char *job = c->o.args[0];
    char id[TF_UUID_LEN + 1];
    cJSON *body = NULL;
    cJSON *bf = NULL;
    char *text = NULL;
    long status = 0;
    long conc = 0;
    int code;

    if (c->o.nargs != 1)
        return ctl_err(CTL_USAGE, "backfill needs a job name, or watch ID (see --help)");
    if (!ctl_check_time("--from", c->o.from, 1) || !ctl_check_time("--to", c->o.to, 1))
        return CTL_USAGE;
    if (c->o.concurrency) {
        char *end = NULL;
        conc = strtol(c->o.concurrency, &end, 10);
        if (end == c->o.concurrency || *end || conc < 1 || conc > 32)
            return ctl_err(CTL_USAGE, "--concurrency is a number from 1 to 32, not %s",
                           c->o.concurrency);
    }
    if (c->o.fresh)
        tf_uuid_new(id);
    else if (!derive_id(job, c->o.from, c->o.to, id))
        return ctl_err(CTL_USAGE, "the job name is too long");
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "backfill_id", id);
    cJSON_AddStringToObject(body, "job_name", job);
    cJSON_AddStringToObject(body, "from", c->o.from);
    cJSON_AddStringToObject(body, "to", c->o.to);
    if (conc)
        cJSON_AddNumberToObject(body, "concurrency", (double)conc);
    text = cJSON_PrintUnformatted(body);
    code = text ? ctl_call(c, CTL_EXTRACT, "POST", "/v1/backfills", text, &bf, &status)
                : ctl_err(CTL_SERVER, "out of memory");
    if (code != CTL_OK)
        goto out;
    if (!c->o.json) {
        printf("backfill %s %s: job %s, %s to %s, %ld days, concurrency %ld\n", id,
               status == 200 ? "exists (the same range was asked before)" : "started", job,
               c->o.from, c->o.to, tf_json_long(bf, "days", 0), tf_json_long(bf, "concurrency", 0));
        if (c->o.detach)
            printf("watch it: tickflowctl backfill watch %s\n", id);
    }
    if (!c->o.detach)
        code = watch(c, id);
    else if (c->o.json)
        code = ctl_print_json(bf);
out:
    cJSON_free(text);
    cJSON_Delete(bf);
    cJSON_Delete(body);
    return code;
}

int ctl_cmd_backfill(struct ctl *c)
{
    /* "backfill watch ID"; a job may be named watch, so only with an id after it. */
    if (c->o.nargs == 2 && strcmp(c->o.args[0], "watch") == 0) {
        if (c->o.from || c->o.to || c->o.concurrency || c->o.detach || c->o.fresh)
            return ctl_err(CTL_USAGE, "backfill watch takes an id and --json only");
        if (!tf_uuid_valid(c->o.args[1]))
            return ctl_err(CTL_USAGE, "%s is not a backfill id (a UUID)", c->o.args[1]);
        return watch(c, c->o.args[1]);
    }
    return start(c);
}
