/*
 * cmd_run.c - the commands about one execution: run (start it at
 * extract), status (its three stage records), replay (a stage again) and
 * the watch they share with --wait, plus executions (one stage's latest).
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/exec.h"
#include "tf/json.h"

#define POLL_MS 400

/* An execution's state across its stages. */
enum run_state { RUN_NONE, RUN_ACTIVE, RUN_SUCCESS, RUN_FAILED };

static const char *const run_state_name[] = {"NONE", "RUNNING", "SUCCESS", "FAILED"};

static enum tf_exec_status rec_status(const cJSON *rec)
{
    return rec ? tf_exec_status_parse(tf_json_str(rec, "status")) : TF_EXEC_NO_STATUS;
}

/*
 * Is stage i's SUCCESS older than the stage before it (a replay of the
 * stage before is under way or just done, and this one has not run since)?
 */
static int stale(cJSON *const rec[CTL_NSVC], int i)
{
    int64_t mine, before;

    if (i == 0 || !rec[i - 1] || !rec[i])
        return 0;
    mine = ctl_time_ms(tf_json_str(rec[i], "finished_at"));
    before = ctl_time_ms(tf_json_str(rec[i - 1], "finished_at"));
    return rec_status(rec[i - 1]) != TF_EXEC_SUCCESS || (before > 0 && mine < before);
}

static enum run_state run_state(cJSON *const rec[CTL_NSVC])
{
    int success = 0;

    if (!rec[0] && !rec[1] && !rec[2])
        return RUN_NONE;
    for (int i = 0; i < CTL_NSVC; i++) {
        enum tf_exec_status st = rec_status(rec[i]);
        if (st == TF_EXEC_FAILED && !stale(rec, i))
            return RUN_FAILED;
        success += st == TF_EXEC_SUCCESS && !stale(rec, i);
    }
    return success == CTL_NSVC ? RUN_SUCCESS : RUN_ACTIVE;
}

/* Reads the three records (NULL for a stage without one); a failure's code after a message. */
static int fetch_stages(struct ctl *c, const char *id, cJSON *rec[CTL_NSVC])
{
    char path[96];

    snprintf(path, sizeof(path), "/v1/executions/%s", id);
    for (int i = 0; i < CTL_NSVC; i++) {
        struct ctl_resp resp;
        int code = ctl_request(c, (enum ctl_svc)i, "GET", path, NULL, &resp);

        cJSON_Delete(rec[i]);
        rec[i] = NULL;
        if (code == CTL_UNREACHABLE)
            return ctl_unreachable(c, (enum ctl_svc)i, &resp);
        if (code != CTL_OK)
            return code;
        if (resp.status == 200 && cJSON_IsObject(resp.json)) {
            rec[i] = resp.json;
            resp.json = NULL;
        } else if (resp.status != 404) {
            code = ctl_status_exit(resp.status);
            ctl_err(code == CTL_OK ? CTL_SERVER : code, "%s: %ld: %s", ctl_svc_name[i], resp.status,
                    ctl_error_message(resp.json));
            ctl_resp_cleanup(&resp);
            return code == CTL_OK ? CTL_SERVER : code;
        }
        ctl_resp_cleanup(&resp);
    }
    return CTL_OK;
}

/* A record's time on its stage: start to finish, or to now while it runs. */
static int64_t elapsed_ms(const cJSON *rec)
{
    int64_t start = ctl_time_ms(tf_json_str(rec, "started_at"));
    int64_t end = ctl_time_ms(tf_json_str(rec, "finished_at"));
    enum tf_exec_status st = rec_status(rec);

    if (start < 0 || st == TF_EXEC_PENDING) /* a pending retry still shows the last start */
        return -1;
    if (st != TF_EXEC_SUCCESS && st != TF_EXEC_FAILED)
        end = ctl_now_ms();
    return end >= start ? end - start : 0;
}

