/*
 * cs_session.c -- sign-in links and sessions (see cs_session.h).
 *
 * Tokens are 32 random bytes as base64url; the database stores the hex
 * SHA-256 of the token text. Expiry, single use and revocation are decided
 * in SQL (sql/queries/session.sql), in the statement that reads the row,
 * so two api processes can never both spend one link.
 */
#include "cs_session.h"

#include <stdio.h>
#include <string.h>

#include "cs_mem.h"

/* A valid token is exactly CS_SESSION_TOKEN_LEN base64url characters. */
static bool token_valid(const char *t)
{
    return t && strlen(t) == CS_SESSION_TOKEN_LEN &&
           strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               CS_SESSION_TOKEN_LEN;
}

static void token_new(char token[CS_SESSION_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    cs_random_bytes(raw, sizeof(raw));
    cs_b64_encode_to(raw, sizeof(raw), true, token);
    cs_wipe(raw, sizeof(raw));
}

static void token_hash(const char *token, char hex[2 * CS_SHA256_LEN + 1])
{
    unsigned char h[CS_SHA256_LEN];
    cs_sha256(token, strlen(token), h);
    cs_hex_encode(h, sizeof(h), hex);
}

/* The C twin of the next_path CHECKs (migration 006: '^/[^/\\]', at most 512): keep them equal. */
/*
 * Runs query q (one parameter: the token's hash) into *res; a token that
 * is not even well-formed runs nothing and leaves *res NULL.
 */
static enum cs_err by_token(struct cs_db *db, enum cs_query q, const char *token, PGresult **res,
                            char *err)
{
    *res = NULL;
    if (!token_valid(token))
        return CS_OK;
    char hex[2 * CS_SHA256_LEN + 1];
    token_hash(token, hex);
    const char *p[] = {hex};
    return cs_db_exec(db, q, 1, p, res, err);
}

/* by_token's answer held exactly one row. */
static bool one_row(const PGresult *res)
{
    return res && PQntuples(res) == 1;
}

bool cs_session_next_valid(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n < 2 || n > CS_NEXT_PATH_MAX || p[0] != '/' || p[1] == '/' || p[1] == '\\')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f || p[i] == '\\')
            return false;
    return true;
}

/* ---- sign-in links ---- */

enum cs_err cs_signin_link_mint(struct cs_db *db, const struct cs_config *cfg,
                                const char *approver_id, const char *next_path, const char *purpose,
                                char **url, char *err)
{
    *url = NULL;
    if (!cs_uuid_valid(approver_id) || !cs_session_next_valid(next_path))
        return cs_err_set(err, CS_ERR_INVALID,
                          "a sign-in link needs an approver id and a local path");
    char token[CS_SESSION_TOKEN_LEN + 1], hex[2 * CS_SHA256_LEN + 1], ttl[24];
    token_new(token);
    token_hash(token, hex);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)cfg->signin_link_s);
    const char *p[] = {hex, approver_id, next_path, purpose, ttl};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(SIGNIN_LINK_INSERT, p), &res, err);
    if (rc)
        goto done;
    if (PQntuples(res) != 1) {
        rc =
            cs_err_set(err, CS_ERR_NOT_APPROVER, "approver %s is unknown or disabled", approver_id);
        goto done;
    }
    size_t n = strlen(cfg->public_url);
    while (n && cfg->public_url[n - 1] == '/')
        n--;
    *url = cs_asprintf("%.*s/signin/%s", (int)n, cfg->public_url, token);
done:
    PQclear(res);
    cs_wipe(token, sizeof(token));
    return rc;
}

#define LINK_GONE "this sign-in link was already used, has expired, or is not valid"

enum cs_err cs_signin_link_peek(struct cs_db *db, const char *token, char name[129], char *err)
{
    PGresult *res = NULL;
    enum cs_err rc = by_token(db, CSQ_SIGNIN_LINK_PEEK, token, &res, err);
    if (rc)
        return rc;
    if (one_row(res))
        cs_strlcpy(name, cs_db_str(res, 0, CSC_SIGNIN_LINK_PEEK_NAME), 129);
    else
        rc = cs_err_set(err, CS_ERR_BAD_TOKEN, LINK_GONE);
    PQclear(res);
    return rc;
}

