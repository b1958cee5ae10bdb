/*
 * pages.c -- the approver's pages: review, decide, inbox, status.
 *
 * Server-rendered HTML with inline styles only (no external assets, a
 * strict CSP from router.c), readable on a 390 px phone. Security rules:
 *   - a GET never changes anything (mail scanners and unfurlers fetch links);
 *   - the approval_url (/status/<signed token>) shows status to anyone who
 *     holds it; the decision form only to a signed-in approver of the
 *     approval (or their delegate): holding a link never lets anyone vote;
 *   - a decision is a POST from a signed-in session carrying that session's
 *     CSRF token (csrf.c) and, when the browser says so, a same-origin
 *     Sec-Fetch-Site / Origin; the vote goes through cs_approval_vote(),
 *     which enforces every rule (window, slot, delegation, self-approval,
 *     one vote each) inside one transaction;
 *   - everything shown is escaped; the digest shown is the stored request's;
 *   - a page approves only what it showed: a body it cannot show (binary)
 *     is offered as a download (/status/<token>/body) and for denial only,
 *     and an approve POSTed for it anyway is refused.
 */
#include <string.h>
#include <strings.h>

#include "api.h"
#include "cs_approval.h"
#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"

/* A person can read it: valid UTF-8 without NUL (JSON is text too). */
static bool body_is_text(const unsigned char *body, size_t len)
{
    return memchr(body, '\0', len) == NULL && cs_json_utf8_valid((const char *)body, len);
}

