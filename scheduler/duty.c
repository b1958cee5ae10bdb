/*
 * duty.c -- what the duties share: their configuration, their table, and
 * the shape of a batch duty (run its one statement with a row limit and
 * the audit actor, report how many rows it changed).
 */
#include <stdio.h>

#include "cs_audit.h"
#include "scheduler.h"

#define RETENTION_EVERY_MS 60000

struct duty_config duty_config_from(const struct cs_config *cfg)
{
    struct duty_config c = {.batch = (int)cfg->sweep_batch,
                            .margin_ms = (int)cfg->lease_margin_ms,
                            .seal_entries = (int)(cfg->sweep_batch * 10),
                            .retention_days = (int)cfg->retention_days,
                            .audit_days = (int)cfg->audit_retention_days,
                            .head_file = cfg->audit_head_file};
    cs_audit_key(cfg->master_key, c.audit_key);
    return c;
}

const struct duty duties[DUTY_COUNT] = {
    {"expirer", expirer_run_once, 0},
    {"rescuer", rescuer_run_once, 0},
    {"reminder", reminder_run_once, 0},
    {"escalator", escalator_run_once, 0},
    {"finisher", finisher_run_once, 0},
    {"sealer", sealer_run_once, 0},
    {"retention", retention_run_once, RETENTION_EVERY_MS},
};

/* Every duty query takes (limit, actor) and answers how many rows it changed. */
_Static_assert((int)CSP_EXPIRE_DUE == 2 && (int)CSP_REMIND_DUE == 2 && (int)CSP_ESCALATE_DUE == 2 &&
                   (int)CSP_BATCH_FINISH == 2 && (int)CSC_EXPIRE_DUE_CHANGED == 0 &&
                   (int)CSC_REMIND_DUE_CHANGED == 0 && (int)CSC_ESCALATE_DUE_CHANGED == 0 &&
                   (int)CSC_BATCH_FINISH_CHANGED == 0,
               "a duty query differs");

enum cs_err duty_run(struct cs_db *db, enum cs_query q, int batch, const char *actor,
                     struct duty_result *out, char *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", batch);
    const char *p[CSP_EXPIRE_DUE] = {lim, actor};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, q, CSP_EXPIRE_DUE, p, &res, err);
    if (rc)
        return rc;
    out->changed = cs_db_int(res, 0, CSC_EXPIRE_DUE_CHANGED);
    out->more = out->changed == batch;
    PQclear(res);
    return CS_OK;
}
