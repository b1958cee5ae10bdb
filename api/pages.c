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


#define SHOW_BODY_MAX 65536

/* page_view columns (sql/queries/approval.sql) */
enum { V_ID, V_STATUS, V_AGENT, V_GRANT, V_METHOD, V_URL, V_HEADERS, V_BODY, V_REASON, V_CONTEXT,
       V_DIGEST, V_CREATED, V_EXPIRES, V_QUORUM, V_APPROVALS, V_DECISION_REASON, V_BATCH,
       V_POLICY, V_ERROR, V_RESPONSE };

/* The request body for people: pretty JSON, text, or a byte count. */
static void show_body(struct cs_buf *b, const char *b64)
{
    unsigned char *body = NULL;
    size_t len = 0;
    if (!b64 || cs_b64_decode(b64, strlen(b64), false, &body, &len) != CS_OK || len == 0) {
        html_raw(b, "<p>(no body)</p>");
        cs_free(body);
        return;
    }
    json_object *doc = NULL;
    char err[CS_ERRLEN];
    html_raw(b, "<pre>");
    if (cs_json_parse((const char *)body, len, &doc, err) == CS_OK) {
        html_esc(b, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(doc);
    } else if (memchr(body, '\0', len) == NULL && len <= SHOW_BODY_MAX) {
        char *text = cs_strndup((const char *)body, len);
        html_esc(b, text);
        cs_free(text);
    } else {
        char line[96];
        snprintf(line, sizeof(line), "(%zu bytes of binary data; see the digest)", len);
        html_esc(b, line);
    }
    html_raw(b, "</pre>");
    cs_free(body);
}

static void show_json(struct cs_buf *b, const char *text)
{
    json_object *doc = NULL;
    char err[CS_ERRLEN];
    if (!text || cs_json_parse(text, strlen(text), &doc, err) != CS_OK)
        return;
    if (json_object_object_length(doc) > 0) {
        html_raw(b, "<pre>");
        html_esc(b, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        html_raw(b, "</pre>");
    } else {
        html_raw(b, "<p>(none)</p>");
    }
    json_object_put(doc);
}

/* ---- links ---- */

static enum cs_err verify(struct api_req *r, const unsigned char key[32], struct cs_link *l,
                          char *err)
{
    return cs_link_verify(key, r->params[0], cs_now_ms(), l, err);
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
        html_raw(b, "<h2>Votes</h2><ul>");
        for (int i = 0; i < PQntuples(res); i++) {
            html_raw(b, "<li>");
            html_esc(b, cs_db_str(res, i, 0));
            html_raw(b, strcmp(cs_db_str(res, i, 1), "approve") == 0 ? " <span class=\"badge ok\">approved</span>"
                                                                 : " <span class=\"badge no\">denied</span>");
            if (strcmp(cs_db_str(res, i, 0), cs_db_str(res, i, 3)) != 0) {
                html_raw(b, " (by ");
                html_esc(b, cs_db_str(res, i, 3));
                html_raw(b, " on their behalf)");
            }
            if (cs_db_str(res, i, 2)) {
                html_raw(b, ": ");
                html_esc(b, cs_db_str(res, i, 2));
            }
            html_raw(b, "</li>");
        }
        html_raw(b, "</ul>");
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
    html_head(b, title);
    html_raw(b, "<h1>");
    html_esc(b, csrf ? "Approval requested" : "Approval status");
    html_raw(b, "</h1><div class=\"card\"><p><b>");
    html_esc(b, cs_db_str(res, 0, V_AGENT));
    html_raw(b, "</b> asks to call, with grant <b>");
    html_esc(b, cs_db_str(res, 0, V_GRANT));
    html_raw(b, "</b>:</p><p class=\"url\"><b>");
    html_esc(b, cs_db_str(res, 0, V_METHOD));
    html_raw(b, "</b> ");
    html_esc(b, cs_db_str(res, 0, V_URL));
    html_raw(b, "</p><h2>Reason</h2><blockquote>");
    html_esc(b, *cs_db_str(res, 0, V_REASON) ? cs_db_str(res, 0, V_REASON) : "(no reason given)");
    html_raw(b, "</blockquote></div><div class=\"card\"><h2>Payload</h2>");
    show_body(b, cs_db_str(res, 0, V_BODY));
    html_raw(b, "<h2>Headers</h2>");
    show_json(b, cs_db_str(res, 0, V_HEADERS));
    html_raw(b, "<h2>Context</h2>");
    show_json(b, cs_db_str(res, 0, V_CONTEXT));
    html_raw(b, "</div><div class=\"card\"><dl><dt>Status</dt><dd><span class=\"badge\">");
    html_esc(b, status);
    html_raw(b, "</span></dd><dt>Approvals</dt><dd>");
    snprintf(line, sizeof(line), "%lld of %lld needed", (long long)cs_db_int(res, 0, V_APPROVALS),
             (long long)cs_db_int(res, 0, V_QUORUM));
    html_esc(b, line);
    html_raw(b, "</dd><dt>Expires</dt><dd>");
    html_time_left(left, sizeof(left), cs_db_int(res, 0, V_EXPIRES) - cs_now_ms());
    snprintf(line, sizeof(line), "%s (%s)", cs_time_iso(cs_db_int(res, 0, V_EXPIRES), when), left);
    html_esc(b, line);
    html_raw(b, "</dd><dt>Policy</dt><dd>");
    html_esc(b, cs_db_str(res, 0, V_POLICY));
    html_raw(b, "</dd><dt>Digest</dt><dd class=\"url\">sha256:");
    html_esc(b, cs_db_str(res, 0, V_DIGEST));
    html_raw(b, "</dd><dt>Approval</dt><dd class=\"url\">");
    html_esc(b, cs_db_str(res, 0, V_ID));
    html_raw(b, "</dd></dl>");
    votes_list(b, d, l->approval_id);
    html_raw(b, "</div>");
    bool pending = strcmp(status, "pending") == 0;
    if (csrf && pending) {
        html_raw(b, "<form method=\"post\" class=\"card\"><input type=\"hidden\" name=\"csrf\" value=\"");
        html_esc(b, csrf);
        html_raw(b, "\"><label for=\"reason\">Reason (optional for approve, shown to the agent)</label>"
               "<textarea id=\"reason\" name=\"reason\" maxlength=\"4096\"></textarea>"
               "<div class=\"actions\"><button class=\"approve\" name=\"decision\" "
               "value=\"approve\">Approve</button><button class=\"deny\" name=\"decision\" "
               "value=\"deny\">Deny</button></div></form>");
    } else if (!pending) {
        html_raw(b, "<div class=\"card\"><p>This request is <b>");
        html_esc(b, status);
        html_raw(b, "</b>");
        if (cs_db_str(res, 0, V_DECISION_REASON)) {
            html_raw(b, ": ");
            html_esc(b, cs_db_str(res, 0, V_DECISION_REASON));
        }
        html_raw(b, ". Nothing more to decide.</p></div>");
    }
    (void)r;
    html_foot(b);
    PQclear(res);
    return CS_OK;
}

/* The review of the link's approval: with the decision form, or read-only. */
static enum MHD_Result review(struct api_req *r, struct MHD_Connection *c,
                              const unsigned char key[32], bool form)
{
    struct api *a = r->api;
    struct cs_link l;
    char err[CS_ERRLEN], csrf[160], set_cookie[320];
    enum cs_err rc = verify(r, key, &l, err);
    if (rc)
        return html_error(r, c, rc == CS_ERR_EXPIRED && !form ? CS_ERR_BAD_TOKEN : rc, err);
    if (form)
        csrf_issue(a, r->params[0], "/approve/", csrf, set_cookie);
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    struct api_db *d = pool_get(a->pool);
    rc = render_review(r, d, &l, &b, form ? csrf : NULL, err);
    pool_put(a->pool, d);
    if (rc) {
        cs_buf_free(&b);
        return html_error(r, c, rc, err);
    }
    return reply_html(r, c, 200, &b, form ? set_cookie : NULL);
}

enum MHD_Result page_review(struct api_req *r, struct MHD_Connection *c)
{
    return review(r, c, r->api->link_key, true);
}

/* ---- POST /approve/{token} ---- */

enum cs_err pages_decision(struct api_req *r, struct MHD_Connection *c,
                           const unsigned char key[32], struct cs_link *l, struct form *f,
                           bool *approve, char *err)
{
    enum cs_err rc = verify(r, key, l, err);
    if (!rc)
        rc = form_parse(r->body.data ? r->body.data : "", r->body.len, f, err);
    if (!rc)
        rc = csrf_check(r->api, c, form_get(f, "csrf"), r->params[0], err);
    const char *decision = form_get(f, "decision");
    if (!rc && (!decision || (strcmp(decision, "approve") && strcmp(decision, "deny"))))
        rc = cs_err_set(err, CS_ERR_INVALID, "choose approve or deny");
    if (rc && rc != CS_ERR_BAD_TOKEN)
        cs_log(CS_LOG_WARN, "pages", "decision refused: %s: %s", cs_err_code(rc), err);
    *approve = !rc && strcmp(decision, "approve") == 0;
    return rc;
}

enum MHD_Result pages_outcome(struct api_req *r, struct MHD_Connection *c, bool approve,
                              const struct cs_vote_outcome *out, const char *approved_text,
                              const char *denied_text)
{
    char text[256];
    if (out->status == CS_ST_APPROVED)
        snprintf(text, sizeof(text), "%s", approved_text);
    else if (out->status == CS_ST_DENIED)
        snprintf(text, sizeof(text), "%s", denied_text);
    else
        snprintf(text, sizeof(text), "Your approval is recorded: %d of %d needed so far.",
                 out->approvals, out->quorum);
    return html_message(r, c, 200, approve ? "Thank you: approved" : "Thank you: denied", text);
}

enum MHD_Result page_decide(struct api_req *r, struct MHD_Connection *c)
{
    struct cs_link l;
    struct form f = {0};
    char err[CS_ERRLEN], actor[64];
    bool approve = false;
    enum cs_err rc = pages_decision(r, c, r->api->link_key, &l, &f, &approve, err);
    if (!rc) {
        const char *reason = form_get(&f, "reason");
        snprintf(actor, sizeof(actor), "approver:%s", l.voter_id);
        struct cs_vote v = {l.approval_id, l.approver_id, l.voter_id, approve,
                            reason && *reason ? reason : NULL, actor};
        struct cs_vote_outcome out;
        struct api_db *d = pool_get(r->api->pool);
        rc = cs_approval_vote(d->db, &v, &out, err);
        pool_put(r->api->pool, d);
        if (!rc) {
            form_free(&f);
            return pages_outcome(r, c, approve, &out,
                                 "Approved. Countersign will now make the call, once.",
                                 "Denied. The call will not be made.");
        }
    }
    form_free(&f);
    return html_error(r, c, rc, err);
}

/* ---- GET /status/{token} ---- */

enum MHD_Result page_status(struct api_req *r, struct MHD_Connection *c)
{
    return review(r, c, r->api->view_key, false);
}

/* ---- GET /inbox/{token} ---- */

enum MHD_Result page_inbox(struct api_req *r, struct MHD_Connection *c)
{
    struct api *a = r->api;
    struct cs_link l;
    char err[CS_ERRLEN];
    enum cs_err rc = verify(r, a->inbox_key, &l, err);
    if (rc)
        return html_error(r, c, rc, err);
    const char *p[] = {l.voter_id};
    PGresult *res = NULL;
    struct api_db *d = pool_get(a->pool);
    rc = cs_db_exec(d->db, CSQ_INBOX_PENDING, 1, p, &res, err);
    pool_put(a->pool, d);
    if (rc)
        return html_error(r, c, rc, err);
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    html_head(&b, "Your pending approvals");
    html_raw(&b, "<h1>Waiting for you</h1>");
    if (PQntuples(res) == 0)
        html_raw(&b, "<div class=\"card\"><p>Nothing is waiting for your decision.</p></div>");
    for (int i = 0; i < PQntuples(res); i++) {
        struct cs_link item;
        char token[CS_LINK_TOKEN_LEN + 1], left[32];
        cs_strlcpy(item.approval_id, cs_db_str(res, i, 0), sizeof(item.approval_id));
        cs_strlcpy(item.approver_id, cs_db_str(res, i, 1), sizeof(item.approver_id));
        cs_strlcpy(item.voter_id, l.voter_id, sizeof(item.voter_id));
        item.expires_ms = cs_db_int(res, i, 2);
        if (cs_link_sign(a->link_key, &item, token) != CS_OK)
            continue;
        html_raw(&b, "<div class=\"card\"><p><a href=\"/approve/");
        html_raw(&b, token);
        html_raw(&b, "\"><b>");
        html_esc(&b, cs_db_str(res, i, 4));
        html_raw(&b, "</b> <span class=\"url\">");
        html_esc(&b, cs_db_str(res, i, 5));
        html_raw(&b, "</span></a></p><p>");
        html_esc(&b, cs_db_str(res, i, 3));
        html_raw(&b, ": ");
        html_esc(&b, cs_db_str(res, i, 6));
        html_time_left(left, sizeof(left), item.expires_ms - cs_now_ms());
        html_raw(&b, "</p><p style=\"color:#57534e\">expires ");
        html_esc(&b, left);
        html_raw(&b, "</p></div>");
    }
    PQclear(res);
    html_foot(&b);
    return reply_html(r, c, 200, &b, NULL);
}
