/*
 * cs_process.h -- what every Countersign process does the same way at
 * start and stop: --help and --version, configuration, the logger, signal
 * handling, and the first database connection (with migrations).
 *
 * Stop protocol: SIGTERM or SIGINT sets cs_stopping and makes
 * cs_process_wake_fd() readable, so a loop blocked in poll() wakes at
 * once. The process then finishes in-flight work in the order its main.c
 * documents.
 */
#ifndef CS_PROCESS_H
#define CS_PROCESS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "cs_config.h"
#include "cs_db.h"
#include "cs_err.h"

#define CS_VERSION "0.1.0"

struct cs_process_info {
    const char *name;      /* "worker": logs, application_name, help */
    unsigned procs;        /* CS_PROC_* keys this process reads */
    const char *summary;   /* one line for --help */
    bool needs_master_key; /* refuse to start without CS_MASTER_KEY(_FILE) */
};

/* Set by SIGTERM/SIGINT (lock-free, so signal-safe); the only mutable global. */
extern atomic_int cs_stopping;

/*
 * Handles --help/--version, loads cfg from the environment and starts the
 * logger. Returns -1 to go on, or the exit status to return from main().
 */
int cs_process_init(int argc, char **argv, const struct cs_process_info *pi, struct cs_config *cfg);

/* Installs the SIGTERM/SIGINT handlers and ignores SIGPIPE. */
void cs_process_signals(void);

/* A descriptor that becomes readable when a stop is requested. */
int cs_process_wake_fd(void);

/*
 * Connects to Postgres as the process's role (CS_PG_URL; retrying with
 * backoff until *stop is set). When the schema is older than this binary
 * and CS_MIGRATE_ON_START is set, applies the pending migrations over a
 * second, short connection as the owner (CS_PG_OWNER_URL, else CS_PG_URL);
 * then refuses to run against a schema older than this binary.
 */
enum cs_err cs_process_db(const struct cs_config *cfg, const char *app, const atomic_int *stop,
                          struct cs_db **db, char *err) CS_MUSTCHECK;

#endif
