/*
 * ctl.h - what tickflowctl's files share: the exit codes, the settings of
 * one invocation (service addresses, token, output mode), the HTTP client
 * (http.c), the output helpers (out.c) and the commands (cmd_*.c).
 */
#ifndef TF_CTL_H
#define TF_CTL_H

#include <signal.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "tf/rc.h"

/* Exit codes a script can trust (README, tickflowctl --help). */
enum ctl_exit {
    CTL_OK = 0,            /* done; a run or backfill that ended SUCCESS */
    CTL_FAILED = 1,        /* a run, replay or backfill that ended FAILED */
    CTL_USAGE = 2,         /* bad input: usage, a bad date, or a 4xx other than 404 */
    CTL_NOT_FOUND = 3,     /* no such execution, job or backfill (404) */
    CTL_UNREACHABLE = 4,   /* a service did not answer (refused, timed out, no such host) */
    CTL_SERVER = 5,        /* a service answered 5xx or something that is not its API */
    CTL_INTERRUPTED = 130, /* Ctrl-C while watching: the work goes on on the server */
};

/* The three stage services, in pipeline order. */
enum ctl_svc { CTL_EXTRACT, CTL_TRANSFORM, CTL_AGGREGATE, CTL_NSVC };

/* The parsed options of one invocation (main.c fills it). */
struct ctl_opts {
    const char *from, *to, *job, *status, *stage, *limit, *concurrency, *id;
    int wait, json, detach, fresh;
    const char *args[4]; /* positional arguments after the command */
    int nargs;
};

struct ctl {
    char url[CTL_NSVC][512]; /* without a trailing slash */
    char *token;             /* NULL: mutating calls go without Authorization */
    long timeout_ms;         /* one request's limit */
    int tty;                 /* stdout is a terminal: progress redraws its lines */
    CURL *curl;
    struct ctl_opts o;
};

/* Set by SIGINT (main.c); the watch loops and transfers stop on it. */
extern volatile sig_atomic_t ctl_interrupted;

extern const char *const ctl_svc_name[CTL_NSVC];

/* ---- http.c ---- */

/** One answer: the status (0 when none came) and the body parsed (NULL if not JSON). */
struct ctl_resp {
    long status;
    cJSON *json;
    char err[256]; /* why no answer came, for the message */
    CURLcode curl_rc;
};

/**
 * Sends method path (already escaped; body JSON text or NULL) to service
 * svc, with the token on anything but GET. Returns CTL_OK when an answer
 * came (any status: see resp->status), CTL_UNREACHABLE when none did, or
 * CTL_INTERRUPTED. resp->json is the caller's to delete (ctl_resp_cleanup).
 */
int ctl_request(struct ctl *c, enum ctl_svc svc, const char *method, const char *path,
                const char *body, struct ctl_resp *resp);

void ctl_resp_cleanup(struct ctl_resp *resp);

/**
 * ctl_request that wants a 2xx answer with a JSON body: returns CTL_OK and
 * the parsed body in *out (the caller deletes it), or prints one line on
 * stderr (the service, the status, the API's message) and returns the exit
 * code of the failure class. *status (may be NULL) gets the HTTP status.
 */
int ctl_call(struct ctl *c, enum ctl_svc svc, const char *method, const char *path,
             const char *body, cJSON **out, long *status);

/**
 * GET path at svc as ctl_call does; with --json the answer is printed as it
 * came and *out is NULL, otherwise *out is the answer for the caller to show
 * (and delete). Returns the exit code.
 */
int ctl_read(struct ctl *c, enum ctl_svc svc, const char *path, cJSON **out);

/** Says that svc gave no answer (resp says why); returns CTL_UNREACHABLE. */
int ctl_unreachable(const struct ctl *c, enum ctl_svc svc, const struct ctl_resp *resp);

/** The exit code of an answer that is not 2xx (404 -> CTL_NOT_FOUND). */
int ctl_status_exit(long status);

/** The API's error message of an error body, or "" when it has none. */
const char *ctl_error_message(const cJSON *body);

/** s %-escaped for a query string: a new string (curl_free), NULL on failure. */
char *ctl_escape(struct ctl *c, const char *s);

/* ---- out.c ---- */

/** Prints "tickflowctl: <message>" on stderr; returns code. */
int ctl_err(int code, const char *fmt, ...) TF_PRINTF(2, 3);

/** s, or "-" when it is NULL (a member absent from an answer). */
const char *ctl_or_dash(const char *s);

/** Prints json on stdout, indented, as one document; returns CTL_OK. */
int ctl_print_json(const cJSON *json);

/** A duration in milliseconds as "850ms", "12.4s", "3m04s" or "2h05m" into out. */
void ctl_fmt_duration(int64_t ms, char *out, size_t outlen);

/** An API time ("2024-03-04T14:30:00.123Z") as Unix milliseconds; -1 when absent or bad. */
int64_t ctl_time_ms(const char *s);

/** Unix milliseconds now. */
int64_t ctl_now_ms(void);

/** Sleeps up to ms, returning early (1) on SIGINT. */
int ctl_sleep_ms(int ms);

/*
 * Lines that show progress: on a terminal, redrawn in place every tick; when
 * piped, a line is printed only when its text (less what changes on its own,
 * such as elapsed time) changes.
 */
#define CTL_LIVE_MAX  4
#define CTL_LINE_SIZE 256
struct ctl_live {
    int tty;
    int n;     /* lines in use */
    int drawn; /* lines on the terminal to move back over */
    char key[CTL_LIVE_MAX][CTL_LINE_SIZE];
    char text[CTL_LIVE_MAX][CTL_LINE_SIZE];
};

void ctl_live_init(struct ctl_live *lv, int tty, int nlines);

/** Sets line i: key is what counts as a change, text what is shown. */
void ctl_live_set(struct ctl_live *lv, int i, const char *key, const char *text);

/** Shows the lines (redraws on a terminal; prints changed ones when piped). */
void ctl_live_show(struct ctl_live *lv);

/** Ends the live area: the cursor moves below it. */
void ctl_live_end(struct ctl_live *lv);

/**
 * Ends a watch's live area; after Ctrl-C (code CTL_INTERRUPTED) says that
 * what goes on and the command (again) that watches it again. Returns code.
 */
int ctl_watch_end(struct ctl_live *lv, int code, const char *what, const char *again);

/* ---- commands (cmd_run.c, cmd_backfill.c, cmd_jobs.c) ---- */

int ctl_cmd_run(struct ctl *c);
int ctl_cmd_status(struct ctl *c);
int ctl_cmd_replay(struct ctl *c);
int ctl_cmd_executions(struct ctl *c);
int ctl_cmd_backfill(struct ctl *c);
int ctl_cmd_jobs(struct ctl *c);
int ctl_cmd_gaps(struct ctl *c);
int ctl_cmd_quality(struct ctl *c);

/**
 * Checks that s is a time the API takes ("2024-03-04" or
 * "2024-03-04T14:30:00Z"), or with date_only a plain day; prints a line
 * naming opt and returns 0 when it is not.
 */
int ctl_check_time(const char *opt, const char *s, int date_only);

/** The stage named s into *svc; prints a line and returns 0 when s names none. */
int ctl_parse_stage(const char *s, enum ctl_svc *svc);

/**
 * Follows execution id from stage first on until it is final, with live
 * lines (or, with --json, one document at the end). Returns CTL_OK
 * (SUCCESS), CTL_FAILED, CTL_INTERRUPTED or a request's failure code.
 */
int ctl_watch_run(struct ctl *c, const char *id, enum ctl_svc first);

#endif
