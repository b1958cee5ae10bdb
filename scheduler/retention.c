/*
 * retention.c -- keeps the approvals table bounded.
 *
 * Terminal approvals untouched for CS_RETENTION_DAYS are deleted with
 * their votes and notifications, then finished batches whose members are
 * gone; what happened to them stays in the audit log. Events need no
 * retention (they live in the WAL until the relay confirms them). The audit log is kept
 * forever by default; with CS_AUDIT_RETENTION_DAYS its oldest whole seals
 * are pruned with the entries they cover, and an 'audit.pruned' entry keeps
 * the chain verifiable from there (migration 004), through the one
 * function that may delete audit rows (migrations 009, 011), with the
 * anchor signed by the audit key so a forged one is told apart. Sign-in links,
 * sessions and OpenID logins go a day after they expired, were used or
 * revoked (migration 006): only hashes, but no reason to keep them.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cs_audit.h"
#include "scheduler.h"

/* Prunes the oldest whole audit seals past CS_AUDIT_RETENTION_DAYS, with a signed anchor. */
static enum cs_err prune_audit(struct cs_db *db, const struct duty_config *c,
                               struct duty_result *out, char *err)
{
    char adays[16], seals[16], through[24], mac[CS_AUDIT_MAC_HEX];
    snprintf(adays, sizeof(adays), "%d", c->audit_days);
    snprintf(seals, sizeof(seals), "%d", c->batch / 100 > 0 ? c->batch / 100 : 1);
    const char *pp[] = {adays, seals};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(AUDIT_PRUNE_PLAN, pp), &res, err);
    if (rc || PQntuples(res) == 0) {
        PQclear(res);
        return rc;
    }
    snprintf(through, sizeof(through), "%s", PQgetvalue(res, 0, CSC_AUDIT_PRUNE_PLAN_SEQ));
    cs_audit_prune_mac(c->audit_key, cs_db_int(res, 0, CSC_AUDIT_PRUNE_PLAN_SEQ),
                       PQgetvalue(res, 0, CSC_AUDIT_PRUNE_PLAN_HASH_HEX), mac);
    PQclear(res);
    const char *ap[] = {adays, through, mac, "scheduler:retention"};
    if ((rc = cs_db_exec(db, CS_DB_Q(AUDIT_PRUNE, ap), &res, err)))
        return rc;
    out->changed += cs_db_int(res, 0, CSC_AUDIT_PRUNE_PRUNED);
    PQclear(res);
    return CS_OK;
}

enum cs_err retention_run_once(struct cs_db *db, const struct duty_config *c,
                               struct duty_result *out, char *err)
{
    char days[16], lim[16];
    snprintf(days, sizeof(days), "%d", c->retention_days);
    snprintf(lim, sizeof(lim), "%d", c->batch);
    const char *p[] = {days, lim};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(RETENTION_APPROVALS, p), &res, err);
    if (rc)
        return rc;
    out->changed = strtoll(PQcmdTuples(res), NULL, 10);
    out->more = out->changed == c->batch;
    PQclear(res);
    if ((rc = cs_db_exec(db, CS_DB_Q(RETENTION_BATCHES, p), &res, err)))
        return rc;
    int64_t batches = strtoll(PQcmdTuples(res), NULL, 10);
    out->changed += batches;
    out->more = out->more || batches == c->batch;
    PQclear(res);
    if ((rc = cs_db_exec(db, CSQ_RETENTION_SIGNIN, CSP_RETENTION_SIGNIN, p + 1, &res, err)))
        return rc;
    int64_t signin = cs_db_int(res, 0, CSC_RETENTION_SIGNIN_DELETED);
    out->changed += signin;
    out->more = out->more || signin >= c->batch;
    PQclear(res);
    return c->audit_days > 0 ? prune_audit(db, c, out, err) : CS_OK;
}
