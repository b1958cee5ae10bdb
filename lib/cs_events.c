/*
 * cs_events.c -- the event slot (see cs_events.h).
 */
#include "cs_events.h"

#include <string.h>

static bool slot_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

enum cs_err cs_events_slot_name(const struct cs_config *cfg, const char *dbname,
                                char out[CS_EVENTS_SLOT_MAX + 1], char *err)
{
    if (cfg->event_slot && *cfg->event_slot) {
        size_t n = strlen(cfg->event_slot);
        bool ok = n <= CS_EVENTS_SLOT_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = slot_char(cfg->event_slot[i]);
        if (!ok)
            return cs_err_set(err, CS_ERR_CONFIG,
                              "CS_EVENT_SLOT must be 1 to %d characters "
                              "of a-z, 0-9 and _",
                              CS_EVENTS_SLOT_MAX);
        memcpy(out, cfg->event_slot, n + 1);
        return CS_OK;
    }
    int n = snprintf(out, CS_EVENTS_SLOT_MAX + 1, "countersign_%s", dbname ? dbname : "");
    if (n > CS_EVENTS_SLOT_MAX)
        n = CS_EVENTS_SLOT_MAX;
    for (int i = 0; i < n; i++) {
        char c = out[i];
        if (c >= 'A' && c <= 'Z')
            out[i] = (char)(c - 'A' + 'a');
        else if (!slot_char(c))
            out[i] = '_';
    }
    return CS_OK;
}

static enum cs_err slot_exists(struct cs_db *db, const char *name, bool *exists, char *err)
{
    const char *p[] = {name};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(EVENT_SLOT_STATE, p), &res, err);
    if (!rc)
        *exists = cs_db_bool(res, 0, CSC_EVENT_SLOT_STATE_SLOT_EXISTS);
    PQclear(res);
    return rc;
}

enum cs_err cs_events_slot_ensure(struct cs_db *db, const struct cs_config *cfg, char *err)
{
    char name[CS_EVENTS_SLOT_MAX + 1];
    bool exists = false;
    enum cs_err rc = cs_events_slot_name(cfg, db->pg ? PQdb(db->pg) : NULL, name, err);
    if (rc || (rc = slot_exists(db, name, &exists, err)) || exists)
        return rc;
    const char *p[] = {name};
    PGresult *res = NULL;
    char why[CS_ERRLEN];
    /* One process at a time (the migrations' lock): concurrent creators of the
     * publication would collide. The publication first: pgoutput fails on any
     * change older than it. */
    rc = cs_db_lock(db, CS_LOCK_MIGRATE, why);
    if (!rc && !(rc = slot_exists(db, name, &exists, why)) && !exists &&
        !(rc = cs_db_exec(db, CS_DB_Q0(EVENT_PUBLICATION_CREATE), NULL, why)))
        rc = cs_db_exec(db, CS_DB_Q(EVENT_SLOT_CREATE, p), &res, why);
    PQclear(res);
    cs_db_unlock(db, CS_LOCK_MIGRATE);
    if (rc == CS_OK)
        return CS_OK;
    if (strstr(why, "wal_level"))
        return cs_err_set(err, CS_ERR_CONFIG,
                          "Postgres must run with wal_level = logical: "
                          "events leave through the logical replication slot %s",
                          name);
    /* Another process may have made it between our check and our create. */
    if (slot_exists(db, name, &exists, err) == CS_OK && exists)
        return CS_OK;
    return cs_err_set(err, CS_ERR_CONFIG,
                      "no event slot %s, and this role may not create it: "
                      "run `countersign migrate` as the owner, with REPLICATION",
                      name);
}
