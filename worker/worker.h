/*
 * worker.h -- the roles of the worker process (this folder only).
 *
 * Each role runs in its own thread with its own Postgres connection and
 * stops when cs_stopping is set, in the order main.c documents:
 *   ingest   -- Kafka requests topic -> approvals (ingest.c)
 *   executor -- approved -> provider call -> executed | failed (executor.c)
 *   notifier -- approver emails and webhooks with their links (notifier.c)
 *   relay    -- outbox -> events and results topics (relay.c)
 */
#ifndef WORKER_H
#define WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "cs_config.h"

struct worker_role {
    const char *name;
    const struct cs_config *cfg;
    pthread_t thread;
    atomic_int done;          /* set by the role when its loop has ended */
    atomic_int stop;          /* set by main to end the role (after cs_stopping) */
    int wake[2];              /* main writes a byte after setting stop; roles poll wake[0] */
    int status;               /* 0 ok, else the role failed to start */
};

/* Waits up to ms for the role's wake pipe (a stop request). */
void worker_sleep(struct worker_role *role, int ms);

void *ingest_main(void *role);
void *executor_main(void *role);
void *notifier_main(void *role);
void *relay_main(void *role);

#endif
