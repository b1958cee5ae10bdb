/*
 * signin.c -- how approvers sign in to the api's pages.
 *
 *   GET  /signin?next=P            the ways to sign in (SSO button, or the
 *                                  one-time links of the person's channels)
 *   GET  /signin/{token}           "Continue as NAME": shows whose link it
 *                                  is and changes nothing (mail scanners
 *                                  and chat unfurlers fetch links)
 *   POST /signin/{token}           spends the one-time link, opens a session
 *   GET  /signin/oidc?next=P       redirect to the OpenID provider (code
 *                                  flow with PKCE, state and nonce)
 *   GET  /signin/oidc/callback     the provider's answer: state bound to
 *                                  this browser (cs_oidc cookie), the
 *                                  login taken once, the ID token verified
 *                                  (lib/cs_oidc.c), mapped to an approver
 *   POST /signout                  ends the session
 *
 * Every sign-in mints a fresh session token (no session fixation) and
 * revokes the one the browser had. `next` is always a local path
 * (cs_session_next_valid): no open redirect.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_oidc.h"

#define OIDC_COOKIE "cs_oidc"
#define OIDC_LOGIN_SECONDS 600

static const char *next_param(struct MHD_Connection *c)
{
    const char *n = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "next");
    return n && cs_session_next_valid(n) ? n : "/inbox";
}

/* Opens a session for approver_id and sends the browser to next with its cookie. */
static enum MHD_Result open_session(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                    const char *approver_id, const char *method,
                                    enum cs_operator_role role, const char *next,
                                    const char *extra_cookie)
{
    char token[CS_SESSION_TOKEN_LEN + 1], cookie[256], addr[64], err[CS_ERRLEN];
    const char *old = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, CS_SESSION_COOKIE);
    if (old && cs_session_revoke(d->db, old, err) != CS_OK)
        cs_log(CS_LOG_WARN, "signin", "cannot revoke the previous session: %s", err);
    session_client_address(c, addr);
    const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
    enum cs_err rc =
        cs_session_create(d->db, r->api->cfg, approver_id, method, role, ua, addr, token, err);
    if (rc)
        return html_error(r, c, rc, err);
    cs_session_cookie(r->api->cfg, token, cookie, sizeof(cookie));
    cs_wipe(token, sizeof(token));
    cs_log(CS_LOG_INFO, "signin", "approver %s signed in (%s)", approver_id, method);
    return reply_redirect(r, c, next, cookie, extra_cookie);
}

/* ---- GET /signin ---- */

enum MHD_Result signin_page(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct api *a = r->api;
    (void)d;
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    html_head(&b, "Sign in");
    html_raw(&b, "<h1>Sign in to Countersign</h1><div class=\"card\">");
    if (a->oidc) {
        html_raw(&b, "<p><a class=\"button\" href=\"/signin/oidc?next=");
        html_esc(&b, next_param(c));
        html_raw(&b, "\">Sign in with single sign-on</a></p>");
    }
    html_raw(&b, "<p>Approvers also sign in with the one-time link in each message Countersign "
                 "sends them (email, chat or webhook). A link works once, for a few minutes; "
                 "the approval's page can send a fresh one.</p></div>");
    html_foot(&b);
    return reply_html(r, c, 200, &b, NULL);
}

/* ---- one-time links ---- */

enum MHD_Result signin_link_page(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    char name[129], err[CS_ERRLEN];
    enum cs_err rc = cs_signin_link_peek(d->db, r->params[0], name, err);
    if (rc)
        return html_error(r, c, rc, err);
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    html_head(&b, "Sign in");
    html_raw(&b, "<h1>Sign in to Countersign</h1><form method=\"post\" class=\"card\"><p>This "
                 "one-time link signs in <b>");
    html_esc(&b, name);
    html_raw(&b, "</b>. It works once.</p><div class=\"actions\"><button class=\"approve\">"
                 "Continue as ");
    html_esc(&b, name);
    html_raw(&b, "</button></div></form>");
    html_foot(&b);
    return reply_html(r, c, 200, &b, NULL);
}

