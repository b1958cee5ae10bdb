/*
 * cs_audit.c -- independent verification of the sealed audit chain.
 *
 * Checklist: audit_line() here and cs_audit_line() in
 * sql/migrations/001_core.sql, and seal_hash() here and seal_insert in
 * sql/queries/audit.sql, change together.
 */
#include "cs_audit.h"

#include <stdio.h>
#include <string.h>

#include "cs_crypto.h"
#include "cs_mem.h"
#include "cs_passkey.h"

#define PAGE 500

/* audit_range columns */
enum { A_ID, A_TXID, A_AT_US, A_ACTOR, A_ACTION, A_APPROVAL, A_DETAIL };
/* seal_list columns */
enum { S_SEQ, S_FROM, S_TO, S_ENTRIES, S_ENTRIES_HASH, S_PREV, S_HASH };

static void audit_line(struct cs_sha256 *h, const PGresult *res, int r)
{
    static const int cols[] = {A_ID, A_TXID, A_AT_US, A_ACTOR, A_ACTION, A_APPROVAL, A_DETAIL};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        const char *v = PQgetvalue(res, r, cols[i]);
        cs_sha256_update(h, v, strlen(v));
        cs_sha256_update(h, i + 1 < sizeof(cols) / sizeof(cols[0]) ? "|" : "\n", 1);
    }
}

static void seal_hash(const unsigned char prev[32], const char *seq, const char *from,
                      const char *to, const char *n, const unsigned char entries[32],
                      unsigned char out[32])
{
    struct cs_sha256 *h = cs_sha256_new();
    char mid[256];
    int len = snprintf(mid, sizeof(mid), "%s|%s|%s|%s|", seq, from, to, n);
    cs_sha256_update(h, prev, 32);
    cs_sha256_update(h, mid, (size_t)len);
    cs_sha256_update(h, entries, 32);
    cs_sha256_final(h, out);
}

static bool hex32(const char *s, unsigned char out[32])
{
    return s && cs_hex_decode(s, strlen(s), out, 32) == CS_OK;
}

/* Verifies one seal row; fills report->problem on a break. */
static enum cs_err check_seal(struct cs_db *db, const PGresult *seals, int r,
                              unsigned char prev[32], const char *expect_from,
                              struct cs_audit_report *rep, char *err)
{
    unsigned char want_entries[32], want_prev[32], want_hash[32], got_entries[32], got_hash[32];
    const char *seq = PQgetvalue(seals, r, S_SEQ), *from = PQgetvalue(seals, r, S_FROM),
               *to = PQgetvalue(seals, r, S_TO);
    if (!hex32(PQgetvalue(seals, r, S_ENTRIES_HASH), want_entries) ||
        !hex32(PQgetvalue(seals, r, S_PREV), want_prev) ||
        !hex32(PQgetvalue(seals, r, S_HASH), want_hash)) {
        snprintf(rep->problem, sizeof(rep->problem), "seal %s has malformed hashes", seq);
        return CS_OK;
    }
    if (strcmp(from, expect_from) != 0) {
        snprintf(rep->problem, sizeof(rep->problem),
                 "seal %s starts at txid %s, expected %s (a gap or overlap)", seq, from,
                 expect_from);
        return CS_OK;
    }
    if (!cs_ct_equal(want_prev, prev, 32)) {
        snprintf(rep->problem, sizeof(rep->problem), "seal %s does not chain to its predecessor",
                 seq);
        return CS_OK;
    }
    PGresult *res = NULL;
    const char *p[] = {from, to};
    enum cs_err rc = cs_db_exec(db, CSQ_AUDIT_RANGE, 2, p, &res, err);
    if (rc)
        return rc;
    struct cs_sha256 *h = cs_sha256_new();
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        audit_line(h, res, i);
    cs_sha256_final(h, got_entries);
    PQclear(res);
    char nbuf[24];
    snprintf(nbuf, sizeof(nbuf), "%d", n);
    if (strcmp(nbuf, PQgetvalue(seals, r, S_ENTRIES)) != 0) {
        snprintf(rep->problem, sizeof(rep->problem), "seal %s covers %s entries but %d exist",
                 seq, PQgetvalue(seals, r, S_ENTRIES), n);
        return CS_OK;
    }
    if (!cs_ct_equal(got_entries, want_entries, 32)) {
        snprintf(rep->problem, sizeof(rep->problem),
                 "an entry sealed by seal %s was changed (entries hash differs)", seq);
        return CS_OK;
    }
    seal_hash(prev, seq, from, to, nbuf, got_entries, got_hash);
    if (!cs_ct_equal(got_hash, want_hash, 32)) {
        snprintf(rep->problem, sizeof(rep->problem), "seal %s hash differs", seq);
        return CS_OK;
    }
    memcpy(prev, got_hash, 32);
    rep->entries += n;
    return CS_OK;
}

