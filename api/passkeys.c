/*
 * passkeys.c -- an approver's passkeys on the api's pages, and the passkey
 * check of a vote.
 *
 *   GET  /passkeys               the signed-in approver's passkeys; register one
 *   POST /passkeys               the browser's navigator.credentials.create() result
 *   POST /passkeys/{id}/revoke   revoke one of one's own passkeys
 *   GET  /static/passkey.js      the pages' only script (api/passkey.js)
 *
 * Challenges need no table: a registration challenge is a timestamp and
 * an HMAC of it with the session id (valid REGISTER_MS); a vote's nonce is
 * random text and an HMAC of it with the session id, so only a page this
 * session was shown can vote, and the assertion's challenge commits to the
 * vote itself (lib/cs_passkey.c). Verification and storage live in lib/.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_passkey.h"

#define REGISTER_MS (10 * 60 * 1000)
#define NONCE_RAND 12

extern const char api_passkey_js[];

static struct cs_passkey_rp rp_of(const struct api *a)
{
    return (struct cs_passkey_rp){a->rp_id, a->origin};
}

/* mac = HMAC(csrf_key, purpose "|" session id "|" data), truncated to n bytes */
static void mac(struct api *a, const char *purpose, const struct cs_session *s, const void *data,
                size_t len, unsigned char *out, size_t n)
{
    unsigned char full[CS_SHA256_LEN];
    size_t plen = strlen(purpose), slen = strlen(s->id);
    unsigned char *msg = cs_malloc(plen + slen + len + 2);
    memcpy(msg, purpose, plen);
    msg[plen] = '|';
    memcpy(msg + plen + 1, s->id, slen);
    msg[plen + 1 + slen] = '|';
    memcpy(msg + plen + slen + 2, data, len);
    cs_hmac_sha256(a->csrf_key, 32, msg, plen + slen + len + 2, full);
    memcpy(out, full, n);
    cs_free(msg);
}

/* ---- a vote's nonce ---- */

void passkeys_vote_nonce(struct api *a, const struct cs_session *s, char out[PASSKEY_NONCE_LEN + 1])
{
    unsigned char raw[NONCE_RAND], m[16];
    char r64[24], m64[32];
    cs_random_bytes(raw, sizeof(raw));
    cs_b64_encode_to(raw, sizeof(raw), true, r64);
    mac(a, "passkey-vote", s, r64, strlen(r64), m, sizeof(m));
    cs_b64_encode_to(m, sizeof(m), true, m64);
    snprintf(out, PASSKEY_NONCE_LEN + 1, "%s.%s", r64, m64);
}

static bool nonce_valid(struct api *a, const struct cs_session *s, const char *nonce)
{
    const char *dot = nonce ? strchr(nonce, '.') : NULL;
    if (!dot || strlen(nonce) != PASSKEY_NONCE_LEN)
        return false;
    unsigned char m[16];
    char m64[32];
    mac(a, "passkey-vote", s, nonce, (size_t)(dot - nonce), m, sizeof(m));
    cs_b64_encode_to(m, sizeof(m), true, m64);
    return strlen(dot + 1) == strlen(m64) && cs_ct_equal(dot + 1, m64, strlen(m64));
}

enum cs_err passkeys_vote_check(struct api *a, struct api_db *d, const struct cs_session *s,
                                const char *approval_id, bool approve, const struct form *f,
                                char passkey_id[CS_UUID_STRLEN + 1], char **detail, char *err)
{
    *detail = NULL;
    passkey_id[0] = '\0';
    const char *p[] = {approval_id};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, CS_DB_Q(VOTE_CONTEXT, p), &res, err);
    if (rc)
        return rc;
    bool required = PQntuples(res) == 1 && cs_db_bool(res, 0, CSC_VOTE_CONTEXT_REQUIRE_PASSKEY);
    if (required && !nonce_valid(a, s, form_get(f, "nonce")))
        rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                        "this vote needs a passkey signature made on this page: open it again");
    if (required && !rc) {
        struct cs_passkey_assertion as = {
            form_get(f, "credential_id"), form_get(f, "authenticator_data"),
            form_get(f, "client_data_json"), form_get(f, "signature"), form_get(f, "nonce")};
        struct cs_passkey_rp rp = rp_of(a);
        const char *reason = form_get(f, "reason");
        rc = cs_passkey_verify_vote(d->db, &rp, s->approver_id, approval_id,
                                    cs_db_str(res, 0, CSC_VOTE_CONTEXT_DIGEST_HEX),
                                    approve ? "approve" : "deny", reason && *reason ? reason : NULL,
                                    &as, passkey_id, detail, err);
        if (rc)
            cs_log_ap(CS_LOG_WARN, "passkeys", approval_id, "passkey vote refused: %s", err);
    }
    PQclear(res);
    return rc;
}

