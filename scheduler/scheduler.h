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
    int64_t changed;   /* rows changed (expired, rescued, sealed entries, deleted) */
    bool more;         /* the batch was full: run again soon */
};

/*
 * duty.c: runs query q (parameters: row limit, audit actor; first column of
 * its one result row: rows changed) as one batch of a duty.
 */
enum cs_err duty_run(struct cs_db *db, enum cs_query q, int batch, const char *actor,
                     struct duty_result *out, char *err) CS_MUSTCHECK;

/* expirer.c: pending past expires_at -> expired. */
struct expirer_config {
    int batch;
};
struct expirer_config expirer_config_from(const struct cs_config *cfg);
enum cs_err expirer_run_once(struct cs_db *db, const struct expirer_config *c,
                             struct duty_result *out, char *err) CS_MUSTCHECK;

/* rescuer.c: executing with a lapsed lease -> approved (retry) or failed. */
struct rescuer_config {
    int batch;
    int margin_ms;   /* no rescue within this long of a database start */
};
struct rescuer_config rescuer_config_from(const struct cs_config *cfg);
enum cs_err rescuer_run_once(struct cs_db *db, const struct rescuer_config *c,
                             struct duty_result *out, char *err) CS_MUSTCHECK;

/* sealer.c: chains finished audit entries into a new audit_seal row. */
struct sealer_config {
    int max_entries;
};
struct sealer_config sealer_config_from(const struct cs_config *cfg);
enum cs_err sealer_run_once(struct cs_db *db, const struct sealer_config *c,
                            struct duty_result *out, char *err) CS_MUSTCHECK;

/* reminder.c: due reminders, once per interval. */
struct reminder_config {
    int batch;
};
struct reminder_config reminder_config_from(const struct cs_config *cfg);
enum cs_err reminder_run_once(struct cs_db *db, const struct reminder_config *c,
                              struct duty_result *out, char *err) CS_MUSTCHECK;

/* escalator.c: adds escalation approvers once their delay has passed. */
struct escalator_config {
    int batch;
};
struct escalator_config escalator_config_from(const struct cs_config *cfg);
enum cs_err escalator_run_once(struct cs_db *db, const struct escalator_config *c,
                               struct duty_result *out, char *err) CS_MUSTCHECK;

/* finisher.c: publishes the summary of batches whose members are all terminal. */
struct finisher_config {
    int batch;
};
struct finisher_config finisher_config_from(const struct cs_config *cfg);
enum cs_err finisher_run_once(struct cs_db *db, const struct finisher_config *c,
                              struct duty_result *out, char *err) CS_MUSTCHECK;

/* retention.c: deletes terminal approvals older than the retention period. */
struct retention_config {
    int days;
    int audit_days;            /* 0: keep the audit log forever */
    int batch;
};
struct retention_config retention_config_from(const struct cs_config *cfg);
enum cs_err retention_run_once(struct cs_db *db, const struct retention_config *c,
                               struct duty_result *out, char *err) CS_MUSTCHECK;

#endif