static void count_str(const cJSON *rec, const char *key, char *out, size_t outlen)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(rec, key);

    if (cJSON_IsNumber(n))
        snprintf(out, outlen, "%.0f", n->valuedouble);
    else
        snprintf(out, outlen, "-");
}

/* Stage i's line: key (what counts as a change) and text (key plus elapsed time). */
static void stage_line(cJSON *const rec[CTL_NSVC], int i, char *key, char *text, size_t len)
{
    const cJSON *r = rec[i];
    char in[24], out[24], rej[24], took[32] = "", attempt[32] = "", counts[CTL_LINE_SIZE - 64];

    if (!r) {
        snprintf(key, len, "%-9s  %s", ctl_svc_name[i],
                 i == 0 ? "no record" : "waiting for the stage before");
        snprintf(text, len, "%s", key);
        return;
    }
    count_str(r, "records_in", in, sizeof(in));
    count_str(r, "records_out", out, sizeof(out));
    count_str(r, "records_rejected", rej, sizeof(rej));
    if (tf_json_long(r, "attempt", 1) > 1)
        snprintf(attempt, sizeof(attempt), " (attempt %ld)", tf_json_long(r, "attempt", 1));
    if (stale(rec, i) && rec_status(r) != TF_EXEC_RUNNING && rec_status(r) != TF_EXEC_PENDING) {
        snprintf(key, len, "%-9s  waiting for %s's new attempt", ctl_svc_name[i],
                 ctl_svc_name[i - 1]);
        snprintf(text, len, "%s", key);
        return;
    }
    if (rec_status(r) == TF_EXEC_PENDING)
        snprintf(counts, sizeof(counts), "%-9s  PENDING", ctl_svc_name[i]);
    else
        snprintf(counts, sizeof(counts), "%-9s  %-8s  in %s  out %s  rejected %s%s",
                 ctl_svc_name[i], ctl_or_dash(tf_json_str(r, "status")), in, out, rej, attempt);
    if (elapsed_ms(r) >= 0)
        ctl_fmt_duration(elapsed_ms(r), took, sizeof(took));
    snprintf(key, len, "%s", counts);
    snprintf(text, len, "%s%s%s", counts, took[0] ? "  " : "", took);
}

/* {"execution_id", "status", "extract", "transform", "aggregate"} (new object). */
static cJSON *run_json(const char *id, cJSON *rec[CTL_NSVC])
{
    cJSON *doc = cJSON_CreateObject();

    cJSON_AddStringToObject(doc, "execution_id", id);
    cJSON_AddStringToObject(doc, "status", run_state_name[run_state(rec)]);
    for (int i = 0; i < CTL_NSVC; i++) {
        cJSON_AddItemToObject(doc, ctl_svc_name[i], rec[i] ? rec[i] : cJSON_CreateNull());
        rec[i] = NULL;
    }
    return doc;
}

/* The closing line of a run: its outcome, and for a failure the stage and its error. */
static void print_outcome(const char *id, cJSON *const rec[CTL_NSVC], enum ctl_svc first)
{
    enum run_state st = run_state(rec);

    if (st == RUN_FAILED) {
        for (int i = 0; i < CTL_NSVC; i++) {
            if (rec_status(rec[i]) != TF_EXEC_FAILED)
                continue;
            printf("execution %s FAILED at %s (attempt %ld of %ld): %s\n", id, ctl_svc_name[i],
                   tf_json_long(rec[i], "attempt", 1), tf_json_long(rec[i], "max_attempts", 1),
                   ctl_or_dash(tf_json_str(rec[i], "error")));
            return;
        }
    }
    printf("execution %s %s", id, run_state_name[st]);
    if (st == RUN_SUCCESS) {
        char took[32], in[24], out[24], rej[24], gold[24];
        int64_t start = ctl_time_ms(tf_json_str(rec[first], "started_at"));
        int64_t end = ctl_time_ms(tf_json_str(rec[2], "finished_at"));

        ctl_fmt_duration(start >= 0 && end >= start ? end - start : 0, took, sizeof(took));
        count_str(rec[1], "records_in", in, sizeof(in));
        count_str(rec[1], "records_out", out, sizeof(out));
        count_str(rec[1], "records_rejected", rej, sizeof(rej));
        count_str(rec[2], "records_out", gold, sizeof(gold));
        printf(" in %s: transform in %s out %s rejected %s, aggregate out %s", took, in, out, rej,
               gold);
    }
    printf("\n");
}

