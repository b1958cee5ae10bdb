/*
 * cs_audit.c -- the audit log's signed seals, the published heads file,
 * and independent verification of both (see cs_audit.h).
 *
 * Checklist: audit_line() here and cs_audit_line() in
 * sql/migrations/001_core.sql, seal_hash() here and seal_preview in
 * sql/queries/audit.sql, and mac_of() here and the comment of
 * sql/migrations/011_audit_signed.sql change together.
 */
#include "cs_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_mem.h"
#include "cs_passkey.h"

#define PAGE 500
#define HEAD_LINE_MAX 256

/* ---- keys and signatures ---------------------------------------------- */

void cs_audit_key(const unsigned char master[32], unsigned char key[32])
{
    cs_key_derive(master, CS_AUDIT_SEAL_PURPOSE, key);
}

static void mac_of(const unsigned char key[32], const char *what, int64_t seq, const char *hex,
                   char out[CS_AUDIT_MAC_HEX])
{
    char msg[160];
    unsigned char mac[32];
    int n = snprintf(msg, sizeof(msg), "%s|%lld|%.64s", what, (long long)seq, hex);
    cs_hmac_sha256(key, 32, msg, (size_t)n, mac);
    cs_hex_encode(mac, sizeof(mac), out);
}

void cs_audit_seal_mac(const unsigned char key[32], int64_t seq, const char *hash_hex,
                       char out[CS_AUDIT_MAC_HEX])
{
    mac_of(key, "countersign-audit-seal/v1", seq, hash_hex, out);
}

void cs_audit_prune_mac(const unsigned char key[32], int64_t seq, const char *anchor_hex,
                        char out[CS_AUDIT_MAC_HEX])
{
    mac_of(key, "countersign-audit-prune/v1", seq, anchor_hex, out);
}

/* True when mac_hex is the signature `want` (constant time). */
static bool mac_ok(const char *mac_hex, const char want[CS_AUDIT_MAC_HEX])
{
    return mac_hex && strlen(mac_hex) == 64 && cs_ct_equal(mac_hex, want, 64);
}

/* ---- the published heads file ----------------------------------------- */

struct head {
    int64_t seq;
    char hash[CS_AUDIT_MAC_HEX];
    char mac[CS_AUDIT_MAC_HEX];
};

/* Parses one line of the heads file; false when it is not one. */
static bool head_parse(const char *line, struct head *h)
{
    long long seq = 0;
    int end = 0;
    if (sscanf(line, "{\"seq\":%lld,\"hash\":\"%64[0-9a-f]\",\"mac\":\"%64[0-9a-f]\"}%n", &seq,
               h->hash, h->mac, &end) != 3 ||
        seq < 1 || strlen(h->hash) != 64 || strlen(h->mac) != 64 ||
        (line[end] != '\0' && line[end] != '\n'))
        return false;
    h->seq = seq;
    return true;
}

enum cs_err cs_audit_head_last(const char *path, int64_t *seq, char *err)
{
    *seq = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? CS_OK
                               : cs_err_set(err, CS_ERR_CONFIG, "CS_AUDIT_HEAD_FILE %s: %s", path,
                                            strerror(errno));
    char tail[2 * HEAD_LINE_MAX + 1];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 2 * HEAD_LINE_MAX ? size - 2 * HEAD_LINE_MAX : 0, SEEK_SET);
    size_t n = fread(tail, 1, sizeof(tail) - 1, f);
    fclose(f);
    tail[n] = '\0';
    while (n && tail[n - 1] == '\n')
        tail[--n] = '\0';
    if (n == 0)
        return CS_OK;
    char *last = strrchr(tail, '\n');
    struct head h;
    if (!head_parse(last ? last + 1 : tail, &h))
        return cs_err_set(err, CS_ERR_CONFLICT,
                          "CS_AUDIT_HEAD_FILE %s: its last line is not a "
                          "published head",
                          path);
    *seq = h.seq;
    return CS_OK;
}

