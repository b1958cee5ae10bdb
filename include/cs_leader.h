/*
 * cs_leader.h -- one leader among many processes, through a Postgres
 * session advisory lock (CS_LOCK_* in cs_db.h).
 *
 * The lock belongs to the database session that took it, so it ends with
 * that session: a leader that dies or loses its connection hands over
 * within one try of another process. Used by the scheduler (its sweeps;
 * the worker's relay leads by holding the event slot instead). What is led stays
 * correct without it (guarded transitions, SKIP LOCKED claims); the lock
 * keeps the work in one place.
 *
 * Thread: a struct cs_leader belongs to the thread that owns its db.
 */
#ifndef CS_LEADER_H
#define CS_LEADER_H

#include <stdbool.h>

#include "cs_db.h"

struct cs_leader {
    struct cs_db *db;   /* the session that holds the lock */
    long long lock;     /* CS_LOCK_SCHEDULER, ... */
    const char *role;   /* log subsystem, e.g. "relay" */
    const char *taking; /* logged when it takes the lead, e.g. "active: publishing" */
    bool leading;
};

/*
 * True while this process leads: tries to take the lock when it does not
 * hold it, and gives the lead up (logged) when its session was lost.
 */
bool cs_leader_hold(struct cs_leader *l);

#endif