/* ---- the passkey page ---- */

/* The registration challenge: ms timestamp (8 bytes, big-endian) || 24 bytes of MAC. */
static void register_challenge(struct api *a, const struct cs_session *s, int64_t now_ms,
                               unsigned char out[32])
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)now_ms >> (56 - 8 * i));
    mac(a, "passkey-register", s, out, 8, out + 8, 24);
}

static bool challenge_valid(struct api *a, const struct cs_session *s, const char *b64,
                            unsigned char out[32])
{
    unsigned char *raw = NULL, want[32];
    size_t len = 0;
    if (!b64 || strlen(b64) != 43 || cs_b64_decode(b64, 43, true, &raw, &len) != CS_OK ||
        len != 32) {
        cs_free(raw);
        return false;
    }
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = t << 8 | raw[i];
    register_challenge(a, s, (int64_t)t, want);
    bool ok = cs_ct_equal(want, raw, 32) && cs_now_ms() - (int64_t)t < REGISTER_MS &&
              (int64_t)t <= cs_now_ms() + 60000;
    memcpy(out, raw, 32);
    cs_free(raw);
    return ok;
}

/* The credential ids of s's live passkeys as a JSON array text (cs_malloc'd). */
char *passkeys_credentials(struct api_db *d, const struct cs_session *s)
{
    const char *p[] = {s->approver_id};
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    json_object *arr = json_object_new_array();
    if (cs_db_exec(d->db, CS_DB_Q(PASSKEY_CREDENTIALS, p), &res, err) == CS_OK)
        for (int i = 0; i < PQntuples(res); i++)
            json_object_array_add(arr, json_object_new_string(cs_db_str(
                                           res, i, CSC_PASSKEY_CREDENTIALS_CREDENTIAL_ID_B64URL)));
    PQclear(res);
    char *text = cs_strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return text;
}

static void register_form(struct cs_buf *b, struct api *a, struct api_db *d,
                          const struct cs_session *s)
{
    unsigned char ch[32], uid[16];
    char ch64[48], uid64[24];
    register_challenge(a, s, cs_now_ms(), ch);
    cs_b64_encode_to(ch, sizeof(ch), true, ch64);
    if (cs_uuid_parse(s->approver_id, uid) != CS_OK)
        return;
    cs_b64_encode_to(uid, sizeof(uid), true, uid64);
    char *exclude = passkeys_credentials(d, s);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "challenge", json_object_new_string(ch64));
    json_object_object_add(o, "rp_id", json_object_new_string(a->rp_id));
    json_object_object_add(o, "user_id", json_object_new_string(uid64));
    json_object_object_add(o, "user_name", json_object_new_string(s->name));
    json_object_object_add(o, "exclude", json_tokener_parse(exclude));
    html_raw(b, "<form method=\"post\" action=\"/passkeys\" class=\"card\" data-register=\"1\" "
                "data-options=\"");
    html_esc(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    html_raw(b, "\"><h2>Register a passkey</h2>");
    session_csrf_field(b, a, s);
    html_raw(b,
             "<label for=\"name\">Name (e.g. \"laptop\")</label><input id=\"name\" name=\"name\" "
             "maxlength=\"64\" required><p class=\"passkey-status\"></p><div class=\"actions\">"
             "<button class=\"approve\">Register a passkey</button></div></form>"
             "<script src=\"/static/passkey.js\"></script>");
    json_object_put(o);
    cs_free(exclude);
}

