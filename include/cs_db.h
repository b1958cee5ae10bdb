/*
 * cs_db.h -- one Postgres connection with its named queries.
 *
 * Every statement Countersign runs lives in sql/queries/<noun>.sql under a
 * "-- name: <query>" marker; the build turns them into enum cs_query
 * (CSQ_<NAME>) and cs_queries[]. A connection prepares a query by name the
 * first time it runs it. C never builds SQL text.
 *
 * Errors: a lost connection or an unavailable server is CS_ERR_DB
 * (retriable); a constraint or data error is CS_ERR_INVALID or
 * CS_ERR_DUPLICATE with the server's message; an error in our own SQL is
 * CS_ERR_INTERNAL. After CS_ERR_DB the caller reconnects with
 * cs_db_reconnect(), which backs off and re-issues LISTENs.
 *
 * Thread: a struct cs_db belongs to one thread at a time.
 */
#ifndef CS_DB_H
#define CS_DB_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_log.h"
#include "cs_sql_gen.h"
#include "cs_time.h"

/*
 * One named query of sql/queries, as tools/sqlgen.awk derives it: nparams is
 * its highest $N, ncols the length of its result list (CSC_<QUERY>_<COLUMN>
 * numbers them). cs_db_exec() refuses another parameter count, and a result
 * with another number of columns, as CS_ERR_INTERNAL.
 */
struct cs_query_def {
    const char *name;
    const char *file;
    int nparams;
    int ncols;
    const char *sql;
};
struct cs_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct cs_query_def cs_queries[CSQ__COUNT];
extern const struct cs_migration cs_migrations[];
extern const int cs_nmigrations;

/* Advisory lock keys (pg_advisory_lock); one place so they never collide. */
#define CS_LOCK_MIGRATE 0x43530001LL
#define CS_LOCK_SCHEDULER 0x43530003LL
#define CS_LOCK_CLAIM 0x43530004LL /* executors' claims, one at a time (executor.c) */

#define CS_DB_MAX_LISTEN 4

struct cs_db {
    PGconn *pg;
    char *url;
    char *app; /* application_name */
    bool prepared[CSQ__COUNT];
    enum cs_query listen[CS_DB_MAX_LISTEN];
    int nlisten;
    struct cs_backoff backoff; /* cs_db_reconnect's waits */
    /* cs_db_reconnect's warning: per connection, so per thread (cs_log.h: one thread per struct) */
    struct cs_log_limit reconnect_warn;
    bool sent; /* cs_db_send() awaits cs_db_poll() */
    enum cs_query sent_q;
};

/* Connects once. On failure *out is still a usable handle for reconnect. */
enum cs_err cs_db_open(struct cs_db **out, const char *url, const char *app,
                       char *err) CS_MUSTCHECK;
void cs_db_close(struct cs_db *db);

/*
 * Reconnects with exponential backoff (100 ms .. 5 s) until it succeeds or
 * *stop (may be NULL) becomes non-zero (then CS_ERR_UNAVAILABLE). Re-issues LISTENs.
 * Warns at most once per 10 s per connection (db->reconnect_warn).
 * Thread: the thread that holds db; threads reconnecting at once share nothing.
 */
enum cs_err cs_db_reconnect(struct cs_db *db, const atomic_int *stop, char *err) CS_MUSTCHECK;
bool cs_db_connected(const struct cs_db *db);
/* One reconnection attempt, no backoff (for request handlers). */
enum cs_err cs_db_reset(struct cs_db *db, char *err) CS_MUSTCHECK;

/*
 * Runs query q with n text parameters (NULL = SQL NULL); n must be the
 * query's CSP_<QUERY> (else CS_ERR_INTERNAL, logged). On success *res (if
 * res is not NULL) holds the result, which the caller PQclear()s; read its
 * columns as CSC_<QUERY>_<COLUMN>.
 */
enum cs_err cs_db_exec(struct cs_db *db, enum cs_query q, int n, const char *const *params,
                       PGresult **res, char *err) CS_MUSTCHECK;