/* After a prune: the anchor hash recorded for the seal before the first one left. */
static enum cs_err anchor(struct cs_db *db, const PGresult *seals, unsigned char prev[32],
                          char *expect_from, struct cs_audit_report *rep, char *err)
{
    char before[24];
    snprintf(before, sizeof(before), "%lld", (long long)cs_db_int(seals, 0, S_SEQ) - 1);
    const char *p[] = {before};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CSQ_AUDIT_ANCHOR, 1, p, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) != 1 || !hex32(cs_db_str(res, 0, 0), prev))
        snprintf(rep->problem, sizeof(rep->problem),
                 "seals 1..%s are missing and no audit.pruned entry anchors the chain", before);
    PQclear(res);
    cs_strlcpy(expect_from, PQgetvalue(seals, 0, S_FROM), 32);
    return CS_OK;
}

/* audit_passkey_votes columns */
enum { PV_ID, PV_APPROVAL, PV_ACTION, PV_DETAIL };

/* Re-verifies every passkey-signed vote; the first failure becomes the report's problem. */
static enum cs_err verify_assertions(struct cs_db *db, struct cs_audit_report *rep, char *err)
{
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CSQ_AUDIT_PASSKEY_VOTES, 0, NULL, &res, err);
    if (rc)
        return rc;
    for (int r = 0; r < PQntuples(res); r++) {
        char why[CS_ERRLEN];
        const char *action = cs_db_str(res, r, PV_ACTION);
        enum cs_err vrc = cs_passkey_reverify(db, cs_db_str(res, r, PV_APPROVAL) ? cs_db_str(res, r, PV_APPROVAL) : "",
                                              !strcmp(action, "vote.approve") ? "approve" : "deny",
                                              cs_db_str(res, r, PV_DETAIL), why);
        if (vrc == CS_ERR_DB) {
            PQclear(res);
            return cs_err_set(err, vrc, "%s", why);
        }
        if (vrc && !rep->problem[0])
            snprintf(rep->problem, sizeof(rep->problem), "audit entry %.20s: passkey vote: %.200s",
                     cs_db_str(res, r, PV_ID), why);
        if (!vrc)
            rep->assertions++;
    }
    PQclear(res);
    return CS_OK;
}

enum cs_err cs_audit_verify(struct cs_db *db, struct cs_audit_report *rep, char *err)
{
    memset(rep, 0, sizeof(*rep));
    unsigned char prev[32] = {0};
    char after[24] = "0", expect_from[32] = "1", page[8];
    snprintf(page, sizeof(page), "%d", PAGE);
    enum cs_err rc = CS_OK;
    for (;;) {
        PGresult *seals = NULL;
        const char *p[] = {after, page};
        if ((rc = cs_db_exec(db, CSQ_SEAL_LIST, 2, p, &seals, err)))
            return rc;
        int n = PQntuples(seals);
        if (n > 0 && rep->seals == 0 && cs_db_int(seals, 0, S_SEQ) > 1) {
            /* The oldest seals were pruned: continue from the recorded anchor. */
            rc = anchor(db, seals, prev, expect_from, rep, err);
            if (rc || rep->problem[0]) {
                PQclear(seals);
                break;
            }
        }
        for (int r = 0; r < n && !rc && !rep->problem[0]; r++) {
            rc = check_seal(db, seals, r, prev, expect_from, rep, err);
            if (!rc && rep->problem[0])
                rep->broken_seq = cs_db_int(seals, r, S_SEQ);
            if (!rc && !rep->problem[0]) {
                rep->seals++;
                cs_strlcpy(expect_from, PQgetvalue(seals, r, S_TO), sizeof(expect_from));
                cs_strlcpy(after, PQgetvalue(seals, r, S_SEQ), sizeof(after));
            }
        }
        PQclear(seals);
        if (rc || rep->problem[0] || n < PAGE)
            break;
    }
    if (rc)
        return rc;
    PGresult *res = NULL;
    if ((rc = cs_db_exec(db, CSQ_AUDIT_UNSEALED, 0, NULL, &res, err)))
        return rc;
    int64_t below = cs_db_int(res, 0, 0);
    rep->unsealed_tail = cs_db_int(res, 0, 1);
    PQclear(res);
    if (!rep->problem[0] && below > 0)
        snprintf(rep->problem, sizeof(rep->problem),
                 "%lld entries are older than the first seal", (long long)below);
    if ((rc = verify_assertions(db, rep, err)))
        return rc;
    rep->ok = rep->problem[0] == '\0';
    return CS_OK;
}
