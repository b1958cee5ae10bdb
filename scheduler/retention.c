/*
 * retention.c -- keeps the approvals table bounded.
 *
 * Terminal approvals untouched for CS_RETENTION_DAYS are deleted with
 * their votes and notifications, then finished batches whose members are
 * gone; what happened to them stays in the audit log. The outbox needs no
 * retention (the relay deletes what it published). The audit log and its
 * seals are kept: they are the record, append-only by design, and grow by
 * about 300 bytes per transition -- archive them out of band if needed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "scheduler.h"

struct retention_config retention_config_from(const struct cs_config *cfg)
{
    return (struct retention_config){.days = (int)cfg->retention_days,
                                     .batch = (int)cfg->sweep_batch};
}

enum cs_err retention_run_once(struct cs_db *db, const struct retention_config *c,
                               struct duty_result *out, char *err)
{
    char days[16], lim[16];
    snprintf(days, sizeof(days), "%d", c->days);
    snprintf(lim, sizeof(lim), "%d", c->batch);
    const char *p[] = {days, lim};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CSQ_RETENTION_APPROVALS, 2, p, &res, err);
    if (rc)
        return rc;
    out->changed = strtoll(PQcmdTuples(res), NULL, 10);
    out->more = out->changed == c->batch;
    PQclear(res);
    if ((rc = cs_db_exec(db, CSQ_RETENTION_BATCHES, 2, p, &res, err)))
        return rc;
    int64_t batches = strtoll(PQcmdTuples(res), NULL, 10);
    out->changed += batches;
    out->more = out->more || batches == c->batch;
    PQclear(res);
    return CS_OK;
}