enum MHD_Result passkeys_page(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct api *a = r->api;
    struct cs_session s;
    char err[CS_ERRLEN];
    enum MHD_Result ret;
    if (!session_require(r, c, d, &s, "/passkeys", &ret))
        return ret;
    const char *p[] = {s.approver_id, NULL};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, CS_DB_Q(PASSKEY_LIST, p), &res, err);
    if (rc)
        return html_error(r, c, rc, err);
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    html_head(&b, "Your passkeys");
    session_bar(&b, a, &s);
    html_raw(&b, "<h1>Your passkeys</h1><div class=\"card\">");
    if (PQntuples(res) == 0)
        html_raw(&b, "<p>No passkey yet. A policy may require every vote to be signed with "
                     "one.</p>");
    for (int i = 0; i < PQntuples(res); i++) {
        html_raw(&b, "<form method=\"post\" class=\"item\" action=\"/passkeys/");
        html_esc(&b, cs_db_str(res, i, CSC_PASSKEY_LIST_ID));
        html_raw(&b, "/revoke\"><b>");
        html_esc(&b, cs_db_str(res, i, CSC_PASSKEY_LIST_NAME));
        html_raw(&b, "</b> <span class=\"badge\">");
        html_esc(&b, cs_db_int(res, i, CSC_PASSKEY_LIST_ALG) == -7 ? "ES256" : "RS256");
        html_raw(&b, "</span> registered ");
        html_esc(&b, cs_db_str(res, i, CSC_PASSKEY_LIST_CREATED_AT));
        html_raw(&b, " ");
        session_csrf_field(&b, a, &s);
        html_raw(&b, "<button class=\"link\">Revoke</button></form>");
    }
    html_raw(&b, "</div>");
    PQclear(res);
    register_form(&b, a, d, &s);
    html_foot(&b);
    return reply_html(r, c, 200, &b, NULL);
}

/* The session and the form of a POST from the passkeys page; CSRF checked. */
static enum cs_err posted(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                          struct cs_session *s, struct form *f, char *err)
{
    enum cs_err rc = session_get(c, d, s, err);
    if (!rc)
        rc = form_parse(r->body.data ? r->body.data : "", r->body.len, f, err);
    return rc ? rc : csrf_check(r->api, c, form_get(f, "csrf"), s, err);
}

enum MHD_Result passkeys_register(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct api *a = r->api;
    struct cs_session s;
    struct form f = {0};
    char err[CS_ERRLEN], id[CS_UUID_STRLEN + 1];
    unsigned char challenge[32];
    enum cs_err rc = posted(r, c, d, &s, &f, err);
    if (!rc && !challenge_valid(a, &s, form_get(&f, "challenge"), challenge))
        rc = cs_err_set(err, CS_ERR_CSRF,
                        "the registration expired or was not issued to you: "
                        "open the page again");
    if (!rc) {
        struct cs_passkey_rp rp = rp_of(a);
        rc = cs_passkey_register(d->db, &rp, s.approver_id, form_get(&f, "name"), challenge,
                                 sizeof(challenge), form_get(&f, "client_data_json"),
                                 form_get(&f, "attestation_object"), id, err);
    }
    form_free(&f);
    if (rc)
        return html_error(r, c, rc, err);
    cs_log(CS_LOG_INFO, "passkeys", "approver %s registered passkey %s", s.approver_id, id);
    return reply_redirect(r, c, "/passkeys", NULL, NULL);
}

enum MHD_Result passkeys_revoke(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct cs_session s;
    struct form f = {0};
    char err[CS_ERRLEN], actor[64];
    PGresult *res = NULL;
    enum cs_err rc = posted(r, c, d, &s, &f, err);
    if (!rc && !cs_uuid_valid(r->params[0]))
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "no such passkey");
    if (!rc) {
        snprintf(actor, sizeof(actor), "approver:%s", s.approver_id);
        const char *p[] = {r->params[0], s.approver_id, NULL, actor};
        rc = cs_db_exec(d->db, CS_DB_Q(PASSKEY_REVOKE, p), &res, err);
        if (!rc && PQntuples(res) != 1)
            rc = cs_err_set(err, CS_ERR_NOT_FOUND, "no such passkey of yours");
        PQclear(res);
    }
    form_free(&f);
    return rc ? html_error(r, c, rc, err) : reply_redirect(r, c, "/passkeys", NULL, NULL);
}

enum MHD_Result passkeys_script(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    (void)d;
    return reply_text(r, c, 200, "text/javascript; charset=utf-8", api_passkey_js,
                      strlen(api_passkey_js));
}
