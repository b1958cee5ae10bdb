/*
 * cs_db.c -- Postgres connections, named queries, migrations (see cs_db.h).
 *
 * Queries are prepared lazily, per connection, the first time they run, so
 * a connection opened before the schema exists (the migrator's) still works
 * and a process only prepares what it uses.
 */
#include "cs_db.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_log.h"
#include "cs_mem.h"

/* Copies a server or libpq message into err without its trailing newline. */
static void set_msg(char *err, const char *msg)
{
    if (!err)
        return;
    cs_strlcpy(err, msg ? msg : "", CS_ERRLEN);
    size_t len = strlen(err);
    while (len && (err[len - 1] == '\n' || err[len - 1] == ' '))
        err[--len] = '\0';
}

static void copy_pg_error(const PGconn *pg, char *err)
{
    set_msg(err, pg ? PQerrorMessage(pg) : "not connected");
}

/* Server notices (e.g. "relation already exists, skipping") go to the debug log. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    cs_log(CS_LOG_DEBUG, "db", "notice: %s", msg);
}

static enum cs_err connect_now(struct cs_db *db, char *err)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {db->url, db->app, "10", NULL};
    if (db->pg)
        PQfinish(db->pg);
    memset(db->prepared, 0, sizeof(db->prepared));
    db->sent = false;
    db->pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db->pg) != CONNECTION_OK) {
        copy_pg_error(db->pg, err);
        return CS_ERR_DB;
    }
    PQsetNoticeProcessor(db->pg, on_notice, NULL);
    for (int i = 0; i < db->nlisten; i++) {
        PGresult *res = NULL;
        enum cs_err rc = cs_db_exec(db, db->listen[i], 0, NULL, &res, err);
        PQclear(res);
        if (rc)
            return rc;
    }
    return CS_OK;
}

enum cs_err cs_db_open(struct cs_db **out, const char *url, const char *app, char *err)
{
    struct cs_db *db = cs_calloc(1, sizeof(*db));
    db->url = cs_strdup(url);
    db->app = cs_strdup(app);
    *out = db;
    return connect_now(db, err);
}

void cs_db_close(struct cs_db *db)
{
    if (!db)
        return;
    if (db->pg)
        PQfinish(db->pg);
    cs_free(db->url);
    cs_free(db->app);
    cs_free(db);
}

enum cs_err cs_db_reset(struct cs_db *db, char *err)
{
    return connect_now(db, err);
}

bool cs_db_connected(const struct cs_db *db)
{
    return db->pg && PQstatus(db->pg) == CONNECTION_OK;
}

enum cs_err cs_db_reconnect(struct cs_db *db, const atomic_int *stop, char *err)
{
    if (db->backoff.max_ms == 0)
        db->backoff = CS_BACKOFF;
    for (;;) {
        if (stop && atomic_load(stop))
            return cs_err_set(err, CS_ERR_UNAVAILABLE, "shutting down");
        if (connect_now(db, err) == CS_OK) {
            cs_log(CS_LOG_INFO, "db", "connected to Postgres");
            cs_backoff_reset(&db->backoff);
            return CS_OK;
        }
        unsigned suppressed = 0;
        int wait = cs_backoff_next(&db->backoff);
        if (cs_log_limit_allow(&db->reconnect_warn, 10, &suppressed))
            cs_log(CS_LOG_WARN, "db",
                   "Postgres unavailable to %s, retrying in %d ms (%u similar "
                   "suppressed): %s",
                   db->app, wait, suppressed, err ? err : "");
        /* Sleep in short slices so a stop request is honoured promptly. */
        for (int slept = 0; slept < wait && !(stop && atomic_load(stop)); slept += 50)
            poll(NULL, 0, 50);
    }
}

static enum cs_err classify(const PGresult *res, const PGconn *pg, char *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (msg && *msg)
        set_msg(err, msg);
    else
        copy_pg_error(pg, err);
    if (PQstatus(pg) != CONNECTION_OK || !state)
        return CS_ERR_DB;
    if (strcmp(state, "23505") == 0)
        return CS_ERR_DUPLICATE;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
        return CS_ERR_INVALID;
    if (strncmp(state, "42", 2) == 0)
        return CS_ERR_INTERNAL; /* our SQL is wrong: a bug */
    return CS_ERR_DB;           /* 08 connection, 40 serialization, 53, 57 shutdown, ... */
}

static enum cs_err prepare(struct cs_db *db, enum cs_query q, char *err)
{
    if (db->prepared[q])
        return CS_OK;
    if (!db->pg)
        return cs_err_set(err, CS_ERR_DB, "not connected");
    PGresult *res = PQprepare(db->pg, cs_queries[q].name, cs_queries[q].sql, 0, NULL);
    enum cs_err rc = CS_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = classify(res, db->pg, err);
        if (rc == CS_ERR_INTERNAL)
            cs_log(CS_LOG_ERROR, "db", "cannot prepare %s (%s): %s", cs_queries[q].name,
                   cs_queries[q].file, err ? err : "");
    } else {
        db->prepared[q] = true;
    }
    PQclear(res);
    return rc;
}

