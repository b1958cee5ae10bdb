/*
 * cs_process.c -- process start-up and signals (see cs_process.h).
 */
#include "cs_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cs_events.h"
#include "cs_log.h"

atomic_int cs_stopping = 0;
static int wake_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&cs_stopping, 1);
    if (wake_pipe[1] >= 0) {
        ssize_t w = write(wake_pipe[1], "x", 1);
        (void)w;
    }
}

void cs_process_signals(void)
{
    if (wake_pipe[0] < 0 && pipe(wake_pipe) == 0) {
        for (int i = 0; i < 2; i++)
            fcntl(wake_pipe[i], F_SETFL, fcntl(wake_pipe[i], F_GETFL) | O_NONBLOCK);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cs_process_wake_fd(void)
{
    return wake_pipe[0];
}

int cs_process_init(int argc, char **argv, const struct cs_process_info *pi, struct cs_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("countersign-%s %s -- %s\n\nUsage: countersign-%s [--help] [--version]\n\n",
                   pi->name, CS_VERSION, pi->summary, pi->name);
            cs_config_print_help(stdout, pi->procs);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("countersign-%s %s\n", pi->name, CS_VERSION);
            return 0;
        }
        fprintf(stderr, "countersign-%s: unknown argument \"%s\" (try --help)\n", pi->name,
                argv[i]);
        return 2;
    }
    char err[CS_ERRLEN];
    if (cs_config_load(cfg, pi->procs, NULL, err) != CS_OK ||
        (pi->needs_master_key && cs_config_require_master_key(cfg, err) != CS_OK)) {
        fprintf(stderr, "countersign-%s: %s\n", pi->name, err);
        cs_config_free(cfg);
        return 2;
    }
    cs_log_init(pi->name, (enum cs_log_level)cs_log_level_parse(cfg->log_level));
    return -1;
}

enum cs_err cs_process_db(const struct cs_config *cfg, const char *app, const atomic_int *stop,
                          struct cs_db **db, char *err)
{
    enum cs_err rc = cs_db_open(db, cfg->pg_url, app, err);
    if (rc == CS_ERR_DB)
        rc = cs_db_reconnect(*db, stop, err);
    if (rc)
        return rc;
    int version = 0, applied = 0;
    int want = cs_migrations[cs_nmigrations - 1].version;
    if ((rc = cs_db_schema_version(*db, &version, err)))
        return rc;
    /* Only a schema that is behind is migrated, as the owner: a process's own
     * role may not create or alter anything (migration 009). */
    if (version < want && cfg->migrate_on_start) {
        struct cs_db *owner = *db;
        if (cfg->pg_owner_url)
            rc = cs_db_open(&owner, cfg->pg_owner_url, app, err);
        /* The slot first: a migration may emit events (014 moves the outbox's). */
        if (!rc && !(rc = cs_events_slot_ensure(owner, cfg, err)))
            rc = cs_db_migrate(owner, &applied, err);
        if (owner != *db)
            cs_db_close(owner);
        if (rc)
            return rc;
        if ((rc = cs_db_schema_version(*db, &version, err)))
            return rc;
    }
    if (version < want)
        return cs_err_set(err, CS_ERR_CONFIG,
                          "database schema is at version %d, this binary needs %d: run "
                          "`countersign migrate`",
                          version, want);
    /* Nothing is written before a slot keeps the events it emits. */
    return cs_events_slot_ensure(*db, cfg, err);
}