bool pages_show_body(struct cs_buf *b, const char *b64)
{
    unsigned char *body = NULL;
    size_t len = 0;
    if (!b64 || cs_b64_decode(b64, strlen(b64), false, &body, &len) != CS_OK || len == 0) {
        html_raw(b, "<p>(no body)</p>");
        cs_free(body);
        return b64 == NULL || *b64 == '\0';
    }
    json_object *doc = NULL;
    char err[CS_ERRLEN];
    bool shown = body_is_text(body, len);
    html_raw(b, "<pre>");
    if (shown && cs_json_parse((const char *)body, len, &doc, err) == CS_OK) {
        html_esc(b, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_SPACED |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(doc);
    } else if (shown) {
        /* Text is shown whole, whatever its size (bodies are capped by
         * CS_REQUEST_MAX_BYTES): an approver reads all of what they approve. */
        char *text = cs_strndup((const char *)body, len);
        html_esc(b, text);
        cs_free(text);
    } else {
        /* The hash lets whoever downloads it check they hold these bytes. */
        unsigned char sum[CS_SHA256_LEN];
        char line[160];
        cs_sha256(body, len, sum);
        int n = snprintf(line, sizeof(line), "(%zu bytes of binary data, SHA-256 ", len);
        for (size_t i = 0; i < sizeof(sum); i++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", sum[i]);
        snprintf(line + n, sizeof(line) - (size_t)n, ")");
        html_esc(b, line);
    }
    html_raw(b, "</pre>");
    cs_free(body);
    return shown;
}

void pages_show_json(struct cs_buf *b, const char *text)
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

/* The reason box and the two buttons of a decision form, and its end. */
#define DECISION_FIELDS                                                               \
    "<label for=\"reason\">Reason (optional for approve, shown to the agent)</label>" \
    "<textarea id=\"reason\" name=\"reason\" maxlength=\"4096\"></textarea>"          \
    "<div class=\"actions\"><button class=\"approve\" name=\"decision\" "             \
    "value=\"approve\">Approve</button><button class=\"deny\" name=\"decision\" "     \
    "value=\"deny\">Deny</button></div></form>"

/* The same, without Approve: for a payload the page could not show. */
#define DENY_ONLY_FIELDS                                                     \
    "<label for=\"reason\">Reason (shown to the agent)</label>"              \
    "<textarea id=\"reason\" name=\"reason\" maxlength=\"4096\"></textarea>" \
    "<div class=\"actions\"><button class=\"deny\" name=\"decision\" "       \
    "value=\"deny\">Deny</button></div></form>"

/*
 * The decision form of a policy that requires passkeys: api/passkey.js
 * signs the vote (id, digest, decision, reason, this page's nonce) with
 * one of s's passkeys before it is sent. Without a passkey, a pointer to
 * /passkeys instead.
 */
static void passkey_form(struct cs_buf *b, struct api *a, struct api_db *d,
                         const struct cs_session *s, const char *id, const char *digest)
{
    char nonce[PASSKEY_NONCE_LEN + 1];
    char *creds = passkeys_credentials(d, s);
    if (!strcmp(creds, "[]")) {
        html_raw(b, "<div class=\"card\"><p>This request's policy requires every vote to be "
                    "signed with a passkey, and you have none yet: <a href=\"/passkeys\">register "
                    "one</a>, then come back.</p></div>");
        cs_free(creds);
        return;
    }
    passkeys_vote_nonce(a, s, nonce);
    html_raw(b, "<form method=\"post\" class=\"card\" data-passkey=\"1\" data-approval=\"");
    html_esc(b, id);
    html_raw(b, "\" data-digest=\"");
    html_esc(b, digest);
    html_raw(b, "\" data-nonce=\"");
    html_esc(b, nonce);
    html_raw(b, "\" data-rp=\"");
    html_esc(b, a->rp_id);
    html_raw(b, "\" data-credentials=\"");
    html_esc(b, creds);
    html_raw(b, "\"><p>Your vote will be signed with your passkey.</p>"
                "<p class=\"passkey-status\"></p><input type=\"hidden\" name=\"nonce\" value=\"");
    html_esc(b, nonce);
    html_raw(b, "\">");
    session_csrf_field(b, a, s);
    html_raw(b, DECISION_FIELDS "<script src=\"/static/passkey.js\"></script>");
    cs_free(creds);
}

/* ---- who votes ---- */

bool pages_slot(struct api_db *d, bool batch, const char *id, const struct cs_session *s,
                char slot[CS_UUID_STRLEN + 1])
{
    const char *p[] = {id, s->approver_id, batch ? "true" : "false"};
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    bool ok = cs_db_exec(d->db, CS_DB_Q(VOTER_SLOT, p), &res, err) == CS_OK && PQntuples(res) == 1;
    if (ok)
        cs_strlcpy(slot, cs_db_str(res, 0, CSC_VOTER_SLOT_SLOT), CS_UUID_STRLEN + 1);
    PQclear(res);
    return ok;
}

/* The approval id of the approval_url's token; the token expired reads as not valid. */
static enum cs_err view_token(struct api_req *r, struct cs_link *l, char *err)
{
    enum cs_err rc = cs_link_verify(r->api->keys.approval, r->params[0], cs_now_ms(), l, err);
    return rc == CS_ERR_EXPIRED ? cs_err_set(err, CS_ERR_BAD_TOKEN, "this link has expired") : rc;
}

/* ---- GET /status/{token} ---- */

static void votes_list(struct cs_buf *b, struct api_db *d, const char *id)
{
    const char *p[] = {id};
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    if (cs_db_exec(d->db, CS_DB_Q(PAGE_VOTES, p), &res, err) != CS_OK)
        return;
    if (PQntuples(res) > 0) {
        html_raw(b, "<h2>Votes</h2><ul>");
        for (int i = 0; i < PQntuples(res); i++) {
            html_raw(b, "<li>");
            html_esc(b, cs_db_str(res, i, CSC_PAGE_VOTES_VOTER_NAME));
            html_raw(b, strcmp(cs_db_str(res, i, CSC_PAGE_VOTES_DECISION), "approve") == 0
                            ? " <span class=\"badge ok\">approved</span>"
                            : " <span class=\"badge no\">denied</span>");
            if (strcmp(cs_db_str(res, i, CSC_PAGE_VOTES_VOTER_NAME),
                       cs_db_str(res, i, CSC_PAGE_VOTES_CAST_BY_NAME)) != 0) {
                html_raw(b, " (by ");
                html_esc(b, cs_db_str(res, i, CSC_PAGE_VOTES_CAST_BY_NAME));
                html_raw(b, " on their behalf)");
            }
            if (cs_db_str(res, i, CSC_PAGE_VOTES_REASON)) {
                html_raw(b, ": ");
                html_esc(b, cs_db_str(res, i, CSC_PAGE_VOTES_REASON));
            }
            html_raw(b, "</li>");
        }
        html_raw(b, "</ul>");
    }
    PQclear(res);
}

/*
 * Renders approval l->approval_id into b for its visitor: the decision
 * form when s is signed in and holds a slot (can_vote), a note when s is
 * signed in without one, the sign-in box when nobody is signed in.
 * CS_ERR_NOT_FOUND when the approval is gone.
 */
static enum cs_err render_review(struct api_req *r, struct api_db *d, const struct cs_link *l,
                                 struct cs_buf *b, const struct cs_session *s, bool can_vote,
                                 char *err)
{
    const char *p[] = {l->approval_id};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, CS_DB_Q(PAGE_VIEW, p), &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cs_err_set(err, CS_ERR_NOT_FOUND, "this approval no longer exists");
    }
    const char *status = cs_db_str(res, 0, CSC_PAGE_VIEW_STATUS);
    char title[200], when[CS_TIME_ISO_LEN], left[32], line[256];
    snprintf(title, sizeof(title), "%s %s", cs_db_str(res, 0, CSC_PAGE_VIEW_METHOD),
             cs_db_str(res, 0, CSC_PAGE_VIEW_URL));
    bool pending = strcmp(status, "pending") == 0, form = s && can_vote && pending;
    html_head(b, title);
    if (s)
        session_bar(b, r->api, s);
    html_raw(b, "<h1>");
    html_esc(b, form ? "Approval requested" : "Approval status");
    html_raw(b, "</h1><div class=\"card\"><p><b>");
    html_esc(b, cs_db_str(res, 0, CSC_PAGE_VIEW_NAME));
    html_raw(b, "</b> asks to call, with grant <b>");
    html_esc(b, cs_db_str(res, 0, CSC_PAGE_VIEW_GRANT_ID));
    html_raw(b, "</b>:</p><p class=\"url\"><b>");
    html_esc(b, cs_db_str(res, 0, CSC_PAGE_VIEW_METHOD));
    html_raw(b, "</b> ");
    html_esc(b, cs_db_str(res, 0, CSC_PAGE_VIEW_URL));
    html_raw(b, "</p><h2>Reason</h2><blockquote>");
    html_esc(b, *cs_db_str(res, 0, CSC_PAGE_VIEW_REASON) ? cs_db_str(res, 0, CSC_PAGE_VIEW_REASON)
                                                         : "(no reason given)");
    html_raw(b, "</blockquote></div><div class=\"card\"><h2>Payload</h2>");
    /* Nobody approves what the page could not show them. */
    bool shown = pages_show_body(b, cs_db_str(res, 0, CSC_PAGE_VIEW_BODY_B64));
    if (!shown) {
        html_raw(b, "<p><a href=\"/status/");
        html_esc(b, r->params[0]);
        html_raw(b, "/body\" download>Download the payload</a> to inspect it.</p>");
    }
    if (!shown && pending)
        html_raw(b, "<p><b>This payload is not text, so this page cannot show it; it cannot "
                    "be approved here.</b> Inspect the download and decide with "
                    "<code>countersign approval approve</code>, or deny it.</p>");
    html_raw(b, "<h2>Headers</h2>");
    pages_show_json(b, cs_db_str(res, 0, CSC_PAGE_VIEW_HEADERS));
    html_raw(b, "<h2>Context</h2>");
    pages_show_json(b, cs_db_str(res, 0, CSC_PAGE_VIEW_CONTEXT));
    html_raw(b, "</div><div class=\"card\"><dl><dt>Status</dt><dd><span class=\"badge\">");
    html_esc(b, status);
    html_raw(b, "</span></dd><dt>Approvals</dt><dd>");
    snprintf(line, sizeof(line), "%lld of %lld needed",
             (long long)cs_db_int(res, 0, CSC_PAGE_VIEW_APPROVALS),
             (long long)cs_db_int(res, 0, CSC_PAGE_VIEW_QUORUM));
    html_esc(b, line);
    html_raw(b, "</dd><dt>Expires</dt><dd>");
    html_time_left(left, sizeof(left), cs_db_int(res, 0, CSC_PAGE_VIEW_EXPIRES_MS) - cs_now_ms());
    snprintf(line, sizeof(line), "%s (%s)",
             cs_time_iso(cs_db_int(res, 0, CSC_PAGE_VIEW_EXPIRES_MS), when), left);
    html_esc(b, line);
    html_raw(b, "</dd><dt>Policy</dt><dd>");
    html_esc(b, cs_db_str(res, 0, CSC_PAGE_VIEW_POLICY_ID));
    html_raw(b, "</dd><dt>Digest</dt><dd class=\"url\">sha256:");
    html_esc(b, cs_db_str(res, 0, CSC_PAGE_VIEW_DIGEST_HEX));
    html_raw(b, "</dd><dt>Approval</dt><dd class=\"url\">");
    html_esc(b, cs_db_str(res, 0, CSC_PAGE_VIEW_ID));
    html_raw(b, "</dd></dl>");
    votes_list(b, d, l->approval_id);
    html_raw(b, "</div>");
    if (form && shown && cs_db_bool(res, 0, CSC_PAGE_VIEW_REQUIRE_PASSKEY)) {
        passkey_form(b, r->api, d, s, cs_db_str(res, 0, CSC_PAGE_VIEW_ID),
                     cs_db_str(res, 0, CSC_PAGE_VIEW_DIGEST_HEX));
    } else if (form && !shown) {
        html_raw(b, "<form method=\"post\" class=\"card\">");
        session_csrf_field(b, r->api, s);
        html_raw(b, DENY_ONLY_FIELDS);
    } else if (form) {
        html_raw(b, "<form method=\"post\" class=\"card\">");
        session_csrf_field(b, r->api, s);
        html_raw(b, DECISION_FIELDS);
    } else if (pending && !shown) {
        /* Not even a semi-public link approves what cannot be shown. */
    } else if (pending && cs_db_str(res, 0, CSC_PAGE_VIEW_LINK_EXPIRES_MS) &&
               cs_now_ms() < cs_db_int(res, 0, CSC_PAGE_VIEW_LINK_EXPIRES_MS)) {
        /* Semi-public link mode: whoever holds this URL decides, for a while. */
        char csrf[CSRF_LEN + 1], subject[CS_LINK_TOKEN_LEN + 8];
        snprintf(subject, sizeof(subject), "link:%s", r->params[0]);
        csrf_token_for(r->api, subject, csrf);
        html_time_left(left, sizeof(left),
                       cs_db_int(res, 0, CSC_PAGE_VIEW_LINK_EXPIRES_MS) - cs_now_ms());
        html_raw(b, "<form method=\"post\" class=\"card\"><p><b>Anyone holding this link can "
                    "decide</b> (the policy chose semi-public links); it stops deciding ");
        html_esc(b, left);
        html_raw(b, ". Your address and browser are recorded with the decision.</p>"
                    "<input type=\"hidden\" name=\"csrf\" value=\"");
        html_raw(b, csrf);
        html_raw(b, "\">");
        html_raw(b, DECISION_FIELDS);
    } else if (pending && s) {
        html_raw(b, "<div class=\"card\"><p>You are signed in as <b>");
        html_esc(b, s->name);
        html_raw(b, "</b>, who is not an approver of this request (nor holds a delegation "
                    "from one).</p></div>");
    } else if (pending) {
        char here[CS_LINK_PATH_MAX + 8];
        snprintf(here, sizeof(here), "/status/%s", r->params[0]);
        session_signin_box(b, r->api, here, true);
    } else {
        html_raw(b, "<div class=\"card\"><p>This request is <b>");
        html_esc(b, status);
        html_raw(b, "</b>");
        if (cs_db_str(res, 0, CSC_PAGE_VIEW_DECISION_REASON)) {
            html_raw(b, ": ");
            html_esc(b, cs_db_str(res, 0, CSC_PAGE_VIEW_DECISION_REASON));
        }
        html_raw(b, ". Nothing more to decide.</p></div>");
    }
    html_foot(b);
    PQclear(res);
    return CS_OK;
}

enum MHD_Result page_status(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct cs_link l;
    struct cs_session s;
    char err[CS_ERRLEN], slot[CS_UUID_STRLEN + 1];
    enum cs_err rc = view_token(r, &l, err);
    if (rc)
        return html_error(r, c, rc, err);
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    bool in = session_of(r, c, d, &s);
    bool can_vote = in && pages_slot(d, false, l.approval_id, &s, slot);
    rc = render_review(r, d, &l, &b, in ? &s : NULL, can_vote, err);
    if (rc) {
        cs_buf_free(&b);
        return html_error(r, c, rc, err);
    }
    return reply_html(r, c, 200, &b, NULL);
}

/* ---- POST /status/{token} ---- */

enum cs_err pages_decision(struct api_req *r, struct MHD_Connection *c, const char *csrf_subject,
                           struct form *f, bool *approve, char *err)
{
    *approve = false;
    enum cs_err rc = form_parse(r->body.data ? r->body.data : "", r->body.len, f, err);
    if (!rc)
        rc = csrf_check_for(r->api, c, form_get(f, "csrf"), csrf_subject, err);
    const char *decision = form_get(f, "decision");
    if (!rc && (!decision || (strcmp(decision, "approve") && strcmp(decision, "deny"))))
        rc = cs_err_set(err, CS_ERR_INVALID, "choose approve or deny");
    if (rc)
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

/*
 * The stored body of approval id, decoded into *body and *len (the caller
 * cs_free()s it; NULL and 0 when there is none). CS_ERR_NOT_FOUND when the
 * approval is gone.
 */
static enum cs_err stored_body(struct api_db *d, const char *id, unsigned char **body, size_t *len,
                               char *err)
{
    const char *p[] = {id};
    PGresult *res = NULL;
    *body = NULL;
    *len = 0;
    enum cs_err rc = cs_db_exec(d->db, CS_DB_Q(PAGE_BODY, p), &res, err);
    if (rc)
        return rc;
    const char *b64 = PQntuples(res) == 1 ? cs_db_str(res, 0, CSC_PAGE_BODY_BODY_B64) : NULL;
    if (PQntuples(res) != 1)
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "this approval no longer exists");
    else if (b64 && *b64 && cs_b64_decode(b64, strlen(b64), false, body, len) != CS_OK)
        rc = cs_err_set(err, CS_ERR_INTERNAL, "a stored body is not base64");
    PQclear(res);
    return rc;
}

/*
 * A page approves only what it showed: a body the page could not show
 * (binary) is refused here, whatever the form said, and stays for the CLI.
 */
static enum cs_err pages_approvable(struct api_db *d, const char *id, char *err)
{
    unsigned char *body = NULL;
    size_t len = 0;
    enum cs_err rc = stored_body(d, id, &body, &len, err);
    bool text = rc || len == 0 || body_is_text(body, len);
    cs_free(body);
    if (rc == CS_ERR_NOT_FOUND)
        return CS_OK; /* the vote says so in its own words */
    if (rc)
        return rc;
    return text ? CS_OK
                : cs_err_set(err, CS_ERR_FORBIDDEN,
                             "this payload is not text, so the page cannot show it and cannot "
                             "approve it: download and inspect it, then decide with "
                             "countersign approval approve, or deny it here");
}

/* ---- GET /status/{token}/body: the payload as stored, to inspect ---- */

enum MHD_Result page_body(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct cs_link l;
    char err[CS_ERRLEN], filename[CS_UUID_STRLEN + 8];
    unsigned char *body = NULL;
    size_t len = 0;
    enum cs_err rc = view_token(r, &l, err);
    if (rc)
        return html_error(r, c, rc, err);
    rc = stored_body(d, l.approval_id, &body, &len, err);
    struct cs_buf out;
    cs_buf_init(&out, len + 1);
    if (!rc && len > 0)
        rc = cs_buf_append(&out, body, len);
    cs_free(body);
    if (rc) {
        cs_buf_free(&out);
        return html_error(r, c, rc, err);
    }
    snprintf(filename, sizeof(filename), "%s.bin", l.approval_id);
    return reply_download(r, c, "application/octet-stream", filename, &out);
}

#define APPROVED_TEXT "Approved. Countersign will now make the call, once."
#define DENIED_TEXT "Denied. The call will not be made."

/*
 * A POST without a session, or from a session without a slot here (render_review
 * shows anyone a semi-public link's form): only that form decides this way
 * (cs_approval_link_decide checks the mode and the link's lifetime in its
 * UPDATE). Anything else is told to sign in, or, signed in as s, that s is
 * not an approver.
 */
static enum MHD_Result link_holder_decide(struct api_req *r, struct MHD_Connection *c,
                                          struct api_db *d, const struct cs_link *l,
                                          const struct cs_session *s)
{
    struct form f = {0};
    char err[CS_ERRLEN], subject[CS_LINK_TOKEN_LEN + 8], addr[64];
    bool approve = false;
    snprintf(subject, sizeof(subject), "link:%s", r->params[0]);
    enum cs_err rc = pages_decision(r, c, subject, &f, &approve, err);
    if (rc == CS_ERR_CSRF) {
        /* Not a semi-public link's form: a decision needs a signed-in approver. */
        form_free(&f);
        if (s) {
            cs_err_set(err, CS_ERR_NOT_APPROVER, "%s is not an approver of this request", s->name);
            return html_error(r, c, CS_ERR_NOT_APPROVER, err);
        }
        return html_error(r, c, CS_ERR_UNAUTHENTICATED,
                          "sign in as an approver of this request to decide: open the page again");
    }
    if (!rc && approve)
        rc = pages_approvable(d, l->approval_id, err);
    if (!rc) {
        const char *reason = form_get(&f, "reason");
        session_client_address(c, addr);
        rc = cs_approval_link_decide(
            d->db, l->approval_id, approve, reason && *reason ? reason : NULL, addr,
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent"), err);
    }
    form_free(&f);
    if (rc)
        return html_error(r, c, rc, err);
    struct cs_vote_outcome out = {approve ? CS_ST_APPROVED : CS_ST_DENIED, 0, 1};
    return pages_outcome(r, c, approve, &out, APPROVED_TEXT, DENIED_TEXT);
}

enum MHD_Result page_decide(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct cs_link l;
    struct cs_session s;
    struct form f = {0};
    char err[CS_ERRLEN], actor[64], slot[CS_UUID_STRLEN + 1], passkey_id[CS_UUID_STRLEN + 1];
    char *passkey = NULL;
    bool approve = false;
    struct cs_vote_outcome out;
    enum cs_err rc = view_token(r, &l, err);
    if (rc)
        return html_error(r, c, rc, err);
    rc = session_get(c, d, &s, err);
    if (rc && rc != CS_ERR_UNAUTHENTICATED) /* e.g. Postgres away: not "sign in" */
        return html_error(r, c, rc, err);
    bool in = !rc;
    if (!in || !pages_slot(d, false, l.approval_id, &s, slot))
        return link_holder_decide(r, c, d, &l, in ? &s : NULL);
    rc = pages_decision(r, c, s.id, &f, &approve, err);
    if (!rc && approve)
        rc = pages_approvable(d, l.approval_id, err);
    if (!rc)
        rc = passkeys_vote_check(r->api, d, &s, l.approval_id, approve, &f, passkey_id, &passkey,
                                 err);
    if (!rc) {
        const char *reason = form_get(&f, "reason");
        snprintf(actor, sizeof(actor), "approver:%s", s.approver_id);
        struct cs_vote v = {l.approval_id,
                            slot,
                            s.approver_id,
                            approve,
                            reason && *reason ? reason : NULL,
                            actor,
                            passkey ? passkey_id : NULL,
                            passkey};
        rc = cs_approval_vote(d->db, &v, &out, err);
    }
    form_free(&f);
    cs_free(passkey);
    if (rc)
        return html_error(r, c, rc, err);
    return pages_outcome(r, c, approve, &out, APPROVED_TEXT, DENIED_TEXT);
}

/* ---- POST /status/{token}/signin-links ---- */

enum MHD_Result page_resend(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct cs_link l;
    char err[CS_ERRLEN];
    enum cs_err rc = view_token(r, &l, err);
    if (!rc)
        rc = csrf_check_origin(r->api, c, err);
    if (rc)
        return html_error(r, c, rc, err);
    const char *p[] = {l.approval_id, NULL};
    PGresult *res = NULL;
    rc = cs_db_exec(d->db, CS_DB_Q(SIGNIN_RESEND, p), &res, err);
    if (rc)
        return html_error(r, c, rc, err);
    bool open = cs_db_int(res, 0, CSC_SIGNIN_RESEND_RESENT) > 0,
         queued = cs_db_int(res, 0, CSC_SIGNIN_RESEND_NOTIFIED) > 0;
    PQclear(res);
    if (queued)
        return html_message(r, c, 202, "Sign-in links on their way",
                            "Each approver who has not voted gets a fresh one-time sign-in link "
                            "through their own channels (at most once a minute).");
    return html_message(r, c, 409, "Not sent",
                        open ? "No approver who has yet to vote can be reached through a channel "
                               "of theirs: ask an operator for a sign-in link."
                             : "This request is no longer waiting for a decision, or links were "
                               "sent less than a minute ago.");
}

/* ---- GET /inbox ---- */

enum MHD_Result page_inbox(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct api *a = r->api;
    struct cs_session s;
    char err[CS_ERRLEN];
    enum MHD_Result ret;
    if (!session_require(r, c, d, &s, "/inbox", &ret))
        return ret;
    const char *p[] = {s.approver_id};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, CS_DB_Q(INBOX_PENDING, p), &res, err);
    if (rc)
        return html_error(r, c, rc, err);
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    html_head(&b, "Your pending approvals");
    session_bar(&b, a, &s);
    html_raw(&b, "<h1>Waiting for you</h1>");
    if (PQntuples(res) == 0)
        html_raw(&b, "<div class=\"card\"><p>Nothing is waiting for your decision.</p></div>");
    for (int i = 0; i < PQntuples(res); i++) {
        char path[CS_LINK_PATH_MAX], left[32];
        int64_t expires_ms = cs_db_int(res, i, CSC_INBOX_PENDING_EXPIRES_MS);
        cs_link_approval_path(&a->keys, cs_db_str(res, i, CSC_INBOX_PENDING_ID), expires_ms, path);
        html_raw(&b, "<div class=\"card\"><p><a href=\"");
        html_raw(&b, path);
        html_raw(&b, "\"><b>");
        html_esc(&b, cs_db_str(res, i, CSC_INBOX_PENDING_METHOD));
        html_raw(&b, "</b> <span class=\"url\">");
        html_esc(&b, cs_db_str(res, i, CSC_INBOX_PENDING_URL));
        html_raw(&b, "</span></a></p><p>");
        html_esc(&b, cs_db_str(res, i, CSC_INBOX_PENDING_NAME));
        html_raw(&b, ": ");
        html_esc(&b, cs_db_str(res, i, CSC_INBOX_PENDING_REASON));
        html_time_left(left, sizeof(left), expires_ms - cs_now_ms());
        html_raw(&b, "</p><p style=\"color:#57534e\">expires ");
        html_esc(&b, left);
        html_raw(&b, "</p></div>");
    }
    PQclear(res);
    html_foot(&b);
    return reply_html(r, c, 200, &b, NULL);
}