enum cs_err cs_audit_head_append(const char *path, int64_t seq, const char *hash_hex,
                                 const char *mac_hex, char *err)
{
    char line[HEAD_LINE_MAX];
    int n = snprintf(line, sizeof(line), "{\"seq\":%lld,\"hash\":\"%.64s\",\"mac\":\"%.64s\"}\n",
                     (long long)seq, hash_hex, mac_hex);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return cs_err_set(err, CS_ERR_CONFIG, "CS_AUDIT_HEAD_FILE %s: %s", path, strerror(errno));
    bool ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    return ok ? CS_OK
              : cs_err_set(err, CS_ERR_UNAVAILABLE, "CS_AUDIT_HEAD_FILE %s: write: %s", path,
                           strerror(saved));
}

/* Every head in the file, in file order; *n heads (caller frees). */
struct heads {
    struct head *v;
    size_t n;
    int64_t max_seq;
};

static enum cs_err heads_load(const char *path, const unsigned char key[32], struct heads *hs,
                              struct cs_audit_report *rep, char *err);

/* ---- verifying ---------------------------------------------------------- */

/* Records the first break: what it means and what is wrong. */
static void broke(struct cs_audit_report *rep, const char *tamper, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void broke(struct cs_audit_report *rep, const char *tamper, const char *fmt, ...)
{
    if (rep->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->problem, sizeof(rep->problem), fmt, ap);
    va_end(ap);
    rep->tamper = tamper;
}

static enum cs_err heads_load(const char *path, const unsigned char key[32], struct heads *hs,
                              struct cs_audit_report *rep, char *err)
{
    memset(hs, 0, sizeof(*hs));
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? CS_OK
                               : cs_err_set(err, CS_ERR_CONFIG, "CS_AUDIT_HEAD_FILE %s: %s", path,
                                            strerror(errno));
    char line[HEAD_LINE_MAX];
    size_t cap = 0, lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        struct head h;
        char want[CS_AUDIT_MAC_HEX];
        if (!head_parse(line, &h)) {
            broke(rep, CS_AUDIT_PUBLISHED, "%s line %zu is not a published head", path, lineno);
            break;
        }
        cs_audit_seal_mac(key, h.seq, h.hash, want);
        if (!mac_ok(h.mac, want)) {
            broke(rep, CS_AUDIT_PUBLISHED,
                  "%s line %zu (seal %lld) is not signed by the sealing "
                  "key: the heads file was written by someone else",
                  path, lineno, (long long)h.seq);
            break;
        }
        if (hs->n == cap) {
            cap = cap ? 2 * cap : 256;
            hs->v = cs_realloc(hs->v, cap * sizeof(*hs->v));
        }
        hs->v[hs->n++] = h;
        if (h.seq > hs->max_seq)
            hs->max_seq = h.seq;
    }
    fclose(f);
    return CS_OK;
}

/* The published heads of seal `seq` must all be `hash_hex`. */
static void heads_check(const struct heads *hs, int64_t seq, const char *hash_hex,
                        struct cs_audit_report *rep, const char *tamper, const char *what)
{
    for (size_t i = 0; i < hs->n; i++)
        if (hs->v[i].seq == seq && strcmp(hs->v[i].hash, hash_hex) != 0) {
            broke(rep, tamper,
                  "%s %lld differs from its published head (published %.16s..., "
                  "database %.16s...)",
                  what, (long long)seq, hs->v[i].hash, hash_hex);
            return;
        }
}

