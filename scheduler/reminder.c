/*
 * reminder.c -- reminds the approvers of approvals that wait.
 *
 * A policy with reminder_interval_s gives each pending approval a
 * next_reminder_at; this duty sends the due ones (remind_due in
 * sql/queries/reminder.sql) and moves next_reminder_at on by one interval
 * from now in the same guarded UPDATE, so a reminder goes out at most once
 * per interval however many schedulers run. Only slots that have not voted
 * are reminded; a reminder never extends the window, and an approval that
 * expired or was decided gets none.
 */
#include "scheduler.h"

enum cs_err reminder_run_once(struct cs_db *db, const struct duty_config *c,
                              struct duty_result *out, char *err)
{
    return duty_run(db, CSQ_REMIND_DUE, c->batch, "scheduler:reminder", out, err);
}
