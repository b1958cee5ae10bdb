/*
 * sealer.c -- chains the audit log.
 *
 * Closes every transaction that has finished since the last seal into a
 * new audit_seal row (seal_plan, seal_insert in sql/queries/audit.sql):
 * the range [last seal's to_txid, oldest running transaction) is final,
 * because every transaction below the horizon has committed or aborted.
 * A seal covers at most about max_entries entries and always whole
 * transactions. The seq primary key refuses a fork if two sealers race.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

/* seal_plan columns */
enum { P_SEQ, P_HASH, P_LO, P_HORIZON, P_CUT, P_CUT_EMPTY };

enum cs_err sealer_run_once(struct cs_db *db, const struct duty_config *c,
                            struct duty_result *out, char *err)
{
    char lim[16], seq[24], hi[32], prev[65];
    snprintf(lim, sizeof(lim), "%d", c->seal_entries);
    const char *pp[] = {lim};
    PGresult *res = NULL;
    out->changed = 0;
    out->more = false;
    enum cs_err rc = cs_db_exec(db, CSQ_SEAL_PLAN, 1, pp, &res, err);
    if (rc)
        return rc;
    snprintf(seq, sizeof(seq), "%lld", (long long)cs_db_int(res, 0, P_SEQ) + 1);
    const char *head = cs_db_str(res, 0, P_HASH);
    /* The first seal chains to 32 zero bytes. */
    snprintf(prev, sizeof(prev), "%s", head && *head ? head : "");
    if (!*prev) {
        memset(prev, '0', 64);
        prev[64] = '\0';
    }
    const char *lo = cs_db_str(res, 0, P_LO), *cut = cs_db_str(res, 0, P_CUT);
    if (!cut) {
        snprintf(hi, sizeof(hi), "%s", cs_db_str(res, 0, P_HORIZON));
    } else if (cs_db_bool(res, 0, P_CUT_EMPTY)) {
        /* One transaction holds more than max_entries: seal it alone. */
        snprintf(hi, sizeof(hi), "%llu", strtoull(cut, NULL, 10) + 1);
        out->more = true;
    } else {
        snprintf(hi, sizeof(hi), "%s", cut);
        out->more = true;
    }
    char lo_copy[32];
    snprintf(lo_copy, sizeof(lo_copy), "%s", lo);
    PQclear(res);
    if (strtoull(hi, NULL, 10) <= strtoull(lo_copy, NULL, 10))
        return CS_OK;
    const char *ip[] = {seq, lo_copy, hi, prev};
    if ((rc = cs_db_exec(db, CSQ_SEAL_INSERT, 4, ip, &res, err)))
        return rc;
    if (PQntuples(res) == 1)
        out->changed = cs_db_int(res, 0, 1);
    PQclear(res);
    return CS_OK;
}