static void audit_line(struct cs_sha256 *h, const PGresult *res, int r)
{
    static const int cols[] = {CSC_AUDIT_RANGE_ID,     CSC_AUDIT_RANGE_TXID,
                               CSC_AUDIT_RANGE_AT_US,  CSC_AUDIT_RANGE_ACTOR,
                               CSC_AUDIT_RANGE_ACTION, CSC_AUDIT_RANGE_APPROVAL_ID,
                               CSC_AUDIT_RANGE_DETAIL};
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

/* What cs_audit_verify carries from seal to seal. */
struct walk {
    struct cs_db *db;
    const unsigned char *key;
    const struct heads *heads;
    unsigned char prev[32];
    char expect_from[32];
    int64_t head_seq; /* newest seal seen */
};

/* Verifies one seal row: chain, entries, signature, published head. */
static enum cs_err check_seal(struct walk *w, const PGresult *seals, int r,
                              struct cs_audit_report *rep, char *err)
{
    unsigned char want_entries[32], want_prev[32], want_hash[32], got_entries[32], got_hash[32];
    const char *seq = PQgetvalue(seals, r, CSC_SEAL_LIST_SEQ),
               *from = PQgetvalue(seals, r, CSC_SEAL_LIST_FROM_TXID),
               *to = PQgetvalue(seals, r, CSC_SEAL_LIST_TO_TXID),
               *mac = PQgetvalue(seals, r, CSC_SEAL_LIST_MAC_HEX);
    int64_t seqn = cs_db_int(seals, r, CSC_SEAL_LIST_SEQ);
    if (!hex32(PQgetvalue(seals, r, CSC_SEAL_LIST_ENTRIES_HASH_HEX), want_entries) ||
        !hex32(PQgetvalue(seals, r, CSC_SEAL_LIST_PREV_HASH_HEX), want_prev) ||
        !hex32(PQgetvalue(seals, r, CSC_SEAL_LIST_HASH_HEX), want_hash)) {
        broke(rep, CS_AUDIT_REWRITE, "seal %s has malformed hashes", seq);
        return CS_OK;
    }
    if (strcmp(from, w->expect_from) != 0) {
        broke(rep, CS_AUDIT_REWRITE, "seal %s starts at txid %s, expected %s (a gap or overlap)",
              seq, from, w->expect_from);
        return CS_OK;
    }
    if (!cs_ct_equal(want_prev, w->prev, 32)) {
        broke(rep, CS_AUDIT_REWRITE, "seal %s does not chain to its predecessor", seq);
        return CS_OK;
    }
    PGresult *res = NULL;
    const char *p[] = {from, to};
    enum cs_err rc = cs_db_exec(w->db, CS_DB_Q(AUDIT_RANGE, p), &res, err);
    if (rc)
        return rc;
    struct cs_sha256 *h = cs_sha256_new();
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        audit_line(h, res, i);
    cs_sha256_final(h, got_entries);
    PQclear(res);
    char nbuf[24], hash_hex[CS_AUDIT_MAC_HEX], want_mac[CS_AUDIT_MAC_HEX];
    snprintf(nbuf, sizeof(nbuf), "%d", n);
    if (strcmp(nbuf, PQgetvalue(seals, r, CSC_SEAL_LIST_ENTRIES)) != 0) {
        broke(rep, CS_AUDIT_REWRITE, "seal %s covers %s entries but %d exist", seq,
              PQgetvalue(seals, r, CSC_SEAL_LIST_ENTRIES), n);
        return CS_OK;
    }
    if (!cs_ct_equal(got_entries, want_entries, 32)) {
        broke(rep, CS_AUDIT_REWRITE,
              "an entry sealed by seal %s was changed (entries hash differs)", seq);
        return CS_OK;
    }
    seal_hash(w->prev, seq, from, to, nbuf, got_entries, got_hash);
    if (!cs_ct_equal(got_hash, want_hash, 32)) {
        broke(rep, CS_AUDIT_REWRITE, "seal %s hash differs", seq);
        return CS_OK;
    }
    cs_hex_encode(got_hash, 32, hash_hex);
    if (!*mac) {
        /* Unsigned seals are the legacy prefix, made before migration 011. */
        if (rep->signed_seals > 0) {
            broke(rep, CS_AUDIT_REWRITE,
                  "seal %s is unsigned after signed seals: made without "
                  "the sealing key",
                  seq);
            return CS_OK;
        }
        rep->legacy_seals++;
    } else {
        cs_audit_seal_mac(w->key, seqn, hash_hex, want_mac);
        if (!mac_ok(mac, want_mac)) {
            broke(rep, CS_AUDIT_REWRITE,
                  "seal %s is not signed by the sealing key: its entries "
                  "or the chain up to it were rewritten and the hashes recomputed",
                  seq);
            return CS_OK;
        }
        rep->signed_seals++;
        if (rep->published_checked && seqn > rep->published_head)
            rep->unpublished++;
    }
    heads_check(w->heads, seqn, hash_hex, rep, CS_AUDIT_REWRITE, "seal");
    if (rep->problem[0])
        return CS_OK;
    memcpy(w->prev, got_hash, 32);
    cs_strlcpy(w->expect_from, to, sizeof(w->expect_from));
    w->head_seq = seqn;
    rep->entries += n;
    return CS_OK;
}

/*
 * After a prune: the chain continues from the anchor recorded for the seal
 * before the first one left. A signed chain needs a signed anchor, which
 * only the scheduler's retention duty makes (audit_prune_plan, audit_prune).
 */
static enum cs_err anchor(struct walk *w, const PGresult *seals, struct cs_audit_report *rep,
                          char *err)
{
    int64_t through = cs_db_int(seals, 0, CSC_SEAL_LIST_SEQ) - 1;
    char before[24];
    snprintf(before, sizeof(before), "%lld", (long long)through);
    const char *p[] = {before};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(w->db, CS_DB_Q(AUDIT_ANCHOR, p), &res, err);
    if (rc)
        return rc;
    const char *anchor_hex =
        PQntuples(res) == 1 ? cs_db_str(res, 0, CSC_AUDIT_ANCHOR_ANCHOR) : NULL;
    const char *mac = PQntuples(res) == 1 ? cs_db_str(res, 0, CSC_AUDIT_ANCHOR_MAC) : NULL;
    char want[CS_AUDIT_MAC_HEX];
    if (!hex32(anchor_hex, w->prev)) {
        broke(rep, CS_AUDIT_FORGED_PRUNE,
              "seals 1..%s are missing and no audit.pruned entry "
              "anchors the chain",
              before);
    } else if (mac) {
        cs_audit_prune_mac(w->key, through, anchor_hex, want);
        if (!mac_ok(mac, want))
            broke(rep, CS_AUDIT_FORGED_PRUNE,
                  "the audit.pruned anchor for seals 1..%s is not "
                  "signed by the sealing key: a forged prune (seals deleted)",
                  before);
    } else if (*PQgetvalue(seals, 0, CSC_SEAL_LIST_MAC_HEX)) {
        broke(rep, CS_AUDIT_FORGED_PRUNE,
              "the audit.pruned anchor for seals 1..%s is unsigned "
              "but the chain after it is signed: a forged prune (seals deleted)",
              before);
    } else {
        rep->legacy_anchor = true; /* a prune from before migration 011 */
    }
    if (anchor_hex && !rep->problem[0])
        heads_check(w->heads, through, anchor_hex, rep, CS_AUDIT_FORGED_PRUNE,
                    "the prune anchor of seal");
    PQclear(res);
    cs_strlcpy(w->expect_from, PQgetvalue(seals, 0, CSC_SEAL_LIST_FROM_TXID),
               sizeof(w->expect_from));
    return CS_OK;
}

/* Re-verifies every passkey-signed vote; the first failure becomes the report's problem. */
static enum cs_err verify_assertions(struct cs_db *db, struct cs_audit_report *rep, char *err)
{
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q0(AUDIT_PASSKEY_VOTES), &res, err);
    if (rc)
        return rc;
    for (int r = 0; r < PQntuples(res); r++) {
        char why[CS_ERRLEN];
        const char *action = cs_db_str(res, r, CSC_AUDIT_PASSKEY_VOTES_ACTION);
        enum cs_err vrc =
            cs_passkey_reverify(db, cs_db_text(res, r, CSC_AUDIT_PASSKEY_VOTES_APPROVAL_ID),
                                !strcmp(action, "vote.approve") ? "approve" : "deny",
                                cs_db_str(res, r, CSC_AUDIT_PASSKEY_VOTES_DETAIL), why);
        if (vrc == CS_ERR_DB) {
            PQclear(res);
            return cs_err_set(err, vrc, "%s", why);
        }
        if (vrc && !rep->problem[0])
            broke(rep, CS_AUDIT_REWRITE, "audit entry %.20s: passkey vote: %.200s",
                  cs_db_str(res, r, CSC_AUDIT_PASSKEY_VOTES_ID), why);
        if (!vrc)
            rep->assertions++;
    }
    PQclear(res);
    return CS_OK;
}

