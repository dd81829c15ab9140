/*
 * main.c - tickflowctl: the command line of tickflow. Reads the options
 * and settings (flags, then the environment, then the demo's defaults),
 * the API token, and runs one command (cmd_*.c) whose exit code it returns.
 */
#include "ctl.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf/time.h"

#define DEFAULT_TIMEOUT_S 10
#define MAX_TOKEN         4096

volatile sig_atomic_t ctl_interrupted;

const char *const ctl_svc_name[CTL_NSVC] = {"extract", "transform", "aggregate"};

static const char *const url_env[CTL_NSVC] = {"TICKFLOW_EXTRACT_URL", "TICKFLOW_TRANSFORM_URL",
                                              "TICKFLOW_AGGREGATE_URL"};
static const char *const url_default[CTL_NSVC] = {"http://localhost:8081", "http://localhost:8082",
                                                  "http://localhost:8083"};

/* clang-format off */
static const char global_help[] =
    "usage: tickflowctl [options] COMMAND [ARGS] [--json] [--help]\n"
    "\n"
    "Runs and watches tickflow's pipeline through the stage services' HTTP API.\n"
    "\n"
    "commands:\n"
    "  run JOB [--from T --to T] [--wait]    start an execution; --wait shows each stage live\n"
    "  backfill JOB --from D --to D [--concurrency N]\n"
    "                                        one execution per day, with a progress bar;\n"
    "                                        the same command again reattaches, never duplicates\n"
    "  backfill watch ID                     reattach to a backfill\n"
    "  status ID [--wait]                    the three stages of an execution\n"
    "  executions [--job J --status S --limit N --stage S]\n"
    "                                        the latest executions, newest first\n"
    "  jobs list | get JOB | put JOB FILE    job configurations (no delete: see jobs --help)\n"
    "  gaps JOB --from D --to D              windows no successful execution covers\n"
    "  quality ID                            completeness and data-quality results\n"
    "  replay ID [--stage transform|aggregate] [--wait]\n"
    "                                        rebuild a stage from what the one before stored\n"
    "\n"
    "options (any command):\n"
    "  --json               machine output: one JSON document on stdout, no progress\n"
    "  --extract URL        extract's address     (TICKFLOW_EXTRACT_URL, http://localhost:8081)\n"
    "  --transform URL      transform's address   (TICKFLOW_TRANSFORM_URL, http://localhost:8082)\n"
    "  --aggregate URL      aggregate's address   (TICKFLOW_AGGREGATE_URL, http://localhost:8083)\n"
    "  --token-file FILE    the API token, sent as a bearer token on POST and PUT\n"
    "                       (else TICKFLOW_API_TOKEN, else the file TICKFLOW_API_TOKEN_FILE)\n"
    "  --timeout SECONDS    time limit of each request (default 10)\n"
    "  --help               help on tickflowctl or on a command\n"
    "\n"
    "Times are 2024-03-04 (UTC midnight) or 2024-03-04T14:30:00Z; D is a day.\n"
    "\n"
    "exit codes:\n"
    "  0    success (a run, replay or backfill that ended SUCCESS)\n"
    "  1    a run, replay or backfill ended FAILED (status: a stage FAILED)\n"
    "  2    bad input: usage, a bad date, or the API refused the request (4xx but 404)\n"
    "  3    not found: no such execution, job or backfill (404)\n"
    "  4    a service is unreachable: connection refused, timed out, unknown host\n"
    "  5    a service failed (5xx) or answered something that is not tickflow's API\n"
    "  130  interrupted (Ctrl-C) while watching; the work goes on, the message says how to\n"
    "       watch it again\n";
/* clang-format on */

struct cmd {
    const char *name;
    int (*fn)(struct ctl *c);
    const char *opts; /* the command's own options, each between spaces */
    const char *help;
};