int ctl_watch_run(struct ctl *c, const char *id, enum ctl_svc first)
{
    cJSON *rec[CTL_NSVC] = {NULL, NULL, NULL};
    struct ctl_live lv;
    char what[64], again[96];
    enum run_state st = RUN_NONE;
    int code = CTL_OK;

    ctl_live_init(&lv, c->tty, CTL_NSVC - (int)first);
    for (;;) {
        code = fetch_stages(c, id, rec);
        if (code != CTL_OK)
            break;
        st = run_state(rec);
        if (st == RUN_NONE) {
            code = ctl_err(CTL_NOT_FOUND, "no execution %s at extract, transform or aggregate", id);
            break;
        }
        if (!c->o.json) {
            for (int i = first; i < CTL_NSVC; i++) {
                char key[CTL_LINE_SIZE], text[CTL_LINE_SIZE];
                stage_line(rec, i, key, text, sizeof(text));
                ctl_live_set(&lv, i - (int)first, key, text);
            }
            ctl_live_show(&lv);
        }
        if (st == RUN_SUCCESS || st == RUN_FAILED)
            break;
        code = ctl_sleep_ms(POLL_MS) ? CTL_INTERRUPTED : CTL_OK;
        if (code != CTL_OK)
            break;
    }
    snprintf(what, sizeof(what), "execution %s", id);
    snprintf(again, sizeof(again), "tickflowctl status %s --wait", id);
    if (ctl_watch_end(&lv, code, what, again) == CTL_OK) {
        if (c->o.json) {
            cJSON *doc = run_json(id, rec);
            ctl_print_json(doc);
            cJSON_Delete(doc);
        } else {
            print_outcome(id, rec, first);
        }
        code = st == RUN_SUCCESS ? CTL_OK : CTL_FAILED;
    }
    for (int i = 0; i < CTL_NSVC; i++)
        cJSON_Delete(rec[i]);
    return code;
}

/* The one positional argument a command takes, named what; NULL after a message. */
static const char *one_arg(struct ctl *c, const char *what, const char *cmd)
{
    if (c->o.nargs != 1) {
        ctl_err(CTL_USAGE, "%s needs %s (see tickflowctl %s --help)", cmd, what, cmd);
        return NULL;
    }
    return c->o.args[0];
}

static const char *execution_arg(struct ctl *c, const char *cmd)
{
    const char *id = one_arg(c, "an execution id", cmd);

    if (id && !tf_uuid_valid(id)) {
        ctl_err(CTL_USAGE, "%s is not an execution id (a UUID)", id);
        return NULL;
    }
    return id;
}

