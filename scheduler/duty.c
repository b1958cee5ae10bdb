/*
 * duty.c -- the shape every batch duty shares: run its one statement with a
 * row limit and the audit actor, and report how many rows it changed.
 */
#include <stdio.h>

#include "scheduler.h"

enum cs_err duty_run(struct cs_db *db, enum cs_query q, int batch, const char *actor,
                     struct duty_result *out, char *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", batch);
    const char *p[] = {lim, actor};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, q, 2, p, &res, err);
    if (rc)
        return rc;
    out->changed = cs_db_int(res, 0, 0);
    out->more = out->changed == batch;
    PQclear(res);
    return CS_OK;
}
