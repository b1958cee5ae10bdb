/*
 * expirer.c -- pending approvals whose window has elapsed become expired.
 *
 * One statement per batch (expire_due): rows are locked with SKIP LOCKED
 * and updated only while still pending and past expires_at, with the
 * audit entry and its events/results (cs_emit) in the same statement.
 * A vote racing the sweep is serialised by the row lock: exactly one of
 * them lands, and the database refuses a decision at or after expires_at
 * anyway (approvals_guard).
 */
#include "scheduler.h"

enum cs_err expirer_run_once(struct cs_db *db, const struct duty_config *c, struct duty_result *out,
                             char *err)
{
    return duty_run(db, CSQ_EXPIRE_DUE, c->batch, "scheduler:expirer", out, err);
}
