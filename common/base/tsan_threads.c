/*
 * tsan_threads.c - ISO C threads (threads.h) on top of POSIX threads, in
 * ThreadSanitizer builds only; empty otherwise.
 *
 * librdkafka starts its threads with thrd_create and locks with mtx_* and
 * cnd_*, which glibc implements without going through the pthread entry
 * points that ThreadSanitizer intercepts (GCC 12's runtime has no C11
 * interceptors). A thread it does not see crashes the runtime at its first
 * malloc, and locks it does not see hide the order between librdkafka's
 * threads and our callbacks. Defined here, in the executable, these names
 * take precedence over glibc's for librdkafka, and each forwards to the
 * intercepted pthread call. The Makefile pulls this file into TSan links
 * (-Wl,-u,thrd_create).
 */
#if defined(__SANITIZE_THREAD__)

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) >= sizeof(pthread_mutex_t), "mtx_t holds a pthread mutex");
_Static_assert(sizeof(cnd_t) >= sizeof(pthread_cond_t), "cnd_t holds a pthread condition");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");

struct start {
    thrd_start_t func;
    void *arg;
};

static int thrd_rc(int err)
{
    if (err == 0)
        return thrd_success;
    if (err == ENOMEM || err == EAGAIN)
        return thrd_nomem;
    if (err == ETIMEDOUT)
        return thrd_timedout;
    if (err == EBUSY)
        return thrd_busy;
    return thrd_error;
}

static void *trampoline(void *p)
{
    struct start s = *(struct start *)p;

    free(p);
    return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    struct start *s = malloc(sizeof(*s));
    pthread_t t;
    int err;

    if (!s)
        return thrd_nomem;
    s->func = func;
    s->arg = arg;
    err = pthread_create(&t, NULL, trampoline, s);
    if (err != 0) {
        free(s);
        return thrd_rc(err);
    }
    *thr = (thrd_t)t;
    return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
    void *ret = NULL;
    int err = pthread_join((pthread_t)thr, &ret);

    if (err == 0 && res)
        *res = (int)(intptr_t)ret;
    return thrd_rc(err);
}

int thrd_detach(thrd_t thr)
{
    return thrd_rc(pthread_detach((pthread_t)thr));
}

int mtx_init(mtx_t *mtx, int type)
{
    pthread_mutexattr_t attr;
    int err;

    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    err = pthread_mutex_init((pthread_mutex_t *)mtx, &attr);
    pthread_mutexattr_destroy(&attr);
    return thrd_rc(err);
}

int mtx_lock(mtx_t *mtx)
{
    return thrd_rc(pthread_mutex_lock((pthread_mutex_t *)mtx));
}

int mtx_trylock(mtx_t *mtx)
{
    return thrd_rc(pthread_mutex_trylock((pthread_mutex_t *)mtx));
}

int mtx_timedlock(mtx_t *restrict mtx, const struct timespec *restrict ts)
{
    return thrd_rc(pthread_mutex_timedlock((pthread_mutex_t *)mtx, ts));
}

int mtx_unlock(mtx_t *mtx)
{
    return thrd_rc(pthread_mutex_unlock((pthread_mutex_t *)mtx));
}

void mtx_destroy(mtx_t *mtx)
{
    pthread_mutex_destroy((pthread_mutex_t *)mtx);
}

int cnd_init(cnd_t *cond)
{
    return thrd_rc(pthread_cond_init((pthread_cond_t *)cond, NULL));
}

int cnd_signal(cnd_t *cond)
{
    return thrd_rc(pthread_cond_signal((pthread_cond_t *)cond));
}

int cnd_broadcast(cnd_t *cond)
{
    return thrd_rc(pthread_cond_broadcast((pthread_cond_t *)cond));
}

int cnd_wait(cnd_t *cond, mtx_t *mtx)
{
    return thrd_rc(pthread_cond_wait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx));
}

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mtx, const struct timespec *restrict ts)
{
    return thrd_rc(pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx, ts));
}

void cnd_destroy(cnd_t *cond)
{
    pthread_cond_destroy((pthread_cond_t *)cond);
}

void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}

#else
/* ISO C forbids an empty translation unit. */
typedef int tf_tsan_threads_unused;
#endif
