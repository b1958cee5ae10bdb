/*
 * cs_leader.c -- leadership through a session advisory lock (see cs_leader.h).
 */
#include "cs_leader.h"

#include <stdio.h>

#include "cs_log.h"

bool cs_leader_hold(struct cs_leader *l)
{
    if (!cs_db_connected(l->db)) {
        if (l->leading)
            cs_log(CS_LOG_WARN, l->role, "lost the database session: no longer leading");
        l->leading = false;
        return false;
    }
    if (l->leading)
        return true;
    char key[24], err[CS_ERRLEN];
    snprintf(key, sizeof(key), "%lld", l->lock);
    const char *p[] = {key};
    PGresult *res = NULL;
    if (cs_db_exec(l->db, CS_DB_Q(LEADER_TRY_LOCK, p), &res, err) != CS_OK)
        return false;
    l->leading = cs_db_bool(res, 0, CSC_LEADER_TRY_LOCK_LOCKED);
    PQclear(res);
    if (l->leading)
        cs_log(CS_LOG_INFO, l->role, "%s", l->taking);
    return l->leading;
}