/* Walks every seal in order, from the anchor when the oldest were pruned. */
static enum cs_err walk_seals(struct walk *w, struct cs_audit_report *rep, char *err)
{
    char after[24] = "0", page[8];
    snprintf(page, sizeof(page), "%d", PAGE);
    enum cs_err rc = CS_OK;
    for (;;) {
        PGresult *seals = NULL;
        const char *p[] = {after, page};
        if ((rc = cs_db_exec(w->db, CS_DB_Q(SEAL_LIST, p), &seals, err)))
            return rc;
        int n = PQntuples(seals);
        if (n > 0 && rep->seals == 0 && cs_db_int(seals, 0, CSC_SEAL_LIST_SEQ) > 1)
            rc = anchor(w, seals, rep, err);
        for (int r = 0; r < n && !rc && !rep->problem[0]; r++) {
            rc = check_seal(w, seals, r, rep, err);
            if (!rc && rep->problem[0])
                rep->broken_seq = cs_db_int(seals, r, CSC_SEAL_LIST_SEQ);
            if (!rc && !rep->problem[0]) {
                rep->seals++;
                cs_strlcpy(after, PQgetvalue(seals, r, CSC_SEAL_LIST_SEQ), sizeof(after));
            }
        }
        PQclear(seals);
        if (rc || rep->problem[0] || n < PAGE)
            return rc;
    }
}

