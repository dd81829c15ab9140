/*
 * cmd_jobs.c - the commands about jobs and what they produced: jobs
 * list|get|put (extract's /v1/jobs; the API has no DELETE), gaps (the
 * windows no successful execution covers) and quality (aggregate's
 * completeness and data-quality results of an execution).
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/buf.h"
#include "tf/exec.h"
#include "tf/json.h"

/* A job file's largest size: the API's body limit. */
#define MAX_JOB_FILE (1u << 20)

/* "/v1/jobs/<job escaped><tail>" into path; 0 after a message when it does not fit. */
static int job_path(struct ctl *c, const char *job, const char *tail, struct tf_buf *path)
{
    char *esc = ctl_escape(c, job);
    int ok = esc && tf_buf_printf(path, "/v1/jobs/%s%s", esc, tail) == TF_OK;

    curl_free(esc);
    if (!ok)
        ctl_err(CTL_USAGE, "the job name is too long");
    return ok;
}

/* A job's schedule in a few words: "every 60s", "0 18 * * MON-FRI America/New_York", "-". */
static void schedule_text(const cJSON *spec, char *out, size_t outlen)
{
    const char *cron = tf_json_str(spec, "cron");
    long every = tf_json_long(spec, "every_seconds", 0);

    if (every > 0)
        snprintf(out, outlen, "every %lds", every);
    else if (cron)
        snprintf(out, outlen, "%s %s", cron,
                 tf_json_str(spec, "zone") ? tf_json_str(spec, "zone") : "UTC");
    else
        snprintf(out, outlen, "-");
}

static int jobs_list(struct ctl *c)
{
    cJSON *doc = NULL;
    const cJSON *job;
    int code = ctl_read(c, CTL_EXTRACT, "/v1/jobs", &doc);

    if (code != CTL_OK || !doc)
        return code;
    printf("%-24s  %-10s  %-10s  %8s  %-7s  %-24s  %-20s  %s\n", "JOB", "PROVIDER", "BAR",
           "INTERVAL", "ENABLED", "SCHEDULE", "NEXT TICK", "TICKERS");
    cJSON_ArrayForEach(job, cJSON_GetObjectItemCaseSensitive(doc, "jobs"))
    {
        char bar[32], tickers[128] = "", sched[64];
        const cJSON *t;
        size_t used = 0;
        int n = 0;

        snprintf(bar, sizeof(bar), "%ld %s", tf_json_long(job, "multiplier", 1),
                 ctl_or_dash(tf_json_str(job, "timespan")));
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(job, "tickers"))
        {
            int w;
            if (!cJSON_IsString(t))
                continue;
            w = snprintf(tickers + used, sizeof(tickers) - used, "%s%s", n ? "," : "",
                         t->valuestring);
            n++;
            if (w < 0 || (size_t)w >= sizeof(tickers) - used) {
                snprintf(tickers + sizeof(tickers) - 5, 5, "...");
                break;
            }
            used += (size_t)w;
        }
        schedule_text(cJSON_GetObjectItemCaseSensitive(job, "schedule"), sched, sizeof(sched));
        printf("%-24s  %-10s  %-10s  %7lds  %-7s  %-24s  %-20s  %s\n",
               ctl_or_dash(tf_json_str(job, "job_name")), ctl_or_dash(tf_json_str(job, "provider")),
               bar, tf_json_long(job, "interval_seconds", 0),
               cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(job, "enabled")) ? "no" : "yes",
               sched,
               ctl_or_dash(
                   tf_json_str(cJSON_GetObjectItemCaseSensitive(job, "schedule_state"), "next_at")),
               tickers);
    }
    cJSON_Delete(doc);
    return CTL_OK;
}

/* Reads path ("-": stdin) whole into buf; 0 after a message. */
static int read_file(const char *path, struct tf_buf *buf)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char chunk[8192];
    size_t n;
    int ok = 1;

    if (!f) {
        ctl_err(CTL_USAGE, "cannot read %s", path);
        return 0;
    }
    while (ok && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ok = tf_buf_append(buf, chunk, n) == TF_OK;
    ok = ok && !ferror(f) && tf_buf_append(buf, "", 1) == TF_OK;
    if (f != stdin)
        fclose(f);
    if (!ok)
        ctl_err(CTL_USAGE, "cannot read %s (or it is over %u bytes)", path, MAX_JOB_FILE);
    return ok;
}

static int jobs_put(struct ctl *c, const char *job, const char *file)
{
    struct tf_buf text, path;
    cJSON *parsed = NULL;
    cJSON *ans = NULL;
    long status = 0;
    int code = CTL_USAGE;

    tf_buf_init(&text, MAX_JOB_FILE);
    tf_buf_init(&path, 4096);
    if (!read_file(file, &text) || !job_path(c, job, "", &path))
        goto out;
    parsed = cJSON_Parse(text.data);
    if (!cJSON_IsObject(parsed)) {
        ctl_err(CTL_USAGE, "%s is not a JSON object (a job configuration; see the README)", file);
        goto out;
    }
    code = ctl_call(c, CTL_EXTRACT, "PUT", path.data, text.data, &ans, &status);
    if (code != CTL_OK)
        goto out;
    if (c->o.json)
        code = ctl_print_json(ans);
    else
        printf("job %s %s\n", job, status == 201 ? "created" : "replaced");
out:
    cJSON_Delete(ans);
    cJSON_Delete(parsed);
    tf_buf_cleanup(&path);
    tf_buf_cleanup(&text);
    return code;
}