int ctl_cmd_run(struct ctl *c)
{
    const char *job = one_arg(c, "a job name", "run");
    char id[TF_UUID_LEN + 1];
    cJSON *body = NULL;
    cJSON *rec = NULL;
    char *text = NULL;
    long status = 0;
    int code;

    if (!job)
        return CTL_USAGE;
    if (!c->o.from != !c->o.to)
        return ctl_err(CTL_USAGE, "--from and --to go together (or neither: the next window)");
    if (c->o.from &&
        (!ctl_check_time("--from", c->o.from, 0) || !ctl_check_time("--to", c->o.to, 0)))
        return CTL_USAGE;
    if (c->o.id && !tf_uuid_valid(c->o.id))
        return ctl_err(CTL_USAGE, "--id %s is not a UUID", c->o.id);
    if (c->o.id)
        snprintf(id, sizeof(id), "%s", c->o.id);
    else
        tf_uuid_new(id);
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "execution_id", id);
    cJSON_AddStringToObject(body, "job_name", job);
    if (c->o.from) {
        cJSON_AddStringToObject(body, "window_start", c->o.from);
        cJSON_AddStringToObject(body, "window_end", c->o.to);
    }
    text = cJSON_PrintUnformatted(body);
    code = text ? ctl_call(c, CTL_EXTRACT, "POST", "/v1/executions", text, &rec, &status)
                : ctl_err(CTL_SERVER, "out of memory");
    if (code != CTL_OK)
        goto out;
    if (!c->o.json)
        printf("execution %s %s: job %s, window %s to %s\n",
               ctl_or_dash(tf_json_str(rec, "execution_id")), status == 200 ? "exists" : "started",
               job, ctl_or_dash(tf_json_str(rec, "window_start")),
               ctl_or_dash(tf_json_str(rec, "window_end")));
    if (tf_json_str(rec, "execution_id"))
        snprintf(id, sizeof(id), "%s", tf_json_str(rec, "execution_id"));
    if (c->o.wait)
        code = ctl_watch_run(c, id, CTL_EXTRACT);
    else if (c->o.json)
        code = ctl_print_json(rec);
    else
        printf("follow it: tickflowctl status %s --wait\n", id);
out:
    cJSON_free(text);
    cJSON_Delete(rec);
    cJSON_Delete(body);
    return code;
}

int ctl_cmd_status(struct ctl *c)
{
    const char *id = execution_arg(c, "status");
    cJSON *rec[CTL_NSVC] = {NULL, NULL, NULL};
    enum run_state st;
    int code;

    if (!id)
        return CTL_USAGE;
    if (c->o.wait)
        return ctl_watch_run(c, id, CTL_EXTRACT);
    code = fetch_stages(c, id, rec);
    if (code != CTL_OK)
        goto out;
    st = run_state(rec);
    if (st == RUN_NONE) {
        code = ctl_err(CTL_NOT_FOUND, "no execution %s at extract, transform or aggregate", id);
        goto out;
    }
    code = st == RUN_FAILED ? CTL_FAILED : CTL_OK;
    if (c->o.json) {
        cJSON *doc = run_json(id, rec);
        ctl_print_json(doc);
        cJSON_Delete(doc);
        goto out;
    }
    for (int i = 0; i < CTL_NSVC; i++) {
        if (!rec[i])
            continue;
        printf("execution %s  job %s  window %s to %s  %s\n", id,
               ctl_or_dash(tf_json_str(rec[i], "job_name")),
               ctl_or_dash(tf_json_str(rec[i], "window_start")),
               ctl_or_dash(tf_json_str(rec[i], "window_end")), run_state_name[st]);
        break;
    }
    for (int i = 0; i < CTL_NSVC; i++) {
        char key[CTL_LINE_SIZE], text[CTL_LINE_SIZE];
        stage_line(rec, i, key, text, sizeof(text));
        printf("  %s\n", text);
        if (rec_status(rec[i]) == TF_EXEC_FAILED && tf_json_str(rec[i], "error"))
            printf("    error: %s\n", ctl_or_dash(tf_json_str(rec[i], "error")));
    }
out:
    for (int i = 0; i < CTL_NSVC; i++)
        cJSON_Delete(rec[i]);
    return code;
}

