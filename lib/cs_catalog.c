/*
 * cs_catalog.c -- cached agents and grants (see cs_catalog.h).
 *
 * Each entry remembers when it was loaded; a lookup past the TTL reloads
 * it and retires the old entry to a list freed by cs_catalog_tick(), so a
 * pointer handed out earlier in the same batch stays valid.
 */
#include "cs_catalog.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "cs_json.h"
#include "cs_link.h"
#include "cs_map.h"
#include "cs_mem.h"
#include "cs_url.h"

struct entry {
    int64_t loaded_ms;
    bool missing; /* cached "not found" */
    enum { E_AGENT, E_GRANT, E_KEY } kind;
    union {
        struct cs_agent agent;
        struct cs_grant grant;
        struct cs_signing_key key;
    } u;
    struct entry *retired_next;
};

struct cs_catalog {
    int64_t ttl_ms;
    struct cs_map *agents; /* name -> entry */
    struct cs_map *grants; /* id -> entry */
    struct cs_map *keys;   /* signing key id -> entry */
    struct entry *retired;
};

static const char *const inject_names[] = {"bearer", "basic", "header"};

int cs_inject_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, inject_names[i]) == 0)
            return i;
    return -1;
}

static void entry_free(void *p)
{
    struct entry *e = p;
    if (!e)
        return;
    if (e->kind == E_GRANT) {
        struct cs_grant *g = &e->u.grant;
        cs_free(g->id);
        cs_free(g->inject_header);
        cs_free(g->version);
        for (int i = 0; i < g->nbases; i++) {
            cs_free(g->bases[i]);
            if (g->base_urls)
                cs_url_free(&g->base_urls[i]);
        }
        cs_free(g->bases);
        cs_free(g->base_urls);
        cs_free(g->policy_json);
        if (g->secret_blob)
            cs_wipe(g->secret_blob, g->secret_len);
        cs_free(g->secret_blob);
        cs_free(g->agents);
        if (g->in_progress_re)
            regfree(g->in_progress_re);
        cs_free(g->in_progress_re);
        cs_policy_free(g->policy);
    } else if (e->kind == E_KEY) {
        cs_wipe(e->u.key.secret, sizeof(e->u.key.secret));
        cs_free(e->u.key.agent_name);
    } else {
        cs_free(e->u.agent.name);
    }
    cs_free(e);
}

struct cs_catalog *cs_catalog_new(int64_t ttl_ms)
{
    struct cs_catalog *c = cs_calloc(1, sizeof(*c));
    c->ttl_ms = ttl_ms;
    c->agents = cs_map_new();
    c->grants = cs_map_new();
    c->keys = cs_map_new();
    return c;
}

void cs_catalog_tick(struct cs_catalog *c)
{
    while (c->retired) {
        struct entry *e = c->retired;
        c->retired = e->retired_next;
        entry_free(e);
    }
}

/* Makes grant `id` stale (its pointer stays valid until the next tick). */
static void forget_grant(struct cs_catalog *c, const char *id)
{
    struct entry *old = cs_map_del(c->grants, id);
    if (old) {
        old->retired_next = c->retired;
        c->retired = old;
    }
}

void cs_catalog_grant_seen(struct cs_catalog *c, const char *id, const char *version)
{
    struct entry *e = cs_map_get(c->grants, id);
    if (e &&
        (e->missing || !version || !e->u.grant.version || strcmp(e->u.grant.version, version) != 0))
        forget_grant(c, id);
}

void cs_catalog_free(struct cs_catalog *c)
{
    if (!c)
        return;
    cs_catalog_tick(c);
    cs_map_free(c->agents, entry_free);
    cs_map_free(c->grants, entry_free);
    cs_map_free(c->keys, entry_free);
    cs_free(c);
}

static struct entry *fresh(struct cs_catalog *c, struct cs_map *m, const char *key, int64_t now)
{
    struct entry *e = cs_map_get(m, key);
    if (e && now - e->loaded_ms < c->ttl_ms)
        return e;
    return NULL;
}

static void store(struct cs_catalog *c, struct cs_map *m, const char *key, struct entry *e)
{
    struct entry *old = cs_map_put(m, key, e);
    if (old) {
        old->retired_next = c->retired;
        c->retired = old;
    }
}

