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
#include "scheduler.h"

struct rescuer_config rescuer_config_from(const struct cs_config *cfg)
{
    return (struct rescuer_config){.batch = (int)cfg->sweep_batch};
}

enum cs_err rescuer_run_once(struct cs_db *db, const struct rescuer_config *c,
                             struct duty_result *out, char *err)
{
    return duty_run(db, CSQ_RESCUE_LAPSED, c->batch, "scheduler:rescuer", out, err);
}