/* clang-format off */
static const struct cmd cmds[] = {
    {"run", ctl_cmd_run, " from to wait id ",
     "usage: tickflowctl run JOB [--from T --to T] [--wait] [--id UUID] [--json]\n"
     "\n"
     "Starts an execution of JOB at extract (POST /v1/executions). Without --from and\n"
     "--to, extract takes the job's next incremental window. Prints the execution id.\n"
     "\n"
     "  --from T, --to T   the window [from, to): 2024-03-04T14:30:00Z or 2024-03-04\n"
     "  --wait             follow the three stages until the run is final: one line per\n"
     "                     stage (status, records in/out/rejected, elapsed), redrawn on a\n"
     "                     terminal, printed when it changes when piped\n"
     "  --id UUID          the execution id to use (default: a new one); the same id\n"
     "                     again answers with the existing execution\n"
     "  --json             print the records (with --wait: once final) as JSON\n"
     "\n"
     "exit: 0 started (with --wait: SUCCESS), 1 FAILED, 2 bad input, 3 unknown job,\n"
     "4 unreachable, 130 Ctrl-C while waiting (the run goes on)\n"},
    {"backfill", ctl_cmd_backfill, " from to concurrency detach new ",
     "usage: tickflowctl backfill JOB --from D --to D [--concurrency N] [--detach] [--new]\n"
     "       tickflowctl backfill watch ID\n"
     "\n"
     "Starts a backfill of JOB (POST /v1/backfills): one execution per UTC day from D to D,\n"
     "both included, at most N (default 2) in flight. Then shows a progress bar over the\n"
     "days and stages with an ETA until every day is final.\n"
     "\n"
     "The backfill's id is derived from JOB, from and to, so running the same command\n"
     "again reattaches to the backfill it started (finished or not) and never creates\n"
     "executions twice; --new starts a fresh one of the same range instead.\n"
     "Ctrl-C stops watching only: the backfill goes on, and\n"
     "`tickflowctl backfill watch ID` reattaches.\n"
     "\n"
     "  --from D, --to D   days such as 2024-03-04, before today (UTC)\n"
     "  --concurrency N    days in flight at once, 1 to 32 (only when it is created)\n"
     "  --detach           start it and return without watching\n"
     "  --new              a new backfill even if this range has one\n"
     "  --json             print the backfill as JSON once final (with --detach: at once)\n"
     "\n"
     "exit: 0 SUCCESS (--detach: started), 1 FAILED, 2 bad input, 3 unknown job or\n"
     "backfill, 4 unreachable, 130 Ctrl-C (the backfill goes on)\n"},
    {"status", ctl_cmd_status, " wait ",
     "usage: tickflowctl status ID [--wait] [--json]\n"
     "\n"
     "The execution's three stage records (GET /v1/executions/{id} at extract, transform\n"
     "and aggregate): status, attempt, window, records in/out/rejected, elapsed, error.\n"
     "\n"
     "  --wait   follow it until it is final, as run --wait does\n"
     "  --json   {\"execution_id\", \"status\", \"extract\", \"transform\", \"aggregate\"}, a\n"
     "           stage with no record yet as null\n"
     "\n"
     "exit: 0 SUCCESS or still running, 1 a stage FAILED, 2 not a UUID, 3 unknown id,\n"
     "4 unreachable\n"},
    {"executions", ctl_cmd_executions, " job status limit stage ",
     "usage: tickflowctl executions [--job J] [--status S] [--limit N] [--stage S] [--json]\n"
     "\n"
     "The latest records of one stage (GET /v1/executions), newest first.\n"
     "\n"
     "  --job J       only this job's\n"
     "  --status S    PENDING, RUNNING, SUCCESS, FAILED or ZOMBIE\n"
     "  --limit N     how many, 1 to 1000 (default 20)\n"
     "  --stage S     extract (default), transform or aggregate\n"
     "  --json        the API's document: {\"executions\": [...]}\n"},
    {"jobs", ctl_cmd_jobs, " ",
     "usage: tickflowctl jobs list [--json]\n"
     "       tickflowctl jobs get JOB [--json]\n"
     "       tickflowctl jobs put JOB FILE     (FILE - reads stdin)\n"
     "\n"
     "Job configurations at extract: list them, show one, create or replace one from a\n"
     "JSON file (PUT /v1/jobs/{job}; the API checks every field and says what is wrong).\n"
     "There is no delete: the API has no DELETE for jobs. To stop a job, put it again\n"
     "with \"enabled\": false.\n"},
    {"gaps", ctl_cmd_gaps, " from to stage ",
     "usage: tickflowctl gaps JOB --from D --to D [--stage S] [--json]\n"
     "\n"
     "The windows in [from, to) that no successful execution of JOB covers\n"
     "(GET /v1/jobs/{job}/gaps), by default through aggregate.\n"
     "\n"
     "  --from D, --to D   2024-03-04 or 2024-03-04T14:30:00Z\n"
     "  --stage S          extract, transform or aggregate (default)\n"},
    {"quality", ctl_cmd_quality, " ",
     "usage: tickflowctl quality ID [--json]\n"
     "\n"
     "What aggregate's checks found for an execution (GET /v1/executions/{id}/quality):\n"
     "completeness per ticker and each data-quality rule's result with its alert.\n"},
    {"replay", ctl_cmd_replay, " stage wait ",
     "usage: tickflowctl replay ID [--stage transform|aggregate] [--wait] [--json]\n"
     "\n"
     "Runs a finished stage of an execution again as a new attempt, from what the stage\n"
     "before it stored (transform: the bronze objects), without calling the vendor.\n"
     "\n"
     "  --stage S   transform (default; aggregate then follows) or aggregate\n"
     "  --wait      follow the stages until final\n"
     "\n"
     "exit: 0 queued (with --wait: SUCCESS), 1 FAILED, 2 refused (409: running, or the\n"
     "stage before did not succeed), 3 unknown id, 4 unreachable\n"},
};
/* clang-format on */