enum cs_err cs_catalog_agent(struct cs_catalog *c, struct cs_db *db, const char *name,
                             const struct cs_agent **out, char *err)
{
    int64_t now = cs_now_ms();
    struct entry *e = fresh(c, c->agents, name, now);
    if (!e && !db)
        return cs_err_set(err, CS_ERR_DB, "agent \"%.64s\" must be (re)loaded", name);
    if (!e) {
        PGresult *res = NULL;
        const char *p[] = {name};
        enum cs_err rc = cs_db_exec(db, CS_DB_Q(AGENT_BY_NAME, p), &res, err);
        if (rc)
            return rc;
        e = cs_calloc(1, sizeof(*e));
        e->loaded_ms = now;
        e->missing = PQntuples(res) == 0;
        if (!e->missing) {
            cs_strlcpy(e->u.agent.id, cs_db_str(res, 0, CSC_AGENT_BY_NAME_ID),
                       sizeof(e->u.agent.id));
            e->u.agent.name = cs_strdup(cs_db_str(res, 0, CSC_AGENT_BY_NAME_NAME));
            e->u.agent.disabled = cs_db_bool(res, 0, CSC_AGENT_BY_NAME_DISABLED);
        }
        PQclear(res);
        store(c, c->agents, name, e);
    }
    if (e->missing || e->u.agent.disabled)
        return cs_err_set(err, CS_ERR_UNKNOWN_AGENT, "no enabled agent named \"%.64s\"", name);
    *out = &e->u.agent;
    return CS_OK;
}

static enum cs_err json_col(const PGresult *res, int col, json_type t, json_object **out, char *err)
{
    const char *s = cs_db_str(res, 0, col);
    if (!s || cs_json_parse(s, strlen(s), out, err) != CS_OK || !json_object_is_type(*out, t)) {
        if (*out)
            json_object_put(*out);
        *out = NULL;
        return cs_err_set(err, CS_ERR_INTERNAL, "grant_load: column %d is not a JSON %s", col,
                          json_type_to_name(t));
    }
    return CS_OK;
}

static enum cs_err load_grant(const PGresult *res, struct cs_grant *g, char *err)
{
    json_object *bases = NULL, *agents = NULL, *approvers = NULL, *escalation = NULL;
    enum cs_err rc;
    g->id = cs_strdup(cs_db_str(res, 0, CSC_GRANT_LOAD_ID));
    size_t blen = 0;
    unsigned char *blob =
        PQunescapeBytea((const unsigned char *)cs_db_str(res, 0, CSC_GRANT_LOAD_SECRET), &blen);
    cs_assert(blob);
    g->secret_blob = cs_memdup(blob, blen);
    g->secret_len = blen;
    cs_wipe(blob, blen);
    PQfreemem(blob);
    g->inject = (enum cs_inject)cs_inject_parse(cs_db_str(res, 0, CSC_GRANT_LOAD_INJECT));
    g->inject_header = cs_strdup(cs_db_str(res, 0, CSC_GRANT_LOAD_INJECT_HEADER));
    g->idempotency_keys = cs_db_bool(res, 0, CSC_GRANT_LOAD_IDEMPOTENCY_KEYS);
    g->disabled = cs_db_bool(res, 0, CSC_GRANT_LOAD_DISABLED);
    g->paused = cs_db_bool(res, 0, CSC_GRANT_LOAD_PAUSED);
    g->version = cs_strdup(cs_db_str(res, 0, CSC_GRANT_LOAD_VERSION));
    const char *pat = cs_db_str(res, 0, CSC_GRANT_LOAD_IN_PROGRESS_PATTERN);
    if (pat) {
        g->in_progress_re = cs_malloc(sizeof(regex_t));
        if (regcomp(g->in_progress_re, pat, REG_EXTENDED | REG_NOSUB) != 0) {
            /* Checked when set (cs_in_progress_pattern_valid); a libc that disagrees
             * gets Stripe's answer recognised only. */
            cs_free(g->in_progress_re);
            g->in_progress_re = NULL;
        }
    }
    if ((rc = json_col(res, CSC_GRANT_LOAD_ALLOWED_BASES_JSON, json_type_array, &bases, err)) ||
        (rc = json_col(res, CSC_GRANT_LOAD_AGENT_IDS_JSON, json_type_array, &agents, err)) ||
        (rc = json_col(res, CSC_GRANT_LOAD_APPROVERS_JSON, json_type_array, &approvers, err)) ||
        (rc = json_col(res, CSC_GRANT_LOAD_ESCALATION_JSON, json_type_array, &escalation, err)))
        goto done;
    g->nbases = (int)json_object_array_length(bases);
    g->bases = cs_calloc((size_t)g->nbases, sizeof(char *));
    g->base_urls = cs_calloc((size_t)g->nbases, sizeof(*g->base_urls));
    for (int i = 0; i < g->nbases; i++) {
        g->bases[i] =
            cs_strdup(json_object_get_string(json_object_array_get_idx(bases, (size_t)i)));
        /* As cs_url_allowed() would parse it at every check; a base that does not
         * parse stays zeroed and is skipped, as it is there. */
        if (cs_url_parse(g->bases[i], &g->base_urls[i], NULL) != CS_OK)
            memset(&g->base_urls[i], 0, sizeof(g->base_urls[i]));
    }
    g->nagents = (int)json_object_array_length(agents);
    g->agents = cs_calloc((size_t)g->nagents, sizeof(*g->agents));
    for (int i = 0; i < g->nagents; i++)
        cs_strlcpy(g->agents[i],
                   json_object_get_string(json_object_array_get_idx(agents, (size_t)i)),
                   sizeof(g->agents[i]));

