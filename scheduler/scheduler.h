/*
 * scheduler.h -- the duties of the countersign-scheduler (this folder only).
 *
 * One file per duty. Each has a config struct derived from the process
 * configuration and a <duty>_run_once() that does one batch, bounded by
 * rows, in one transaction, and reports what it changed -- so a test can
 * call it without a timer. main.c owns the loop and runs the duties only
 * while this process leads (lib/cs_leader.c).
 */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "cs_config.h"
#include "cs_db.h"
#include "cs_err.h"

struct duty_result {
    int64_t changed; /* rows changed (expired, rescued, sealed entries, deleted) */
    bool more;       /* the batch was full: run again soon */
};

/*
 * duty.c: runs query q (parameters: row limit, audit actor; first column of
 * its one result row: rows changed) as one batch of a duty.
 */
enum cs_err duty_run(struct cs_db *db, enum cs_query q, int batch, const char *actor,
                     struct duty_result *out, char *err) CS_MUSTCHECK;

/*
 * What the duties need of the configuration, read once (duty.c). Every
 * duty takes the same struct, so the loop holds them in one table.
 */
struct duty_config {
    int batch;          /* CS_SWEEP_BATCH: most rows one statement changes */
    int margin_ms;      /* rescuer: no rescue within this long of a database start */
    int seal_entries;   /* sealer: most audit entries one seal covers */
    int retention_days; /* retention: terminal approvals kept this long */
    int audit_days;     /* retention: 0 keeps the audit log forever */
    unsigned char
        audit_key[32];     /* sealer, retention: signs seals and prune anchors (cs_audit_key) */
    const char *head_file; /* sealer: CS_AUDIT_HEAD_FILE, or NULL */
};
struct duty_config duty_config_from(const struct cs_config *cfg);

/* One batch of a duty: rows changed into *out, out->more when the batch was full. */
typedef enum cs_err (*duty_fn)(struct cs_db *db, const struct duty_config *c,
                               struct duty_result *out, char *err);

/* The duties, in the order a sweep runs them (duty.c; main.c owns the loop). */
struct duty {
    const char *name; /* log subsystem and metrics label */
    duty_fn run_once;
    int64_t every_ms; /* 0: every sweep */
};
#define DUTY_COUNT 7
extern const struct duty duties[DUTY_COUNT];

/* expirer.c: pending past expires_at -> expired. */
enum cs_err expirer_run_once(struct cs_db *db, const struct duty_config *c, struct duty_result *out,
                             char *err) CS_MUSTCHECK;
/* rescuer.c: executing with a lapsed lease -> approved (retry) or failed. */
enum cs_err rescuer_run_once(struct cs_db *db, const struct duty_config *c, struct duty_result *out,
                             char *err) CS_MUSTCHECK;
/* sealer.c: publishes signed heads not yet in CS_AUDIT_HEAD_FILE, then chains
 * finished audit entries into a new signed audit_seal row and publishes it. */
enum cs_err sealer_run_once(struct cs_db *db, const struct duty_config *c, struct duty_result *out,
                            char *err) CS_MUSTCHECK;
/* reminder.c: due reminders, once per interval. */
enum cs_err reminder_run_once(struct cs_db *db, const struct duty_config *c,
                              struct duty_result *out, char *err) CS_MUSTCHECK;
/* escalator.c: adds escalation approvers once their delay has passed. */
enum cs_err escalator_run_once(struct cs_db *db, const struct duty_config *c,
                               struct duty_result *out, char *err) CS_MUSTCHECK;
/* finisher.c: publishes the summary of batches whose members are all terminal. */
enum cs_err finisher_run_once(struct cs_db *db, const struct duty_config *c,
                              struct duty_result *out, char *err) CS_MUSTCHECK;
/* retention.c: deletes terminal approvals (and sign-in rows) past retention. */
enum cs_err retention_run_once(struct cs_db *db, const struct duty_config *c,
                               struct duty_result *out, char *err) CS_MUSTCHECK;

#endif
