/*
 * pages.c -- the approver's pages: review, decide, inbox, status.
 *
 * Server-rendered HTML with inline styles only (no external assets, a
 * strict CSP from router.c), readable on a 390 px phone. Security rules:
 *   - a GET never changes anything (mail scanners and unfurlers fetch links);
 *   - a decision is a POST carrying a CSRF token that this page issued for
 *     this link (HMAC, double-submitted as a SameSite=Strict cookie) and,
 *     when the browser says so, a same-origin Sec-Fetch-Site / Origin;
 *   - the link itself is verified (cs_link_verify, constant time) and the
 *     vote goes through cs_approval_vote(), which enforces every rule
 *     (window, slot, delegation, self-approval, one vote each) inside one
 *     transaction;
 *   - everything shown is escaped; the digest shown is the stored request's.
 */
#include <string.h>
#include <strings.h>

#include "api.h"
#include "cs_approval.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"

#define PAGE_MAX (8u << 20)
#define SHOW_BODY_MAX 65536

/* page_view columns (sql/queries/approval.sql) */
enum { V_ID, V_STATUS, V_AGENT, V_GRANT, V_METHOD, V_URL, V_HEADERS, V_BODY, V_REASON, V_CONTEXT,
       V_DIGEST, V_CREATED, V_EXPIRES, V_QUORUM, V_APPROVALS, V_DECISION_REASON, V_BATCH,
       V_POLICY, V_ERROR, V_RESPONSE };

/* ---- HTML ---- */

static void esc(struct cs_buf *b, const char *s)
{
    for (; s && *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep)
            cs_buf_append_trunc(b, rep, strlen(rep));
        else
            cs_buf_append_trunc(b, s, 1);
    }
}

static void raw(struct cs_buf *b, const char *s)
{
    cs_buf_append_trunc(b, s, strlen(s));
}

static void head(struct cs_buf *b, const char *title)
{
    raw(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<meta name=\"robots\" content=\"noindex\"><title>");
    esc(b, title);
    raw(b, "</title><style>"
           "body{font:16px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;"
           "background:#f5f5f4;color:#1c1917}"
           "main{max-width:720px;margin:0 auto;padding:16px}"
           "h1{font-size:1.35em;margin:.2em 0 .6em}h2{font-size:1em;margin:1.2em 0 .3em;"
           "text-transform:uppercase;letter-spacing:.04em;color:#57534e}"
           ".card{background:#fff;border:1px solid #e7e5e4;border-radius:10px;padding:14px;"
           "margin:10px 0}"
           ".url{font-family:ui-monospace,monospace;word-break:break-all}"
           "pre{background:#fafaf9;border:1px solid #e7e5e4;border-radius:8px;padding:10px;"
           "overflow-x:auto;white-space:pre-wrap;word-break:break-word;font-size:.85em}"
           "blockquote{margin:0;padding:8px 12px;border-left:4px solid #a8a29e;background:#fff}"
           "dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0}"
           "dt{color:#57534e}dd{margin:0;word-break:break-all}"
           ".badge{display:inline-block;padding:2px 8px;border-radius:99px;background:#e7e5e4}"
           ".ok{background:#dcfce7}.no{background:#fee2e2}"
           "textarea{width:100%;box-sizing:border-box;min-height:4em;font:inherit}"
           ".actions{display:flex;gap:10px;margin-top:10px}"
           "button{flex:1;font:inherit;font-weight:600;padding:12px;border-radius:8px;border:0}"
           ".approve{background:#15803d;color:#fff}.deny{background:#b91c1c;color:#fff}"
           "ul{padding-left:1.2em}a{color:#1d4ed8}"
           "</style></head><body><main>");
}

static void foot(struct cs_buf *b)
{
    raw(b, "<p style=\"color:#78716c;font-size:.8em\">Countersign &middot; this link is yours: "
           "do not forward it.</p></main></body></html>");
}

/* A page with a heading and a sentence, for refusals and outcomes. */
static enum MHD_Result message_page(struct api_req *r, struct MHD_Connection *c, unsigned status,
                                    const char *title, const char *text)
{
    struct cs_buf b;
    cs_buf_init(&b, PAGE_MAX);
    head(&b, title);
    raw(&b, "<h1>");
    esc(&b, title);
    raw(&b, "</h1><div class=\"card\"><p>");
    esc(&b, text);
    raw(&b, "</p></div>");
    foot(&b);
    return reply_html(r, c, status, &b, NULL);
}