    struct cs_policy *p = g->policy = cs_calloc(1, sizeof(*p));
    p->id = cs_strdup(cs_db_str(res, 0, CSC_GRANT_LOAD_POLICY_ID));
    p->mode = (enum cs_policy_mode)cs_policy_mode_parse(cs_db_str(res, 0, CSC_GRANT_LOAD_MODE));
    if ((rc = json_col(res, CSC_GRANT_LOAD_RULES, json_type_array, &p->rules, err)))
        goto done;
    if ((int)p->mode < 0 || cs_policy_rules_validate(p->rules, err) != CS_OK) {
        /* A stored policy we cannot read is unevaluable: every call is refused. */
        p->mode = CS_POLICY_ALWAYS;
        p->quorum = 0;
    } else {
        p->quorum = (int)cs_db_int(res, 0, CSC_GRANT_LOAD_QUORUM);
    }
    p->window_seconds = (int)cs_db_int(res, 0, CSC_GRANT_LOAD_WINDOW_SECONDS);
    p->exec_timeout_ms = (int)cs_db_int(res, 0, CSC_GRANT_LOAD_EXEC_TIMEOUT_MS);
    p->max_attempts = (int)cs_db_int(res, 0, CSC_GRANT_LOAD_MAX_ATTEMPTS);
    p->amount_field = cs_strdup(cs_db_str(res, 0, CSC_GRANT_LOAD_AMOUNT_FIELD));
    p->reminder_interval_s = (int)cs_db_int(res, 0, CSC_GRANT_LOAD_REMINDER_INTERVAL_S);
    p->escalate_after_s = (int)cs_db_int(res, 0, CSC_GRANT_LOAD_ESCALATE_AFTER_S);
    p->require_passkey = cs_db_bool(res, 0, CSC_GRANT_LOAD_REQUIRE_PASSKEY);
    p->link_lifetime_s = (int)cs_db_int(res, 0, CSC_GRANT_LOAD_LINK_LIFETIME_S);
    p->napprovers = (int)json_object_array_length(approvers);
    p->approvers = cs_calloc((size_t)p->napprovers, sizeof(*p->approvers));
    for (int i = 0; i < p->napprovers; i++) {
        json_object *pair = json_object_array_get_idx(approvers, (size_t)i);
        cs_strlcpy(p->approvers[i].approver_id,
                   json_object_get_string(json_object_array_get_idx(pair, 0)),
                   sizeof(p->approvers[i].approver_id));
        cs_strlcpy(p->approvers[i].voter_id,
                   json_object_get_string(json_object_array_get_idx(pair, 1)),
                   sizeof(p->approvers[i].voter_id));
    }
    p->nescalation = (int)json_object_array_length(escalation);
    p->escalation = cs_calloc((size_t)p->nescalation, sizeof(*p->escalation));
    for (int i = 0; i < p->nescalation; i++)
        cs_strlcpy(p->escalation[i],
                   json_object_get_string(json_object_array_get_idx(escalation, (size_t)i)),
                   sizeof(p->escalation[i]));
    json_object *snap = cs_policy_snapshot(p, g->idempotency_keys);
    g->policy_json = cs_strdup(cs_json_text(snap, NULL));
    json_object_put(snap);
done:
    json_object_put(escalation);
    json_object_put(bases);
    json_object_put(agents);
    json_object_put(approvers);
    return rc;
}