enum MHD_Result signin_link_use(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    char approver[CS_UUID_STRLEN + 1], next[CS_NEXT_PATH_MAX + 1], err[CS_ERRLEN];
    enum cs_err rc = csrf_check_origin(r->api, c, err);
    if (rc)
        return html_error(r, c, rc, err);
    rc = cs_signin_link_use(d->db, r->params[0], approver, next, err);
    if (rc)
        return html_error(r, c, rc, err);
    return open_session(r, c, d, approver, "link", CS_OPERATOR_NONE, next, NULL);
}

/* ---- OpenID Connect ---- */

static void oidc_cookie(const struct api *a, const char *state, char *out, size_t n)
{
    snprintf(out, n, "%s=%s; Path=/signin/oidc; HttpOnly; SameSite=Lax; Max-Age=%d%s", OIDC_COOKIE,
             state ? state : "", state ? OIDC_LOGIN_SECONDS : 0,
             strncmp(a->cfg->public_url, "https:", 6) == 0 ? "; Secure" : "");
}

static void state_hash(const char *state, char hex[2 * CS_SHA256_LEN + 1])
{
    unsigned char h[CS_SHA256_LEN];
    cs_sha256(state, strlen(state), h);
    cs_hex_encode(h, sizeof(h), hex);
}

enum MHD_Result signin_oidc_start(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct api *a = r->api;
    char err[CS_ERRLEN], hex[2 * CS_SHA256_LEN + 1], ttl[16], cookie[160];
    if (!a->oidc)
        return html_error(r, c, CS_ERR_NOT_FOUND, "single sign-on is not configured here");
    struct cs_oidc_login login;
    char *url = NULL;
    enum cs_err rc = cs_oidc_begin(a->oidc, &login, &url, err);
    if (rc)
        return html_error(r, c, rc, err);
    state_hash(login.state, hex);
    snprintf(ttl, sizeof(ttl), "%d", OIDC_LOGIN_SECONDS);
    const char *p[] = {hex, login.nonce, login.verifier, next_param(c), ttl};
    rc = cs_db_exec(d->db, CS_DB_Q(OIDC_LOGIN_INSERT, p), NULL, err);
    oidc_cookie(a, login.state, cookie, sizeof(cookie));
    cs_wipe(&login, sizeof(login));
    enum MHD_Result ret = rc ? html_error(r, c, rc, err) : reply_redirect(r, c, url, cookie, NULL);
    cs_free(url);
    return ret;
}

/* True when value is one line of roles (each value followed by '\n'). */
static bool has_role(const char *roles, const char *value)
{
    size_t n = value ? strlen(value) : 0;
    for (const char *p = roles; n && *p; p = strchr(p, '\n') + 1)
        if (!strncmp(p, value, n) && p[n] == '\n')
            return true;
    return false;
}

/* The operator role the ID token's CS_OIDC_OPERATOR_CLAIM grants (the stronger one). */
static enum cs_operator_role oidc_role(const struct cs_config *cfg, const char *roles)
{
    return has_role(roles, cfg->oidc_operator_write)  ? CS_OPERATOR_WRITE
           : has_role(roles, cfg->oidc_operator_read) ? CS_OPERATOR_READ
                                                      : CS_OPERATOR_NONE;
}

