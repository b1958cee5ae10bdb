/*
 * sealer.c -- chains and signs the audit log, and publishes each head.
 *
 * Closes every transaction that has finished since the last seal into a
 * new audit_seal row (seal_plan, seal_preview, seal_insert in
 * sql/queries/audit.sql): the range [last seal's to_txid, oldest running
 * transaction) is final, because every transaction below the horizon has
 * committed or aborted. A seal covers at most about seal_entries entries
 * and always whole transactions. The seq primary key refuses a fork if two
 * sealers race. Each seal is signed with the audit key (cs_audit.h), which
 * the database never sees, and its head appended to CS_AUDIT_HEAD_FILE
 * after the commit; heads a crash left unpublished go out first on the next
 * run (only after their signature checks). When the file holds a seal the
 * database no longer has (the chain was cut), the sealer refuses to go on:
 * sealing again would reuse the cut seqs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_audit.h"
#include "cs_crypto.h"
#include "cs_log.h"
#include "scheduler.h"

/*
 * Appends to the heads file every signed seal after the last published one,
 * up to head. Legacy (unsigned) seals are never published; while the head
 * is one of them there is nothing to publish, so an idle sealer does not
 * walk a long legacy range every sweep.
 */
static enum cs_err publish_missing(struct cs_db *db, const struct duty_config *c, int64_t head,
                                   bool head_signed, char *err)
{
    int64_t last = 0;
    enum cs_err rc = cs_audit_head_last(c->head_file, &last, err);
    if (rc)
        return rc;
    if (last > head)
        return cs_err_set(err, CS_ERR_CONFLICT,
                          "the audit chain was cut: seal %lld is published "
                          "but the database ends at seal %lld; not sealing (run `countersign "
                          "audit verify`)",
                          (long long)last, (long long)head);
    while (head_signed && last < head) {
        char after[24];
        snprintf(after, sizeof(after), "%lld", (long long)last);
        const char *p[] = {after, "500"};
        PGresult *res = NULL;
        if ((rc = cs_db_exec(db, CS_DB_Q(SEAL_LIST, p), &res, err)))
            return rc;
        int n = PQntuples(res);
        for (int r = 0; r < n && !rc; r++) {
            const char *hash = PQgetvalue(res, r, CSC_SEAL_LIST_HASH_HEX),
                       *mac = PQgetvalue(res, r, CSC_SEAL_LIST_MAC_HEX);
            int64_t seq = cs_db_int(res, r, CSC_SEAL_LIST_SEQ);
            char want[CS_AUDIT_MAC_HEX];
            cs_audit_seal_mac(c->audit_key, seq, hash, want);
            if (*mac && (strlen(mac) != 64 || !cs_ct_equal(mac, want, 64)))
                rc = cs_err_set(err, CS_ERR_CONFLICT,
                                "seal %lld is not signed by the audit key: "
                                "not publishing it (run `countersign audit verify`)",
                                (long long)seq);
            else if (*mac) /* unsigned: a legacy seal, never published */
                rc = cs_audit_head_append(c->head_file, seq, hash, mac, err);
            last = seq;
        }
        PQclear(res);
        if (rc)
            return rc;
        if (n == 0)
            break;
    }
    return CS_OK;
}

enum cs_err sealer_run_once(struct cs_db *db, const struct duty_config *c, struct duty_result *out,
                            char *err)
{
    char lim[16], seq[24], hi[32], prev[65];
    snprintf(lim, sizeof(lim), "%d", c->seal_entries);
    const char *pp[] = {lim};
    PGresult *res = NULL;
    out->changed = 0;
    out->more = false;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(SEAL_PLAN, pp), &res, err);
    if (rc)
        return rc;
    int64_t head = cs_db_int(res, 0, CSC_SEAL_PLAN_HEAD_SEQ);
    snprintf(seq, sizeof(seq), "%lld", (long long)head + 1);
    const char *head_hash = cs_db_str(res, 0, CSC_SEAL_PLAN_HEAD_HASH_HEX);
    /* The first seal chains to 32 zero bytes. */
    snprintf(prev, sizeof(prev), "%s", head_hash && *head_hash ? head_hash : "");
    if (!*prev) {
        memset(prev, '0', 64);
        prev[64] = '\0';
    }
    const char *lo = cs_db_str(res, 0, CSC_SEAL_PLAN_LO),
               *cut = cs_db_str(res, 0, CSC_SEAL_PLAN_CUT);
    if (!cut) {
        snprintf(hi, sizeof(hi), "%s", cs_db_str(res, 0, CSC_SEAL_PLAN_HORIZON));
    } else if (cs_db_bool(res, 0, CSC_SEAL_PLAN_EMPTY)) {
        /* One transaction holds more than seal_entries: seal it alone. */
        snprintf(hi, sizeof(hi), "%llu", strtoull(cut, NULL, 10) + 1);
        out->more = true;
    } else {
        snprintf(hi, sizeof(hi), "%s", cut);
        out->more = true;
    }
    char lo_copy[32];
    snprintf(lo_copy, sizeof(lo_copy), "%s", lo);
    bool head_signed = cs_db_bool(res, 0, CSC_SEAL_PLAN_HEAD_SIGNED);
    PQclear(res);
    if (c->head_file && (rc = publish_missing(db, c, head, head_signed, err)))
        return rc;
    if (strtoull(hi, NULL, 10) <= strtoull(lo_copy, NULL, 10))
        return CS_OK;
    const char *vp[] = {seq, lo_copy, hi, prev};
    if ((rc = cs_db_exec(db, CS_DB_Q(SEAL_PREVIEW, vp), &res, err)))
        return rc;
    char n[24], entries_hash[CS_AUDIT_MAC_HEX], hash[CS_AUDIT_MAC_HEX], mac[CS_AUDIT_MAC_HEX];
    snprintf(n, sizeof(n), "%s", PQgetvalue(res, 0, CSC_SEAL_PREVIEW_N));
    snprintf(entries_hash, sizeof(entries_hash), "%s", PQgetvalue(res, 0, CSC_SEAL_PREVIEW_H_HEX));
    snprintf(hash, sizeof(hash), "%s", PQgetvalue(res, 0, CSC_SEAL_PREVIEW_SEAL_HASH_HEX));
    PQclear(res);
    if (!strcmp(n, "0"))
        return CS_OK;
    cs_audit_seal_mac(c->audit_key, head + 1, hash, mac);
    const char *ip[] = {seq, lo_copy, hi, n, entries_hash, prev, hash, mac};
    if ((rc = cs_db_exec(db, CS_DB_Q(SEAL_INSERT, ip), NULL, err)))
        return rc;
    out->changed = strtoll(n, NULL, 10);
    if (c->head_file && (rc = cs_audit_head_append(c->head_file, head + 1, hash, mac, err)))
        cs_log(CS_LOG_WARN, "sealer", "seal %s is made but not yet published (next sweep): %s", seq,
               err);
    return CS_OK;
}