enum cs_err cs_catalog_grant(struct cs_catalog *c, struct cs_db *db, const char *id,
                             const struct cs_grant **out, char *err)
{
    int64_t now = cs_now_ms();
    struct entry *e = fresh(c, c->grants, id, now);
    if (!e && !db)
        return cs_err_set(err, CS_ERR_DB, "grant \"%.64s\" must be (re)loaded", id);
    if (!e) {
        PGresult *res = NULL;
        const char *p[] = {id};
        enum cs_err rc = cs_db_exec(db, CS_DB_Q(GRANT_LOAD, p), &res, err);
        if (rc)
            return rc;
        e = cs_calloc(1, sizeof(*e));
        e->kind = E_GRANT;
        e->loaded_ms = now;
        e->missing = PQntuples(res) == 0;
        if (!e->missing)
            rc = load_grant(res, &e->u.grant, err);
        PQclear(res);
        if (rc) {
            entry_free(e);
            return rc;
        }
        store(c, c->grants, id, e);
    }
    if (e->missing || e->u.grant.disabled)
        return cs_err_set(err, CS_ERR_UNKNOWN_GRANT, "no enabled grant \"%.64s\"", id);
    *out = &e->u.grant;
    return CS_OK;
}

static enum cs_err load_key(const PGresult *res, const unsigned char master[32],
                            struct cs_signing_key *k, char *err)
{
    cs_strlcpy(k->id, cs_db_str(res, 0, CSC_SIGNING_KEY_LOAD_KEY_ID), sizeof(k->id));
    cs_strlcpy(k->agent_id, cs_db_str(res, 0, CSC_SIGNING_KEY_LOAD_AGENT_ID), sizeof(k->agent_id));
    k->agent_name = cs_strdup(cs_db_str(res, 0, CSC_SIGNING_KEY_LOAD_AGENT_NAME));
    k->expires_ms = cs_db_str(res, 0, CSC_SIGNING_KEY_LOAD_EXPIRES_MS)
                        ? cs_db_int(res, 0, CSC_SIGNING_KEY_LOAD_EXPIRES_MS)
                        : 0;
    size_t blen = 0, plen = 0;
    unsigned char *blob = PQunescapeBytea(
        (const unsigned char *)cs_db_str(res, 0, CSC_SIGNING_KEY_LOAD_SECRET), &blen);
    cs_assert(blob);
    unsigned char *plain = NULL;
    char *aad = cs_asprintf("signing-key:%s", k->id);
    enum cs_err rc = cs_aead_open(master, blob, blen, aad, &plain, &plen);
    cs_free(aad);
    PQfreemem(blob);
    if (rc || plen != sizeof(k->secret) - 1) {
        if (plain)
            cs_wipe(plain, plen);
        cs_free(plain);
        return cs_err_set(err, CS_ERR_CRYPTO, "cannot decrypt signing key %s (wrong master key?)",
                          k->id);
    }
    memcpy(k->secret, plain, plen);
    k->secret[plen] = '\0';
    cs_wipe(plain, plen);
    cs_free(plain);
    return CS_OK;
}

enum cs_err cs_catalog_signing_key(struct cs_catalog *c, struct cs_db *db,
                                   const unsigned char master[32], const char *kid,
                                   const struct cs_signing_key **out, char *err)
{
    int64_t now = cs_now_ms();
    struct entry *e = fresh(c, c->keys, kid, now);
    if (!e && !db)
        return cs_err_set(err, CS_ERR_DB, "signing key %.24s must be (re)loaded", kid);
    if (!e) {
        PGresult *res = NULL;
        const char *p[] = {kid};
        enum cs_err rc = cs_db_exec(db, CS_DB_Q(SIGNING_KEY_LOAD, p), &res, err);
        if (rc)
            return rc;
        e = cs_calloc(1, sizeof(*e));
        e->kind = E_KEY;
        e->loaded_ms = now;
        e->missing = PQntuples(res) == 0;
        if (!e->missing)
            rc = load_key(res, master, &e->u.key, err);
        PQclear(res);
        if (rc) {
            entry_free(e);
            return rc;
        }
        store(c, c->keys, kid, e);
    }
    if (e->missing)
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no live signing key %.24s", kid);
    *out = &e->u.key;
    return CS_OK;
}