/* The C and the SQL disagree on n parameters (a bug): refused, logged. */
static enum cs_err check_params(enum cs_query q, int n, char *err)
{
    if (n == cs_queries[q].nparams)
        return CS_OK;
    cs_log(CS_LOG_ERROR, "db", "query %s (%s) takes %d parameters, called with %d",
           cs_queries[q].name, cs_queries[q].file, cs_queries[q].nparams, n);
    return cs_err_set(err, CS_ERR_INTERNAL, "query %s: %d parameters, not %d", cs_queries[q].name,
                      n, cs_queries[q].nparams);
}

/* Checks a statement's result: *res gets it (or it is freed), errors classified. */
static enum cs_err take_result(struct cs_db *db, enum cs_query q, PGresult *r, PGresult **res,
                               char *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        enum cs_err rc = classify(r, db->pg, err);
        if (rc == CS_ERR_INTERNAL)
            cs_log(CS_LOG_ERROR, "db", "query %s failed: %s", cs_queries[q].name, err ? err : "");
        PQclear(r);
        return rc;
    }
    if (st == PGRES_TUPLES_OK && PQnfields(r) != cs_queries[q].ncols) {
        /* The generated CSC_ numbers would read the wrong columns. */
        int got = PQnfields(r);
        cs_log(CS_LOG_ERROR, "db", "query %s (%s) returned %d columns, sqlgen counted %d",
               cs_queries[q].name, cs_queries[q].file, got, cs_queries[q].ncols);
        PQclear(r);
        return cs_err_set(err, CS_ERR_INTERNAL, "query %s: %d result columns, not %d",
                          cs_queries[q].name, got, cs_queries[q].ncols);
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return CS_OK;
}

enum cs_err cs_db_exec_bin(struct cs_db *db, enum cs_query q, int n, const char *const *params,
                           const int *lengths, const int *formats, PGresult **res, char *err)
{
    cs_assert(q >= 0 && q < CSQ__COUNT);
    if (res)
        *res = NULL;
    enum cs_err rc = check_params(q, n, err);
    if (!rc)
        rc = prepare(db, q, err);
    if (rc)
        return rc;
    PGresult *r = PQexecPrepared(db->pg, cs_queries[q].name, n, params, lengths, formats, 0);
    return take_result(db, q, r, res, err);
}

enum cs_err cs_db_send(struct cs_db *db, enum cs_query q, int n, const char *const *params,
                       char *err)
{
    cs_assert(q >= 0 && q < CSQ__COUNT && !db->sent);
    enum cs_err rc = check_params(q, n, err);
    if (!rc)
        rc = prepare(db, q, err);
    if (rc)
        return rc;
    if (!PQsendQueryPrepared(db->pg, cs_queries[q].name, n, params, NULL, NULL, 0)) {
        copy_pg_error(db->pg, err);
        return CS_ERR_DB;
    }
    db->sent = true;
    db->sent_q = q;
    return CS_OK;
}

bool cs_db_poll(struct cs_db *db, bool wait, enum cs_err *rc, PGresult **res, char *err)
{
    cs_assert(db->sent);
    if (res)
        *res = NULL;
    if (!wait && PQconsumeInput(db->pg) && PQisBusy(db->pg))
        return false;
    db->sent = false;
    PGresult *r = PQgetResult(db->pg); /* waits only when wait, or the connection broke */
    for (PGresult *more; (more = PQgetResult(db->pg)) != NULL;)
        PQclear(more);
    if (!r) {
        copy_pg_error(db->pg, err);
        *rc = CS_ERR_DB;
        return true;
    }
    *rc = take_result(db, db->sent_q, r, res, err);
    return true;
}

enum cs_err cs_db_exec(struct cs_db *db, enum cs_query q, int n, const char *const *params,
                       PGresult **res, char *err)
{
    return cs_db_exec_bin(db, q, n, params, NULL, NULL, res, err);
}