enum cs_err cs_signin_link_use(struct cs_db *db, const char *token,
                               char approver_id[CS_UUID_STRLEN + 1],
                               char next_path[CS_NEXT_PATH_MAX + 1], char *err)
{
    PGresult *res = NULL;
    enum cs_err rc = by_token(db, CSQ_SIGNIN_LINK_USE, token, &res, err);
    if (rc)
        return rc;
    if (one_row(res)) {
        cs_strlcpy(approver_id, cs_db_str(res, 0, CSC_SIGNIN_LINK_USE_APPROVER_ID),
                   CS_UUID_STRLEN + 1);
        cs_strlcpy(next_path, cs_db_str(res, 0, CSC_SIGNIN_LINK_USE_NEXT_PATH),
                   CS_NEXT_PATH_MAX + 1);
    } else {
        rc = cs_err_set(err, CS_ERR_BAD_TOKEN, LINK_GONE);
    }
    PQclear(res);
    return rc;
}

/* ---- sessions ---- */

enum cs_err cs_session_create(struct cs_db *db, const struct cs_config *cfg,
                              const char *approver_id, const char *method,
                              enum cs_operator_role role, const char *user_agent,
                              const char *address, char token[CS_SESSION_TOKEN_LEN + 1], char *err)
{
    char id[CS_UUID_STRLEN + 1], hex[2 * CS_SHA256_LEN + 1], idle[24], max[24];
    cs_uuid_v7(id);
    token_new(token);
    token_hash(token, hex);
    snprintf(idle, sizeof(idle), "%lld", (long long)cfg->session_idle_s);
    snprintf(max, sizeof(max), "%lld", (long long)cfg->session_max_s);
    const char *p[] = {id,
                       hex,
                       approver_id,
                       method,
                       idle,
                       max,
                       user_agent ? user_agent : "",
                       address ? address : "",
                       cs_operator_role_name(role)};
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(SESSION_INSERT, p), NULL, err);
    if (rc)
        cs_wipe(token, CS_SESSION_TOKEN_LEN + 1);
    return rc;
}

enum cs_err cs_session_lookup(struct cs_db *db, const char *token, struct cs_session *s, char *err)
{
    memset(s, 0, sizeof(*s));
    PGresult *res = NULL;
    enum cs_err rc = by_token(db, CSQ_SESSION_LOOKUP, token, &res, err);
    if (rc)
        return rc;
    if (one_row(res)) {
        cs_strlcpy(s->id, cs_db_str(res, 0, CSC_SESSION_LOOKUP_ID), sizeof(s->id));
        cs_strlcpy(s->approver_id, cs_db_str(res, 0, CSC_SESSION_LOOKUP_APPROVER_ID),
                   sizeof(s->approver_id));
        cs_strlcpy(s->method, cs_db_str(res, 0, CSC_SESSION_LOOKUP_METHOD), sizeof(s->method));
        cs_strlcpy(s->name, cs_db_str(res, 0, CSC_SESSION_LOOKUP_NAME), sizeof(s->name));
        int role = cs_operator_role_parse(cs_db_str(res, 0, CSC_SESSION_LOOKUP_ROLE));
        s->role = role < 0 ? CS_OPERATOR_NONE : (enum cs_operator_role)role;
    } else {
        rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED, "the session has ended; sign in again");
    }
    PQclear(res);
    return rc;
}

enum cs_err cs_session_revoke(struct cs_db *db, const char *token, char *err)
{
    PGresult *res = NULL;
    enum cs_err rc = by_token(db, CSQ_SESSION_REVOKE, token, &res, err);
    PQclear(res);
    return rc;
}

enum cs_err cs_session_revoke_approver(struct cs_db *db, const char *name, const char *actor,
                                       long *count, char *err)
{
    const char *p[] = {name, actor};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(SESSION_REVOKE_APPROVER, p), &res, err);
    if (rc)
        return rc;
    *count = (long)cs_db_int(res, 0, CSC_SESSION_REVOKE_APPROVER_REVOKED);
    PQclear(res);
    return CS_OK;
}

void cs_session_cookie(const struct cs_config *cfg, const char *token, char *out, size_t n)
{
    bool secure = strncmp(cfg->public_url, "https:", 6) == 0;
    if (token)
        snprintf(out, n, "%s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld%s", CS_SESSION_COOKIE,
                 token, (long long)cfg->session_max_s, secure ? "; Secure" : "");
    else
        snprintf(out, n, "%s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s", CS_SESSION_COOKIE,
                 secure ? "; Secure" : "");
}

const char *cs_operator_role_name(enum cs_operator_role role)
{
    return role == CS_OPERATOR_WRITE ? "write" : role == CS_OPERATOR_READ ? "read" : NULL;
}

int cs_operator_role_parse(const char *s)
{
    if (!s || !*s || !strcmp(s, "none"))
        return CS_OPERATOR_NONE;
    if (!strcmp(s, "read"))
        return CS_OPERATOR_READ;
    if (!strcmp(s, "write"))
        return CS_OPERATOR_WRITE;
    return -1;
}