int ctl_cmd_replay(struct ctl *c)
{
    const char *id = execution_arg(c, "replay");
    enum ctl_svc stage = CTL_TRANSFORM;
    char body[128];
    cJSON *rec = NULL;
    int code;

    if (!id)
        return CTL_USAGE;
    if (c->o.stage && !ctl_parse_stage(c->o.stage, &stage))
        return CTL_USAGE;
    if (stage == CTL_EXTRACT)
        return ctl_err(CTL_USAGE, "extract is not replayed (it would call the vendor again): "
                                  "replay transform or aggregate, or run the job again");
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"replay\":true}", id);
    code = ctl_call(c, stage, "POST", "/v1/executions", body, &rec, NULL);
    if (code != CTL_OK)
        goto out;
    if (c->o.wait) {
        if (!c->o.json)
            printf("replay of %s for execution %s queued\n", ctl_svc_name[stage], id);
        code = ctl_watch_run(c, id, stage);
    } else if (c->o.json) {
        code = ctl_print_json(rec);
    } else {
        printf("replay of %s for execution %s queued (%s)\n", ctl_svc_name[stage], id,
               ctl_or_dash(tf_json_str(rec, "status")));
        printf("follow it: tickflowctl status %s --wait\n", id);
    }
out:
    cJSON_Delete(rec);
    return code;
}

int ctl_cmd_executions(struct ctl *c)
{
    enum ctl_svc stage = CTL_EXTRACT;
    struct tf_buf path;
    char *esc = NULL;
    cJSON *doc = NULL;
    const cJSON *it;
    long limit = 20;
    int code = CTL_OK;

    if (c->o.nargs)
        return ctl_err(CTL_USAGE, "executions takes options only (see --help)");
    if (c->o.stage && !ctl_parse_stage(c->o.stage, &stage))
        return CTL_USAGE;
    if (c->o.status && tf_exec_status_parse(c->o.status) == TF_EXEC_NO_STATUS)
        return ctl_err(CTL_USAGE, "--status is PENDING, RUNNING, SUCCESS, FAILED or ZOMBIE, not %s",
                       c->o.status);
    if (c->o.limit) {
        char *end = NULL;
        limit = strtol(c->o.limit, &end, 10);
        if (end == c->o.limit || *end || limit < 1 || limit > 1000)
            return ctl_err(CTL_USAGE, "--limit is a number from 1 to 1000, not %s", c->o.limit);
    }
    tf_buf_init(&path, 4096);
    if (tf_buf_printf(&path, "/v1/executions?limit=%ld", limit) != TF_OK)
        code = CTL_USAGE;
    if (code == CTL_OK && c->o.status && tf_buf_printf(&path, "&status=%s", c->o.status) != TF_OK)
        code = CTL_USAGE;
    if (code == CTL_OK && c->o.job) {
        esc = ctl_escape(c, c->o.job);
        if (!esc || tf_buf_printf(&path, "&job_name=%s", esc) != TF_OK)
            code = CTL_USAGE;
    }
    if (code != CTL_OK) {
        code = ctl_err(CTL_USAGE, "--job is too long");
        goto out;
    }
    code = ctl_read(c, stage, path.data, &doc);
    if (code != CTL_OK || !doc)
        goto out;
    printf("%-36s  %-20s  %-20s  %-8s  %7s  %9s  %9s  %8s  %s\n", "EXECUTION", "JOB",
           "WINDOW START", "STATUS", "ATTEMPT", "IN", "OUT", "REJECTED", "ELAPSED");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "executions"))
    {
        char in[24], out[24], rej[24], took[32] = "-";
        count_str(it, "records_in", in, sizeof(in));
        count_str(it, "records_out", out, sizeof(out));
        count_str(it, "records_rejected", rej, sizeof(rej));
        if (elapsed_ms(it) >= 0)
            ctl_fmt_duration(elapsed_ms(it), took, sizeof(took));
        printf("%-36s  %-20s  %-20s  %-8s  %7ld  %9s  %9s  %8s  %s\n",
               ctl_or_dash(tf_json_str(it, "execution_id")),
               ctl_or_dash(tf_json_str(it, "job_name")),
               ctl_or_dash(tf_json_str(it, "window_start")), ctl_or_dash(tf_json_str(it, "status")),
               tf_json_long(it, "attempt", 0), in, out, rej, took);
    }
out:
    curl_free(esc);
    cJSON_Delete(doc);
    tf_buf_cleanup(&path);
    return code;
}