static enum MHD_Result error_page(struct api_req *r, struct MHD_Connection *c, enum cs_err rc,
                                  const char *detail)
{
    const struct cs_err_info *e = cs_err_info(rc);
    static const struct {
        enum cs_err rc;
        const char *title;
    } titles[] = {{CS_ERR_BAD_TOKEN, "This link is not valid"},
                  {CS_ERR_EXPIRED, "This approval has expired"},
                  {CS_ERR_NOT_PENDING, "Already decided"},
                  {CS_ERR_ALREADY_VOTED, "You have already voted"},
                  {CS_ERR_SELF_APPROVAL, "You cannot vote on your own request"},
                  {CS_ERR_NOT_APPROVER, "You are not an approver of this request"},
                  {CS_ERR_CSRF, "Please reload the page"}};
    const char *title = "Something went wrong";
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
        if (titles[i].rc == rc)
            title = titles[i].title;
    return message_page(r, c, (unsigned)e->http_status, title,
                        rc == CS_ERR_INTERNAL || e->http_status >= 500 ? e->message
                        : detail && *detail ? detail : e->message);
}

/* "in 42 min" / "in 3 h" / "in 2 days" / "passed" */
static void time_left(char *out, size_t n, int64_t ms)
{
    int64_t s = ms / 1000;
    if (s <= 0)
        snprintf(out, n, "passed");
    else if (s < 120)
        snprintf(out, n, "in %lld s", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "in %lld min", (long long)(s / 60));
    else if (s < 172800)
        snprintf(out, n, "in %lld h", (long long)(s / 3600));
    else
        snprintf(out, n, "in %lld days", (long long)(s / 86400));
}

