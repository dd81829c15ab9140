/*
 * check.h - a page of test macros (Redis testhelp.h, curl fail_unless).
 *
 * Each failed check prints "not ok file:line: message" and is counted; a
 * test binary ends with `return check_summary();`, which prints
 * "N passed, N failed" alone on a line and returns the exit code.
 */
#ifndef TF_CHECK_H
#define TF_CHECK_H

#include <string.h>

#include "tf/rc.h"

extern int check_passed;
extern int check_failed;

/** Counts a failure and prints "not ok file:line: <message>". */
void check_fail(const char *file, int line, const char *fmt, ...) TF_PRINTF(3, 4);

/** Prints "N passed, N failed"; returns 0 when nothing failed, 1 otherwise. */
int check_summary(void);

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond)                                                                                  \
            check_passed++;                                                                        \
        else                                                                                       \
            check_fail(__FILE__, __LINE__, __VA_ARGS__);                                           \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        CHECK(check_a_ == check_b_, "%s == %s: %lld != %lld", #a, #b, check_a_, check_b_);         \
    } while (0)

/* Exact comparison: the values must be the very same double. */
#define CHECK_EQ_DBL(a, b)                                                                         \
    do {                                                                                           \
        double check_a_ = (a), check_b_ = (b);                                                     \
        CHECK(check_a_ == check_b_, "%s == %s: %.17g != %.17g", #a, #b, check_a_, check_b_);       \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        CHECK(check_a_ &&check_b_ &&strcmp(check_a_, check_b_) == 0, "%s == %s: \"%s\" != \"%s\"", \
              #a, #b, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");             \
    } while (0)

#endif