int ctl_cmd_jobs(struct ctl *c)
{
    const char *sub = c->o.nargs ? c->o.args[0] : NULL;
    struct tf_buf path;
    cJSON *job = NULL;
    int code;

    if (sub && strcmp(sub, "list") == 0 && c->o.nargs == 1)
        return jobs_list(c);
    if (sub && strcmp(sub, "put") == 0 && c->o.nargs == 3)
        return jobs_put(c, c->o.args[1], c->o.args[2]);
    if (sub && strcmp(sub, "delete") == 0)
        return ctl_err(CTL_USAGE, "jobs cannot be deleted: the API has no DELETE for jobs; "
                                  "put the job with \"enabled\": false to stop it");
    if (!sub || strcmp(sub, "get") != 0 || c->o.nargs != 2)
        return ctl_err(CTL_USAGE, "usage: tickflowctl jobs list | get JOB | put JOB FILE");
    tf_buf_init(&path, 4096);
    code = job_path(c, c->o.args[1], "", &path) ? CTL_OK : CTL_USAGE;
    if (code == CTL_OK)
        code = ctl_call(c, CTL_EXTRACT, "GET", path.data, NULL, &job, NULL);
    if (code == CTL_OK)
        code = ctl_print_json(job);
    cJSON_Delete(job);
    tf_buf_cleanup(&path);
    return code;
}

int ctl_cmd_gaps(struct ctl *c)
{
    enum ctl_svc stage = CTL_AGGREGATE;
    struct tf_buf path;
    char *from = NULL, *to = NULL;
    cJSON *doc = NULL;
    const cJSON *gap;
    int code = CTL_USAGE;
    int n = 0;

    if (c->o.nargs != 1)
        return ctl_err(CTL_USAGE, "gaps needs a job name (see tickflowctl gaps --help)");
    if (!ctl_check_time("--from", c->o.from, 0) || !ctl_check_time("--to", c->o.to, 0))
        return CTL_USAGE;
    if (c->o.stage && !ctl_parse_stage(c->o.stage, &stage))
        return CTL_USAGE;
    tf_buf_init(&path, 4096);
    from = ctl_escape(c, c->o.from);
    to = ctl_escape(c, c->o.to);
    if (!from || !to || !job_path(c, c->o.args[0], "/gaps", &path) ||
        tf_buf_printf(&path, "?from=%s&to=%s&stage=%s", from, to, ctl_svc_name[stage]) != TF_OK)
        goto out;
    code = ctl_read(c, CTL_EXTRACT, path.data, &doc);
    if (code != CTL_OK || !doc)
        goto out;
    cJSON_ArrayForEach(gap, cJSON_GetObjectItemCaseSensitive(doc, "gaps"))
    {
        char len[32];
        int64_t a = ctl_time_ms(tf_json_str(gap, "start"));
        int64_t b = ctl_time_ms(tf_json_str(gap, "end"));
        ctl_fmt_duration(a >= 0 && b >= a ? b - a : 0, len, sizeof(len));
        printf("%s  %s  %s\n", ctl_or_dash(tf_json_str(gap, "start")),
               ctl_or_dash(tf_json_str(gap, "end")), len);
        n++;
    }
    {
        char total[32];
        ctl_fmt_duration(
            (int64_t)(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "gap_seconds")) *
                      1000),
            total, sizeof(total));
        printf("%d gap%s through %s, %s in all\n", n, n == 1 ? "" : "s", ctl_svc_name[stage],
               n ? total : "nothing missing");
    }
out:
    curl_free(from);
    curl_free(to);
    cJSON_Delete(doc);
    tf_buf_cleanup(&path);
    return code;
}

int ctl_cmd_quality(struct ctl *c)
{
    char path[128];
    cJSON *doc = NULL;
    const cJSON *it;
    int code;

    if (c->o.nargs != 1)
        return ctl_err(CTL_USAGE, "quality needs an execution id (see tickflowctl quality --help)");
    if (!tf_uuid_valid(c->o.args[0]))
        return ctl_err(CTL_USAGE, "%s is not an execution id (a UUID)", c->o.args[0]);
    snprintf(path, sizeof(path), "/v1/executions/%s/quality", c->o.args[0]);
    code = ctl_read(c, CTL_AGGREGATE, path, &doc);
    if (code != CTL_OK || !doc)
        return code;
    printf("completeness\n  %-12s  %9s  %9s  %7s\n", "TICKER", "EXPECTED", "ACTUAL", "RATIO");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "completeness"))
    {
        printf("  %-12s  %9ld  %9ld  %7.4f\n", ctl_or_dash(tf_json_str(it, "ticker")),
               tf_json_long(it, "expected", 0), tf_json_long(it, "actual", 0),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "ratio")));
    }
    printf("checks\n");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "checks"))
    {
        const cJSON *alert = cJSON_GetObjectItemCaseSensitive(it, "alert");
        printf("  #%ld %-18s %-10s %-4s %s  value %g threshold %g  alert %s\n",
               tf_json_long(it, "rule_no", 0), ctl_or_dash(tf_json_str(it, "check")),
               ctl_or_dash(tf_json_str(it, "ticker")), ctl_or_dash(tf_json_str(it, "severity")),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "passed")) ? "passed" : "FAILED",
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "value")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "threshold")),
               ctl_or_dash(tf_json_str(alert, "state")));
    }
    if (!cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "checks")))
        printf("  (the job has no data-quality rules)\n");
    cJSON_Delete(doc);
    return CTL_OK;
}