/*
 * The query, count and parameters of cs_db_exec(), cs_db_exec_bin() and
 * cs_db_send(), checked against the SQL when compiling:
 *     const char *p[] = {id, actor};
 *     cs_db_exec(db, CS_DB_Q(GRANT_PAUSE, p), &res, err);
 * compiles only when the array p holds exactly CSP_GRANT_PAUSE elements
 * (a pointer is refused by -Wsizeof-pointer-div). CS_DB_Q0(PING) is a query
 * without parameters.
 */
#define CS_DB_Q(Q, p) CSQ_##Q, CS_DB_COUNT_(CSP_##Q, p), (p)
#define CS_DB_Q0(Q) CSQ_##Q, ((int)sizeof(char[CSP_##Q == 0 ? 1 : -1]) - 1), NULL
#define CS_DB_COUNT_(n, p) ((int)sizeof(char[sizeof(p) / sizeof((p)[0]) == (n) ? (n) + 1 : -1]) - 1)

/* Same, with per-parameter lengths and formats (for binary bytea). */
enum cs_err cs_db_exec_bin(struct cs_db *db, enum cs_query q, int n, const char *const *params,
                           const int *lengths, const int *formats, PGresult **res,
                           char *err) CS_MUSTCHECK;

/*
 * Asynchronous use, for a loop that must not block (worker/executor.c):
 * cs_db_send() sends query q (preparing it first, which waits, once per
 * connection); then cs_db_poll() returns false while the answer is still
 * on its way and true once *rc and *res are what cs_db_exec() would have
 * given. With wait it blocks until then. One statement at a time per
 * connection; poll on cs_db_socket() for readability in between.
 */
enum cs_err cs_db_send(struct cs_db *db, enum cs_query q, int n, const char *const *params,
                       char *err) CS_MUSTCHECK;
bool cs_db_poll(struct cs_db *db, bool wait, enum cs_err *rc, PGresult **res, char *err);

/* Runs raw SQL text that comes from sql/ (migrations only). */
enum cs_err cs_db_exec_script(struct cs_db *db, const char *sql, char *err) CS_MUSTCHECK;

enum cs_err cs_db_begin(struct cs_db *db, char *err) CS_MUSTCHECK;
enum cs_err cs_db_commit(struct cs_db *db, char *err) CS_MUSTCHECK;
/* Rolls back if a transaction is open; never fails (a dead connection has none). */
void cs_db_rollback(struct cs_db *db);

/* Runs a LISTEN query (CSQ_LISTEN_*) and remembers it for reconnects. */
enum cs_err cs_db_listen(struct cs_db *db, enum cs_query q, char *err) CS_MUSTCHECK;
/* The socket to poll for notifications; -1 when disconnected. */
int cs_db_socket(const struct cs_db *db);
/*
 * Reads pending input and hands each notification to fn; returns how many
 * there were, or -1 when the connection is lost.
 */
int cs_db_notifies(struct cs_db *db,
                   void (*fn)(void *arg, const char *channel, const char *payload), void *arg);

/* Value of row r column c, or NULL when SQL NULL. */
const char *cs_db_str(const PGresult *res, int r, int c);
int64_t cs_db_int(const PGresult *res, int r, int c);      /* 0 when NULL */
bool cs_db_bool(const PGresult *res, int r, int c);        /* false when NULL */
const char *cs_db_text(const PGresult *res, int r, int c); /* "" when NULL */

/* Applies every migration not yet applied, under CS_LOCK_MIGRATE. */
enum cs_err cs_db_migrate(struct cs_db *db, int *applied, char *err) CS_MUSTCHECK;
/* A session advisory lock (CS_LOCK_*): waits for it; released by cs_db_unlock or the session's end. */
enum cs_err cs_db_lock(struct cs_db *db, long long key, char *err) CS_MUSTCHECK;
/* The same lock if it is free now (*got); never waits. */
enum cs_err cs_db_trylock(struct cs_db *db, long long key, bool *got, char *err) CS_MUSTCHECK;
void cs_db_unlock(struct cs_db *db, long long key);
/* Highest applied migration version (0 when none); CS_ERR_DB on failure. */
enum cs_err cs_db_schema_version(struct cs_db *db, int *version, char *err) CS_MUSTCHECK;

#endif