/* The request body for people: pretty JSON, text, or a byte count. */
static void show_body(struct cs_buf *b, const char *b64)
{
    unsigned char *body = NULL;
    size_t len = 0;
    if (!b64 || cs_b64_decode(b64, strlen(b64), false, &body, &len) != CS_OK || len == 0) {
        raw(b, "<p>(no body)</p>");
        cs_free(body);
        return;
    }
    json_object *doc = NULL;
    char err[CS_ERRLEN];
    raw(b, "<pre>");
    if (cs_json_parse((const char *)body, len, &doc, err) == CS_OK) {
        esc(b, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(doc);
    } else if (memchr(body, '\0', len) == NULL && len <= SHOW_BODY_MAX) {
        char *text = cs_strndup((const char *)body, len);
        esc(b, text);
        cs_free(text);
    } else {
        char line[96];
        snprintf(line, sizeof(line), "(%zu bytes of binary data; see the digest)", len);
        esc(b, line);
    }
    raw(b, "</pre>");
    cs_free(body);
}

static void show_json(struct cs_buf *b, const char *text)
{
    json_object *doc = NULL;
    char err[CS_ERRLEN];
    if (!text || cs_json_parse(text, strlen(text), &doc, err) != CS_OK)
        return;
    if (json_object_object_length(doc) > 0) {
        raw(b, "<pre>");
        esc(b, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        raw(b, "</pre>");
    } else {
        raw(b, "<p>(none)</p>");
    }
    json_object_put(doc);
}

/* ---- links and CSRF ---- */

static enum cs_err verify(struct api_req *r, const unsigned char key[32], struct cs_link *l,
                          char *err)
{
    return cs_link_verify(key, r->params[0], cs_now_ms(), l, err);
}

/* csrf = nonce "." base64url(HMAC(csrf_key, token "|" nonce)) */
static void csrf_make(struct api *a, const char *token, const char *nonce, char *out, size_t n)
{
    unsigned char mac[CS_SHA256_LEN];
    char *msg = cs_asprintf("%s|%s", token, nonce), b64[48];
    cs_hmac_sha256(a->csrf_key, 32, msg, strlen(msg), mac);
    cs_b64_encode_to(mac, sizeof(mac), true, b64);
    snprintf(out, n, "%s.%s", nonce, b64);
    cs_free(msg);
}

static bool csrf_valid(struct api *a, const char *token, const char *value)
{
    if (!value || strlen(value) > 128)
        return false;
    const char *dot = strchr(value, '.');
    if (!dot || dot == value)
        return false;
    char nonce[64], want[160];
    cs_strlcpy(nonce, value, (size_t)(dot - value) + 1 < sizeof(nonce) ? (size_t)(dot - value) + 1
                                                                        : sizeof(nonce));
    csrf_make(a, token, nonce, want, sizeof(want));
    return strlen(want) == strlen(value) && cs_ct_equal(want, value, strlen(want));
}

static const char *cookie(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_COOKIE_KIND, name);
}

/* ---- GET /approve/{token} ---- */

static void votes_list(struct cs_buf *b, struct api_db *d, const char *id)
{
    const char *p[] = {id};
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    if (cs_db_exec(d->db, CSQ_PAGE_VOTES, 1, p, &res, err) != CS_OK)
        return;
    if (PQntuples(res) > 0) {
        raw(b, "<h2>Votes</h2><ul>");
        for (int i = 0; i < PQntuples(res); i++) {
            raw(b, "<li>");
            esc(b, cs_db_str(res, i, 0));
            raw(b, strcmp(cs_db_str(res, i, 1), "approve") == 0 ? " <span class=\"badge ok\">approved</span>"
                                                                 : " <span class=\"badge no\">denied</span>");
            if (strcmp(cs_db_str(res, i, 0), cs_db_str(res, i, 3)) != 0) {
                raw(b, " (by ");
                esc(b, cs_db_str(res, i, 3));
                raw(b, " on their behalf)");
            }
            if (cs_db_str(res, i, 2)) {
                raw(b, ": ");
                esc(b, cs_db_str(res, i, 2));
            }
            raw(b, "</li>");
        }
        raw(b, "</ul>");
    }
    PQclear(res);
}

/* Renders the review of approval l->approval_id into b; CS_ERR_NOT_FOUND when gone. */
static enum cs_err render_review(struct api_req *r, struct api_db *d, const struct cs_link *l,
                                 struct cs_buf *b, const char *csrf, char *err)
{
    const char *p[] = {l->approval_id};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, CSQ_PAGE_VIEW, 1, p, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cs_err_set(err, CS_ERR_NOT_FOUND, "this approval no longer exists");
    }
    const char *status = cs_db_str(res, 0, V_STATUS);
    char title[200], when[CS_TIME_ISO_LEN], left[32], line[256];
    snprintf(title, sizeof(title), "%s %s", cs_db_str(res, 0, V_METHOD), cs_db_str(res, 0, V_URL));
    head(b, title);
    raw(b, "<h1>");
    esc(b, csrf ? "Approval requested" : "Approval status");
    raw(b, "</h1><div class=\"card\"><p><b>");
    esc(b, cs_db_str(res, 0, V_AGENT));
    raw(b, "</b> asks to call, with grant <b>");
    esc(b, cs_db_str(res, 0, V_GRANT));
    raw(b, "</b>:</p><p class=\"url\"><b>");
    esc(b, cs_db_str(res, 0, V_METHOD));
    raw(b, "</b> ");
    esc(b, cs_db_str(res, 0, V_URL));
    raw(b, "</p><h2>Reason</h2><blockquote>");
    esc(b, *cs_db_str(res, 0, V_REASON) ? cs_db_str(res, 0, V_REASON) : "(no reason given)");
    raw(b, "</blockquote></div><div class=\"card\"><h2>Payload</h2>");
    show_body(b, cs_db_str(res, 0, V_BODY));
    raw(b, "<h2>Headers</h2>");
    show_json(b, cs_db_str(res, 0, V_HEADERS));
    raw(b, "<h2>Context</h2>");
    show_json(b, cs_db_str(res, 0, V_CONTEXT));
    raw(b, "</div><div class=\"card\"><dl><dt>Status</dt><dd><span class=\"badge\">");
    esc(b, status);
    raw(b, "</span></dd><dt>Approvals</dt><dd>");
    snprintf(line, sizeof(line), "%lld of %lld needed", (long long)cs_db_int(res, 0, V_APPROVALS),
             (long long)cs_db_int(res, 0, V_QUORUM));
    esc(b, line);
    raw(b, "</dd><dt>Expires</dt><dd>");
    time_left(left, sizeof(left), cs_db_int(res, 0, V_EXPIRES) - cs_now_ms());
    snprintf(line, sizeof(line), "%s (%s)", cs_time_iso(cs_db_int(res, 0, V_EXPIRES), when), left);
    esc(b, line);
    raw(b, "</dd><dt>Policy</dt><dd>");
    esc(b, cs_db_str(res, 0, V_POLICY));
    raw(b, "</dd><dt>Digest</dt><dd class=\"url\">sha256:");
    esc(b, cs_db_str(res, 0, V_DIGEST));
    raw(b, "</dd><dt>Approval</dt><dd class=\"url\">");
    esc(b, cs_db_str(res, 0, V_ID));
    raw(b, "</dd></dl>");
    votes_list(b, d, l->approval_id);
    raw(b, "</div>");
    bool pending = strcmp(status, "pending") == 0;
    if (csrf && pending) {
        raw(b, "<form method=\"post\" class=\"card\"><input type=\"hidden\" name=\"csrf\" value=\"");
        esc(b, csrf);
        raw(b, "\"><label for=\"reason\">Reason (optional for approve, shown to the agent)</label>"
               "<textarea id=\"reason\" name=\"reason\" maxlength=\"4096\"></textarea>"
               "<div class=\"actions\"><button class=\"approve\" name=\"decision\" "
               "value=\"approve\">Approve</button><button class=\"deny\" name=\"decision\" "
               "value=\"deny\">Deny</button></div></form>");
    } else if (!pending) {
        raw(b, "<div class=\"card\"><p>This request is <b>");
        esc(b, status);
        raw(b, "</b>");
        if (cs_db_str(res, 0, V_DECISION_REASON)) {
            raw(b, ": ");
            esc(b, cs_db_str(res, 0, V_DECISION_REASON));
        }
        raw(b, ". Nothing more to decide.</p></div>");
    }
    (void)r;
    foot(b);
    PQclear(res);
    return CS_OK;
}