static void on_sigint(int sig)
{
    (void)sig;
    ctl_interrupted = 1;
}

/* Reads the token from path (trailing white space dropped); NULL after a message. */
static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    char *tok = NULL;
    size_t n;

    if (!f) {
        ctl_err(CTL_USAGE, "cannot read the token file %s", path);
        return NULL;
    }
    tok = calloc(1, MAX_TOKEN + 1);
    n = tok ? fread(tok, 1, MAX_TOKEN + 1, f) : 0;
    fclose(f);
    if (!tok || n > MAX_TOKEN) {
        ctl_err(CTL_USAGE, "the token file %s is over %d bytes", path, MAX_TOKEN);
        free(tok);
        return NULL;
    }
    while (n &&
           (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        tok[--n] = '\0';
    if (!n || strpbrk(tok, "\r\n")) {
        ctl_err(CTL_USAGE, "the token file %s must hold one token on one line", path);
        free(tok);
        return NULL;
    }
    return tok;
}

static int set_url(struct ctl *c, enum ctl_svc svc, const char *url)
{
    size_t n = strlen(url);

    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return ctl_err(CTL_USAGE, "the %s address must start with http:// or https://: %s",
                       ctl_svc_name[svc], url);
    while (n && url[n - 1] == '/')
        n--;
    if (n >= sizeof(c->url[svc]))
        return ctl_err(CTL_USAGE, "the %s address is too long", ctl_svc_name[svc]);
    memcpy(c->url[svc], url, n);
    c->url[svc][n] = '\0';
    return CTL_OK;
}

/* Does the command take option name (" from ", ...)? */
static int takes(const struct cmd *cmd, const char *name)
{
    const char *p = cmd ? strstr(cmd->opts, name) : NULL;
    size_t n = strlen(name);

    return p && p[-1] == ' ' && p[n] == ' ';
}

static const struct cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < TF_ARRAY_LEN(cmds); i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

/* The command's options with a value, and where each goes. */
static const char **value_slot(struct ctl_opts *o, const char *name)
{
    static const char *const names[] = {"from",  "to",          "job", "status",
                                        "stage", "concurrency", "id",  "limit"};
    const char **slots[] = {&o->from,  &o->to,          &o->job, &o->status,
                            &o->stage, &o->concurrency, &o->id,  &o->limit};

    for (size_t i = 0; i < TF_ARRAY_LEN(names); i++)
        if (strcmp(names[i], name) == 0)
            return slots[i];
    return NULL;
}

int main(int argc, char **argv)
{
    struct ctl c;
    const struct cmd *cmd = NULL;
    const char *cmd_name = NULL;
    const char *url_flag[CTL_NSVC] = {NULL, NULL, NULL};
    const char *token_file = NULL;
    const char *timeout = NULL;
    struct sigaction sa;
    int help = 0;
    int code = CTL_OK;

    memset(&c, 0, sizeof(c));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char name[32];
        const char *value = NULL;
        const char *eq;
        const char **slot;
        int is_global;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (!cmd_name) {
                cmd_name = a;
                cmd = find_cmd(a);
                if (!cmd)
                    return ctl_err(CTL_USAGE, "unknown command %s (see tickflowctl --help)", a);
            } else if (c.o.nargs < (int)TF_ARRAY_LEN(c.o.args)) {
                c.o.args[c.o.nargs++] = a;
            } else {
                return ctl_err(CTL_USAGE, "too many arguments for %s (see tickflowctl %s --help)",
                               cmd_name, cmd_name);
            }
            continue;
        }
        eq = strchr(a, '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - a - 2) : strlen(a + 2)),
                 a + 2);
        is_global = strcmp(name, "extract") == 0 || strcmp(name, "transform") == 0 ||
                    strcmp(name, "aggregate") == 0 || strcmp(name, "token-file") == 0 ||
                    strcmp(name, "timeout") == 0;
        slot = is_global ? NULL : value_slot(&c.o, name);
        if (is_global || slot) {
            if (!is_global && !takes(cmd, name))
                return ctl_err(CTL_USAGE, "%s takes no --%s (see tickflowctl %s --help)",
                               cmd_name ? cmd_name : "tickflowctl", name, cmd_name ? cmd_name : "");
            value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!value || !*value)
                return ctl_err(CTL_USAGE, "--%s needs a value", name);
            if (slot)
                *slot = value;
            else if (strcmp(name, "token-file") == 0)
                token_file = value;
            else if (strcmp(name, "timeout") == 0)
                timeout = value;
            else
                url_flag[name[0] == 'e'   ? CTL_EXTRACT
                         : name[0] == 't' ? CTL_TRANSFORM
                                          : CTL_AGGREGATE] = value;
            continue;
        }
        if (eq)
            return ctl_err(CTL_USAGE, "--%s takes no value", name);
        if (strcmp(name, "json") == 0) {
            c.o.json = 1;
        } else if (strcmp(name, "wait") == 0 && takes(cmd, name)) {
            c.o.wait = 1;
        } else if (strcmp(name, "detach") == 0 && takes(cmd, name)) {
            c.o.detach = 1;
        } else if (strcmp(name, "new") == 0 && takes(cmd, name)) {
            c.o.fresh = 1;
        } else {
            return ctl_err(CTL_USAGE, "unknown option %s%s%s (see tickflowctl %s%s--help)", a,
                           cmd_name ? " for " : "", cmd_name ? cmd_name : "",
                           cmd_name ? cmd_name : "", cmd_name ? " " : "");
        }
    }
    if (help || !cmd) {
        fputs(cmd ? cmd->help : global_help, help ? stdout : stderr);
        return help ? CTL_OK : CTL_USAGE;
    }
    for (int s = 0; s < CTL_NSVC; s++) {
        const char *url = url_flag[s] ? url_flag[s] : getenv(url_env[s]);
        code = set_url(&c, (enum ctl_svc)s, url && *url ? url : url_default[s]);
        if (code != CTL_OK)
            return code;
    }
    c.timeout_ms = DEFAULT_TIMEOUT_S * 1000L;
    if (timeout) {
        char *end = NULL;
        double s = strtod(timeout, &end);
        if (end == timeout || *end || !(s >= 0.1 && s <= 3600))
            return ctl_err(CTL_USAGE, "--timeout is seconds from 0.1 to 3600, not %s", timeout);
        c.timeout_ms = (long)(s * 1000);
    }
    if (!token_file && getenv("TICKFLOW_API_TOKEN") && *getenv("TICKFLOW_API_TOKEN")) {
        c.token = strdup(getenv("TICKFLOW_API_TOKEN"));
    } else {
        if (!token_file && getenv("TICKFLOW_API_TOKEN_FILE") && *getenv("TICKFLOW_API_TOKEN_FILE"))
            token_file = getenv("TICKFLOW_API_TOKEN_FILE");
        if (token_file) {
            c.token = read_token(token_file);
            if (!c.token)
                return CTL_USAGE;
        }
    }
    c.tty = isatty(STDOUT_FILENO) && !(getenv("TERM") && strcmp(getenv("TERM"), "dumb") == 0);
    /* Ctrl-C stops watching; a second one ends the program at once. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(c.token);
        return ctl_err(CTL_SERVER, "cannot start libcurl");
    }
    c.curl = curl_easy_init();
    if (!c.curl)
        code = ctl_err(CTL_SERVER, "cannot start libcurl");
    else
        code = cmd->fn(&c);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    if (c.token) {
        memset(c.token, 0, strlen(c.token));
        free(c.token);
    }
    fflush(stdout);
    return code;
}

int ctl_check_time(const char *opt, const char *s, int date_only)
{
    int64_t t = 0;

    if (!s) {
        ctl_err(CTL_USAGE, "%s is required", opt);
        return 0;
    }
    if ((date_only && strlen(s) != 10) || tf_time_parse(s, &t) != TF_OK) {
        ctl_err(CTL_USAGE, "%s %s is not a %s", opt, s,
                date_only ? "day such as 2024-03-04"
                          : "time such as 2024-03-04T14:30:00Z or 2024-03-04");
        return 0;
    }
    return 1;
}

int ctl_parse_stage(const char *s, enum ctl_svc *svc)
{
    for (int i = 0; i < CTL_NSVC; i++)
        if (strcmp(s, ctl_svc_name[i]) == 0) {
            *svc = (enum ctl_svc)i;
            return 1;
        }
    ctl_err(CTL_USAGE, "--stage is extract, transform or aggregate, not %s", s);
    return 0;
}
