/*
 * cs_audit.h -- the audit log's signed seals, their published heads, and
 * verifying both.
 *
 * Entries are written by the transition statements themselves
 * (sql/queries) and sealed by the scheduler (scheduler/sealer.c); see
 * sql/migrations/001_core.sql for the chain and 011_audit_signed.sql for
 * the signatures. Each seal is signed with a key derived from the master
 * key (cs_audit_key), which the database never holds, and its head is
 * appended to the published heads file (CS_AUDIT_HEAD_FILE), a place the
 * database's users cannot rewrite. cs_audit_verify() recomputes every
 * seal from the raw entries in C, independently of the database's own
 * functions, checks each signature and the prune anchor's, compares the
 * chain with the published heads, and reports the first break with what
 * it means: a rewrite, a truncation or a forged prune. It then
 * re-verifies every passkey assertion stored with a vote against the
 * approver's registered public key (cs_passkey.h).
 */
#ifndef CS_AUDIT_H
#define CS_AUDIT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "cs_config.h"
#include "cs_db.h"
#include "cs_err.h"

#define CS_AUDIT_SEAL_PURPOSE "countersign/audit-seal/v1" /* cs_key_derive purpose */
#define CS_AUDIT_MAC_HEX 65                               /* 64 hex digits and a NUL */

/* What a broken chain means (report->tamper). */
#define CS_AUDIT_REWRITE "rewrite"            /* a sealed entry or seal changed */
#define CS_AUDIT_TRUNCATION "truncation"      /* published seals are missing */
#define CS_AUDIT_FORGED_PRUNE "forged_prune"  /* seals deleted behind an unsigned anchor */
#define CS_AUDIT_PUBLISHED "published_record" /* the heads file itself is wrong */

struct cs_audit_report {
    bool ok;
    int64_t seals;           /* seals verified */
    int64_t entries;         /* entries covered by them */
    int64_t unsealed_tail;   /* newer entries not sealed yet */
    int64_t signed_seals;    /* of seals, signed ones */
    int64_t legacy_seals;    /* of seals, made before signing (migration 011): a prefix */
    bool legacy_anchor;      /* the prune anchor predates signing */
    bool published_checked;  /* a heads file was configured */
    int64_t published_head;  /* newest seq in the heads file (0: none) */
    int64_t unpublished;     /* signed seals newer than published_head (published next sweep) */
    int64_t broken_seq;      /* first bad seal (0 when ok) */
    int64_t assertions;      /* passkey-signed votes re-verified (cs_passkey_reverify) */
    const char *tamper;      /* CS_AUDIT_* when not ok, or "" */
    char problem[CS_ERRLEN]; /* what is wrong */
};

/* The key seals and prune anchors are signed with, derived from the master key. */
void cs_audit_key(const unsigned char master[32], unsigned char key[32]);
/* Signature (hex) of seal `seq` whose hash is hash_hex. */
void cs_audit_seal_mac(const unsigned char key[32], int64_t seq, const char *hash_hex,
                       char out[CS_AUDIT_MAC_HEX]);
/* Signature (hex) of a prune anchor: seals up to `seq` pruned, chain continues from anchor_hex. */
void cs_audit_prune_mac(const unsigned char key[32], int64_t seq, const char *anchor_hex,
                        char out[CS_AUDIT_MAC_HEX]);

/*
 * The published heads file: one JSON line per signed seal,
 * {"seq":N,"hash":"<hex>","mac":"<hex>"}, only ever appended.
 * cs_audit_head_last: the newest seq in it (0 when the file is missing or empty).
 * cs_audit_head_append: appends one line and fsyncs it.
 */
enum cs_err cs_audit_head_last(const char *path, int64_t *seq, char *err) CS_MUSTCHECK;
enum cs_err cs_audit_head_append(const char *path, int64_t seq, const char *hash_hex,
                                 const char *mac_hex, char *err) CS_MUSTCHECK;

/*
 * Verifies the whole chain with `key` (cs_audit_key) against the heads file
 * `head_file` (NULL: not configured; truncation is then not detectable).
 * CS_OK means it ran; report->ok says whether it held.
 */
enum cs_err cs_audit_verify(struct cs_db *db, const unsigned char key[32], const char *head_file,
                            struct cs_audit_report *report, char *err) CS_MUSTCHECK;

/*
 * cs_audit_verify with the key derived from cfg's master key (CS_ERR_CONFIG
 * without one) and cfg's CS_AUDIT_HEAD_FILE: what the CLI, the admin API and
 * the console run.
 */
enum cs_err cs_audit_verify_cfg(struct cs_db *db, const struct cs_config *cfg,
                                struct cs_audit_report *report, char *err) CS_MUSTCHECK;

/* The report as the CLI and the admin API print it (caller releases). */
json_object *cs_audit_report_json(const struct cs_audit_report *report);

#endif