void cs_signing_key_seal(const unsigned char master[32], const char *kid, const char *secret,
                         unsigned char **blob, size_t *bloblen)
{
    char *aad = cs_asprintf("signing-key:%s", kid);
    cs_aead_seal(master, secret, strlen(secret), aad, blob, bloblen);
    cs_free(aad);
}

bool cs_grant_bound(const struct cs_grant *g, const char *agent_id)
{
    for (int i = 0; i < g->nagents; i++)
        if (strcmp(g->agents[i], agent_id) == 0)
            return true;
    return false;
}

enum cs_err cs_grant_admits(const struct cs_grant *g, const char *agent_id, const char *url,
                            int *base, char *err)
{
    if (!cs_grant_bound(g, agent_id))
        return cs_err_set(err, CS_ERR_FORBIDDEN, "grant %s is not bound to this agent", g->id);
    struct cs_url u;
    enum cs_err rc = cs_url_parse(url, &u, err);
    if (rc)
        return rc;
    rc = cs_grant_url_allowed(g, &u, base, err);
    cs_url_free(&u);
    return rc;
}

enum cs_err cs_grant_url_allowed(const struct cs_grant *g, const struct cs_url *u, int *index,
                                 char *err)
{
    for (int i = 0; g->base_urls && i < g->nbases; i++) {
        if (g->base_urls[i].scheme && cs_url_under_base(u, &g->base_urls[i])) {
            *index = i;
            return CS_OK;
        }
    }
    /* Refused (or loaded without parsed bases): the textual check words the refusal. */
    return cs_url_allowed(u, g->bases, g->nbases, index, err);
}

static char *aad_for(const char *id)
{
    return cs_asprintf("grant:%s", id);
}

enum cs_err cs_grant_secret(const struct cs_grant *g, const unsigned char master[32],
                            unsigned char **secret, size_t *len, char *err)
{
    char *aad = aad_for(g->id);
    enum cs_err rc = cs_aead_open(master, g->secret_blob, g->secret_len, aad, secret, len);
    cs_free(aad);
    if (rc)
        return cs_err_set(err, CS_ERR_CRYPTO,
                          "cannot decrypt the secret of grant %s (wrong master key?)", g->id);
    return CS_OK;
}

void cs_grant_seal_secret(const unsigned char master[32], const char *id,
                          const unsigned char *secret, size_t len, unsigned char **blob,
                          size_t *bloblen)
{
    char *aad = aad_for(id);
    cs_aead_seal(master, secret, len, aad, blob, bloblen);
    cs_free(aad);
}

/* ---- "this idempotency key is still in progress" ---- */

enum cs_err cs_in_progress_pattern_valid(const char *pattern, char *err)
{
    regex_t re;
    size_t n = strlen(pattern);
    if (n < 1 || n > 512)
        return cs_err_set(err, CS_ERR_INVALID, "an in-progress pattern is 1-512 bytes");
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return cs_err_set(err, CS_ERR_UNPROCESSABLE,
                          "the in-progress pattern is not a POSIX extended "
                          "regular expression");
    regfree(&re);
    return CS_OK;
}

bool cs_grant_in_progress(const struct cs_grant *g, long status, const char *body, size_t len)
{
    if (len > CS_IN_PROGRESS_SCAN)
        len = CS_IN_PROGRESS_SCAN;
    /* "<status> <body>", NULs as spaces, for the pattern and for Stripe's code. */
    char text[CS_IN_PROGRESS_SCAN + 16];
    int off = snprintf(text, sizeof(text), "%ld ", status);
    for (size_t i = 0; i < len; i++)
        text[off + (int)i] = body[i] ? body[i] : ' ';
    text[off + (int)len] = '\0';
    if (status == 409 && strstr(text, "idempotency_key_in_use"))
        return true;
    return g->in_progress_re && regexec(g->in_progress_re, text, 0, NULL, 0) == 0;
}