enum MHD_Result page_review(struct api_req *r, struct MHD_Connection *c)
{
    struct api *a = r->api;
    struct cs_link l;
    char err[CS_ERRLEN];
    enum cs_err rc = verify(r, a->link_key, &l, err);
    if (rc)
        return error_page(r, c, rc, err);
    unsigned char raw_nonce[16];
    char nonce[32], csrf[160], set_cookie[320];
    cs_random_bytes(raw_nonce, sizeof(raw_nonce));
    cs_b64_encode_to(raw_nonce, sizeof(raw_nonce), true, nonce);
    csrf_make(a, r->params[0], nonce, csrf, sizeof(csrf));
    snprintf(set_cookie, sizeof(set_cookie), "cs_csrf=%s; Path=/approve/; HttpOnly; "
             "SameSite=Strict%s", csrf, strncmp(a->cfg->public_url, "https:", 6) == 0 ? "; Secure" : "");
    struct cs_buf b;
    cs_buf_init(&b, PAGE_MAX);
    struct api_db *d = pool_get(a->pool);
    rc = render_review(r, d, &l, &b, csrf, err);
    pool_put(a->pool, d);
    if (rc) {
        cs_buf_free(&b);
        return error_page(r, c, rc, err);
    }
    return reply_html(r, c, 200, &b, set_cookie);
}

/* ---- POST /approve/{token} ---- */

/*
 * A decision must come from this page: a browser's Sec-Fetch-Site (which
 * pages cannot forge) must say same-origin; without it, an Origin other than
 * "null" must be ours ("null" is what browsers send under our no-referrer
 * policy); and in every case the form's token must match the SameSite=Strict
 * cookie this link's page set, and verify for this link.
 */
static enum cs_err same_site(struct api *a, struct MHD_Connection *c, const char *form_csrf,
                             const char *token, char *err)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    const char *ck = cookie(c, "cs_csrf");
    if (site && strcmp(site, "same-origin") != 0)
        return cs_err_set(err, CS_ERR_CSRF, "the decision was sent from another site");
    if (!site && origin && strcmp(origin, "null") != 0 && strcmp(origin, a->origin) != 0)
        return cs_err_set(err, CS_ERR_CSRF, "the decision was sent from another origin");
    if (!ck || !form_csrf || strcmp(ck, form_csrf) != 0 || !csrf_valid(a, token, form_csrf))
        return cs_err_set(err, CS_ERR_CSRF,
                          "the form's security token is missing or stale; open the link again");
    return CS_OK;
}

