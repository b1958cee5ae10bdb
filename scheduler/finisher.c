/*
 * finisher.c -- closes batches.
 *
 * A batch whose members are all terminal -- decided and executed, or never
 * complete within its window -- gets its summary (counts per member status,
 * and why it expired when it did) on the results topic, once, keyed
 * "batch:<agent id>:<batch id>" (batch_finish in sql/queries/batch.sql).
 */
#include <stdio.h>

#include "scheduler.h"

struct finisher_config finisher_config_from(const struct cs_config *cfg)
{
    return (struct finisher_config){.batch = (int)cfg->sweep_batch};
}

enum cs_err finisher_run_once(struct cs_db *db, const struct finisher_config *c,
                              struct duty_result *out, char *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", c->batch);
    const char *p[] = {lim, "scheduler:finisher"};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CSQ_BATCH_FINISH, 2, p, &res, err);
    if (rc)
        return rc;
    out->changed = cs_db_int(res, 0, 0);
    out->more = out->changed == c->batch;
    PQclear(res);
    return CS_OK;
}
