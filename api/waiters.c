/*
 * waiters.c -- long-poll waiters: suspended connections, not threads.
 *
 * A handler that must wait for an approval's outcome registers its
 * libmicrohttpd connection here with a deadline, reads the approval once,
 * and -- when it is not over -- suspends the connection (waiters_suspend). One
 * thread holds a Postgres connection that LISTENs on cs_done (notified by
 * the approvals_notify trigger with the approval id at every terminal
 * transition) and resumes the matching connections; it also resumes those
 * whose deadline passed. A resumed handler reads the outcome from the
 * database itself, so a lost or early notification only costs a re-check.
 * Thousands of waiters cost a few hundred bytes each.
 *
 * Locks: mu guards the id map and the list, and orders a waiter's suspend
 * and resume: a waiter fired before it is suspended is not suspended at all
 * (waiters_suspend says so), so a resume always follows its suspend and a
 * change between the handler's read and its suspension is never missed.
 */
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_map.h"
#include "cs_mem.h"

struct api_waiter {
    char id[CS_UUID_STRLEN + 1];
    struct MHD_Connection *c;
    int64_t deadline_ms;
    bool fired;
    bool suspended;                 /* its connection is suspended (waiters_suspend) */
    struct api_waiter *next_same;   /* other waiters on the same approval */
    struct api_waiter *prev, *next; /* all waiters */
};

struct api_waiters {
    struct api *api;
    pthread_mutex_t mu;
    struct cs_map *by_id; /* id -> first waiter */
    struct api_waiter *all;
    int count;
    struct cs_db *db;
    pthread_t thread;
    int wake[2];
    atomic_int stop;
};

static void fire_locked(struct api_waiter *x)
{
    if (x->fired)
        return;
    x->fired = true;
    if (x->suspended)
        MHD_resume_connection(x->c);
}

struct api_waiter *waiters_add(struct api_waiters *w, const char *id, struct MHD_Connection *c,
                               int64_t deadline_ms)
{
    struct api_waiter *x = cs_calloc(1, sizeof(*x));
    cs_strlcpy(x->id, id, sizeof(x->id));
    x->c = c;
    x->deadline_ms = deadline_ms;
    pthread_mutex_lock(&w->mu);
    x->next_same = cs_map_put(w->by_id, id, x);
    x->next = w->all;
    if (w->all)
        w->all->prev = x;
    w->all = x;
    w->count++;
    if (atomic_load(&w->stop))
        fire_locked(x);
    pthread_mutex_unlock(&w->mu);
    return x;
}

void waiters_remove(struct api_waiters *w, struct api_waiter *x)
{
    pthread_mutex_lock(&w->mu);
    struct api_waiter *head = cs_map_get(w->by_id, x->id);
    if (head == x) {
        if (x->next_same)
            cs_map_put(w->by_id, x->id, x->next_same);
        else
            cs_map_del(w->by_id, x->id);
    } else {
        for (struct api_waiter *p = head; p; p = p->next_same)
            if (p->next_same == x) {
                p->next_same = x->next_same;
                break;
            }
    }
    if (x->prev)
        x->prev->next = x->next;
    else
        w->all = x->next;
    if (x->next)
        x->next->prev = x->prev;
    w->count--;
    pthread_mutex_unlock(&w->mu);
    cs_free(x);
}

bool waiters_suspend(struct api_waiters *w, struct api_waiter *x)
{
    pthread_mutex_lock(&w->mu);
    bool fired = x->fired;
    pthread_mutex_unlock(&w->mu);
    if (fired)
        return false;
    MHD_suspend_connection(x->c);
    pthread_mutex_lock(&w->mu);
    x->suspended = true;
    fired = x->fired; /* fired between the two: nobody resumed it, so resume it here */
    pthread_mutex_unlock(&w->mu);
    if (fired)
        MHD_resume_connection(x->c);
    return true;
}

int waiters_count(struct api_waiters *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->count;
    pthread_mutex_unlock(&w->mu);
    return n;
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct api_waiters *w = arg;
    (void)channel;
    pthread_mutex_lock(&w->mu);
    for (struct api_waiter *x = cs_map_get(w->by_id, payload); x; x = x->next_same)
        fire_locked(x);
    pthread_mutex_unlock(&w->mu);
}

/* Resumes waiters past their deadline; returns ms until the next deadline (<= 1000). */
static int expire(struct api_waiters *w)
{
    int64_t now = cs_now_ms(), next = now + 1000;
    pthread_mutex_lock(&w->mu);
    for (struct api_waiter *x = w->all; x; x = x->next) {
        if (x->fired)
            continue;
        if (x->deadline_ms <= now)
            fire_locked(x);
        else if (x->deadline_ms < next)
            next = x->deadline_ms;
    }
    pthread_mutex_unlock(&w->mu);
    return (int)(next - now);
}

static void fire_all(struct api_waiters *w)
{
    pthread_mutex_lock(&w->mu);
    for (struct api_waiter *x = w->all; x; x = x->next)
        fire_locked(x);
    pthread_mutex_unlock(&w->mu);
}

static void *run(void *arg)
{
    struct api_waiters *w = arg;
    char err[CS_ERRLEN];
    while (!atomic_load(&w->stop)) {
        if (!cs_db_connected(w->db)) {
            if (cs_db_reconnect(w->db, &w->stop, err) != CS_OK)
                break;
            fire_all(w); /* notifications may have been missed: everyone re-checks */
        }
        struct pollfd fds[2] = {{cs_db_socket(w->db), POLLIN, 0}, {w->wake[0], POLLIN, 0}};
        poll(fds, 2, expire(w));
        if (cs_db_notifies(w->db, on_notify, w) < 0)
            cs_log(CS_LOG_WARN, "waiters", "lost the LISTEN connection; reconnecting");
    }
    fire_all(w);
    return NULL;
}

enum cs_err waiters_start(struct api *a, struct api_waiters **out, char *err)
{
    struct api_waiters *w = cs_calloc(1, sizeof(*w));
    w->api = a;
    w->by_id = cs_map_new();
    pthread_mutex_init(&w->mu, NULL);
    *out = w;
    if (pipe(w->wake) != 0)
        return cs_err_set(err, CS_ERR_INTERNAL, "pipe failed");
    /* Without Postgres now, the thread keeps reconnecting (and re-LISTENs). */
    enum cs_err rc = cs_db_open(&w->db, a->cfg->pg_url, "countersign-api-waiters", err);
    if (!rc || rc == CS_ERR_DB)
        rc = cs_db_listen(w->db, CSQ_LISTEN_DONE, err);
    if (rc && rc != CS_ERR_DB)
        return rc;
    if (pthread_create(&w->thread, NULL, run, w) != 0)
        return cs_err_set(err, CS_ERR_INTERNAL, "cannot start the waiter thread");
    return CS_OK;
}

void waiters_stop(struct api_waiters *w)
{
    if (!w)
        return;
    if (w->thread) {
        atomic_store(&w->stop, 1);
        ssize_t n = write(w->wake[1], "x", 1);
        (void)n;
        pthread_join(w->thread, NULL);
        w->thread = 0;
    }
    fire_all(w);
}

void waiters_free(struct api_waiters *w)
{
    if (!w)
        return;
    cs_map_free(w->by_id, NULL);
    cs_db_close(w->db);
    if (w->wake[0] > 0) {
        close(w->wake[0]);
        close(w->wake[1]);
    }
    pthread_mutex_destroy(&w->mu);
    cs_free(w);
}
