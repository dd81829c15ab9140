/*
 * check.c - the counters and the reporting behind check.h.
 */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>

int check_passed;
int check_failed;

void check_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    check_failed++;
    printf("not ok %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    fflush(stdout);
    return check_failed ? 1 : 0;
}