enum cs_err cs_audit_verify(struct cs_db *db, const unsigned char key[32], const char *head_file,
                            struct cs_audit_report *rep, char *err)
{
    memset(rep, 0, sizeof(*rep));
    rep->tamper = "";
    struct heads hs = {0};
    struct walk w = {.db = db, .key = key, .heads = &hs, .expect_from = "1"};
    enum cs_err rc = CS_OK;
    if (head_file) {
        rep->published_checked = true;
        rc = heads_load(head_file, key, &hs, rep, err);
        rep->published_head = hs.max_seq;
    }
    if (!rc && !rep->problem[0])
        rc = walk_seals(&w, rep, err);
    if (!rc && !rep->problem[0] && hs.max_seq > w.head_seq) {
        broke(rep, CS_AUDIT_TRUNCATION,
              "seals %lld..%lld were published but the database ends "
              "at seal %lld: the chain was cut",
              (long long)w.head_seq + 1, (long long)hs.max_seq, (long long)w.head_seq);
        rep->broken_seq = w.head_seq + 1;
    }
    cs_free(hs.v);
    if (rc)
        return rc;
    PGresult *res = NULL;
    if ((rc = cs_db_exec(db, CS_DB_Q0(AUDIT_UNSEALED), &res, err)))
        return rc;
    int64_t below = cs_db_int(res, 0, CSC_AUDIT_UNSEALED_BEFORE_FIRST);
    rep->unsealed_tail = cs_db_int(res, 0, CSC_AUDIT_UNSEALED_AFTER_LAST);
    PQclear(res);
    if (below > 0)
        broke(rep, CS_AUDIT_REWRITE, "%lld entries are older than the first seal",
              (long long)below);
    if ((rc = verify_assertions(db, rep, err)))
        return rc;
    rep->ok = rep->problem[0] == '\0';
    return CS_OK;
}

enum cs_err cs_audit_verify_cfg(struct cs_db *db, const struct cs_config *cfg,
                                struct cs_audit_report *rep, char *err)
{
    enum cs_err rc = cs_config_require_master_key(cfg, err);
    if (rc)
        return rc;
    unsigned char key[32];
    cs_audit_key(cfg->master_key, key);
    rc = cs_audit_verify(db, key, cfg->audit_head_file, rep, err);
    cs_wipe(key, sizeof(key));
    return rc;
}

json_object *cs_audit_report_json(const struct cs_audit_report *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(r->ok));
    json_object_object_add(o, "seals", json_object_new_int64(r->seals));
    json_object_object_add(o, "entries", json_object_new_int64(r->entries));
    json_object_object_add(o, "unsealed_tail", json_object_new_int64(r->unsealed_tail));
    json_object_object_add(o, "signed_seals", json_object_new_int64(r->signed_seals));
    json_object_object_add(o, "legacy_seals", json_object_new_int64(r->legacy_seals));
    if (r->legacy_anchor)
        json_object_object_add(o, "legacy_anchor", json_object_new_boolean(true));
    json_object_object_add(o, "published_head",
                           r->published_checked ? json_object_new_int64(r->published_head) : NULL);
    json_object_object_add(o, "unpublished_seals", json_object_new_int64(r->unpublished));
    json_object_object_add(o, "passkey_votes_verified", json_object_new_int64(r->assertions));
    if (!r->ok) {
        json_object_object_add(o, "tamper", json_object_new_string(r->tamper));
        json_object_object_add(o, "broken_seal", json_object_new_int64(r->broken_seq));
        json_object_object_add(o, "problem", json_object_new_string(r->problem));
    }
    return o;
}
