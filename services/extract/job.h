/*
 * tf/job.h - what a job configuration may contain: names that are safe in a
 * lake path, a Kafka key and SQL, tickers each provider can be asked for,
 * and bar sizes each provider serves.
 */
#ifndef TF_JOB_H
#define TF_JOB_H

#include <stddef.h>

#include "tf/exec.h" /* tf_job_name_valid: every stage's API checks the names it is given */
#include "tf/rc.h"

/** 1 for a provider tickflow speaks: "polygon" or "twelvedata". */
int tf_provider_known(const char *provider);

/**
 * Checks a ticker's syntax for a provider. Polygon: stocks (AAPL, BRK.A),
 * forex C:EURUSD, crypto X:BTCUSD. Twelve Data: stocks (AAPL, SBIN:NSE),
 * forex and crypto EUR/USD, BTC/USD. TF_ERR_INVALID with the reason in err.
 */
enum tf_rc tf_ticker_check(const char *provider, const char *ticker, char *err,
                           size_t errlen) TF_MUSTCHECK;

/**
 * Checks that a provider serves bars of multiplier x timespan ("minute",
 * "hour", "day"): Polygon any multiplier 1..1440; Twelve Data only its
 * intervals (1, 5, 15, 30, 45 minutes; 1, 2, 4 hours; 1 day).
 */
enum tf_rc tf_bar_check(const char *provider, long multiplier, const char *timespan, char *err,
                        size_t errlen) TF_MUSTCHECK;

#endif
