/*
 * elector.c -- one leading scheduler among many, via pg_try_advisory_lock.
 *
 * The lock is held by the leader's database session, so it ends with the
 * session: a leader that dies or loses its connection hands over within
 * one sweep interval of another scheduler. The duties stay correct without
 * it (each transition is guarded and claims rows with SKIP LOCKED); the
 * elector keeps the work in one place and the audit readable.
 */
#include "cs_log.h"
#include "scheduler.h"

bool elector_lead(struct elector *e)
{
    if (!cs_db_connected(e->db)) {
        if (e->leader)
            cs_log(CS_LOG_WARN, "elector", "lost the database session: no longer leading");
        e->leader = false;
        return false;
    }
    if (e->leader)
        return true;
    char key[24], err[CS_ERRLEN];
    snprintf(key, sizeof(key), "%lld", CS_LOCK_SCHEDULER);
    const char *p[] = {key};
    PGresult *res = NULL;
    if (cs_db_exec(e->db, CSQ_SCHEDULER_TRY_LOCK, 1, p, &res, err) != CS_OK)
        return false;
    e->leader = cs_db_bool(res, 0, 0);
    PQclear(res);
    if (e->leader)
        cs_log(CS_LOG_INFO, "elector", "leading: running the sweeps");
    return e->leader;
}