enum MHD_Result page_decide(struct api_req *r, struct MHD_Connection *c)
{
    struct api *a = r->api;
    struct cs_link l;
    char err[CS_ERRLEN];
    struct form f = {0};
    enum cs_err rc = verify(r, a->link_key, &l, err);
    if (!rc)
        rc = form_parse(r->body.data ? r->body.data : "", r->body.len, &f, err);
    if (!rc)
        rc = same_site(a, c, form_get(&f, "csrf"), r->params[0], err);
    const char *decision = form_get(&f, "decision"), *reason = form_get(&f, "reason");
    if (!rc && (!decision || (strcmp(decision, "approve") && strcmp(decision, "deny"))))
        rc = cs_err_set(err, CS_ERR_INVALID, "choose approve or deny");
    if (rc) {
        form_free(&f);
        if (rc != CS_ERR_BAD_TOKEN)
            cs_log(CS_LOG_WARN, "pages", "decision refused: %s: %s", cs_err_code(rc), err);
        return error_page(r, c, rc, err);
    }
    bool approve = strcmp(decision, "approve") == 0;
    if (reason && !*reason)
        reason = NULL;
    struct api_db *d = pool_get(a->pool);
    char actor[64];
    snprintf(actor, sizeof(actor), "approver:%s", l.voter_id);
    struct cs_vote v = {l.approval_id, l.approver_id, l.voter_id, approve, reason, actor};
    struct cs_vote_outcome out;
    rc = cs_approval_vote(d->db, &v, &out, err);
    pool_put(a->pool, d);
    form_free(&f);
    if (rc)
        return error_page(r, c, rc, err);
    char text[256];
    if (out.status == CS_ST_APPROVED)
        snprintf(text, sizeof(text), "Approved. Countersign will now make the call, once.");
    else if (out.status == CS_ST_DENIED)
        snprintf(text, sizeof(text), "Denied. The call will not be made.");
    else
        snprintf(text, sizeof(text), "Your approval is recorded: %d of %d needed so far.",
                 out.approvals, out.quorum);
    return message_page(r, c, 200, approve ? "Thank you: approved" : "Thank you: denied", text);
}

/* ---- GET /status/{token} ---- */

enum MHD_Result page_status(struct api_req *r, struct MHD_Connection *c)
{
    struct cs_link l;
    char err[CS_ERRLEN];
    enum cs_err rc = verify(r, r->api->view_key, &l, err);
    if (rc)
        return error_page(r, c, rc == CS_ERR_EXPIRED ? CS_ERR_BAD_TOKEN : rc, err);
    struct cs_buf b;
    cs_buf_init(&b, PAGE_MAX);
    struct api_db *d = pool_get(r->api->pool);
    rc = render_review(r, d, &l, &b, NULL, err);
    pool_put(r->api->pool, d);
    if (rc) {
        cs_buf_free(&b);
        return error_page(r, c, rc, err);
    }
    return reply_html(r, c, 200, &b, NULL);
}

/* ---- GET /inbox/{token} ---- */

enum MHD_Result page_inbox(struct api_req *r, struct MHD_Connection *c)
{
    struct api *a = r->api;
    struct cs_link l;
    char err[CS_ERRLEN];
    enum cs_err rc = verify(r, a->inbox_key, &l, err);
    if (rc)
        return error_page(r, c, rc, err);
    const char *p[] = {l.voter_id};
    PGresult *res = NULL;
    struct api_db *d = pool_get(a->pool);
    rc = cs_db_exec(d->db, CSQ_INBOX_PENDING, 1, p, &res, err);
    pool_put(a->pool, d);
    if (rc)
        return error_page(r, c, rc, err);
    struct cs_buf b;
    cs_buf_init(&b, PAGE_MAX);
    head(&b, "Your pending approvals");
    raw(&b, "<h1>Waiting for you</h1>");
    if (PQntuples(res) == 0)
        raw(&b, "<div class=\"card\"><p>Nothing is waiting for your decision.</p></div>");
    for (int i = 0; i < PQntuples(res); i++) {
        struct cs_link item;
        char token[CS_LINK_TOKEN_LEN + 1], left[32];
        cs_strlcpy(item.approval_id, cs_db_str(res, i, 0), sizeof(item.approval_id));
        cs_strlcpy(item.approver_id, cs_db_str(res, i, 1), sizeof(item.approver_id));
        cs_strlcpy(item.voter_id, l.voter_id, sizeof(item.voter_id));
        item.expires_ms = cs_db_int(res, i, 2);
        if (cs_link_sign(a->link_key, &item, token) != CS_OK)
            continue;
        raw(&b, "<div class=\"card\"><p><a href=\"/approve/");
        raw(&b, token);
        raw(&b, "\"><b>");
        esc(&b, cs_db_str(res, i, 4));
        raw(&b, "</b> <span class=\"url\">");
        esc(&b, cs_db_str(res, i, 5));
        raw(&b, "</span></a></p><p>");
        esc(&b, cs_db_str(res, i, 3));
        raw(&b, ": ");
        esc(&b, cs_db_str(res, i, 6));
        time_left(left, sizeof(left), item.expires_ms - cs_now_ms());
        raw(&b, "</p><p style=\"color:#57534e\">expires ");
        esc(&b, left);
        raw(&b, "</p></div>");
    }
    PQclear(res);
    foot(&b);
    return reply_html(r, c, 200, &b, NULL);
}
