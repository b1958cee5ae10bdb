/*
 * finisher.c -- closes batches.
 *
 * A batch whose members are all terminal -- decided and executed, or never
 * complete within its window -- gets its summary (counts per member status,
 * and why it expired when it did) on the results topic, once, keyed
 * "batch:<agent id>:<batch id>" (batch_finish in sql/queries/batch.sql).
 */
#include "scheduler.h"

enum cs_err finisher_run_once(struct cs_db *db, const struct duty_config *c,
                              struct duty_result *out, char *err)
{
    return duty_run(db, CSQ_BATCH_FINISH, c->batch, "scheduler:finisher", out, err);
}
