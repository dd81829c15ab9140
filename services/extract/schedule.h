/*
 * schedule.h - extract's built-in schedule: a job may carry
 *   "schedule": {"every_seconds": N}
 * or
 *   "schedule": {"cron": "0,20,40 9-16 * * MON-FRI", "zone": "America/New_York"}
 * and extract starts an execution on the job's incremental window at each
 * tick, exactly one replica per tick (schedule.c, through PostgreSQL).
 *
 * cron.c reads the five-field expression and finds the next tick; it does
 * no I/O and needs only the zone database (tf/tz.h).
 */
#ifndef EXTRACT_SCHEDULE_H
#define EXTRACT_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tf/rc.h"
#include "tf/tz.h"

struct tf_exec_ids;

/*
 * A cron expression: minute hour day-of-month month day-of-week, each a
 * '*', a number, a range a-b or a list of those, with an optional /step;
 * months JAN-DEC and days SUN-SAT by name too (either case), day 7 is
 * Sunday as 0 is. When both day fields are restricted a day matches
 * either (classic cron); otherwise it must match both. The shorthands
 * @hourly, @daily (@midnight), @weekly, @monthly and @yearly (@annually)
 * stand for their five fields.
 */
struct extract_cron {
    uint64_t minute; /* bit m: minute m (0-59) */
    uint32_t hour;   /* bit h: hour h (0-23) */
    uint32_t mday;   /* bit d: day d of the month (1-31) */
    uint32_t month;  /* bit m: month m (1-12) */
    uint32_t wday;   /* bit w: weekday w (0 Sunday - 6 Saturday) */
    int mday_any;    /* the day-of-month field was '*' */
    int wday_any;    /* the day-of-week field was '*' */
};

/** How far ahead extract_cron_next looks: an expression with no tick in it never fires. */
#define EXTRACT_CRON_HORIZON_DAYS (5 * 366)

/**
 * Parses expr into *out. TF_ERR_INVALID with a message naming the field
 * and what is wrong with it ("cron field 2 (hour): 24 is outside 0-23").
 */
enum tf_rc extract_cron_parse(const char *expr, struct extract_cron *out, char *err,
                              size_t errlen) TF_MUSTCHECK;

/**
 * The first whole minute strictly after the UTC instant after at which
 * the wall clock of tz reads a time the expression matches, or -1 when
 * there is none within EXTRACT_CRON_HORIZON_DAYS. Local times are the
 * zone's: a time the spring-forward hour skips does not occur that day,
 * and one the fall-back hour repeats occurs twice.
 */
int64_t extract_cron_next(const struct extract_cron *c, const struct tf_tz *tz, int64_t after);

/* A job's schedule, as PUT /v1/jobs/{job} gives it. */
struct extract_schedule {
    long every_seconds; /* > 0: ticks at the multiples of it since the epoch */
    struct extract_cron cron;
    const struct tf_tz *tz; /* the cron's zone (UTC when none is given) */
};

/** The longest interval: the longest window one execution may cover (31 days). */
#define EXTRACT_SCHEDULE_MAX_SECONDS (31L * 86400)

/**
 * Checks spec (the "schedule" member of a job) strictly: an object with
 * either "every_seconds" (a whole number from the job's bar size, bar
 * seconds, to 31 days) or "cron" (a string extract_cron_parse accepts,
 * that fires within five years) and then optionally "zone" (an IANA zone
 * name the zone database has); no other member. TF_ERR_INVALID with a
 * message that says what to change.
 */
enum tf_rc extract_schedule_parse(const cJSON *spec, int64_t bar, struct extract_schedule *out,
                                  char *err, size_t errlen) TF_MUSTCHECK;

/** The first tick strictly after the instant after (-1: none, see extract_cron_next). */
int64_t extract_schedule_next(const struct extract_schedule *s, int64_t after);

/**
 * One round of the scheduler (schedule.c): in one transaction, takes the
 * enabled jobs whose next tick is due at now (rows another replica holds
 * are skipped, so each tick is taken once), and for each starts an
 * execution on its incremental window, unless the job has no complete bar
 * to fetch yet; ticks missed while no replica ran count as one. A job whose
 * last scheduled execution is still in flight (a stage PENDING, RUNNING or
 * ZOMBIE) is left due until that execution ends. The new ids go to
 * *started (cleared first) once the transaction committed, for the caller
 * to queue. Returns how many jobs it took, or -1 when the database failed
 * (nothing changed then).
 */
int extract_schedule_round(PGconn *conn, int64_t now, struct tf_exec_ids *started);

#endif