enum cs_err cs_db_exec_script(struct cs_db *db, const char *sql, char *err)
{
    PGresult *r = PQexec(db->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    enum cs_err rc = CS_OK;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        rc = classify(r, db->pg, err);
    PQclear(r);
    return rc;
}

enum cs_err cs_db_begin(struct cs_db *db, char *err)
{
    return cs_db_exec(db, CS_DB_Q0(BEGIN), NULL, err);
}

enum cs_err cs_db_commit(struct cs_db *db, char *err)
{
    return cs_db_exec(db, CS_DB_Q0(COMMIT), NULL, err);
}

void cs_db_rollback(struct cs_db *db)
{
    if (db->pg && PQtransactionStatus(db->pg) != PQTRANS_IDLE &&
        PQtransactionStatus(db->pg) != PQTRANS_UNKNOWN) {
        char ignore[CS_ERRLEN];
        if (cs_db_exec(db, CS_DB_Q0(ROLLBACK), NULL, ignore) != CS_OK)
            cs_log(CS_LOG_DEBUG, "db", "rollback failed: %s", ignore);
    }
}

enum cs_err cs_db_listen(struct cs_db *db, enum cs_query q, char *err)
{
    cs_assert(db->nlisten < CS_DB_MAX_LISTEN);
    db->listen[db->nlisten++] = q;
    return cs_db_exec(db, q, 0, NULL, NULL, err);
}

int cs_db_socket(const struct cs_db *db)
{
    return cs_db_connected(db) ? PQsocket(db->pg) : -1;
}

int cs_db_notifies(struct cs_db *db,
                   void (*fn)(void *arg, const char *channel, const char *payload), void *arg)
{
    if (!cs_db_connected(db) || PQconsumeInput(db->pg) == 0)
        return -1;
    int n = 0;
    PGnotify *nt;
    while ((nt = PQnotifies(db->pg)) != NULL) {
        if (fn)
            fn(arg, nt->relname, nt->extra);
        PQfreemem(nt);
        n++;
    }
    return n;
}

const char *cs_db_str(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

int64_t cs_db_int(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? 0 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

const char *cs_db_text(const PGresult *res, int r, int c)
{
    return PQgetvalue(res, r, c); /* "" for NULL */
}

bool cs_db_bool(const PGresult *res, int r, int c)
{
    return !PQgetisnull(res, r, c) && PQgetvalue(res, r, c)[0] == 't';
}

/* ---- migrations ---- */

enum cs_err cs_db_schema_version(struct cs_db *db, int *version, char *err)
{
    PGresult *res = NULL;
    *version = 0;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q0(MIGRATE_EXISTS), &res, err);
    bool exists = !rc && cs_db_bool(res, 0, CSC_MIGRATE_EXISTS_EXISTS);
    PQclear(res);
    res = NULL;
    if (exists)
        rc = cs_db_exec(db, CS_DB_Q0(MIGRATE_VERSION), &res, err);
    if (!rc && exists)
        *version = (int)cs_db_int(res, 0, CSC_MIGRATE_VERSION_VERSION);
    PQclear(res);
    return rc;
}

enum cs_err cs_db_lock(struct cs_db *db, long long key, char *err)
{
    char k[24];
    snprintf(k, sizeof(k), "%lld", key);
    const char *kp[] = {k};
    return cs_db_exec(db, CS_DB_Q(MIGRATE_LOCK, kp), NULL, err);
}

enum cs_err cs_db_trylock(struct cs_db *db, long long key, bool *got, char *err)
{
    char k[24];
    snprintf(k, sizeof(k), "%lld", key);
    const char *kp[] = {k};
    PGresult *res = NULL;
    *got = false;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(TRY_LOCK, kp), &res, err);
    if (!rc)
        *got = cs_db_bool(res, 0, CSC_TRY_LOCK_LOCKED);
    PQclear(res);
    return rc;
}

void cs_db_unlock(struct cs_db *db, long long key)
{
    if (!cs_db_connected(db))
        return; /* the session, and its lock, are gone */
    char k[24], ignore[CS_ERRLEN];
    snprintf(k, sizeof(k), "%lld", key);
    const char *kp[] = {k};
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(MIGRATE_UNLOCK, kp), NULL, ignore);
    (void)rc;
}

enum cs_err cs_db_migrate(struct cs_db *db, int *applied, char *err)
{
    char ver[16];
    int current = 0;
    *applied = 0;
    enum cs_err rc = cs_db_lock(db, CS_LOCK_MIGRATE, err);
    if (rc)
        return rc;
    if (!(rc = cs_db_exec(db, CS_DB_Q0(MIGRATE_INIT), NULL, err)))
        rc = cs_db_schema_version(db, &current, err);
    for (int i = 0; !rc && i < cs_nmigrations; i++) {
        const struct cs_migration *m = &cs_migrations[i];
        if (m->version <= current)
            continue;
        snprintf(ver, sizeof(ver), "%d", m->version);
        const char *rp[] = {ver, m->name};
        rc = cs_db_begin(db, err);
        if (!rc)
            rc = cs_db_exec_script(db, m->sql, err);
        if (!rc)
            rc = cs_db_exec(db, CS_DB_Q(MIGRATE_RECORD, rp), NULL, err);
        if (!rc)
            rc = cs_db_commit(db, err);
        if (rc) {
            char detail[CS_ERRLEN];
            cs_strlcpy(detail, err ? err : "", sizeof(detail));
            cs_db_rollback(db);
            cs_err_set(err, rc, "migration %s: %s", m->name, detail);
            break;
        }
        cs_log(CS_LOG_INFO, "migrate", "applied %s", m->name);
        (*applied)++;
    }
    cs_db_unlock(db, CS_LOCK_MIGRATE);
    if (rc == CS_ERR_INTERNAL && err) {
        /* A 42xxx error here is most often a role that does not own the schema. */
        char detail[CS_ERRLEN];
        cs_strlcpy(detail, err, sizeof(detail));
        cs_err_set(err, rc, "%s (migrations run as the schema's owner: CS_PG_OWNER_URL)", detail);
    }
    return rc;
}
