/*
 * rescuer.c -- executions whose worker died (its lease lapsed).
 *
 * A lapsed lease means the worker stopped before recording the outcome,
 * so the provider may or may not have received the call. Such a call is
 * re-queued (executing -> approved, same Idempotency-Key) only when the
 * grant says the provider honours idempotency keys and attempts remain;
 * otherwise it becomes failed with code outcome_unknown. It is never
 * re-run blindly. See rescue_lapsed in sql/queries/execution.sql.
 */
#include <stdio.h>

#include "scheduler.h"

enum cs_err rescuer_run_once(struct cs_db *db, const struct duty_config *c, struct duty_result *out,
                             char *err)
{
    char lim[16], margin[16];
    snprintf(lim, sizeof(lim), "%d", c->batch);
    snprintf(margin, sizeof(margin), "%d", c->margin_ms);
    const char *p[] = {lim, "scheduler:rescuer", margin};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(RESCUE_LAPSED, p), &res, err);
    if (rc)
        return rc;
    out->changed = cs_db_int(res, 0, CSC_RESCUE_LAPSED_RESCUED);
    out->more = out->changed == c->batch;
    PQclear(res);
    return CS_OK;
}
