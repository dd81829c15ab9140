/*
 * console.h - the web console extract serves: its files (compiled in by
 * tools/embed-ui.sh from services/extract/ui/ and the vendored chart
 * library) and the read-only routes it asks for (console.c, console_days.c).
 */
#ifndef EXTRACT_CONSOLE_H
#define EXTRACT_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "tf/svc.h"

/** One file of the console, served at /ui/<path>. */
struct extract_asset {
    const char *path; /* "index.html", "vendor/lightweight-charts.js" */
    const unsigned char *data;
    size_t len;
};

/* The generated table (BUILD/gen/ui_assets.c). */
extern const struct extract_asset extract_ui_assets[];
extern const size_t extract_ui_nassets;

/** The Content-Type of a console file, from its name's suffix. */
const char *extract_ui_content_type(const char *path);

/**
 * GET /ui/ and its files, /v1/runs, /v1/runs/{id}, /v1/runs/{id}/rejects,
 * /v1/runs/{id}/quality, /v1/jobs/{job}/bars and /v1/jobs/{job}/days.
 * Returns 1 when it answered.
 */
int extract_console_route(struct tf_svc *svc, struct tf_http_req *req, PGconn *conn);

/** GET /ui/ and its files, compiled in: no database needed. 1 when answered. */
int extract_ui_route(struct tf_svc *svc, struct tf_http_req *req);

/** GET /v1/jobs/{job}/days (console_days.c); job is a valid name. */
void extract_console_days(struct tf_http_req *req, PGconn *conn, const char *job);

/** What a UTC day of a job's calendar shows. */
enum extract_day_state {
    EXTRACT_DAY_CLOSED,  /* no market of the job's tickers is open that day */
    EXTRACT_DAY_GAP,     /* open, and no successful window covers any of it */
    EXTRACT_DAY_PARTIAL, /* some of its open minutes are covered */
    EXTRACT_DAY_COVERED, /* every open minute is covered */
};

/** "closed", "gap", "partial" or "covered". */
const char *extract_day_state_name(enum extract_day_state st);

/** Which markets a job trades: bit 1 << enum tf_market for each. */
#define EXTRACT_MARKET_BIT(m) (1u << (unsigned)(m))

/**
 * The state of the UTC day `day` (days since 1970-01-01) for a job whose
 * tickers trade in markets (EXTRACT_MARKET_BIT set), given the covered
 * time as sorted, disjoint [start, end) ranges of epoch seconds
 * (cover[2k], cover[2k + 1]; ncover ranges). A minute counts as covered
 * when it starts inside a range. Minutes that start at or after until
 * (epoch seconds: now) have not happened and do not count, so today is
 * judged on its past minutes, and a day still to come is closed.
 * *open_min and *covered_min (either may be NULL) get the day's open and
 * covered minutes. No I/O.
 */
enum extract_day_state extract_day_state(int64_t day, unsigned markets, const int64_t *cover,
                                         size_t ncover, int64_t until, int *open_min,
                                         int *covered_min);

#endif