enum MHD_Result signin_oidc_callback(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct api *a = r->api;
    char err[CS_ERRLEN], hex[2 * CS_SHA256_LEN + 1], clear[160], next[CS_NEXT_PATH_MAX + 1];
    if (!a->oidc)
        return html_error(r, c, CS_ERR_NOT_FOUND, "single sign-on is not configured here");
    const char *state = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state");
    const char *code = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "code");
    const char *bound = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, OIDC_COOKIE);
    const char *perr = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "error");
    if (perr)
        return html_error(r, c, CS_ERR_UNAUTHENTICATED,
                          "the identity provider refused the sign-in");
    if (!state || !code || !*code || strlen(code) > 2048)
        return html_error(r, c, CS_ERR_UNAUTHENTICATED,
                          "the sign-in answer lacks its state or code");
    if (!bound || strlen(bound) != strlen(state) || !cs_ct_equal(bound, state, strlen(state)))
        return html_error(r, c, CS_ERR_CSRF,
                          "this sign-in was not started in this browser: start it again");
    state_hash(state, hex);
    const char *p[] = {hex};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, CS_DB_Q(OIDC_LOGIN_TAKE, p), &res, err);
    if (!rc && PQntuples(res) != 1)
        rc = cs_err_set(err, CS_ERR_BAD_TOKEN, "this sign-in was already completed or has expired");
    struct cs_oidc_login login = {0};
    struct cs_oidc_identity id = {0};
    if (!rc) {
        cs_strlcpy(login.state, state, sizeof(login.state));
        cs_strlcpy(login.nonce, cs_db_str(res, 0, CSC_OIDC_LOGIN_TAKE_NONCE), sizeof(login.nonce));
        cs_strlcpy(login.verifier, cs_db_str(res, 0, CSC_OIDC_LOGIN_TAKE_VERIFIER),
                   sizeof(login.verifier));
        cs_strlcpy(next, cs_db_str(res, 0, CSC_OIDC_LOGIN_TAKE_NEXT_PATH), sizeof(next));
        /* RFC 9207: the provider that answers names itself (mix-up attacks). */
        rc = cs_oidc_check_callback(a->oidc, &login, state,
                                    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "iss"),
                                    err);
        if (!rc)
            rc = cs_oidc_finish(a->oidc, &login, code, &id, err);
    }
    PQclear(res);
    cs_wipe(&login, sizeof(login));
    if (rc) {
        cs_log(CS_LOG_WARN, "signin", "OpenID sign-in refused: %s: %s", cs_err_code(rc), err);
        return html_error(r, c, rc, err);
    }
    const char *mp[] = {id.sub, id.email[0] ? id.email : NULL,
                        id.email_verified && a->cfg->oidc_match_email ? "true" : "false"};
    res = NULL;
    rc = cs_db_exec(d->db, CS_DB_Q(OIDC_APPROVER, mp), &res, err);
    if (!rc && PQntuples(res) != 1)
        rc = cs_err_set(err, CS_ERR_NOT_APPROVER,
                        "you signed in at the identity provider as %s, who is not a Countersign "
                        "approver",
                        id.email[0] ? id.email : id.sub);
    char approver[CS_UUID_STRLEN + 1] = "";
    if (!rc)
        cs_strlcpy(approver, cs_db_str(res, 0, CSC_OIDC_APPROVER_ID), sizeof(approver));
    PQclear(res);
    if (rc)
        return html_error(r, c, rc, err);
    oidc_cookie(a, NULL, clear, sizeof(clear));
    return open_session(r, c, d, approver, "oidc", oidc_role(a->cfg, id.roles), next, clear);
}

/* ---- POST /signout ---- */

enum MHD_Result signout(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct cs_session s;
    struct form f = {0};
    char err[CS_ERRLEN], cookie[160];
    enum cs_err rc = session_get(c, d, &s, err);
    if (rc == CS_ERR_UNAUTHENTICATED) {
        rc = CS_OK; /* nobody to sign out; a failed lookup is not that (the session lives on) */
    } else if (!rc) {
        rc = form_parse(r->body.data ? r->body.data : "", r->body.len, &f, err);
        if (!rc)
            rc = csrf_check(r->api, c, form_get(&f, "csrf"), &s, err);
        if (!rc)
            rc = cs_session_revoke(
                d->db, MHD_lookup_connection_value(c, MHD_COOKIE_KIND, CS_SESSION_COOKIE), err);
    }
    form_free(&f);
    if (rc)
        return html_error(r, c, rc, err);
    cs_session_cookie(r->api->cfg, NULL, cookie, sizeof(cookie));
    return reply_redirect(r, c, "/signin", cookie, NULL);
}
