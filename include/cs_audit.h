/*
 * cs_audit.h -- verifying the audit log's hash chain.
 *
 * Entries are written by the transition statements themselves
 * (sql/queries) and sealed by the scheduler (scheduler/sealer.c);
 * see sql/migrations/001_core.sql for the chain. cs_audit_verify()
 * recomputes every seal from the raw entries in C, independently of the
 * database's own functions, and reports the first break. It then
 * re-verifies every passkey assertion stored with a vote against the
 * approver's registered public key (cs_passkey.h).
 */
#ifndef CS_AUDIT_H
#define CS_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "cs_db.h"
#include "cs_err.h"

struct cs_audit_report {
    bool ok;
    int64_t seals;            /* seals verified */
    int64_t entries;          /* entries covered by them */
    int64_t unsealed_tail;    /* newer entries not sealed yet */
    int64_t broken_seq;       /* first bad seal (0 when ok) */
    int64_t assertions;       /* passkey-signed votes re-verified (cs_passkey_reverify) */
    char problem[CS_ERRLEN];  /* what is wrong */
};

/* Verifies the whole chain. CS_OK means it ran; report->ok says whether it held. */
enum cs_err cs_audit_verify(struct cs_db *db, struct cs_audit_report *report,
                            char *err) CS_MUSTCHECK;

#endif
