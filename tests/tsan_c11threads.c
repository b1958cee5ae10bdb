/*
 * tsan_c11threads.c -- C11 threads on the pthread calls ThreadSanitizer sees.
 *
 * Linked only into the SANITIZER=thread binaries (the Makefile), never into
 * a release. librdkafka (Debian's, built with C11 threads) starts its threads
 * with thrd_create and locks with mtx_lock/cnd_wait; glibc >= 2.34 implements
 * those with internal calls that the TSan runtimes here (GCC 12, LLVM 14) do
 * not intercept. A thread TSan never saw start crashes in its allocator on
 * its first malloc (SIGSEGV in SizeClassAllocator64LocalCache::Allocate from
 * an rdk:broker thread), and locks it never saw would be missing
 * happens-before edges. These definitions interpose on glibc's (the
 * executable's symbols win over libc.so's for librdkafka's references) and do
 * the same thing through pthread_create, pthread_mutex_lock, ... which TSan
 * intercepts. glibc's C11 types are its pthread types (thrd_t is pthread_t;
 * mtx_t and cnd_t have the pthread layout), as glibc's own thrd_create.c
 * and mtx_init.c rely on.
 *
 * A mutex or condition variable of librdkafka's is born in one of its threads
 * and used in others once librdkafka hands the object over, through its
 * atomics and rwlocks, which TSan does not see (uninstrumented code; the
 * rwlocks are called from the library, tests/tsan.supp). Seen from here, the
 * init in one thread and the first lock in another are unordered (seen in
 * `make tsan`: pthread_mutex_init in librdkafka's main thread, on a 1048-byte
 * object it had just allocated, against pthread_mutex_lock in the relay's
 * thread inside rd_kafka_producev). So
 * each object's life is ordered on its own address: its init releases, and
 * every use and its destroy acquire first (__tsan_release/__tsan_acquire:
 * nothing can use an object before its creator published it, nor destroy
 * it before its last user let go). These are the edges librdkafka's
 * hand-over makes anyway; they could hide only a race between what a
 * librdkafka thread did before creating such an object and what another
 * thread does after first using it.
 *
 * Not covered, because nothing we link uses them: tss_* (thread-specific
 * storage needs no happens-before) and mtx_timedlock.
 */
#include <errno.h>
#include <pthread.h>
#include <sanitizer/tsan_interface.h>
#include <stdint.h>
#include <threads.h>

#include "cs_mem.h"

static int map(int e)
{
    return e == 0           ? thrd_success
           : e == ENOMEM    ? thrd_nomem
           : e == ETIMEDOUT ? thrd_timedout
           : e == EBUSY     ? thrd_busy
                            : thrd_error;
}

struct start {
    thrd_start_t fn;
    void *arg;
};

static void *trampoline(void *p)
{
    struct start s = *(struct start *)p;
    cs_free(p);
    return (void *)(intptr_t)s.fn(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    struct start *s = cs_malloc(sizeof(*s));
    s->fn = fn;
    s->arg = arg;
    int e = pthread_create(thr, NULL, trampoline, s);
    if (e)
        cs_free(s);
    return map(e);
}

int thrd_join(thrd_t thr, int *res)
{
    void *v = NULL;
    int e = pthread_join(thr, &v);
    if (!e && res)
        *res = (int)(intptr_t)v;
    return map(e);
}

int thrd_detach(thrd_t thr)
{
    return map(pthread_detach(thr));
}

_Noreturn void thrd_exit(int res)
{
    pthread_exit((void *)(intptr_t)res);
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int e = pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
    __tsan_release(m);
    return map(e);
}

int mtx_lock(mtx_t *m)
{
    __tsan_acquire(m);
    return map(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
    __tsan_acquire(m);
    return map(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_unlock(mtx_t *m)
{
    return map(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m)
{
    __tsan_acquire(m);
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
    int e = pthread_cond_init((pthread_cond_t *)c, NULL);
    __tsan_release(c);
    return map(e);
}

int cnd_signal(cnd_t *c)
{
    __tsan_acquire(c);
    return map(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
    __tsan_acquire(c);
    return map(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    __tsan_acquire(c);
    return map(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
    __tsan_acquire(c);
    return map(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void cnd_destroy(cnd_t *c)
{
    __tsan_acquire(c);
    pthread_cond_destroy((pthread_cond_t *)c);
}

void call_once(once_flag *flag, void (*fn)(void))
{
    pthread_once((pthread_once_t *)flag, fn);
}
