/*
 * main.c -- the countersign-scheduler process: wiring only.
 *
 * Start: configuration -> signals -> Postgres (migrations) -> loop.
 * Every CS_SWEEP_INTERVAL_MS, while it leads (lib/cs_leader.c):
 * expirer, rescuer, sealer (each repeated while its batch was full, within
 * the interval), and retention once a minute. The master key is required:
 * the sealer signs with a key derived from it (cs_audit.h). Any number of schedulers may
 * run; one leads, the others stand by and take over when its session ends.
 * Stop (SIGTERM/SIGINT): finish the duty in hand (one transaction), close.
 */
#include <poll.h>
#include <stdio.h>

#include "cs_leader.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_metrics.h"
#include "cs_process.h"
#include "scheduler.h"

/* Rows changed per duty and sweeps run, for /metrics (CS_METRICS_PORT). */
struct sched_metrics {
    atomic_uint_fast64_t rows[DUTY_COUNT];
    atomic_uint_fast64_t sweeps, failures;
    atomic_int leader;
};

static void render(void *arg, struct cs_buf *b)
{
    struct sched_metrics *m = arg;
    char labels[64];
    cs_metrics_family(b, "countersign_scheduler_rows_total", "counter",
                      "rows each duty changed (expired, rescued, sealed entries, deleted)");
    for (int i = 0; i < DUTY_COUNT; i++) {
        snprintf(labels, sizeof(labels), "duty=\"%s\"", duties[i].name);
        cs_metrics_value(b, "countersign_scheduler_rows_total", labels,
                         (double)atomic_load(&m->rows[i]));
    }
    cs_metrics_family(b, "countersign_scheduler_sweeps_total", "counter",
                      "sweeps run while leading");
    cs_metrics_value(b, "countersign_scheduler_sweeps_total", NULL,
                     (double)atomic_load(&m->sweeps));
    cs_metrics_family(b, "countersign_scheduler_failures_total", "counter",
                      "duty runs that failed");
    cs_metrics_value(b, "countersign_scheduler_failures_total", NULL,
                     (double)atomic_load(&m->failures));
    cs_metrics_family(b, "countersign_scheduler_leader", "gauge", "1 when this scheduler leads");
    cs_metrics_value(b, "countersign_scheduler_leader", NULL, atomic_load(&m->leader));
}

/*
 * Runs one duty's batches until it is caught up, the budget is spent, or a
 * stop; *more says it is not caught up (or never got to run).
 */
static enum cs_err run_duty(struct cs_db *db, const struct duty *d, const struct duty_config *c,
                            int64_t deadline, atomic_uint_fast64_t *rows, bool *more, char *err)
{
    struct duty_result r = {0, true};
    int64_t total = 0;
    enum cs_err rc = CS_OK;
    while (r.more && !atomic_load(&cs_stopping) && cs_now_ms() < deadline) {
        if ((rc = d->run_once(db, c, &r, err)))
            break;
        total += r.changed;
    }
    atomic_fetch_add(rows, (uint_fast64_t)total);
    if (total)
        cs_log(CS_LOG_INFO, d->name, "%lld row(s)", (long long)total);
    *more = r.more;
    return rc;
}

static int loop(const struct cs_config *cfg, struct cs_db *db, struct sched_metrics *m)
{
    struct cs_leader el = {db, CS_LOCK_SCHEDULER, "elector", "leading: running the sweeps", false};
    struct duty_config dc = duty_config_from(cfg);
    for (int i = 0; i < DUTY_COUNT; i++)
        cs_assert(duties[i].run_once); /* duty.c fills every row of the table */
    int64_t next[DUTY_COUNT] = {0};
    char err[CS_ERRLEN];
    while (!atomic_load(&cs_stopping)) {
        int64_t start = cs_now_ms(), deadline = start + cfg->sweep_interval_ms;
        if (!cs_db_connected(db) && cs_db_reconnect(db, &cs_stopping, err) != CS_OK)
            break;
        /* Each duty runs on its own: one failing (a bad row, a bug) does not
         * starve the others. A lost connection ends the sweep. */
        for (size_t i = 0; i < DUTY_COUNT && cs_db_connected(db); i++) {
            if (start < next[i] || !cs_leader_hold(&el))
                continue;
            bool more = false;
            enum cs_err rc = run_duty(db, &duties[i], &dc, deadline, &m->rows[i], &more, err);
            /* Behind (the sweep's budget ran out, maybe before its turn): again next sweep. */
            next[i] = more && !rc ? 0 : start + duties[i].every_ms;
            if (rc) {
                atomic_fetch_add(&m->failures, 1);
                static struct cs_log_limit lim;
                if (cs_log_limit_allow(&lim, 10, NULL))
                    cs_log(CS_LOG_WARN, duties[i].name, "failed, retrying next sweep: %s: %s",
                           cs_err_code(rc), err);
            }
        }
        atomic_store(&m->leader, el.leading);
        if (el.leading)
            atomic_fetch_add(&m->sweeps, 1);
        int64_t left = deadline - cs_now_ms();
        struct pollfd p = {cs_process_wake_fd(), POLLIN, 0};
        if (left > 0)
            poll(&p, 1, (int)left);
    }
    cs_wipe(dc.audit_key, sizeof(dc.audit_key));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct cs_process_info info = {
        "scheduler", CS_PROC_SCHEDULER,
        "expiry sweeps, lease rescue, reminders, escalation, batch summaries, audit sealing, "
        "retention",
        true};
    struct cs_config cfg;
    int status = cs_process_init(argc, argv, &info, &cfg);
    if (status >= 0)
        return status;
    cs_process_signals();
    struct cs_db *db = NULL;
    char err[CS_ERRLEN];
    cs_log(CS_LOG_INFO, "scheduler", "starting %s (%s)", CS_VERSION, cfg.instance_id);
    if (cs_process_db(&cfg, "countersign-scheduler", &cs_stopping, &db, err) != CS_OK) {
        if (!atomic_load(&cs_stopping)) {
            cs_log(CS_LOG_ERROR, "scheduler", "cannot start: %s", err);
            status = 1;
        } else {
            status = 0;
        }
    } else {
        static struct sched_metrics m;
        struct cs_metrics_server *ms =
            cfg.metrics_port ? cs_metrics_serve(cfg.http_addr, (int)cfg.metrics_port, render, &m)
                             : NULL;
        if (cfg.metrics_port && !ms)
            cs_log(CS_LOG_ERROR, "scheduler", "cannot serve /metrics on port %lld",
                   (long long)cfg.metrics_port);
        status = loop(&cfg, db, &m);
        cs_metrics_server_stop(ms);
    }
    cs_log(CS_LOG_INFO, "scheduler", "stopped");
    cs_db_close(db);
    cs_config_free(&cfg);
    return status;
}
