/*
 * escalator.c -- brings in further approvers when an approval waits too long.
 *
 * A policy with escalate_after_s and escalation approvers gives each
 * pending approval an escalate_at; this duty (escalate_due in
 * sql/queries/reminder.sql) adds the escalation approvers to its slots
 * once, queues a message with each new approver's own link, audits it and
 * publishes an approval.escalated event. The quorum and the window do not
 * change.
 */
#include "scheduler.h"

enum cs_err escalator_run_once(struct cs_db *db, const struct duty_config *c,
                               struct duty_result *out, char *err)
{
    return duty_run(db, CSQ_ESCALATE_DUE, c->batch, "scheduler:escalator", out, err);
}
