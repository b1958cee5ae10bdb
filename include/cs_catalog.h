/*
 * cs_catalog.h -- agents and grants (with their policies), cached.
 *
 * Ingest and the api look these up for every request; the catalog keeps
 * them in memory for CS_CATALOG_TTL_MS, including "not found" answers, so
 * a flood of bad messages does not become a flood of queries. A grant
 * keeps its secret encrypted; cs_grant_secret() decrypts it on demand into
 * a buffer the caller wipes and frees.
 *
 * Each claim tells the executor's catalog which version of every claimed
 * call's grant it saw (cs_catalog_grant_seen); a cached copy of another
 * version is reloaded, so a call (a retry is claimed again) is checked
 * against its grant as of its claim, never an older copy.
 *
 * Lifetime: pointers returned by lookups stay valid until the next
 * cs_catalog_tick() on the same catalog; call it at a safe point of the
 * loop (e.g. before each batch). Thread: one catalog per thread.
 */
#ifndef CS_CATALOG_H
#define CS_CATALOG_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "cs_crypto.h"
#include "cs_db.h"
#include "cs_err.h"
#include "cs_policy.h"

struct cs_url; /* cs_url.h */

struct cs_agent {
    char id[CS_UUID_STRLEN + 1];
    char *name;
    bool disabled;
};

/* An agent's live envelope-signing key (cs_envsig.h), its secret decrypted at load. */
struct cs_signing_key {
    char id[24]; /* "csk_" + 16 hex */
    char agent_id[CS_UUID_STRLEN + 1];
    char *agent_name;
    char secret[65];    /* the 64-character secret; wiped when the entry is freed */
    int64_t expires_ms; /* 0: no expiry */
};

enum cs_inject { CS_INJECT_BEARER, CS_INJECT_BASIC, CS_INJECT_HEADER };

struct cs_grant {
    char *id;
    enum cs_inject inject;
    char *inject_header; /* CS_INJECT_HEADER only */
    char **bases;        /* allowed base URLs */
    int nbases;
    struct cs_url *base_urls; /* bases[i] parsed at load; scheme NULL if it does not parse */
    char *policy_json;        /* cs_policy_snapshot(policy, idempotency_keys) as JSON text */
    bool idempotency_keys;    /* the provider honours Idempotency-Key */
    bool disabled;
    bool paused;                /* an operator paused it: no new calls start */
    regex_t *in_progress_re;    /* the grant's in-progress pattern, or NULL */
    unsigned char *secret_blob; /* AES-256-GCM, see cs_crypto.h */
    size_t secret_len;
    char (*agents)[CS_UUID_STRLEN + 1];
    int nagents;
    struct cs_policy *policy;
    char *version; /* cs_grant_version() when loaded (migration 018) */
};

struct cs_catalog;

struct cs_catalog *cs_catalog_new(int64_t ttl_ms);
void cs_catalog_free(struct cs_catalog *c);
/* Frees entries replaced since the last tick. */
void cs_catalog_tick(struct cs_catalog *c);
/*
 * Grant `id` as a statement saw it, by its cs_grant_version(): a cached
 * copy of another version is made stale (its pointer stays valid until the
 * next tick). The version covers the grant's row and its bound agents, not
 * its policy.
 */
void cs_catalog_grant_seen(struct cs_catalog *c, const char *id, const char *version);

/*
 * Lookups. With db NULL they answer from the cache only, and return
 * CS_ERR_DB (retriable) when the entry must be loaded or reloaded first.
 */

/* CS_ERR_UNKNOWN_AGENT when no enabled agent has this name. */
enum cs_err cs_catalog_agent(struct cs_catalog *c, struct cs_db *db, const char *name,
                             const struct cs_agent **out, char *err) CS_MUSTCHECK;
/* CS_ERR_UNKNOWN_GRANT when no enabled grant has this id. */
enum cs_err cs_catalog_grant(struct cs_catalog *c, struct cs_db *db, const char *id,
                             const struct cs_grant **out, char *err) CS_MUSTCHECK;

/*
 * The live signing key `kid` (not revoked, not expired, agent enabled), its
 * secret decrypted with master. CS_ERR_NOT_FOUND when there is none (cached
 * like a missing agent); CS_ERR_CRYPTO when its secret does not decrypt.
 * The caller still checks expires_ms against its clock.
 */
enum cs_err cs_catalog_signing_key(struct cs_catalog *c, struct cs_db *db,
                                   const unsigned char master[32], const char *kid,
                                   const struct cs_signing_key **out, char *err) CS_MUSTCHECK;

/* Encrypts a signing key's secret for key `kid` (for the CLI / admin API). */
void cs_signing_key_seal(const unsigned char master[32], const char *kid, const char *secret,
                         unsigned char **blob, size_t *bloblen);

bool cs_grant_bound(const struct cs_grant *g, const char *agent_id);

/*
 * The grant's admission check, one rule for admission (cs_approval_check)
 * and again at execution (worker/executor.c, against the grant as it is
 * then): agent_id may use g, and url lies under one of g's bases (its
 * index into *base). CS_ERR_FORBIDDEN, CS_ERR_BAD_URL or
 * CS_ERR_HOST_NOT_ALLOWED with the reason.
 */
enum cs_err cs_grant_admits(const struct cs_grant *g, const char *agent_id, const char *url,
                            int *base, char *err) CS_MUSTCHECK;

/*
 * cs_url_allowed(u, g->bases, g->nbases, index, err) -- the same answer,
 * index and refusal -- from the bases parsed when the grant was loaded.
 */
enum cs_err cs_grant_url_allowed(const struct cs_grant *g, const struct cs_url *u, int *index,
                                 char *err) CS_MUSTCHECK;

/*
 * Decrypts the grant's secret into *secret (cs_malloc'd, NUL-terminated);
 * the caller cs_wipe()s and cs_free()s it. CS_ERR_CRYPTO on a wrong key.
 */
enum cs_err cs_grant_secret(const struct cs_grant *g, const unsigned char master[32],
                            unsigned char **secret, size_t *len, char *err) CS_MUSTCHECK;

/* Encrypts a secret for grant `id` (for the CLI / admin API). */
void cs_grant_seal_secret(const unsigned char master[32], const char *id,
                          const unsigned char *secret, size_t len, unsigned char **blob,
                          size_t *bloblen);

/* "bearer" | "basic" | "header" -> enum; -1 otherwise. */
int cs_inject_parse(const char *s);

/*
 * Whether an answer means "this idempotency key is still being processed,
 * come back later" (not an outcome): Stripe's 409 idempotency_key_in_use, or
 * the grant's in_progress_pattern matching "<status> <body>" (the first
 * CS_IN_PROGRESS_SCAN bytes of the body, NULs read as spaces).
 */
#define CS_IN_PROGRESS_SCAN 4096
bool cs_grant_in_progress(const struct cs_grant *g, long status, const char *body, size_t len);
/* A pattern for the above: 1-512 bytes, a POSIX extended regular expression. */
enum cs_err cs_in_progress_pattern_valid(const char *pattern, char *err) CS_MUSTCHECK;

#endif
