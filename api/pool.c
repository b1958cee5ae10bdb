/*
 * pool.c -- the api's database connections.
 *
 * A fixed number of connections (one per HTTP thread and the waiter
 * thread's share), handed out for one handler call at a time. A connection
 * found broken is reconnected when it is next handed out (pool_get: one
 * attempt, no backoff), so a Postgres restart costs the requests in flight
 * an error (503) and nothing more.
 * Thread: any; Locks: mu guards the free list.
 */
#include <pthread.h>

#include "api.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_process.h"

struct api_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct api_db *free;
    struct api_db *all[256];
    int n;
};

enum cs_err pool_new(const struct cs_config *cfg, int n, struct api_pool **out, char *err)
{
    struct api_pool *p = cs_calloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    *out = p;
    if (n > (int)(sizeof(p->all) / sizeof(p->all[0])))
        n = (int)(sizeof(p->all) / sizeof(p->all[0]));
    for (int i = 0; i < n; i++) {
        struct api_db *d = cs_calloc(1, sizeof(*d));
        d->cat = cs_catalog_new(cfg->catalog_ttl_ms);
        enum cs_err rc = i == 0 ? cs_process_db(cfg, "countersign-api", &cs_stopping, &d->db, err)
                                : cs_db_open(&d->db, cfg->pg_url, "countersign-api", err);
        p->all[p->n++] = d;
        if (rc && (rc != CS_ERR_DB || i == 0))
            return rc;
        d->next = p->free;
        p->free = d;
    }
    return CS_OK;
}

struct api_db *pool_get(struct api_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->free)
        pthread_cond_wait(&p->cv, &p->mu);
    struct api_db *d = p->free;
    p->free = d->next;
    pthread_mutex_unlock(&p->mu);
    cs_catalog_tick(d->cat);
    /* A connection the server closed while it sat in the pool (a restart) still
     * says CONNECTION_OK until read: read what is pending so it shows. */
    if (cs_db_connected(d->db) && cs_db_notifies(d->db, NULL, NULL) < 0)
        cs_log(CS_LOG_INFO, "pool", "a pooled connection was closed by the server");
    if (!cs_db_connected(d->db)) {
        /* One attempt; a handler that still has no connection answers 503. */
        char err[CS_ERRLEN];
        if (cs_db_reset(d->db, err) == CS_OK)
            cs_log(CS_LOG_INFO, "pool", "reconnected to Postgres");
    }
    return d;
}

void pool_put(struct api_pool *p, struct api_db *d)
{
    cs_db_rollback(d->db); /* never hand out a connection inside a transaction */
    pthread_mutex_lock(&p->mu);
    d->next = p->free;
    p->free = d;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pool_free(struct api_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++) {
        cs_db_close(p->all[i]->db);
        cs_catalog_free(p->all[i]->cat);
        cs_free(p->all[i]);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    cs_free(p);
}
